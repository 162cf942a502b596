// The toy graphs of the loss-landscape widgets (meta/toy_export.py), run by
// name through the shared ONNX runner.
//
//   const graph = await loadToyGraph("toy-meta");
//   const out = await graph.run({ theta: [0.5, 0.5], task_params: TOY_TASKS.flat(),
//                                 inner_lr: 0.1, inner_steps: 1, lam: 0, cg_steps: 10 });
//   out.trajectory.data   // Float32Array; out.trajectory.dims = [T, S+1, 2]
//   at(out.trajectory, t, s)   // Float32Array [2] of ϕ_s of task t
//
// Feeds are {name: number | number[] | Float32Array | {data, dims}}. Without
// explicit dims, the shape comes from the manifest entry's "graph" inputs:
// fixed sizes are checked, and one named dimension (G, T, …) is whatever makes
// the length fit. Every input is float32 (step counts too).
//
//   const grid = gridPoints([0, 1], [0, 1], 61);   // {points, nx, ny, x, y}
//   grid.points: Float32Array [nx·ny·2] of (x, y), x varying fastest — the
//   layout lib/contour.js's draw() reads values in.
//
//   const update = latest(async () => { …run, draw… });
//   update();   // runs now, or once more after the run in progress (never two at once)
//
//   const plot = createPlanePlot(container, { title: "Task 1", label: "…" });
//   a square plot of the plane [0, 1]² (or x/y domains given), axes a and b,
//   a title above; markPoint(plot, [a, b], "toy-optimum") adds a circle, and
//   placeMarker(plot, node, [a, b]) moves a circle or text (hidden where the
//   point is not finite, pinned to ±10⁴ px far outside: never NaN in the SVG).
//
// The task pairs and the plane of the series are in the manifest entry's
// "task" field (entry.task.tasks, entry.task.plane); TOY_TASKS and TOY_PLANE
// are the same numbers for pages that need them before the manifest arrives.
// toySetup(meta.entry) reads them, and how many inner steps and CG iterations
// toy-meta unrolls, in one place.
//
//   export function mount(root) {
//     return mountToyWidget(root, ["toy-landscape", "toy-meta"], MyWidget);
//   }
//   marks root "loading", loads the graphs, then new MyWidget(root, landscape,
//   meta) and its async start() (build the drawing, run the graphs once).
import { findModel, modelUrl } from "./manifest.js";
import { checkSignature, loadSession, runGraph } from "./ort-runner.js";
import { createPlot, drawAxes, svgElement } from "./plot.js";
import { WidgetError } from "./site.js";

// latest(job) lives in lib/latest.js (the sinusoid widgets use it too); the
// toy widgets import it from here.
export { latest } from "./latest.js";

export const TOY_TASKS = [[0.3, 0.05], [0.83, 0.75]];
export const TOY_PLANE = [[0, 1], [0, 1]];

/** A toy graph by manifest name: {entry, session, run(feeds)}. */
export async function loadToyGraph(name) {
  const entry = await findModel(name);
  const signature = entry.graph;
  if (!signature?.inputs || !signature?.outputs) {
    throw new WidgetError(`the model "${name}" has no graph signature in the model list.`);
  }
  const session = await loadSession(modelUrl(entry));
  checkSignature(session, signature.inputs.map((i) => i.name), signature.outputs.map((o) => o.name));
  return {
    entry,
    session,
    run: (feeds) => runGraph(session, shapeFeeds(name, signature.inputs, feeds)),
  };
}

/**
 * A widget's mount(root) on toy graphs: root's state is "loading" while the
 * graphs load; then new Widget(root, ...graphs, in the order of graphNames)
 * and its start(). Resolves to the widget once it has drawn.
 */
export async function mountToyWidget(root, graphNames, Widget) {
  root.dataset.state = "loading";
  const graphs = await Promise.all(graphNames.map((name) => loadToyGraph(name)));
  const widget = new Widget(root, ...graphs);
  await widget.start();
  return widget;
}

/**
 * What toy-meta's manifest entry says about the series: {tasks, plane} (TOY_TASKS
 * and TOY_PLANE where it says nothing) and maxSteps, maxCg: the most inner steps
 * and CG iterations its outputs hold.
 */
export function toySetup(entry) {
  const unrolled = (name) => {
    const output = entry.graph.outputs.find((o) => o.name === name);
    if (!output) throw new WidgetError(`the model "${entry.name}" has no output ${name} in the model list.`);
    return output.shape[1] - 1;
  };
  return {
    tasks: entry.task?.tasks ?? TOY_TASKS,
    plane: entry.task?.plane ?? TOY_PLANE,
    maxSteps: unrolled("trajectory"),
    maxCg: unrolled("imaml_cg"),
  };
}

/** {name: value} -> {name: {data, dims}} for runGraph, dims from the signature. */
export function shapeFeeds(graphName, inputs, feeds) {
  const shaped = {};
  for (const spec of inputs) {
    const value = feeds[spec.name];
    if (value === undefined) throw new Error(`${graphName}: no value for input ${spec.name}`);
    if (value && typeof value === "object" && "dims" in value && "data" in value) {
      shaped[spec.name] = value;
      continue;
    }
    const data = typeof value === "number" ? [value] : value;
    shaped[spec.name] = { data, dims: inferDims(graphName, spec, data.length) };
  }
  return shaped;
}

function inferDims(graphName, spec, length) {
  const fixed = spec.shape.reduce((p, d) => (typeof d === "number" ? p * d : p), 1);
  const named = spec.shape.filter((d) => typeof d !== "number");
  if (named.length > 1) throw new Error(`${graphName}: give dims for ${spec.name} (shape [${spec.shape}])`);
  if (named.length === 0 ? length !== fixed : length % fixed !== 0 || length === 0) {
    throw new Error(`${graphName}: ${length} values do not fit ${spec.name} of shape [${spec.shape}]`);
  }
  return spec.shape.map((d) => (typeof d === "number" ? d : length / fixed));
}

/** One slice of an output along its leading indices: at(out.trajectory, t, s) -> [2]. */
export function at(output, ...index) {
  let offset = 0;
  let size = output.data.length;
  index.forEach((i, k) => {
    size /= output.dims[k];
    offset += i * size;
  });
  return output.data.subarray(offset, offset + size);
}

/** An n × n grid of points over [x0, x1] × [y0, y1] (x fastest), as a graph feeds it. */
export function gridPoints([x0, x1], [y0, y1], n, ny = n) {
  const points = new Float32Array(n * ny * 2);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < n; i++) {
      points[2 * (j * n + i)] = x0 + ((x1 - x0) * i) / (n - 1);
      points[2 * (j * n + i) + 1] = y0 + ((y1 - y0) * j) / (ny - 1);
    }
  }
  return { points, nx: n, ny, x: [x0, x1], y: [y0, y1] };
}

/**
 * Each task's plain loss (toy-landscape at λ = 0) on a grid: one run, one
 * Float32Array view per task. The contours every toy widget draws under θ.
 */
export async function taskLosses(landscape, grid, tasks) {
  const out = await landscape.run({
    points: { data: grid.points, dims: [grid.nx * grid.ny, 2] },
    task_params: tasks.flat(), anchor: [0, 0], lam: 0,
  });
  const size = grid.nx * grid.ny;
  return tasks.map((_, t) => out.loss.data.subarray(t * size, (t + 1) * size));
}

/** "0.2,0.8" (a data attribute) -> [0.2, 0.8]; null unless it is two finite numbers. */
export function parsePoint(text) {
  const p = String(text ?? "").split(",").map(Number);
  return p.length === 2 && p.every(Number.isFinite) ? p : null;
}

/** A vector component for a read-out: four decimals, or powers of ten outside [0.001, 1000). */
export function formatNumber(v) {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  return Math.abs(v) >= 0.001 && Math.abs(v) < 1000 ? v.toFixed(4) : v.toExponential(1);
}

/** Format a point as "(0.30, 0.05)". */
export function formatPoint(p, digits = 2) {
  return `(${p[0].toFixed(digits)}, ${p[1].toFixed(digits)})`;
}

/** A square plot of a plane with axes (a, b by default) and a title above it. */
export function createPlanePlot(container, {
  x = TOY_PLANE[0], y = TOY_PLANE[1], title = "", label = "", size = 340, xLabel = "a", yLabel = "b",
} = {}) {
  const margin = { top: title ? 26 : 12, right: 14, bottom: 36, left: 44 };
  const plot = createPlot(container, {
    // A square plot area, so that distances in a and b look alike.
    width: size, height: size - margin.left - margin.right + margin.top + margin.bottom,
    margin, xDomain: x, yDomain: y, label,
  });
  drawAxes(plot, { xLabel, yLabel });
  // The axis names sit inside the frame: keep them above the contours.
  plot.layers.overlay.prepend(...plot.layers.grid.querySelectorAll(".widget-axis-label"));
  if (title) {
    svgElement("text", { class: "toy-panel-title", x: plot.area.left, y: 16 }, plot.layers.grid).textContent = title;
  }
  return plot;
}

/** A marker (circle) at a point of the plane, in the data layer; returns the circle. */
export function markPoint(plot, point, className, r = 6) {
  const circle = svgElement("circle", { class: className, cx: 0, cy: 0, r }, plot.layers.data);
  placeMarker(plot, circle, point);
  return circle;
}

/** Move a circle (cx, cy) or any other node (x, y) to a point of the plane. */
export function placeMarker(plot, node, [px, py]) {
  const sx = plot.x(px);
  const sy = plot.y(py);
  if (!Number.isFinite(sx) || !Number.isFinite(sy)) {
    node.style.display = "none";
    return;
  }
  const circle = node.tagName === "circle";
  node.style.display = "";
  node.setAttribute(circle ? "cx" : "x", Math.max(-1e4, Math.min(1e4, sx)).toFixed(2));
  node.setAttribute(circle ? "cy" : "y", Math.max(-1e4, Math.min(1e4, sy)).toFixed(2));
}
