"""What the browser tests share: the Chromium they drive, a local HTTP server,
a record of what a page requested and logged, the helpers that bring a widget
into view (widgets start only near the viewport) and wait for it, and those
that read the loss-landscape ("toy") widgets.

The fixtures built on these (``browser_type_launch_args``, ``site_url``,
``log``, ``touch_page``) are in tests/conftest.py; test modules import the
helpers from here, never from another test module.
"""
from __future__ import annotations

import contextlib
import http.server
import os
import threading
from urllib.parse import urlsplit

import numpy as np

CHROMIUM = os.environ.get("MAML_SITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
READY_TIMEOUT_MS = 60_000          # WebAssembly compile of the 14 MB runtime on a slow CI core


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without printing a line per request."""

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@contextlib.contextmanager
def serve(handler):
    """Serve with `handler` on 127.0.0.1 at a free port; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class PageLog:
    """Everything a page asked for and complained about."""

    def __init__(self, page):
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def assert_clean(self):
        assert not self.console_errors, f"console errors: {self.console_errors}"
        assert not self.page_errors, f"uncaught page errors: {self.page_errors}"
        foreign = [url for url in self.requests
                   if urlsplit(url).scheme not in ("data", "blob")
                   and urlsplit(url).hostname != "127.0.0.1"]
        assert not foreign, f"requests to other hosts: {foreign}"
        assert self.requests, "no request was recorded"


# ---------------------------------------------------------------- widgets
# A widget starts (loads its module, the ONNX runtime and its model) only when
# it comes near the viewport, or ahead of it once the reader has scrolled
# (docs/javascripts/main.js): a test brings it into view before waiting.

def bring_into_view(page, selector):
    """Scroll the first element matching `selector` to the middle of the viewport."""
    page.wait_for_selector(selector, state="attached")
    page.locator(selector).first.evaluate("el => el.scrollIntoView({block: 'center'})")


def wait_widget(page, selector, condition="[data-state='ready']", timeout=READY_TIMEOUT_MS):
    """Bring the widget `selector` into view and wait until `selector + condition` matches it."""
    bring_into_view(page, selector)
    page.wait_for_selector(selector + condition, state="attached", timeout=timeout)
    return page.locator(selector)


def wait_all_widgets(page, timeout=READY_TIMEOUT_MS):
    """Bring every widget on the page into view in turn; wait until each is ready or has failed."""
    for widget in page.locator("[data-widget]").all():
        widget.evaluate("el => el.scrollIntoView({block: 'center'})")
        # Started (main.js marks it) before the next one is scrolled to.
        page.wait_for_function("el => el.dataset.widgetMounted !== undefined",
                               arg=widget.element_handle(), timeout=timeout)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-widget]')].every("
        "w => ['ready', 'error'].includes(w.dataset.state))", timeout=timeout)


# ---------------------------------------------------------------- toy widgets
# Each toy widget exposes element.toyWidget: `frames` counts its redraws,
# `plot` or `plots` are its scales, `drawn` (where present) what it drew last.

def open_toy_widget(page, url, selector):
    """Load `url`, wait until the widget `selector` is ready and scroll it into view."""
    page.goto(url)
    page.wait_for_load_state("load")
    widget = wait_widget(page, selector)
    widget.scroll_into_view_if_needed()
    return widget


def frames(widget) -> int:
    return widget.evaluate("el => el.toyWidget.frames")


def wait_until(page, widget, condition: str, arg=None):
    """Wait until the widget is idle and `condition` (JS of el, d = drawn state, arg) holds."""
    page.wait_for_function(
        f"([el, arg]) => {{ const d = el.toyWidget.drawn; "
        f"return el.dataset.state === 'ready' && ({condition}); }}",
        arg=[widget.element_handle(), arg], timeout=READY_TIMEOUT_MS)


def redrawn(page, widget, before: int):
    """Wait until the widget has redrawn since `before` frames and is idle."""
    wait_until(page, widget, "el.toyWidget.frames > arg", before)


def nonfinite_attributes(widget) -> list[str]:
    """Every SVG attribute (and inline style) inside the widget that holds NaN or Infinity."""
    return widget.evaluate("""el => {
        const bad = [];
        for (const node of el.querySelectorAll('svg, svg *')) {
            for (const attr of node.attributes) {
                if (/NaN|Infinity/.test(attr.value)) {
                    bad.push(`${node.tagName}.${attr.name}=${attr.value.slice(0, 60)}`);
                }
            }
        }
        return bad;
    }""")


def line_ends(widget, css) -> np.ndarray:
    """(x1, y1, x2, y2) of a drawn line, in SVG units; the line must be shown."""
    line = widget.locator(css)
    assert line.evaluate("el => el.style.display") != "none", f"{css} is hidden"
    return np.array([float(line.get_attribute(a)) for a in ("x1", "y1", "x2", "y2")])


def to_pixels(widget, points, plot_index=0) -> np.ndarray:
    """Data points -> SVG units with the widget's own scales."""
    return np.array(widget.evaluate("""(el, [i, pts]) => {
        const w = el.toyWidget;
        const plot = w.plots ? w.plots[i] : w.plot;
        return pts.map(([a, b]) => [plot.x(a), plot.y(b)]);
    }""", [plot_index, [list(map(float, p)) for p in points]]))
