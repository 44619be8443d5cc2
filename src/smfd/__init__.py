"""smfd: identity-preserving face deblurring guided by semantic face masks (a mask generator and a deblurring net:
NAFNet, or the thesis's SMFD-UNet).

Example:
    >>> import smfd
    >>> pipe = smfd.load_pipeline()                   # bundled weights, CPU, offline
    >>> result = pipe.deblur(photo)                   # RGB uint8 photo -> Result(image, mask, faces)
"""

from .lazy import lazy_names

__version__ = "0.1.0"

#: Where each public name lives. They are imported on first use, so that ``import smfd`` (and the command line's
#: start, which answers Ctrl-C from its first moment) does not wait for PyTorch.
_PUBLIC = {
    "DegradationConfig": ".degrade",
    "DegradationParams": ".degrade",
    "DegradationPipeline": ".degrade",
    "count_combinations": ".degrade",
    "SmfdError": ".errors",
    "FaceDeblurrer": ".infer.pipeline",
    "NoFaceError": ".infer.pipeline",
    "Result": ".infer.pipeline",
    "load_pipeline": ".infer.pipeline",
    "count_parameters": ".models",
    "create_model": ".models",
    "list_models": ".models",
}
_SUBPACKAGES = ("data", "degrade", "models")


__getattr__, __dir__ = lazy_names(__name__, _PUBLIC, _SUBPACKAGES)

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
