"""The built site in a real browser (Debian's Chromium driven by Playwright).

What a reader does and sees: the sinusoid widget runs the exported ONNX graph
with onnxruntime-web and fits the samples the reader clicks; the dice and the
sixth-sample rule; keyboard input; KaTeX typesets every formula; the ONNX
runtime is fetched only by pages with widgets; a widget that cannot load its runtime says so
and keeps the static figure; and no page contacts another host or logs an
error to the console.

Uses the fixtures of tests/conftest.py: ``built_site`` (the path of a site
built with the quick profile), ``site_url`` (that site served on 127.0.0.1),
``log`` and ``touch_page``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from browser_support import PageLog, wait_widget

pytestmark = pytest.mark.browser

PAGE = "how-maml-works/"
MAML = '[data-widget="sine-fit"][data-model="maml-sinusoid"]'
PRETRAINED = '[data-widget="sine-fit"][data-model="pretrained-sinusoid"]'


# ---------------------------------------------------------------- helpers

def wait_ready(page, selector, samples=None):
    """Bring the widget into view; wait until it has drawn predictions for the current input."""
    condition = "[data-state='ready']" + (f"[data-samples='{samples}']" if samples is not None else "")
    return wait_widget(page, selector, condition)


def path_points(widget, css_class):
    """The (x, y) vertices, in SVG units, of a drawn curve."""
    d = widget.locator(f"path.{css_class}").get_attribute("d")
    points = np.array(re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d), dtype=float)
    assert len(points) > 100, f"{css_class} has only {len(points)} points"
    return points


def curve_at(points, xs):
    """The drawn curve's height at the given x positions (SVG units)."""
    return np.interp(xs, points[:, 0], points[:, 1])


def sample_points(widget):
    circles = widget.locator("circle.sine-fit-sample")
    return np.array([[float(c.get_attribute("cx")), float(c.get_attribute("cy"))]
                     for c in circles.all()])


def plot_frame(widget):
    """Screen box of the plot area (the frame of the axes)."""
    box = widget.locator("rect.widget-frame").bounding_box()
    assert box and box["width"] > 100, f"the plot is not laid out: {box}"
    return box


def click_plot(page, widget, fx, fy=0.5):
    """Click at fractions (fx, fy) of the plot area, and wait for the redraw."""
    box = plot_frame(widget)
    count = int(widget.get_attribute("data-samples"))
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    return min(count + 1, 5)


def widget_state(widget):
    return widget.evaluate("""el => ({
        samples: el.sineFit.samples,
        amplitude: el.sineFit.amplitude,
        phase: el.sineFit.phase,
        innerLr: el.sineFit.innerLr,
        queryX: el.sineFit.queryX,
        supportLoss: el.sineFit.result.supportLoss,
        pxPerUnitY: (el.sineFit.plot.y(0) - el.sineFit.plot.y(1)),
        area: el.sineFit.plot.area,
        yOfZero: el.sineFit.plot.y(0),
    })""")


def open_page(page, site_url, path=PAGE):
    page.goto(site_url + path)
    page.wait_for_load_state("load")


# ---------------------------------------------------------------- tests

def test_clicked_samples_pull_the_maml_prediction_towards_them(page, log, site_url, built_site):
    open_page(page, site_url)
    widget = wait_ready(page, MAML, samples=0)
    widget.scroll_into_view_if_needed()
    # No samples: "after" is the untuned model, identical to "before".
    untuned = path_points(widget, "sine-fit-after")
    np.testing.assert_allclose(untuned, path_points(widget, "sine-fit-before"), atol=0.01)

    for fx in (0.2, 0.5, 0.8):
        expected = click_plot(page, widget, fx)
        wait_ready(page, MAML, samples=expected)
    # Ten fine-tuning steps, set with the keyboard on the native slider.
    widget.locator("input.sine-fit-steps").focus()
    page.keyboard.press("End")
    page.wait_for_selector(MAML + " path.sine-fit-after[data-steps='10']", state="attached")

    samples = sample_points(widget)
    assert samples.shape == (3, 2)
    state = widget_state(widget)
    # Each sample sits at the clicked x, on the red task curve.
    area = state["area"]
    clicked_x = [area["left"] + f * (area["right"] - area["left"]) for f in (0.2, 0.5, 0.8)]
    np.testing.assert_allclose(samples[:, 0], clicked_x, atol=1.0)
    data_x = np.array(state["samples"])
    np.testing.assert_allclose(data_x, [-3.0, 0.0, 3.0], atol=0.05)
    task_y = state["amplitude"] * np.sin(data_x + state["phase"])
    np.testing.assert_allclose(samples[:, 1], state["yOfZero"] - task_y * state["pxPerUnitY"], atol=0.02)

    before = path_points(widget, "sine-fit-before")
    after = path_points(widget, "sine-fit-after")
    np.testing.assert_allclose(before, untuned, atol=0.01)    # "before" is still the untuned model
    msd_before = np.mean((curve_at(before, samples[:, 0]) - samples[:, 1]) ** 2)
    msd_after = np.mean((curve_at(after, samples[:, 0]) - samples[:, 1]) ** 2)
    assert msd_after < 0.5 * msd_before, (
        f"after 10 steps the curve is not closer to the samples: mean squared distance "
        f"{msd_after:.1f} px² vs {msd_before:.1f} px² before fine-tuning")

    # What is drawn is what the graph computed: the distances in data units
    # match the support loss the graph reported for 0 and 10 steps.
    scale = state["pxPerUnitY"] ** 2
    assert msd_before / scale == pytest.approx(state["supportLoss"][0], rel=0.02, abs=1e-3)
    assert msd_after / scale == pytest.approx(state["supportLoss"][10], rel=0.05, abs=2e-3)

    # And the browser's onnxruntime-web agrees with Python's onnxruntime on the same graph.
    drawn_after = (state["yOfZero"] - after[:, 1]) / state["pxPerUnitY"]
    reference = run_reference(built_site, "maml-sinusoid", state)
    np.testing.assert_allclose(drawn_after, reference[10], atol=2e-3)
    log.assert_clean()


def run_reference(built_site, model, state):
    """query_y of the exported graph run by Python's onnxruntime on the widget's input."""
    ort = pytest.importorskip("onnxruntime")
    models = Path(built_site) / "assets" / "models"
    entry = next(m for m in json.loads((models / "manifest.json").read_text())["models"] if m["name"] == model)
    session = ort.InferenceSession(str(models / entry["file"]), providers=["CPUExecutionProvider"])
    xs = np.array(state["samples"], dtype=np.float32).reshape(-1, 1)
    ys = (state["amplitude"] * np.sin(xs.astype(np.float64) + state["phase"])).astype(np.float32)
    query_x = np.array(state["queryX"], dtype=np.float32).reshape(-1, 1)
    query_y, _ = session.run(["query_y", "support_loss"], {
        "support_x": xs, "support_y": ys, "query_x": query_x,
        "inner_lr": np.array(state["innerLr"], dtype=np.float32),
    })
    return query_y[:, :, 0]


def test_dice_draws_five_samples_and_a_sixth_click_replaces_the_oldest(page, log, site_url):
    open_page(page, site_url)
    widget = wait_ready(page, PRETRAINED, samples=0)
    widget.scroll_into_view_if_needed()
    widget.locator("button.sine-fit-dice").click()
    wait_ready(page, PRETRAINED, samples=5)
    first = widget_state(widget)["samples"]
    assert len(first) == 5 and all(-5 <= x <= 5 for x in first)
    assert len(set(first)) == 5
    assert widget.locator("circle.sine-fit-sample").count() == 5
    readout = widget.locator(".sine-fit__readout").inner_text()
    assert "5 samples" in readout

    widget.locator("button.sine-fit-dice").click()      # a new draw replaces all five
    page.wait_for_function("el => el.sineFit.samples[0] !== %s" % json.dumps(first[0]),
                           arg=widget.element_handle())
    wait_ready(page, PRETRAINED, samples=5)
    second = widget_state(widget)["samples"]

    click_plot(page, widget, 0.5)                          # x = 0, the middle of [-5, 5]
    page.wait_for_function("el => el.sineFit.samples.at(-1) !== %s" % json.dumps(second[-1]),
                           arg=widget.element_handle())
    wait_ready(page, PRETRAINED, samples=5)
    third = widget_state(widget)["samples"]
    assert third[:4] == second[1:], "the oldest sample should have been dropped, the rest kept in order"
    assert third[4] == pytest.approx(0.0, abs=0.1)
    log.assert_clean()


def test_keyboard_adds_and_removes_samples(page, log, site_url):
    open_page(page, site_url)
    widget = wait_ready(page, MAML, samples=0)
    plot = widget.locator("svg.widget-plot")
    plot.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")                 # cursor 0 -> 1.0 in steps of 0.25
    page.keyboard.press("Enter")
    wait_ready(page, MAML, samples=1)
    assert widget_state(widget)["samples"] == [pytest.approx(1.0)]
    assert widget.locator("line.sine-fit-cursor").evaluate("el => el.style.display") != "none"
    page.keyboard.press("Home")
    page.keyboard.press(" ")
    wait_ready(page, MAML, samples=2)
    assert widget_state(widget)["samples"] == [pytest.approx(1.0), pytest.approx(-5.0)]
    page.keyboard.press("Delete")
    wait_ready(page, MAML, samples=1)
    assert widget_state(widget)["samples"] == [pytest.approx(1.0)]
    log.assert_clean()


def test_katex_renders_every_formula(page, log, site_url):
    for path in ("", PAGE):
        open_page(page, site_url, path)
        page.wait_for_selector(".arithmatex .katex", state="attached")
        formulas = page.locator(".arithmatex")
        assert formulas.count() >= (3 if path == "" else 40)
        unrendered = page.locator(".arithmatex:not(:has(.katex))")
        assert unrendered.count() == 0, f"{unrendered.count()} formulas left as TeX on /{path}"
        assert page.locator(".katex-error").count() == 0
        text = page.locator("article").inner_text()
        assert "\\(" not in text and "\\[" not in text and "$$" not in text
        # The fonts come from the site's own copy of KaTeX.
        page.evaluate("document.fonts.ready")
    assert any("/assets/vendor/katex/fonts/" in url for url in log.requests)
    log.assert_clean()


def test_runtime_loads_only_on_pages_with_widgets(page, log, site_url):
    open_page(page, site_url, "")
    page.wait_for_selector(".arithmatex .katex", state="attached")
    assert page.locator("[data-widget='sine-fit']").count() == 0
    assert not [url for url in log.requests if "onnxruntime-web" in url or "/assets/models/" in url], \
        "the home page's widgets run no model, but it fetched the ONNX runtime or a model"
    page.locator("nav a[href*='how-maml-works']").first.click()
    page.wait_for_url(re.compile(r"how-maml-works/?$"))
    wait_ready(page, MAML, samples=0)
    wait_ready(page, PRETRAINED, samples=0)
    assert page.locator(".arithmatex:not(:has(.katex))").count() == 0
    log.assert_clean()


def test_a_widget_that_cannot_load_its_runtime_says_so_and_keeps_the_figure(page, site_url):
    page.route("**/*.wasm", lambda route: route.abort())
    open_page(page, site_url)
    wait_widget(page, MAML, "[data-state='error']")
    widget = page.locator(MAML)
    notice = widget.locator(".widget-status--error")
    assert notice.is_visible()
    assert "cannot run" in notice.inner_text()
    figure = widget.locator("img[src*='assets/figures/sine-fit-maml-sinusoid']")
    assert figure.is_visible()
    assert figure.evaluate("img => img.complete && img.naturalWidth > 0"), "the static figure did not load"
    assert widget.locator("svg.widget-plot").count() == 0 or not widget.locator("svg.widget-plot").is_visible()


def test_a_tap_on_a_touch_screen_adds_a_sample(touch_page, site_url):
    page = touch_page
    log = PageLog(page)
    open_page(page, site_url)
    widget = wait_ready(page, MAML, samples=0)
    widget.scroll_into_view_if_needed()
    box = plot_frame(widget)
    page.touchscreen.tap(box["x"] + 0.75 * box["width"], box["y"] + 0.3 * box["height"])
    wait_ready(page, MAML, samples=1)
    assert widget_state(widget)["samples"] == [pytest.approx(2.5, abs=0.1)]
    log.assert_clean()


def test_widget_colours_follow_the_palette(page, log, site_url):
    open_page(page, site_url)
    widget = wait_ready(page, MAML, samples=0)
    colours = {}
    for scheme in ("default", "slate"):
        page.evaluate("s => document.body.setAttribute('data-md-color-scheme', s)", scheme)
        colours[scheme] = widget.evaluate("""el => ({
            after: getComputedStyle(el.querySelector('path.sine-fit-after')).stroke,
            target: getComputedStyle(el.querySelector('path.sine-fit-target')).stroke,
            panel: getComputedStyle(el).backgroundColor,
            tick: getComputedStyle(el.querySelector('text.widget-tick')).fill,
        })""")
    for part in ("after", "target", "panel", "tick"):
        assert colours["default"][part] != colours["slate"][part], f"{part} keeps its colour in the dark palette"
    log.assert_clean()


def test_a_curve_that_blew_up_leaves_a_gap_not_an_invalid_path(page, log, site_url):
    # Plain gradient descent can blow up on very curved samples (see the Results
    # page); NaN or 1e30 in an SVG path would make the whole curve invalid.
    open_page(page, site_url)
    d = page.evaluate("""async (base) => {
        const { setCurve } = await import(base + "javascripts/lib/plot.js");
        const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
        const plot = { x: (v) => 10 * v, y: (v) => -10 * v };
        setCurve(plot, path, [0, 1, 2, 3, 4], [0.5, NaN, 1e30, -Infinity, 2]);
        return path.getAttribute("d");
    }""", site_url)
    assert d == "M0.00,-5.00M20.00,-10000.00M40.00,-20.00"
    log.assert_clean()
