"""meta/toy.py against per-task autograd references (float64).

Each reference below is the textbook definition computed with torch.autograd,
one task and one θ at a time: the loss of g(x) = softplus(a x + b), m plain
gradient steps, the meta-gradient differentiated through them, iMAML's
implicit gradient from the exact Hessian, and the quadratic of the curvature
demo. The batched, hand-differentiated functions must agree with them.
"""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from meta import toy

torch.set_default_dtype(torch.float32)
D = torch.float64
X = toy.inputs(D)
TASKS = toy.tasks_tensor(dtype=D)
THETAS = torch.tensor([[0.1, 0.9], [0.5, 0.5], [0.95, 0.2]], dtype=D)


def ref_loss(phi, task):
    y = F.softplus(task[0] * X + task[1])
    return (F.softplus(phi[0] * X + phi[1]) - y).pow(2).mean()


def ref_grad(phi, task, create_graph=False):
    return torch.autograd.grad(ref_loss(phi, task), phi, create_graph=create_graph)[0]


def ref_adapt(theta, task, lr, steps, lam=0.0):
    phi = theta
    path = [phi]
    for _ in range(steps):
        # A proximal-gradient step: the linearised loss plus both quadratic terms, minimised.
        phi = (phi - lr * ref_grad(phi, task, create_graph=True) + lr * lam * theta) / (1 + lr * lam)
        path.append(phi)
    return path


def leaf(theta):
    return theta.clone().requires_grad_(True)


def test_loss_gradient_and_hessian_match_autograd():
    for theta, task in itertools.product(THETAS, TASKS):
        phi = leaf(theta)
        loss, grad, hess = toy.loss_grad_hessian(theta.reshape(1, 1, 2),
                                                 toy.targets(task.reshape(1, 2), X), X)
        assert loss.item() == pytest.approx(ref_loss(phi, task).item(), abs=1e-12)
        torch.testing.assert_close(grad[0, 0], ref_grad(phi, task), atol=1e-12, rtol=0)
        exact = torch.autograd.functional.hessian(lambda p: ref_loss(p, task), theta)
        torch.testing.assert_close(hess[0, 0], exact, atol=1e-12, rtol=0)


def test_landscape_is_each_tasks_loss_plus_the_proximal_term():
    anchor = torch.tensor([0.4, 0.6], dtype=D)
    grid = toy.landscape(THETAS, TASKS, anchor, lam=2.5)
    for (i, task), (j, theta) in itertools.product(enumerate(TASKS), enumerate(THETAS)):
        expected = ref_loss(theta, task) + 1.25 * (theta - anchor).pow(2).sum()
        assert grid[i, j].item() == pytest.approx(expected.item(), abs=1e-12)
    assert toy.landscape(THETAS, TASKS).shape == (2, 3)


@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_adaptation_trajectory_matches_autograd_steps(lam):
    path, losses = toy.adapt(THETAS, TASKS, 0.1, 6, lam=lam)
    assert path.shape == (2, 3, 7, 2) and losses.shape == (2, 3, 7)
    for (i, task), (j, theta) in itertools.product(enumerate(TASKS), enumerate(THETAS)):
        ref = ref_adapt(leaf(theta), task, 0.1, 6, lam)
        torch.testing.assert_close(path[i, j], torch.stack(ref).detach(), atol=1e-12, rtol=0)
        assert losses[i, j, -1].item() == pytest.approx(ref_loss(ref[-1], task).item(), abs=1e-12)


def test_maml_gradient_is_exact_through_every_number_of_steps():
    """The known version's finite-difference Jacobian is right for one step
    only; ours must match autograd through m = 0..8 steps."""
    grads = toy.maml_gradients(THETAS, TASKS, 0.3, 8)
    for (i, task), (j, theta) in itertools.product(enumerate(TASKS), enumerate(THETAS)):
        for m in range(9):
            phi0 = leaf(theta)
            final = ref_adapt(phi0, task, 0.3, m)[-1]
            expected = torch.autograd.grad(ref_loss(final, task), phi0)[0]
            torch.testing.assert_close(grads[i, j, m], expected, atol=1e-11, rtol=0)


def test_first_order_and_reptile_directions():
    path, _, fo, _ = toy.unroll(THETAS, TASKS, 0.2, 4)
    rep = toy.reptile_gradients(path)
    for (i, task), (j, theta) in itertools.product(enumerate(TASKS), enumerate(THETAS)):
        ref = [p.detach() for p in ref_adapt(leaf(theta), task, 0.2, 4)]
        for m in range(5):
            torch.testing.assert_close(fo[i, j, m], ref_grad(leaf(ref[m]), task), atol=1e-12, rtol=0)
            torch.testing.assert_close(rep[i, j, m], theta - ref[m], atol=1e-12, rtol=0)
    # Reptile with one inner step is a plain gradient step on the task loss: θ − ϕ_1 = α ∇L(θ).
    torch.testing.assert_close(rep[:, :, 1], 0.2 * fo[:, :, 0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("lam", [0.5, 2.0, 20.0])
def test_implicit_gradient_cg_converges_to_the_exact_solve(lam):
    path, _ = toy.adapt(THETAS, TASKS, 0.1, 10, lam=lam)
    phi = path[:, :, -1]
    iterates = toy.implicit_gradient_cg(phi, TASKS, lam, 5)
    exact = toy.implicit_gradient_exact(phi, TASKS, lam)
    for (i, task), (j, _) in itertools.product(enumerate(TASKS), enumerate(THETAS)):
        p = leaf(phi[i, j])
        hess = torch.autograd.functional.hessian(lambda q: ref_loss(q, task), phi[i, j])
        reference = torch.linalg.solve(torch.eye(2, dtype=D) + hess / lam, ref_grad(p, task))
        torch.testing.assert_close(exact[i, j], reference, atol=1e-12, rtol=1e-10)
        errors = (iterates[i, j] - reference).norm(dim=-1)
        assert errors[0] == pytest.approx(reference.norm().item())      # g_0 = 0
        assert errors[1] < errors[0]                                      # one step helps
        assert errors[2] < 1e-9 * max(1.0, reference.norm().item())      # 2-D: exact after 2
        # The stopping test fires: later iterations leave the solution alone.
        torch.testing.assert_close(iterates[i, j, 5], iterates[i, j, 2], atol=1e-12, rtol=0)


def test_proximal_steps_converge_to_the_stationary_point_for_any_lambda():
    """∇L(ϕ) + λ (ϕ − θ) = 0 at the end, even where αλ > 2 would make plain steps diverge."""
    for lam in (0.3, 5.0, 100.0):
        path, _, grads, _ = toy.unroll(THETAS, TASKS, 0.2, 300, lam=lam)
        residual = grads[:, :, -1] + lam * (path[:, :, -1] - THETAS)
        assert residual.abs().max() < 1e-8


def test_implicit_gradient_is_finite_at_lambda_zero():
    phi = THETAS.reshape(1, 3, 2).expand(2, 3, 2)
    assert torch.isfinite(toy.implicit_gradient_cg(phi, TASKS, 0.0, 4)).all()
    assert torch.isfinite(toy.implicit_gradient_exact(phi, TASKS, 0.0)).all()


def test_accumulated_loss_is_the_sum_of_adapted_task_losses():
    acc = toy.accumulated_loss(THETAS, TASKS, 0.1, 3)
    assert acc.shape == (4, 3)
    for j, theta in enumerate(THETAS):
        for m in range(4):
            total = sum(ref_loss(ref_adapt(leaf(theta), task, 0.1, m)[-1], task) for task in TASKS)
            assert acc[m, j].item() == pytest.approx(total.item(), abs=1e-12)


def test_curvature_demo_against_autograd():
    c = torch.tensor([[2.0, 0.7], [0.3, 1.0]], dtype=D)      # not symmetric: f uses (C + Cᵀ)/2
    center = torch.tensor([0.2, -0.4], dtype=D)
    g = torch.tensor([0.5, -1.0], dtype=D)
    sym = (c + c.T) / 2

    def f(p):
        d = p - center
        return 0.5 * d @ sym @ d + g @ p

    for theta in THETAS:
        t = leaf(theta)
        phi = t - 0.25 * torch.autograd.grad(f(t), t, create_graph=True)[0]
        true = torch.autograd.grad(f(phi), t, retain_graph=True)[0]
        p2 = phi.detach().requires_grad_(True)
        first = torch.autograd.grad(f(p2), p2)[0]
        got_phi, got_true, got_first = toy.curvature_meta_gradients(theta, c, center, g, 0.25)
        torch.testing.assert_close(got_phi, phi.detach(), atol=1e-12, rtol=0)
        torch.testing.assert_close(got_true, true, atol=1e-12, rtol=0)
        torch.testing.assert_close(got_first, first, atol=1e-12, rtol=0)
        assert toy.curvature_value(theta.reshape(1, 2), c, center, g).item() == pytest.approx(
            f(theta).item(), abs=1e-12)
    # With C = 0 the two gradients coincide (both are g).
    _, true, first = toy.curvature_meta_gradients(THETAS, torch.zeros(2, 2, dtype=D), center, g, 0.25)
    torch.testing.assert_close(true, first, atol=0, rtol=0)
