"""``smfd deblur`` for the video files among its inputs: one progress bar per clip, with frames/s and time left."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from ..infer.video import VideoJob
from . import console


class _Rate(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} frames/s" if task.speed else "")


def deblur_videos(pipe, videos: Sequence[Path], targets: dict[Path, Path], *, start: float,
                  duration: float | None, detect_every: int, keep: Sequence[int], fuse: int
                  ) -> Iterator[tuple[Path, VideoJob | None, str]]:
    """Restore each clip into its target, yielding (clip, its finished job, "") or (clip, None, the error) as each
    one ends. A clip that fails or is stopped (Ctrl-C) leaves no output; a full disk stops the run
    (``WriteFailed``)."""
    from .outputs import DISK_ERRORS, WriteFailed

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        for f in videos:
            try:
                job = pipe.deblur_video(f, targets[f], start=start, duration=duration, detect_every=detect_every,
                                        keep=keep, fuse=fuse)
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
                if e.errno in DISK_ERRORS:
                    raise WriteFailed(f"{targets[f]}: cannot write: {e.strerror or e}") from None
                error = str(e)
            except (ValueError, RuntimeError) as e:
                error = str(e)
            finally:
                frames.close()  # a stopped clip's half-written output is removed here
            if error:
                yield f, None, error
                continue
            bar.update(task, total=job.frames, completed=job.frames)
            yield f, job, ""


__all__ = ["deblur_videos"]
