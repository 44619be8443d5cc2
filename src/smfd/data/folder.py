"""The project's folder layout: ``ROOT/images/{id}.jpg|png`` and ``ROOT/masks/{id}.png``.

Masks are single-channel ``uint8`` label maps with the 5 class ids of :data:`smfd.data.CLASSES`.
This is the layout of SynthFace and of what ``smfd prepare celebamask`` writes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import list_images, read_image, read_mask


class FaceFolder:
    """Index of a face folder; reads one sample by id.

    Args:
        root: folder holding ``images/`` and (if ``require_masks``) ``masks/``.
        require_masks: every image must have ``masks/{id}.png``; checked up front so a long run does not
            fail half-way.
        num_classes: number of mask classes (ids must be below it).

    Raises:
        FileNotFoundError: ``images/`` or a mask file is missing (the message names it).
        ValueError: ``images/`` holds no images, or two images share an id.
    """

    def __init__(self, root: str | os.PathLike, *, require_masks: bool = True, num_classes: int = 5) -> None:
        self.root = Path(root)
        self.num_classes = num_classes
        images = list_images(self.root / "images")
        if not images:
            raise ValueError(f"{self.root / 'images'}: no images (.jpg/.png) found")
        self._images: dict[str, Path] = {}
        for p in images:
            if p.stem in self._images:
                raise ValueError(f"{p}: id {p.stem!r} also used by {self._images[p.stem]}")
            self._images[p.stem] = p
        self.has_masks = (self.root / "masks").is_dir()
        if require_masks:
            if not self.has_masks:
                raise FileNotFoundError(f"{self.root / 'masks'}: no such folder (masks are required)")
            missing = [i for i in self._images if not self.mask_path(i).is_file()]
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise FileNotFoundError(f"{self.mask_path(missing[0])}: mask missing for image "
                                        f"{self._images[missing[0]].name}{more}")

    @property
    def ids(self) -> list[str]:
        return list(self._images)

    def __len__(self) -> int:
        return len(self._images)

    def image_path(self, id: str) -> Path:
        try:
            return self._images[id]
        except KeyError:
            raise KeyError(f"no image with id {id!r} in {self.root / 'images'}") from None

    def mask_path(self, id: str) -> Path:
        return self.root / "masks" / f"{id}.png"

    def read(self, id: str) -> tuple[np.ndarray, np.ndarray | None]:
        """``(image RGB uint8 (H, W, 3), mask uint8 (H, W) or None)``; sizes must agree."""
        img = read_image(self.image_path(id))
        if not self.has_masks:
            return img, None
        mask = read_mask(self.mask_path(id), self.num_classes)
        if mask.shape != img.shape[:2]:
            raise ValueError(f"{self.mask_path(id)}: mask is {mask.shape[1]}x{mask.shape[0]} but image "
                             f"{self.image_path(id).name} is {img.shape[1]}x{img.shape[0]}")
        return img, mask
