"""The toy problems' graphs and figures as the build writes them.

Uses the session's quick build (tests/conftest.py): its exported/ holds the
three toy graphs (toy-landscape, toy-meta, toy-curvature), the accumulated
meta-loss frames and the widgets' fallback figures, listed in the manifest.
The graphs are held to the PyTorch code of meta/toy.py in float64.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from meta import toy
from meta.toy_export import GRAPHS, parity_error, parity_feeds, reference_outputs, run_toy
from site_builder import manifest
from site_builder.check import PARITY_TOLERANCE, check
from site_builder.config import MODELS, REPO_ROOT
from site_builder.errors import BuildFailure
from site_builder.hashing import file_sha256
from site_builder.toy_figures import FIGURES_BY_GRAPH, MINIMA, GRID
from site_builder.toy_stage import run_toy_stages

pytestmark = pytest.mark.slow
TASKS = np.asarray(toy.TOY_TASKS, dtype=np.float32)


@pytest.fixture(scope="module")
def exported(quick_build):
    return quick_build.exported


@pytest.fixture(scope="module")
def entries(exported):
    return manifest.entries_by_name(manifest.read(exported))


def meta_feeds(**changes):
    feeds = {"theta": np.float32([0.2, 0.8]), "task_params": TASKS, "inner_lr": np.float32(0.1),
             "inner_steps": np.float32(3), "lam": np.float32(1.0), "cg_steps": np.float32(10)}
    feeds.update({k: np.asarray(v, dtype=np.float32) for k, v in changes.items()})
    return feeds


def run(exported, name, feeds):
    return run_toy(exported / f"{name}.onnx", name, feeds)


def test_manifest_lists_each_toy_graph_with_its_signature_and_figures(exported, entries):
    names = [m["name"] for m in manifest.read(exported)["models"]]
    assert names[:len(MODELS) + len(GRAPHS)] == list(MODELS) + list(GRAPHS)   # then the meta-step graphs
    for name, graph in GRAPHS.items():
        entry = entries[name]
        assert entry["task"]["family"] in ("softplus-toy", "quadratic")
        assert entry["task"]["family"] != "sinusoid"
        assert entry["file"] == f"{name}.onnx"
        assert entry["sha256"] == file_sha256(exported / entry["file"])
        assert entry["graph"] == graph.signature()
        assert [r["file"] for r in entry["figures"]] == FIGURES_BY_GRAPH[name]
        for record in entry["figures"]:
            assert record["sha256"] == file_sha256(exported / record["file"])
        # The graph's real inputs and outputs are the ones the manifest documents.
        model = onnx.load(exported / entry["file"])
        assert [i.name for i in model.graph.input] == graph.input_names
        assert [o.name for o in model.graph.output] == graph.output_names
    assert entries["toy-landscape"]["task"]["tasks"] == [list(t) for t in toy.TOY_TASKS]


@pytest.mark.parametrize("name", list(GRAPHS))
def test_every_toy_graph_matches_pytorch(exported, name):
    assert parity_error(exported / f"{name}.onnx", name) <= PARITY_TOLERANCE


def test_check_covers_the_toy_graphs_and_names_a_damaged_one(exported, tmp_path):
    check(exported, REPO_ROOT)
    copy = tmp_path / "exported"
    shutil.copytree(exported, copy)
    frame = copy / FIGURES_BY_GRAPH["toy-landscape"][3]
    frame.write_bytes(frame.read_bytes() + b"\0")
    with pytest.raises(BuildFailure, match=r"toy-landscape: figures/toy-accumulated-m03\.png has sha256"):
        check(copy, REPO_ROOT)


def test_accumulated_frames_fit_the_budget_and_their_minima_are_pytorchs(exported):
    frames = [exported / f for f in FIGURES_BY_GRAPH["toy-landscape"] if f.endswith(".png")]
    assert len(frames) == toy.TOY_MAX_STEPS + 1 == 21
    total = sum(f.stat().st_size for f in frames)
    print(f"accumulated meta-loss frames: {total / 1e6:.2f} MB for {len(frames)} frames")
    assert total <= 1.5e6
    record = json.loads((exported / MINIMA).read_text())
    a, b = np.meshgrid(np.linspace(0, 1, GRID), np.linspace(0, 1, GRID))
    points = torch.tensor(np.stack([a.ravel(), b.ravel()], 1))
    acc = toy.accumulated_loss(points, toy.tasks_tensor(dtype=torch.float64), record["inner_lr"],
                               toy.TOY_MAX_STEPS)
    for m, minimum in enumerate(record["minima"]):
        best = int(torch.argmin(acc[m]))
        assert minimum["m"] == m
        assert minimum["theta"] == pytest.approx(points[best].tolist(), abs=1e-4)
    # The minimum moves away from the pretrained optimum (m = 0) as m grows.
    first, last = record["minima"][0]["theta"], record["minima"][-1]["theta"]
    assert np.hypot(first[0] - last[0], first[1] - last[1]) > 0.3


def test_a_second_run_with_the_same_inputs_writes_nothing(exported, entries, tmp_path):
    copy = tmp_path / "exported"
    shutil.copytree(exported, copy)
    new, ran = run_toy_stages(copy, REPO_ROOT, entries)
    assert ran == []
    assert {n: e["sha256"] for n, e in new.items()} == {n: entries[n]["sha256"] for n in GRAPHS}


# ------------------------------------------------------ what the widgets rely on

def test_curvature_zero_makes_true_and_first_order_gradients_equal(exported):
    feeds = parity_feeds("toy-curvature")[1]
    assert not feeds["curvature"].any()
    out = run(exported, "toy-curvature", feeds)
    np.testing.assert_array_equal(out["gradient"], out["first_order"])
    feeds = parity_feeds("toy-curvature")[0]
    out = run(exported, "toy-curvature", feeds)
    assert np.abs(out["gradient"] - out["first_order"]).max() > 0.1


def test_reptile_with_one_step_is_a_plain_gradient_step(exported):
    out = run(exported, "toy-meta", meta_feeds(inner_steps=1, inner_lr=0.3))
    zero = run(exported, "toy-meta", meta_feeds(inner_steps=0, inner_lr=0.3))
    # θ − ϕ_1 = α ∇L(θ), and FOMAML with m = 0 is ∇L(θ).
    np.testing.assert_allclose(out["reptile"], 0.3 * zero["fomaml"], atol=1e-6)
    np.testing.assert_allclose(out["trajectory"][:, 1], np.float32([0.2, 0.8]) - out["reptile"],
                               atol=1e-6)


def test_more_cg_iterations_come_closer_to_the_exact_implicit_gradient(exported):
    errors = []
    for k in range(4):
        out = run(exported, "toy-meta", meta_feeds(cg_steps=k, lam=0.5, inner_steps=10))
        errors.append(float(np.abs(out["imaml"] - out["imaml_exact"]).max()))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-5 and errors[3] < 1e-5
    reference = reference_outputs("toy-meta", meta_feeds(lam=0.5, inner_steps=10))
    np.testing.assert_allclose(out["imaml_exact"], reference["imaml_exact"], atol=1e-5)


def test_step_counts_are_rounded_and_clamped_and_any_number_of_tasks_works(exported):
    high = run(exported, "toy-meta", meta_feeds(inner_steps=99))
    top = run(exported, "toy-meta", meta_feeds(inner_steps=toy.TOY_GRAPH_STEPS))
    np.testing.assert_array_equal(high["maml"], top["maml"])
    low = run(exported, "toy-meta", meta_feeds(inner_steps=-3))
    np.testing.assert_allclose(low["reptile"], 0.0, atol=0)
    rounded = run(exported, "toy-meta", meta_feeds(inner_steps=2.6))
    np.testing.assert_array_equal(rounded["maml"], run(exported, "toy-meta", meta_feeds(inner_steps=3))["maml"])
    for count in (1, 3):
        tasks = np.float32([[0.3, 0.05], [0.83, 0.75], [0.6, 0.2]])[:count]
        out = run(exported, "toy-meta", meta_feeds(task_params=tasks))
        assert out["trajectory"].shape == (count, toy.TOY_GRAPH_STEPS + 1, 2)
        assert out["meta_gradient"].shape == (4, 2)
        np.testing.assert_allclose(out["meta_gradient"][0], out["maml"].mean(0), atol=1e-6)
        land = run(exported, "toy-landscape", {"points": np.float32([[0.1, 0.2]]), "task_params": tasks,
                                               "anchor": np.float32([0, 0]), "lam": np.float32(0)})
        assert land["loss"].shape == (count, 1)


def test_graph_outputs_are_finite_at_the_widgets_extremes(exported):
    for lam in (0.0, 100.0):
        for lr in (0.0, 1.0):
            out = run(exported, "toy-meta", meta_feeds(lam=lam, inner_lr=lr, inner_steps=10,
                                                       theta=[1.0, 0.0]))
            assert all(np.isfinite(v).all() for v in out.values()), (lam, lr)


def test_toy_figures_are_palette_pngs_close_to_the_rendered_picture(exported):
    """The toy figures ship as palette PNGs (issue 11: the site under 20 MB):
    every one in the build and in the committed exported/ is mode "P" with
    transparency, and the palette moves no channel of a rendered figure by
    more than 32/255, the same bytes on every call."""
    import io

    from matplotlib.figure import Figure
    from PIL import Image

    from site_builder.toy_figures import _palette_png

    for folder in (exported / "figures", REPO_ROOT / "exported" / "figures"):
        pngs = sorted(folder.glob("toy-*.png"))
        assert len(pngs) >= 21, f"{folder}: {len(pngs)} toy figures"
        for path in pngs:
            with Image.open(path) as picture:
                assert picture.mode == "P" and "transparency" in picture.info, path.name

    fig = Figure(figsize=(3, 3))
    ax = fig.add_subplot()
    a, b = np.meshgrid(np.linspace(-2, 2, 200), np.linspace(-2, 2, 200))
    ax.contour(a, b, a**2 + 3 * b**2, levels=14)
    ax.set_title("θ and ϕ")
    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=100)
    palette = _palette_png(raw.getvalue())
    assert palette == _palette_png(raw.getvalue())
    assert len(palette) < len(raw.getvalue())
    before = np.asarray(Image.open(io.BytesIO(raw.getvalue())).convert("RGBA"), dtype=int)
    after = np.asarray(Image.open(io.BytesIO(palette)).convert("RGBA"), dtype=int)
    assert before.shape == after.shape
    assert np.abs(before - after).max() <= 32
