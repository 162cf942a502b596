// iMAML's proximal inner objective L_i(ϕ) + λ/2 ‖ϕ − θ‖², one panel per task.
//
//   <div class="widget" data-widget="proximal-loss" [data-lam="1"] [data-theta="0.2,0.8"] markdown>
//     …static figure rendered by the build…
//   </div>
//
// The toy-landscape graph (meta/toy_export.py) evaluates each task's loss
// plus the penalty on a grid of the plane, with θ as the anchor; the widget
// draws its contours, the task's own optimum (ring), the panel's minimum
// (filled dot: the lowest grid value, which is all a reader can see at this
// resolution anyway) and θ, which the reader drags in either panel (mouse,
// touch, or the arrow keys on the focused point). λ comes from a log-scale
// slider whose first position is exactly 0, the plain task losses.
//
// For tests and outside tools the element carries data-state ("loading" |
// "busy" | "ready" | "error"); element.toyWidget.drawn is what the panels
// show now: {theta, lam, minimisers: [[a, b] per task]}.
import { createContours } from "../lib/contour.js";
import { createHandle } from "../lib/handle.js";
import { htmlElement, logSlider } from "../lib/plot.js";
import {
  TOY_PLANE, TOY_TASKS, createPlanePlot, formatPoint, gridPoints, latest, markPoint, mountToyWidget,
  parsePoint, placeMarker,
} from "../lib/toy.js";

const GRID = 61;                          // points per side of the plane's grid
// While θ is dragged the panels are redrawn from a coarser grid (a 61 × 61
// redraw of both panels takes most of a 60 Hz frame); once the drag pauses
// for SETTLE_MS the full grid is drawn again.
const DRAG_GRID = 31;
const SETTLE_MS = 120;
const DEFAULT_THETA = [0.2, 0.8];         // the build's fallback figure shows this θ…
const DEFAULT_LAM = 1;                    // …and this λ
const LAMBDA = { lo: 0.01, hi: 100, perDecade: 4, zero: true };

export function mount(root) {
  return mountToyWidget(root, ["toy-landscape"], ProximalLoss);
}

class ProximalLoss {
  constructor(root, graph) {
    this.root = root;
    this.graph = graph;
    this.tasks = graph.entry.task?.tasks ?? TOY_TASKS;
    this.fineGrid = gridPoints(TOY_PLANE[0], TOY_PLANE[1], GRID);
    this.dragGrid = gridPoints(TOY_PLANE[0], TOY_PLANE[1], DRAG_GRID);
    this.grid = this.fineGrid;
    this.settle = null;
    this.theta = parsePoint(root.dataset.theta) ?? DEFAULT_THETA.slice();
    const lam = Number(root.dataset.lam ?? DEFAULT_LAM);
    this.lam = Number.isFinite(lam) && lam >= 0 ? lam : DEFAULT_LAM;
    this.version = 0;
    this.drawn = null;
    this.update = latest(() => this.run());
    root.toyWidget = this;
    this.frames = 0;             // draws so far (tests wait for the next one)
  }

  async start() {
    const ui = htmlElement("div", { class: "toy-widget proximal-loss" });
    const panels = htmlElement("div", { class: "toy-widget__panels" });
    this.live = htmlElement("p", { class: "toy-live", "aria-live": "polite" });
    this.panels = [];
    for (const [t, optimum] of this.tasks.entries()) {
      const plot = createPlanePlot(panels, {
        title: `Task ${t + 1}: L(ϕ) + λ/2 ‖ϕ − θ‖²`,
        label: `Task ${t + 1}'s loss plus the proximal penalty around θ, over the plane of ϕ = (a, b).`,
      });
      plot.svg.classList.add("toy-widget__frame");
      const contours = await createContours(plot, { thresholds: "log", levels: 12 });
      markPoint(plot, optimum, "toy-optimum");
      const minimum = markPoint(plot, this.theta, "toy-point--minimum proximal-loss__minimum", 6);
      const handle = createHandle(plot, {
        value: this.theta, label: "θ", live: this.live,
        onMove: (p, how) => this.moveTheta(p, t, how),
      });
      this.panels.push({ plot, contours, minimum, handle });
    }
    this.plots = this.panels.map((panel) => panel.plot);
    this.lamSlider = logSlider({
      label: "Proximal strength λ", className: "proximal-loss-lam", ...LAMBDA, value: this.lam,
      format: formatLambda, onInput: (v) => { this.lam = v; this.request(); },
    });
    this.lam = this.lamSlider.value();
    const legend = htmlElement("p", { class: "toy-widget__legend" },
      key("toy-key--theta", "θ (drag it)"), key("toy-key--optimum", "the task's own minimum"),
      key("toy-key--minimum", "minimum of the panel"));
    this.readout = htmlElement("p", { class: "toy-widget__readout" });
    const controls = htmlElement("div", { class: "toy-widget__controls" }, this.lamSlider.element);
    ui.append(panels, legend, controls, this.readout, this.live);
    this.root.append(ui);
    await this.request();        // the first draw: if it fails, main.js keeps the static figure
  }

  moveTheta(point, from, how) {
    this.theta = point;
    this.panels.forEach((panel, t) => { if (t !== from) panel.handle.set(point, { silent: true }); });
    clearTimeout(this.settle);
    if (how === "pointer") {
      this.grid = this.dragGrid;
      this.settle = setTimeout(() => { this.grid = this.fineGrid; this.request(); }, SETTLE_MS);
    } else {
      this.grid = this.fineGrid;
    }
    this.request();
  }

  /** Redraw for the current θ and λ; resolves once that state is drawn. */
  request() {
    this.version += 1;
    if (this.drawn) this.root.dataset.state = "busy";
    return this.update();
  }

  async run() {
    const version = this.version;
    const theta = this.theta.slice();
    const lam = this.lam;
    const grid = this.grid;
    try {
      const out = await this.graph.run({
        points: { data: grid.points, dims: [grid.nx * grid.ny, 2] },
        task_params: this.tasks.flat(), anchor: theta, lam,
      });
      const size = grid.nx * grid.ny;
      const minimisers = this.panels.map((panel, t) => {
        const values = out.loss.data.subarray(t * size, (t + 1) * size);
        panel.contours.draw({ values, ...grid });
        const best = argmin(values);
        const point = best < 0 ? [NaN, NaN] : [grid.points[2 * best], grid.points[2 * best + 1]];
        placeMarker(panel.plot, panel.minimum, point);
        return point;
      });
      this.drawn = { theta, lam, minimisers };
      this.frames += 1;
      this.root.dispatchEvent(new CustomEvent("widget-drawn", { detail: { frames: this.frames } }));
      this.readout.textContent = describe(lam, theta, minimisers);
      if (version === this.version) this.root.dataset.state = "ready";
    } catch (err) {
      if (!this.drawn) throw err;          // the first draw: main.js shows the static figure
      this.root.dataset.state = "error";
      this.readout.textContent = `The model failed to run: ${err.message}`;
      console.warn("proximal-loss:", err);
    }
  }
}

function describe(lam, theta, minimisers) {
  const where = minimisers.map((p, t) =>
    `task ${t + 1}'s at ${Number.isFinite(p[0]) ? formatPoint(p) : "nowhere (no finite value)"}`);
  const lead = lam === 0
    ? "λ = 0: the plain task losses, whatever θ is."
    : `λ = ${formatLambda(lam)}, θ = ${formatPoint(theta)}.`;
  return `${lead} Lowest point of each panel: ${where.join("; ")}.`;
}

/** Index of the smallest finite value, or −1 when there is none. */
function argmin(values) {
  let best = -1;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i]) && (best < 0 || values[i] < values[best])) best = i;
  }
  return best;
}

function formatLambda(v) {
  return String(v);
}

function key(className, text) {
  return htmlElement("span", { class: `toy-key ${className}` }, text);
}
