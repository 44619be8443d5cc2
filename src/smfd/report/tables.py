"""Markdown/CSV tables with mean ± SD rows, like the thesis's Tables 4.1-4.4."""

from __future__ import annotations

import math
import os

import numpy as np

from ..fileio import atomic_write_bytes


def fmt(v, digits: int = 4) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, SD (n - 1) and count of the values that are not NaN; the SD is NaN for fewer than two values or where
    one is infinite (the PSNR of an output identical to its target)."""
    vals = np.asarray(values, dtype=float)
    vals = vals[~np.isnan(vals)]
    mean = float(vals.mean()) if len(vals) else math.nan
    sd = float(vals.std(ddof=1)) if len(vals) > 1 and np.isfinite(vals).all() else math.nan
    return mean, sd, len(vals)


def mean_sd_row(rows: list[dict], keys: list[str], label: str, label_key: str) -> dict:
    out = {label_key: label}
    for k in keys:
        mean, sd, n = mean_sd([r[k] for r in rows if isinstance(r.get(k), (int, float))])
        out[k] = f"{mean:.4f} ± {sd:.4f}" if not math.isnan(sd) else fmt(mean) if n else "n/a"
    return out


def markdown_table(rows: list[dict], columns: list[str], title: str = "") -> str:
    lines = [f"# {title}\n"] if title else []
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(path_stem: str | os.PathLike, rows: list[dict], columns: list[str], title: str = "",
                footer: str = "") -> None:
    """Write ``<stem>.md`` (with title and footer) and ``<stem>.csv``."""
    md = markdown_table(rows, columns, title) + (f"\n{footer}\n" if footer else "")
    atomic_write_bytes(f"{path_stem}.md", md.encode())
    csv_lines = [",".join(columns)] + [",".join(fmt(r.get(c, ""), 6).replace(",", "") for c in columns) for r in rows]
    atomic_write_bytes(f"{path_stem}.csv", ("\n".join(csv_lines) + "\n").encode())
