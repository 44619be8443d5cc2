"""Reading and writing images and label maps, with errors that name the file.

Images are RGB ``uint8`` arrays of shape ``(H, W, 3)``; label maps are ``uint8`` arrays ``(H, W)``.
Writes are atomic (temporary file in the same folder, then rename), so an interrupted run never leaves a
half-written image behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import BadImage, NotAnImage
from ..fileio import atomic_write_bytes  # noqa: F401  (re-exported: smfd.data.io.atomic_write_bytes)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _read_raw(path: str | os.PathLike, flags: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise BadImage("file is empty", path)
    # imdecode on bytes also handles non-ASCII paths, which cv2.imread does not on every platform
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, flags)
    if img is None:
        raise NotAnImage("not a readable image", path)
    return img


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit image as RGB ``uint8 (H, W, 3)``; grey images are repeated to three channels.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty or undecodable, or is 16-bit or has an alpha channel (we do not
            guess how to composite or rescale those).
    """
    img = _read_raw(path, cv2.IMREAD_UNCHANGED)
    if img.dtype != np.uint8:
        raise BadImage(f"expected an 8-bit image, got {img.dtype} (16-bit or float); convert it first", path)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        raise BadImage("image has an alpha channel (4 channels); save it as RGB", path)
    if img.shape[2] != 3:
        raise BadImage(f"expected 1 or 3 channels, got {img.shape[2]}", path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask(path: str | os.PathLike, num_classes: int = 5) -> np.ndarray:
    """Read a single-channel ``uint8`` label map with class ids ``0 .. num_classes - 1``."""
    m = _read_raw(path, cv2.IMREAD_UNCHANGED)
    if m.ndim == 3:
        if m.shape[2] >= 3 and np.array_equal(m[..., 0], m[..., 1]) and np.array_equal(m[..., 0], m[..., 2]):
            m = m[..., 0]  # a grey label map saved as RGB
        else:
            raise ValueError(f"{path}: mask must be a single-channel label map, got {m.shape[2]} channels")
    if m.dtype != np.uint8:
        raise ValueError(f"{path}: mask must be uint8 class ids, got {m.dtype}")
    hi = int(m.max())
    if hi >= num_classes:
        raise ValueError(f"{path}: mask has class id {hi}, expected ids 0..{num_classes - 1}")
    return np.ascontiguousarray(m)


def write_image(path: str | os.PathLike, image: np.ndarray, *, quality: int = 95) -> Path:
    """Atomically write an RGB ``(H, W, 3)`` or single-channel ``(H, W)`` uint8 image.

    The format follows the suffix (``.jpg`` at the given quality, ``.png`` lossless).
    """
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"image must be HxW or HxWx3 uint8, got {image.shape} {image.dtype}")
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, bgr, params)
    if not ok:
        raise ValueError(f"{path}: cannot encode an image with suffix {suffix!r}")
    atomic_write_bytes(path, buf.tobytes())
    return path


def list_images(folder: str | os.PathLike, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files (or files with other ``suffixes``) directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())


def expand_inputs(inputs: list[str], suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Files, folders (their files with ``suffixes``: images, not recursive) and glob patterns -> paths, in order,
    unique.

    Raises:
        FileNotFoundError: an input that is neither a file, a folder, nor a pattern matching something.
    """
    import glob

    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(list_images(p, suffixes))
        elif p.is_file():
            out.append(p)
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"{item}: pattern matches no files")
            out.extend(matches)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique
