import cv2
import pytest

from smfd.data import read_image
from smfd.samples import samples_dir

pytest.importorskip("dlib")
from smfd.metrics.identity import IdentityScorer  # noqa: E402


def test_identity_separates_people_and_degrades_with_blur():
    score = IdentityScorer()
    a = read_image(samples_dir() / "images" / "00004.jpg")
    b = read_image(samples_dir() / "images" / "00558.jpg")
    same = score(a, a)
    assert same["id_distance"] == pytest.approx(0, abs=1e-6) and same["id_cosine"] == pytest.approx(1, abs=1e-6)
    other = score(b, a)
    assert other["id_distance"] > 0.6  # dlib's same-person threshold
    blurred = score(cv2.GaussianBlur(a, (0, 0), 2), a)
    assert 0 < blurred["id_distance"] < other["id_distance"]
