"""Meta-iterations per second of the meta-step graphs in onnxruntime for Python
(CPU, one thread): meta-batch 25, K = 10 + 10, the outputs fed back as the
next iteration's state, task batches drawn beforehand. A rough proxy for the
browser (onnxruntime-web, one wasm thread), which runs about half as fast.

    python tests/benchmarks/meta_step_speed.py [--exported DIR] [--seconds 3] [--json]

Graphs come from DIR (default exported/) where its manifest lists them, else
they are exported into a temporary folder first.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from meta.export import onnx_session  # noqa: E402
from meta.meta_step import INPUT_NAMES, OUTPUT_NAMES, example_inputs, export_meta_step  # noqa: E402
from meta.tasks import SINUSOID  # noqa: E402
from site_builder.meta_step_stage import BUILD_ALGORITHMS, entry_name, paper_config  # noqa: E402


def measure(path: Path, algorithm: str, seconds: float) -> dict:
    cfg = paper_config(algorithm)
    start = {n: t.numpy() for n, t in example_inputs(cfg).items()}
    generator = torch.Generator().manual_seed(0)
    batches = [{n: t.numpy() for n, t in SINUSOID.sample_batch(25, 10, 10, generator)._asdict().items()}
               for _ in range(64)]
    session = onnx_session(path)
    state = {n: start[n] for n in ("params", "adam_m", "adam_v", "step")}
    hyper = {"inner_lr": start["inner_lr"], "meta_lr": start["meta_lr"]}
    for i in range(20):                                               # warm-up
        out = session.run(list(OUTPUT_NAMES), {**state, **batches[i % 64], **hyper})
    count, began, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - began < seconds:
        for _ in range(50):
            out = session.run(list(OUTPUT_NAMES), {**state, **batches[count % 64], **hyper})
            state = dict(zip(("params", "adam_m", "adam_v", "step"), out[:4]))
            count += 1
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert np.isfinite(state["params"]).all()
    # Per CPU second too: on a machine shared with other work the wall clock
    # counts time spent waiting for a core; one thread's CPU time does not.
    return {"iters_per_s": round(count / elapsed), "ms": round(1000 * elapsed / count, 3),
            "iters_per_cpu_s": round(count / cpu), "kb": round(path.stat().st_size / 1024, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exported", type=Path, default=REPO_ROOT / "exported")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for algorithm in BUILD_ALGORITHMS:           # the meta-step graphs (not the θ-fit ones)
            path = args.exported / f"{entry_name(algorithm)}.onnx"
            if not path.is_file():
                path = Path(tmp) / path.name
                export_meta_step(paper_config(algorithm), path)
            results[algorithm] = measure(path, algorithm, args.seconds)
            if not args.json:
                r = results[algorithm]
                print(f"{algorithm:>10}: {r['iters_per_s']:6d} meta-iterations/s "
                      f"({r['ms']} ms each; {r['iters_per_cpu_s']} per CPU second), "
                      f"graph {r['kb']} KB")
    if args.json:
        print(json.dumps({"onnxruntime_meta_iters_per_s": {a: r["iters_per_s"] for a, r in results.items()},
                          "onnxruntime_meta_iters_per_cpu_s": {a: r["iters_per_cpu_s"]
                                                               for a, r in results.items()},
                          "graph_kb": {a: r["kb"] for a, r in results.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
