// Filled contours of a grid of values, drawn into a plot (lib/plot.js) with
// d3-contour's marching squares.
//
//   const contours = await createContours(plot, { thresholds: "quantile", levels: 12 });
//   contours.draw({ values, nx, ny, x: [x0, x1], y: [y0, y1] });
//
// values (Float32Array or array, length nx·ny) holds the value at
// (x0 + i·(x1 − x0)/(nx − 1), y0 + j·(y1 − y0)/(ny − 1)) at index j·nx + i:
// rows of constant y, x varying fastest (what lib/toy.js's gridPoints feeds a
// graph). Options:
//   thresholds  "quantile" (default: levels at evenly spaced quantiles of the
//               finite values, robust to a few huge ones), "log" (dense near
//               the minimum, for a loss valley), "linear", or an array.
//   levels      how many contour levels (default 12).
//   className   CSS class of the group (default "contours"; bands get
//               "contours__band"), inserted at the bottom of plot.layers.data.
// Non-finite values never reach the SVG: they are left out of the thresholds
// and drawn as the highest (NaN, +∞) or lowest (−∞) band. A base rectangle
// (level 0, class "contours__band contours__base") fills the extent under the
// bands; band k of n (the region above its threshold) has level (k + 1)/n in
// the CSS variable --level, so the colour ramp lives in widgets.css and
// follows the light and dark palettes.
// contours.thresholds is the list last drawn.
import { loadD3 } from "./d3.js";
import { svgElement } from "./plot.js";

/** Thresholds for the finite values of `values` (pure; see the options above). */
export function chooseThresholds(values, { thresholds = "quantile", levels = 12 } = {}) {
  if (Array.isArray(thresholds)) return thresholds.filter(Number.isFinite).sort((a, b) => a - b);
  const finite = Float64Array.from(Array.prototype.filter.call(values, Number.isFinite)).sort();
  if (finite.length === 0) return [];
  const lo = finite[0];
  const hi = finite[finite.length - 1];
  const span = hi - lo;
  if (!(span > 1e-12 * Math.max(1, Math.abs(hi)))) return [];       // flat: nothing to draw
  const out = [];
  for (let k = 1; k <= levels; k++) {
    const f = k / (levels + 1);
    let t;
    if (thresholds === "log") t = lo + span * 10 ** (-3 * (1 - f));   // from 1/1000 of the span up
    else if (thresholds === "linear") t = lo + span * f;
    else t = quantileSorted(finite, f);
    // Keep levels strictly increasing (quantiles of a plateau repeat).
    if (t > lo && t < hi && (out.length === 0 || t - out[out.length - 1] > 1e-9 * span)) out.push(t);
  }
  return out;
}

function quantileSorted(sorted, p) {
  const i = (sorted.length - 1) * p;
  const i0 = Math.floor(i);
  const i1 = Math.min(sorted.length - 1, i0 + 1);
  return sorted[i0] + (sorted[i1] - sorted[i0]) * (i - i0);
}

/** A contour layer in `plot`; resolves once d3 is loaded. See the top of this file. */
export async function createContours(plot, { thresholds = "quantile", levels = 12, className = "contours" } = {}) {
  const d3 = await loadD3();
  const group = svgElement("g", { class: className, "aria-hidden": "true" });
  plot.layers.data.prepend(group);
  const layer = {
    group,
    thresholds: [],
    draw({ values, nx, ny, x: [x0, x1], y: [y0, y1] }) {
      if (values.length !== nx * ny || nx < 2 || ny < 2) {
        throw new Error(`contour grid of ${values.length} values is not ${nx} × ${ny}`);
      }
      const levelsUsed = chooseThresholds(values, { thresholds, levels });
      layer.thresholds = levelsUsed;
      group.replaceChildren();
      group.dataset.levels = String(levelsUsed.length);
      const [px0, px1] = [plot.x(x0), plot.x(x1)].sort((p, q) => p - q);
      const [py0, py1] = [plot.y(y0), plot.y(y1)].sort((p, q) => p - q);
      const base = svgElement("rect", {
        class: `${className}__band ${className}__base`,
        x: px0.toFixed(1), y: py0.toFixed(1), width: (px1 - px0).toFixed(1), height: (py1 - py0).toFixed(1),
      }, group);
      base.style.setProperty("--level", "0");
      if (levelsUsed.length === 0) return;
      const top = levelsUsed[levelsUsed.length - 1];
      const bottom = levelsUsed[0];
      const clean = Float64Array.from(values, (v) => (Number.isNaN(v) || v === Infinity ? top + 1
        : v === -Infinity ? bottom - 1 : v));
      // d3-contour puts sample i at u = i + 0.5 in [0, nx]; map it back to data.
      const sx = (u) => plot.x(x0 + (Math.min(Math.max(u, 0.5), nx - 0.5) - 0.5) * (x1 - x0) / (nx - 1));
      const sy = (v) => plot.y(y0 + (Math.min(Math.max(v, 0.5), ny - 0.5) - 0.5) * (y1 - y0) / (ny - 1));
      const bands = d3.contours().size([nx, ny]).thresholds(levelsUsed)(clean);
      bands.forEach((band, k) => {
        const d = multiPolygonPath(band.coordinates, sx, sy);
        if (!d) return;
        const path = svgElement("path", { class: `${className}__band`, d }, group);
        path.style.setProperty("--level", ((k + 1) / levelsUsed.length).toFixed(3));
        path.dataset.value = String(band.value);
      });
    },
  };
  return layer;
}

function multiPolygonPath(polygons, sx, sy) {
  let d = "";
  for (const polygon of polygons) {
    for (const ring of polygon) {
      ring.forEach(([u, v], i) => {
        d += `${i ? "L" : "M"}${sx(u).toFixed(1)},${sy(v).toFixed(1)}`;
      });
      d += "Z";
    }
  }
  return d;
}
