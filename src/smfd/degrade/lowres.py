"""Small, compressed faces brought up to the working size: group photos, CCTV and video frames.

A face 30-85 px across in the photo reaches the net as a 256 px crop: it was captured small (optionally a little
soft, with sensor noise), compressed at that size (JPEG, or the coarse, smoothed blocks of a video codec), and
then resized up, by smfd's own alignment or by an app that had already enlarged (and often sharpened and
re-saved) it. :class:`LowResPipeline` draws that chain; like the other families, sampling is separate from
applying, :class:`LowResParams` is plain data, and ``apply`` with logged params gives the same bytes again.

The chain, on the 256 px sharp face:

1. optional mild Gaussian blur (a small face is rarely in perfect focus);
2. downscale by ``scale`` (3-8, log-uniform: a 256 px face becomes 32-85 px) with area or bilinear resampling;
3. optional Gaussian read noise at that size;
4. compression at that size: ``jpeg`` (quality 20-90, 4:2:0 chroma as cameras and browsers save) or ``video``
   (what an H.264/HEVC frame looks like at a low bit rate: chroma at half resolution, coarse 8x8 quantisation
   (JPEG at quality 8-35) and the codec's in-loop deblocking, here a 3x3 smoothing across the block edges);
5. optional app upscale (``app_scale`` 1.5-3 with bicubic, an unsharp mask of ``sharpen`` 0.3-1.0 and a re-save
   as JPEG at quality 70-95), as photo and messaging apps hand faces on;
6. resize to the original side with ``up`` (bilinear, as smfd's alignment warp, or bicubic / Lanczos as apps do).

Example:
    >>> pipe = LowResPipeline()
    >>> small, params = pipe(sharp, np.random.default_rng(0))
    >>> again = pipe.apply(sharp, LowResParams.from_dict(params.to_dict()))  # byte-identical
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .realistic import face_scale_of, jpeg_roundtrip

CODECS = ("jpeg", "video")
_DOWN = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}
_UP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


@dataclass(frozen=True)
class LowResConfig:
    """Ranges of the low-resolution family (uniform unless said otherwise).

    Attributes:
        scale: downscale factor range (log-uniform); 3-8 makes a 256 px face 32-85 px across.
        blur_prob, blur_sigma: chance and sigma range (px, at full size) of a mild Gaussian blur first.
        noise_prob, noise_sigma: chance and range of Gaussian read noise at the small size (0-255 scale).
        video_prob: chance of video-codec compression instead of JPEG.
        jpeg_quality: JPEG quality range; video_quality: the (coarser) quantisation of a video frame.
        app_prob, app_scale, app_sharpen, app_quality: chance that an app enlarged the face first, by how much,
            how strongly it sharpened it (unsharp-mask amount) and the JPEG quality it saved it at.
    """

    scale: tuple[float, float] = (3.0, 8.0)
    blur_prob: float = 0.3
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    noise_prob: float = 0.5
    noise_sigma: tuple[float, float] = (1.0, 5.0)
    video_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (20, 90)
    video_quality: tuple[int, int] = (8, 35)
    app_prob: float = 0.3
    app_scale: tuple[float, float] = (1.5, 3.0)
    app_sharpen: tuple[float, float] = (0.3, 1.0)
    app_quality: tuple[int, int] = (70, 95)

    def __post_init__(self) -> None:
        for name in ("blur_prob", "noise_prob", "video_prob", "app_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("scale", "blur_sigma", "noise_sigma", "jpeg_quality", "video_quality", "app_scale",
                     "app_sharpen", "app_quality"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {(lo, hi)}")
        if self.scale[0] < 1 or self.app_scale[0] < 1:
            raise ValueError("scale and app_scale must be >= 1")
        for name in ("jpeg_quality", "video_quality", "app_quality"):
            lo, hi = getattr(self, name)
            if lo < 1 or hi > 100:
                raise ValueError(f"{name} must lie within 1..100, got {(lo, hi)}")


@dataclass(frozen=True)
class LowResParams:
    """Every random choice of one low-resolution degradation (0 means "not applied" for the optional steps)."""

    scale: float = 4.0
    down: str = "area"
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    noise_seed: int = 0
    codec: str = "jpeg"
    quality: int = 50
    app_scale: float = 0.0
    app_sharpen: float = 0.0
    app_quality: int = 0
    up: str = "linear"
    family: str = "lowres"
    face_scale: float = 1.0  # the face's side over 256: the blur is drawn this much wider (the rest is relative)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LowResParams:
        try:
            return cls(**d)
        except TypeError as e:
            raise ValueError(f"not a low-resolution params dict ({e}): {d!r}") from None


def _video_frame(x: np.ndarray, quality: int) -> np.ndarray:
    """A low-bit-rate video frame's look: coarse 8x8 quantisation, then the in-loop deblocking filter's smoothing
    of the block edges (a 3x3 blend applied on the rows and columns next to each 8 px boundary)."""
    y = jpeg_roundtrip(x, quality).astype(np.float32)
    smooth = cv2.blur(y, (3, 3), borderType=cv2.BORDER_REFLECT_101)
    edge = np.zeros(y.shape[:2], np.float32)
    for k in range(8, y.shape[0], 8):
        edge[k - 1 : k + 1, :] = 1
    for k in range(8, y.shape[1], 8):
        edge[:, k - 1 : k + 1] = 1
    if y.ndim == 3:
        edge = edge[..., None]
    return np.rint(y * (1 - edge) + smooth * edge).astype(np.uint8)


def _unsharp(x: np.ndarray, amount: float) -> np.ndarray:
    f = x.astype(np.float32)
    soft = cv2.GaussianBlur(f, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.rint(f + amount * (f - soft)), 0, 255).astype(np.uint8)


class LowResPipeline:
    """(blur) -> downscale -> (noise) -> JPEG or video frame -> (app upscale, sharpen, re-save) -> resize back, on
    uint8 or [0, 1] float images, grey or colour; returns the input's dtype and size."""

    def __init__(self, config: LowResConfig | None = None) -> None:
        self.config = config or LowResConfig()

    def sample(self, rng: np.random.Generator, face_size: int | None = None) -> LowResParams:
        """One draw; ``face_size`` (px) scales the blur, as in the realistic family (the downscale is relative)."""
        c = self.config
        scale = float(math.exp(rng.uniform(math.log(c.scale[0]), math.log(c.scale[1]))))
        down = str(rng.choice(sorted(_DOWN)))
        blur = float(rng.uniform(*c.blur_sigma)) if rng.uniform() < c.blur_prob else 0.0
        noise = float(rng.uniform(*c.noise_sigma)) if rng.uniform() < c.noise_prob else 0.0
        noise_seed = int(rng.integers(2**63 - 1))
        codec = "video" if rng.uniform() < c.video_prob else "jpeg"
        q_range = c.video_quality if codec == "video" else c.jpeg_quality
        quality = int(rng.integers(q_range[0], q_range[1] + 1))
        app = rng.uniform() < c.app_prob
        app_scale = float(rng.uniform(*c.app_scale)) if app else 0.0
        app_sharpen = float(rng.uniform(*c.app_sharpen)) if app else 0.0
        app_quality = int(rng.integers(c.app_quality[0], c.app_quality[1] + 1)) if app else 0
        up = str(rng.choice(sorted(_UP)))
        return LowResParams(scale, down, blur, noise, noise_seed, codec, quality, app_scale, app_sharpen,
                            app_quality, up, face_scale=face_scale_of(face_size))

    def apply(self, image: np.ndarray, params: LowResParams) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            raise ValueError(f"image must be an HxW or HxWxC numpy array, got {getattr(image, 'shape', image)!r}")
        is_uint8 = image.dtype == np.uint8
        if not is_uint8 and image.dtype not in (np.float32, np.float64):
            raise ValueError(f"image must be uint8 (0-255) or float in [0, 1], got {image.dtype}")
        if params.codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}, got {params.codec!r}")
        x = image if is_uint8 else np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
        squeeze = x.ndim == 3 and x.shape[2] == 1
        if squeeze:
            x = x[..., 0]
        h, w = x.shape[:2]
        f = x.astype(np.float32)
        if params.blur_sigma > 0:
            f = cv2.GaussianBlur(f, (0, 0), params.blur_sigma * params.face_scale, borderType=cv2.BORDER_REFLECT_101)
        small = (max(8, round(w / params.scale)), max(8, round(h / params.scale)))
        f = cv2.resize(f, small, interpolation=_DOWN[params.down])
        if params.noise_sigma > 0:
            rng = np.random.default_rng(params.noise_seed)
            f += np.float32(params.noise_sigma) * rng.standard_normal(f.shape, dtype=np.float32)
        x = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        x = _video_frame(x, params.quality) if params.codec == "video" else jpeg_roundtrip(x, params.quality)
        if params.app_scale > 0:
            big = (round(small[0] * params.app_scale), round(small[1] * params.app_scale))
            x = cv2.resize(x, big, interpolation=cv2.INTER_CUBIC)
            x = jpeg_roundtrip(_unsharp(x, params.app_sharpen), params.app_quality)
        x = cv2.resize(x, (w, h), interpolation=_UP[params.up])
        if squeeze:
            x = x[..., None]
        if is_uint8:
            return np.ascontiguousarray(x)
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(255.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator, face_size: int | None = None
                 ) -> tuple[np.ndarray, LowResParams]:
        params = self.sample(rng, face_size)
        return self.apply(image, params), params
