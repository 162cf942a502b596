// The four methods' meta-updates at the same θ: MAML, first-order MAML,
// Reptile and iMAML, one card each.
//
//   <div class="widget" data-widget="meta-gradients" [data-theta="0.2,0.8"] markdown>
//     …static figure rendered by the build…
//   </div>
//
// Over the contours of the summed loss of the toy tasks (toy-landscape; the
// two tasks of the series, and a third one the reader can add), θ is
// draggable (mouse, touch, arrow keys). Each card has an on/off switch and its
// own settings; the toy-meta graph is run with that card's settings and its
// row of meta_gradient (the task mean of that method's meta-gradient: exact
// MAML through every inner step, ∇L(ϕ_m), θ − ϕ_m, iMAML's CG iterate) is
// drawn as the update direction −g from θ, in the card's colour. Every arrow
// has the same length, ARROW_LENGTH: the methods' vectors live on different
// scales (Reptile's is a displacement, about α·m gradients long), so the
// arrows compare directions and each card prints its vector's length.
//
// For tests and outside tools the element carries data-state ("loading" |
// "busy" | "ready" | "error"); element.toyWidget.drawn is what is shown:
// {theta, tasks, methods: {maml: {on, settings, gradient: [gx, gy]}, …}}.
import { createArrow } from "../lib/arrow.js";
import { createContours } from "../lib/contour.js";
import { createHandle } from "../lib/handle.js";
import { htmlElement, logSlider, slider } from "../lib/plot.js";
import {
  createPlanePlot, formatNumber, formatPoint, gridPoints, latest, markPoint, mountToyWidget, parsePoint,
  taskLosses, toySetup,
} from "../lib/toy.js";

const GRID = 61;
const ARROW_LENGTH = 0.25;                    // plane units
const THIRD_TASK = [0.6, 0.2];                // the task the reader can add
const LAMBDA = { lo: 0.01, hi: 100, perDecade: 4, zero: true };
// The build's fallback figure: θ = (0.2, 0.8), three steps at α = 0.3, λ = 1.
const DEFAULT_THETA = [0.2, 0.8];
const METHODS = [
  { key: "maml", row: 0, name: "MAML", detail: "exact, through every inner step",
    settings: { steps: 3, lr: 0.3 }, minSteps: 0 },
  { key: "fomaml", row: 1, name: "First-order MAML", detail: "∇L at ϕ_m, no Hessian",
    settings: { steps: 3, lr: 0.3 }, minSteps: 0 },
  { key: "reptile", row: 2, name: "Reptile", detail: "θ − ϕ_m",
    settings: { steps: 3, lr: 0.3 }, minSteps: 1 },
  { key: "imaml", row: 3, name: "iMAML", detail: "implicit gradient by CG",
    settings: { lam: 1, steps: 3, lr: 0.3, cg: 2 }, minSteps: 0 },
];

export function mount(root) {
  return mountToyWidget(root, ["toy-landscape", "toy-meta"], MetaGradients);
}

class MetaGradients {
  constructor(root, landscape, meta) {
    this.root = root;
    this.landscape = landscape;
    this.meta = meta;
    ({ tasks: this.seriesTasks, plane: this.plane, maxSteps: this.maxSteps, maxCg: this.maxCg } =
      toySetup(meta.entry));
    this.grid = gridPoints(this.plane[0], this.plane[1], GRID);
    this.theta = parsePoint(root.dataset.theta) ?? DEFAULT_THETA.slice();
    this.third = false;
    this.methods = METHODS.map((m) => ({ ...m, on: true, settings: { ...m.settings }, gradient: null }));
    this.version = 0;
    this.drawn = null;
    this.update = latest(() => this.run());
    root.toyWidget = this;
    this.frames = 0;             // draws so far (tests wait for the next one)
  }

  get tasks() {
    return this.third ? [...this.seriesTasks, THIRD_TASK] : this.seriesTasks;
  }

  async start() {
    const ui = htmlElement("div", { class: "toy-widget meta-gradients" });
    const figure = htmlElement("div", { class: "meta-gradients__figure" });
    const plot = createPlanePlot(figure, {
      size: 420, title: "Sum of the task losses and each method's update direction",
      label: "The summed loss of the toy tasks over the plane, θ, and one arrow per method for the " +
        "direction in which its meta-update moves θ.",
    });
    plot.svg.classList.add("toy-widget__frame");
    this.plot = plot;
    this.contours = await createContours(plot, { thresholds: "log", levels: 12 });
    this.optima = [...this.seriesTasks, THIRD_TASK].map((task) => markPoint(plot, task, "toy-optimum"));
    this.live = htmlElement("p", { class: "toy-live", "aria-live": "polite" });
    for (const method of this.methods) {
      method.arrow = createArrow(plot, {
        className: `toy-arrow meta-gradients__arrow meta-gradients__arrow--${method.key}`,
        label: `${method.name}: −g`,
      });
    }
    this.handle = createHandle(plot, {
      value: this.theta, label: "θ", live: this.live,
      onMove: (p) => { this.theta = p; this.request(); },
    });

    const third = htmlElement("input", { type: "checkbox", class: "meta-gradients-third" });
    third.addEventListener("change", () => { this.third = third.checked; this.request(); });
    const thirdLabel = htmlElement("label", { class: "meta-gradients__third" },
      third, ` Add a third task, (a*, b*) = ${formatPoint(THIRD_TASK)}`);
    const cards = htmlElement("div", { class: "meta-gradients__cards" },
      ...this.methods.map((method) => this.card(method)));
    this.readout = htmlElement("p", { class: "toy-widget__readout meta-gradients__readout" });
    ui.append(figure, thirdLabel, cards, this.readout, this.live);
    this.root.append(ui);
    await this.request();        // the first draw: if it fails, main.js keeps the static figure
  }

  /** One method's card: its switch, its settings and the length of its vector. */
  card(method) {
    const s = method.settings;
    const toggle = htmlElement("button", {
      type: "button", class: `widget-button meta-gradients__toggle meta-gradients-toggle--${method.key}`,
      "aria-pressed": "true", title: `Show or hide ${method.name}'s arrow`,
    }, htmlElement("span", { class: "meta-gradients__swatch", "aria-hidden": "true" }), method.name);
    const card = htmlElement("section", {
      class: `meta-gradients__card meta-gradients__card--${method.key}`, "aria-label": method.name,
    });
    toggle.addEventListener("click", () => {
      method.on = !method.on;
      toggle.setAttribute("aria-pressed", String(method.on));
      card.classList.toggle("is-off", !method.on);
      this.request();
    });
    const controls = [];
    const change = (name) => (v) => { s[name] = v; this.request(); };
    if ("lam" in s) {
      const lam = logSlider({
        label: "λ", className: `meta-gradients-lam meta-gradients-${method.key}-lam`, ...LAMBDA,
        value: s.lam, format: String, onInput: change("lam"),
      });
      s.lam = lam.value();
      controls.push(lam.element);
    }
    controls.push(slider({
      label: "Inner steps", className: `meta-gradients-${method.key}-steps`, min: method.minSteps,
      max: this.maxSteps, step: 1, value: s.steps, onInput: change("steps"),
    }).element);
    controls.push(slider({
      label: "Inner learning rate α", className: `meta-gradients-${method.key}-lr`, min: 0.01, max: 0.5,
      step: 0.01, value: s.lr, format: (v) => v.toFixed(2), onInput: change("lr"),
    }).element);
    if ("cg" in s) {
      controls.push(slider({
        label: "CG iterations", className: `meta-gradients-${method.key}-cg`, min: 0, max: this.maxCg,
        step: 1, value: s.cg, onInput: change("cg"),
      }).element);
    }
    method.readout = htmlElement("p", { class: "meta-gradients__value" });
    card.append(
      htmlElement("header", { class: "meta-gradients__card-head" }, toggle,
        htmlElement("span", { class: "meta-gradients__detail" }, method.detail)),
      ...controls, method.readout);
    return card;
  }

  /** Run the graphs again for the current state; resolves once it is drawn. */
  request() {
    this.version += 1;
    if (this.drawn) this.root.dataset.state = "busy";
    return this.update();
  }

  async run() {
    const version = this.version;
    const theta = this.theta.slice();
    const tasks = this.tasks.map((t) => t.slice());
    try {
      // The contours depend only on the set of tasks.
      if (this.contourTasks !== tasks.length) {
        const losses = await taskLosses(this.landscape, this.grid, tasks);
        const sum = new Float32Array(this.grid.nx * this.grid.ny);
        for (const loss of losses) {
          for (let i = 0; i < sum.length; i++) sum[i] += loss[i];
        }
        this.contours.draw({ values: sum, ...this.grid });
        this.optima.forEach((marker, t) => { marker.style.display = t < tasks.length ? "" : "none"; });
        this.contourTasks = tasks.length;
      }
      // One toy-meta run gives all four rows for its settings. MAML's,
      // FOMAML's and Reptile's rows depend only on the rate and the step
      // count, so cards that agree on those share a run (with each other and
      // with iMAML's card): on a θ drag with the default settings that is two
      // runs per move instead of four.
      const runs = [];
      const runFor = async (settings, needsLamCg) => {
        const found = runs.find((r) => r.lr === settings.lr && r.steps === settings.steps
          && (!needsLamCg || (r.lam === (settings.lam ?? 0) && r.cg === (settings.cg ?? 0))));
        if (found) return found.out;
        const run = { lr: settings.lr, steps: settings.steps, lam: settings.lam ?? 0, cg: settings.cg ?? 0 };
        run.out = await this.meta.run({
          theta, task_params: tasks.flat(), inner_lr: run.lr, inner_steps: run.steps,
          lam: run.lam, cg_steps: run.cg,
        });
        runs.push(run);
        return run.out;
      };
      const methods = {};
      const order = [...this.methods].sort((a, b) => (b.key === "imaml") - (a.key === "imaml"));
      for (const method of order) {
        const settings = { ...method.settings };
        let gradient = null;
        if (method.on) {
          const out = await runFor(settings, method.key === "imaml");
          gradient = Array.from(out.meta_gradient.data.subarray(2 * method.row, 2 * method.row + 2));
        }
        methods[method.key] = { on: method.on, settings, gradient };
        this.drawMethod(method, theta, gradient);
      }
      this.drawn = { theta, tasks, methods };
      this.frames += 1;
      this.root.dispatchEvent(new CustomEvent("widget-drawn", { detail: { frames: this.frames } }));
      this.readout.textContent = describe(this.drawn, this.methods);
      if (version === this.version) this.root.dataset.state = "ready";
    } catch (err) {
      if (!this.drawn) throw err;          // the first draw: main.js shows the static figure
      this.root.dataset.state = "error";
      this.readout.textContent = `The model failed to run: ${err.message}`;
      console.warn("meta-gradients:", err);
    }
  }

  drawMethod(method, theta, gradient) {
    const norm = gradient ? Math.hypot(gradient[0], gradient[1]) : NaN;
    if (!gradient) {
      method.arrow.hide();
      method.readout.textContent = "Off: no arrow.";
    } else if (!Number.isFinite(norm)) {
      method.arrow.hide();
      method.readout.textContent = "The inner steps diverged (no finite vector): lower α or λ.";
    } else if (norm < 1e-9) {
      method.arrow.hide();
      method.readout.textContent = "‖g‖ = 0: θ does not move.";
    } else {
      const f = ARROW_LENGTH / norm;
      method.arrow.set(theta, [theta[0] - f * gradient[0], theta[1] - f * gradient[1]]);
      method.readout.textContent = `g = (${formatNumber(gradient[0])}, ${formatNumber(gradient[1])}), ` +
        `‖g‖ = ${formatNumber(norm)}`;
    }
  }
}

function describe(drawn, methods) {
  const on = methods.filter((m) => drawn.methods[m.key].on);
  const angles = on
    .map((m) => [m.name, drawn.methods[m.key].gradient])
    .filter(([, g]) => g && Number.isFinite(g[0]) && Number.isFinite(g[1]) && Math.hypot(...g) > 1e-9)
    .map(([name, g]) => `${name} ${Math.round((Math.atan2(-g[1], -g[0]) * 180) / Math.PI)}°`);
  return `θ = ${formatPoint(drawn.theta)}, ${drawn.tasks.length} tasks. ` +
    (angles.length ? `Directions of −g (0° is +a, 90° is +b): ${angles.join(", ")}.` : "No arrow is shown.");
}
