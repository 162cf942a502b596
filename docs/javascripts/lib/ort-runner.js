// Runs the build's ONNX graphs with onnxruntime-web's WebAssembly backend,
// loaded from the site's own vendor folder (never from a CDN).
import { loadManifest, modelUrl } from "./manifest.js";
import { siteUrl, WidgetError } from "./site.js";

const ORT_DIR = siteUrl("assets/vendor/onnxruntime-web/");
// The ES-module bundle has the WebAssembly glue inlined; the only other file
// it fetches is the .wasm binary. wasmPaths names just that file: given a
// folder prefix instead, the bundle would fetch a separate glue .mjs too.
const ORT_MODULE = new URL("ort.wasm.bundle.min.mjs", ORT_DIR);
const ORT_WASM = new URL("ort-wasm-simd-threaded.wasm", ORT_DIR);

// The smallest graph there is: one float through an Identity node
// (tests/test_warm_up_graph.py checks that onnxruntime opens and runs it).
// loadOrt() opens a session on it and closes it at once. onnxruntime-web
// compiles its WebAssembly and starts its runtime with the first session it
// opens, about 300 ms of a widget's start-up on this project's test machine;
// doing that on this graph lets it happen while the widget's own graph and
// the model list are still being fetched, instead of after them.
const WARM_UP_GRAPH = new Uint8Array([
  8, 8, 18, 0, 58, 58, 10, 16, 10, 1, 120, 18, 1, 121, 34, 8, 73, 100, 101, 110, 116, 105, 116, 121, 18, 4,
  119, 97, 114, 109, 90, 15, 10, 1, 120, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 98, 15, 10, 1, 121, 18, 10,
  10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 66, 4, 10, 0, 16, 17,
]);

// No graph optimisation when a session is created: the exported graphs are
// small and already what they should run, and optimising them (constant
// folding, fusions) in freshly compiled WebAssembly took about half of a
// widget's start-up (a sinusoid graph: ~1.7 s → ~0.85 s on a loaded machine)
// without making a run measurably faster.
const SESSION_OPTIONS = { executionProviders: ["wasm"], graphOptimizationLevel: "disabled" };

let ortPromise = null;
const sessions = new Map();       // model URL -> Promise<InferenceSession>
const sessionUrls = new WeakMap(); // InferenceSession -> its model URL
const inputSpecs = new WeakMap();  // InferenceSession -> Promise<[{name, type, shape}]>
// One queue for every session: the single-threaded WebAssembly backend is not
// re-entrant, and two sessions' runs overlapping (two widgets on one page)
// fail inside onnxruntime-web ("Cannot read properties of null").
let lastRun = Promise.resolve();

/** The onnxruntime-web module, configured for a static host, its runtime started. */
export function loadOrt() {
  if (!ortPromise) {
    ortPromise = (async () => {
      if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
        throw new WidgetError("this browser does not run WebAssembly.");
      }
      let ort;
      try {
        ort = await import(ORT_MODULE.href);
      } catch (err) {
        throw new WidgetError(`the ONNX runtime (${ORT_MODULE.pathname}) could not be loaded (${err.message}).`);
      }
      ort.env.wasm.wasmPaths = { wasm: ORT_WASM.href };
      // A static host is not cross-origin isolated, so there are no threads
      // to have; saying so up front avoids a failed attempt and a warning.
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      ort.env.logLevel = "error";
      try {
        const warm = await ort.InferenceSession.create(WARM_UP_GRAPH, SESSION_OPTIONS);
        await warm.release();
      } catch (err) {
        throw new WidgetError(`the ONNX runtime could not start: its WebAssembly file ${ORT_WASM.pathname} ` +
          `did not load or compile (${firstLine(String(err?.message ?? err))}).`);
      }
      return ort;
    })();
    ortPromise.catch(() => { ortPromise = null; });
  }
  return ortPromise;
}

/** An inference session for the graph at `url`, created once per page load. */
export function loadSession(url) {
  const key = String(url);
  if (!sessions.has(key)) {
    const created = (async () => {
      const path = new URL(key).pathname;
      // The graph is fetched here, not by onnxruntime-web, so that a missing
      // file is reported as such (onnxruntime calls it "external data").
      const [ort, bytes] = await Promise.all([loadOrt(), fetchModel(key, path)]);
      let session;
      try {
        session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
      } catch (err) {
        throw new WidgetError(`the model ${path} could not be loaded (${firstLine(String(err?.message ?? err))}).`);
      }
      sessionUrls.set(session, key);
      return session;
    })();
    created.catch(() => sessions.delete(key));
    sessions.set(key, created);
  }
  return sessions.get(key);
}

async function fetchModel(url, path) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new WidgetError(`the model ${path} could not be fetched (${err.message}).`);
  }
  if (!response.ok) throw new WidgetError(`the model ${path} is missing (HTTP ${response.status}).`);
  return new Uint8Array(await response.arrayBuffer());
}

function firstLine(message) {
  const line = message.split("\n")[0].replace(/\s*Build with -s\S+ for more info\.?/, "").replace(/[.\s]+$/, "");
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** Throw a reader-facing error unless the session has these inputs and outputs. */
export function checkSignature(session, inputs, outputs) {
  const missing = [
    ...inputs.filter((n) => !session.inputNames.includes(n)).map((n) => `input ${n}`),
    ...outputs.filter((n) => !session.outputNames.includes(n)).map((n) => `output ${n}`),
  ];
  if (missing.length) {
    throw new WidgetError(`the model does not have the expected ${missing.join(", ")}.`);
  }
}

/**
 * What each input of the session's graph accepts: [{name, type, shape}], a
 * shape entry being a size or the name of a size that may vary ("N"). From
 * the graph itself (onnxruntime-web's inputMetadata); where the runtime does
 * not say, from the model list's description of the graph (its `graph` field).
 */
function specsOf(session) {
  if (!inputSpecs.has(session)) {
    inputSpecs.set(session, (async () => {
      const metadata = session.inputMetadata;
      if (Array.isArray(metadata) && metadata.every((m) => m.isTensor && Array.isArray(m.shape))) {
        return metadata.map(({ name, type, shape }) => ({ name, type, shape }));
      }
      const url = sessionUrls.get(session);
      const manifest = await loadManifest();
      const entry = manifest.models.find((m) => url && String(modelUrl(m)) === url);
      return entry?.graph?.inputs ?? null;
    })());
  }
  return inputSpecs.get(session);
}

const shapeText = (dims) => `[${dims.map(String).join(", ")}]`;

/**
 * Throw a WidgetError naming the input, what was given and what the graph
 * allows, unless `inputs` ({name: {data, dims}}) are exactly the graph's
 * inputs, each float32 numbers of an allowed shape (a named size such as N
 * the same in every input that uses it), as many values as the shape holds,
 * all finite. Returns the number of values of each input.
 */
export function checkFeeds(inputs, specs, names, model = "the model") {
  const allowedNames = specs ? specs.map((s) => s.name) : names;
  const given = Object.keys(inputs);
  for (const name of given) {
    if (!allowedNames.includes(name)) {
      throw new WidgetError(`${model} has no input "${name}" (it takes ${allowedNames.join(", ")}).`);
    }
  }
  for (const name of allowedNames) {
    if (!given.includes(name)) throw new WidgetError(`${model} needs input "${name}", which was not given.`);
  }
  const sizes = new Map();       // named size -> [value, the input that fixed it]
  for (const [name, feed] of Object.entries(inputs)) {
    const spec = specs?.find((s) => s.name === name);
    const allowed = spec ? `${spec.type} ${shapeText(spec.shape)}` : "float32";
    const fail = (given, why = "") =>
      new WidgetError(`${model} cannot take input "${name}": given ${given}, allowed ${allowed}${why}.`);
    const { data, dims } = feed ?? {};
    const isNumbers = data != null && typeof data !== "string" && typeof data.length === "number" &&
      !(data instanceof BigInt64Array || data instanceof BigUint64Array);
    if (!isNumbers) throw fail(`a ${data === null ? "null" : typeof data} instead of a list of numbers`);
    if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) {
      throw fail(`dims ${Array.isArray(dims) ? shapeText(dims) : String(dims)}, which is not a shape`);
    }
    if (spec && spec.type !== "float32") throw fail(`float32 ${shapeText(dims)} (this page feeds float32 only)`);
    if (spec) {
      if (dims.length !== spec.shape.length) {
        throw fail(`float32 ${shapeText(dims)}`, ` (${spec.shape.length} dimension${spec.shape.length === 1 ? "" : "s"}, not ${dims.length})`);
      }
      spec.shape.forEach((want, k) => {
        if (typeof want === "number" && want >= 0 && dims[k] !== want) {
          throw fail(`float32 ${shapeText(dims)}`, ` (dimension ${k + 1} must be ${want})`);
        }
        if (typeof want === "string" && want) {
          const seen = sizes.get(want);
          if (seen && seen[0] !== dims[k]) {
            throw fail(`float32 ${shapeText(dims)}`, ` (${want} is ${seen[0]} in input "${seen[1]}")`);
          }
          if (!seen) sizes.set(want, [dims[k], name]);
        }
      });
    }
    const count = dims.reduce((p, d) => p * d, 1);
    if (data.length !== count) {
      throw fail(`${data.length} value${data.length === 1 ? "" : "s"} for shape ${shapeText(dims)}, which holds ${count}`);
    }
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw fail(`${String(v)} at position ${i}`, " (finite numbers only)");
      }
    }
  }
}

/**
 * Run a session on float32 inputs given as {name: {data: number[] | Float32Array, dims}}.
 * The inputs are checked against the graph first (checkFeeds): a wrong name,
 * type, shape or value count, or a NaN, is a WidgetError saying which input
 * and what the graph takes, never an onnxruntime stack trace.
 * Runs are queued, one at a time across all sessions; resolves to
 * {name: {data: Float32Array, dims: number[]}} for every output.
 */
export async function runGraph(session, inputs) {
  const [ort, specs] = await Promise.all([loadOrt(), specsOf(session)]);
  const url = sessionUrls.get(session);
  const model = url ? `the model ${new URL(url).pathname}` : "the model";
  checkFeeds(inputs, specs, session.inputNames, model);
  const feeds = {};
  for (const [name, { data, dims }] of Object.entries(inputs)) {
    feeds[name] = new ort.Tensor("float32", Float32Array.from(data), dims);
  }
  const run = lastRun.then(() => session.run(feeds));
  lastRun = run.catch(() => {});
  let results;
  try {
    results = await run;
  } catch (err) {
    throw new WidgetError(`${model} failed to run (${firstLine(String(err?.message ?? err))}).`);
  }
  const outputs = {};
  for (const [name, tensor] of Object.entries(results)) {
    outputs[name] = { data: Float32Array.from(tensor.data), dims: Array.from(tensor.dims) };
  }
  return outputs;
}
