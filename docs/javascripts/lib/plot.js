// Drawing primitives shared by the widgets: a plot (scales + SVG layers),
// axes, curves, points, and labelled slider / button controls. Colours come
// from CSS classes (see stylesheets/widgets.css), so they follow the light
// and dark palettes without any JavaScript.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an SVG element with attributes, optionally appended to a parent. */
export function svgElement(tag, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** Create an HTML element with attributes and children. */
export function htmlElement(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

/** A linear map from a data interval to a pixel interval, with its inverse. */
export function linearScale([d0, d1], [r0, r1]) {
  const scale = (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
  scale.invert = (p) => d0 + ((p - r0) / (r1 - r0)) * (d1 - d0);
  scale.domain = [d0, d1];
  return scale;
}

/** `count` evenly spaced values from lo to hi inclusive. */
export function linspace(lo, hi, count) {
  return Array.from({ length: count }, (_, i) => lo + ((hi - lo) * i) / (count - 1));
}

/** About six round tick values for an interval (steps of 1, 2 or 5 times a power of ten). */
export function ticks(lo, hi) {
  const raw = (hi - lo) / 6;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

let clipCounter = 0;

/**
 * A plot in an SVG with a fixed viewBox that scales with its container.
 * Returns {svg, x, y, area, layers: {grid, data, overlay}}: draw data into
 * layers.data (clipped to the plot area) and interaction hints into overlay.
 */
export function createPlot(container, {
  width = 640, height = 360, margin = { top: 12, right: 16, bottom: 36, left: 44 },
  xDomain, yDomain, label = "",
} = {}) {
  const svg = svgElement("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "widget-plot", role: "img", "aria-label": label,
  }, container);
  const area = { left: margin.left, top: margin.top, right: width - margin.right, bottom: height - margin.bottom };
  const x = linearScale(xDomain, [area.left, area.right]);
  const y = linearScale(yDomain, [area.bottom, area.top]);
  const clipId = `widget-clip-${++clipCounter}`;
  const defs = svgElement("defs", {}, svg);
  const clip = svgElement("clipPath", { id: clipId }, defs);
  svgElement("rect", { x: area.left, y: area.top, width: area.right - area.left, height: area.bottom - area.top }, clip);
  const grid = svgElement("g", { class: "widget-grid" }, svg);
  const data = svgElement("g", { "clip-path": `url(#${clipId})` }, svg);
  const overlay = svgElement("g", {}, svg);
  return { svg, x, y, area, layers: { grid, data, overlay } };
}

/** Axes with grid lines, tick labels and optional axis titles. */
export function drawAxes(plot, { xLabel = "", yLabel = "" } = {}) {
  const { x, y, area, layers } = plot;
  const g = layers.grid;
  g.replaceChildren();
  for (const t of ticks(...x.domain)) {
    svgElement("line", { class: "widget-gridline", x1: x(t), x2: x(t), y1: area.top, y2: area.bottom }, g);
    svgElement("text", { class: "widget-tick", x: x(t), y: area.bottom + 16, "text-anchor": "middle" }, g).textContent = fmt(t);
  }
  for (const t of ticks(...y.domain)) {
    svgElement("line", { class: "widget-gridline", x1: area.left, x2: area.right, y1: y(t), y2: y(t) }, g);
    svgElement("text", { class: "widget-tick", x: area.left - 6, y: y(t) + 4, "text-anchor": "end" }, g).textContent = fmt(t);
  }
  svgElement("rect", { class: "widget-frame", x: area.left, y: area.top, width: area.right - area.left, height: area.bottom - area.top }, g);
  if (xLabel) svgElement("text", { class: "widget-axis-label", x: area.right, y: area.bottom + 30, "text-anchor": "end" }, g).textContent = xLabel;
  if (yLabel) svgElement("text", { class: "widget-axis-label", x: area.left + 4, y: area.top + 14 }, g).textContent = yLabel;
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** A path element for a curve in the plot's data layer, drawn with `setCurve`. */
export function createCurve(plot, className) {
  return svgElement("path", { class: className, d: "" }, plot.layers.data);
}

/** Draw the polyline through (xs[i], ys[i]) in data coordinates.
 *  Non-finite values (a fine-tuning run that blew up) leave a gap, and values
 *  far outside the plot are pinned just beyond it (the clip path hides them):
 *  an SVG path with NaN or 1e30 in it is invalid. */
export function setCurve(plot, path, xs, ys) {
  const limit = 1e4;                     // pixels; far outside any plot
  let d = "";
  let pen = "M";
  for (let i = 0; i < xs.length; i++) {
    const px = plot.x(xs[i]);
    const py = plot.y(ys[i]);
    if (!Number.isFinite(px) || !Number.isFinite(py)) {
      pen = "M";
      continue;
    }
    const clampedY = Math.max(-limit, Math.min(limit, py));
    d += `${pen}${px.toFixed(2)},${clampedY.toFixed(2)}`;
    pen = "L";
  }
  path.setAttribute("d", d);
}

/** Make `group` hold one circle per point ({x, y} in data coordinates). */
export function setPoints(plot, group, points, { className = "" } = {}) {
  while (group.childElementCount > points.length) group.lastElementChild.remove();
  while (group.childElementCount < points.length) svgElement("circle", { class: className, r: 5 }, group);
  points.forEach((p, i) => {
    const c = group.children[i];
    c.setAttribute("cx", plot.x(p.x).toFixed(2));
    c.setAttribute("cy", plot.y(p.y).toFixed(2));
  });
}

/** Data coordinates of a pointer event on the plot's SVG. */
export function eventToData(plot, event) {
  const matrix = plot.svg.getScreenCTM();
  if (!matrix) return null;
  const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
  return { x: plot.x.invert(p.x), y: plot.y.invert(p.y) };
}

/**
 * A native range input with a label and a live value read-out; keyboard and
 * touch come with the native control. Returns {element, input}.
 */
export function slider({ label, min, max, step, value, format = String, onInput, className = "" }) {
  const input = htmlElement("input", { type: "range", class: className || false, min, max, step, value });
  const output = htmlElement("output", {}, format(Number(value)));
  const element = htmlElement("label", { class: "widget-slider" },
    htmlElement("span", { class: "widget-slider__label" }, label), input, output);
  const update = () => {
    output.textContent = format(Number(input.value));
    input.setAttribute("aria-valuetext", output.textContent);
  };
  update();
  input.addEventListener("input", () => { update(); onInput?.(Number(input.value)); });
  return { element, input };
}

/**
 * A slider over values spread evenly on a log scale from lo to hi
 * (`perDecade` positions per factor of ten, each value rounded to two
 * significant digits so that what the reader sees is what is used),
 * optionally preceded by exactly 0 at its first position: for a strength such
 * as iMAML's λ, whose interesting values span decades and whose 0 means "off".
 * The native input holds integer positions, so keys, touch and Home/End work
 * as on any slider; onInput and format receive the value, not the position.
 * Returns {element, input, value(), positionOf(v), valueAt(position)}.
 */
export function logSlider({
  label, lo, hi, perDecade = 4, zero = false, value, format = String, onInput, className = "",
}) {
  const first = zero ? 1 : 0;
  const last = first + Math.round(Math.log10(hi / lo) * perDecade);
  const valueAt = (position) => {
    if (zero && position <= 0) return 0;
    const p = Math.min(last, Math.max(first, Math.round(position)));
    return Number((lo * 10 ** ((p - first) / perDecade)).toPrecision(2));
  };
  const positionOf = (v) => {
    if (zero && !(v > 0)) return 0;
    const p = Math.round(Math.log10(v / lo) * perDecade) + first;
    return Math.min(last, Math.max(first, Number.isFinite(p) ? p : first));
  };
  const control = slider({
    label, min: 0, max: last, step: 1, value: positionOf(value), className,
    format: (position) => format(valueAt(position)),
    onInput: (position) => onInput?.(valueAt(position)),
  });
  return { ...control, value: () => valueAt(Number(control.input.value)), positionOf, valueAt };
}

/** A focusable button. */
export function button({ label, title = "", onClick, className = "" }) {
  const b = htmlElement("button", { type: "button", class: `widget-button ${className}`.trim(), title: title || false }, label);
  b.addEventListener("click", onClick);
  return b;
}
