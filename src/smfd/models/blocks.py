"""Building blocks shared by the mask generator and SMFD-UNet (thesis §3.4.3).

Convolutions keep their bias, as Keras ``Conv2D`` does by default, so parameter counts compare with the
thesis's Keras totals (see :func:`smfd.models.count_parameters`).
"""

from __future__ import annotations

import torch
from torch import nn


class RDC(nn.Module):
    """Residual Dense Convolution block.

    ``num_layers`` dense layers (Conv3x3 -> BatchNorm -> ReLU), layer i seeing the concatenation of the
    block input and all earlier layer outputs; the full concatenation is fused by a 1x1 conv, the block
    input goes through its own 1x1 conv, the two are added and passed through ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        num_layers: number of dense layers.
        growth: output channels of each dense layer.

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``
    """

    def __init__(self, in_channels: int, out_channels: int, *, num_layers: int = 4, growth: int = 16) -> None:
        super().__init__()
        if num_layers < 1 or growth < 1:
            raise ValueError(f"num_layers and growth must be >= 1, got {num_layers}, {growth}")
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels + i * growth, growth, 3, padding=1),
                nn.BatchNorm2d(growth),
                nn.ReLU(inplace=True),
            )
            for i in range(num_layers)
        )
        self.fuse = nn.Conv2d(in_channels + num_layers * growth, out_channels, 1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1)))
        dense = torch.cat(feats, dim=1)  # (B, C_in + L * growth, H, W)
        return self.act(self.fuse(dense) + self.shortcut(x))


class ChannelAttention(nn.Module):
    """CBAM channel attention: a shared MLP on global average- and max-pooled features, then sigmoid."""

    def __init__(self, channels: int, *, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: channel-wise mean and max, a ``kernel_size`` conv, sigmoid."""

    def __init__(self, *, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel attention, then spatial attention.

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``
    """

    def __init__(self, channels: int, *, reduction: int = 8, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction=reduction)
        self.spatial = SpatialAttention(kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


def icnr_(conv: nn.Conv2d, scale: int) -> None:
    """ICNR initialisation (Aitken et al., 2017) of a conv followed by ``PixelShuffle(scale)``: the ``scale**2``
    output channels that shuffle into one channel start with the same kernel and bias, so the initial output is a
    nearest-neighbour upsampling of a normally initialised conv, free of checkerboard artefacts."""
    r2 = scale**2
    base = nn.Conv2d(conv.in_channels, conv.out_channels // r2, conv.kernel_size, bias=conv.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(base.weight.repeat_interleave(r2, dim=0))
        if conv.bias is not None:
            conv.bias.copy_(base.bias.repeat_interleave(r2))


class PixelShuffleUp(nn.Module):
    """Conv to ``out_channels * scale**2`` channels, PixelShuffle (depth-to-space), ReLU. The conv starts from ICNR
    (:func:`icnr_`), so an untrained block upsamples without checkerboard artefacts.

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, scale * H, scale * W)``
    """

    def __init__(self, in_channels: int, out_channels: int, *, scale: int = 2, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * scale**2, kernel_size, padding=kernel_size // 2)
        icnr_(self.conv, scale)
        self.shuffle = nn.PixelShuffle(scale)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class PlainUp(nn.Module):
    """Ablation: bilinear upsampling then Conv3x3 + ReLU (no sub-pixel conv)."""

    def __init__(self, in_channels: int, out_channels: int, *, scale: int = 2) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.up(x)))


class TransposeUp(nn.Module):
    """Ablation: transposed convolution (kernel = stride = scale) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, scale: int = 2) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, scale, stride=scale)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


UPSAMPLERS = {"pixelshuffle": PixelShuffleUp, "plain": PlainUp, "transpose": TransposeUp}


class AttentionUp(nn.Module):
    """Upsample the decoder path, refine the encoder skip with CBAM, concatenate.

    Args:
        in_channels: decoder-path channels.
        skip_channels: skip-connection channels.
        out_channels: channels of the upsampled decoder path.
        mode: ``pixelshuffle`` (the thesis), ``transpose`` or ``plain`` (ablations).
        attention: apply CBAM to the skip (``False`` for the plain-upsampling ablation).

    Shape:
        ``(B, in_channels, H, W), (B, skip_channels, 2H, 2W) -> (B, out_channels + skip_channels, 2H, 2W)``
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        *,
        mode: str = "pixelshuffle",
        attention: bool = True,
        reduction: int = 8,
    ) -> None:
        super().__init__()
        if mode not in UPSAMPLERS:
            raise ValueError(f"mode must be one of {sorted(UPSAMPLERS)}, got {mode!r}")
        self.up = UPSAMPLERS[mode](in_channels, out_channels)
        self.attn = CBAM(skip_channels, reduction=reduction) if attention else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.up(x), self.attn(skip)], dim=1)  # (B, C_up + C_skip, 2H, 2W)


class PostProcess(nn.Module):
    """The thesis's output contrast/brightness step: ``(x - mean) * c + mean + b``.

    The thesis takes "the image's mean intensity"; by default the mean is taken per image over all channels
    and pixels (``per_channel=False``), as written. With ``per_channel=True`` each channel keeps its own
    mean, so the step cannot shift colour balance between channels: the contrast stretch of an all-channel
    mean pushes the channel means apart by ``(c - 1) * (mean_channel - mean)``, one candidate cause of the
    colour drift the thesis reports (its §4 weakness); the experiments compare both.

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``
    """

    def __init__(self, *, contrast: float = 2.0, brightness: float = 0.1, per_channel: bool = False) -> None:
        super().__init__()
        self.contrast, self.brightness, self.per_channel = contrast, brightness, per_channel

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean the contrast is stretched around: per image (and channel, if ``per_channel``)."""
        return x.mean(dim=(2, 3) if self.per_channel else (1, 2, 3), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean(x)
        return (x - mean) * self.contrast + mean + self.brightness

    def extra_repr(self) -> str:
        return f"contrast={self.contrast}, brightness={self.brightness}, per_channel={self.per_channel}"


# --- UNet parts shared by the mask generator and SMFD-UNet --------------------------------------------------------


def rdc_encoder(in_channels: int, channels: tuple[int, ...], rdc: dict) -> nn.ModuleList:
    """One RDC per level; the caller max-pools between levels (see :func:`encode`)."""
    ins = (in_channels, *channels[:-1])
    return nn.ModuleList(RDC(i, o, **rdc) for i, o in zip(ins, channels, strict=True))


def encode(levels: nn.ModuleList, pool: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of every encoder level, shallow to deep."""
    feats = []
    for i, block in enumerate(levels):
        x = block(x if i == 0 else pool(x))
        feats.append(x)
    return feats


def rdc_decoder(
    skip_channels: tuple[int, ...], decoder_channels: tuple[int, ...], rdc: dict, **up_options
) -> tuple[nn.ModuleList, nn.ModuleList, int]:
    """Attention-upsampling + RDC levels from the deepest skip up; returns (ups, blocks, output channels).

    ``skip_channels`` lists every level's channels shallow to deep; the deepest feeds the decoder and each
    shallower one is a skip (upsampled to its width, concatenated, fused by an RDC to ``decoder_channels[i]``).
    """
    if len(decoder_channels) != len(skip_channels) - 1:
        raise ValueError(f"need one decoder width per upsampling: {len(skip_channels) - 1}, "
                         f"got decoder_channels={decoder_channels}")
    ups, blocks = nn.ModuleList(), nn.ModuleList()
    x_ch = skip_channels[-1]
    for skip, out in zip(reversed(skip_channels[:-1]), decoder_channels, strict=True):
        ups.append(AttentionUp(x_ch, skip, skip, **up_options))
        blocks.append(RDC(2 * skip, out, **rdc))
        x_ch = out
    return ups, blocks, x_ch


def decode(ups: nn.ModuleList, blocks: nn.ModuleList, skips: list[torch.Tensor]) -> torch.Tensor:
    """Run the decoder over encoder outputs (shallow to deep); consumes ``skips``."""
    x = skips.pop()
    for up, block in zip(ups, blocks, strict=True):
        x = block(up(x, skips.pop()))  # (B, 2 * C_skip, 2H, 2W) -> (B, C_out, 2H, 2W)
    return x


def rdc_head(in_channels: int, head_channels: int, out_channels: int, rdc: dict, reduction: int) -> nn.Sequential:
    """The thesis's final layers: CBAM, RDC, 1x1 conv, ReLU, 1x1 conv to the outputs."""
    return nn.Sequential(
        CBAM(in_channels, reduction=reduction),
        RDC(in_channels, head_channels, **rdc),
        nn.Conv2d(head_channels, head_channels, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(head_channels, out_channels, 1),
    )
