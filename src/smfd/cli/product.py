"""Commands for people restoring photos: deblur, demo, serve, bundle, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..data.celebamask import CLASSES
from ..infer.faces import MAX_WORK_SIZE, MIN_FACE
from . import PRECISION_HELP, CliError, app, parse_model_options, precision_option, stopped_in_one_line

# The options of `smfd deblur` whose help runs over a line, by the group they fill (NetOptions, PhotoOptions,
# ClipOptions, the Ray runner), so that the command itself reads as what it does.
_Aligned = Annotated[bool, typer.Option(help="Inputs are aligned face crops like the training faces (one over 512 px "
                                             "a side is restored at 512 px, its finer detail kept).")]
_Weights = Annotated[str, typer.Option(
    help="'default' (bundled), a bundle folder ('smfd bundle') or an ONNX export folder ('smfd export').")]
_Backend = Annotated[str, typer.Option(
    help="torch or onnxruntime; an export folder given to --weights picks onnxruntime by itself.")]
_BatchSize = Annotated[int | None, typer.Option(
    help="Faces per forward pass (default: 1 for PyTorch on a CPU, where it measured fastest; else 8).")]
_MinFace = Annotated[int, typer.Option(
    help="Skip faces smaller than this many pixels (results/small_faces.md: restoring gains from 32 px; at 24 px it "
         "gains less and more faces come back worse).")]
_Detector = Annotated[str, typer.Option(
    help="Face detector for whole photos (results/detect.md): hog (default), hog-roll (also heads rolled up to 60 "
         "degrees, about 1.6x the time), hog-small (also faces of 20-32 px, about 4x), cnn (dlib's CNN, about 15x, "
         "nothing under 40 px).")]
_MaxWorkSize = Annotated[int, typer.Option(
    help="Restore each face at its own size up to this many pixels a side; a larger face is restored at this size "
         "and keeps its finer detail from the input (results/big_faces.md). 256 restores every face at the training "
         "faces' size: faster for big faces and videos.")]
_Mirror = Annotated[bool, typer.Option(
    help="Restore a face whose working size is above 256 px (a crop of 320 px or more) twice, as given and "
         "mirrored, and average the two: sharper big faces (results/big_faces.md) for twice their restoration; "
         "--no-mirror restores each face once (faster for videos of close-ups). Smaller faces, and every face with "
         "--max-work-size 256, are restored once either way.")]
_Keep = Annotated[str, typer.Option(
    help=f"Regions taken unchanged from the input, comma-separated, from: {', '.join(CLASSES)} "
         "(e.g. hair,background).")]
_SideBySide = Annotated[bool, typer.Option(help="Also write input | mask | output (NAME_side_by_side.png).")]
_Format = Annotated[str, typer.Option(
    "--format", help="Restored image format: keep (the input's: JPEG stays JPEG at quality 95, anything else becomes "
                     "PNG), png or jpg.")]
_SkipExisting = Annotated[bool, typer.Option(
    help="Leave out inputs whose outputs all exist (and redo those with only some): go on with a run that was "
         "stopped.")]
_StripMetadata = Annotated[bool, typer.Option(
    help="Write outputs without the input's EXIF (date, camera, GPS) and ICC profile (kept by default).")]
_MaxMegapixels = Annotated[float, typer.Option(
    help="Refuse photos larger than this (memory grows with it: about 1.2 GB at 50 MP).")]
_DetectEvery = Annotated[int, typer.Option(
    help="Videos: search for faces every this many frames; faces are followed in between.")]
_Fuse = Annotated[int, typer.Option(
    help="Videos: average each restored face with the same face's crops this many frames before and after, wherever "
         "they agree (a blink or a moving mouth stays its own frame's); 0: off. More: less flicker (results/video.md: "
         "1.6x the sharp clip's at 3, 1.3x at 8), but more chances to blend a changing expression.")]
_Ray = Annotated[bool, typer.Option(
    "--ray", help="Run as a Ray Data job (extra cluster): a pool of actors, each loading the pipeline once; alone it "
                  "starts a local Ray instance. Inputs, -o and a --weights folder must be at the same paths on every "
                  "node.")]
_RayAddress = Annotated[str | None, typer.Option(
    help="Join a running Ray cluster: auto (after `ray start`) or ray://HOST:10001; implies --ray.")]
_RayActors = Annotated[int | None, typer.Option(
    help="Ray: actors in the pool, one CPU and one torch thread each (default: one per CPU of the cluster).")]


@app.command()
def deblur(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (created with the first output).")],
    aligned: _Aligned = False,
    save_mask: Annotated[bool, typer.Option(help="Also write the coloured 5-class mask (NAME_mask.png).")] = False,
    keep: _Keep = "",
    side_by_side: _SideBySide = False,
    weights: _Weights = "default",
    backend: _Backend = "torch",
    batch_size: _BatchSize = None,
    min_face: _MinFace = MIN_FACE,
    detector: _Detector = "hog",
    max_work_size: _MaxWorkSize = MAX_WORK_SIZE,
    mirror: _Mirror = True,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "auto",
    format: _Format = "keep",
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    skip_existing: _SkipExisting = False,
    strip_metadata: _StripMetadata = False,
    max_megapixels: _MaxMegapixels = 50.0,
    start: Annotated[float, typer.Option(help="Videos: begin this many seconds in.")] = 0.0,
    duration: Annotated[float | None, typer.Option(help="Videos: restore this many seconds (default: to the end).")
                        ] = None,
    detect_every: _DetectEvery = 8,
    fuse: _Fuse = 3,
    ray: _Ray = False,
    ray_address: _RayAddress = None,
    ray_actors: _RayActors = None,
) -> None:
    """Deblur faces: whole photos (detect, align, restore, paste back), aligned crops (--aligned) or videos
    (.mp4 .mov .m4v .mkv .avi .webm .ts .mts .m2ts: each face followed and restored, written as H.264 with the
    audio)."""
    with stopped_in_one_line():
        from .deblur import ClipOptions, NetOptions, PhotoOptions, make_plan, run_plan

        nets = NetOptions(weights, backend, batch_size, min_face, precision_option(precision), detector, max_work_size,
                          mirror)
        photo = PhotoOptions(_keep_ids(keep), save_mask, side_by_side, format, strip_metadata, max_megapixels)
        clip = ClipOptions(start, duration, detect_every, fuse)
        if ray_actors is not None and ray_actors < 1:
            raise CliError(f"--ray-actors must be at least 1, got {ray_actors}", code=2)
        plan = make_plan(inputs, out, aligned=aligned, nets=nets, photo=photo, clip=clip, overwrite=overwrite,
                         skip_existing=skip_existing)
        if ray or ray_address:
            from .deblur import run_on_cluster

            run_on_cluster(plan, ray_address, ray_actors)
        else:
            run_plan(plan)


def _keep_ids(keep: str) -> tuple[int, ...]:
    """``--keep`` region names as class ids (an unknown name is a usage error)."""
    from ..data.celebamask import parse_keep

    try:
        return parse_keep(keep)
    except ValueError as e:
        raise CliError(f"--keep: {e}", code=2) from None


DEMO_DEGRADATIONS = ("both", "thesis", "realistic")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("smfd-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the degradations.")] = 0,
    weights: Annotated[str, typer.Option(help="'default' (bundled) or a bundle folder.")] = "default",
    degradation: Annotated[str, typer.Option(
        help="How the samples are blurred: 'thesis' (the thesis's heavy blur stacks), 'realistic' (camera shake, "
             "defocus, mild blur, noise, JPEG) or 'both' (faces take turns).")] = "both",
) -> None:
    """Blur the bundled sample faces, deblur them with the bundled weights; write a picture and a web page."""
    from ..data import FaceFolder
    from ..data.io import write_image
    from ..degrade import make_degradation
    from ..infer.pipeline import load_pipeline
    from ..report import colorize_mask, label_tile, make_grid
    from ..report.html import demo_page, image_scores
    from ..samples import samples_dir

    if degradation not in DEMO_DEGRADATIONS:
        raise CliError(f"--degradation must be one of {', '.join(DEMO_DEGRADATIONS)}, got {degradation!r}", code=2)
    families = ["thesis", "realistic"] if degradation == "both" else [degradation]
    pipelines = {name: make_degradation(name) for name in families}
    folder = FaceFolder(samples_dir())
    pipe = load_pipeline(weights)
    sharp, blurry, used = [], [], []
    for k, i in enumerate(folder.ids):
        img, _ = folder.read(i)
        name = families[k % len(families)]
        sharp.append(img)
        blurry.append(pipelines[name](img, np.random.default_rng([seed, k]))[0])
        used.append(name)
    restored, masks = pipe.restore_faces(blurry)
    scores = [(*image_scores(b, s), *image_scores(r, s)) for b, r, s in zip(blurry, restored, sharp, strict=True)]
    rows = [[label_tile(b, f"{name} {pb:.1f} dB"), colorize_mask(m), label_tile(r, f"{pr:.1f} dB"), s]
            for name, (pb, _, pr, _), b, m, r, s in zip(used, scores, blurry, masks, restored, sharp, strict=True)]
    picture = write_image(out / "side_by_side.png", make_grid(rows, ["blurry input", "predicted mask",
                                                                     "smfd output", "sharp original"]))
    page = demo_page(out, folder.ids, blurry, restored, sharp, masks, pipe.manifest, degradations=used,
                     scores=scores)
    typer.echo(f"wrote {picture}")
    typer.echo(f"wrote {page}")
    typer.echo(f"open {picture} to see blurry | mask | restored | sharp, or {page} in a browser")


@app.command()
def bundle(
    mask: Annotated[Path, typer.Option(help="Mask generator: a run folder (its best.safetensors) or weights file.")],
    deblur: Annotated[Path, typer.Option(help="Deblurring model: a run folder or weights file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Bundle folder to write.")],
    card: Annotated[Path | None, typer.Option(help="JSON file of model-card fields (data, metrics...).")] = None,
    fp32: Annotated[bool, typer.Option(help="Store float32 instead of float16.")] = False,
    deblur_option: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE: switch a deblurring-model option without parameters, e.g. keep_mean=true or "
             "pool_window=64 (repeatable).")] = None,
    deblur_big: Annotated[Path | None, typer.Option(
        help="A second deblurring model (run folder or weights file) for big faces: crops restored above 256 px "
             "(faces of 320 px and more); --deblur-option applies to it too. Default: the deblurring model "
             "restores every size.")] = None,
) -> None:
    """Make a weights bundle (safetensors + SHA-256 manifest + model card) for load_pipeline / --weights."""
    from ..infer.weights import make_bundle
    from ..models.io import load_runner

    options = parse_model_options(deblur_option, "--deblur-option")
    card_data = json.loads(card.read_text()) if card else {}
    nets = load_runner(mask, checkpoints=False), load_runner(deblur, options=options, checkpoints=False)
    big = None if deblur_big is None else load_runner(deblur_big, options=options, checkpoints=False)
    manifest = make_bundle(*nets, out, half=not fp32, card=card_data, big_net=big)
    for role, e in manifest["files"].items():
        typer.echo(f"{role}: {out / e['file']} ({e['bytes'] / 1e6:.1f} MB) sha256 {e['sha256']}")


@app.command()
def export(
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the ONNX files.")],
    format: Annotated[str, typer.Option(help="Export format (onnx).")] = "onnx",
    weights: Annotated[str, typer.Option(help="'default' (bundled) or a bundle folder.")] = "default",
) -> None:
    """Export the bundle's networks to ONNX (dynamic batch and size) for: smfd deblur --backend onnxruntime."""
    from ..infer.export import export_onnx

    if format != "onnx":
        raise CliError(f"--format must be onnx, got {format!r}", code=2)
    manifest = export_onnx(weights, out)
    for role, e in manifest["files"].items():
        typer.echo(f"{role}: {out / e['file']} sha256 {e['sha256']}")
        if "windows" in e:  # the graph for faces restored above the training size
            w = e["windows"]
            typer.echo(f"{role} above {w['above']} px: {out / w['file']} sha256 {w['sha256']}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (local only by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    weights: Annotated[str, typer.Option(help="'default' (bundled), a bundle or an ONNX export folder.")] = "default",
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload (MB); bigger ones get 413.")] = 20.0,
    max_megapixels: Annotated[float, typer.Option(
        help="Refuse photos larger than this (400); memory grows with it: about 1.1 GB at 50 MP.")] = 50.0,
    queue_size: Annotated[int, typer.Option(
        help="Requests that may wait or run at once (one runs at a time); the next gets 'busy' (503).")] = 32,
    keep_minutes: Annotated[float, typer.Option(
        help="Delete results and uploads older than this many minutes.")] = 60.0,
    keep_files: Annotated[int, typer.Option(help="Keep at most this many results (the newest).")] = 200,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "auto",
    max_work_size: _MaxWorkSize = MAX_WORK_SIZE,
    mirror: _Mirror = True,
) -> None:
    """Start the web app and the HTTP endpoint on this machine: a page at / (upload a photo, see input | mask |
    output, download) and POST /api/deblur for programs (curl -F file=@photo.jpg http://127.0.0.1:7860/api/deblur
    -o out.jpg)."""
    precision = precision_option(precision)
    from ..app import stay_offline

    stay_offline()  # before Gradio or the Hugging Face Hub client are imported: they read it then
    import importlib.util

    if importlib.util.find_spec("gradio") is None:  # found, not imported: serve() sets its folders first
        raise CliError("the web app needs Gradio: pip install 'smfd[web]'")
    for name, value in (("--queue-size", queue_size), ("--keep-files", keep_files)):
        if value < 1:
            raise CliError(f"{name} must be at least 1, got {value}", code=2)
    if not 0 < port < 65536:
        raise CliError(f"--port must be 1..65535, got {port}", code=2)
    if keep_minutes <= 0 or max_upload_mb <= 0 or max_megapixels <= 0:
        raise CliError("--keep-minutes, --max-upload-mb and --max-megapixels must be positive", code=2)
    if max_work_size < 256:
        raise CliError(f"--max-work-size must be at least 256, got {max_work_size}", code=2)
    from ..app import serve as serve_app
    from ..infer.pipeline import load_pipeline

    pipe = load_pipeline(weights, precision=precision, max_work_size=max_work_size, mirror_big=mirror)

    def ready(url: str) -> None:
        typer.echo(f"smfd on {url} (page) and {url}/api/deblur (POST a photo); offline: nothing is sent out; "
                   "Ctrl-C stops it and deletes the uploads and results")

    serve_app(pipe, host=host, port=port, max_upload_mb=max_upload_mb, queue_size=queue_size,
              keep_minutes=keep_minutes, keep_files=keep_files, on_ready=ready, max_pixels=int(max_megapixels * 1e6))
