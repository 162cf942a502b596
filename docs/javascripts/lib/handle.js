// A draggable point on a plot (lib/plot.js): the θ of the toy widgets.
//
//   const theta = createHandle(plot, {
//     value: [0.5, 0.5], label: "θ", onMove: (p, how) => …,   // p = [x, y]
//   });
//   theta.value          // [x, y] now
//   theta.set([x, y])    // move it from code (calls onMove unless {silent: true})
//   theta.element        // the <g> (focusable), theta.live (the aria-live <p>)
//
// Mouse and touch (pointer events): press anywhere on the plot area to put the
// point there and drag it; the plot gets touch-action: none so a finger drags
// instead of scrolling. Keyboard: the point is focusable; arrow keys move it
// by `step` (default 1/50 of the plane), with Shift by 5 steps; Home/End/
// PageUp/PageDown go to the plane's edges. The point stays inside `bounds`
// (default: the plot's domains). Moves are coalesced with requestAnimationFrame:
// the point and onMove(p, how) run at most once per frame (how = "pointer" or
// "key"). The aria-live="polite" region says where the point is after a key
// press and when a drag ends; `announce(p)` formats it (default
// "θ = (0.50, 0.50)"). Pass `live` to share one region among several handles.
import { htmlElement, svgElement } from "./plot.js";

export function createHandle(plot, {
  value, label = "θ", bounds = null, step = null, className = "toy-handle",
  onMove = () => {}, announce = null, live = null, grabAnywhere = true, radius = 7,
  description = "Drag, or use the arrow keys (Shift for bigger steps), to move it.",
} = {}) {
  const [xLo, xHi] = bounds?.[0] ?? plot.x.domain;
  const [yLo, yHi] = bounds?.[1] ?? plot.y.domain;
  const stepX = step ?? (xHi - xLo) / 50;
  const stepY = step ?? (yHi - yLo) / 50;
  const say = announce ?? ((p) => `${label} = (${p[0].toFixed(2)}, ${p[1].toFixed(2)})`);
  const clampPoint = ([x, y]) => [
    Math.min(xHi, Math.max(xLo, Number.isFinite(x) ? x : xLo)),
    Math.min(yHi, Math.max(yLo, Number.isFinite(y) ? y : yLo)),
  ];

  let current = clampPoint(value);
  const element = svgElement("g", {
    class: className, tabindex: "0", role: "application",
    "aria-roledescription": "draggable point", "aria-label": `${label}. ${description}`,
  }, plot.layers.overlay);
  svgElement("circle", { class: `${className}__hit`, r: radius * 2.5 }, element);
  svgElement("circle", { class: `${className}__dot`, r: radius }, element);
  const text = svgElement("text", { class: `${className}__label`, dx: radius + 3, dy: -radius - 2 }, element);
  text.textContent = label;

  const region = live ?? htmlElement("p", { class: "toy-live", "aria-live": "polite" });
  if (!live) plot.svg.after(region);
  plot.svg.classList.add("widget-plot--draggable");

  const place = () => {
    element.setAttribute("transform", `translate(${plot.x(current[0]).toFixed(2)},${plot.y(current[1]).toFixed(2)})`);
  };
  place();

  // rAF coalescing: keep only the newest requested point until the next frame.
  let pending = null;
  let frame = 0;
  const flush = () => {
    frame = 0;
    if (!pending) return;
    const { point, how } = pending;
    pending = null;
    current = point;
    place();
    onMove(current.slice(), how);
  };
  const request = (point, how) => {
    pending = { point: clampPoint(point), how };
    if (!frame) frame = requestAnimationFrame(flush);
  };

  // Pointer: mouse, pen and touch alike.
  let dragging = null;
  const toData = (event) => {
    const matrix = plot.svg.getScreenCTM();
    if (!matrix) return null;
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    return { px: p.x, py: p.y, data: [plot.x.invert(p.x), plot.y.invert(p.y)] };
  };
  const target = grabAnywhere ? plot.svg : element;
  target.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || dragging !== null) return;
    const p = toData(event);
    if (!p) return;
    const { area } = plot;
    const onHandle = event.target instanceof Element && element.contains(event.target);
    if (!onHandle && (p.px < area.left || p.px > area.right || p.py < area.top || p.py > area.bottom)) return;
    event.preventDefault();
    dragging = event.pointerId;
    try { plot.svg.setPointerCapture(event.pointerId); } catch { /* synthetic events have no capture */ }
    element.classList.add("is-dragging");
    element.focus({ preventScroll: true });
    if (!onHandle) request(p.data, "pointer");
  });
  plot.svg.addEventListener("pointermove", (event) => {
    if (event.pointerId !== dragging) return;
    const p = toData(event);
    if (p) request(p.data, "pointer");
  });
  const end = (event) => {
    if (event.pointerId !== dragging) return;
    dragging = null;
    element.classList.remove("is-dragging");
    region.textContent = say(pending?.point ?? current);
  };
  plot.svg.addEventListener("pointerup", end);
  plot.svg.addEventListener("pointercancel", end);

  element.addEventListener("keydown", (event) => {
    const base = pending?.point ?? current;
    const k = event.shiftKey ? 5 : 1;
    let next;
    switch (event.key) {
      case "ArrowLeft": next = [base[0] - k * stepX, base[1]]; break;
      case "ArrowRight": next = [base[0] + k * stepX, base[1]]; break;
      case "ArrowUp": next = [base[0], base[1] + k * stepY]; break;
      case "ArrowDown": next = [base[0], base[1] - k * stepY]; break;
      case "Home": next = [xLo, base[1]]; break;
      case "End": next = [xHi, base[1]]; break;
      case "PageUp": next = [base[0], yHi]; break;
      case "PageDown": next = [base[0], yLo]; break;
      default: return;
    }
    event.preventDefault();
    next = clampPoint(next);
    request(next, "key");
    region.textContent = say(next);
  });

  return {
    element,
    live: region,
    get value() { return current.slice(); },
    set(point, { silent = false } = {}) {
      pending = null;
      current = clampPoint(point);
      place();
      if (!silent) onMove(current.slice(), "code");
    },
    /** Re-position after the plot's scales changed. */
    redraw: place,
  };
}
