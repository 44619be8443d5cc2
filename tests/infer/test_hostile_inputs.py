"""Hostile and careless inputs, kept: files that are not what they say, damaged, huge in their header, in every
mode a photo can have, with odd names; and the Python API's arguments. Each case asserts its outcome (restored,
or one line naming the file), the exit status, and that nothing was lost or overwritten."""

import io
import os
import shutil
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from smfd.samples import samples_dir

# small, so that the cases that run the nets stay quick on a CPU
FACE = cv2.resize(cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB), (64, 64),
                  interpolation=cv2.INTER_AREA)


def _pil(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is one empty row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0")) + \
        _png_chunk(b"IEND", b"")


def _corpus() -> dict[str, tuple[bytes, str]]:
    """name -> (file contents, expected: "ok" or words of the one-line error)."""
    face = Image.fromarray(FACE)
    jpeg = _pil(face, "JPEG", quality=90)
    png = _pil(face, "PNG")
    rgba = np.dstack([FACE, np.full(FACE.shape[:2], 128, np.uint8)])
    exif = face.getexif()
    exif[0x0112] = 8
    deep = cv2.imencode(".png", cv2.cvtColor(FACE, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)[1].tobytes()
    deep_rgba = cv2.imencode(".png", np.dstack([FACE, rgba[..., 3]]).astype(np.uint16) * 257)[1].tobytes()
    corrupt_png = bytearray(png)
    corrupt_png[len(png) // 2 : len(png) // 2 + 64] = b"\xff" * 64
    frames = [Image.fromarray(np.roll(FACE, 10 * i, axis=1)) for i in range(3)]
    return {
        "empty.jpg": (b"", "file is empty"),
        "one-byte.png": (b"\x89", "not a readable image"),
        "text.png": (b"this is not an image", "not a readable image"),
        "page.jpg": (b"<html><script>alert(1)</script></html>", "not a readable image"),
        "shell.png": (b"#!/bin/sh\nrm -rf /\n", "not a readable image"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "cannot decode"),
        "jpeg-header.jpg": (jpeg[:40], "cannot decode"),
        "png-signature.png": (png[:8], "not a readable image"),
        "corrupt-data.png": (bytes(corrupt_png), "cannot decode"),
        # found by benchmarks/fuzz_inputs.py: Pillow raised a bare ValueError / SyntaxError for these
        "short-ihdr.png": (png[:8] + struct.pack(">I", 5) + b"IHDR" + png[16:21] + png[33:], "cannot decode"),
        "broken-chunk.png": (png[:33] + b"\0\0\0\x10\xdf\xe7\xb3\xfb" + png[41:], "not a readable"),
        "ppm-header.png": (b"P6\n96\x00\x00\xff\xff 96\n255\n" + b"\0" * 300, "cannot decode"),
        "zip.png": (b"PK\x03\x04" + b"\0" * 200, "not a readable image"),
        "pdf.jpg": (b"%PDF-1.4\n" + b"0" * 200, "not a readable image"),
        "svg.png": (b'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="900"/>', "not a readable image"),
        "video.mp4": (b"\0\0\0\x18ftypmp42" + b"\0" * 200, "not a readable image"),
        "phone.heic": (b"\0\0\0\x18ftypheic" + b"\0" * 200, "not a readable image"),
        "one-pixel.png": (_pil(Image.new("RGB", (1, 1)), "PNG"), "too small"),
        "thin.png": (_pil(Image.new("RGB", (400, 15)), "PNG"), "too small"),
        "bomb.png": (_png_header_only(100_000, 100_000), "MP limit"),
        "wide-bomb.png": (_png_header_only(5_000_000, 16), "MP limit"),
        "float.tif": (_pil(Image.fromarray(FACE[..., 0].astype(np.float32)), "TIFF"), "floating-point"),
        "plain.jpg": (jpeg, "ok"),
        "plain-png.png": (png, "ok"),
        "png-named.jpg": (png, "ok"),
        "rotated.jpg": (_pil(face, "JPEG", exif=exif.tobytes()), "ok"),
        "grey.jpg": (_pil(face.convert("L"), "JPEG"), "ok"),
        "bilevel.png": (_pil(face.convert("1"), "PNG"), "ok"),
        "palette.png": (_pil(face.convert("P"), "PNG"), "ok"),
        "palette-transparent.png": (_pil(face.convert("P"), "PNG", transparency=0), "ok"),
        "cmyk.jpg": (_pil(face.convert("CMYK"), "JPEG"), "ok"),
        "transparent.png": (_pil(Image.fromarray(rgba), "PNG"), "ok"),
        "grey-alpha.png": (_pil(Image.fromarray(rgba).convert("LA"), "PNG"), "ok"),
        "invisible.png": (_pil(Image.fromarray(np.dstack([FACE, np.zeros(FACE.shape[:2], np.uint8)])), "PNG"),
                          "ok"),
        "deep.png": (deep, "ok"),
        "deep-alpha.png": (deep_rgba, "ok"),
        "deep-grey.png": (cv2.imencode(".png", FACE[..., 0].astype(np.uint16) * 257)[1].tobytes(), "ok"),
        "animated.gif": (_pil(frames[0], "GIF", save_all=True, append_images=frames[1:]), "ok"),
        "pages.tif": (_pil(frames[0], "TIFF", save_all=True, append_images=frames[1:]), "ok"),
        "lossless.webp": (_pil(face, "WEBP", lossless=True), "ok"),
        "old.bmp": (_pil(face, "BMP"), "ok"),
        "big-text-chunk.png": (png[:33] + _png_chunk(b"tEXt", b"Comment\0" + b"x" * 1_000_000) + png[33:], "ok"),
        "wide.png": (_pil(Image.fromarray(cv2.resize(FACE, (3000, 40))), "PNG"), "ok"),  # 256x3 for the nets
        "фото с пробелом 'é'.jpg": (jpeg, "ok"),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    for name, (data, _) in _corpus().items():
        (folder / name).write_bytes(data)
    return folder


CASES = list(_corpus())


@pytest.mark.parametrize("name", CASES)
def test_cli_on_a_hostile_file(corpus, bundle, tmp_path, run_cli, name):
    expected = _corpus()[name][1]
    src = tmp_path / name
    shutil.copy(corpus / name, src)
    before = src.read_bytes()
    res = run_cli(["deblur", str(src), "-o", str(tmp_path / "out"), "--aligned", "--weights", str(bundle),
                   "--save-mask"])
    assert "Traceback" not in res.err and src.read_bytes() == before  # the input is never touched
    if expected == "ok":
        assert res.code == 0, res.err
        outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert len(outputs) == 2 and all(not o.startswith(".") for o in outputs)  # the set, no temp files
        result = Image.open(tmp_path / "out" / outputs[0] if "_mask" not in outputs[0] else
                            tmp_path / "out" / outputs[1])
        result.load()
        upright = Image.open(src)
        assert result.size == (upright.size if name != "rotated.jpg" else upright.size[::-1])
    else:
        assert res.code == 1
        errors = [line for line in res.err.splitlines() if name in line and "error" not in line.split(":")[0]]
        assert len(errors) == 1 and expected in errors[0], res.err  # one line naming the file, with the reason
        assert not (tmp_path / "out").exists()  # nothing written, not even the folder


def test_a_folder_of_hostile_files_goes_on_and_reports_each_once(corpus, bundle, tmp_path, run_cli):
    folder = tmp_path / "in"
    shutil.copytree(corpus, folder)
    res = run_cli(["deblur", str(folder), "-o", str(tmp_path / "out"), "--aligned", "--weights", str(bundle)])
    assert res.code == 1 and "Traceback" not in res.err
    left_out = ("mp4", "heic", "gif")  # a folder run reads the image suffixes only, and says what it left out
    bad = [n for n, (_, e) in _corpus().items() if e != "ok" and n.rsplit(".", 1)[-1] not in left_out]
    good = [n for n, (_, e) in _corpus().items() if e == "ok" and n.rsplit(".", 1)[-1] not in left_out]
    assert f"{len(bad)} of {len(bad) + len(good)} inputs failed" in res.err
    assert "left out 3 file(s) that are not images smfd reads (.gif, .heic, .mp4)" in res.err
    for name in bad:  # each named once, with its reason
        assert sum(f"{os.sep}{name}:" in line for line in res.err.splitlines()) == 1, name
    assert len(list((tmp_path / "out").iterdir())) == len(good)


def test_a_name_too_long_for_an_output_fails_that_input_only(bundle, tmp_path, run_cli):
    long = tmp_path / ("f" * 240 + ".jpg")
    shutil.copy(samples_dir() / "images" / "00004.jpg", long)
    shutil.copy(samples_dir() / "images" / "00004.jpg", tmp_path / "short.jpg")
    res = run_cli(["deblur", str(long), str(tmp_path / "short.jpg"), "-o", str(tmp_path / "out"), "--aligned",
                   "--weights", str(bundle), "--side-by-side"])
    assert res.code == 1 and "cannot write" in res.err and "1 of 2 inputs failed" in res.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["short.jpg", "short_side_by_side.png"]


# --- the Python API -----------------------------------------------------------------------------------------------

API_IMAGES = {
    "none": None, "list": [[1, 2, 3]], "string": "photo.jpg", "float": FACE.astype(np.float32),
    "uint16": FACE.astype(np.uint16), "grey": FACE[..., 0], "rgba": np.dstack([FACE, FACE[..., :1]]),
    "4d": FACE[None], "empty": np.zeros((0, 0, 3), np.uint8), "two channels": FACE[..., :2],
    "bool": FACE > 128, "int64": FACE.astype(np.int64),
}


@pytest.fixture(scope="module")
def pipe(bundle):
    import smfd

    return smfd.load_pipeline(str(bundle))


@pytest.mark.parametrize("kind", list(API_IMAGES))
@pytest.mark.parametrize("aligned", [True, False])
def test_api_refuses_what_is_not_an_rgb_uint8_image(pipe, kind, aligned):
    with pytest.raises(ValueError, match="image must be HxWx3 uint8") as e:
        pipe.deblur(API_IMAGES[kind], aligned=aligned)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", [k for k in API_IMAGES if k not in ("none", "string")])
def test_api_restore_faces_refuses_bad_crops(pipe, kind):
    with pytest.raises(ValueError, match="image must be HxWx3 uint8"):
        pipe.restore_faces([API_IMAGES[kind]])


@pytest.mark.parametrize("keep, words", [
    ("beard", "unknown region 'beard'"), ("hair,,beard", "unknown region 'beard'"), ([9], "unknown class id 9"),
    ([-1], "unknown class id -1"), (("hair", 7), "unknown class id 7"),
])
def test_api_keep_names_what_is_wrong(pipe, keep, words):
    with pytest.raises(ValueError, match=words):
        pipe.deblur(FACE, aligned=True, keep=keep)


@pytest.mark.parametrize("call", ["keep=True", "restore_faces(None)", "weights=None", "device=cuda",
                                  "manifest [1,2,3]"])
def test_api_bad_arguments_are_one_clear_error(pipe, bundle, call, tmp_path):
    import torch

    import smfd

    if call == "device=cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is here")
    words = {"keep=True": "keep must be", "restore_faces(None)": "faces must be", "weights=None": "weights must be",
             "device=cuda": "no CUDA device", "manifest [1,2,3]": "not an smfd weights manifest"}[call]
    with pytest.raises(ValueError, match=words) as info:
        if call == "keep=True":
            pipe.deblur(FACE, aligned=True, keep=True)
        elif call == "restore_faces(None)":
            pipe.restore_faces(None)
        elif call == "weights=None":
            smfd.load_pipeline(weights=None)
        elif call == "device=cuda":
            smfd.load_pipeline(str(bundle), device="cuda")
        else:
            shutil.copytree(bundle, tmp_path / "b")
            (tmp_path / "b" / "manifest.json").write_text("[1, 2, 3]")
            smfd.load_pipeline(str(tmp_path / "b"))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, words", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": -3}, "batch_size"), ({"precision": "fp8"}, "precision"),
    ({"backend": "tensorrt"}, "backend"), ({"weights": "/nonexistent/bundle"}, "nonexistent"),
])
def test_load_pipeline_names_the_bad_argument(bundle, kwargs, words):
    import smfd

    args = {"weights": str(bundle), **kwargs}
    with pytest.raises((ValueError, FileNotFoundError), match=words):
        smfd.load_pipeline(**args)


@pytest.mark.parametrize("name", CASES)
def test_open_photo_gives_an_image_or_one_line(corpus, name):
    from smfd.infer.photo_io import open_photo

    expected = _corpus()[name][1]
    if expected == "ok":
        photo = open_photo(corpus / name)
        assert photo.image.dtype == np.uint8 and photo.image.ndim == 3 and photo.image.shape[2] == 3
    else:
        with pytest.raises(ValueError, match=expected) as e:
            open_photo(corpus / name)
        assert str(corpus / name) in str(e.value) and "\n" not in str(e.value)


def test_open_photo_on_missing_paths_and_folders(tmp_path):
    from smfd.infer.photo_io import open_photo

    with pytest.raises(FileNotFoundError, match="no such file"):
        open_photo(tmp_path / "missing.jpg")
    with pytest.raises(FileNotFoundError, match="no such file"):
        open_photo(tmp_path)
    if hasattr(os, "symlink"):
        (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
        with pytest.raises(FileNotFoundError, match="dangling.jpg: no such file"):
            open_photo(tmp_path / "dangling.jpg")


# --- the HTTP endpoint ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(pipe):
    pytest.importorskip("gradio")
    import socket

    from smfd.app import serve

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = serve(pipe, port=port, block=False)
    yield app
    app.close()


@pytest.mark.parametrize("name", CASES)
def test_http_on_a_hostile_file(corpus, server, name):
    import httpx

    expected = _corpus()[name][1]
    data = (corpus / name).read_bytes()
    r = httpx.post(f"{server.url}/api/deblur", params={"aligned": "true"}, files={"file": (name, data)}, timeout=120)
    assert list((server.work_dir / "uploads").iterdir()) == []  # the upload is gone, whatever happened
    if expected == "ok":
        assert r.status_code == 200, r.text
        back = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert back is not None and back.shape[:2] == Image.open(corpus / name).size[::-1] or name == "rotated.jpg"
        if name.startswith("deep"):
            assert back.dtype == np.uint16  # 16 bits in, 16 bits out
        if name in ("transparent.png", "invisible.png", "deep-alpha.png", "grey-alpha.png"):
            assert back.shape[2] == 4  # the alpha channel is put back
    else:
        code = 415 if expected.startswith("not a readable") else 400
        assert r.status_code == code and list(r.json()) == ["error"], r.text
        assert r.json()["error"].startswith(f"{name}: ") and expected in r.text and "\n" not in r.json()["error"]
