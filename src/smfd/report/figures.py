"""Figures: training curves from ``metrics.csv`` and layer-wise feature maps (thesis Figs. 4.x)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..fileio import atomic_write_bytes
from .palette import colorize_mask


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("figures need matplotlib: pip install 'smfd[train]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    rgb = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)  # drop matplotlib's alpha
    atomic_write_bytes(path, cv2.imencode(".png", rgb)[1].tobytes())
    return Path(path)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (is {run_dir} a training run?)")
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _init_run(run_dir: Path) -> Path | None:
    """The training run whose weights ``run_dir`` started from (its config's ``model.init``), if that is a run."""
    import yaml

    cfg = run_dir / "config.yaml"
    if not cfg.is_file():
        return None
    init = ((yaml.safe_load(cfg.read_text()) or {}).get("model") or {}).get("init")
    parent = Path(init).parent if init else None
    return parent if parent is not None and (parent / "metrics.csv").is_file() else None


def run_chain(run_dir: str | os.PathLike) -> list[Path]:
    """A run and the runs it continues (``model.init`` from another run's weights), the first run first."""
    chain, seen, run = [], set(), Path(run_dir)
    while run is not None and run.resolve() not in seen:
        seen.add(run.resolve())
        chain.insert(0, run)
        run = _init_run(run)
    return chain


def run_history(run_dir: str | os.PathLike) -> tuple[list[dict], list[int]]:
    """A run's metrics preceded by those of the runs it continues (``model.init`` from another run's weights),
    epochs numbered on across them; also the last epoch of each earlier run (where a continuation starts)."""
    rows, starts = [], []
    for i, r in enumerate(run_chain(run_dir)):
        offset = rows[-1]["epoch"] if rows else 0
        if i:
            starts.append(int(offset))
        rows += [{**m, "epoch": m["epoch"] + offset} for m in read_metrics(r)]
    return rows, starts


def plot_curves(run_dirs: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Loss and validation metrics per epoch for one or more runs (one line per run). A run started from another
    run's weights (``model.init``) is drawn as that run's continuation, a dotted line marking where it starts."""
    plt = _pyplot()
    histories = {Path(r).name: run_history(r) for r in run_dirs}
    runs = {name: rows for name, (rows, _) in histories.items()}
    starts = sorted({s for _, ss in histories.values() for s in ss})
    metric_keys = sorted({k for rows in runs.values() for k in rows[0] if k.startswith("val_") and k != "val_loss"
                          and not k[-1].isdigit()})
    panels = ["loss", *metric_keys, "lr"]
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(panels):]:
        ax.axis("off")
    for ax, key in zip(axes, panels, strict=False):
        for i, (name, rows) in enumerate(runs.items()):  # one colour per run in every panel
            epochs, colour = [r["epoch"] for r in rows], f"C{i}"
            if key == "loss":
                ax.plot(epochs, [r["train_loss"] for r in rows], "-o", ms=3, color=colour, label=f"{name} train")
                ax.plot(epochs, [r["val_loss"] for r in rows], "--o", ms=3, color=colour, label=f"{name} val")
            elif key in rows[0]:
                ax.plot(epochs, [r[key] for r in rows], "-o", ms=3, color=colour, label=name)
        for s in starts:
            ax.axvline(s + 0.5, color="grey", ls=":", lw=1)
        ax.set_title(key.replace("val_", "validation "))
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if key == "lr":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = _save(fig, out)
    plt.close(fig)
    return path


def strongest_channel(t: torch.Tensor) -> int:
    """The channel of a (C, H, W) feature map that varies most over the image (a ReLU map's first channel is often
    all zero, which shows nothing)."""
    return int(t.flatten(1).float().std(1).nan_to_num(0).argmax())


def _feature_to_image(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) -> RGB uint8: 3 channels as RGB, 5 as argmax class colours, otherwise the channel that varies
    most (:func:`strongest_channel`)."""
    c = t.shape[0]
    if c == 5:
        return colorize_mask(t.argmax(0).numpy())
    x = t[:3] if c == 3 else t[strongest_channel(t)][None]
    lo, hi = x.amin(), x.amax()
    x = ((x - lo) / (hi - lo + 1e-8) * 255).round().byte().permute(1, 2, 0).numpy()
    return x if c == 3 else np.repeat(x, 3, axis=2)


def feature_maps(model: nn.Module, inputs: tuple[torch.Tensor, ...], out: str | os.PathLike, *, cols: int = 6,
                 run: Callable[[], object] | None = None) -> Path:
    """Run one input through ``model`` and draw ``inputs`` and the output of each encoder, upsampling, decoder and
    head block (for more than 3 channels, the one that varies most; 5 channels as a mask). ``run``: how to run it
    (a runner's call, which also resizes and pads as the net is run); default ``model(*inputs)``."""
    plt = _pyplot()
    captured: list[tuple[str, torch.Tensor]] = []
    hooks = []
    for name, module in model.named_modules():
        depth = name.count(".")
        top = name.split(".")[0]
        if (top in ("encoder", "image_encoder", "mask_encoder", "decoder", "up") and depth == 1) or (
                top in ("head",) and depth == 1) or name == "post":
            hooks.append(module.register_forward_hook(
                lambda m, i, o, name=name: captured.append((name, o.detach()[0].float().cpu()))))
    model.eval()
    with torch.no_grad():
        run() if run is not None else model(*inputs)
    for h in hooks:
        h.remove()
    n = len(captured) + len(inputs)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows))
    axes = np.atleast_1d(axes).ravel()
    items = [(f"input {i}", x[0]) for i, x in enumerate(inputs)] + captured
    for ax, (name, t) in zip(axes, items, strict=False):
        ax.imshow(_feature_to_image(t))
        channel = "" if t.shape[0] in (3, 5) else f", channel {strongest_channel(t)}"
        ax.set_title(f"{name}\n{t.shape[0]}x{t.shape[1]}x{t.shape[2]}{channel}", fontsize=7)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    path = _save(fig, out)
    plt.close(fig)
    return path
