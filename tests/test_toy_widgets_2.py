"""iMAML's two widgets and the comparison widget in a real browser:
proximal-loss and implicit-gradient (iMAML page), meta-gradients (Comparison).

What a reader does and notices, each held against PyTorch (meta/toy.py):
λ = 0 puts each panel's minimum on its task's own minimum, and dragging θ
moves it when λ > 0; more CG iterations bring iMAML's arrow onto the exact
implicit gradient; switching a method's card off removes its arrow; the MAML
arrow points along the task mean of the exact multi-step MAML gradient (and
the other three along theirs); θ moves with the arrow keys, with the mouse
and with a finger, and its place is announced; no slider end puts NaN or
Infinity into the drawing; nothing logs a console error.

Uses the browser fixtures of tests/conftest.py (Debian's Chromium, the
quick-built site served on 127.0.0.1) and the toy-widget helpers of
tests/browser_support.py.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from browser_support import (PageLog, frames, line_ends, nonfinite_attributes, open_toy_widget, redrawn,
                             to_pixels, wait_until)

from meta import toy

pytestmark = pytest.mark.browser

PROXIMAL = '[data-widget="proximal-loss"]'
IMPLICIT = '[data-widget="implicit-gradient"]'
METHODS = '[data-widget="meta-gradients"]'
PAGES = {PROXIMAL: "imaml/", IMPLICIT: "imaml/", METHODS: "comparison/"}
D = torch.float64
GRID = 61
KEY_STEP = 0.02              # the handle's arrow-key step: 1/50 of the plane
ARROW_LENGTH = 0.25          # meta-gradients.js draws every method's arrow this long


# ---------------------------------------------------------------- helpers

def open_widget(page, site_url, selector):
    return open_toy_widget(page, site_url + PAGES[selector], selector)


def drawn(widget) -> dict:
    return widget.evaluate("el => JSON.parse(JSON.stringify(el.toyWidget.drawn))")


def press_on(page, widget, css: str, *keys: str):
    """Focus a control and press keys, waiting for the redraw after each."""
    widget.locator(css).first.focus()
    for key in keys:
        before = frames(widget)
        page.keyboard.press(key)
        redrawn(page, widget, before)


def move_theta_by_keys(page, widget, keys: list[str], handle_index: int = 0) -> np.ndarray:
    """Press arrow keys on a θ handle; returns the θ they lead to (waits for its drawing)."""
    start = np.array(drawn(widget)["theta"])
    moves = {"ArrowRight": (1, 0), "ArrowLeft": (-1, 0), "ArrowUp": (0, 1), "ArrowDown": (0, -1)}
    expected = start + KEY_STEP * np.sum([moves[k] for k in keys], axis=0)
    widget.locator("g.toy-handle").nth(handle_index).focus()
    for key in keys:
        page.keyboard.press(key)
    wait_until(page, widget, "Math.abs(d.theta[0] - arg[0]) < 1e-6 && Math.abs(d.theta[1] - arg[1]) < 1e-6",
               expected.tolist())
    return expected


def circle_centre(widget, css) -> np.ndarray:
    circle = widget.locator(css)
    assert circle.evaluate("el => el.style.display") != "none", f"{css} is hidden"
    return np.array([float(circle.get_attribute("cx")), float(circle.get_attribute("cy"))])


def grid_points() -> torch.Tensor:
    """The widgets' grid: 61 × 61 points of [0, 1]², a varying fastest."""
    g = torch.linspace(0, 1, GRID, dtype=D)
    b, a = torch.meshgrid(g, g, indexing="ij")
    return torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)


def tasks(rows=toy.TOY_TASKS) -> torch.Tensor:
    return torch.tensor(rows, dtype=D)


def one_theta(theta) -> torch.Tensor:
    """θ (a list or an array) as the [1, 2] tensor meta.toy takes."""
    return torch.as_tensor(np.asarray(theta, dtype=float).reshape(1, 2), dtype=D)


# ---------------------------------------------------------------- proximal loss

def test_lambda_zero_puts_each_minimum_on_its_tasks_own_minimum(page, log, site_url):
    widget = open_widget(page, site_url, PROXIMAL)
    points = grid_points()
    start = drawn(widget)
    assert start["lam"] == 1 and start["theta"] == [0.2, 0.8]
    # λ = 1: each panel's minimum is PyTorch's lowest grid value of L + λ/2 ‖ϕ − θ‖²,
    # and it sits between the task's minimum and θ, not on either.
    proximal = toy.landscape(points, tasks(), torch.tensor(start["theta"], dtype=D), start["lam"])
    for t, minimiser in enumerate(start["minimisers"]):
        index = int(np.argmin(np.linalg.norm(points.numpy() - minimiser, axis=1)))
        assert float(proximal[t, index]) <= float(proximal[t].min()) + 1e-6
        assert np.linalg.norm(np.subtract(minimiser, toy.TOY_TASKS[t])) > 0.1
        assert np.linalg.norm(np.subtract(minimiser, start["theta"])) > 0.1
        np.testing.assert_allclose(circle_centre(widget, "circle.proximal-loss__minimum >> nth=%d" % t),
                                   to_pixels(widget, [minimiser], t)[0], atol=0.01)

    press_on(page, widget, "input.proximal-loss-lam", "Home")
    at_zero = drawn(widget)
    assert at_zero["lam"] == 0
    plain = toy.landscape(points, tasks())
    for t, minimiser in enumerate(at_zero["minimisers"]):
        np.testing.assert_allclose(minimiser, points[int(plain[t].argmin())].numpy(), atol=1e-6)
        np.testing.assert_allclose(minimiser, toy.TOY_TASKS[t], atol=0.5 / (GRID - 1) + 1e-6)
    assert "λ = 0" in widget.locator(".toy-widget__readout").inner_text()

    # With λ = 0, θ has no say: moving it leaves both minima where they are.
    move_theta_by_keys(page, widget, ["ArrowRight"] * 5 + ["ArrowDown"] * 5)
    assert drawn(widget)["minimisers"] == at_zero["minimisers"]
    log.assert_clean()


def test_arrow_keys_move_theta_in_both_panels_and_announce_it(page, log, site_url):
    widget = open_widget(page, site_url, PROXIMAL)
    theta = move_theta_by_keys(page, widget, ["ArrowRight"] * 3 + ["ArrowUp"], handle_index=1)
    np.testing.assert_allclose(theta, [0.26, 0.82], atol=1e-9)
    live = widget.locator("[aria-live='polite']")
    assert live.count() == 1
    assert live.inner_text() == "θ = (0.26, 0.82)"
    # Both panels' θ moved, and each panel's minimum follows the new θ as PyTorch says.
    for t in (0, 1):
        transform = widget.locator("g.toy-handle").nth(t).get_attribute("transform")
        expected = to_pixels(widget, [theta], t)[0]
        moved_to = [float(v) for v in transform[len("translate("):-1].split(",")]
        np.testing.assert_allclose(moved_to, expected, atol=0.01)
    proximal = toy.landscape(grid_points(), tasks(), torch.tensor(theta, dtype=D), 1.0)
    points = grid_points().numpy()
    for t, minimiser in enumerate(drawn(widget)["minimisers"]):
        index = int(np.argmin(np.linalg.norm(points - minimiser, axis=1)))
        assert float(proximal[t, index]) <= float(proximal[t].min()) + 1e-6
    log.assert_clean()


# ---------------------------------------------------------------- implicit gradient

def implicit_reference(theta, task, lr, steps, lam, cg_steps=toy.TOY_CG_STEPS):
    """PyTorch: ϕ after `steps` proximal steps from θ, the CG iterates and the exact implicit gradient."""
    task_t = tasks([task])
    path, _ = toy.adapt(one_theta(theta), task_t, lr, steps, lam=lam)
    phi = path[:, :, steps]                                           # [1, 1, 2]
    cg = toy.implicit_gradient_cg(phi, task_t, lam, cg_steps)[0, 0]
    exact = toy.implicit_gradient_exact(phi, task_t, lam)[0, 0]
    return phi[0, 0].numpy(), cg.numpy(), exact.numpy()


def test_more_cg_iterations_bring_the_arrow_onto_the_exact_implicit_gradient(page, log, site_url):
    widget = open_widget(page, site_url, IMPLICIT)
    press_on(page, widget, "input.implicit-gradient-cg", "Home")
    for task in (0, 1):
        if task == 1:
            before = frames(widget)
            widget.locator("input.implicit-gradient-task--1").check()
            redrawn(page, widget, before)
        d = drawn(widget)
        assert d["task"] == task and d["cg"] == 0 and d["lam"] == 1
        phi, cg, exact = implicit_reference(d["theta"], toy.TOY_TASKS[task], d["lr"], d["steps"], d["lam"])
        np.testing.assert_allclose(d["phi"], phi, atol=2e-5)
        np.testing.assert_allclose(d["exact"], exact, atol=2e-5)
        np.testing.assert_allclose(d["iterates"], cg, atol=2e-5)
        assert np.linalg.norm(exact) > 0.05

        # Step the CG slider up: the bold arrow's tip approaches the faint one's.
        exact_tip = line_ends(widget, "line.implicit-gradient__exact")[2:]
        gaps, distances = [], []
        for k in range(0, 4):
            if k:
                press_on(page, widget, "input.implicit-gradient-cg", "ArrowRight")
            d = drawn(widget)
            assert d["cg"] == k
            distances.append(d["distance"])
            np.testing.assert_allclose(d["distance"], np.linalg.norm(cg[k] - exact), atol=2e-5)
            if k == 0:      # g_0 = 0: no arrow at all
                assert widget.locator("line.implicit-gradient__cg").evaluate("el => el.style.display") == "none"
                gaps.append(np.linalg.norm(to_pixels(widget, [d["theta"]])[0] - exact_tip))
            else:
                gaps.append(np.linalg.norm(line_ends(widget, "line.implicit-gradient__cg")[2:] - exact_tip))
        assert gaps[0] > gaps[1] > gaps[2], f"CG iterations 0, 1, 2 do not approach the exact arrow: {gaps}"
        assert distances[0] > distances[1] > distances[2]
        # A 2 × 2 system: two iterations solve it, and further ones stay there.
        assert gaps[2] < 0.5 and gaps[3] < 0.5
        assert distances[2] < 1e-4 * max(1.0, np.linalg.norm(exact))
        readout = widget.locator(".implicit-gradient__readout").inner_text()
        assert "after 3 CG iterations" in readout
        press_on(page, widget, "input.implicit-gradient-cg", "Home")
    log.assert_clean()


def test_a_tap_moves_theta_and_the_adapted_point_follows(touch_page, site_url):
    page = touch_page
    log = PageLog(page)  # not the fixture: this page has its own context
    widget = open_widget(page, site_url, IMPLICIT)
    frame = widget.locator("rect.widget-frame")
    frame.evaluate("el => el.scrollIntoView({block: 'center'})")      # clear of the sticky header
    box = frame.bounding_box()
    # The frame is the plot area of the plane [0, 1]²: a tap at 70 % across, 30 % down.
    page.touchscreen.tap(box["x"] + 0.7 * box["width"], box["y"] + 0.3 * box["height"])
    wait_until(page, widget, "Math.abs(d.theta[0] - 0.7) < 0.01 && Math.abs(d.theta[1] - 0.7) < 0.01")
    d = drawn(widget)
    phi, _, exact = implicit_reference(d["theta"], toy.TOY_TASKS[0], d["lr"], d["steps"], d["lam"])
    np.testing.assert_allclose(d["phi"], phi, atol=2e-5)
    np.testing.assert_allclose(d["exact"], exact, atol=2e-5)
    np.testing.assert_allclose(circle_centre(widget, "circle.implicit-gradient__phi"),
                               to_pixels(widget, [phi])[0], atol=0.01)
    radius = float(widget.locator("circle.implicit-gradient__circle").get_attribute("r"))
    pixels_per_unit = abs(float(np.diff(to_pixels(widget, [[0, 0], [1, 0]])[:, 0])[0]))
    assert radius == pytest.approx(np.linalg.norm(phi - d["theta"]) * pixels_per_unit, abs=0.02)
    assert "θ = (0.70, 0.70)" == widget.locator("[aria-live='polite']").inner_text()
    log.assert_clean()


# ---------------------------------------------------------------- meta-gradients

def method_reference(theta, task_rows, lr, steps, lam=0.0, cg_steps=0):
    """PyTorch: the task means of the four methods' meta-gradients at θ (float64)."""
    t = tasks(task_rows)
    th = one_theta(theta)
    unrolled = toy.unroll(th, t, lr, steps)
    path, _, grads, _ = unrolled
    prox, _ = toy.adapt(th, t, lr, steps, lam=lam)
    cg = toy.implicit_gradient_cg(prox[:, :, steps], t, lam, toy.TOY_CG_STEPS)[:, 0, cg_steps]
    return {
        "maml": toy.maml_gradients(th, t, lr, steps, unrolled=unrolled)[:, 0, steps].mean(0).numpy(),
        "fomaml": grads[:, 0, steps].mean(0).numpy(),
        "reptile": toy.reptile_gradients(path)[:, 0, steps].mean(0).numpy(),
        "imaml": cg.mean(0).numpy(),
    }


def test_each_arrow_points_along_its_methods_meta_gradient(page, log, site_url):
    widget = open_widget(page, site_url, METHODS)
    theta = move_theta_by_keys(page, widget, ["ArrowRight"] * 10 + ["ArrowDown"] * 7)
    np.testing.assert_allclose(theta, [0.4, 0.66], atol=1e-9)
    assert widget.locator("[aria-live='polite']").inner_text() == "θ = (0.40, 0.66)"
    # MAML through five steps: exact multi-step, not a one-step approximation.
    press_on(page, widget, "input.meta-gradients-maml-steps", "Home", *["ArrowRight"] * 5)
    d = drawn(widget)
    assert d["methods"]["maml"]["settings"]["steps"] == 5
    for key, method in d["methods"].items():
        s = method["settings"]
        reference = method_reference(theta, d["tasks"], s["lr"], s["steps"], s.get("lam", 0.0), s.get("cg", 0))
        np.testing.assert_allclose(method["gradient"], reference[key], atol=2e-5, err_msg=key)
        # The arrow: from θ, ARROW_LENGTH long, along −g.
        ends = line_ends(widget, f"line.meta-gradients__arrow--{key}")
        start = to_pixels(widget, [theta])[0]
        np.testing.assert_allclose(ends[:2], start, atol=0.01)
        g = reference[key]
        tip = to_pixels(widget, [np.asarray(theta) - ARROW_LENGTH * g / np.linalg.norm(g)])[0]
        np.testing.assert_allclose(ends[2:], tip, atol=0.05, err_msg=key)
    maml5 = d["methods"]["maml"]["gradient"]
    one_step = method_reference(theta, d["tasks"], 0.3, 1)["maml"]
    assert np.linalg.norm(np.subtract(maml5, one_step)) > 1e-2
    # The card prints the vector's length.
    card = widget.locator(".meta-gradients__card--maml .meta-gradients__value").inner_text()
    assert f"{np.linalg.norm(maml5):.4f}" in card
    log.assert_clean()


def test_switching_a_card_off_removes_its_arrow(page, log, site_url):
    widget = open_widget(page, site_url, METHODS)
    keys = ("maml", "fomaml", "reptile", "imaml")
    for key in keys:
        assert widget.locator(f"line.meta-gradients__arrow--{key}").is_visible()
    for off in keys:
        toggle = widget.locator(f"button.meta-gradients-toggle--{off}")
        before = frames(widget)
        toggle.click()
        redrawn(page, widget, before)
        assert toggle.get_attribute("aria-pressed") == "false"
        assert not widget.locator(f"line.meta-gradients__arrow--{off}").is_visible()
        state = drawn(widget)["methods"][off]
        assert state["on"] is False and state["gradient"] is None
        for other in keys:
            if other != off:
                assert widget.locator(f"line.meta-gradients__arrow--{other}").is_visible(), other
        # Back on, by keyboard: the arrow returns.
        toggle.focus()
        before = frames(widget)
        page.keyboard.press("Enter")
        redrawn(page, widget, before)
        assert toggle.get_attribute("aria-pressed") == "true"
        assert widget.locator(f"line.meta-gradients__arrow--{off}").is_visible()
    log.assert_clean()


def test_a_third_task_and_a_mouse_drag_change_the_mean(page, log, site_url):
    widget = open_widget(page, site_url, METHODS)
    before = frames(widget)
    widget.locator("input.meta-gradients-third").check()
    redrawn(page, widget, before)
    d = drawn(widget)
    assert len(d["tasks"]) == 3
    # Drag θ with the mouse to the middle of the plane.
    frame = widget.locator("rect.widget-frame")
    frame.evaluate("el => el.scrollIntoView({block: 'center'})")          # clear of the sticky header
    box = frame.bounding_box()
    handle = widget.locator("g.toy-handle circle").last
    hb = handle.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"], steps=10)
    page.mouse.up()
    wait_until(page, widget, "Math.abs(d.theta[0] - 0.5) < 0.01 && Math.abs(d.theta[1] - 0.5) < 0.01")
    d = drawn(widget)
    s = d["methods"]["maml"]["settings"]
    reference = method_reference(d["theta"], d["tasks"], s["lr"], s["steps"])["maml"]
    np.testing.assert_allclose(d["methods"]["maml"]["gradient"], reference, atol=2e-5)
    assert "3 tasks" in widget.locator(".meta-gradients__readout").inner_text()
    log.assert_clean()


# ---------------------------------------------------------------- every widget

@pytest.mark.parametrize("selector", [PROXIMAL, IMPLICIT, METHODS])
def test_no_slider_end_draws_nan_or_infinity(page, log, site_url, selector):
    widget = open_widget(page, site_url, selector)
    if selector == METHODS:
        before = frames(widget)
        widget.locator("input.meta-gradients-third").check()
        redrawn(page, widget, before)
    # θ at two corners of the plane (Home/End, PageUp/PageDown on the handle).
    for keys in (["Home", "PageDown"], ["End", "PageUp"]):
        widget.locator("g.toy-handle").first.focus()
        for key in keys:
            page.keyboard.press(key)
        corner = [0.0 if keys[0] == "Home" else 1.0, 0.0 if keys[1] == "PageDown" else 1.0]
        wait_until(page, widget, "d.theta[0] === arg[0] && d.theta[1] === arg[1]", corner)
        assert not nonfinite_attributes(widget), f"θ at {corner}: {nonfinite_attributes(widget)[:5]}"
    sliders = widget.locator("input[type=range]")
    count = sliders.count()
    assert count >= (1 if selector == PROXIMAL else 4)
    # Every slider to its minimum, then its maximum, leaving it at the maximum:
    # the later sliders meet the earlier ones' extremes (λ = 100 with α = 0.5 diverges).
    for i in range(count):
        for key in ("Home", "End"):
            slider = sliders.nth(i)
            slider.focus()
            before = frames(widget)
            page.keyboard.press(key)
            redrawn(page, widget, before)
            bad = nonfinite_attributes(widget)
            name = slider.get_attribute("class")
            assert not bad, f"{name} at its {key}: {bad[:5]}"
            text = widget.inner_text()
            assert "NaN" not in text and "Infinity" not in text, f"{name} at its {key}: {text[-300:]}"
    assert widget.get_attribute("data-state") == "ready"
    log.assert_clean()


def test_widget_colours_follow_the_palette(page, log, site_url):
    widget = open_widget(page, site_url, METHODS)
    colours = {}
    for scheme in ("default", "slate"):
        page.evaluate("s => document.body.setAttribute('data-md-color-scheme', s)", scheme)
        colours[scheme] = widget.evaluate("""el => Object.fromEntries(
            ['maml', 'fomaml', 'reptile', 'imaml'].map(k => [k,
                getComputedStyle(el.querySelector('line.meta-gradients__arrow--' + k)).stroke]))""")
    for key, light in colours["default"].items():
        assert light != colours["slate"][key], f"{key}'s arrow keeps its colour in the dark palette"
    assert len(set(colours["default"].values())) == 4, "two methods share a colour"
    log.assert_clean()


def test_static_figures_are_in_place(built_site):
    """The widgets' fallback figures exist where the pages point."""
    for name, page_path in (("proximal-loss", "imaml"), ("implicit-gradient", "imaml"),
                            ("meta-gradients", "comparison")):
        html = (built_site / page_path / "index.html").read_text(encoding="utf-8")
        assert f'data-widget="{name}"' in html
        assert f"assets/figures/toy-{name}.png" in html
        assert (built_site / "assets" / "figures" / f"toy-{name}.png").stat().st_size > 1000
    manifest = json.loads((built_site / "assets" / "models" / "manifest.json").read_text())
    assert {"toy-landscape", "toy-meta"} <= {m["name"] for m in manifest["models"]}
