"""The static figure of "Watch it learn" (site_builder/watch_figure.py): the
live widget's run for the page's seed, done by the build with the same graphs,
and shown in the widget's place where it cannot run.

The figure's tasks and θ₀ come from Python ports of the page's seeded
generator (docs/javascripts/lib/seeded.js), held here to the JavaScript under
Node.js; the build renders it once per change of its inputs, as a palette PNG
with the same bytes for the same inputs, and the Comparison page shows it
inside the widget's element. (tests/test_watch_it_learn.py holds the figure's
run to the live widget's in the browser and checks the page without
JavaScript.)
"""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from site_builder import manifest
from site_builder.config import REPO_ROOT
from site_builder.meta_step_stage import FIT1_NAME, graph_names, run_meta_step_stage
from site_builder.watch_figure import (EXAMPLE, FIGURE, HELD_OUT, RUN, SeededRandom, initial_params,
                                       live_run, sinusoid_batch)

SEEDED_JS = REPO_ROOT / "docs" / "javascripts" / "lib" / "seeded.js"
WIDGET_JS = REPO_ROOT / "docs" / "javascripts" / "widgets" / "watch-it-learn.js"
FAMILY = {"amplitude": [0.1, 5.0], "phase": [0.0, 3.14159], "x": [-5.0, 5.0]}


def _node(tmp_path, body: str):
    """Run `body` (an ES module importing seededRandom, sinusoidBatch, initialParams) under Node.js."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not on PATH (the build needs it too)")
    module = tmp_path / "seeded.mjs"
    module.write_text(SEEDED_JS.read_text(encoding="utf-8"), encoding="utf-8")
    script = tmp_path / "run.mjs"
    script.write_text('import { seededRandom, sinusoidBatch, initialParams } from "./seeded.mjs";\n' + body,
                      encoding="utf-8")
    out = subprocess.run([node, str(script)], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def test_the_python_generator_draws_what_the_pages_draws(tmp_path):
    """The same floats for every seed and stream, the same task batches and
    the same θ₀ as seeded.js: the figure's run starts where the reader's does."""
    cases = [[1, "tasks"], [1, "theta"], [2, "tasks"], [20260312, "held-out"], [0, ""], [4294967295, "é-ü"],
             [-3, "tasks"]]
    got = _node(tmp_path, f"""
const cases = {json.dumps(cases)};
const draws = cases.map(([seed, stream]) => {{ const r = seededRandom(seed, stream);
  return Array.from({{ length: 200 }}, () => r()); }});
const family = {json.dumps(FAMILY)};
const b = sinusoidBatch(seededRandom(7, "tasks"), family, 25, 10, 10);
const batch = Object.fromEntries(["support_x", "support_y", "query_x", "query_y"].map((k) => [k, Array.from(b[k])]));
const theta = Array.from(initialParams(seededRandom(1, "theta")));
console.log(JSON.stringify({{ draws, batch, theta }}));
""")
    for (seed, stream), expected in zip(cases, got["draws"]):
        random = SeededRandom(seed, stream)
        assert [random() for _ in range(200)] == expected, (seed, stream)       # bit for bit
    batch = sinusoid_batch(SeededRandom(7, "tasks"), FAMILY, 25, 10, 10)
    for key in ("support_x", "query_x"):
        assert batch[key].shape == (25, 10, 1)
        assert batch[key].ravel().tolist() == got["batch"][key], key
    for key in ("support_y", "query_y"):           # Math.sin and libm may differ in the last bit
        np.testing.assert_allclose(batch[key].ravel(), got["batch"][key], rtol=0, atol=1e-6)
    theta = initial_params(SeededRandom(1, "theta"))
    assert theta.dtype == np.float32 and theta.tolist() == got["theta"]


def test_the_figures_constants_are_the_widgets():
    """The example task, the held-out tasks and the evaluation interval are the
    widget's own (watch-it-learn.js), and the page's seed and text are the run's."""
    js = WIDGET_JS.read_text(encoding="utf-8")
    example = re.search(r"const EXAMPLE = \{ a: ([\d.]+), phase: ([\d.]+), xs: \[([^\]]+)\] \};", js)
    assert example, "watch-it-learn.js has no EXAMPLE line of the expected form"
    assert float(example[1]) == EXAMPLE["a"] and float(example[2]) == EXAMPLE["phase"]
    assert tuple(float(v) for v in example[3].split(",")) == EXAMPLE["xs"]
    assert f"const EXAMPLE_POINTS = {EXAMPLE['points']};" in js
    assert (f"HELD_OUT = {{ seed: {HELD_OUT['seed']}, tasks: {HELD_OUT['tasks']}, shots: {HELD_OUT['shots']}, "
            f"points: {HELD_OUT['points']} }};") in js
    assert f"const EVAL_EVERY = {RUN['eval_every']};" in js
    page = (REPO_ROOT / "docs" / "comparison.md").read_text(encoding="utf-8")
    assert f'data-widget="watch-it-learn" data-seed="{RUN["seed"]}"' in page
    assert "](assets/figures/watch-it-learn.png)" in page
    assert f"first {RUN['iterations']:,}" in page and f"from seed {RUN['seed']}" in page


@pytest.fixture(scope="module")
def stage(quick_build):
    data = manifest.read(quick_build.exported)
    return quick_build.exported, manifest.entries_by_name(data)


def test_the_build_renders_the_figure_as_a_palette_png_and_the_site_shows_it_in_the_widget(stage, quick_build):
    exported, entries = stage
    entry = entries[FIT1_NAME]
    assert graph_names()[-1] == FIT1_NAME and entry["steps"] == 1
    assert [r["file"] for r in entry["figures"]] == [FIGURE]
    data = (exported / FIGURE).read_bytes()
    assert entry["figures"][0]["sha256"] == manifest_sha(data)
    picture = Image.open(io.BytesIO(data))
    assert picture.mode == "P" and picture.width >= 600 and 0.6 < picture.height / picture.width < 1.0
    assert len(data) < 60_000
    assert (quick_build.site / "assets" / "figures" / "watch-it-learn.png").read_bytes() == data
    html = (quick_build.site / "comparison" / "index.html").read_text(encoding="utf-8")
    widget = re.search(r'<div class="widget"[^>]* data-widget="watch-it-learn"[^>]*>(.*?)</div>', html, re.S)
    assert widget and 'src="../assets/figures/watch-it-learn.png"' in widget[1]


def manifest_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_the_figure_is_rendered_once_per_change_of_its_inputs(stage, tmp_path, monkeypatch):
    """Nothing is redone when the graphs and the code are as recorded; a lost
    figure, or another run setting, renders it again (the same bytes when
    nothing it shows changed)."""
    import site_builder.watch_figure as watch

    exported, entries = stage
    copy = tmp_path / "exported"
    shutil.copytree(exported, copy)
    calls = []
    real = watch.render
    monkeypatch.setattr(watch, "render", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(watch, "RUN", {**watch.RUN, "iterations": 30})      # a short run: seconds
    new, ran = run_meta_step_stage(copy, REPO_ROOT, entries)
    assert ran == [f"{FIT1_NAME}: figures"] and len(calls) == 1             # the setting changed
    first = (copy / FIGURE).read_bytes()
    again, ran = run_meta_step_stage(copy, REPO_ROOT, {**entries, **new})
    assert ran == [] and len(calls) == 1 and again[FIT1_NAME]["figures"] == new[FIT1_NAME]["figures"]
    (copy / FIGURE).unlink()
    again, ran = run_meta_step_stage(copy, REPO_ROOT, {**entries, **new})
    assert ran == [f"{FIT1_NAME}: figures"] and (copy / FIGURE).read_bytes() == first


def test_the_figures_run_is_the_live_run(stage):
    """One θ₀ and one batch stream for all four: at iteration 0 every model has
    the same held-out error, MAML and first-order MAML the same first query
    loss; the run is deterministic, and MAML's one-step error falls."""
    exported, entries = stage
    run = {**RUN, "iterations": 200}
    result = live_run(exported, entries, run)
    again = live_run(exported, entries, run)
    for alg, losses in result["losses"].items():
        assert losses.shape == (200,) and np.isfinite(losses).all(), alg
        assert losses.tolist() == again["losses"][alg].tolist()
    assert result["losses"]["maml"][0] == pytest.approx(result["losses"]["fomaml"][0], rel=1e-6)
    assert [it for it, _ in result["heldout"]] == [0, 100, 200]
    start, end = result["heldout"][0][1], result["heldout"][-1][1]
    assert len({round(v, 9) for v in start.values()}) == 1
    assert end["maml"] < start["maml"]
    assert all(np.isfinite(v).all() and v.shape == (EXAMPLE["points"],) for v in result["fit"].values())


def test_the_one_step_graph_is_the_ten_step_graphs_first_two_rows(stage):
    """theta-fit-1 (what the live run and the figure measure with) computes
    rows 0 and 1 of theta-fit, to the bit, and its entry says S = 1."""
    from meta.theta_fit import run_fit

    exported, entries = stage
    rng = np.random.default_rng(3)
    theta = initial_params(SeededRandom(5, "theta"))
    feeds = {"params": theta[None] + rng.normal(0, 0.05, (40, theta.size)).astype(np.float32),
             "support_x": rng.uniform(-5, 5, (40, 5, 1)), "query_x": rng.uniform(-5, 5, (40, 50, 1)),
             "inner_lr": entries[FIT1_NAME]["inner_lr"]}
    feeds["support_y"] = 2 * np.sin(feeds["support_x"] + 1.0)
    one = run_fit(exported / entries[FIT1_NAME]["file"], feeds)
    ten = run_fit(exported / entries["theta-fit"]["file"], feeds)
    assert one["query_y"].shape == (2, 40, 50, 1)
    assert np.array_equal(one["query_y"], ten["query_y"][:2])
    assert np.array_equal(one["support_loss"], ten["support_loss"][:2])
    outputs = {o["name"]: o["meaning"] for o in entries[FIT1_NAME]["graph"]["outputs"]}
    assert "(S = 1)" in outputs["query_y"] and "(S = 10)" in entries["theta-fit"]["graph"]["outputs"][0]["meaning"]
