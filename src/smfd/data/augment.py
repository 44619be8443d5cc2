"""Joint augmentation (thesis §3.4.6.1): one geometry for the sharp image, the blurry image and the mask.

Geometric: rotation up to +-30 degrees, horizontal flip, random crop of 0.8-1.0 of the side resized back
to full size, composed into a single affine warp (one interpolation, not three). Images use bilinear
interpolation, the mask nearest neighbour, all with the same reflected border, so labels stay on their
pixels. Photometric: brightness and contrast factors in [0.7, 1.3], the same factors for every image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

_BORDER = cv2.BORDER_REFLECT_101


@dataclass(frozen=True)
class JointAugment:
    """Random joint augmentation; defaults are the thesis's ranges.

    Attributes:
        max_rotation: rotation angle is uniform in ``[-max_rotation, max_rotation]`` degrees.
        flip_prob: probability of a horizontal flip.
        crop_range: side of the random crop, as a fraction of the image side.
        brightness_range: multiplicative brightness factor.
        contrast_range: contrast factor around the image mean.
    """

    max_rotation: float = 30.0
    flip_prob: float = 0.5
    crop_range: tuple[float, float] = (0.8, 1.0)
    brightness_range: tuple[float, float] = (0.7, 1.3)
    contrast_range: tuple[float, float] = (0.7, 1.3)

    def sample_matrix(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """The 2x3 affine map from output pixel coordinates to input coordinates."""
        angle = math.radians(rng.uniform(-self.max_rotation, self.max_rotation))
        flip = rng.random() < self.flip_prob
        frac = rng.uniform(*self.crop_range)
        # the crop centre may move so that an axis-aligned crop of that size stays inside the image
        cx = width / 2 + rng.uniform(-1, 1) * (1 - frac) * width / 2
        cy = height / 2 + rng.uniform(-1, 1) * (1 - frac) * height / 2
        cos, sin = math.cos(angle), math.sin(angle)
        a = frac * np.array([[cos, -sin], [sin, cos]]) @ np.diag([-1.0 if flip else 1.0, 1.0])
        # src = centre_src + A @ (dst - centre_dst), pixel centres at integer coordinates
        c_dst = np.array([(width - 1) / 2, (height - 1) / 2])
        c_src = np.array([cx - 0.5, cy - 0.5])
        return np.hstack([a, (c_src - a @ c_dst)[:, None]]).astype(np.float64)

    def __call__(
        self, images: Sequence[np.ndarray], mask: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Augment ``images`` (uint8 HxW[xC], all the same size) and ``mask`` with one random draw."""
        if not images:
            raise ValueError("images must hold at least one image")
        h, w = images[0].shape[:2]
        for im in images:
            if im.shape[:2] != (h, w):
                raise ValueError(f"all images must share one size, got {im.shape[:2]} and {(h, w)}")
        m = self.sample_matrix(rng, h, w)
        flags = cv2.WARP_INVERSE_MAP
        out = [cv2.warpAffine(im, m, (w, h), flags=flags | cv2.INTER_LINEAR, borderMode=_BORDER) for im in images]
        if mask is not None:
            mask = cv2.warpAffine(mask, m, (w, h), flags=flags | cv2.INTER_NEAREST, borderMode=_BORDER)
        b = rng.uniform(*self.brightness_range)
        c = rng.uniform(*self.contrast_range)
        out = [_photometric(im, b, c) for im in out]
        return out, mask


def _photometric(image: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    x = image.astype(np.float32)
    mean = x.mean()
    x = ((x - mean) * contrast + mean) * brightness
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
