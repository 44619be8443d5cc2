"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", 2022), the shipped deblurring net, and its
mask-guided variant (a light mask encoder fused into every encoder level): NAFBlocks of LayerNorm, depthwise
conv, SimpleGate and simplified channel attention, in a UNet of width 16."""

from __future__ import annotations

import torch
from torch import nn

from .sizes import crop_to, pad_to_multiple


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """Split channels in two halves and multiply them (NAFNet's activation-free nonlinearity)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """NAFNet block (Chen et al., 2022): LayerNorm, 1x1 expand, 3x3 depth-wise conv, SimpleGate, simplified
    channel attention, 1x1 project; then a LayerNorm + gated 1x1 feed-forward; both residual with learned
    per-channel scales initialised at zero."""

    def __init__(self, channels: int, *, expand: int = 2) -> None:
        super().__init__()
        hidden = channels * expand
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden // 2, hidden // 2, 1))
        self.conv2 = nn.Conv2d(hidden // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.ffn1 = nn.Conv2d(channels, hidden, 1)
        self.ffn2 = nn.Conv2d(hidden // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.dwconv(self.conv1(self.norm1(x))))
        y = self.conv2(y * self.sca(y))
        x = x + self.beta * y
        y = self.ffn2(self.gate(self.ffn1(self.norm2(x))))
        return x + self.gamma * y


class NAFNet(nn.Module):
    """NAFNet-style deblurring UNet: stride-2 conv down, 1x1 conv + PixelShuffle up, additive skips, a global
    residual (the network predicts a correction to the blurry input). Takes no mask.

    Shape:
        ``(B, in_channels, H, W) -> (B, in_channels, H, W)``
    """

    #: the smallest side the net runs at (smaller images are padded up to it): a local-statistics window, if any
    min_size = 0

    def __init__(
        self,
        in_channels: int = 3,
        *,
        width: int = 24,
        encoder_blocks: tuple[int, ...] = (2, 2, 4, 8),
        middle_blocks: int = 12,
        decoder_blocks: tuple[int, ...] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        self.in_channels, self.mask_channels = in_channels, 0
        self.stride = 2 ** len(encoder_blocks)
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoder, self.down, self.up, self.decoder = (nn.ModuleList() for _ in range(4))
        c = width
        for n in encoder_blocks:
            self.encoder.append(nn.Sequential(*(NAFBlock(c) for _ in range(n))))
            self.down.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*(NAFBlock(c) for _ in range(middle_blocks)))
        for n in decoder_blocks:
            self.up.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))  # (B, C/2, 2H, 2W)
            c //= 2
            self.decoder.append(nn.Sequential(*(NAFBlock(c) for _ in range(n))))
        self.ending = nn.Conv2d(width, in_channels, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(image, self.stride, self.min_size)
        return crop_to(self.network(x), size)

    def network(self, image: torch.Tensor) -> torch.Tensor:
        """The net on an input whose sides are multiples of ``stride`` (what the ONNX export holds)."""
        return self.body(image)

    def body(self, inp: torch.Tensor, guides: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The net on an input whose sides are multiples of ``stride``; ``guides`` (one map per encoder level and
        one for the middle, each of that level's width) are added before each level's blocks."""
        x = self.intro(inp)
        skips = []
        for i, (block, down) in enumerate(zip(self.encoder, self.down, strict=True)):
            x = block(x if guides is None else x + guides[i])
            skips.append(x)
            x = down(x)
        x = self.middle(x if guides is None else x + guides[-1])
        for up, block in zip(self.up, self.decoder, strict=True):
            x = block(up(x) + skips.pop())
        return self.ending(x).float() + inp


class MaskNAFNet(NAFNet):
    """NAFNet guided by a face mask: a light mask encoder (two 3x3 convs per level, stride-2 conv down, widths
    ``mask_width * 2**level``) whose features are projected (1x1) and added to the image branch at every encoder
    level and the middle: the thesis's multi-stage fusion of a mask branch, on NAFNet's body and at close to its
    cost. Not in the thesis.

    Shape:
        ``(B, in_channels, H, W), (B, mask_channels, H, W) -> (B, in_channels, H, W)``
    """

    def __init__(self, in_channels: int = 3, mask_channels: int = 5, *, width: int = 16, mask_width: int = 8,
                 encoder_blocks: tuple[int, ...] = (2, 2, 4, 8), **kwargs) -> None:
        super().__init__(in_channels, width=width, encoder_blocks=encoder_blocks, **kwargs)
        self.mask_channels = mask_channels
        self.mask_levels, self.mask_down, self.fuse = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        m_in, c = mask_channels, width
        for level in range(len(encoder_blocks) + 1):
            m = mask_width * 2**level
            self.mask_levels.append(nn.Sequential(nn.Conv2d(m_in, m, 3, padding=1), nn.ReLU(inplace=True),
                                                  nn.Conv2d(m, m, 3, padding=1), nn.ReLU(inplace=True)))
            self.fuse.append(nn.Conv2d(m, c, 1))
            if level < len(encoder_blocks):
                self.mask_down.append(nn.Conv2d(m, m, 2, stride=2))
            m_in, c = m, 2 * c

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None or mask.shape[1] != self.mask_channels or mask.shape[-2:] != image.shape[-2:]:
            got = None if mask is None else tuple(mask.shape)
            raise ValueError(f"mask must be (B, {self.mask_channels}, {image.shape[-2]}, {image.shape[-1]}), got {got}")
        x, size = pad_to_multiple(image, self.stride, self.min_size)
        m, _ = pad_to_multiple(mask, self.stride, self.min_size)
        return crop_to(self.network(x, m), size)

    def network(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The net on inputs whose sides are multiples of ``stride`` (what the ONNX export holds)."""
        guides, m = [], mask
        for i, (level, fuse) in enumerate(zip(self.mask_levels, self.fuse, strict=True)):
            m = level(m)
            guides.append(fuse(m))
            if i < len(self.mask_down):
                m = self.mask_down[i](m)
        return self.body(image, guides)
