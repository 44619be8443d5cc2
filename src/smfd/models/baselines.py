"""The thesis's mask baselines: UNet and UNet++ (Table 4.1).

``segmentation_models_pytorch`` would be the natural source of UNet/UNet++, but it imports timm and
torchvision, and no torchvision release imports beside the pinned CPU torch 2.13.0 build
("operator torchvision::nms does not exist"). The two mask baselines are therefore written here from their
papers, in the configuration the thesis's parameter counts point to (classic 64-1024 widths with BatchNorm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .sizes import crop_to, pad_to_multiple


def _encoder(in_channels: int, channels: tuple[int, ...]) -> nn.ModuleList:
    ins = (in_channels, *channels[:-1])
    return nn.ModuleList(_double_conv(i, o) for i, o in zip(ins, channels, strict=True))


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )  # fmt: skip


class UNet(nn.Module):
    """UNet (Ronneberger et al., 2015) with BatchNorm: double 3x3 convs, max-pool down, bilinear 2x up,
    concatenated skips, 1x1 classifier. Returns logits.

    Parameter-free upsampling with the double conv on the concatenation (``C_i + C_{i+1}`` channels) is the
    variant whose size is the thesis's 31,401,605 (Keras convention; a 2x2 transposed conv up gives
    31,054,405): the same node as UNet++'s first nested column.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes, H, W)``
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 5,
        *,
        channels: tuple[int, ...] = (64, 128, 256, 512, 1024),
    ) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.mask_channels = in_channels, num_classes, 0
        self.stride = 2 ** (len(channels) - 1)
        self.encoder = _encoder(in_channels, channels)
        pairs = list(zip(channels[:-1], channels[1:], strict=True))[::-1]
        self.decoder = nn.ModuleList(_double_conv(skip + below, skip) for skip, below in pairs)
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.stride)
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block(torch.cat([skips.pop(), up], dim=1))  # (B, C_skip + C_below, 2H, 2W)
        return crop_to(self.head(x), size)


class UNetPlusPlus(nn.Module):
    """UNet++ (Zhou et al., 2018): nested dense skip pathways; node X(i, j) is a double conv on
    ``[X(i, 0..j-1), up(X(i+1, j-1))]``; bilinear upsampling; the classifier reads X(0, depth-1). Returns logits.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes, H, W)``
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 5,
        *,
        channels: tuple[int, ...] = (64, 128, 256, 512, 1024),
    ) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.mask_channels = in_channels, num_classes, 0
        depth = len(channels)
        self.depth, self.stride = depth, 2 ** (depth - 1)
        self.encoder = _encoder(in_channels, channels)
        # nodes[f"{i}_{j}"] for j >= 1: level i, j-th nested node
        self.nodes = nn.ModuleDict()
        for j in range(1, depth):
            for i in range(depth - j):
                self.nodes[f"{i}_{j}"] = _double_conv(channels[i] * j + channels[i + 1], channels[i])
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.stride)
        grid: dict[tuple[int, int], torch.Tensor] = {}
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            grid[i, 0] = x
        for j in range(1, self.depth):
            for i in range(self.depth - j):
                below = F.interpolate(grid[i + 1, j - 1], scale_factor=2, mode="bilinear", align_corners=False)
                grid[i, j] = self.nodes[f"{i}_{j}"](torch.cat([*(grid[i, k] for k in range(j)), below], dim=1))
        return crop_to(self.head(grid[0, self.depth - 1]), size)
