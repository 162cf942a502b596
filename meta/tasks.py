"""The sinusoid task family of Finn et al. (2017).

A task is y = A * sin(x + phase) with A ~ U[0.1, 5.0], phase ~ U[0, pi] and
inputs x ~ U[-5, 5]. Everything is batched: a TaskBatch holds T tasks at once,
each tensor shaped [T, points, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch


class TaskBatch(NamedTuple):
    support_x: torch.Tensor  # [T, K, 1] data the model adapts on ("train")
    support_y: torch.Tensor
    query_x: torch.Tensor    # [T, Q, 1] data the adapted model is judged on ("test")
    query_y: torch.Tensor


@dataclass(frozen=True)
class SinusoidFamily:
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def describe(self) -> dict:
        """The manifest's description of the family (contracts.md)."""
        return {
            "family": "sinusoid",
            "amplitude": list(self.amplitude),
            "phase": [self.phase[0], round(self.phase[1], 5)],
            "x": list(self.x_range),
        }

    def sample_tasks(self, num_tasks: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Amplitudes and phases, each shaped [T]."""
        amplitude = _scale(torch.rand(num_tasks, generator=generator), self.amplitude)
        phase = _scale(torch.rand(num_tasks, generator=generator), self.phase)
        return amplitude, phase

    def sample_x(self, num_tasks: int, num_points: int, generator: torch.Generator) -> torch.Tensor:
        return _scale(torch.rand(num_tasks, num_points, 1, generator=generator), self.x_range)

    @staticmethod
    def target(amplitude: torch.Tensor, phase: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """y = A sin(x + phase) for x shaped [T, N, 1] and A, phase shaped [T]."""
        return amplitude[:, None, None] * torch.sin(x + phase[:, None, None])

    @staticmethod
    def draws(num_tasks: int, k_support: int, k_query: int, generator: torch.Generator) -> torch.Tensor:
        """The uniform random numbers behind one batch, [T, 2 + K + Q, 1], drawn
        on the CPU so that a seed gives the same random numbers on every device
        (the tasks built from them then agree to the device's rounding). One
        draw for everything: this runs every meta-iteration, and on a CPU each
        extra random call costs about as much as a layer of the network."""
        return torch.rand(num_tasks, 2 + k_support + k_query, 1, generator=generator)

    def batch_from_draws(self, u: torch.Tensor, k_support: int) -> TaskBatch:
        """The task batch that ``draws`` stands for: per task an amplitude, a
        phase, then K support and Q query inputs. Plain element-wise work, so
        the training step can run it inside its compiled region."""
        amplitude, phase = _scale(u[:, 0, 0], self.amplitude), _scale(u[:, 1, 0], self.phase)
        x = _scale(u[:, 2:], self.x_range)
        y = self.target(amplitude, phase, x)
        return TaskBatch(x[:, :k_support], y[:, :k_support], x[:, k_support:], y[:, k_support:])

    def sample_batch(self, num_tasks: int, k_support: int, k_query: int,
                     generator: torch.Generator) -> TaskBatch:
        """T fresh tasks with K support and Q query points each."""
        return self.batch_from_draws(self.draws(num_tasks, k_support, k_query, generator), k_support)


def _scale(u: torch.Tensor, interval: tuple[float, float]) -> torch.Tensor:
    """Uniform samples on [0, 1) moved to [low, high)."""
    low, high = interval
    return u * (high - low) + low


SINUSOID = SinusoidFamily()
