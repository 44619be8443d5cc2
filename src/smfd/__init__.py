"""smfd: identity-preserving face deblurring guided by semantic face masks (a mask generator and a deblurring net:
NAFNet, or the thesis's SMFD-UNet).

Example:
    >>> import smfd
    >>> pipe = smfd.load_pipeline()                   # bundled weights, CPU, offline
    >>> result = pipe.deblur(photo)                   # RGB uint8 photo -> Result(image, mask, faces)
"""

import importlib

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


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'smfd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
