"""SMFD-UNet (thesis §3.4.5): blurry RGB face + 5-channel face mask -> sharp RGB face."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PostProcess, decode, encode, rdc_decoder, rdc_encoder, rdc_head
from .sizes import crop_to, pad_to_multiple


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
        (The residual variant is :class:`ResidualSMFDUNet`; test-time local statistics are a conversion of a built
        net, :func:`smfd.models.local_pooling.use_local_stats`; keeping the input's channel means is an inference step,
        :mod:`smfd.models.steps`.)

    Shape:
        ``(B, in_channels, H, W), (B, mask_channels, H, W) -> (B, out_channels, H, W)`` for any H, W; the output
        is not clamped (clamp to [0, 1] for display).
    """

    #: the smallest side the net runs at (smaller images are padded up to it): a local-statistics window, if any
    min_size = 0

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
        self.in_channels, self.mask_channels, self.out_channels = in_channels, mask_channels, out_channels
        self.stride = 2 ** (len(encoder_channels) - 1)
        rdc = {"num_layers": num_layers, "growth": growth}
        self.image_encoder = rdc_encoder(in_channels, encoder_channels, rdc)
        self.mask_encoder = rdc_encoder(mask_channels, encoder_channels, rdc) if mask_channels else None
        self.pool = nn.MaxPool2d(2)
        fused = tuple((2 if mask_channels else 1) * c for c in encoder_channels)  # both branches concatenated
        self.up, self.decoder, x_ch = rdc_decoder(fused, decoder_channels, rdc, mode=upsample, attention=attention,
                                                  reduction=reduction)
        self.head = rdc_head(x_ch, head_channels, out_channels, rdc, reduction)
        self.post = PostProcess(per_channel=per_channel_post) if post_process else nn.Identity()

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.mask_encoder is not None:
            if mask is None:
                raise ValueError(f"this model needs a mask ({self.mask_channels} channels)")
            if mask.shape[1] != self.mask_channels or mask.shape[-2:] != image.shape[-2:]:
                raise ValueError(f"mask must be (B, {self.mask_channels}, {image.shape[-2]}, {image.shape[-1]}), "
                                 f"got {tuple(mask.shape)}")
        padded, size = pad_to_multiple(image, self.stride, self.min_size)
        if self.mask_encoder is not None:
            mask, _ = pad_to_multiple(mask, self.stride, self.min_size)
        return crop_to(self.network(padded, mask), size)

    def network(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The whole net on inputs whose sides are multiples of ``stride`` (what the ONNX export holds)."""
        skips = encode(self.image_encoder, self.pool, image)
        if self.mask_encoder is not None:
            mask_feats = encode(self.mask_encoder, self.pool, mask)
            skips = [torch.cat(pair, dim=1) for pair in zip(skips, mask_feats, strict=True)]  # (B, 2C_i, ...)
        return self.post(self.head(decode(self.up, self.decoder, skips)).float())  # post-processing in fp32


class ResidualSMFDUNet(SMFDUNet):
    """SMFD-UNet plus the blurry input: the net predicts a correction (the post-processing acts on it). Not in the
    thesis: it starts training from the identity instead of from noise, which matters on short CPU budgets
    (``configs/cpu.yaml``). Same parameters (and state-dict keys) as :class:`SMFDUNet`."""

    def network(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return image.float() + super().network(image, mask)
