"""A small conv net meta-trained on the generated glyph alphabets (issue 13).

The network is the MAML paper's Omniglot architecture with its changes for
this data and this CPU: four blocks of a 3×3 convolution (stride 2 instead of
a max-pool, which was 15× slower here) and a ReLU, no batch norm (the batch's
statistics would make a query's answer depend on the other queries), then one
linear layer to ``HEAD`` = 20 class scores. 28×28 grayscale in, ink = 1:
28 → 14 → 7 → 4 → 2, so (last block's channels)·2·2 features. A block's
width is ``channels``: one number for every block, or one per block (the
quiz's nets widen the two small late blocks, which cost little: their
outputs are 4×4 and 2×2).

An N-way task uses the first N outputs: the classes that no support label
names are masked out of the softmax (their probability is exactly 0), in
training, in evaluation and in the exported graph alike, so one net plays
5-way and 20-way rounds.

With ``zero_head`` MAML meta-learns only the conv blocks: every task starts
from a head of zeros (the "zeroing trick" of Kao, Chiang and Sun, "MAML is a
noisy contrastive learner in classification", ICLR 2022). A task's labels
are an arbitrary order of its characters, so a meta-learned head row can only
be a guess at no character in particular; from zeros, the first inner step
writes each class's row from its support drawing's features (the other
blocks get no gradient through a zero head on that step, so ``adapt`` does
not take one) and the next steps adapt the whole net.

Every function takes parameters either shared by all tasks or with a leading
task dimension [T, ...], and images [T, B, 28, 28]: the T tasks run at once
as grouped convolutions (one group per task) and batched matrix products,
with no Python loop over tasks. Second-order MAML differentiates through the
inner steps with autograd (``create_graph=True``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]

SIZE = 28
HEAD = 20
CHANNELS = 32
BLOCKS = 4
#: Spatial size after each block: 28 → 14 → 7 → 4 → 2.
SPATIAL = (SIZE, 14, 7, 4, 2)


def param_names(blocks: int = BLOCKS) -> tuple[str, ...]:
    return tuple(n for i in range(1, blocks + 1) for n in (f"conv{i}.w", f"conv{i}.b")) + ("head.w", "head.b")


def block_widths(channels: int | tuple[int, ...]) -> tuple[int, ...]:
    """The output channels of each block: one width for all, or one per block."""
    widths = (channels,) * BLOCKS if isinstance(channels, int) else tuple(channels)
    if (len(widths) != BLOCKS
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in widths)):
        raise ValueError(f"channels must be a positive integer or {BLOCKS} of them (one per "
                         f"block), got {channels!r}")
    return widths


def init_params(generator: torch.Generator, channels: int | tuple[int, ...] = CHANNELS,
                outputs: int = HEAD) -> Params:
    """He-uniform convolutions (ReLU), zero biases; the head as PyTorch's Linear."""
    params: Params = {}
    fan = 1
    for i, width in enumerate(block_widths(channels), 1):
        bound = math.sqrt(6.0 / (fan * 9))
        params[f"conv{i}.w"] = (torch.rand(width, fan, 3, 3, generator=generator) * 2 - 1) * bound
        params[f"conv{i}.b"] = torch.zeros(width)
        fan = width
    features = fan * SPATIAL[-1] ** 2
    bound = 1.0 / math.sqrt(features)
    params["head.w"] = (torch.rand(features, outputs, generator=generator) * 2 - 1) * bound
    params["head.b"] = (torch.rand(outputs, generator=generator) * 2 - 1) * bound
    return params


def per_task(params: Params, num_tasks: int) -> Params:
    return {n: p.unsqueeze(0).expand(num_tasks, *p.shape) for n, p in params.items()}


# --8<-- [start:forward]
def features(params: Params, images: torch.Tensor) -> torch.Tensor:
    """The conv blocks: images [T, B, 28, 28] -> features [T, B, F]. Parameters
    with a task dimension run as one grouped convolution per block (groups = T)."""
    T, B = images.shape[:2]
    batched = params["conv1.w"].dim() == 5
    if batched:
        h = images.transpose(0, 1).reshape(B, T, SIZE, SIZE)          # [B, T·1, H, W]
    else:
        h = images.reshape(T * B, 1, SIZE, SIZE)
    for i in range(1, BLOCKS + 1):
        w, b = params[f"conv{i}.w"], params[f"conv{i}.b"]
        if batched:
            h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), b.reshape(-1), stride=2, padding=1, groups=T)
        else:
            h = F.conv2d(h, w, b, stride=2, padding=1)
        h = torch.relu(h)
    if batched:
        return h.reshape(B, T, -1).transpose(0, 1)                     # [T, B, C·2·2]
    return h.reshape(T, B, -1)


def logits(params: Params, images: torch.Tensor) -> torch.Tensor:
    """Class scores [T, B, HEAD]."""
    f = features(params, images)
    w, b = params["head.w"], params["head.b"]
    if w.dim() == 3:
        return torch.baddbmm(b.unsqueeze(1), f, w)
    return f @ w + b
# --8<-- [end:forward]


def class_mask(support_labels: torch.Tensor, outputs: int = HEAD) -> torch.Tensor:
    """[T, HEAD] bool: the classes some support label names (the task's ways)."""
    onehot = F.one_hot(support_labels, outputs)
    return onehot.sum(1) > 0


def masked_log_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log-probabilities over the task's classes; -inf-like (exp = 0) for the others."""
    return torch.log_softmax(scores.masked_fill(~mask.unsqueeze(1), -1e9), dim=-1)


def task_loss(params: Params, images, labels, mask) -> torch.Tensor:
    """Mean cross-entropy of each task [T]."""
    logp = masked_log_softmax(logits(params, images), mask)
    return -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1).mean(1)


# --8<-- [start:adapt]
def adapt(params: Params, images, labels, mask, steps: int, lr: float,
          create_graph: bool = False, trajectory: bool = False):
    """``steps`` plain gradient steps on each task's support cross-entropy, all
    tasks at once (the gradient of the summed task losses with respect to
    per-task parameters is each task's own gradient). With create_graph the
    steps stay differentiable (second-order MAML). With trajectory, returns the
    parameters after 0, 1, …, steps steps."""
    T = images.shape[0]
    phi = per_task(params, T) if params["head.w"].dim() == 2 else params
    path = [phi]
    for _ in range(steps):
        head_only = _constant_zero_head(phi)
        with torch.enable_grad():
            if not create_graph:
                phi = {n: p.detach().requires_grad_(True) for n, p in phi.items()}
            else:   # a part that is not meta-learned (a zero head) is a constant of θ
                phi = {n: p if p.requires_grad else p.detach().requires_grad_(True)
                       for n, p in phi.items()}
            names = [n for n in phi if n.startswith("head.")] if head_only else list(phi)
            loss = task_loss(phi, images, labels, mask).sum()
            grads = dict(zip(names, torch.autograd.grad(loss, [phi[n] for n in names],
                                                        create_graph=create_graph)))
        # A block left out keeps its value; view_as gives it a new autograd node,
        # so that the next step's gradient in it is taken through that step only.
        phi = {n: p - lr * grads[n] if n in grads else p.view_as(p) for n, p in phi.items()}
        if not create_graph:
            phi = {n: p.detach() for n, p in phi.items()}
        path.append(phi)
    return path if trajectory else phi


def _constant_zero_head(phi: Params) -> bool:
    """Whether the head is zeros that do not depend on θ (a zero head's, or the
    pretrained net's, first step). Then every conv block's gradient is exactly
    zero, and so is its derivative in θ: the gradient reaches the blocks only
    through the head's weights (dL/dfeatures = dL/dscores · headᵀ = 0). So the
    step differentiates the head alone: the same numbers, without a backward
    pass through the blocks, nor, in second-order MAML, a double backward
    through it (a meta-iteration 1.36x to 1.48x faster on this CPU; the same
    gradient to the bit)."""
    w, b = phi["head.w"], phi["head.b"]
    return not (w.requires_grad or b.requires_grad) and not bool(w.any()) and not bool(b.any())
# --8<-- [end:adapt]


# ------------------------------------------------------------------ tasks

class GlyphBatch(NamedTuple):
    support: torch.Tensor          # [T, N, 28, 28] float, ink in [0, 1]
    support_labels: torch.Tensor   # [T, N] int64 (labels 0..N-1)
    query: torch.Tensor            # [T, N·Q, 28, 28]
    query_labels: torch.Tensor     # [T, N·Q]
    mask: torch.Tensor             # [T, HEAD] bool: labels 0..N-1


class GlyphTasks:
    """Within-alphabet N-way 1-shot tasks on a set of alphabets, ink uint8
    [A, C, H, 28, 28] (site_builder.glyphs.split_glyphs): per task, one
    alphabet, N of its characters, all drawn by one hand (the support set, as
    in the quiz), and each character drawn ``queries`` more times by other
    hands (the query set: one hand per task with ``same_query_hand``, as in a
    quiz round, else a hand per drawing)."""

    def __init__(self, ink: np.ndarray, device: torch.device | str = "cpu"):
        if ink.ndim != 5 or ink.shape[-2:] != (SIZE, SIZE):
            raise ValueError(f"glyph ink must be [alphabets, characters, hands, {SIZE}, {SIZE}], "
                             f"got {list(ink.shape)}")
        if ink.shape[2] < 2:
            raise ValueError("a 1-shot task needs at least two hands per alphabet")
        self.device = torch.device(device)
        self.ink = torch.from_numpy(np.array(ink, dtype=np.uint8)).to(self.device)
        self.alphabets, self.characters, self.hands = ink.shape[:3]

    def sample(self, num_tasks: int, ways: int, generator: torch.Generator, queries: int = 1,
               same_query_hand: bool = False) -> GlyphBatch:
        if not 1 <= ways <= min(self.characters, HEAD):
            raise ValueError(f"ways must be from 1 to {min(self.characters, HEAD)}, got {ways}")
        T, N, Q, H = num_tasks, ways, queries, self.hands
        alphabet = torch.randint(self.alphabets, (T,), generator=generator)
        classes = torch.rand(T, self.characters, generator=generator).argsort(1)[:, :N]
        support_hand = torch.randint(H, (T,), generator=generator)
        shape = (T, 1, 1) if same_query_hand else (T, N, Q)
        other = torch.randint(H - 1, shape, generator=generator)
        query_hand = ((support_hand.view(T, 1, 1) + 1 + other) % H).expand(T, N, Q)
        a = alphabet.view(T, 1, 1).expand(T, N, Q)
        c = classes.view(T, N, 1).expand(T, N, Q)
        idx = [t.to(self.device) for t in (alphabet, classes, support_hand, a, c, query_hand)]
        alphabet, classes, support_hand, a, c, query_hand = idx
        support = self.ink[alphabet.view(T, 1), classes, support_hand.view(T, 1)]
        query = self.ink[a, c, query_hand].reshape(T, N * Q, SIZE, SIZE)
        labels = torch.arange(N, device=self.device).expand(T, N)
        query_labels = labels.unsqueeze(-1).expand(T, N, Q).reshape(T, N * Q)
        mask = (torch.arange(HEAD, device=self.device) < N).expand(T, HEAD)
        return GlyphBatch(support.float() / 255, labels, query.float() / 255, query_labels, mask)


# --------------------------------------------------------------- training

@dataclass(frozen=True)
class ConvConfig:
    """One conv net's training: MAML (second order) or the pretrained baseline."""
    algorithm: str                      # maml | fomaml | pretrained
    iterations: int = 6000
    meta_batch_size: int = 16           # tasks per meta-iteration (MAML)
    ways: tuple[int, ...] = (5, 20)     # the meta-iterations cycle through these N
    queries: int = 2                    # query drawings per character (other hands)
    inner_lr: float = 0.1
    inner_steps: int = 3
    meta_lr: float = 1e-3
    #: "constant", or "cosine": the meta rate falls from meta_lr to 0 along half a cosine.
    schedule: str = "constant"
    channels: int | tuple[int, ...] = CHANNELS   # per block, or one for all (block_widths)
    batch_size: int = 128               # drawings per step (pretrained)
    alphabets: int = 40                 # background alphabets
    characters: int = 20
    hands: int = 10
    #: Each background alphabet's characters turned by 90°, 180° and 270° are
    #: three more alphabets (new classes; a round keeps one orientation).
    rotations: bool = False
    seed: int = 0
    log_every: int = 100
    options: dict = field(default_factory=dict)
    #: MAML: the head is zeros at the start of every task and is not meta-learned
    #: (only the conv blocks are); see the module docstring.
    zero_head: bool = False

    def __post_init__(self):
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}; allowed: constant, cosine")
        if self.algorithm not in ("maml", "fomaml", "pretrained"):
            raise ValueError(f"unknown conv algorithm {self.algorithm!r}; allowed: maml, fomaml, pretrained")
        block_widths(self.channels)
        for name in ("iterations", "meta_batch_size", "queries", "batch_size",
                     "alphabets", "characters", "hands", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.zero_head, bool):
            raise ValueError(f"zero_head must be true or false, got {self.zero_head!r}")
        if self.zero_head and self.algorithm == "pretrained":
            raise ValueError("zero_head is for MAML; the pretrained net's head is replaced by "
                             "zeros after training (fine_tune_start)")
        if not self.ways or any(not 2 <= w <= min(HEAD, self.characters) for w in self.ways):
            raise ValueError(f"ways must be from 2 to {min(HEAD, self.characters)}, got {self.ways!r}")
        for name in ("inner_lr", "meta_lr"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def to_dict(self) -> dict:
        import dataclasses
        d = dataclasses.asdict(self)
        d["ways"] = list(self.ways)
        if not isinstance(self.channels, int):
            d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "ConvConfig":
        channels = data.get("channels", CHANNELS)
        return cls(**{**data, "ways": tuple(data["ways"]),
                      "channels": channels if isinstance(channels, int) else tuple(channels)})


# --8<-- [start:meta_gradient]
def maml_meta_loss(params: Params, batch: GlyphBatch, inner_lr: float, steps: int,
                   first_order: bool = False) -> torch.Tensor:
    """Mean query loss over the tasks after ``steps`` inner steps; its gradient
    in θ is the (second-order, unless first_order) MAML meta-gradient."""
    phi = adapt(params, batch.support, batch.support_labels, batch.mask, steps, inner_lr,
                create_graph=not first_order)
    if first_order:
        phi = {n: p.detach().requires_grad_(True) for n, p in phi.items()}
    loss = task_loss(phi, batch.query, batch.query_labels, batch.mask).mean()
    return loss, phi
# --8<-- [end:meta_gradient]


def meta_gradient(params: Params, batch: GlyphBatch, inner_lr: float, steps: int,
                  first_order: bool = False,
                  learned: tuple[str, ...] | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The meta-gradient in the parameters named ``learned`` (all by default),
    in that order; the others are constants (a zero head)."""
    learned = tuple(params) if learned is None else tuple(learned)
    with torch.enable_grad():
        loss, phi = maml_meta_loss(params, batch, inner_lr, steps, first_order)
        if first_order:        # the loss is the task mean: summing over tasks gives its gradient
            grads = [g.sum(0) for g in torch.autograd.grad(loss, [phi[n] for n in learned])]
        else:
            grads = torch.autograd.grad(loss, [params[n] for n in learned])
    return list(grads), loss.detach()


class TrainResult(NamedTuple):
    params: Params
    history: list[dict]
    seconds: float
    device: str


def tasks_per_iteration(cfg: "ConvConfig", ways: int) -> int:
    """The meta-batch of an N-way iteration: meta_batch_size tasks up to 5-way,
    half as many above (the MAML paper's 32 and 16 for 5- and 20-way Omniglot)."""
    return cfg.meta_batch_size if ways <= 5 else max(1, cfg.meta_batch_size // 2)


def with_rotations(ink: np.ndarray) -> np.ndarray:
    """ink [A, C, H, 28, 28] and its characters turned by 90°, 180° and 270°: [4A, C, H, 28, 28]."""
    return np.ascontiguousarray(np.concatenate([np.rot90(ink, k, axes=(-2, -1)) for k in range(4)]))


def starting_params(cfg: ConvConfig, generator: torch.Generator,
                    outputs: int = HEAD) -> tuple[Params, tuple[str, ...]]:
    """θ before training (init_params; with ``cfg.zero_head`` a head of zeros)
    and the names of the parameters training learns (not that head)."""
    params = init_params(generator, cfg.channels, outputs)
    if cfg.zero_head:
        params["head.w"].zero_()
        params["head.b"].zero_()
    return params, tuple(n for n in params if not (cfg.zero_head and n.startswith("head.")))


def train(cfg: ConvConfig, ink: np.ndarray, device: str = "auto",
          log: Callable[[str], None] | None = None,
          on_log: Callable[[int, Params], None] | None = None) -> TrainResult:
    """Meta-train (MAML) or joint-train (pretrained) from a seeded initialisation
    on ``ink`` (the background alphabets). Returns θ on the CPU. on_log(iteration, θ)
    is called every log_every iterations (not counted in the seconds)."""
    from .train import resolve_device

    dev = resolve_device(device)
    if cfg.rotations:
        ink = with_rotations(ink)
    generator = torch.Generator().manual_seed(cfg.seed)
    classes = ink.shape[0] * ink.shape[1]
    params, learned = starting_params(cfg, generator, classes if cfg.algorithm == "pretrained" else HEAD)
    params = {n: p.to(dev).requires_grad_(n in learned) for n, p in params.items()}
    optimizer = torch.optim.Adam([params[n] for n in learned], lr=cfg.meta_lr)
    tasks = GlyphTasks(ink, dev)
    flat_ink = tasks.ink.reshape(-1, SIZE, SIZE)                 # [A·C·H, 28, 28]
    history, window, paused = [], 0.0, 0.0
    started = time.perf_counter()
    for iteration in range(1, cfg.iterations + 1):
        if cfg.schedule == "cosine":
            for group in optimizer.param_groups:
                group["lr"] = cfg.meta_lr * 0.5 * (1 + math.cos(math.pi * (iteration - 1) / cfg.iterations))
        if cfg.algorithm == "pretrained":
            pick = torch.randint(flat_ink.shape[0], (cfg.batch_size,), generator=generator)
            images = flat_ink[pick.to(dev)].float().unsqueeze(0) / 255
            labels = (pick // ink.shape[2]).to(dev)
            with torch.enable_grad():
                loss = F.cross_entropy(logits(params, images)[0], labels)
                grads = torch.autograd.grad(loss, [params[n] for n in learned])
            loss = loss.detach()
        else:
            ways = cfg.ways[(iteration - 1) % len(cfg.ways)]
            batch = tasks.sample(tasks_per_iteration(cfg, ways), ways, generator, cfg.queries)
            grads, loss = meta_gradient(params, batch, cfg.inner_lr, cfg.inner_steps,
                                        cfg.algorithm == "fomaml", learned)
        for p, g in zip((params[n] for n in learned), grads):
            p.grad = g
        optimizer.step()
        window = window + loss
        if iteration % cfg.log_every == 0 or iteration == cfg.iterations:
            count = (iteration - 1) % cfg.log_every + 1
            elapsed = time.perf_counter() - started - paused
            history.append({"iteration": iteration, "meta_loss": round(float(window) / count, 5),
                            "seconds": round(elapsed, 2)})
            window = 0.0
            if log:
                log(f"{cfg.algorithm}: iteration {iteration}/{cfg.iterations}, loss "
                    f"{history[-1]['meta_loss']:.4f}, {elapsed:.0f} s")
            if on_log:
                t0 = time.perf_counter()
                on_log(iteration, {n: p.detach().to("cpu").clone() for n, p in params.items()})
                paused += time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started - paused
    final = {n: p.detach().to("cpu").clone() for n, p in params.items()}
    return TrainResult(final, history, seconds, str(dev))


def fine_tune_start(params: Params) -> Params:
    """The pretrained net as it starts every task: its conv blocks and a new,
    zero 20-way head (the joint-training head scores background classes)."""
    out = {n: p for n, p in params.items() if not n.startswith("head.")}
    features = params["head.w"].shape[0]
    out["head.w"] = torch.zeros(features, HEAD)
    out["head.b"] = torch.zeros(HEAD)
    return out


# ------------------------------------------------------------- evaluation

def accuracy_by_step(params: Params, tasks: GlyphTasks, ways: int, num_tasks: int, steps: int,
                     inner_lr: float, seed: int, chunk: int = 100) -> dict:
    """The evaluation protocol: ``num_tasks`` seeded quiz-like rounds (one
    support hand, one query hand, every character queried once); per step
    0..steps the mean accuracy over tasks and its 95% CI (1.96·σ/√n)."""
    generator = torch.Generator().manual_seed(seed)
    per_task = []
    done = 0
    while done < num_tasks:
        T = min(chunk, num_tasks - done)
        batch = tasks.sample(T, ways, generator, queries=1, same_query_hand=True)
        mask = class_mask(batch.support_labels)
        path = adapt(params, batch.support, batch.support_labels, mask, steps, inner_lr, trajectory=True)
        rows = []
        with torch.no_grad():
            for phi in path:
                guess = masked_log_softmax(logits(phi, batch.query), mask).argmax(-1)
                rows.append((guess == batch.query_labels).float().mean(1))
        per_task.append(torch.stack(rows, 1).cpu())          # [T, steps+1]
        done += T
    acc = torch.cat(per_task).double()
    mean = acc.mean(0)
    ci = 1.96 * acc.std(0, unbiased=True) / math.sqrt(acc.shape[0]) if acc.shape[0] > 1 else torch.zeros_like(mean)
    return {"ways": ways, "tasks": int(acc.shape[0]), "accuracy": [round(float(v), 5) for v in mean],
            "ci95": [round(float(v), 5) for v in ci]}


def choose_inner_lr(params: Params, tasks: GlyphTasks, candidates, num_tasks: int, steps: int,
                    seed: int) -> tuple[float, list[dict]]:
    """The candidate rate with the best mean of 5-way and 20-way accuracy after
    ``steps`` steps on validation rounds; and every candidate's scores."""
    scores = []
    for lr in candidates:
        accs = {w: accuracy_by_step(params, tasks, w, num_tasks, steps, lr, seed + w)["accuracy"][-1]
                for w in (5, 20)}
        scores.append({"inner_lr": lr, "acc_5way": accs[5], "acc_20way": accs[20],
                       "score": round((accs[5] + accs[20]) / 2, 5)})
    best = max(scores, key=lambda s: s["score"])
    return float(best["inner_lr"]), scores
