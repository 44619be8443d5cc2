"""Numeric precision and memory format of every net smfd runs: bf16 autocast and channels_last.

``precision`` is one of :data:`PRECISIONS`:

* ``auto`` (default): bf16 autocast where the device does bf16 natively (a CPU with ``avx512_bf16`` or
  ``amx_bf16``, a CUDA GPU that supports it), else fp32;
* ``bf16``: bf16 autocast; on a device without native bf16 it falls back to fp32 with one warning;
* ``fp32``: no autocast, the numbers of plain float32 (to rounding).

Autocast runs convolutions and matrix products in bf16 and keeps reductions, norms, softmax, losses and the
optimizer in fp32 (PyTorch's autocast op lists); weights stay fp32 in memory and on disk. channels_last is
used with every precision: on this project's CPU it measured faster in fp32 too (``benchmarks/precision.py``).

Example:
    >>> prec = resolve_precision("auto", torch.device("cpu"))
    >>> net = to_channels_last(net)
    >>> with autocast(prec, device):
    ...     out = net(to_channels_last(x)).float()
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from typing import TYPE_CHECKING

from .errors import BadOption

if TYPE_CHECKING:  # PyTorch is imported where a net runs, not where a --precision value is checked
    import torch

PRECISIONS = ("auto", "bf16", "fp32")

log = logging.getLogger("smfd")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` does bf16 arithmetic in hardware (so autocast to bf16 is faster, not emulated)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())
    return False


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ValueError naming the allowed values."""
    if precision not in PRECISIONS:
        raise BadOption(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``auto``/``bf16``/``fp32`` -> the precision that will run on ``device``: ``bf16`` or ``fp32``.

    ``bf16`` asked for on a device without native bf16 falls back to ``fp32`` with one warning line.
    """
    check_precision(precision)
    native = native_bf16(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        import torch

        log.warning("precision bf16: %s has no native bf16 arithmetic; running in fp32", torch.device(device))
        return "fp32"
    return precision


def autocast(precision: str, device: torch.device | str = "cpu"):
    """A context that runs its nets at ``precision`` (a resolved one: ``bf16`` or ``fp32``)."""
    import torch

    device = torch.device(device)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"autocast needs a resolved precision (bf16 or fp32), got {precision!r}")


def to_channels_last(x):
    """A module or a 4-D tensor in the channels_last memory format (other tensors are returned as they are)."""
    import torch

    if isinstance(x, torch.nn.Module):
        return x.to(memory_format=torch.channels_last)
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x
