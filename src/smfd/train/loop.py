"""The training loop (nanoGPT style: plain functions): ``fit`` -> ``train_one_epoch`` / ``evaluate``.

Run folder contents: ``config.yaml`` (resolved), ``split.json``, ``metrics.csv`` (one row per epoch),
``tb/`` (TensorBoard, when installed), ``train.log``, ``last.pt`` and ``best.pt`` (atomic), and
``best.safetensors`` (the best model as plain weights). Under ``torchrun`` the same code runs DDP (gloo on
CPU, nccl on GPU); rank 0 validates and writes.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, Sampler

from ..data import FaceDeblurDataset, FaceFolder, JointAugment, Splits, make_splits
from ..degrade import make_degradation
from ..infer.steps import restore
from ..metrics import colour_shift, dice_loss, dice_per_class, jaccard_per_class, mse255, psnr, ssim
from ..models import create_model, model_task
from ..models.io import load_state, load_weights, save_weights
from ..models.mask_generator import mask_logits, mask_probabilities
from ..precision import autocast, resolve_precision, to_channels_last
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .config import TrainConfig, save_config

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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but no CUDA device is available")
    return torch.device(name)


# --- masks for the deblurring task -----------------------------------------------------------------------


def mask_provider(source: str, device: torch.device) -> Callable[[dict], torch.Tensor]:
    """``gt``: the batch's one-hot ground truth; ``generator:PATH``: softmax of a trained mask generator
    (a run folder, checkpoint or weights file) applied to the blurry face. Returns batch -> (B, 5, H, W)."""
    if source == "gt":
        return lambda batch: batch["mask_onehot"].to(device)
    generator = to_channels_last(load_model(source.split(":", 1)[1]).to(device).eval())
    if model_task(generator.model_name) != "mask":
        raise ValueError(f"{source}: not a mask model ({generator.model_name})")

    @torch.no_grad()
    def provide(batch: dict) -> torch.Tensor:
        return mask_probabilities(generator, to_channels_last(batch["lq"].to(device)))

    return provide


# --- one step, one epoch, one evaluation -------------------------------------------------------------------


def _forward(model: nn.Module, batch: dict, task: str, masks: Callable | None, device: torch.device,
             precision: str = "fp32", channels_last: bool = True) -> torch.Tensor:
    """The net's output for a batch, run at ``precision`` (a resolved one), in channels_last if asked; in fp32."""
    lq = batch["lq"].to(device, non_blocking=True)
    lq = to_channels_last(lq) if channels_last else lq
    with autocast(precision, device):
        if task == "mask":
            return mask_logits(model, lq)
        needs_mask = getattr(getattr(model, "module", model), "mask_channels", 0)
        return restore(model, lq, to_channels_last(masks(batch)) if needs_mask else None)


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


class Budget:
    """Training wall-clock so far (carried over a resume) against ``budget_minutes``; drives the cosine schedule."""

    def __init__(self, minutes: float | None, spent: float = 0.0) -> None:
        self.seconds = minutes * 60 if minutes else None
        self.spent, self._start = spent, None

    def start(self) -> None:
        self._start = time.monotonic()

    def stop(self) -> None:
        if self._start is not None:
            self.spent += time.monotonic() - self._start
            self._start = None

    @property
    def elapsed(self) -> float:
        return self.spent + (time.monotonic() - self._start if self._start is not None else 0.0)

    @property
    def done(self) -> bool:
        return self.seconds is not None and self.elapsed >= self.seconds


def cosine_lr(base: float, min_lr: float, progress: float) -> float:
    """Cosine decay from ``base`` to ``min_lr`` over ``progress`` in [0, 1]."""
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


class ResumableBatches(Sampler):
    """Batches of ``sampler`` (a seeded shuffle), leaving out the first ``skip`` of them once: an epoch resumed
    from a checkpoint written within it sees the rest of the same order, without loading the batches it left."""

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool) -> None:
        self.batches, self.skip = BatchSampler(sampler, batch_size, drop_last), 0

    def __iter__(self):
        batches = iter(self.batches)
        skip, self.skip = self.skip, 0
        for _ in range(skip):
            next(batches, None)
        yield from batches

    def __len__(self) -> int:
        return len(self.batches) - self.skip


def train_one_epoch(model, loader, optimizer, cfg: TrainConfig, masks, device, progress=None, *,
                    precision: str = "fp32", ema=None, budget: Budget | None = None,
                    lr_at: Callable[[], float] | None = None, stats: dict | None = None,
                    after_step: Callable[[int], None] | None = None) -> float:
    """One pass over the training data (or until ``budget`` is spent); returns the mean loss.

    ``lr_at``: a per-step learning rate (the cosine schedule); ``ema``: an averaged model updated after each step;
    ``stats["steps"]`` (if given) counts the optimizer steps; ``after_step(n)`` is called after the n-th batch
    (the time-based checkpoint). Raises :class:`TrainingDiverged` on NaN.
    """
    model.train()
    total, count = 0.0, 0
    task = progress.add_task("train", total=len(loader)) if progress else None
    for step, batch in enumerate(loader):
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at()
        out = _forward(model, batch, cfg.task, masks, device, precision, cfg.channels_last)
        loss = _loss(cfg, out, batch, device)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss.item()} at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(getattr(model, "module", model))
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
def evaluate(model, loader, cfg: TrainConfig, masks, device, progress=None, per_image: bool = False,
             precision: str = "fp32") -> dict:
    """Validation/test metrics. Mask task: Dice and Jaccard per class (NaN-aware means), then averaged;
    deblur task: PSNR, SSIM, MSE (0-255) on outputs clamped to [0, 1]. Also the loss.

    With ``per_image=True`` the dict also holds ``rows``: one dict of metrics per image (with its path).
    """
    model.eval()
    rows, losses, n = [], 0.0, 0
    task = progress.add_task("validate", total=len(loader)) if progress else None
    for batch in loader:
        out = _forward(model, batch, cfg.task, masks, device, precision, cfg.channels_last)
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


def metric_rows(out: torch.Tensor, batch: dict, task: str) -> list[dict]:
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


def summarize_rows(rows: list[dict], task: str) -> dict:
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


# --- data, distributed set-up -------------------------------------------------------------------------------


def make_splits_for(cfg: TrainConfig, folder: FaceFolder) -> Splits:
    if cfg.data.split:
        splits = Splits.load(cfg.data.split)
        unknown = set(splits.test) | set(splits.trainval)
        unknown -= set(folder.ids)
        if unknown:
            raise ValueError(f"{cfg.data.split}: {len(unknown)} ids are not in {folder.root}, e.g. {min(unknown)}")
        return splits
    return make_splits(folder.ids, seed=cfg.data.split_seed, subset=cfg.data.subset, folds=cfg.data.folds,
                       test_fraction=cfg.data.test_fraction)


def limit_ids(train_ids: list[str], val_ids: list[str], cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """Apply ``train_limit``/``val_limit`` with a seeded random sample of each side.

    A plain prefix would give every fold k >= 1 the same training faces (the folds are concatenated in order,
    so the first N are always fold 0's): the cross-validation folds would not differ.
    """
    rng = np.random.default_rng([cfg.data.split_seed, cfg.data.fold])
    out = []
    for ids, limit in ((train_ids, cfg.data.train_limit), (val_ids, cfg.data.val_limit)):
        if limit is not None and limit < len(ids):
            ids = sorted(ids[i] for i in rng.choice(len(ids), size=limit, replace=False))
        out.append(list(ids))
    return out[0], out[1]


def _datasets(cfg: TrainConfig, folder: FaceFolder, splits: Splits) -> tuple[FaceDeblurDataset, FaceDeblurDataset]:
    train_ids, val_ids = limit_ids(*splits.fold(cfg.data.fold), cfg)
    grey = cfg.task == "mask"
    common = {"size": cfg.data.size, "grayscale": grey}
    # a mask net with a working size learns on whole faces resized to it (validation: full size, the net resizes)
    work_size = cfg.model.kwargs.get("work_size") if grey else None
    degradation = make_degradation(cfg.data.degradation, cfg.data.realistic_share, cfg.data.lowres_share)
    train = FaceDeblurDataset(folder, train_ids, train=True, augment=JointAugment() if cfg.data.augment else None,
                              crop=cfg.data.crop, work_size=work_size, degradation=degradation, **common)
    val = FaceDeblurDataset(folder, val_ids, train=False, seed=cfg.data.seed, degradation=degradation, **common)
    return train, val


def _one_thread_worker(_: int) -> None:
    """A loader worker degrades one face at a time: torch's own thread pool would only oversubscribe the cores the
    other workers use. (OpenCV's is set to one thread in the parent before the workers fork: setting it inside a
    forked worker, after the parent used OpenCV's pool, deadlocks.)"""
    torch.set_num_threads(1)


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
        _attach_log_file(run_dir)
    folder = FaceFolder(cfg.data.root)
    splits = make_splits_for(cfg, folder)
    if main and not resume:
        save_config(cfg, run_dir / "config.yaml")
        splits.save(run_dir / "split.json")
    train_ds, val_ds = _datasets(cfg, folder, splits)
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, seed=cfg.seed) if world > 1 else None
    loader_gen = torch.Generator()
    # the shuffle DataLoader(shuffle=True) would make, as batches an epoch resumed within can skip into
    batches = ResumableBatches(sampler or RandomSampler(train_ds, generator=loader_gen), cfg.batch_size,
                               drop_last=len(train_ds) >= cfg.batch_size * world)
    # on a GPU the loader must keep up: pinned batches, and workers that stay up between epochs
    if cfg.data.num_workers > 0:
        import cv2

        cv2.setNumThreads(1)  # inherited by the forked workers (see _one_thread_worker)
    fast = {"pin_memory": device.type == "cuda", "worker_init_fn": _one_thread_worker,
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
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    if cfg.model.init and ckpt is None:
        _init_from(model, cfg.model.init)
    model = model.to(device)
    if cfg.channels_last:
        model = to_channels_last(model)
    precision = resolve_precision(cfg.precision, device)
    masks = mask_provider(cfg.mask_source, device) if cfg.task == "deblur" else None
    opt_cls = torch.optim.AdamW if cfg.optim.name == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas,
                        weight_decay=cfg.optim.weight_decay)
    scheduler = None if cfg.scheduler.name == "cosine" else torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.scheduler.factor, patience=cfg.scheduler.patience,
        min_lr=cfg.scheduler.min_lr)  # the cosine sets the rate itself, step by step (lr_at)
    ema = _make_ema(model, cfg.ema) if cfg.ema else None
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
        best_epoch = _best_epoch_from_csv(run_dir / "metrics.csv", cfg.monitor)
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
    train_model = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    writer = _tensorboard(run_dir) if main else None
    log.info("%s: %s, %d train / %d val faces, %s, %s, %d process(es)", cfg.task, cfg.model.name, len(train_ds),
             len(val_ds), device, precision, world)

    def loop_state(epoch: int, extra: dict | None = None) -> dict:  # what last.pt/best.pt hold
        return {"model": model, "optimizer": optimizer, "scheduler": scheduler, "epoch": epoch,
                "best_metric": best, "bad_epochs": bad, "config": cfg.to_dict(),
                "extra": {"train_seconds": budget.elapsed, "steps": stats["steps"],
                          "ema_state_dict": _cpu_state(ema.module) if ema is not None else None,
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
        with _progress_bar(main and show_progress) as bar:
            budget.start()
            try:
                train_loss = train_one_epoch(train_model, train_loader, optimizer, cfg, masks, device, bar,
                                             precision=precision, ema=ema, budget=budget,
                                             lr_at=lr_at if cosine else None, stats=stats,
                                             after_step=after_step)
            except TrainingDiverged as e:
                raise TrainingDiverged(f"{e} of epoch {epoch}; stopped. Last good checkpoint: "
                                       f"{run_dir / 'last.pt' if epoch > 1 else 'none (first epoch)'}") from None
            finally:
                budget.stop()
            scored = ema.module if ema is not None else model
            metrics = evaluate(scored, val_loader, cfg, masks, device, bar, precision=precision) if main else \
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
                save_weights(_named(scored, model), run_dir / "best.safetensors",
                             extra={"epoch": epoch, cfg.monitor: value, "ema": cfg.ema})
            save_checkpoint(run_dir / "last.pt", **state)
            row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": train_loss,
                   **{f"val_{k}": v for k, v in metrics.items()}, "seconds": round(time.time() - t0, 1),
                   "train_minutes": round(budget.spent / 60, 2), "steps": stats["steps"]}
            _append_csv(run_dir / "metrics.csv", row)
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


def ema_decay(decay: float, averaged: int) -> float:
    """The EMA's decay after ``averaged`` updates, warmed up as (1 + n) / (10 + n) (timm's ModelEmaV3 warm-up):
    a fixed 0.998 would keep ~1/e of the weights of 500 steps ago, which on a CPU budget of a few hundred steps
    is most of the run; the warm-up lets the average follow the early, fast-moving weights."""
    return min(decay, (1.0 + averaged) / (10.0 + averaged))


def _make_ema(model: nn.Module, decay: float):
    from torch.optim.swa_utils import AveragedModel

    def update(averaged_params, params, num_averaged):
        d = ema_decay(decay, int(num_averaged))
        if torch.is_floating_point(averaged_params[0]):
            torch._foreach_lerp_(averaged_params, params, 1.0 - d)
        else:  # integer buffers (BatchNorm's batch counters) follow the live net
            for a, p in zip(averaged_params, params, strict=True):
                a.copy_(p)

    # use_buffers: BatchNorm statistics are averaged with the weights, so the averaged net is self-consistent
    ema = AveragedModel(model, multi_avg_fn=update, use_buffers=True)
    ema.module.model_name, ema.module.model_kwargs = model.model_name, model.model_kwargs
    return ema


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _named(scored: nn.Module, model: nn.Module) -> nn.Module:
    scored.model_name, scored.model_kwargs = model.model_name, model.model_kwargs
    return scored


def _init_from(model: nn.Module, path: str) -> None:
    """Load an smfd safetensors file (never a pickle) into ``model``; its architecture must match."""
    source = load_weights(path)
    if (source.model_name, model.model_name) == ("nafnet", "nafnet_mask"):
        warm_start_mask_nafnet(model, source, path)
        return
    if source.model_name != model.model_name:
        raise ValueError(f"model.init: {path} holds {source.model_name}, the config trains {model.model_name}")
    if source.model_kwargs != model.model_kwargs:
        log.warning("model.init: %s was made with options %s, the config has %s", path, source.model_kwargs,
                    model.model_kwargs)
    load_state(model, source.state_dict(), path)
    log.info("initialised %s from %s", model.model_name, path)


def warm_start_mask_nafnet(model: nn.Module, plain: nn.Module, source: str = "plain NAFNet") -> None:
    """Start a mask-guided NAFNet from a plain one: the shared body takes the plain net's weights and the mask
    fusion (the 1x1 projections that add the mask features to the image branch) starts at zero, so before the
    first step the guided net gives exactly the plain net's outputs and training adds what the mask is worth
    (the zero-initialised branch of ControlNet)."""
    own, theirs = model.state_dict(), plain.state_dict()
    missing = [k for k in theirs if k not in own]
    extra = [k for k in own if k not in theirs and not k.startswith(("mask_levels.", "mask_down.", "fuse."))]
    if missing or extra or any(own[k].shape != v.shape for k, v in theirs.items()):
        raise ValueError(f"model.init: {source} does not fit {model.model_name}'s image branch "
                         f"(options {plain.model_kwargs} vs {model.model_kwargs})")
    load_state(model, {**own, **theirs}, source)
    with torch.no_grad():
        for conv in model.fuse:
            conv.weight.zero_()
            conv.bias.zero_()
    log.info("initialised %s from the plain NAFNet %s (mask fusion at zero)", model.model_name, source)


def _best_epoch_from_csv(path: Path, monitor: str) -> int:
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    key = f"val_{monitor}"
    return int(max(rows, key=lambda r: float(r[key]))["epoch"]) if rows else 0


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard not installed: logging to metrics.csv only (pip install tensorboard)")
        return None
    return SummaryWriter(str(run_dir / "tb"))


def _attach_log_file(run_dir: Path) -> None:
    target = str((run_dir / "train.log").resolve())
    for h in list(log.handlers):
        if isinstance(h, logging.FileHandler):
            log.removeHandler(h)
            h.close()
    handler = logging.FileHandler(target)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress_bar(enabled: bool):
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True)
