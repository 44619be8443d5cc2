"""Data: image I/O, CelebAMask-HQ and folder readers, joint augmentation, splits, the torch dataset.

Names are imported on first use, so that the command line (and a Ray driver, which only plans outputs) can read the
class names or an image without waiting for PyTorch.
"""

import importlib

#: Where each public name lives.
_PUBLIC = {
    "JointAugment": ".augment",
    "CLASSES": ".celebamask",
    "MERGE": ".celebamask",
    "PARTS": ".celebamask",
    "FaceDeblurDataset": ".dataset",
    "FaceFolder": ".folder",
    "list_images": ".io",
    "read_image": ".io",
    "read_mask": ".io",
    "write_image": ".io",
    "Splits": ".splits",
    "make_splits": ".splits",
}


_SUBMODULES = ("augment", "celebamask", "dataset", "folder", "io", "splits")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'smfd.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = sorted(_PUBLIC)
