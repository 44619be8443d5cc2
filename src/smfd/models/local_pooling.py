"""Test-time local statistics (TLC: Chu et al., "Improving Image Restoration by Revisiting Global Information
Aggregation", ECCV 2022) as a conversion of a built net, the way NAFNet's ``Local_Base`` swaps its pooling layers.

A net trained on crops and pooling globally (CBAM's channel attention, the thesis's post-processing, NAFNet's
simplified channel attention) sees, on a whole face, the statistics of a much larger image than it was trained
with. :func:`use_local_stats` swaps those modules for ones that take their means and maxima over crop-sized windows
around each pixel instead. It adds no parameters and keeps every state-dict key, so it applies to trained weights
(``create_model(..., pool_window=64)``, which is how weights files record it). Not in the thesis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ChannelAttention, PostProcess
from .nafnet import NAFBlock


def local_stats(x: torch.Tensor, window: int, reduce: str) -> torch.Tensor:
    """Mean or max of ``x`` (B, C, H, W) over ``window``-px squares laid every ``window // 2`` px (H, W >= window).
    Returns the grid of window statistics, for :func:`spread_stats`."""
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


def fits_window(h: int, w: int, window: int, above: bool = False) -> bool:
    """Whether an ``h`` x ``w`` map takes its statistics over ``window``-px windows: a map smaller than the window
    takes the whole map's. ``above``: so does a map of exactly one window (taken in one pass: bit for bit the numbers
    of the net without windows, for a net given windows at inference by :func:`local_stats_above`; a net trained
    with windows takes them there too, as it did in training). The same rule holds at every level of a net (its maps
    and windows shrink together), so it also says which graph of an ONNX export runs an input."""
    return min(h, w) >= window and (not above or max(h, w) > window)


def _fits(x: torch.Tensor, module: nn.Module) -> bool:
    return fits_window(*x.shape[-2:], module.window, module.above)


class LocalChannelAttention(nn.Module):
    """CBAM channel attention (the same ``mlp``) on the mean and max of windows around each pixel."""

    above = False  #: windows only on maps larger than one (:func:`fits_window`)

    def __init__(self, attention: ChannelAttention, window: int) -> None:
        super().__init__()
        self.mlp, self.window = attention.mlp, window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _fits(x, self):
            return x * torch.sigmoid(self.mlp(x.mean(dim=(2, 3), keepdim=True)) +
                                     self.mlp(x.amax(dim=(2, 3), keepdim=True)))
        att = self.mlp(local_stats(x, self.window, "mean")) + self.mlp(local_stats(x, self.window, "max"))
        return x * spread_stats(torch.sigmoid(att), self.window, x.shape[-2:])

    def extra_repr(self) -> str:
        return f"window={self.window}"


class LocalPostProcess(PostProcess):
    """The post-processing around the mean of a window around each pixel."""

    above = False  #: windows only on maps larger than one (:func:`fits_window`)

    def __init__(self, post: PostProcess, window: int) -> None:
        super().__init__(contrast=post.contrast, brightness=post.brightness, per_channel=post.per_channel)
        self.window = window

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        if not _fits(x, self):
            return super().mean(x)
        m = x if self.per_channel else x.mean(dim=1, keepdim=True)
        return spread_stats(local_stats(m, self.window, "mean"), self.window, x.shape[-2:])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window={self.window}"


class LocalSCA(nn.Sequential):
    """NAFNet's simplified channel attention (global average pool, 1x1 conv) per window: same children and keys."""

    above = False  #: windows only on maps larger than one (:func:`fits_window`)

    def __init__(self, sca: nn.Sequential, window: int) -> None:
        super().__init__(*sca)
        self.window = window

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if not _fits(y, self):
            return super().forward(y)
        return spread_stats(self[1](local_stats(y, self.window, "mean")), self.window, y.shape[-2:])

    def extra_repr(self) -> str:
        return f"window={self.window}"


def _targets(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, module) of every globally pooling module."""
    found = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, (ChannelAttention, PostProcess)) or (isinstance(parent, NAFBlock) and name == "sca"):
                found.append((parent, name, child))
    return found


def use_local_stats(model: nn.Module, window: int, *, above: bool = False) -> nn.Module:
    """Make ``model`` (a deblurring or mask net) pool over ``window``-px squares of its input around each pixel
    (at a level ``2**k`` times smaller, ``window / 2**k``); in place, returns the model. Images smaller than the
    window are padded up to it (the net's ``min_size``); with ``above`` they are not, and they and an image of
    exactly one window keep the whole-image statistics (:func:`fits_window`).

    Each module's scale is found by one small forward pass. ``window``: a multiple of the net's stride of at least
    twice it (so every level's window is at least 2 px), e.g. the side of the training crops.
    """
    stride = getattr(model, "stride", 1)
    if window < 2 * stride or window % stride:
        raise ValueError(f"pool_window must be a multiple of {stride} and at least {2 * stride}, got {window}")
    if getattr(model, "local_stats", None):
        raise ValueError(f"{type(model).__name__} already uses local statistics "
                         f"(window {model.local_stats})")
    targets = _targets(model)
    probe, widths = 4 * stride, {}

    def record(module: nn.Module, args: tuple) -> None:
        widths.setdefault(id(module), args[0].shape[-1])

    hooks = [m.register_forward_pre_hook(record) for _, _, m in targets]
    device = next(model.parameters()).device  # probed where the net is (a GPU, when loaded there)
    inputs = [torch.zeros(1, model.in_channels, probe, probe, device=device)]
    if getattr(model, "mask_channels", 0):
        inputs.append(torch.full((1, model.mask_channels, probe, probe), 1.0 / model.mask_channels, device=device))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(*inputs)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    for parent, name, module in targets:
        level_window = window * widths[id(module)] // probe
        if isinstance(module, ChannelAttention):
            local = LocalChannelAttention(module, level_window)
        elif isinstance(module, PostProcess):
            local = LocalPostProcess(module, level_window)
        else:
            local = LocalSCA(module, level_window)
        local.above = above
        setattr(parent, name, local)
    model.local_stats = window
    if hasattr(model, "min_size") and not above:
        model.min_size = window  # smaller images are padded up to the window, where the statistics were taken
    return model


def local_stats_above(model: nn.Module, window: int) -> int:
    """Make a net that pools over its whole input take those statistics over ``window``-px windows on inputs
    larger than the window (in place), for inference: a net trained on crops of that side never saw the statistics
    of a larger input. Inputs up to the window keep their whole-input statistics and are not padded (their numbers
    are those of the net as it was). Returns the window the net now uses: its own if it already uses local
    statistics, 0 if it pools nowhere (left as it is). A ``window`` its stride does not suit is a ValueError."""
    if getattr(model, "local_stats", None):
        return model.local_stats
    if not _targets(model):
        return 0
    use_local_stats(model, window, above=True)
    return window


__all__ = ["LocalChannelAttention", "LocalPostProcess", "LocalSCA", "fits_window", "local_stats", "local_stats_above",
           "spread_stats", "use_local_stats"]
