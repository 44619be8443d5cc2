"""Mask metrics and the Dice loss.

Dice and Jaccard are computed per image and per class; a class absent from both the prediction and the
ground truth of an image is undefined there (NaN) and left out of the averages, so a class that never occurs
(SynthFace has no wearables) neither inflates nor deflates the score. "Per class, then averaged", as the
thesis reports them.
"""

from __future__ import annotations

import torch


def _counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, ...]:
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"pred and target must be (B, H, W) class ids of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    classes = torch.arange(num_classes, device=pred.device).view(1, -1, 1, 1)
    p = pred.unsqueeze(1) == classes  # (B, C, H, W)
    t = target.unsqueeze(1) == classes
    inter = (p & t).sum(dim=(2, 3)).double()
    return inter, p.sum(dim=(2, 3)).double(), t.sum(dim=(2, 3)).double()


def dice_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 5) -> torch.Tensor:
    """Dice of each class in each image, (B, num_classes); NaN where the class is in neither."""
    inter, ps, ts = _counts(pred, target, num_classes)
    denom = ps + ts
    return torch.where(denom > 0, 2 * inter / denom.clamp(min=1), torch.full_like(denom, float("nan")))


def jaccard_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 5) -> torch.Tensor:
    """Jaccard (IoU) of each class in each image, (B, num_classes); NaN where the class is in neither."""
    inter, ps, ts = _counts(pred, target, num_classes)
    union = ps + ts - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(union, float("nan")))


def dice_loss(logits: torch.Tensor, target: torch.Tensor, *, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss: softmax probabilities vs one-hot target, Dice per class over the batch, averaged.

    Args:
        logits: (B, C, H, W) raw scores.
        target: (B, C, H, W) one-hot (or soft) target.
        eps: smoothing, so classes absent from the batch cost nothing once predicted absent.
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits and target must have one shape, got {tuple(logits.shape)}, {tuple(target.shape)}")
    prob = torch.softmax(logits, dim=1)
    dims = (0, 2, 3)
    inter = (prob * target).sum(dims)
    dice = (2 * inter + eps) / (prob.sum(dims) + target.sum(dims) + eps)
    return 1 - dice.mean()
