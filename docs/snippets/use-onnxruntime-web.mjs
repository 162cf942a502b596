// Adapt the site's MAML model to five points of a sine wave, in the browser.
// Save this file as maml-demo.mjs at the top of the built site (next to
// index.html); every URL below is resolved from where the file is served.
import * as ort from "./assets/vendor/onnxruntime-web/ort.wasm.bundle.min.mjs";

// The bundle has the WebAssembly glue built in: it only needs the address of
// the .wasm binary (an absolute URL). A static host gives a page no threads.
ort.env.wasm.wasmPaths = {
  wasm: new URL("./assets/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm", import.meta.url).href,
};
ort.env.wasm.numThreads = 1;

const models = new URL("./assets/models/", import.meta.url);
const manifest = await (await fetch(new URL("manifest.json", models))).json();
const model = manifest.models.find((m) => m.name === "maml-sinusoid");
const session = await ort.InferenceSession.create(new URL(model.file, models).href);

// One task, y = 3 sin(x + 1), seen at five points; judged on 100 points across [-5, 5].
const target = (x) => 3 * Math.sin(x + 1);
const supportX = [-4, -2, 0, 1.5, 3.5];
const queryX = Array.from({ length: 100 }, (_, i) => -5 + (10 * i) / 99);
const points = (values) => new ort.Tensor("float32", Float32Array.from(values), [values.length, 1]);

const outputs = await session.run({
  support_x: points(supportX),
  support_y: points(supportX.map(target)),
  query_x: points(queryX),
  inner_lr: new ort.Tensor("float32", Float32Array.of(model.inner_lr), []),  // a scalar
});
// query_y holds the predictions after 0, 1, ..., S steps: dims [S + 1, 100, 1].
export const queryY = outputs.query_y;
export const supportLoss = outputs.support_loss;

const lines = [0, 1, 10].map((steps) => {
  const row = queryY.data.subarray(steps * queryX.length, (steps + 1) * queryX.length);
  const queryMse = row.reduce((sum, y, i) => sum + (y - target(queryX[i])) ** 2, 0) / row.length;
  return `after ${String(steps).padStart(2)} steps: ` +
    `support MSE ${supportLoss.data[steps].toPrecision(3)}, query MSE ${queryMse.toPrecision(3)}`;
});
console.log(lines.join("\n"));
document.querySelector("#maml-output")?.replaceChildren(lines.join("\n"));
