"""How long one θ drag frame takes in the loss-landscape widgets.

    python tests/benchmarks/toy_drag.py                       # the repository's site/
    python tests/benchmarks/toy_drag.py --site /tmp/me/site --moves 100 --json

Serves a built site on 127.0.0.1, opens it in Debian's Chromium (Playwright,
headless) and drags θ in every widget that has one (WIDGETS: will it work,
curvature, Reptile, proximal loss, implicit gradient, the comparison) along a
circle, one pointer move per animation frame, as a mouse at 60 Hz would. For each move it records

  latency  pointer move -> the widget's redraw complete (graph run, SVG
           updated, layout done), including the wait for the next animation
           frame that the handle coalesces moves into;
  work     that frame's own work: from the animation frame that applies the
           move to the redraw complete (ONNX run + drawing + layout).

and prints the median and 95th percentile of each over --moves moves, and the
ratio of the work to the 16 ms frame budget of a 60 Hz display (≤ 1: the drag
redraws within the frame). With --json the last line is one JSON object. A
measurement, not a test: pytest does not collect this folder.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MAML_SITE_CHROMIUM", "/usr/bin/chromium")
FRAME_BUDGET_MS = 16.0
#: Every widget with a draggable θ, and its page.
WIDGETS = {
    "will-it-work": "how-maml-works/",
    "curvature": "fomaml/",
    "reptile-interpolation": "reptile/",
    "proximal-loss": "imaml/",
    "implicit-gradient": "imaml/",
    "meta-gradients": "comparison/",
}

# Runs in the page: drag the widget's first θ handle along a circle, one move
# per animation frame, and time each move. Resolves to {latency: [], work: []}.
DRAG_JS = """
async ([selector, moves]) => {
  const root = document.querySelector(selector);
  const svg = root.querySelector('svg.widget-plot');
  const frame = svg.querySelector('rect.widget-frame').getBoundingClientRect();
  const dot = root.querySelector('.toy-handle__dot').getBoundingClientRect();
  const nextFrame = () => new Promise((r) => requestAnimationFrame(r));
  const drawn = () => new Promise((resolve) => root.addEventListener('widget-drawn', () => {
    svg.getBoundingClientRect();                  // style and layout of the new drawing, now
    resolve(performance.now());
  }, { once: true }));
  const pointer = (type, x, y) => svg.dispatchEvent(new PointerEvent(type, {
    pointerId: 1, pointerType: 'mouse', isPrimary: true, button: 0, buttons: 1,
    clientX: x, clientY: y, bubbles: true, cancelable: true, composed: true,
  }));
  const cx = frame.x + frame.width / 2, cy = frame.y + frame.height / 2;
  const radius = 0.3 * Math.min(frame.width, frame.height);
  const handle = root.querySelector('.toy-handle');
  // Grab θ where it is, then start on the circle.
  let done = drawn();
  handle.querySelector('.toy-handle__dot').dispatchEvent(new PointerEvent('pointerdown', {
    pointerId: 1, pointerType: 'mouse', isPrimary: true, button: 0, buttons: 1,
    clientX: dot.x + dot.width / 2, clientY: dot.y + dot.height / 2, bubbles: true, cancelable: true,
  }));
  pointer('pointermove', cx + radius, cy);
  await done;
  await nextFrame();
  const latency = [], work = [];
  for (let i = 1; i <= moves; i++) {
    const angle = (2 * Math.PI * i) / moves;
    let frameStart = null;
    requestAnimationFrame((t) => { frameStart = performance.now(); });   // runs just before the handle's
    done = drawn();
    const t0 = performance.now();
    pointer('pointermove', cx + radius * Math.cos(angle), cy + radius * Math.sin(angle));
    const t1 = await done;
    latency.push(t1 - t0);
    work.push(t1 - (frameStart ?? t0));
    await nextFrame();                            // the next move comes with the next frame
  }
  pointer('pointerup', cx + radius, cy);
  return { latency, work };
}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def serve(site: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - fixed by the base class
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_alone(description: str, measure_page, describe, nothing: str, argv=None) -> int:
    """A browser benchmark run by itself: --site DIR [--small] [--json]. Serves the
    site, runs ``measure_page(browser, base_url, site, small)`` in Chromium, prints
    ``describe(result)`` (or ``nothing`` and exits 1 when it returns None) and,
    with --json, the result as one JSON line."""
    import time

    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--site", type=Path, required=True, help="a built site")
    parser.add_argument("--small", action="store_true", help="CI's small budget")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"{args.site} is not a built site (no index.html)")
    server = serve(args.site)
    server.handle_error = lambda request, client_address: None
    base = f"http://127.0.0.1:{server.server_port}/"
    t0 = time.time()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
            try:
                result = measure_page(browser, base, args.site, args.small)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    if result is None:
        print(nothing)
        return 1
    for line in describe(result):
        print(line)
    print(f"({time.time() - t0:.0f} s in all)")
    if args.json:
        print(json.dumps(result))
    return 0


def measure(site: Path, moves: int) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    server = serve(site)
    base = f"http://127.0.0.1:{server.server_port}/"
    results = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
            try:
                for kind, path in WIDGETS.items():
                    page = browser.new_page(viewport={"width": 1200, "height": 1400})
                    errors = []
                    page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(m.text))
                    page.goto(base + path)
                    selector = f'[data-widget="{kind}"]'
                    # A widget starts only when it comes near the viewport.
                    page.locator(selector).evaluate("el => el.scrollIntoView({block: 'center'})")
                    page.wait_for_selector(selector + "[data-state='ready']", state="attached", timeout=120_000)
                    page.locator(selector).scroll_into_view_if_needed()
                    timings = page.evaluate(DRAG_JS, [selector, moves])
                    if errors:
                        raise SystemExit(f"{kind}: the page logged errors: {errors}")
                    results[kind] = {
                        "moves": moves,
                        "latency_median_ms": statistics.median(timings["latency"]),
                        "latency_p95_ms": percentile(timings["latency"], 0.95),
                        "work_median_ms": statistics.median(timings["work"]),
                        "work_p95_ms": percentile(timings["work"], 0.95),
                    }
                    page.close()
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    for row in results.values():
        row["work_median_over_budget"] = row["work_median_ms"] / FRAME_BUDGET_MS
        row["work_p95_over_budget"] = row["work_p95_ms"] / FRAME_BUDGET_MS
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site",
                        help="a built site (default: the repository's site/; build it with maml-site build)")
    parser.add_argument("--moves", type=int, default=100, help="pointer moves per widget (default 100)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = parser.parse_args(argv)
    if args.moves < 1:
        parser.error("--moves must be at least 1")
    missing = [path for path in WIDGETS.values() if not (args.site / path / "index.html").is_file()]
    if missing:
        parser.error(f"{args.site} is not a built site with the toy widgets (no {', '.join(missing)}); "
                     "build one with `maml-site build --site-dir DIR` and pass --site DIR")
    if not Path(CHROMIUM).is_file():
        parser.error(f"{CHROMIUM} not found: install Debian's chromium or set MAML_SITE_CHROMIUM")

    results = measure(args.site, args.moves)
    print(f"θ drag frames over {args.moves} moves (frame budget {FRAME_BUDGET_MS:.0f} ms at 60 Hz)")
    header = f"{'widget':<23}{'latency med':>12}{'p95':>8}{'work med':>10}{'p95':>8}{'work/16ms med':>15}{'p95':>7}"
    print(header)
    print("-" * len(header))
    for kind, r in results.items():
        print(f"{kind:<23}{r['latency_median_ms']:>10.1f}ms{r['latency_p95_ms']:>6.1f}ms"
              f"{r['work_median_ms']:>8.1f}ms{r['work_p95_ms']:>6.1f}ms"
              f"{r['work_median_over_budget']:>15.2f}{r['work_p95_over_budget']:>7.2f}")
    if args.json:
        print(json.dumps({"frame_budget_ms": FRAME_BUDGET_MS, "widgets": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
