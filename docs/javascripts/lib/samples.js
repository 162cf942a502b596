// Taking samples on a plot: a tap or click, or a keyboard cursor.
//
// Shared by the widgets in which the reader places support points on a
// sinusoid plot. A tap (a pointer that goes down and up without moving more
// than a few pixels, so scrolling on a phone takes no sample) or Enter/Space
// on the focused plot calls onTake({x, y}) with the point in data
// coordinates, clamped to the plot's domain; Delete/Backspace calls
// onRemoveLast(). Left/Right move the cursor in x (Shift: four times as far),
// Home/End jump to the ends; when freeY() is true, Up/Down move it in y as
// well, for widgets where the sample's y is the reader's choice too.
import { svgElement } from "./plot.js";

const CURSOR_STEP = 0.25;     // arrow keys move the keyboard cursor by this much (data units)
const TAP_SLOP_PX = 10;       // a pointer that moves further than this is a scroll/drag, not a tap

/**
 * Bind sample taking to `plot` (from createPlot). Returns {cursor, refresh()}:
 * cursor is the keyboard cursor's {x, y}; refresh() redraws it (call it after
 * the widget redraws, or when freeY() changes).
 */
export function bindSampleInput(plot, { onTake, onRemoveLast, freeY = () => false, className = "sine-fit-cursor" }) {
  const svg = plot.svg;
  const [x0, x1] = plot.x.domain;
  const [y0, y1] = plot.y.domain;
  const clampX = (v) => Math.min(x1, Math.max(x0, v));
  const clampY = (v) => Math.min(y1, Math.max(y0, v));
  const cursor = { x: clampX(0), y: clampY(0) };
  let usingKeys = false;              // show the keyboard cursor only to keyboard users

  const line = svgElement("line", { class: className, y1: plot.area.top, y2: plot.area.bottom }, plot.layers.overlay);
  const dot = svgElement("circle", { class: className, r: 6, fill: "none" }, plot.layers.overlay);

  function refresh() {
    // The cursor is for keyboard use; a mouse or touch user has the pointer.
    const show = document.activeElement === svg && (usingKeys || svg.matches(":focus-visible"));
    line.style.display = show ? "" : "none";
    dot.style.display = show && freeY() ? "" : "none";
    const px = plot.x(cursor.x).toFixed(2);
    line.setAttribute("x1", px);
    line.setAttribute("x2", px);
    dot.setAttribute("cx", px);
    dot.setAttribute("cy", plot.y(cursor.y).toFixed(2));
  }

  let down = null;
  svg.addEventListener("pointerdown", (event) => {
    usingKeys = false;
    if (event.button !== 0) return;
    down = { id: event.pointerId, x: event.clientX, y: event.clientY };
  });
  svg.addEventListener("pointercancel", () => { down = null; });
  svg.addEventListener("pointerup", (event) => {
    if (!down || down.id !== event.pointerId) return;
    const moved = Math.hypot(event.clientX - down.x, event.clientY - down.y);
    down = null;
    if (moved > TAP_SLOP_PX) return;
    const matrix = svg.getScreenCTM();
    if (!matrix) return;
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    // A tap on the margins (tick labels, axis titles) is outside the axes: no sample.
    const { left, right, top, bottom } = plot.area;
    if (!(p.x >= left && p.x <= right && p.y >= top && p.y <= bottom)) return;
    cursor.x = clampX(plot.x.invert(p.x));
    cursor.y = clampY(plot.y.invert(p.y));
    onTake({ x: cursor.x, y: cursor.y });
  });

  svg.addEventListener("keydown", (event) => {
    const big = event.shiftKey ? 4 : 1;
    const free = freeY();
    switch (event.key) {
      case "ArrowLeft": cursor.x = clampX(cursor.x - CURSOR_STEP * big); break;
      case "ArrowRight": cursor.x = clampX(cursor.x + CURSOR_STEP * big); break;
      case "ArrowUp": if (!free) return; cursor.y = clampY(cursor.y + CURSOR_STEP * big); break;
      case "ArrowDown": if (!free) return; cursor.y = clampY(cursor.y - CURSOR_STEP * big); break;
      case "Home": cursor.x = x0; break;
      case "End": cursor.x = x1; break;
      case "Enter": case " ": onTake({ x: cursor.x, y: cursor.y }); break;
      case "Delete": case "Backspace": onRemoveLast(); break;
      default: return;
    }
    event.preventDefault();
    usingKeys = true;
    refresh();
  });
  svg.addEventListener("focus", refresh);
  svg.addEventListener("blur", refresh);
  svg.setAttribute("tabindex", "0");
  svg.setAttribute("role", "application");
  refresh();
  return { cursor, refresh };
}
