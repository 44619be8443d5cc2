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


def test_face_identification_finds_each_face_among_the_sharp_ones():
    import numpy as np

    from smfd.metrics.identity import rank1

    g = np.random.default_rng(0).normal(size=(5, 128))
    assert rank1(g + 0.01, g).tolist() == [1.0] * 5  # each probe's nearest is its own
    assert rank1(g[[1, 0, 2, 3, 4]], g).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]  # two swapped: two misses


def test_scoring_a_folder_reports_face_identification(tmp_path):
    import shutil

    from smfd.score import score_folders

    sharp, pred = tmp_path / "sharp", tmp_path / "pred"
    sharp.mkdir()
    pred.mkdir()
    images = sorted((samples_dir() / "images").iterdir())[:3]
    for p in images:
        shutil.copy(p, sharp / p.name)
        shutil.copy(p, pred / p.name)
    rows, _, _ = score_folders(pred, sharp, identity=True)
    assert [r["id_rank1"] for r in rows] == [1.0, 1.0, 1.0]
    shutil.copy(images[1], pred / images[0].name)  # a face that is someone else
    rows, _, _ = score_folders(pred, sharp, identity=True)
    assert rows[0]["id_rank1"] == 0.0 and rows[1]["id_rank1"] == 1.0


def test_a_cache_of_sharp_descriptors_gives_the_same_scores(tmp_path):
    a = read_image(samples_dir() / "images" / "00004.jpg")
    blurred = cv2.GaussianBlur(a, (0, 0), 2)
    plain = IdentityScorer()(blurred, a)
    cached = IdentityScorer(tmp_path / "cache")
    first = cached(blurred, a)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    again = IdentityScorer(tmp_path / "cache")(blurred, a)  # read back from the folder
    assert first == pytest.approx(plain, abs=1e-9) and again == pytest.approx(plain, abs=1e-9)
    IdentityScorer(tmp_path / "cache")(a, blurred)  # another sharp face: its own entry
    assert len(list((tmp_path / "cache").iterdir())) == 2
