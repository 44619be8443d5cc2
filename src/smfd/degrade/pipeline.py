"""The randomized degradation pipeline of the thesis (§3.4.1): heavy blur, resolution loss, noise.

Sampling is separate from applying (as in kornia): ``params = pipe.sample(rng)`` draws every random
choice, including the seed of the noise, into a frozen :class:`DegradationParams`; ``pipe.apply(image,
params)`` is then a pure function, so any degradation can be logged as JSON and replayed exactly.

Example:
    >>> pipe = DegradationPipeline()
    >>> blurry, params = pipe(sharp, np.random.default_rng(0))
    >>> again = pipe.apply(sharp, DegradationParams.from_dict(params.to_dict()))  # byte-identical
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from .kernels import DIRECTIONS, gaussian_kernel, motion_kernel

_INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC,
                   "area": cv2.INTER_AREA}
_BORDER = cv2.BORDER_REFLECT_101


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges of the degradation pipeline; the defaults are the thesis's.

    Attributes:
        num_layers: choices for the number n of stacked blur layers.
        sequences: per-layer operation sequences, each a string of ``G`` (Gaussian) and ``M`` (motion)
            applied left to right: the thesis's M, G->M, M->G, G->M->G.
        gaussian_sizes: Gaussian kernel sizes; sigma follows from the size (OpenCV's rule for sigma 0).
        motion_sizes: motion kernel lengths.
        directions: motion directions.
        scale_range: the down-scaling factor s is uniform in this closed range (then scaled back up).
        noise_range: the noise level eta (standard deviation on the 0-255 scale) is uniform in this range.
        count_step: step at which the continuous s and eta are counted by :func:`count_combinations`
            (the thesis counts both in steps of 0.1). Sampling itself is continuous.
        interpolation: OpenCV interpolation for the down- and up-scaling. The thesis does not name one;
            ``linear`` is ``cv2.resize``'s default **[decision]**.
    """

    num_layers: tuple[int, ...] = (1, 2, 3)
    sequences: tuple[str, ...] = ("M", "GM", "MG", "GMG")
    gaussian_sizes: tuple[int, ...] = (15, 21, 25, 31, 35, 41)
    motion_sizes: tuple[int, ...] = (15, 21, 25, 31, 35, 41)
    directions: tuple[str, ...] = DIRECTIONS
    scale_range: tuple[float, float] = (2.0, 4.0)
    noise_range: tuple[float, float] = (5.0, 10.0)
    count_step: float = 0.1
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        if not self.num_layers or any(n < 0 for n in self.num_layers):
            raise ValueError(f"num_layers must be non-negative integers, got {self.num_layers}")
        if not self.sequences or any(not s or set(s) - {"G", "M"} for s in self.sequences):
            raise ValueError(f"sequences must be non-empty strings of 'G' and 'M', got {self.sequences}")
        for name in ("gaussian_sizes", "motion_sizes"):
            sizes = getattr(self, name)
            if not sizes or any(s < 1 or s % 2 == 0 for s in sizes):
                raise ValueError(f"{name} must be positive odd integers, got {sizes}")
        if not self.directions or set(self.directions) - set(DIRECTIONS):
            raise ValueError(f"directions must be a subset of {DIRECTIONS}, got {self.directions}")
        for name in ("scale_range", "noise_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {(lo, hi)}")
        if self.scale_range[0] < 1:
            raise ValueError(f"scale_range must be >= 1 (a down-scaling factor), got {self.scale_range}")
        if self.count_step <= 0:
            raise ValueError(f"count_step must be > 0, got {self.count_step}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {self.interpolation!r}")


@dataclass(frozen=True)
class BlurOp:
    """One blur operation: ``kind`` is ``"gaussian"`` or ``"motion"``; ``direction`` only for motion."""

    kind: str
    size: int
    direction: str | None = None

    def kernel(self) -> np.ndarray:
        """The 2-D kernel of this operation (sums to 1)."""
        return _kernel(self.kind, self.size, self.direction)

    def filter(self, x: np.ndarray) -> np.ndarray:
        """Convolve a float32 image with this kernel (reflect-101 borders).

        Gaussian and horizontal/vertical motion kernels are separable and run as two 1-D passes, which
        gives the same result as the 2-D kernel at a fraction of the cost; diagonal lines use the 2-D kernel.
        """
        sep = _separable(self.kind, self.size, self.direction)
        if sep is not None:
            return cv2.sepFilter2D(x, -1, sep[0], sep[1], borderType=_BORDER)
        return cv2.filter2D(x, -1, self.kernel(), borderType=_BORDER)

    def __str__(self) -> str:
        return f"G{self.size}" if self.kind == "gaussian" else f"M{self.size}:{self.direction}"


@dataclass(frozen=True)
class DegradationParams:
    """Every random choice of one degradation; ``apply`` with the same params gives the same bytes.

    Attributes:
        layers: the blur layers, each a tuple of :class:`BlurOp` applied in order.
        scale: down-scaling factor s.
        noise_sigma: noise level eta on the 0-255 scale.
        noise_seed: seed of the noise field.
    """

    layers: tuple[tuple[BlurOp, ...], ...]
    scale: float
    noise_sigma: float
    noise_seed: int = field(default=0)

    @property
    def sequences(self) -> tuple[str, ...]:
        """Each layer as the thesis writes it, e.g. ``("G->M", "M")``."""
        return tuple("->".join("G" if op.kind == "gaussian" else "M" for op in layer) for layer in self.layers)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [[asdict(op) for op in layer] for layer in self.layers]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DegradationParams:
        try:
            layers = tuple(tuple(BlurOp(**op) for op in layer) for layer in d["layers"])
            return cls(layers, float(d["scale"]), float(d["noise_sigma"]), int(d["noise_seed"]))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a degradation-params dict ({e}): {d!r}") from None


@lru_cache(maxsize=128)
def _kernel(kind: str, size: int, direction: str | None) -> np.ndarray:
    if kind == "gaussian":
        return gaussian_kernel(size)
    if kind == "motion":
        return motion_kernel(size, direction)
    raise ValueError(f"blur kind must be 'gaussian' or 'motion', got {kind!r}")


@lru_cache(maxsize=128)
def _separable(kind: str, size: int, direction: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    if kind == "gaussian":
        k = cv2.getGaussianKernel(size, 0, ktype=cv2.CV_64F).astype(np.float32)
        return k, k
    one, line = np.ones((1, 1), np.float32), np.full((size, 1), 1.0 / size, np.float32)
    if direction == "horizontal":
        return line, one
    if direction == "vertical":
        return one, line
    return None


def _steps(lo: float, hi: float, step: float) -> int:
    return int(round((hi - lo) / step)) + 1


def count_combinations(config: DegradationConfig | None = None) -> int:
    """Number of distinct degradations, counted the thesis's way (s and eta in steps of ``count_step``).

    For the thesis's defaults this is 1,176 blur combinations per layer,
    1,176 + 1,176**2 + 1,176**3 = 1,627,763,928 blur stacks, times 21 scales and 51 noise levels:
    1,743,335,166,888. (The thesis prints 1,743,940,018,728: its 1,176**3 is misprinted as
    1,626,943,776 and its sum and final product each carry a further slip; the ranges it states give
    the number computed here.)
    """
    c = config or DegradationConfig()
    per_op = {"G": len(c.gaussian_sizes), "M": len(c.motion_sizes) * len(c.directions)}
    per_layer = sum(math.prod(per_op[op] for op in seq) for seq in c.sequences)
    blur = sum(per_layer**n for n in set(c.num_layers))
    return blur * _steps(*c.scale_range, c.count_step) * _steps(*c.noise_range, c.count_step)


def _as_working_float(image: np.ndarray) -> tuple[np.ndarray, bool]:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"image must be HxW, HxWx1 or HxWx3, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32), True
    if image.dtype in (np.float32, np.float64):
        return image.astype(np.float32) * 255.0, False
    raise ValueError(f"image must be uint8 (0-255) or float32 in [0, 1], got {image.dtype}")


class DegradationPipeline:
    """Heavy blur (n stacked layers) -> down/up-scaling by s -> Gaussian noise eta -> clip.

    Works on uint8 images (0-255, returns uint8) and on float images in [0, 1] (returns float32);
    grey (HxW) and colour (HxWx3) alike. The blur is computed in float32 without intermediate rounding.
    """

    def __init__(self, config: DegradationConfig | None = None) -> None:
        self.config = config or DegradationConfig()

    def sample(self, rng: np.random.Generator) -> DegradationParams:
        c = self.config
        n = int(rng.choice(c.num_layers))
        layers = []
        for _ in range(n):
            seq = c.sequences[int(rng.integers(len(c.sequences)))]
            ops = []
            for letter in seq:
                if letter == "G":
                    ops.append(BlurOp("gaussian", int(rng.choice(c.gaussian_sizes))))
                else:
                    size = int(rng.choice(c.motion_sizes))
                    ops.append(BlurOp("motion", size, c.directions[int(rng.integers(len(c.directions)))]))
            layers.append(tuple(ops))
        scale = float(rng.uniform(*c.scale_range))
        eta = float(rng.uniform(*c.noise_range))
        return DegradationParams(tuple(layers), scale, eta, int(rng.integers(2**63 - 1)))

    def apply(self, image: np.ndarray, params: DegradationParams) -> np.ndarray:
        x, is_uint8 = _as_working_float(image)
        squeeze = image.ndim == 3 and image.shape[2] == 1
        if squeeze:
            x = x[..., 0]
        for layer in params.layers:
            for op in layer:
                x = op.filter(x)
        h, w = x.shape[:2]
        if params.scale != 1.0:
            interp = _INTERPOLATIONS[self.config.interpolation]
            small = (max(1, round(w / params.scale)), max(1, round(h / params.scale)))
            x = cv2.resize(cv2.resize(x, small, interpolation=interp), (w, h), interpolation=interp)
        if params.noise_sigma > 0:
            noise = np.random.default_rng(params.noise_seed).standard_normal(x.shape, dtype=np.float32)
            x += np.float32(params.noise_sigma) * noise
        np.clip(x, 0.0, 255.0, out=x)
        if squeeze:
            x = x[..., None]
        if is_uint8:
            return np.rint(x).astype(np.uint8)
        return x / np.float32(255.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator, face_size: int | None = None
                 ) -> tuple[np.ndarray, DegradationParams]:
        """Draw and apply. The thesis's pipeline is defined on 256 px faces only: ``face_size`` (as the other
        families take it) must be None or 256."""
        if face_size not in (None, 256):
            raise ValueError(f"the thesis's degradation is defined at 256 px faces, not {face_size} px: draw other "
                             "sizes from the realistic or low-resolution family")
        params = self.sample(rng)
        return self.apply(image, params), params
