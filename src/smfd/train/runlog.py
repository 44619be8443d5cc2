"""What a run writes as it goes: metrics.csv, TensorBoard, train.log, and the progress bar on a terminal."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger("smfd.train")


def best_epoch_from_csv(path: Path, monitor: str) -> int:
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    key = f"val_{monitor}"
    return int(max(rows, key=lambda r: float(r[key]))["epoch"]) if rows else 0


def append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard not installed: logging to metrics.csv only (pip install tensorboard)")
        return None
    return SummaryWriter(str(run_dir / "tb"))


def attach_log_file(run_dir: Path) -> None:
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


def progress_bar(enabled: bool):
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True)


__all__ = ["append_csv", "attach_log_file", "best_epoch_from_csv", "progress_bar", "tensorboard"]
