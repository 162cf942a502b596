"""Pure-PyTorch meta-learning: tasks, a functional MLP, five meta-learning
algorithms, one training loop, the evaluation protocol and ONNX export.

Knows nothing about web sites; ``site_builder`` imports it, never the reverse.

For reusing the exported models: ``load_params`` reads ``exported/<name>.pt``
back into PyTorch, ``predict`` and ``fine_tune`` run one task with it (see
``meta/weights.py``).
"""
from .weights import adapt, check_inputs, fine_tune, load_params, predict, run_graph

__all__ = ["adapt", "check_inputs", "fine_tune", "load_params", "predict", "run_graph"]
