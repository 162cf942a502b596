"""Milliseconds per meta-iteration: our batched algorithms against three other ways.

    python tests/benchmarks/train_speed.py            # full run (a minute or two)
    python tests/benchmarks/train_speed.py --budget 0.1 --json   # CI smoke run
    python tests/benchmarks/train_speed.py --device cuda         # on a GPU machine

For each algorithm's paper configuration (site_builder.config, profile
"paper") on one CPU thread, in the same process, one after another:

  ours    meta/algorithms/<name>.py: tasks batched through the parameters'
          leading dimension, hand-written backward and Hessian-vector products;
          through torch.compile where the model's registry entry asks for it
          (all five), as the paper build trains them; the eager time is shown too
  loop    (a) a per-task Python loop with torch.autograd.grad(create_graph=True),
          the learn2learn / higher pattern (tests/reference.py); for iMAML
          loop_imaml below: the same Gauss-Newton inner steps (N x N kernel
          system, torch.linalg.solve), refused steps halved and truncated CG
          written per task with torch.autograd. tests/reference.py's iMAML,
          which solves a dense P x P system (P = 1761) at every inner step, is
          an exact reference, not a fair baseline: it is checked against ours
          once and not timed
  vmap    (b) torch.func: vmap over tasks of functions built with grad / jacrev
  higher  (c) the `higher` package's innerloop_ctx, where installed (MAML, FOMAML)

Then the quiz's conv net (issue 13; --no-conv leaves it out): second-order
MAML of maml-glyphs' paper configuration at 5-way (16 tasks) and 20-way (8
tasks), ours (tasks batched as grouped convolutions) against a per-task
autograd loop and torch.func vmap, each checked against ours first.

Every iteration includes sampling the task batch (the same random draws
for all; ours turns them into tasks inside its step, the others just before
it) and the outer optimiser's step. Before timing, every implementation's
meta-gradient is checked against ours on the same batch, so the numbers
compare equal work (the largest difference is printed for iMAML, whose
solvers differ most). Prints each time
and the ratios; with --json the last line is one JSON object keyed by
algorithm. Shared machines are noisy: read the ratios, not the absolute times.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.func import grad, jacrev, vmap

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from meta import algorithms, model  # noqa: E402
from meta.algorithms.imaml import KERNEL_SOLVE_STEPS, MIN_RAYLEIGH  # noqa: E402
from meta.tasks import SINUSOID  # noqa: E402
from meta.train import (DEVICES, TrainConfig, _outer_optimizer, flat_meta_gradient,  # noqa: E402
                        resolve_device)
from reference import REFERENCES, flat, mlp, reference_conv_maml, task_loss, unflat  # noqa: E402
from site_builder.config import MODELS, PROFILES  # noqa: E402


# ------------------------------------------------- (a) per-task loop for iMAML
#
# tests/reference.py's iMAML solves each Gauss-Newton step's P x P system
# ((2/N) JᵀJ + λI) δ = −∇F exactly (P = 1761): a correctness reference, kept
# as an untimed agreement check, far slower than anyone would write iMAML.
# The timed loop below is iMAML as a person would write it without batching.

def loop_imaml(params, batch, cfg, kernel_solve: str = "solve"):
    """iMAML one task at a time in a Python loop, differentiated with torch.autograd.

    The algorithm of meta.algorithms.imaml, without batching: ``inner_steps``
    damped Gauss-Newton steps on F(ϕ) = L(ϕ) + λ/2 ‖ϕ − θ‖² from θ, the
    Jacobian J [N, P] of the N support outputs from
    torch.autograd.functional.jacobian (its default: one backward pass per
    output; vectorize=True, which vmaps those passes, was about 2.7x faster
    on one thread, 2026-11-30, and belongs with the vmap column), each
    step δ = −u + Jᵀβ with the N x N system (J Jᵀ + λN/2 · I) β = J u − r
    (u = ϕ − θ, r the residuals) solved by torch.linalg.solve
    (``kernel_solve="newton-schulz"``: ours' KERNEL_SOLVE_STEPS iterations
    instead); a step that does not lower F is refused and the step size
    halved (a Python ``if``). Then ``cg_steps`` iterations of truncated CG on
    (I + G/λ) g = ∇L_test(ϕ), G = (2/N) JᵀJ at the final ϕ, with the query
    gradient from torch.autograd.grad.
    """
    lam, cg_steps = cfg.options["lam"], cfg.options["cg_steps"]
    theta = flat(params).detach()
    total = torch.zeros_like(theta)
    tasks = batch.support_x.shape[0]
    for t in range(tasks):
        x, y = batch.support_x[t].reshape(-1, 1), batch.support_y[t].reshape(-1)
        qx, qy = batch.query_x[t], batch.query_y[t]
        count = x.shape[0]
        ridge = lam * max(count, 1) / 2
        eye_n = torch.eye(count, dtype=theta.dtype, device=theta.device)

        def outputs(v):
            return mlp(unflat(v, params), x).reshape(-1)

        def proximal_objective(v):
            return task_loss(unflat(v, params), x, y) + lam / 2 * (v - theta).pow(2).sum()

        phi, step_size = theta.clone(), cfg.inner_lr
        with torch.no_grad():
            objective = proximal_objective(phi)
        for _ in range(cfg.inner_steps):
            jacobian = torch.autograd.functional.jacobian(outputs, phi)     # [N, P]
            with torch.no_grad():
                u = phi - theta
                rhs = jacobian @ u - (outputs(phi) - y)
                system = jacobian @ jacobian.T + ridge * eye_n
                if kernel_solve == "solve":
                    beta = torch.linalg.solve(system, rhs)
                else:
                    inverse = eye_n / system.trace()
                    for _ in range(KERNEL_SOLVE_STEPS):
                        inverse = 2 * inverse - inverse @ system @ inverse
                    beta = inverse @ rhs
                candidate = phi + step_size * (jacobian.T @ beta - u)
                candidate_objective = proximal_objective(candidate)
            if candidate_objective < objective:          # NaN never passes
                phi, objective = candidate, candidate_objective
            else:
                step_size /= 2

        # Implicit meta-gradient: (I + G/λ) g = ∇L_test(ϕ), G = (2/N) JᵀJ at ϕ.
        jacobian = torch.autograd.functional.jacobian(outputs, phi)
        leaf = phi.detach().requires_grad_()
        (rhs,) = torch.autograd.grad(task_loss(unflat(leaf, params), qx, qy), leaf)
        scale = 2.0 / max(count, 1) / lam
        with torch.no_grad():
            solution = torch.zeros_like(rhs)
            residual, direction = rhs, rhs
            res_sq = residual @ residual
            for _ in range(cg_steps if res_sq > 0 else 0):   # truncated CG, as in ours
                a_dir = direction + scale * (jacobian.T @ (jacobian @ direction))
                curvature = direction @ a_dir
                if curvature <= MIN_RAYLEIGH * (direction @ direction):
                    break           # too little curvature along this direction
                step = res_sq / curvature
                solution = solution + step * direction
                residual = residual - step * a_dir
                new_res_sq = residual @ residual
                if new_res_sq == 0:
                    break
                direction = residual + new_res_sq / res_sq * direction
                res_sq = new_res_sq
        total += solution / tasks
    return unflat(total, params)


#: Timed per-task loops where tests/reference.py's reference is not a fair
#: timing baseline; that reference then stays an untimed agreement check.
LOOP = {"imaml": loop_imaml}


# ---------------------------------------------------------------- (b) torch.func

def _inner(params, x, y, steps, lr):
    for _ in range(steps):
        g = grad(task_loss)(params, x, y)
        params = {n: params[n] - lr * g[n] for n in params}
    return params


def vmap_pretrained(params, batch, cfg):
    x = torch.cat([batch.support_x, batch.query_x], 1)
    y = torch.cat([batch.support_y, batch.query_y], 1)
    task_grads = vmap(grad(task_loss), in_dims=(None, 0, 0))(params, x, y)
    return {n: g.mean(0) for n, g in task_grads.items()}


def vmap_maml(params, batch, cfg):
    def task_meta_loss(theta, sx, sy, qx, qy):
        return task_loss(_inner(theta, sx, sy, cfg.inner_steps, cfg.inner_lr), qx, qy)

    def batch_meta_loss(theta):
        return vmap(task_meta_loss, in_dims=(None, 0, 0, 0, 0))(theta, *batch).mean()

    return grad(batch_meta_loss)(params)


def vmap_fomaml(params, batch, cfg):
    def task_grad(theta, sx, sy, qx, qy):
        return grad(task_loss)(_inner(theta, sx, sy, cfg.inner_steps, cfg.inner_lr), qx, qy)

    task_grads = vmap(task_grad, in_dims=(None, 0, 0, 0, 0))(params, *batch)
    return {n: g.mean(0) for n, g in task_grads.items()}


def vmap_reptile(params, batch, cfg):
    x = torch.cat([batch.support_x, batch.query_x], 1)
    y = torch.cat([batch.support_y, batch.query_y], 1)
    phi = vmap(lambda p, x, y: _inner(p, x, y, cfg.inner_steps, cfg.inner_lr),
               in_dims=(None, 0, 0))(params, x, y)
    return {n: params[n] - phi[n].mean(0) for n in params}


def vmap_imaml(params, batch, cfg):
    """iMAML with torch.func, one task's functions vmapped over the batch.

    The inner solver of meta.algorithms.imaml: ``inner_steps`` damped
    Gauss-Newton steps on the proximal objective F(ϕ) = L(ϕ) + λ/2 ‖ϕ − θ‖²
    from θ, the Jacobian J [N, P] of the N support outputs from jacrev, each
    step δ = −u + Jᵀβ with (J Jᵀ + λN/2 · I) β = J u − r (u = ϕ − θ, r the
    residuals). The N x N system is inverted by the same KERNEL_SOLVE_STEPS
    Newton-Schulz iterations as ours, so that both do the same work. A
    step that would not lower F is refused and the task's step size halved,
    written with torch.where so that it vmaps. Then ``cg_steps`` iterations of
    truncated CG on (I + G/λ) g = ∇L_test(ϕ), G = (2/N) JᵀJ at the final ϕ.
    """
    lam, cg_steps = cfg.options["lam"], cfg.options["cg_steps"]
    names = list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    theta = torch.cat([params[n].reshape(-1) for n in names])

    def unflatten(v):
        return {n: part.reshape(shape) for n, part, shape in zip(names, v.split(sizes), shapes)}

    def kernel_solve(kernel, rhs, ridge):
        eye = torch.eye(kernel.shape[0], dtype=kernel.dtype, device=kernel.device)
        system = kernel + ridge * eye
        inverse = eye / system.trace()
        for _ in range(KERNEL_SOLVE_STEPS):            # X ← 2X − X A X, as in ours
            inverse = 2 * inverse - inverse @ system @ inverse
        return inverse @ rhs

    def task_grad(sx, sy, qx, qy):
        x, y = sx.reshape(-1, 1), sy.reshape(-1)
        count = x.shape[0]
        ridge = lam * max(count, 1) / 2

        def outputs(v):
            out = mlp(unflatten(v), x).reshape(-1)
            return out, out

        def proximal_objective(v):
            return task_loss(unflatten(v), x, y) + lam / 2 * (v - theta).pow(2).sum()

        phi = theta
        objective = proximal_objective(phi)                           # = L(θ): penalty 0 at ϕ = θ
        step_size = torch.tensor(cfg.inner_lr, dtype=theta.dtype, device=theta.device)
        for _ in range(cfg.inner_steps):
            jacobian, out = jacrev(outputs, has_aux=True)(phi)         # [N, P], [N]
            u = phi - theta
            beta = kernel_solve(jacobian @ jacobian.T, jacobian @ u - (out - y), ridge)
            candidate = phi + step_size * (jacobian.T @ beta - u)
            cand_objective = proximal_objective(candidate)
            better = cand_objective < objective                       # NaN never passes
            phi = torch.where(better, candidate, phi)
            objective = torch.where(better, cand_objective, objective)
            step_size = torch.where(better, step_size, step_size / 2)

        # Implicit meta-gradient: (I + G/λ) g = ∇L_test(ϕ), G = (2/N) JᵀJ at ϕ.
        jacobian, _ = jacrev(outputs, has_aux=True)(phi)
        rhs = grad(lambda v: task_loss(unflatten(v), qx, qy))(phi)
        scale = 2.0 / max(count, 1) / lam

        def matvec(v):
            return v + scale * (jacobian.T @ (jacobian @ v))

        solution = torch.zeros_like(rhs)
        residual, direction, res_sq = rhs, rhs, rhs @ rhs
        active = res_sq > 0
        for _ in range(cg_steps):      # truncated CG, as in meta.algorithms.imaml
            a_dir = matvec(direction)
            curvature = direction @ a_dir
            active = active & (curvature > MIN_RAYLEIGH * (direction @ direction))
            step = torch.where(active, res_sq / curvature.clamp_min(1e-30), 0.0)
            solution = solution + step * direction
            residual = residual - step * a_dir
            new_res_sq = residual @ residual
            active = active & (new_res_sq > 0)
            beta = torch.where(active, new_res_sq / res_sq.clamp_min(1e-30), 0.0)
            direction = residual + beta * direction
            res_sq = new_res_sq
        return solution

    return unflatten(vmap(task_grad)(*batch).mean(0))


VMAP = {"pretrained": vmap_pretrained, "maml": vmap_maml, "fomaml": vmap_fomaml,
        "reptile": vmap_reptile, "imaml": vmap_imaml}


# ---------------------------------------------------------------- (c) higher

def _higher_maml(first_order: bool):
    import higher  # noqa: F401  (ImportError means: not installed)

    def run(params, batch, cfg):
        net = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40),
                                  torch.nn.ReLU(), torch.nn.Linear(40, 1)).to(params["w1"].device)
        with torch.no_grad():   # nn.Linear stores W transposed relative to meta/model.py
            for layer, i in zip((0, 2, 4), (1, 2, 3)):
                net[layer].weight.copy_(params[f"w{i}"].t())
                net[layer].bias.copy_(params[f"b{i}"])
        inner_opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
        tasks = batch.support_x.shape[0]
        for t in range(tasks):
            with higher.innerloop_ctx(net, inner_opt, copy_initial_weights=False,
                                      track_higher_grads=not first_order) as (fnet, diffopt):
                for _ in range(cfg.inner_steps):
                    diffopt.step(torch.nn.functional.mse_loss(fnet(batch.support_x[t]), batch.support_y[t]))
                query_loss = torch.nn.functional.mse_loss(fnet(batch.query_x[t]), batch.query_y[t])
                if first_order:
                    fast = list(fnet.parameters(time=-1))
                    grads = torch.autograd.grad(query_loss, fast)
                    for p, g in zip(net.parameters(), grads):
                        p.grad = g / tasks if p.grad is None else p.grad + g / tasks
                else:
                    (query_loss / tasks).backward()
        out = {}
        for layer, i in zip((0, 2, 4), (1, 2, 3)):
            out[f"w{i}"] = net[layer].weight.grad.t()
            out[f"b{i}"] = net[layer].bias.grad
        return out

    return run


def higher_impl(name: str):
    if name not in ("maml", "fomaml"):
        return None
    try:
        return _higher_maml(first_order=name == "fomaml")
    except ImportError:
        return None


# ---------------------------------------------------------------- timing

def _ours(name, compiled: bool = False):
    """Our step exactly as meta.train.train runs it: from the random draws of a
    task batch to the flat meta-gradient."""
    step = flat_meta_gradient(algorithms.get(name).meta_gradient, compiled)
    return lambda params, draws, cfg: step(params, draws, cfg)[0]


def _from_draws(impl):
    """A reference implementation fed the same random draws: it builds the task
    batch eagerly (the same operations ours runs inside its step), then runs.
    None (a reference that does not apply) stays None."""
    if impl is None:
        return None
    return lambda params, draws, cfg: impl(params, SINUSOID.batch_from_draws(draws, cfg.k_support), cfg)


def _flat(grads) -> torch.Tensor:
    """A gradient as one flat vector (ours already is; the references return dicts)."""
    return grads if isinstance(grads, torch.Tensor) else flat(grads).detach()


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that the clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_iterations(meta_gradient, cfg: TrainConfig, budget: float, device: torch.device,
                    min_iterations: int = 3) -> float:
    """Milliseconds per meta-iteration (sample tasks, meta-gradient, optimiser step)."""
    # The same outer step as meta.train.train for every implementation: θ in
    # one flat tensor, the dict holding views of it; draws made on the CPU.
    generator = torch.Generator().manual_seed(0)
    initial = model.init_params(generator)
    flat = torch.cat([p.reshape(-1) for p in initial.values()]).to(device)
    params = model.unflatten_tasks(flat, initial)
    optimizer = _outer_optimizer(algorithms.get(cfg.algorithm).OUTER_OPTIMIZER, [flat], cfg.meta_lr)

    def step():
        draws = SINUSOID.draws(cfg.meta_batch_size, cfg.k_support, cfg.k_query, generator).to(device)
        flat.grad = _flat(meta_gradient(params, draws, cfg))
        optimizer.step()

    for _ in range(2):
        step()                                  # warm-up (first-call allocations, dispatch caches)
    _synchronize(device)
    iterations, started = 0, time.perf_counter()
    while iterations < min_iterations or time.perf_counter() - started < budget:
        step()
        iterations += 1
        if iterations % 10 == 0:
            _synchronize(device)                # the budget counts finished work
    _synchronize(device)
    return (time.perf_counter() - started) / iterations * 1000


def check_agreement(name, implementations, cfg, device: torch.device) -> dict:
    """Each implementation's meta-gradient on one batch against ours; exits if
    one differs by more than 1e-4 (relative to the gradient's largest entry
    where that exceeds 1), else returns the largest differences by label."""
    generator = torch.Generator().manual_seed(1)
    params = {n: p.to(device) for n, p in model.init_params(generator).items()}
    draws = SINUSOID.draws(cfg.meta_batch_size, cfg.k_support, cfg.k_query, generator).to(device)
    expected = _ours(name)(params, draws, cfg)
    errors = {}
    for label, impl in implementations.items():
        if impl is None:
            continue
        got = _flat(impl({n: p.clone() for n, p in params.items()}, draws, cfg))
        error = (got - expected).abs().max().item()
        scale = expected.abs().max().item()
        if error > 1e-4 * max(1.0, scale):
            raise SystemExit(f"{name}: {label} disagrees with ours by {error:.2e}; not timing unequal work")
        errors[label] = error
    return errors


# ------------------------------------------------ the glyph conv net (issue 13)
#
# MAML on the quiz's conv net (meta/conv.py), the registered paper
# configuration of maml-glyphs at 5-way (16 tasks) and 20-way (8 tasks), from
# a zero head as in training (only the conv blocks are meta-learned):
#   ours  the T tasks at once, one grouped convolution per block (groups = T),
#         second order through autograd (create_graph=True); the first inner
#         step differentiates the head alone (the blocks' gradient through a
#         zero head is exactly zero)
#   loop  one task at a time with torch.autograd.grad(create_graph=True),
#         every step through the whole net
#   vmap  torch.func: vmap over tasks of grad through the inner steps

def conv_loop(theta, batch, cfg, learned):
    return reference_conv_maml(theta, batch, cfg.inner_lr, cfg.inner_steps, learned)


def conv_vmap(theta, batch, cfg, learned):
    from meta import conv

    def loss(params, images, labels, mask):
        return conv.task_loss(params, images[None], labels[None], mask[None])[0]

    def task_meta_loss(params, s, sl, q, ql, mask):
        for _ in range(cfg.inner_steps):
            g = grad(loss)(params, s, sl, mask)
            params = {n: params[n] - cfg.inner_lr * g[n] for n in params}
        return loss(params, q, ql, mask)

    constants = {n: p.detach() for n, p in theta.items() if n not in learned}

    def batch_loss(meta):
        params = {n: meta[n] if n in meta else constants[n] for n in theta}
        return vmap(task_meta_loss, in_dims=(None, 0, 0, 0, 0, 0))(params, *batch).mean()

    g = grad(batch_loss)({n: theta[n].detach() for n in learned})
    return [g[n] for n in learned]


def conv_ours(theta, batch, cfg, learned):
    from meta import conv

    return conv.meta_gradient(theta, batch, cfg.inner_lr, cfg.inner_steps, learned=learned)[0]


def time_conv(budget: float, device: torch.device, json_out: dict) -> None:
    from meta import conv
    from site_builder import glyphs
    from site_builder.config import CONV_MODELS

    cfg = CONV_MODELS["maml-glyphs"].train_config("paper", 0)
    ink = glyphs.split_glyphs("background", 4, cfg.characters, cfg.hands)
    tasks = conv.GlyphTasks(ink, device)
    impls = {"ours": conv_ours, "loop": conv_loop, "vmap": conv_vmap}
    head = "zero head, " if cfg.zero_head else ""
    widths = "-".join(str(c) for c in conv.block_widths(cfg.channels))
    print(f"\nconv net (maml-glyphs: {widths} channels, {head}{cfg.inner_steps} inner steps, second order)")
    print(f"{'rounds':<11}{'ours ms':>9}{'loop ms':>9}{'vmap ms':>9}{'loop/ours':>11}{'vmap/ours':>11}")
    for ways in (5, 20):
        generator = torch.Generator().manual_seed(0)
        params, learned = conv.starting_params(cfg, generator)   # as meta.conv.train
        theta = {n: p.to(device).requires_grad_(n in learned) for n, p in params.items()}
        num_tasks = conv.tasks_per_iteration(cfg, ways)
        # The three must compute the same meta-gradient; checked in float64: at
        # the registered inner rate (0.4) float32 rounding alone can flip a ReLU
        # near zero in one of them and move the gradient by ~1% (measured: 1.8e-3
        # of 0.15 in float32, 1e-16 in float64).
        check = tasks.sample(num_tasks, ways, generator, cfg.queries)
        check = conv.GlyphBatch(*[x.double() if x.is_floating_point() else x for x in check])
        theta64 = {n: p.detach().double().requires_grad_(n in learned) for n, p in theta.items()}
        expected = torch.cat([g.reshape(-1) for g in conv_ours(theta64, check, cfg, learned)])
        for label, impl in impls.items():
            got = torch.cat([g.reshape(-1) for g in impl(theta64, check, cfg, learned)])
            if (got - expected).abs().max().item() > 1e-9 * max(1.0, expected.abs().max().item()):
                raise SystemExit(f"conv {ways}-way: {label} disagrees with ours; not timing unequal work")
        optimizer = torch.optim.Adam([theta[n] for n in learned], lr=cfg.meta_lr)
        row = {}
        for label, impl in impls.items():
            def step():
                batch = tasks.sample(num_tasks, ways, generator, cfg.queries)
                for n, g in zip(learned, impl(theta, batch, cfg, learned)):
                    theta[n].grad = g
                optimizer.step()
            step()
            _synchronize(device)
            iterations, started = 0, time.perf_counter()
            while iterations < 3 or time.perf_counter() - started < budget:
                step()
                iterations += 1
            _synchronize(device)
            row[f"{label}_ms"] = round((time.perf_counter() - started) / iterations * 1000, 3)
        json_out[f"conv-{ways}way"] = {**row, "tasks": num_tasks}
        print(f"{f'{ways}-way x{num_tasks}':<11}{row['ours_ms']:>9.1f}{row['loop_ms']:>9.1f}{row['vmap_ms']:>9.1f}"
              f"{row['loop_ms'] / row['ours_ms']:>10.1f}x{row['vmap_ms'] / row['ours_ms']:>10.1f}x", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds of timing per implementation and algorithm (default 3)")
    parser.add_argument("--algorithms", default=",".join(algorithms.ALGORITHMS),
                        help="comma-separated subset (default: all five)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    parser.add_argument("--no-conv", action="store_true",
                        help="leave out the glyph conv net's MAML (timed after the sinusoid algorithms)")
    parser.add_argument("--device", default="cpu", choices=DEVICES,
                        help="where to run every implementation (default cpu: the targets are "
                             "set for one CPU thread; cuda for a GPU run, auto for cuda when present)")
    args = parser.parse_args(argv)
    names = [a for a in args.algorithms.split(",") if a]
    for name in names:
        algorithms.get(name)
    if args.budget <= 0:
        parser.error("--budget must be > 0 seconds")

    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    torch.set_num_threads(1)
    specs = {spec.algorithm: spec for spec in MODELS.values()}
    configs = {name: spec.train_config(PROFILES["paper"], 0) for name, spec in specs.items()}
    results = {}
    where = "1 CPU thread" if device.type == "cpu" else f"{torch.cuda.get_device_name(device)}, 1 CPU thread"
    print(f"torch {torch.__version__}, {where}, {args.budget:g} s per measurement")
    print(f"{'algorithm':<11}{'ours ms':>9}{'loop ms':>9}{'vmap ms':>9}{'higher ms':>11}"
          f"{'loop/ours':>11}{'vmap/ours':>11}{'higher/ours':>13}")
    for name in names:
        if name not in configs:
            print(f"{name:<11} (no paper configuration registered in site_builder.config; skipped)")
            continue
        cfg = configs[name]
        # "ours" is what the paper build trains with: compiled where the model's
        # registry entry says so (the eager time is then reported beside it).
        compiled = specs[name].compile
        fair_loop = name in LOOP       # else the reference is the loop baseline
        impls = {"ours": _ours(name, compiled),
                 "loop": _from_draws(LOOP[name] if fair_loop else REFERENCES[name]),
                 "vmap": _from_draws(VMAP[name]) if VMAP[name] else None,
                 "higher": _from_draws(higher_impl(name)),
                 "ours_eager": _ours(name) if compiled else None}
        # A reference too slow to be a fair baseline is still checked, once.
        untimed = {"reference": _from_draws(REFERENCES[name])} if fair_loop else {}
        errors = check_agreement(name, {**impls, **untimed}, cfg, device)
        if fair_loop:
            differences = ", ".join(f"{label} {errors[label]:.1e}"
                                    for label in ("reference", "loop", "vmap") if label in errors)
            print(f"{name:<11} (loop: per-task autograd {LOOP[name].__name__}, N x N kernel steps; "
                  f"tests/reference.py's dense P x P reference checked, not timed; largest "
                  f"difference from ours: {differences})")
        row = {f"{label}_ms": (None if impl is None
                               else round(time_iterations(impl, cfg, args.budget, device), 3))
               for label, impl in impls.items()}
        if compiled:
            print(f"{name:<11} (ours: torch.compile; eager {row['ours_eager_ms']:.2f} ms)")
        results[name] = row

        def ratio(key):
            return "-" if row[key] is None else f"{row[key] / row['ours_ms']:.1f}x"

        def ms(key):
            return "-" if row[key] is None else f"{row[key]:.2f}"

        print(f"{name:<11}{ms('ours_ms'):>9}{ms('loop_ms'):>9}{ms('vmap_ms'):>9}{ms('higher_ms'):>11}"
              f"{ratio('loop_ms'):>11}{ratio('vmap_ms'):>11}{ratio('higher_ms'):>13}", flush=True)
    if not args.no_conv:
        time_conv(args.budget, device, results)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
