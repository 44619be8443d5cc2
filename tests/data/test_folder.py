import cv2
import numpy as np
import pytest

from smfd.data import FaceFolder, read_image, read_mask


def test_reads_image_and_mask(face_folder):
    folder = FaceFolder(face_folder)
    assert len(folder) == 6
    img, mask = folder.read(folder.ids[0])
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert mask.shape == (48, 48) and mask.max() <= 4


def test_missing_mask_names_the_file(face_folder):
    (face_folder / "masks" / "00003.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"masks/00003\.png"):
        FaceFolder(face_folder)
    assert len(FaceFolder(face_folder, require_masks=False)) == 6


def test_mismatched_mask_size(face_folder):
    cv2.imwrite(str(face_folder / "masks" / "00002.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match=r"00002\.png.*10x10.*48x48"):
        FaceFolder(face_folder).read("00002")


def test_mask_with_bad_class_ids(face_folder):
    cv2.imwrite(str(face_folder / "masks" / "00001.png"), np.full((48, 48), 9, np.uint8))
    with pytest.raises(ValueError, match="class id 9"):
        FaceFolder(face_folder).read("00001")


def test_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="no images"):
        FaceFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        FaceFolder(tmp_path / "nowhere")


def test_bad_image_files(tmp_path):
    cv2.imwrite(str(tmp_path / "rgba.png"), np.zeros((8, 8, 4), np.uint8))
    cv2.imwrite(str(tmp_path / "deep.png"), np.zeros((8, 8, 3), np.uint16))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"rgba\.png.*alpha"):
        read_image(tmp_path / "rgba.png")
    with pytest.raises(ValueError, match=r"deep\.png.*8-bit"):
        read_image(tmp_path / "deep.png")
    with pytest.raises(ValueError, match=r"empty\.jpg.*empty"):
        read_image(tmp_path / "empty.jpg")
    with pytest.raises(ValueError, match=r"text\.png.*not a readable image"):
        read_image(tmp_path / "text.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="single-channel"):
        cv2.imwrite(str(tmp_path / "colour_mask.png"), np.dstack([np.zeros((8, 8), np.uint8), np.ones((8, 8), np.uint8),
                                                                 np.zeros((8, 8), np.uint8)]))
        read_mask(tmp_path / "colour_mask.png")


def test_grey_image_becomes_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((8, 8), 77, np.uint8))
    img = read_image(tmp_path / "g.png")
    assert img.shape == (8, 8, 3) and (img == 77).all()


def test_written_files_get_normal_permissions(tmp_path):
    import os

    from smfd.data import write_image

    old = os.umask(0o022)
    try:
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o644
