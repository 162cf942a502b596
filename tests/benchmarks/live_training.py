"""Live meta-training in the browser ("Watch it learn", Comparison page): how
fast it runs and what 5,000 iterations of it achieve.

Imported by tests/benchmarks/browser_speed.py (its --json line's
"live_meta_iters_per_s" and "live_training"); runs alone too:

    python tests/benchmarks/live_training.py --site /tmp/me/site [--small]

Every figure comes from the page's own code (widgets/watch-it-learn.js's
TrainingRun and its workers, workers/meta-train.js: onnxruntime-web on one
WebAssembly thread in each, meta-batch 25, K = 10 + 10, tasks drawn in the
page) in Debian's Chromium. The four algorithms are shared between two
workers where the browser reports three cores or more (Reptile in one, the
other three in the other), as the widget runs them; on this two-core machine
they run in one.

  alone           each algorithm meta-training by itself (one worker), no
                  held-out measurements: meta-iterations per second over its
                  first 1,000; then the same worker's next 1,000 (V8 runs a
                  new worker's WebAssembly from its baseline compiler for
                  the first second or so, and optimised code after).
  together        the four on the same batches, as the widget shares them
                  between workers, no held-out measurements and nothing
                  drawn: meta-iterations per second (each algorithm does
                  every one); and, where that is two workers, in one.
  side by side    the widget itself, all four at full speed, drawing as it
                  goes and measuring the held-out tasks every 100 iterations
                  and where it stops (the one-step θ-fit graph), the example
                  fit with every report: meta-iterations per second (each
                  algorithm does every one); the share of the worker's busy
                  time that went to those measurements rather than to the
                  meta-steps (the worker's own clock, so a loaded machine
                  skews it less than the rate); and the page's responsiveness
                  while it runs: the longest gap
                  between two animation frames, the long tasks (over 50 ms)
                  the main thread reported, and the longest of the widget's
                  own redraws (the main thread's share of the work; on a
                  loaded machine the gaps also count time the page waited
                  for a core).
  5,000           pretrained and MAML side by side from the same θ₀ on the
                  same tasks for 5,000 iterations; each one's mean squared error
                  on the same 100 held-out tasks after one gradient step on 5
                  points of each (the widget's table), at 0 and at 5,000.

--small (CI): 100 iterations alone, 50 side by side, the comparison at 200.
Timings depend on the machine's load. So that a run on a shared machine
still says something, "together" and "side by side" also give the rate per
second of CPU time of the busiest training worker's thread (Linux: /proc, this
process's Chromium only): close to what an idle machine gives while the
worker has a core to itself, and a figure the other work on the machine
disturbs far less than the rate itself (contention for caches and for a
core's second hardware thread still slows it a little).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ALGORITHMS = ("maml", "pretrained", "fomaml", "reptile")
PAGE = "comparison/"
WIDGET = "[data-widget='watch-it-learn']"
READY_TIMEOUT_MS = 120_000

OPEN_JS = """async ([module, algorithms, warmup, evalEvery, workers]) => {
  const m = await import(module);
  const options = { algorithms, evalEvery, perSecond: Infinity };
  if (workers) options.workers = workers;
  const run = new m.TrainingRun(await m.trainingConfig(options));
  await run.open();
  if (warmup) await run.runUntil(warmup);
  window.__liveRun = run;
}"""

TIMED_JS = """async ([n, close]) => {
  const run = window.__liveRun;
  const t0 = performance.now();
  const state = await run.runUntil(run.iteration + n);
  const seconds = (performance.now() - t0) / 1000;
  if (close) run.close();
  return { perSecond: n / seconds, seconds, heldout: state.heldout, workers: run.shards.length };
}"""

SIDE_JS = """async ([selector, n]) => {
  const el = document.querySelector(selector);
  const widget = el.watchItLearn;
  const longTasks = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longTasks.push(entry.duration);
  });
  observer.observe({ type: "longtask", buffered: false });
  let last = performance.now(), worstGap = 0, frames = 0, stop = false;
  const tick = (now) => {
    worstGap = Math.max(worstGap, now - last);
    last = now;
    frames += 1;
    if (!stop) requestAnimationFrame(tick);
  };
  requestAnimationFrame((now) => { last = now; requestAnimationFrame(tick); });
  await widget.runUntil(20);
  widget.drawStats = { count: 0, maxMs: 0 };
  const w0 = { ...widget.run.work };
  const t0 = performance.now();
  await widget.runUntil(20 + n);
  const seconds = (performance.now() - t0) / 1000;
  const train = widget.run.work.trainMs - w0.trainMs, measure = widget.run.work.measureMs - w0.measureMs;
  stop = true;
  observer.disconnect();
  return { perSecond: n / seconds, seconds, measureShare: measure / (train + measure), worstFrameGapMs: worstGap, frames,
           draws: widget.drawStats.count, longestDrawMs: widget.drawStats.maxMs,
           longTasks: longTasks.length, longestTaskMs: longTasks.length ? Math.max(...longTasks) : 0 };
}"""


def _page(browser, base):
    context = browser.new_context(viewport={"width": 1350, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + PAGE, wait_until="load")
    return context, page, errors


def _chromium_threads() -> dict[str, tuple[str, float]] | None:
    """{thread: (name, CPU seconds)} of every thread of the processes this
    process started (the Playwright driver and its Chromium); None off Linux."""
    proc = Path("/proc")
    if not (proc / "self" / "task").is_dir():
        return None
    parents = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            parents[int(stat.parent.name)] = int(text[text.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
    mine, me = set(), os.getpid()
    for pid in parents:
        seen, p = set(), pid
        while p in parents and p not in seen and p != me:
            seen.add(p)
            p = parents[p]
        if p == me and pid != me:
            mine.add(pid)
    tick = os.sysconf("SC_CLK_TCK")
    threads = {}
    for pid in mine:
        for stat in (proc / str(pid) / "task").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            threads[str(stat)] = (text[text.index("(") + 1:text.rindex(")")],
                                  (int(fields[11]) + int(fields[12])) / tick)
    return threads


def _worker_cpu_seconds(before, after) -> float | None:
    """CPU seconds the busiest dedicated worker thread used between two samples."""
    if before is None or after is None:
        return None
    used = [t - before.get(key, (name, 0.0))[1] for key, (name, t) in after.items()
            if name.startswith("DedicatedWorker")]
    return max(used, default=None) or None


def _timed(page, script, arg) -> dict:
    """page.evaluate(script, arg), with the training worker's CPU seconds meanwhile."""
    before = _chromium_threads()
    result = page.evaluate(script, arg)
    result["workerCpuSeconds"] = _worker_cpu_seconds(before, _chromium_threads())
    return result


def _per_cpu_second(iterations: int, result: dict) -> float | None:
    cpu = result.get("workerCpuSeconds")
    return iterations / cpu if cpu else None


def measure(browser, base: str, small: bool = False) -> dict | None:
    """The live-training figures on the site served at `base` (None: no such widget)."""
    alone_n, side_n, compare_n = (100, 50, 200) if small else (1000, 500, 5000)
    context, page, errors = _page(browser, base)
    try:
        if page.locator(WIDGET).count() == 0:
            return None
        module = base + "javascripts/widgets/watch-it-learn.js"
        def run(algorithms, warmup, n, eval_every, workers=None, close=True):
            page.evaluate(OPEN_JS, [module, algorithms, warmup, eval_every, workers])
            return _timed(page, TIMED_JS, [n, close])

        alone, alone_after = {}, {}
        for alg in ALGORITHMS:
            alone[alg] = run([alg], 20, alone_n, 0, close=False)["perSecond"]
            # The same worker's next alone_n: V8 has by then optimised the
            # WebAssembly it started with its baseline compiler (the first
            # second or so of every new worker runs slower).
            alone_after[alg] = _timed(page, TIMED_JS, [alone_n, True])["perSecond"]
        together_run = run(list(ALGORITHMS), 20, side_n, 0)
        together = together_run["perSecond"]
        one_worker = run(list(ALGORITHMS), 20, side_n, 0, workers=1) if together_run["workers"] > 1 else None
        compare = run(["pretrained", "maml"], 0, compare_n, compare_n)
        page.locator(WIDGET).evaluate("el => el.scrollIntoView({block: 'center'})")
        page.wait_for_selector(WIDGET + "[data-state='ready']", state="attached", timeout=READY_TIMEOUT_MS)
        # The widgets around it start too (their runtimes and graphs load on
        # the main thread): measure once they are all up.
        page.wait_for_function("() => [...document.querySelectorAll('[data-widget-mounted]')].every("
                               "w => ['ready', 'error'].includes(w.dataset.state))", timeout=READY_TIMEOUT_MS)
        page.wait_for_timeout(500)
        side = _timed(page, SIDE_JS, [WIDGET, side_n])
        side["perCpuSecond"] = _per_cpu_second(side_n, side)
        if errors:
            raise SystemExit(f"the live training logged errors: {errors}")
    finally:
        context.close()
    start, end = compare["heldout"][0], compare["heldout"][-1]
    return {
        "alone": alone, "alone_iterations": alone_n, "alone_after_first": alone_after, "together": together,
        "together_per_cpu_second": _per_cpu_second(side_n, together_run), "workers": together_run["workers"],
        "together_one_worker": one_worker["perSecond"] if one_worker else None,
        "together_one_worker_per_cpu_second": _per_cpu_second(side_n, one_worker) if one_worker else None,
        "side_by_side": side, "side_iterations": side_n,
        "compare": {"iterations": end["iteration"], "seconds": compare["seconds"],
                    "start": start["errors"], "end": end["errors"]},
    }


def describe(live: dict) -> list[str]:
    """The table's lines."""
    alone = ", ".join(f"{alg} {v:.0f}" for alg, v in live["alone"].items())
    after = ", ".join(f"{alg} {v:.0f}" for alg, v in live["alone_after_first"].items())
    side = live["side_by_side"]
    compare = live["compare"]

    def cpu(rate):
        return f", {rate:.0f} per second of the worker's CPU time" if rate else ""

    return [
        f"live meta-training, meta-iterations/s alone ({live['alone_iterations']} each): {alone}",
        f"live meta-training, meta-iterations/s alone, the same worker's next {live['alone_iterations']}: {after}",
        f"live meta-training, the four side by side, training only ({live['side_iterations']}, "
        f"{live['workers']} worker{'s' if live['workers'] > 1 else ''}): "
        f"{live['together']:.0f} meta-iterations/s each{cpu(live.get('together_per_cpu_second'))}"
        + (f"; in one worker {live['together_one_worker']:.0f}{cpu(live.get('together_one_worker_per_cpu_second'))}"
           if live.get("together_one_worker") else ""),
        f"live meta-training, the four side by side in the widget ({live['side_iterations']}): "
        f"{side['perSecond']:.0f} each{cpu(side.get('perCpuSecond'))} "
        f"({100 * side['measureShare']:.1f}% of the worker's time measuring "
        f"the held-out tasks and the example fit); the page's longest frame gap {side['worstFrameGapMs']:.0f} ms, "
        f"{side['longTasks']} long task(s) over 50 ms (longest {side['longestTaskMs']:.0f} ms); "
        f"{side['draws']} redraws, the longest {side['longestDrawMs']:.1f} ms",
        f"live meta-training, {compare['iterations']} iterations ({compare['seconds']:.0f} s): one-step 5-shot "
        f"error on 100 held-out tasks, pretrained {compare['start']['pretrained']:.3f} -> "
        f"{compare['end']['pretrained']:.3f}, MAML {compare['start']['maml']:.3f} -> {compare['end']['maml']:.3f} "
        f"(MAML {'below' if compare['end']['maml'] < compare['end']['pretrained'] else 'NOT below'} pretrained)",
    ]


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import toy_drag  # noqa: E402 - this folder: serving a site and running a benchmark alone

    return toy_drag.run_alone(__doc__.split("\n\n")[0],
                              lambda browser, base, site, small: measure(browser, base, small),
                              describe, "the site has no live-training widget", argv)

if __name__ == "__main__":
    sys.exit(main())
