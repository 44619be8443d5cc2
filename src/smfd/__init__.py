"""smfd: identity-preserving face deblurring guided by semantic face masks (a mask generator and a deblurring net:
NAFNet, or the thesis's SMFD-UNet).

Example:
    >>> import smfd
    >>> pipe = smfd.load_pipeline()                   # bundled weights, CPU, offline
    >>> result = pipe.deblur(photo)                   # RGB uint8 photo -> Result(image, mask, faces)
"""

__version__ = "0.1.0"

from . import data, degrade, models
from .degrade import DegradationConfig, DegradationParams, DegradationPipeline, count_combinations
from .errors import SmfdError
from .infer.pipeline import FaceDeblurrer, NoFaceError, Result, load_pipeline
from .models import count_parameters, create_model, list_models

__all__ = [
    "DegradationConfig",
    "DegradationParams",
    "DegradationPipeline",
    "FaceDeblurrer",
    "NoFaceError",
    "Result",
    "SmfdError",
    "__version__",
    "count_combinations",
    "count_parameters",
    "create_model",
    "data",
    "degrade",
    "list_models",
    "load_pipeline",
    "models",
]
