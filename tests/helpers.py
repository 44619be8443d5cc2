"""Test helpers shared by several test modules (tests/ is on the pytest pythonpath)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_face_folder(root: Path, n: int = 6, size: int = 48, seed: int = 0) -> Path:
    """A folder in the smfd layout: smooth random colour images and blocky 5-class masks."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        mask = cv2.resize(rng.integers(0, 5, (4, 4), dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(root / "images" / f"{i:05d}.png"), img)
        cv2.imwrite(str(root / "masks" / f"{i:05d}.png"), mask)
    return root


TINY_MODEL = ("model.kwargs={encoder_channels: [8, 16, 16, 16], decoder_channels: [16, 16, 8], head_channels: 8,"
              " growth: 4, num_layers: 2}")


def tiny_args(epochs: int = 2, extra: tuple = ()) -> list[str]:
    """CLI options for a tiny, fast training run on 32 px faces."""
    return ["--set", f"epochs={epochs}", "--set", "batch_size=4", "--set", "data.size=32", "--set",
            "data.num_workers=0", "--set", TINY_MODEL, *extra]
