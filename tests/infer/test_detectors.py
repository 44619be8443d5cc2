"""Selectable face detectors: rolled and small faces are found, and their landmarks align them like upright ones."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from smfd.infer.faces import DETECTORS, FaceDetector, alignment_matrix, roll_degrees
from smfd.samples import samples_dir

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detectors() -> dict[str, FaceDetector]:
    return {}


def _get(detectors: dict, name: str) -> FaceDetector:
    if name not in detectors:
        detectors[name] = FaceDetector(name)
    return detectors[name]


def _photo(face: np.ndarray, angle: float, scale: float = 1.0, pad: int = 160) -> np.ndarray:
    """The face turned by ``angle`` degrees (counter-clockwise) and scaled, in the middle of a plain photo."""
    if scale != 1.0:
        n = round(face.shape[0] * scale)
        face = cv2.resize(face, (n, n), interpolation=cv2.INTER_AREA)
    photo = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(90, 120, 150))
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _angle(matrix: np.ndarray) -> float:
    """The rotation of a 2x3 similarity matrix, in degrees."""
    return float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))


def test_unknown_detector_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"detector must be one of hog, .*cnn.*, got 'retina'"):
        FaceDetector("retina")


@pytest.mark.parametrize(("name", "angle"), [("hog", 0), ("hog", 25), ("hog-roll", 50), ("hog-roll", -55)])
def test_rolled_face_is_aligned_like_the_upright_one(face, detectors, name, angle):
    (upright,) = _get(detectors, "hog").detect(_photo(face, 0))
    photo = _photo(face, angle)
    (found,) = _get(detectors, name).detect(photo)
    assert abs(roll_degrees(found.landmarks) + angle) < 5  # the eye line leans as the face was turned
    h, w = photo.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    expected = upright.landmarks @ turn[:, :2].T + turn[:, 2]
    assert np.abs(found.landmarks - expected).max() < 2.5  # each point within 2.5 px (eye distance ~62 px)
    turned = _angle(alignment_matrix(found.landmarks)) - _angle(alignment_matrix(upright.landmarks))
    assert abs(turned - angle) < 3  # the crop is turned back upright (LMEDS fits a subset of the 5 points)


def test_hog_misses_a_face_rolled_55_degrees_that_hog_roll_finds(face, detectors):
    photo = _photo(face, 55)
    assert _get(detectors, "hog").detect(photo) == []
    assert len(_get(detectors, "hog-roll").detect(photo)) == 1


def test_hog_small_finds_a_28px_face_that_hog_misses(face, detectors):
    photo = _photo(face, 0, scale=0.14, pad=60)  # a 36 px crop: a face box of about 28 px
    assert _get(detectors, "hog").detect(photo) == []
    (found,) = _get(detectors, "hog-small").detect(photo)
    assert 20 <= found.size <= 36


def test_cnn_finds_the_upright_face(face, detectors):
    (found,) = _get(detectors, "cnn").detect(_photo(face, 0, scale=0.5, pad=40))
    assert 50 <= found.size <= 110


@pytest.mark.parametrize("name", list(DETECTORS))
def test_no_face_in_a_plain_photo(detectors, name):
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    assert _get(detectors, name).detect(noise) == []


@pytest.mark.parametrize("cut", [0.4, 0.45])
def test_a_face_cut_by_the_frame_edge_is_found_from_its_mirrored_half(face, detectors, cut):
    photo = _photo(face, 0, scale=0.5, pad=80)  # a face box of about 86 px
    (whole,) = _get(detectors, "hog").detect(photo)
    x = round(whole.box[0] + cut * whole.size)  # this share of the face's box lies left of the new frame
    edge = np.ascontiguousarray(photo[:, x:])
    assert FaceDetector("hog", edge=0).detect(edge) == []
    (found,) = _get(detectors, "hog").detect(edge)  # one face: its mirror image in the border is dropped
    assert found.box[0] < 0 < found.box[2]
    # its eyes where they were in the whole photo (eye distance about 31 px)
    assert np.abs(found.landmarks[:4] - (whole.landmarks[:4] - [x, 0])).max() < 3


def test_edge_must_be_a_share_of_the_side():
    with pytest.raises(ValueError, match="edge must be between 0 and 1"):
        FaceDetector("hog", edge=1.5)
