"""Commands for researchers: degrade, prepare, train, eval, compare, cv, ablate, report, summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from ..degrade import DEGRADATIONS
from . import (
    PRECISION_HELP,
    CliError,
    app,
    console,
    parse_model_options,
    precision_option,
    prepare_app,
    progress_bar,
    report_app,
    report_failures,
    setup_logging,
)


@app.command()
def degrade(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (created if missing).")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives byte-identical outputs.")] = 0,
    degradation: Annotated[str, typer.Option(
        help="thesis (the thesis's pipeline), realistic (camera shake, defocus, mild blur, sensor noise, JPEG, "
             "some clean faces), lowres (a small face compressed at its size, then resized up), mixed (half thesis, "
             "half realistic) or sharp (unchanged).")] = "thesis",
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Degrade sharp images (the thesis pipeline by default); writes PNGs and the drawn parameters (params.jsonl).

    Image k of the input list uses the generator ``numpy.random.default_rng([seed, k])``.
    """
    from ..data.io import expand_inputs, read_image, write_image
    from ..degrade import make_degradation
    from ..fileio import atomic_write_bytes

    if degradation not in DEGRADATIONS:
        raise CliError(f"--degradation must be one of {', '.join(DEGRADATIONS)}, got {degradation!r}", code=2)
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
    pipe = make_degradation(degradation)
    records, failures = [], []
    with progress_bar() as bar:
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
    report_failures(failures, len(files))


@prepare_app.command("celebamask")
def prepare_celebamask(
    root: Annotated[Path, typer.Argument(help="CelebAMask-HQ root (CelebA-HQ-img/, CelebAMask-HQ-mask-anno/).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder: images/ and masks/ are written there.")],
    size: Annotated[int, typer.Option(help="Output side in pixels.")] = 256,
    limit: Annotated[int | None, typer.Option(help="Convert only the first N faces.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Convert CelebAMask-HQ to images/{id}.jpg + masks/{id}.png with the 5 merged classes."""
    from ..data.celebamask import list_indices, load_face
    from ..data.io import write_image

    if size < 16:
        raise CliError(f"--size must be at least 16, got {size}")
    indices = list_indices(root)[:limit]
    failures = []
    written = 0
    with progress_bar() as bar:
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
    report_failures(failures, len(indices))


@prepare_app.command("pack")
def prepare_pack(
    source: Annotated[Path, typer.Argument(help="Face folder (images/ + masks/), e.g. ../shared/data/synthface.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Pack folder to write (must be new or empty).")],
    subset: Annotated[int, typer.Option(help="Faces to pack: the thesis's seeded random subset (0: all).")] = 2000,
    split_seed: Annotated[int, typer.Option(help="Seed of the subset and split (the thesis's: 0).")] = 0,
    quality: Annotated[int, typer.Option(help="WebP quality of the images (masks are lossless).")] = 85,
    max_mib: Annotated[float, typer.Option(help="Refuse (and remove) a pack larger than this.")] = 25.0,
    also_split: Annotated[list[Path] | None, typer.Option(
        help="Another split file of the source to carry over, restricted to the packed faces, as split-NAME.json "
             "(NAME: the file's stem, or the folder of a split.json); repeatable. E.g. results/bakeoff/split.json.")
    ] = None,
) -> None:
    """A compact copy of a face folder that travels with the code: WebP faces, PNG masks and the split drawn from
    the source (train on it with --data PACK --set data.split=PACK/split.json)."""
    from ..data.pack import make_pack

    if subset < 0:
        raise CliError(f"--subset must be >= 0, got {subset}", code=2)
    with progress_bar() as bar:
        task = bar.add_task("packing", total=subset or None)
        record = make_pack(source, out, subset=subset or None, split_seed=split_seed, quality=quality,
                           max_mib=max_mib, also_splits=tuple(also_split or ()),
                           progress=lambda n: bar.advance(task, n))
    console.print(f"wrote {record['faces']} faces ({record['trainval']} train+val, {record['test']} test) to {out}: "
                  f"{record['mib']} MiB, images {record['psnr_vs_source']['mean']} dB PSNR against the source "
                  f"(min {record['psnr_vs_source']['min']})", markup=False, highlight=False)


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

    from ..models import THESIS_PARAMS, build, list_models
    from ..models.profile import summarize

    names = models or list_models()
    for n in names:
        build(n)  # fail early, with the list of known names, before any timing
    if threads:
        torch.set_num_threads(threads)
    table = Table(title=f"smfd models at {size}x{size}, batch 1, CPU ({torch.get_num_threads()} threads)")
    for col in ("model", "total (Keras)", "trainable", "non-trainable", "thesis total", "vs thesis",
                "GFLOPs", "latency ms"):
        table.add_column(col, justify="left" if col == "model" else "right")
    with progress_bar() as bar:
        task = bar.add_task("profiling", total=len(names))
        for n in names:
            torch.manual_seed(0)
            row = summarize(build(n), size, runs=runs)
            ref = THESIS_PARAMS.get(n)
            diff = f"{(row['total_keras_convention'] - ref) / ref:+.3%}" if ref else "-"
            table.add_row(n, f"{row['total_keras_convention']:,}", f"{row['trainable']:,}",
                          f"{row['non_trainable_bn']:,}", f"{ref:,}" if ref else "-", diff,
                          f"{row['gflops']:.1f}", f"{row['latency_s'] * 1e3:.0f}" if runs > 0 else "-")
            bar.advance(task)
    Console(width=max(Console().width, 130)).print(table)  # never truncate the numbers


def _run_dir(out: Path | None, task: str, model: str) -> Path:
    import datetime

    if out is not None:
        return out
    return Path("runs") / f"{task}-{model}-{datetime.datetime.now():%Y%m%d-%H%M%S}"


@app.command()
def train(
    task: Annotated[str, typer.Argument(help="mask (the mask generator) or deblur (the deblurring net: model.name).")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (configs/thesis.yaml).")] = None,
    data: Annotated[Path | None, typer.Option(
        help="Face folder (images/ + masks/). Required, except with --resume (the run remembers it).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: --set optim.lr=2e-4.")] = None,
    mask_source: Annotated[str | None, typer.Option(help="deblur: gt, or generator:RUN for generated masks.")] = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Run folder (default runs/TASK-MODEL-TIME).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its last.pt.")] = None,
) -> None:
    """Train the mask generator or a deblurring net (SMFD-UNet, NAFNet...) with a config's protocol (Ctrl-C is
    safe: --resume continues)."""
    from ..models.runner import TASKS
    from ..train import fit, load_config

    if task not in TASKS:
        raise CliError(f"TASK must be mask or deblur, got {task!r}", code=2)
    setup_logging()
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
    identity: Annotated[bool, typer.Option(help="Also score identity with dlib (extra 'faces').")] = False,
    identity_cache: Annotated[Path | None, typer.Option(
        help="Keep each sharp face's identity descriptor in this folder, for the next evaluation on the same "
             "faces (about half the identity scoring's time).")] = None,
    model_option: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE: switch a model option without parameters, e.g. keep_mean=true or pool_window=64 "
             "(repeatable).")] = None,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "auto",
    degradation: Annotated[str, typer.Option(
        help="How the test faces are blurred: thesis (the thesis's pipeline), realistic (camera shake, defocus, "
             "mild blur, sensor noise, JPEG, some clean faces), lowres (small faces compressed at their size, then "
             "resized up), mixed or sharp.")] = "thesis",
    seed: Annotated[int, typer.Option(
        min=0, help="Degradation seed: face k of the split is degraded with numpy.random.default_rng([SEED, k]); every "
             "model scored with one seed sees the same faces, another seed draws the test set again.")] = 0,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Output folder (default RUN/eval-SPLIT, with "
                                                                 "-seedN for another --seed).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing results.")] = False,
) -> None:
    """Score a model on a split (PSNR, SSIM, MSE, NIQE, identity; Dice/Jaccard for masks), or --pred vs --gt."""
    precision = precision_option(precision)
    if degradation not in DEGRADATIONS:
        raise CliError(f"--degradation must be one of {', '.join(DEGRADATIONS)}, got {degradation!r}", code=2)
    from ..score import evaluate_model, score_folders, write_results
    from ..score.evaluation import check_results_free

    problems: list[str] = []
    options = parse_model_options(model_option, "--model-option")
    with progress_bar() as bar:
        task = bar.add_task("scoring", total=None)
        step = lambda n: bar.advance(task, n)  # noqa: E731
        if pred is not None or gt is not None:
            if pred is None or gt is None or model is not None:
                raise CliError("--pred and --gt go together, without --model", code=2)
            out = out or pred.parent / f"eval-{pred.name}"
            check_results_free(out, overwrite)  # refused before the scoring, not after it
            rows, info, problems = score_folders(pred, gt, identity=identity, progress=step)
            examples = None
        else:
            if model is None or data is None:
                raise CliError("pass --model and --data (or --pred and --gt)", code=2)
            seeded = f"-seed{seed}" if seed else ""
            out = out or (Path(model) / f"eval-{split}{seeded}" if Path(model).is_dir()
                          else Path(f"eval-{Path(model).stem}{seeded}"))
            check_results_free(out, overwrite)
            rows, info, examples = evaluate_model(model, data, split=split, split_file=str(split_file) if split_file
                                                  else None, mask_source=mask_source, limit=limit, identity=identity,
                                                  identity_cache=identity_cache, progress=step, model_options=options,
                                                  precision=precision, degradation=degradation, seed=seed)
    write_results(out, rows, info, examples, overwrite=overwrite)
    typer.echo((out / "summary.md").read_text())
    typer.echo(f"wrote {out}/per_image.csv, summary.json, summary.md")
    for p in problems:
        console.print(f"skipped {p}", markup=False, highlight=False)
    if problems:
        raise CliError(f"{len(problems)} files could not be scored")


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="An smfd eval folder (per_image.csv): the reference; or A1,A2,... "
                                          "its evaluations with several --seed values (folder names without "
                                          "commas).")],
    b: Annotated[str, typer.Argument(help="An smfd eval folder scored on the same faces: the challenger; or "
                                          "B1,B2,... with the seeds of A1,A2,... in that order.")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Also write the table to this Markdown file.")]
    = None,
) -> None:
    """Paired comparison of two evaluations on the same faces: mean gain, its SE, the share of faces that gain,
    and the faces identification loses and gains (exact sign test). Several draws per side (A1,A2 B1,B2: the
    same model scored with several --seed values) count each face once."""
    from ..fileio import atomic_write_bytes
    from ..score.compare import compare as compare_rows
    from ..score.compare import read_paired, to_markdown

    try:
        text = to_markdown(compare_rows(*read_paired(a, b)), a, b)
    except ValueError as e:
        raise CliError(str(e), code=2) from None
    typer.echo(text, nl=False)
    if out is not None:
        atomic_write_bytes(out, text.encode())
        typer.echo(f"wrote {out}")


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
    from ..models.runner import TASKS
    from ..train.crossval import cross_validate

    if task not in TASKS:
        raise CliError(f"TASK must be mask or deblur, got {task!r}", code=2)
    setup_logging()
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
    from ..train.crossval import ablate as run_ablation

    setup_logging()
    run_ablation(str(config) if config else None, str(data), out, overrides=set_ or [], mask_source=mask_source,
                 test_limit=test_limit)
    typer.echo((out / "ablation.md").read_text())


@report_app.command("curves")
def report_curves(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (with metrics.csv).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG to write.")] = Path("curves.png"),
) -> None:
    """Training curves: loss, validation metrics and learning rate per epoch."""
    from ..report.figures import plot_curves

    typer.echo(f"wrote {plot_curves(runs, out)}")


@report_app.command("features")
def report_features(
    model: Annotated[Path, typer.Option(help="Run folder, checkpoint or weights.")],
    image: Annotated[Path, typer.Option(help="A sharp face; it is degraded with --seed first.")],
    mask_source: Annotated[str, typer.Option(help="deblur models: generator:RUN, or gt with --mask.")] = "gt",
    mask: Annotated[Path | None, typer.Option(help="Ground-truth mask PNG for --mask-source gt.")] = None,
    seed: Annotated[int, typer.Option(help="Degradation seed.")] = 0,
    model_option: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE: a model option without parameters, as in smfd eval (repeatable).")] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG to write.")] = Path("features.png"),
) -> None:
    """Layer-wise feature maps of one face (3 channels as RGB, 5 as class colours, else the most varying channel)."""
    import torch

    from ..data.io import read_image, read_mask
    from ..degrade import DegradationPipeline
    from ..models.io import load_runner
    from ..report.figures import feature_maps
    from ..score import mask_provider, parse_mask_source

    net = load_runner(model, parse_model_options(model_option, "--model-option")).eval()
    lq, _ = DegradationPipeline()(read_image(image), np.random.default_rng(seed))
    x = torch.from_numpy(lq).permute(2, 0, 1)[None].float() / 255
    guide = None
    source = parse_mask_source(mask_source, name="--mask-source")
    if net.spec.reads_mask:
        if source.kind == "gt":
            if mask is None:
                raise CliError("--mask-source gt needs --mask (or use --mask-source generator:RUN)", code=2)
            m = torch.from_numpy(read_mask(mask).astype(np.int64))
            guide = torch.nn.functional.one_hot(m, net.spec.mask_channels).permute(2, 0, 1)[None].float()
        else:
            guide = mask_provider(source)({"lq": x})
    inputs = (x,) if guide is None else (x, guide)
    typer.echo(f"wrote {feature_maps(net.module, inputs, out, run=lambda: net(x, guide))}")
