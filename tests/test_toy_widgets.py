"""The loss-landscape widgets in a real browser: accumulated meta-loss,
"Will it really work?", Reptile interpolation and the curvature demo.

What a reader does and notices, each held against PyTorch (meta/toy.py):
dragging θ onto a task's optimum, with the mouse or the keyboard, shrinks
that task's arrow; raising m moves the displayed minimum of the accumulated
loss to where PyTorch puts it; C = 0 makes the first-order and the true
meta-gradient arrows coincide, and the arrows are drawn with x₁ across and x₂
up; Reptile with one inner step draws a plain gradient step; no slider end
puts NaN or Infinity into the drawing; nothing logs a console error.

Uses the browser fixtures of tests/conftest.py (Debian's Chromium, the
quick-built site served on 127.0.0.1) and the toy-widget helpers of
tests/browser_support.py.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from browser_support import (PageLog, frames, line_ends, nonfinite_attributes,
                             open_toy_widget, redrawn, to_pixels, wait_widget)

from meta import toy

pytestmark = pytest.mark.browser

ACCUMULATED = '[data-widget="accumulated-loss"]'
WILL = '[data-widget="will-it-work"]'
REPTILE = '[data-widget="reptile-interpolation"]'
CURVATURE = '[data-widget="curvature"]'
PAGES = {ACCUMULATED: "how-maml-works/", WILL: "how-maml-works/", REPTILE: "reptile/", CURVATURE: "fomaml/"}
D = torch.float64


# ---------------------------------------------------------------- helpers

def open_widget(page, site_url, selector):
    return open_toy_widget(page, site_url + PAGES[selector], selector)


def settled(page, widget, before: int):
    """Wait until the widget has redrawn since `before` frames and is idle."""
    redrawn(page, widget, before)
    # A drag or key repeat may have queued one more run: wait for the last one.
    page.wait_for_timeout(50)
    page.wait_for_function("el => el.dataset.state === 'ready'", arg=widget.element_handle())


def state(widget, *names):
    return widget.evaluate(f"el => ({{ {', '.join(f'{n}: el.toyWidget.{n}' for n in names)} }})")


def slider_ends(page, widget, selector):
    """Set the range input to its min and its max with the keyboard, checking the drawing each time."""
    for key in ("Home", "End"):
        before = frames(widget)
        widget.locator(selector).focus()
        page.keyboard.press(key)
        settled(page, widget, before)
        bad = nonfinite_attributes(widget)
        assert not bad, f"{selector} at its {key}: {bad[:5]}"


def centre(locator):
    box = locator.bounding_box()
    assert box, "element is not laid out"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page, widget, handle, target, steps=12):
    """Drag a θ handle with the mouse onto the centre of `target`; wait for the redraw."""
    before = frames(widget)
    handle.scroll_into_view_if_needed()
    page.mouse.move(*centre(handle.locator("circle").last))
    page.mouse.down()
    page.mouse.move(*centre(target), steps=steps)
    page.mouse.up()
    settled(page, widget, before)


def one_step(theta, task, lr, steps=1):
    """ϕ after `steps` plain gradient steps from θ on one task (PyTorch, float64)."""
    path, _ = toy.adapt(torch.tensor([theta], dtype=D), torch.tensor([task], dtype=D), lr, steps)
    return path[0, 0].numpy()


# ---------------------------------------------------------------- will it work

def test_dragging_theta_onto_an_optimum_shrinks_that_tasks_arrow(page, log, site_url):
    widget = open_widget(page, site_url, WILL)
    start = state(widget, "theta", "innerLr", "phi")
    lengths0 = [float(widget.locator(f"line.toy-arrow--task{t}").get_attribute("data-length")) for t in (0, 1)]
    assert min(lengths0) > 0.05, f"the default θ should show two visible steps, got {lengths0}"
    # The drawn step is PyTorch's step from the same θ at the same α.
    for t in (0, 1):
        np.testing.assert_allclose(start["phi"][t], one_step(start["theta"], toy.TOY_TASKS[t], start["innerLr"])[1],
                                   atol=2e-5)
        drawn = line_ends(widget, f"line.toy-arrow--task{t}")
        expected = to_pixels(widget, [start["theta"], start["phi"][t]], t).ravel()
        np.testing.assert_allclose(drawn, expected, atol=0.02)

    # Mouse: drag θ in panel 0 onto task 0's optimum (the circled point).
    panel0 = widget.locator("svg.widget-plot").nth(0)
    optimum0 = panel0.locator("circle.toy-optimum")
    drag(page, widget, panel0.locator(".toy-handle"), optimum0)
    s = state(widget, "theta", "phi")
    assert s["theta"] == pytest.approx(list(toy.TOY_TASKS[0]), abs=0.01)
    length0 = float(widget.locator("line.toy-arrow--task0").get_attribute("data-length"))
    length1 = float(widget.locator("line.toy-arrow--task1").get_attribute("data-length"))
    assert length0 < 0.1 * lengths0[0], f"task 0's arrow did not shrink: {lengths0[0]:.4f} -> {length0:.4f}"
    assert length1 > 0.05, "task 1's arrow should stay: θ is far from its optimum"
    # The same θ in both panels.
    handles = [centre(widget.locator("svg.widget-plot").nth(t).locator(".toy-handle__dot")) for t in (0, 1)]
    frame_offsets = [widget.locator("svg.widget-plot").nth(t).bounding_box() for t in (0, 1)]
    rel = [(h[0] - f["x"], h[1] - f["y"]) for h, f in zip(handles, frame_offsets)]
    assert rel[0] == pytest.approx(rel[1], abs=1.0)

    # Keyboard: in panel 1, move θ to task 1's optimum (0.83, 0.75) with the arrow keys.
    handle1 = widget.locator("svg.widget-plot").nth(1).locator(".toy-handle")
    handle1.focus()
    before = frames(widget)
    page.keyboard.press("Home")           # a = 0
    page.keyboard.press("PageDown")       # b = 0
    for key, count in (("Shift+ArrowRight", 8), ("ArrowRight", 1), ("Shift+ArrowUp", 7), ("ArrowUp", 2)):
        for _ in range(count):
            page.keyboard.press(key)
    settled(page, widget, before)
    s = state(widget, "theta")
    assert s["theta"] == pytest.approx([0.82, 0.74], abs=1e-6)
    assert widget.locator(".toy-live").inner_text() == "θ = (0.82, 0.74)"
    length1_after = float(widget.locator("line.toy-arrow--task1").get_attribute("data-length"))
    assert length1_after < 0.1 * length1, f"task 1's arrow did not shrink: {length1:.4f} -> {length1_after:.4f}"
    readout = widget.locator(".will-it-work__readout").inner_text()
    assert "L₀(ϕ₀) + L₁(ϕ₁)" in readout and "NaN" not in readout
    log.assert_clean()


def test_a_tap_puts_theta_where_the_finger_is(touch_page, site_url):
    page = touch_page
    page_log = PageLog(page)
    widget = open_widget(page, site_url, WILL)
    panel = widget.locator("svg.widget-plot").nth(1)
    assert panel.evaluate("el => getComputedStyle(el).touchAction") == "none"
    before = frames(widget)
    page.touchscreen.tap(*centre(panel.locator("circle.toy-optimum")))
    settled(page, widget, before)
    assert state(widget, "theta")["theta"] == pytest.approx(list(toy.TOY_TASKS[1]), abs=0.02)
    page_log.assert_clean()


# ---------------------------------------------------------------- accumulated loss

def pytorch_minimum(m: int, inner_lr: float, count: int = 101) -> np.ndarray:
    """Where Σ_i L_i(U^(m)(θ)) is smallest on a count × count grid of [0, 1]²."""
    a, b = np.meshgrid(np.linspace(0, 1, count), np.linspace(0, 1, count))
    points = torch.tensor(np.stack([a.ravel(), b.ravel()], 1), dtype=D)
    accumulated = toy.accumulated_loss(points, toy.tasks_tensor(dtype=D), inner_lr, m)[m]
    return points[int(torch.argmin(accumulated))].numpy()


def shown_minimum(widget) -> np.ndarray:
    text = widget.locator(".accumulated-loss__readout").inner_text()
    match = re.search(r"minimum of the accumulated loss at \(a, b\) = \((-?[\d.]+), (-?[\d.]+)\)", text)
    assert match, f"no minimum in the read-out: {text!r}"
    return np.array([float(match[1]), float(match[2])])


def test_raising_m_moves_the_minimum_where_pytorch_puts_it(page, log, site_url):
    widget = open_widget(page, site_url, ACCUMULATED)
    inner_lr = widget.evaluate("el => el.toyWidget.record.inner_lr")
    assert inner_lr == pytest.approx(toy.TOY_INNER_LR)
    m_slider = widget.locator("input.accumulated-loss-m")
    assert m_slider.get_attribute("max") == str(toy.TOY_MAX_STEPS)
    shown = {}
    m_slider.focus()
    page.keyboard.press("Home")
    shown[0] = shown_minimum(widget)
    page.keyboard.press("ArrowRight")
    assert widget.get_attribute("data-m") == "1"
    shown[1] = shown_minimum(widget)
    page.keyboard.press("End")
    assert widget.get_attribute("data-m") == str(toy.TOY_MAX_STEPS)
    shown[toy.TOY_MAX_STEPS] = shown_minimum(widget)
    for m, point in shown.items():
        np.testing.assert_allclose(point, pytorch_minimum(m, inner_lr), atol=0.006, err_msg=f"m = {m}")
    assert np.linalg.norm(shown[toy.TOY_MAX_STEPS] - shown[0]) > 0.05, "the minimum did not move as m grew"
    # The frame shown is the m = 20 picture, and it loaded.
    img = widget.locator("img.accumulated-loss__frame")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert img.get_attribute("src").endswith(f"toy-accumulated-m{toy.TOY_MAX_STEPS:02d}.png")
    assert f"m = {toy.TOY_MAX_STEPS}" in img.get_attribute("alt")
    # The build's static figure is hidden behind the live widget.
    assert not widget.locator(":scope > p img").first.is_visible()
    log.assert_clean()


# ---------------------------------------------------------------- curvature

def curvature_expected(s):
    phi, true, first = toy.curvature_meta_gradients(
        torch.tensor(s["theta"], dtype=D), torch.tensor([[s["entries"]["c11"], s["entries"]["c12"]],
                                                           [s["entries"]["c12"], s["entries"]["c22"]]], dtype=D),
        torch.tensor([0.0, 0.0], dtype=D), torch.tensor([0.5, -0.3], dtype=D), s["innerLr"])
    return phi.numpy(), true.numpy(), first.numpy()


def test_curvature_arrows_are_pytorchs_and_coincide_when_c_is_zero(page, log, site_url):
    widget = open_widget(page, site_url, CURVATURE)
    s = state(widget, "theta", "entries", "innerLr", "phi", "gradient", "firstOrder", "center", "linear")
    assert s["center"] == [0, 0] and s["linear"] == [0.5, -0.3]
    phi, true, first = curvature_expected(s)
    np.testing.assert_allclose(s["phi"], phi, atol=1e-5)
    np.testing.assert_allclose(s["gradient"], true, atol=1e-5)
    np.testing.assert_allclose(s["firstOrder"], first, atol=1e-5)
    # Drawn from θ towards θ − gradient, x₁ across and x₂ up (the plot's own scales).
    theta = np.array(s["theta"])
    for css, g in (("line.curvature__true", true), ("line.curvature__first-order", first)):
        expected = to_pixels(widget, [theta, theta - g]).ravel()
        np.testing.assert_allclose(line_ends(widget, css), expected, atol=0.02, err_msg=css)
    apart = np.abs(line_ends(widget, "line.curvature__true") - line_ends(widget, "line.curvature__first-order")).max()
    assert apart > 5, "with the default C the two arrows should visibly differ"

    # A diagonal C: raising C₁₁ changes only the x₁ (horizontal) component of the true arrow.
    before = frames(widget)
    widget.locator("button.curvature-zero").click()
    settled(page, widget, before)
    assert np.abs(line_ends(widget, "line.curvature__true") - line_ends(widget, "line.curvature__first-order")).max() < 0.01
    s = state(widget, "gradient", "firstOrder", "entries")
    assert s["entries"] == {"c11": 0, "c12": 0, "c22": 0}
    np.testing.assert_allclose(s["gradient"], s["firstOrder"], atol=1e-6)
    # Dragging θ keeps them together (C = 0: same gradient everywhere).
    drag(page, widget, widget.locator(".toy-handle"), widget.locator("rect.widget-frame"))
    assert np.abs(line_ends(widget, "line.curvature__true") - line_ends(widget, "line.curvature__first-order")).max() < 0.01

    c11 = widget.locator("input.curvature-c11")
    before = frames(widget)
    c11.fill("2")
    settled(page, widget, before)
    s = state(widget, "theta", "entries", "innerLr", "phi", "gradient", "firstOrder")
    true_end = line_ends(widget, "line.curvature__true")
    first_end = line_ends(widget, "line.curvature__first-order")
    assert abs(true_end[3] - first_end[3]) < 0.01, "C₁₁ changed the vertical (x₂) component"
    assert abs(true_end[2] - first_end[2]) > 1, "C₁₁ did not change the horizontal (x₁) component"
    _, true, first = curvature_expected(s)
    np.testing.assert_allclose(s["gradient"], true, atol=1e-5)
    log.assert_clean()


# ---------------------------------------------------------------- reptile

def test_reptile_with_one_inner_step_is_a_gradient_step(page, log, site_url):
    widget = open_widget(page, site_url, REPTILE)
    task = list(toy.TOY_TASKS[1])
    for selector, key in (("input.reptile-interpolation-steps", "Home"), ("input.reptile-interpolation-beta", "End")):
        before = frames(widget)
        widget.locator(selector).focus()
        page.keyboard.press(key)
        settled(page, widget, before)
    s = state(widget, "theta", "innerLr", "steps", "beta", "updated", "path")
    assert s["steps"] == 1 and s["beta"] == 1
    theta = torch.tensor([s["theta"]], dtype=D).reshape(1, 1, 2)
    x = toy.inputs(D)
    _, grad, _ = toy.loss_grad_hessian(theta, toy.targets(torch.tensor([task], dtype=D), x), x)
    gradient_step = np.array(s["theta"]) - s["innerLr"] * grad[0, 0].numpy()
    np.testing.assert_allclose(s["updated"], gradient_step, atol=2e-5)
    drawn = line_ends(widget, "line.reptile-interpolation__update")
    np.testing.assert_allclose(drawn, to_pixels(widget, [s["theta"], gradient_step]).ravel(), atol=0.05)
    # The one inner arrow and the update are the same segment; the other inner arrows are hidden.
    np.testing.assert_allclose(line_ends(widget, "line.toy-arrow--inner[data-step='1']"), drawn, atol=0.05)
    assert widget.locator("line.toy-arrow--inner[data-step='2']").evaluate("el => el.style.display") == "none"

    # β = 0.5 with three steps: θ moves half way to ϕ₃, PyTorch's ϕ₃.
    before = frames(widget)
    widget.locator("input.reptile-interpolation-beta").fill("0.5")
    widget.locator("input.reptile-interpolation-steps").fill("3")
    settled(page, widget, before)
    s = state(widget, "theta", "innerLr", "steps", "beta", "updated", "path")
    assert s["steps"] == 3
    phi3 = one_step(s["theta"], task, s["innerLr"], steps=3)[3]
    np.testing.assert_allclose(s["path"][3], phi3, atol=2e-5)
    np.testing.assert_allclose(s["updated"], np.array(s["theta"]) + 0.5 * (phi3 - np.array(s["theta"])), atol=2e-5)
    log.assert_clean()


# ---------------------------------------------------------------- every widget

SLIDERS = {
    WILL: ["input.will-it-work-lr"],
    REPTILE: ["input.reptile-interpolation-lr", "input.reptile-interpolation-steps",
              "input.reptile-interpolation-beta"],
    CURVATURE: ["input.curvature-c11", "input.curvature-c12", "input.curvature-c22", "input.curvature-lr"],
}


@pytest.mark.parametrize("selector", list(SLIDERS))
def test_no_slider_end_or_corner_draws_nan_or_infinity(page, log, site_url, selector):
    widget = open_widget(page, site_url, selector)
    assert not nonfinite_attributes(widget)
    handle = widget.locator(".toy-handle").first
    for corner in (("Home", "PageDown"), ("End", "PageUp")):
        before = frames(widget)
        handle.focus()
        for key in corner:
            page.keyboard.press(key)
        settled(page, widget, before)
        for css in SLIDERS[selector]:
            slider_ends(page, widget, css)
    # Arrows and contours are there to be seen at the last setting.
    assert widget.locator("path.contours__band").count() > 3
    log.assert_clean()


def test_accumulated_slider_ends_and_palettes(page, log, site_url):
    widget = open_widget(page, site_url, ACCUMULATED)
    widget.locator("input.accumulated-loss-m").focus()
    for key in ("End", "Home"):
        page.keyboard.press(key)
        assert "NaN" not in widget.locator(".accumulated-loss__readout").inner_text()
    # The contour colours of the other widgets follow the palette.
    will = wait_widget(page, WILL)
    colours = {}
    for scheme in ("default", "slate"):
        page.evaluate("s => document.body.setAttribute('data-md-color-scheme', s)", scheme)
        colours[scheme] = will.evaluate("""el => [...el.querySelectorAll('path.contours__band')]
            .slice(0, 3).map((p) => getComputedStyle(p).fill)""")
    assert colours["default"] != colours["slate"]
    assert len(set(colours["default"])) == 3, "the bands should differ in colour by level"
    log.assert_clean()


def test_d3_is_loaded_once_and_only_where_contours_are_drawn(page, log, site_url):
    page.goto(site_url)                                   # the Introduction: widgets, but no contours
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert not [u for u in log.requests if "/assets/vendor/d3-" in u]
    open_widget(page, site_url, WILL)
    wait_widget(page, ACCUMULATED)
    d3 = sorted(u.split("/assets/vendor/")[1] for u in log.requests if "/assets/vendor/d3-" in u)
    assert d3 == ["d3-array/d3-array.min.js", "d3-contour/d3-contour.min.js"]
    assert page.evaluate("typeof window.d3.contours") == "function"
    log.assert_clean()
