"""Identity similarity between two faces with dlib's face-recognition ResNet (optional extra ``identity``).

The models come from the ``face_recognition_models`` package and run with ``dlib-bin``; both install from
PyPI and load offline. The face box is found once, on the sharp reference (HOG detector; the whole image if
none is found, as for tight aligned crops), and the same box is used for the restored face, so a blurry
output cannot fail detection and the two descriptors describe the same region. Results: ``id_distance``
(Euclidean distance of the 128-D descriptors; dlib's same-person threshold is 0.6) and ``id_cosine``; over a set
of faces, :func:`rank1` is face identification: whether each restored face's nearest sharp face is its own.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .._dlib import models_dir

_HINT = "the identity metric needs dlib: pip install 'smfd[faces]'"


class IdentityScorer:
    """``scorer(restored, sharp) -> {"id_distance", "id_cosine"}`` for RGB uint8 faces of one size.

    ``cache``: a folder where each sharp face's box and descriptor are kept, keyed by a hash of its pixels, so
    evaluations of many models on the same test faces find and describe each sharp face once (about half the
    identity scoring's time)."""

    def __init__(self, cache: str | os.PathLike | None = None) -> None:
        self.cache = None if cache is None else Path(cache)
        try:
            import dlib
        except ImportError:
            raise RuntimeError(_HINT) from None
        models = models_dir(_HINT)
        self._dlib = dlib
        self._detect = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(os.path.join(models, "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(os.path.join(models, "dlib_face_recognition_resnet_model_v1.dat"))

    def _box(self, image: np.ndarray):
        found = self._detect(image, 1)
        if len(found):
            return max(found, key=lambda r: r.area())
        h, w = image.shape[:2]
        return self._dlib.rectangle(0, 0, w - 1, h - 1)

    def _descriptor(self, image: np.ndarray, box) -> np.ndarray:
        image = np.ascontiguousarray(image)
        return np.array(self._net.compute_face_descriptor(image, self._shape(image, box)))

    def descriptors(self, restored: np.ndarray, sharp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 128-D descriptors of both faces, in the box found on the sharp one."""
        if restored.shape != sharp.shape:
            raise ValueError(f"faces must have one size, got {restored.shape} and {sharp.shape}")
        path = None
        if self.cache is not None:
            path = self.cache / f"{hashlib.sha256(np.ascontiguousarray(sharp).tobytes()).hexdigest()[:32]}.npy"
            if path.is_file():
                kept = np.load(path)
                box = self._dlib.rectangle(*(int(v) for v in kept[:4]))
                return self._descriptor(restored, box), kept[4:]
        box = self._box(sharp)
        ref = self._descriptor(sharp, box)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, np.concatenate([[box.left(), box.top(), box.right(), box.bottom()], ref]))
            os.replace(tmp, path)
        return self._descriptor(restored, box), ref

    def __call__(self, restored: np.ndarray, sharp: np.ndarray) -> dict[str, float]:
        return self.scores(*self.descriptors(restored, sharp))

    @staticmethod
    def scores(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        return {"id_distance": float(np.linalg.norm(a - b)), "id_cosine": cos}


def rank1(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Face identification: for each probe descriptor (N, 128), whether its nearest gallery descriptor (Euclidean,
    as dlib matches faces) is the one of the same index: the rank-1 hits (N,) as 0/1 floats."""
    d = np.linalg.norm(probes[:, None, :] - gallery[None, :, :], axis=2)
    return (d.argmin(1) == np.arange(len(probes))).astype(np.float64)
