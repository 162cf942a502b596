"""The pretrained baseline: joint training over tasks, no inner update (m = 0).

min_θ E_τ[L_τ(θ)]. The gradient is the mean of the task gradients; the
model never sees that it will be fine-tuned later.
"""
from __future__ import annotations

import torch

from ..model import Params, loss_and_grad, task_mean
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "adam"
OPTIONS: dict = {}


# --8<-- [start:meta_gradient]
def meta_gradient(params: Params, batch: TaskBatch, cfg) -> tuple[Params, dict]:
    # Every point of every task counts the same: pool support and query data.
    x = torch.cat([batch.support_x, batch.query_x], dim=1)
    y = torch.cat([batch.support_y, batch.query_y], dim=1)
    task_losses, task_grads = loss_and_grad(params, x, y)     # θ is shared by all tasks
    # ERM: the gradient of the mean loss is the mean of the task gradients.
    grads = task_mean(task_grads)
    return grads, {"meta_loss": task_losses.mean()}
# --8<-- [end:meta_gradient]
