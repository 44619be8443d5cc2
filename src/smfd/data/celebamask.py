"""CelebAMask-HQ in its published layout, and the thesis's merge of its 19 labels into 5 classes.

Layout read here (as distributed)::

    ROOT/CelebA-HQ-img/{i}.jpg                                   1024x1024 RGB, i = 0 .. 29999
    ROOT/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png  512x512, 255 where the part is

Not every face has every part file (no hat, no glasses, ...): a missing part is simply absent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import BadOption
from .io import read_image

#: The 18 CelebAMask-HQ parts, in the order they are painted (later parts over earlier ones).
#: Label value in the 19-value map = index + 1; 0 is background.
PARTS = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip

#: The 5 merged classes (SPEC §2) in id order.
CLASSES = ("background", "skin", "features", "hair", "wearables")

#: The 19 -> 5 merge, as one table. The thesis names the members of each class but not the ids, nor
#: where ``mouth`` (inner mouth), ``eye_g`` (eyeglasses) and ``neck_l`` (necklace) go; the ids and those
#: three placements are project decisions (mouth -> features; eyeglasses, necklace -> wearables).
MERGE = {
    "background": 0, "neck": 0, "cloth": 0,
    "skin": 1,
    "nose": 2, "l_eye": 2, "r_eye": 2, "l_brow": 2, "r_brow": 2, "l_ear": 2, "r_ear": 2,
    "u_lip": 2, "l_lip": 2, "mouth": 2,
    "hair": 3,
    "hat": 4, "ear_r": 4, "eye_g": 4, "neck_l": 4,
}  # fmt: skip

#: Look-up table from the 19-value label map to the 5 class ids.
MERGE_LUT = np.array([MERGE["background"]] + [MERGE[p] for p in PARTS], dtype=np.uint8)


def image_path(root: str | os.PathLike, index: int) -> Path:
    return Path(root) / "CelebA-HQ-img" / f"{index}.jpg"


def part_path(root: str | os.PathLike, index: int, part: str) -> Path:
    return Path(root) / "CelebAMask-HQ-mask-anno" / str(index // 2000) / f"{index:05d}_{part}.png"


def list_indices(root: str | os.PathLike) -> list[int]:
    """Face indices present under ``ROOT/CelebA-HQ-img`` (files named ``{i}.jpg``), sorted."""
    folder = Path(root) / "CelebA-HQ-img"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (is {root} a CelebAMask-HQ root?)")
    if not (Path(root) / "CelebAMask-HQ-mask-anno").is_dir():
        raise FileNotFoundError(f"{Path(root) / 'CelebAMask-HQ-mask-anno'}: no such folder")
    idx = sorted(int(p.stem) for p in folder.glob("*.jpg") if p.stem.isdigit())
    if not idx:
        raise ValueError(f"{folder}: no images named {{i}}.jpg")
    return idx


def read_labels19(root: str | os.PathLike, index: int, size: int = 512) -> np.ndarray:
    """Paint the part masks of face ``index`` into one ``uint8 (size, size)`` map with values 0..18."""
    label = np.zeros((size, size), np.uint8)
    for value, part in enumerate(PARTS, start=1):
        path = part_path(root, index, part)
        if not path.is_file():
            continue
        m = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise ValueError(f"{path}: not a readable mask image")
        if m.shape != (size, size):
            m = cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
        label[m > 127] = value
    return label


def merge_labels(labels19: np.ndarray) -> np.ndarray:
    """Map a 19-value CelebAMask-HQ label map to the 5 classes of :data:`CLASSES`."""
    if labels19.max(initial=0) >= len(MERGE_LUT):
        raise ValueError(f"label map has value {labels19.max()}, expected 0..{len(MERGE_LUT) - 1}")
    return MERGE_LUT[labels19]


def load_face(root: str | os.PathLike, index: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Image (RGB uint8) and 5-class mask of face ``index``, both resized to ``size x size``.

    The image is shrunk with area interpolation; the label map is built at its native 512 px, then
    resized with nearest neighbour so no class ids are invented.
    """
    img = read_image(image_path(root, index))
    if img.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC
        img = cv2.resize(img, (size, size), interpolation=interp)
    mask = merge_labels(read_labels19(root, index))
    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return img, mask


def parse_keep(keep: str | Sequence[str | int] | None) -> tuple[int, ...]:
    """Region names (``hair,wearables,background``) or class ids -> class ids; unknown names are an error."""
    if keep is None or (isinstance(keep, (str, Sequence)) and not keep):
        return ()
    if not isinstance(keep, (str, Sequence)):
        raise BadOption(f"keep must be region names ('hair,background') or class ids, got {keep!r}")
    items = keep.split(",") if isinstance(keep, str) else keep
    ids = [int(k) for k in items if isinstance(k, (int, np.integer))]
    bad_ids = [i for i in ids if not 0 <= i < len(CLASSES)]
    if bad_ids:
        raise BadOption(f"unknown class id {bad_ids[0]} for keep; ids are 0..{len(CLASSES) - 1}")
    names = [k.strip() for k in items if isinstance(k, str) and k.strip()]
    bad = [n for n in names if n not in CLASSES]
    if bad:
        raise BadOption(f"unknown region {bad[0]!r} for keep; choose from {', '.join(CLASSES)}")
    return tuple(dict.fromkeys([*ids, *(CLASSES.index(n) for n in names)]))
