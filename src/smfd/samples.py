"""The sample faces bundled with the package (SynthFace test-split faces, research use only)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def samples_dir() -> Path:
    """Folder with ``images/`` and ``masks/`` of the bundled sample faces (a :class:`FaceFolder`)."""
    return Path(str(files("smfd") / "assets" / "samples"))
