"""First-order MAML: MAML with ∂ϕ/∂θ taken as the identity.

The meta-gradient is simply the query-set gradient at the adapted
parameters, ∇L_i,test(ϕ_i); the Hessian terms are dropped.
"""
from __future__ import annotations

from ..model import Params, adapt, loss_and_grad, task_mean
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "adam"
OPTIONS: dict = {}


# --8<-- [start:meta_gradient]
def meta_gradient(params: Params, batch: TaskBatch, cfg) -> tuple[Params, dict]:
    phi = adapt(params, batch.support_x, batch.support_y, cfg.inner_steps, cfg.inner_lr)
    query_loss, query_grads = loss_and_grad(phi, batch.query_x, batch.query_y)
    grads = task_mean(query_grads)
    return grads, {"meta_loss": query_loss.mean()}
# --8<-- [end:meta_gradient]
