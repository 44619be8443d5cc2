"""Data: image I/O, CelebAMask-HQ and folder readers, joint augmentation, splits, the torch dataset."""

from .augment import JointAugment
from .celebamask import CLASSES, MERGE, PARTS
from .dataset import FaceDeblurDataset
from .folder import FaceFolder
from .io import list_images, read_image, read_mask, write_image
from .splits import Splits, make_splits

__all__ = [
    "CLASSES",
    "MERGE",
    "PARTS",
    "FaceDeblurDataset",
    "FaceFolder",
    "JointAugment",
    "Splits",
    "list_images",
    "make_splits",
    "read_image",
    "read_mask",
    "write_image",
]
