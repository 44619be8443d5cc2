"""Colours of the 5 mask classes (the SynthFace preview's legend)."""

from __future__ import annotations

import numpy as np

#: background, skin, features, hair, wearables
PALETTE = np.array([[0, 0, 0], [235, 200, 165], [210, 40, 40], [110, 65, 30], [40, 90, 220]], dtype=np.uint8)


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """Class ids (H, W) -> RGB uint8 (H, W, 3); ids beyond the palette wrap around."""
    return PALETTE[np.asarray(mask).astype(np.int64) % len(PALETTE)]
