import os
import shutil

import numpy as np
import pytest

from helpers import make_tiny_bundle, write_bad_inputs
from smfd.data import read_image
from smfd.samples import samples_dir


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp("w") / "bundle")


def test_aligned_folder_run_with_all_outputs(bundle, tmp_path, run_cli):
    res = run_cli(["deblur", str(samples_dir() / "images"), "-o", str(tmp_path / "o"), "--aligned", "--weights",
                   str(bundle), "--save-mask", "--side-by-side", "--keep", "background"])
    assert res.code == 0, res.err
    assert "restored 8 face(s) from 8 of 8 image(s)" in res.err
    out = read_image(tmp_path / "o" / "00004.jpg")  # a JPEG comes back as a JPEG
    assert out.shape == (256, 256, 3)
    assert read_image(tmp_path / "o" / "00004_mask.png").shape == (256, 256, 3)
    assert read_image(tmp_path / "o" / "00004_side_by_side.png").shape[1] > 3 * 256


def test_folder_run_goes_on_past_bad_files(bundle, tmp_path, run_cli):
    folder = tmp_path / "in"
    write_bad_inputs(folder)
    shutil.copy(samples_dir() / "images" / "00004.jpg", folder / "good.jpg")
    res = run_cli(["deblur", str(folder), "-o", str(tmp_path / "o"), "--aligned", "--weights", str(bundle)])
    assert res.code == 1 and "Traceback" not in res.err
    assert "7 of 8 inputs failed" in res.err
    for name in ("empty.jpg", "truncated.jpg", "text.png", "deep.png", "rgba.png", "tiny.png", "bomb.png"):
        assert name in res.err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good.jpg"]  # no partial outputs
    assert "empty.jpg: empty.jpg" not in res.err and res.err.count("empty.jpg") == 1  # each file named once


def test_no_silent_overwrite_and_unwritable_output(bundle, tmp_path, run_cli):
    args = [str(samples_dir() / "images" / "00004.jpg"), "--aligned", "--weights", str(bundle)]
    assert run_cli(["deblur", *args, "-o", str(tmp_path / "o")]).code == 0
    before = (tmp_path / "o" / "00004.jpg").read_bytes()
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "o")])
    assert res.code == 1 and "already exists" in res.err and "--overwrite" in res.err
    assert (tmp_path / "o" / "00004.jpg").read_bytes() == before
    assert run_cli(["deblur", *args, "-o", str(tmp_path / "o"), "--overwrite"]).code == 0
    if os.geteuid() != 0:  # root can write anywhere: the check cannot fail there
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        res = run_cli(["deblur", *args, "-o", str(locked / "sub")])
        assert res.code == 1 and "not writable" in res.err


def test_photo_without_a_face(bundle, tmp_path, run_cli):
    pytest.importorskip("dlib")
    from smfd.data import write_image

    write_image(tmp_path / "wall.png", np.full((200, 300, 3), 120, np.uint8))
    res = run_cli(["deblur", str(tmp_path / "wall.png"), "-o", str(tmp_path / "o"), "--weights", str(bundle)])
    assert res.code == 1 and "no face found" in res.err and "--aligned" in res.err
    res = run_cli(["deblur", str(tmp_path / "wall.png"), "-o", str(tmp_path / "o2"), "--weights", str(bundle),
                   "--aligned"])
    assert res.code == 0


def test_bad_keep_and_weights(tmp_path, run_cli):
    res = run_cli(["deblur", str(samples_dir() / "images"), "-o", str(tmp_path / "o"), "--keep", "beard"])
    assert res.code == 2 and "unknown region 'beard'" in res.err
    res = run_cli(["deblur", str(samples_dir() / "images"), "-o", str(tmp_path / "o"), "--weights", str(tmp_path)])
    assert res.code == 1 and "manifest.json" in res.err


def test_keep_regions_on_a_whole_photo(bundle, tmp_path, run_cli):
    """The README's photo command: --keep names on a whole photo (they were parsed twice and crashed)."""
    pytest.importorskip("dlib")
    import cv2

    face = read_image(samples_dir() / "images" / "00004.jpg")
    photo = cv2.copyMakeBorder(face, 60, 40, 120, 80, cv2.BORDER_CONSTANT, value=(90, 120, 150))
    from smfd.data import write_image

    write_image(tmp_path / "photo.jpg", photo)
    res = run_cli(["deblur", str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "o"), "--weights", str(bundle),
                   "--keep", "hair,background"])
    assert res.code == 0, res.err
    assert read_image(tmp_path / "o" / "photo.jpg").shape == photo.shape


def test_output_format_follows_the_input_or_the_option(bundle, tmp_path, run_cli):
    src = samples_dir() / "images" / "00004.jpg"
    shutil.copy(src, tmp_path / "face.png.jpg")
    args = [str(src), "--aligned", "--weights", str(bundle)]
    assert run_cli(["deblur", *args, "-o", str(tmp_path / "keep")]).code == 0
    jpg = tmp_path / "keep" / "00004.jpg"
    assert jpg.read_bytes()[:2] == b"\xff\xd8" and jpg.stat().st_size < 3 * src.stat().st_size
    assert run_cli(["deblur", *args, "-o", str(tmp_path / "png"), "--format", "png"]).code == 0
    assert (tmp_path / "png" / "00004.png").read_bytes()[:4] == b"\x89PNG"
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "bad"), "--format", "tiff"])
    assert res.code == 2 and "keep, png, jpg" in res.err


def test_a_failed_run_leaves_no_output_folder(bundle, tmp_path, run_cli):
    (tmp_path / "empty.jpg").write_bytes(b"")
    res = run_cli(["deblur", str(tmp_path / "empty.jpg"), "-o", str(tmp_path / "o"), "--aligned", "--weights",
                   str(bundle)])
    assert res.code == 1 and not (tmp_path / "o").exists()
    res = run_cli(["deblur", str(tmp_path / "empty.jpg"), "-o", str(tmp_path / "o2"), "--weights", str(tmp_path)])
    assert res.code == 1 and not (tmp_path / "o2").exists()


def test_weights_file_and_export_folders_are_recognised(bundle, tmp_path, run_cli):
    args = [str(samples_dir() / "images" / "00004.jpg"), "--aligned"]
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "o"), "--weights", str(bundle / "smfd_unet.safetensors")])
    assert res.code == 1 and "a file, not a weights folder" in res.err and "manifest.json/" not in res.err
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "o"), "--backend", "onnxruntime"])
    assert res.code == 1 and "smfd export" in res.err and "default" not in res.err.replace("--weights", "")
    pytest.importorskip("onnxruntime")
    from smfd.infer.export import export_onnx

    export_onnx(str(bundle), tmp_path / "onnx")
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "o"), "--weights", str(tmp_path / "onnx")])
    assert res.code == 0, res.err  # no --backend needed: the folder says what it is


def test_version_and_debug_after_the_command(run_cli, tmp_path):
    import smfd

    res = run_cli(["--version"])
    assert res.code == 0 and res.out.strip() == f"smfd {smfd.__version__}"
    with pytest.raises(FileNotFoundError):  # --debug after the subcommand shows the real exception
        run_cli(["deblur", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "o"), "--debug"])


def test_help_lists_regions_formats_and_precisions(run_cli):
    res = run_cli(["deblur", "--help"])
    text = " ".join(res.out.replace("│", " ").split())  # rich draws the help in a box
    for word in ("background, skin, features, hair, wearables", "keep (the input's", "bf16 or fp32"):
        assert word in text


def test_missing_onnx_packages_are_one_line_errors(bundle, tmp_path, run_cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails, as without the extra
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    res = run_cli(["export", "-o", str(tmp_path / "onnx"), "--weights", str(bundle)])
    assert res.code == 1 and "pip install 'smfd[onnx]'" in res.err and res.err.count("\n") == 1
    res = run_cli(["deblur", str(samples_dir() / "images" / "00004.jpg"), "-o", str(tmp_path / "o"), "--aligned",
                   "--weights", str(bundle), "--backend", "onnxruntime"])
    assert res.code == 1 and "pip install 'smfd[onnx]'" in res.err
