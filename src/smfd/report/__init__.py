"""Pictures and tables for people: side-by-side grids."""

from .grid import make_grid

__all__ = ["make_grid"]
