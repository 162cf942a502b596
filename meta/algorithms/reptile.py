"""Reptile (Nichol et al., 2018): θ ← θ + β (mean_i ϕ_i − θ).

ϕ_i is reached by k plain gradient steps on all of task i's data. The update
needs no meta-gradient: with the outer optimiser plain SGD at learning rate β,
handing it the "gradient" θ − mean_i ϕ_i gives exactly the Reptile step.
"""
from __future__ import annotations

import torch

from ..model import Params, adapt, loss, per_task
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "sgd"
OPTIONS: dict = {}


# --8<-- [start:meta_gradient]
def meta_gradient(params: Params, batch: TaskBatch, cfg) -> tuple[Params, dict]:
    x = torch.cat([batch.support_x, batch.query_x], dim=1)
    y = torch.cat([batch.support_y, batch.query_y], dim=1)
    phi = adapt(per_task(params, x.shape[0]), x, y, cfg.inner_steps, cfg.inner_lr)
    grads = {name: params[name] - phi[name].mean(0) for name in params}
    return grads, {"meta_loss": loss(phi, x, y).mean()}
# --8<-- [end:meta_gradient]
