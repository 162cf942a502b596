// iMAML's implicit meta-gradient on one toy task, and conjugate gradient
// converging to it.
//
//   <div class="widget" data-widget="implicit-gradient" [data-theta="0.2,0.8"] markdown>
//     …static figure rendered by the build…
//   </div>
//
// Over the contours of the chosen task's loss (toy-landscape, λ = 0): θ,
// which the reader drags (mouse, touch, arrow keys); the inner steps on the
// proximal objective from θ and the adapted ϕ_i they reach (toy-meta's
// prox_trajectory at the chosen step count); the circle of radius ‖ϕ_i − θ‖
// around θ; and the meta-gradient, as the update direction −g from θ: the
// exact solution of (I + ∇²L(ϕ_i)/λ) g = ∇L(ϕ_i) faint (imaml_exact), the CG
// iterate after the chosen number of iterations bold (imaml_cg). Arrows are
// drawn at one scale, the one that makes the exact arrow ARROW_LENGTH long,
// so the iterates can be compared with it; the read-out prints the vectors.
// The CG slider only picks an iterate: the graph returns all of them.
//
// For tests and outside tools the element carries data-state ("loading" |
// "busy" | "ready" | "error"); element.toyWidget.drawn is what is
// shown: {task, theta, lam, steps, lr, cg, phi, iterates: [[gx, gy] per
// iteration 0…C], exact, distance, scale}.
import { createArrow } from "../lib/arrow.js";
import { createContours } from "../lib/contour.js";
import { createHandle } from "../lib/handle.js";
import { htmlElement, logSlider, slider, svgElement } from "../lib/plot.js";
import {
  at, createPlanePlot, formatNumber, formatPoint, gridPoints, latest, markPoint, mountToyWidget, parsePoint,
  placeMarker, taskLosses, toySetup,
} from "../lib/toy.js";

const GRID = 61;
const ARROW_LENGTH = 0.3;              // plane units of the exact arrow
const DIVERGED = 10;                   // ϕ this far from θ (the plane is 1 wide): the steps blew up
const PIXEL_LIMIT = 1e4;
const LAMBDA = { lo: 0.01, hi: 100, perDecade: 4, zero: true };
// The build's fallback figure: task 1, θ = (0.2, 0.8), λ = 1, ten steps at 0.1.
const DEFAULTS = { task: 0, theta: [0.2, 0.8], lam: 1, steps: 10, lr: 0.1, cg: 1 };

export function mount(root) {
  return mountToyWidget(root, ["toy-landscape", "toy-meta"], ImplicitGradient);
}

class ImplicitGradient {
  constructor(root, landscape, meta) {
    this.root = root;
    this.landscape = landscape;
    this.meta = meta;
    ({ tasks: this.tasks, plane: this.plane, maxSteps: this.maxSteps, maxCg: this.maxCg } = toySetup(meta.entry));
    this.grid = gridPoints(this.plane[0], this.plane[1], GRID);
    this.settings = { ...DEFAULTS, theta: parsePoint(root.dataset.theta) ?? DEFAULTS.theta.slice() };
    this.settings.steps = Math.min(this.settings.steps, this.maxSteps);
    this.settings.cg = Math.min(this.settings.cg, this.maxCg);
    this.version = 0;
    this.result = null;          // the graph's answer for the settings in result.settings
    this.drawn = null;
    this.update = latest(() => this.run());
    root.toyWidget = this;
    this.frames = 0;             // draws so far (tests wait for the next one)
  }

  async start() {
    const s = this.settings;
    const ui = htmlElement("div", { class: "toy-widget implicit-gradient" });
    const figure = htmlElement("div", { class: "implicit-gradient__figure" });
    const plot = createPlanePlot(figure, {
      size: 420, title: "Task loss L(ϕ), the adapted ϕ and the meta-gradient",
      label: "One task's loss over the plane, θ, the proximal inner steps to ϕ, the circle of radius " +
        "‖ϕ − θ‖ around θ, and iMAML's meta-gradient: exact (faint) and after the chosen CG iterations.",
    });
    plot.svg.classList.add("toy-widget__frame");
    this.plot = plot;
    this.contours = await createContours(plot, { thresholds: "log", levels: 12 });
    // Loss of both tasks once: it does not depend on θ or on any setting.
    this.taskLoss = await taskLosses(this.landscape, this.grid, this.tasks);
    this.optimum = markPoint(plot, this.tasks[s.task], "toy-optimum");
    const data = plot.layers.data;
    this.circle = svgElement("circle", { class: "implicit-gradient__circle", cx: 0, cy: 0, r: 0 }, data);
    this.path = svgElement("path", { class: "implicit-gradient__path", d: "" }, data);
    this.phi = markPoint(plot, s.theta, "implicit-gradient__phi", 5);
    this.exactArrow = createArrow(plot, {
      className: "toy-arrow implicit-gradient__exact", label: "exact implicit gradient",
    });
    this.cgArrow = createArrow(plot, { className: "toy-arrow implicit-gradient__cg", label: "CG iterate" });
    this.live = htmlElement("p", { class: "toy-live", "aria-live": "polite" });
    this.handle = createHandle(plot, {
      value: s.theta, label: "θ", live: this.live,
      onMove: (p) => { this.settings.theta = p; this.request(); },
    });

    const taskPicker = htmlElement("fieldset", { class: "implicit-gradient__tasks" },
      htmlElement("legend", {}, "Task"),
      ...this.tasks.map((task, t) => {
        const input = htmlElement("input", {
          type: "radio", name: `implicit-gradient-task-${uniqueId()}`, value: t,
          class: `implicit-gradient-task implicit-gradient-task--${t}`, checked: t === s.task,
        });
        input.addEventListener("change", () => { if (input.checked) this.chooseTask(t); });
        return htmlElement("label", { title: `(a*, b*) = ${formatPoint(task)}` }, input, ` ${t + 1}`);
      }));
    this.lamSlider = logSlider({
      label: "Proximal strength λ", className: "implicit-gradient-lam", ...LAMBDA, value: s.lam,
      format: String, onInput: (v) => this.set("lam", v),
    });
    s.lam = this.lamSlider.value();
    const stepsSlider = slider({
      label: "Inner steps", className: "implicit-gradient-steps", min: 0, max: this.maxSteps, step: 1,
      value: s.steps, onInput: (v) => this.set("steps", v),
    });
    const lrSlider = slider({
      label: "Inner learning rate α", className: "implicit-gradient-lr", min: 0.01, max: 0.5, step: 0.01,
      value: s.lr, format: (v) => v.toFixed(2), onInput: (v) => this.set("lr", v),
    });
    const cgSlider = slider({
      label: "CG iterations", className: "implicit-gradient-cg", min: 0, max: this.maxCg, step: 1,
      value: s.cg, onInput: (v) => { this.settings.cg = v; this.draw(); },
    });
    const legend = htmlElement("p", { class: "toy-widget__legend" },
      key("toy-key--theta", "θ (drag it)"), key("toy-key--optimum", "the task's minimum"),
      key("implicit-gradient-key--path", "proximal inner steps to ϕ"),
      key("implicit-gradient-key--circle", "‖ϕ − θ‖ around θ"),
      key("implicit-gradient-key--exact", "−g, exact"), key("implicit-gradient-key--cg", "−g, CG iterate"));
    this.readout = htmlElement("p", { class: "toy-widget__readout implicit-gradient__readout" });
    const controls = htmlElement("div", { class: "toy-widget__controls" },
      taskPicker, this.lamSlider.element, stepsSlider.element, lrSlider.element, cgSlider.element);
    ui.append(figure, legend, controls, this.readout, this.live);
    this.root.append(ui);
    await this.request();        // the first draw: if it fails, main.js keeps the static figure
  }

  chooseTask(t) {
    this.settings.task = t;
    placeMarker(this.plot, this.optimum, this.tasks[t]);
    this.draw();
  }

  /** The contours of the chosen task's loss (they depend on nothing else). */
  drawContours(task) {
    if (this.contourTask === task) return;
    this.contours.draw({ values: this.taskLoss[task], ...this.grid });
    this.contourTask = task;
  }

  set(name, value) {
    this.settings[name] = value;
    this.request();
  }

  /** Run the graph again for the current settings; resolves once they are drawn. */
  request() {
    this.version += 1;
    if (this.drawn) this.root.dataset.state = "busy";
    return this.update();
  }

  async run() {
    const version = this.version;
    const settings = { ...this.settings, theta: this.settings.theta.slice() };
    try {
      const out = await this.meta.run({
        theta: settings.theta, task_params: this.tasks.flat(), inner_lr: settings.lr,
        inner_steps: settings.steps, lam: settings.lam, cg_steps: this.maxCg,
      });
      this.result = { settings, out };
      this.draw();
      if (version === this.version) this.root.dataset.state = "ready";
    } catch (err) {
      if (!this.drawn) throw err;          // the first draw: main.js shows the static figure
      this.root.dataset.state = "error";
      this.readout.textContent = `The model failed to run: ${err.message}`;
      console.warn("implicit-gradient:", err);
    }
  }

  /** Draw the last result for the chosen task and CG iteration count (no graph run). */
  draw() {
    if (!this.result) return;
    const { plot } = this;
    const { out, settings } = this.result;
    const task = this.settings.task;
    const cg = this.settings.cg;
    const theta = settings.theta;
    this.drawContours(task);

    const steps = Math.round(settings.steps);
    const path = Array.from({ length: steps + 1 }, (_, k) => Array.from(at(out.prox_trajectory, task, k)));
    const phi = path[steps];
    const radius = Math.hypot(phi[0] - theta[0], phi[1] - theta[1]);
    const diverged = !(radius < DIVERGED);
    this.path.setAttribute("d", polyline(plot, path));
    placeMarker(plot, this.phi, phi);
    const pxPerUnit = Math.abs(plot.x(1) - plot.x(0));
    if (diverged) {
      this.circle.style.display = "none";
    } else {
      this.circle.style.display = "";
      placeMarker(plot, this.circle, theta);
      this.circle.setAttribute("r", Math.min(PIXEL_LIMIT, radius * pxPerUnit).toFixed(2));
    }

    const iterates = Array.from({ length: this.maxCg + 1 }, (_, k) => Array.from(at(out.imaml_cg, task, k)));
    const exact = Array.from(at(out.imaml_exact, task));
    const current = iterates[cg];
    const exactNorm = Math.hypot(...exact);
    const scale = exactNorm > 1e-12 && Number.isFinite(exactNorm) && !diverged ? ARROW_LENGTH / exactNorm : 0;
    const tip = (g) => [theta[0] - scale * g[0], theta[1] - scale * g[1]];
    if (scale > 0) {
      this.exactArrow.set(theta, tip(exact));
      this.cgArrow.set(theta, tip(current));
    } else {
      this.exactArrow.hide();
      this.cgArrow.hide();
    }
    const distance = Math.hypot(current[0] - exact[0], current[1] - exact[1]);
    this.drawn = {
      task, theta, lam: settings.lam, steps, lr: settings.lr, cg, phi, iterates, exact, distance, scale, diverged,
    };
    this.frames += 1;
    this.root.dispatchEvent(new CustomEvent("widget-drawn", { detail: { frames: this.frames } }));
    this.root.dataset.cg = String(cg);
    this.root.dataset.task = String(task);
    this.readout.textContent = describe(this.drawn, radius);
  }
}

function describe(d, radius) {
  const phiText = `ϕ after ${d.steps} proximal step${d.steps === 1 ? "" : "s"}`;
  if (d.diverged) {
    return `${phiText} is ${Number.isFinite(radius) ? radius.toExponential(1) : "infinitely far"} from θ: ` +
      `the steps diverged: the loss curves too steeply for α = ${d.lr.toFixed(2)} ` +
      "(each proximal step takes the pull towards θ exactly, so only α × curvature above 2 + αλ " +
      "makes them grow). Lower the learning rate.";
  }
  const head = `θ = ${formatPoint(d.theta)}; ${phiText}: ${formatPoint(d.phi)}, ${radius.toFixed(3)} from θ.`;
  if (d.lam === 0) {
    return `${head} At λ = 0 nothing pulls ϕ towards θ, so the solution does not depend on θ and the ` +
      "implicit meta-gradient is 0 (no arrow).";
  }
  const g = d.iterates[d.cg];
  return `${head} Meta-gradient g, exact: ${formatVector(d.exact)}; after ${d.cg} CG ` +
    `iteration${d.cg === 1 ? "" : "s"}: ${formatVector(g)}; distance ${formatNumber(d.distance)}.`;
}

/** An SVG path through points of the plane, pinned inside ±10⁴ px, broken at non-finite points. */
function polyline(plot, points) {
  let d = "";
  let pen = "M";
  for (const [a, b] of points) {
    const px = plot.x(a);
    const py = plot.y(b);
    if (!Number.isFinite(px) || !Number.isFinite(py)) { pen = "M"; continue; }
    const clamp = (v) => Math.max(-PIXEL_LIMIT, Math.min(PIXEL_LIMIT, v)).toFixed(2);
    d += `${pen}${clamp(px)},${clamp(py)}`;
    pen = "L";
  }
  return d;
}

function formatVector(v) {
  return `(${formatNumber(v[0])}, ${formatNumber(v[1])})`;
}

let idCounter = 0;
function uniqueId() {
  idCounter += 1;
  return idCounter;
}

function key(className, text) {
  return htmlElement("span", { class: `toy-key ${className}` }, text);
}
