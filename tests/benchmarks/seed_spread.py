"""How much a model's accuracy depends on its training seed.

    python tests/benchmarks/seed_spread.py                      # MAML, seeds 0-4 (~5 min)
    python tests/benchmarks/seed_spread.py --model reptile-sinusoid --seeds 0,1 --json

Trains one registered model (site_builder.config, profile "paper") once per
seed, exactly as the build does (meta.train.train, compiled), and scores
each run on the validation tasks (meta.evaluate.VALIDATION_SEED, never the
test tasks of the Results page): 5-shot query MSE after one and after ten
steps, its median, and how many tasks diverged. Writes nothing; the build
always trains seed 0 (or --seed), whatever this prints.

Use it to tell a property of the method from a property of one training run:
a mean after ten steps that is null for most seeds while the median barely
moves is the heavy tail of plain gradient descent on a few curved support
sets, not a bad seed.
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

from meta.evaluate import VALIDATION_SEED, evaluate  # noqa: E402
from meta.train import train  # noqa: E402
from site_builder.config import MODELS, PROFILES  # noqa: E402


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
    return seeds


def _cell(value, width: int) -> str:
    return f"{'null':>{width}}" if value is None else f"{value:>{width}.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="maml-sinusoid", choices=sorted(MODELS),
                        help="registered model to train (default maml-sinusoid)")
    parser.add_argument("--seeds", type=seeds_arg, default=seeds_arg("0-4"),
                        help="training seeds, as 0-4 or 0,3,7 (default 0-4)")
    parser.add_argument("--tasks", type=int, default=1000, help="validation tasks (default 1000)")
    parser.add_argument("--profile", default="paper", choices=sorted(PROFILES),
                        help="training profile (default paper; CI runs quick to keep this working)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = parser.parse_args(argv)
    if args.tasks < 2:
        parser.error("--tasks must be at least 2")

    torch.set_num_threads(1)
    spec = MODELS[args.model]
    rows = {}
    print(f"{args.model}: {args.profile} profile, {args.tasks} validation tasks, 5-shot", flush=True)
    print(f"{'seed':>5}{'train s':>9}{'inner lr':>10}{'1 step':>9}{'10 steps':>10}{'median':>9}"
          f"{'diverged':>10}", flush=True)
    for seed in args.seeds:
        cfg = spec.train_config(PROFILES[args.profile], seed)
        started = time.perf_counter()
        result = train(cfg, device="cpu", progress=False, compile=spec.compiles(args.profile))
        seconds = time.perf_counter() - started
        try:
            lr = spec.inner_lr(cfg, result.params)
        except ValueError as error:     # every candidate rate diverged on some task
            print(f"{seed:>5}{seconds:>9.0f}  {error}", flush=True)
            rows[seed] = {"train_s": round(seconds, 1), "error": str(error)}
            continue
        curve = evaluate(result.params, lr, num_tasks=args.tasks, shots=(5,),
                         seed=VALIDATION_SEED)["query_mse"]["5"]
        rows[seed] = {"train_s": round(seconds, 1), "inner_lr": lr, "step1": curve["mean"][1],
                      "step10": curve["mean"][-1], "median10": curve["median"][-1],
                      "diverged10": curve["diverged"][-1]}

        row = rows[seed]
        print(f"{seed:>5}{seconds:>9.0f}{lr:>10.5g}{_cell(row['step1'], 9)}{_cell(row['step10'], 10)}"
              f"{_cell(row['median10'], 9)}{row['diverged10']:>10}", flush=True)
    if args.json:
        print(json.dumps({args.model: rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
