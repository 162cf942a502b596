"""The Results page's glyph section (namespace ``glyphs``, issue 13).

    <!-- glyphs:results -->   table and figure: 5-way and 20-way 1-shot accuracy
                              (±95% CI) on the held-out alphabets of MAML's and
                              the pretrained conv net, after 0…S steps, beside
                              the MAML paper's Omniglot figures

Read from the conv models' manifest entries and results files
(site_builder/conv_stage.py).
"""
from __future__ import annotations

import json
import re

import matplotlib
from matplotlib.figure import Figure

from . import atomic, manifest
from .errors import BuildFailure
from .figures import INK, SVG_RC, svg_bytes
from .generated import FIGURES_DIR, Staging

FIGURE = f"{FIGURES_DIR}/glyphs-accuracy.svg"
#: Finn et al. (2017), Table 1: MAML on Omniglot, 1-shot, ±95% CI (percent).
PUBLISHED = {5: (98.7, 0.4), 20: (95.8, 0.3)}
COLOURS = {"maml": "#1e88e5", "pretrained": "#8e24aa"}
LABELS = {"maml": "MAML (ours)", "pretrained": "pretrained, fine-tuned (ours)"}
WAYS = (5, 20)
MARKER = re.compile(r"^<!--\s*glyphs:([A-Za-z0-9_-]+)\s*-->[ \t]*$", re.MULTILINE)


def _runs(staging: Staging) -> list[dict]:
    from .conv_stage import FAMILY

    runs = []
    for entry in manifest.read(staging.exported)["models"]:
        if not isinstance(entry, dict) or (entry.get("task") or {}).get("family") != FAMILY:
            continue
        try:
            results = json.loads((staging.exported / entry["results"]["file"]).read_text("utf-8"))
        except (OSError, KeyError, ValueError) as exc:
            raise BuildFailure(f"{entry.get('name')}: its results file cannot be read ({exc}); "
                               "run `maml-site build`") from None
        runs.append({"entry": entry, "results": results})
    return runs


def _percent(mean: float, ci: float) -> str:
    return f"{100 * mean:.1f} ± {100 * ci:.1f}"


def table(runs: list[dict]) -> str:
    steps = max(r["entry"]["steps"] for r in runs)
    head = "| model | way | " + " | ".join(f"{s} step{'s' if s != 1 else ''}" for s in range(steps + 1)) + " |"
    lines = [head, "|---|---|" + "---:|" * (steps + 1)]
    for way in WAYS:
        for run in runs:
            e = run["results"]["evaluation"][str(way)]
            cells = [_percent(m, c) for m, c in zip(e["accuracy"], e["ci95"])]
            cells += ["–"] * (steps + 1 - len(cells))
            lines.append(f"| {LABELS.get(run['entry']['algorithm'], run['entry']['name'])} | {way}-way | "
                         + " | ".join(cells) + " |")
        mean, ci = PUBLISHED[way]
        lines.append(f"| MAML on Omniglot, published [@finn2017] | {way}-way | "
                     + " | ".join(["–"] * steps) + f" | {mean} ± {ci} |")
    tasks = runs[0]["results"]["evaluation"]["5"]["tasks"]
    rates = ", ".join(f"{LABELS.get(r['entry']['algorithm'], r['entry']['name'])} {r['entry']['inner_lr']:g}"
                      for r in runs)
    lines += ["", f"*Accuracy in % (± the 95% confidence interval, 1.96·σ/√n over {tasks:,} rounds "
                  f"per size) on the held-out alphabets. Adaptation rates: {rates}. The published "
                  f"row is on Omniglot after the paper's own number of steps, shown in the last "
                  f"column.*"]
    return "\n".join(lines)


def figure_svg(runs: list[dict]) -> bytes:
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(7.2, 2.8))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, way in zip(axes, WAYS):
            for run in runs:
                e = run["results"]["evaluation"][str(way)]
                algorithm = run["entry"]["algorithm"]
                x = list(range(len(e["accuracy"])))
                mean = [100 * v for v in e["accuracy"]]
                ci = [100 * v for v in e["ci95"]]
                colour = COLOURS.get(algorithm, INK)
                ax.plot(x, mean, marker="o", markersize=3, color=colour,
                        label=LABELS.get(algorithm, run["entry"]["name"]))
                ax.fill_between(x, [m - c for m, c in zip(mean, ci)], [m + c for m, c in zip(mean, ci)],
                                color=colour, alpha=0.2, linewidth=0)
            published = PUBLISHED[way][0]
            ax.axhline(published, color=INK, linestyle="--", linewidth=1,
                       label="MAML on Omniglot, published")
            ax.axhline(100 / way, color=INK, linestyle=":", linewidth=1, label="chance")
            ax.set_title(f"{way}-way 1-shot, held-out alphabets")
            ax.set_xlabel("adaptation steps")
            ax.set_ylim(0, 100)
            ax.set_xticks(x)
        axes[0].set_ylabel("accuracy (%)")
        axes[0].legend(loc="lower right", fontsize=6.5, frameon=False)
        fig.tight_layout()
        return svg_bytes(fig)


def block_results(staging: Staging) -> str:
    runs = _runs(staging)
    if not runs:
        return ("!!! warning \"No conv nets yet\"\n"
                "    The manifest lists no conv nets: run `maml-site build` to train them.\n")
    atomic.write_bytes(staging.docs / FIGURE, figure_svg(runs))
    return (table(runs) + "\n\n"
            f"![5-way and 20-way 1-shot accuracy of the MAML and pretrained conv nets on the "
            f"held-out alphabets after 0 to {max(r['entry']['steps'] for r in runs)} adaptation "
            f"steps, with 95% confidence bands, and the published MAML Omniglot figures]"
            f"({FIGURE})\n")


BLOCKS = {"results": block_results}


def render(text: str, staging: Staging, page: str) -> str:
    """The generated-blocks entry point (site_builder.generated)."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise BuildFailure(f"{page}: unknown glyphs block {name}; allowed: {', '.join(BLOCKS)}")
        return BLOCKS[name](staging)
    return MARKER.sub(replace, text)
