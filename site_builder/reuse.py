"""The "Use the models" page's generated block: every exported graph's inputs
and outputs, rendered from the manifest (never retyped on the page).

    <!-- reuse:graphs -->

becomes a table of the models in ``exported/manifest.json`` (name, algorithm,
inner_lr, steps, graph file) followed by one table per distinct graph
signature, which names the models that share it. A signature is the entry's
``graph`` field:

    "graph": {"inputs":  [{"name", "type", "shape", "meaning"}, ...],
              "outputs": [{"name", "type", "shape", "meaning"}, ...]}

where a shape is a list of ints and symbolic dimension names ("N", "S+1").

    <!-- reuse:conv-nets -->

becomes one line per conv net on the glyph alphabets (task family "glyphs"):
its adaptation rate and unrolled steps from the manifest, and a link to its
signature in the graphs block.
The whole manifest is read, not only the sinusoid models the build staged, so
other graph families appear too. An entry without ``graph`` is listed with a
line saying its signature is not recorded; a ``graph`` field of the wrong form
is a build failure naming the model and what is expected.
"""
from __future__ import annotations

import json
import math
import re

from . import manifest
from .errors import BuildFailure
from .generated import MODELS_DIR, Staging

MARKER = re.compile(r"^<!--\s*reuse:([A-Za-z0-9_-]+)\s*-->[ \t]*$", re.MULTILINE)
PORT_FIELDS = ("name", "type", "shape", "meaning")


def render(text: str, staging: Staging, page: str) -> str:
    """text with its reuse markers replaced (see BLOCKS)."""
    def replace(match: re.Match) -> str:
        block = match.group(1)
        if block not in BLOCKS:
            raise BuildFailure(f"{page}: unknown block <!-- reuse:{block} -->; "
                               f"allowed: {', '.join(BLOCKS)}")
        return BLOCKS[block](staging).rstrip("\n")

    return MARKER.sub(replace, text)


# ------------------------------------------------------------------ signatures

def _check_port(model: str, kind: str, index: int, port) -> dict:
    where = f"manifest entry {model!r}: graph.{kind}[{index}]"
    if not isinstance(port, dict):
        raise BuildFailure(f"{where} must be an object with {', '.join(PORT_FIELDS)}, "
                           f"got {json.dumps(port)}")
    missing = [f for f in PORT_FIELDS if f not in port]
    if missing:
        raise BuildFailure(f"{where} lacks {', '.join(missing)} "
                           f"(expected {', '.join(PORT_FIELDS)})")
    for key in ("name", "type", "meaning"):
        if not isinstance(port[key], str) or not port[key]:
            raise BuildFailure(f"{where}.{key} must be a non-empty string, got {json.dumps(port[key])}")
    shape = port["shape"]
    if (not isinstance(shape, list)
            or not all((isinstance(d, int) and not isinstance(d, bool) and d >= 0)
                       or (isinstance(d, str) and d) for d in shape)):
        raise BuildFailure(f"{where}.shape must be a list of sizes (ints >= 0) and dimension "
                           f"names (strings), got {json.dumps(shape)}")
    return {key: port[key] for key in PORT_FIELDS}


def signature(entry: dict) -> tuple[tuple[dict, ...], tuple[dict, ...]] | None:
    """(inputs, outputs) of an entry's graph field, checked; None when absent."""
    graph = entry.get("graph")
    if graph is None:
        return None
    model = entry.get("name", "?")
    if not isinstance(graph, dict):
        raise BuildFailure(f"manifest entry {model!r}: graph must be an object with lists "
                           f"'inputs' and 'outputs', got {json.dumps(graph)}")
    ports = {}
    for kind in ("inputs", "outputs"):
        value = graph.get(kind)
        if not isinstance(value, list) or not value:
            raise BuildFailure(f"manifest entry {model!r}: graph.{kind} must be a non-empty list "
                               f"of {{{', '.join(PORT_FIELDS)}}}, got {json.dumps(value)}")
        ports[kind] = tuple(_check_port(model, kind, i, port) for i, port in enumerate(value))
    return ports["inputs"], ports["outputs"]


def _key(sig) -> str:
    return json.dumps(sig, sort_keys=True)


# ------------------------------------------------------------------ formatting

def _cell(text) -> str:
    """Text for a Markdown table cell: pipes escaped, no line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _shape(shape: list) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value:g}"


def _file(staging: Staging, file) -> str:
    """The graph's file name, linked to the site's copy when the site serves it."""
    if not isinstance(file, str) or not file:
        return "–"
    if (staging.docs / MODELS_DIR / file).is_file():
        return f"[`{file}`]({MODELS_DIR}/{file})"
    return f"`{_cell(file)}`"


def _names(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _entries(staging: Staging) -> list[dict]:
    return [e for e in manifest.read(staging.exported)["models"]
            if isinstance(e, dict) and isinstance(e.get("name"), str)]


def _signature_groups(entries: list[dict]):
    """(groups, labels, unrecorded): {signature key: {"sig", "models", "label"}} in
    manifest order, {model: its group's anchor "graph-N"}, models without a graph."""
    groups: dict[str, dict] = {}
    unrecorded: list[str] = []
    labels: dict[str, str] = {}
    for entry in entries:
        sig = signature(entry)
        if sig is None:
            unrecorded.append(entry["name"])
            continue
        group = groups.setdefault(_key(sig), {"sig": sig, "models": [],
                                              "label": f"graph-{len(groups) + 1}"})
        group["models"].append(entry["name"])
        labels[entry["name"]] = group["label"]
    return groups, labels, unrecorded


def graphs_block(staging: Staging) -> str:
    """Models table, then one inputs/outputs table per distinct graph signature."""
    entries = _entries(staging)
    if not entries:
        return ("!!! warning \"No models yet\"\n"
                "    The manifest lists no models: run `maml-site build` to train and export them.\n")

    groups, labels, unrecorded = _signature_groups(entries)

    lines = ["| model | algorithm | inner_lr | steps (S) | graph file | inputs and outputs |",
             "|---|---|---|---|---|---|"]
    for entry in entries:
        name = entry["name"]
        label = labels.get(name)
        where = f"[signature {label.rsplit('-', 1)[1]}](#{label})" if label else "not recorded"
        lines.append(f"| `{_cell(name)}` | {_cell(entry.get('algorithm', '–'))} "
                     f"| {_number(entry.get('inner_lr'))} | {_number(entry.get('steps'))} "
                     f"| {_file(staging, entry.get('file'))} | {where} |")
    lines.append("")

    for group in groups.values():
        number = group["label"].rsplit("-", 1)[1]
        models = group["models"]
        used_by = f"the graph of {_names(models)}" if len(models) == 1 else \
            f"shared by the graphs of {_names(models)}"
        lines += [f"**Signature {number}**, {used_by}:", "{: #" + group["label"] + " }", "",
                  "| port | name | type | shape | meaning |", "|---|---|---|---|---|"]
        inputs, outputs = group["sig"]
        for kind, ports in (("input", inputs), ("output", outputs)):
            for port in ports:
                lines.append(f"| {kind} | `{_cell(port['name'])}` | {_cell(port['type'])} "
                             f"| `{_cell(_shape(port['shape']))}` | {_cell(port['meaning'])} |")
        lines.append("")

    if unrecorded:
        lines.append(f"The manifest does not record the inputs and outputs of {_names(unrecorded)} "
                     "(the entry has no `graph` field); open the `.onnx` file with onnxruntime "
                     "and read its `get_inputs()` and `get_outputs()` to see them.")
        lines.append("")
    return "\n".join(lines)


def _steps_phrase(entry: dict) -> str:
    """"S = 2 steps, so `probabilities` has 3 rows" (the output shaped [S+1, ...])."""
    steps = entry.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        return "an unrecorded number of steps"
    phrase = f"S = {steps} step{'s' if steps != 1 else ''}"
    sig = signature(entry)
    rows = [port["name"] for port in (sig[1] if sig else ()) if port["shape"][:1] == ["S+1"]
            and len(port["shape"]) > 1]
    return phrase + (f", so `{_cell(rows[0])}` has {steps + 1} rows" if rows else "")


def conv_nets_block(staging: Staging) -> str:
    """The conv nets on the glyph alphabets (task family "glyphs"): each one's
    adaptation rate and unrolled steps from the manifest, and a link to its
    signature in the graphs block, whose numbering it shares."""
    entries = _entries(staging)
    glyphs = [e for e in entries
              if isinstance(e.get("task"), dict) and e["task"].get("family") == "glyphs"]
    if not glyphs:
        return ("!!! warning \"No conv nets yet\"\n"
                "    The manifest lists no conv nets on the glyph alphabets: run `maml-site build` "
                "to train and export them.\n")
    _, labels, _ = _signature_groups(entries)
    lines = []
    for entry in glyphs:
        name = entry["name"]
        label = labels.get(name)
        ports = (f"inputs and outputs: [signature {label.rsplit('-', 1)[1]}](#{label})" if label
                 else "inputs and outputs not recorded in the manifest")
        lines.append(f"- `{_cell(name)}` ({_cell(entry.get('algorithm', '–'))}), "
                     f"{_file(staging, entry.get('file'))}: adapts at inner_lr "
                     f"{_number(entry.get('inner_lr'))} and unrolls {_steps_phrase(entry)}; "
                     f"{ports}.")
    return "\n".join(lines) + "\n"


BLOCKS = {"graphs": graphs_block, "conv-nets": conv_nets_block}
