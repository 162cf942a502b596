"""The sine-fit widget's free mode ("Your own points", issue 12 item 4).

In free mode a sample is the point the reader clicks, not a point of the
sine; the presets put five samples on a line, a step and a parabola; the
graph adapts to exactly those points.
"""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from browser_support import wait_widget

pytestmark = pytest.mark.browser

PAGE = "how-maml-works/"
MAML = '[data-widget="sine-fit"][data-model="maml-sinusoid"]'
PRESETS = {
    "line": lambda x: 0.8 * x,
    "step": lambda x: np.where(x < 0, -2.0, 2.0),
    "parabola": lambda x: 0.3 * x * x - 3,
}
PRESET_X = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])


def open_maml(page, site_url):
    page.goto(site_url + PAGE)
    return wait_widget(page, MAML, "[data-state='ready']")


def state(widget):
    return widget.evaluate("""el => ({
        mode: el.dataset.mode, samples: el.sineFit.samples, points: el.sineFit.points(),
        preset: el.sineFit.preset, supportLoss: el.sineFit.result.supportLoss,
        queryY: el.sineFit.result.queryY.map((q) => Array.from(q)), queryX: el.sineFit.queryX,
        innerLr: el.sineFit.innerLr,
        amplitudeDisabled: el.querySelector('input.sine-fit-amplitude').disabled,
        targetD: el.querySelector('path.sine-fit-target').getAttribute('d'),
    })""")


def wait_samples(page, widget, count):
    page.wait_for_function("([el, n]) => el.dataset.state === 'ready' && !el.sineFit.running && "
                           "el.sineFit.result.sampleCount === n && el.sineFit.samples.length === n",
                           arg=[widget.element_handle(), count])


def python_adaptation(quick_build, points, query_x, inner_lr):
    session = ort.InferenceSession(str(quick_build.exported / "maml-sinusoid.onnx"),
                                   providers=["CPUExecutionProvider"])
    pts = np.array(points, dtype=np.float32)
    return session.run(["query_y", "support_loss"], {
        "support_x": pts[:, :1], "support_y": pts[:, 1:],
        "query_x": np.asarray(query_x, dtype=np.float32).reshape(-1, 1),
        "inner_lr": np.array(inner_lr, dtype=np.float32)})


def test_a_click_in_free_mode_is_a_sample_exactly_where_the_reader_clicked(page, log, site_url, quick_build):
    widget = open_maml(page, site_url)
    widget.locator("button.sine-fit-free").click()
    wait_samples(page, widget, 0)
    assert widget.get_attribute("data-mode") == "free"
    assert widget.locator("button.sine-fit-free").get_attribute("aria-pressed") == "true"
    frame = widget.locator("rect.widget-frame")
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    clicks = [(0.2, 0.25), (0.5, 0.8), (0.85, 0.4)]
    for i, (fx, fy) in enumerate(clicks, start=1):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        wait_samples(page, widget, i)
    got = state(widget)
    # The plot spans x in [-5, 5] and y in [-6, 6]: a click at fractions (fx, fy)
    # of the frame is the point (-5 + 10 fx, 6 - 12 fy), to a pixel or so.
    expected = [(-5 + 10 * fx, 6 - 12 * fy) for fx, fy in clicks]
    np.testing.assert_allclose([[p["x"], p["y"]] for p in got["points"]], expected, atol=0.05)
    # Not on the sine: the samples' y are the clicked heights, and no sine is drawn.
    assert got["targetD"] == ""
    assert got["amplitudeDisabled"] is True
    # The graph adapted to exactly those points.
    points = [[p["x"], p["y"]] for p in got["points"]]
    query_y, support_loss = python_adaptation(quick_build, points, got["queryX"], got["innerLr"])
    np.testing.assert_allclose(got["supportLoss"], support_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.array(got["queryY"]), query_y[:, :, 0], rtol=1e-4, atol=1e-4)
    log.assert_clean()


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_puts_five_samples_on_its_curve_and_draws_it(page, log, site_url, name):
    widget = open_maml(page, site_url)
    widget.locator(f"button.sine-fit-preset--{name}").click()
    wait_samples(page, widget, 5)
    got = state(widget)
    assert got["mode"] == "free" and got["preset"] == name
    points = np.array([[p["x"], p["y"]] for p in got["points"]])
    np.testing.assert_allclose(points[:, 0], PRESET_X)
    np.testing.assert_allclose(points[:, 1], PRESETS[name](PRESET_X))
    assert got["targetD"].count("L") == len(got["queryX"]) - 1
    # Ten steps on points that are not from a sine still lower the error on them.
    assert got["supportLoss"][10] < got["supportLoss"][0]
    # A click of the reader's own takes the preset's curve away (the points no longer follow it).
    box = widget.locator("rect.widget-frame").bounding_box()
    page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.1 * box["height"])
    wait_samples(page, widget, 5)
    after = state(widget)
    assert after["preset"] is None and after["targetD"] == ""
    assert [p["x"] for p in after["points"][:4]] == list(PRESET_X[1:])
    log.assert_clean()


def test_back_to_the_sine_clears_the_points_and_samples_lie_on_the_sine_again(page, log, site_url):
    widget = open_maml(page, site_url)
    widget.locator("button.sine-fit-preset--line").click()
    wait_samples(page, widget, 5)
    widget.locator("button.sine-fit-free").click()
    wait_samples(page, widget, 0)
    got = state(widget)
    assert got["mode"] == "sine" and got["amplitudeDisabled"] is False and got["targetD"] != ""
    box = widget.locator("rect.widget-frame").bounding_box()
    page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.1 * box["height"])
    wait_samples(page, widget, 1)
    point = state(widget)["points"][0]
    amplitude, phase = widget.evaluate("el => [el.sineFit.amplitude, el.sineFit.phase]")
    assert point["y"] == pytest.approx(amplitude * np.sin(point["x"] + phase), abs=1e-9)
    log.assert_clean()


def test_keyboard_places_a_free_point_with_up_and_down(page, log, site_url):
    widget = open_maml(page, site_url)
    widget.locator("button.sine-fit-free").click()
    wait_samples(page, widget, 0)
    svg = widget.locator("svg.widget-plot")
    svg.focus()
    for key in ["Home", "ArrowRight", "ArrowRight", "ArrowUp", "ArrowUp", "ArrowUp", "Enter"]:
        page.keyboard.press(key)
    wait_samples(page, widget, 1)
    point = state(widget)["points"][0]
    assert point == {"x": -4.5, "y": 0.75}
    # Extreme input is clamped to the plot: Shift+Down far past the bottom.
    for _ in range(20):
        page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Enter")
    wait_samples(page, widget, 2)
    assert state(widget)["points"][1] == {"x": -4.5, "y": -6}
    svg_html = widget.inner_html()
    assert "NaN" not in svg_html and "Infinity" not in svg_html
    log.assert_clean()


def test_set_samples_clamps_and_drops_bad_points(page, site_url):
    widget = open_maml(page, site_url)
    widget.evaluate("el => el.sineFit.setMode('free')")
    wait_samples(page, widget, 0)
    widget.evaluate("""el => el.sineFit.setSamples([{x: -20, y: 50}, {x: NaN, y: 1}, {x: 1}, {x: 2, y: -1},
                                                  {x: 3, y: 3}, {x: 4, y: 4}, {x: 4.5, y: 0}, {x: 5, y: 1}])""")
    wait_samples(page, widget, 5)
    got = state(widget)["points"]
    assert got[0] == {"x": 2, "y": -1} and got[-1] == {"x": 5, "y": 1}
    assert json.dumps(got).count("NaN") == 0
    with pytest.raises(Exception, match='unknown preset "circle"; allowed: line, step, parabola'):
        widget.evaluate("el => el.sineFit.usePreset('circle')")
