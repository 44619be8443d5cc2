"""The ``smfd`` command line: thin wrappers around the library.

Library errors become one line on stderr and a non-zero exit; ``smfd --debug ...`` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Deblur face images guided by semantic face masks (SMFD-UNet).",
    pretty_exceptions_enable=False,
)
prepare_app = typer.Typer(no_args_is_help=True, help="Convert public datasets to the smfd folder layout.")
app.add_typer(prepare_app, name="prepare")

console = Console(stderr=True, soft_wrap=True)  # errors stay one line, however long
_state = {"debug": False}


class CliError(Exception):
    """An error already worded for the user; exits with the given code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    )  # fmt: skip


def _report_failures(failures: list[tuple[str, str]], total: int) -> None:
    if failures:
        console.print(f"[red]{len(failures)} of {total} inputs failed:[/red]")
        for name, msg in failures:
            console.print(f"  {name}: {msg}", markup=False, highlight=False)
        raise CliError(f"{len(failures)} of {total} inputs failed", code=1)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def degrade(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (created if missing).")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives byte-identical outputs.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Degrade sharp images with the thesis pipeline; writes PNGs and the drawn parameters (params.jsonl).

    Image k of the input list uses the generator ``numpy.random.default_rng([seed, k])``.
    """
    from .data.io import atomic_write_bytes, expand_inputs, read_image, write_image
    from .degrade import DegradationPipeline

    files = expand_inputs(inputs)
    if not files:
        raise CliError("no input images found")
    names = [f.stem + ".png" for f in files]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CliError(f"two inputs would both be written as {sorted(dup)[0]}; rename one")
    out.mkdir(parents=True, exist_ok=True)
    targets = [out / n for n in names] + [out / "params.jsonl"]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise CliError(f"{existing[0]}: already exists (use --overwrite to replace)")
    pipe = DegradationPipeline()
    records, failures = [], []
    with _progress() as bar:
        task = bar.add_task("degrading", total=len(files))
        for k, (src, name) in enumerate(zip(files, names, strict=True)):
            try:
                lq, params = pipe(read_image(src), np.random.default_rng([seed, k]))
                write_image(out / name, lq)
                records.append({"input": str(src), "output": name, "seed": seed, "index": k,
                                "params": params.to_dict()})
            except (OSError, ValueError) as e:
                failures.append((str(src), str(e)))
            bar.advance(task)
    atomic_write_bytes(out / "params.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode())
    console.print(f"wrote {len(records)} degraded images and params.jsonl to {out}")
    _report_failures(failures, len(files))


@prepare_app.command("celebamask")
def prepare_celebamask(
    root: Annotated[Path, typer.Argument(help="CelebAMask-HQ root (CelebA-HQ-img/, CelebAMask-HQ-mask-anno/).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder: images/ and masks/ are written there.")],
    size: Annotated[int, typer.Option(help="Output side in pixels.")] = 256,
    limit: Annotated[int | None, typer.Option(help="Convert only the first N faces.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Convert CelebAMask-HQ to images/{id}.jpg + masks/{id}.png with the 5 merged classes."""
    from .data.celebamask import list_indices, load_face
    from .data.io import write_image

    if size < 16:
        raise CliError(f"--size must be at least 16, got {size}")
    indices = list_indices(root)[:limit]
    failures = []
    written = 0
    with _progress() as bar:
        task = bar.add_task("converting", total=len(indices))
        for i in indices:
            img_out, mask_out = out / "images" / f"{i:05d}.jpg", out / "masks" / f"{i:05d}.png"
            try:
                if not overwrite and (img_out.exists() or mask_out.exists()):
                    raise FileExistsError(f"{img_out}: already exists (use --overwrite to replace)")
                img, mask = load_face(root, i, size)
                write_image(mask_out, mask)
                write_image(img_out, img)
                written += 1
            except (OSError, ValueError) as e:
                failures.append((str(i), str(e)))
            bar.advance(task)
    console.print(f"wrote {written} faces to {out}")
    _report_failures(failures, len(indices))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("smfd-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the degradations.")] = 0,
) -> None:
    """Degrade the bundled sample faces and write a side-by-side picture (sharp | degraded)."""
    from .data import FaceFolder
    from .data.io import write_image
    from .degrade import DegradationPipeline
    from .report import make_grid
    from .samples import samples_dir

    folder = FaceFolder(samples_dir())
    pipe = DegradationPipeline()
    rows = []
    for k, i in enumerate(folder.ids):
        sharp, _ = folder.read(i)
        lq, _ = pipe(sharp, np.random.default_rng([seed, k]))
        rows.append([sharp, lq])
    path = write_image(out / "side_by_side.png", make_grid(rows, ["sharp", "degraded (thesis pipeline)"]))
    typer.echo(f"wrote {path}")


@app.command()
def summary(
    models: Annotated[list[str] | None, typer.Argument(help="Model names (default: every registered model).")] = None,
    size: Annotated[int, typer.Option(help="Input side for GFLOPs and latency.")] = 256,
    runs: Annotated[int, typer.Option(help="Timed CPU forward passes per model (median shown); 0: no timing.")] = 5,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's choice).")] = None,
) -> None:
    """Parameters (thesis/Keras convention), GFLOPs and CPU latency of the registered models."""
    import torch
    from rich.table import Table

    from .models import THESIS_PARAMS, create_model, list_models
    from .models.profile import summarize

    names = models or list_models()
    for n in names:
        create_model(n)  # fail early, with the list of known names, before any timing
    if threads:
        torch.set_num_threads(threads)
    table = Table(title=f"smfd models at {size}x{size}, batch 1, CPU ({torch.get_num_threads()} threads)")
    for col in ("model", "total (Keras)", "trainable", "non-trainable", "thesis total", "vs thesis",
                "GFLOPs", "latency ms"):
        table.add_column(col, justify="left" if col == "model" else "right")
    with _progress() as bar:
        task = bar.add_task("profiling", total=len(names))
        for n in names:
            torch.manual_seed(0)
            row = summarize(create_model(n), size, runs=runs)
            ref = THESIS_PARAMS.get(n)
            diff = f"{(row['total_keras_convention'] - ref) / ref:+.3%}" if ref else "-"
            table.add_row(n, f"{row['total_keras_convention']:,}", f"{row['trainable']:,}",
                          f"{row['non_trainable_bn']:,}", f"{ref:,}" if ref else "-", diff,
                          f"{row['gflops']:.1f}", f"{row['latency_s'] * 1e3:.0f}" if runs > 0 else "-")
            bar.advance(task)
    Console(width=max(Console().width, 130)).print(table)  # never truncate the numbers


def _setup_logging() -> None:
    import logging

    from rich.logging import RichHandler

    log = logging.getLogger("smfd")
    if not any(isinstance(h, RichHandler) for h in log.handlers):
        log.addHandler(RichHandler(console=console, show_path=False, show_time=False))
    log.setLevel(logging.INFO)


def _run_dir(out: Path | None, task: str, model: str) -> Path:
    import datetime

    if out is not None:
        return out
    return Path("runs") / f"{task}-{model}-{datetime.datetime.now():%Y%m%d-%H%M%S}"


@app.command()
def train(
    task: Annotated[str, typer.Argument(help="mask (the mask generator) or deblur (SMFD-UNet).")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (configs/thesis.yaml).")] = None,
    data: Annotated[Path | None, typer.Option(help="Face folder (images/ + masks/).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: --set optim.lr=2e-4.")] = None,
    mask_source: Annotated[str | None, typer.Option(help="deblur: gt, or generator:RUN for generated masks.")] = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Run folder (default runs/TASK-MODEL-TIME).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its last.pt.")] = None,
) -> None:
    """Train the mask generator or SMFD-UNet with the thesis protocol (Ctrl-C is safe: --resume continues)."""
    from .train import fit, load_config

    if task not in ("mask", "deblur"):
        raise CliError(f"TASK must be mask or deblur, got {task!r}", code=2)
    _setup_logging()
    fixed = {"data.root": str(data) if data else None, "mask_source": mask_source}
    if resume is not None:
        saved = resume / "config.yaml"
        if not saved.is_file():
            raise CliError(f"{saved}: no such file (is {resume} a run folder?)")
        cfg = load_config(saved, task, set_ or [], **fixed)
        run_dir = resume
    else:
        cfg = load_config(config, task, set_ or [], **fixed)
        if not cfg.data.root:
            raise CliError("no data: pass --data DIR (a folder with images/ and masks/)", code=2)
        run_dir = _run_dir(out, task, cfg.model.name)
    result = fit(cfg, run_dir, resume=resume is not None)
    typer.echo(f"best val {cfg.monitor} {result.best_metric:.4f} at epoch {result.best_epoch}; run: {run_dir}")


def main() -> None:
    """Console-script entry point: Typer handles usage errors; library errors become one line."""
    try:
        app()
    except CliError as e:
        if _state["debug"]:
            raise
        console.print(f"smfd: error: {e}", markup=False, highlight=False)
        sys.exit(e.code)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        if _state["debug"]:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        console.print(f"smfd: error: {msg}", markup=False, highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
