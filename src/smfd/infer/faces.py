"""Faces in whole photos: detect, align to the training template, and paste the result back seamlessly.

Detection and landmarks use dlib (``dlib-bin``) with the models shipped in the ``face_recognition_models``
package, loaded from site-packages with no network: the HOG frontal-face detector or the CNN (MMOD) detector,
and the 5-point shape predictor (outer and inner corner of each eye, base of the nose), all a similarity
alignment needs. Install with ``pip install 'smfd[faces]'``.

Detectors (``FaceDetector(detector=...)``; measured in ``results/detect.md`` with ``benchmarks/detect.py``, the
times as ms per megapixel against ``hog``'s):

- ``hog``: HOG, the photo searched at 2x (faces from about 40 px); fast. Upright faces only (roll up to ~30°).
- ``hog-roll``: as ``hog``, then searched again turned by -40° and +40° (at 1x: faces from about 80 px), so
  heads rolled up to ~60° are found; about 1.6x the time of ``hog``.
- ``hog-small``: HOG at 4x (faces from about 20 px); about 4x the time of ``hog``.
- ``cnn``: dlib's CNN (MMOD) detector at 1x; more tolerant of turned heads, but about 15x the time of ``hog`` on a
  CPU and nothing under 40 px.

Faces cut by the frame edge: every detector searches the upright photo with a mirrored border added on each side
(6 % of its longer side), so a face partly outside the photo is found from its mirrored half (the alignment
reflects at photo borders the same way); a detection centred outside the photo (a mirror image) is dropped.

Whatever the detector, the landmarks hold on rolled faces: they are found where the face is upright (in the
turned copy it was found in), and a face whose eye line still leans is turned upright around its centre and
its landmarks found again.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from .._dlib import models_dir
from ..errors import BadOption

_HINT = "whole-photo mode needs face detection: pip install 'smfd[faces]' (aligned face crops need none)"

#: Where dlib's 5 landmarks sit on the 256 px training faces (FFHQ-aligned SynthFace): the median over 400
#: sharp faces, measured with scripts/fit_face_template.py. Order: image-right eye outer and inner corner,
#: image-left eye outer and inner corner, nose base.
TEMPLATE_256 = np.array([[172.0, 121.0], [146.0, 123.0], [83.0, 122.0], [108.0, 123.0], [128.0, 170.0]], np.float32)


#: The mirrored border searched around the upright photo (share of its longer side), for faces cut by the frame
#: edge: measured with benchmarks/detect.py (results/detect.md), 0.06 finds more cut faces than 0.1 (a wider border
#: makes more mirror images that win over the real face) at about 1.3x the time of none.
EDGE = 0.06


@dataclass(frozen=True)
class _Spec:
    """How a named detector searches: dlib ``kind``, ``upsample`` for the upright photo, extra ``rolls``
    (degrees) searched at ``roll_upsample``."""

    kind: str
    upsample: int
    rolls: tuple[float, ...] = ()
    roll_upsample: int = 0


DETECTORS: dict[str, _Spec] = {
    "hog": _Spec("hog", 1),
    "hog-roll": _Spec("hog", 1, (-40.0, 40.0), 0),
    "hog-small": _Spec("hog", 2),
    "cnn": _Spec("cnn", 0),
}

#: Faces smaller than this (box side, px) are skipped and reported: measured with benchmarks/small_faces.py
#: (results/small_faces.md), restoring a compressed face gains about +0.8 dB from 32 px, with no more faces made
#: worse than at the larger sizes; at 24 px it gains less and comes back worse more often (about 1 in 5).
MIN_FACE = 32

#: Faces are restored at their own size up to this side (px); a larger face is restored at this size and gets back
#: the detail the restoration did not touch (its own pixels plus the restoration's change, scaled up).
#: ``results/big_faces.md`` measures the rule; 256 restores every face at the training faces' size.
MAX_WORK_SIZE = 512

#: A face whose eye line leans more than this (degrees) gets its landmarks found again, turned upright.
_REFINE_ROLL = 8.0


@dataclass
class Face:
    """One detected face: ``box`` (x0, y0, x1, y1) in the photo, 5 ``landmarks`` (5, 2), and the 2x3 affine
    ``matrix`` mapping photo coordinates to the aligned crop; ``skipped`` says why a face was left alone.
    ``score`` is the detector's confidence (its own scale)."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    matrix: np.ndarray | None = None
    skipped: str = ""
    score: float = 0.0

    @property
    def size(self) -> int:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def roll_degrees(landmarks: np.ndarray) -> float:
    """How far the eye line of dlib's 5 points leans, in degrees (positive: the image-right eye is lower)."""
    right, left = landmarks[0:2].mean(0), landmarks[2:4].mean(0)
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def _turned(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo turned by ``angle`` degrees (counter-clockwise) on a canvas that holds all of it, and the 2x3
    matrix from photo to turned coordinates."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = math.ceil(w * c + h * s), math.ceil(w * s + h * c)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(image, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT), m


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


class FaceDetector:
    """Face detector + 5-point landmarks; ``detector`` is one of :data:`DETECTORS`. ``upsample`` overrides how
    much the upright photo is enlarged (each step doubles its sides: smaller faces, about 4x the time); ``edge``
    overrides the mirrored border searched for faces cut by the frame edge (0: none)."""

    def __init__(self, detector: str = "hog", *, upsample: int | None = None, edge: float | None = None) -> None:
        if detector not in DETECTORS:
            raise BadOption(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        try:
            import dlib
        except ImportError:
            raise RuntimeError(_HINT) from None
        self.name = detector
        self.spec = DETECTORS[detector]
        self.upsample = self.spec.upsample if upsample is None else upsample
        self.edge = EDGE if edge is None else edge
        if not 0 <= self.edge <= 1:
            raise BadOption(f"edge must be between 0 and 1, got {self.edge}")
        self._dlib = dlib
        folder = models_dir(_HINT)
        if self.spec.kind == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(os.path.join(folder, "mmod_human_face_detector.dat"))
        else:
            self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(os.path.join(folder, "shape_predictor_5_face_landmarks.dat"))

    def _boxes(self, image: np.ndarray, upsample: int) -> list[tuple[float, float, float, float, float]]:
        """(x0, y0, x1, y1, score) of the upright faces in ``image``."""
        if self.spec.kind == "cnn":
            return [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence)
                    for d in self._cnn(image, upsample)]
        rects, scores, _ = self._hog.run(image, upsample, 0.0)
        return [(r.left(), r.top(), r.right(), r.bottom(), s) for r, s in zip(rects, scores, strict=True)]

    def _points(self, image: np.ndarray, box) -> np.ndarray:
        r = self._dlib.rectangle(*(round(v) for v in box[:4]))
        return np.array([[p.x, p.y] for p in self._shape(image, r).parts()], np.float32)

    def _upright_points(self, image: np.ndarray, centre: np.ndarray, side: float, angle: float) -> np.ndarray:
        """Landmarks of the face at ``centre`` found on a patch of the photo turned by ``angle`` around it (the
        face upright there), in photo coordinates."""
        size = max(8, math.ceil(2 * side))
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)
        m[:, 2] += size / 2 - centre
        patch = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        half = side / 2
        pts = self._points(patch, (size / 2 - half, size / 2 - half, size / 2 + half, size / 2 + half))
        return _apply(cv2.invertAffineTransform(m), pts)

    def points_near(self, image: np.ndarray, centre: np.ndarray, side: float, roll: float = 0.0) -> np.ndarray:
        """The 5 landmarks of a face known to be near ``centre`` with a box of ``side`` px whose eye line leans
        ``roll`` degrees (a face followed from one video frame to the next): found where it is upright."""
        if abs(roll) > _REFINE_ROLL:
            return self._upright_points(image, np.asarray(centre, np.float32), side, roll)
        half = side / 2
        return self._points(image, (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half))

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 photo, largest first."""
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        found = []  # (score, centre, side, landmarks)
        for angle in (0.0, *self.spec.rolls):
            if angle == 0.0:
                pad = min(round(self.edge * max(h, w)), h - 1, w - 1)
                view = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101) if pad > 0 else image
                m, up = np.array([[1, 0, pad], [0, 1, pad]], np.float64), self.upsample
            else:
                (view, m), up = _turned(image, angle), self.spec.roll_upsample
            back = cv2.invertAffineTransform(m)
            for box in self._boxes(view, up):
                centre = _apply(back, np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]], np.float32))[0]
                if not (0 <= centre[0] < w and 0 <= centre[1] < h):
                    continue  # a mirror image in the border, or a face outside the turned photo
                pts = _apply(back, self._points(view, box))
                found.append((box[4] - 0.01 * abs(angle), centre, float(box[2] - box[0]), pts))
        faces: list[Face] = []
        kept: list[tuple[np.ndarray, float]] = []
        for score, centre, side, pts in sorted(found, key=lambda f: -f[0]):
            # the same face found in several turned copies: keep the best-scored one
            if any(np.linalg.norm(centre - c) < 0.5 * max(side, s) for c, s in kept):
                continue
            kept.append((centre, side))
            roll = roll_degrees(pts)
            if abs(roll) > _REFINE_ROLL:
                pts = self._upright_points(image, centre, side, roll)
            x0, y0 = (centre - side / 2).round().astype(int)
            faces.append(Face((int(x0), int(y0), int(x0 + side), int(y0 + side)), pts, score=float(score)))
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


def native_size(landmarks: np.ndarray) -> float:
    """The side of the aligned crop at which the face keeps its own resolution (one photo pixel per crop pixel):
    the side ``256`` crop's side divided by the alignment's scale. A face of 1,000 px in this sense fills a 1,000 px
    crop as the 256 px training faces fill theirs."""
    m = alignment_matrix(landmarks, 256)
    return 256.0 / math.sqrt(abs(np.linalg.det(m[:, :2])))


def paste_change(photo: np.ndarray, restored: np.ndarray, original: np.ndarray, matrix: np.ndarray, *,
                 feather: float = 0.08) -> np.ndarray:
    """Add what restoring changed (``restored - original``, both aligned crops of one size) back into the photo,
    with feathered edges. Where the restoration changed nothing the photo keeps its own pixels exactly: nothing
    is resampled but the change."""
    h, w = photo.shape[:2]
    inv = cv2.invertAffineTransform(matrix)
    change = restored.astype(np.float32) - original.astype(np.float32)
    alpha = _soft_mask(restored.shape[0], feather)[..., None]
    warped = cv2.warpAffine(change * alpha, inv, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    return np.clip(np.rint(photo.astype(np.float32) + warped), 0, 255).astype(np.uint8)
