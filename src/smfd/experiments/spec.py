"""A bake-off's YAML file (configs/bakeoff.yaml) as typed dataclasses, checked when it is loaded: an unknown key, a
value of the wrong type or a missing one is an error that names it (``candidates.d-nafnet.model is missing``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..degrade import DEGRADATIONS
from ..precision import PRECISIONS
from ..train.config import ModelConfig, from_yaml


def _check_families(families: tuple[str, ...], name: str) -> None:
    unknown = [d for d in families if d not in DEGRADATIONS]
    if unknown:
        raise ValueError(f"{name} holds {unknown[0]!r}, not a degradation family ({', '.join(DEGRADATIONS)})")


@dataclass(frozen=True)
class Evaluation:
    """How every row is scored: on the same test faces, under each degradation family."""

    degradations: tuple[str, ...]
    limit: int | None = None  # the first N test faces; None: every one
    precision: str = "auto"
    identity: bool = True  # dlib identity and face identification (never on sharp faces: they are the input)

    def __post_init__(self) -> None:
        if not self.degradations:
            raise ValueError("degradations must name at least one family")
        _check_families(self.degradations, "degradations")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 (or null: every test face), got {self.limit}")


@dataclass(frozen=True)
class Candidate:
    """A row of the table: a net the bake-off trains (``model``), or, as a reference or once its run folder is
    gone, scores from kept weights (``path``, with the ``steps`` and ``minutes`` it trained)."""

    label: str
    model: ModelConfig | None = None  # what to train (registry name, options); a candidate needs it
    masks: bool | str = False  # the masks it reads: true (the spec's generator), gt, or a generator's path
    set: dict = field(default_factory=dict)  # its own dotted config keys over the config (e.g. precision: fp32)
    path: str = ""  # kept weights
    steps: int | None = None
    minutes: int | float | None = None  # as the spec writes it (the tables print it so)
    degradations: tuple[str, ...] = ()  # the families it is scored on; empty: the evaluation's
    mask_weights: str = ""  # the mask generator its card names (default: the spec's masks)
    summary: str = ""  # the card's words for it (default: its label's)
    status: str = ""  # the card's account of its training
    data: str = ""  # the card's account of its data
    how: str = ""  # how it was made, when not by this spec's training

    def __post_init__(self) -> None:
        if self.masks == "":
            raise ValueError("masks must be true, false, gt or a mask generator's path, got ''")
        _check_families(self.degradations, "degradations")


@dataclass(frozen=True)
class MaskGenerator:
    """A mask generator scored on the same faces (results/masks.md)."""

    label: str
    path: str
    steps: int | None = None
    minutes: int | float | None = None
    how: str = ""


@dataclass(frozen=True)
class BakeoffSpec:
    """A bake-off: candidates trained alike for ``budget_minutes`` with one ``config``, ``lanes`` at a time, then
    scored with the references on the same test faces (:func:`smfd.experiments.bakeoff.run`)."""

    config: str  # the training config every candidate shares
    budget_minutes: float
    out: str  # the candidates' run folders (and their evaluations under eval/)
    data: str
    evaluation: Evaluation
    candidates: dict[str, Candidate] = field(default_factory=dict)
    references: dict[str, Candidate] = field(default_factory=dict)  # scored beside the candidates, not trained here
    mask_generators: dict[str, MaskGenerator] = field(default_factory=dict)
    lanes: int = 1
    split: str = ""  # the split file scored on (default: the trained candidates' own split.json)
    masks: str = ""  # the mask generator the candidates with ``masks: true`` read
    evaluations: str = ""  # where the scores are kept (default OUT/eval), so the tables can be made again

    def __post_init__(self) -> None:
        if self.budget_minutes <= 0:
            raise ValueError(f"budget_minutes must be > 0, got {self.budget_minutes}")
        if self.lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {self.lanes}")
        for name, cand in self.candidates.items():
            if cand.model is None:
                raise ValueError(f"candidates.{name}.model is missing (a row only scored belongs in references)")
        for name, ref in self.references.items():
            if not ref.path:
                raise ValueError(f"references.{name}.path is missing (a reference is scored from its weights)")
        for group, rows in (("candidates", self.candidates), ("references", self.references)):
            for name, row in rows.items():
                if row.masks is True and not self.masks:
                    raise ValueError(f"masks is missing: {group}.{name} reads the spec's generator (masks: true)")


def load_bakeoff(path: str | os.PathLike) -> BakeoffSpec:
    """The bake-off in ``path``, checked (a ValueError names the file and the key)."""
    return from_yaml(BakeoffSpec, path)
