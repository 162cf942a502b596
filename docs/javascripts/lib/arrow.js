// An arrow between two points of a plot (lib/plot.js), in data coordinates,
// with an arrowhead (an SVG marker of its own, so CSS can colour each arrow).
//
//   const step = createArrow(plot, { className: "toy-arrow toy-arrow--task0" });
//   step.set([0.5, 0.5], [0.42, 0.31]);   // from → to
//   step.length                            // length in data units (0 if hidden)
//
// The arrow is hidden (display: none, its coordinates left as they were) when
// either end is not finite or it is shorter than half a pixel, so no NaN or
// Infinity ever reaches an SVG attribute. Ends far outside the plot are pinned
// to ±10⁴ px (the clip path hides the excess). data-length on the <line> holds
// the length in data units for tests and tools. Options: className (the
// line's classes; the head gets each of them suffixed "__head"), layer (default
// plot.layers.data, clipped to the plot area), label (an SVG <title>).
import { svgElement } from "./plot.js";

let arrowCounter = 0;
const LIMIT = 1e4;

export function createArrow(plot, { className = "toy-arrow", layer = plot.layers.data, label = "" } = {}) {
  const defs = plot.svg.querySelector("defs") ?? svgElement("defs", {}, plot.svg);
  const id = `widget-arrowhead-${++arrowCounter}`;
  const marker = svgElement("marker", {
    id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 10, markerHeight: 10,
    markerUnits: "userSpaceOnUse", orient: "auto",
  }, defs);
  const headClass = className.split(/\s+/).filter(Boolean).map((c) => `${c}__head`).join(" ");
  svgElement("path", { class: headClass, d: "M0,1L10,5L0,9Z" }, marker);
  const line = svgElement("line", { class: className, "marker-end": `url(#${id})`, x1: 0, y1: 0, x2: 0, y2: 0 }, layer);
  if (label) svgElement("title", {}, line).textContent = label;
  line.style.display = "none";
  line.dataset.length = "0";

  const arrow = {
    element: line,
    length: 0,
    set(from, to) {
      const ends = [plot.x(from[0]), plot.y(from[1]), plot.x(to[0]), plot.y(to[1])];
      const dataLength = Math.hypot(to[0] - from[0], to[1] - from[1]);
      const pixels = Math.hypot(ends[2] - ends[0], ends[3] - ends[1]);
      if (!ends.every(Number.isFinite) || !Number.isFinite(dataLength) || !(pixels >= 0.5)) {
        line.style.display = "none";
        arrow.length = Number.isFinite(dataLength) ? dataLength : 0;
        line.dataset.length = String(arrow.length);
        return;
      }
      const [x1, y1, x2, y2] = ends.map((v) => Math.max(-LIMIT, Math.min(LIMIT, v)).toFixed(2));
      line.setAttribute("x1", x1);
      line.setAttribute("y1", y1);
      line.setAttribute("x2", x2);
      line.setAttribute("y2", y2);
      line.style.display = "";
      arrow.length = dataLength;
      line.dataset.length = String(dataLength);
    },
    hide() {
      line.style.display = "none";
    },
  };
  return arrow;
}
