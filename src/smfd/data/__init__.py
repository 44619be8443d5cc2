"""Data: image I/O, CelebAMask-HQ and folder readers, joint augmentation, splits, the torch dataset.

Names are imported on first use, so that the command line (and a Ray driver, which only plans outputs) can read the
class names or an image without waiting for PyTorch.
"""

from ..lazy import lazy_names

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

__getattr__, __dir__ = lazy_names(__name__, _PUBLIC, _SUBMODULES)

__all__ = sorted(_PUBLIC)
