"""Size, compute and CPU latency of a model: the numbers of ``smfd summary``."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .registry import count_parameters, example_inputs
from .runner import Runner


def count_flops(runner: Runner, size: int = 256) -> int:
    """FLOPs of one forward pass of a runner's net on a ``size x size`` face, batch 1 (torch's counter: 2 per
    multiply-add); a mask net with a working size (``work_size``) is counted at that size, where the runner runs
    it."""
    work = runner.spec.work_size
    size = min(size, work) if work else size
    inputs = example_inputs(runner.module, 1, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        runner.module(*inputs)
    return counter.get_total_flops()


def measure_latency(model: nn.Module, size: int = 256, *, runs: int = 5, warmup: int = 1, batch: int = 1) -> float:
    """Median wall time in seconds of a CPU forward pass (eval mode, inference mode)."""
    inputs = example_inputs(model, batch, size, size)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            t = time.perf_counter()
            model(*inputs)
            if i >= warmup:
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def summarize(runner: Runner, size: int = 256, *, runs: int = 5) -> dict:
    """Parameter counts, GFLOPs and median latency (seconds) of one net."""
    model = runner.module
    was_training = model.training
    model.eval()
    try:
        row = dict(count_parameters(model))
        row["gflops"] = count_flops(runner, size) / 1e9
        row["latency_s"] = measure_latency(model, size, runs=runs) if runs > 0 else float("nan")
    finally:
        model.train(was_training)
    return row
