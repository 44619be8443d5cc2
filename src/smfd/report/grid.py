"""Side-by-side comparison grids (e.g. sharp | blurry | output) with column titles."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def label_tile(img: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``img`` with ``text`` in white on a dark box in its bottom-left corner (e.g. a tile's PSNR)."""
    img = np.ascontiguousarray(img).copy()
    (w, h), base = cv2.getTextSize(text, _FONT, 0.55, 1)
    y = img.shape[0] - 8
    cv2.rectangle(img, (2, y - h - 4), (10 + w, y + base), (0, 0, 0), cv2.FILLED)
    cv2.putText(img, text, (6, y), _FONT, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def make_grid(
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str] | None = None,
    *,
    tile: int = 256,
    gap: int = 4,
    background: int = 255,
) -> np.ndarray:
    """Arrange RGB uint8 images in a grid, each resized to ``tile`` px high, with optional column titles.

    Args:
        rows: one sequence of images per row; all rows have the same number of columns.
        titles: one title per column, drawn above the first row.

    Returns:
        RGB uint8 image.
    """
    if not rows:
        raise ValueError("rows is empty: nothing to draw")
    ncol = len(rows[0])
    if any(len(r) != ncol for r in rows):
        raise ValueError("every row must have the same number of images")
    if titles is not None and len(titles) != ncol:
        raise ValueError(f"got {len(titles)} titles for {ncol} columns")
    header = 28 if titles else 0
    width = ncol * tile + (ncol + 1) * gap
    height = header + len(rows) * tile + (len(rows) + 1) * gap
    canvas = np.full((height, width, 3), background, np.uint8)
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            if im.ndim == 2:
                im = np.repeat(im[..., None], 3, axis=2)
            im = cv2.resize(im, (tile, tile), interpolation=cv2.INTER_AREA if im.shape[0] > tile else cv2.INTER_NEAREST)
            y = header + gap + r * (tile + gap)
            x = gap + c * (tile + gap)
            canvas[y : y + tile, x : x + tile] = im
    for c, t in enumerate(titles or []):
        (tw, th), _ = cv2.getTextSize(t, _FONT, 0.6, 1)
        x = gap + c * (tile + gap) + max(0, (tile - tw) // 2)
        cv2.putText(canvas, t, (x, header - 8), _FONT, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return canvas


def side_by_side(images: Sequence[np.ndarray], titles: Sequence[str], *, max_height: int = 768,
                 gap: int = 6) -> np.ndarray:
    """Images of one size next to each other with titles above, keeping the aspect ratio (for whole photos)."""
    h, w = images[0].shape[:2]
    scale = min(1.0, max_height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    tiles = []
    for im in images:
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        tiles.append(cv2.resize(im, size, interpolation=cv2.INTER_AREA) if scale < 1 else im)
    header = 28
    canvas = np.full((header + size[1] + gap, len(tiles) * (size[0] + gap) + gap, 3), 255, np.uint8)
    for i, (t, title) in enumerate(zip(tiles, titles, strict=True)):
        x = gap + i * (size[0] + gap)
        canvas[header : header + size[1], x : x + size[0]] = t
        cv2.putText(canvas, title, (x + 4, header - 8), _FONT, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return canvas
