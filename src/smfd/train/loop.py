"""The training loop (nanoGPT style: plain functions around a :class:`~smfd.train.state.TrainState`): ``fit`` ->
``setup``, then per epoch ``run_epoch`` (``train_one_epoch``) and ``evaluate``, and ``save_checkpoint``.

Run folder contents: ``config.yaml`` (resolved), ``split.json``, ``metrics.csv`` (one row per epoch),
``tb/`` (TensorBoard, when installed), ``train.log``, ``last.pt`` and ``best.pt`` (atomic), and
``best.safetensors`` (the best model as plain weights). Under ``torchrun`` the same code runs DDP (gloo on
CPU, nccl on GPU); rank 0 validates and writes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..metrics import dice_loss
from ..models.io import save_weights
from ..models.runner import Runner, resolve_device
from ..precision import to_channels_last
from ..score import metric_rows, summarize_rows
from .checkpoint import save_checkpoint as write_checkpoint
from .config import TrainConfig
from .runlog import append_csv, progress_bar
from .schedule import Budget, cosine_lr, cpu_state
from .state import TrainState, setup

log = logging.getLogger("smfd.train")

Stop = Literal["budget", "early stop"]  # why a run ended before its last epoch


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
                    lr_at: Callable[[], float] | None = None,
                    after_step: Callable[[int], None] | None = None) -> float:
    """One pass over the training data (or until ``budget`` is spent); returns the mean loss.

    ``lr_at``: a per-step learning rate (the cosine schedule); ``ema``: an averaged model updated after each step;
    ``after_step(n)`` is called after the n-th optimizer step (the loop counts the steps and writes its time-based
    checkpoint). Raises :class:`TrainingDiverged` on NaN.
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


# --- fit: set-up (state.py), one epoch, validation, checkpoint ----------------------------------------------


def fit(cfg: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False, progress: bool = True) -> FitResult:
    """Train as ``cfg`` says: Adam or AdamW; the thesis's ReduceLROnPlateau on the monitored validation metric with
    early stopping, or a cosine schedule over the time budget (or the epochs); an optional EMA of the weights; the
    best checkpoint by the monitored metric. ``resume=True`` continues ``run_dir/last.pt``."""
    rank, world, device = _init_distributed(cfg)
    try:
        state = setup(cfg, Path(run_dir), resume=resume, rank=rank, world=world, device=device, progress=progress)
        # a resumed run that had stopped early (or spent its budget) stays stopped
        end: Stop | None = "early stop" if state.bad >= cfg.early_stop or state.budget.done else None
        while end is None and state.epoch < cfg.epochs:
            end = _epoch(state, state.epoch + 1)
        if end == "early stop":
            log.info("early stop: no better val %s for %d epochs", cfg.monitor, cfg.early_stop)
        if state.writer is not None:
            state.writer.close()
        if world > 1:  # every process done with the group before any tears it down (gloo aborted otherwise)
            dist.barrier()
        return FitResult(state.run_dir, state.best, state.best_epoch, state.epoch, end == "early stop")
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _init_distributed(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    """This process's rank, the world size and its device; under ``torchrun`` the process group is set up."""
    rank, world = _dist_info()
    device = resolve_device(cfg.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def _epoch(state: TrainState, epoch: int) -> Stop | None:
    """Train and validate ``epoch``, keep its checkpoints and metrics; whether the run stops after it."""
    cfg = state.cfg
    t0 = time.time()
    with progress_bar(state.main and state.show_progress) as bar:
        train_loss = run_epoch(state, epoch, bar)
        scored = _scored(state)
        metrics = evaluate(scored, state.val_loader, cfg, state.masks, state.device, bar) if state.main else \
            {cfg.monitor: 0.0}
    value = _broadcast(metrics[cfg.monitor], state.world)
    if state.scheduler is not None:
        state.scheduler.step(value)
    improved = value > state.best
    if improved:
        state.best, state.best_epoch, state.bad = value, epoch, 0
    else:
        state.bad += 1
    state.epoch = epoch
    if state.main:
        _save_epoch(state, scored, improved, value)
        _log_epoch(state, train_loss, metrics, value, improved, time.time() - t0)
    if state.budget.done:
        log.info("time budget of %.0f min spent after epoch %d", cfg.budget_minutes, epoch)
        return "budget"
    if state.bad >= cfg.early_stop and epoch < cfg.epochs and state.scheduler is not None:
        return "early stop"
    return None


def run_epoch(state: TrainState, epoch: int, bar=None) -> float:
    """Train ``epoch`` (the rest of it, when resumed within it) or until the time budget is spent; the mean loss."""
    cfg = state.cfg
    state.loader_gen.manual_seed(cfg.seed * 100_003 + epoch)  # shuffles and worker seeds reproducible on resume
    torch.manual_seed(cfg.seed * 100_003 + epoch)
    if state.sampler is not None:
        state.sampler.set_epoch(epoch)
    state.budget.start()
    try:
        return train_one_epoch(state.train_runner, state.train_loader, state.optimizer, cfg, state.masks,
                               state.device, bar, ema=state.ema, budget=state.budget,
                               lr_at=partial(_cosine_lr, state) if state.scheduler is None else None,
                               after_step=partial(_after_step, state, epoch, state.batches.skip))
    except TrainingDiverged as e:
        raise TrainingDiverged(f"{e} of epoch {epoch}; stopped. Last good checkpoint: "
                               f"{state.run_dir / 'last.pt' if epoch > 1 else 'none (first epoch)'}") from None
    finally:
        state.budget.stop()


def _cosine_lr(state: TrainState) -> float:
    """The cosine's rate now: over the time budget, else over the epochs' steps."""
    cfg, budget = state.cfg, state.budget
    total_steps = cfg.epochs * max(len(state.batches.batches), 1)
    progress = budget.elapsed / budget.seconds if cfg.budget_minutes else state.steps / total_steps
    return cosine_lr(cfg.optim.lr, cfg.scheduler.min_lr, progress)


def _after_step(state: TrainState, epoch: int, first: int, n: int) -> None:
    """Count the step; every checkpoint_minutes of training, write last.pt within ``epoch`` (whose first batch was
    ``first``): marked as the epoch before it plus the batches done, so a resume goes on from the next batch."""
    state.steps += 1
    cfg, budget = state.cfg, state.budget
    if not (cfg.checkpoint_minutes and state.main) or budget.done or \
            budget.elapsed - state.saved_at < cfg.checkpoint_minutes * 60:
        return
    save_checkpoint(state, "last.pt", epoch - 1, epoch_batches=first + n)
    # the progress bar only shows on a terminal: this line tells a run in the background how it goes
    log.info("epoch %d: batch %d/%d, %d steps, lr %.1e, %.1f min trained%s; checkpoint last.pt",
             epoch, first + n, len(state.batches.batches), state.steps, state.optimizer.param_groups[0]["lr"],
             budget.elapsed / 60, f" of {cfg.budget_minutes:g}" if cfg.budget_minutes else "")


def _scored(state: TrainState) -> Runner:
    """The net that is validated and saved as best.safetensors: the EMA when there is one."""
    if state.ema is None:
        return state.runner
    return Runner(state.ema.module, state.runner.spec, device=state.device, precision=state.runner.precision,
                  channels_last=state.cfg.channels_last)


def save_checkpoint(state: TrainState, name: str, epoch: int, **extra) -> None:
    """Write ``run_dir/name`` (last.pt, best.pt) as of ``epoch``: the net, optimizer, schedule, EMA and counters,
    ``extra`` at its top level."""
    ema = state.ema
    write_checkpoint(
        state.run_dir / name, model=state.runner.module, spec=state.runner.spec, optimizer=state.optimizer,
        scheduler=state.scheduler, epoch=epoch, best_metric=state.best, bad_epochs=state.bad,
        config=state.cfg.to_dict(),
        extra={"train_seconds": state.budget.elapsed, "steps": state.steps,
               "ema_state_dict": cpu_state(ema.module) if ema is not None else None,
               "ema_averaged": int(ema.n_averaged) if ema is not None else 0, **extra})
    state.saved_at = state.budget.elapsed


def _save_epoch(state: TrainState, scored: Runner, improved: bool, value: float) -> None:
    """The epoch's checkpoints: best.pt and best.safetensors when it improved, last.pt always."""
    if improved:
        save_checkpoint(state, "best.pt", state.epoch)
        save_weights(scored, state.run_dir / "best.safetensors",
                     extra={"epoch": state.epoch, state.cfg.monitor: value, "ema": state.cfg.ema})
    save_checkpoint(state, "last.pt", state.epoch)


def _log_epoch(state: TrainState, train_loss: float, metrics: dict, value: float, improved: bool,
               seconds: float) -> None:
    """The epoch's row of metrics.csv (and TensorBoard) and its log line."""
    cfg = state.cfg
    row = {"epoch": state.epoch, "lr": state.optimizer.param_groups[0]["lr"], "train_loss": train_loss,
           **{f"val_{k}": v for k, v in metrics.items()}, "seconds": round(seconds, 1),
           "train_minutes": round(state.budget.spent / 60, 2), "steps": state.steps}
    append_csv(state.run_dir / "metrics.csv", row)
    if state.writer is not None:
        for k, v in row.items():
            if k != "epoch":
                state.writer.add_scalar(k, v, state.epoch)
        state.writer.flush()
    log.info("epoch %d/%d  loss %.4f  val %s %.4f%s  lr %.1e  %.0fs", state.epoch, cfg.epochs, train_loss,
             cfg.monitor, value, " (best)" if improved else "", row["lr"], row["seconds"])
