"""Training checkpoints: model, optimizer, scheduler and loop state in one file, written atomically.

Loaded with ``torch.load(weights_only=True)``: only tensors and plain containers, never arbitrary objects.
Finished models are also exported as safetensors (:mod:`smfd.models.io`) for inference and shipping.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from ..fileio import atomic_write_bytes
from ..models import create_model
from ..models.io import load_state, load_weights


def save_checkpoint(path: str | os.PathLike, *, model: nn.Module, optimizer=None, scheduler=None, epoch: int,
                    best_metric: float, bad_epochs: int, config: dict, extra: dict | None = None) -> None:
    """``extra``: more loop state kept at the top level (e.g. ``train_seconds``, ``ema_state_dict``)."""
    state = {
        "model_name": model.model_name,
        "model_kwargs": dict(model.model_kwargs),
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


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: one clear line
        raise ValueError(f"{path}: not a readable smfd checkpoint ({type(e).__name__})") from None


def resolve_model_path(path: str | os.PathLike) -> Path:
    """A run folder means its best model (best.safetensors, else best.pt); files are taken as they are."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path}: run folder holds no best.safetensors, best.pt or last.pt")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run folder, checkpoint or weights file")
    return path


def load_model(path: str | os.PathLike, options: dict | None = None) -> nn.Module:
    """Rebuild a model from a run folder, a checkpoint (.pt) or a weights file (.safetensors); ``options``
    replace stored model options that have no parameters (see :func:`smfd.models.io.load_weights`)."""
    path = resolve_model_path(path)
    if path.suffix == ".safetensors":
        return load_weights(path, options=options)
    ckpt = load_checkpoint(path)
    model = create_model(ckpt["model_name"], **{**ckpt["model_kwargs"], **(options or {})})
    load_state(model, ckpt["state_dict"], str(path))
    return model
