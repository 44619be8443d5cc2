"""Full-reference image metrics per image: PSNR, SSIM, MSE (on the 0-255 scale).

Inputs are float tensors in [0, 1] of shape (B, C, H, W); every function returns one value per image, (B,).
SSIM uses the standard settings of Wang et al. (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) and,
like scikit-image, averages the SSIM map over the pixels whose window lies inside the image; torchmetrics
computes the map (its own mean also counts a reflected border, which is why it is cropped here).
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

_SIGMA = 1.5
_RADIUS = int(3.5 * _SIGMA + 0.5)  # the window radius torchmetrics and scikit-image derive from sigma


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must be (B, C, H, W) of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")


def mse255(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the 0-255 scale, per image."""
    _check(pred, target)
    return ((pred.double() - target.double()) * 255).square().mean(dim=(1, 2, 3))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB (data range 1), per image; inf for identical images."""
    _check(pred, target)
    mse = (pred.double() - target.double()).square().mean(dim=(1, 2, 3))
    return 10 * torch.log10(1.0 / mse)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity (data range 1), mean over channels and valid pixels, per image."""
    _check(pred, target)
    if min(pred.shape[-2:]) <= 2 * _RADIUS:
        raise ValueError(f"SSIM needs images larger than {2 * _RADIUS + 1} px, got {tuple(pred.shape[-2:])}")
    _, full = structural_similarity_index_measure(
        pred.double(), target.double(), gaussian_kernel=True, sigma=_SIGMA, data_range=1.0,
        return_full_image=True, reduction="none",
    )  # fmt: skip
    r = _RADIUS
    return full[..., r:-r, r:-r].mean(dim=(1, 2, 3))


def colour_shift(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the per-channel image means, on the 0-255 scale, per image.

    Blur leaves an image's channel means (nearly) unchanged, so this isolates a global colour cast: the
    drift the thesis names as SMFD-UNet's main weakness. 0 for identical colour balance.
    """
    _check(pred, target)
    return ((pred.double().mean(dim=(2, 3)) - target.double().mean(dim=(2, 3))).abs() * 255).mean(dim=1)


def from_uint8(image) -> torch.Tensor:
    """An RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 array -> a float64 ``(1, C, H, W)`` tensor in [0, 1]."""
    t = torch.from_numpy(image)
    t = t[..., None] if t.ndim == 2 else t
    return t.permute(2, 0, 1)[None].double() / 255


def psnr_uint8(image, reference) -> float:
    """PSNR (dB) of one uint8 image against a reference of the same shape (inf when identical)."""
    return psnr(from_uint8(image), from_uint8(reference)).item()


def scores_uint8(image, reference) -> tuple[float, float]:
    """PSNR (dB) and SSIM of one uint8 image against a reference of the same shape."""
    a, b = from_uint8(image), from_uint8(reference)
    return psnr(a, b).item(), ssim(a, b).item()
