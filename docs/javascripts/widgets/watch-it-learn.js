// Watch it learn: pretrained, MAML, first-order MAML and Reptile meta-train
// live, side by side, from one shared θ₀ on one seeded stream of sinusoid tasks.
//
//   <div data-widget="watch-it-learn" [data-seed="1"]>
//     …what the page shows without JavaScript…
//   </div>
//
// The training runs in a Web Worker (workers/meta-train.js) with the build's
// meta-step graphs; this module only draws what the worker reports: each
// algorithm's meta-loss against the iteration (left), each model's fit to a
// fixed example task after one gradient step (right), and every model's
// one-step error on 100 held-out tasks (table). Start/Pause, Reset and a speed
// slider drive the worker; "Use these weights" hands an algorithm's current θ
// to the sine-fit widget of the page (sine-fit.js useWeights), where the
// reader can fit their own points with it.
//
// For tests and outside tools the element carries data-state ("loading" |
// "ready" | "error"), data-running ("true" | "false") and data-iteration;
// element.watchItLearn exposes start(), pause(), reset(seed), setSpeed(perSecond),
// runUntil(iteration) (a Promise of the state when the run stops there),
// weights(algorithm) and the recorded losses and held-out errors.
import { loadManifest, modelUrl } from "../lib/manifest.js";
import {
  button, createCurve, createPlot, drawAxes, htmlElement, linspace, setCurve, setPoints, slider, svgElement,
} from "../lib/plot.js";
import { siteUrl, WidgetError } from "../lib/site.js";
import { COLOURS, LABELS } from "./all-models.js";

const ALGORITHMS = ["pretrained", "maml", "fomaml", "reptile"];
// The one-step θ-fit graph: the held-out errors and the example fit need only
// the prediction after one step (the ten-step graph's row 1, a tenth of its work).
const FIT_GRAPH = "theta-fit-1";
const ORT_DIR = siteUrl("assets/vendor/onnxruntime-web/");
const WORKER = new URL("../workers/meta-train.js", import.meta.url);

// The fixed example task whose fit is drawn, and the held-out tasks of the table.
const EXAMPLE = { a: 3.0, phase: 0.5, xs: [-4.2, -2.6, -0.4, 1.1, 3.7] };
const EXAMPLE_POINTS = 101;
export const HELD_OUT = { seed: 20260312, tasks: 100, shots: 5, points: 50 };
const EVAL_EVERY = 100;

// Speeds the slider offers, in meta-iterations per second (Infinity: as fast as it goes).
const SPEEDS = [5, 20, 100, 500, Infinity];
const DEFAULT_SPEED = 4;
const Y_DOMAIN = [-6, 6];
const MAX_BINS = 300;
// The loss plot's x-axis ends at the first of these (times a power of ten) at
// or above the iteration: the curve grows into the plot, and the axis and its
// grid change a few times per decade instead of at every frame (redrawing
// them each time cost the page as much as the rest of a frame).
const AXIS_STEPS = [1, 1.5, 2, 3, 4, 5, 6, 8, 10];

export async function mount(root) {
  root.dataset.state = "loading";
  const seed = Number.isFinite(Number(root.dataset.seed)) ? Number(root.dataset.seed) : 1;
  const evalEvery = Number(root.dataset.evalEvery ?? EVAL_EVERY);
  const config = await trainingConfig({ seed, evalEvery });
  const widget = new WatchItLearn(root, config);
  await widget.start();
  return widget;
}

/**
 * What the worker needs for a run: the graphs' URLs and settings from the
 * manifest, the task family, the seed, the example and held-out tasks.
 * `algorithms` (default all four) trains only those; evalEvery 0 measures
 * nothing on the held-out tasks (the speed benchmark); `workers` is how many
 * workers share the algorithms (TrainingRun).
 */
export async function trainingConfig({
  algorithms = ALGORITHMS, seed = 1, evalEvery = EVAL_EVERY, perSecond = SPEEDS[DEFAULT_SPEED], workers = defaultWorkers(),
} = {}) {
  if (typeof Worker !== "function") throw new WidgetError("this browser does not run Web Workers.");
  const manifest = await loadManifest();
  const byName = Object.fromEntries(manifest.models.map((m) => [m.name, m]));
  const missing = [...algorithms.map((a) => `${a}-meta-step`), FIT_GRAPH].filter((n) => !byName[n]);
  if (missing.length) throw new WidgetError(`the site has no ${missing.join(", ")} graph${missing.length > 1 ? "s" : ""}.`);
  const steps = algorithms.map((a) => byName[`${a}-meta-step`]);
  const fit = byName[FIT_GRAPH];
  const setting = steps[0].meta_step;
  const family = fit.task;
  return {
    ortModule: new URL("ort.wasm.bundle.min.mjs", ORT_DIR).href,
    ortWasm: new URL("ort-wasm-simd-threaded.wasm", ORT_DIR).href,
    algorithms: algorithms.slice(),
    graphs: Object.fromEntries(steps.map((e, i) => [algorithms[i], modelUrl(e).href])),
    fitGraph: modelUrl(fit).href,
    hyper: Object.fromEntries(steps.map((e, i) => [algorithms[i], { inner_lr: e.meta_step.inner_lr, meta_lr: e.meta_step.meta_lr }])),
    family: { amplitude: family.amplitude, phase: family.phase, x: family.x },
    metaBatch: setting.meta_batch_size, kSupport: setting.k_support, kQuery: setting.k_query,
    seed, fitLr: Number(fit.inner_lr),
    example: { ...EXAMPLE, queryX: linspace(family.x[0], family.x[1], EXAMPLE_POINTS) },
    heldout: HELD_OUT, evalEvery, perSecond, workers,
  };
}

/**
 * The algorithms split between `count` workers so that each worker's share of
 * an iteration costs about the same: the costliest first, each to the worker
 * with the least so far. COST is the relative time of one meta-step (Reptile's
 * five inner steps on 20 points cost about as much as the other three together).
 */
const COST = { pretrained: 1, fomaml: 1.2, maml: 2, reptile: 4.8 };

export function shareAlgorithms(algorithms, count) {
  const shares = Array.from({ length: Math.max(1, Math.min(count, algorithms.length)) }, () => ({ cost: 0, algorithms: [] }));
  const order = algorithms.slice().sort((a, b) => (COST[b] ?? 2) - (COST[a] ?? 2));
  for (const alg of order) {
    const least = shares.reduce((best, s) => (s.cost < best.cost ? s : best));
    least.algorithms.push(alg);
    least.cost += COST[alg] ?? 2;
  }
  return shares.map((s) => algorithms.filter((a) => s.algorithms.includes(a)));   // the page's order within a share
}

/** How many workers a run uses by default: two where the browser has three cores or more
 *  (each runs onnxruntime-web on one WebAssembly thread, and a core stays free for the
 *  page), else one. On two cores, two busy workers left the page's own thread waiting
 *  for a core: the four side by side ran 243 iterations a second instead of 161 at real-time
 *  priority, but at normal priority on a loaded machine 94 instead of 124, with frames
 *  held back up to 50 ms; at real-time priority the two workers took both cores from
 *  everything else on the machine. */
export function defaultWorkers() {
  return (globalThis.navigator?.hardwareConcurrency ?? 1) >= 3 ? 2 : 1;
}

/**
 * A live run in its workers, without drawing: what the widget drives, and what
 * the browser benchmark times. onUpdate(message) sees every report.
 *
 * The algorithms are shared between config.workers workers (shareAlgorithms;
 * defaultWorkers),
 * each one running workers/meta-train.js on its share: every worker draws the
 * same seeded stream of task batches, so each algorithm meets the same tasks
 * as in one worker, and its numbers are the same. The run's iteration is the
 * smallest of the workers'; a runUntil stops every worker at that iteration,
 * and a pause holds them all, brings the ones behind up to the one ahead and
 * only then measures (so the table's errors are of one iteration).
 */
export class TrainingRun {
  constructor(config, onUpdate = () => {}) {
    this.config = config;
    this.onUpdate = onUpdate;
    this.waiters = [];
    this.weightRequests = new Map();
    this.requestId = 0;
    const count = config.workers ?? defaultWorkers();
    this.shards = shareAlgorithms(config.algorithms, count).map((algorithms) => ({
      algorithms, worker: null, iteration: 0, running: false, stopped: true, rate: 0, work: { trainMs: 0, measureMs: 0 },
    }));
    this.clear();
  }

  clear() {
    this.iteration = 0;
    this.losses = Object.fromEntries(this.config.algorithms.map((alg) => [alg, []]));
    this.heldout = [];
    this.fit = null;
    this.running = false;
    this.rate = 0;
    this.work = { trainMs: 0, measureMs: 0 };   // the workers' time training and measuring (since the reset)
  }

  /** Start the workers; resolves once each has loaded its graphs and measured iteration 0. */
  open() {
    let pending = this.shards.length;
    const ready = new Promise((resolve, reject) => { this.onReady = resolve; this.onFail = reject; });
    this.readyCount = () => { pending -= 1; return pending === 0; };
    this.shards.forEach((shard, i) => {
      const name = this.shards.length > 1 ? `meta-train-${i + 1}` : "meta-train";
      shard.worker = new Worker(WORKER, { type: "module", name });
      shard.worker.onmessage = (event) => this.receive(shard, event.data);
      shard.worker.onerror = (event) => {
        event.preventDefault?.();
        this.fail(new WidgetError(`the training worker could not start (${event.message || "no reason given"}).`));
      };
      shard.worker.postMessage({ type: "init", config: { ...this.config, algorithms: shard.algorithms } });
    });
    return ready;
  }

  close() {
    for (const shard of this.shards) shard.worker?.terminate();
  }

  fail(error) {
    if (this.onFail) {
      this.onFail(error);
      this.onFail = null;
      return;
    }
    this.onError?.(error);
  }

  send(message) {
    for (const shard of this.shards) shard.worker.postMessage(message);
  }

  receive(shard, message) {
    if (message.type === "error") {
      this.fail(new WidgetError(message.message));
      return;
    }
    if (message.type === "weights") {
      const request = this.weightRequests.get(message.id);
      this.weightRequests.delete(message.id);
      request?.(message);
      return;
    }
    if (message.type === "held") {
      shard.iteration = message.iteration;
      shard.held = true;
      if (this.shards.every((s) => s.held)) this.catchUp();
      return;
    }
    if (shard.resetting && message.type !== "reset") return;         // from before the reset
    if (message.type === "reset") {
      if (this.shards.every((s) => s.resetting)) this.clear();        // the first worker back at iteration 0
      shard.resetting = false;
    }
    this.keep(shard, message);
    this.iteration = Math.min(...this.shards.map((s) => s.iteration));
    this.running = this.shards.some((s) => s.running);
    this.rate = Math.min(...this.shards.map((s) => s.rate));
    this.work = this.shards.reduce((sum, s) => ({ trainMs: sum.trainMs + s.work.trainMs, measureMs: sum.measureMs + s.work.measureMs }),
      { trainMs: 0, measureMs: 0 });
    if (message.type === "ready" && this.readyCount()) {
      this.onReady?.();
      this.onReady = null;
      this.onFail = null;
    }
    if (message.type !== "progress") {
      const settled = this.shards.every((s) => s.stopped && !s.resetting);
      const done = settled ? this.waiters.filter((w) => this.iteration >= w.iteration || message.type === "reset") : [];
      this.waiters = this.waiters.filter((w) => !done.includes(w));
      for (const w of done) w.resolve(this.state());
    }
    this.onUpdate(message);
  }

  /** A worker's report into the run's record: its losses, held-out errors (one entry per iteration,
   *  the workers' errors of that iteration together) and example fits. */
  keep(shard, message) {
    shard.iteration = message.iteration;
    shard.running = message.running;
    shard.stopped = message.type !== "progress" && !message.running;
    shard.rate = message.rate;
    shard.work = message.work;
    for (const alg of shard.algorithms) {
      for (const v of message.losses[alg] ?? []) this.losses[alg].push(v);
    }
    for (const entry of message.heldout) {
      const same = this.heldout.find((h) => h.iteration === entry.iteration);
      if (same) Object.assign(same.errors, entry.errors);
      else {
        const at = this.heldout.findIndex((h) => h.iteration > entry.iteration);
        this.heldout.splice(at < 0 ? this.heldout.length : at, 0, { iteration: entry.iteration, errors: { ...entry.errors } });
      }
    }
    this.fit = { ...this.fit, ...message.fit };
  }

  /** Every worker is held (pause): run the ones behind up to the one ahead, where each measures and reports. */
  catchUp() {
    const at = Math.max(...this.shards.map((s) => s.iteration));
    for (const shard of this.shards) {
      shard.held = false;
      shard.worker.postMessage({ type: "runUntil", iteration: at });
    }
  }

  /** The recorded run: {iteration, losses: {alg: number[]}, heldout: [{iteration, errors}]}. */
  state() {
    return {
      iteration: this.iteration,
      losses: Object.fromEntries(this.config.algorithms.map((alg) => [alg, this.losses[alg].slice()])),
      heldout: this.heldout.map((h) => ({ iteration: h.iteration, errors: { ...h.errors } })),
    };
  }

  play() {
    for (const shard of this.shards) shard.stopped = false;
    this.send({ type: "start" });
    this.running = true;
  }

  pause() {
    this.send({ type: this.shards.length > 1 ? "hold" : "pause" });
    this.running = false;
  }

  /** Back to iteration 0 with `seed`; resolves to state() once every worker has reset. */
  reset(seed = this.config.seed) {
    this.config.seed = seed;
    const promise = new Promise((resolve) => this.waiters.push({ iteration: Infinity, resolve }));
    for (const shard of this.shards) shard.resetting = true;
    this.send({ type: "reset", seed });
    this.running = false;
    return promise;
  }

  setSpeed(perSecond) {
    this.send({ type: "speed", perSecond });
  }

  /** Run until `iteration` meta-iterations are done, then pause; resolves to state(). */
  runUntil(iteration) {
    const promise = new Promise((resolve) => this.waiters.push({ iteration, resolve }));
    for (const shard of this.shards) shard.stopped = false;
    this.send({ type: "runUntil", iteration });
    this.running = true;
    return promise;
  }

  /** An algorithm's current θ: {algorithm, iteration, params: Float32Array}. */
  weights(algorithm) {
    const id = ++this.requestId;
    const promise = new Promise((resolve) => this.weightRequests.set(id, resolve));
    const shard = this.shards.find((s) => s.algorithms.includes(algorithm)) ?? this.shards[0];
    shard.worker.postMessage({ type: "weights", algorithm, id });
    return promise;
  }
}

class WatchItLearn {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    this.models = ALGORITHMS.map((alg) => ({ alg, label: LABELS[alg], colour: COLOURS[alg] }));
    this.run = new TrainingRun(config, () => this.update());
    this.run.onError = (error) => {
      this.root.dataset.state = "error";
      this.status.textContent = `The training stopped: ${error.message}`;
      console.warn("watch-it-learn:", error);
    };
    this.drawStats = { count: 0, maxMs: 0 };   // the main thread's drawing: how often, the longest
    root.watchItLearn = this;
  }

  async start() {
    this.build();
    await this.run.open();
    this.root.dataset.state = "ready";
  }

  update() {
    if (!this.root.isConnected) {
      // The widget left the page (content swapped without a reload, as
      // Material's instant navigation would do): the training stops with it.
      this.run.close();
      return;
    }
    this.root.dataset.running = String(this.run.running);
    this.root.dataset.iteration = String(this.run.iteration);
    this.scheduleDraw();
  }

  get iteration() { return this.run.iteration; }
  get running() { return this.run.running; }
  get losses() { return this.run.losses; }
  get heldout() { return this.run.heldout; }

  state() { return this.run.state(); }

  play() { this.run.play(); this.drawControls(); }

  pause() { this.run.pause(); this.drawControls(); }

  reset(seed) {
    const done = this.run.reset(seed);
    this.drawControls();
    return done;
  }

  setSpeed(perSecond) { this.run.setSpeed(perSecond); }

  /** Run until `iteration` meta-iterations are done, then pause; resolves to state(). */
  runUntil(iteration) {
    const done = this.run.runUntil(iteration);
    this.drawControls();
    return done;
  }

  weights(algorithm) { return this.run.weights(algorithm); }

  /** Hand an algorithm's current θ to the page's sine-fit widget. */
  async useWeights(algorithm) {
    const target = document.querySelector('[data-widget="sine-fit"][data-weights-target]') ??
      document.querySelector('[data-widget="sine-fit"]');
    if (!target) throw new WidgetError("this page has no sinusoid widget to hand the weights to.");
    const { params, iteration } = await this.weights(algorithm);
    const weights = {
      params, label: `${LABELS[algorithm]} after ${iteration.toLocaleString("en")} live iteration${iteration === 1 ? "" : "s"}`,
    };
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    if (target.sineFit) {
      await target.sineFit.useWeights(weights);
    } else {
      target.pendingWeights = weights;              // sine-fit's mount() takes them
    }
    return target;
  }

  // ---------------------------------------------------------------- drawing

  build() {
    const ui = htmlElement("div", { class: "sine-fit watch-it-learn" });
    const width = Math.round(Math.max(320, Math.min(640, this.root.clientWidth || 640)));
    this.playButton = button({
      label: "Start", className: "watch-it-learn-start", onClick: () => (this.running ? this.pause() : this.play()),
    });
    const resetButton = button({ label: "Reset", className: "watch-it-learn-reset", onClick: () => this.reset() });
    const speed = slider({
      label: "Speed", className: "watch-it-learn-speed", min: 0, max: SPEEDS.length - 1, step: 1, value: DEFAULT_SPEED,
      format: (i) => (Number.isFinite(SPEEDS[i]) ? `${SPEEDS[i]} iterations/s` : "as fast as it goes"),
      onInput: (i) => this.setSpeed(SPEEDS[i]),
    });
    this.status = htmlElement("p", { class: "watch-it-learn__status", "aria-live": "polite" });
    const controls = htmlElement("div", { class: "sine-fit__controls" },
      htmlElement("div", { class: "sine-fit__buttons" }, this.playButton, resetButton), speed.element);

    const legend = htmlElement("p", { class: "sine-fit__legend" }, ...this.models.map((m) => swatchKey(m.colour, m.label)));

    this.lossPlot = createPlot(ui, {
      width, height: Math.round(Math.max(220, width * 0.45)), margin: { top: 16, right: 16, bottom: 36, left: 52 },
      xDomain: [0, 100], yDomain: [-2, 1],
      label: "Each algorithm's meta-loss against the meta-iteration, on a logarithmic scale.",
    });
    this.lossPlot.svg.classList.add("watch-it-learn-loss");
    this.lossCurves = this.models.map((m) => {
      const path = createCurve(this.lossPlot, "watch-it-learn-loss-curve");
      paint(path, m.colour, 2);
      path.dataset.model = m.alg;
      return path;
    });

    const fitHolder = htmlElement("div", {});
    this.fitPlot = createPlot(fitHolder, {
      width, height: Math.round(Math.max(240, width * 0.5)), xDomain: this.config.family.x, yDomain: Y_DOMAIN,
      label: "A fixed example task (red), its five samples, and each model's prediction after one gradient step on them.",
    });
    drawAxes(this.fitPlot, { xLabel: "x", yLabel: "y" });
    const { a, phase, xs, queryX } = this.config.example;
    setCurve(this.fitPlot, createCurve(this.fitPlot, "sine-fit-target"), queryX, queryX.map((x) => a * Math.sin(x + phase)));
    this.fitCurves = this.models.map((m) => {
      const path = createCurve(this.fitPlot, "watch-it-learn-fit");
      paint(path, m.colour, 2.5);
      path.dataset.model = m.alg;
      return path;
    });
    setPoints(this.fitPlot, svgElement("g", { class: "sine-fit-samples" }, this.fitPlot.layers.data),
      xs.map((x) => ({ x, y: a * Math.sin(x + phase) })), { className: "sine-fit-sample" });

    this.tableBody = htmlElement("tbody");
    const table = htmlElement("table", { class: "all-models__table watch-it-learn__table" },
      htmlElement("caption", {}, `Each model now; the last column is the mean squared error on ${HELD_OUT.tasks} ` +
        `held-out tasks after one gradient step on ${HELD_OUT.shots} points of each`),
      htmlElement("thead", {}, htmlElement("tr", {},
        htmlElement("th", { scope: "col" }, "model"),
        htmlElement("th", { scope: "col" }, "meta-loss (last 50)"),
        htmlElement("th", { scope: "col" }, "one-step error"),
        htmlElement("th", { scope: "col" }, "on your points"))),
      this.tableBody);
    this.rows = this.models.map((m) => {
      const cells = [htmlElement("td"), htmlElement("td")];
      const use = button({
        label: "Use these weights", className: "watch-it-learn-use",
        title: `Fit your own points with ${m.label}'s weights as they are now (the sinusoid widget below)`,
        onClick: () => this.useWeights(m.alg).catch((err) => { this.status.textContent = err.message; }),
      });
      use.dataset.model = m.alg;
      const name = htmlElement("th", { scope: "row" }, swatchKey(m.colour, m.label));
      this.tableBody.append(htmlElement("tr", { "data-model": m.alg }, name, ...cells, htmlElement("td", {}, use)));
      return cells;
    });
    ui.prepend(legend, controls, this.status);
    ui.append(fitHolder, table);
    this.root.append(ui);
    this.drawControls();
  }

  drawControls() {
    this.playButton.textContent = this.running ? "Pause" : this.iteration ? "Resume" : "Start";
    this.playButton.setAttribute("aria-pressed", String(this.running));
  }

  scheduleDraw() {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      this.draw();
    });
  }

  draw() {
    const started = performance.now();
    this.drawFrame();
    const ms = performance.now() - started;
    this.drawStats.count += 1;
    this.drawStats.maxMs = Math.max(this.drawStats.maxMs, ms);
  }

  drawFrame() {
    this.drawControls();
    const n = this.iteration;
    const rate = this.run.rate > 0 && this.running ? `, ${Math.round(this.run.rate).toLocaleString("en")} per second` : "";
    this.status.textContent = n === 0
      ? "Iteration 0: all four models start from the same weights. Press Start."
      : `Iteration ${n.toLocaleString("en")}${rate}${this.running ? "" : " (paused)"}.`;
    // Meta-loss: means over bins of iterations, log10.
    const xMax = Math.max(100, axisEnd(n));
    const binSize = Math.max(1, Math.ceil(xMax / MAX_BINS));
    const curves = ALGORITHMS.map((alg) => binned(this.losses[alg], binSize));
    const all = curves.flatMap((c) => c.ys).filter(Number.isFinite);
    const lo = all.length ? Math.floor(Math.min(...all)) : -2;
    const hi = all.length ? Math.ceil(Math.max(...all)) : 1;
    this.setLossAxes(xMax, lo, hi === lo ? lo + 1 : hi);
    curves.forEach((c, i) => setCurve(this.lossPlot, this.lossCurves[i], c.xs, c.ys));
    if (this.run.fit) {
      const queryX = this.config.example.queryX;
      ALGORITHMS.forEach((alg, i) => {
        if (this.run.fit[alg]) setCurve(this.fitPlot, this.fitCurves[i], queryX, this.run.fit[alg]);
      });
    }
    ALGORITHMS.forEach((alg, i) => {
      const recent = this.losses[alg].slice(-50);
      // The latest measurement of this model (the workers that share the run report separately).
      const last = this.heldout.findLast((h) => h.errors[alg] !== undefined);
      this.rows[i][0].textContent = recent.length ? formatError(mean(recent)) : "–";
      this.rows[i][1].textContent = last ? formatError(last.errors[alg]) : "–";
    });
  }

  setLossAxes(xMax, lo, hi) {
    const key = `${xMax}/${lo}/${hi}`;
    if (this.lossAxes === key) return;
    this.lossAxes = key;
    const plot = this.lossPlot;
    const { area } = plot;
    plot.x = scale([0, xMax], [area.left, area.right]);
    plot.y = scale([lo, hi], [area.bottom, area.top]);
    const g = plot.layers.grid;
    g.replaceChildren();
    for (const t of niceTicks(xMax)) {
      svgElement("line", { class: "widget-gridline", x1: plot.x(t), x2: plot.x(t), y1: area.top, y2: area.bottom }, g);
      svgElement("text", { class: "widget-tick", x: plot.x(t), y: area.bottom + 16, "text-anchor": "middle" }, g)
        .textContent = t.toLocaleString("en");
    }
    const every = Math.ceil((hi - lo) / 5);
    for (let e = lo; e <= hi; e += every) {
      svgElement("line", { class: "widget-gridline", x1: area.left, x2: area.right, y1: plot.y(e), y2: plot.y(e) }, g);
      svgElement("text", { class: "widget-tick", x: area.left - 6, y: plot.y(e) + 4, "text-anchor": "end" }, g)
        .textContent = e === 0 ? "1" : `10${String(e).replace("-", "⁻").replace(/\d/g, (d) => "⁰¹²³⁴⁵⁶⁷⁸⁹"[d])}`;
    }
    svgElement("rect", { class: "widget-frame", x: area.left, y: area.top, width: area.right - area.left, height: area.bottom - area.top }, g);
    svgElement("text", { class: "widget-axis-label", x: area.right, y: area.bottom + 30, "text-anchor": "end" }, g)
      .textContent = "meta-iteration";
    svgElement("text", { class: "widget-axis-label", x: area.left + 4, y: area.top + 14 }, g).textContent = "meta-loss";
  }
}

function binned(values, size) {
  const xs = [];
  const ys = [];
  for (let start = 0; start < values.length; start += size) {
    const chunk = values.slice(start, start + size);
    xs.push(start + chunk.length / 2);
    const m = mean(chunk);
    ys.push(m > 0 ? Math.log10(m) : NaN);
  }
  return { xs, ys };
}

function mean(values) {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

function scale([d0, d1], [r0, r1]) {
  const f = (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
  f.domain = [d0, d1];
  f.invert = (p) => d0 + ((p - r0) / (r1 - r0)) * (d1 - d0);
  return f;
}

function axisEnd(n) {
  const power = 10 ** Math.floor(Math.log10(Math.max(1, n)));
  return power * AXIS_STEPS.find((step) => step * power >= n);
}

function niceTicks(max) {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let t = 0; t <= max + 1e-9; t += step) out.push(t);
  return out;
}

function paint(path, colour, width) {
  path.style.stroke = colour;
  path.style.strokeWidth = String(width);
  path.style.fill = "none";
}

function swatchKey(colour, text) {
  const swatch = htmlElement("span", { class: "sine-fit-key", "aria-hidden": "true" });
  swatch.style.borderColor = colour;
  return htmlElement("span", { class: "sine-fit__key" }, swatch, ` ${text}`);
}

function formatError(v) {
  if (!Number.isFinite(v)) return "blew up";
  return v >= 100 ? v.toExponential(1) : v.toFixed(3);
}
