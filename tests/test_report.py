import numpy as np
import pytest

from smfd.report import label_tile, make_grid


def test_label_tile_draws_in_the_bottom_left_on_a_copy():
    img = np.full((64, 96, 3), 128, np.uint8)
    out = label_tile(img, "21.3 dB")
    assert (img == 128).all()  # the input is left alone
    changed = (out != img).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.min() > 32 and xs.max() < 90  # box and text sit in the bottom-left corner
    assert (out[changed] == 0).any() and (out[changed] == 255).any()  # dark box, white text


def test_grid_places_tiles_and_checks_rows():
    red, blue = np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    grid = make_grid([[red, blue]], tile=32, gap=4)
    assert grid.shape == (32 + 8, 2 * 32 + 12, 3)
    assert tuple(grid[20, 20]) == (255, 0, 0) and tuple(grid[20, 56]) == (0, 0, 255)
    with pytest.raises(ValueError, match="same number"):
        make_grid([[red, blue], [red]])
