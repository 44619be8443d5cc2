"""LPIPS and FID: learned metrics whose backbones cannot be downloaded here.

torchmetrics computes both, but its LPIPS builds its VGG/AlexNet trunk with torchvision and its FID uses
torch-fidelity's InceptionV3, and no torchvision release imports beside the pinned CPU torch 2.13.0 build.
So ``smfd eval`` reports them as "n/a" with this reason rather than a made-up number; they need an
environment with torchvision and locally stored backbone weights.
"""

from __future__ import annotations


def perceptual_status() -> tuple[bool, str]:
    """(available, reason): whether torchmetrics' LPIPS/FID backbones can be built in this environment."""
    try:
        import torchvision  # noqa: F401
    except Exception as e:  # ImportError, or RuntimeError from a torchvision built for another torch
        return False, f"torchvision unavailable ({type(e).__name__}); LPIPS/FID need it"
    return True, "ok"
