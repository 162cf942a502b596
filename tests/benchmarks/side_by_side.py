"""Two or more built sites measured side by side, interleaved, in one run:
time from navigation to How MAML works' first interactive widget (fresh
profile each time, as browser_speed.py measures it) and, optionally, the
sinusoid widget's click latency. On a loaded machine absolute times drift from
minute to minute; alternating the sites keeps the comparison fair.

    python tests/benchmarks/side_by_side.py /tmp/old/site /tmp/new/site --reps 6 --clicks 50

Build each site with `maml-site build --exported <copy> --site-dir <dir>` from
the tree you want to compare. A measurement, not a test (pytest does not
collect this folder).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_speed as bs  # noqa: E402 - the same measurements, reused as they are


def first_ready_ms(browser, base: str) -> float:
    context = browser.new_context(viewport=bs.VIEWPORT)          # a fresh profile: empty cache
    try:
        context.add_init_script(bs.INTERACTIVE_JS)
        page = context.new_page()
        page.goto(base + bs.SINE_PAGE, wait_until="load")
        page.wait_for_function("() => window.__firstReady !== null", timeout=bs.READY_TIMEOUT_MS)
        return page.evaluate("window.__firstReady")
    finally:
        context.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sites", nargs="+", type=Path, help="built site folders")
    parser.add_argument("--reps", type=int, default=6, help="fresh-profile loads per site (default 6)")
    parser.add_argument("--clicks", type=int, default=0, help="sinusoid clicks per site and round, two rounds (default 0: none)")
    args = parser.parse_args(argv)
    for site in args.sites:
        if not (site / bs.SINE_PAGE / "index.html").is_file():
            parser.error(f"{site} has no {bs.SINE_PAGE}index.html: build a site there first")
    from playwright.sync_api import sync_playwright

    load = open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").is_file() else ["?"] * 3
    servers = [bs.serve(site) for site in args.sites]
    ready = [[] for _ in args.sites]
    clicks = [[] for _ in args.sites]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=bs.CHROMIUM, args=["--disable-gpu"])
            try:
                for _ in range(args.reps):
                    for i, (_, base) in enumerate(servers):
                        ready[i].append(first_ready_ms(browser, base))
                for _ in range(2 if args.clicks else 0):
                    for i, (_, base) in enumerate(servers):
                        clicks[i].append(bs.measure_sine(browser, base, args.clicks))
            finally:
                browser.close()
    finally:
        for server, _ in servers:
            server.shutdown()
            server.server_close()
    end = open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").is_file() else ["?"] * 3
    print(f"load average {' '.join(load)} at the start, {' '.join(end)} at the end")
    for site, times, sine in zip(args.sites, ready, clicks):
        print(f"{str(site):32s} first widget ready: median {statistics.median(times):.0f} ms "
              f"(each: {', '.join(f'{t:.0f}' for t in times)})")
        for r in sine:
            print(f"{'':32s} sinusoid click, {args.clicks} clicks: median {r['median']:.1f} ms, p95 {r['p95']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
