"""The Introduction page's generated blocks (namespace ``intro``).

    <!-- intro:quiz -->             the glyph alphabets (site_builder.glyphs) for the
                                    few-shot quiz, and the static figure of one round
    <!-- intro:map -->              where few-shot learning sits: the regions as JSON
                                    for the widget, and the same drawing as SVG
    <!-- intro:accuracy -->         published Omniglot 1-shot accuracies as JSON for
                                    the chart widget, and the chart as SVG
    <!-- intro:accuracy-table -->   the same numbers as a table, each row cited

Each block writes its files into the staged docs and returns the Markdown of
its static figure (or table); the widgets read the JSON. The published numbers
and the diagram's regions live here, once: the widget, the fallback figure and
the table are all drawn from them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import matplotlib
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from . import atomic, glyphs
from .bibliography import reference
from .errors import BuildFailure
from .figures import INK, SVG_RC, svg_bytes
from .generated import FIGURES_DIR, Staging

#: JSON the widgets read (relative to the staged docs).
DATA_DIR = "assets/intro"
MAP_JSON = f"{DATA_DIR}/few-shot-map.json"
ACCURACY_JSON = f"{DATA_DIR}/omniglot-accuracy.json"
ROUND_FIGURE = f"{FIGURES_DIR}/few-shot-round.svg"
MAP_FIGURE = f"{FIGURES_DIR}/few-shot-map.svg"
ACCURACY_FIGURE = f"{FIGURES_DIR}/omniglot-accuracy.svg"

WAY_COLOURS = {5: "#1e88e5", 20: "#e65100"}


# ------------------------------------------------- published accuracies

@dataclass(frozen=True)
class Accuracy:
    """One method's Omniglot 1-shot classification accuracy (%), as its paper reports it."""
    method: str
    source: str              # key in site_builder/references.bib
    way5: float | None       # 5-way 1-shot; None where the paper does not report it
    way20: float | None      # 20-way 1-shot


#: In order of publication (the chart's x axis). Memory-augmented networks
#: (santoro2016) are left out: that paper scores each instance of a class as
#: it is shown in a sequence, which is not the N-way 1-shot protocol here.
OMNIGLOT_ONE_SHOT: tuple[Accuracy, ...] = (
    Accuracy("Siamese networks", "koch2015", None, 92.0),
    Accuracy("Bayesian program learning", "lake2015", None, 96.7),
    Accuracy("People", "lake2015", None, 95.5),
    Accuracy("Matching networks", "vinyals2016", 98.1, 93.8),
    Accuracy("MAML", "finn2017", 98.7, 95.8),
    Accuracy("First-order MAML", "finn2017", 98.3, 89.4),
    Accuracy("Prototypical networks", "snell2017", 98.8, 96.0),
    Accuracy("Meta-SGD", "li2017", 99.53, 95.93),
    Accuracy("Reptile", "nichol2018", 97.68, 89.43),
    Accuracy("SNAIL", "mishra2018", 99.07, 97.64),
    Accuracy("Relation networks", "sung2018", 99.6, 97.6),
)


def _year(key: str) -> int:
    return int(re.search(r"\d{4}", reference(key).label).group())


def accuracy_data() -> dict:
    """What the chart widget reads: one row per method, in publication order."""
    rows = []
    for row in sorted(OMNIGLOT_ONE_SHOT, key=lambda r: _year(r.source)):   # stable: table order within a year
        rows.append({"method": row.method, "label": f"{_short(row.method)} ({_year(row.source)})",
                     "source": row.source, "reference": reference(row.source).label,
                     "year": _year(row.source), "way5": row.way5, "way20": row.way20})
    return {"format": 1, "task": "Omniglot, 1-shot, accuracy in %", "rows": rows}


def _short(method: str) -> str:
    return {"Bayesian program learning": "BPL", "First-order MAML": "FOMAML",
            "Prototypical networks": "Prototypical", "Matching networks": "Matching",
            "Relation networks": "Relation", "Siamese networks": "Siamese"}.get(method, method)


def accuracy_svg(data: dict) -> bytes:
    rows = data["rows"]
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(6.4, 3.4))
        ax = fig.add_subplot()
        xs = range(len(rows))
        for way, marker in ((5, "o"), (20, "D")):
            points = [(x, r[f"way{way}"]) for x, r in zip(xs, rows) if r[f"way{way}"] is not None]
            ax.plot([p[0] for p in points], [p[1] for p in points], linestyle="none", marker=marker,
                    markersize=6, color=WAY_COLOURS[way], label=f"{way}-way")
        ax.set_xticks(list(xs), [r["label"] for r in rows],
                      rotation=35, ha="right", fontsize=7.5)
        ax.set_ylim(85, 100.5)
        ax.set_ylabel("accuracy (%)")
        ax.grid(axis="y", color=INK, alpha=0.25, linewidth=0.6)
        ax.set_title("Omniglot 1-shot accuracy, as published")
        ax.legend(loc="lower right", fontsize=7.5, frameon=False)
        fig.tight_layout()
        return svg_bytes(fig)


def block_accuracy(staging: Staging) -> str:
    data = accuracy_data()
    atomic.write_json(staging.docs / ACCURACY_JSON, data)
    atomic.write_bytes(staging.docs / ACCURACY_FIGURE, accuracy_svg(data))
    return (f"![Published Omniglot 1-shot accuracies by method and year of publication, "
            f"5-way and 20-way]({ACCURACY_FIGURE})")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:g} %"


def block_accuracy_table(staging: Staging) -> str:
    lines = ["| method | year | 5-way 1-shot | 20-way 1-shot | source |",
             "|---|---|---|---|---|"]
    for row in accuracy_data()["rows"]:
        lines.append(f"| {row['method']} | {row['year']} | {_percent(row['way5'])} | "
                     f"{_percent(row['way20'])} | [@{row['source']}] |")
    return "\n".join(lines)


# ---------------------------------------------- where few-shot learning sits

@dataclass(frozen=True)
class Region:
    id: str
    label: tuple[str, ...]           # lines of the label
    box: tuple[int, int, int, int]   # x, y, width, height in the 640 x 440 drawing
    text: str                        # the one-line explanation
    examples: tuple[str, ...] = ()   # lines of small print inside the box


MAP_SIZE = (640, 440)
#: Outer regions first: a region is drawn over the ones that contain it.
MAP_REGIONS: tuple[Region, ...] = (
    Region("machine-learning", ("Machine learning",), (6, 6, 628, 428),
           "Programs that get better at a task from data; usually one task, learned from many examples."),
    Region("one-task", ("One task,", "many examples"), (20, 40, 176, 168),
           "The classic setting: thousands of labelled drawings of a fixed set of characters, "
           "and a model trained for exactly those.",
           ("a classifier for", "the classes it", "was trained on")),
    Region("transfer", ("Transfer learning",), (20, 222, 176, 198),
           "Train on a large data set, then fine-tune on the new task; the pretrained "
           "baseline of How MAML works.",
           ("pretrain, then", "fine-tune")),
    Region("meta-learning", ("Meta-learning",), (210, 40, 410, 380),
           "Learning to learn: training on many tasks so that a new task is learned faster; "
           "what is learned is a way of learning."),
    Region("few-shot", ("Few-shot learning",), (224, 74, 382, 332),
           "N-way K-shot problems: N new classes with K examples each, then a new example to "
           "label. The quiz above is 5- or 20-way 1-shot."),
    Region("metric", ("Metric-", "based"), (236, 130, 114, 262),
           "Learn a space in which an example lies close to the examples of its own class, "
           "and classify by distance.",
           ("Siamese nets", "Matching nets", "Prototypical", "Relation nets")),
    Region("model", ("Model-", "based"), (358, 130, 114, 262),
           "A network that reads the support set and answers directly, with a memory or "
           "attention over what it has seen.",
           ("Memory-", "augmented nets", "SNAIL")),
    Region("optimisation", ("Optimisation-", "based"), (480, 130, 114, 262),
           "Learn how gradient descent should start or step, so that a few steps on the "
           "support set give a good model.",
           ("Meta-LSTM", "Meta-SGD")),
    Region("maml", ("MAML and", "its variants"), (488, 262, 98, 122),
           "This series: MAML, first-order MAML, Reptile and iMAML learn an initialisation "
           "that a few gradient steps adapt to any task of the family.",
           ("MAML · FOMAML", "Reptile · iMAML")),
)


def map_data() -> dict:
    width, height = MAP_SIZE
    return {"format": 1, "width": width, "height": height,
            "regions": [{"id": r.id, "label": list(r.label), "box": list(r.box), "text": r.text,
                         "examples": list(r.examples)} for r in MAP_REGIONS]}


def map_svg() -> bytes:
    width, height = MAP_SIZE
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(width / 100, height / 100))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.axis("off")
        for region in MAP_REGIONS:
            x, y, w, h = region.box
            highlight = region.id in ("few-shot", "maml")
            ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=8",
                                        facecolor=to_rgba(WAY_COLOURS[5], 0.12 if highlight else 0.04),
                                        edgecolor=INK, linewidth=1.0))
            for i, line in enumerate(region.label):
                ax.text(x + 8, y + 16 + 14 * i, line, fontsize=9.5, fontweight="bold", va="baseline")
            top = y + 20 + 14 * len(region.label)
            for i, line in enumerate(region.examples):
                ax.text(x + 8, top + 12 * i + 6, line, fontsize=7.5, va="baseline")
        return svg_bytes(fig)


def block_map(staging: Staging) -> str:
    atomic.write_json(staging.docs / MAP_JSON, map_data())
    atomic.write_bytes(staging.docs / MAP_FIGURE, map_svg())
    return (f"![Nested regions: machine learning contains meta-learning, which contains few-shot "
            f"learning, whose approaches are metric-, model- and optimisation-based; MAML and its "
            f"variants are optimisation-based]({MAP_FIGURE})")


# ------------------------------------------------------------- the quiz

#: The round the static figure shows: alphabet, characters, support and query hands.
EXAMPLE_ROUND = {"alphabet": 1, "characters": (3, 7, 11, 14, 18), "support_hand": 0,
                 "query_hand": 3, "answer": 2}


def round_svg(ink) -> bytes:
    """One 5-way 1-shot round of the quiz: the support set and a query."""
    r = EXAMPLE_ROUND
    support = [ink[r["alphabet"], c, r["support_hand"]] for c in r["characters"]]
    query = ink[r["alphabet"], r["characters"][r["answer"]], r["query_hand"]]
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(6.4, 1.9))
        grid = fig.add_gridspec(1, 7, width_ratios=[1, 1, 1, 1, 1, 0.5, 1.25], wspace=0.15)
        for i, image in enumerate(support):
            ax = fig.add_subplot(grid[0, i])
            _tile(ax, image, f"{i + 1}")
        ax = fig.add_subplot(grid[0, 6])
        _tile(ax, query, "?")
        fig.text(0.07, 0.9, "Support set: one drawing of each of five characters (one hand)",
                 fontsize=8.5)
        fig.text(0.80, 0.9, "Query (another hand)", fontsize=8.5, ha="center")
        fig.text(0.5, 0.04, f"Which character is the query? (Here: number {r['answer'] + 1}.)",
                 fontsize=8, ha="center")
        fig.subplots_adjust(left=0.02, right=0.98, top=0.8, bottom=0.17)
        return svg_bytes(fig)


def _tile(ax, image, caption: str) -> None:
    ax.imshow(255 - image, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(INK)
    ax.set_xlabel(caption, fontsize=8.5, labelpad=2)


def block_quiz(staging: Staging) -> str:
    index = glyphs.stage_glyphs(staging.docs)
    count = len(index["alphabets"])
    atomic.write_bytes(staging.docs / ROUND_FIGURE, round_svg(glyphs.site_glyphs()))
    return (f"![A 5-way 1-shot round: five generated characters drawn by one hand, and a "
            f"drawing of one of them by another hand]({ROUND_FIGURE})\n\n"
            f"*{count} generated alphabets of {index['characters']} characters, each drawn by "
            f"{index['hands']} hands.*")


# ------------------------------------------------------------ the page

BLOCKS = {"quiz": block_quiz, "map": block_map, "accuracy": block_accuracy,
          "accuracy-table": block_accuracy_table}
MARKER = re.compile(r"^<!--\s*intro:([A-Za-z0-9_-]+)\s*-->[ \t]*$", re.MULTILINE)


def render(text: str, staging: Staging, page: str) -> str:
    """The generated-blocks entry point (site_builder.generated)."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise BuildFailure(f"{page}: unknown intro block {name}; allowed: {', '.join(BLOCKS)}")
        return BLOCKS[name](staging)
    return MARKER.sub(replace, text)
