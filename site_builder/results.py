"""The Results page's numbers: tables and figures generated from what the build measured.

The words of a page live in docs/; the numbers come from exported/ at build
time. A page asks for a generated block with an HTML comment on a line of its
own, for example

    <!-- results:table -->

``render`` (called for each staged page by ``generated.stage_pages``, the
mechanism every generated block goes through) replaces every such marker with Markdown built here from the manifest and each
model's ``<name>.results.json``, and renders the figures those blocks show into
``assets/figures/``. The source docs/ never changes, and MkDocs only sees plain
Markdown. Blocks (see ``BLOCKS``):

    status           which models have no results yet; a warning for shortened runs
    protocol         how the numbers were measured
    table            query MSE, mean ± 95% CI, for K = 5, 10, 20 after 0, 1, 10 steps,
                     with published numbers beside ours
    robust           for every model and K after 1 and 10 steps: median, blown-up tasks,
                     and whether the mean falls at every step from 1 to 10
    selection        which checkpoint each model is, chosen on validation tasks
    mse-figure       query MSE against adaptation steps, one panel per K
    config           each model's training configuration
    training-figure  meta-loss against meta-iteration, and what it measures per algorithm
    time             training time, device and torch version
    references       the works the blocks cite, from site_builder/references.bib
                     (their anchors are ref-<key>)

A model that is registered but not trained, not evaluated, or whose results
file is missing or unreadable is named as such on the page; the build does not
fail over it. An unknown block name is a build failure that lists the allowed ones.
"""
from __future__ import annotations

import json
import math
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import atomic, bibliography
from .config import EVAL_MAX_STEPS, EVAL_SHOTS, MODELS, PROFILES
from .errors import BuildFailure
from .figures import INK, SVG_RC, svg_bytes
from .generated import FIGURES_DIR, Staging

MSE_FIGURE = f"{FIGURES_DIR}/results-mse-vs-steps.svg"
TRAINING_FIGURE = f"{FIGURES_DIR}/results-training.svg"
#: Steps after which the table reports the query MSE.
TABLE_STEPS = (0, 1, EVAL_MAX_STEPS)

MARKER = re.compile(r"^<!--\s*results:([A-Za-z0-9_-]+)\s*-->[ \t]*$", re.MULTILINE)


# ------------------------------------------------------------------ citations

#: Always listed: the setup (Finn et al.) and the published numbers (Li et al.).
BASE_REFERENCES = ("finn2017", "li2017")


def cite(key: str) -> str:
    """A link to key's entry in this page's own list (the .bib file's label and entry)."""
    return f"[{bibliography.reference(key).label}](#ref-{key})"


@dataclass(frozen=True)
class Algorithm:
    label: str
    source: str          # key in site_builder/references.bib
    meta_loss: str       # what the training curve of this algorithm measures


ALGORITHMS: dict[str, Algorithm] = {
    "pretrained": Algorithm(
        "joint training", "finn2017",
        "MSE of θ itself on all of a task's points; nothing is adapted"),
    "maml": Algorithm(
        "MAML", "finn2017",
        "query MSE after the inner gradient step(s) on the support points, the loss MAML "
        "differentiates through"),
    "fomaml": Algorithm(
        "first-order MAML", "finn2017",
        "query MSE after the inner step(s), as for MAML; only its gradient is approximated"),
    "reptile": Algorithm(
        "Reptile", "nichol2018",
        "MSE after the inner steps, on the same points those steps were taken on "
        "(Reptile has no separate query set), so it is lower than a query error would be"),
    "imaml": Algorithm(
        "iMAML", "rajeswaran2019",
        "query MSE after the inner steps on the proximal problem (support loss plus "
        "λ/2 ‖ϕ − θ‖²)"),
}


def _algorithm(name: str) -> Algorithm:
    return ALGORITHMS.get(name, Algorithm(name, "", "this algorithm's own training loss"))


@dataclass(frozen=True)
class Published:
    method: str
    shots: int
    steps: int
    mean: float
    ci95: float
    source: str          # key in site_builder/references.bib
    where: str           # table or figure in the source


#: Numbers reported on the same task family (A ∈ [0.1, 5], φ ∈ [0, π], x ∈ [-5, 5]).
PUBLISHED: tuple[Published, ...] = (
    Published("MAML", 5, 1, 1.13, 0.18, "li2017", "Table 1"),
    Published("Meta-SGD", 5, 1, 0.90, 0.16, "li2017", "Table 1"),
)


# ---------------------------------------------------------------- the data

@dataclass(frozen=True)
class ModelResults:
    """One registered model: its manifest entry and evaluation, or why they are missing."""
    name: str
    entry: dict | None = None         # manifest entry; None if the model is not in the manifest
    results: dict | None = None       # contents of <name>.results.json
    problem: str | None = None        # why there are no results, in words for the page

    @property
    def ok(self) -> bool:
        return self.results is not None

    @property
    def evaluation(self) -> dict:
        return self.results["evaluation"]

    @property
    def algorithm(self) -> str:
        return (self.results or {}).get("algorithm") or (self.entry or {}).get("algorithm", "?")

    @property
    def train(self) -> dict:
        return (self.results or {}).get("train") or (self.entry or {}).get("train") or {}

    @property
    def training(self) -> dict:
        """{seconds, device, torch} from the manifest (the results file as a fallback)."""
        return (self.entry or {}).get("training") or (self.results or {}).get("training") or {}

    @property
    def history(self) -> list[dict]:
        return ((self.results or {}).get("training") or {}).get("history") or []

    @property
    def inner_lr(self) -> float | None:
        if self.entry and "inner_lr" in self.entry:
            return self.entry["inner_lr"]
        return (self.results or {}).get("evaluation", {}).get("protocol", {}).get("inner_lr")


def _results_problem(data) -> str | None:
    """What is wrong with a results file's structure, or None."""
    try:
        curves = data["evaluation"]["query_mse"]
        data["evaluation"]["protocol"]["num_tasks"]
        if not isinstance(curves, dict) or not curves:
            return "has no query MSE curves"
        for k, curve in curves.items():
            int(k)
            lengths = {len(curve[key]) for key in ("mean", "ci95", "median", "diverged")}
            if len(lengths) != 1:
                return f"has curves of different lengths for K = {k}"
    except (KeyError, TypeError, ValueError) as exc:
        return f"is not in the expected format ({type(exc).__name__}: {exc})"
    return None


def collect(exported: Path, entries: list[dict], names: list[str] | None = None) -> list[ModelResults]:
    """Every registered model (registry order), with its results or the reason there are none."""
    by_name = {e["name"]: e for e in entries if isinstance(e, dict) and "name" in e}
    models = []
    for name in (list(MODELS) if names is None else names):
        entry = by_name.get(name)
        if entry is None:
            models.append(ModelResults(name, problem="not trained yet"))
            continue
        record = entry.get("results")
        if not isinstance(record, dict) or "file" not in record:
            models.append(ModelResults(name, entry, problem="trained but not evaluated yet"))
            continue
        path = Path(exported) / record["file"]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            models.append(ModelResults(name, entry, problem=f"its results file {record['file']} "
                                                            "is missing"))
            continue
        except (OSError, ValueError) as exc:
            models.append(ModelResults(name, entry, problem=f"its results file {record['file']} "
                                                            f"cannot be read ({exc})"))
            continue
        problem = _results_problem(data)
        if problem:
            models.append(ModelResults(name, entry, problem=f"its results file {record['file']} "
                                                            f"{problem}"))
            continue
        models.append(ModelResults(name, entry, data))
    return models


# -------------------------------------------------------------- formatting

def _decimals(value: float) -> int:
    """Decimals that show three significant digits of value (at least 2, at most 5)."""
    if value <= 0 or not math.isfinite(value):
        return 2
    return min(5, max(2, 2 - math.floor(math.log10(value))))


def format_mse(mean: float | None, ci95: float | None, *, median: float | None = None,
               diverged: int = 0, num_tasks: int | None = None) -> str:
    """'0.512 ± 0.041'; for a mean that is infinite because tasks diverged,
    '∞ (3/1000 tasks diverged; median 0.21)'."""
    if mean is None:
        if diverged:
            count = f"{diverged:,}/{num_tasks:,} tasks" if num_tasks else (
                f"{diverged:,} task" if diverged == 1 else f"{diverged:,} tasks")
            text = f"∞ ({count} diverged"
            if median is not None:
                text += f"; median {median:.{_decimals(median)}f}"
            return text + ")"
        return "n/a"
    digits = _decimals(mean)
    text = f"{mean:.{digits}f}"
    text += f" ± {ci95:.{digits}f}" if ci95 is not None else " (no CI)"
    return text


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def _number(value) -> str:
    if isinstance(value, float) and abs(value - math.pi) < 1e-4:
        return "π"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _steps_label(step: int) -> str:
    return f"{step} step" if step == 1 else f"{step} steps"


def _names(models: list[ModelResults]) -> str:
    names = [f"`{m.name}`" for m in models]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# ------------------------------------------------------------------ blocks

@dataclass
class Context:
    """What a block needs: the models, and where the page and the staged docs are."""
    models: list[ModelResults]
    docs: Path                       # the staged docs folder
    page: str = "results.md"         # the page being generated, relative to docs

    @property
    def measured(self) -> list[ModelResults]:
        return [m for m in self.models if m.ok]

    def link(self, target: str) -> str:
        """target (relative to docs) as a link from the page."""
        return posixpath.relpath(target, posixpath.dirname(self.page) or ".")


def _paper_iterations(name: str) -> int:
    """Meta-iterations of the model's paper-profile training run."""
    try:
        return MODELS[name].train_config(PROFILES["paper"], 0).iterations
    except (KeyError, ValueError):
        return PROFILES["paper"].iterations


def block_status(ctx: Context) -> str:
    parts = []
    missing = [m for m in ctx.models if not m.ok]
    if missing:
        items = "\n".join(f"    - `{m.name}`: {m.problem}." for m in missing)
        title = "No results yet" if not ctx.measured else "Some models have no results yet"
        parts.append(f'!!! warning "{title}"\n    The tables and figures below leave these '
                     f"registered models out:\n\n{items}\n\n    `maml-site build` trains and "
                     "evaluates whatever is missing.")
    paper = PROFILES["paper"]
    short = [m for m in ctx.measured
             if m.train.get("iterations", 0) < _paper_iterations(m.name)
             or m.evaluation["protocol"]["num_tasks"] < paper.eval_tasks]
    if short:
        runs = sorted({(m.train.get("iterations"), m.evaluation["protocol"]["num_tasks"])
                       for m in short}, key=str)
        sizes = "; ".join(f"{_number(it)} meta-iterations, {_number(n)} test tasks" for it, n in runs)
        parts.append(f'!!! warning "A shortened run"\n    {_names(short)} '
                     f"{'was' if len(short) == 1 else 'were'} trained and measured with smaller "
                     f"settings than the paper's ({sizes}; the paper profile uses "
                     f"{paper.iterations:,} and {paper.eval_tasks:,}). Such numbers show that the "
                     "pipeline works; they say little about the algorithms and should not be "
                     "compared with the published ones.")
    return "\n\n".join(parts)


def block_protocol(ctx: Context) -> str:
    if not ctx.measured:
        return "*Nothing has been measured yet.*"
    task = next((m.entry["task"] for m in ctx.measured if m.entry and "task" in m.entry), None)
    protocols, procedures = {}, {}
    for m in ctx.measured:
        p = {k: v for k, v in m.evaluation["protocol"].items()
             if k not in ("inner_lr", "inner_procedure")}
        protocols.setdefault(json.dumps(p, sort_keys=True), (p, []))[1].append(m)
        procedure = m.evaluation["protocol"].get("inner_procedure")
        procedures.setdefault(json.dumps(procedure, sort_keys=True), (procedure, []))[1].append(m)
    lines = []
    if task:
        lines.append(f"The tasks are sinusoids y = A·sin(x + φ) with amplitude A drawn uniformly "
                     f"from [{_number(task['amplitude'][0])}, {_number(task['amplitude'][1])}], "
                     f"phase φ from [{_number(task['phase'][0])}, {_number(task['phase'][1])}] "
                     f"and inputs x from [{_number(task['x'][0])}, {_number(task['x'][1])}], "
                     f"the setup of {cite('finn2017')}.")
    for p, members in protocols.values():
        who = "Every model" if len(protocols) == 1 else _names(members)
        shots = ", ".join(str(k) for k in p.get("shots", EVAL_SHOTS))
        lines.append(
            f"{who} is measured on the same **{p['num_tasks']:,} test tasks**, drawn with a fixed "
            f"evaluation seed ({p.get('seed', '?')}) that no training run uses. For each "
            f"K ∈ {{{shots}}}, K support points are drawn uniformly from the input range, and "
            f"the query set is **{p.get('query_points', '?')} evenly spaced points** across it. "
            f"Starting from the trained parameters, each model adapts for 0 to "
            f"{p.get('max_steps', EVAL_MAX_STEPS)} steps at its adaptation rate α, and the query "
            f"MSE of every task is recorded after each step. "
            f"We report the mean over tasks ± the half-width of its 95% confidence interval, "
            f"1.96·σ/√n with n = {p['num_tasks']:,}, beside the median and the number of tasks "
            f"that blew up.")
    for procedure, members in procedures.values():
        who = "Every model" if len(procedures) == 1 else _names(members)
        lines.append(f"{who} adapts with {_procedure_words(procedure)}.")
    rates = ", ".join(f"`{m.name}` α = {_number(m.inner_lr)}" for m in ctx.measured)
    lines.append(f"Adaptation rates: {rates}.")
    return "\n\n".join(lines)


def _procedure_words(procedure: dict | None) -> str:
    """How a protocol's adaptation steps work, in the page's words."""
    kind = (procedure or {}).get("kind")
    if kind == "proximal":
        return (f"iMAML's own inner solver: gradient steps on the support MSE plus "
                f"λ/2·‖ϕ − θ‖² (λ = {_number(procedure.get('lam'))}, θ the trained parameters), "
                "a step that would not lower that sum being refused and the step length halved "
                "for the next one (see below)")
    if kind == "backtracking":
        return ("gradient descent on the support MSE, each step safeguarded by backtracking (a "
                f"step that would raise the support loss is halved, up to "
                f"{_number(procedure.get('halvings', 4))} times, and skipped if it still would; "
                "see below)")
    return "plain gradient descent on the support MSE"


def _published_rows(shots: int, steps: tuple[int, ...]) -> list[list[str]]:
    rows = []
    for p in PUBLISHED:
        if p.shots != shots:
            continue
        # As printed in the source, two decimals.
        cells = [f"{p.mean:.2f} ± {p.ci95:.2f}" if s == p.steps else "—" for s in steps]
        rows.append([str(shots), f"*{p.method}*", f"*published*: {cite(p.source)}, {p.where}",
                     *[f"*{c}*" if c != "—" else c for c in cells]])
    return rows


def _shots(models: list[ModelResults]) -> list[str]:
    """The support sizes K the models were evaluated at, as their results keys, ascending."""
    return sorted({k for m in models for k in m.evaluation["query_mse"]}, key=int)


def block_table(ctx: Context) -> str:
    measured = ctx.measured
    shots = [int(k) for k in _shots(measured)] or list(EVAL_SHOTS)
    header = ["K", "model", "source", *[_steps_label(s) for s in TABLE_STEPS]]
    rows = []
    for k in shots:
        for m in measured:
            curve = m.evaluation["query_mse"].get(str(k))
            cells = []
            for s in TABLE_STEPS:
                if curve is None or s >= len(curve["mean"]):
                    cells.append("—")
                    continue
                cells.append(format_mse(curve["mean"][s], curve["ci95"][s],
                                        median=curve["median"][s], diverged=curve["diverged"][s],
                                        num_tasks=m.evaluation["protocol"]["num_tasks"]))
            rows.append([str(k), f"`{m.name}`", "this build", *cells])
        rows += _published_rows(k, TABLE_STEPS)
    text = _table(header, rows)
    notes = ["Query MSE after adaptation, mean ± 95% confidence interval over the test tasks "
             "(lower is better). Rows marked *published* are quoted from the paper named, not "
             "measured here; their protocol differs in details such as the number of test "
             "tasks, so compare them loosely."]
    if any(d for m in measured for c in m.evaluation["query_mse"].values() for d in c["diverged"]):
        notes.append("∞: on some tasks adaptation blew up (query MSE above 50 or not finite), "
                     "so the mean is infinite; the median over all tasks is given instead.")
    if not measured:
        notes.insert(0, "*No model has results yet; only the published numbers are shown.*")
    return text + "\n\n" + "\n".join(notes)


#: Steps after which the robust-figures table reports median and blown-up tasks.
ROBUST_STEPS = (1, EVAL_MAX_STEPS)


def _falls(mean: list) -> str:
    """Whether a mean curve falls at every step from 1 to the last, in words."""
    rises = [s + 2 for s, (a, b) in enumerate(zip(mean[1:], mean[2:]))
             if a is None or b is None or b > a]
    if not rises:
        return "yes"
    return "no (rises at step " + ", ".join(str(s) for s in rises) + ")"


def block_robust(ctx: Context) -> str:
    """Median and blown-up count beside every mean of the table (contracts.md),
    and whether the mean falls from step to step as the slider moves."""
    measured = ctx.measured
    if not measured:
        return "*No model has results yet.*"
    header = ["model", "K"]
    for s in ROBUST_STEPS:
        header += [f"median, {_steps_label(s)}", f"blown up, {_steps_label(s)}"]
    header.append("mean falls at every step 1→10")
    rows = []
    for m in measured:
        for k in [int(k) for k in _shots(measured)]:
            curve = m.evaluation["query_mse"].get(str(k))
            if curve is None:
                continue
            n = m.evaluation["protocol"]["num_tasks"]
            cells = []
            for s in ROBUST_STEPS:
                if s >= len(curve["mean"]):
                    cells += ["—", "—"]
                    continue
                median = curve["median"][s]
                cells += ["∞" if median is None else f"{median:.{_decimals(median)}f}",
                          f"{curve['diverged'][s]:,}/{n:,}"]
            rows.append([f"`{m.name}`", str(k), *cells, _falls(curve["mean"])])
    return (_table(header, rows) + "\n\n*Median query MSE over the test tasks, and how many of "
            "them blew up (query MSE above 50 or not finite), after one and after ten steps; the "
            "last column says whether the mean error of the table above drops from each step to "
            "the next between step 1 and step 10.*")


def block_selection(ctx: Context) -> str:
    """Which checkpoint of its run each model is, and how it was chosen."""
    rows = []
    settings_seen = None
    for m in ctx.models:
        selection = (m.entry or {}).get("selection")
        if not selection:
            continue
        settings = selection.get("settings", {})
        settings_seen = settings_seen or settings
        scored = [c for c in selection.get("checkpoints", []) if "iteration" in c]
        chosen = selection.get("chosen")
        kept = next((c for c in scored if c["iteration"] == chosen), {})
        total = m.train.get("iterations")
        rows.append([f"`{m.name}`", ", ".join(_number(c["iteration"]) for c in scored),
                     f"{_number(chosen)} of {_number(total)}" if total else _number(chosen),
                     "—" if kept.get("score") is None else f"{kept['score']:.3f}",
                     _number(kept.get("inner_lr", m.inner_lr))])
    if not rows:
        return "*No model records how its checkpoint was chosen.*"
    header = ["model", "checkpoints scored (iteration)", "kept", "validation score", "α"]
    note = ("*Validation score: the five-shot query MSE averaged over steps 1 to 10 on the "
            f"{_number(settings_seen.get('tasks', '?'))} validation tasks (seed "
            f"{settings_seen.get('seed', '?')}, never a test seed), each model adapting with its "
            "own inner procedure.*")
    return _table(header, rows) + "\n\n" + note


def _figure(ctx: Context, target: str, alt: str, caption: str) -> str:
    return f"![{alt}]({ctx.link(target)})\n\n*{caption}*"


def block_mse_figure(ctx: Context) -> str:
    if not ctx.measured:
        return "*No model has results yet, so there is no figure.*"
    atomic.write_bytes(ctx.docs / MSE_FIGURE, mse_vs_steps_svg(ctx.measured))
    caption = ("Query MSE (log scale) against the number of gradient steps taken on K support "
               "points; each band is the 95% confidence interval of the mean. Hollow markers at "
               f"one step are published numbers ({cite('li2017')}).")
    if any(v is None for m in ctx.measured for c in m.evaluation["query_mse"].values()
           for v in c["mean"]):
        caption += " A gap in a line is a step where the mean is infinite (see the table)."
    shots = _shots(ctx.measured)
    alt = f"Query MSE against adaptation steps for K = {', '.join(shots)}, one line per model"
    return _figure(ctx, MSE_FIGURE, alt, caption)


def _algorithm_cell(name: str) -> str:
    algo = _algorithm(name)
    return f"{algo.label} ({cite(algo.source)})" if algo.source else algo.label


def block_config(ctx: Context) -> str:
    models = [m for m in ctx.models if m.train]
    if not models:
        return "*No model has been trained yet.*"
    from meta import algorithms

    def optimiser(name: str) -> str:
        try:
            kind = algorithms.get(name).OUTER_OPTIMIZER
        except ValueError:
            return "?"
        return {"adam": "Adam", "sgd": "SGD"}.get(kind, kind)

    settings: list[tuple[str, Callable[[ModelResults, dict], str]]] = [
        ("algorithm", lambda m, t: _algorithm_cell(t.get("algorithm", m.algorithm))),
        ("meta-iterations", lambda m, t: _number(t.get("iterations", "?"))),
        ("tasks per meta-batch", lambda m, t: _number(t.get("meta_batch_size", "?"))),
        ("support / query points per task",
         lambda m, t: f"{_number(t.get('k_support', '?'))} / {_number(t.get('k_query', '?'))}"),
        ("inner steps", lambda m, t: _number(t.get("inner_steps", "?"))),
        ("inner α (training)", lambda m, t: _number(t.get("inner_lr", "?"))),
        ("outer optimiser, β",
         lambda m, t: f"{optimiser(t.get('algorithm', ''))}, {_number(t.get('meta_lr', '?'))}"),
        ("options", lambda m, t: ", ".join(f"{k} = {_number(v)}"
                                           for k, v in (t.get("options") or {}).items()) or "—"),
        ("seed", lambda m, t: str(t.get("seed", "?"))),
        ("α when adapting (evaluation, widgets)",
         lambda m, t: _number(m.inner_lr) if m.inner_lr is not None else "?"),
    ]
    header = ["setting", *[f"`{m.name}`" for m in models]]
    rows = [[label, *[value(m, m.train) for m in models]] for label, value in settings]
    return (_table(header, rows) + "\n\n*Inner α is the rate of the inner steps during "
            "meta-training; the last row is the rate each model adapts with when it is measured "
            "and in the widgets.*")


def block_training_figure(ctx: Context) -> str:
    with_history = [m for m in ctx.measured if m.history]
    if not with_history:
        return "*No training history yet, so there is no figure.*"
    atomic.write_bytes(ctx.docs / TRAINING_FIGURE, training_curves_svg(with_history))
    meanings = "\n".join(
        f"- `{m.name}` ({_algorithm(m.algorithm).label}): {_algorithm(m.algorithm).meta_loss}."
        for m in with_history)
    every = {m.train.get("log_every") for m in with_history} - {None}
    window = (f"the mean over each window of {_number(every.pop())} meta-iterations"
              if len(every) == 1 else "the mean over each logging window")
    return (_figure(ctx, TRAINING_FIGURE, "Meta-loss against meta-iteration, one line per model",
                    f"Meta-loss (log scale) during training, {window}.")
            + "\n\nEach algorithm's meta-loss measures something different, so the curves show "
            "how each run converged, not which model is better (the table above compares them "
            "on equal terms):\n\n" + meanings)


def block_time(ctx: Context) -> str:
    models = [m for m in ctx.models if m.training]
    if not models:
        return "*No model has been trained yet.*"
    rows = []
    for m in models:
        t = m.training
        seconds, iterations = t.get("seconds"), m.train.get("iterations")
        per = (format_seconds(seconds / iterations * 1000)
               if isinstance(seconds, (int, float)) and iterations else "—")
        rows.append([f"`{m.name}`", format_seconds(seconds), per, str(t.get("device", "?")),
                     str(t.get("torch", "?"))])
    return _table(["model", "training time", "per 1,000 meta-iterations", "device", "torch"],
                  rows) + ("\n\n*Wall-clock time of the training loop alone (evaluation and "
                           "export are not counted), as the build recorded it in "
                           "`exported/manifest.json`.*")


def block_references(ctx: Context) -> str:
    keys = list(BASE_REFERENCES)
    for m in ctx.models:
        source = _algorithm(m.algorithm).source if m.entry or m.results else ""
        if source and source not in keys:
            keys.append(source)
    keys += [k for k in (p.source for p in PUBLISHED) if k not in keys]
    return "\n".join(f"{i}. {bibliography.item(bibliography.reference(k))}"
                     for i, k in enumerate(keys, 1))


BLOCKS: dict[str, Callable[[Context], str]] = {
    "status": block_status,
    "protocol": block_protocol,
    "table": block_table,
    "robust": block_robust,
    "selection": block_selection,
    "mse-figure": block_mse_figure,
    "config": block_config,
    "training-figure": block_training_figure,
    "time": block_time,
    "references": block_references,
}
#: Blocks that link to #ref-… anchors: a page using them needs the references block.
CITING = {"protocol", "table", "mse-figure", "config"}


# ------------------------------------------------------------------ figures

# Colours readable on the light and the dark palette (transparent background);
# INK, the settings and the SVG output are the fallback figures' (figures.py).
PALETTE = ("#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00acc1", "#6d4c41", "#d81b60")
PUBLISHED_MARKERS = ("o", "s", "D", "^")


def model_colour(name: str) -> str:
    """A model keeps its colour whichever other models exist: it follows the registry."""
    order = list(MODELS)
    index = order.index(name) if name in order else len(order) + sum(map(ord, name))
    return PALETTE[index % len(PALETTE)]


def _plain_log_ticks(ax) -> None:
    """Log-scale ticks at 1, 2, 5 × 10^n, written as plain numbers (0.2, not 2×10⁻¹)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _finite(values) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def mse_vs_steps_svg(models: list[ModelResults]) -> bytes:
    """One panel per K: mean query MSE after 0..S steps with its 95% CI band, per model."""
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    shots = _shots(models)
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(2.2 * len(shots) + 0.8, 3.6), layout="constrained")
        axes = fig.subplots(1, len(shots), sharey=True, squeeze=False)[0]
        low, high = math.inf, 0.0
        for ax, k in zip(axes, shots):
            for m in models:
                curve = m.evaluation["query_mse"].get(k)
                if curve is None:
                    continue
                mean = np.array(_finite(curve["mean"]))
                ci = np.array(_finite(curve["ci95"]))
                steps = np.arange(len(mean))
                colour = model_colour(m.name)
                ax.plot(steps, mean, color=colour, linewidth=1.6, marker="o", markersize=2.5,
                        label=m.name)
                lower, upper = mean - ci, mean + ci
                finite = np.isfinite(mean)
                if finite.any():
                    high = max(high, float(np.nanmax(np.where(np.isfinite(upper), upper, mean))))
                    low = min(low, float(np.nanmin(mean[finite])))
                    positive = lower[np.isfinite(lower) & (lower > 0)]
                    if positive.size:
                        low = min(low, float(positive.min()))
                ax.fill_between(steps, np.where(lower > 0, lower, np.nan), upper, color=colour,
                                alpha=0.18, linewidth=0)
            for i, p in enumerate(q for q in PUBLISHED if str(q.shots) == k):
                marker = PUBLISHED_MARKERS[i % len(PUBLISHED_MARKERS)]
                # Beside the step they belong to, so that our own point stays visible.
                ax.errorbar([p.steps + 0.25 * (i + 1)], [p.mean], yerr=[p.ci95], fmt=marker,
                            markerfacecolor="none", color=INK, markersize=5, capsize=2,
                            linewidth=1, label=f"{p.method}, published "
                                                f"({bibliography.reference(p.source).label})")
                low, high = min(low, p.mean - p.ci95), max(high, p.mean + p.ci95)
            ax.set_title(f"K = {k}")
            ax.set_xlabel("gradient steps")
            ax.set_xticks(range(0, EVAL_MAX_STEPS + 1, 2))
        axes[0].set_ylabel("query MSE")
        axes[0].set_yscale("log")
        _plain_log_ticks(axes[0])
        if math.isfinite(low) and high > 0:
            axes[0].set_ylim(low / 1.3, high * 1.3)
        handles, labels = {}, []
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in handles:
                    handles[label] = handle
                    labels.append(label)
        fig.legend([handles[lb] for lb in labels], labels, loc="outside lower center",
                   frameon=False, ncols=min(3, len(labels)), fontsize=8)
        return svg_bytes(fig)


def training_curves_svg(models: list[ModelResults]) -> bytes:
    """Meta-loss against meta-iteration, one line per model."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(6.0, 3.2))
        ax = fig.add_subplot()
        for m in models:
            points = [(p["iteration"], p["meta_loss"]) for p in m.history
                      if isinstance(p.get("meta_loss"), (int, float))
                      and math.isfinite(p["meta_loss"]) and p["meta_loss"] > 0]
            if not points:
                continue
            x, y = zip(*points)
            ax.plot(x, y, color=model_colour(m.name), linewidth=1.2,
                    label=m.name)
        ax.set_yscale("log")
        _plain_log_ticks(ax)
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel("meta-loss (see below)")
        ax.legend(frameon=False, fontsize=8)
        fig.tight_layout()
        return svg_bytes(fig)


# ------------------------------------------------------------------ staging

def render_page(text: str, ctx: Context) -> str:
    """text with every <!-- results:NAME --> marker replaced by its block."""
    names = MARKER.findall(text)
    unknown = sorted(set(names) - set(BLOCKS))
    if unknown:
        raise BuildFailure(f"{ctx.page}: unknown results block(s) {', '.join(unknown)}; "
                           f"allowed: {', '.join(BLOCKS)}")
    if set(names) & CITING and "references" not in names:
        raise BuildFailure(f"{ctx.page}: the results blocks {', '.join(sorted(set(names) & CITING))} "
                           "cite papers, so the page needs a <!-- results:references --> block too")
    cache: dict[str, str] = {}

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in cache:
            cache[name] = BLOCKS[name](ctx)
        return cache[name]

    return MARKER.sub(replace, text)


def stage_results(exported: Path, entries: list[dict], docs: Path,
                  names: list[str] | None = None) -> list[str]:
    """Replace the results markers in every staged page under docs (and write the
    figures they show). Returns the pages (relative to docs) that had markers."""
    models = None
    pages = []
    for path in sorted(docs.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if not MARKER.search(text):
            continue
        if models is None:
            models = collect(exported, entries, names)
        page = path.relative_to(docs).as_posix()
        atomic.write_text(path, render_page(text, Context(models, docs, page)))
        pages.append(page)
    return pages


def render(text: str, staging: Staging, page: str) -> str:
    """The generated-blocks entry point (site_builder.generated): the page with
    its results markers replaced; the models are read once per build."""
    if "results" not in staging.cache:
        staging.cache["results"] = collect(staging.exported, staging.entries)
    return render_page(text, Context(staging.cache["results"], staging.docs, page))
