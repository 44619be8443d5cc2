import os
import shutil

import cv2
import numpy as np
import pytest

from helpers import write_bad_inputs
from smfd.data import read_image
from smfd.data.io import write_image
from smfd.samples import samples_dir


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
    assert "5 of 8 inputs failed" in res.err
    for name in ("empty.jpg", "truncated.jpg", "text.png", "tiny.png", "bomb.png"):
        assert name in res.err
    # a 16-bit image comes back at 16 bits, a transparent one with its alpha channel; no partial outputs
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["deep.png", "good.jpg", "rgba.png"]
    import cv2

    assert cv2.imread(str(tmp_path / "o" / "deep.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    alpha = cv2.imread(str(tmp_path / "o" / "rgba.png"), cv2.IMREAD_UNCHANGED)[..., 3]
    assert (alpha == 100).all()
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
    assert res.code == 2 and "smfd export" in res.err and "default" not in res.err.replace("--weights", "")  # usage
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


def _faces(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(sorted((samples_dir() / "images").iterdir())[:n]):
        shutil.copy(src, folder / f"f{i}.jpg")
    return folder


def test_a_run_never_writes_over_its_own_outputs_or_inputs(bundle, tmp_path, run_cli):
    src = samples_dir() / "images" / "00004.jpg"
    shutil.copy(src, tmp_path / "a.jpg")
    shutil.copy(src, tmp_path / "a_mask.jpg")
    args = ["--aligned", "--weights", str(bundle)]
    res = run_cli(["deblur", str(tmp_path / "a.jpg"), str(tmp_path / "a_mask.jpg"), "-o", str(tmp_path / "o"),
                   "--save-mask", "--format", "png", *args])
    assert res.code == 1 and "would be written for both" in res.err and "a_mask.png" in res.err
    assert not (tmp_path / "o").exists()
    before = (tmp_path / "a.jpg").read_bytes()
    res = run_cli(["deblur", str(tmp_path / "a.jpg"), "-o", str(tmp_path), "--overwrite", *args])
    assert res.code == 1 and "an input would be replaced" in res.err
    assert (tmp_path / "a.jpg").read_bytes() == before


def test_skip_existing_goes_on_where_a_run_stopped(bundle, tmp_path, run_cli):
    folder = _faces(tmp_path / "in")
    args = [str(folder), "-o", str(tmp_path / "o"), "--aligned", "--weights", str(bundle), "--save-mask"]
    assert run_cli(["deblur", *args]).code == 0
    (tmp_path / "o" / "f1.jpg").unlink()  # an incomplete set, as if the run had been killed there
    (tmp_path / "o" / "f2.jpg").unlink()
    (tmp_path / "o" / "f2_mask.png").unlink()
    kept = (tmp_path / "o" / "f0.jpg").stat().st_mtime_ns
    res = run_cli(["deblur", *args])
    assert res.code == 1 and "--skip-existing" in res.err
    res = run_cli(["deblur", *args, "--skip-existing"])
    assert res.code == 0, res.err
    assert "from 2 of 3 image(s)" in res.err and "1 done before, left alone" in res.err
    assert len(list((tmp_path / "o").iterdir())) == 6 and (tmp_path / "o" / "f0.jpg").stat().st_mtime_ns == kept
    assert run_cli(["deblur", *args, "--skip-existing", "--overwrite"]).code == 2


def test_a_full_disk_stops_the_run_with_complete_output_sets(bundle, tmp_path, run_cli, monkeypatch):
    import errno

    from smfd.data import io as data_io
    from smfd.infer import photo_io

    folder = _faces(tmp_path / "in")
    real, calls = data_io.atomic_write_bytes, []

    def write(path, data):
        calls.append(path)
        if len(calls) == 4:  # the second input's mask: its restored image is already written
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(photo_io, "atomic_write_bytes", write)
    monkeypatch.setattr(data_io, "atomic_write_bytes", write)
    args = [str(folder), "-o", str(tmp_path / "o"), "--aligned", "--weights", str(bundle), "--save-mask"]
    res = run_cli(["deblur", *args])
    assert res.code == 1 and "Traceback" not in res.err
    assert "No space left on device" in res.err and "f1_mask.png" in res.err
    assert "2 image(s) not done" in res.err and "--skip-existing" in res.err and len(calls) == 4  # stopped there
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["f0.jpg", "f0_mask.png"]  # no half set
    monkeypatch.setattr(photo_io, "atomic_write_bytes", real)
    monkeypatch.setattr(data_io, "atomic_write_bytes", real)
    res = run_cli(["deblur", *args, "--skip-existing"])
    assert res.code == 0 and "from 2 of 3 image(s)" in res.err
    assert len(list((tmp_path / "o").iterdir())) == 6


def test_ctrl_c_prints_what_was_done(bundle, tmp_path, run_cli, monkeypatch):
    from smfd.infer.pipeline import FaceDeblurrer

    folder = _faces(tmp_path / "in")
    real, calls = FaceDeblurrer.restore_faces, []

    def restore(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(FaceDeblurrer, "restore_faces", restore)
    res = run_cli(["deblur", str(folder), "-o", str(tmp_path / "o"), "--aligned", "--weights", str(bundle)])
    assert res.code == 130 and "Traceback" not in res.err
    assert "restored 1 face(s) from 1 of 3 image(s)" in res.err and "stopped by Ctrl-C" in res.err
    assert "2 image(s) not done" in res.err and sorted(p.name for p in (tmp_path / "o").iterdir()) == ["f0.jpg"]


def test_files_a_folder_run_leaves_out_are_named(bundle, tmp_path, run_cli):
    folder = _faces(tmp_path / "in", n=1)
    for name in ("clip.gif", "phone.heic", "movie.mp4"):
        (folder / name).write_bytes(b"x" * 10)
    (folder / ".DS_Store").write_bytes(b"x")
    res = run_cli(["deblur", str(folder), "-o", str(tmp_path / "o"), "--aligned", "--weights", str(bundle)])
    assert res.code == 0, res.err
    assert "left out 3 file(s) that are not images smfd reads (.gif, .heic, .mp4)" in res.err
    assert "DS_Store" not in res.err


def test_subfolders_holding_inputs_are_named_not_searched(bundle, tmp_path, run_cli):
    folder = _faces(tmp_path / "in", n=1)
    _faces(folder / "2023" / "may", n=1)  # photos two levels down
    (folder / "clips").mkdir()
    (folder / "clips" / "a.mp4").write_bytes(b"x" * 10)  # a clip: read unless --aligned
    for name in (".cache", "empty", "notes"):
        (folder / name).mkdir()
    (folder / ".cache" / "x.jpg").write_bytes(b"x")
    (folder / "notes" / "todo.txt").write_text("x")
    for flags, named in (([], ["2023", "clips"]), (["--aligned"], ["2023"])):
        out = tmp_path / f"o{len(flags)}"
        res = run_cli(["deblur", str(folder), "-o", str(out), "--weights", str(bundle), *flags])
        assert res.code == 0, res.err
        err = " ".join(res.err.split())
        paths = ", ".join(str(folder / n) for n in named)
        assert (f"left out {len(named)} subfolder(s) holding inputs, not searched (a folder run reads the folder's "
                f"own files): {paths}; give each as an input to restore it, e.g. smfd deblur {folder / '2023'} "
                "-o OUT/2023") in err
        assert sorted(p.name for p in out.iterdir()) == ["f0.jpg"]
    res = run_cli(["deblur", str(folder / "2023"), "-o", str(tmp_path / "none"), "--weights", str(bundle)])
    assert res.code == 1 and "no input images found; 1 subfolder(s) holding inputs" in " ".join(res.err.split())
    assert str(folder / "2023" / "may") in res.err and not (tmp_path / "none").exists()


def test_usage_errors_exit_2_in_one_line(tmp_path, run_cli):
    src = str(samples_dir() / "images" / "00004.jpg")
    for extra, words in ((["--min-face", "-5"], "--min-face must be at least 0, got -5"),
                         (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
                         (["--max-megapixels", "0"], "--max-megapixels must be positive"),
                         (["--overwrite", "--skip-existing"], "exclude each other")):
        res = run_cli(["deblur", src, "-o", str(tmp_path / "o"), *extra])
        assert res.code == 2 and words in res.err and res.err.count("\n") == 1, (extra, res.err)
    assert not (tmp_path / "o").exists()


def test_max_megapixels_and_oversized_crops(bundle, tmp_path, run_cli):
    from smfd.data import write_image

    face = read_image(samples_dir() / "images" / "00004.jpg")
    import cv2

    write_image(tmp_path / "big.png", cv2.resize(face, (1600, 1200)))
    args = [str(tmp_path / "big.png"), "--aligned", "--weights", str(bundle)]
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "o"), "--max-megapixels", "1"])
    assert res.code == 1 and "1600x1200 is over the 1 MP limit" in res.err and "--max-megapixels raises" in res.err
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "o"), "--max-megapixels", "2"])
    assert res.code == 0 and "a 1600x1200 crop, restored at 512x384; its finer detail kept" in res.err
    assert read_image(tmp_path / "o" / "big.png").shape == (1200, 1600, 3)


def test_no_mirror_restores_a_big_face_once(bundle, tmp_path, run_cli):
    """A crop above 256 px is restored as given and mirrored by default; --no-mirror restores it once. A 256 px crop
    comes back the same either way."""
    face = read_image(samples_dir() / "images" / "00004.jpg")
    write_image(tmp_path / "in" / "big.png", cv2.resize(face, (384, 384)))
    write_image(tmp_path / "in" / "small.png", face)
    outs = {}
    for flag in ("--mirror", "--no-mirror"):
        res = run_cli(["deblur", str(tmp_path / "in"), "--aligned", "--weights", str(bundle), "-o",
                       str(tmp_path / flag), flag])
        assert res.code == 0, res.err
        outs[flag] = {n: read_image(tmp_path / flag / f"{n}.png") for n in ("big", "small")}
    assert not np.array_equal(outs["--mirror"]["big"], outs["--no-mirror"]["big"])
    assert np.array_equal(outs["--mirror"]["small"], outs["--no-mirror"]["small"])


def test_photos_keep_their_exif_and_icc_unless_stripped(bundle, tmp_path, run_cli):
    from PIL import Image, ImageCms

    im = Image.open(samples_dir() / "images" / "00004.jpg")
    exif = im.getexif()
    exif[0x010F] = "Canon"
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im.save(tmp_path / "p.jpg", exif=exif.tobytes(), icc_profile=icc, quality=95)
    args = [str(tmp_path / "p.jpg"), "--aligned", "--weights", str(bundle)]
    assert run_cli(["deblur", *args, "-o", str(tmp_path / "o")]).code == 0
    with Image.open(tmp_path / "o" / "p.jpg") as out:
        assert out.getexif()[0x010F] == "Canon" and out.getexif().get_ifd(0x8825)[1] == "N"
        assert out.info["icc_profile"] == icc
    assert run_cli(["deblur", *args, "-o", str(tmp_path / "s"), "--strip-metadata"]).code == 0
    with Image.open(tmp_path / "s" / "p.jpg") as out:
        assert not out.getexif() and "icc_profile" not in out.info


def test_detector_option_finds_a_rolled_head_the_default_misses(run_cli, tmp_path):
    """--detector hog-roll restores a face rolled 50 degrees in a photo; the default detector finds none there."""
    pytest.importorskip("dlib")
    face = read_image(sorted((samples_dir() / "images").iterdir())[0])
    canvas = np.full((480, 480, 3), 110, np.uint8)
    canvas[112:368, 112:368] = face
    turned = cv2.warpAffine(canvas, cv2.getRotationMatrix2D((240, 240), 50, 1.0), (480, 480),
                            borderMode=cv2.BORDER_REPLICATE)
    photo = tmp_path / "rolled.png"
    write_image(photo, turned)
    res = run_cli(["deblur", str(photo), "-o", str(tmp_path / "default")])
    assert res.code != 0 and "no face found" in res.err
    res = run_cli(["deblur", str(photo), "-o", str(tmp_path / "roll"), "--detector", "hog-roll"])
    assert res.code == 0, res.err
    assert (tmp_path / "roll" / "rolled.png").is_file() and "restored 1 face(s)" in res.err
    res = run_cli(["deblur", str(photo), "-o", str(tmp_path / "x"), "--detector", "mediapipe"])
    assert res.code == 2 and "--detector must be one of hog" in res.err and not (tmp_path / "x").exists()


def test_a_png_named_jpg_keeps_its_transparency_and_bits(bundle, tmp_path, run_cli):
    """A transparent or 16-bit PNG under a .jpg name comes back as PNG with its alpha and 16 bits, as from the page
    and the endpoint; --format jpg says what the JPEG leaves out."""
    from PIL import Image

    face = read_image(samples_dir() / "images" / "00004.jpg")
    (tmp_path / "in").mkdir()
    Image.fromarray(np.dstack([face, np.full(face.shape[:2], 100, np.uint8)])).save(tmp_path / "in" / "cut.jpg",
                                                                                   "PNG")
    cv2.imwrite(str(tmp_path / "in" / "deep.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    (tmp_path / "in" / "deep.png").rename(tmp_path / "in" / "deep.jpeg")
    args = [str(tmp_path / "in"), "--aligned", "--weights", str(bundle)]
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "o")])
    assert res.code == 0, res.err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["cut.png", "deep.png"]
    assert (cv2.imread(str(tmp_path / "o" / "cut.png"), cv2.IMREAD_UNCHANGED)[..., 3] == 100).all()
    assert cv2.imread(str(tmp_path / "o" / "deep.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    res = run_cli(["deblur", *args, "-o", str(tmp_path / "j"), "--format", "jpg"])
    assert res.code == 0, res.err
    assert "cut.jpg: its transparency is not in the JPEG output (--format png keeps it)" in res.err
    assert "deep.jpeg: its 16 bits per channel are not in the JPEG output" in res.err


def test_the_plan_splits_inputs_and_names_outputs_once(tmp_path):
    from smfd.cli.deblur import ClipOptions, NetOptions, PhotoOptions, make_plan

    for name in ("a.jpg", "b.png", "clip.mp4"):
        shutil.copy(samples_dir() / "images" / "00004.jpg", tmp_path / name)
    photo = PhotoOptions(save_mask=True)
    plan = make_plan([str(tmp_path)], tmp_path / "o", aligned=False, nets=NetOptions(), photo=photo,
                     clip=ClipOptions())
    assert [p.name for p in plan.photos] == ["a.jpg", "b.png"] and [p.name for p in plan.videos] == ["clip.mp4"]
    assert plan.crops == () and plan.kind == "input(s)"
    assert plan.outputs[tmp_path / "a.jpg"].paths() == [tmp_path / "o" / "a.jpg", tmp_path / "o" / "a_mask.png"]
    assert plan.outputs[tmp_path / "clip.mp4"].paths() == [tmp_path / "o" / "clip.mp4"]
    plan = make_plan([str(tmp_path)], tmp_path / "o", aligned=True, nets=NetOptions(), photo=photo,
                     clip=ClipOptions())
    assert [p.name for p in plan.crops] == ["a.jpg", "b.png"] and plan.photos == plan.videos == ()
    assert [p.name for p in plan.left_out] == ["clip.mp4"]


def test_library_errors_are_answered_by_type(bundle, tmp_path, run_cli, monkeypatch):
    """The command line's table: an option the library refuses is a usage error (2); a face crop without --aligned
    gets the hint once, after the failures of every input."""
    from smfd.cli import answer
    from smfd.errors import BadOption, NoFaceError
    from smfd.infer.pipeline import FaceDeblurrer

    assert answer(BadOption("x")) == (2, "") and answer(KeyError("x")) == (1, "")
    res = run_cli(["deblur", str(samples_dir() / "images" / "00004.jpg"), "-o", str(tmp_path / "o"), "--aligned",
                   "--backend", "tensorflow"])
    assert res.code == 2 and "backend must be torch or onnxruntime" in res.err and res.err.count("\n") == 1

    def no_face(self, *args, **kwargs):
        raise NoFaceError("no face found")

    monkeypatch.setattr(FaceDeblurrer, "deblur", no_face)
    res = run_cli(["deblur", str(_faces(tmp_path / "in")), "-o", str(tmp_path / "o2"), "--weights", str(bundle)])
    assert res.code == 1 and res.err.count("no face found") == 3
    assert res.err.count("note: for a face crop, use aligned mode (--aligned)") == 1


def test_o_names_a_folder_not_a_file(bundle, tmp_path, run_cli):
    from smfd.data import write_image

    write_image(tmp_path / "a.png", read_image(samples_dir() / "images" / "00004.jpg"))
    res = run_cli(["deblur", str(tmp_path / "a.png"), "--aligned", "--weights", str(bundle),
                   "-o", str(tmp_path / "restored.png")])
    assert res.code == 2 and "names the output folder" in res.err and not (tmp_path / "restored.png").exists()
