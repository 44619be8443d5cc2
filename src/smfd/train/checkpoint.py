"""Training checkpoints: model, optimizer, scheduler and loop state in one file, written atomically.

Loaded with ``torch.load(weights_only=True)``: only tensors and plain containers, never arbitrary objects. A
checkpoint's net is run like any other through :func:`smfd.models.io.load_runner`; finished nets are also written
as safetensors (:mod:`smfd.models.io`) for inference and shipping.
"""

from __future__ import annotations

import io
import os

import torch
from torch import nn

from .. import __version__
from ..fileio import atomic_write_bytes
from ..models.io import read_checkpoint
from ..models.runner import NetSpec


def save_checkpoint(path: str | os.PathLike, *, model: nn.Module, spec: NetSpec, optimizer=None, scheduler=None,
                    epoch: int, best_metric: float, bad_epochs: int, config: dict, extra: dict | None = None) -> None:
    """``model``: the net being trained, ``spec`` its contract (name and options are stored); ``extra``: more loop
    state kept at the top level (e.g. ``train_seconds``, ``ema_state_dict``)."""
    state = {
        "model_name": spec.name,
        "model_kwargs": dict(spec.options),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "best_metric": best_metric,
        "bad_epochs": bad_epochs,
        "config": config,
        "version": __version__,
        **(extra or {}),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


load_checkpoint = read_checkpoint  # the loop state written by save_checkpoint, read back
