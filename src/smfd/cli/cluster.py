"""``smfd deblur --ray``: the photos (and clips) of a deblurring run as a Ray Data job.

A pool of actors each loads the pipeline once (:class:`RestoreAndWrite`); photos are spread over them one per
call, and each clip is one call. Each actor reads its input, restores it and writes its outputs itself, with the
local run's writers (:func:`smfd.infer.photo_io.save_photo`, the all-or-none :func:`smfd.cli.outputs.write_set`,
the video job's hidden file renamed at the end), so OUT must be a folder every node reaches at the same path. Only
a one-line report per input comes back to the driver. An actor that dies is restarted by Ray and its call retried:
its inputs are redone, and the files it was writing, all written to temporary names, are removed at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import CliError, console
from .outputs import WriteFailed, plan_outputs

#: Set to a file's path, the first actor to find that file deletes it and dies at once (after writing the first
#: output of its first photo): tests kill an actor mid-run with it.
CRASH_ONCE_ENV = "SMFD_TEST_CRASH_ONCE"
#: Blocks per actor the photos are cut into: small enough to spread the work evenly to the end of the run.
BLOCKS_PER_ACTOR = 32
USAGE_STATS = "RAY_USAGE_STATS_ENABLED"  # Ray's switch for its usage statistics (collected and sent by default)


@dataclass
class RaySummary:
    """What a Ray run did, every input counted once: ``written``, ``done_before`` (left alone: --skip-existing),
    ``failures`` ((input, one line) each) or ``not_done`` (the run stopped first). ``restored``, ``skips`` and
    ``notes`` are as the local run's; ``stop`` is (why, exit code) if the run stopped. ``startup_s``: from the call
    to the first result, less the time its input took (Ray started or joined, actors up, the pipeline loaded);
    ``seconds``: the whole call; ``pool``: the actors asked for; ``actors``: the peak resident memory (MB) of each
    actor process that reported, by process id; ``nodes``: inputs done on each node of the cluster, by node id;
    ``cluster_nodes``: the nodes alive in the cluster when the job started."""

    inputs: list[Path]
    written: list[Path] = field(default_factory=list)
    done_before: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    not_done: list[Path] = field(default_factory=list)
    restored: int = 0
    skips: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    over_limit: bool = False
    stop: tuple[str, int] | None = None
    startup_s: float = 0.0
    seconds: float = 0.0
    pool: int = 0
    actors: dict[int, float] = field(default_factory=dict)
    nodes: dict[str, int] = field(default_factory=dict)
    cluster_nodes: int = 0


# --- on the actors --------------------------------------------------------------------------------------------


def _crash_once() -> None:
    marker = os.environ.get(CRASH_ONCE_ENV)
    if marker:
        try:
            os.unlink(marker)  # exactly one process wins this
        except FileNotFoundError:
            return
        os._exit(1)


def _node_id() -> str:
    """The Ray node this process runs on (its host name outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    import socket

    return socket.gethostname()


class RestoreAndWrite:
    """A Ray Data actor: loads the pipeline once, then restores each input of a batch (columns ``path``,
    ``outputs``: the output files, image first, then mask and side-by-side where asked for; ``video``) and writes
    its outputs as the local run does. Returns one report row per input."""

    def __init__(self, *, aligned: bool = False, keep: Sequence[int] = (), save_mask: bool = False,
                 side_by_side: bool = False, strip_metadata: bool = False, max_megapixels: float = 50.0,
                 clip: dict | None = None, cwd: str | None = None, **deblur_options) -> None:
        from ..cluster import Deblur

        if cwd and os.path.isdir(cwd):  # relative paths mean what they mean on the driver (where it exists)
            os.chdir(cwd)
        self.deblur = Deblur(aligned=aligned, keep=keep, mask=save_mask or side_by_side,
                             max_megapixels=max_megapixels, **deblur_options)
        self.pipe = self.deblur.pipe
        self.aligned, self.keep, self.save_mask, self.side_by_side = aligned, tuple(keep), save_mask, side_by_side
        self.strip_metadata, self.max_pixels = strip_metadata, int(max_megapixels * 1e6)
        self.clip = clip or {}
        self.node = _node_id()  # an actor stays on its node: asked once

    def __call__(self, batch: dict) -> dict:
        from ..cluster import peak_memory_mb

        rows = []
        for path, outputs, video in zip(batch["path"], batch["outputs"], batch["video"], strict=True):
            t = time.perf_counter()
            f, outs = Path(str(path)), [Path(str(p)) for p in outputs]
            try:
                row = self._clip(f, outs[0]) if video else self._photo(f, outs)
            except WriteFailed as e:
                row = {"status": "stop", "reason": str(e)}
            rows.append({"path": str(f), "faces": 0, "reason": "", "skips": "", "notes": "", "over_limit": False,
                         **row, "seconds": time.perf_counter() - t})
        pid, peak = os.getpid(), peak_memory_mb()
        columns = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        return {**columns, "pid": np.full(len(rows), pid), "peak_mb": np.full(len(rows), peak),
                "node": np.full(len(rows), self.node)}

    def _photo(self, f: Path, outs: list[Path]) -> dict:
        from ..errors import OverLimit
        from ..infer.photo_io import JPEG_SUFFIXES, open_photo
        from ..infer.video_io import looks_like_video

        try:
            photo = open_photo(f, max_pixels=self.max_pixels)
        except (OSError, ValueError) as e:
            hint = " (a video: leave out --aligned)" if self.aligned and looks_like_video(f) else ""
            over = isinstance(e, OverLimit)
            return {"status": "failed", "reason": f"{e}{hint}", "over_limit": over}
        (res,) = self.deblur.restore([photo.image])
        if isinstance(res, str):
            return {"status": "failed", "reason": res}
        image, mask, faces, skipped = res
        try:
            self._write(photo, image, mask, outs)
        except OSError as e:
            return {"status": "failed", "reason": str(e)}
        notes = []
        if self.aligned:
            h, w = self.pipe.working_size(photo.image.shape)
            if (h, w) != photo.image.shape[:2]:
                notes.append(f"{f}: a {photo.image.shape[1]}x{photo.image.shape[0]} crop, restored at {w}x{h}; its "
                             "finer detail kept from the input")
        if photo.alpha is not None and outs[0].suffix.lower() in JPEG_SUFFIXES:  # save_photo: the suffix decides
            notes.append(f"{f}: its transparency is not in the JPEG output (--format png keeps it)")
        skips = [f"{f}: {why}" for why in skipped]
        return {"status": "written", "faces": faces, "skips": "\n".join(skips), "notes": "\n".join(notes)}

    def _write(self, photo, image, mask, outs: list[Path]) -> None:
        """The local run's writes: the image (its format by its suffix), then mask and side-by-side; all or none."""
        from ..data.io import write_image
        from ..infer.photo_io import save_photo
        from ..report import colorize_mask
        from ..report.grid import side_by_side
        from .outputs import write_set

        def first(p: Path) -> None:
            save_photo(p, photo, image, strip_metadata=self.strip_metadata)
            _crash_once()

        writes = [(outs[0], first)]
        if self.save_mask:
            writes.append((outs[1], lambda p: write_image(p, colorize_mask(mask))))
        if self.side_by_side:
            writes.append((outs[-1], lambda p: write_image(
                p, side_by_side([photo.image, colorize_mask(mask), image], ["input", "mask", "output"]))))
        write_set(writes)

    def _clip(self, f: Path, out: Path) -> dict:
        """One clip, as the local run restores each (:meth:`smfd.FaceDeblurrer.deblur_video`, written to a hidden
        file renamed at the end)."""
        from .outputs import DISK_ERRORS

        try:
            job = self.pipe.deblur_video(f, out, keep=self.keep, **self.clip)
            frames = iter(job)
            try:
                for _ in frames:
                    pass
            finally:
                frames.close()  # a clip that failed leaves no output
        except OSError as e:
            if e.errno in DISK_ERRORS:
                raise WriteFailed(f"{out}: cannot write: {e.strerror or e}") from None
            return {"status": "failed", "reason": str(e)}
        except (ValueError, RuntimeError) as e:
            return {"status": "failed", "reason": str(e)}
        return {"status": "written", "faces": job.faces_restored, "notes": f"{f}: {job.summary()}"}


def _is_video(f: Path) -> bool:
    from ..infer.video_io import VIDEO_SUFFIXES

    return f.suffix.lower() in VIDEO_SUFFIXES


# --- on the driver --------------------------------------------------------------------------------------------


def partial_files(targets: Sequence[Path]) -> list[Path]:
    """Temporary files a killed writer may have left beside ``targets``: ``.NAME.*.tmp`` (photos, masks) and
    ``.STEM.partial-PID.SUFFIX`` (clips)."""
    found = []
    for t in targets:
        if t.parent.is_dir():
            found += [*t.parent.glob(f".{t.name}.*.tmp"), *t.parent.glob(f".{t.stem}.partial-*{t.suffix}")]
    return found


def _start_ray(ray, address: str | None, actors: int | None, threads: int) -> int:
    """Join ``address`` or start a local instance (unless this process already has one); returns the number of
    actors: ``actors``, or as many as the cluster's CPUs hold."""
    import logging

    # Ray's usage statistics stay off unless the user turned them on: nothing about a run leaves the machine, and
    # Ray Data starts no actor to collect them (one process less at start-up). A local instance's processes inherit
    # this; a cluster keeps the setting it was started with (`ray start` reads the same variable).
    os.environ.setdefault(USAGE_STATS, "0")
    if not ray.is_initialized():
        # "local": a new instance on this machine with every CPU, even where one was started with `ray start`
        ray.init(address=address or "local", include_dashboard=False, logging_level=logging.ERROR)
    if actors is None:
        actors = max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
    return actors


def _dataset(ray, items: list[dict], clips: list[dict], actors: int):
    """Photos cut into small blocks (the work spreads evenly to the end), and each clip a block of its own."""
    blocks = min(len(items), max(actors * BLOCKS_PER_ACTOR, -(-len(items) // 64)))
    parts = ([ray.data.from_items(items, override_num_blocks=blocks)] if items else []) + (
        [ray.data.from_items(clips, override_num_blocks=len(clips))] if clips else [])
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def run_on_ray(inputs: Sequence[Path], targets: dict[Path, Path | Sequence[Path]], *, address: str | None = None,
               actors: int | None = None, threads: int = 1, weights: str = "default", aligned: bool = False,
               keep: Sequence[int] = (), save_mask: bool = False, side_by_side: bool = False,
               strip_metadata: bool = False, max_megapixels: float = 50.0, overwrite: bool = False,
               skip_existing: bool = False, start: float = 0.0, duration: float | None = None,
               detect_every: int = 8, fuse: int = 3, progress: bool = True, **pipeline_options) -> RaySummary:
    """Restore ``inputs`` (photos, crops with ``aligned``, clips) into ``targets`` (each input's outputs: the image,
    then its mask and side-by-side where asked for) as a Ray Data job, with the local run's rules: outputs planned
    first by :func:`smfd.cli.outputs.plan_outputs` (``overwrite``, ``skip_existing``), the same writers and names.

    Args:
        address: None starts a local Ray instance on this machine; ``auto`` or ``ray://host:port`` joins a cluster.
        actors: actors in the pool (None: as many as the cluster's CPUs hold, ``threads`` each).
        threads: CPUs (and torch threads) per actor.
        weights, pipeline_options: :func:`smfd.load_pipeline`'s (``backend``, ``batch_size``, ``min_face``,
            ``precision``, ``detector``, ``max_work_size``, ``mirror_big``); a weights folder must be at that path
            on every node.
        start, duration, detect_every, fuse: the clips' options, as the local run's.
        progress: show a bar with files/s and faces/s.

    Returns:
        A :class:`RaySummary`; raises :class:`~smfd.cli.CliError` for what the local run refuses before starting.
    """
    t0 = time.perf_counter()
    ray = _ray_for(weights, keep, pipeline_options.get("detector", "hog"), actors, threads)
    inputs = list(inputs)
    todo, done_before = plan_outputs(_output_lists(inputs, targets, 1 + save_mask + side_by_side), overwrite,
                                     skip_existing)
    summary = RaySummary(inputs, done_before=list(done_before))
    rows = [{"path": str(f), "outputs": [str(p) for p in todo[f]], "video": not aligned and _is_video(f)}
            for f in inputs if f in todo]
    if not rows:
        summary.seconds = time.perf_counter() - t0
        return summary
    options = dict(weights=weights, aligned=aligned, keep=tuple(keep), save_mask=save_mask, side_by_side=side_by_side,
                   strip_metadata=strip_metadata, max_megapixels=max_megapixels, threads=threads,
                   clip=dict(start=start, duration=duration, detect_every=detect_every, fuse=fuse), cwd=os.getcwd(),
                   **pipeline_options)
    _run_then_tidy(ray, summary, rows, todo, address=address, actors=actors, threads=threads, progress=progress,
                   t0=t0, options=options)
    seen = {*map(str, summary.written), *(name for name, _ in summary.failures)}
    summary.not_done = [f for f in todo if str(f) not in seen]
    summary.seconds = time.perf_counter() - t0
    return summary


def _ray_for(weights: str, keep: Sequence[int], detector: str, actors: int | None, threads: int):
    """The ``ray`` module, once Ray is installed and the options are ones the actors can use (else a CliError: 1
    for a missing install, 2 for an option)."""
    from ..cluster import check_options, require_ray

    try:
        ray = require_ray()
        check_options(weights, keep=keep, detector=detector, actors=1 if actors is None else actors, threads=threads)
    except (RuntimeError, ValueError) as e:
        raise CliError(str(e), code=1 if isinstance(e, RuntimeError) else 2) from None
    return ray


def _output_lists(inputs: list[Path], targets: dict[Path, Path | Sequence[Path]], want: int) -> dict[Path, list]:
    """Each input's outputs as a list: ``want`` of them (image, mask, side-by-side as asked; a clip: one)."""
    lists = {f: [targets[f]] if isinstance(targets[f], (str, os.PathLike)) else list(targets[f]) for f in inputs}
    bad = [f for f in inputs if len(lists[f]) != want and not (len(lists[f]) == 1 and _is_video(f))]
    if bad:
        raise ValueError(f"targets: {bad[0]} needs {want} output(s) (image, mask, side-by-side as asked), got "
                         f"{len(lists[bad[0]])}")
    return lists


def _run_then_tidy(ray, summary: RaySummary, rows: list[dict], todo: dict[Path, list[Path]], *, address: str | None,
                   actors: int | None, threads: int, progress: bool, t0: float, options: dict) -> None:
    """Start or join Ray and run the job; however it ends, stop the instance this call started and remove what a
    stopped or killed writer left. Ctrl-C is a stop the summary records; a failed Ray job a one-line error."""
    started = not ray.is_initialized()
    try:
        summary.pool = actors = _start_ray(ray, address, actors, threads)
        _run(ray, summary, rows, actors=actors, threads=threads, progress=progress, t0=t0, options=options)
    except KeyboardInterrupt:
        summary.stop = ("stopped by Ctrl-C", 130)
    except ray.exceptions.RayError as e:  # an actor that cannot start (weights missing on a node), a lost node...
        raise RuntimeError(f"the Ray job failed: {_cause(e)}; what was written is complete: re-run with "
                           "--skip-existing to go on") from e
    finally:
        if started:
            _stop(ray, own=address is None)  # its actors stop with it; then what a stopped or killed writer left
        for p in partial_files([t for f in todo for t in todo[f]]):  # is removed
            p.unlink(missing_ok=True)


def _stop(ray, own: bool) -> None:
    """``ray.shutdown()``; on an instance this run started on this machine (``own``), its autoscaler monitor is
    stopped first: it has nothing to scale there, and ``ray.shutdown()`` otherwise waits a second for it to exit
    once the cluster's state server is gone (1.2-1.4 s against 0.4, measured)."""
    if own:
        node = getattr(getattr(ray, "_private", None), "worker", None)
        node = getattr(node, "_global_node", None)
        try:
            node.kill_monitor(check_alive=False)
        except (AttributeError, OSError):  # another Ray may keep its node elsewhere: then shut down as usual
            pass
    ray.shutdown()


def _cause(e: Exception) -> str:
    """The last line of a Ray error (where the worker's own exception is), without colour codes."""
    import re

    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if line.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]


def _run(ray, summary: RaySummary, rows: list[dict], *, actors: int, threads: int, progress: bool, t0: float,
         options: dict) -> None:
    """Run the job and take each input's report as it comes (the first report of an input counts)."""
    import logging

    from ray.data import DataContext

    from ..cluster import actor_pool

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # notes on how the dataset runs; errors still show
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    summary.cluster_nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    photos = [r for r in rows if not r["video"]]
    ds = _dataset(ray, photos, [r for r in rows if r["video"]], actors)
    ds = ds.map_batches(RestoreAndWrite, fn_constructor_kwargs=options, batch_size=1, batch_format="numpy",
                        compute=actor_pool(actors), num_cpus=threads)
    seen: set[str] = set()
    with _bar(progress) as bar:
        task = bar.add_task(f"starting {actors} actor(s) on Ray", total=len(rows), faces=0)
        for row in ds.iter_rows():
            if row["path"] in seen:  # Ray keeps only a finished call's rows; this guards the count anyway
                continue
            if not seen:  # start-up: Ray started or joined, actors up, pipeline loaded (not the first input)
                summary.startup_s = time.perf_counter() - t0 - float(row["seconds"])
                bar.update(task, description="deblurring on Ray")
                bar.reset(task, total=len(rows), faces=0)  # the rates count from the first result
            seen.add(row["path"])
            _take(summary, row)
            bar.update(task, advance=1, faces=summary.restored)
            if summary.stop:
                break


def _take(summary: RaySummary, row: dict) -> None:
    f = Path(row["path"])
    summary.actors[int(row["pid"])] = max(summary.actors.get(int(row["pid"]), 0.0), float(row["peak_mb"]))
    node = str(row.get("node", ""))
    summary.nodes[node] = summary.nodes.get(node, 0) + 1
    if row["status"] == "written":
        summary.written.append(f)
        summary.restored += int(row["faces"])
    elif row["status"] == "stop":
        summary.stop = (f"stopped: {row['reason']}", 1)
    else:
        summary.failures.append((str(f), row["reason"]))
        summary.over_limit |= bool(row["over_limit"])
    summary.skips += [s for s in row["skips"].split("\n") if s]
    summary.notes += [s for s in row["notes"].split("\n") if s]


def _bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rates(ProgressColumn):
        def render(self, task) -> Text:
            t = task.elapsed or 0.0
            if not task.completed or t <= 0:
                return Text("")
            return Text(f"{task.completed / t:.1f} files/s {task.fields.get('faces', 0) / t:.1f} faces/s")

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(), Rates(),
                    TimeRemainingColumn(), console=console, transient=False, disable=not enabled)


def ray_line(summary: RaySummary) -> str:
    """One line on how the run went on Ray: actors and the nodes they ran on, time and start-up, files/s and
    faces/s after start-up, peak memory per actor."""
    t = max(summary.seconds - summary.startup_s, 1e-9)
    peak = max(summary.actors.values(), default=0.0)
    nodes = (f" on a cluster of {summary.cluster_nodes} node(s) (inputs done on {len(summary.nodes)})"
             if summary.cluster_nodes else "")
    return (f"on Ray: {summary.pool} actor(s){nodes}, {summary.seconds:.1f} s of which {summary.startup_s:.1f} s "
            f"start-up; after it {len(summary.written) / t:.2f} files/s, {summary.restored / t:.2f} faces/s; peak "
            f"memory per actor {peak:.0f} MB")


def print_summary(summary: RaySummary, out: Path, *, kind: str = "image(s)", max_megapixels: float = 50.0,
                  left_out: Sequence[Path] = (), aligned: bool = False, subfolders: Sequence[Path] = ()) -> None:
    """The local run's summary lines for a Ray run (``left_out``: files of other kinds in the input folders,
    ``subfolders``: their subfolders holding inputs, not searched), with one line on Ray (:func:`ray_line`); raises
    :class:`~smfd.cli.CliError` if any input failed or the run stopped."""
    from .deblur import summarise

    notes = list(summary.notes)
    if summary.over_limit:
        notes.append(f"--max-megapixels raises the {max_megapixels:g} MP limit (memory grows with it)")
    summarise(out=out, inputs=len(summary.inputs), kind=kind, aligned=aligned, restored=summary.restored,
              written=len(summary.written), done_before=len(summary.done_before), skips=summary.skips, notes=notes,
              left_out=left_out, stop=summary.stop, not_done=summary.not_done, failures=summary.failures,
              extra=[ray_line(summary)] if summary.actors else [], subfolders=subfolders)


__all__ = ["CRASH_ONCE_ENV", "RaySummary", "RestoreAndWrite", "partial_files", "print_summary", "ray_line",
           "run_on_ray"]
