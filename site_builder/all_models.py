"""The "every model on your samples" widget's generated block.

    <!-- all-models:widget -->

becomes the widget element (``data-widget="all-models"``) holding its static
figure: every sinusoid model of the manifest adapted to the same five samples
of the example task of the sine-fit figures, drawn after one step and after
ten, with each model's support loss against the step. The figure is computed
by running each model's exported ONNX graph with onnxruntime, so it shows
exactly what the browser widget computes, whatever inner procedure a graph
carries. Output is byte-for-byte deterministic.
"""
from __future__ import annotations

import re

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from . import atomic, manifest
from .errors import BuildFailure
from .figures import (EXAMPLE_AMPLITUDE, EXAMPLE_PHASE, EXAMPLE_SUPPORT_X, INK, SVG_RC, TARGET,
                      svg_bytes)
from .generated import FIGURES_DIR, Staging

MARKER = re.compile(r"^<!--\s*all-models:([A-Za-z0-9_-]+)\s*-->[ \t]*$", re.MULTILINE)
FIGURE = "all-models.svg"
#: The widget's colours (docs/javascripts/widgets/all-models.js), one per algorithm.
COLOURS = {"pretrained": "#999999", "maml": "#0072b2", "fomaml": "#56b4e9", "reptile": "#009e73",
           "imaml": "#e69f00"}
LABELS = {"pretrained": "Pretrained", "maml": "MAML", "fomaml": "First-order MAML",
          "reptile": "Reptile", "imaml": "iMAML"}
SHOWN_STEPS = (1, 10)


def render(text: str, staging: Staging, page: str) -> str:
    def replace(match: re.Match) -> str:
        block = match.group(1)
        if block != "widget":
            raise BuildFailure(f"{page}: unknown block <!-- all-models:{block} -->; allowed: widget")
        return widget_block(staging)

    return MARKER.sub(replace, text)


def sinusoid_entries(staging: Staging) -> list[dict]:
    entries = [e for e in manifest.read(staging.exported)["models"]
               if (e.get("task") or {}).get("family") == "sinusoid"]
    if not entries:
        raise BuildFailure("the all-models widget needs sinusoid models, and the manifest has none")
    return entries


def run_graphs(staging: Staging, entries: list[dict]) -> tuple[np.ndarray, dict[str, dict]]:
    """Each entry's graph on the example task: {name: {"query_y": [S+1, M], "support_loss": [S+1]}}."""
    import onnxruntime as ort

    support_x = np.array(EXAMPLE_SUPPORT_X, dtype=np.float32).reshape(-1, 1)
    support_y = (EXAMPLE_AMPLITUDE * np.sin(support_x + EXAMPLE_PHASE)).astype(np.float32)
    query_x = np.linspace(-5.0, 5.0, 201, dtype=np.float32).reshape(-1, 1)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    out = {}
    for entry in entries:
        path = staging.exported / entry["file"]
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            query_y, support_loss = session.run(["query_y", "support_loss"], {
                "support_x": support_x, "support_y": support_y, "query_x": query_x,
                "inner_lr": np.array(entry["inner_lr"], dtype=np.float32)})
        except Exception as exc:  # onnxruntime raises its own types
            raise BuildFailure(f"the all-models figure could not run {path.name}: "
                               f"{str(exc).splitlines()[0]}") from exc
        out[entry["name"]] = {"query_y": query_y[:, :, 0], "support_loss": support_loss}
    return query_x[:, 0], out


def figure_svg(staging: Staging) -> bytes:
    entries = sinusoid_entries(staging)
    x, runs = run_graphs(staging, entries)
    target = EXAMPLE_AMPLITUDE * np.sin(x + EXAMPLE_PHASE)
    sx = np.array(EXAMPLE_SUPPORT_X)
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(8.4, 3.0))
        axes = fig.subplots(1, len(SHOWN_STEPS) + 1, gridspec_kw={"width_ratios": [3] * len(SHOWN_STEPS) + [2]})
        for ax, steps in zip(axes, SHOWN_STEPS):
            ax.plot(x, target, color=TARGET, linewidth=2, label="task")
            for entry in entries:
                ax.plot(x, runs[entry["name"]]["query_y"][steps], color=_colour(entry), linewidth=1.4,
                        label=_label(entry))
            ax.scatter(sx, EXAMPLE_AMPLITUDE * np.sin(sx + EXAMPLE_PHASE), color=INK, s=18, zorder=3)
            ax.set_xlim(-5, 5)
            ax.set_ylim(-5.5, 5.5)
            ax.set_xlabel("x")
            ax.set_title(f"after {steps} step{'s' if steps != 1 else ''}")
        axes[0].set_ylabel("y")
        loss_ax = axes[-1]
        for entry in entries:
            loss = runs[entry["name"]]["support_loss"]
            loss_ax.semilogy(np.arange(len(loss)), loss, color=_colour(entry), linewidth=1.4,
                             marker="o", markersize=2.5)
        loss_ax.set_xlabel("step")
        loss_ax.set_title("support loss")
        axes[0].legend(loc="lower left", fontsize=6.5, frameon=False, ncols=2)
        fig.tight_layout()
        return svg_bytes(fig)


def widget_block(staging: Staging) -> str:
    data = figure_svg(staging)
    atomic.write_bytes(staging.docs / FIGURES_DIR / FIGURE, data)
    return "\n".join([
        '<div class="widget" data-widget="all-models" data-steps="1" markdown>',
        "",
        f"![Static figure: every sinusoid model fine-tuned on the same five samples of one sine, "
        f"after one step and after ten, with their support losses]({FIGURES_DIR}/{FIGURE})",
        "",
        "</div>",
    ])


def _colour(entry: dict) -> str:
    return COLOURS.get(entry.get("algorithm"), INK)


def _label(entry: dict) -> str:
    return LABELS.get(entry.get("algorithm"), entry["name"])
