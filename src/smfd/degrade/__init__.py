"""Synthetic degradation of sharp faces: the thesis's randomized blur, resolution and noise pipeline, a
realistic family (camera shake, defocus, mild blur, sensor noise, JPEG, clean faces) and a low-resolution
family (small faces compressed at their size, then resized up) beside it."""

import dataclasses

from .kernels import DIRECTIONS, gaussian_kernel, gaussian_sigma, motion_kernel
from .lowres import LowResConfig, LowResParams, LowResPipeline
from .pipeline import (
    BlurOp,
    DegradationConfig,
    DegradationParams,
    DegradationPipeline,
    count_combinations,
)
from .realistic import MixedPipeline, RealisticConfig, RealisticParams, RealisticPipeline, shake_kernel

#: The degradation families a config or command can name.
DEGRADATIONS = ("thesis", "realistic", "lowres", "mixed", "sharp")


def make_degradation(name: str = "thesis", realistic_share: float = 0.5, lowres_share: float = 0.0,
                     realistic: RealisticConfig | None = None):
    """``thesis`` (the thesis's pipeline, exact), ``realistic`` (:class:`RealisticPipeline` with every face
    degraded), ``lowres`` (:class:`LowResPipeline`: a small face, compressed, resized up), ``mixed`` (each face
    from the realistic family, 10 % of them left clean, with chance ``realistic_share``, from the low-resolution
    family with chance ``lowres_share``, else the thesis's; the training mix) or ``sharp`` (no degradation: what a
    net does to a face that needs no help). ``realistic``: the realistic family's ranges (``mixed``; ``realistic``
    takes them with no clean faces; the other names have no realistic part), None: :class:`RealisticConfig`'s."""
    realistic = realistic or RealisticConfig()
    if name == "thesis":
        return DegradationPipeline()
    if name == "realistic":  # every face degraded (clean faces are the "sharp" family's, and 10 % of "mixed"'s)
        return RealisticPipeline(dataclasses.replace(realistic, clean_share=0.0))
    if name == "lowres":
        return LowResPipeline()
    if name == "mixed":
        return MixedPipeline(DegradationPipeline(), RealisticPipeline(realistic), realistic_share,
                             lowres=LowResPipeline() if lowres_share else None, lowres_share=lowres_share)
    if name == "sharp":
        return RealisticPipeline(RealisticConfig(clean_share=1.0))
    raise ValueError(f"degradation must be one of {', '.join(DEGRADATIONS)}, got {name!r}")


def params_from_dict(d: dict):
    """Logged params (``params.to_dict()``) of either family back to a params object."""
    family = d.get("family")
    if family == "lowres":
        return LowResParams.from_dict(d)
    return RealisticParams.from_dict(d) if family == "realistic" else DegradationParams.from_dict(d)


__all__ = [
    "DEGRADATIONS",
    "DIRECTIONS",
    "BlurOp",
    "DegradationConfig",
    "DegradationParams",
    "DegradationPipeline",
    "LowResConfig",
    "LowResParams",
    "LowResPipeline",
    "MixedPipeline",
    "RealisticConfig",
    "RealisticParams",
    "RealisticPipeline",
    "count_combinations",
    "gaussian_kernel",
    "gaussian_sigma",
    "make_degradation",
    "motion_kernel",
    "params_from_dict",
    "shake_kernel",
]
