// Where few-shot learning sits: nested regions, each explained in one line.
//
//   <div class="widget" data-widget="few-shot-map" markdown>
//     …the same drawing as a static SVG, rendered by the build…
//   </div>
//
// The regions (boxes, labels, explanations) come from the build
// (assets/intro/few-shot-map.json, written from site_builder/intro.py's
// MAP_REGIONS), so the widget and its static figure cannot disagree.
// Pointing at a region, or focusing it with Tab, highlights it and shows its
// explanation below the drawing; the innermost region under the pointer wins.
//
// For tests: data-state ("loading" | "ready" | "error") and data-active (the
// id of the highlighted region, or "").
import { htmlElement, svgElement } from "../lib/plot.js";
import { loadJson } from "../lib/data.js";
import { WidgetError } from "../lib/site.js";

const HINT = "Point at a region, or move through them with Tab, to read what it stands for.";

export async function mount(root) {
  root.dataset.state = "loading";
  const data = await loadJson("assets/intro/few-shot-map.json", "the diagram's description", { format: 1 });
  if (!Array.isArray(data.regions) || data.regions.length === 0) {
    throw new WidgetError("the diagram's description has no regions.");
  }
  const widget = new FewShotMap(root, data);
  root.dataset.state = "ready";
  return widget;
}

class FewShotMap {
  constructor(root, data) {
    this.root = root;
    this.active = null;
    this.hovered = null;
    this.focused = null;
    root.fewShotMap = this;
    const svg = svgElement("svg", {
      viewBox: `0 0 ${data.width} ${data.height}`, class: "few-shot-map",
      role: "group", "aria-label": "Where few-shot learning sits: nested regions",
    });
    this.caption = htmlElement("p", { class: "few-shot-map__caption", "aria-live": "polite" }, HINT);
    this.regions = data.regions.map((region) => this.drawRegion(svg, region));
    svg.addEventListener("pointerleave", () => { this.hovered = null; this.update(); });
    root.append(htmlElement("div", { class: "few-shot-map__frame" }, svg, this.caption));
    this.update();
  }

  drawRegion(svg, region) {
    const [x, y, width, height] = region.box;
    const name = region.label.join(" ").replace(/- /g, "-");
    const group = svgElement("g", {
      class: "few-shot-map__region", tabindex: 0, role: "img", "aria-label": `${name}: ${region.text}`,
    }, svg);
    group.dataset.region = region.id;
    svgElement("rect", { x, y, width, height, rx: 8, class: "few-shot-map__box" }, group);
    region.label.forEach((line, i) => {
      svgElement("text", { x: x + 8, y: y + 18 + 15 * i, class: "few-shot-map__label" }, group).textContent = line;
    });
    const top = y + 24 + 15 * region.label.length;
    region.examples.forEach((line, i) => {
      svgElement("text", { x: x + 8, y: top + 13 * i + 6, class: "few-shot-map__example" }, group).textContent = line;
    });
    const entry = { ...region, name, group };
    group.addEventListener("pointerenter", () => { this.hovered = entry; this.update(); });
    group.addEventListener("pointerleave", () => {
      if (this.hovered === entry) this.hovered = null;
      this.update();
    });
    group.addEventListener("focus", () => { this.focused = entry; this.update(); });
    group.addEventListener("blur", () => {
      if (this.focused === entry) this.focused = null;
      this.update();
    });
    return entry;
  }

  /** The hovered region wins over the focused one; with neither, nothing is lit. */
  update() {
    const active = this.hovered ?? this.focused ?? null;
    this.active = active;
    for (const region of this.regions) region.group.classList.toggle("is-active", region === active);
    this.root.dataset.active = active ? active.id : "";
    this.caption.replaceChildren(...(active
      ? [htmlElement("strong", {}, active.name), `: ${active.text}`]
      : [HINT]));
  }
}
