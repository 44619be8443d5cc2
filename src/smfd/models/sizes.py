"""Padding to a multiple of the network stride and cropping back, so any input size works; running a mask net
at a fixed working size."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 0) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` (B, C, H, W) up to a multiple of ``multiple`` and at least ``min_size`` (a
    multiple of ``multiple``); returns the original size.

    Reflection padding (replicate where the image is too small to reflect) avoids a hard black border the
    network would have to learn around.
    """
    h, w = x.shape[-2:]
    ph, pw = max((-h) % multiple, min_size - h), max((-w) % multiple, min_size - w)
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average down (as OpenCV's INTER_AREA, which the datasets use), bilinear up; same size: unchanged."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = size[0] <= x.shape[-2] and size[1] <= x.shape[-1]
    return F.interpolate(x, size=size, mode="area") if down else F.interpolate(x, size=size, mode="bilinear")


def work_shape(size: tuple[int, int], work_size: int) -> tuple[int, int]:
    """``size`` scaled so its longer side is ``work_size`` (aspect kept)."""
    h, w = size
    s = work_size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def at_work_size(network: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, work_size: int | None
                 ) -> torch.Tensor:
    """Run ``network`` on ``x`` scaled to ``work_size`` (longer side) and resize its output back to ``x``'s size.

    A mask net run this way sees the whole face in its receptive field at the scale it was trained on, at
    ``(work_size / size)^2`` of the cost; ``None`` runs it at the input's own size.
    """
    if work_size is None:
        return network(x)
    size = tuple(x.shape[-2:])
    return resize(network(resize(x, work_shape(size, work_size))), size)
