"""The conv nets on the glyph alphabets (issue 13): meta/conv.py, meta/conv_export.py,
site_builder/conv_stage.py.

What a reader and a reuser rely on: the quiz's alphabets are never trained
on; a round is N characters of one alphabet, one drawing each by one hand,
and queries by other hands; MAML's batched meta-gradient is the per-task
one; the exported graph computes what autograd computes (≤ 1e-4 on
probabilities), gives 0 to classes no support label names, and is listed in
the manifest with its inputs, outputs and accuracy metrics.
"""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from meta import conv, conv_export
from reference import reference_conv_maml
from site_builder import build, conv_stage, glyphs
from site_builder.check import check
from site_builder.config import CONV_MODELS
from site_builder.errors import BuildFailure


def _coded_ink(alphabets=3, characters=20, hands=4) -> np.ndarray:
    """Ink whose pixels encode where a drawing came from: (alphabet, character, hand)."""
    ink = np.zeros((alphabets, characters, hands, conv.SIZE, conv.SIZE), np.uint8)
    for a in range(alphabets):
        for c in range(characters):
            for h in range(hands):
                ink[a, c, h, 0, 0], ink[a, c, h, 0, 1], ink[a, c, h, 0, 2] = a, c, h
    return ink


def _decode(images: torch.Tensor) -> np.ndarray:
    return np.rint(images[..., 0, :3].numpy() * 255).astype(int)


# ------------------------------------------------------------------ data

def test_background_validation_and_held_out_alphabets_are_never_mixed():
    held = glyphs.split_indices("held-out", glyphs.ALPHABETS)
    background = glyphs.split_indices("background", 500)
    validation = glyphs.split_indices("validation", 500)
    assert held == list(range(glyphs.ALPHABETS))            # the quiz's alphabets
    assert not set(held) & set(background) and not set(held) & set(validation)
    assert not set(background) & set(validation)
    # The quiz's sheets are the held-out alphabets: the same drawings as split_glyphs gives.
    small = glyphs.split_glyphs("held-out", 2, glyphs.CHARACTERS, glyphs.HANDS)
    np.testing.assert_array_equal(small[1], glyphs.generate(glyphs.GLYPH_SEED, 2, size=28)[1])
    # No background drawing is a held-out one.
    bg = glyphs.split_glyphs("background", 2, glyphs.CHARACTERS, glyphs.HANDS)
    assert min(np.abs(bg[i].astype(int) - small[j].astype(int)).mean()
               for i in range(2) for j in range(2)) > 5
    with pytest.raises(ValueError, match="unknown alphabet split"):
        glyphs.split_indices("test", 1)


def test_the_build_trains_on_background_chooses_on_validation_evaluates_on_held_out(monkeypatch, tmp_path):
    asked = []
    real = glyphs.split_glyphs

    def spy(split, count, *args, **kwargs):
        asked.append((split, count))
        return real(split, count, *args, **kwargs)

    monkeypatch.setattr(glyphs, "split_glyphs", spy)
    calls = []
    real_train = conv.train

    def train_spy(cfg, ink, *args, **kwargs):
        calls.append(ink)
        return real_train(cfg, ink, *args, **kwargs)

    monkeypatch.setattr(conv, "train", train_spy)
    conv_stage.run_conv_stage(tmp_path, conv_stage.Path(__file__).parents[1], {}, "quick", 0, "cpu", False)
    assert len(calls) == len(CONV_MODELS)
    background = real("background", 2, glyphs.CHARACTERS, 3)
    for ink in calls:
        np.testing.assert_array_equal(ink, background[:ink.shape[0], :, :ink.shape[2]])
    assert ("background", 2) in asked and ("validation", 10) in asked and ("held-out", 20) in asked


def test_a_round_is_one_alphabet_one_support_hand_queries_by_other_hands():
    tasks = conv.GlyphTasks(_coded_ink())
    g = torch.Generator().manual_seed(0)
    for ways, same in ((5, True), (20, False)):
        batch = tasks.sample(50, ways, g, queries=2, same_query_hand=same)
        s, q = _decode(batch.support), _decode(batch.query)           # [T, B, 3]
        assert batch.support.shape == (50, ways, 28, 28)
        assert (s[:, :, 0] == s[:, :1, 0]).all() and (q[:, :, 0] == s[:, :1, 0]).all()
        assert (s[:, :, 2] == s[:, :1, 2]).all(), "support drawings are by one hand"
        assert all(len(set(row)) == ways for row in s[:, :, 1]), "N different characters"
        assert (q[:, :, 2] != s[:, :1, 2]).all(), "queries are by other hands"
        if same:
            assert (q[:, :, 2] == q[:, :1, 2]).all()
        # A query's label names the support drawing of its character.
        for t in range(50):
            for j, label in enumerate(batch.query_labels[t].tolist()):
                assert q[t, j, 1] == s[t, label, 1]
        assert batch.mask.sum(1).tolist() == [ways] * 50


# ------------------------------------------------------------------ training

def test_batched_second_order_meta_gradient_is_the_mean_of_per_task_ones():
    tasks = conv.GlyphTasks(glyphs.split_glyphs("background", 2, 20, 3))
    g = torch.Generator().manual_seed(1)
    theta = {n: p.requires_grad_(True) for n, p in conv.init_params(g, channels=8).items()}
    batch = tasks.sample(3, 5, g)
    batched, _ = conv.meta_gradient(theta, batch, 0.2, 2)
    per_task = [conv.meta_gradient(theta, conv.GlyphBatch(*[x[i:i + 1] for x in batch]), 0.2, 2)[0]
                for i in range(3)]
    for k, g_batched in enumerate(batched):
        expected = sum(grads[k] for grads in per_task) / 3
        torch.testing.assert_close(g_batched, expected, atol=1e-6, rtol=1e-4)
    # Second order differs from first order (the Hessian term is there).
    first, _ = conv.meta_gradient(theta, batch, 0.2, 2, first_order=True)
    assert max(float((a - b).abs().max()) for a, b in zip(first, batched)) > 1e-5


def test_training_lowers_the_meta_loss_and_is_deterministic():
    ink = glyphs.split_glyphs("background", 2, 20, 3)
    cfg = conv.ConvConfig("maml", iterations=30, meta_batch_size=4, ways=(5,), channels=8,
                          inner_steps=1, meta_lr=3e-3, log_every=10, alphabets=2, hands=3)
    first, again = conv.train(cfg, ink, "cpu"), conv.train(cfg, ink, "cpu")
    assert first.history[-1]["meta_loss"] < first.history[0]["meta_loss"]
    for name in first.params:
        torch.testing.assert_close(first.params[name], again.params[name], rtol=0, atol=0)


def test_a_zero_head_stays_zero_and_its_meta_gradient_is_the_conv_blocks_part():
    tasks = conv.GlyphTasks(glyphs.split_glyphs("background", 2, 20, 3))
    g = torch.Generator().manual_seed(2)
    theta = conv.init_params(g, channels=8)
    theta["head.w"].zero_()
    theta["head.b"].zero_()
    batch = tasks.sample(3, 5, g)
    blocks = tuple(n for n in theta if not n.startswith("head."))
    full, _ = conv.meta_gradient({n: p.clone().requires_grad_(True) for n, p in theta.items()},
                                 batch, 0.4, 2)
    fixed = {n: p.clone().requires_grad_(n in blocks) for n, p in theta.items()}
    part, _ = conv.meta_gradient(fixed, batch, 0.4, 2, learned=blocks)
    assert len(part) == len(blocks)
    for k, name in enumerate(blocks):
        torch.testing.assert_close(part[k], full[list(theta).index(name)], atol=1e-7, rtol=1e-5)
        assert float(part[k].abs().max()) > 0
    # Training moves the conv blocks and leaves the head at zero.
    ink = glyphs.split_glyphs("background", 2, 20, 3)
    cfg = conv.ConvConfig("maml", iterations=3, meta_batch_size=2, ways=(5,), channels=8,
                          alphabets=2, hands=3, zero_head=True)
    start = conv.init_params(torch.Generator().manual_seed(cfg.seed), 8)
    out = conv.train(cfg, ink, "cpu").params
    assert float(out["head.w"].abs().max()) == 0 and float(out["head.b"].abs().max()) == 0
    assert float((out["conv1.w"] - start["conv1.w"]).abs().max()) > 0
    with pytest.raises(ValueError, match="zero_head is for MAML"):
        conv.ConvConfig("pretrained", zero_head=True)


def test_a_zero_heads_first_step_skips_the_blocks_without_changing_a_number():
    tasks = conv.GlyphTasks(glyphs.split_glyphs("background", 2, 20, 3))
    g = torch.Generator().manual_seed(3)
    theta = {n: p.double() for n, p in conv.init_params(g, channels=8).items()}
    theta["head.w"].zero_()
    theta["head.b"].zero_()
    blocks = tuple(n for n in theta if not n.startswith("head."))
    theta = {n: p.requires_grad_(n in blocks) for n, p in theta.items()}
    batch = conv.GlyphBatch(*[x.double() if x.is_floating_point() else x for x in tasks.sample(3, 5, g)])
    # The shortcut applies to a head of zeros that does not depend on θ, and only to it.
    per_task = conv.per_task(theta, 3)
    assert conv._constant_zero_head(per_task)
    assert not conv._constant_zero_head({**per_task, "head.w": per_task["head.w"].clone().requires_grad_(True)})
    assert not conv._constant_zero_head({**per_task, "head.b": per_task["head.b"] + 1e-30})
    # The meta-gradient (second order, 2 and 3 steps) is the whole net's at every step.
    for steps in (2, 3):
        ours, _ = conv.meta_gradient(theta, batch, 0.4, steps, learned=blocks)
        expected = reference_conv_maml(theta, batch, 0.4, steps, blocks)
        for a, b in zip(ours, expected):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
            assert float(a.abs().max()) > 0
    # And evaluation (no graph) follows the same trajectory as differentiating every block.
    plain = {n: p.detach() for n, p in theta.items()}
    path = conv.adapt(plain, batch.support, batch.support_labels, batch.mask, 2, 0.4, trajectory=True)
    phi = conv.per_task(plain, 3)
    for step in range(1, 3):
        leaf = {n: p.detach().requires_grad_(True) for n, p in phi.items()}
        with torch.enable_grad():
            loss = conv.task_loss(leaf, batch.support, batch.support_labels, batch.mask).sum()
            grads = torch.autograd.grad(loss, list(leaf.values()))
        phi = {n: (p - 0.4 * gr).detach() for (n, p), gr in zip(leaf.items(), grads)}
        for n in phi:
            torch.testing.assert_close(path[step][n], phi[n], rtol=0, atol=0)


def test_rotations_are_three_more_alphabets_of_turned_characters():
    ink = np.random.default_rng(0).integers(0, 256, (2, 20, 3, conv.SIZE, conv.SIZE), dtype=np.uint8)
    turned = conv.with_rotations(ink)
    assert turned.shape == (8, 20, 3, conv.SIZE, conv.SIZE)
    np.testing.assert_array_equal(turned[:2], ink)
    for k in (1, 2, 3):
        for a in range(2):
            np.testing.assert_array_equal(turned[2 * k + a, 5, 1], np.rot90(ink[a, 5, 1], k))
    # Training with rotations draws its rounds from the 4A alphabets: the
    # pretrained net then scores 4x as many classes.
    cfg = conv.ConvConfig("pretrained", iterations=1, channels=8, batch_size=4, alphabets=2, hands=3,
                          rotations=True)
    assert conv.train(cfg, ink, "cpu").params["head.w"].shape[1] == 8 * 20


def test_bad_conv_settings_are_one_clear_error():
    with pytest.raises(ValueError, match="ways must be from 2 to 20"):
        conv.ConvConfig("maml", ways=(5, 21))
    with pytest.raises(ValueError, match="unknown conv algorithm"):
        conv.ConvConfig("reptile")
    with pytest.raises(ValueError, match="unknown schedule 'step'; allowed: constant, cosine"):
        conv.ConvConfig("maml", schedule="step")
    with pytest.raises(ValueError, match=r"channels must be a positive integer or 4 of them \(one per "
                                         r"block\), got \(32, 64\)"):
        conv.ConvConfig("maml", channels=(32, 64))
    with pytest.raises(ValueError, match="channels must be a positive integer or 4 of them"):
        conv.ConvConfig("maml", channels=0)


def test_each_block_can_have_its_own_width_and_the_config_keeps_it():
    params = conv.init_params(torch.Generator().manual_seed(0), channels=(4, 6, 8, 10))
    assert [params[f"conv{i}.w"].shape[:2] for i in range(1, 5)] == [(4, 1), (6, 4), (8, 6), (10, 8)]
    assert params["head.w"].shape == (10 * 2 * 2, conv.HEAD)
    images = torch.rand(3, 5, conv.SIZE, conv.SIZE)
    assert conv.logits(params, images).shape == (3, 5, conv.HEAD)
    assert conv.logits(conv.per_task(params, 3), images).shape == (3, 5, conv.HEAD)
    # One number is every block's width, drawn exactly as the same number per block.
    one = conv.init_params(torch.Generator().manual_seed(0), channels=8)
    four = conv.init_params(torch.Generator().manual_seed(0), channels=(8, 8, 8, 8))
    assert all(torch.equal(one[n], four[n]) for n in one)
    cfg = conv.ConvConfig("maml", channels=(32, 32, 64, 64))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["channels"] == [32, 32, 64, 64] and conv.ConvConfig.from_dict(data) == cfg
    assert conv.ConvConfig("maml", channels=32).to_dict()["channels"] == 32


def test_a_cosine_schedule_takes_the_meta_rate_from_meta_lr_to_nearly_zero(monkeypatch):
    rates = []
    real_step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    ink = glyphs.split_glyphs("background", 2, 20, 3)
    cfg = conv.ConvConfig("maml", iterations=4, meta_batch_size=2, ways=(5,), channels=8, inner_steps=1,
                          meta_lr=2e-3, schedule="cosine", alphabets=2, hands=3)
    conv.train(cfg, ink, "cpu")
    np.testing.assert_allclose(rates, [2e-3 * 0.5 * (1 + np.cos(np.pi * i / 4)) for i in range(4)])


# ------------------------------------------------------------------ the graph

@pytest.fixture(scope="module")
def params():
    # A width per block, so that the graph's hand-written backward is checked
    # where the blocks differ (the quiz's nets widen their last two).
    return conv.init_params(torch.Generator().manual_seed(3), channels=(6, 8, 12, 16))


def test_hand_written_backward_matches_autograd(params):
    tasks = conv.GlyphTasks(glyphs.split_glyphs("validation", 1, 20, 5))
    batch = tasks.sample(1, 20, torch.Generator().manual_seed(2))
    s, y, q = batch.support[0].unsqueeze(1).double(), batch.support_labels[0], batch.query[0].unsqueeze(1).double()
    p64 = {n: v.double() for n, v in params.items()}
    got = conv_export.ConvAdaptation(p64, 4).double()(s, y, q, torch.tensor(0.3, dtype=torch.float64))
    want = conv_export.reference_adaptation(p64, s, y, q, 0.3, 4)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.fixture(scope="module")
def graph(params, tmp_path_factory):
    path = tmp_path_factory.mktemp("conv") / "g.onnx"
    info = conv_export.export_conv(params, path, steps=2)
    return path, info


def test_graph_matches_pytorch_within_1e4_and_masks_absent_classes(params, graph):
    path, info = graph
    assert "ConvTranspose" in info["ops"] and info["bytes"] < 1_000_000
    tasks = conv.GlyphTasks(glyphs.split_glyphs("held-out", 2, 20, 5))
    g = torch.Generator().manual_seed(5)
    for ways in (5, 20):
        batch = tasks.sample(1, ways, g, same_query_hand=True)
        s, y, q = batch.support[0].unsqueeze(1), batch.support_labels[0], batch.query[0].unsqueeze(1)
        probs, loss = conv_export.run_onnx(path, s.numpy(), y.numpy(), q.numpy(), 0.4)
        ref_p, ref_l = conv_export.reference_adaptation(params, s.double(), y, q.double(), 0.4, 2)
        assert probs.shape == (3, ways, 20) and loss.shape == (3,)
        assert np.abs(probs - ref_p.numpy()).max() <= 1e-4
        assert np.abs(loss - ref_l.numpy()).max() <= 1e-4
        assert (probs[:, :, ways:] == 0).all(), "classes no support label names get 0"
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # One query at a time gives the same answer as all at once (no batch statistics).
    alone, _ = conv_export.run_onnx(path, s.numpy(), y.numpy(), q[:1].numpy(), 0.4)
    np.testing.assert_allclose(alone[:, 0], probs[:, 0], atol=1e-6)


# ------------------------------------------------------------------ the build

def test_the_build_lists_both_conv_nets_with_metrics_and_check_verifies_them(quick_build, tmp_path):
    manifest = json.loads((quick_build.exported / "manifest.json").read_text())
    entries = {e["name"]: e for e in manifest["models"]}
    for name, spec in CONV_MODELS.items():
        entry = entries[name]
        assert entry["algorithm"] == spec.algorithm and entry["task"]["family"] == "glyphs"
        assert [p["name"] for p in entry["graph"]["inputs"]] == list(conv_export.INPUT_NAMES)
        assert [p["name"] for p in entry["graph"]["outputs"]] == list(conv_export.OUTPUT_NAMES)
        for key in ("acc_5way_1shot", "acc_20way_1shot"):
            assert 0 <= entry["metrics"][key] <= 1 and 0 <= entry["metrics"][key + "_ci95"] < 1
        assert entry["steps"] >= 1 and entry["inner_lr"] > 0
        size = sum((quick_build.exported / f).stat().st_size
                   for f in (entry["file"], entry["weights"]["file"]))
        assert size <= 1_000_000, f"{name}'s files take {size} bytes"
        results = json.loads((quick_build.exported / entry["results"]["file"]).read_text())
        assert len(results["evaluation"]["20"]["accuracy"]) == entry["steps"] + 1
    assert entries["pretrained-glyphs"]["selection"]["chosen"] == entries["pretrained-glyphs"]["inner_lr"]
    # The site serves the graphs.
    assert (quick_build.site / "assets/models/maml-glyphs.onnx").is_file()

    copy = tmp_path / "exported"
    shutil.copytree(quick_build.exported, copy)
    check(copy, conv_stage.Path(__file__).parents[1])
    onnx = copy / entries["maml-glyphs"]["file"]
    onnx.write_bytes(onnx.read_bytes()[:-8] + b"tampered")
    with pytest.raises(BuildFailure, match="maml-glyphs: maml-glyphs.onnx is missing or does not match"):
        check(copy, conv_stage.Path(__file__).parents[1])
    # An entry without a record of one of its files says which record is missing.
    recorded = json.loads((copy / "manifest.json").read_text())
    for entry in recorded["models"]:
        if entry["name"] == "pretrained-glyphs":
            del entry["results"]
    problems, _ = conv_stage.check_conv_models(copy, {e["name"]: e for e in recorded["models"]})
    assert "pretrained-glyphs: the manifest records no results file; run `maml-site build`" in problems


def test_the_conv_stage_does_nothing_when_its_inputs_are_unchanged(quick_build):
    manifest = json.loads((quick_build.exported / "manifest.json").read_text())
    entries = {e["name"]: e for e in manifest["models"]}
    before = {p.name: p.stat().st_mtime_ns for p in quick_build.exported.glob("*-glyphs.*")}
    _, ran = conv_stage.run_conv_stage(quick_build.exported, conv_stage.Path(__file__).parents[1],
                                       entries, "quick", 0, "cpu", False)
    assert ran == []
    assert before == {p.name: p.stat().st_mtime_ns for p in quick_build.exported.glob("*-glyphs.*")}


def test_with_two_jobs_the_conv_nets_train_at_once_in_workers_and_give_the_same_files(monkeypatch, tmp_path,
                                                                                      caplog):
    """The build trains the two nets in worker processes when it may use two
    jobs on the CPU: their weights (tensor for tensor), rate choices and
    held-out scores must be a one-process build's. (The graph is a function
    of the weights; the export stage is left out to keep this test fast, and
    quick_build, on two jobs where there are two cores, exports in workers
    and passes the parity check above.)"""
    root = conv_stage.Path(__file__).parents[1]
    stages = ("train", "evaluate")
    concurrent = []
    real = conv_stage._run_concurrently

    def spy(jobs, workers):
        concurrent.append([job.name for job in jobs])
        return real(jobs, workers)

    monkeypatch.setattr(conv_stage, "_run_concurrently", spy)
    built = {}
    for jobs in (1, 2):
        exported = tmp_path / f"jobs{jobs}"
        # One torch thread here, as run_stages sets for the stage (the workers
        # set theirs): how many threads sum a product changes its rounding.
        caplog.clear()
        with build._one_torch_thread(), caplog.at_level("INFO", logger="site_builder"):
            entries, ran = conv_stage.run_conv_stage(exported, root, {}, "quick", 0, "cpu", False,
                                                     stages=stages, jobs=jobs)
        assert sorted(ran) == sorted(f"{n}: {s}" for n in CONV_MODELS for s in stages)
        # The log ends with the stage's whole time, and says how it ran.
        last = caplog.records[-1].getMessage()
        assert re.fullmatch(r"conv nets: .*maml-glyphs: train.* in \d+\.\d s"
                            + (r" \(side by side, one worker each\)" if jobs == 2 else ""), last), last
        built[jobs] = exported, entries
    assert concurrent == [list(CONV_MODELS)]           # only the 2-job run used workers
    (one, one_entries), (two, two_entries) = built[1], built[2]
    for name in CONV_MODELS:
        a = torch.load(one / f"{name}.pt", weights_only=True)
        b = torch.load(two / f"{name}.pt", weights_only=True)
        assert a["params"].keys() == b["params"].keys()
        for key in a["params"]:
            assert torch.equal(a["params"][key], b["params"][key]), (name, key)
        assert a["inner_lr"] == b["inner_lr"] and a["selection"] == b["selection"]
        assert one_entries[name]["metrics"] == two_entries[name]["metrics"]
        results = [json.loads((d / f"{name}.results.json").read_text()) for d in (one, two)]
        assert results[0]["evaluation"] == results[1]["evaluation"]
        # Each file is the one its entry records (written by this process).
        for record in (two_entries[name]["weights"], two_entries[name]["results"]):
            assert conv_stage.file_sha256(two / record["file"]) == record["sha256"]
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())


def test_a_failing_worker_is_a_build_error_that_names_its_model(tmp_path):
    code = {"train": "", "evaluate": "", "export": ""}
    good = conv_stage.ConvJob("maml-glyphs", tmp_path, {}, "quick", 0, "cpu", True,
                              ("train", "evaluate", "export"), code, train=True)
    bad = conv_stage.ConvJob("pretrained-glyphs", tmp_path, {}, "no-such-profile", 0, "cpu", True,
                             ("train", "evaluate", "export"), code, train=True)
    with pytest.raises(BuildFailure, match=r"^pretrained-glyphs: KeyError: 'no-such-profile'"):
        conv_stage._run_concurrently([good, bad], 2)
    assert not list(tmp_path.iterdir())                     # the workers wrote nothing
