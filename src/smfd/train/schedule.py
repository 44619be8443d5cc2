"""How long and how fast a run trains: the wall-clock budget, the cosine learning rate, batches that resume within
an epoch, and the EMA of the weights."""

from __future__ import annotations

import math
import time

import torch
from torch import nn
from torch.utils.data import BatchSampler, Sampler


class Budget:
    """Training wall-clock so far (carried over a resume) against ``budget_minutes``; drives the cosine schedule."""

    def __init__(self, minutes: float | None, spent: float = 0.0) -> None:
        self.seconds = minutes * 60 if minutes else None
        self.spent, self._start = spent, None

    def start(self) -> None:
        self._start = time.monotonic()

    def stop(self) -> None:
        if self._start is not None:
            self.spent += time.monotonic() - self._start
            self._start = None

    @property
    def elapsed(self) -> float:
        return self.spent + (time.monotonic() - self._start if self._start is not None else 0.0)

    @property
    def done(self) -> bool:
        return self.seconds is not None and self.elapsed >= self.seconds


def cosine_lr(base: float, min_lr: float, progress: float) -> float:
    """Cosine decay from ``base`` to ``min_lr`` over ``progress`` in [0, 1]."""
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


class ResumableBatches(Sampler):
    """Batches of ``sampler`` (a seeded shuffle), leaving out the first ``skip`` of them once: an epoch resumed
    from a checkpoint written within it sees the rest of the same order, without loading the batches it left."""

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool) -> None:
        self.batches, self.skip = BatchSampler(sampler, batch_size, drop_last), 0

    def __iter__(self):
        batches = iter(self.batches)
        skip, self.skip = self.skip, 0
        for _ in range(skip):
            next(batches, None)
        yield from batches

    def __len__(self) -> int:
        return len(self.batches) - self.skip


def ema_decay(decay: float, averaged: int) -> float:
    """The EMA's decay after ``averaged`` updates, warmed up as (1 + n) / (10 + n) (timm's ModelEmaV3 warm-up):
    a fixed 0.998 would keep ~1/e of the weights of 500 steps ago, which on a CPU budget of a few hundred steps
    is most of the run; the warm-up lets the average follow the early, fast-moving weights."""
    return min(decay, (1.0 + averaged) / (10.0 + averaged))


def make_ema(model: nn.Module, decay: float):
    from torch.optim.swa_utils import AveragedModel

    def update(averaged_params, params, num_averaged):
        d = ema_decay(decay, int(num_averaged))
        if torch.is_floating_point(averaged_params[0]):
            torch._foreach_lerp_(averaged_params, params, 1.0 - d)
        else:  # integer buffers (BatchNorm's batch counters) follow the live net
            for a, p in zip(averaged_params, params, strict=True):
                a.copy_(p)

    # use_buffers: BatchNorm statistics are averaged with the weights, so the averaged net is self-consistent
    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


__all__ = ["Budget", "ResumableBatches", "cosine_lr", "cpu_state", "ema_decay", "make_ema"]
