"""MAML (Finn et al., 2017), exact second order through m inner steps.

For each task i, in parallel over the batch:
  1. adapt:   ϕ_i = θ − α ∇L_i,train(θ)            (m times)
  2. evaluate the adapted parameters on the task's test data: L_i,test(ϕ_i)
  3. meta-gradient: ∇_θ L_i,test(ϕ_i) = (I − α H_i(θ)) ∇L_i,test(ϕ_i)  (one step)
     — the gradient flows *through* the inner update; for m steps it is a
     product of such factors, applied right to left.
The outer optimiser then steps θ with the mean over tasks.

H_i v is computed with the network's hand-written Hessian-vector product
(meta.model.hessian_vector_product), reusing the activations of the inner
step's backward pass: no autograd graph is built at all. tests/test_meta.py
holds it against torch.autograd (test_hessian_vector_product_matches_autograd).
"""
from __future__ import annotations

from ..model import Params, hessian_vector_product, loss_grad_cache, sgd_step, task_mean
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "adam"
OPTIONS: dict = {}


# --8<-- [start:meta_gradient]
def meta_gradient(params: Params, batch: TaskBatch, cfg) -> tuple[Params, dict]:
    alpha = cfg.inner_lr
    phi = params                               # shared by all tasks until the first step

    # 1. Inner loop: m steps of gradient descent on each task's support set.
    path = []                                  # (ϕ_j, activations) for step 3
    for _ in range(cfg.inner_steps):
        _, grads, cache = loss_grad_cache(phi, batch.support_x, batch.support_y, with_loss=False)
        path.append((phi, cache))
        phi = sgd_step(phi, grads, alpha)

    # 2. Loss of the adapted parameters on each task's query set, and its gradient in ϕ.
    query_loss, meta_grad, _ = loss_grad_cache(phi, batch.query_x, batch.query_y)

    # 3. Chain rule back through the inner steps: ∂ϕ_{j+1}/∂ϕ_j = I − α H(ϕ_j).
    for phi_j, cache in reversed(path):
        hv = hessian_vector_product(phi_j, cache, meta_grad)
        meta_grad = sgd_step(meta_grad, hv, alpha)    # g ← g − α H g

    grads = task_mean(meta_grad)
    return grads, {"meta_loss": query_loss.mean()}
# --8<-- [end:meta_gradient]
