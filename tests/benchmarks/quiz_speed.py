"""The quiz's conv nets in the browser (issue 13): how long one adaptation and
prediction takes, and how big the models' files are.

Imported by tests/benchmarks/browser_speed.py (its --json line's
"quiz_adapt_ms" and "quiz_model_bytes"); runs alone too:

    python tests/benchmarks/quiz_speed.py --site /tmp/me/site [--small] [--json]

On the page that holds the quiz (the Introduction), in Debian's Chromium with
one WebAssembly thread, the page's own code (lib/ort-runner.js, which the quiz
widget uses) opens each conv net's graph from the model list and runs it the
way the quiz does after a round: N support drawings with their labels
0..N-1, one query drawing, the model's inner learning rate, for N = 5 and
N = 20. Each run is timed from the call until the probabilities are back
(every one of the graph's S inner steps and the prediction). The drawings are
28×28 pixels of random strokes: the time does not depend on what is drawn.
Median and 95th percentile over 50 runs (10 with --small) after three runs
that are not counted (the first runs of a graph compile code on the way).

The model files: each conv net's graph (.onnx) in assets/models/, what a
reader's browser downloads to let it play.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

PAGE = ""                       # the Introduction (home page) holds the quiz
WIDGET = "[data-widget='few-shot-quiz']"
WAYS = (5, 20)

# Runs in the page: the quiz's graphs, opened and run through lib/ort-runner.js.
RUN_JS = """async ([ways, runs]) => {
  const base = new URL('./', location.href);
  const runner = await import(new URL('javascripts/lib/ort-runner.js', base).href);
  const manifest = await import(new URL('javascripts/lib/manifest.js', base).href);
  const list = await manifest.loadManifest();
  const entries = list.models.filter((m) => m.task?.family === 'glyphs');
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const drawing = (count) => {
    const pixels = new Float32Array(count * 28 * 28);
    for (let n = 0; n < count; n++) {
      for (let stroke = 0; stroke < 3; stroke++) {
        let x = 4 + random() * 20, y = 4 + random() * 20;
        const dx = random() - 0.5, dy = random() - 0.5;
        for (let t = 0; t < 20; t++) {
          x = Math.min(27, Math.max(0, x + dx)); y = Math.min(27, Math.max(0, y + dy));
          pixels[n * 784 + Math.round(y) * 28 + Math.round(x)] = 1;
        }
      }
    }
    return pixels;
  };
  const out = {};
  for (const entry of entries) {
    const session = await runner.loadSession(manifest.modelUrl(entry));
    out[entry.name] = {};
    for (const way of ways) {
      const feeds = {
        support_images: { data: drawing(way), dims: [way, 1, 28, 28] },
        support_labels: { data: Array.from({ length: way }, (_, i) => i), dims: [way] },
        query_images: { data: drawing(1), dims: [1, 1, 28, 28] },
        inner_lr: { data: [entry.inner_lr], dims: [] },
      };
      const first = await runner.runGraph(session, feeds);
      for (let w = 0; w < 2; w++) await runner.runGraph(session, feeds);
      const times = [];
      for (let r = 0; r < runs; r++) {
        const started = performance.now();
        await runner.runGraph(session, feeds);
        times.push(performance.now() - started);
      }
      out[entry.name][way] = { times, steps: first.probabilities.dims[0] - 1 };
    }
  }
  return out;
}"""


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def model_bytes(site: Path, names) -> dict:
    models = site / "assets" / "models"
    return {name: (models / f"{name}.onnx").stat().st_size for name in names
            if (models / f"{name}.onnx").is_file()}


def measure(browser, base: str, site: Path, small: bool = False) -> dict | None:
    """{"adapt_ms": {name: {"5": {median, p95, steps}, "20": …}}, "model_bytes": {name: bytes of its .onnx}},
    or None when the site has no quiz."""
    context = browser.new_context(viewport={"width": 1350, "height": 940})
    try:
        page = context.new_page()
        errors = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + PAGE, wait_until="load")
        if page.locator(WIDGET).count() == 0:
            return None
        raw = page.evaluate(RUN_JS, [list(WAYS), 10 if small else 50])
        if errors:
            raise SystemExit(f"the quiz's page logged errors: {errors}")
    finally:
        context.close()
    if not raw:
        return None
    adapt = {name: {str(way): {"median": statistics.median(r["times"]), "p95": percentile(r["times"], 0.95),
                               "steps": r["steps"]}
                    for way, r in ((int(w), r) for w, r in by_way.items())}
             for name, by_way in raw.items()}
    return {"adapt_ms": adapt, "model_bytes": model_bytes(site, raw)}


def describe(quiz: dict) -> list[str]:
    lines = []
    for name, by_way in quiz["adapt_ms"].items():
        cells = ", ".join(f"{way}-way median {r['median']:.1f} ms, p95 {r['p95']:.1f} ms"
                          for way, r in by_way.items())
        steps = next(iter(by_way.values()))["steps"]
        size = quiz["model_bytes"].get(name)
        lines.append(f"quiz {name}: adaptation ({steps} steps) + prediction: {cells}"
                     + (f"; graph {size / 1024:.0f} KB" if size is not None else ""))
    return lines


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import toy_drag  # noqa: E402 - this folder: serving a site and running a benchmark alone

    return toy_drag.run_alone(__doc__.split("\n\n")[0], measure, describe,
                              "the site has no quiz with conv nets", argv)

if __name__ == "__main__":
    sys.exit(main())
