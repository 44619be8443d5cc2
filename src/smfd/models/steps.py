"""Inference steps after a deblurring net's output, run by :class:`smfd.models.runner.Runner` for every backend.

``keep_mean`` (not in the thesis): give the output each channel's mean over the blurry input. Blur, rescaling and
zero-mean noise keep those means, so the sharp face has them too: this removes any colour drift the net adds. It
has no parameters, so it applies to trained weights (``build(..., keep_mean=True)``, ``smfd eval --model-option
keep_mean=true``). A net's :class:`~smfd.models.runner.NetSpec` records it in ``steps`` (weights files in their
options, ONNX exports in their metadata); bundle and export manifests name it for readers (``files.deblur.steps``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: shift steps after clipping (see :func:`keep_mean`)
KEEP_MEAN_STEPS = 6


def keep_mean(out: torch.Tensor, blurry: torch.Tensor) -> torch.Tensor:
    """``out`` (B, C, H, W) shifted per channel so that, clipped to [0, 1] as every user sees it, its channel means
    are ``blurry``'s."""
    target = blurry.float().mean(dim=(2, 3), keepdim=True)
    out = out.float()
    out = out - out.mean(dim=(2, 3), keepdim=True) + target
    # clipping to [0, 1] moves a mean again; shifting by what is left converges geometrically (the rate is the
    # clipped fraction of the pixels), so a few steps bring the clipped image's means to the target
    for _ in range(KEEP_MEAN_STEPS):
        out = out + (target - out.clamp(0, 1).mean(dim=(2, 3), keepdim=True))
    return out


STEPS = {"keep_mean": keep_mean}


def check_steps(steps: Sequence[str], source: str = "steps") -> tuple[str, ...]:
    bad = [s for s in steps if s not in STEPS]
    if bad:
        raise ValueError(f"{source}: unknown inference step {bad[0]!r}; known: {', '.join(STEPS)}")
    return tuple(steps)


def apply_steps(out: torch.Tensor, blurry: torch.Tensor, steps: Sequence[str]) -> torch.Tensor:
    for name in steps:
        out = STEPS[name](out, blurry)
    return out


__all__ = ["KEEP_MEAN_STEPS", "STEPS", "apply_steps", "check_steps", "keep_mean"]
