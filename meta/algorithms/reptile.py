"""Reptile (Nichol et al., 2018): θ ← θ + β (mean_i ϕ_i − θ).

ϕ_i is reached by k plain gradient steps on all of task i's data. The update
needs no meta-gradient: with the outer optimiser plain SGD at learning rate β,
handing it the "gradient" θ − mean_i ϕ_i gives exactly the Reptile step.
"""
from __future__ import annotations

import torch

from ..model import Params, adapt, loss, task_mean
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "sgd"
OPTIONS: dict = {}
MIN_INNER_STEPS = 1          # with k = 0 there is no ϕ to move towards


# --8<-- [start:meta_gradient]
def meta_gradient(params: Params, batch: TaskBatch, cfg) -> tuple[Params, dict]:
    x = torch.cat([batch.support_x, batch.query_x], dim=1)
    y = torch.cat([batch.support_y, batch.query_y], dim=1)
    phi = adapt(params, x, y, cfg.inner_steps, cfg.inner_lr)      # [T, ...] after one step
    grads = task_mean({name: params[name] - phi[name] for name in params})
    return grads, {"meta_loss": loss(phi, x, y).mean()}
# --8<-- [end:meta_gradient]
