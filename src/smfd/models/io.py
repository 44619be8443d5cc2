"""Model weights as safetensors: tensors plus the metadata needed to rebuild the model, and nothing that
runs code on load. A weights file is self-describing: ``load_weights(path)`` needs no config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..fileio import atomic_write_bytes, sha256_file
from .registry import create_model

FORMAT = "smfd-weights-1"


def save_weights(model: nn.Module, path: str | os.PathLike, *, half: bool = False, extra: dict | None = None) -> str:
    """Write ``model``'s state dict (BatchNorm statistics included) and its registry name and options.

    Args:
        half: store floating-point tensors as float16 (half the size; loaded back as float32).
        extra: more JSON-able metadata (e.g. the metrics of the run).

    Returns:
        The file's SHA-256.
    """
    from safetensors.torch import save


    name = getattr(model, "model_name", None)
    if name is None:
        raise ValueError("model was not made by create_model(): its name and options are unknown")
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        state[k] = v.half() if half and v.is_floating_point() else v
    meta = {"format": FORMAT, "model_name": name, "model_kwargs": json.dumps(getattr(model, "model_kwargs", {})),
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


def load_weights(path: str | os.PathLike, *, sha256: str | None = None, map_location: str = "cpu",
                 options: dict | None = None) -> nn.Module:
    """Rebuild a model from a weights file; optionally check its SHA-256 first.

    ``options`` replace model options stored in the file; only options without parameters can change
    (others fail the strict state-dict load), e.g. SMFD-UNet's ``keep_mean``.

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
    model = create_model(meta["model_name"], **{**json.loads(meta["model_kwargs"]), **(options or {})})
    state = load_file(str(path), device=map_location)
    load_state(model, state, str(path))
    return model


def resolve_weights(path: str | os.PathLike) -> Path:
    """A weights file, or a training run folder's ``best.safetensors`` (the weights its best epoch saved)."""
    path = Path(path)
    if path.is_dir():
        if not (path / "best.safetensors").is_file():
            raise FileNotFoundError(f"{path}: run folder holds no best.safetensors")
        return path / "best.safetensors"
    if path.is_file() and path.suffix != ".safetensors":
        raise ValueError(f"{path}: not a .safetensors weights file (give a run folder or its best.safetensors)")
    return path


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
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
        name = getattr(model, "model_name", type(model).__name__)
        raise ValueError(f"{source}: weights do not fit {name} ({detail})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


__all__ = ["canonical_header", "load_state", "load_weights", "read_metadata", "resolve_weights", "save_weights",
           "sha256_file"]
