"""SMFD-UNet (thesis §3.4.5): blurry RGB face + 5-channel face mask -> sharp RGB face."""

from __future__ import annotations

import torch
from torch import nn

from ._utils import crop_to, pad_to_multiple
from .blocks import CBAM, RDC, AttentionUp, PostProcess


class SMFDUNet(nn.Module):
    """Two RDC encoder branches (image, mask) fused at every stage; attention-upsampling RDC decoder.

    Encoder: the image branch and the mask branch each have ``len(encoder_channels)`` RDC stages with 2x
    max-pooling between them; the branches run independently and their outputs at each stage are
    concatenated (multi-stage fusion). The fused maps are the skips, the deepest one feeds the decoder.
    Decoder: attention upsampling (upsample to the skip's width, CBAM on the fused skip, concatenate) then an
    RDC to ``decoder_channels[i]``. Head: CBAM, RDC to ``head_channels``, 1x1 conv, ReLU, 1x1 conv to RGB,
    then the thesis's post-processing.

    Args:
        in_channels: image channels (3).
        mask_channels: mask channels (5: one-hot or the mask generator's probabilities); 0 drops the mask
            branch (the no-mask ablation).
        out_channels: output channels (3).
        encoder_channels, decoder_channels, head_channels, num_layers, growth, reduction: sizes (see
            :mod:`smfd.models.registry` for how the defaults were fitted to the thesis's parameter count).
        upsample: ``pixelshuffle`` (thesis), ``transpose`` or ``plain`` (ablations).
        attention: CBAM on the skips (off for the plain-upsampling ablation).
        post_process: end with :class:`PostProcess` (off for the no-post ablation).
        per_channel_post: post-processing around each channel's own mean instead of the all-channel mean.

    Shape:
        ``(B, in_channels, H, W), (B, mask_channels, H, W) -> (B, out_channels, H, W)`` for any H, W; the output
        is not clamped (clamp to [0, 1] for display).
    """

    def __init__(
        self,
        in_channels: int = 3,
        mask_channels: int = 5,
        out_channels: int = 3,
        *,
        encoder_channels: tuple[int, ...] = (32, 64, 128, 256),
        decoder_channels: tuple[int, ...] = (256, 160, 96),
        head_channels: int = 64,
        num_layers: int = 5,
        growth: int = 8,
        reduction: int = 4,
        upsample: str = "pixelshuffle",
        attention: bool = True,
        post_process: bool = True,
        per_channel_post: bool = False,
    ) -> None:
        super().__init__()
        if len(decoder_channels) != len(encoder_channels) - 1:
            raise ValueError(f"need one decoder width per upsampling: {len(encoder_channels) - 1}, "
                             f"got decoder_channels={decoder_channels}")
        self.in_channels, self.mask_channels, self.out_channels = in_channels, mask_channels, out_channels
        self.stride = 2 ** (len(encoder_channels) - 1)
        rdc = {"num_layers": num_layers, "growth": growth}
        self.image_encoder = self._branch(in_channels, encoder_channels, rdc)
        self.mask_encoder = self._branch(mask_channels, encoder_channels, rdc) if mask_channels else None
        self.pool = nn.MaxPool2d(2)
        branches = 2 if mask_channels else 1
        fused = [branches * c for c in encoder_channels]
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        x_ch = fused[-1]
        for skip, out in zip(reversed(fused[:-1]), decoder_channels, strict=True):
            self.up.append(AttentionUp(x_ch, skip, skip, mode=upsample, attention=attention, reduction=reduction))
            self.decoder.append(RDC(2 * skip, out, **rdc))
            x_ch = out
        self.head = nn.Sequential(
            CBAM(x_ch, reduction=reduction),
            RDC(x_ch, head_channels, **rdc),
            nn.Conv2d(head_channels, head_channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_channels, out_channels, 1),
        )
        self.post = PostProcess(per_channel=per_channel_post) if post_process else nn.Identity()

    @staticmethod
    def _branch(in_channels: int, channels: tuple[int, ...], rdc: dict) -> nn.ModuleList:
        ins = (in_channels, *channels[:-1])
        return nn.ModuleList(RDC(i, o, **rdc) for i, o in zip(ins, channels, strict=True))

    def _encode(self, branch: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, block in enumerate(branch):
            x = block(x if i == 0 else self.pool(x))
            feats.append(x)
        return feats

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.mask_encoder is not None:
            if mask is None:
                raise ValueError(f"this model needs a mask ({self.mask_channels} channels)")
            if mask.shape[1] != self.mask_channels or mask.shape[-2:] != image.shape[-2:]:
                raise ValueError(f"mask must be (B, {self.mask_channels}, {image.shape[-2]}, {image.shape[-1]}), "
                                 f"got {tuple(mask.shape)}")
        image, size = pad_to_multiple(image, self.stride)
        skips = self._encode(self.image_encoder, image)
        if self.mask_encoder is not None:
            mask, _ = pad_to_multiple(mask, self.stride)
            skips = [torch.cat(pair, dim=1) for pair in zip(skips, self._encode(self.mask_encoder, mask), strict=True)]
        x = skips.pop()  # (B, 2 * C_last, H / stride, W / stride)
        for up, block in zip(self.up, self.decoder, strict=True):
            x = block(up(x, skips.pop()))
        return self.post(crop_to(self.head(x), size))  # the mean is over the real image, not the padding
