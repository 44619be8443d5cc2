"""Model weights as safetensors: tensors plus the metadata needed to rebuild the net, and nothing that runs code on
load. A weights file is self-describing: ``load_weights(path)`` needs no config and gives a :class:`Runner`.

:func:`load_runner` is the one loader for every place a net is named by a path: a weights file, a training run
folder (its best weights) or a training checkpoint (read with ``torch.load(weights_only=True)``: tensors and plain
containers only)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..fileio import atomic_write_bytes, sha256_file
from .registry import build
from .runner import Runner

FORMAT = "smfd-weights-1"


def save_weights(runner: Runner, path: str | os.PathLike, *, half: bool = False, extra: dict | None = None) -> str:
    """Write a runner's net's state dict (BatchNorm statistics included) and its spec's registry name and options.

    Args:
        half: store floating-point tensors as float16 (half the size; loaded back as float32).
        extra: more JSON-able metadata (e.g. the metrics of the run).

    Returns:
        The file's SHA-256.
    """
    from safetensors.torch import save

    state = {}
    for k, v in runner.module.state_dict().items():
        v = v.detach().cpu().contiguous()
        state[k] = v.half() if half and v.is_floating_point() else v
    meta = {"format": FORMAT, "model_name": runner.spec.name, "model_kwargs": json.dumps(runner.spec.options),
            "dtype": "float16" if half else "float32", "extra": json.dumps(extra or {})}
    atomic_write_bytes(path, canonical_header(save(state, metadata=meta)))
    return sha256_file(path)


def canonical_header(data: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted, so equal weights give equal bytes (and SHA-256).

    safetensors writes ``__metadata__`` in a random order on each save (safetensors issue #584); the tensor
    offsets in the header are relative to the end of the header, so re-serialising it moves no data.
    """
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header with spaces to keep the data 8-byte aligned
    return len(header).to_bytes(8, "little") + header + data[8 + n :]


def read_metadata(path: str | os.PathLike) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a safetensors weights file ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not an smfd weights file (format {meta.get('format')!r})")
    return meta


def load_weights(path: str | os.PathLike, *, sha256: str | None = None, options: dict | None = None) -> Runner:
    """Rebuild a net from a weights file as a :class:`Runner` (on the CPU, fp32); optionally check its SHA-256.

    ``options`` replace options stored in the file; only options without parameters can change (others fail the
    strict state-dict load), e.g. ``keep_mean``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: checksum mismatch, not an smfd weights file, wrong architecture, or non-finite weights.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if sha256 is not None and sha256_file(path) != sha256:
        raise ValueError(f"{path}: checksum mismatch (the file is corrupt or not the expected weights)")
    meta = read_metadata(path)
    try:
        stored = json.loads(meta.get("model_kwargs", "{}"))
    except json.JSONDecodeError:
        stored = None
    if not isinstance(stored, dict) or not isinstance(meta.get("model_name"), str):
        raise ValueError(f"{path}: not an smfd weights file (its name and options are unreadable)")
    runner = build(meta["model_name"], **{**stored, **(options or {})})
    load_state(runner.module, load_file(str(path)), str(path), runner.spec.name)
    return runner


def resolve_model_path(path: str | os.PathLike) -> Path:
    """A run folder means its best net (best.safetensors, else best.pt, else last.pt); files are taken as they are."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path}: run folder holds no best.safetensors, best.pt or last.pt")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run folder, checkpoint or weights file")
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """A training checkpoint's contents, loaded with ``weights_only=True`` (never arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: one clear line
        raise ValueError(f"{path}: not a readable smfd checkpoint ({type(e).__name__})") from None


def load_runner(path: str | os.PathLike, options: dict | None = None, *, checkpoints: bool = True) -> Runner:
    """A :class:`Runner` from a run folder, a checkpoint (.pt) or a weights file (.safetensors); ``options`` replace
    stored options that have no parameters (see :func:`load_weights`). ``checkpoints=False`` (the product's
    commands, which read users' files): safetensors only, never a pickle-format file."""
    path = resolve_model_path(path)
    if path.suffix == ".safetensors":
        return load_weights(path, options=options)
    if not checkpoints:
        raise ValueError(f"{path}: not a .safetensors weights file (give a run folder or its best.safetensors)")
    ckpt = read_checkpoint(path)
    runner = build(ckpt["model_name"], **{**ckpt["model_kwargs"], **(options or {})})
    load_state(runner.module, ckpt["state_dict"], str(path), runner.spec.name)
    return runner


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str, name: str | None = None) -> None:
    """Load a state dict strictly, with one clear error for architecture mismatches or NaN/inf weights."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{source}: weights contain NaN or inf (e.g. {bad[0]})")
    own = model.state_dict()
    missing, unexpected = set(own) - set(state), set(state) - set(own)
    shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        if missing:
            detail = f"missing {sorted(missing)[:2]}"
        elif unexpected:
            detail = f"unexpected {sorted(unexpected)[:2]}"
        else:
            k = shapes[0]
            detail = f"shape of {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        raise ValueError(f"{source}: weights do not fit {name or type(model).__name__} ({detail})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


__all__ = ["canonical_header", "load_runner", "load_state", "load_weights", "read_checkpoint", "read_metadata",
           "resolve_model_path", "save_weights", "sha256_file"]
