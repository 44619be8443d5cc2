"""Blur kernels of the SMFD degradation pipeline (thesis §3.4.1).

Every kernel is a float32 2-D array of odd size that sums to 1, so a blur keeps the mean intensity
of an image and a constant image stays constant.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Motion directions in the order the thesis lists them.
DIRECTIONS = ("horizontal", "vertical", "diagonal", "anti_diagonal")


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size!r}")


def gaussian_sigma(size: int) -> float:
    """The sigma OpenCV derives from a kernel size when sigma is 0.

    ``0.3 * ((size - 1) * 0.5 - 1) + 0.8`` (documented for ``cv2.getGaussianKernel``).
    """
    _check_size(size)
    return 0.3 * ((size - 1) * 0.5 - 1) + 0.8


def gaussian_kernel(size: int) -> np.ndarray:
    """Isotropic Gaussian kernel of ``size x size`` with OpenCV's sigma rule (sigma from size).

    Shape:
        ``(size, size)``, float32, sums to 1.
    """
    _check_size(size)
    k1 = cv2.getGaussianKernel(size, 0, ktype=cv2.CV_64F)  # sigma=0: OpenCV's rule, as the thesis
    k2 = k1 @ k1.T
    return (k2 / k2.sum()).astype(np.float32)


def motion_kernel(size: int, direction: str) -> np.ndarray:
    """Linear motion kernel: a normalised line of ``size`` pixels through the centre.

    ``diagonal`` runs from top-left to bottom-right, ``anti_diagonal`` from top-right to bottom-left.

    Shape:
        ``(size, size)``, float32, sums to 1.
    """
    _check_size(size)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    k = np.zeros((size, size), np.float32)
    c = size // 2
    if direction == "horizontal":
        k[c, :] = 1.0
    elif direction == "vertical":
        k[:, c] = 1.0
    elif direction == "diagonal":
        np.fill_diagonal(k, 1.0)
    else:
        np.fill_diagonal(np.fliplr(k), 1.0)
    return k / k.sum()
