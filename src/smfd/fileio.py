"""Atomic writes, gzip'd tables and file hashing: the bottom layer every other part of smfd writes and checks files
with (it imports nothing from smfd), so the imports between the packages point one way."""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: a reader never sees a partial file, and a
    failed write leaves the old one (if any) in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes private files; outputs get normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_gzip(path: str | os.PathLike, data: bytes) -> None:
    """:func:`atomic_write_bytes` of ``data`` gzip'd, the same bytes for the same data (no time or name in the
    header), so a kept table that did not change leaves git's tree as it was."""
    atomic_write_bytes(path, gzip.compress(data, compresslevel=9, mtime=0))


def read_text_or_gz(path: str | os.PathLike) -> str:
    """The text of ``path``, or of ``path.gz`` where only the gzip'd copy is kept (tables kept beside results);
    FileNotFoundError naming ``path`` when neither is there, ValueError naming a damaged ``path.gz``."""
    path = Path(path)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    packed = path.with_name(path.name + ".gz")
    if packed.is_file():
        try:
            return gzip.decompress(packed.read_bytes()).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise ValueError(f"{packed}: not a readable gzip'd text file ({e})") from None
    raise FileNotFoundError(f"{path}: not found")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["atomic_write_bytes", "atomic_write_gzip", "read_text_or_gz", "sha256_file"]
