// Every model on your samples: all the sinusoid models of the manifest adapt
// to the same support points, side by side.
//
//   <div data-widget="all-models" [data-steps="1"]>
//     …static figure rendered by the build…
//   </div>
//
// The reader sets the task y = A·sin(x + φ) and takes up to five samples (tap,
// keyboard or 🎲), exactly as in the single-model sine-fit widget. Each
// model's own adaptation graph runs on those samples at its own inner_lr and
// returns its predictions after 0…S steps and its support loss before each
// step; the steps slider picks which step to draw. Left: the task and one
// curve per model. Right: every model's support loss against the step, on a
// log scale. The table under the plots gives, per model, the support loss and
// the error on the whole task curve at the chosen step.
//
// For tests and outside tools the element carries data-state
// ("loading" | "busy" | "ready" | "error") and data-samples;
// element.allModels exposes the state (models, result, setSamples, setTask).
import { loadManifest, modelUrl } from "../lib/manifest.js";
import { checkSignature, loadSession, runGraph } from "../lib/ort-runner.js";
import {
  button, createCurve, createPlot, drawAxes, htmlElement, linspace, setCurve, setPoints, slider, svgElement,
} from "../lib/plot.js";
import { latest } from "../lib/latest.js";
import { bindSampleInput } from "../lib/samples.js";
import { WidgetError } from "../lib/site.js";

const MAX_SAMPLES = 5;
const QUERY_POINTS = 201;
const Y_DOMAIN = [-6, 6];
const INPUTS = ["support_x", "support_y", "query_x", "inner_lr"];
const OUTPUTS = ["query_y", "support_loss"];

// One colour per algorithm (Okabe–Ito, readable on the light and the dark
// palette and by readers with the common colour-vision deficiencies).
export const COLOURS = {
  pretrained: "#999999", maml: "#0072b2", fomaml: "#56b4e9", reptile: "#009e73", imaml: "#e69f00",
};
const FALLBACK_COLOURS = ["#cc79a7", "#d55e00", "#f0e442"];
export const LABELS = {
  pretrained: "Pretrained", maml: "MAML", fomaml: "First-order MAML", reptile: "Reptile", imaml: "iMAML",
};

export async function mount(root) {
  root.dataset.state = "loading";
  const manifest = await loadManifest();
  const entries = manifest.models.filter((m) => m.task?.family === "sinusoid");
  if (entries.length === 0) throw new WidgetError("the site has no sinusoid models.");
  const sessions = await Promise.all(entries.map((entry) => loadSession(modelUrl(entry))));
  sessions.forEach((session) => checkSignature(session, INPUTS, OUTPUTS));
  const models = entries.map((entry, i) => ({
    name: entry.name,
    label: LABELS[entry.algorithm] ?? entry.name,
    colour: COLOURS[entry.algorithm] ?? FALLBACK_COLOURS[i % FALLBACK_COLOURS.length],
    innerLr: Number(entry.inner_lr),
    steps: Number(entry.steps),
    session: sessions[i],
  }));
  const widget = new AllModels(root, entries[0].task, models);
  await widget.predict();
  return widget;
}

class AllModels {
  constructor(root, task, models) {
    this.root = root;
    this.models = models;
    this.xRange = task.x;
    this.maxSteps = Math.min(...models.map((m) => m.steps));
    const [aLo, aHi] = task.amplitude;
    const [pLo, pHi] = task.phase;
    this.aRange = [aLo, aHi];
    this.pRange = [pLo, pHi];
    this.amplitude = clamp(3.0, aLo, aHi);
    this.phase = clamp(0.5, pLo, pHi);
    this.steps = clamp(Math.round(Number(root.dataset.steps ?? 1)), 0, this.maxSteps);
    this.samples = [];                  // x positions; y is read off the task curve
    this.queryX = linspace(this.xRange[0], this.xRange[1], QUERY_POINTS);
    this.result = null;                 // {sampleCount, rows: [{queryY: Float32Array[], supportLoss: number[]}]}
    this.update = latest(() => this.runOnce());   // the newest request wins
    root.allModels = this;
    this.build();
    this.drawTask();
  }

  target(x) {
    return this.amplitude * Math.sin(x + this.phase);
  }

  build() {
    const ui = htmlElement("div", { class: "sine-fit all-models" });
    const width = Math.round(Math.max(320, Math.min(640, this.root.clientWidth || 640)));
    const plots = htmlElement("div", { class: "all-models__plot" });
    const details = htmlElement("div", { class: "all-models__details" });
    this.plot = createPlot(plots, {
      width, height: Math.round(Math.max(260, width * 0.5625)),
      xDomain: this.xRange, yDomain: Y_DOMAIN,
      label: "The task and every model's prediction after fine-tuning on the same samples. " +
        "Click or tap to take a sample; with the plot focused, Left and Right move a cursor, " +
        "Enter or Space takes a sample there, Delete removes the newest sample.",
    });
    drawAxes(this.plot, { xLabel: "x", yLabel: "y" });
    this.targetPath = createCurve(this.plot, "sine-fit-target");
    this.curves = this.models.map((m) => {
      const path = createCurve(this.plot, "all-models-curve");
      paint(path, m.colour, 2.5);
      path.dataset.model = m.name;
      return path;
    });
    this.sampleGroup = svgElement("g", { class: "sine-fit-samples" }, this.plot.layers.data);
    this.hint = svgElement("text", {
      class: "sine-fit-hint", x: (this.plot.area.left + this.plot.area.right) / 2, y: this.plot.area.top + 36,
      "text-anchor": "middle",
    }, this.plot.layers.overlay);
    this.hint.textContent = "Click or tap the plot, or press 🎲, to take samples";
    this.input = bindSampleInput(this.plot, {
      onTake: ({ x }) => this.setSamples([...this.samples, x].slice(-MAX_SAMPLES)),
      onRemoveLast: () => this.setSamples(this.samples.slice(0, -1)),
    });

    // Support loss against the step, log10 on a linear axis.
    this.lossPlot = createPlot(details, {
      width, height: 210, margin: { top: 24, right: 16, bottom: 36, left: 52 },
      xDomain: [0, this.maxSteps], yDomain: [-3, 1],
      label: "Support loss of every model before each fine-tuning step, on a logarithmic scale.",
    });
    this.lossPlot.svg.classList.add("all-models-loss");
    this.stepMarker = svgElement("line", {
      class: "sine-fit-cursor", y1: this.lossPlot.area.top, y2: this.lossPlot.area.bottom,
    }, this.lossPlot.layers.overlay);
    this.lossCurves = this.models.map((m) => {
      const path = createCurve(this.lossPlot, "all-models-loss-curve");
      paint(path, m.colour, 2);
      path.dataset.model = m.name;
      return path;
    });

    const legend = htmlElement("p", { class: "sine-fit__legend" },
      key(htmlElement("span", { class: "sine-fit-key sine-fit-key--target", "aria-hidden": "true" }), "task"),
      ...this.models.map((m) => {
        const swatch = htmlElement("span", { class: "sine-fit-key", "aria-hidden": "true" });
        swatch.style.borderColor = m.colour;
        return key(swatch, m.label);
      }),
      key(htmlElement("span", { class: "sine-fit-key sine-fit-key--sample", "aria-hidden": "true" }), "samples"));

    const fmt2 = (v) => v.toFixed(2);
    const amplitude = slider({
      label: "Amplitude A", className: "sine-fit-amplitude", min: this.aRange[0], max: this.aRange[1], step: 0.01,
      value: this.amplitude, format: fmt2, onInput: (v) => { this.amplitude = v; this.changed(); },
    });
    const phase = slider({
      label: "Phase φ", className: "sine-fit-phase", min: this.pRange[0], max: this.pRange[1], step: 0.01,
      value: this.phase, format: (v) => `${v.toFixed(2)} rad`, onInput: (v) => { this.phase = v; this.changed(); },
    });
    const steps = slider({
      label: "Fine-tuning steps", className: "sine-fit-steps", min: 0, max: this.maxSteps, step: 1,
      value: this.steps, format: String, onInput: (v) => { this.steps = v; this.draw(); },
    });
    const dice = button({
      label: "🎲 Random samples", title: `Take ${MAX_SAMPLES} samples at random x`, className: "sine-fit-dice",
      onClick: () => this.randomSamples(),
    });
    const clear = button({ label: "Clear samples", className: "sine-fit-clear", onClick: () => this.setSamples([]) });
    const controls = htmlElement("div", { class: "sine-fit__controls" },
      amplitude.element, phase.element, steps.element, htmlElement("div", { class: "sine-fit__buttons" }, dice, clear));

    this.tableBody = htmlElement("tbody");
    const table = htmlElement("table", { class: "all-models__table" },
      htmlElement("caption", {}, "Each model after the chosen number of steps on your samples"),
      htmlElement("thead", {}, htmlElement("tr", {},
        htmlElement("th", { scope: "col" }, "model"),
        htmlElement("th", { scope: "col" }, "rate α"),
        htmlElement("th", { scope: "col" }, "error on the samples"),
        htmlElement("th", { scope: "col" }, "error on the whole curve"))),
      this.tableBody);
    this.rows = this.models.map((m) => {
      const cells = [htmlElement("td"), htmlElement("td"), htmlElement("td")];
      cells[0].textContent = formatRate(m.innerLr);
      const name = htmlElement("th", { scope: "row" });
      const swatch = htmlElement("span", { class: "sine-fit-key", "aria-hidden": "true" });
      swatch.style.borderColor = m.colour;
      name.append(swatch, ` ${m.label}`);
      this.tableBody.append(htmlElement("tr", { "data-model": m.name }, name, ...cells));
      return cells;
    });
    this.readout = htmlElement("p", { class: "sine-fit__readout", "aria-live": "polite" });
    details.append(table);
    ui.append(legend, plots, controls, this.readout, details);
    this.root.append(ui);
  }

  randomSamples() {
    const [lo, hi] = this.xRange;
    this.setSamples(Array.from({ length: MAX_SAMPLES }, () => lo + Math.random() * (hi - lo)));
  }

  /** Replace the samples by these x positions (at most five are kept: the newest). */
  setSamples(xs) {
    const [lo, hi] = this.xRange;
    this.samples = xs.filter(Number.isFinite).map((x) => Math.min(hi, Math.max(lo, x))).slice(-MAX_SAMPLES);
    this.changed();
  }

  /** Set the task's amplitude and phase (clamped to the task family's ranges). */
  setTask(amplitude, phase) {
    this.amplitude = clamp(amplitude, ...this.aRange);
    this.phase = clamp(phase, ...this.pRange);
    this.changed();
  }

  changed() {
    this.drawTask();
    return this.predict();
  }

  /** Whether a run of the graphs is in progress (lib/latest.js). */
  get running() {
    return this.update.running;
  }

  /** Run every model's graph on the current samples (the newest request wins). */
  async predict() {
    this.root.dataset.state = this.result ? "busy" : "loading";
    try {
      await this.update();
      if (!this.update.running) this.root.dataset.state = "ready";
    } catch (err) {
      this.root.dataset.state = "error";
      this.readout.textContent = `The models failed to run: ${err.message}`;
      console.warn("all-models:", err);
    }
  }

  /** One run of every model's graph on the current samples, and the drawing of the results. */
  async runOnce() {
    const xs = this.samples.slice();
    const ys = xs.map((x) => this.target(x));
    const rows = [];
    for (const model of this.models) {
      const out = await runGraph(model.session, {
        support_x: { data: xs, dims: [xs.length, 1] },
        support_y: { data: ys, dims: [ys.length, 1] },
        query_x: { data: this.queryX, dims: [this.queryX.length, 1] },
        inner_lr: { data: [model.innerLr], dims: [] },
      });
      const [count, m] = out.query_y.dims;
      if (m !== this.queryX.length || count < 1) {
        throw new WidgetError(`model ${model.name} returned query_y shaped [${out.query_y.dims}], ` +
          `expected [S+1, ${this.queryX.length}, 1].`);
      }
      rows.push({
        queryY: Array.from({ length: count }, (_, s) => out.query_y.data.subarray(s * m, (s + 1) * m)),
        supportLoss: Array.from(out.support_loss.data),
      });
    }
    this.result = { sampleCount: xs.length, rows };
    this.draw();
  }

  drawTask() {
    setCurve(this.plot, this.targetPath, this.queryX, this.queryX.map((x) => this.target(x)));
    setPoints(this.plot, this.sampleGroup, this.samples.map((x) => ({ x, y: this.target(x) })), {
      className: "sine-fit-sample",
    });
    this.root.dataset.samples = String(this.samples.length);
    this.hint.style.display = this.samples.length ? "none" : "";
  }

  draw() {
    this.input.refresh();
    const result = this.result;
    if (!result) return;
    const truth = this.queryX.map((x) => this.target(x));
    const losses = result.rows.flatMap((r) => r.supportLoss).filter((v) => Number.isFinite(v) && v > 0);
    const lo = Math.floor(Math.log10(Math.max(1e-6, Math.min(...losses, 1))));
    const hi = Math.ceil(Math.log10(Math.min(1e6, Math.max(...losses, 1))));
    this.setLossAxis(lo, hi === lo ? lo + 1 : hi);
    const stepsAxis = linspace(0, this.maxSteps, this.maxSteps + 1);
    result.rows.forEach((row, i) => {
      const steps = Math.min(this.steps, row.queryY.length - 1);
      setCurve(this.plot, this.curves[i], this.queryX, row.queryY[steps]);
      this.curves[i].dataset.steps = String(steps);
      const logLoss = row.supportLoss.slice(0, this.maxSteps + 1).map((v) => (v > 0 ? Math.log10(v) : NaN));
      setCurve(this.lossPlot, this.lossCurves[i], stepsAxis, result.sampleCount ? logLoss : []);
      const curveError = meanSquare(row.queryY[steps], truth);
      const [, support, whole] = this.rows[i];
      support.textContent = result.sampleCount ? formatError(row.supportLoss[steps]) : "no samples";
      whole.textContent = formatError(curveError);
    });
    const px = this.lossPlot.x(Math.min(this.steps, this.maxSteps)).toFixed(2);
    this.stepMarker.setAttribute("x1", px);
    this.stepMarker.setAttribute("x2", px);
    this.readout.textContent = result.sampleCount === 0
      ? "No samples yet: every model is shown as it is, before any fine-tuning."
      : `${result.sampleCount} sample${result.sampleCount === 1 ? "" : "s"}, ` +
        `${this.steps} fine-tuning step${this.steps === 1 ? "" : "s"} for every model.`;
  }

  setLossAxis(lo, hi) {
    if (this.lossAxis && this.lossAxis[0] === lo && this.lossAxis[1] === hi) return;
    this.lossAxis = [lo, hi];
    const plot = this.lossPlot;
    const { area } = plot;
    plot.y = Object.assign((v) => area.bottom + ((v - lo) / (hi - lo)) * (area.top - area.bottom), {
      domain: [lo, hi], invert: (p) => lo + ((p - area.bottom) / (area.top - area.bottom)) * (hi - lo),
    });
    const g = plot.layers.grid;
    g.replaceChildren();
    for (let s = 0; s <= this.maxSteps; s += this.maxSteps > 5 ? 2 : 1) {
      svgElement("line", { class: "widget-gridline", x1: plot.x(s), x2: plot.x(s), y1: area.top, y2: area.bottom }, g);
      svgElement("text", { class: "widget-tick", x: plot.x(s), y: area.bottom + 16, "text-anchor": "middle" }, g)
        .textContent = String(s);
    }
    const every = Math.ceil((hi - lo) / 6);
    for (let e = lo; e <= hi; e += every) {
      svgElement("line", { class: "widget-gridline", x1: area.left, x2: area.right, y1: plot.y(e), y2: plot.y(e) }, g);
      svgElement("text", { class: "widget-tick", x: area.left - 6, y: plot.y(e) + 4, "text-anchor": "end" }, g)
        .textContent = e === 0 ? "1" : `1e${e}`;
    }
    svgElement("rect", {
      class: "widget-frame", x: area.left, y: area.top, width: area.right - area.left, height: area.bottom - area.top,
    }, g);
    svgElement("text", { class: "widget-axis-label", x: area.right, y: area.bottom + 30, "text-anchor": "end" }, g)
      .textContent = "step";
    svgElement("text", { class: "widget-axis-label", x: area.left, y: area.top - 8 }, g)
      .textContent = "support loss (log scale)";
  }
}

/** Colour a curve with presentation attributes (no inline style: the site's CSP forbids it). */
function paint(path, colour, width) {
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", colour);
  path.setAttribute("stroke-width", String(width));
}

function key(swatch, text) {
  return htmlElement("span", { class: "sine-fit__key" }, swatch, text);
}

function meanSquare(prediction, truth) {
  let sum = 0;
  for (let i = 0; i < truth.length; i++) sum += (prediction[i] - truth[i]) ** 2;
  return sum / truth.length;
}

function formatRate(v) {
  return String(Number(v.toPrecision(2)));
}

function formatError(v) {
  if (!Number.isFinite(v)) return "blew up";
  return v >= 100 ? v.toExponential(1) : v.toFixed(3);
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, Number.isFinite(v) ? v : lo));
}
