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
report_app = typer.Typer(no_args_is_help=True, help="Figures: training curves, feature maps.")
app.add_typer(report_app, name="report")

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
def deblur(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (created if missing).")],
    aligned: Annotated[bool, typer.Option(help="Inputs are aligned face crops like the training faces.")] = False,
    save_mask: Annotated[bool, typer.Option(help="Also write the coloured 5-class mask (NAME_mask.png).")] = False,
    keep: Annotated[str, typer.Option(help="Regions taken from the input, e.g. hair,wearables,background.")] = "",
    side_by_side: Annotated[bool, typer.Option(help="Also write input | mask | output (NAME_side_by_side.png).")] = (
        False
    ),
    weights: Annotated[str, typer.Option(help="'default' (bundled) or a bundle/ONNX export folder.")] = "default",
    backend: Annotated[str, typer.Option(help="torch or onnxruntime (needs an 'smfd export' folder).")] = "torch",
    batch_size: Annotated[int, typer.Option(help="Faces per forward pass.")] = 8,
    min_face: Annotated[int, typer.Option(help="Skip faces smaller than this many pixels.")] = 48,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Deblur faces: whole photos (detect, align, restore, paste back) or aligned crops (--aligned)."""
    import os
    import tempfile

    from .data.io import expand_inputs, write_image
    from .infer.photo_io import read_photo
    from .infer.pipeline import load_pipeline, parse_keep
    from .report import colorize_mask
    from .report.grid import side_by_side as sbs

    keep_ids = parse_keep(keep)
    files = expand_inputs(inputs)
    if not files:
        raise CliError("no input images found")
    stems = [f.stem for f in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise CliError(f"two inputs are both named {dup[0]}.*; outputs would collide, rename one")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise CliError(f"{out}: output folder is not writable ({e.strerror or e})") from None
    suffixes = ["", *(["_mask"] if save_mask else []), *(["_side_by_side"] if side_by_side else [])]
    targets = {f: [out / f"{f.stem}{sfx}.png" for sfx in suffixes] for f in files}
    existing = [t for ts in targets.values() for t in ts if t.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CliError(f"{existing[0]}: already exists{more}; use --overwrite to replace")
    pipe = load_pipeline(weights, backend=backend, batch_size=batch_size, min_face=min_face)
    failures, notes = [], []
    restored = 0

    def save(src: Path, image: np.ndarray, result_img: np.ndarray, mask: np.ndarray) -> None:
        outputs = [result_img]
        if save_mask:
            outputs.append(colorize_mask(mask))
        if side_by_side:
            outputs.append(sbs([image, colorize_mask(mask), result_img], ["input", "mask", "output"]))
        for path, img in zip(targets[src], outputs, strict=True):
            write_image(path, img)

    with _progress() as bar:
        task = bar.add_task("deblurring", total=len(files))
        if aligned:
            for start in range(0, len(files), batch_size):
                chunk, images = [], []
                for f in files[start : start + batch_size]:
                    try:
                        images.append(read_photo(f))
                        chunk.append(f)
                    except (OSError, ValueError) as e:
                        failures.append((str(f), str(e)))
                if chunk:
                    outs, masks = pipe.restore_faces(images, keep_ids)
                    for f, image, o, m in zip(chunk, images, outs, masks, strict=True):
                        save(f, image, o, m)
                        restored += 1
                bar.advance(task, len(files[start : start + batch_size]))
        else:
            for f in files:
                try:
                    image = read_photo(f)
                    result = pipe.deblur(image, keep=keep_ids)
                    save(f, image, result.image, result.mask)
                    done = [x for x in result.faces if not x.skipped]
                    restored += len(done)
                    notes += [f"{f}: {x.skipped}" for x in result.faces if x.skipped]
                except (OSError, ValueError, RuntimeError) as e:
                    failures.append((str(f), str(e)))
                bar.advance(task)
    console.print(f"restored {restored} face(s) from {len(files) - len(failures)} of {len(files)} image(s) into "
                  f"{out}", markup=False, highlight=False)
    for n in notes:
        console.print(f"skipped {n}", markup=False, highlight=False)
    _report_failures(failures, len(files))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("smfd-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the degradations.")] = 0,
    weights: Annotated[str, typer.Option(help="'default' (bundled) or a bundle folder.")] = "default",
) -> None:
    """Blur the bundled sample faces, deblur them with the bundled weights; write a picture and a web page."""
    from .data import FaceFolder
    from .data.io import write_image
    from .degrade import DegradationPipeline
    from .infer.pipeline import load_pipeline
    from .report import colorize_mask, make_grid
    from .report.html import demo_page
    from .samples import samples_dir

    folder = FaceFolder(samples_dir())
    pipe = load_pipeline(weights)
    degrade = DegradationPipeline()
    sharp, blurry = [], []
    for k, i in enumerate(folder.ids):
        img, _ = folder.read(i)
        sharp.append(img)
        blurry.append(degrade(img, np.random.default_rng([seed, k]))[0])
    restored, masks = pipe.restore_faces(blurry)
    rows = [[b, colorize_mask(m), r, s] for b, m, r, s in zip(blurry, masks, restored, sharp, strict=True)]
    picture = write_image(out / "side_by_side.png", make_grid(rows, ["blurry input", "predicted mask",
                                                                     "smfd output", "sharp original"]))
    page = demo_page(out, folder.ids, blurry, restored, sharp, masks, pipe.manifest)
    typer.echo(f"wrote {picture}")
    typer.echo(f"wrote {page}")


@app.command()
def bundle(
    mask: Annotated[Path, typer.Option(help="Mask generator: run folder, checkpoint or weights.")],
    deblur: Annotated[Path, typer.Option(help="Deblurring model: run folder, checkpoint or weights.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Bundle folder to write.")],
    card: Annotated[Path | None, typer.Option(help="JSON file of model-card fields (data, metrics...).")] = None,
    fp32: Annotated[bool, typer.Option(help="Store float32 instead of float16.")] = False,
) -> None:
    """Make a weights bundle (safetensors + SHA-256 manifest + model card) for load_pipeline / --weights."""
    from .infer.weights import make_bundle
    from .train import load_model

    card_data = json.loads(card.read_text()) if card else {}
    manifest = make_bundle(load_model(mask), load_model(deblur), out, half=not fp32, card=card_data)
    for role, e in manifest["files"].items():
        typer.echo(f"{role}: {out / e['file']} ({e['bytes'] / 1e6:.1f} MB) sha256 {e['sha256']}")


@app.command()
def export(
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the ONNX files.")],
    format: Annotated[str, typer.Option(help="Export format (onnx).")] = "onnx",
    weights: Annotated[str, typer.Option(help="'default' (bundled) or a bundle folder.")] = "default",
) -> None:
    """Export both networks to ONNX (dynamic batch and size) for: smfd deblur --backend onnxruntime."""
    from .infer.export import export_onnx

    if format != "onnx":
        raise CliError(f"--format must be onnx, got {format!r}", code=2)
    manifest = export_onnx(weights, out)
    for role, e in manifest["files"].items():
        typer.echo(f"{role}: {out / e['file']} sha256 {e['sha256']}")


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


@app.command("eval")
def eval_(
    model: Annotated[str | None, typer.Option(help="Run folder, checkpoint or .safetensors; 'input' scores the "
                                                   "degraded input itself.")] = None,
    data: Annotated[Path | None, typer.Option(help="Face folder (images/ + masks/).")] = None,
    split: Annotated[str, typer.Option(help="test, val or trainval.")] = "test",
    split_file: Annotated[Path | None, typer.Option(help="Split JSON (default: the run's split.json).")] = None,
    mask_source: Annotated[str, typer.Option(help="deblur models: gt or generator:RUN.")] = "gt",
    pred: Annotated[Path | None, typer.Option(help="Score another tool's output folder (with --gt).")] = None,
    gt: Annotated[Path | None, typer.Option(help="Sharp faces for --pred, matched by file name.")] = None,
    limit: Annotated[int | None, typer.Option(help="Score only the first N faces.")] = None,
    identity: Annotated[bool, typer.Option(help="Also score identity with dlib (extra 'identity').")] = False,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Output folder (default RUN/eval-SPLIT).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing results.")] = False,
) -> None:
    """Score a model on a split (PSNR, SSIM, MSE, NIQE, identity; Dice/Jaccard for masks), or --pred vs --gt."""
    from .train.evaluation import evaluate_model, score_folders, write_results

    problems: list[str] = []
    with _progress() as bar:
        task = bar.add_task("scoring", total=None)
        step = lambda n: bar.advance(task, n)  # noqa: E731
        if pred is not None or gt is not None:
            if pred is None or gt is None or model is not None:
                raise CliError("--pred and --gt go together, without --model", code=2)
            rows, info, problems = score_folders(pred, gt, identity=identity, progress=step)
            examples = None
            out = out or pred.parent / f"eval-{pred.name}"
        else:
            if model is None or data is None:
                raise CliError("pass --model and --data (or --pred and --gt)", code=2)
            rows, info, examples = evaluate_model(model, data, split=split, split_file=str(split_file) if split_file
                                                  else None, mask_source=mask_source, limit=limit, identity=identity,
                                                  progress=step)
            out = out or (Path(model) / f"eval-{split}" if Path(model).is_dir() else Path(f"eval-{Path(model).stem}"))
    write_results(out, rows, info, examples, overwrite=overwrite)
    typer.echo((out / "summary.md").read_text())
    typer.echo(f"wrote {out}/per_image.csv, summary.json, summary.md")
    for p in problems:
        console.print(f"skipped {p}", markup=False, highlight=False)
    if problems:
        raise CliError(f"{len(problems)} files could not be scored")


@app.command()
def cv(
    task: Annotated[str, typer.Argument(help="mask or deblur.")],
    data: Annotated[Path, typer.Option(help="Face folder (images/ + masks/).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the fold runs and the table.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config.")] = None,
    folds: Annotated[int, typer.Option(help="Number of folds.")] = 5,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config override key=value.")] = None,
    mask_source: Annotated[str | None, typer.Option(help="deblur: gt or generator:RUN.")] = None,
    test_limit: Annotated[int | None, typer.Option(help="Score only the first N test faces.")] = None,
) -> None:
    """K-fold cross-validation (thesis Table 4.4); re-running resumes unfinished folds."""
    from .train.crossval import cross_validate

    if task not in ("mask", "deblur"):
        raise CliError(f"TASK must be mask or deblur, got {task!r}", code=2)
    _setup_logging()
    cross_validate(task, str(config) if config else None, str(data), out, folds=folds, overrides=set_ or [],
                   mask_source=mask_source, test_limit=test_limit)
    typer.echo((out / "cv.md").read_text())


@app.command()
def ablate(
    data: Annotated[Path, typer.Option(help="Face folder (images/ + masks/).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the variant runs and the table.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config override key=value.")] = None,
    mask_source: Annotated[str | None, typer.Option(help="gt or generator:RUN.")] = None,
    test_limit: Annotated[int | None, typer.Option(help="Score only the first N test faces.")] = None,
) -> None:
    """Train the five ablation variants with one config (thesis Table 4.3); re-running resumes."""
    from .train.crossval import ablate as run_ablation

    _setup_logging()
    run_ablation(str(config) if config else None, str(data), out, overrides=set_ or [], mask_source=mask_source,
                 test_limit=test_limit)
    typer.echo((out / "ablation.md").read_text())


@report_app.command("curves")
def report_curves(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (with metrics.csv).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG to write.")] = Path("curves.png"),
) -> None:
    """Training curves: loss, validation metrics and learning rate per epoch."""
    from .report.figures import plot_curves

    typer.echo(f"wrote {plot_curves(runs, out)}")


@report_app.command("features")
def report_features(
    model: Annotated[Path, typer.Option(help="Run folder, checkpoint or weights.")],
    image: Annotated[Path, typer.Option(help="A sharp face; it is degraded with --seed first.")],
    mask_source: Annotated[str, typer.Option(help="deblur models: generator:RUN, or gt with --mask.")] = "gt",
    mask: Annotated[Path | None, typer.Option(help="Ground-truth mask PNG for --mask-source gt.")] = None,
    seed: Annotated[int, typer.Option(help="Degradation seed.")] = 0,
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG to write.")] = Path("features.png"),
) -> None:
    """Layer-wise feature maps of one face (3 channels as RGB, 5 as class colours, else the first channel)."""
    import torch

    from .data.io import read_image, read_mask
    from .degrade import DegradationPipeline
    from .report.figures import feature_maps
    from .train import load_model
    from .train.loop import mask_provider, rgb_to_grey

    net = load_model(model).eval()
    lq, _ = DegradationPipeline()(read_image(image), np.random.default_rng(seed))
    x = torch.from_numpy(lq).permute(2, 0, 1)[None].float() / 255
    if getattr(net, "mask_channels", 0):
        if mask_source == "gt":
            if mask is None:
                raise CliError("--mask-source gt needs --mask (or use --mask-source generator:RUN)", code=2)
            m = torch.from_numpy(read_mask(mask).astype(np.int64))
            onehot = torch.nn.functional.one_hot(m, 5).permute(2, 0, 1)[None].float()
            inputs = (x, onehot)
        else:
            inputs = (x, mask_provider(mask_source, torch.device("cpu"))({"lq": x}))
    else:
        inputs = (rgb_to_grey(x),) if net.in_channels == 1 else (x,)
    typer.echo(f"wrote {feature_maps(net, inputs, out)}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (local only by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    weights: Annotated[str, typer.Option(help="'default' (bundled) or a bundle folder.")] = "default",
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload.")] = 20.0,
) -> None:
    """Start the web app (Gradio) on this machine: upload a photo, see input | mask | output, download."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise CliError("the web app needs Gradio: pip install 'smfd[web]'") from None
    from .app import serve as serve_app
    from .infer.pipeline import load_pipeline

    typer.echo(f"smfd web app on http://{host}:{port} (Ctrl-C stops it)")
    serve_app(load_pipeline(weights), host=host, port=port, max_upload_mb=max_upload_mb)


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
