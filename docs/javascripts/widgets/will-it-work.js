// "Will it really work?": one θ, two tasks, one inner step on each.
//
//   <div class="widget" data-widget="will-it-work" markdown> …static figure… </div>
//
// Two panels show each task's loss over the plane (a, b) ∈ [0, 1]² (graph
// toy-landscape, λ = 0, computed once) with the task's optimum (a*, b*)
// circled. The reader drags θ in either panel (the same θ in both) and sets
// the inner learning rate α; graph toy-meta returns one gradient step from θ
// on each task, drawn as the arrow θ → ϕ_0 on panel 1 and θ → ϕ_1 on panel 2,
// and the losses L_0(ϕ_0) + L_1(ϕ_1) that MAML scores θ by.
//
// For tests and tools: data-state ("loading" | "busy" | "ready" | "error"),
// element.toyWidget (theta, innerLr, phi, losses, arrows, frames), and a
// "widget-drawn" event after every redraw.
import { createArrow } from "../lib/arrow.js";
import { createContours } from "../lib/contour.js";
import { createHandle } from "../lib/handle.js";
import { htmlElement, slider } from "../lib/plot.js";
import {
  createPlanePlot, formatPoint, gridPoints, latest, markPoint, mountToyWidget, taskLosses, toySetup,
} from "../lib/toy.js";

const GRID = 61;
const DEFAULT_THETA = [0.2, 0.8];
const DEFAULT_LR = 0.3;
const MAX_LR = 1;

export function mount(root) {
  return mountToyWidget(root, ["toy-landscape", "toy-meta"], WillItWork);
}

class WillItWork {
  constructor(root, landscape, meta) {
    this.root = root;
    this.landscape = landscape;
    this.meta = meta;
    ({ tasks: this.tasks, plane: this.plane } = toySetup(meta.entry));
    this.theta = DEFAULT_THETA.slice();
    this.innerLr = DEFAULT_LR;
    this.phi = null;
    this.losses = null;
    this.frames = 0;
    this.update = latest(() => this.run().catch((err) => this.fail(err)));
    root.toyWidget = this;
  }

  async start() {
    const ui = htmlElement("div", { class: "toy-widget will-it-work" });
    const panels = htmlElement("div", { class: "toy-widget__panels" });
    ui.append(panels);
    this.live = htmlElement("p", { class: "toy-live", "aria-live": "polite" });
    this.plots = [];
    this.handles = [];
    this.arrows = [];
    this.contours = [];
    for (let t = 0; t < 2; t++) {
      const [a, b] = this.tasks[t];
      const panel = htmlElement("div", { class: "will-it-work__panel" });
      panels.append(panel);
      const plot = createPlanePlot(panel, {
        x: this.plane[0], y: this.plane[1],
        title: `Task ${t}: loss L${sub(t)}, optimum (${a}, ${b})`,
        label: `Loss of task ${t} over the plane of (a, b), its optimum at (${a}, ${b}), ` +
          `θ and the arrow of one gradient step from θ on this task to ϕ${sub(t)}.`,
      });
      this.plots.push(plot);
      this.contours.push(await createContours(plot, { thresholds: "log", levels: 12 }));
      markPoint(plot, [a, b], "toy-optimum", 7).dataset.task = String(t);
      this.arrows.push(createArrow(plot, {
        className: `toy-arrow toy-arrow--task${t}`, label: `θ → ϕ${sub(t)}: one gradient step on task ${t}`,
      }));
      this.arrows[t].element.dataset.task = String(t);
      this.handles.push(createHandle(plot, {
        value: this.theta, label: "θ", live: this.live,
        onMove: (p) => this.moveTheta(p, t),
      }));
    }
    const lr = slider({
      label: "Inner learning rate α", className: "will-it-work-lr", min: 0, max: MAX_LR, step: 0.01,
      value: this.innerLr, format: (v) => v.toFixed(2),
      onInput: (v) => { this.innerLr = v; this.update(); },
    });
    this.lrInput = lr.input;
    this.readout = htmlElement("p", { class: "toy-widget__readout will-it-work__readout" });
    ui.append(
      htmlElement("p", { class: "toy-widget__legend" },
        htmlElement("span", { class: "toy-key toy-key--task0" }, "θ → ϕ₀ (task 0)"),
        htmlElement("span", { class: "toy-key toy-key--task1" }, "θ → ϕ₁ (task 1)"),
        htmlElement("span", { class: "toy-key toy-key--optimum" }, "optimum of the task")),
      htmlElement("div", { class: "toy-widget__controls" }, lr.element),
      this.readout, this.live);
    this.root.append(ui);

    // The two landscapes do not depend on θ or α: one run, drawn once.
    const grid = gridPoints(this.plane[0], this.plane[1], GRID);
    const losses = await taskLosses(this.landscape, grid, this.tasks);
    this.contours.forEach((layer, t) => layer.draw({ ...grid, values: losses[t] }));
    await this.run();          // a failure here leaves the static figure up
  }

  moveTheta(p, from) {
    this.theta = p;
    this.handles.forEach((h, t) => { if (t !== from) h.set(p, { silent: true }); });
    this.update();
  }

  async run() {
    this.root.dataset.state = this.phi ? "busy" : "loading";
    const theta = this.theta.slice();
    const out = await this.meta.run({
      theta, task_params: this.tasks.flat(), inner_lr: this.innerLr, inner_steps: 1, lam: 0, cg_steps: 0,
    });
    const [, steps] = out.trajectory.dims;
    this.phi = [0, 1].map((t) => Array.from(out.trajectory.data.subarray((t * steps + 1) * 2, (t * steps + 2) * 2)));
    this.losses = {
      before: [0, 1].map((t) => out.trajectory_loss.data[t * steps]),
      after: [0, 1].map((t) => out.trajectory_loss.data[t * steps + 1]),
    };
    this.draw(theta);
    this.root.dataset.state = "ready";
  }

  fail(err) {
    this.root.dataset.state = "error";
    this.readout.textContent = `The model failed to run: ${err.message}`;
    console.warn("will-it-work:", err);
  }

  draw(theta) {
    this.arrows.forEach((arrow, t) => arrow.set(theta, this.phi[t]));
    const [l0, l1] = this.losses.after;
    const [b0, b1] = this.losses.before;
    const fmt = (v) => (Number.isFinite(v) ? v.toFixed(4) : "—");
    this.readout.textContent =
      `θ = ${formatPoint(theta)}, α = ${this.innerLr.toFixed(2)}: ` +
      `L₀(ϕ₀) + L₁(ϕ₁) = ${fmt(l0)} + ${fmt(l1)} = ${fmt(l0 + l1)} ` +
      `(before the step: ${fmt(b0)} + ${fmt(b1)} = ${fmt(b0 + b1)}). ` +
      `ϕ₀ = ${formatPoint(this.phi[0])}, ϕ₁ = ${formatPoint(this.phi[1])}.`;
    this.frames += 1;
    this.root.dispatchEvent(new CustomEvent("widget-drawn", { detail: { frames: this.frames } }));
  }
}

function sub(t) {
  return "₀₁₂₃₄₅₆₇₈₉"[t];
}
