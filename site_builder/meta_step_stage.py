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

With them goes the θ-fit graph (``theta-fit.onnx``, family
"sinusoid-theta-fit", meta/theta_fit.py): plain gradient steps from a θ
given as an input, which is how a page shows what the θ it meta-trains with
these graphs predicts (the Comparison page's "Watch it learn").
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


def entry_name(algorithm: str) -> str:
    return f"{algorithm}-meta-step"


#: The algorithms whose meta-step graph the build exports: those of
#: meta.meta_step.ALGORITHMS (iMAML is left out; the reason is noted there).
BUILD_ALGORITHMS = ("pretrained", "maml", "fomaml", "reptile")


FIT_FAMILY = "sinusoid-theta-fit"


def graph_names() -> list[str]:
    """The manifest entries of this stage, in order: the meta-step graphs, then the θ-fit graph."""
    from meta.theta_fit import FIT_NAME

    return [entry_name(a) for a in BUILD_ALGORITHMS] + [FIT_NAME]


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
    entry, wrote = _fit_entry(exported, source_hashes(repo_root, FIT_SOURCES), recorded)
    entries[entry["name"]] = entry
    ran += wrote
    return entries, ran


def _fit_entry(exported: Path, code: dict, recorded: dict[str, dict]) -> tuple[dict, list[str]]:
    """The θ-fit graph's manifest entry, exported where stale."""
    from meta.theta_fit import FIT_NAME, FIT_SIGNATURE, FIT_STEPS, export_fit
    from meta.tasks import SINUSOID

    old = recorded.get(FIT_NAME, {})
    entry = {
        "name": FIT_NAME, "algorithm": "any",
        "task": {**SINUSOID.describe(), "family": FIT_FAMILY},
        "file": f"{FIT_NAME}.onnx", "sha256": old.get("sha256"),
        "inner_lr": paper_config("maml").inner_lr, "steps": FIT_STEPS, "train": None, "metrics": None,
        "graph": FIT_SIGNATURE,
        "inputs": {"export": inputs_hash(code=code, config={"graph": FIT_NAME, "steps": FIT_STEPS})},
    }
    if (old.get("inputs") or {}).get("export") == entry["inputs"]["export"] and _intact(exported, entry):
        return entry, []
    log.info("%s: exporting the θ-fit graph", FIT_NAME)
    export_fit(exported / entry["file"])
    entry["sha256"] = file_sha256(exported / entry["file"])
    return entry, [f"{FIT_NAME}: export"]


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


def fit_parity_error(path: Path) -> float:
    """Largest |ONNX − PyTorch| / max(1, |PyTorch|) of the θ-fit graph against
    meta.model.adapt, for three θ (the paper initialisations of three seeds)
    on seeded tasks of 5 support and 50 query points."""
    import numpy as np
    import torch

    from meta.theta_fit import run_fit, torch_fit
    from meta.model import init_params
    from meta.tasks import SINUSOID

    params = torch.stack([torch.cat([p.reshape(-1) for p in
                                     init_params(torch.Generator().manual_seed(s)).values()])
                          for s in range(3)])
    batch = SINUSOID.sample_batch(3, 5, 50, torch.Generator().manual_seed(PARITY_SEED))
    feeds = {"params": params, "support_x": batch.support_x, "support_y": batch.support_y,
             "query_x": batch.query_x, "inner_lr": paper_config("maml").inner_lr}
    got = run_fit(path, feeds)
    expected = dict(zip(("query_y", "support_loss"), torch_fit(**feeds)))
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
        error = fit_parity_error(path) if fit else parity_error(path, entry["algorithm"])
        if error > PARITY_TOLERANCE:
            problems.append(f"{name}: ONNX and PyTorch {'fits' if fit else 'meta-iterations'} differ by {error:.3g} "
                            f"(> {PARITY_TOLERANCE:g}); run `maml-site build`")
        else:
            log.info("%s: file matches the manifest; ONNX vs PyTorch %s max error %.2g",
                     name, "fit" if fit else "meta-iteration", error)
    return problems, []
