// Curvature and the first-order approximation, on a quadratic in the plane.
//
//   <div class="widget" data-widget="curvature" markdown> …static figure… </div>
//
// f(x) = ½ (x − c)ᵀ C (x − c) + gᵀx on [−2, 2]², its Hessian the symmetric C
// that the reader sets with three sliders (c11, c12 = c21, c22) or zeroes with
// a button. The reader drags θ; graph toy-curvature returns f on a grid (the
// contours; recomputed only when C changes), one inner step ϕ = θ − α ∇f(θ),
// the true meta-gradient (I − α C) ∇f(ϕ) and the first-order one ∇f(ϕ). Both
// are drawn from θ in the direction a meta-update would move it, θ → θ − gradient
// (blue: true; red dashed: first-order), with x₁ along the horizontal axis and
// x₂ along the vertical.
//
// For tests and tools: data-state, element.toyWidget (theta, curvature,
// innerLr, phi, gradient, firstOrder, arrows, frames), "widget-drawn" events.
import { createArrow } from "../lib/arrow.js";
import { createContours } from "../lib/contour.js";
import { createHandle } from "../lib/handle.js";
import { button, htmlElement, slider } from "../lib/plot.js";
import {
  createPlanePlot, formatPoint, gridPoints, latest, markPoint, mountToyWidget, placeMarker,
} from "../lib/toy.js";

const PLANE = [[-2, 2], [-2, 2]];
const GRID = 61;
const ENTRY_RANGE = [-4, 4];
const DEFAULTS = {
  theta: [1.2, -1.0], c11: 1.5, c12: 0.6, c22: 0.8, innerLr: 0.3, center: [0, 0], linear: [0.5, -0.3],
};

export function mount(root) {
  return mountToyWidget(root, ["toy-curvature"], Curvature);
}

class Curvature {
  constructor(root, graph) {
    this.root = root;
    this.graph = graph;
    this.theta = DEFAULTS.theta.slice();
    this.entries = { c11: DEFAULTS.c11, c12: DEFAULTS.c12, c22: DEFAULTS.c22 };
    this.innerLr = DEFAULTS.innerLr;
    this.center = DEFAULTS.center;
    this.linear = DEFAULTS.linear;
    this.grid = gridPoints(PLANE[0], PLANE[1], GRID);
    this.contoursFor = null;          // the C the contours were drawn for
    this.phi = null;
    this.frames = 0;
    this.update = latest(() => this.run().catch((err) => this.fail(err)));
    root.toyWidget = this;
  }

  get curvature() {
    const { c11, c12, c22 } = this.entries;
    return [[c11, c12], [c12, c22]];
  }

  async start() {
    const ui = htmlElement("div", { class: "toy-widget curvature" });
    const plot = createPlanePlot(ui, {
      x: PLANE[0], y: PLANE[1], size: 420, xLabel: "x₁", yLabel: "x₂",
      title: "f(x) = ½ (x − c)ᵀ C (x − c) + gᵀx",
      label: "Contours of the quadratic f over the plane (x₁ horizontal, x₂ vertical), the point θ, " +
        "the inner step to ϕ, and the steps along the true and the first-order meta-gradient.",
    });
    this.plot = plot;
    this.contours = await createContours(plot, { thresholds: "quantile", levels: 14 });
    this.innerArrow = createArrow(plot, { className: "toy-arrow toy-arrow--inner curvature__inner", label: "inner step θ → ϕ" });
    this.phiMarker = markPoint(plot, this.theta, "toy-point curvature__phi", 4);
    this.arrows = {
      firstOrder: createArrow(plot, {
        className: "toy-arrow toy-arrow--first-order curvature__first-order",
        label: "θ − first-order meta-gradient",
      }),
      true: createArrow(plot, { className: "toy-arrow toy-arrow--true curvature__true", label: "θ − true meta-gradient" }),
    };
    this.handle = createHandle(plot, {
      value: this.theta, label: "θ", onMove: (p) => { this.theta = p; this.update(); },
    });

    const fmt = (v) => v.toFixed(2);
    this.sliders = {};
    for (const [key, label] of [["c11", "C₁₁"], ["c12", "C₁₂ = C₂₁"], ["c22", "C₂₂"]]) {
      this.sliders[key] = slider({
        label, className: `curvature-${key}`, min: ENTRY_RANGE[0], max: ENTRY_RANGE[1], step: 0.05,
        value: this.entries[key], format: fmt,
        onInput: (v) => { this.entries[key] = v; this.update(); },
      });
    }
    this.sliders.lr = slider({
      label: "Inner learning rate α", className: "curvature-lr", min: 0, max: 0.5, step: 0.01,
      value: this.innerLr, format: fmt, onInput: (v) => { this.innerLr = v; this.update(); },
    });
    const zero = button({
      label: "C = 0", title: "Set every entry of C to zero (no curvature)", className: "curvature-zero",
      onClick: () => this.setCurvature({ c11: 0, c12: 0, c22: 0 }),
    });
    const reset = button({
      label: "Reset", className: "curvature-reset",
      onClick: () => this.setCurvature({ c11: DEFAULTS.c11, c12: DEFAULTS.c12, c22: DEFAULTS.c22 }),
    });
    this.readout = htmlElement("p", { class: "toy-widget__readout curvature__readout" });
    ui.append(
      htmlElement("p", { class: "toy-widget__legend" },
        htmlElement("span", { class: "toy-key toy-key--true" }, "true: −(I − αC) ∇f(ϕ)"),
        htmlElement("span", { class: "toy-key toy-key--first-order" }, "first-order: −∇f(ϕ)"),
        htmlElement("span", { class: "toy-key toy-key--task1" }, "inner step θ → ϕ")),
      htmlElement("div", { class: "toy-widget__controls" },
        this.sliders.c11.element, this.sliders.c12.element, this.sliders.c22.element, this.sliders.lr.element,
        htmlElement("div", { class: "toy-widget__buttons" }, zero, reset)),
      this.readout);
    this.root.append(ui);
    await this.run();
  }

  setCurvature(entries) {
    Object.assign(this.entries, entries);
    for (const [key, value] of Object.entries(entries)) {
      const input = this.sliders[key].input;
      input.value = String(value);
      input.dispatchEvent(new Event("input"));      // updates the read-out (and runs the graph once)
    }
  }

  async run() {
    this.root.dataset.state = this.phi ? "busy" : "loading";
    const theta = this.theta.slice();
    const curvature = this.curvature;
    const key = curvature.flat().join(",");
    // f does not depend on θ: while θ is dragged, one point instead of the grid.
    const needGrid = this.contoursFor !== key;
    const out = await this.graph.run({
      points: needGrid ? this.grid.points : theta, theta, curvature: curvature.flat(),
      center: this.center, linear: this.linear, inner_lr: this.innerLr,
    });
    if (needGrid) {
      this.contours.draw({ ...this.grid, values: out.value.data });
      this.contoursFor = key;
    }
    this.phi = Array.from(out.phi.data);
    this.gradient = Array.from(out.gradient.data);
    this.firstOrder = Array.from(out.first_order.data);
    this.draw(theta);
    this.root.dataset.state = "ready";
  }

  fail(err) {
    this.root.dataset.state = "error";
    this.readout.textContent = `The model failed to run: ${err.message}`;
    console.warn("curvature:", err);
  }

  draw(theta) {
    const a = this.innerLr;
    const step = (g) => [theta[0] - g[0], theta[1] - g[1]];
    this.innerArrow.set(theta, this.phi);
    placeMarker(this.plot, this.phiMarker, this.phi);
    this.arrows.true.set(theta, step(this.gradient));
    this.arrows.firstOrder.set(theta, step(this.firstOrder));
    const fmt = (p) => (p.every(Number.isFinite) ? formatPoint(p) : "(not finite)");
    const { c11, c12, c22 } = this.entries;
    this.readout.textContent = `C = [[${c11.toFixed(2)}, ${c12.toFixed(2)}], [${c12.toFixed(2)}, ${c22.toFixed(2)}]], ` +
      `α = ${a.toFixed(2)}, θ = ${fmt(theta)}, ϕ = ${fmt(this.phi)}; ` +
      `true meta-gradient ${fmt(this.gradient)}, first-order ${fmt(this.firstOrder)}.`;
    this.frames += 1;
    this.root.dispatchEvent(new CustomEvent("widget-drawn", { detail: { frames: this.frames } }));
  }
}
