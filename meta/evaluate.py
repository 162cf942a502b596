"""The evaluation protocol of contracts.md (the numbers on the Results page),
and the inner procedure every sinusoid model adapts with.

1,000 test tasks drawn with a fixed seed that training never uses; for each
K in {5, 10, 20}, K support points uniform on [-5, 5]; the query is 100 evenly
spaced points on [-5, 5]; 0..10 safeguarded gradient steps at the model's
inner_lr (``backtracking_step``); mean query MSE with its 95% confidence
interval 1.96·σ/√n, the median, and how many tasks blew up (query MSE above
50 or not finite: such a task counts as +inf, and the mean is then stored as
null, never as a non-JSON Infinity).
All tasks are adapted at once (batched), so the whole protocol takes seconds.

The safeguarded step is the adaptation procedure of the sinusoid models, but
iMAML's: an iMAML model adapts with the inner solver its meta-gradient assumes
(``lam`` given: damped Gauss–Newton steps on the proximal objective
L(ϕ) + λ/2 ‖ϕ − θ‖², ``meta.algorithms.imaml.proximal_step``). The protocol here,
``meta.weights.fine_tune``, the exported ONNX graph
(``meta.export.SinusoidAdaptation``, held to the autograd reference
``meta.export.reference_adaptation``) and the fallback figures all run the
model's procedure.
"""
from __future__ import annotations

import math

import torch

from .algorithms.imaml import KERNEL_SOLVE_STEPS, proximal_start, proximal_step
from .model import (Params, adapt, flatten_tasks, loss, loss_and_grad, per_task,
                    unflatten_tasks)
from .tasks import SINUSOID, SinusoidFamily

EVAL_SEED = 2_017_0306      # never used for training (training seeds are small integers)
VALIDATION_SEED = 2_017_0307  # tasks for choosing an adaptation rate; never the evaluation's
SHOTS = (5, 10, 20)
MAX_STEPS = 10
QUERY_POINTS = 100
#: A query MSE above this (or not finite) counts as blown up (contracts.md):
#: predicting 0 everywhere costs at most A²/2 ≤ 12.5, so above 50 the
#: adaptation has made the model worse than knowing nothing.
DIVERGED_MSE = 50.0
#: How often the safeguarded step may halve its rate before it stays put.
HALVINGS = 4


#: How the proximal procedure safeguards its steps (the manifest's words).
PROXIMAL_SAFEGUARD = ("per-task step size starting at inner_lr (1: the full Gauss-Newton step); "
                      "a step that would not lower the proximal objective is not taken and the "
                      "step size is halved")
#: How the proximal procedure finds its steps (the manifest's words).
PROXIMAL_SOLVER = ("damped Gauss-Newton: each step minimises the objective with the network "
                   "linearised at phi; its N x N kernel system (J J^T + lam*N/2 I) is inverted by "
                   f"{KERNEL_SOLVE_STEPS} Newton-Schulz iterations")


def inner_procedure(halvings: int | None = HALVINGS, lam: float | None = None) -> dict:
    """The manifest's description of an adaptation procedure: with ``lam``,
    iMAML's steps on the proximal objective L(ϕ) + λ/2 ‖ϕ − θ‖²; otherwise
    backtracking with ``halvings`` halvings, or plain gradient descent for None."""
    if _check_lam(lam) is not None:
        return {"kind": "proximal", "lam": lam, "objective": "support MSE + lam/2 * |phi - theta|^2",
                "solver": PROXIMAL_SOLVER, "safeguard": PROXIMAL_SAFEGUARD}
    if halvings is None:
        return {"kind": "gradient_descent"}
    return {"kind": "backtracking", "halvings": _check_halvings(halvings)}


def procedure_arguments(procedure: dict | None) -> dict:
    """The keyword arguments (``halvings``, ``lam``) of the functions here and in
    meta.export that run the procedure an ``inner_procedure`` dict describes
    (None or {}: plain gradient descent). ValueError for anything else."""
    procedure = procedure or {"kind": "gradient_descent"}
    kind = procedure.get("kind") if isinstance(procedure, dict) else None
    if kind == "gradient_descent":
        return {"halvings": None, "lam": None}
    if kind == "backtracking":
        if procedure.get("halvings") is None:
            raise ValueError("backtracking without its number of halvings")
        return {"halvings": _check_halvings(procedure["halvings"]), "lam": None}
    if kind == "proximal":
        if procedure.get("lam") is None:
            raise ValueError("proximal without its lam")
        return {"halvings": HALVINGS, "lam": _check_lam(procedure["lam"])}
    raise ValueError(f"unknown inner_procedure kind {kind!r}; "
                     "allowed: backtracking, gradient_descent, proximal")


def _check_lam(lam: float | None) -> float | None:
    if lam is not None and (isinstance(lam, bool) or not isinstance(lam, (int, float))
                            or not math.isfinite(lam) or lam <= 0):
        raise ValueError(f"lam must be a positive number or None (no proximal term), got {lam!r}")
    return lam


def _check_halvings(halvings: int | None) -> int | None:
    if halvings is not None and (isinstance(halvings, bool) or not isinstance(halvings, int)
                                 or halvings < 0):
        raise ValueError(f"halvings must be an integer >= 0 or None (plain gradient descent), "
                         f"got {halvings!r}")
    return halvings


# --8<-- [start:backtracking_step]
def backtracking_step(params: Params, x: torch.Tensor, y: torch.Tensor, lr: float,
                      halvings: int = HALVINGS) -> tuple[Params, torch.Tensor]:
    """One safeguarded gradient step on each task's support MSE (backtracking
    on the step length, Nocedal & Wright's Algorithm 3.1 asking only for no
    increase). Parameters carry a task dimension [T, ...].

    The step at rate ``lr`` is tried first; where it would raise a task's
    support loss, the step is halved, up to ``halvings`` times, and the first
    trial that does not raise the loss is taken. A task for which none of the
    halvings + 1 trials does so stays where it is. All trials of all tasks run
    as one batched forward pass (``trial_losses``), and a mask per task picks
    its step: no Python loop over tasks. Returns the new parameters and each
    task's support loss before the step, shaped [T].
    """
    task_loss, grads = loss_and_grad(params, x, y)
    rates = lr * torch.pow(0.5, torch.arange(halvings + 1, dtype=task_loss.dtype))  # α, α/2, …
    accepted = trial_losses(params, grads, x, y, rates) <= task_loss   # [trials, T]; NaN never passes
    first = accepted.to(torch.uint8).argmax(0)                         # the first trial that passes
    rate = torch.where(accepted.any(0), rates[first], torch.zeros_like(task_loss))
    like = {name: p[0] for name, p in grads.items()}
    phi = flatten_tasks(params) - rate.unsqueeze(1) * flatten_tasks(grads)
    return unflatten_tasks(phi, like), task_loss
# --8<-- [end:backtracking_step]


def trial_losses(params: Params, grads: Params, x: torch.Tensor, y: torch.Tensor,
                 rates: torch.Tensor) -> torch.Tensor:
    """Each task's support MSE at θ − r·g for every rate r, shaped [R, T], for
    per-task parameters θ and gradients g ([T, ...]) of the 1-40-40-1 network.

    No copy of the parameters is made per rate: a layer's pre-activation at
    the trial is a·(W − rG) + (b − r·g_b) = (a·W + b) − r·(a·G + g_b), so each
    layer costs two products, shared by all R trials (they ride along the
    points dimension), and only activations grow with R.
    """
    num_tasks, num_points = x.shape[0], x.shape[1]
    count = max(num_points, 1)
    r = rates.view(1, -1, 1, 1)                                        # [1, R, 1, 1]
    trials = rates.shape[0]
    # Layer 1: one input feature, the same x for every trial.
    z1 = x * params["w1"] + params["b1"].unsqueeze(1)                  # [T, N, 40]
    d1 = x * grads["w1"] + grads["b1"].unsqueeze(1)
    h1 = torch.relu(z1.unsqueeze(1) - r * d1.unsqueeze(1))             # [T, R, N, 40]
    hidden = params["w2"].shape[-1]
    rows = h1.reshape(num_tasks, trials * num_points, params["w2"].shape[-2])
    z2 = torch.baddbmm(params["b2"].unsqueeze(1), rows, params["w2"])
    d2 = torch.baddbmm(grads["b2"].unsqueeze(1), rows, grads["w2"])
    shape = (num_tasks, trials, num_points, hidden)
    h2 = torch.relu(z2.view(shape) - r * d2.view(shape))               # [T, R, N, 40]
    # Layer 3: one output feature, a dot product per point.
    w3, g3 = params["w3"][:, None, None, :, 0], grads["w3"][:, None, None, :, 0]
    out = ((h2 * w3).sum(-1) + params["b3"].view(-1, 1, 1)
           - r[..., 0] * ((h2 * g3).sum(-1) + grads["b3"].view(-1, 1, 1)))  # [T, R, N]
    residual = out - y.view(num_tasks, 1, num_points)
    return (residual.pow(2).sum(-1) / count).transpose(0, 1)           # [R, T]
# --8<-- [end:backtracking_step]


def proximal_trajectory(params: Params, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float,
                        lam: float) -> list[Params]:
    """iMAML's inner solver (``meta.algorithms.imaml.proximal_step``, the one
    training runs) on each task: ϕ after 0..``steps`` steps on the proximal
    objective L(ϕ) + λ/2 ‖ϕ − θ‖², θ = ``params`` (shared [..] or per task [T, ..])."""
    if params["w1"].dim() == 2:              # shared θ: w1 is [1, 40], no task dimension
        like = params
        theta = torch.cat([p.reshape(-1) for p in params.values()])
    else:
        like = {name: p[0] for name, p in params.items()}
        theta = flatten_tasks(params)
    state = proximal_start(theta, like, x, y, lr)
    path = [unflatten_tasks(state.phi, like)]
    for _ in range(steps):
        state = proximal_step(theta, state, like, x, y, lam)
        path.append(unflatten_tasks(state.phi, like))
    return path


def adapt_safeguarded(params: Params, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float,
                      halvings: int | None = HALVINGS, lam: float | None = None) -> Params:
    """``steps`` safeguarded steps (``backtracking_step``) on each task's
    support MSE; plain gradient descent (meta.model.adapt) for halvings=None;
    iMAML's proximal steps (``proximal_trajectory``) when ``lam`` is given."""
    if _check_lam(lam) is not None:
        return proximal_trajectory(params, x, y, steps, lr, lam)[-1]
    if _check_halvings(halvings) is None:
        return adapt(params, x, y, steps, lr)
    for _ in range(steps):
        params = backtracking_step(params, x, y, lr, halvings)[0]
    return params


def query_mse_by_step(params: Params, inner_lr: float, support_x: torch.Tensor, support_y: torch.Tensor,
                      query_x: torch.Tensor, query_y: torch.Tensor, max_steps: int,
                      halvings: int | None = HALVINGS, lam: float | None = None) -> torch.Tensor:
    """Query MSE of every task after 0..max_steps adaptation steps, shaped [steps+1, T]."""
    if _check_lam(lam) is not None:
        path = proximal_trajectory(params, support_x, support_y, max_steps, inner_lr, lam)
        return torch.stack([loss(phi, query_x, query_y) for phi in path])
    phi = per_task(params, support_x.shape[0])
    errors = [loss(phi, query_x, query_y)]
    for _ in range(max_steps):
        phi = adapt_safeguarded(phi, support_x, support_y, 1, inner_lr, halvings)
        errors.append(loss(phi, query_x, query_y))
    return torch.stack(errors)


def evaluate(params: Params, inner_lr: float, num_tasks: int = 1000, shots: tuple[int, ...] = SHOTS,
             max_steps: int = MAX_STEPS, seed: int = EVAL_SEED,
             family: SinusoidFamily = SINUSOID, halvings: int | None = HALVINGS,
             lam: float | None = None) -> dict:
    """The protocol's numbers for ``params`` adapted at ``inner_lr`` with the
    safeguarded step (plain gradient descent for halvings=None; iMAML's
    proximal steps when ``lam`` is given)."""
    _check_halvings(halvings)
    _check_lam(lam)
    generator = torch.Generator().manual_seed(seed)
    amplitude, phase = family.sample_tasks(num_tasks, generator)
    query_x = torch.linspace(*family.x_range, QUERY_POINTS).view(1, -1, 1).expand(num_tasks, -1, -1)
    query_y = family.target(amplitude, phase, query_x)
    params = {n: p.detach().to("cpu", torch.float32) for n, p in params.items()}
    results: dict = {
        "protocol": {"num_tasks": num_tasks, "shots": list(shots), "max_steps": max_steps,
                     "query_points": QUERY_POINTS, "inner_lr": inner_lr,
                     "inner_procedure": inner_procedure(halvings, lam), "seed": seed,
                     "ci": "1.96 * sample std / sqrt(num_tasks)",
                     "blown_up": f"query MSE > {DIVERGED_MSE:g} or not finite"},
        "query_mse": {},
    }
    with torch.no_grad():
        for k in shots:
            support_x = family.sample_x(num_tasks, k, generator)
            support_y = family.target(amplitude, phase, support_x)
            errors = query_mse_by_step(params, inner_lr, support_x, support_y, query_x, query_y,
                                       max_steps, halvings, lam).double()
            # Plain gradient descent at a fixed rate can blow up on a task whose
            # support points make the loss very curved (the safeguarded step
            # exists to prevent it). Such a task's MSE is huge, infinite or
            # NaN; it counts as +inf, the median stays meaningful, and the
            # mean and its interval are stored as null.
            diverged = ~torch.isfinite(errors) | (errors > DIVERGED_MSE)
            errors = errors.masked_fill(diverged, math.inf)
            any_diverged = diverged.any(1)
            mean = errors.mean(1).masked_fill(any_diverged, math.inf)
            ci95 = (1.96 * errors.std(1) / math.sqrt(num_tasks)).masked_fill(any_diverged, math.inf)
            results["query_mse"][str(k)] = {
                "mean": _finite_or_none(mean),
                "ci95": _finite_or_none(ci95),
                "median": _finite_or_none(errors.median(1).values),
                "diverged": diverged.sum(1).tolist(),
            }
    return results


def _finite_or_none(values: torch.Tensor) -> list[float | None]:
    """Rounded floats, with None (JSON null) where a value is inf or NaN."""
    return [round(v, 6) if math.isfinite(v) else None for v in values.tolist()]


def summary_metrics(results: dict) -> dict:
    """The few numbers the manifest carries: K-shot after 0, 1 and 10 steps."""
    summary = {}
    for k, curve in results["query_mse"].items():
        for step in (0, 1, len(curve["mean"]) - 1):
            summary[f"k{k}_step{step}"] = {"mean": curve["mean"][step], "ci95": curve["ci95"][step],
                                           "diverged": curve["diverged"][step]}
    return summary


def choose_inner_lr(params: Params, candidates: tuple[float, ...], num_tasks: int = 500,
                    shots: int = 5, steps: int = MAX_STEPS, seed: int = VALIDATION_SEED,
                    halvings: int | None = HALVINGS,
                    lam: float | None = None) -> tuple[float, dict[str, float | None]]:
    """The candidate rate with the lowest mean query MSE after ``steps``
    adaptation steps (the safeguarded ones unless halvings=None) on ``shots``
    support points, measured on validation tasks drawn with their own seed
    (never the evaluation's). Returns the rate and every candidate's score
    (None where some task blew up)."""
    scores: dict[str, float | None] = {}
    for lr in candidates:
        curve = evaluate(params, lr, num_tasks=num_tasks, shots=(shots,), max_steps=steps,
                         seed=seed, halvings=halvings, lam=lam)["query_mse"][str(shots)]
        scores[str(lr)] = curve["mean"][steps]
    finite = {float(lr): score for lr, score in scores.items() if score is not None}
    if not finite:
        raise ValueError(f"every candidate rate {list(candidates)} diverged on some validation task")
    return min(finite, key=finite.get), scores


# ---------------------------------------------------------------- checkpoint selection

#: Validation tasks that score each checkpoint (contracts.md: at least 5,000).
SELECTION_TASKS = 5_000
#: Checkpoints scored per training run, evenly spaced, the last the final iteration.
SELECTION_CHECKPOINTS = 5


# --8<-- [start:checkpoint_score]
def checkpoint_score(params: Params, inner_lr: float, num_tasks: int = SELECTION_TASKS,
                     shots: int = 5, steps: int = MAX_STEPS, seed: int = VALIDATION_SEED,
                     halvings: int | None = HALVINGS, lam: float | None = None) -> dict:
    """How a checkpoint adapts on validation tasks (their own seed, never the
    evaluation's): ``shots``-shot query MSE after 1..``steps`` steps of the
    model's own procedure. Returns {"blown_up": tasks blown up at some step,
    "rises": how many of steps 2..steps raise the mean instead of lowering it
    (a reader moving the steps slider sees the error grow), "mean_by_step":
    means after 0..steps (None where tasks blew up), "score": the mean over
    steps 1..steps of those means (None if any is)}."""
    if seed == EVAL_SEED:
        raise ValueError("checkpoints are chosen on validation tasks, never on the test tasks "
                         f"(seed {EVAL_SEED})")
    curve = evaluate(params, inner_lr, num_tasks=num_tasks, shots=(shots,), max_steps=steps,
                     seed=seed, halvings=halvings, lam=lam)["query_mse"][str(shots)]
    means = curve["mean"][1:]
    blown_up = max(curve["diverged"][1:], default=0)
    score = None if blown_up or any(m is None for m in means) else round(sum(means) / len(means), 6)
    rises = sum(1 for a, b in zip(means, means[1:]) if a is None or b is None or b > a)
    return {"blown_up": blown_up, "rises": rises, "mean_by_step": curve["mean"], "score": score}


def selection_key(score: dict) -> tuple[int, int, float]:
    """Fewer blown-up validation tasks first, then fewer steps at which the
    mean rises, then the lower mean query MSE over steps 1..10: a checkpoint
    must adapt safely and steadily at every step of the slider before it may
    adapt well."""
    return (score["blown_up"], score.get("rises", 0),
            math.inf if score["score"] is None else score["score"])
# --8<-- [end:checkpoint_score]


class CheckpointSelector:
    """The ``on_checkpoint`` of ``meta.train.train``: scores every checkpoint
    with ``checkpoint_score`` on validation tasks and keeps the best one
    (``selection_key``; the earlier of equal ones).

    ``inner_lr(params)`` gives the rate to adapt a checkpoint with (a model
    whose rate is chosen on validation tasks chooses it per checkpoint); where
    it raises ValueError (no usable rate) the checkpoint is skipped.
    """

    def __init__(self, inner_lr, num_tasks: int = SELECTION_TASKS, seed: int = VALIDATION_SEED,
                 halvings: int | None = HALVINGS, log=None, lam: float | None = None):
        self.inner_lr, self.num_tasks, self.seed, self.halvings = inner_lr, num_tasks, seed, halvings
        self.lam = _check_lam(lam)
        self.log = log
        self.scores: list[dict] = []
        self.best: tuple[tuple, int, Params] | None = None

    def __call__(self, iteration: int, params: Params) -> None:
        try:
            lr = self.inner_lr(params)
        except ValueError as error:
            self.scores.append({"iteration": iteration, "skipped": str(error)})
            return
        score = {"iteration": iteration, "inner_lr": lr,
                 **checkpoint_score(params, lr, self.num_tasks, seed=self.seed,
                                    halvings=self.halvings, lam=self.lam)}
        self.scores.append(score)
        key = selection_key(score)
        if self.best is None or key < self.best[0]:
            self.best = (key, iteration, params)
        if self.log is not None:
            self.log(f"checkpoint {iteration}: {score['blown_up']} blown-up validation tasks, "
                     f"{score['rises']} steps raising the mean, "
                     f"mean query MSE over steps 1-10 {score['score']}")

    @property
    def params(self) -> Params | None:
        return None if self.best is None else self.best[2]

    @property
    def chosen(self) -> int | None:
        return None if self.best is None else self.best[1]

    def record(self) -> dict:
        """What was scored and chosen, for the checkpoint file and the manifest."""
        return {"criterion": "fewest blown-up validation tasks at any of steps 1-10, then the "
                             "fewest steps 2-10 at which the mean query MSE rises, then the "
                             "lowest mean query MSE over steps 1-10",
                "tasks": self.num_tasks, "shots": 5, "seed": self.seed,
                "inner_procedure": inner_procedure(self.halvings, self.lam),
                "chosen": self.chosen, "checkpoints": self.scores}
