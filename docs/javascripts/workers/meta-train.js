// Live meta-training, off the page's thread: the worker behind "Watch it learn"
// (widgets/watch-it-learn.js, Comparison page).
//
// Every algorithm meta-trains from the same θ₀ on the same stream of seeded
// sinusoid task batches: each meta-iteration draws one batch here and runs
// every algorithm's meta-step graph (meta/meta_step.py, exported by the build)
// on it, which returns the new θ, the new optimiser state and the meta-loss.
// The one-step θ-fit graph (meta/theta_fit.py, theta-fit-1.onnx) shows what
// each θ predicts: its fit to a fixed example task, and its one-step error on
// a fixed set of held-out tasks, all four models in one run of the graph.
// Nothing is computed here but the tasks and the errors of those fits.
//
// onnxruntime-web runs with one WebAssembly thread. The worker runs the
// iterations in slices of a few milliseconds and yields between them, so that
// pause, reset and speed messages are answered at once.
//
// What the reader watches costs little beside the training (tests/benchmarks/
// live_training.py measures both): the held-out tasks are measured every
// evalEvery iterations and wherever the run stops, with the one-step graph
// (the ten-step θ-fit graph's rows 0 and 1, a tenth of its work), into buffers
// made once; the example fit runs only for a report, at most every REPORT_MS,
// five times a second: each report is a redraw of the page, and more of them
// took CPU time from this thread on a two-core machine without showing more.
//
// Messages in:  {type: "init", config} · {type: "start"} · {type: "pause"} · {type: "reset", seed?}
//               {type: "hold"} (stop without measuring; answers "held": the page's run, shared
//               between workers, then brings every worker to one iteration with runUntil)
//               {type: "speed", perSecond}  (Infinity: as fast as it goes)
//               {type: "runUntil", iteration} (run, then pause exactly there)
//               {type: "weights", algorithm, id}
// Messages out: {type: "ready", ...snapshot} · {type: "progress", ...snapshot} · {type: "held", iteration} ·
//               {type: "paused", ...snapshot} · {type: "reset", ...snapshot} (iteration 0 again)
//               {type: "weights", id, algorithm, params, iteration}
//               {type: "error", message}
// A snapshot: {iteration, running, losses: {alg: Float32Array (since the last message)},
//              fit: {alg: Float32Array (the example task's curve after one step)},
//              heldout: [{iteration, errors: {alg: number}}] (new evaluations), rate,
//              work: {trainMs, measureMs} (the worker's time since the reset in the meta-steps,
//              and in the held-out and example fits: what the benchmark reports)}
import { initialParams, seededRandom, sinusoidBatch } from "../lib/seeded.js";

const SLICE_MS = 25;          // longest run of iterations between two looks at the message queue
const REPORT_MS = 200;        // how often progress goes to the page while running (each one is drawn)

let ort = null;
let config = null;            // see init()
let sessions = null;          // {meta: {alg: session}, fit: session}
let state = null;             // {iteration, random, models: {alg: {params, adam_m, adam_v, step}}}
let running = false;
let stopAt = Infinity;        // runUntil's iteration
let perSecond = Infinity;
let pending = null;           // losses and evaluations not yet sent
let lastReport = 0;
let paceStart = 0;
let paceIterations = 0;
let scalars = null;           // {alg: {inner_lr, meta_lr}} as tensors, made once
let example = null;           // the fixed example task's tensors (and its θ rows, reused)
let heldout = null;           // the fixed held-out tasks' tensors (and their θ rows, reused)
let holding = false;          // a hold stopped the loop: it ends without measuring or reporting
let batch = null;             // the task batch's arrays and tensors, drawn into at every iteration
let lastEvaluated = -1;       // the iteration of the latest held-out measurement
let numParams = 0;            // the length of θ
let work = { trainMs: 0, measureMs: 0 };

// Messages are handled one at a time, in order (a reset finishes before the
// next start); the training loop itself runs beside them, so a pause is seen
// within one slice.
let queue = Promise.resolve();
self.onmessage = (event) => {
  queue = queue.then(() => handle(event.data)).catch((err) => {
    running = false;
    self.postMessage({ type: "error", message: String(err?.message ?? err) });
  });
};

async function handle(message) {
  switch (message.type) {
    case "init": return init(message.config);
    case "start": stopAt = Infinity; return start();
    case "runUntil": stopAt = message.iteration; return start();
    case "pause": running = false; return undefined;
    case "hold": return hold();
    case "reset": running = false; await settle(); return reset(message.seed ?? config.seed, "reset");
    case "speed": perSecond = message.perSecond > 0 ? message.perSecond : Infinity; paceRestart(); return undefined;
    case "weights": return sendWeights(message);
    default: throw new Error(`unknown message ${message.type}`);
  }
}

/**
 * config: {ortModule, ortWasm (URLs), algorithms: [names], graphs: {alg: URL}, fitGraph: URL,
 *          hyper: {alg: {inner_lr, meta_lr}}, family: {amplitude, phase, x},
 *          metaBatch, kSupport, kQuery, seed, fitLr, example: {a, phase, xs, queryX},
 *          heldout: {seed, tasks, shots, points}, evalEvery}
 */
async function init(cfg) {
  config = cfg;
  ort = await import(cfg.ortModule);
  ort.env.wasm.wasmPaths = { wasm: cfg.ortWasm };
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const load = async (url, options = {}) => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`the model ${new URL(url).pathname} is missing (HTTP ${response.status})`);
    return ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()), { executionProviders: ["wasm"], ...options });
  };
  // The meta-step graphs take any T, K and Q; this run only ever gives them
  // one batch size, and with it fixed onnxruntime folds the graphs' shape
  // arithmetic away once, at load, instead of at every run.
  const sizes = { freeDimensionOverrides: { T: cfg.metaBatch, K: cfg.kSupport, Q: cfg.kQuery } };
  const metas = await Promise.all(cfg.algorithms.map((alg) => load(cfg.graphs[alg], sizes)));
  sessions = { meta: Object.fromEntries(cfg.algorithms.map((alg, i) => [alg, metas[i]])), fit: await load(cfg.fitGraph) };
  batch = batchTensors(cfg.metaBatch, cfg.kSupport, cfg.kQuery);
  scalars = Object.fromEntries(cfg.algorithms.map((alg) => [alg, {
    inner_lr: scalar(cfg.hyper[alg].inner_lr), meta_lr: scalar(cfg.hyper[alg].meta_lr),
  }]));
  numParams = initialParams(seededRandom(cfg.seed, "theta")).length;
  example = exampleTensors(cfg.example, cfg.algorithms.length);
  heldout = heldoutTensors(cfg, cfg.algorithms.length);
  perSecond = cfg.perSecond > 0 ? cfg.perSecond : Infinity;
  await reset(cfg.seed, "ready");
}

function scalar(v) {
  return new ort.Tensor("float32", Float32Array.of(v), []);
}

/** The state at iteration 0 for `seed`: one θ₀ for every algorithm, zero moments. */
async function reset(seed, type) {
  config.seed = seed;
  const theta0 = initialParams(seededRandom(seed, "theta"));
  const zeros = () => new ort.Tensor("float32", new Float32Array(theta0.length), [theta0.length]);
  state = {
    iteration: 0,
    random: seededRandom(seed, "tasks"),
    models: Object.fromEntries(config.algorithms.map((alg) => [alg, {
      params: new ort.Tensor("float32", theta0.slice(), [theta0.length]),
      adam_m: zeros(), adam_v: zeros(), step: scalar(0),
    }])),
  };
  pending = emptyPending();
  lastEvaluated = -1;
  work = { trainMs: 0, measureMs: 0 };
  await evaluate();
  self.postMessage({ type, ...await snapshot() });
}

function emptyPending() {
  return { losses: Object.fromEntries(config.algorithms.map((alg) => [alg, []])), heldout: [] };
}

let loopPromise = Promise.resolve();

/** Wait for the loop to stop after running = false. */
function settle() {
  return loopPromise;
}

function start() {
  holding = false;
  if (running || state.iteration >= stopAt) {
    if (state.iteration >= stopAt && !running) return stopped();
    return undefined;
  }
  running = true;
  paceRestart();
  loopPromise = loop();
  return undefined;
}

function paceRestart() {
  paceStart = performance.now();
  paceIterations = 0;
}

async function loop() {
  lastReport = performance.now();
  while (running) {
    const sliceEnd = performance.now() + SLICE_MS;
    let budget = Infinity;
    if (Number.isFinite(perSecond)) {
      budget = Math.floor(((performance.now() - paceStart) / 1000) * perSecond) - paceIterations;
    }
    while (running && budget > 0 && state.iteration < stopAt && performance.now() < sliceEnd) {
      const t0 = performance.now();
      await iterate();
      work.trainMs += performance.now() - t0;
      budget -= 1;
      paceIterations += 1;
      if (config.evalEvery > 0 && state.iteration % config.evalEvery === 0) await evaluate();
    }
    if (state.iteration >= stopAt) {
      running = false;
      await stopped();
      return;
    }
    if (performance.now() - lastReport >= REPORT_MS) await report("progress");
    await breathe(Number.isFinite(perSecond) && budget <= 0 ? Math.min(50, 1000 / perSecond) : 0);
  }
  if (!holding) await stopped();
}

/** Stop where the loop is, without measuring; say where. */
async function hold() {
  holding = true;
  running = false;
  await settle();
  self.postMessage({ type: "held", iteration: state.iteration });
}

/** The run stopped (paused, or at runUntil's iteration): the table shows the
 *  held-out errors of the θ it stopped at. */
async function stopped() {
  if (config.evalEvery > 0 && lastEvaluated !== state.iteration) await evaluate();
  await report("paused");
}

/** Yield to the message queue: a zero-delay message, or a timer when pacing. */
function breathe(ms) {
  if (ms > 0) return new Promise((resolve) => setTimeout(resolve, ms));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

/** The task batch's inputs, made once: {arrays (what sinusoidBatch draws into), tensors (over them)}. */
function batchTensors(t, k, q) {
  const arrays = {
    support_x: new Float32Array(t * k), support_y: new Float32Array(t * k),
    query_x: new Float32Array(t * q), query_y: new Float32Array(t * q),
  };
  const shape = (name) => [t, name.startsWith("support") ? k : q, 1];
  return { arrays, tensors: Object.fromEntries(Object.entries(arrays).map(([name, data]) => [name, new ort.Tensor("float32", data, shape(name))])) };
}

/** One meta-iteration: one batch, every algorithm's meta-step on it. */
async function iterate() {
  const { metaBatch: t, kSupport: k, kQuery: q } = config;
  sinusoidBatch(state.random, config.family, t, k, q, batch.arrays);   // onnxruntime copies the inputs at each run
  const data = batch.tensors;
  for (const alg of config.algorithms) {
    const model = state.models[alg];
    const out = await sessions.meta[alg].run({
      params: model.params, adam_m: model.adam_m, adam_v: model.adam_v, step: model.step, ...data, ...scalars[alg],
    });
    model.params = out.new_params;
    model.adam_m = out.new_adam_m;
    model.adam_v = out.new_adam_v;
    model.step = out.new_step;
    pending.losses[alg].push(out.meta_loss.data[0]);
  }
  state.iteration += 1;
}

function exampleTensors({ a, phase, xs, queryX }, count) {
  const k = xs.length;
  const m = queryX.length;
  const sx = new Float32Array(count * k);
  const sy = new Float32Array(count * k);
  const qx = new Float32Array(count * m);
  for (let t = 0; t < count; t++) {
    xs.forEach((x, i) => { sx[t * k + i] = x; sy[t * k + i] = a * Math.sin(x + phase); });
    qx.set(queryX, t * m);
  }
  return {
    support_x: new ort.Tensor("float32", sx, [count, k, 1]),
    support_y: new ort.Tensor("float32", sy, [count, k, 1]),
    query_x: new ort.Tensor("float32", qx, [count, m, 1]),
    params: paramTensor(count, 1), inner_lr: scalar(config.fitLr),
    m,
  };
}

/** The held-out tasks once per algorithm, one after the other: every model is
 *  measured in one run of the θ-fit graph. */
function heldoutTensors(cfg, count) {
  const { seed, tasks, shots, points } = cfg.heldout;
  const batch = sinusoidBatch(seededRandom(seed, "held-out"), cfg.family, tasks, shots, points);
  const repeat = (data) => {
    const out = new Float32Array(count * data.length);
    for (let i = 0; i < count; i++) out.set(data, i * data.length);
    return out;
  };
  return {
    support_x: new ort.Tensor("float32", repeat(batch.support_x), [count * tasks, shots, 1]),
    support_y: new ort.Tensor("float32", repeat(batch.support_y), [count * tasks, shots, 1]),
    query_x: new ort.Tensor("float32", repeat(batch.query_x), [count * tasks, points, 1]),
    params: paramTensor(count, tasks), inner_lr: scalar(cfg.fitLr),
    truth: batch.query_y, tasks, points,
  };
}

/** A θ-rows input of `count` models × `repeat` rows each, whose buffer fillRows rewrites. */
function paramTensor(count, repeat) {
  return new ort.Tensor("float32", new Float32Array(count * repeat * numParams), [count * repeat, numParams]);
}

/** Each algorithm's current θ into `repeat` rows of the tensor, algorithm after algorithm. */
function fillRows(tensor, repeat) {
  const out = tensor.data;
  config.algorithms.forEach((alg, i) => {
    const params = state.models[alg].params.data;
    for (let r = 0; r < repeat; r++) out.set(params, (i * repeat + r) * params.length);
  });
  return tensor;
}

/** The θ-fit graph on prepared inputs (the tensors above; params filled). */
async function fitRun({ params, support_x, support_y, query_x, inner_lr }) {
  const t0 = performance.now();
  const out = await sessions.fit.run({ params, support_x, support_y, query_x, inner_lr });
  work.measureMs += performance.now() - t0;
  return out;
}

/** Every algorithm's one-step error on the held-out tasks (mean squared error at the query points
 *  after one plain gradient step at fitLr on the task's support points). */
async function evaluate() {
  lastEvaluated = state.iteration;
  if (!heldout.tasks) return;
  fillRows(heldout.params, heldout.tasks);
  const out = await fitRun(heldout);
  const n = heldout.tasks * heldout.points;
  const rows = config.algorithms.length * n;
  const errors = {};
  config.algorithms.forEach((alg, a) => {
    const after = out.query_y.data.subarray(rows + a * n, rows + (a + 1) * n);   // row 1: after one step
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (after[i] - heldout.truth[i]) ** 2;
    errors[alg] = sum / n;
  });
  pending.heldout.push({ iteration: state.iteration, errors });
}

/** Each algorithm's curve on the example task after one step: {alg: Float32Array [M]}. */
async function exampleFit() {
  const algs = config.algorithms;
  fillRows(example.params, 1);
  const out = await fitRun(example);
  const m = example.m;
  const rowStart = algs.length * m;                               // row 1 of [S+1, T, M, 1]
  return Object.fromEntries(algs.map((alg, t) => [alg,
    out.query_y.data.slice(rowStart + t * m, rowStart + (t + 1) * m)]));
}

async function snapshot() {
  const sent = pending;
  pending = emptyPending();
  const elapsed = (performance.now() - paceStart) / 1000;
  return {
    iteration: state.iteration,
    running,
    losses: Object.fromEntries(Object.entries(sent.losses).map(([alg, v]) => [alg, Float32Array.from(v)])),
    heldout: sent.heldout,
    fit: await exampleFit(),
    rate: elapsed > 0 ? paceIterations / elapsed : 0,
    work: { ...work },
  };
}

async function report(type) {
  lastReport = performance.now();
  self.postMessage({ type, ...await snapshot() });
}

function sendWeights({ algorithm, id }) {
  const model = state.models[algorithm];
  if (!model) throw new Error(`no algorithm ${algorithm} in this run`);
  self.postMessage({ type: "weights", id, algorithm, iteration: state.iteration, params: Float32Array.from(model.params.data) });
}
