"""Widgets under bad input and failed loads (issue 10, items 6 and 8).

- Every slider of every widget to both ends draws no NaN or Infinity and logs
  no error: the sinusoid widgets here (all five models, with five samples),
  the loss-landscape widgets in tests/test_toy_widgets.py and
  tests/test_toy_widgets_2.py; a guard test fails if a widget with sliders
  is covered by neither. The sixth-sample rule is
  tests/test_browser.py::test_dice_draws_five_samples_and_a_sixth_click_replaces_the_oldest.
- A click outside the axes takes no sample and moves no θ.
- A model (.onnx) or the runtime's WebAssembly (.wasm) that fails to load, or
  a model whose first run fails, leaves the static figure with a notice in
  place saying why.
- runGraph (lib/ort-runner.js) checks every feed against the graph's inputs
  and names the input, what was given and what is allowed.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import READY_TIMEOUT_MS, PageLog, nonfinite_attributes

pytestmark = pytest.mark.browser

SINE_PAGES = ["how-maml-works/", "fomaml/", "reptile/", "imaml/"]
#: The sinusoid widgets, whose slider ends are tested here (one model, or all of them).
SINE_KINDS = ("sine-fit", "all-models")
#: Widgets with sliders whose ends are tested elsewhere.
SLIDER_TESTS_ELSEWHERE = {
    "will-it-work": "test_toy_widgets.py", "reptile-interpolation": "test_toy_widgets.py",
    "curvature": "test_toy_widgets.py", "accumulated-loss": "test_toy_widgets.py",
    "proximal-loss": "test_toy_widgets_2.py", "implicit-gradient": "test_toy_widgets_2.py",
    "meta-gradients": "test_toy_widgets_2.py", "watch-it-learn": "test_watch_it_learn.py",
}
WIDGET_PAGES = ["", "how-maml-works/", "fomaml/", "reptile/", "imaml/", "comparison/"]
ALL_READY = "() => [...document.querySelectorAll('[data-widget]')].every(w => w.dataset.state === 'ready')"


def start_widgets(page, url):
    page.goto(url, wait_until="load")
    for widget in page.locator("[data-widget]").all():
        widget.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-widget]')].every(w => ['ready', 'error'].includes(w.dataset.state))",
        timeout=READY_TIMEOUT_MS)


def idle(page, widget):
    page.wait_for_function("el => el.dataset.state === 'ready'", arg=widget.element_handle(), timeout=READY_TIMEOUT_MS)


def assert_finite(widget, where):
    bad = nonfinite_attributes(widget)
    assert not bad, f"{where}: {bad[:5]}"
    text = widget.inner_text()
    assert "NaN" not in text and "Infinity" not in text, f"{where}: {text[-300:]}"


# ---------------------------------------------------------------- item 6a

@pytest.mark.slow
def test_every_sinusoid_widget_slider_at_both_ends_with_five_samples_draws_finite_numbers(page, site_url):
    log = PageLog(page)
    kinds_with_sliders = set()
    for path in WIDGET_PAGES:
        start_widgets(page, site_url + path)
        for widget in page.locator("[data-widget]").all():
            if widget.locator("input[type=range]").count():
                kinds_with_sliders.add(widget.get_attribute("data-widget"))
        for widget in page.locator(", ".join(f"[data-widget='{kind}']" for kind in SINE_KINDS)).all():
            model = widget.get_attribute("data-model") or widget.get_attribute("data-widget")
            assert widget.get_attribute("data-state") == "ready", f"{model} did not start"
            widget.scroll_into_view_if_needed()
            widget.locator("button.sine-fit-dice").click()
            page.wait_for_function("el => el.dataset.samples === '5' && el.dataset.state === 'ready'",
                                   arg=widget.element_handle(), timeout=READY_TIMEOUT_MS)
            sliders = widget.locator("input[type=range]")
            assert sliders.count() == 3                         # amplitude, phase, steps
            # Each to its minimum and then its maximum, left there: the last
            # slider (steps) meets the largest amplitude and phase.
            for i in range(sliders.count()):
                for key in ("Home", "End"):
                    slider = sliders.nth(i)
                    slider.focus()
                    page.keyboard.press(key)
                    idle(page, widget)
                    expected = slider.get_attribute("min" if key == "Home" else "max")
                    step = float(slider.get_attribute("step"))
                    assert float(slider.input_value()) == pytest.approx(float(expected), abs=step)
                    assert_finite(widget, f"{model}: {slider.get_attribute('class')} at its {key}")
    assert kinds_with_sliders, "no widget with a slider was found"
    untested = kinds_with_sliders - set(SLIDER_TESTS_ELSEWHERE) - set(SINE_KINDS)
    assert not untested, f"widgets whose slider ends no test drives: {untested}"
    log.assert_clean()


def _click_outside(page, svg, frame):
    """Click the SVG in its margins: left of, below, above and right of the axes' frame."""
    s, f = svg.bounding_box(), frame.bounding_box()
    spots = [(s["x"] + 3, f["y"] + f["height"] / 2), (f["x"] + f["width"] / 2, f["y"] + f["height"] + 12),
             (f["x"] + f["width"] / 2, max(s["y"] + 2, f["y"] - 4)), (min(s["x"] + s["width"] - 2, f["x"] + f["width"] + 4),
                                                                        f["y"] + f["height"] / 2)]
    for x, y in spots:
        assert s["x"] <= x <= s["x"] + s["width"] and s["y"] <= y <= s["y"] + s["height"]
        assert not (f["x"] <= x <= f["x"] + f["width"] and f["y"] <= y <= f["y"] + f["height"]), (x, y, f)
        page.mouse.click(x, y)
    page.wait_for_timeout(300)


def test_clicks_outside_the_axes_take_no_sample_and_move_no_theta(page, site_url):
    log = PageLog(page)
    start_widgets(page, site_url + "how-maml-works/")
    sine = page.locator("[data-widget='sine-fit'][data-model='maml-sinusoid']")
    sine.scroll_into_view_if_needed()
    _click_outside(page, sine.locator("svg").first, sine.locator("rect.widget-frame").first)
    assert sine.get_attribute("data-samples") == "0"
    frame = sine.locator("rect.widget-frame").first.bounding_box()
    page.mouse.click(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2)
    page.wait_for_selector("[data-model='maml-sinusoid'][data-samples='1'][data-state='ready']", state="attached")

    toy = page.locator("[data-widget='will-it-work']")
    toy.scroll_into_view_if_needed()
    theta = toy.evaluate("el => el.toyWidget.theta.slice()")
    frames = toy.evaluate("el => el.toyWidget.frames")
    _click_outside(page, toy.locator("svg").first, toy.locator("rect.widget-frame").first)
    assert toy.evaluate("el => el.toyWidget.theta.slice()") == theta
    assert toy.evaluate("el => el.toyWidget.frames") == frames
    log.assert_clean()


def test_bad_widget_attributes_are_clamped_or_named(page, site_url):
    """data-steps beyond the graph's steps, negative or not a number; a model that does not exist."""
    log = PageLog(page)
    start_widgets(page, site_url + "how-maml-works/")
    result = page.evaluate("""async () => {
        const { mount } = await import(new URL("../javascripts/widgets/sine-fit.js", document.baseURI).href);
        const out = {};
        for (const steps of ["99", "-3", "abc", "Infinity"]) {
            const el = document.createElement("div");
            el.dataset.widget = "sine-fit";
            el.dataset.model = "maml-sinusoid";
            el.dataset.steps = steps;
            document.querySelector("article").append(el);
            await mount(el);
            out[steps] = [el.querySelector("input.sine-fit-steps").value, el.sineFit.steps, el.dataset.state];
            el.remove();
        }
        const bad = document.createElement("div");
        bad.dataset.model = "no-such-model";
        out.missing = await mount(bad).then(() => "mounted", (e) => `${e.constructor.name}: ${e.message}`);
        return out;
    }""")
    assert result["99"] == ["10", 10, "ready"]
    assert result["-3"] == ["0", 0, "ready"]
    assert result["abc"][1] in (0, 1) and result["abc"][2] == "ready"
    assert result["Infinity"] == ["0", 0, "ready"]          # not a finite number: the lowest
    assert result["missing"].startswith('WidgetError: the site has no model named "no-such-model"')
    assert "maml-sinusoid" in result["missing"]
    log.assert_clean()


# ---------------------------------------------------------------- item 6b

def _assert_static_figure_with_notice(page, kinds, reason):
    for widget in page.locator("[data-widget]").all():
        kind = widget.get_attribute("data-widget")
        if kind not in kinds:
            continue
        assert widget.get_attribute("data-state") == "error", kind
        notice = widget.locator(":scope > .widget-status--error")
        assert notice.count() == 1, kind
        text = notice.inner_text()
        assert text.startswith("The interactive version of this figure cannot run here:"), text
        assert reason in text, text
        assert "static version" in text
        # The build's figure is shown, and nothing of the widget's own drawing.
        assert widget.locator("img:visible, svg:visible").count() >= 1, f"{kind}: no static figure is visible"
        assert widget.locator(".sine-fit:visible, .toy-widget:visible").count() == 0, f"{kind}: an empty widget is shown"


MODEL_KINDS = {"sine-fit", "will-it-work"}


@pytest.mark.parametrize("target, failure, reason", [
    ("**/*.onnx", "404", "is missing (HTTP 404)"),
    ("**/*.onnx", "abort", "could not be fetched"),
    ("**/*.wasm", "404", "WebAssembly file /assets/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm"),
    ("**/*.wasm", "abort", "WebAssembly file /assets/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm"),
])
def test_a_model_or_runtime_that_fails_to_load_leaves_the_static_figure(page, site_url, target, failure, reason):
    if failure == "404":
        page.route(target, lambda route: route.fulfill(status=404, body="missing"))
    else:
        page.route(target, lambda route: route.abort())
    start_widgets(page, site_url + "how-maml-works/")
    _assert_static_figure_with_notice(page, MODEL_KINDS, reason)
    # The widget without a model still runs.
    assert page.locator("[data-widget='accumulated-loss']").get_attribute("data-state") == "ready"


def _graph_that_fails_when_run() -> bytes:
    """The sinusoid graph's inputs and outputs, but a reshape no input of 201 query points fits."""
    from onnx import TensorProto, helper

    def tensor(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    nodes = [
        helper.make_node("Constant", [], ["bad_shape"], value=helper.make_tensor("s", TensorProto.INT64, [3], [-1, 7, 1])),
        helper.make_node("Reshape", ["query_x", "bad_shape"], ["query_y"]),
        helper.make_node("ReduceSum", ["support_y"], ["support_loss"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "fails-when-run",
        [tensor("support_x", ["N", 1]), tensor("support_y", ["N", 1]), tensor("query_x", ["M", 1]),
         tensor("inner_lr", [])],
        [tensor("query_y", [None, None, 1]), tensor("support_loss", [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_model_whose_first_run_fails_leaves_the_static_figure(page, site_url):
    body = _graph_that_fails_when_run()
    page.route("**/maml-sinusoid.onnx", lambda route: route.fulfill(status=200, body=body,
                                                                    content_type="application/octet-stream"))
    start_widgets(page, site_url + "how-maml-works/")
    page.locator("[data-widget='sine-fit'][data-model='maml-sinusoid']").scroll_into_view_if_needed()
    page.wait_for_selector("[data-model='maml-sinusoid'][data-state='error']", state="attached",
                           timeout=READY_TIMEOUT_MS)
    widget = page.locator("[data-widget='sine-fit'][data-model='maml-sinusoid']")
    text = widget.locator(":scope > .widget-status--error").inner_text()
    assert "the model /assets/models/maml-sinusoid.onnx failed to run" in text, text
    assert widget.locator("img:visible, svg:visible").count() >= 1
    assert widget.locator(".sine-fit:visible").count() == 0
    # The other sinusoid widget on the page is unaffected.
    assert page.locator("[data-model='pretrained-sinusoid']").get_attribute("data-state") == "ready"


# ---------------------------------------------------------------- item 8

def test_run_graph_names_the_input_what_was_given_and_what_is_allowed(page, site_url):
    log = PageLog(page)
    start_widgets(page, site_url + "how-maml-works/")
    messages = page.evaluate("""async () => {
        const base = new URL("../", document.baseURI);
        const ort = await import(new URL("javascripts/lib/ort-runner.js", base).href);
        const { WidgetError } = await import(new URL("javascripts/lib/site.js", base).href);
        const { findModel } = await import(new URL("javascripts/lib/manifest.js", base).href);
        const sine = await ort.loadSession(new URL("assets/models/maml-sinusoid.onnx", base));
        const toy = await ort.loadSession(new URL("assets/models/toy-meta.onnx", base));
        const good = () => ({
            support_x: { data: [0.5, -1, 2], dims: [3, 1] }, support_y: { data: [1, 0, -1], dims: [3, 1] },
            query_x: { data: [0, 1], dims: [2, 1] }, inner_lr: { data: [0.01], dims: [] },
        });
        const cases = {
            rank: (f) => { f.support_x.dims = [3]; },
            sharedSize: (f) => { f.support_y = { data: [1, 0], dims: [2, 1] }; },
            fixedSize: (f) => { f.query_x = { data: [0, 1, 2, 3], dims: [2, 2] }; },
            missing: (f) => { delete f.inner_lr; },
            unknown: (f) => { f.x = { data: [1], dims: [] }; },
            count: (f) => { f.support_x.data = [0.5, -1]; },
            nan: (f) => { f.support_y.data = [1, NaN, -1]; },
            string: (f) => { f.query_x.data = "0,1"; },
            negative: (f) => { f.query_x.dims = [-1, 1]; },
        };
        const out = {};
        for (const [name, spoil] of Object.entries(cases)) {
            const feeds = good();
            spoil(feeds);
            out[name] = await ort.runGraph(sine, feeds).then(() => "ran", (e) => (e instanceof WidgetError ? "" : "NOT A WidgetError: ") + e.message);
        }
        out.toyTheta = await ort.runGraph(toy, {
            theta: { data: [0.5, 0.5, 0.5], dims: [3] }, task_params: { data: [0.3, 0.05], dims: [1, 2] },
            inner_lr: { data: [0.1], dims: [] }, inner_steps: { data: [1], dims: [] },
            lam: { data: [0], dims: [] }, cg_steps: { data: [0], dims: [] },
        }).then(() => "ran", (e) => e.message);
        // The same check from the model list's description, for a runtime without input metadata.
        const specs = (await findModel("maml-sinusoid")).graph.inputs;
        const feeds = good();
        feeds.support_x.dims = [3];
        try { ort.checkFeeds(feeds, specs, null, "the model"); out.manifest = "passed"; } catch (e) { out.manifest = e.message; }
        const result = await ort.runGraph(sine, good());
        out.good = [result.query_y.dims, result.support_loss.dims];
        return out;
    }""")
    model = "the model /assets/models/maml-sinusoid.onnx"
    assert messages["rank"] == f'{model} cannot take input "support_x": given float32 [3], allowed float32 [N, 1] (2 dimensions, not 1).'
    assert messages["sharedSize"] == (f'{model} cannot take input "support_y": given float32 [2, 1], '
                                      'allowed float32 [N, 1] (N is 3 in input "support_x").')
    assert messages["fixedSize"] == f'{model} cannot take input "query_x": given float32 [2, 2], allowed float32 [M, 1] (dimension 2 must be 1).'
    assert messages["missing"] == f'{model} needs input "inner_lr", which was not given.'
    assert messages["unknown"] == f'{model} has no input "x" (it takes support_x, support_y, query_x, inner_lr).'
    assert messages["count"] == f'{model} cannot take input "support_x": given 2 values for shape [3, 1], which holds 3, allowed float32 [N, 1].'
    assert messages["nan"] == f'{model} cannot take input "support_y": given NaN at position 1, allowed float32 [N, 1] (finite numbers only).'
    assert messages["string"] == f'{model} cannot take input "query_x": given a string instead of a list of numbers, allowed float32 [M, 1].'
    assert messages["negative"] == f'{model} cannot take input "query_x": given dims [-1, 1], which is not a shape, allowed float32 [M, 1].'
    assert messages["toyTheta"] == ('the model /assets/models/toy-meta.onnx cannot take input "theta": '
                                    'given float32 [3], allowed float32 [2] (dimension 1 must be 2).')
    assert messages["manifest"] == 'the model cannot take input "support_x": given float32 [3], allowed float32 [N, 1] (2 dimensions, not 1).'
    assert messages["good"] == [[11, 2, 1], [11]]
    log.assert_clean()
