"""Cross-validation (thesis Table 4.4) and the ablation (Table 4.3) as restartable batch jobs.

Each fold / variant is a job of :func:`smfd.train.jobs.run_jobs` in its own run folder under ``out_dir``: it trains,
then its best model is scored on the test split (``eval-test``). Re-running the same command continues unfinished
runs and skips finished ones, then writes the table (``cv.md``/``cv.csv`` or ``ablation.md``/``ablation.csv``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..models import count_parameters, create_model
from ..models.runner import Task
from ..report.tables import mean_sd_row, write_table
from .config import TrainConfig, load_config
from .jobs import Job, Score, raise_failures, run_jobs

log = logging.getLogger("smfd.train")

ABLATION = ("smfd_unet_no_mask", "smfd_unet_plain_up", "smfd_unet_transpose_up", "smfd_unet_no_post", "smfd_unet")
ABLATION_LABELS = {
    "smfd_unet_no_mask": "backbone without mask branch",
    "smfd_unet_plain_up": "+ mask branch, plain upsampling",
    "smfd_unet_transpose_up": "+ attention upsampling (transposed conv)",
    "smfd_unet_no_post": "+ attention upsampling (PixelShuffle)",
    "smfd_unet": "+ post-processing (full SMFD-UNet)",
}


def _job(name: str, cfg: TrainConfig, run: Path, limit: int | None) -> Job:
    """Train ``cfg`` in ``run``, then score its best model on the test split into ``run/eval-test``."""
    score = Score(cfg.data.root, mask_source=cfg.mask_source, limit=limit, examples=6, out=str(run / "eval-test"))
    return Job(name, str(run), train=cfg, scores=(score,))


def _run(jobs: list[Job], task: Task) -> list[dict]:
    """Run the jobs one after another here; each one's best validation score and its test scores."""
    results = run_jobs(jobs, isolate=False)
    raise_failures(results, jobs)
    keys = ("dice", "jaccard") if task == "mask" else ("psnr", "ssim", "mse", "colour_shift", "niqe")
    rows = []
    for job in jobs:
        r = results[job.name]
        rows.append({f"val_{r['monitor']}": r["best_val"], **{f"test_{k}": r["test"]["thesis"][k] for k in keys}})
    return rows


def cross_validate(
    task: Task, config: str | None, data: str, out_dir: str | os.PathLike, *, folds: int = 5,
    overrides: list[str] = (), mask_source: str | None = None, test_limit: int | None = None,
) -> list[dict]:
    """Train fold 0..folds-1 (fold k validates), score each best model on the test split, write the table."""
    out_dir = Path(out_dir)
    jobs = []
    for k in range(folds):
        cfg = load_config(config, task, [*overrides, f"data.fold={k}", f"data.folds={folds}"],
                          **{"data.root": data, "mask_source": mask_source})
        jobs.append(_job(f"fold{k}", cfg, out_dir / f"fold{k}", test_limit))
    log.info("cross-validation: %d folds in %s", folds, out_dir)
    rows = [{"fold": str(k + 1), **row} for k, row in enumerate(_run(jobs, task))]
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
    configs = [load_config(config, "deblur", [*overrides, f"model.name={name}"],
                           **{"data.root": data, "mask_source": mask_source}) for name in variants]
    log.info("ablation: %d variants in %s", len(variants), out_dir)
    scores = _run([_job(name, cfg, out_dir / name, test_limit) for name, cfg in zip(variants, configs, strict=True)],
                  "deblur")
    rows = []
    for name, cfg, score in zip(variants, configs, scores, strict=True):
        params = count_parameters(create_model(name, **cfg.model.kwargs))["total_keras_convention"]
        rows.append({"variant": ABLATION_LABELS.get(name, name), "model": name, "params": params, **score})
    cols = list(rows[0])
    write_table(out_dir / "ablation", rows, cols, title=f"Ablation ({config or 'defaults'})",
                footer=f"One config for every variant; best checkpoint by validation {cfg.monitor}, scored on the "
                       f"test split (seeded degradations); data: {data}; overrides: {' '.join(overrides) or 'none'}.")
    return rows
