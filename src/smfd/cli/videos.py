"""``smfd deblur`` for the video files among its inputs: one progress bar per clip, with frames/s and time left."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from ..infer.video import VideoJob
from . import Terminated, console, stop_on_sigterm


class _Rate(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} frames/s" if task.speed else "")


def deblur_videos(pipe, videos: Sequence[Path], targets: dict[Path, Path], *, start: float,
                  duration: float | None, detect_every: int, keep: Sequence[int], fuse: int,
                  strip_metadata: bool = False) -> Iterator[tuple[Path, VideoJob | None, str]]:
    """Restore each clip into its target, yielding (clip, its finished job, "") or (clip, None, the error) as each
    one ends, or (clip, its job, the warning) for a clip written but cut short (``job.truncated``: a damaged file,
    to count as failed though its output is there). A clip that fails or is stopped (Ctrl-C, SIGTERM: raised as
    :class:`Terminated`, a KeyboardInterrupt) leaves no output; a full disk stops the run (``WriteFailed``)."""
    from .outputs import DISK_ERRORS, WriteFailed

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
               TimeRemainingColumn())
    with stop_on_sigterm(), Progress(*columns, console=console, transient=False) as bar:
        for f in videos:
            try:
                job = pipe.deblur_video(f, targets[f], start=start, duration=duration, detect_every=detect_every,
                                        keep=keep, fuse=fuse, metadata=not strip_metadata)
            except (OSError, ValueError, RuntimeError) as e:
                yield f, None, str(e)
                continue
            task = bar.add_task(f.name, total=job.expected_frames)
            frames = iter(job)
            error = ""
            try:
                for _ in frames:
                    bar.advance(task)
            except OSError as e:
                if e.errno in DISK_ERRORS:  # the writer's own errors are worded already (no strerror)
                    raise WriteFailed(f"{targets[f]}: cannot write: {e.strerror}" if e.strerror else str(e)) from None
                error = str(e)
            except (ValueError, RuntimeError) as e:
                error = str(e)
            finally:
                frames.close()  # a stopped clip's half-written output is removed here
            if error:
                yield f, None, error
                continue
            bar.update(task, total=job.frames, completed=job.frames)
            yield f, job, job.warning or ""


__all__ = ["Terminated", "deblur_videos", "stop_on_sigterm"]
