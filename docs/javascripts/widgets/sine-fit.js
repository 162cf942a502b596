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
// For tests and outside tools the element carries data-state
// ("loading" | "busy" | "ready" | "error") and data-samples (count);
// element.sineFit exposes the state.
import { findModel, modelUrl } from "../lib/manifest.js";
import { checkSignature, loadSession, runGraph } from "../lib/ort-runner.js";
import {
  button, createCurve, createPlot, drawAxes, eventToData, htmlElement, linspace, setCurve,
  setPoints, slider, svgElement,
} from "../lib/plot.js";
import { WidgetError } from "../lib/site.js";

const MAX_SAMPLES = 5;
const QUERY_POINTS = 201;
const Y_DOMAIN = [-6, 6];
const CURSOR_STEP = 0.25;     // arrow keys move the keyboard cursor by this much in x
const TAP_SLOP_PX = 10;       // a pointer that moves further than this is a scroll/drag, not a tap

const INPUTS = ["support_x", "support_y", "query_x", "inner_lr"];
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
  await widget.predict();
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
    this.samples = [];                 // x positions; y is read off the task curve
    this.cursorX = 0;
    this.usingKeys = false;            // show the keyboard cursor only to keyboard users
    this.queryX = linspace(this.xRange[0], this.xRange[1], QUERY_POINTS);
    this.result = null;                // {sampleCount, queryY: Float32Array rows, supportLoss}
    this.running = false;
    this.dirty = false;
    root.sineFit = this;
    this.build(entry, [aLo, aHi], [pLo, pHi]);
    this.drawTask();
  }

  target(x) {
    return this.amplitude * Math.sin(x + this.phase);
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
        "Enter or Space takes a sample there, Delete removes the newest sample.",
    });
    this.plot = plot;
    drawAxes(plot, { xLabel: "x", yLabel: "y" });
    plot.svg.setAttribute("tabindex", "0");
    plot.svg.setAttribute("role", "application");
    this.targetPath = createCurve(plot, "sine-fit-target");
    this.beforePath = createCurve(plot, "sine-fit-before");
    this.afterPath = createCurve(plot, "sine-fit-after");
    this.sampleGroup = svgElement("g", { class: "sine-fit-samples" }, plot.layers.data);
    this.cursor = svgElement("line", {
      class: "sine-fit-cursor", y1: plot.area.top, y2: plot.area.bottom,
    }, plot.layers.overlay);
    this.hint = svgElement("text", {
      class: "sine-fit-hint", x: (plot.area.left + plot.area.right) / 2, y: plot.area.top + 36, "text-anchor": "middle",
    }, plot.layers.overlay);
    this.hint.textContent = width < 480 ? "Tap the plot or press 🎲" : "Click or tap the plot, or press 🎲, to take samples";

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
    ui.append(legend, controls, this.readout);
    this.root.append(ui);
    this.bindPointer();
    this.bindKeys();
  }

  bindPointer() {
    const svg = this.plot.svg;
    let down = null;
    svg.addEventListener("pointerdown", (event) => {
      this.usingKeys = false;
      if (event.button !== 0) return;
      down = { id: event.pointerId, x: event.clientX, y: event.clientY };
    });
    svg.addEventListener("pointercancel", () => { down = null; });
    svg.addEventListener("pointerup", (event) => {
      if (!down || down.id !== event.pointerId) return;
      const moved = Math.hypot(event.clientX - down.x, event.clientY - down.y);
      down = null;
      if (moved > TAP_SLOP_PX) return;
      const p = eventToData(this.plot, event);
      if (!p || p.x < this.xRange[0] || p.x > this.xRange[1]) return;
      this.cursorX = p.x;
      this.addSample(p.x);
    });
  }

  bindKeys() {
    const svg = this.plot.svg;
    const [lo, hi] = this.xRange;
    svg.addEventListener("keydown", (event) => {
      const big = event.shiftKey ? 4 : 1;
      switch (event.key) {
        case "ArrowLeft": this.cursorX = Math.max(lo, this.cursorX - CURSOR_STEP * big); break;
        case "ArrowRight": this.cursorX = Math.min(hi, this.cursorX + CURSOR_STEP * big); break;
        case "Home": this.cursorX = lo; break;
        case "End": this.cursorX = hi; break;
        case "Enter": case " ": this.addSample(this.cursorX); break;
        case "Delete": case "Backspace": this.setSamples(this.samples.slice(0, -1)); break;
        default: return;
      }
      event.preventDefault();
      this.usingKeys = true;
      this.drawCursor();
    });
    svg.addEventListener("focus", () => this.drawCursor());
    svg.addEventListener("blur", () => this.drawCursor());
  }

  addSample(x) {
    // A sixth sample replaces the oldest one.
    this.setSamples([...this.samples, x].slice(-MAX_SAMPLES));
  }

  randomSamples() {
    const [lo, hi] = this.xRange;
    this.setSamples(Array.from({ length: MAX_SAMPLES }, () => lo + Math.random() * (hi - lo)));
  }

  setSamples(xs) {
    this.samples = xs;
    this.changed();
  }

  /** The task or the samples changed: run the graph again (the newest request wins). */
  changed() {
    this.drawTask();
    this.predict();
  }

  async predict() {
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = true;
    this.root.dataset.state = this.result ? "busy" : "loading";
    try {
      do {
        this.dirty = false;
        const xs = this.samples.slice();
        const ys = xs.map((x) => this.target(x));
        const out = await runGraph(this.session, {
          support_x: { data: xs, dims: [xs.length, 1] },
          support_y: { data: ys, dims: [ys.length, 1] },
          query_x: { data: this.queryX, dims: [this.queryX.length, 1] },
          inner_lr: { data: [this.innerLr], dims: [] },
        });
        const [rows, m] = out.query_y.dims;
        if (m !== this.queryX.length || rows < 1) {
          throw new WidgetError(`the model returned query_y shaped [${out.query_y.dims}], expected [S+1, ${this.queryX.length}, 1].`);
        }
        this.result = {
          sampleCount: xs.length,
          queryY: Array.from({ length: rows }, (_, s) => out.query_y.data.subarray(s * m, (s + 1) * m)),
          supportLoss: Array.from(out.support_loss.data),
        };
        this.draw();
      } while (this.dirty);
      this.root.dataset.state = "ready";
    } catch (err) {
      this.root.dataset.state = "error";
      this.readout.textContent = `The model failed to run: ${err.message}`;
      console.warn("sine-fit:", err);
    } finally {
      this.running = false;
    }
  }

  drawTask() {
    setCurve(this.plot, this.targetPath, this.queryX, this.queryX.map((x) => this.target(x)));
    setPoints(this.plot, this.sampleGroup, this.samples.map((x) => ({ x, y: this.target(x) })), {
      className: "sine-fit-sample",
    });
    this.root.dataset.samples = String(this.samples.length);
    this.hint.style.display = this.samples.length ? "none" : "";
  }

  drawCursor() {
    // The cursor is for keyboard use; a mouse or touch user has the pointer.
    const svg = this.plot.svg;
    const show = document.activeElement === svg && (this.usingKeys || svg.matches(":focus-visible"));
    this.cursor.style.display = show ? "" : "none";
    const px = this.plot.x(this.cursorX).toFixed(2);
    this.cursor.setAttribute("x1", px);
    this.cursor.setAttribute("x2", px);
  }

  draw() {
    this.drawCursor();
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
        : `${after.toFixed(3)} after ${steps} step${steps === 1 ? "" : "s"} (learning rate ${this.innerLr})`;
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
