"""Reading user photos safely: every problem becomes one clear error naming the file.

Handled: EXIF orientation (applied), grey, palette and CMYK images (converted to RGB), opaque RGBA (alpha
dropped). Rejected with a message: empty, truncated or non-image files, 16-bit and float images, images with
real transparency, images smaller than ``MIN_SIDE`` and images over ``MAX_PIXELS`` (decompression-bomb guard:
the size is read from the header before anything is decoded).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 50_000_000
MIN_SIDE = 16


def _png_bit_depth(path: Path, im: Image.Image) -> int:
    """Bit depth from a PNG's IHDR chunk (Pillow silently narrows 16-bit colour PNGs to 8 bits)."""
    if im.format != "PNG":
        return 8
    with open(path, "rb") as f:
        header = f.read(25)
    return header[24] if len(header) == 25 else 8


def read_photo(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo as RGB ``uint8 (H, W, 3)``, upright."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ValueError(f"{path}: {w}x{h} is over the {max_pixels / 1e6:.0f} MP limit")
                if min(w, h) < MIN_SIDE:
                    raise ValueError(f"{path}: {w}x{h} is too small (at least {MIN_SIDE} px a side)")
                if im.mode in ("I;16", "I;16B", "I;16L", "I", "F") or _png_bit_depth(path, im) == 16:
                    raise ValueError(f"{path}: a 16-bit or floating-point image ({im.mode}); smfd reads 8 bits "
                                     "per channel (RGB, grey or palette): save it as 8-bit first")
                im.load()
                im = ImageOps.exif_transpose(im)
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    rgba = np.asarray(im.convert("RGBA"))
                    if (rgba[..., 3] < 255).any():
                        raise ValueError(f"{path}: image has transparency; flatten it onto a background first")
                    return np.ascontiguousarray(rgba[..., :3])
                return np.asarray(im.convert("RGB")).copy()
    except Image.DecompressionBombError:
        raise ValueError(f"{path}: image is over the {max_pixels / 1e6:.0f} MP limit") from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"{path}: not a readable image") from None
    except OSError as e:  # truncated data and decoder errors
        raise ValueError(f"{path}: cannot decode image ({e})") from None
