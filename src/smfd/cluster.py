"""smfd inside a Ray Data pipeline (extra ``cluster``: ``pip install 'smfd[cluster]'``).

:class:`Deblur` is a callable class for ``ds.map_batches``: each actor loads the pipeline once and restores batches
of images (column ``image``) or of photos read by path (column ``path``); :func:`deblur_dataset` applies it with a
pool of actors. Ray is imported only when one of them is used, so ``import smfd`` never imports it.

Example:
    >>> import ray, smfd.cluster
    >>> ds = ray.data.read_images("photos/", include_paths=True, mode="RGB")
    >>> out = smfd.cluster.deblur_dataset(ds, actors=4)    # columns: image, path, faces, skipped, error
    >>> out.filter(lambda r: not r["error"]).write_images("restored/", column="image")
"""

from __future__ import annotations

import os
import resource
from collections.abc import Sequence

import numpy as np

from .data.celebamask import parse_keep
from .infer.faces import DETECTORS
from .infer.photo_io import MAX_PIXELS, open_photo

#: Errors that fail one input (what the local run catches per file); anything else fails the batch, and Ray retries it
INPUT_ERRORS = (OSError, ValueError, RuntimeError)


def require_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RuntimeError("running on Ray needs Ray Data: pip install 'smfd[cluster]'") from None
    return ray


def peak_memory_mb() -> float:
    """This process's peak resident memory (MB) so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _empty() -> np.ndarray:
    return np.zeros((0, 0, 3), np.uint8)  # a failed row's image: same dimensions as the others, no pixels


class Deblur:
    """Restore a batch of images or photos; for ``ds.map_batches(Deblur, fn_constructor_kwargs=..., concurrency=N)``
    (the pipeline is loaded once per actor).

    Args:
        weights: as :func:`smfd.load_pipeline` (``"default"``, a bundle or an export folder; on every node).
        aligned: the inputs are aligned face crops (restored in batches); otherwise whole photos (faces found,
            restored and pasted back).
        keep: region names or class ids taken unchanged from the input.
        mask: also return each result's class-id mask (column ``mask``).
        threads: torch threads per actor (None: torch's default).
        max_megapixels: photos read by path larger than this are refused (that row's ``error``).
        pipeline_options: more :func:`smfd.load_pipeline` arguments (``backend``, ``batch_size``, ``min_face``,
            ``precision``, ``detector``, ``max_work_size``, ``mirror_big``).

    A batch (numpy format) holds ``image`` (RGB uint8 (H, W, 3) each) or ``path`` (files, read with EXIF rotation
    applied). The result keeps the batch's other columns and holds, per row: ``image`` (restored; (0, 0, 3) where
    the row failed), ``faces`` (faces restored), ``skipped`` (faces too small), ``error`` (one line, or "") and
    ``mask`` if asked for.
    """

    def __init__(self, weights: str = "default", *, aligned: bool = False, keep: str | Sequence = (),
                 mask: bool = False, threads: int | None = None, max_megapixels: float = 50.0,
                 **pipeline_options) -> None:
        if threads:  # an actor's share of the CPUs: PyTorch and OpenCV (its own pool: every core) keep to it
            import cv2
            import torch

            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
        from .infer.pipeline import load_pipeline  # in the actor (the driver that plans the job needs no PyTorch)

        self.pipe = load_pipeline(weights, **pipeline_options)
        self.aligned, self.keep, self.mask = aligned, parse_keep(keep), mask
        self.max_pixels = int(max_megapixels * 1e6)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "image" not in batch and "path" not in batch:
            raise ValueError(f"a batch needs an 'image' or a 'path' column, got {sorted(batch)}")
        n = len(batch["image"] if "image" in batch else batch["path"])
        images: list = [None] * n
        errors = [""] * n
        for i in range(n):
            try:
                images[i] = batch["image"][i] if "image" in batch else open_photo(
                    str(batch["path"][i]), max_pixels=self.max_pixels).image
            except INPUT_ERRORS as e:
                errors[i] = str(e)
        done: list = [(_empty(), None, 0, [])] * n
        todo = [i for i in range(n) if not errors[i]]
        for i, res in zip(todo, self.restore([images[i] for i in todo]), strict=True):
            if isinstance(res, str):
                errors[i] = res
            else:
                done[i] = res
        result = {k: v for k, v in batch.items() if k != "image"}
        result.update(image=_column([r[0] for r in done]), faces=np.array([r[2] for r in done], np.int64),
                      skipped=np.array([len(r[3]) for r in done], np.int64), error=np.array(errors, dtype=object))
        if self.mask:
            result["mask"] = _column([np.zeros(r[0].shape[:2], np.uint8) if r[1] is None else r[1] for r in done])
        return result

    def restore(self, images: list[np.ndarray]) -> list[tuple | str]:
        """Per image: (restored image, class-id mask or None, faces restored, why each face skipped was), or its
        error line."""
        if self.aligned:
            ok = [im for im in images if _is_image(im)]
            outs, masks = self.pipe.restore_faces(ok, self.keep, mask=self.mask) if ok else ([], [])
            restored = iter(zip(outs, masks, strict=True))
            return [(*next(restored), 1, []) if _is_image(im) else _not_an_image(im) for im in images]
        results: list = []
        for im in images:
            try:
                r = self.pipe.deblur(np.asarray(im), keep=self.keep, mask=self.mask)
            except INPUT_ERRORS as e:
                results.append(str(e))
            else:
                results.append((r.image, r.mask, sum(not f.skipped for f in r.faces),
                                [f.skipped for f in r.faces if f.skipped]))
        return results


def _is_image(im) -> bool:
    return isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 and im.size > 0


def _not_an_image(im) -> str:
    got = f"{im.shape} {im.dtype}" if isinstance(im, np.ndarray) else type(im).__name__
    return f"image must be HxWx3 uint8 RGB, got {got}"


def _column(arrays: list[np.ndarray]) -> np.ndarray:
    """Images of different sizes as one column (an object array Ray Data stores as a variable-shaped tensor)."""
    col = np.empty(len(arrays), dtype=object)
    col[:] = arrays
    return col


def check_options(weights: str = "default", *, keep: str | Sequence = (), detector: str = "hog",
                  actors: int = 1, threads: int = 1) -> None:
    """What can be checked on the driver before any actor starts (an actor that fails to load is retried)."""
    parse_keep(keep)
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
    if str(weights) != "default" and not os.path.exists(weights):
        raise ValueError(f"weights: {weights} does not exist (it must be at this path on every node)")
    for name, value in (("actors", actors), ("threads", threads)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


def deblur_dataset(ds, weights: str = "default", *, actors: int = 1, threads: int = 1, batch_size: int = 1,
                   aligned: bool = False, keep: str | Sequence = (), mask: bool = False,
                   max_megapixels: float = MAX_PIXELS / 1e6, **pipeline_options):
    """Restore a Ray Dataset of images (column ``image``) or photo paths (column ``path``) with a pool of ``actors``
    actors of ``threads`` CPUs each, each loading the pipeline once; returns the Dataset of :class:`Deblur`'s
    results (restored ``image``, ``faces``, ``skipped``, ``error``, the other columns kept). ``batch_size``: rows
    per call (whole photos take seconds each, so 1 spreads them evenly)."""
    require_ray()
    check_options(weights, keep=keep, detector=pipeline_options.get("detector", "hog"), actors=actors,
                  threads=threads)
    kwargs = dict(weights=weights, aligned=aligned, keep=keep, mask=mask, threads=threads,
                  max_megapixels=max_megapixels, **pipeline_options)
    return ds.map_batches(Deblur, fn_constructor_kwargs=kwargs, batch_size=batch_size, batch_format="numpy",
                          compute=actor_pool(actors), num_cpus=threads)


def actor_pool(actors: int):
    """A fixed pool of ``actors`` actors, each given at most 2 calls at a time (a photo takes seconds: an actor
    holding more would leave the others idle at the end of the run)."""
    from ray.data import ActorPoolStrategy

    return ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=2)


__all__ = ["Deblur", "INPUT_ERRORS", "actor_pool", "check_options", "deblur_dataset", "peak_memory_mb", "require_ray"]
