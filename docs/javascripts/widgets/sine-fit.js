// Sinusoid widget: fine-tune an exported model on samples of a sine wave.
//
//   <div data-widget="sine-fit" data-model="maml-sinusoid" [data-steps="1"]>
//     …static figure rendered by the build…
//   </div>
//
// The reader picks the task y = A·sin(x + φ) (red) with two sliders and takes
// up to five samples of it (click/tap the plot, Enter on the focused plot, or
// 🎲). The model's adaptation graph (exported by meta/export.py) returns the
// predictions after 0…S gradient steps on those samples in one run; the steps
// slider only chooses which of them to draw as "after" (solid blue) next to
// the untuned model (dashed light blue). No math is done here but the target.
//
// "Your own points" (free mode) drops the sine: a sample goes exactly where
// the reader clicks (keyboard: Up/Down move the cursor's y too), and the
// presets place five samples on a line, a step or a parabola (drawn in red in
// place of the sine), to show what a model meta-learned on sines makes of a
// task that is not one.
//
// "Use these weights" (the live meta-training of the Comparison page) hands the
// widget a θ it did not come with: useWeights({params, label}) swaps the
// model's own graph for the θ-fit graph (meta/theta_fit.py: the same model
// with θ as an input, plain gradient steps), until "Back to <model>".
//
// For tests and outside tools the element carries data-state
// ("loading" | "busy" | "ready" | "error"), data-samples (count),
// data-mode ("sine" | "free") and data-weights ("own" | "handed");
// element.sineFit exposes the state.
import { findModel, modelUrl } from "../lib/manifest.js";
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

// Free mode's preset tasks: none of them is a sinusoid of the training family.
export const PRESETS = {
  line: { label: "Line", f: (x) => 0.8 * x },
  step: { label: "Step", f: (x) => (x < 0 ? -2 : 2) },
  parabola: { label: "Parabola", f: (x) => 0.3 * x * x - 3 },
};
const PRESET_X = [-4, -2, 0, 2, 4];

const INPUTS = ["support_x", "support_y", "query_x", "inner_lr"];
const FIT_GRAPH = "theta-fit";
const FIT_INPUTS = ["params", "support_x", "support_y", "query_x", "inner_lr"];
const OUTPUTS = ["query_y", "support_loss"];

export async function mount(root) {
  root.dataset.state = "loading";
  const modelName = root.dataset.model;
  if (!modelName) throw new WidgetError('the widget has no data-model attribute naming its model.');
  const entry = await findModel(modelName);
  if (entry.task?.family !== "sinusoid") {
    throw new WidgetError(`model "${modelName}" is not a sinusoid model (task family ${entry.task?.family}).`);
  }
  const session = await loadSession(modelUrl(entry));
  checkSignature(session, INPUTS, OUTPUTS);

  const widget = new SineFit(root, entry, session);
  // If the first run fails, mount fails: main.js then shows the static figure
  // again with the reason, instead of an empty plot.
  await widget.predict({ first: true });
  if (root.pendingWeights) {              // handed over before the widget had started
    const weights = root.pendingWeights;
    delete root.pendingWeights;
    await widget.useWeights(weights);
  }
  return widget;
}

class SineFit {
  constructor(root, entry, session) {
    this.root = root;
    this.session = session;
    this.innerLr = Number(entry.inner_lr);
    this.maxSteps = Number(entry.steps);
    const [aLo, aHi] = entry.task.amplitude;
    const [pLo, pHi] = entry.task.phase;
    this.xRange = entry.task.x;
    this.amplitude = clamp(3.0, aLo, aHi);
    this.phase = clamp(0.5, pLo, pHi);
    this.steps = clamp(Number(root.dataset.steps ?? 1), 0, this.maxSteps);
    this.samples = [];                 // sine mode: x positions (y is read off the task curve); free mode: {x, y}
    this.mode = "sine";                // "sine" | "free"
    this.preset = null;                // free mode: the preset whose curve is drawn, if any
    this.queryX = linspace(this.xRange[0], this.xRange[1], QUERY_POINTS);
    this.result = null;                // {sampleCount, queryY: Float32Array rows, supportLoss}
    this.update = latest(() => this.runOnce());   // the newest request wins
    this.handed = null;                // useWeights: {params, label, session, innerLr}
    this.entryName = entry.name;
    root.sineFit = this;
    root.dataset.mode = this.mode;
    root.dataset.weights = "own";
    this.build(entry, [aLo, aHi], [pLo, pHi]);
    this.drawTask();
  }

  target(x) {
    return this.amplitude * Math.sin(x + this.phase);
  }

  /** The samples as {x, y} points, whatever the mode. */
  points() {
    return this.mode === "free"
      ? this.samples.map((p) => ({ x: p.x, y: p.y }))
      : this.samples.map((x) => ({ x, y: this.target(x) }));
  }

  build(entry, aRange, pRange) {
    const ui = htmlElement("div", { class: "sine-fit" });
    // Size the drawing to the column (between a phone's and a desktop's), so
    // that ticks and labels keep a readable size when the SVG is scaled.
    const width = Math.round(Math.max(320, Math.min(640, this.root.clientWidth || 640)));
    const plot = createPlot(ui, {
      width, height: Math.round(Math.max(260, width * 0.5625)),
      xDomain: this.xRange, yDomain: Y_DOMAIN,
      label: `Sinusoid task and the ${entry.name} model's predictions. ` +
        "Click or tap to take a sample; with the plot focused, Left and Right move a cursor, " +
        "Enter or Space takes a sample there, Delete removes the newest sample; " +
        "with your own points, Up and Down move the cursor's height too.",
    });
    this.plot = plot;
    drawAxes(plot, { xLabel: "x", yLabel: "y" });
    this.targetPath = createCurve(plot, "sine-fit-target");
    this.beforePath = createCurve(plot, "sine-fit-before");
    this.afterPath = createCurve(plot, "sine-fit-after");
    this.sampleGroup = svgElement("g", { class: "sine-fit-samples" }, plot.layers.data);
    this.hint = svgElement("text", {
      class: "sine-fit-hint", x: (plot.area.left + plot.area.right) / 2, y: plot.area.top + 36, "text-anchor": "middle",
    }, plot.layers.overlay);
    this.sineHint = width < 480 ? "Tap the plot or press 🎲" : "Click or tap the plot, or press 🎲, to take samples";
    this.hint.textContent = this.sineHint;

    const legend = htmlElement("p", { class: "sine-fit__legend" },
      legendItem("sine-fit-key--target", "task"),
      legendItem("sine-fit-key--before", "model before fine-tuning"),
      legendItem("sine-fit-key--after", "after fine-tuning"),
      legendItem("sine-fit-key--sample", "samples"));
    this.readout = htmlElement("p", { class: "sine-fit__readout", "aria-live": "polite" });

    const fmt2 = (v) => v.toFixed(2);
    this.amplitudeSlider = slider({
      label: "Amplitude A", className: "sine-fit-amplitude",
      min: aRange[0], max: aRange[1], step: 0.01, value: this.amplitude, format: fmt2,
      onInput: (v) => { this.amplitude = v; this.changed(); },
    });
    this.phaseSlider = slider({
      label: "Phase φ", className: "sine-fit-phase", min: pRange[0], max: pRange[1], step: 0.01, value: this.phase,
      format: (v) => `${v.toFixed(2)} rad`,
      onInput: (v) => { this.phase = v; this.changed(); },
    });
    this.stepsSlider = slider({
      label: "Fine-tuning steps", className: "sine-fit-steps", min: 0, max: this.maxSteps, step: 1, value: this.steps,
      format: (v) => String(v), onInput: (v) => { this.steps = v; this.draw(); },
    });
    const dice = button({
      label: "🎲 Random samples", title: `Take ${MAX_SAMPLES} samples at random x`,
      className: "sine-fit-dice", onClick: () => this.randomSamples(),
    });
    const clear = button({ label: "Clear samples", className: "sine-fit-clear", onClick: () => this.setSamples([]) });
    const controls = htmlElement("div", { class: "sine-fit__controls" },
      this.amplitudeSlider.element, this.phaseSlider.element, this.stepsSlider.element,
      htmlElement("div", { class: "sine-fit__buttons" }, dice, clear));

    this.freeToggle = button({
      label: "Your own points", className: "sine-fit-free",
      title: "Place samples anywhere, not on the sine", onClick: () => this.setMode(this.mode === "free" ? "sine" : "free"),
    });
    this.freeToggle.setAttribute("aria-pressed", "false");
    this.presetButtons = Object.entries(PRESETS).map(([name, preset]) => {
      const b = button({
        label: preset.label, className: `sine-fit-preset sine-fit-preset--${name}`,
        title: `Five samples of a ${preset.label.toLowerCase()} (your own points)`, onClick: () => this.usePreset(name),
      });
      b.dataset.preset = name;
      return b;
    });
    const modes = htmlElement("div", { class: "sine-fit__buttons sine-fit__modes" },
      this.freeToggle, htmlElement("span", { class: "sine-fit__presets-label" }, "Not a sine:"), ...this.presetButtons);
    this.backButton = button({
      label: `Back to ${entry.name}`, className: "sine-fit-own-weights", onClick: () => this.useWeights(null),
    });
    this.backButton.hidden = true;
    this.weightsNote = htmlElement("p", { class: "sine-fit__weights" });
    this.weightsNote.hidden = true;
    ui.append(legend, controls, modes, this.weightsNote, this.backButton, this.readout);
    this.root.append(ui);
    this.input = bindSampleInput(plot, {
      onTake: (p) => this.addSample(p),
      onRemoveLast: () => this.setSamples(this.samples.slice(0, -1)),
      freeY: () => this.mode === "free",
    });
  }

  /** "sine": samples lie on the task's sine; "free": where the reader puts them. Clears the samples. */
  setMode(mode) {
    if (mode !== "sine" && mode !== "free") throw new WidgetError(`unknown mode "${mode}"; allowed: sine, free`);
    this.mode = mode;
    this.preset = null;
    this.root.dataset.mode = mode;
    this.freeToggle.setAttribute("aria-pressed", String(mode === "free"));
    this.amplitudeSlider.input.disabled = mode === "free";
    this.phaseSlider.input.disabled = mode === "free";
    this.hint.textContent = mode === "free" ? "Click or tap where a sample should go, or pick a preset"
      : this.sineHint;
    this.input.refresh();
    this.setSamples([]);
  }

  /** Free mode with five samples of a preset curve (PRESETS), drawn in place of the sine. */
  usePreset(name) {
    const preset = PRESETS[name];
    if (!preset) throw new WidgetError(`unknown preset "${name}"; allowed: ${Object.keys(PRESETS).join(", ")}`);
    if (this.mode !== "free") this.setMode("free");
    this.preset = name;
    this.setSamples(PRESET_X.map((x) => ({ x, y: preset.f(x) })));
  }

  /** Take a sample at the point {x, y} (sine mode uses x only). A sixth sample replaces the oldest one. */
  addSample(p) {
    if (this.mode === "free") this.preset = null;    // the points no longer follow the preset's curve
    this.setSamples([...this.samples, this.mode === "free" ? p : p.x]);
  }

  randomSamples() {
    const [lo, hi] = this.xRange;
    const xs = Array.from({ length: MAX_SAMPLES }, () => lo + Math.random() * (hi - lo));
    if (this.mode === "sine") {
      this.setSamples(xs);
    } else {
      const f = this.preset ? PRESETS[this.preset].f : () => (Math.random() * 2 - 1) * 4;
      this.setSamples(xs.map((x) => ({ x, y: f(x) })));
    }
  }

  /** Replace the samples: x positions in sine mode, {x, y} points in free mode.
   *  Values outside the plot are clamped to it, non-numbers dropped, and only
   *  the newest five are kept. */
  setSamples(samples) {
    const [xLo, xHi] = this.xRange;
    const clampX = (x) => Math.min(xHi, Math.max(xLo, x));
    const clampY = (y) => Math.min(Y_DOMAIN[1], Math.max(Y_DOMAIN[0], y));
    const kept = this.mode === "free"
      ? samples.filter((p) => Number.isFinite(p?.x) && Number.isFinite(p?.y)).map((p) => ({ x: clampX(p.x), y: clampY(p.y) }))
      : samples.filter(Number.isFinite).map(clampX);
    this.samples = kept.slice(-MAX_SAMPLES);
    this.changed();
  }

  /**
   * Fit with the weights {params: Float32Array (flat θ), label} instead of the
   * model's own (null: back to them). The θ-fit graph takes plain gradient
   * steps at the live run's inner learning rate.
   */
  async useWeights(weights) {
    if (weights) {
      const entry = await findModel(FIT_GRAPH);
      const session = await loadSession(modelUrl(entry));
      checkSignature(session, FIT_INPUTS, OUTPUTS);
      this.handed = { params: Float32Array.from(weights.params), label: String(weights.label ?? "handed weights"),
        session, innerLr: Number(entry.inner_lr) };
      if (this.handed.params.length === 0) throw new WidgetError("the handed weights are empty.");
    } else {
      this.handed = null;
    }
    this.root.dataset.weights = this.handed ? "handed" : "own";
    this.backButton.hidden = !this.handed;
    this.weightsNote.hidden = !this.handed;
    this.weightsNote.textContent = this.handed
      ? `Weights: ${this.handed.label} (plain gradient steps at learning rate ${this.handed.innerLr}).` : "";
    await this.predict();
  }

  /** One run of the model: {queryY rows [S+1] of Float32Array [M], supportLoss [S+1]}. */
  async adapt(xs, ys) {
    const m = this.queryX.length;
    if (!this.handed) {
      const out = await runGraph(this.session, {
        support_x: { data: xs, dims: [xs.length, 1] },
        support_y: { data: ys, dims: [ys.length, 1] },
        query_x: { data: this.queryX, dims: [m, 1] },
        inner_lr: { data: [this.innerLr], dims: [] },
      });
      return { out, dims: out.query_y.dims };
    }
    // The θ-fit graph: one task (T = 1); it needs a support point, so with no
    // samples it runs on a stand-in and only its step 0 (no fitting) is used.
    const empty = xs.length === 0;
    const sx = empty ? [0] : xs;
    const sy = empty ? [0] : ys;
    const out = await runGraph(this.handed.session, {
      params: { data: this.handed.params, dims: [1, this.handed.params.length] },
      support_x: { data: sx, dims: [1, sx.length, 1] },
      support_y: { data: sy, dims: [1, sy.length, 1] },
      query_x: { data: this.queryX, dims: [1, m, 1] },
      inner_lr: { data: [this.handed.innerLr], dims: [] },
    });
    const rows = out.query_y.dims[0];
    if (empty) {
      const first = out.query_y.data.slice(0, m);
      out.query_y.data = new Float32Array(rows * m).map((_, i) => first[i % m]);
      out.support_loss.data = new Float32Array(rows);
    }
    return { out, dims: [rows, m, 1] };
  }

  /** The task or the samples changed: run the graph again (the newest request wins). */
  changed() {
    this.drawTask();
    this.predict();
  }

  /** Whether a run of the graph is in progress (lib/latest.js). */
  get running() {
    return this.update.running;
  }

  async predict({ first = false } = {}) {
    this.root.dataset.state = this.result ? "busy" : "loading";
    try {
      await this.update();
      if (!this.update.running) this.root.dataset.state = "ready";
    } catch (err) {
      if (first) throw err;
      this.root.dataset.state = "error";
      this.readout.textContent = `The model failed to run: ${err.message}`;
      console.warn("sine-fit:", err);
    }
  }

  /** One run of the graph on the current samples, and the drawing of its result. */
  async runOnce() {
    const points = this.points();
    const xs = points.map((p) => p.x);
    const ys = points.map((p) => p.y);
    const { out, dims } = await this.adapt(xs, ys);
    const [rows, m] = dims;
    if (m !== this.queryX.length || rows < 1) {
      throw new WidgetError(`the model returned query_y shaped [${out.query_y.dims}], expected [S+1, ${this.queryX.length}, 1].`);
    }
    this.result = {
      sampleCount: xs.length,
      queryY: Array.from({ length: rows }, (_, s) => out.query_y.data.subarray(s * m, (s + 1) * m)),
      supportLoss: Array.from(out.support_loss.data),
    };
    this.draw();
  }

  drawTask() {
    // The red curve: the sine, a preset's curve in free mode, or nothing for points placed by hand.
    const curve = this.mode === "sine" ? (x) => this.target(x) : this.preset ? PRESETS[this.preset].f : null;
    setCurve(this.plot, this.targetPath, curve ? this.queryX : [], curve ? this.queryX.map(curve) : []);
    setPoints(this.plot, this.sampleGroup, this.points(), { className: "sine-fit-sample" });
    this.root.dataset.samples = String(this.samples.length);
    this.hint.style.display = this.samples.length ? "none" : "";
  }

  draw() {
    this.input.refresh();
    const result = this.result;
    if (!result) return;
    const steps = Math.min(this.steps, result.queryY.length - 1);
    setCurve(this.plot, this.beforePath, this.queryX, result.queryY[0]);
    setCurve(this.plot, this.afterPath, this.queryX, result.queryY[steps]);
    this.afterPath.dataset.steps = String(steps);
    if (result.sampleCount === 0) {
      this.readout.textContent = "No samples yet: the model is shown as it is, before any fine-tuning.";
    } else {
      const before = result.supportLoss[0];
      const after = result.supportLoss[steps];
      const diverged = !Number.isFinite(after) || after > 1e3 * Math.max(before, 1);
      const afterText = diverged
        ? `it blew up after ${steps} step${steps === 1 ? "" : "s"}: at learning rate ${this.innerLr} ` +
          "these samples make the loss too curved for gradient descent"
        : `${after.toFixed(3)} after ${steps} step${steps === 1 ? "" : "s"} (learning rate ${this.handed?.innerLr ?? this.innerLr})`;
      this.readout.textContent = `Mean squared error on the ${result.sampleCount} sample` +
        `${result.sampleCount === 1 ? "" : "s"}: ${before.toFixed(3)} before fine-tuning; ${afterText}.`;
    }
  }
}

function legendItem(className, text) {
  return htmlElement("span", { class: "sine-fit__key" },
    htmlElement("span", { class: `sine-fit-key ${className}`, "aria-hidden": "true" }), text);
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, Number.isFinite(v) ? v : lo));
}
