"""The masks a deblurring net reads while it is trained or scored: the ground truth, or a mask net's output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from ..models.io import load_runner

MaskKind = Literal["gt", "generator", "job"]
_FORMS: dict[MaskKind, str] = {"gt": "gt", "generator": "generator:PATH", "job": "job:NAME"}


@dataclass(frozen=True)
class MaskSource:
    """Where a deblurring net's masks come from: ``gt`` (the ground truth), ``generator:PATH`` (a trained mask net:
    a run folder, checkpoint or weights file) or, in a job queue, ``job:NAME`` (the mask net that job trains).
    ``str()`` gives the text form back."""

    kind: MaskKind
    target: str = ""  # generator: the mask net's path; job: the job's name

    def __str__(self) -> str:
        return self.kind if self.kind == "gt" else f"{self.kind}:{self.target}"


def parse_mask_source(text: str, kinds: tuple[MaskKind, ...] = ("gt", "generator"), *, name: str = "mask source"
                      ) -> MaskSource:
    """The one reading of a mask source's text (a config's ``mask_source``, ``--mask-source``, a job's), accepting
    the ``kinds`` the caller can use; ``name`` is what the error calls it."""
    kind, sep, target = text.partition(":")
    if kind in kinds and (text == "gt" if kind == "gt" else bool(sep)):
        return MaskSource(kind, target)
    raise ValueError(f"{name} must be {' or '.join(_FORMS[k] for k in kinds)}, got {text!r}")


def mask_provider(source: str | MaskSource, device: torch.device | str = "cpu", precision: str = "fp32"
                  ) -> Callable[[dict], torch.Tensor]:
    """``gt``: the batch's one-hot ground truth; ``generator:PATH``: the class probabilities of a trained mask net
    (a run folder, checkpoint or weights file) for the batch's blurry faces, run at ``precision`` without
    gradients. Returns batch -> (B, 5, H, W) on ``device``."""
    source = source if isinstance(source, MaskSource) else parse_mask_source(source)
    if source.kind == "gt":
        return lambda batch: batch["mask_onehot"].to(device)
    generator = load_runner(source.target).to(device, precision=precision, channels_last=True).eval()
    if generator.spec.task != "mask":
        raise ValueError(f"{source}: not a mask net ({generator.spec.name})")

    @torch.no_grad()
    def provide(batch: dict) -> torch.Tensor:
        return generator.probabilities(batch["lq"])

    return provide


__all__ = ["MaskKind", "MaskSource", "mask_provider", "parse_mask_source"]
