"""Five meta-learning algorithms behind one interface.

Each module defines

    meta_gradient(params, batch, cfg) -> (grads, metrics)

``params`` are the meta-parameters θ (a dict of tensors without a task
dimension), ``batch`` a TaskBatch of T tasks, ``cfg`` the TrainConfig.
``grads`` has the shapes of ``params`` and is handed to the outer optimiser;
``metrics`` maps names to 0-d tensors (kept on the device: no sync per step).
Each module also names its outer optimiser (``OUTER_OPTIMIZER``: "adam" or
"sgd") and its algorithm-specific options with defaults (``OPTIONS``).
"""
from __future__ import annotations

from types import ModuleType

from . import fomaml, imaml, maml, pretrained, reptile

ALGORITHMS: dict[str, ModuleType] = {
    "pretrained": pretrained,
    "maml": maml,
    "fomaml": fomaml,
    "reptile": reptile,
    "imaml": imaml,
}


def get(name: str) -> ModuleType:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; allowed: {', '.join(ALGORITHMS)}") from None
