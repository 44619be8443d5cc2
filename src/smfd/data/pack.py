"""A training pack: a compact copy of a face folder that travels with the code (to a lent GPU machine, say).

``smfd prepare pack SRC -o PACK`` writes, for the faces of one split (the thesis's seeded random subset, 80:20
then 5 folds, exactly as :func:`smfd.data.make_splits` draws it from SRC's ids):

* ``images/{id}.webp``: the face in WebP at ``quality`` (lossy, 4:2:0; the report gives its PSNR against SRC);
* ``masks/{id}.png``: the label map, losslessly;
* ``split.json``: the split drawn from SRC's ids, so a run on the pack (``--set data.split=PACK/split.json``)
  trains, validates and tests on the same faces as a run on SRC;
* ``pack.json``: what was packed, from where, its size, and the PSNR of the images against SRC.

A pack is a face folder like any other (:class:`~smfd.data.FaceFolder` reads ``.webp``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..fileio import atomic_write_bytes
from ..metrics import psnr_uint8
from .folder import FaceFolder
from .splits import Splits, make_splits

MIB = 2**20


def restrict_splits(splits: Splits, ids: set[str], folds: int) -> Splits:
    """``splits`` on a subset of its faces: test faces among ``ids`` stay test faces; the train+val faces among
    ``ids`` are dealt into ``folds`` contiguous folds in their order (so each fold is a fair share)."""
    rest = [i for i in splits.trainval if i in ids]
    if len(rest) < folds:
        raise ValueError(f"only {len(rest)} train+val faces of the split were packed; cannot make {folds} folds")
    parts = np.array_split(np.arange(len(rest)), folds)
    return Splits(splits.seed, tuple(i for i in splits.test if i in ids),
                  tuple(tuple(sorted(rest[k] for k in p)) for p in parts))


def make_pack(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    subset: int | None = 2000,
    split_seed: int = 0,
    test_fraction: float = 0.2,
    folds: int = 5,
    quality: int = 85,
    max_mib: float = 25.0,
    also_splits: tuple[str | os.PathLike, ...] = (),
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write a pack of ``source``'s faces to ``out`` (see the module doc); returns the ``pack.json`` record.

    ``also_splits``: other split files of the source (e.g. the whole-face recipe's) to carry over as
    ``split-{stem}.json``, restricted to the packed faces: their test faces that were packed stay test faces, and
    their packed train+val faces are dealt anew into ``folds`` folds (in the file's order).

    Raises:
        FileExistsError: ``out`` already holds a pack or other files.
        ValueError: bad arguments, or the pack came out larger than ``max_mib`` (it is then removed: lower
            ``quality`` or ``subset``).
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: folder is not empty (choose another --out)")
    folder = FaceFolder(source)
    splits = make_splits(folder.ids, seed=split_seed, subset=subset, test_fraction=test_fraction, folds=folds)
    ids = sorted([*splits.test, *splits.trainval])
    written: list[Path] = []
    psnrs = []
    try:
        for id in ids:
            psnrs.append(_pack_face(folder, id, out, quality, written))
            if progress:
                progress(1)
        _write_splits(splits, also_splits, set(ids), folds, out, written)
        size = sum(p.stat().st_size for p in written)
        if size > max_mib * MIB:
            raise ValueError(f"{out}: the pack is {size / MIB:.1f} MiB, over --max-mib {max_mib:g}; "
                             "lower --quality or --subset")
    except BaseException:
        _remove(written, out)
        raise
    record = {
        "source": str(source), "faces": len(ids), "subset": subset, "split_seed": split_seed,
        "test": len(splits.test), "trainval": len(splits.trainval), "folds": folds, "format": "webp",
        "quality": quality, "mib": round(size / MIB, 2),
        "psnr_vs_source": {"mean": round(float(np.mean(psnrs)), 2), "min": round(float(np.min(psnrs)), 2)},
        "note": "images are lossy WebP copies of the source; masks are lossless; split.json is drawn from the "
                "source's ids",
    }
    atomic_write_bytes(out / "pack.json", (json.dumps(record, indent=1) + "\n").encode())
    return record


def _pack_face(folder: FaceFolder, id: str, out: Path, quality: int, written: list[Path]) -> float:
    """Write a face's image (WebP) and mask (PNG) into the pack, each added to ``written`` once it is there;
    returns the PSNR of the packed image against the source's."""
    image, mask = folder.read(id)
    ok, buf = cv2.imencode(".webp", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise ValueError(f"{folder.image_path(id)}: cannot encode as WebP")
    decoded = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    for path, data in ((out / "images" / f"{id}.webp", buf.tobytes()),
                       (out / "masks" / f"{id}.png",
                        cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes())):
        atomic_write_bytes(path, data)
        written.append(path)
    return psnr_uint8(decoded, image)


def _write_splits(splits: Splits, also_splits: tuple[str | os.PathLike, ...], ids: set[str], folds: int, out: Path,
                  written: list[Path]) -> None:
    """split.json, and each of ``also_splits`` restricted to the packed faces (``split-{name}.json``), each added to
    ``written`` once it is there."""
    splits.save(out / "split.json")
    written.append(out / "split.json")
    for other in also_splits:
        target = out / f"split-{_split_name(other)}.json"
        restrict_splits(Splits.load(other), ids, folds).save(target)
        written.append(target)


def _remove(written: list[Path], out: Path) -> None:
    """Undo a pack that failed: the files it wrote, and its folders if they are left empty."""
    for p in written:
        p.unlink(missing_ok=True)
    for d in (out / "images", out / "masks", out):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def _split_name(path: str | os.PathLike) -> str:
    """``results/bakeoff/split.json`` -> ``bakeoff``; ``splits/whole.json`` -> ``whole``."""
    path = Path(path)
    return path.parent.name if path.stem == "split" and path.parent.name else path.stem
