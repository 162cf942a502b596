"""A widget in view starts as soon as it can (docs/javascripts/main.js, lib/ort-runner.js).

When a sinusoid widget comes into view, main.js starts its inference session
(manifest, graph, runtime) alongside the widget's own modules instead of after
them; lib/ort-runner.js keeps one session per graph, so the widget receives
that same session: every file is fetched once, and the widget answers.
"""
from __future__ import annotations

import re

import pytest
from browser_support import PageLog, wait_widget

pytestmark = pytest.mark.browser

FIRST = '[data-widget="sine-fit"][data-model="pretrained-sinusoid"]'


def test_a_widget_in_view_fetches_its_graph_manifest_and_runtime_once(page, site_url):
    log = PageLog(page)
    page.goto(site_url + "how-maml-works/", wait_until="load")
    widget = wait_widget(page, FIRST)
    assert widget.get_attribute("data-state") == "ready"
    page.wait_for_timeout(300)
    fetched = [url.rsplit("/", 1)[1] for url in log.requests]
    for name in ("pretrained-sinusoid.onnx", "manifest.json", "ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"):
        assert fetched.count(name) == 1, f"{name} fetched {fetched.count(name)} times"
    # The widget drew its untuned and adapted predictions with that session.
    assert widget.locator("path.sine-fit-before").get_attribute("d")
    assert re.search(r"\d", widget.locator("path.sine-fit-after").get_attribute("d") or "")
    log.assert_clean()
