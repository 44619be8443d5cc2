"""``smfd eval``: score a trained model (or the degraded input itself) on a split, or score any tool's output
folder against sharp faces, with one table format.

Outputs (in ``out_dir``): ``per_image.csv``, ``summary.json`` (mean, SD, n per metric, and what was scored),
``summary.md`` (mean +- SD), and for models ``examples.png`` (blurry | mask | output | sharp).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import multiclass_confusion_matrix

from ..data import FaceDeblurDataset, FaceFolder, Splits, make_splits
from ..data.celebamask import CLASSES
from ..data.io import list_images, read_image, write_image
from ..degrade import make_degradation
from ..fileio import atomic_write_bytes
from ..metrics import colour_shift, from_uint8, mse255, psnr, ssim
from ..metrics.niqe import niqe
from ..metrics.perceptual import perceptual_status
from ..models.io import load_runner
from ..models.runner import Runner, resolve_device
from ..report.grid import make_grid
from ..report.palette import colorize_mask
from ..report.tables import mean_sd
from .masks import mask_provider
from .rows import metric_rows

INPUT = "input"  # pseudo-model: score the degraded input as it is (the "blurry" row of a table)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint8."""
    return (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def _splits_for(model_path: str, folder: FaceFolder, split_file: str | None) -> tuple[Splits, str]:
    if split_file:
        return Splits.load(split_file), split_file
    run_split = Path(model_path) / "split.json"
    if model_path != INPUT and run_split.is_file():
        return Splits.load(run_split), str(run_split)
    return make_splits(folder.ids, seed=0), "make_splits(ids, seed=0)"


def select_ids(splits: Splits, split: str, fold: int = 0) -> list[str]:
    if split == "test":
        return list(splits.test)
    if split == "val":
        return splits.fold(fold)[1]
    if split == "trainval":
        return splits.trainval
    raise ValueError(f"split must be test, val or trainval, got {split!r}")


def evaluate_model(
    model_path: str,
    data_root: str | os.PathLike,
    *,
    split: str = "test",
    split_file: str | None = None,
    mask_source: str = "gt",
    limit: int | None = None,
    seed: int = 0,
    size: int = 256,
    batch_size: int = 8,
    identity: bool = False,
    identity_cache: str | os.PathLike | None = None,
    examples: int = 6,
    device: str = "auto",
    progress: Callable[[int], None] | None = None,
    model_options: dict | None = None,
    precision: str = "auto",
    degradation: str = "thesis",
) -> tuple[list[dict], dict, list[list[np.ndarray]]]:
    """Score a model (run folder, checkpoint or weights; or ``"input"``) on a split of a face folder.
    ``model_options`` replace the model's stored options that have no parameters (``{"keep_mean": True}``).
    ``precision``: ``auto``, ``bf16`` or ``fp32`` (:mod:`smfd.precision`); ``degradation``: one of
    :data:`smfd.degrade.DEGRADATIONS` (``thesis``, ``realistic``, ``lowres``, ``mixed`` or ``sharp``; see
    :func:`smfd.degrade.make_degradation`).

    Degradations are the seeded evaluation draws (``default_rng([seed, index])``), so every model sees the
    same blurry faces. Returns ``(rows, info, example_rows)``.
    """
    dev = resolve_device(device)
    folder = FaceFolder(data_root)
    splits, split_source = _splits_for(model_path, folder, split_file)
    ids = select_ids(splits, split)[:limit]
    net = _load_net(model_path, model_options, dev, precision)
    task = "deblur" if net is None else net.spec.task
    ds = FaceDeblurDataset(folder, ids, train=False, seed=seed, size=size, grayscale=task == "mask",
                           degradation=make_degradation(degradation))
    masks = mask_provider(mask_source, dev, precision) if net is not None and net.spec.reads_mask else None
    scorer = None  # identity: (restored, sharp) descriptors, for face identification over the set
    if identity and task == "deblur":
        from ..metrics.identity import IdentityScorer

        scorer = IdentityScorer(identity_cache)
    tally = _Tally(task, examples, scorer)
    with torch.no_grad():
        for batch in DataLoader(ds, batch_size=batch_size, num_workers=0):
            n = tally.add(*_run_net(net, masks, batch, dev), batch)
            if progress:
                progress(n)
    _identification(tally.rows, tally.pairs)
    info = {"model": model_path, "model_name": INPUT if net is None else net.spec.name, "task": task,
            "data": str(data_root), "split": split, "split_source": split_source, "n_images": len(tally.rows),
            "degradation_seed": seed, "mask_source": mask_source if masks is not None else "-",
            "model_options": model_options or {}, "precision": "fp32" if net is None else net.precision,
            "degradation": degradation}
    if tally.confusion is not None:
        info["confusion"] = tally.confusion.tolist()
    return tally.rows, info, tally.shown


def _load_net(model_path: str, options: dict | None, device: torch.device, precision: str) -> Runner | None:
    """The net to score, ready on ``device`` (None for ``"input"``: the degraded faces are scored as they are)."""
    if model_path == INPUT:
        if options:
            raise ValueError("model options need a model, not 'input'")
        return None
    return load_runner(model_path, options).to(device, precision=precision, channels_last=True).eval()


def _run_net(net: Runner | None, masks: Callable | None, batch: dict, device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The net's output for a batch (the degraded faces themselves without a net) and the masks it read."""
    if net is None:
        return batch["lq"].to(device), None
    if net.spec.task == "mask":
        return net(batch["lq"]), None
    probs = masks(batch) if masks is not None else None  # once per batch: reused for the examples
    return net(batch["lq"], probs), probs


@dataclass
class _Tally:
    """What a scoring gathers batch by batch: a row per face, the faces shown in examples.png, identity
    descriptors and, for a mask net, the pixel confusion (rows the true class, columns the predicted one)."""

    task: str
    examples: int
    scorer: Any = None  # an IdentityScorer, or None
    rows: list[dict] = field(default_factory=list)
    shown: list[list[np.ndarray]] = field(default_factory=list)
    pairs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    confusion: torch.Tensor | None = None

    def add(self, out: torch.Tensor, probs: torch.Tensor | None, batch: dict) -> int:
        """Score a batch's outputs; how many faces it held."""
        if self.task == "mask":
            counts = multiclass_confusion_matrix(out.argmax(1).cpu(), batch["mask"], out.shape[1])
            self.confusion = counts if self.confusion is None else self.confusion + counts
        batch_rows = metric_rows(out.float(), batch, self.task)  # on the device: see metric_rows
        out = out.float().cpu()
        for i, row in enumerate(batch_rows):
            row["id"] = Path(row["path"]).stem
            if self.task == "deblur":
                self._add_restored(row, out[i], probs, batch, i)
            elif len(self.shown) < self.examples:
                grey = _to_uint8(batch["lq"][i])[..., 0]
                self.shown.append([grey, colorize_mask(out[i].argmax(0).numpy()),
                                   colorize_mask(batch["mask"][i].numpy()), _to_uint8(batch["gt"][i])])
        self.rows.extend(batch_rows)
        return len(batch_rows)

    def _add_restored(self, row: dict, out: torch.Tensor, probs: torch.Tensor | None, batch: dict, i: int) -> None:
        """A restored face's NIQE and identity scores, and its example (blurry | mask read | restored | sharp)."""
        restored, sharp = _to_uint8(out), _to_uint8(batch["gt"][i])
        row["niqe"] = niqe(restored) if min(restored.shape[:2]) >= 96 else math.nan
        if self.scorer is not None:
            pair = self.scorer.descriptors(restored, sharp)
            row.update(self.scorer.scores(*pair))
            self.pairs.append(pair)
        if len(self.shown) < self.examples:
            ids = batch["mask"][i] if probs is None else probs[i].argmax(0).cpu()
            self.shown.append([_to_uint8(batch["lq"][i]), colorize_mask(ids.numpy()), restored, sharp])


def score_folders(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, *, identity: bool = False,
                  progress: Callable[[int], None] | None = None) -> tuple[list[dict], dict, list[str]]:
    """Score another tool's outputs: files in ``pred_dir`` paired with ``gt_dir`` by file stem.

    Returns ``(rows, info, problems)``; ``problems`` lists unpaired or unreadable files (they are skipped).
    """
    gt = {p.stem: p for p in list_images(gt_dir)}
    preds = list_images(pred_dir)
    if not preds:
        raise ValueError(f"{pred_dir}: no images")
    scorer, pairs = None, []  # identity: (restored, sharp) descriptors, for face identification over the set
    if identity:
        from ..metrics.identity import IdentityScorer

        scorer = IdentityScorer()
    rows, problems = [], []
    for p in preds:
        try:
            if p.stem not in gt:
                raise ValueError(f"no sharp image named {p.stem}.* in {gt_dir}")
            a, b = read_image(p), read_image(gt[p.stem])
            if a.shape != b.shape:
                raise ValueError(f"size {a.shape[1]}x{a.shape[0]} differs from the sharp image's "
                                 f"{b.shape[1]}x{b.shape[0]}")
            ta, tb = from_uint8(a), from_uint8(b)
            row = {"id": p.stem, "path": str(p), "psnr": psnr(ta, tb).item(), "ssim": ssim(ta, tb).item(),
                   "mse": mse255(ta, tb).item(), "colour_shift": colour_shift(ta, tb).item(), "niqe": niqe(a)}
            if scorer is not None:
                pair = scorer.descriptors(a, b)
                row.update(scorer.scores(*pair))
                pairs.append(pair)
            rows.append(row)
        except (OSError, ValueError) as e:
            problems.append(f"{p}: {e}")
        if progress:
            progress(1)
    if not rows:
        raise ValueError(f"{pred_dir}: no image could be scored ({problems[0]})")
    _identification(rows, pairs)
    info = {"pred": str(pred_dir), "gt": str(gt_dir), "task": "deblur", "n_images": len(rows)}
    return rows, info, problems


def _identification(rows: list[dict], pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """``id_rank1`` of each row: 1 where the face's nearest sharp face among all those scored is its own (face
    identification, what access control and face analytics need); its mean is the rank-1 rate."""
    if len(pairs) < 2 or len(pairs) != len(rows):
        return
    from ..metrics.identity import rank1

    hits = rank1(np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs]))
    for row, hit in zip(rows, hits, strict=True):
        row["id_rank1"] = float(hit)


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Mean, SD and count of every numeric column (:func:`~smfd.report.tables.mean_sd`)."""
    keys = [k for k in rows[0] if k not in ("id", "path")]
    out = {}
    for k in keys:
        mean, sd, n = mean_sd([r[k] for r in rows if r.get(k) is not None])
        out[k] = {"mean": mean, "sd": sd, "n": n}
    if any(k.startswith("dice_") for k in keys):
        for metric in ("dice", "jaccard"):
            per_class = [out[k]["mean"] for k in keys if k.startswith(metric + "_") and out[k]["n"]]
            out[metric] = {"mean": float(np.mean(per_class)), "sd": math.nan, "n": len(per_class)}
    return out


def check_results_free(out_dir: str | os.PathLike, overwrite: bool = False) -> None:
    """FileExistsError when ``out_dir`` holds results already and ``overwrite`` is not set (what
    :func:`write_results` refuses; check it before a long scoring)."""
    if not overwrite and any((Path(out_dir) / n).exists() for n in ("per_image.csv", "summary.json", "summary.md")):
        raise FileExistsError(f"{out_dir}: holds results already (use --overwrite to replace)")


def write_results(out_dir: str | os.PathLike, rows: list[dict], info: dict, examples=None, *,
                  overwrite: bool = False) -> dict:
    """Write per_image.csv, summary.json, summary.md (and examples.png); refuses to overwrite by default."""
    out_dir = Path(out_dir)
    check_results_free(out_dir, overwrite)
    summary = summarize(rows)
    ok, reason = perceptual_status()
    info = {**info, "lpips": "n/a" if not ok else "not requested", "fid": "n/a" if not ok else "not requested",
            "lpips_fid_note": reason, "machine": platform.platform(), "torch": torch.__version__,
            "date": datetime.datetime.now().isoformat(timespec="seconds")}
    fields = ["id", "path", *[k for k in rows[0] if k not in ("id", "path")]]
    lines = [",".join(fields)]
    for r in rows:
        lines.append(",".join(_csv_cell(r.get(f)) for f in fields))
    atomic_write_bytes(out_dir / "per_image.csv", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(out_dir / "summary.json", json.dumps({"info": info, "metrics": summary}, indent=1).encode())
    atomic_write_bytes(out_dir / "summary.md", markdown_summary(summary, info).encode())
    if examples:
        titles = ["blurry", "mask", "output", "sharp"] if info.get("task") == "deblur" else [
            "blurry (grey)", "predicted mask", "true mask", "sharp"]
        write_image(out_dir / "examples.png", make_grid(examples, titles))
    return summary


def _csv_cell(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    s = str(v)
    return f'"{s}"' if "," in s else s


def markdown_summary(summary: dict, info: dict) -> str:
    what = info.get("model_name") or info.get("pred")
    head = f"# {what} on {info.get('data', info.get('gt'))} ({info.get('split', 'folder')}, n={info['n_images']})\n\n"
    lines = ["| metric | mean ± SD |", "|---|---|"]
    for k, v in summary.items():
        sd = "" if math.isnan(v["sd"]) else f" ± {v['sd']:.4f}"
        lines.append(f"| {k} | {v['mean']:.4f}{sd} |")
    if "lpips" in info:
        lines.append(f"| LPIPS, FID | {info['lpips']} ({info['lpips_fid_note']}) |")
    return head + "\n".join(lines) + "\n" + (confusion_markdown(info["confusion"]) if "confusion" in info else "")


def confusion_markdown(confusion: list[list[int]]) -> str:
    """Where each true class's pixels went: a row per true class, the share predicted as each class (%)."""
    names = list(CLASSES)[: len(confusion)]
    lines = ["", "Pixels of each true class (rows) by predicted class (columns), % of the row:", "",
             "| true \\ predicted | " + " | ".join(names) + " | pixels |", "|---|" + "---|" * (len(names) + 1)]
    for name, row in zip(names, confusion, strict=True):
        total = sum(row)
        cells = [f"{100 * v / total:.1f}" if total else "-" for v in row]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {total:,} |")
    return "\n".join(lines) + "\n"

