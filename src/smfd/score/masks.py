"""The masks a deblurring net reads while it is trained or scored: the ground truth, or a mask net's output."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.io import load_runner


def mask_provider(source: str, device: torch.device | str = "cpu", precision: str = "fp32"
                  ) -> Callable[[dict], torch.Tensor]:
    """``gt``: the batch's one-hot ground truth; ``generator:PATH``: the class probabilities of a trained mask net
    (a run folder, checkpoint or weights file) for the batch's blurry faces, run at ``precision`` without
    gradients. Returns batch -> (B, 5, H, W) on ``device``."""
    if source == "gt":
        return lambda batch: batch["mask_onehot"].to(device)
    if not source.startswith("generator:"):
        raise ValueError(f"mask source must be gt or generator:PATH, got {source!r}")
    generator = load_runner(source.split(":", 1)[1]).to(device, precision=precision, channels_last=True).eval()
    if generator.spec.task != "mask":
        raise ValueError(f"{source}: not a mask net ({generator.spec.name})")

    @torch.no_grad()
    def provide(batch: dict) -> torch.Tensor:
        return generator.probabilities(batch["lq"])

    return provide


__all__ = ["mask_provider"]
