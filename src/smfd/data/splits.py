"""Deterministic splits: optional random subset, 80:20 train+val / test, then k folds of the 80 %.

The split is a small JSON file written once and read by every later run, so training, cross-validation
and evaluation agree on which faces are test faces.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_bytes


@dataclass(frozen=True)
class Splits:
    """Attributes: ``seed``; ``test`` ids; ``folds``: k disjoint lists covering the train+val ids."""

    seed: int
    test: tuple[str, ...]
    folds: tuple[tuple[str, ...], ...]

    @property
    def trainval(self) -> list[str]:
        return [i for fold in self.folds for i in fold]

    def fold(self, k: int) -> tuple[list[str], list[str]]:
        """``(train, val)`` for cross-validation fold ``k``: fold k is validation, the others train."""
        if not 0 <= k < len(self.folds):
            raise ValueError(f"fold must be in 0..{len(self.folds) - 1}, got {k}")
        train = [i for j, f in enumerate(self.folds) if j != k for i in f]
        return train, list(self.folds[k])

    def save(self, path: str | os.PathLike) -> Path:
        d = {"seed": self.seed, "test": list(self.test), "folds": [list(f) for f in self.folds]}
        atomic_write_bytes(path, (json.dumps(d, indent=1) + "\n").encode())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Splits:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            return cls(int(d["seed"]), tuple(d["test"]), tuple(tuple(f) for f in d["folds"]))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such split file") from None
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a split file ({e})") from None

    def to_dict(self) -> dict:
        return asdict(self)


def make_splits(
    ids: Sequence[str], *, seed: int = 0, test_fraction: float = 0.2, folds: int = 5, subset: int | None = None
) -> Splits:
    """Split ``ids`` reproducibly.

    Args:
        ids: all available sample ids (order does not matter: they are sorted first).
        seed: seed of the shuffle.
        test_fraction: share of the (subset of) ids held out for testing (the thesis: 0.2).
        folds: number of cross-validation folds of the remaining ids (the thesis: 5).
        subset: first draw this many ids at random (the thesis: 3,000 for masks, 2,000 for deblurring).
    """
    ids = sorted(set(ids))
    if subset is not None:
        if not 0 < subset <= len(ids):
            raise ValueError(f"subset must be in 1..{len(ids)}, got {subset}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    if subset is not None:
        order = order[:subset]
    n_test = int(round(len(order) * test_fraction))
    test, rest = order[:n_test], order[n_test:]
    if folds < 1 or len(rest) < folds:
        raise ValueError(f"cannot make {folds} folds from {len(rest)} train+val ids")
    parts = np.array_split(np.arange(len(rest)), folds)
    return Splits(seed, tuple(sorted(test)), tuple(tuple(sorted(rest[i] for i in p)) for p in parts))
