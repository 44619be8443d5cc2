"""The training loop (nanoGPT style: plain functions): ``fit`` -> ``train_one_epoch`` / ``evaluate``.

Run folder contents: ``config.yaml`` (resolved), ``split.json``, ``metrics.csv`` (one row per epoch),
``tb/`` (TensorBoard, when installed), ``train.log``, ``last.pt`` and ``best.pt`` (atomic), and
``best.safetensors`` (the best model as plain weights). Under ``torchrun`` the same code runs DDP (gloo on
CPU, nccl on GPU); rank 0 validates and writes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..data import FaceFolder
from ..metrics import dice_loss
from ..models import build
from ..models.io import save_weights
from ..models.runner import Runner, resolve_device
from ..precision import to_channels_last
from ..score import mask_provider, metric_rows, summarize_rows
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, save_config
from .datasets import datasets, make_splits_for, one_thread_worker
from .init import init_from
from .runlog import append_csv, attach_log_file, best_epoch_from_csv, progress_bar, tensorboard
from .schedule import Budget, ResumableBatches, cosine_lr, cpu_state, make_ema

log = logging.getLogger("smfd.train")

class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FitResult:
    run_dir: Path
    best_metric: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool


def _forward(runner: Runner, batch: dict, masks: Callable | None) -> torch.Tensor:
    """The net's output for a batch (a mask net's logits, a deblurring net's faces), in fp32."""
    return runner(batch["lq"], masks(batch) if runner.spec.reads_mask else None)


def charbonnier(out: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier loss sqrt((x - y)^2 + eps^2), a smooth L1 (LapSRN, MPRNet)."""
    return torch.sqrt((out - target) ** 2 + eps**2).mean()


def fft_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 distance of the 2-D real FFTs (real and imaginary parts), the frequency loss of MIMO-UNet/NAFNet-style
    deblurring recipes: it weighs the fine detail a pixel loss lets blur."""
    a, b = torch.fft.rfft2(out.float(), norm="backward"), torch.fft.rfft2(target.float(), norm="backward")
    return (torch.view_as_real(a) - torch.view_as_real(b)).abs().mean()


def _loss(cfg: TrainConfig, out: torch.Tensor, batch: dict, device: torch.device) -> torch.Tensor:
    """The configured loss, in fp32 (outputs arrive as fp32 from :func:`_forward`)."""
    if cfg.loss == "dice":
        return dice_loss(out, batch["mask_onehot"].to(device))
    target = to_channels_last(batch["gt"].to(device))
    pixel = {"mse": F.mse_loss, "l1": F.l1_loss, "charbonnier": charbonnier}[cfg.loss](out, target)
    return pixel + cfg.fft_loss * fft_l1(out, target) if cfg.fft_loss else pixel


def train_one_epoch(runner: Runner, loader, optimizer, cfg: TrainConfig, masks, device, progress=None, *,
                    ema=None, budget: Budget | None = None,
                    lr_at: Callable[[], float] | None = None, stats: dict | None = None,
                    after_step: Callable[[int], None] | None = None) -> float:
    """One pass over the training data (or until ``budget`` is spent); returns the mean loss.

    ``lr_at``: a per-step learning rate (the cosine schedule); ``ema``: an averaged model updated after each step;
    ``stats["steps"]`` (if given) counts the optimizer steps; ``after_step(n)`` is called after the n-th batch
    (the time-based checkpoint). Raises :class:`TrainingDiverged` on NaN.
    """
    runner.train()
    total, count = 0.0, 0
    task = progress.add_task("train", total=len(loader)) if progress else None
    for step, batch in enumerate(loader):
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at()
        out = _forward(runner, batch, masks)
        loss = _loss(cfg, out, batch, device)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss.item()} at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(runner.module)
        if stats is not None:
            stats["steps"] = stats.get("steps", 0) + 1
        n = batch["lq"].shape[0]
        total += loss.item() * n
        count += n
        if progress:
            progress.update(task, advance=1, description=f"train loss {total / count:.4f}")
        if after_step is not None:
            after_step(step + 1)
        if budget is not None and budget.done:
            break
    if progress:
        progress.remove_task(task)
    return total / max(count, 1)


@torch.no_grad()
def evaluate(runner: Runner, loader, cfg: TrainConfig, masks, device, progress=None, per_image: bool = False
             ) -> dict:
    """Validation/test metrics. Mask task: Dice and Jaccard per class (NaN-aware means), then averaged;
    deblur task: PSNR, SSIM, MSE (0-255) on outputs clamped to [0, 1]. Also the loss.

    With ``per_image=True`` the dict also holds ``rows``: one dict of metrics per image (with its path).
    """
    runner.eval()
    rows, losses, n = [], 0.0, 0
    task = progress.add_task("validate", total=len(loader)) if progress else None
    for batch in loader:
        out = _forward(runner, batch, masks)
        losses += _loss(cfg, out, batch, device).item() * out.shape[0]
        n += out.shape[0]
        rows.extend(metric_rows(out, batch, cfg.task))
        if progress:
            progress.advance(task)
    if progress:
        progress.remove_task(task)
    result = summarize_rows(rows, cfg.task)
    result["loss"] = losses / max(n, 1)
    if per_image:
        result["rows"] = rows
    return result


# --- data, distributed set-up -------------------------------------------------------------------------------


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def _broadcast(value: float, world: int) -> float:
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(t, src=0)
    return t.item()


# --- fit -----------------------------------------------------------------------------------------------------


def fit(cfg: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False, progress: bool = True) -> FitResult:
    """Train as ``cfg`` says: Adam or AdamW; the thesis's ReduceLROnPlateau on the monitored validation metric with
    early stopping, or a cosine schedule over the time budget (or the epochs); an optional EMA of the weights; the
    best checkpoint by the monitored metric. ``resume=True`` continues ``run_dir/last.pt``."""
    run_dir = Path(run_dir)
    rank, world = _dist_info()
    device = resolve_device(cfg.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _fit(cfg, run_dir, resume, progress, rank, world, device)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _fit(cfg, run_dir, resume, show_progress, rank, world, device) -> FitResult:
    main = rank == 0
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = None
    if resume:  # cfg is the run's own config.yaml (plus overrides such as more epochs)
        ckpt = load_checkpoint(run_dir / "last.pt")
        if ckpt["model_name"] != cfg.model.name:
            raise ValueError(f"{run_dir / 'last.pt'}: holds {ckpt['model_name']}, the config asks for {cfg.model.name}")
    elif main:
        if (run_dir / "last.pt").exists():
            raise FileExistsError(f"{run_dir}: holds a run already (resume it with --resume, or choose --out)")
        run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        attach_log_file(run_dir)
    folder = FaceFolder(cfg.data.root)
    splits = make_splits_for(cfg, folder)
    if main and not resume:
        save_config(cfg, run_dir / "config.yaml")
        splits.save(run_dir / "split.json")
    train_ds, val_ds = datasets(cfg, folder, splits)
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, seed=cfg.seed) if world > 1 else None
    loader_gen = torch.Generator()
    # the shuffle DataLoader(shuffle=True) would make, as batches an epoch resumed within can skip into
    batches = ResumableBatches(sampler or RandomSampler(train_ds, generator=loader_gen), cfg.batch_size,
                               drop_last=len(train_ds) >= cfg.batch_size * world)
    # on a GPU the loader must keep up: pinned batches, and workers that stay up between epochs
    if cfg.data.num_workers > 0:
        import cv2

        cv2.setNumThreads(1)  # inherited by the forked workers (see one_thread_worker)
    fast = {"pin_memory": device.type == "cuda", "worker_init_fn": one_thread_worker,
            "persistent_workers": device.type == "cuda" and cfg.data.num_workers > 0}
    train_loader = DataLoader(train_ds, batch_sampler=batches, num_workers=cfg.data.num_workers, generator=loader_gen,
                              **fast)
    val_loader = DataLoader(val_ds, batch_size=cfg.batch_size, num_workers=cfg.data.num_workers, **fast)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed 256 px batches: let cuDNN pick its fastest kernels once

    torch.manual_seed(cfg.seed)
    window = cfg.model.kwargs.get("pool_window")
    if window and cfg.data.crop and cfg.data.crop < window:
        log.warning("model.kwargs.pool_window=%d is larger than data.crop=%d: every crop is padded up to it; "
                    "set pool_window to the crop's side", window, cfg.data.crop)
    runner = build(cfg.model.name, **cfg.model.kwargs)
    if cfg.model.init and ckpt is None:
        init_from(runner, cfg.model.init)
    runner.to(device, precision=cfg.precision, channels_last=cfg.channels_last)
    model, spec, precision = runner.module, runner.spec, runner.precision
    masks = mask_provider(cfg.mask_source, device, precision) if spec.reads_mask else None
    opt_cls = torch.optim.AdamW if cfg.optim.name == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas,
                        weight_decay=cfg.optim.weight_decay)
    scheduler = None if cfg.scheduler.name == "cosine" else torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.scheduler.factor, patience=cfg.scheduler.patience,
        min_lr=cfg.scheduler.min_lr)  # the cosine sets the rate itself, step by step (lr_at)
    ema = make_ema(model, cfg.ema) if cfg.ema else None
    start, best, best_epoch, bad, spent, stats = 1, -math.inf, 0, 0, 0.0, {"steps": 0}
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler"):
            scheduler.load_state_dict(ckpt["scheduler"])
        if ema is not None and ckpt.get("ema_state_dict") is not None:
            ema.module.load_state_dict(ckpt["ema_state_dict"])
            # the update count goes on (a count of 0 would copy the live weights over the restored average)
            ema.n_averaged.fill_(int(ckpt.get("ema_averaged", ckpt.get("steps", 0))) or 1)
        start, best, bad = ckpt["epoch"] + 1, ckpt["best_metric"], ckpt["bad_epochs"]
        spent = float(ckpt.get("train_seconds", 0.0))
        stats["steps"] = int(ckpt.get("steps", 0))
        best_epoch = best_epoch_from_csv(run_dir / "metrics.csv", cfg.monitor)
        done_batches = int(ckpt.get("epoch_batches", 0))  # written within epoch ``start``: skip what it trained on
        log.info("resuming %s at epoch %d%s (best %s %.4f)", run_dir, start,
                 f", batch {done_batches + 1}" if done_batches else "", cfg.monitor, best)
    budget = Budget(cfg.budget_minutes, spent)
    total_steps = cfg.epochs * max(len(train_loader), 1)
    if ckpt is not None:
        batches.skip = done_batches

    def lr_at() -> float:  # cosine over the time budget, else over the epochs' steps (stats counts them)
        progress = budget.elapsed / budget.seconds if cfg.budget_minutes else stats["steps"] / total_steps
        return cosine_lr(cfg.optim.lr, cfg.scheduler.min_lr, progress)

    cosine = cfg.scheduler.name == "cosine"
    train_runner = Runner(nn.parallel.DistributedDataParallel(model), spec, device=device, precision=precision,
                          channels_last=cfg.channels_last) if world > 1 else runner
    if cfg.compile:  # the step's forward and backward compiled; the same parameters, so saving and EMA are unchanged
        train_runner = Runner(torch.compile(train_runner.net), spec, device=device, precision=precision,
                              channels_last=cfg.channels_last)
    writer = tensorboard(run_dir) if main else None
    log.info("%s: %s, %d train / %d val faces, %s, %s, %d process(es)", cfg.task, cfg.model.name, len(train_ds),
             len(val_ds), device, precision, world)

    def loop_state(epoch: int, extra: dict | None = None) -> dict:  # what last.pt/best.pt hold
        return {"model": model, "spec": spec, "optimizer": optimizer, "scheduler": scheduler, "epoch": epoch,
                "best_metric": best, "bad_epochs": bad, "config": cfg.to_dict(),
                "extra": {"train_seconds": budget.elapsed, "steps": stats["steps"],
                          "ema_state_dict": cpu_state(ema.module) if ema is not None else None,
                          "ema_averaged": int(ema.n_averaged) if ema is not None else 0, **(extra or {})}}

    saved_at = budget.elapsed

    def checkpoint_within(epoch: int, first: int) -> Callable[[int], None]:
        """Write last.pt every checkpoint_minutes of training within ``epoch`` (whose first batch is ``first``):
        marked as the epoch before it plus the batches done, so a resume goes on from the next batch."""
        def after_step(n: int) -> None:
            nonlocal saved_at
            if main and budget.elapsed - saved_at >= cfg.checkpoint_minutes * 60 and not budget.done:
                save_checkpoint(run_dir / "last.pt", **loop_state(epoch - 1, {"epoch_batches": first + n}))
                saved_at = budget.elapsed
                # the progress bar only shows on a terminal: this line tells a run in the background how it goes
                log.info("epoch %d: batch %d/%d, %d steps, lr %.1e, %.1f min trained%s; checkpoint last.pt",
                         epoch, first + n, len(batches.batches), stats["steps"], optimizer.param_groups[0]["lr"],
                         budget.elapsed / 60, f" of {cfg.budget_minutes:g}" if cfg.budget_minutes else "")
        return after_step

    epoch, stopped = start - 1, bad >= cfg.early_stop or budget.done
    for epoch in range(start, cfg.epochs + 1 if not stopped else start):
        loader_gen.manual_seed(cfg.seed * 100_003 + epoch)  # shuffles and worker seeds reproducible on resume
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.time()
        after_step = checkpoint_within(epoch, batches.skip) if cfg.checkpoint_minutes else None
        with progress_bar(main and show_progress) as bar:
            budget.start()
            try:
                train_loss = train_one_epoch(train_runner, train_loader, optimizer, cfg, masks, device, bar,
                                             ema=ema, budget=budget,
                                             lr_at=lr_at if cosine else None, stats=stats,
                                             after_step=after_step)
            except TrainingDiverged as e:
                raise TrainingDiverged(f"{e} of epoch {epoch}; stopped. Last good checkpoint: "
                                       f"{run_dir / 'last.pt' if epoch > 1 else 'none (first epoch)'}") from None
            finally:
                budget.stop()
            scored = Runner(ema.module, spec, device=device, precision=precision,
                            channels_last=cfg.channels_last) if ema is not None else runner
            metrics = evaluate(scored, val_loader, cfg, masks, device, bar) if main else \
                {cfg.monitor: 0.0}
        value = _broadcast(metrics[cfg.monitor], world)
        if not cosine:
            scheduler.step(value)
        improved = value > best
        if improved:
            best, best_epoch, bad = value, epoch, 0
        else:
            bad += 1
        if main:
            state = loop_state(epoch)
            saved_at = budget.elapsed
            if improved:
                save_checkpoint(run_dir / "best.pt", **state)
                save_weights(scored, run_dir / "best.safetensors",
                             extra={"epoch": epoch, cfg.monitor: value, "ema": cfg.ema})
            save_checkpoint(run_dir / "last.pt", **state)
            row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": train_loss,
                   **{f"val_{k}": v for k, v in metrics.items()}, "seconds": round(time.time() - t0, 1),
                   "train_minutes": round(budget.spent / 60, 2), "steps": stats["steps"]}
            append_csv(run_dir / "metrics.csv", row)
            if writer is not None:
                for k, v in row.items():
                    if k != "epoch":
                        writer.add_scalar(k, v, epoch)
                writer.flush()
            log.info("epoch %d/%d  loss %.4f  val %s %.4f%s  lr %.1e  %.0fs", epoch, cfg.epochs, train_loss,
                     cfg.monitor, value, " (best)" if improved else "", row["lr"], row["seconds"])
        if budget.done:
            log.info("time budget of %.0f min spent after epoch %d", cfg.budget_minutes, epoch)
            break
        if bad >= cfg.early_stop and epoch < cfg.epochs and not cosine:
            stopped = True
            break
    if stopped:
        log.info("early stop: no better val %s for %d epochs", cfg.monitor, cfg.early_stop)
    if writer is not None:
        writer.close()
    return FitResult(run_dir, best, best_epoch, epoch, stopped)
