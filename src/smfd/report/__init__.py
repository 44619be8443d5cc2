"""Pictures and tables for people: side-by-side grids, mask colours, training curves, feature maps."""

from .grid import label_tile, make_grid
from .palette import PALETTE, colorize_mask

__all__ = ["PALETTE", "colorize_mask", "label_tile", "make_grid"]
