// The accumulated meta-loss Σ_i L_i(U^(m)(θ)) for m = 0…20, one frame per m.
//
//   <div class="widget" data-widget="accumulated-loss" markdown> …static figure… </div>
//
// The frames are the build's figures (site_builder/toy_figures.py: the two
// tasks' losses and the accumulated loss after m inner steps, at the inner
// learning rate of the record), listed with the minimum of each frame in
// assets/figures/toy-accumulated-minima.json, both computed by PyTorch. A
// slider (keyboard: arrows, Home/End, PageUp/PageDown) picks m; the frame and
// the read-out "minimum of the accumulated loss at (a, b) = …" follow. Every
// frame is preloaded, so sliding swaps images without a fetch.
//
// For tests and tools: data-state ("loading" | "ready" | "error"), data-m,
// element.toyWidget (m, record), a "widget-drawn" event after every change.
import { htmlElement, slider } from "../lib/plot.js";
import { siteUrl, WidgetError } from "../lib/site.js";

const RECORD = "assets/figures/toy-accumulated-minima.json";

export async function mount(root) {
  root.dataset.state = "loading";
  const url = siteUrl(RECORD);
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new WidgetError(`the list of frames ${url.pathname} could not be fetched (${err.message}).`);
  }
  if (!response.ok) throw new WidgetError(`the list of frames ${url.pathname} is missing (HTTP ${response.status}).`);
  const record = await response.json();
  const frames = record.frames ?? [];
  const minima = record.minima ?? [];
  if (frames.length === 0 || minima.length !== frames.length) {
    throw new WidgetError(`the list of frames has ${frames.length} frames and ${minima.length} minima.`);
  }
  const widget = new AccumulatedLoss(root, record);
  await widget.start();
  return widget;
}

class AccumulatedLoss {
  constructor(root, record) {
    this.root = root;
    this.record = record;
    this.frames = 0;
    this.m = Math.min(Number(root.dataset.m ?? 0) || 0, record.frames.length - 1);
    root.toyWidget = this;
  }

  async start() {
    const { frames, inner_lr: innerLr } = this.record;
    const maxM = frames.length - 1;
    // Preload every frame; the first one must load before the widget shows.
    this.images = frames.map((path) => {
      const img = new Image();
      img.decoding = "async";
      img.src = siteUrl(path).href;
      return img;
    });
    const first = this.images[this.m];
    await first.decode().catch(() => {
      throw new WidgetError(`the frame ${new URL(first.src).pathname} could not be loaded.`);
    });
    this.image = htmlElement("img", {
      class: "toy-widget__frame accumulated-loss__frame", src: first.src, alt: "", width: first.naturalWidth,
      height: first.naturalHeight,
    });
    const mSlider = slider({
      label: "Inner steps m", className: "accumulated-loss-m", min: 0, max: maxM, step: 1, value: this.m,
      format: (v) => `m = ${v}`, onInput: (v) => this.show(v),
    });
    this.input = mSlider.input;
    this.readout = htmlElement("p", { class: "toy-widget__readout accumulated-loss__readout", "aria-live": "polite" });
    const ui = htmlElement("div", { class: "toy-widget accumulated-loss" },
      this.image,
      htmlElement("div", { class: "toy-widget__controls" }, mSlider.element),
      this.readout);
    this.root.append(ui);
    this.innerLr = innerLr;
    this.show(this.m);
  }

  show(m) {
    this.m = m;
    const min = this.record.minima[m];
    this.image.src = this.images[m].src;
    this.image.alt = `Loss of task 1 and task 2 over the plane (a, b), and their accumulated loss after ` +
      `m = ${m} inner step${m === 1 ? "" : "s"} at inner learning rate ${this.innerLr}, ` +
      `with its minimum marked at ${point(min.theta)}.`;
    this.readout.textContent = `After m = ${m} inner step${m === 1 ? "" : "s"} (α = ${this.innerLr}): ` +
      `minimum of the accumulated loss at (a, b) = ${point(min.theta)}, where it is ${Number(min.loss).toPrecision(4)}.`;
    this.root.dataset.m = String(m);
    this.root.dataset.state = "ready";
    this.frames += 1;
    this.root.dispatchEvent(new CustomEvent("widget-drawn", { detail: { frames: this.frames } }));
  }
}

function point([a, b]) {
  return `(${a.toFixed(2)}, ${b.toFixed(2)})`;
}
