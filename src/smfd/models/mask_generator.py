"""The semantic mask generator (thesis §3.4.4): blurry grey face -> 5-class face-mask logits."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import decode, encode, rdc_decoder, rdc_encoder, rdc_head
from .sizes import crop_to, pad_to_multiple

_GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as OpenCV's RGB2GRAY


def rgb_to_grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) with OpenCV's luma weights: the mask generator's input from an RGB face."""
    w = torch.tensor(_GREY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


class MaskGenerator(nn.Module):
    """UNet-like mask generator built from RDC blocks, attention upsampling and CBAM.

    Encoder: ``len(encoder_channels)`` RDC levels with 2x max-pooling between them (the deepest level is the
    bridge). Decoder: at each shallower level, PixelShuffle-upsample to the skip's width, CBAM on the skip,
    concatenate, RDC to ``decoder_channels[i]`` (the thesis: 256, 128, 64). Head: CBAM, RDC to
    ``head_channels`` (32), 1x1 conv, ReLU, 1x1 conv to ``num_classes``. Returns logits; its
    :class:`~smfd.models.runner.Runner` gives them at the working size from RGB faces, and probabilities.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes, H, W)`` for any H, W.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 5,
        *,
        encoder_channels: tuple[int, ...] = (48, 96, 192, 384),
        decoder_channels: tuple[int, ...] = (256, 128, 64),
        head_channels: int = 32,
        num_layers: int = 4,
        growth: int = 22,
        reduction: int = 4,
    ) -> None:
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.mask_channels = 0
        self.stride = 2 ** (len(encoder_channels) - 1)
        rdc = {"num_layers": num_layers, "growth": growth}
        self.encoder = rdc_encoder(in_channels, encoder_channels, rdc)
        self.pool = nn.MaxPool2d(2)
        self.up, self.decoder, x_ch = rdc_decoder(encoder_channels, decoder_channels, rdc, reduction=reduction)
        self.head = rdc_head(x_ch, head_channels, num_classes, rdc, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.stride)
        x = decode(self.up, self.decoder, encode(self.encoder, self.pool, x))
        return crop_to(self.head(x), size)
