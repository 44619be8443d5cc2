"""``smfd deblur`` as a plan and its runners.

The command checks its options and finds its inputs once (:func:`make_plan`: a :class:`DeblurPlan` names every
input to do, split into whole photos, aligned crops and video clips, with the outputs each one gets); then
:func:`run_plan` hands the photos, the crops and the clips each to a short runner, and one report says what was
done, what was skipped and what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..infer.faces import MAX_WORK_SIZE, MIN_FACE
from . import CliError, Terminated, answer, console, progress_bar, report_failures, stop_on_sigterm
from .outputs import WriteFailed, not_read, not_searched, plan_outputs, writable_folder, write_set

FORMATS = ("keep", "png", "jpg")


@dataclass(frozen=True)
class NetOptions:
    """How the pipeline is loaded: the arguments of :func:`smfd.infer.pipeline.load_pipeline`."""

    weights: str = "default"
    backend: str = "torch"
    batch_size: int | None = None
    min_face: int = MIN_FACE
    precision: str = "auto"
    detector: str = "hog"
    max_work_size: int = MAX_WORK_SIZE
    mirror_big: bool = True


@dataclass(frozen=True)
class PhotoOptions:
    """What is restored and written for each photo or crop."""

    keep: tuple[int, ...] = ()
    save_mask: bool = False
    side_by_side: bool = False
    format: str = "keep"
    strip_metadata: bool = False
    max_megapixels: float = 50.0

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)

    @property
    def want_mask(self) -> bool:
        """Whether masks are wanted (otherwise the mask net runs only if the deblurring net reads it)."""
        return self.save_mask or self.side_by_side


@dataclass(frozen=True)
class ClipOptions:
    """Where and how the video clips are restored."""

    start: float = 0.0
    duration: float | None = None
    detect_every: int = 8
    fuse: int = 3


@dataclass(frozen=True)
class Outputs:
    """The files one input gets: the restored image (or clip), and its mask and side-by-side where asked for."""

    image: Path
    mask: Path | None = None
    side_by_side: Path | None = None

    def paths(self) -> list[Path]:
        return [p for p in (self.image, self.mask, self.side_by_side) if p is not None]


@dataclass(frozen=True)
class DeblurPlan:
    """One ``smfd deblur`` run, checked: the inputs to do (``photos``, ``crops`` or ``videos``) with their
    ``outputs``; ``inputs``: every input found; ``done_before``: inputs left alone (``--skip-existing``);
    ``left_out``: files in the input folders that are not of a kind smfd reads; ``subfolders``: subfolders of the
    input folders holding photos or clips, which a folder run does not go into."""

    out: Path
    aligned: bool
    inputs: tuple[Path, ...]
    photos: tuple[Path, ...]
    crops: tuple[Path, ...]
    videos: tuple[Path, ...]
    outputs: dict[Path, Outputs]
    done_before: tuple[Path, ...]
    left_out: tuple[Path, ...]
    nets: NetOptions
    photo: PhotoOptions
    clip: ClipOptions
    any_video: bool = False
    subfolders: tuple[Path, ...] = ()

    @property
    def todo(self) -> tuple[Path, ...]:
        return (*self.crops, *self.photos, *self.videos)

    @property
    def kind(self) -> str:
        return "input(s)" if self.any_video else "image(s)"


def check_options(nets: NetOptions, photo: PhotoOptions, clip: ClipOptions, *, overwrite: bool,
                  skip_existing: bool) -> None:
    """Every option checked once, before any input is looked at: a bad one is a usage error naming it."""
    from ..infer.faces import DETECTORS
    from ..infer.video import MAX_FUSE

    if photo.format not in FORMATS:
        raise CliError(f"--format must be one of {', '.join(FORMATS)}, got {photo.format!r}", code=2)
    if nets.detector not in DETECTORS:
        raise CliError(f"--detector must be one of {', '.join(DETECTORS)}, got {nets.detector!r}", code=2)
    for name, value, low in (("--batch-size", nets.batch_size, 1), ("--min-face", nets.min_face, 0),
                             ("--fuse", clip.fuse, 0), ("--detect-every", clip.detect_every, 1),
                             ("--max-work-size", nets.max_work_size, 256)):
        if value is not None and value < low:
            raise CliError(f"{name} must be at least {low}, got {value}", code=2)
    if clip.fuse > MAX_FUSE:
        raise CliError(f"--fuse must be at most {MAX_FUSE} (frames each side), got {clip.fuse}", code=2)
    for name, value in (("--max-megapixels", photo.max_megapixels), ("--duration", clip.duration)):
        if value is not None and not value > 0:
            raise CliError(f"{name} must be positive, got {value:g}", code=2)
    if not clip.start >= 0:
        raise CliError(f"--start must be 0 or more, got {clip.start:g}", code=2)
    if overwrite and skip_existing:
        raise CliError("--overwrite and --skip-existing exclude each other: choose one", code=2)


def _outputs(f: Path, out: Path, photo: PhotoOptions, video: bool) -> Outputs:
    """The output files of input ``f``, named once here (the format rule: :func:`smfd.infer.photo_io.output_suffix`,
    with the format the file holds read from its header)."""
    if video:
        from ..infer.video import output_suffix as video_suffix

        return Outputs(out / f"{f.stem}{video_suffix(f.suffix)}")
    from ..infer.photo_io import output_suffix, stored_format

    stored = stored_format(f) if photo.format == "keep" else ""
    return Outputs(out / f"{f.stem}{output_suffix(f.suffix, photo.format, stored)}",
                   out / f"{f.stem}_mask.png" if photo.save_mask else None,
                   out / f"{f.stem}_side_by_side.png" if photo.side_by_side else None)


def make_plan(inputs: list[str], out: Path, *, aligned: bool, nets: NetOptions, photo: PhotoOptions,
              clip: ClipOptions, overwrite: bool = False, skip_existing: bool = False) -> DeblurPlan:
    """Check the options, find the inputs and plan every output (none written twice, none an input, none replaced
    without ``overwrite``), before anything is loaded or written."""
    from ..data.io import IMAGE_SUFFIXES, expand_inputs
    from ..infer.video import VIDEO_SUFFIXES

    check_options(nets, photo, clip, overwrite=overwrite, skip_existing=skip_existing)
    if out.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES and not out.is_dir():
        raise CliError(f"-o {out}: -o names the output folder (outputs keep their input's name), not a file", code=2)
    suffixes = IMAGE_SUFFIXES if aligned else IMAGE_SUFFIXES + VIDEO_SUFFIXES  # face crops are photos
    files = expand_inputs(inputs, suffixes)
    left_out, subfolders = not_read(inputs, suffixes), not_searched(inputs, suffixes)
    if not files:
        raise CliError("no input images found" + (f" ({len(left_out)} file(s) of other kinds, e.g. "
                                                  f"{left_out[0].name})" if left_out else "")
                       + (f"; {unsearched_line(subfolders)}" if subfolders else ""))
    stems = [f.stem for f in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise CliError(f"two inputs are both named {dup[0]}.*; outputs would collide, rename one")
    writable_folder(out)
    is_video = {f: not aligned and f.suffix.lower() in VIDEO_SUFFIXES for f in files}
    outputs = {f: _outputs(f, out, photo, is_video[f]) for f in files}
    todo, done = plan_outputs({f: o.paths() for f, o in outputs.items()}, overwrite, skip_existing)
    to_do = tuple(f for f in files if f in todo)
    return DeblurPlan(out, aligned, tuple(files), photos=() if aligned else tuple(f for f in to_do if not is_video[f]),
                      crops=to_do if aligned else (), videos=tuple(f for f in to_do if is_video[f]),
                      outputs={f: outputs[f] for f in to_do}, done_before=tuple(done), left_out=tuple(left_out),
                      nets=nets, photo=photo, clip=clip, any_video=any(is_video.values()),
                      subfolders=tuple(subfolders))


@dataclass
class Tally:
    """What a run has done so far."""

    written: list[Path] = field(default_factory=list)
    restored: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hints: dict[str, None] = field(default_factory=dict)  # said once, after the notes (cli.ERRORS)
    stop: tuple[str, int] | None = None  # (why, exit code) once the run stopped

    def failed(self, f: Path, e: Exception, note: str = "") -> None:
        hint = answer(e)[1]
        if hint:
            self.hints[hint] = None
        self.failures.append((str(f), f"{e}{note}"))


@contextmanager
def _stopping(tally: Tally) -> Iterator[None]:
    """A full disk or Ctrl-C stops the run, with the outputs of every input done so far complete."""
    try:
        yield
    except WriteFailed as e:
        tally.stop = (f"stopped: {e}", 1)
    except Terminated:
        tally.stop = ("stopped by SIGTERM", 143)
    except KeyboardInterrupt:
        tally.stop = ("stopped by Ctrl-C", 130)


def run_plan(plan: DeblurPlan) -> None:
    """Load the pipeline, run the photos, crops and clips of ``plan``, and report (:class:`CliError` if any failed
    or the run stopped)."""
    from ..infer.pipeline import load_pipeline

    tally = Tally()
    images = len(plan.photos) + len(plan.crops)
    with stop_on_sigterm():  # a scheduler's or `timeout`'s SIGTERM stops the run as Ctrl-C does
        with _stopping(tally):  # loading takes a second or more: a stop then is reported as any other
            pipe = load_pipeline(**asdict(plan.nets))
        if tally.stop is not None:
            report(plan, tally)  # raises: the run stopped
        with progress_bar(disable=bool(plan.videos) and not images) as bar:
            task = bar.add_task("deblurring", total=images)
            with _stopping(tally):
                run_crops(pipe, plan, tally, lambda n: bar.advance(task, n))
                run_photos(pipe, plan, tally, lambda n: bar.advance(task, n))
        if plan.videos and tally.stop is None:
            with _stopping(tally):
                run_videos(pipe, plan, tally)
    report(plan, tally)


def run_on_cluster(plan: DeblurPlan, address: str | None, actors: int | None) -> None:
    """The plan as a Ray Data job (extra ``cluster``): the same inputs, outputs and rules, a pool of ``actors``
    each loading the pipeline once (:func:`smfd.cli.cluster.run_on_ray`); ``address`` None starts a local Ray
    instance. The outputs are planned already, so the actors write them as planned."""
    from .cluster import print_summary, run_on_ray

    summary = run_on_ray(list(plan.todo), {f: plan.outputs[f].paths() for f in plan.todo}, address=address,
                         actors=actors, aligned=plan.aligned, keep=plan.photo.keep, save_mask=plan.photo.save_mask,
                         side_by_side=plan.photo.side_by_side, strip_metadata=plan.photo.strip_metadata,
                         max_megapixels=plan.photo.max_megapixels, overwrite=True, start=plan.clip.start,
                         duration=plan.clip.duration, detect_every=plan.clip.detect_every, fuse=plan.clip.fuse,
                         **asdict(plan.nets))
    summary.done_before = list(plan.done_before)
    print_summary(summary, plan.out, kind=plan.kind, max_megapixels=plan.photo.max_megapixels,
                  left_out=plan.left_out, aligned=plan.aligned, subfolders=plan.subfolders)


def _save(plan: DeblurPlan, tally: Tally, src: Path, photo, image: np.ndarray, mask: np.ndarray | None) -> bool:
    """Write one input's outputs, all or none; a failure is the input's, a full disk stops the run."""
    from ..data.io import write_image
    from ..infer.photo_io import JPEG_SUFFIXES, lost_in_jpeg, save_photo
    from ..report import colorize_mask
    from ..report.grid import side_by_side

    outs, strip = plan.outputs[src], plan.photo.strip_metadata
    writes = [(outs.image, lambda p: save_photo(p, photo, image, strip_metadata=strip))]
    if outs.mask:
        writes.append((outs.mask, lambda p: write_image(p, colorize_mask(mask))))
    if outs.side_by_side:
        writes.append((outs.side_by_side, lambda p: write_image(
            p, side_by_side([photo.image, colorize_mask(mask), image], ["input", "mask", "output"]))))
    try:
        write_set(writes)
    except OSError as e:
        tally.failed(src, e)
        return False
    tally.written.append(src)
    if outs.image.suffix.lower() in JPEG_SUFFIXES:
        for what in lost_in_jpeg(photo):
            tally.notes.append(f"{src}: its {what} {'is' if what == 'transparency' else 'are'} not in the JPEG "
                               "output (--format png keeps it)")
    return True


def run_crops(pipe, plan: DeblurPlan, tally: Tally, advance: Callable[[int], None]) -> None:
    """Aligned face crops (``--aligned``), restored a batch at a time."""
    from ..infer.photo_io import open_photo
    from ..infer.video_io import looks_like_video

    for first in range(0, len(plan.crops), pipe.batch_size):
        batch, opened = plan.crops[first : first + pipe.batch_size], []
        for f in batch:
            try:
                opened.append((f, open_photo(f, max_pixels=plan.photo.max_pixels)))
            except (OSError, ValueError) as e:
                tally.failed(f, e, " (a video: leave out --aligned)" if looks_like_video(f) else "")
        if opened:
            outs, masks = pipe.restore_faces([p.image for _, p in opened], plan.photo.keep, mask=plan.photo.want_mask)
            for (f, photo), image, mask in zip(opened, outs, masks, strict=True):
                if _save(plan, tally, f, photo, image, mask):
                    h, w = pipe.working_size(photo.image.shape)
                    if (h, w) != photo.image.shape[:2]:
                        tally.notes.append(f"{f}: a {photo.image.shape[1]}x{photo.image.shape[0]} crop, restored at "
                                           f"{w}x{h}; its finer detail kept from the input")
                    tally.restored += 1
        advance(len(batch))


def run_photos(pipe, plan: DeblurPlan, tally: Tally, advance: Callable[[int], None]) -> None:
    """Whole photos: every face found is restored and pasted back."""
    from ..infer.photo_io import open_photo

    for f in plan.photos:
        try:
            photo = open_photo(f, max_pixels=plan.photo.max_pixels)
            result = pipe.deblur(photo.image, keep=plan.photo.keep, mask=plan.photo.want_mask)
        except (OSError, ValueError, RuntimeError) as e:
            tally.failed(f, e)
        else:
            if _save(plan, tally, f, photo, result.image, result.mask):
                tally.restored += sum(not x.skipped for x in result.faces)
                tally.skips += [f"{f}: {x.skipped}" for x in result.faces if x.skipped]
        advance(1)


def run_videos(pipe, plan: DeblurPlan, tally: Tally) -> None:
    """Video clips, each followed and restored frame by frame (:func:`smfd.cli.videos.deblur_videos`)."""
    from .videos import deblur_videos

    clip = plan.clip
    targets = {f: plan.outputs[f].image for f in plan.videos}
    unused = [name for name, on in (("--save-mask", plan.photo.save_mask), ("--side-by-side", plan.photo.side_by_side),
                                    ("--format", plan.photo.format != "keep")) if on]
    if unused:
        tally.notes.append(f"{', '.join(unused)} apply to photos; the {len(plan.videos)} clip(s) are written as "
                           "H.264 MP4 without them")
    for f, job, error in deblur_videos(pipe, plan.videos, targets, start=clip.start, duration=clip.duration,
                                       detect_every=clip.detect_every, keep=plan.photo.keep, fuse=clip.fuse,
                                       strip_metadata=plan.photo.strip_metadata):
        if error and job is not None:  # written as far as it goes, but cut short: a damaged file, so it fails
            tally.written.append(f)
            tally.restored += job.faces_restored
            tally.notes.append(f"{f}: {job.summary()}")
        if error:
            tally.failures.append((str(f), error))
            continue
        tally.written.append(f)
        tally.restored += job.faces_restored
        tally.notes.append(f"{f}: {job.summary()}")


def unsearched_line(subfolders: Sequence[Path]) -> str:
    """The words for subfolders a folder run did not go into, and how to restore what they hold."""
    names = ", ".join(str(p) for p in subfolders[:5]) + (" ..." if len(subfolders) > 5 else "")
    first = subfolders[0]
    return (f"{len(subfolders)} subfolder(s) holding inputs, not searched (a folder run reads the folder's own "
            f"files): {names}; give each as an input to restore it, e.g. smfd deblur {first} -o OUT/{first.name}")


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def report(plan: DeblurPlan, tally: Tally) -> None:
    """What was restored, skipped, noted and left out; the failures, and the stop if the run stopped."""
    failed = {name for name, _ in tally.failures}
    not_done = [f for f in plan.todo if f not in tally.written and str(f) not in failed]
    summarise(out=plan.out, inputs=len(plan.inputs), kind=plan.kind, aligned=plan.aligned, restored=tally.restored,
              written=len(tally.written), done_before=len(plan.done_before), skips=tally.skips,
              notes=[*tally.notes, *tally.hints], left_out=plan.left_out, stop=tally.stop, not_done=not_done,
              failures=tally.failures, subfolders=plan.subfolders)


def summarise(*, out: Path, inputs: int, kind: str, aligned: bool, restored: int, written: int, done_before: int,
              skips: Sequence[str], notes: Sequence[str], left_out: Sequence[Path], stop: tuple[str, int] | None,
              not_done: Sequence[Path], failures: list[tuple[str, str]], extra: Sequence[str] = (),
              subfolders: Sequence[Path] = ()) -> None:
    """A run's closing lines, local or on Ray (``extra``: lines after the left-out files and subfolders); raises
    :class:`~smfd.cli.CliError` if any input failed or the run stopped."""
    where = str(out) if out.exists() else f"{out} (nothing written)"
    before = f" ({done_before} done before, left alone)" if done_before else ""
    _say(f"restored {restored} face(s) from {written} of {inputs} {kind} into {where}{before}")
    for line in [*(f"skipped {n}" for n in skips), *(f"note: {n}" for n in notes)]:
        _say(line)
    if left_out:
        kinds = ", ".join(sorted({p.suffix.lower() or p.name for p in left_out}))
        what = "images" if aligned else "images or videos"
        names = ", ".join(p.name for p in left_out[:5]) + (" ..." if len(left_out) > 5 else "")
        _say(f"left out {len(left_out)} file(s) that are not {what} smfd reads ({kinds}): {names}")
    if subfolders:
        _say(f"left out {unsearched_line(subfolders)}")
    for line in extra:
        _say(line)
    if stop:
        _say(f"{stop[0]}; {len(not_done)} {kind} not done, from {not_done[0] if not_done else '-'}; "
             "re-run with --skip-existing to go on")
        try:
            report_failures(failures, inputs)
        except CliError:
            pass  # the stop is the error to exit with
        raise CliError(stop[0], code=stop[1])
    report_failures(failures, inputs)


__all__ = ["ClipOptions", "DeblurPlan", "NetOptions", "Outputs", "PhotoOptions", "make_plan", "run_plan"]
