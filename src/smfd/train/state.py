"""A training run's state (:class:`TrainState`) and its set-up: the run folder, data, net, optimizer and schedule,
restored from ``last.pt`` when a run is resumed. :mod:`smfd.train.loop` trains it epoch by epoch."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..data import FaceFolder
from ..models import build
from ..models.runner import Runner, resolve_device
from ..score import mask_provider
from .checkpoint import load_checkpoint
from .config import TrainConfig, save_config
from .datasets import datasets, make_splits_for, one_thread_worker
from .init import init_from
from .runlog import attach_log_file, best_epoch_from_csv, tensorboard
from .schedule import Budget, ResumableBatches, make_ema

log = logging.getLogger("smfd.train")


@dataclass
class TrainState:
    """Everything a run carries from epoch to epoch: the nets, the optimizer and schedule, the data, the counters
    a checkpoint stores and the training clock (``budget``)."""

    cfg: TrainConfig
    run_dir: Path
    device: torch.device
    rank: int
    world: int
    show_progress: bool
    runner: Runner  # the net as built: saved, and validated when there is no EMA
    train_runner: Runner  # the same parameters, wrapped for DDP and/or compiled
    masks: Callable | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None  # None: the cosine, set step by step
    ema: nn.Module | None
    train_loader: DataLoader
    val_loader: DataLoader
    batches: ResumableBatches
    sampler: DistributedSampler | None
    loader_gen: torch.Generator
    budget: Budget
    epoch: int = 0  # the last epoch finished
    best: float = -math.inf
    best_epoch: int = 0
    bad: int = 0  # epochs since the monitored metric last improved
    steps: int = 0  # optimizer steps, over resumes
    saved_at: float = 0.0  # budget.elapsed when last.pt was last written
    writer: object | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(cfg: TrainConfig, run_dir: Path, *, resume: bool = False, rank: int = 0, world: int = 1,
          device: torch.device | None = None, progress: bool = True) -> TrainState:
    """The run folder, data, net, optimizer and schedule of a run, restored from ``run_dir/last.pt`` with
    ``resume=True`` (``cfg`` is then the run's own config.yaml, plus overrides such as more epochs)."""
    device = device if device is not None else resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = _open_run(cfg, run_dir, resume, main=rank == 0)
    train_loader, val_loader, sampler, loader_gen = _loaders(cfg, run_dir, resume, rank, world, device)
    runner = _build_runner(cfg, device, init=ckpt is None)
    model = runner.module
    masks = mask_provider(cfg.mask_source, device, runner.precision) if runner.spec.reads_mask else None
    opt_cls = torch.optim.AdamW if cfg.optim.name == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas,
                        weight_decay=cfg.optim.weight_decay)
    scheduler = None if cfg.scheduler.name == "cosine" else torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.scheduler.factor, patience=cfg.scheduler.patience,
        min_lr=cfg.scheduler.min_lr)
    ema = make_ema(model, cfg.ema) if cfg.ema else None
    state = TrainState(cfg, run_dir, device, rank, world, progress, runner, runner, masks, optimizer, scheduler,
                       ema, train_loader, val_loader, train_loader.batch_sampler, sampler, loader_gen,
                       Budget(cfg.budget_minutes))
    if ckpt is not None:
        _restore(state, ckpt)
    state.train_runner = _train_runner(runner, cfg, world, device)  # wraps the restored weights
    state.saved_at = state.budget.elapsed
    state.writer = tensorboard(run_dir) if state.main else None
    log.info("%s: %s, %d train / %d val faces, %s, %s, %d process(es)", cfg.task, cfg.model.name,
             len(train_loader.dataset), len(val_loader.dataset), device, runner.precision, world)
    return state


def _open_run(cfg: TrainConfig, run_dir: Path, resume: bool, main: bool) -> dict | None:
    """The checkpoint a resumed run goes on from (None for a new run, whose folder is made); logs to train.log."""
    ckpt = None
    if resume:
        ckpt = load_checkpoint(run_dir / "last.pt")
        if ckpt["model_name"] != cfg.model.name:
            raise ValueError(f"{run_dir / 'last.pt'}: holds {ckpt['model_name']}, the config asks for {cfg.model.name}")
    elif main:
        if (run_dir / "last.pt").exists():
            raise FileExistsError(f"{run_dir}: holds a run already (resume it with --resume, or choose --out)")
        run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        attach_log_file(run_dir)
    return ckpt


def _loaders(cfg: TrainConfig, run_dir: Path, resume: bool, rank: int, world: int, device: torch.device
             ) -> tuple[DataLoader, DataLoader, DistributedSampler | None, torch.Generator]:
    """The train loader (seeded shuffles in batches a resumed epoch can skip into), its sampler and generator, and
    the validation loader; a new run writes its config.yaml and split.json."""
    folder = FaceFolder(cfg.data.root)
    splits = make_splits_for(cfg, folder)
    if rank == 0 and not resume:
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
    return train_loader, val_loader, sampler, loader_gen


def _build_runner(cfg: TrainConfig, device: torch.device, init: bool) -> Runner:
    """The net, seeded, started from ``model.init`` when ``init`` (a new run), on ``device``."""
    torch.manual_seed(cfg.seed)
    window = cfg.model.kwargs.get("pool_window")
    if window and cfg.data.crop and cfg.data.crop < window:
        log.warning("model.kwargs.pool_window=%d is larger than data.crop=%d: every crop is padded up to it; "
                    "set pool_window to the crop's side", window, cfg.data.crop)
    runner = build(cfg.model.name, **cfg.model.kwargs)
    if cfg.model.init and init:
        init_from(runner, cfg.model.init)
    return runner.to(device, precision=cfg.precision, channels_last=cfg.channels_last)


def _restore(state: TrainState, ckpt: dict) -> None:
    """Load a resumed run's weights, optimizer, schedule, EMA and counters from its last.pt."""
    cfg = state.cfg
    state.runner.module.load_state_dict(ckpt["state_dict"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    if state.scheduler is not None and ckpt.get("scheduler"):
        state.scheduler.load_state_dict(ckpt["scheduler"])
    if state.ema is not None and ckpt.get("ema_state_dict") is not None:
        state.ema.module.load_state_dict(ckpt["ema_state_dict"])
        # the update count goes on (a count of 0 would copy the live weights over the restored average)
        state.ema.n_averaged.fill_(int(ckpt.get("ema_averaged", ckpt.get("steps", 0))) or 1)
    state.epoch, state.best, state.bad = ckpt["epoch"], ckpt["best_metric"], ckpt["bad_epochs"]
    state.budget.spent = float(ckpt.get("train_seconds", 0.0))
    state.steps = int(ckpt.get("steps", 0))
    state.best_epoch = best_epoch_from_csv(state.run_dir / "metrics.csv", cfg.monitor)
    state.batches.skip = int(ckpt.get("epoch_batches", 0))  # written within the next epoch: skip what it trained on
    log.info("resuming %s at epoch %d%s (best %s %.4f)", state.run_dir, state.epoch + 1,
             f", batch {state.batches.skip + 1}" if state.batches.skip else "", cfg.monitor, state.best)


def _train_runner(runner: Runner, cfg: TrainConfig, world: int, device: torch.device) -> Runner:
    """The runner the optimizer steps through: DDP over ``world`` processes and/or compiled, the same parameters
    (saving and the EMA read ``runner`` itself)."""
    spec, precision = runner.spec, runner.precision
    if world > 1:
        runner = Runner(nn.parallel.DistributedDataParallel(runner.module), spec, device=device, precision=precision,
                        channels_last=cfg.channels_last)
    if cfg.compile:  # the step's forward and backward compiled
        runner = Runner(torch.compile(runner.net), spec, device=device, precision=precision,
                        channels_last=cfg.channels_last)
    return runner


__all__ = ["TrainState", "setup"]
