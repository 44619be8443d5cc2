"""Torch dataset of (blurry, sharp, mask) triples, degraded on the fly.

Randomness:
    * ``train=True``: every read draws a fresh degradation and augmentation from a generator seeded by
      ``torch.initial_seed()``, which PyTorch makes different in every DataLoader worker and every
      epoch, so workers never repeat each other's draws and epochs differ.
    * ``train=False`` (validation/test): the degradation of sample ``i`` is drawn from
      ``default_rng([seed, i])``, identical in every epoch, run and worker; no augmentation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..degrade import DegradationPipeline
from ..models.sizes import work_shape
from .augment import JointAugment
from .folder import FaceFolder


class FaceDeblurDataset(Dataset):
    """Samples of a :class:`FaceFolder`, degraded with the thesis pipeline.

    Args:
        folder: a :class:`FaceFolder` or the path of one.
        ids: which ids to use (e.g. one side of a split); all of the folder's by default.
        train: random degradations and augmentation (see module doc) or seeded, fixed ones.
        degradation: the pipeline; the thesis's defaults if omitted.
        augment: joint augmentation applied in training; ``None`` turns it off. Defaults to the thesis's.
        seed: base seed of the fixed validation/test degradations.
        size: resize faces to ``size x size`` first (area for images, nearest for masks).
        crop: in training, cut a random ``crop x crop`` window (same place in blurry, sharp and mask) after
            degrading the whole face, so blur and borders are those of the full image.
        work_size: in training, after degrading, augmenting and cropping, area-resize the sample so its longer
            side is ``work_size`` (nearest for the mask): whole faces for a mask net that runs at that size
            (its ``work_size`` option), blurred at full size as at test time.
        grayscale: give ``lq`` as one grey channel (the mask generator's input).
        num_classes: number of mask classes, for the one-hot mask.
        sizes: in training, each face is drawn at one of these sides (px, uniformly) before it is degraded, and
            the degradation is drawn at that size (``face_size``: blur scaled to the face); a side larger than the
            face is read from ``hires`` (never upscaled: without a larger image the face stays at its size).
        hires: the same ids at a larger size (images only; the mask is this folder's, scaled with nearest).
        val_side: in validation, each face is read at this side (from ``hires`` when larger), degraded at that size
            and, with ``crop``, cut to its central ``crop`` x ``crop``: the faces a big-face net restores, seen
            through the training windows. None: validation faces as they are.

    Each item is a dict:
        ``lq`` (3 or 1, H, W) float32 in [0, 1]: the degraded face;
        ``gt`` (3, H, W) float32 in [0, 1]: the sharp face;
        ``mask`` (H, W) int64 class ids; ``mask_onehot`` (num_classes, H, W) float32;
        ``params``: the degradation parameters as a JSON string (``DegradationParams.from_dict(json.loads(.))``);
        ``path``: the image file.
    """

    def __init__(
        self,
        folder: FaceFolder | str | os.PathLike,
        ids: Sequence[str] | None = None,
        *,
        train: bool = False,
        degradation: DegradationPipeline | None = None,
        augment: JointAugment | None = JointAugment(),  # noqa: B008 - frozen dataclass, immutable
        seed: int = 0,
        size: int | None = None,
        crop: int | None = None,
        work_size: int | None = None,
        grayscale: bool = False,
        num_classes: int = 5,
        sizes: Sequence[int] = (),
        hires: FaceFolder | str | os.PathLike | None = None,
        val_side: int | None = None,
    ) -> None:
        self.folder = folder if isinstance(folder, FaceFolder) else FaceFolder(folder, num_classes=num_classes)
        self.ids = list(ids) if ids is not None else self.folder.ids
        unknown = set(self.ids) - set(self.folder.ids)
        if unknown:
            raise ValueError(f"{len(unknown)} ids not in {self.folder.root}, e.g. {sorted(unknown)[0]!r}")
        if not self.ids:
            raise ValueError("ids is empty: nothing to load")
        self.train = train
        self.degradation = degradation or DegradationPipeline()
        self.augment = augment
        self.seed = seed
        self.size = size
        self.crop = crop
        self.work_size = work_size
        self.grayscale = grayscale
        self.num_classes = num_classes
        self.sizes = tuple(int(s) for s in sizes)
        self.val_side = val_side
        if hires is not None and not isinstance(hires, FaceFolder):
            hires = FaceFolder(hires, require_masks=False, num_classes=num_classes)
        self.hires = hires
        self._hires_ids = set(hires.ids) if hires is not None else set()
        self._rng: np.random.Generator | None = None
        self._rng_seed: int | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def _train_rng(self) -> np.random.Generator:
        seed = torch.initial_seed()  # differs per worker and per epoch; constant in the main process
        if self._rng_seed != seed:
            self._rng, self._rng_seed = np.random.default_rng(seed), seed
        return self._rng

    def _at_size(self, id: str, gt: np.ndarray, mask: np.ndarray, side: int
                 ) -> tuple[np.ndarray, np.ndarray, int]:
        """The face (and its mask) at ``side`` px: read from ``hires`` when larger than ``gt``, area-resized."""
        if side > gt.shape[0] and id in self._hires_ids:
            big = self.hires.read(id)[0]
            if big.shape[0] > gt.shape[0]:
                gt = big
        side = min(side, gt.shape[0])
        if gt.shape[:2] != (side, side):
            gt = cv2.resize(gt, (side, side), interpolation=cv2.INTER_AREA)
        if mask.shape[:2] != (side, side):
            mask = cv2.resize(mask, (side, side), interpolation=cv2.INTER_NEAREST)
        return gt, mask, side

    def __getitem__(self, index: int) -> dict:
        id = self.ids[index]
        gt, mask = self.folder.read(id)
        if mask is None:
            raise FileNotFoundError(f"{self.folder.mask_path(id)}: mask missing")
        if self.size is not None and gt.shape[:2] != (self.size, self.size):
            gt = cv2.resize(gt, (self.size, self.size), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (self.size, self.size), interpolation=cv2.INTER_NEAREST)
        rng = self._train_rng() if self.train else np.random.default_rng([self.seed, index])
        if self.train and self.sizes:
            gt, mask, side = self._at_size(id, gt, mask, self.sizes[int(rng.integers(len(self.sizes)))])
            lq, params = self.degradation(gt, rng, side)
        elif not self.train and self.val_side:
            gt, mask, side = self._at_size(id, gt, mask, self.val_side)
            lq, params = self.degradation(gt, rng, side)
            if self.crop is not None and self.crop < side:  # the central window
                a = (side - self.crop) // 2
                window = (slice(a, a + self.crop), slice(a, a + self.crop))
                gt, lq, mask = gt[window], lq[window], mask[window]
        else:
            lq, params = self.degradation(gt, rng)
        if self.train and self.augment is not None:
            (gt, lq), mask = self.augment([gt, lq], mask, rng)
        if self.train and self.crop is not None:
            h, w = gt.shape[:2]
            if self.crop > min(h, w):
                raise ValueError(f"crop {self.crop} is larger than the {w}x{h} face {self.folder.image_path(id)}")
            y, x = int(rng.integers(h - self.crop + 1)), int(rng.integers(w - self.crop + 1))
            window = (slice(y, y + self.crop), slice(x, x + self.crop))
            gt, lq, mask = gt[window], lq[window], mask[window]
        if self.train and self.work_size is not None:
            h, w = work_shape(gt.shape[:2], self.work_size)  # the shape the net's work_size resizes to
            if (h, w) != gt.shape[:2]:
                gt, lq = (cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA) for a in (gt, lq))
                mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        if self.grayscale:
            lq = cv2.cvtColor(lq, cv2.COLOR_RGB2GRAY)[..., None]
        mask_t = torch.from_numpy(mask.astype(np.int64))
        onehot = torch.nn.functional.one_hot(mask_t, self.num_classes).permute(2, 0, 1).float()
        return {
            "lq": _to_tensor(lq),
            "gt": _to_tensor(gt),
            "mask": mask_t,
            "mask_onehot": onehot,
            "params": json.dumps(params.to_dict()),
            "path": str(self.folder.image_path(id)),
        }


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (C, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
