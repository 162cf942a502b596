// Few-shot accuracy over the years: published Omniglot 1-shot accuracies,
// 5-way and 20-way, with the reader's own quiz score beside them.
//
//   <div class="widget" data-widget="omniglot-accuracy" markdown>
//     …the chart without the reader, as a static SVG rendered by the build…
//   </div>
//
// The numbers come from the build (assets/intro/omniglot-accuracy.json,
// written from site_builder/intro.py's OMNIGLOT_ONE_SHOT, each row with its
// bibliography key); the page's table cites the same rows. The reader's score
// is read from the quiz's storage (lib/quiz-score.js) and redrawn whenever it
// changes. One column per method in order of publication, then "You".
//
// For tests: data-state ("loading" | "ready" | "error") and data-you5 /
// data-you20 (the reader's accuracy in %, one decimal, or "" before any answer).
import { createPlot, htmlElement, svgElement, ticks } from "../lib/plot.js";
import { loadJson } from "../lib/data.js";
import { accuracy, onScoresChange, readScores, WAYS } from "../lib/quiz-score.js";
import { WidgetError } from "../lib/site.js";

const WIDTH = 640;
const HEIGHT = 380;
const MARGIN = { top: 14, right: 16, bottom: 92, left: 56 };

export async function mount(root) {
  root.dataset.state = "loading";
  const data = await loadJson("assets/intro/omniglot-accuracy.json", "the table of published accuracies", { format: 1 });
  if (!Array.isArray(data.rows) || data.rows.length === 0) {
    throw new WidgetError("the table of published accuracies is empty.");
  }
  const chart = new AccuracyChart(root, data.rows);
  root.dataset.state = "ready";
  return chart;
}

/** A marker shape per size: a circle for 5-way, a diamond for 20-way. */
function marker(group, way, x, y, className) {
  if (way === 5) return svgElement("circle", { cx: x, cy: y, r: 5, class: className }, group);
  const r = 6;
  return svgElement("path", { d: `M${x},${y - r}L${x + r},${y}L${x},${y + r}L${x - r},${y}Z`, class: className }, group);
}

function percent(value) {
  return `${Number(value.toFixed(2))}%`;
}

class AccuracyChart {
  constructor(root, rows) {
    this.root = root;
    this.rows = rows;
    root.omniglotAccuracy = this;
    this.frame = htmlElement("div", { class: "omniglot-accuracy" });
    this.readout = htmlElement("p", { class: "omniglot-accuracy__readout", "aria-live": "polite" });
    const legend = htmlElement("p", { class: "omniglot-accuracy__legend" },
      htmlElement("span", { class: "omniglot-accuracy__key omniglot-accuracy__key--5" }, "5-way"),
      htmlElement("span", { class: "omniglot-accuracy__key omniglot-accuracy__key--20" }, "20-way"),
      htmlElement("span", { class: "omniglot-accuracy__key omniglot-accuracy__key--you" }, "you, in the quiz above"));
    root.append(this.frame, legend, this.readout);
    this.draw(readScores());
    onScoresChange((scores) => this.draw(scores));
  }

  draw(scores) {
    const you = Object.fromEntries(WAYS.map((way) => [way, accuracy(scores[way])]));
    for (const way of WAYS) this.root.dataset[`you${way}`] = you[way] === null ? "" : you[way].toFixed(1);
    // The axis starts at 85% unless the reader's score is lower.
    const lowest = Math.min(85, ...WAYS.map((w) => you[w] ?? 100));
    const yLo = Math.max(0, Math.floor((lowest - 2) / 5) * 5);
    const columns = this.rows.length + 1;

    this.frame.replaceChildren();
    const plot = createPlot(this.frame, {
      width: WIDTH, height: HEIGHT, margin: MARGIN, xDomain: [-0.5, columns - 0.5], yDomain: [yLo, 100.5],
      label: "Published Omniglot 1-shot accuracies by method, in order of publication, and your quiz score",
    });
    plot.svg.classList.add("omniglot-accuracy__plot");
    this.plot = plot;
    const { x, y, area, layers } = plot;
    const grid = layers.grid;
    for (const t of ticks(yLo, 100)) {
      svgElement("line", { class: "widget-gridline", x1: area.left, x2: area.right, y1: y(t), y2: y(t) }, grid);
      svgElement("text", { class: "widget-tick", x: area.left - 6, y: y(t) + 4, "text-anchor": "end" }, grid)
        .textContent = `${t}`;
    }
    svgElement("rect", {
      class: "widget-frame", x: area.left, y: area.top, width: area.right - area.left, height: area.bottom - area.top,
    }, grid);
    const middle = (area.top + area.bottom) / 2;
    svgElement("text", {
      class: "widget-axis-label", x: 14, y: middle, "text-anchor": "middle", transform: `rotate(-90 14 ${middle})`,
    }, grid).textContent = "accuracy (%)";

    this.rows.forEach((row, i) => this.drawColumn(plot, i, row.label, `${row.method} (${row.reference})`,
      WAYS.map((way) => ({ way, value: row[`way${way}`] })), "omniglot-accuracy__point"));
    this.drawYou(plot, columns - 1, you, scores);
  }

  /** One column: its label under the axis and a marker per size; focusable, with a read-out. */
  drawColumn(plot, i, label, description, values, className) {
    const { x, y, area, layers } = plot;
    const cx = x(i);
    const group = svgElement("g", { class: "omniglot-accuracy__column", tabindex: 0, role: "img" }, layers.overlay);
    const shown = values.filter((v) => v.value !== null && v.value !== undefined);
    const text = `${description}: ${shown.map((v) => `${percent(v.value)} ${v.way}-way`).join(", ") || "no answers yet"}`;
    group.setAttribute("aria-label", text);
    svgElement("rect", {
      class: "omniglot-accuracy__hit", x: cx - (x(1) - x(0)) / 2, y: area.top,
      width: x(1) - x(0), height: area.bottom - area.top,
    }, group);
    for (const v of shown) marker(group, v.way, cx, y(v.value), `${className} ${className}--${v.way}`);
    svgElement("text", {
      class: "omniglot-accuracy__label", x: cx, y: area.bottom + 12,
      transform: `rotate(-40 ${cx} ${area.bottom + 12})`, "text-anchor": "end",
    }, group).textContent = label;
    const show = () => { this.readout.textContent = text; };
    group.addEventListener("pointerenter", show);
    group.addEventListener("focus", show);
    return group;
  }

  drawYou(plot, i, you, scores) {
    const { x, y, area, layers } = plot;
    const values = WAYS.map((way) => ({ way, value: you[way] }));
    const description = `You (${WAYS.map((w) => `${scores[w].right} of ${scores[w].total} at ${w}-way`).join(", ")})`;
    const group = this.drawColumn(plot, i, "You", description, values, "omniglot-accuracy__you");
    group.classList.add("omniglot-accuracy__column--you");
    // A dashed line across the chart at each of the reader's scores.
    for (const { way, value } of values) {
      if (value === null) continue;
      svgElement("line", {
        class: `omniglot-accuracy__you-line omniglot-accuracy__you-line--${way}`,
        x1: area.left, x2: area.right, y1: y(value), y2: y(value),
      }, layers.data);
    }
    if (values.every((v) => v.value === null)) {
      svgElement("text", {
        class: "omniglot-accuracy__hint", x: x(i), y: (area.top + area.bottom) / 2, "text-anchor": "middle",
        transform: `rotate(-90 ${x(i)} ${(area.top + area.bottom) / 2})`,
      }, group).textContent = "play the quiz";
    }
    this.readout.textContent = values.some((v) => v.value !== null)
      ? "Your score: " + values.map(({ way, value }) => (value === null ? `no ${way}-way answers yet`
        : `${percent(value)} at ${way}-way (${scores[way].right} of ${scores[way].total})`)).join(", ") + "."
      : "Your score appears here once you have played a round of the quiz. " +
        "Point at or focus a column for its numbers.";
  }
}
