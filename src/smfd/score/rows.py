"""Per-face metrics of a batch and their means: what validation inside training and ``smfd eval`` both report."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..metrics import colour_shift, dice_per_class, jaccard_per_class, mse255, psnr, ssim
from ..models.runner import Task


def metric_rows(out: torch.Tensor, batch: dict, task: Task) -> list[dict]:
    """Per-image metrics of a batch: Dice/Jaccard per class (mask logits) or PSNR/SSIM/MSE/colour shift, computed
    where ``out`` is (on a GPU the float64 SSIM of a CPU would take longer than the net's whole step)."""
    if task == "mask":
        pred, target = out.argmax(1), batch["mask"].to(out.device)
        d, j = dice_per_class(pred, target, out.shape[1]).cpu(), jaccard_per_class(pred, target, out.shape[1]).cpu()
        return [{"path": path, **{f"dice_{c}": d[i, c].item() for c in range(d.shape[1])},
                 **{f"jaccard_{c}": j[i, c].item() for c in range(j.shape[1])}} for i, path in enumerate(batch["path"])]
    pred, target = out.float().clamp(0, 1), batch["gt"].to(out.device)
    p, s, m, c = (f(pred, target).cpu() for f in (psnr, ssim, mse255, colour_shift))
    return [{"path": path, "psnr": p[i].item(), "ssim": s[i].item(), "mse": m[i].item(), "colour_shift": c[i].item()}
            for i, path in enumerate(batch["path"])]


def summarize_rows(rows: list[dict], task: Task) -> dict:
    """Means over images (per class first for masks, NaNs left out)."""
    if task == "mask":
        out = {}
        for metric in ("dice", "jaccard"):
            keys = sorted(k for k in rows[0] if k.startswith(metric + "_"))
            per_class = [np.nanmean([r[k] for r in rows]) if any(not math.isnan(r[k]) for r in rows) else math.nan
                         for k in keys]
            out.update({k: v for k, v in zip(keys, per_class, strict=True)})
            out[metric] = float(np.nanmean(per_class))
        return out
    return {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "mse")}


__all__ = ["metric_rows", "summarize_rows"]
