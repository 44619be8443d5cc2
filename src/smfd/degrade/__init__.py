"""Synthetic degradation of sharp faces: the thesis's randomized blur, resolution and noise pipeline."""

from .kernels import DIRECTIONS, gaussian_kernel, gaussian_sigma, motion_kernel
from .pipeline import (
    BlurOp,
    DegradationConfig,
    DegradationParams,
    DegradationPipeline,
    count_combinations,
)

__all__ = [
    "DIRECTIONS",
    "BlurOp",
    "DegradationConfig",
    "DegradationParams",
    "DegradationPipeline",
    "count_combinations",
    "gaussian_kernel",
    "gaussian_sigma",
    "motion_kernel",
]
