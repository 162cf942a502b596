"""The meta-step graphs in the build: one meta-iteration of each algorithm as ONNX.

For pretrained, MAML, first-order MAML and Reptile (BUILD_ALGORITHMS) the
build exports the graph of its registered model's paper configuration
(site_builder/config.py: inner steps, options, learning rates) as
``<algorithm>-meta-step.onnx``. Like the toy stage, each export hashes what
it depends on (the code of meta/ it runs and the configuration) and runs only
when that hash differs from the one the manifest recorded, or its file is gone
or altered. Nothing is trained, so --retrain does not touch them.

Each graph gets a manifest entry of its own: the contract's fields (``train``
and ``metrics`` null; ``inner_lr`` and ``steps`` the paper configuration's
inner learning rate and inner steps per meta-iteration), ``graph`` (its inputs
and outputs) and ``meta_step`` (the configuration it performs). The task
family is "sinusoid-meta-step": widgets that take every "sinusoid" entry for
an adaptation graph (the all-models widget) leave these alone.

With them go the θ-fit graphs (family "sinusoid-theta-fit",
meta/theta_fit.py): plain gradient steps from a θ given as an input, which is
how a page shows what the θ it meta-trains with these graphs predicts.
``theta-fit.onnx`` unrolls ten steps (the sine-fit widget fitting the
reader's points with a handed θ); ``theta-fit-1.onnx`` is the same graph with
one step, all the Comparison page's "Watch it learn" needs for its one-step
errors and fits, at a tenth of the work (its rows 0 and 1 are the ten-step
graph's, to the bit).

The θ-fit-1 entry also records the static figure of "Watch it learn"
(``figures/watch-it-learn.png``, site_builder/watch_figure.py): a short
seeded live run of these very graphs, computed when any of them or the
figure's code changes.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .hashing import file_sha256, inputs_hash, source_hashes

log = logging.getLogger("site_builder")

EXPORT_SOURCES = ("meta/meta_step.py", "meta/export.py", "meta/model.py", "meta/tasks.py",
                  "meta/algorithms/*.py")
FAMILY = "sinusoid-meta-step"
FIT_SOURCES = ("meta/theta_fit.py", "meta/meta_step.py", "meta/export.py", "meta/model.py")
FIGURE_SOURCES = ("site_builder/watch_figure.py", "site_builder/toy_figures.py", "site_builder/figures.py")
#: The one-step θ-fit graph (what the live run evaluates its models with).
FIT1_NAME = "theta-fit-1"
FIT1_STEPS = 1


def entry_name(algorithm: str) -> str:
    return f"{algorithm}-meta-step"


#: The algorithms whose meta-step graph the build exports: those of
#: meta.meta_step.ALGORITHMS (iMAML is left out; the reason is noted there).
BUILD_ALGORITHMS = ("pretrained", "maml", "fomaml", "reptile")


FIT_FAMILY = "sinusoid-theta-fit"


def graph_names() -> list[str]:
    """The manifest entries of this stage, in order: the meta-step graphs, then the θ-fit graphs."""
    from meta.theta_fit import FIT_NAME

    return [entry_name(a) for a in BUILD_ALGORITHMS] + [FIT_NAME, FIT1_NAME]


def fit_signature(steps: int) -> dict:
    """The θ-fit graph's documented inputs and outputs for ``steps`` unrolled steps."""
    import copy

    from meta.theta_fit import FIT_SIGNATURE, FIT_STEPS

    signature = copy.deepcopy(FIT_SIGNATURE)
    for spec in signature["outputs"]:
        spec["meaning"] = spec["meaning"].replace(f"(S = {FIT_STEPS})", f"(S = {steps})")
    return signature


def paper_config(algorithm: str):
    """The TrainConfig of the algorithm's registered sinusoid model, paper profile."""
    from .config import MODELS, PROFILES

    spec = next(s for s in MODELS.values() if s.algorithm == algorithm)
    return spec.train_config(PROFILES["paper"], 0)


def describe(cfg) -> dict:
    """The manifest's ``meta_step`` field: what one run of the graph does."""
    from meta import algorithms
    from meta.meta_step import BETA1, BETA2, DATA_USE, EPS

    optimizer = algorithms.get(cfg.algorithm).OUTER_OPTIMIZER
    return {
        "inner_steps": cfg.inner_steps,
        "inner_lr": cfg.inner_lr,
        "meta_lr": cfg.meta_lr,
        "options": dict(cfg.options),
        "outer_optimizer": ({"kind": "adam", "betas": [BETA1, BETA2], "eps": EPS}
                            if optimizer == "adam" else {"kind": "sgd"}),
        "meta_batch_size": cfg.meta_batch_size, "k_support": cfg.k_support, "k_query": cfg.k_query,
        "data": DATA_USE[cfg.algorithm],
        "note": "inner_lr and meta_lr are inputs (these are the paper configuration's values); "
                "inner_steps and options are fixed in the graph; T, K and Q are dynamic",
    }


def _intact(exported: Path, entry: dict) -> bool:
    path = exported / entry["file"]
    return path.is_file() and file_sha256(path) == entry.get("sha256")


def run_meta_step_stage(exported: Path, repo_root: Path,
                        recorded: dict[str, dict]) -> tuple[dict[str, dict], list[str]]:
    """Export the meta-step graphs where stale. Returns the new manifest
    entries by name and the graphs that were written."""
    from meta.meta_step import SIGNATURE, export_meta_step
    from meta.tasks import SINUSOID

    code = source_hashes(repo_root, EXPORT_SOURCES)
    entries, ran = {}, []
    for algorithm in BUILD_ALGORITHMS:
        name = entry_name(algorithm)
        cfg = paper_config(algorithm)
        old = recorded.get(name, {})
        entry = {
            "name": name, "algorithm": algorithm,
            "task": {**SINUSOID.describe(), "family": FAMILY},
            "file": f"{name}.onnx", "sha256": old.get("sha256"),
            "inner_lr": cfg.inner_lr, "steps": cfg.inner_steps, "train": None, "metrics": None,
            "graph": SIGNATURE, "meta_step": describe(cfg),
            "inputs": {"export": inputs_hash(code=code, config=cfg.to_dict())},
        }
        entries[name] = entry
        if (old.get("inputs") or {}).get("export") == entry["inputs"]["export"] \
                and _intact(exported, entry):
            continue
        log.info("%s: exporting the meta-step graph", name)
        export_meta_step(cfg, exported / entry["file"])
        entry["sha256"] = file_sha256(exported / entry["file"])
        ran.append(f"{name}: export")
    from meta.theta_fit import FIT_NAME, FIT_STEPS

    fit_code = source_hashes(repo_root, FIT_SOURCES)
    for name, steps in ((FIT_NAME, FIT_STEPS), (FIT1_NAME, FIT1_STEPS)):
        entry, wrote = _fit_entry(exported, fit_code, recorded, name, steps)
        entries[name] = entry
        ran += wrote
    ran += _watch_figure(exported, repo_root, recorded, entries)
    return entries, ran


def _fit_entry(exported: Path, code: dict, recorded: dict[str, dict], name: str,
               steps: int) -> tuple[dict, list[str]]:
    """A θ-fit graph's manifest entry (``steps`` unrolled steps), exported where stale."""
    from meta.theta_fit import FIT_NAME, export_fit
    from meta.tasks import SINUSOID

    old = recorded.get(name, {})
    # The ten-step graph's hash stays what it was before the one-step graph joined.
    config = {"graph": FIT_NAME, "steps": steps} if name == FIT_NAME else {"graph": name, "steps": steps}
    entry = {
        "name": name, "algorithm": "any",
        "task": {**SINUSOID.describe(), "family": FIT_FAMILY},
        "file": f"{name}.onnx", "sha256": old.get("sha256"),
        "inner_lr": paper_config("maml").inner_lr, "steps": steps, "train": None, "metrics": None,
        "graph": fit_signature(steps),
        "inputs": {"export": inputs_hash(code=code, config=config)},
    }
    if (old.get("inputs") or {}).get("export") == entry["inputs"]["export"] and _intact(exported, entry):
        return entry, []
    log.info("%s: exporting the θ-fit graph (%d step%s)", name, steps, "" if steps == 1 else "s")
    export_fit(exported / entry["file"], steps)
    entry["sha256"] = file_sha256(exported / entry["file"])
    return entry, [f"{name}: export"]


def _watch_figure(exported: Path, repo_root: Path, recorded: dict[str, dict],
                  entries: dict[str, dict]) -> list[str]:
    """Render the static figure of "Watch it learn" where stale; its record
    goes on the θ-fit-1 entry (``figures``, ``inputs.figures``). The hash
    covers the figure's code and the sha256 of every graph the run uses."""
    from . import atomic
    from .watch_figure import FIGURE, RUN, render

    entry = entries[FIT1_NAME]
    graphs = {name: entries[name]["sha256"] for name in [entry_name(a) for a in BUILD_ALGORITHMS] + [FIT1_NAME]}
    figure_hash = inputs_hash(code=source_hashes(repo_root, FIGURE_SOURCES), graphs=graphs, run=RUN)
    old = recorded.get(FIT1_NAME, {})
    records = old.get("figures") or []
    if (old.get("inputs") or {}).get("figures") == figure_hash and len(records) == 1 \
            and records[0].get("file") == FIGURE and _intact(exported, records[0]):
        entry["figures"], entry["inputs"]["figures"] = records, figure_hash
        return []
    log.info("%s: rendering the static figure of Watch it learn (a %d-iteration run)", FIT1_NAME, RUN["iterations"])
    data = render(exported, {name: entries[name] for name in graphs}, RUN)
    atomic.write_bytes(exported / FIGURE, data)
    entry["figures"] = [{"file": FIGURE, "sha256": file_sha256(exported / FIGURE)}]
    entry["inputs"]["figures"] = figure_hash
    return [f"{FIT1_NAME}: figures"]


#: `maml-site check`: the graph's one meta-iteration against PyTorch's (meta/train.py's step).
PARITY_TOLERANCE = 1e-5
PARITY_SEED = 4242


def parity_error(path: Path, algorithm: str) -> float:
    """Largest |ONNX − PyTorch| / max(1, |PyTorch|) over the outputs of two
    meta-iterations (from the paper initialisation, zero moments; then from
    where PyTorch got to) on seeded batches of 25 tasks, K = 10 + 10."""
    import numpy as np
    import torch

    from meta.meta_step import TorchMetaStep, example_inputs, run_meta_step
    from meta.tasks import SINUSOID

    cfg = paper_config(algorithm)
    start = example_inputs(cfg)
    reference = TorchMetaStep(cfg, start["params"])
    hyper = {"inner_lr": start["inner_lr"], "meta_lr": start["meta_lr"]}
    generator = torch.Generator().manual_seed(PARITY_SEED)
    worst = 0.0
    for iteration in range(2):
        batch = SINUSOID.sample_batch(25, 10, 10, generator)
        before = {**reference.state(), "step": np.float32(iteration)}
        got = run_meta_step(path, {**before, **batch._asdict(), **hyper})
        loss = reference(batch)
        expected = {f"new_{k}": v for k, v in reference.state().items()}
        expected.update(new_step=np.float32(iteration + 1), meta_loss=np.float32(loss))
        for key, value in expected.items():
            value = np.asarray(value)
            if got[key].shape != value.shape or not np.isfinite(got[key]).all():
                return float("inf")
            error = np.max(np.abs(got[key] - value) / np.maximum(1.0, np.abs(value)), initial=0.0)
            worst = max(worst, float(error))
    return worst


def fit_parity_error(path: Path, steps: int | None = None) -> float:
    """Largest |ONNX − PyTorch| / max(1, |PyTorch|) of a θ-fit graph of
    ``steps`` steps (default the ten-step graph's) against meta.model.adapt,
    for three θ (the paper initialisations of three seeds) on seeded tasks of
    5 support and 50 query points."""
    import numpy as np
    import torch

    from meta.model import init_params
    from meta.theta_fit import FIT_STEPS, run_fit, torch_fit
    from meta.tasks import SINUSOID

    params = torch.stack([torch.cat([p.reshape(-1) for p in
                                     init_params(torch.Generator().manual_seed(s)).values()])
                          for s in range(3)])
    batch = SINUSOID.sample_batch(3, 5, 50, torch.Generator().manual_seed(PARITY_SEED))
    feeds = {"params": params, "support_x": batch.support_x, "support_y": batch.support_y,
             "query_x": batch.query_x, "inner_lr": paper_config("maml").inner_lr}
    got = run_fit(path, feeds)
    expected = dict(zip(("query_y", "support_loss"), torch_fit(**feeds, steps=FIT_STEPS if steps is None else steps)))
    worst = 0.0
    for key, value in expected.items():
        if got[key].shape != value.shape or not np.isfinite(got[key]).all():
            return float("inf")
        worst = max(worst, float(np.max(np.abs(got[key] - value) / np.maximum(1.0, np.abs(value)))))
    return worst


def check_meta_step_graphs(exported: Path, entries: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(problems, notes) for `maml-site check`: every meta-step entry's file is
    as recorded and its graph matches PyTorch's meta-iteration within 1e-5. A
    manifest from before these graphs existed (none listed) is a note."""
    from .check import _file_problems      # check.py imports this module inside check()

    names = graph_names()
    if not any(name in entries for name in names):
        return [], ["the manifest lists no meta-step graphs yet; `maml-site build` exports them"]
    problems: list[str] = []
    for name in names:
        entry = entries.get(name)
        if entry is None:
            problems.append(f"{name}: not in the manifest; run `maml-site build`")
            continue
        file_problems = _file_problems(exported, name, entry)
        if file_problems:
            problems += [f"{problem}; run `maml-site build`" for problem in file_problems]
            continue
        path = exported / entry["file"]
        fit = entry.get("task", {}).get("family") == FIT_FAMILY
        error = fit_parity_error(path, entry.get("steps")) if fit else parity_error(path, entry["algorithm"])
        if error > PARITY_TOLERANCE:
            problems.append(f"{name}: ONNX and PyTorch {'fits' if fit else 'meta-iterations'} differ by {error:.3g} "
                            f"(> {PARITY_TOLERANCE:g}); run `maml-site build`")
        else:
            log.info("%s: file matches the manifest; ONNX vs PyTorch %s max error %.2g",
                     name, "fit" if fit else "meta-iteration", error)
    return problems, []
