// Reptile on one toy task: k inner steps from θ, then θ moves a fraction β of
// the way to where they ended.
//
//   <div class="widget" data-widget="reptile-interpolation" markdown> …static figure… </div>
//
// One panel: the loss of task 1 (the series' second task, (a*, b*) =
// (0.83, 0.75); graph toy-landscape, computed once) with its optimum circled.
// The reader drags θ and sets the inner learning rate α, the inner steps k
// (1–5) and the interpolation rate β (0–1). Graph toy-meta returns the inner
// path ϕ_0 = θ, ϕ_1, …, ϕ_k (trajectory, drawn step by step) and Reptile's
// direction θ − ϕ_k (output reptile); the update θ → θ − β (θ − ϕ_k) =
// θ + β (ϕ_k − θ) is the purple arrow, its end the new θ.
//
// For tests and tools: data-state, element.toyWidget (theta, innerLr, steps,
// beta, path, reptile, updated, arrows, frames), "widget-drawn" events.
import { createArrow } from "../lib/arrow.js";
import { createContours } from "../lib/contour.js";
import { createHandle } from "../lib/handle.js";
import { htmlElement, slider, svgElement } from "../lib/plot.js";
import {
  createPlanePlot, formatPoint, gridPoints, latest, markPoint, mountToyWidget, placeMarker, taskLosses, toySetup,
} from "../lib/toy.js";

const GRID = 61;
const TASK = 1;                      // index into the manifest's task list
const MAX_STEPS = 5;
// The state of the build's static figure (site_builder/toy_figures.py), so both show the same picture.
const DEFAULTS = { theta: [0.2, 0.8], innerLr: 0.3, steps: 3, beta: 0.5 };
const MAX_LR = 1;                   // past 2/3 the steps overshoot on this loss (Hessian eigenvalues up to ~3)

export function mount(root) {
  return mountToyWidget(root, ["toy-landscape", "toy-meta"], ReptileInterpolation);
}

class ReptileInterpolation {
  constructor(root, landscape, meta) {
    this.root = root;
    this.landscape = landscape;
    this.meta = meta;
    const { tasks, plane } = toySetup(meta.entry);
    this.task = tasks[TASK];
    this.plane = plane;
    this.theta = DEFAULTS.theta.slice();
    this.innerLr = DEFAULTS.innerLr;
    this.steps = DEFAULTS.steps;
    this.beta = DEFAULTS.beta;
    this.path = null;
    this.frames = 0;
    this.update = latest(() => this.run().catch((err) => this.fail(err)));
    root.toyWidget = this;
  }

  async start() {
    const ui = htmlElement("div", { class: "toy-widget reptile-interpolation" });
    const [a, b] = this.task;
    const plot = createPlanePlot(ui, {
      x: this.plane[0], y: this.plane[1], size: 420,
      title: `Task loss, optimum (${a}, ${b})`,
      label: `Loss of one task over the plane (a, b) with its optimum at (${a}, ${b}); θ, ` +
        "the inner gradient steps from θ, and Reptile's update of θ.",
    });
    this.plot = plot;
    this.contours = await createContours(plot, { thresholds: "log", levels: 12 });
    markPoint(plot, this.task, "toy-optimum", 7);
    this.stepArrows = Array.from({ length: MAX_STEPS }, (_, s) => {
      const arrow = createArrow(plot, { className: "toy-arrow toy-arrow--inner", label: `inner step ${s + 1}` });
      arrow.element.dataset.step = String(s + 1);
      return arrow;
    });
    this.phiMarker = markPoint(plot, this.theta, "toy-point reptile-interpolation__phi", 4);
    this.updateArrow = createArrow(plot, {
      className: "toy-arrow reptile-interpolation__update", label: "Reptile update θ → θ + β(ϕ_k − θ)",
    });
    this.newTheta = markPoint(plot, this.theta, "toy-point toy-point--update reptile-interpolation__new", 5);
    this.phiLabel = svgElement("text", { class: "toy-panel-title reptile-interpolation__phi-label", dx: 8, dy: 14 },
      plot.layers.data);
    this.handle = createHandle(plot, { value: this.theta, label: "θ", onMove: (p) => { this.theta = p; this.update(); } });

    const lr = slider({
      label: "Inner learning rate α", className: "reptile-interpolation-lr", min: 0, max: MAX_LR, step: 0.01,
      value: this.innerLr, format: (v) => v.toFixed(2), onInput: (v) => { this.innerLr = v; this.update(); },
    });
    const steps = slider({
      label: "Inner steps k", className: "reptile-interpolation-steps", min: 1, max: MAX_STEPS, step: 1,
      value: this.steps, format: String, onInput: (v) => { this.steps = v; this.update(); },
    });
    const beta = slider({
      label: "Interpolation rate β", className: "reptile-interpolation-beta", min: 0, max: 1, step: 0.01,
      value: this.beta, format: (v) => v.toFixed(2), onInput: (v) => { this.beta = v; this.update(); },
    });
    this.inputs = { lr: lr.input, steps: steps.input, beta: beta.input };
    this.readout = htmlElement("p", { class: "toy-widget__readout reptile-interpolation__readout" });
    ui.append(
      htmlElement("p", { class: "toy-widget__legend" },
        htmlElement("span", { class: "toy-key toy-key--task1" }, "inner steps θ = ϕ₀ → … → ϕ_k"),
        htmlElement("span", { class: "toy-key toy-key--update" }, "Reptile update of θ"),
        htmlElement("span", { class: "toy-key toy-key--optimum" }, "optimum of the task")),
      htmlElement("div", { class: "toy-widget__controls" }, lr.element, steps.element, beta.element),
      this.readout);
    this.root.append(ui);

    const grid = gridPoints(this.plane[0], this.plane[1], GRID);
    const [loss] = await taskLosses(this.landscape, grid, [this.task]);
    this.contours.draw({ ...grid, values: loss });
    await this.run();
  }

  async run() {
    this.root.dataset.state = this.path ? "busy" : "loading";
    const theta = this.theta.slice();
    const k = this.steps;
    const out = await this.meta.run({
      theta, task_params: this.task, inner_lr: this.innerLr, inner_steps: k, lam: 0, cg_steps: 0,
    });
    this.path = Array.from({ length: k + 1 }, (_, s) => Array.from(out.trajectory.data.subarray(2 * s, 2 * s + 2)));
    this.reptile = Array.from(out.reptile.data.subarray(0, 2));          // θ − ϕ_k
    this.updated = [theta[0] - this.beta * this.reptile[0], theta[1] - this.beta * this.reptile[1]];
    this.draw(theta);
    this.root.dataset.state = "ready";
  }

  fail(err) {
    this.root.dataset.state = "error";
    this.readout.textContent = `The model failed to run: ${err.message}`;
    console.warn("reptile-interpolation:", err);
  }

  draw(theta) {
    const { plot, path } = this;
    const k = path.length - 1;
    this.stepArrows.forEach((arrow, s) => (s < k ? arrow.set(path[s], path[s + 1]) : arrow.hide()));
    const phi = path[k];
    placeMarker(plot, this.phiMarker, phi);
    placeMarker(plot, this.phiLabel, phi);
    this.phiLabel.textContent = `ϕ${sub(k)}`;
    this.updateArrow.set(theta, this.updated);
    placeMarker(plot, this.newTheta, this.updated);
    const fmt = (p) => (p.every(Number.isFinite) ? formatPoint(p, 3) : "(off the chart)");
    this.readout.textContent = `θ = ${fmt(theta)}; after k = ${k} step${k === 1 ? "" : "s"} at ` +
      `α = ${this.innerLr.toFixed(2)}, ϕ${sub(k)} = ${fmt(phi)}; with β = ${this.beta.toFixed(2)} ` +
      `the new θ is θ + β(ϕ${sub(k)} − θ) = ${fmt(this.updated)}.`;
    this.frames += 1;
    this.root.dispatchEvent(new CustomEvent("widget-drawn", { detail: { frames: this.frames } }));
  }
}

function sub(k) {
  return [...String(k)].map((d) => "₀₁₂₃₄₅₆₇₈₉"[Number(d)]).join("");
}
