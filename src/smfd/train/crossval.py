"""Cross-validation (thesis Table 4.4) and the ablation (Table 4.3) as restartable batch jobs.

Each fold / variant trains in its own run folder under ``out_dir``; re-running the same command resumes
unfinished runs and skips finished ones, then evaluates every best model on the test split and writes the
table (``cv.md``/``cv.csv`` or ``ablation.md``/``ablation.csv``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..models import count_parameters, create_model
from ..models.runner import Task
from ..report.tables import mean_sd_row, write_table
from ..score import evaluate_model, summarize, write_results
from .config import load_config
from .loop import fit

log = logging.getLogger("smfd.train")

ABLATION = ("smfd_unet_no_mask", "smfd_unet_plain_up", "smfd_unet_transpose_up", "smfd_unet_no_post", "smfd_unet")
ABLATION_LABELS = {
    "smfd_unet_no_mask": "backbone without mask branch",
    "smfd_unet_plain_up": "+ mask branch, plain upsampling",
    "smfd_unet_transpose_up": "+ attention upsampling (transposed conv)",
    "smfd_unet_no_post": "+ attention upsampling (PixelShuffle)",
    "smfd_unet": "+ post-processing (full SMFD-UNet)",
}


def _train_or_resume(cfg, run: Path) -> None:
    fit(cfg, run, resume=(run / "last.pt").is_file())


def _test_scores(run: Path, data: str, task: Task, mask_source: str, limit: int | None) -> dict:
    rows, info, examples = evaluate_model(str(run), data, split="test", mask_source=mask_source, limit=limit)
    write_results(run / "eval-test", rows, info, examples, overwrite=True)
    s = summarize(rows)
    keys = ("dice", "jaccard") if task == "mask" else ("psnr", "ssim", "mse", "colour_shift", "niqe")
    return {f"test_{k}": s[k]["mean"] for k in keys}


def cross_validate(
    task: Task, config: str | None, data: str, out_dir: str | os.PathLike, *, folds: int = 5,
    overrides: list[str] = (), mask_source: str | None = None, test_limit: int | None = None,
) -> list[dict]:
    """Train fold 0..folds-1 (fold k validates), score each best model on the test split, write the table."""
    out_dir = Path(out_dir)
    rows = []
    for k in range(folds):
        cfg = load_config(config, task, [*overrides, f"data.fold={k}", f"data.folds={folds}"],
                          **{"data.root": data, "mask_source": mask_source})
        run = out_dir / f"fold{k}"
        log.info("cross-validation: fold %d/%d -> %s", k + 1, folds, run)
        _train_or_resume(cfg, run)
        best = _best_val(run, cfg.monitor)
        rows.append({"fold": str(k + 1), f"val_{cfg.monitor}": best,
                     **_test_scores(run, data, task, cfg.mask_source, test_limit)})
    cols = ["fold", *[c for c in rows[0] if c != "fold"]]
    table = [*rows, mean_sd_row(rows, cols[1:], "mean ± SD", "fold")]
    write_table(out_dir / "cv", table, cols, title=f"{folds}-fold cross-validation, {task} ({config or 'defaults'})",
                footer=f"Each fold's best checkpoint (by validation {cfg.monitor}) scored on the test split; "
                       f"data: {data}; overrides: {' '.join(overrides) or 'none'}.")
    return table


def ablate(
    config: str | None, data: str, out_dir: str | os.PathLike, *, overrides: list[str] = (),
    mask_source: str | None = None, variants: tuple[str, ...] = ABLATION, test_limit: int | None = None,
) -> list[dict]:
    """Train the ablation variants with one config and score each on the test split."""
    out_dir = Path(out_dir)
    rows = []
    for name in variants:
        cfg = load_config(config, "deblur", [*overrides, f"model.name={name}"],
                          **{"data.root": data, "mask_source": mask_source})
        run = out_dir / name
        log.info("ablation: %s -> %s", name, run)
        _train_or_resume(cfg, run)
        params = count_parameters(create_model(name, **cfg.model.kwargs))["total_keras_convention"]
        rows.append({"variant": ABLATION_LABELS.get(name, name), "model": name, "params": params,
                     f"val_{cfg.monitor}": _best_val(run, cfg.monitor),
                     **_test_scores(run, data, "deblur", cfg.mask_source, test_limit)})
    cols = list(rows[0])
    write_table(out_dir / "ablation", rows, cols, title=f"Ablation ({config or 'defaults'})",
                footer=f"One config for every variant; best checkpoint by validation {cfg.monitor}, scored on the "
                       f"test split (seeded degradations); data: {data}; overrides: {' '.join(overrides) or 'none'}.")
    return rows


def _best_val(run: Path, monitor: str) -> float:
    import csv

    with open(run / "metrics.csv", newline="") as f:
        return max(float(r[f"val_{monitor}"]) for r in csv.DictReader(f))
