"""Reading and writing user photos safely: every problem becomes one clear error naming the file, and what a
photo carries besides its pixels comes back with the result.

Read (:func:`open_photo`): EXIF orientation applied; grey and palette images converted to RGB, CMYK through
its ICC profile (littlecms) where it has one; transparency kept aside (``alpha``); 16-bit images kept at 16 bits
(``deep``) beside the 8-bit copy the nets run on. Refused with a message: empty, truncated or non-image files,
floating-point images, images smaller than ``MIN_SIDE`` and images over ``max_pixels`` (decompression-bomb guard:
the size is read from the header before anything is decoded).

Written (:func:`encode_photo`, :func:`save_photo`): the restored pixels with the input's EXIF (date, camera,
GPS...; orientation left out, as it is applied) and ICC profile, for JPEG and PNG, unless ``strip_metadata``;
the alpha channel put back (PNG); a 16-bit input written back at 16 bits (PNG), where every pixel the
restoration left alone keeps its exact 16-bit value.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from ..data.io import atomic_write_bytes
from ..errors import BadImage, BadOption, NotAnImage, OverLimit, SmfdError

MAX_PIXELS = 50_000_000
MIN_SIDE = 16
ORIENTATION = 0x0112  # EXIF tag


@dataclass
class Photo:
    """A photo as read: ``image`` RGB uint8 (H, W, 3), upright, for the nets; ``alpha`` (H, W) uint8 or uint16
    where the photo has transparency; ``deep`` RGB uint16 (H, W, 3) where it has 16 bits per channel; ``exif``
    (orientation removed) and ``icc_profile`` as bytes, or None; ``format`` as Pillow names it (``JPEG``...)."""

    image: np.ndarray
    alpha: np.ndarray | None = None
    deep: np.ndarray | None = None
    exif: bytes | None = None
    icc_profile: bytes | None = None
    format: str = ""


def _png_bit_depth(path: Path, im: Image.Image) -> int:
    """Bit depth from a PNG's IHDR chunk (Pillow silently narrows 16-bit colour PNGs to 8 bits)."""
    if im.format != "PNG":
        return 8
    with open(path, "rb") as f:
        header = f.read(25)
    return header[24] if len(header) == 25 else 8


def _upright(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an array, as ``ImageOps.exif_transpose`` does to a Pillow image."""
    turns = {3: 2, 6: 3, 8: 1, 5: 1, 7: 3}.get(orientation, 0)  # counter-clockwise quarter turns
    a = np.rot90(a, turns) if turns else a
    if orientation in (2, 5, 7):
        a = a[:, ::-1]
    elif orientation == 4:
        a = a[::-1]
    return np.ascontiguousarray(a)


def _read_deep(path: Path, orientation: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A 16-bit image as (RGB uint16 (H, W, 3), alpha uint16 (H, W) or None), upright (OpenCV reads 16 bits)."""
    raw = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16:
        got = "nothing" if raw is None else raw.dtype
        raise BadImage(f"cannot decode its 16-bit data (got {got})", path)
    alpha = None
    if raw.ndim == 2:
        rgb = np.repeat(raw[..., None], 3, axis=2)
    elif raw.shape[2] == 4:
        rgb, alpha = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB), raw[..., 3]
    elif raw.shape[2] == 2:  # grey + alpha
        rgb, alpha = np.repeat(raw[..., :1], 3, axis=2), raw[..., 1]
    else:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    rgb = _upright(rgb, orientation)
    return rgb, None if alpha is None or (alpha == 65535).all() else _upright(alpha, orientation)


def _to_rgb(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, bytes | None]:
    """Pixels as RGB uint8 and the ICC profile that still describes them (None once converted from another
    colour space)."""
    if im.mode == "CMYK" and icc:
        from PIL import ImageCms

        try:
            srgb = ImageCms.createProfile("sRGB")
            im = ImageCms.profileToProfile(im, io.BytesIO(icc), srgb, outputMode="RGB")
            return np.asarray(im).copy(), ImageCms.ImageCmsProfile(srgb).tobytes()
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: the plain conversion below
    keeps_profile = im.mode in ("RGB", "RGBA", "P", "PA", "RGBX")
    return np.array(im if im.mode == "RGB" else im.convert("RGB")), icc if keeps_profile else None


def open_photo(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Photo:
    """Read a photo and what it carries (see :class:`Photo`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise BadImage("file is empty", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
            warnings.simplefilter("ignore", UserWarning)  # a damaged file's decoder notes: it reads or is refused
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise OverLimit(f"{w}x{h} is over the {max_pixels / 1e6:g} MP limit", path)
                if min(w, h) < MIN_SIDE:
                    raise BadImage(f"{w}x{h} is too small (at least {MIN_SIDE} px a side)", path)
                if im.mode == "F" or (im.mode == "I" and im.format not in ("PNG", "TIFF")):
                    raise BadImage(f"a floating-point or 32-bit image ({im.mode}); smfd reads 8 and 16 bits per "
                                   "channel: save it as 8 or 16 bits first", path)
                fmt = im.format or ""
                orientation = im.getexif().get(ORIENTATION, 1)
                deep_file = im.mode.startswith("I") or _png_bit_depth(path, im) == 16
                im.load()
                upright = ImageOps.exif_transpose(im)
                exif, icc = upright.info.get("exif") or None, upright.info.get("icc_profile") or None
                if deep_file:
                    deep, alpha = _read_deep(path, orientation)
                    image = narrow(deep)
                    return Photo(image, alpha, deep, exif, icc, fmt)
                alpha = None
                if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
                    a = np.asarray(upright.convert("RGBA"))[..., 3]
                    alpha = a.copy() if (a < 255).any() else None
                image, icc = _to_rgb(upright, icc)
                return Photo(image, alpha, None, exif, icc, fmt)
    except Image.DecompressionBombError:
        raise OverLimit(f"image is over the {max_pixels / 1e6:g} MP limit", path) from None
    except Image.UnidentifiedImageError:
        raise NotAnImage("not a readable image", path) from None
    except SmfdError:
        raise
    except _DAMAGED as e:  # truncated data, broken headers and chunks: what decoders raise on damaged files
        raise BadImage(f"cannot decode image ({_reason(e)})", path) from None


#: What Pillow's decoders raise on damaged files, besides OSError (found by benchmarks/fuzz_inputs.py)
_DAMAGED = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError,
            OverflowError, MemoryError, struct.error)


def _reason(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__  # one line, whatever the decoder wrote
    return text if len(text) <= 120 else text[:117] + "..."


def read_photo(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo as RGB ``uint8 (H, W, 3)``, upright (16 bits narrowed, transparency left out)."""
    return open_photo(path, max_pixels=max_pixels).image


def narrow(deep: np.ndarray) -> np.ndarray:
    """A 16-bit image as the 8-bit one the nets run on (rounded)."""
    return ((deep.astype(np.uint32) + 128) // 257).astype(np.uint8)


def deepen(deep: np.ndarray, image: np.ndarray, restored: np.ndarray, rows: int = 512) -> np.ndarray:
    """The 16-bit original ``deep`` plus the restoration's change (``restored`` - ``image``, its 8-bit copy), in
    bands of rows (bounded memory): pixels the restoration left alone keep their exact 16-bit values."""
    out = np.empty_like(deep)
    for y in range(0, out.shape[0], rows):
        change = restored[y : y + rows].astype(np.int32) - image[y : y + rows]
        band = deep[y : y + rows].astype(np.int32) + change * 257
        out[y : y + rows] = np.clip(band, 0, 65535)
    return out


def encode_photo(photo: Photo, restored: np.ndarray, fmt: str, *, strip_metadata: bool = False,
                 quality: int = 95) -> bytes:
    """The restored RGB uint8 image as ``fmt`` (``jpg`` or ``png``) bytes, with what ``photo`` carried: EXIF and
    ICC profile (unless ``strip_metadata``), alpha (PNG) and 16 bits (PNG)."""
    if fmt not in ("jpg", "png"):
        raise BadOption(f"format must be jpg or png, got {fmt!r}")
    if restored.shape != photo.image.shape:
        raise ValueError(f"restored image must match the photo, got {restored.shape} for {photo.image.shape}")
    meta = {} if strip_metadata else {k: v for k, v in (("exif", photo.exif), ("icc_profile", photo.icc_profile))
                                      if v}
    if fmt == "png" and photo.deep is not None:
        # Pillow cannot write 16-bit colour: OpenCV writes the PNG, without EXIF or ICC (see the README)
        deep = deepen(photo.deep, photo.image, restored)
        if photo.alpha is not None:
            a = photo.alpha if photo.alpha.dtype == np.uint16 else photo.alpha.astype(np.uint16) * 257
            bgr = cv2.cvtColor(np.dstack([deep, a]), cv2.COLOR_RGBA2BGRA)
        else:
            bgr = cv2.cvtColor(deep, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png", bgr)
        if not ok:
            raise ValueError("cannot encode the 16-bit result")
        return buf.tobytes()
    im = Image.fromarray(restored)
    if fmt == "png" and photo.alpha is not None:
        alpha = photo.alpha if photo.alpha.dtype == np.uint8 else np.round(photo.alpha / 257.0).astype(np.uint8)
        im = Image.fromarray(np.dstack([restored, alpha]))
    buf = io.BytesIO()
    if fmt == "jpg":
        im.save(buf, "JPEG", quality=quality, **meta)
    else:
        im.save(buf, "PNG", compress_level=6, **meta)
    return buf.getvalue()


JPEG_SUFFIXES = (".jpg", ".jpeg")
JPEG_FORMATS = ("JPEG", "MPO")  # MPO: a phone's JPEG with a second picture inside


def save_photo(path: str | os.PathLike, photo: Photo, restored: np.ndarray, *, strip_metadata: bool = False,
               quality: int = 95) -> Path:
    """Atomically write :func:`encode_photo`'s bytes; the format follows the suffix (.jpg/.jpeg or .png)."""
    path = Path(path)
    fmt = "jpg" if path.suffix.lower() in JPEG_SUFFIXES else "png"
    atomic_write_bytes(path, encode_photo(photo, restored, fmt, strip_metadata=strip_metadata, quality=quality))
    return path


def stored_format(path: str | os.PathLike) -> str:
    """The format a file holds, as Pillow names it (``JPEG``, ``PNG``...), read from its header only; ``""`` where
    it cannot be read (:func:`open_photo` then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return im.format or ""
    except (*_DAMAGED, Image.DecompressionBombError):
        return ""


def output_suffix(suffix: str, choice: str = "keep", stored: str = "") -> str:
    """The one output-format rule: ``.jpg``/``.png`` if ``choice`` names one; else a JPEG keeps its own suffix
    (``.jpeg`` stays ``.jpeg``) and anything else becomes ``.png``. What a file is comes from its name, or from
    ``stored`` (:func:`stored_format`) where known: a PNG named ``.jpg`` is a PNG, and its transparency and 16 bits
    are kept. Known before the pixels are decoded, so a folder run can plan (and refuse to overwrite) every output
    first."""
    if choice in ("jpg", "png"):
        return f".{choice}"
    if choice != "keep":
        raise BadOption(f"format must be keep, jpg or png, got {choice!r}")
    jpeg = suffix.lower() in JPEG_SUFFIXES and (not stored or stored in JPEG_FORMATS)
    return suffix if jpeg else ".png"


def output_format(photo: Photo, suffix: str, choice: str = "keep") -> str:
    """``jpg`` or ``png`` for a result once the photo is read: :func:`output_suffix`'s rule, and a photo a JPEG
    cannot hold (transparent or 16-bit, whatever its name) becomes PNG unless ``choice`` asks for JPEG."""
    fmt = "jpg" if output_suffix(suffix, choice, photo.format).lower() in JPEG_SUFFIXES else "png"
    if choice == "keep" and (photo.alpha is not None or photo.deep is not None):
        return "png"
    return fmt


def lost_in_jpeg(photo: Photo) -> list[str]:
    """What a JPEG output of ``photo`` leaves out (its transparency, its 16 bits per channel), for a note."""
    return [what for what, there in (("transparency", photo.alpha is not None),
                                     ("16 bits per channel", photo.deep is not None)) if there]
