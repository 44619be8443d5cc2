from pathlib import Path

import cv2
import numpy as np
import pytest

from smfd.data import CLASSES, MERGE, PARTS, FaceFolder
from smfd.data.celebamask import MERGE_LUT, load_face, merge_labels, read_labels19


def _paint(root: Path, index: int, part: str, box: tuple[int, int, int, int], size: int = 64) -> None:
    folder = root / "CelebAMask-HQ-mask-anno" / str(index // 2000)
    folder.mkdir(parents=True, exist_ok=True)
    m = np.zeros((size, size, 3), np.uint8)  # the released part masks are 3-channel, 255 = part
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 255
    cv2.imwrite(str(folder / f"{index:05d}_{part}.png"), m)


@pytest.fixture
def celeba_root(tmp_path):
    """Three faces at 64 px in the real layout; 2001 lives in mask folder 1; parts missing as in the data."""
    root = tmp_path / "CelebAMask-HQ"
    (root / "CelebA-HQ-img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in (0, 1, 2001):
        cv2.imwrite(str(root / "CelebA-HQ-img" / f"{i}.jpg"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    _paint(root, 0, "skin", (10, 50, 10, 50))
    _paint(root, 0, "nose", (25, 35, 25, 35))  # painted over skin
    _paint(root, 0, "hair", (0, 12, 0, 64))  # painted over skin's top rows
    _paint(root, 0, "eye_g", (18, 22, 12, 48))
    _paint(root, 0, "l_eye", (18, 22, 15, 20))  # l_eye comes after eye_g in paint order: the eye wins
    _paint(root, 0, "neck", (50, 64, 20, 44))
    _paint(root, 1, "hat", (0, 20, 0, 64))  # face 1 has no skin file at all
    _paint(root, 2001, "mouth", (40, 45, 25, 40))
    _paint(root, 2001, "cloth", (55, 64, 0, 64))
    return root


def test_merge_table_covers_every_label_once():
    assert set(MERGE) == {"background", *PARTS}
    assert set(MERGE.values()) == set(range(len(CLASSES)))
    assert len(MERGE_LUT) == 19
    assert MERGE["mouth"] == 2 and MERGE["eye_g"] == 4 and MERGE["neck_l"] == 4 and MERGE["neck"] == 0


def test_labels_painted_in_order_and_merged(celeba_root):
    lab = read_labels19(celeba_root, 0, size=64)
    assert lab[30, 30] == PARTS.index("nose") + 1
    assert lab[11, 30] == PARTS.index("hair") + 1  # hair over skin
    assert lab[20, 17] == PARTS.index("l_eye") + 1  # the eye is painted over the glasses
    assert lab[20, 40] == PARTS.index("eye_g") + 1
    assert lab[40, 15] == PARTS.index("skin") + 1
    assert lab[60, 30] == PARTS.index("neck") + 1
    m5 = merge_labels(lab)
    assert (m5[30, 30], m5[11, 30], m5[20, 17], m5[20, 40], m5[40, 15], m5[60, 30], m5[60, 5]) == (
        2, 3, 2, 4, 1, 0, 0)
    assert set(np.unique(merge_labels(read_labels19(celeba_root, 1, size=64)))) == {0, 4}
    m2001 = merge_labels(read_labels19(celeba_root, 2001, size=64))
    assert m2001[42, 30] == 2 and m2001[60, 30] == 0


def test_load_face_resizes_both(celeba_root):
    img, mask = load_face(celeba_root, 0, size=32)
    assert img.shape == (32, 32, 3) and mask.shape == (32, 32)
    assert set(np.unique(mask)) <= {0, 1, 2, 3, 4}


def test_prepare_celebamask_cli(celeba_root, tmp_path, run_cli):
    out = tmp_path / "prepared"
    res = run_cli(["prepare", "celebamask", str(celeba_root), "-o", str(out), "--size", "32"])
    assert res.code == 0, res.err
    folder = FaceFolder(out)
    assert folder.ids == ["00000", "00001", "02001"]
    img, mask = folder.read("00000")
    assert img.shape == (32, 32, 3) and mask[15, 15] == 2
    again = run_cli(["prepare", "celebamask", str(celeba_root), "-o", str(out), "--size", "32"])
    assert again.code == 1 and "already exists" in again.err


def test_prepare_rejects_a_non_celebamask_root(tmp_path, run_cli):
    res = run_cli(["prepare", "celebamask", str(tmp_path), "-o", str(tmp_path / "o")])
    assert res.code == 1 and "CelebA-HQ-img" in res.err and "Traceback" not in res.err
