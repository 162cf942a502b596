""""Watch it learn" (Comparison page, issue 12 item 2): live meta-training in
the browser, in a Web Worker, with the build's meta-step graphs.

Pretrained, MAML, first-order MAML and Reptile meta-train from one θ₀ on one
seeded stream of task batches; the page measures every model's one-step
error on 100 held-out tasks with the θ-fit graph. These tests run 200 live
meta-iterations, twice with the same seed, and hand the weights over to the
page's sine-fit widget. The build's static figure of the widget
(site_builder/watch_figure.py) is the same run, and it stands in the widget's
place, at the widget's height, when the page has no JavaScript.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from browser_support import READY_TIMEOUT_MS, wait_widget

pytestmark = pytest.mark.browser

PAGE = "comparison/"
WIDGET = "[data-widget='watch-it-learn']"
TARGET = "[data-widget='sine-fit'][data-weights-target]"
ITERATIONS = 200
ALGORITHMS = ["pretrained", "maml", "fomaml", "reptile"]


def open_widget(page, site_url):
    page.goto(site_url + PAGE)
    return wait_widget(page, WIDGET)


def run_until(page, iteration):
    return page.evaluate(f"(n) => document.querySelector(\"{WIDGET}\").watchItLearn.runUntil(n)", iteration)


def reset(page, seed):
    return page.evaluate(f"(s) => document.querySelector(\"{WIDGET}\").watchItLearn.reset(s)", seed)


def test_200_live_iterations_lower_mamls_one_step_error_and_the_same_seed_gives_the_same_curve(
        page, log, site_url, quick_build):
    widget = open_widget(page, site_url)
    assert widget.get_attribute("data-iteration") == "0"
    first = run_until(page, ITERATIONS)
    assert first["iteration"] == ITERATIONS
    for alg in ALGORITHMS:
        losses = first["losses"][alg]
        assert len(losses) == ITERATIONS and all(np.isfinite(losses)), alg
    # One shared θ₀: at iteration 0 every model is the same model.
    start = first["heldout"][0]
    assert start["iteration"] == 0 and len(set(start["errors"].values())) == 1, start
    end = first["heldout"][-1]
    assert end["iteration"] == ITERATIONS
    assert end["errors"]["maml"] < start["errors"]["maml"], (start, end)
    # The same task batches for everyone: MAML and first-order MAML compute
    # the same query loss at the shared θ₀ (they differ only in the gradient).
    assert first["losses"]["maml"][0] == pytest.approx(first["losses"]["fomaml"][0], rel=1e-6)
    assert [h["iteration"] for h in first["heldout"]] == [0, 100, 200]

    # The static figure's run (the build's, in onnxruntime natively) is this
    # run: the same θ₀, batches and held-out tasks, up to float rounding,
    # which Reptile's outer step (the whole way to the adapted weights)
    # amplifies: after 130 or so iterations its losses differ by percents.
    from site_builder import manifest
    from site_builder.watch_figure import RUN, live_run

    assert RUN["seed"] == 1 == int(widget.get_attribute("data-seed"))
    built = live_run(quick_build.exported, manifest.entries_by_name(manifest.read(quick_build.exported)),
                     {**RUN, "iterations": ITERATIONS})
    for alg in ALGORITHMS:
        n = 100 if alg == "reptile" else ITERATIONS
        np.testing.assert_allclose(built["losses"][alg][:n], first["losses"][alg][:n], rtol=1e-3, err_msg=alg)
    assert [it for it, _ in built["heldout"]] == [h["iteration"] for h in first["heldout"]]
    for (iteration, errors), measured in zip(built["heldout"], first["heldout"]):
        for alg in ALGORITHMS:
            if alg != "reptile" or iteration <= 100:
                assert errors[alg] == pytest.approx(measured["errors"][alg], rel=1e-3), (iteration, alg)

    assert reset(page, 1)["iteration"] == 0
    assert widget.get_attribute("data-iteration") == "0"
    second = run_until(page, ITERATIONS)
    assert second["losses"] == first["losses"]                 # identical numbers, not close ones
    assert second["heldout"] == first["heldout"]

    # Another seed is another run.
    reset(page, 2)
    other = run_until(page, 20)
    assert other["losses"]["maml"] != first["losses"]["maml"][:20]
    log.assert_clean()


def test_where_the_run_stops_the_table_measures_the_theta_it_stopped_at(page, log, site_url):
    """Held-out errors come every 100 iterations and wherever the run stops
    (runUntil, Pause), once per iteration."""
    open_widget(page, site_url)
    state = run_until(page, 130)
    assert [h["iteration"] for h in state["heldout"]] == [0, 100, 130]
    state = run_until(page, 200)
    assert [h["iteration"] for h in state["heldout"]] == [0, 100, 130, 200]
    assert state["heldout"][2]["errors"] != state["heldout"][3]["errors"]
    log.assert_clean()


@pytest.mark.parametrize("width", [390, 1350])
def test_without_javascript_the_builds_run_stands_in_the_widgets_place(browser, site_url, width):
    """No JavaScript: the widget's box shows the build's figure (loaded) and
    its note, at the height the live widget takes; with JavaScript the widget
    replaces them, and the text below moves by no more than the other widgets'."""
    heights = {}
    for script in (False, True):
        context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=script)
        try:
            page = context.new_page()
            page.goto(site_url + PAGE, wait_until="load")
            widget = page.locator(WIDGET)
            figure = widget.locator("img[src*='assets/figures/watch-it-learn.png']")
            if not script:
                figure.scroll_into_view_if_needed()
                page.wait_for_function("img => img.complete", arg=figure.element_handle())
                assert figure.is_visible()
                assert figure.evaluate("img => img.naturalWidth") > 0, "the static figure did not load"
                box = figure.bounding_box()
                assert box["width"] <= widget.bounding_box()["width"]
                assert "first 1,000" in widget.inner_text()
            else:
                wait_widget(page, WIDGET)
                page.wait_for_timeout(200)
                assert figure.is_hidden(), "the static figure is still shown under the widget"
            heights[script] = widget.bounding_box()["height"]
        finally:
            context.close()
    static, live = heights[False], heights[True]
    assert static <= live + 1, f"the figure's box ({static:.0f} px) is taller than the widget ({live:.0f} px)"
    assert live - static <= max(30, 0.05 * live), (static, live)


def test_pause_and_start_continue_the_same_run(page, log, site_url):
    """Pausing halfway and starting again gives the numbers of one run straight through."""
    widget = open_widget(page, site_url)
    straight = run_until(page, 60)
    reset(page, 1)
    run_until(page, 25)
    assert widget.get_attribute("data-running") == "false"
    widget.locator("button.watch-it-learn-start").click()           # Resume
    page.wait_for_function("el => Number(el.dataset.iteration) >= 30", arg=widget.element_handle(),
                           timeout=READY_TIMEOUT_MS)
    widget.locator("button.watch-it-learn-start").click()           # Pause
    page.wait_for_function("el => el.dataset.running === 'false'", arg=widget.element_handle(),
                           timeout=READY_TIMEOUT_MS)
    paused_at = int(widget.get_attribute("data-iteration"))
    assert paused_at >= 30
    resumed = run_until(page, max(60, paused_at))
    n = 60
    assert resumed["losses"]["maml"][:n] == straight["losses"]["maml"][:n]
    log.assert_clean()


def test_use_these_weights_hands_the_live_theta_to_the_sine_fit_widget(page, log, site_url, quick_build):
    """The button hands MAML's current θ to the page's sine-fit widget, which
    then predicts with the θ-fit graph: the same numbers as onnxruntime in
    Python from that θ; "Back to" restores the built model."""
    from meta.theta_fit import run_fit

    widget = open_widget(page, site_url)
    run_until(page, 30)
    theta = page.evaluate(f"""async () => Array.from(
        (await document.querySelector("{WIDGET}").watchItLearn.weights('maml')).params)""")
    widget.locator("button.watch-it-learn-use[data-model='maml']").click()
    target = wait_widget(page, TARGET, "[data-state='ready'][data-weights='handed']")
    assert "MAML after 30 live iterations" in target.locator(".sine-fit__weights").inner_text()
    xs = [-3.0, -1.0, 0.5, 2.0, 4.0]
    page.evaluate("""([sel, xs]) => { const w = document.querySelector(sel).sineFit;
                     w.amplitude = 2.0; w.phase = 1.0; w.setSamples(xs); }""", [TARGET, xs])
    page.wait_for_function("""(sel) => { const el = document.querySelector(sel); const w = el.sineFit;
        return el.dataset.state === 'ready' && !w.running && w.result.sampleCount === 5; }""", arg=TARGET,
                           timeout=READY_TIMEOUT_MS)
    got = page.evaluate("(sel) => { const w = document.querySelector(sel).sineFit; return {"
                        "queryX: Array.from(w.queryX), queryY: w.result.queryY.map((q) => Array.from(q)),"
                        "supportLoss: w.result.supportLoss}; }", TARGET)
    sx = np.array(xs, dtype=np.float32).reshape(1, -1, 1)
    expected = run_fit(quick_build.exported / "theta-fit.onnx", {
        "params": np.array(theta, dtype=np.float32)[None], "support_x": sx,
        "support_y": (2.0 * np.sin(sx.astype(np.float64) + 1.0)).astype(np.float32),
        "query_x": np.array(got["queryX"], dtype=np.float32).reshape(1, -1, 1), "inner_lr": 0.01})
    np.testing.assert_allclose(np.array(got["queryY"]), expected["query_y"][:, 0, :, 0], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got["supportLoss"], expected["support_loss"][:, 0], atol=1e-5, rtol=1e-4)
    target.locator("button.sine-fit-own-weights").click()
    page.wait_for_selector(TARGET + "[data-weights='own'][data-state='ready']", state="attached",
                           timeout=READY_TIMEOUT_MS)
    log.assert_clean()


def test_the_speed_slider_at_both_ends(page, log, site_url):
    """Slowest (5 iterations a second): a run of two seconds does at most about
    ten; fastest: "as fast as it goes", and the run goes on with finite numbers."""
    widget = open_widget(page, site_url)
    speed = widget.locator("input.watch-it-learn-speed")
    shown = widget.locator("label:has(input.watch-it-learn-speed) output")
    speed.focus()
    page.keyboard.press("Home")
    assert shown.inner_text() == "5 iterations/s"
    play = widget.locator("button.watch-it-learn-start")
    started = time.monotonic()
    play.click()
    page.wait_for_timeout(2000)
    play.click()
    page.wait_for_function("el => el.dataset.running === 'false'", arg=widget.element_handle(),
                           timeout=READY_TIMEOUT_MS)
    elapsed = time.monotonic() - started
    slow = int(widget.get_attribute("data-iteration"))
    assert 1 <= slow <= 5 * elapsed + 3, (slow, elapsed)
    speed.focus()
    page.keyboard.press("End")
    assert shown.inner_text() == "as fast as it goes"
    state = run_until(page, slow + 40)
    assert state["iteration"] == slow + 40
    assert all(np.isfinite(state["losses"][alg]).all() for alg in ALGORITHMS)
    log.assert_clean()


SHARED_RUN_JS = """async ([module, workers, n]) => {
  const m = await import(module);
  const run = new m.TrainingRun(await m.trainingConfig({ workers, evalEvery: 20, perSecond: Infinity }));
  await run.open();
  const straight = await run.runUntil(n);
  // A pause mid-run: every worker stops, the ones behind catch up, and the table is of one iteration.
  run.play();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const paused = await new Promise((resolve) => {
    run.onUpdate = (message) => { if (message.type === "paused" && !run.running && run.shards.every((s) => s.stopped)) resolve(run.state()); };
    run.pause();
  });
  run.close();
  return { straight, paused, shares: run.shards.map((s) => s.algorithms) };
}"""


def test_the_algorithms_shared_between_two_workers_give_the_numbers_of_one(page, log, site_url):
    """TrainingRun shares the four algorithms between two workers (Reptile in
    one, the other three in the other): each worker draws the same task
    stream, so the losses and held-out errors are those of one worker, to the
    bit; a pause leaves every worker at one iteration, measured there."""
    open_widget(page, site_url)
    module = site_url + "javascripts/widgets/watch-it-learn.js"
    one = page.evaluate(SHARED_RUN_JS, [module, 1, 60])
    two = page.evaluate(SHARED_RUN_JS, [module, 2, 60])
    assert one["shares"] == [ALGORITHMS]
    assert two["shares"] == [["reptile"], ["pretrained", "maml", "fomaml"]]
    assert two["straight"] == one["straight"]
    assert [h["iteration"] for h in two["straight"]["heldout"]] == [0, 20, 40, 60]
    paused = two["paused"]
    assert paused["iteration"] > 60
    assert all(len(paused["losses"][alg]) == paused["iteration"] for alg in ALGORITHMS), \
        {alg: len(v) for alg, v in paused["losses"].items()}
    last = paused["heldout"][-1]
    assert last["iteration"] == paused["iteration"] and sorted(last["errors"]) == sorted(ALGORITHMS), last
    assert all(sorted(h["errors"]) == sorted(ALGORITHMS) for h in paused["heldout"])
    log.assert_clean()
