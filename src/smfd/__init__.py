"""smfd: identity-preserving face deblurring guided by semantic face masks (SMFD-UNet)."""

__version__ = "0.1.0"

from .degrade import DegradationConfig, DegradationParams, DegradationPipeline, count_combinations

__all__ = [
    "DegradationConfig",
    "DegradationParams",
    "DegradationPipeline",
    "__version__",
    "count_combinations",
]
