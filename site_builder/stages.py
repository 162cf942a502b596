"""The per-model stages: train -> evaluate -> export -> figures.

Each stage reads its inputs, hashes them, and compares the hash with the one
the manifest recorded for the file it wrote last time. If they match (and the
file is still there, unmodified) the stage does nothing; otherwise it computes
and writes its file atomically. ``run_model`` chains the stages for one model
and returns that model's manifest entry; it runs in a worker process when
models are built in parallel, so everything it takes and returns is plain data.
"""
from __future__ import annotations

import copy
import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from meta.tasks import SINUSOID

from . import atomic
from .config import EVAL_MAX_STEPS, EVAL_SHOTS, EXPORT_STEPS, MODELS, PROFILES
from .errors import BuildFailure
from .hashing import (EVALUATION_SOURCES, EXPORT_SOURCES, FIGURE_SOURCES, TRAINING_SOURCES,
                      file_sha256, inputs_hash, source_hashes)

log = logging.getLogger("site_builder")

STAGES = ("train", "evaluate", "export", "figures")
#: Where a model's manifest entry records each stage's file ({"file", "sha256"});
#: the ONNX graph's record is the contract's top-level "file" and "sha256".
RECORD_KEYS = {"train": "weights", "evaluate": "results", "figures": "figure"}


def weights_file(name: str) -> str:
    return f"{name}.pt"


def results_file(name: str) -> str:
    return f"{name}.results.json"


def onnx_file(name: str) -> str:
    return f"{name}.onnx"


def figure_file(name: str) -> str:
    """Relative to exported/; the staged site serves it as assets/figures/<basename>."""
    return f"figures/sine-fit-{name}.svg"


@dataclass(frozen=True)
class ModelJob:
    """What one model's pipeline needs; picklable for a worker process."""
    name: str
    profile: str
    seed: int
    device: str
    exported: Path
    repo_root: Path
    recorded: dict                      # the model's entry in the current manifest, {} if none
    stages: tuple[str, ...] = STAGES
    retrain: bool = False
    progress: bool | None = None        # train()'s progress bar: None = only on a terminal
    log_progress: bool = True           # also log a plain line every tenth of training


@dataclass
class ModelOutcome:
    name: str
    entry: dict
    ran: list[str] = field(default_factory=list)   # stages that computed and wrote a file


def _record(exported: Path, file: str) -> dict:
    return {"file": file, "sha256": file_sha256(exported / file)}


def _bytes_record(file: str, data: bytes) -> dict:
    """The record of ``data`` written (or about to be) as ``file``: no reading it back."""
    return {"file": file, "sha256": hashlib.sha256(data).hexdigest()}


def _output_record(entry: dict, stage: str) -> dict | None:
    if stage == "export":
        return {"file": entry["file"], "sha256": entry["sha256"]} if "file" in entry else None
    return entry.get(RECORD_KEYS[stage])


def _is_current(exported: Path, entry: dict, stage: str, new_hash: str) -> bool:
    """The stage's recorded inputs hash equals new_hash and its file is intact."""
    record = _output_record(entry, stage)
    if entry.get("inputs", {}).get(stage) != new_hash or not record:
        return False
    path = exported / record.get("file", "")
    return path.is_file() and file_sha256(path) == record.get("sha256")


def require_recorded_weights(name: str, path: Path, record: dict | None) -> None:
    """Stop the build unless the weights at ``path`` are the ones the manifest
    recorded (``record``: {file, sha256}): a stage that does not train uses
    them, and a missing or changed file says which command makes them again."""
    if not record or not path.is_file():
        raise BuildFailure(f"{name}: no weights in {path.parent}; "
                           f"run `maml-site train {name}` or `maml-site build`")
    if file_sha256(path) != record.get("sha256"):
        raise BuildFailure(f"{name}: {path} does not match the sha256 in "
                           f"the manifest; run `maml-site train {name}` to retrain it")


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _checkpoint_bytes(checkpoint: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def inner_procedure(job: ModelJob) -> dict:
    """How the job's model adapts (evaluation, selection, graph, figure),
    recorded in its manifest entry: the safeguarded step of meta.evaluate, or
    for iMAML the proximal steps of its training (ModelSpec.inner_procedure)."""
    spec = MODELS[job.name]
    return spec.inner_procedure(spec.train_config(PROFILES[job.profile], job.seed))


def _arguments(procedure: dict) -> dict:
    """{"halvings", "lam"}: the keyword arguments that run ``procedure``."""
    from meta.evaluate import procedure_arguments

    return procedure_arguments(procedure)


def _protocol(job: ModelJob, inner_lr: float) -> dict:
    from meta.evaluate import EVAL_SEED

    return {"inner_lr": inner_lr, "num_tasks": PROFILES[job.profile].eval_tasks,
            "shots": list(EVAL_SHOTS), "max_steps": EVAL_MAX_STEPS, "seed": EVAL_SEED,
            "inner_procedure": inner_procedure(job)}


def selection_settings(profile: str, procedure: dict | None = None) -> dict:
    """How the checkpoint a model keeps is chosen (meta.evaluate.CheckpointSelector):
    evenly spaced checkpoints of the run, each scored on validation tasks with
    the model's own inner procedure. The paper profile scores 5,000 tasks, as
    contracts.md asks of any selection; quick runs (tests) score fewer.
    ``procedure``: the model's (default: the safeguarded step)."""
    from meta.evaluate import (HALVINGS, SELECTION_CHECKPOINTS, SELECTION_TASKS, VALIDATION_SEED,
                               inner_procedure as describe)

    paper = profile == "paper"
    return {"checkpoints": SELECTION_CHECKPOINTS if paper else 2,
            "tasks": SELECTION_TASKS if paper else PROFILES[profile].eval_tasks,
            "seed": VALIDATION_SEED, "inner_procedure": procedure or describe(HALVINGS)}


# What each stage's output depends on. Downstream stages depend on the weights
# through their sha256, so new weights make every later stage stale.
def train_inputs_hash(repo_root: Path, config: dict, seed, selection: dict | None) -> str:
    """What trained weights depend on: the training config, the seed, the
    checkpoint selection settings and the code of both (the selection scores
    checkpoints with meta/evaluate.py). `maml-site check` compares it with the
    recorded one too."""
    return inputs_hash(config=config, seed=seed, selection=selection,
                       code=source_hashes(repo_root, TRAINING_SOURCES + ("meta/evaluate.py",)))


def train_hash(job: ModelJob, cfg) -> str:
    return train_inputs_hash(job.repo_root, cfg.to_dict(), job.seed,
                             selection_settings(job.profile, inner_procedure(job)))


def selection_summary(record: dict) -> dict:
    """The manifest's "selection": the settings, the criterion, the chosen
    iteration and each checkpoint's score (the checkpoint file keeps the curves)."""
    keep = ("iteration", "inner_lr", "blown_up", "rises", "score", "skipped")
    return {**{k: v for k, v in record.items() if k != "checkpoints"},
            "checkpoints": [{k: c[k] for k in keep if k in c} for c in record["checkpoints"]]}


def downstream_hashes(job: ModelJob, weights_sha: str, inner_lr: float) -> dict[str, str]:
    repo = job.repo_root
    return {
        "evaluate": inputs_hash(weights=weights_sha, protocol=_protocol(job, inner_lr),
                                code=source_hashes(repo, EVALUATION_SOURCES)),
        "export": inputs_hash(weights=weights_sha, steps=EXPORT_STEPS,
                              procedure=inner_procedure(job),
                              code=source_hashes(repo, EXPORT_SOURCES)),
        "figures": inputs_hash(weights=weights_sha, inner_lr=inner_lr,
                               procedure=inner_procedure(job),
                               code=source_hashes(repo, FIGURE_SOURCES)),
    }


def adapt_rate_hash(job: ModelJob, weights_sha: str) -> str:
    """Inputs of a rate chosen on validation tasks: the weights, the candidates
    and the evaluation code that scores them."""
    return inputs_hash(weights=weights_sha, candidates=list(MODELS[job.name].adapt_lr),
                       procedure=inner_procedure(job),
                       code=source_hashes(job.repo_root, EVALUATION_SOURCES))


def adapt_rate(job: ModelJob, entry: dict, cfg, params=None) -> float | None:
    """The model's adaptation rate. One chosen on validation tasks is reused
    while its inputs are unchanged; otherwise it is chosen again from ``params``
    (and recorded in ``entry``), or None when no params were given."""
    spec = MODELS[job.name]
    if not spec.validates_lr:
        return spec.inner_lr(cfg)
    new_hash = adapt_rate_hash(job, entry["weights"]["sha256"])
    if entry.get("inputs", {}).get("adapt_lr") == new_hash and "inner_lr" in entry:
        return entry["inner_lr"]
    if params is None:
        return None
    try:
        rate = spec.inner_lr(cfg, params)
    except ValueError as error:        # every candidate diverged on some validation task
        raise BuildFailure(
            f"{job.name}: {error}, so the weights just trained have no adaptation rate to "
            f"evaluate and export with, and exported/ keeps the previous ones. Ways on: "
            f"retrain with another --seed, or add smaller rates to the model's adapt_lr grid "
            f"in site_builder/config.py") from None
    entry.setdefault("inputs", {})["adapt_lr"] = new_hash
    log.info("%s: adapts at %g, the best of %s on validation tasks", job.name, rate,
             ", ".join(f"{lr:g}" for lr in spec.adapt_lr))
    return rate


def _must_train(job: ModelJob, entry: dict, new_train_hash: str) -> bool:
    return "train" in job.stages and (
        job.retrain or not _is_current(job.exported, entry, "train", new_train_hash))


def pending_stages(job: ModelJob) -> list[str]:
    """The stages of `job` that would compute and write a file (cheap: hashes only)."""
    entry = job.recorded
    cfg = MODELS[job.name].train_config(PROFILES[job.profile], job.seed)
    if _must_train(job, entry, train_hash(job, cfg)):
        return list(job.stages)
    if "weights" not in entry or "train" not in entry:
        return list(job.stages)   # run_model will say what is missing
    from meta.train import TrainConfig

    inner_lr = adapt_rate(job, entry, TrainConfig.from_dict(entry["train"]))
    if inner_lr is None:
        return list(job.stages)                # the rate must be chosen again
    hashes = downstream_hashes(job, entry["weights"]["sha256"], inner_lr)
    return [stage for stage in job.stages
            if stage != "train" and not _is_current(job.exported, entry, stage, hashes[stage])]


def run_model(job: ModelJob) -> ModelOutcome:
    from meta.train import TrainConfig, train

    spec = MODELS[job.name]
    exported = job.exported
    entry = copy.deepcopy(job.recorded)
    entry.setdefault("inputs", {})
    ran: list[str] = []

    # --- train -------------------------------------------------------------
    cfg = spec.train_config(PROFILES[job.profile], job.seed)
    new_train_hash = train_hash(job, cfg)
    weights_path = exported / weights_file(job.name)
    if _must_train(job, entry, new_train_hash):
        from meta.evaluate import CheckpointSelector

        settings = selection_settings(job.profile, inner_procedure(job))
        log.info("%s: training (%s, %d iterations, seed %d; the best of %d checkpoints on %d "
                 "validation tasks is kept)", job.name, cfg.algorithm, cfg.iterations, cfg.seed,
                 settings["checkpoints"], settings["tasks"])
        selector = CheckpointSelector(
            lambda candidate: spec.inner_lr(cfg, candidate), num_tasks=settings["tasks"],
            seed=settings["seed"], **_arguments(settings["inner_procedure"]),
            log=(lambda line: log.info("%s: %s", job.name, line)) if job.log_progress else None)
        result = train(cfg, device=job.device, progress=job.progress,
                       log=log.info if job.log_progress else None, desc=job.name,
                       compile=spec.compiles(job.profile), checkpoints=settings["checkpoints"],
                       on_checkpoint=selector)
        if selector.params is None:        # every checkpoint was skipped: no usable rate
            raise BuildFailure(
                f"{job.name}: {selector.scores[-1]['skipped']} (at each of the "
                f"{len(selector.scores)} checkpoints scored), so the weights just trained have no "
                f"adaptation rate to evaluate and export with, and exported/ keeps the previous "
                f"ones. Ways on: retrain with another --seed, or add smaller rates to the model's "
                f"adapt_lr grid in site_builder/config.py")
        record = selector.record()
        selection = {"settings": settings, "criterion": record["criterion"],
                     "shots": record["shots"], "chosen": record["chosen"],
                     "seconds": round(result.checkpoint_seconds, 1),
                     "checkpoints": record["checkpoints"]}
        log.info("%s: kept the checkpoint of iteration %d of %d (scored in %.0f s)", job.name,
                 selector.chosen, cfg.iterations, result.checkpoint_seconds)
        checkpoint = {"params": selector.params, "config": cfg.to_dict(),
                      "history": result.history, "seconds": result.seconds,
                      "device": result.device, "torch": str(torch.__version__),
                      "compiled": result.compiled, "selection": selection}
        data = _checkpoint_bytes(checkpoint)
        # Choose a validated adaptation rate before the new weights replace the
        # old ones: weights that have none stop the build with exported/ as it was.
        entry[RECORD_KEYS["train"]] = _bytes_record(weights_file(job.name), data)
        inner_lr = adapt_rate(job, entry, cfg, selector.params)
        atomic.write_bytes(weights_path, data)
        entry["inputs"]["train"] = new_train_hash
        ran.append("train")
        log.info("%s: trained in %.1f s on %s", job.name, result.seconds, result.device)
    else:
        # Stages after training use the weights on disk, which must be the
        # ones the manifest recorded (with "train" among the stages,
        # _must_train has just checked that).
        if "train" not in job.stages:
            require_recorded_weights(job.name, weights_path, entry.get("weights"))
        checkpoint = load_checkpoint(weights_path)
        inner_lr = adapt_rate(job, entry, TrainConfig.from_dict(checkpoint["config"]),
                              checkpoint["params"])
    params = checkpoint["params"]
    if checkpoint.get("selection"):
        entry["selection"] = selection_summary(checkpoint["selection"])
    else:
        entry.pop("selection", None)
    training = {"seconds": checkpoint["seconds"], "device": checkpoint["device"],
                "torch": checkpoint["torch"], "compiled": checkpoint.get("compiled", False)}
    from meta.export import signature

    procedure = inner_procedure(job)
    arguments = _arguments(procedure)
    entry.update(name=job.name, algorithm=spec.algorithm, task=SINUSOID.describe(),
                 inner_lr=inner_lr, inner_procedure=procedure, steps=EXPORT_STEPS,
                 train=checkpoint["config"], graph=signature(procedure), training=training)
    hashes = downstream_hashes(job, entry["weights"]["sha256"], inner_lr)

    def stale(stage: str) -> bool:
        return stage in job.stages and not _is_current(exported, entry, stage, hashes[stage])

    def done(stage: str, record: dict) -> None:
        if stage == "export":
            entry.update(record)
        else:
            entry[RECORD_KEYS[stage]] = record
        entry["inputs"][stage] = hashes[stage]
        ran.append(stage)

    # --- evaluate ----------------------------------------------------------
    results_path = exported / results_file(job.name)
    if stale("evaluate"):
        from meta.evaluate import evaluate, summary_metrics

        protocol = _protocol(job, inner_lr)
        log.info("%s: evaluating on %d test tasks", job.name, protocol["num_tasks"])
        evaluation = evaluate(params, inner_lr, num_tasks=protocol["num_tasks"],
                              shots=EVAL_SHOTS, max_steps=EVAL_MAX_STEPS, seed=protocol["seed"],
                              **arguments)
        results = {"name": job.name, "algorithm": spec.algorithm, "train": checkpoint["config"],
                   "training": {**training, "history": checkpoint["history"]},
                   "evaluation": evaluation}
        data = atomic.dumps_json(results).encode("utf-8")
        atomic.write_bytes(results_path, data)
        done("evaluate", _bytes_record(results_file(job.name), data))
        entry["metrics"] = summary_metrics(evaluation)

    # --- export ------------------------------------------------------------
    if stale("export"):
        from meta.export import export_sinusoid

        log.info("%s: exporting the ONNX adaptation graph (%d steps)", job.name, EXPORT_STEPS)
        export_sinusoid(params, exported / onnx_file(job.name), steps=EXPORT_STEPS, **arguments)
        done("export", _record(exported, onnx_file(job.name)))

    # --- figures -----------------------------------------------------------
    if stale("figures"):
        from .figures import sine_fit_svg

        log.info("%s: rendering %s", job.name, figure_file(job.name))
        data = sine_fit_svg(params, inner_lr, f"{job.name}: 5-shot fine-tuning", **arguments)
        atomic.write_bytes(exported / figure_file(job.name), data)
        done("figures", _bytes_record(figure_file(job.name), data))

    return ModelOutcome(job.name, entry, ran)
