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
    out = read_image(tmp_path / "o" / "00004.png")
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
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good.png"]  # no partial outputs


def test_no_silent_overwrite_and_unwritable_output(bundle, tmp_path, run_cli):
    args = [str(samples_dir() / "images" / "00004.jpg"), "--aligned", "--weights", str(bundle)]
    assert run_cli(["deblur", *args, "-o", str(tmp_path / "o")]).code == 0
    before = (tmp_path / "o" / "00004.png").read_bytes()
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "o")])
    assert res.code == 1 and "already exists" in res.err and "--overwrite" in res.err
    assert (tmp_path / "o" / "00004.png").read_bytes() == before
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
    assert res.code == 1 and "unknown region 'beard'" in res.err
    res = run_cli(["deblur", str(samples_dir() / "images"), "-o", str(tmp_path / "o"), "--weights", str(tmp_path)])
    assert res.code == 1 and "manifest.json" in res.err
