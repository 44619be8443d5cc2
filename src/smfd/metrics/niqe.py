"""NIQE, the no-reference Natural Image Quality Evaluator (Mittal et al., 2013). Lower is better.

Follows the published algorithm and its MATLAB reference: the image's luma (BT.601 Y, rounded as MATLAB's
uint8), mean-subtracted contrast-normalised (MSCN) coefficients under a 7x7 Gaussian window, per 96x96 patch
the generalized-Gaussian fit of the MSCN values and asymmetric generalized-Gaussian fits of four neighbour
products (18 features), the same at half resolution (MATLAB bicubic ``imresize`` with antialiasing), then the
Mahalanobis-like distance between the patches' feature Gaussian and the pristine model shipped in
``metrics/data/niqe_pris_params.npz``.

Images smaller than 192 px on a side give fewer than four patches and an unstable covariance; 256 px faces
give four. Values are comparable across methods on the same images, as in the thesis's tables.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib.resources import files

import cv2
import numpy as np

_BLOCK = 96
_GAMMAS = np.arange(0.2, 10.001, 0.001)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@lru_cache(maxsize=1)
def _pristine() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with files("smfd.metrics").joinpath("data/niqe_pris_params.npz").open("rb") as f:
        d = np.load(f)
        return d["mu_pris_param"].ravel(), d["cov_pris_param"], d["gaussian_window"]


@lru_cache(maxsize=1)
def _r_gamma() -> np.ndarray:
    lg = np.vectorize(math.lgamma)
    return np.exp(2 * lg(2 / _GAMMAS) - lg(1 / _GAMMAS) - lg(3 / _GAMMAS))


def _aggd(x: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalized Gaussian fit by moment matching: (shape alpha, left scale, right scale)."""
    x = x.ravel()
    left = math.sqrt(np.mean(x[x < 0] ** 2)) if np.any(x < 0) else 0.0
    right = math.sqrt(np.mean(x[x > 0] ** 2)) if np.any(x > 0) else 0.0
    if left == 0.0 or right == 0.0:
        return math.nan, math.nan, math.nan
    gamma_hat = left / right
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = float(_GAMMAS[np.argmin((_r_gamma() - r_norm) ** 2)])
    ratio = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, left * ratio, right * ratio


def _features(block: np.ndarray) -> list[float]:
    alpha, bl, br = _aggd(block)
    feats = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        alpha, bl, br = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (br - bl) * math.gamma(2 / alpha) / math.gamma(1 / alpha) if alpha == alpha else math.nan
        feats.extend([alpha, mean, bl, br])
    return feats


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))  # fmt: skip


def _resize_axis(img: np.ndarray, scale: float, axis: int) -> np.ndarray:
    """MATLAB ``imresize`` (bicubic, antialiased when shrinking) along one axis."""
    n_in = img.shape[axis]
    n_out = math.ceil(n_in * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, n_out + 1)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    idx = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    dist = u[:, None] - idx
    w = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    w /= w.sum(axis=1, keepdims=True)
    keep = np.any(w != 0, axis=0)
    w, idx = w[:, keep], idx[:, keep].astype(int) - 1
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])  # symmetric padding
    idx = mirror[np.mod(idx, len(mirror))]
    moved = np.moveaxis(img, axis, 0)
    out = np.einsum("ok,ok...->o...", w, moved[idx])
    return np.moveaxis(out, 0, axis)


def matlab_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB-compatible bicubic ``imresize(img, scale)`` of a 2-D float array."""
    return _resize_axis(_resize_axis(img.astype(np.float64), scale, 0), scale, 1)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 16-235 scale, rounded like MATLAB's uint8 ``rgb2ycbcr``."""
    x = image.astype(np.float64) / 255.0
    return np.round(x @ np.array([65.481, 128.553, 24.966]) + 16.0)


def niqe(image: np.ndarray) -> float:
    """NIQE of an RGB ``uint8 (H, W, 3)`` or grey ``(H, W)`` image (both sides at least 96 px)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"image must be HxW or HxWx3 uint8, got {image.shape} {image.dtype}")
    y = rgb_to_y(image) if image.ndim == 3 else image.astype(np.float64)
    mu_p, cov_p, window = _pristine()
    nh, nw = y.shape[0] // _BLOCK, y.shape[1] // _BLOCK
    if nh == 0 or nw == 0:
        raise ValueError(f"NIQE needs images of at least {_BLOCK}x{_BLOCK} px, got {y.shape[1]}x{y.shape[0]}")
    img = y[: nh * _BLOCK, : nw * _BLOCK]
    per_scale = []
    for scale in (1, 2):
        mu = cv2.filter2D(img, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
        var = cv2.filter2D(img * img, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE) - mu * mu
        mscn = (img - mu) / (np.sqrt(np.abs(var)) + 1)
        b = _BLOCK // scale
        per_scale.append(np.array([_features(mscn[i * b : (i + 1) * b, j * b : (j + 1) * b])
                                   for j in range(nw) for i in range(nh)]))
        if scale == 1:
            img = matlab_imresize(img / 255.0, 0.5) * 255.0
    feats = np.concatenate(per_scale, axis=1)
    clean = feats[~np.isnan(feats).any(axis=1)]
    if len(clean) == 0:  # flat patches (e.g. a constant image): the statistics are undefined
        return math.nan
    mu_d = np.nanmean(feats, axis=0)
    cov_d = np.cov(clean, rowvar=False) if len(clean) > 1 else np.zeros_like(cov_p)
    diff = mu_p - mu_d
    return float(np.sqrt(diff @ np.linalg.pinv((cov_p + cov_d) / 2) @ diff))
