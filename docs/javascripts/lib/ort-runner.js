// Runs the build's ONNX graphs with onnxruntime-web's WebAssembly backend,
// loaded from the site's own vendor folder (never from a CDN).
import { siteUrl, WidgetError } from "./site.js";

const ORT_DIR = siteUrl("assets/vendor/onnxruntime-web/");
// The ES-module bundle has the WebAssembly glue inlined; the only other file
// it fetches is the .wasm binary. wasmPaths names just that file: given a
// folder prefix instead, the bundle would fetch a separate glue .mjs too.
const ORT_MODULE = new URL("ort.wasm.bundle.min.mjs", ORT_DIR);
const ORT_WASM = new URL("ort-wasm-simd-threaded.wasm", ORT_DIR);

let ortPromise = null;
const sessions = new Map();       // model URL -> Promise<InferenceSession>
// One queue for every session: the single-threaded WebAssembly backend is not
// re-entrant, and two sessions' runs overlapping (two widgets on one page)
// fail inside onnxruntime-web ("Cannot read properties of null").
let lastRun = Promise.resolve();

/** The onnxruntime-web module, configured for a static host. */
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
      const ort = await loadOrt();
      try {
        return await ort.InferenceSession.create(key, { executionProviders: ["wasm"] });
      } catch (err) {
        throw new WidgetError(`the model ${new URL(key).pathname} could not be loaded (${err.message ?? err}).`);
      }
    })();
    created.catch(() => sessions.delete(key));
    sessions.set(key, created);
  }
  return sessions.get(key);
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
 * Run a session on float32 inputs given as {name: {data: number[] | Float32Array, dims}}.
 * Runs are queued, one at a time across all sessions; resolves to
 * {name: {data: Float32Array, dims: number[]}} for every output.
 */
export async function runGraph(session, inputs) {
  const ort = await loadOrt();
  const feeds = {};
  for (const [name, { data, dims }] of Object.entries(inputs)) {
    feeds[name] = new ort.Tensor("float32", Float32Array.from(data), dims);
  }
  const run = lastRun.then(() => session.run(feeds));
  lastRun = run.catch(() => {});
  const results = await run;
  const outputs = {};
  for (const [name, tensor] of Object.entries(results)) {
    outputs[name] = { data: Float32Array.from(tensor.data), dims: Array.from(tensor.dims) };
  }
  return outputs;
}
