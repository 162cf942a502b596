"""A reader's speed, measured in a real browser: bytes, time to the first
interactive widget, widget latency, Lighthouse, and build times.

    python tests/benchmarks/browser_speed.py                      # builds a site from exported/
    python tests/benchmarks/browser_speed.py --site /tmp/me/site --json
    python tests/benchmarks/browser_speed.py --small --json       # CI: keeps it working

Serves a built site on 127.0.0.1 and drives Debian's Chromium (Playwright,
headless; MAML_SITE_CHROMIUM overrides the binary). It measures

  pages            for every page, in a fresh browser profile (empty cache):
                   bytes_raw, every byte the page fetched while loading without
                   scrolling, and bytes_gzip, the same files as gzip (level 6,
                   what a web server sends) would send them; interactive_ms, the
                   time from the start of navigation until the page's first
                   widget is ready to answer, for a reader who goes straight to
                   it (the page scrolls it into view as soon as the document is
                   parsed; null on a page without widgets). The table adds the
                   bytes of a reader who scrolls through every widget.
  sine_adapt_ms    the MAML sinusoid widget on How MAML works with 5 samples and
                   10 steps: a click on the plot (which replaces the oldest
                   sample) until the graph has run and the curves are redrawn
                   and laid out; median and 95th percentile over 100 clicks.
  contour_drag_ms  a θ drag frame of the loss-landscape widgets, measured by
                   tests/benchmarks/toy_drag.py (imported): the frame's own work
                   (graph run, drawing, layout); the slowest widget's median and
                   95th percentile (the table lists each widget).
  site_bytes       the size of the whole site folder.
  quiz             one adaptation + prediction of each of the quiz's conv nets,
                   5-way and 20-way, and their graphs' sizes
                   (tests/benchmarks/quiz_speed.py, imported).
  lighthouse       npm lighthouse (node_modules, the pinned version) against
                   the same Chromium (CHROME_PATH), desktop preset, headless:
                   performance and best-practices scores (0-100), total blocking
                   time and cumulative layout shift, for every page.
  build times      `maml-site build` of the committed models into a temporary
                   folder (first build, then again with nothing changed: warm),
                   and with --cold the quick profile from nothing (trains).

--small (for CI) measures 10 clicks and 10 drag moves, runs Lighthouse on one
page and skips the cold build unless --cold is given. With --json the last line
is one JSON object (page paths as "/", "/how-maml-works/", …):
{"pages": {"<page path>": {"bytes_raw", "bytes_gzip", "interactive_ms"}},
 "sine_adapt_ms": {"median", "p95"}, "contour_drag_ms": {"median", "p95"},
 "site_bytes", "lighthouse": {"<page path>": {"performance", "best_practices",
 "tbt_ms", "cls"}},
 "live_meta_iters_per_s": {"maml", "pretrained", "fomaml", "reptile"},
 "live_training": {"together", "together_per_cpu_second", "side_by_side": {"perSecond", "perCpuSecond", "measureShare", …},
 "compare": {"iterations", "start", "end"}},
 "quiz_adapt_ms": {"<conv net>": {"5": {"median", "p95", "steps"}, "20": …}},
 "quiz_model_bytes": {"<conv net>": bytes}} (null for what a site does not have;
 tests/benchmarks/live_training.py and quiz_speed.py say what those figures are). A measurement, not a
test: pytest does not collect this folder. Timings depend on the machine's
load; the table's first line says what it was.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import toy_drag  # noqa: E402 - the θ-drag measurement, reused as it is
import live_training  # noqa: E402 - "Watch it learn": live meta-training speed (issue 12)
import quiz_speed  # noqa: E402 - the quiz's conv nets: adaptation time and graph size (issue 13)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = toy_drag.CHROMIUM
MAML_SITE = shutil.which("maml-site") or str(Path(sys.executable).parent / "maml-site")
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
VIEWPORT = {"width": 1350, "height": 940}       # Lighthouse's desktop preset
SINE_PAGE = "how-maml-works/"
SINE = '[data-widget="sine-fit"][data-model="maml-sinusoid"]'
LIGHTHOUSE_SMALL_PAGE = SINE_PAGE
READY_TIMEOUT_MS = 120_000

# Runs before the page's own scripts: once the document is parsed, bring the
# first widget into view (a reader who follows a link to it) and note when it
# is first ready, in ms since navigation start.
INTERACTIVE_JS = """
(() => {
  window.__firstReady = null;
  document.addEventListener('DOMContentLoaded', () => {
    const widget = document.querySelector('[data-widget]');
    if (!widget) return;
    widget.scrollIntoView({ block: 'center' });
    const done = () => {
      if (window.__firstReady === null && widget.dataset.state === 'ready') {
        window.__firstReady = performance.now();
      }
    };
    new MutationObserver(done).observe(widget, { attributes: true, attributeFilter: ['data-state'] });
    done();
  });
})();
"""

# Runs in the page: `clicks` clicks on the sinusoid widget's plot, each one
# timed until the widget is ready again and its drawing laid out.
SINE_JS = """
async ([selector, clicks]) => {
  const root = document.querySelector(selector);
  const svg = root.querySelector('svg.widget-plot');
  const frame = svg.querySelector('rect.widget-frame').getBoundingClientRect();
  const nextFrame = () => new Promise((r) => requestAnimationFrame(r));
  const ready = () => new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (root.dataset.state !== 'ready') return;
      observer.disconnect();
      svg.getBoundingClientRect();                  // style and layout of the new drawing, now
      resolve(performance.now());
    });
    observer.observe(root, { attributes: true, attributeFilter: ['data-state'] });
  });
  const click = (fx) => {
    const init = { pointerId: 1, pointerType: 'mouse', isPrimary: true, button: 0, buttons: 1,
      clientX: frame.x + fx * frame.width, clientY: frame.y + 0.5 * frame.height,
      bubbles: true, cancelable: true, composed: true };
    svg.dispatchEvent(new PointerEvent('pointerdown', init));
    svg.dispatchEvent(new PointerEvent('pointerup', { ...init, buttons: 0 }));
  };
  // Five samples first (a sixth click replaces the oldest).
  for (let i = 0; i < 5; i++) { const done = ready(); click(0.1 + 0.2 * i); await done; }
  if (root.dataset.samples !== '5') throw new Error(`expected 5 samples, found ${root.dataset.samples}`);
  const times = [];
  for (let i = 0; i < clicks; i++) {
    await nextFrame();
    const done = ready();
    const t0 = performance.now();
    click(0.05 + 0.9 * ((i * 0.618034) % 1));
    times.push((await done) - t0);
  }
  return times;
}
"""


def percentile(values, q):
    return toy_drag.percentile(values, q)


def site_pages(site: Path) -> list[str]:
    """Every page of the site, as a path under the site root ('' is the home page)."""
    pages = []
    for index in sorted(site.rglob("index.html")):
        rel = index.parent.relative_to(site).as_posix()
        if rel.split("/")[0] in ("assets", "search", "javascripts", "stylesheets"):
            continue
        pages.append("" if rel == "." else rel + "/")
    return sorted(pages, key=lambda p: (p != "", p))


def site_bytes(site: Path) -> int:
    return sum(path.stat().st_size for path in site.rglob("*") if path.is_file())


def serve(site: Path):
    server = toy_drag.serve(site)
    # A page closed mid-download (the runtime of a widget further down) is not news.
    server.handle_error = lambda request, client_address: None
    return server, f"http://127.0.0.1:{server.server_port}/"


class Transfer:
    """The bytes of every response a page received (raw and gzip-compressed)."""

    def __init__(self, page):
        self.sizes: dict[str, tuple[int, int]] = {}
        page.on("response", self._record)

    def _record(self, response):
        if response.url in self.sizes or response.request.method != "GET":
            return
        try:
            body = response.body()
        except Exception:  # noqa: BLE001 - a redirect or an aborted load has no body
            return
        self.sizes[response.url] = (len(body), len(gzip.compress(body, compresslevel=6)))

    def total(self) -> tuple[int, int]:
        return (sum(raw for raw, _ in self.sizes.values()), sum(gz for _, gz in self.sizes.values()))


def measure_page(browser, base: str, path: str) -> dict:
    """Bytes at load and time to the first interactive widget, each in a fresh profile."""
    context = browser.new_context(viewport=VIEWPORT)       # a fresh profile: empty cache
    try:
        context.add_init_script(INTERACTIVE_JS)
        page = context.new_page()
        page.goto(base + path, wait_until="load")
        widgets = page.locator("[data-widget]").count()
        interactive = None
        if widgets:
            page.wait_for_function("() => window.__firstReady !== null", timeout=READY_TIMEOUT_MS)
            interactive = page.evaluate("window.__firstReady")
    finally:
        context.close()
    # A reader who stays at the top, then one who scrolls to every widget.
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        transfer = Transfer(page)
        page.goto(base + path, wait_until="load")
        page.wait_for_load_state("networkidle")
        raw, gz = transfer.total()
        for widget in page.locator("[data-widget]").all():
            widget.evaluate("el => el.scrollIntoView({block: 'center'})")
            page.wait_for_function("el => ['ready', 'error'].includes(el.dataset.state)",
                                   arg=widget.element_handle(), timeout=READY_TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
        all_raw, all_gz = transfer.total()
    finally:
        context.close()
    return {"bytes_raw": raw, "bytes_gzip": gz, "interactive_ms": interactive,
            "widgets": widgets, "read_raw": all_raw, "read_gzip": all_gz}


def measure_sine(browser, base: str, clicks: int) -> dict | None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        errors = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.goto(base + SINE_PAGE, wait_until="load")
        if page.locator(SINE).count() == 0:
            return None
        widget = page.locator(SINE)
        widget.evaluate("el => el.scrollIntoView({block: 'center'})")
        page.wait_for_selector(SINE + "[data-state='ready']", state="attached", timeout=READY_TIMEOUT_MS)
        widget.locator("input.sine-fit-steps").focus()
        page.keyboard.press("End")
        page.wait_for_selector(SINE + " path.sine-fit-after[data-steps='10']", state="attached")
        times = page.evaluate(SINE_JS, [SINE, clicks])
        if errors:
            raise SystemExit(f"the sinusoid widget logged errors: {errors}")
        return {"median": statistics.median(times), "p95": percentile(times, 0.95)}
    finally:
        context.close()


def run_lighthouse(url: str, out: Path) -> dict:
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    # As Playwright launches it: no sandbox (root in a container has none to give).
    flags = "--headless=new --disable-gpu --no-sandbox"
    cmd = [str(LIGHTHOUSE), url, "--preset=desktop", "--only-categories=performance,best-practices",
           f"--chrome-flags={flags}", "--output=json", f"--output-path={out}", "--quiet"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not out.is_file():
        raise SystemExit(f"lighthouse failed on {url}: {done.stderr.strip()[-2000:]}")
    report = json.loads(out.read_text())
    categories, audits = report["categories"], report["audits"]
    score = lambda c: None if categories[c]["score"] is None else round(100 * categories[c]["score"])  # noqa: E731
    failed = [a for a in ("deprecations", "errors-in-console", "inspector-issues")
              if audits.get(a, {}).get("score") == 0]
    return {"performance": score("performance"), "best_practices": score("best-practices"),
            "tbt_ms": round(audits["total-blocking-time"]["numericValue"], 1),
            "cls": round(audits["cumulative-layout-shift"]["numericValue"], 4),
            "failed": failed}


def timed_build(*args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([MAML_SITE, "build", *args],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"maml-site build {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start


def measure_builds(work: Path, cold: bool) -> tuple[dict, Path]:
    """First and warm builds of the committed models (and the cold quick build); returns the site."""
    exported, site = work / "exported", work / "site"
    shutil.copytree(ROOT / "exported", exported)
    times = {"first_s": timed_build("--exported", str(exported), "--site-dir", str(site))}
    times["warm_s"] = timed_build("--exported", str(exported), "--site-dir", str(site))
    if cold:
        # An empty exported folder: the build trains only when told to (--retrain).
        quick = work / "quick"
        times["cold_quick_s"] = timed_build("--profile", "quick", "--device", "cpu", "--retrain",
                                            "--exported", str(quick / "exported"), "--site-dir", str(quick / "site"))
    return times, site


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, help="an already built site (default: build one into a temporary folder)")
    parser.add_argument("--small", action="store_true",
                        help="small budget for CI: 10 clicks and drag moves, Lighthouse on one page, no cold build")
    parser.add_argument("--clicks", type=int, help="sinusoid clicks (default 100; 10 with --small)")
    parser.add_argument("--moves", type=int, help="θ drag moves per widget (default 100; 10 with --small)")
    parser.add_argument("--cold", action=argparse.BooleanOptionalAction, default=None,
                        help="time a cold quick-profile build (trains; default on, off with --small)")
    parser.add_argument("--no-builds", action="store_true", help="time no build (needs --site)")
    parser.add_argument("--no-lighthouse", action="store_true", help="skip Lighthouse")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = parser.parse_args(argv)
    clicks = args.clicks or (10 if args.small else 100)
    moves = args.moves or (10 if args.small else 100)
    cold = (not args.small) if args.cold is None else args.cold
    if clicks < 1 or moves < 1:
        parser.error("--clicks and --moves must be at least 1")
    if args.no_builds and args.site is None:
        parser.error("--no-builds needs --site")
    if args.site is not None and not (args.site / "index.html").is_file():
        parser.error(f"{args.site} is not a built site (no index.html); build one with "
                     "`maml-site build --site-dir DIR` and pass --site DIR")
    if not Path(CHROMIUM).is_file():
        parser.error(f"{CHROMIUM} not found: install Debian's chromium or set MAML_SITE_CHROMIUM")
    if not args.no_lighthouse and not LIGHTHOUSE.is_file():
        parser.error(f"{LIGHTHOUSE} not found: run npm ci")

    from playwright.sync_api import sync_playwright

    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").is_file() else ["?"] * 3
    with tempfile.TemporaryDirectory(prefix="browser-speed-") as tmp:
        work = Path(tmp)
        builds = {}
        if not args.no_builds:
            builds, built = measure_builds(work, cold)
        site = args.site or built
        pages = site_pages(site)
        server, base = serve(site)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
                try:
                    measured = {path: measure_page(browser, base, path) for path in pages}
                    sine = measure_sine(browser, base, clicks)
                    live = live_training.measure(browser, base, args.small)
                    quiz = quiz_speed.measure(browser, base, site, args.small)
                finally:
                    browser.close()
            drag = toy_drag.measure(site, moves) if all(
                (site / p / "index.html").is_file() for p in toy_drag.WIDGETS.values()) else {}
            lighthouse = {}
            if not args.no_lighthouse:
                for path in ([LIGHTHOUSE_SMALL_PAGE] if args.small else pages):
                    lighthouse[path] = run_lighthouse(base + path, work / "lighthouse.json")
        finally:
            server.shutdown()
            server.server_close()

    contour = ({"median": max(r["work_median_ms"] for r in drag.values()),
                "p95": max(r["work_p95_ms"] for r in drag.values())} if drag else None)
    total = site_bytes(site)

    print(f"load average {' '.join(load)} at the start ({os.cpu_count()} CPUs); site {site}")
    header = (f"{'page':<20}{'gzip KB':>9}{'raw KB':>9}{'interactive':>13}"
              f"{'read all gzip':>15}{'raw KB':>9}{'perf':>6}{'b.p.':>6}{'TBT ms':>8}{'CLS':>7}")
    print(header)
    print("-" * len(header))
    for path, r in measured.items():
        lh = lighthouse.get(path)
        inter = "-" if r["interactive_ms"] is None else f"{r['interactive_ms']:.0f} ms"
        lh_cells = (f"{lh['performance']:>6}{lh['best_practices']:>6}{lh['tbt_ms']:>8.0f}{lh['cls']:>7.3f}"
                    if lh else f"{'':>27}")
        print(f"{'/' + path:<20}{r['bytes_gzip'] / 1024:>9.0f}{r['bytes_raw'] / 1024:>9.0f}{inter:>13}"
              f"{r['read_gzip'] / 1024:>15.0f}{r['read_raw'] / 1024:>9.0f}{lh_cells}")
        if lh and lh["failed"]:
            print(f"{'':<20}Lighthouse audits failed: {', '.join(lh['failed'])}")
    print()
    if sine:
        print(f"sinusoid adaptation + redraw (5 samples, 10 steps), {clicks} clicks: "
              f"median {sine['median']:.1f} ms, p95 {sine['p95']:.1f} ms")
    for kind, r in drag.items():
        print(f"θ drag frame, {kind:<22} {moves} moves: work median {r['work_median_ms']:.1f} ms, "
              f"p95 {r['work_p95_ms']:.1f} ms (latency median {r['latency_median_ms']:.1f} ms)")
    for line in (live_training.describe(live) if live else []):
        print(line)
    for line in (quiz_speed.describe(quiz) if quiz else []):
        print(line)
    print(f"site folder: {total / 1e6:.1f} MB")
    if builds:
        line = f"maml-site build (committed models): first {builds['first_s']:.1f} s, warm {builds['warm_s']:.1f} s"
        if "cold_quick_s" in builds:
            line += f"; cold --profile quick: {builds['cold_quick_s']:.1f} s"
        print(line)
    if args.json:
        print(json.dumps({
            "pages": {"/" + path: {k: r[k] for k in ("bytes_raw", "bytes_gzip", "interactive_ms")}
                      for path, r in measured.items()},
            "sine_adapt_ms": sine,
            "contour_drag_ms": contour,
            "site_bytes": total,
            "lighthouse": {"/" + path: {k: r[k] for k in ("performance", "best_practices", "tbt_ms", "cls")}
                           for path, r in lighthouse.items()} or None,
            "live_meta_iters_per_s": live["alone"] if live else None,
            "live_training": ({k: live[k] for k in ("together", "together_per_cpu_second", "side_by_side",
                                                    "compare")} if live else None),
            "quiz_adapt_ms": quiz["adapt_ms"] if quiz else None,
            "quiz_model_bytes": quiz["model_bytes"] if quiz else None,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
