"""A realistic degradation family beside the thesis's: what phone and CCTV faces actually suffer.

One blur (camera shake from a random-walk trajectory, defocus disk, mild Gaussian or a short linear motion),
then optional down/up-scaling, Gaussian + Poisson sensor noise and JPEG; a share of faces is left clean, so a
net trained on it learns to leave sharp faces alone. As in the thesis pipeline, sampling is separate from
applying: :class:`RealisticParams` is plain data (the shake kernel is regenerated from its seed), so every
degradation can be logged as JSON and replayed byte for byte.

The camera-shake trajectories follow Boracchi and Foi ("Modeling the Performance of Image Restoration From
Motion Blur", IEEE TIP 2012), the generator DeblurGAN trains with: a 2-D random walk whose velocity is
pulled back towards the origin (the hand steadies), jittered by Gaussian noise and now and then reversed
(an abrupt shake); the path is drawn into a kernel with sub-pixel (bilinear) splatting.

Example:
    >>> pipe = RealisticPipeline()
    >>> blurry, params = pipe(sharp, np.random.default_rng(0))
    >>> again = pipe.apply(sharp, RealisticParams.from_dict(params.to_dict()))  # byte-identical
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

BLURS = ("none", "shake", "defocus", "gaussian", "motion")
#: The face size (px) the families' pixel ranges are defined at: the training faces' side. A face drawn at another
#: size (``face_size``) gets every blur scaled by ``face_size / REFERENCE_SIZE``, so a 512 px face gets a blur twice
#: as wide as a 256 px one: the same blur relative to the face.
REFERENCE_SIZE = 256
_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}


@dataclass(frozen=True)
class RealisticConfig:
    """Ranges of the realistic family (all sampled uniformly unless said otherwise).

    Attributes:
        clean_share: faces given no degradation at all (the net must return them unchanged).
        blur_weights: relative odds of shake, defocus, gaussian and motion blur for the other faces.
        shake_size: side range of camera-shake kernels (px, odd after rounding).
        defocus_radius: disk radius range (px).
        gaussian_sigma: sigma range of the mild Gaussian blur (px).
        motion_length: length range of the short linear motion (px), at any angle.
        scale_prob, scale_range: chance and factor range of down- then up-scaling.
        noise_prob, noise_sigma: chance and range of Gaussian read noise (0-255 scale).
        poisson_prob, poisson_peak: chance of shot noise and the log-uniform range of the photon count at white.
        jpeg_prob, jpeg_quality: chance and quality range of JPEG compression.
    """

    clean_share: float = 0.1
    blur_weights: tuple[float, float, float, float] = (0.4, 0.2, 0.2, 0.2)
    shake_size: tuple[int, int] = (9, 33)
    defocus_radius: tuple[float, float] = (1.0, 5.0)
    gaussian_sigma: tuple[float, float] = (0.4, 2.5)
    motion_length: tuple[float, float] = (3.0, 15.0)
    scale_prob: float = 0.3
    scale_range: tuple[float, float] = (1.0, 2.5)
    noise_prob: float = 0.6
    noise_sigma: tuple[float, float] = (0.5, 6.0)
    poisson_prob: float = 0.3
    poisson_peak: tuple[float, float] = (100.0, 3000.0)
    jpeg_prob: float = 0.7
    jpeg_quality: tuple[int, int] = (30, 95)

    def __post_init__(self) -> None:
        for name in ("clean_share", "scale_prob", "noise_prob", "poisson_prob", "jpeg_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if len(self.blur_weights) != 4 or min(self.blur_weights) < 0 or sum(self.blur_weights) <= 0:
            raise ValueError(f"blur_weights must be 4 non-negative odds, not all 0, got {self.blur_weights}")
        for name in ("shake_size", "defocus_radius", "gaussian_sigma", "motion_length", "scale_range", "noise_sigma",
                     "poisson_peak", "jpeg_quality"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {(lo, hi)}")
        if self.scale_range[0] < 1 or self.poisson_peak[0] <= 0 or not 1 <= self.jpeg_quality[0] <= 100 or \
                self.jpeg_quality[1] > 100:
            raise ValueError("scale_range must be >= 1, poisson_peak > 0 and jpeg_quality within 1..100")


@dataclass(frozen=True)
class RealisticParams:
    """Every random choice of one realistic degradation (``apply`` with the same params gives the same bytes).

    ``blur``: one of :data:`BLURS`; ``size``: the shake kernel side, the defocus radius, the Gaussian sigma or the
    motion length; ``angle``: the motion direction (degrees); ``kernel_seed``: the shake trajectory's seed.
    ``scale`` 1 means no rescaling, ``noise_sigma`` 0 no read noise, ``poisson_peak`` 0 no shot noise,
    ``jpeg_quality`` 0 no JPEG. ``face_scale``: the face's size over :data:`REFERENCE_SIZE`; the blur's ``size``
    is given at the reference size and drawn ``face_scale`` times as wide (noise and JPEG act per pixel, and
    ``scale`` is already relative to the face).
    """

    blur: str = "none"
    size: float = 0.0
    angle: float = 0.0
    kernel_seed: int = 0
    scale: float = 1.0
    interpolation: str = "linear"
    noise_sigma: float = 0.0
    poisson_peak: float = 0.0
    jpeg_quality: int = 0
    noise_seed: int = 0
    family: str = "realistic"
    face_scale: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RealisticParams:
        try:
            return cls(**d)
        except TypeError as e:
            raise ValueError(f"not a realistic-degradation params dict ({e}): {d!r}") from None

    def kernel(self) -> np.ndarray | None:
        """The blur kernel (float32, sums to 1), or None for no blur."""
        if self.blur == "none":
            return None
        size = self.size * self.face_scale
        if self.blur == "shake":
            return shake_kernel(int(self.size), np.random.default_rng(self.kernel_seed), scale=self.face_scale)
        if self.blur == "defocus":
            return defocus_kernel(size)
        if self.blur == "gaussian":
            return gaussian_blur_kernel(size)
        if self.blur == "motion":
            return line_kernel(size, self.angle)
        raise ValueError(f"blur must be one of {BLURS}, got {self.blur!r}")


# --- kernels ------------------------------------------------------------------------------------------------------


def _odd(n: float) -> int:
    n = max(1, int(math.ceil(n)))
    return n if n % 2 else n + 1


def shake_trajectory(steps: int, rng: np.random.Generator) -> np.ndarray:
    """A camera-shake path of ``steps`` complex positions, Boracchi-Foi style, of total length about ``steps``."""
    anxiety = 0.1 * rng.uniform()  # how strongly the path wanders
    centripetal = 0.7 * rng.uniform()  # pull back to the start
    big_shake = 0.2 * rng.uniform()  # chance per step of an abrupt reversal
    jitter = 10 * rng.uniform()
    speed = 1.0
    v = speed * np.exp(1j * rng.uniform(0, 2 * np.pi))
    x = np.zeros(steps, np.complex128)
    for t in range(steps - 1):
        dv = anxiety * (jitter * complex(rng.standard_normal(), rng.standard_normal()) - centripetal * x[t])
        if rng.uniform() < big_shake * anxiety:
            dv += 2 * v * np.exp(1j * (np.pi + rng.uniform(-0.5, 0.5)))
        v = v + dv * speed
        v = v / (abs(v) + 1e-12) * speed
        x[t + 1] = x[t] + v
    return x


def shake_kernel(size: int, rng: np.random.Generator, steps: int = 64, scale: float = 1.0, *,
                 points_per_step: int | None = None) -> np.ndarray:
    """A ``size x size`` camera-shake kernel: a random trajectory shrunk to fit the square (never stretched) and
    splatted bilinearly. ``scale``: the same shake for a face that many times the reference size: the fitted
    trajectory drawn ``scale`` times as wide in a square of ``size * scale`` (fitting the trajectory to the wider
    square instead would leave a short trajectory as short as it is, so a big face's shake would be milder).
    ``points_per_step``: the path is splatted from that many points per trajectory step; None: 4, times the scale
    rounded up, so neighbouring points lie at most about 0.25 px apart and join into a line, never a dotted one."""
    size = _odd(size)
    x = shake_trajectory(steps, rng)
    x = x - (x.real.min() + x.real.max()) / 2 - 1j * (x.imag.min() + x.imag.max()) / 2
    extent = max(np.ptp(x.real), np.ptp(x.imag), 1e-6)
    fit = min(1.0, (size - 2) / extent)
    if scale != 1:
        size = _odd(size * scale)
        fit = min(fit * scale, max(size - 2, 0) / extent)  # a smaller face's square may be too small for it
    x = x * fit + (size - 1) / 2 * (1 + 1j)
    k = np.zeros((size, size), np.float64)
    if points_per_step is not None and points_per_step < 1:
        raise ValueError(f"points_per_step must be >= 1, got {points_per_step}")
    n = steps * (points_per_step if points_per_step is not None else 4 * max(1, int(np.ceil(scale))))
    t = np.linspace(0, steps - 1, n)
    fine = np.interp(t, np.arange(steps), x.real) + 1j * np.interp(t, np.arange(steps), x.imag)
    for p in fine:
        c, r = p.real, p.imag
        c0, r0 = int(np.floor(c)), int(np.floor(r))
        fc, fr = c - c0, r - r0
        for dr, wr in ((0, 1 - fr), (1, fr)):
            for dc, wc in ((0, 1 - fc), (1, fc)):
                if 0 <= r0 + dr < size and 0 <= c0 + dc < size:
                    k[r0 + dr, c0 + dc] += wr * wc
    return (k / k.sum()).astype(np.float32)


def defocus_kernel(radius: float) -> np.ndarray:
    """An anti-aliased disk of ``radius`` px (out-of-focus blur), summing to 1."""
    size = _odd(2 * radius + 1)
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    k = np.clip(radius + 0.5 - np.hypot(yy - c, xx - c), 0, 1)
    return (k / k.sum()).astype(np.float32)


def gaussian_blur_kernel(sigma: float) -> np.ndarray:
    """An isotropic Gaussian of ``sigma`` px, 3 sigma each side, summing to 1."""
    size = _odd(6 * sigma + 1)
    k1 = cv2.getGaussianKernel(size, sigma, ktype=cv2.CV_64F)
    return (k1 @ k1.T / (k1 @ k1.T).sum()).astype(np.float32)


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A linear motion of ``length`` px at ``angle`` degrees, drawn anti-aliased (4x supersampled), summing to 1."""
    size = _odd(length + 2)
    s = 4
    big = np.zeros((size * s, size * s), np.float32)
    c = (size * s - 1) / 2
    dx, dy = math.cos(math.radians(angle)) * length * s / 2, math.sin(math.radians(angle)) * length * s / 2
    p0, p1 = (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy))
    cv2.line(big, p0, p1, 1.0, thickness=s, lineType=cv2.LINE_AA)
    k = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return (k / k.sum()).astype(np.float32)


def jpeg_roundtrip(x: np.ndarray, quality: int) -> np.ndarray:
    """JPEG encode and decode of a uint8 RGB ``(H, W, 3)`` or grey ``(H, W)`` image at ``quality`` (OpenCV's 4:2:0)."""
    colour = x.ndim == 3
    ok, buf = cv2.imencode(".jpg", x[..., ::-1] if colour else x, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    y = cv2.imdecode(buf, cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
    return np.ascontiguousarray(y[..., ::-1]) if colour else y


# --- the pipeline -------------------------------------------------------------------------------------------------


class RealisticPipeline:
    """blur -> (down/up-scale) -> Gaussian + Poisson noise -> clip -> (JPEG), on uint8 or [0, 1] float images,
    grey or colour; returns the input's dtype."""

    def __init__(self, config: RealisticConfig | None = None) -> None:
        self.config = config or RealisticConfig()

    def sample(self, rng: np.random.Generator, face_size: int | None = None) -> RealisticParams:
        """One draw; ``face_size`` (px, the face's side) scales the blur (:data:`REFERENCE_SIZE` if None)."""
        c = self.config
        face_scale = face_scale_of(face_size)
        if rng.uniform() < c.clean_share:
            return RealisticParams(noise_seed=int(rng.integers(2**63 - 1)), face_scale=face_scale)
        w = np.asarray(c.blur_weights, np.float64)
        blur = BLURS[1 + int(rng.choice(4, p=w / w.sum()))]
        size = {"shake": lambda: float(_odd(rng.uniform(*c.shake_size))),
                "defocus": lambda: float(rng.uniform(*c.defocus_radius)),
                "gaussian": lambda: float(rng.uniform(*c.gaussian_sigma)),
                "motion": lambda: float(rng.uniform(*c.motion_length))}[blur]()
        angle = float(rng.uniform(0, 180))
        kernel_seed = int(rng.integers(2**63 - 1))
        scale = float(rng.uniform(*c.scale_range)) if rng.uniform() < c.scale_prob else 1.0
        interpolation = str(rng.choice(sorted(_INTERP)))
        sigma = float(rng.uniform(*c.noise_sigma)) if rng.uniform() < c.noise_prob else 0.0
        peak = float(np.exp(rng.uniform(*np.log(c.poisson_peak)))) if rng.uniform() < c.poisson_prob else 0.0
        quality = int(rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1)) if rng.uniform() < c.jpeg_prob else 0
        return RealisticParams(blur, size, angle, kernel_seed, scale, interpolation, sigma, peak, quality,
                               int(rng.integers(2**63 - 1)), face_scale=face_scale)

    def apply(self, image: np.ndarray, params: RealisticParams) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            raise ValueError(f"image must be an HxW or HxWxC numpy array, got {getattr(image, 'shape', image)!r}")
        is_uint8 = image.dtype == np.uint8
        if not is_uint8 and image.dtype not in (np.float32, np.float64):
            raise ValueError(f"image must be uint8 (0-255) or float in [0, 1], got {image.dtype}")
        x = image.astype(np.float32) * (1.0 if is_uint8 else 255.0)
        squeeze = x.ndim == 3 and x.shape[2] == 1
        if squeeze:
            x = x[..., 0]
        k = params.kernel()
        if k is not None:
            x = cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT_101)
        h, w = x.shape[:2]
        if params.scale != 1.0:
            interp = _INTERP[params.interpolation]
            small = (max(1, round(w / params.scale)), max(1, round(h / params.scale)))
            x = cv2.resize(cv2.resize(x, small, interpolation=interp), (w, h), interpolation=interp)
        rng = np.random.default_rng(params.noise_seed)
        if params.poisson_peak > 0:
            x = rng.poisson(np.clip(x, 0, 255) / 255.0 * params.poisson_peak).astype(np.float32) * (
                255.0 / params.poisson_peak)
        if params.noise_sigma > 0:
            x += np.float32(params.noise_sigma) * rng.standard_normal(x.shape, dtype=np.float32)
        np.clip(x, 0.0, 255.0, out=x)
        if params.jpeg_quality or is_uint8:
            x = np.rint(x).astype(np.uint8)
        if params.jpeg_quality:
            x = jpeg_roundtrip(x, params.jpeg_quality)
        if squeeze:
            x = x[..., None]
        if is_uint8:
            return np.ascontiguousarray(x, dtype=np.uint8)
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(255.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator, face_size: int | None = None
                 ) -> tuple[np.ndarray, RealisticParams]:
        params = self.sample(rng, face_size)
        return self.apply(image, params), params


def face_scale_of(face_size: int | None) -> float:
    """A face's side over :data:`REFERENCE_SIZE` (1 for None): how much wider its blur is drawn."""
    if face_size is None:
        return 1.0
    if face_size < 1:
        raise ValueError(f"face_size must be a positive number of pixels, got {face_size}")
    return face_size / REFERENCE_SIZE


class MixedPipeline:
    """Each face degraded by the realistic family with chance ``share``, by ``lowres`` (if given) with chance
    ``lowres_share``, else by the thesis pipeline. One uniform draw picks the family, so a mix without the
    low-resolution family draws exactly what it always did.

    ``face_size`` (px) draws the realistic and low-resolution families at that size. The thesis's family is
    defined at :data:`REFERENCE_SIZE` only: a face drawn at another size takes the realistic family instead."""

    def __init__(self, thesis, realistic: RealisticPipeline | None = None, share: float = 0.5, *, lowres=None,
                 lowres_share: float = 0.0) -> None:
        if not 0 <= share <= 1 or not 0 <= lowres_share <= 1 or share + lowres_share > 1:
            raise ValueError(f"realistic share {share} and low-resolution share {lowres_share} must be in [0, 1] "
                             "and add up to at most 1")
        if lowres_share and lowres is None:
            raise ValueError("lowres_share > 0 needs a low-resolution pipeline")
        self.thesis, self.realistic, self.share = thesis, realistic or RealisticPipeline(), share
        self.lowres, self.lowres_share = lowres, lowres_share

    def sample(self, rng: np.random.Generator, face_size: int | None = None):
        u = rng.uniform()
        if u < self.share:
            return self.realistic.sample(rng, face_size)
        if u < self.share + self.lowres_share:
            return self.lowres.sample(rng, face_size)
        if face_size not in (None, REFERENCE_SIZE):  # the thesis's blur is defined at 256 px only
            return self.realistic.sample(rng, face_size)
        return self.thesis.sample(rng)

    def apply(self, image: np.ndarray, params) -> np.ndarray:
        if isinstance(params, RealisticParams):
            return self.realistic.apply(image, params)
        if getattr(params, "family", None) == "lowres":
            if self.lowres is None:
                raise ValueError("low-resolution params given to a mix without the low-resolution family")
            return self.lowres.apply(image, params)
        return self.thesis.apply(image, params)

    def __call__(self, image: np.ndarray, rng: np.random.Generator, face_size: int | None = None):
        params = self.sample(rng, face_size)
        return self.apply(image, params), params
