"""How much a model's accuracy depends on its training seed.

    python tests/benchmarks/seed_spread.py                       # MAML, seeds 0-4
    python tests/benchmarks/seed_spread.py --model all --seeds 0,1 --json
    python tests/benchmarks/seed_spread.py --profile quick --seeds 0,1 --tasks 50 --json   # CI

Trains one registered model (site_builder.config) once per seed exactly as
the build does: meta.train.train (compiled in paper runs), checkpoints scored
on validation tasks with the model's own inner procedure, the checkpoint that
``meta.evaluate.selection_key`` prefers kept, and its adaptation rate chosen
on validation tasks where the model chooses one (site_builder.stages'
selection settings, so the numbers here are those of the models the build
would keep). Then it reports the selected model's figures on the protocol's
test tasks (meta.evaluate.EVAL_SEED; nothing is chosen from them, and the
build always trains seed 0 or --seed, whatever this prints; --on validation
reports on the validation draw instead): 5-shot query MSE after one and
after ten steps, mean, median and blown-up tasks (contracts.md), and whether
the mean falls at every step from 1 to 10.

Use it to tell a property of the method from a property of one training run:
a mean that is fine for one seed and blown up for others is the training
draw, not the method.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from meta.evaluate import (EVAL_SEED, VALIDATION_SEED, CheckpointSelector, evaluate,  # noqa: E402
                           procedure_arguments)
from meta.train import train  # noqa: E402
from site_builder.config import MODELS, PROFILES  # noqa: E402
from site_builder.stages import selection_settings  # noqa: E402


def seeds_arg(text: str) -> list[int]:
    try:
        if "-" in text:
            low, high = (int(v) for v in text.split("-"))
            seeds = list(range(low, high + 1))
        else:
            seeds = [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must look like 0-4 or 0,3,7; got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"seeds must be integers >= 0; got {text!r}")
    if {EVAL_SEED, VALIDATION_SEED} & set(seeds):
        raise argparse.ArgumentTypeError("seeds must not be the evaluation or validation seed")
    return seeds


def _cell(value, width: int) -> str:
    return f"{'null':>{width}}" if value is None else f"{value:>{width}.3f}"


def train_selected(name: str, profile: str, seed: int) -> dict:
    """Train ``name`` with ``seed`` as the build does and keep the checkpoint its
    selection keeps. Returns {params, inner_lr, procedure, chosen, train_s, error}."""
    spec = MODELS[name]
    cfg = spec.train_config(PROFILES[profile], seed)
    procedure = spec.inner_procedure(cfg)
    settings = selection_settings(profile, procedure)
    selector = CheckpointSelector(lambda params: spec.inner_lr(cfg, params),
                                  num_tasks=settings["tasks"], seed=settings["seed"],
                                  **procedure_arguments(procedure))
    started = time.perf_counter()
    train(cfg, device="cpu", progress=False, compile=spec.compiles(profile),
          checkpoints=settings["checkpoints"], on_checkpoint=selector)
    seconds = time.perf_counter() - started
    if selector.params is None:          # every checkpoint without a usable rate
        return {"train_s": round(seconds, 1), "error": selector.scores[-1]["skipped"]}
    return {"params": selector.params, "inner_lr": spec.inner_lr(cfg, selector.params),
            "procedure": procedure, "chosen": selector.chosen, "train_s": round(seconds, 1)}


def figures(curve: dict) -> dict:
    """The robust figures of one K-shot curve: mean, median, blown-up tasks
    after one and ten steps, and whether the mean falls at every step 1→10."""
    mean = curve["mean"]
    last = len(mean) - 1
    falls = all(a is not None and b is not None and b <= a for a, b in zip(mean[1:], mean[2:]))
    return {"step1": mean[1], "median1": curve["median"][1], "blown_up1": curve["diverged"][1],
            "step10": mean[last], "median10": curve["median"][last],
            "blown_up10": curve["diverged"][last], "monotone": falls}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    meta_learned = sorted(n for n, s in MODELS.items() if s.algorithm != "pretrained")
    parser.add_argument("--model", default="maml-sinusoid", choices=sorted(MODELS) + ["all"],
                        help="registered model to train, or all meta-learned ones (default maml-sinusoid)")
    parser.add_argument("--seeds", type=seeds_arg, default=seeds_arg("0-4"),
                        help="training seeds, as 0-4 or 0,3,7 (default 0-4)")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks to report on (default 1000)")
    parser.add_argument("--on", choices=("test", "validation"), default="test",
                        help="report on the protocol's test tasks (default) or the validation tasks")
    parser.add_argument("--profile", default="paper", choices=sorted(PROFILES),
                        help="training profile (default paper; CI runs quick to keep this working)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = parser.parse_args(argv)
    if args.tasks < 2:
        parser.error("--tasks must be at least 2")

    torch.set_num_threads(1)
    names = meta_learned if args.model == "all" else [args.model]
    report_seed = EVAL_SEED if args.on == "test" else VALIDATION_SEED
    results: dict = {}
    for name in names:
        rows = results[name] = {}
        print(f"{name}: {args.profile} profile, checkpoint kept as the build keeps it; "
              f"{args.tasks} {args.on} tasks, 5-shot", flush=True)
        print(f"{'seed':>5}{'train s':>9}{'kept':>7}{'inner lr':>10}{'1 step':>9}{'median':>9}"
              f"{'blown':>7}{'10 steps':>10}{'median':>9}{'blown':>7}{'falls':>7}", flush=True)
        for seed in args.seeds:
            run = train_selected(name, args.profile, seed)
            if "error" in run:
                print(f"{seed:>5}{run['train_s']:>9.0f}  {run['error']}", flush=True)
                rows[seed] = run
                continue
            curve = evaluate(run["params"], run["inner_lr"], num_tasks=args.tasks, shots=(5,),
                             seed=report_seed,
                             **procedure_arguments(run["procedure"]))["query_mse"]["5"]
            row = rows[seed] = {"train_s": run["train_s"], "kept": run["chosen"],
                                "inner_lr": run["inner_lr"], **figures(curve)}
            print(f"{seed:>5}{row['train_s']:>9.0f}{row['kept']:>7}{row['inner_lr']:>10.5g}"
                  f"{_cell(row['step1'], 9)}{_cell(row['median1'], 9)}{row['blown_up1']:>7}"
                  f"{_cell(row['step10'], 10)}{_cell(row['median10'], 9)}{row['blown_up10']:>7}"
                  f"{'yes' if row['monotone'] else 'no':>7}", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
