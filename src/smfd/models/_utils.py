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


def check_pool_window(window: int | None, stride: int) -> int | None:
    """A net's ``pool_window`` option: ``None``, or a multiple of the net's stride of at least twice it (so every
    level's window, ``window / 2**level``, is at least 2 px)."""
    if window is not None and (window < 2 * stride or window % stride):
        raise ValueError(f"pool_window must be a multiple of {stride} and at least {2 * stride}, got {window}")
    return window


def level_window(window: int | None, level: int) -> int | None:
    """A pooling window of ``window`` input pixels at encoder level ``level`` (2**level times smaller)."""
    return window // 2**level if window else None


def local_stats(x: torch.Tensor, window: int, reduce: str) -> torch.Tensor:
    """Mean or max of ``x`` (B, C, H, W) over ``window``-px squares laid every ``window // 2`` px (H, W >= window).

    Test-time local statistics (Chu et al., "Improving Image Restoration by Revisiting Global Information
    Aggregation", ECCV 2022): a net trained on crops of side ``window`` and pooling globally sees, at test time, the
    statistics of one crop-sized region instead of the whole image. Returns the grid of window statistics, for
    :func:`spread_stats`.
    """
    pool, s = (F.avg_pool2d if reduce == "mean" else F.max_pool2d), window // 2
    return pool(pool(x, s, s), 2, 1)  # s-px blocks, then pairs of them: each pixel read once


def spread_stats(grid: torch.Tensor, window: int, size: tuple[int, int]) -> torch.Tensor:
    """A :func:`local_stats` grid (or whatever was computed from it pixel by pixel) back at ``size``: bilinear
    between the window centres, constant beyond the outer ones. Fixed scale, offsets and padding, so an ONNX
    export keeps dynamic sizes."""
    s = window // 2
    grid = F.pad(grid, (1, 2, 1, 2), mode="replicate")  # constant beyond the outer windows, room for the offset
    up = F.interpolate(grid, scale_factor=s, mode="bilinear", align_corners=False)  # cell j centred at j*s + s/2
    return up[..., s // 2 : s // 2 + size[0], s // 2 : s // 2 + size[1]]  # window j is centred at (j + 1) * s


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
