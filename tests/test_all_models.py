"""The "every model on your samples" widget (Comparison page) and its static figure.

The widget runs every sinusoid model's exported graph on the reader's
samples; these tests hold it to the single-model sine-fit widget and to
onnxruntime in Python on the same graphs, and check its figure generator.
"""
from __future__ import annotations

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
from browser_support import READY_TIMEOUT_MS

from site_builder import all_models
from site_builder.errors import BuildFailure
from site_builder.generated import Staging

SAMPLES = [-4.1, -2.3, -0.4, 1.7, 3.6]
AMPLITUDE, PHASE = 2.2, 1.3
WIDGET = "[data-widget='all-models']"


def staging_for(quick_build, tmp_path) -> Staging:
    entries = json.loads((quick_build.exported / "manifest.json").read_text())["models"]
    return Staging(repo_root=quick_build.exported.parent, exported=quick_build.exported, entries=entries,
                   docs=tmp_path / "docs")


def sinusoid_entries(quick_build) -> list[dict]:
    entries = json.loads((quick_build.exported / "manifest.json").read_text())["models"]
    return [e for e in entries if e["task"]["family"] == "sinusoid"]


def python_run(quick_build, entry, xs, amplitude, phase, query_x):
    session = ort.InferenceSession(str(quick_build.exported / entry["file"]), providers=["CPUExecutionProvider"])
    sx = np.array(xs, dtype=np.float32).reshape(-1, 1)
    sy = (amplitude * np.sin(sx.astype(np.float64) + phase)).astype(np.float32)
    return session.run(["query_y", "support_loss"], {
        "support_x": sx, "support_y": sy, "query_x": np.asarray(query_x, dtype=np.float32).reshape(-1, 1),
        "inner_lr": np.array(entry["inner_lr"], dtype=np.float32)})


# ------------------------------------------------------------------ the figure

def test_the_block_becomes_the_widget_with_a_figure_of_every_model(quick_build, tmp_path):
    staging = staging_for(quick_build, tmp_path)
    text = "Before\n\n<!-- all-models:widget -->\n\nAfter\n"
    out = all_models.render(text, staging, "comparison.md")
    assert '<div class="widget" data-widget="all-models" data-steps="1" markdown>' in out
    assert "](assets/figures/all-models.svg)" in out
    figure = (staging.docs / "assets/figures/all-models.svg").read_bytes()
    assert figure.startswith(b"<?xml") and b"<svg" in figure
    # One legend entry per sinusoid model, by its algorithm's label.
    for entry in sinusoid_entries(quick_build):
        assert all_models.LABELS[entry["algorithm"]].encode() in figure
    # Deterministic: the same models give the same bytes.
    again = tmp_path / "again"
    all_models.render(text, Staging(staging.repo_root, staging.exported, staging.entries, again), "comparison.md")
    assert (again / "assets/figures/all-models.svg").read_bytes() == figure


def test_an_unknown_block_names_the_allowed_one(quick_build, tmp_path):
    with pytest.raises(BuildFailure, match=r"comparison.md: unknown block <!-- all-models:table -->; allowed: widget"):
        all_models.render("<!-- all-models:table -->\n", staging_for(quick_build, tmp_path), "comparison.md")


def test_a_graph_that_cannot_run_fails_the_build_naming_its_file(quick_build, tmp_path):
    exported = tmp_path / "exported"
    exported.mkdir()
    manifest = json.loads((quick_build.exported / "manifest.json").read_text())
    (exported / "manifest.json").write_text(json.dumps(manifest))
    for entry in manifest["models"]:
        (exported / entry["file"]).write_bytes(b"not an onnx graph")
    staging = Staging(tmp_path, exported, manifest["models"], tmp_path / "docs")
    with pytest.raises(BuildFailure, match=r"the all-models figure could not run pretrained-sinusoid\.onnx"):
        all_models.widget_block(staging)


# ------------------------------------------------------------------ the widget

def open_widget(page, url):
    page.goto(url)
    page.wait_for_load_state("load")
    widget = page.locator(WIDGET)
    widget.scroll_into_view_if_needed()
    page.wait_for_selector(WIDGET + "[data-state='ready']", state="attached", timeout=READY_TIMEOUT_MS)
    return widget


def set_task_and_samples(page, selector, prop, amplitude, phase, xs):
    page.evaluate("""([selector, prop, a, p, xs]) => {
        const w = document.querySelector(selector)[prop];
        if (w.setTask) { w.setTask(a, p); } else { w.amplitude = a; w.phase = p; }
        w.setSamples(xs);
    }""", [selector, prop, amplitude, phase, xs])
    page.wait_for_function("""([selector, prop]) => {
        const el = document.querySelector(selector);
        const w = el[prop];
        return el.dataset.state === 'ready' && !w.running && w.result && w.result.sampleCount === w.samples.length;
    }""", arg=[selector, prop], timeout=READY_TIMEOUT_MS)


def widget_rows(page):
    return page.evaluate("""() => {
        const w = document.querySelector("[data-widget='all-models']").allModels;
        return {names: w.models.map((m) => m.name), queryX: Array.from(w.queryX),
                rows: w.result.rows.map((r) => ({queryY: r.queryY.map((q) => Array.from(q)),
                                                 supportLoss: r.supportLoss}))};
    }""")


@pytest.mark.browser
def test_every_model_matches_onnxruntime_in_python_on_the_same_samples(page, log, site_url, quick_build):
    open_widget(page, site_url + "comparison/")
    set_task_and_samples(page, WIDGET, "allModels", AMPLITUDE, PHASE, SAMPLES)
    got = widget_rows(page)
    entries = sinusoid_entries(quick_build)
    assert got["names"] == [e["name"] for e in entries]
    for entry, row in zip(entries, got["rows"]):
        query_y, support_loss = python_run(quick_build, entry, SAMPLES, AMPLITUDE, PHASE, got["queryX"])
        np.testing.assert_allclose(np.array(row["queryY"]), query_y[:, :, 0], atol=1e-4, rtol=1e-4,
                                   err_msg=entry["name"])
        np.testing.assert_allclose(row["supportLoss"], support_loss, atol=1e-5, rtol=1e-4, err_msg=entry["name"])
    log.assert_clean()


@pytest.mark.browser
def test_its_predictions_are_the_single_model_widgets_predictions(page, site_url):
    """Same task, same samples: the MAML and pretrained rows equal what the
    sine-fit widgets of How MAML works compute for those models."""
    page.goto(site_url + "how-maml-works/")
    single = {}
    for model in ("pretrained-sinusoid", "maml-sinusoid"):
        selector = f"[data-widget='sine-fit'][data-model='{model}']"
        page.locator(selector).scroll_into_view_if_needed()
        page.wait_for_selector(selector + "[data-state='ready']", state="attached", timeout=READY_TIMEOUT_MS)
        set_task_and_samples(page, selector, "sineFit", AMPLITUDE, PHASE, SAMPLES)
        single[model] = page.evaluate(
            "(s) => document.querySelector(s).sineFit.result.queryY.map((q) => Array.from(q))", selector)
    open_widget(page, site_url + "comparison/")
    set_task_and_samples(page, WIDGET, "allModels", AMPLITUDE, PHASE, SAMPLES)
    got = widget_rows(page)
    for model, rows in single.items():
        mine = got["rows"][got["names"].index(model)]["queryY"]
        assert np.array(mine).shape == np.array(rows).shape
        np.testing.assert_array_equal(np.array(mine), np.array(rows), err_msg=model)


@pytest.mark.browser
def test_steps_slider_table_and_support_loss_curves(page, log, site_url):
    widget = open_widget(page, site_url + "comparison/")
    set_task_and_samples(page, WIDGET, "allModels", AMPLITUDE, PHASE, SAMPLES)
    steps = widget.locator("input.sine-fit-steps")
    assert steps.get_attribute("max") == "10"
    for value in ("0", "10", "3"):
        steps.fill(value)
        drawn = page.evaluate("""() => Array.from(document.querySelectorAll(
            "[data-widget='all-models'] path.all-models-curve"), (p) => p.dataset.steps)""")
        assert drawn == [value] * len(drawn) and len(drawn) >= 5
    # The table's support error at step 3 is each model's support_loss[3].
    got = widget_rows(page)
    cells = widget.locator("tbody tr td:nth-child(3)").all_text_contents()
    expected = [f"{row['supportLoss'][3]:.3f}" for row in got["rows"]]
    assert cells == expected
    # Every model has a support-loss curve with one point per step (log scale: 11 points).
    for path in widget.locator("path.all-models-loss-curve").all():
        assert path.get_attribute("d").count("L") == 10
    log.assert_clean()


@pytest.mark.browser
def test_bad_input_is_clamped_and_nothing_draws_nan(page, log, site_url):
    widget = open_widget(page, site_url + "comparison/")
    # Six samples, one outside the range and one not a number: five are kept, inside [-5, 5].
    set_task_and_samples(page, WIDGET, "allModels", 99, -3, [-9, -2, 0, 1, float("nan"), 2, 7])
    state = page.evaluate("() => { const w = document.querySelector(\"[data-widget='all-models']\").allModels;"
                          " return {samples: w.samples, a: w.amplitude, p: w.phase}; }")
    assert state["samples"] == [-2, 0, 1, 2, 5]
    assert state["a"] == 5.0 and state["p"] == 0.0
    for value in ("0", "10"):
        widget.locator("input.sine-fit-steps").fill(value)
        svg = widget.inner_html()
        assert "NaN" not in svg and "Infinity" not in svg
    # A click on the tick labels, left of the axes, takes no sample.
    plot = widget.locator("svg.widget-plot").first
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + box["height"] / 2)
    page.wait_for_timeout(200)
    assert widget.get_attribute("data-samples") == "5"
    log.assert_clean()


@pytest.mark.browser
def test_a_click_inside_the_axes_takes_a_sample_on_the_task_curve(page, site_url):
    widget = open_widget(page, site_url + "comparison/")
    widget.locator("button.sine-fit-clear").click()
    plot = widget.locator("svg.widget-plot").first
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3)
    page.wait_for_selector(WIDGET + "[data-samples='1'][data-state='ready']", state="attached")
    x, y = page.evaluate("() => { const w = document.querySelector(\"[data-widget='all-models']\").allModels;"
                         " const x = w.samples[0]; return [x, w.target(x)]; }")
    assert -1 < x < 1 and math.isfinite(y)
