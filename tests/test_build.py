"""The build pipeline: what a quick build produces, the manifest contract,
caching by inputs hash, and atomic writes.

Tests marked slow share one quick build (tests/conftest.py); the rest take
well under a second each.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from meta.evaluate import EVAL_SEED, summary_metrics
from meta.export import signature
from meta.model import LAYER_SIZES, init_params
from meta.tasks import SINUSOID
from site_builder import atomic, manifest
from site_builder.build import build, run_stages
from site_builder.check import PARITY_TOLERANCE, check, parity_error
from site_builder.config import MODELS, PROFILES, REPO_ROOT
from site_builder.errors import BuildFailure
from site_builder.figures import sine_fit_svg
from site_builder.hashing import file_sha256
from site_builder.site import run_mkdocs
from site_builder.stages import ModelJob, downstream_hashes, load_checkpoint, train_hash

from conftest import quick_options

CONTRACT_FIELDS = ("name", "algorithm", "task", "file", "sha256", "inner_lr", "steps", "train",
                   "metrics")
VENDOR_FILES = ("onnxruntime-web/ort.wasm.bundle.min.mjs",
                "onnxruntime-web/ort-wasm-simd-threaded.wasm",
                "katex/katex.min.css")


def _files(folder: Path) -> dict[str, int]:
    """{relative path: mtime_ns} of every file under folder."""
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy_exported(quick_build, tmp_path) -> Path:
    copy = tmp_path / "exported"
    shutil.copytree(quick_build.exported, copy)
    return copy


def _entries(exported: Path) -> dict[str, dict]:
    return manifest.entries_by_name(manifest.read(exported))


# ------------------------------------------------------------ the quick build

@pytest.mark.slow
def test_quick_build_writes_the_pages_models_figures_and_vendor_files(quick_build):
    site, exported = quick_build.site, quick_build.exported
    assert (site / "index.html").is_file()
    assert (site / "how-maml-works" / "index.html").is_file()
    models = site / "assets" / "models"
    assert (models / "manifest.json").read_bytes() == (exported / "manifest.json").read_bytes()
    for name in MODELS:
        for file in (f"{name}.onnx", f"{name}.results.json"):
            assert (models / file).read_bytes() == (exported / file).read_bytes(), file
        figure = site / "assets" / "figures" / f"sine-fit-{name}.svg"
        assert figure.read_bytes() == (exported / "figures" / f"sine-fit-{name}.svg").read_bytes()
        assert not (models / f"{name}.pt").exists()   # weights stay in exported/
    vendor = site / "assets" / "vendor"
    for file in VENDOR_FILES:
        assert (vendor / file).is_file(), file
    assert (vendor / "onnxruntime-web/ort-wasm-simd-threaded.wasm").stat().st_size > 1_000_000
    # The build stages docs/ elsewhere: the source tree gets no generated files.
    for generated in ("assets/vendor", "assets/models", "generated"):
        assert not (REPO_ROOT / "docs" / generated).exists()


@pytest.mark.slow
def test_manifest_follows_the_contract_and_hashes_its_files(quick_build):
    exported = quick_build.exported
    data = json.loads((exported / "manifest.json").read_text())
    assert data["format"] == 1
    assert [m["name"] for m in data["models"]][:len(MODELS)] == list(MODELS)
    for entry in data["models"][:len(MODELS)]:
        name, spec = entry["name"], MODELS[entry["name"]]
        assert all(field in entry for field in CONTRACT_FIELDS), entry.keys()
        assert entry["algorithm"] == spec.algorithm
        assert entry["task"] == SINUSOID.describe() == {
            "family": "sinusoid", "amplitude": [0.1, 5.0], "phase": [0.0, 3.14159], "x": [-5.0, 5.0]}
        assert entry["file"] == f"{name}.onnx"
        assert entry["sha256"] == file_sha256(exported / entry["file"])
        if spec.validates_lr:
            assert entry["inner_lr"] in spec.adapt_lr
        else:
            # The training rate, or the fixed adaptation rate a model states (iMAML's proximal steps).
            assert entry["inner_lr"] == spec.inner_lr(spec.train_config(PROFILES["quick"], 0))
            assert entry["inner_lr"] == (0.01 if spec.adapt_lr is None else spec.adapt_lr)
        assert entry["steps"] == 10
        # The graph's inputs and outputs, documented; query_y's meaning names the model's procedure.
        assert entry["graph"] == signature(entry["inner_procedure"])
        assert entry["graph"]["inputs"] == signature()["inputs"]
        assert entry["train"] == spec.train_config(PROFILES["quick"], 0).to_dict()
        assert entry["train"]["iterations"] == 300 and entry["train"]["meta_batch_size"] == 25
        if spec.algorithm in ("pretrained", "maml"):     # the MAML paper's settings
            assert entry["train"]["inner_steps"] == (0 if spec.algorithm == "pretrained" else 1)
        assert set(entry["metrics"]) == {f"k{k}_step{s}" for k in (5, 10, 20) for s in (0, 1, 10)}
        for value in entry["metrics"].values():
            assert math.isfinite(value["mean"]) and value["mean"] > 0 and value["ci95"] > 0
        for key, file in (("weights", f"{name}.pt"), ("results", f"{name}.results.json"),
                          ("figure", f"figures/sine-fit-{name}.svg")):
            assert entry[key] == {"file": file, "sha256": file_sha256(exported / file)}
        assert entry["training"]["device"] == "cpu" and entry["training"]["seconds"] > 0
        assert entry["training"]["torch"] == str(torch.__version__)
        assert set(entry["inputs"]) == ({"train", "evaluate", "export", "figures"}
                                        | ({"adapt_lr"} if spec.validates_lr else set()))
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in entry["inputs"].values())


@pytest.mark.slow
def test_results_and_weights_hold_the_evaluation_and_training_history(quick_build):
    exported = quick_build.exported
    entries = _entries(exported)
    for name in MODELS:
        results = json.loads((exported / f"{name}.results.json").read_text())
        protocol = results["evaluation"]["protocol"]
        assert protocol["num_tasks"] == 200 and protocol["seed"] == EVAL_SEED
        assert protocol["inner_lr"] == entries[name]["inner_lr"]
        for k in ("5", "10", "20"):
            curve = results["evaluation"]["query_mse"][k]
            assert len(curve["mean"]) == len(curve["ci95"]) == 11
        assert entries[name]["metrics"] == summary_metrics(results["evaluation"])
        history = results["training"]["history"]
        assert len(history) == 30 and history[-1]["iteration"] == 300
        checkpoint = load_checkpoint(exported / f"{name}.pt")
        assert checkpoint["history"] == history
        shapes = {n: list(p.shape) for n, p in checkpoint["params"].items()}
        assert shapes == {"w1": [1, 40], "b1": [40], "w2": [40, 40], "b2": [40],
                          "w3": [40, 1], "b3": [1]}
        assert LAYER_SIZES == (1, 40, 40, 1)


@pytest.mark.slow
def test_quick_models_learn_and_maml_adapts_faster_than_pretraining(quick_build):
    metrics = {n: e["metrics"] for n, e in _entries(quick_build.exported).items()}
    for name in MODELS:
        # Ten steps on 20 support points fit the task better than none.
        assert metrics[name]["k20_step10"]["mean"] < metrics[name]["k20_step0"]["mean"]
    # Even after 300 meta-iterations, one step from MAML's initialisation
    # beats one step from the jointly trained model.
    assert (metrics["maml-sinusoid"]["k10_step1"]["mean"]
            < metrics["pretrained-sinusoid"]["k10_step1"]["mean"])


@pytest.mark.slow
def test_check_passes_and_onnx_matches_pytorch(quick_build):
    check(quick_build.exported, REPO_ROOT)
    entry = _entries(quick_build.exported)["maml-sinusoid"]
    params = load_checkpoint(quick_build.exported / "maml-sinusoid.pt")["params"]
    error, _ = parity_error(quick_build.exported / entry["file"], params, 0.01, 10)
    assert error <= PARITY_TOLERANCE


@pytest.mark.slow
def test_check_names_a_modified_file(quick_build, tmp_path):
    exported = _copy_exported(quick_build, tmp_path)
    path = exported / "maml-sinusoid.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BuildFailure, match=r"maml-sinusoid: maml-sinusoid\.onnx has sha256"):
        check(exported, REPO_ROOT)


@pytest.mark.slow
def test_no_temporary_files_are_left_behind(quick_build):
    for folder in (quick_build.exported, quick_build.site.parent):
        leftovers = [p for p in folder.rglob("*")
                     if p.name.endswith(atomic.TEMP_SUFFIX)
                     or any(mark in p.name for mark in atomic.WORK_MARKS)]
        assert leftovers == []


# ------------------------------------------------------------ caching

@pytest.mark.slow
def test_a_second_build_with_the_same_inputs_recomputes_nothing(quick_build, tmp_path, caplog):
    before = _files(quick_build.exported)
    caplog.set_level("INFO", logger="site_builder")
    report = build(replace(quick_build.options, site_dir=tmp_path / "site"))
    assert report.ran == {**{name: [] for name in MODELS}, "toy problems": []}
    assert not report.manifest_changed
    assert _files(quick_build.exported) == before            # not one file rewritten
    assert not any("training" in r.getMessage() for r in caplog.records)
    assert not any("validation tasks" in r.getMessage() for r in caplog.records)   # rate reused
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.slow
def test_a_new_seed_retrains_and_makes_later_stages_stale(quick_build, tmp_path):
    exported = _copy_exported(quick_build, tmp_path)
    old = _entries(exported)
    options = quick_options(tmp_path, exported=exported, seed=1, jobs=1)
    report = run_stages(options, ["pretrained-sinusoid"], stages=("train",))
    assert report.ran == {"pretrained-sinusoid": ["train"]}
    new = _entries(exported)
    assert new["pretrained-sinusoid"]["train"]["seed"] == 1
    assert new["pretrained-sinusoid"]["weights"]["sha256"] != old["pretrained-sinusoid"]["weights"]["sha256"]
    assert new["pretrained-sinusoid"]["inputs"]["train"] != old["pretrained-sinusoid"]["inputs"]["train"]
    assert new["maml-sinusoid"] == old["maml-sinusoid"]
    # The results and the figure were computed from the old weights: both rerun,
    # for this model only.
    report = run_stages(options, stages=("evaluate", "figures"))
    assert report.ran == {**{name: [] for name in MODELS}, "pretrained-sinusoid": ["evaluate", "figures"],
                          "toy problems": []}
    # With the same seed again, training is up to date.
    assert run_stages(options, ["pretrained-sinusoid"], stages=("train",)).ran == {
        "pretrained-sinusoid": []}


@pytest.mark.slow
def test_a_changed_config_retrains_and_retrain_forces_it(quick_build, tmp_path, monkeypatch):
    exported = _copy_exported(quick_build, tmp_path)
    monkeypatch.setitem(PROFILES, "quick", replace(PROFILES["quick"], iterations=20))
    options = quick_options(tmp_path, exported=exported, jobs=1)
    one = ["pretrained-sinusoid"]
    assert run_stages(options, one, stages=("train",)).ran == {"pretrained-sinusoid": ["train"]}
    assert _entries(exported)["pretrained-sinusoid"]["train"]["iterations"] == 20
    assert run_stages(options, one, stages=("train",)).ran == {"pretrained-sinusoid": []}
    forced = run_stages(replace(options, retrain=True), one, stages=("train",))
    assert forced.ran == {"pretrained-sinusoid": ["train"]}


def _job(repo_root: Path) -> ModelJob:
    return ModelJob(name="maml-sinusoid", profile="quick", seed=0, device="cpu",
                    exported=repo_root / "exported", repo_root=repo_root, recorded={})


def _rate_from_validation(monkeypatch):
    """iMAML as a model that picks its adaptation rate from candidates on
    validation tasks (none of the registered models does at present)."""
    monkeypatch.setitem(MODELS, "imaml-sinusoid",
                        replace(MODELS["imaml-sinusoid"], adapt_lr=(0.001, 0.0025, 0.01)))


def test_weights_with_no_stable_rate_fail_the_build_with_a_way_on(monkeypatch):
    # A θ so sharp that every candidate rate blows up on some validation task
    # (it can happen to iMAML after a retrain on other hardware) must stop the
    # build with the reason and what to do, not with a bare ValueError.
    from site_builder.stages import adapt_rate

    _rate_from_validation(monkeypatch)
    job = replace(_job(REPO_ROOT), name="imaml-sinusoid")
    spec = MODELS["imaml-sinusoid"]
    cfg = spec.train_config(PROFILES["quick"], 0)
    params = {n: p * 30 for n, p in init_params(torch.Generator().manual_seed(0)).items()}
    with pytest.raises(BuildFailure) as caught:
        adapt_rate(job, {"weights": {"sha256": "0" * 64}}, cfg, params)
    message = str(caught.value)
    assert message.startswith("imaml-sinusoid: every candidate rate")
    assert "--seed" in message and "adapt_lr" in message


def test_weights_with_no_stable_rate_leave_exported_as_it_was(quick_build, tmp_path, monkeypatch):
    # The rate is chosen before the new weights replace the old ones, so a
    # failed choice loses nothing and leaves weights and manifest in step.
    exported = _copy_exported(quick_build, tmp_path)
    before = {path: path.read_bytes() for path in exported.rglob("*") if path.is_file()}

    def no_stable_rate(params, candidates, **kwargs):
        raise ValueError(f"every candidate rate {list(candidates)} diverged on some validation task")

    monkeypatch.setattr("meta.evaluate.choose_inner_lr", no_stable_rate)
    _rate_from_validation(monkeypatch)
    options = quick_options(tmp_path, exported=exported, jobs=1, retrain=True)
    with pytest.raises(BuildFailure, match="^imaml-sinusoid: every candidate rate"):
        run_stages(options, ["imaml-sinusoid"], stages=("train",))
    assert {path: path.read_bytes() for path in exported.rglob("*") if path.is_file()} == before


def test_each_stage_hashes_only_the_code_it_depends_on(tmp_path):
    shutil.copytree(REPO_ROOT / "meta", tmp_path / "meta",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "site_builder").mkdir()
    shutil.copy(REPO_ROOT / "site_builder" / "figures.py", tmp_path / "site_builder")
    job = _job(tmp_path)
    cfg = MODELS[job.name].train_config(PROFILES["quick"], 0)

    def hashes() -> dict[str, str]:
        return {"train": train_hash(job, cfg), **downstream_hashes(job, "ab" * 32, 0.01)}

    def edit(path: str) -> dict[str, bool]:
        before = hashes()
        with open(tmp_path / path, "a") as f:
            f.write("\n# an edit\n")
        after = hashes()
        return {stage: before[stage] != after[stage] for stage in before}

    assert edit("meta/train.py") == {"train": True, "evaluate": False, "export": False, "figures": False}
    assert edit("meta/algorithms/maml.py")["train"]
    assert edit("meta/model.py") == {"train": True, "evaluate": True, "export": True, "figures": False}
    # Training keeps the checkpoint that adapts best on validation tasks, scored by meta/evaluate.py.
    assert edit("meta/evaluate.py") == {"train": True, "evaluate": True, "export": False, "figures": False}
    assert edit("meta/export.py") == {"train": False, "evaluate": False, "export": True, "figures": True}
    assert edit("site_builder/figures.py") == {"train": False, "evaluate": False, "export": False,
                                               "figures": True}
    # Settings count too: seed and config for training, weights for the rest.
    assert train_hash(replace(job, seed=1), cfg) != train_hash(job, cfg)
    assert train_hash(job, replace(cfg, meta_lr=2e-3)) != train_hash(job, cfg)
    assert downstream_hashes(job, "cd" * 32, 0.01) != downstream_hashes(job, "ab" * 32, 0.01)


def test_an_unreadable_manifest_means_rebuild_everything(tmp_path, caplog):
    (tmp_path / "manifest.json").write_text("{ half a manifest")
    assert manifest.read(tmp_path) == {"format": 1, "models": []}
    assert "unreadable" in caplog.text


# ------------------------------------------------------------ atomic writes

def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "model.json"
    atomic.write_json(path, {"a": 1})
    atomic.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json"]
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_an_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch, failing):
    path = tmp_path / "maml-sinusoid.onnx"
    path.write_bytes(b"old graph")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, failing, interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_bytes(path, b"new graph, half written")
    monkeypatch.undo()
    assert path.read_bytes() == b"old graph"
    assert [p.name for p in tmp_path.iterdir()] == ["maml-sinusoid.onnx"]


def test_json_without_nan_and_unchanged_files_keep_their_mtime(tmp_path):
    path = tmp_path / "results.json"
    atomic.write_json(path, {"mse": 1.0})
    with pytest.raises(ValueError):
        atomic.write_json(path, {"mse": float("nan")})
    assert json.loads(path.read_text()) == {"mse": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    mtime = path.stat().st_mtime_ns
    assert not atomic.write_if_changed(path, path.read_bytes())
    assert path.stat().st_mtime_ns == mtime
    assert atomic.write_if_changed(path, b"{}\n")


def test_a_failed_mkdocs_run_leaves_the_previous_site(tmp_path, monkeypatch):
    import mkdocs.commands.build
    from mkdocs.exceptions import Abort

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("the previous site")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n")

    def fail(config, **kwargs):
        (Path(config.site_dir) / "index.html").write_text("half a new site")
        raise Abort("Aborted with 1 warnings in strict mode!")

    monkeypatch.setattr(mkdocs.commands.build, "build", fail)
    with pytest.raises(BuildFailure, match="strict mode"):
        run_mkdocs(REPO_ROOT, docs, site)
    assert (site / "index.html").read_text() == "the previous site"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "site"]


def test_the_fallback_figure_is_deterministic(tmp_path):
    params = init_params(torch.Generator().manual_seed(0))
    first = sine_fit_svg(params, 0.01, "example")
    assert first == sine_fit_svg(params, 0.01, "example")
    assert first.startswith(b"<?xml") and b"<svg" in first
    assert b"dc:date" not in first
    other = init_params(torch.Generator().manual_seed(1))
    assert sine_fit_svg(other, 0.01, "example") != first


# ------------------------------------------------------------ tampered or missing files

@pytest.mark.slow
@pytest.mark.parametrize("file,damage", [
    ("maml-sinusoid.pt", "byte"), ("reptile-sinusoid.onnx", "missing"),
    ("figures/sine-fit-fomaml-sinusoid.svg", "missing"), ("toy-meta.onnx", "byte"),
])
def test_check_fails_naming_a_changed_or_missing_file(quick_build, tmp_path, file, damage):
    exported = _copy_exported(quick_build, tmp_path)
    path = exported / file
    if damage == "byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01                       # one bit of one byte
        path.write_bytes(bytes(data))
        expected = rf"{re.escape(file)} has sha256 [0-9a-f]{{12}}…, the manifest says"
    else:
        path.unlink()
        expected = rf"{re.escape(file)} is missing from {re.escape(str(exported))}"
    with pytest.raises(BuildFailure, match=expected):
        check(exported, REPO_ROOT)


@pytest.mark.slow
def test_the_build_rebuilds_a_changed_or_missing_artifact(quick_build, tmp_path):
    exported = _copy_exported(quick_build, tmp_path)
    graph = exported / "maml-sinusoid.onnx"
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")
    (exported / "figures" / "sine-fit-reptile-sinusoid.svg").unlink()
    (exported / "figures" / "toy-curvature.png").write_bytes(b"not a png")
    report = run_stages(quick_options(tmp_path, exported=exported, jobs=1))
    assert report.stages_run("export") == ["maml-sinusoid"]
    assert report.stages_run("figures") == ["reptile-sinusoid"]
    assert report.ran["toy problems"] == ["toy figures"]
    assert not report.stages_run("train") and not report.stages_run("evaluate")
    # Rebuilt as they were: the same bytes as the untouched build, and check passes.
    original = {p.relative_to(quick_build.exported): p.read_bytes()
                for p in quick_build.exported.rglob("*") if p.is_file()}
    assert {p.relative_to(exported): p.read_bytes() for p in exported.rglob("*") if p.is_file()} == original
    check(exported, REPO_ROOT)


@pytest.mark.slow
def test_a_stage_alone_stops_on_changed_weights_and_names_the_file(quick_build, tmp_path):
    exported = _copy_exported(quick_build, tmp_path)
    weights = exported / "fomaml-sinusoid.pt"
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(BuildFailure, match=r"fomaml-sinusoid: .*fomaml-sinusoid\.pt does not match "
                                           r"the sha256 in the manifest; run `maml-site train "
                                           r"fomaml-sinusoid`"):
        run_stages(quick_options(tmp_path, exported=exported, jobs=1), stages=("export",))


@pytest.mark.slow
def test_the_site_never_ships_a_file_that_does_not_match_the_manifest(quick_build, tmp_path):
    from site_builder.site import stage_docs

    exported = _copy_exported(quick_build, tmp_path)
    results = exported / "maml-sinusoid.results.json"
    results.write_text(results.read_text().replace('"maml"', '"tampered"', 1))
    entries = manifest.read(exported)["models"]
    with pytest.raises(BuildFailure, match=r"maml-sinusoid: .*maml-sinusoid\.results\.json does not "
                                           r"match the sha256 in the manifest, so it is not published"):
        stage_docs(REPO_ROOT, exported, entries, tmp_path / "docs")
    results.unlink()
    with pytest.raises(BuildFailure, match=r"maml-sinusoid\.results\.json is missing, so it cannot "
                                           r"be published"):
        stage_docs(REPO_ROOT, exported, entries, tmp_path / "docs")


# ------------------------------------------------------------ whole-folder replacement

def test_a_folder_is_replaced_as_a_whole_and_leftovers_of_a_killed_build_go(tmp_path):
    target = tmp_path / "exported"
    target.mkdir()
    (target / "manifest.json").write_text("old")
    (target / ".maml-sinusoid.onnx.abc123.tmp").write_text("half a graph")     # a killed write
    (tmp_path / ".exported.staging-xyz").mkdir()                                # a killed build
    (tmp_path / ".exported-notes").mkdir()                                      # not ours
    removed = atomic.remove_leftovers(target)
    assert sorted(p.name for p in removed) == [".exported.staging-xyz", ".maml-sinusoid.onnx.abc123.tmp"]
    work = atomic.work_dir(target, ".staging-")
    atomic.link_copy(target, work)
    assert (work / "manifest.json").stat().st_ino == (target / "manifest.json").stat().st_ino
    atomic.write_text(work / "manifest.json", "new")          # replaces the link, not the file
    assert (target / "manifest.json").read_text() == "old"
    atomic.replace_dir(work, target)
    assert (target / "manifest.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".exported-notes", "exported"]
    assert target.stat().st_mode & 0o777 == 0o755


def test_nothing_to_do_leaves_the_exported_folder_itself_untouched(tmp_path, monkeypatch):
    # With every stage current, run_stages must not swap in a copy (the
    # folder, its mtimes and inodes stay), and leaves no work folder.
    import site_builder.build as pipeline

    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "manifest.json").write_text('{"format": 1, "models": []}\n')
    inode = exported.stat().st_ino

    def nothing(options, names, stages):
        return pipeline.BuildReport(ran={name: [] for name in names}), []

    monkeypatch.setattr(pipeline, "_run_stages_in", nothing)
    pipeline.run_stages(quick_options(tmp_path, exported=exported))
    assert exported.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]
