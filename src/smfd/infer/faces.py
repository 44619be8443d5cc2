"""Faces in whole photos: detect, align to the training template, and paste the result back seamlessly.

Detection and landmarks use dlib (``dlib-bin``) with the models shipped in the ``face_recognition_models``
package: the HOG frontal-face detector and the 5-point shape predictor (outer and inner corner of each eye,
base of the nose). Both load from site-packages, need no network, and run fast on a CPU; the 5 points are
all a similarity alignment needs. (The CNN/MMOD detector in the same package is more robust to pose but about
ten times slower on a CPU.) Install with ``pip install 'smfd[faces]'``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from .._dlib import models_dir

_HINT = "whole-photo mode needs face detection: pip install 'smfd[faces]' (or use --aligned for face crops)"

#: Where dlib's 5 landmarks sit on the 256 px training faces (FFHQ-aligned SynthFace): the median over 400
#: sharp faces, measured with scripts/fit_face_template.py. Order: image-right eye outer and inner corner,
#: image-left eye outer and inner corner, nose base.
TEMPLATE_256 = np.array([[172.0, 121.0], [146.0, 123.0], [83.0, 122.0], [108.0, 123.0], [128.0, 170.0]], np.float32)


@dataclass
class Face:
    """One detected face: ``box`` (x0, y0, x1, y1) in the photo, 5 ``landmarks`` (5, 2), and the 2x3 affine
    ``matrix`` mapping photo coordinates to the aligned crop; ``skipped`` says why a face was left alone."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    matrix: np.ndarray | None = None
    skipped: str = ""

    @property
    def size(self) -> int:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


class FaceDetector:
    """dlib HOG face detector + 5-point landmarks. ``upsample`` > 0 finds smaller faces, more slowly."""

    def __init__(self, upsample: int = 1) -> None:
        try:
            import dlib
        except ImportError:
            raise RuntimeError(_HINT) from None
        self.upsample = upsample
        self._detect = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(os.path.join(models_dir(_HINT), "shape_predictor_5_face_landmarks.dat"))

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 photo, largest first."""
        image = np.ascontiguousarray(image)
        faces = []
        for r in self._detect(image, self.upsample):
            shape = self._shape(image, r)
            pts = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
            faces.append(Face((r.left(), r.top(), r.right(), r.bottom()), pts))
        return sorted(faces, key=lambda f: -f.size)

    def landmarks(self, image: np.ndarray) -> list[np.ndarray]:
        return [f.landmarks for f in self.detect(image)]


def alignment_matrix(landmarks: np.ndarray, size: int = 256) -> np.ndarray:
    """Similarity transform (rotation, uniform scale, shift) from photo landmarks to the template."""
    template = TEMPLATE_256 * (size / 256.0)
    m, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), template, method=cv2.LMEDS)
    if m is None:
        raise ValueError("could not align the face (degenerate landmarks)")
    return m


def align(image: np.ndarray, matrix: np.ndarray, size: int = 256) -> np.ndarray:
    """Warp the face into a ``size x size`` crop like the training faces (reflecting at photo borders)."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def _soft_mask(size: int, feather: float) -> np.ndarray:
    """1 inside the crop, fading to 0 over ``feather`` of the side at the edges (no visible seam)."""
    m = np.zeros((size, size), np.float32)
    margin = max(1, int(size * feather))
    m[margin:-margin, margin:-margin] = 1.0
    k = 2 * margin + 1
    return cv2.GaussianBlur(m, (k, k), margin / 2)


def paste_back(photo: np.ndarray, face: np.ndarray, matrix: np.ndarray, *, feather: float = 0.08) -> np.ndarray:
    """Warp a restored aligned face back into the photo and blend it in with feathered edges."""
    h, w = photo.shape[:2]
    size = face.shape[0]
    inv = cv2.invertAffineTransform(matrix)
    warped = cv2.warpAffine(face, inv, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(_soft_mask(size, feather), inv, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    out = photo.astype(np.float32) * (1 - alpha) + warped.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
