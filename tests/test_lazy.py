"""Widgets start only when the reader comes near them (docs/javascripts/main.js).

What a reader's browser does: a page whose widgets are all further down
fetches no widget module, no ONNX runtime and no model while the reader stays
at the top; a page without widgets fetches none of it at all; bringing a
widget into view starts it, with a loading notice that mentions a model only
when the widget has one; the runtime is fetched once per visit however many
widgets use it; and a widget replacing its static figure barely changes the
height of its box (widgets.css reserves it), so the text below does not jump.
"""
from __future__ import annotations

import pytest
from browser_support import PageLog, wait_all_widgets, wait_widget

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1350, "height": 940}
MAML_PAGE = "how-maml-works/"
FIRST = '[data-widget="sine-fit"][data-model="pretrained-sinusoid"]'
LAST = '[data-widget="sine-fit"][data-model="maml-sinusoid"]'

# Records the loading notice each widget showed (the notice goes away once the
# widget runs, so it is caught as it is added).
NOTICES_JS = """
window.__notices = {};
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.classList?.contains('widget-status--loading')) {
        window.__notices[node.parentElement.dataset.widget] = node.textContent;
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def widget_requests(log) -> list[str]:
    return [url for url in log.requests
            if "onnxruntime-web" in url or "/assets/models/" in url or "/javascripts/widgets/" in url]


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(NOTICES_JS)
    page = context.new_page()
    yield page
    context.close()


def test_widgets_below_the_fold_start_only_when_the_reader_comes_near(desktop, site_url):
    page, log = desktop, PageLog(desktop)
    page.goto(site_url + MAML_PAGE, wait_until="load")
    page.wait_for_timeout(1000)
    assert widget_requests(log) == [], "widgets further down started before the reader moved"
    assert page.locator("[data-widget][data-state]").count() == 0
    figure = page.locator(FIRST + " img")
    assert figure.count() == 1 and figure.first.is_visible()

    widget = wait_widget(page, FIRST)
    assert widget.locator("img").first.is_hidden(), "the static figure is still shown under the widget"
    # The last widget of the page is screens away: not started yet.
    assert page.locator(LAST).get_attribute("data-state") is None
    wait_widget(page, LAST)
    wait_all_widgets(page)
    runtime = [url for url in log.requests if "onnxruntime-web" in url]
    assert sorted(url.rsplit("/", 1)[1] for url in runtime) == \
        ["ort-wasm-simd-threaded.wasm", "ort.wasm.bundle.min.mjs"], f"the runtime was not fetched once: {runtime}"
    notices = page.evaluate("window.__notices")
    assert notices["sine-fit"] == "Loading the interactive model…"
    assert notices["will-it-work"] == "Loading the interactive model…"
    log.assert_clean()


@pytest.mark.parametrize("path", ["model-agnostic/", "preliminaries/", "results/"])
def test_a_page_without_widgets_loads_no_widget_code(desktop, site_url, path):
    page, log = desktop, PageLog(desktop)
    page.goto(site_url + path, wait_until="load")
    page.mouse.wheel(0, 3000)                       # the reader scrolls: still nothing to start
    page.wait_for_timeout(500)
    assert page.locator("[data-widget]").count() == 0
    assert widget_requests(log) == []
    assert not [url for url in log.requests if "/assets/vendor/d3-" in url]
    log.assert_clean()


def test_widgets_without_a_model_do_not_say_they_load_one(desktop, site_url):
    page, log = desktop, PageLog(desktop)
    page.goto(site_url, wait_until="load")
    wait_all_widgets(page)
    notices = page.evaluate("window.__notices")
    for kind in ("few-shot-quiz", "few-shot-map", "omniglot-accuracy"):
        assert notices[kind] == "Loading the interactive figure…", notices
    assert not [url for url in log.requests if "onnxruntime-web" in url or "/assets/models/" in url]
    log.assert_clean()


@pytest.mark.parametrize("width", [390, 1350])
def test_a_widget_replacing_its_figure_keeps_its_height(browser, site_url, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        for path in (MAML_PAGE, ""):
            page.goto(site_url + path, wait_until="load")
            static = page.evaluate("() => [...document.querySelectorAll('[data-widget]')]"
                                   ".map(w => w.getBoundingClientRect().height)")
            wait_all_widgets(page)
            page.wait_for_timeout(200)
            live = page.evaluate("() => [...document.querySelectorAll('[data-widget]')]"
                                 ".map(w => w.getBoundingClientRect().height)")
            kinds = page.evaluate("() => [...document.querySelectorAll('[data-widget]')].map(w => w.dataset.widget)")
            for kind, before, after in zip(kinds, static, live):
                assert before <= after + 1, f"{kind} at {width} px reserves {before:.0f} px but takes {after:.0f}"
                assert after - before <= max(30, 0.05 * after), (
                    f"{kind} at {width} px grows from {before:.0f} to {after:.0f} px when it starts")
    finally:
        context.close()
