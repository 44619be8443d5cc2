"""Faces in videos: decode, find and follow each face, restore the faces in batches, paste them back, and encode
the clip again with its size, frame rate, timestamps, rotation and audio.

PyAV (FFmpeg's libraries, from PyPI: ``pip install 'smfd[video]'``) reads and writes the clip: it keeps each
frame's timestamp (variable frame rates stay as they were) and copies the audio packets as they are, so
nothing is re-encoded but the picture (x264, visually lossless by default). OpenCV's VideoCapture/VideoWriter
were the alternative; they drop the audio and the timestamps.

How a face is followed: the detector runs every ``detect_every`` frames; between, each face's 5 landmarks are
found again near where the face was (dlib's shape predictor, about a millisecond). Each track's landmarks are
then smoothed over time with a centred window (the frames after a frame are known before it is written), so the
aligned crop follows the face without lag and without jitter: restoring frame by frame otherwise flickers.

Example:
    >>> pipe = smfd.load_pipeline()
    >>> job = pipe.deblur_video("clip.mp4", "restored.mp4", start=10, duration=5)
    >>> for frame in job:            # frames as they are written: frame.image, frame.faces
    ...     pass
    >>> job.stats                    # seconds spent decoding, detecting and tracking, restoring, pasting, encoding
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .faces import Face, align, alignment_matrix
from .tracking import FUSE_TOLERANCE, FaceTracker, fuse_crops, smooth_landmarks
from .video_io import VIDEO_SUFFIXES, VideoInfo, _av, _decode, _demux, _open, _Writer, output_suffix, probe

if TYPE_CHECKING:
    from .pipeline import FaceDeblurrer

# --- the job ------------------------------------------------------------------------------------------------------


@dataclass
class VideoFrame:
    """One written frame: ``index`` (from the first frame written), ``time`` (s, from ``start``), ``image`` (RGB
    uint8, upright as displayed), the ``faces`` followed in it (each with its smoothed landmarks and ``matrix``, or
    ``skipped``) and their ``tracks`` (one id per face, the same for the same face across frames)."""

    index: int
    time: float
    image: np.ndarray
    faces: list[Face] = field(default_factory=list)
    tracks: list[int] = field(default_factory=list)


@dataclass
class _Pending:
    index: int
    time: float
    pts: int  # in the input stream's time base
    image: np.ndarray
    tracks: dict[int, tuple[np.ndarray, int]]  # track id -> (landmarks as found, face size)
    faces: list[Face] = field(default_factory=list)  # as restored: smoothed landmarks, matrix
    ids: list[int] = field(default_factory=list)
    crops: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> restored aligned crop


class VideoJob:
    """Restore the faces of a clip; iterate to run it (:class:`VideoFrame` per frame, in order). With ``dst`` the
    clip is written there as it goes, to a hidden file in the same folder renamed at the end: a run that fails or
    is stopped (Ctrl-C, or the loop left early) leaves nothing behind. ``stats`` holds the seconds spent per stage
    and the counts once it has run."""

    STAGES = ("decode", "detect and track", "restore", "paste back", "encode")

    def __init__(self, pipe: FaceDeblurrer, src: str | os.PathLike, dst: str | os.PathLike | None = None, *,
                 start: float = 0.0, duration: float | None = None, detect_every: int = 8, smooth: int = 4,
                 fuse: int = 3, fuse_tolerance: float = FUSE_TOLERANCE, batch_frames: int = 8,
                 keep: Sequence[int] = (), crf: int = 18,
                 preset: str = "veryfast",
                 progress: Callable[[int], None] | None = None) -> None:
        if start < 0:
            raise ValueError(f"start must be >= 0 s, got {start:g}")
        if duration is not None and duration <= 0:
            raise ValueError(f"duration must be > 0 s, got {duration:g}")
        if smooth < 0 or fuse < 0 or batch_frames < 1:
            raise ValueError("smooth and fuse must be >= 0 and batch_frames >= 1")
        self.pipe, self.src = pipe, Path(src)
        self.dst = None if dst is None else Path(dst)
        self.start, self.duration = start, duration
        self.detect_every, self.smooth, self.fuse, self.batch_frames = detect_every, smooth, fuse, batch_frames
        self.fuse_tolerance = fuse_tolerance
        self.crf, self.preset, self.progress, self.keep = crf, preset, progress, tuple(keep)
        self.info = probe(self.src)
        if self.start >= self.info.duration > 0:
            raise ValueError(f"start {start:g} s is past the end of {self.src} ({self.info.duration:.1f} s)")
        self.stats: dict[str, float] = dict.fromkeys(self.STAGES, 0.0)
        self.frames = self.faces_restored = self.frames_with_faces = self.faces_skipped = 0

    @property
    def expected_frames(self) -> int:
        """Frames this job will write, estimated from the frame rate (for progress bars)."""
        length = self.info.duration - self.start
        if self.duration is not None:
            length = min(length, self.duration)
        return max(1, round(length * self.info.fps)) if length > 0 else max(1, self.info.frames)

    def __iter__(self) -> Iterator[VideoFrame]:
        av = _av()
        container = _open(self.src)
        writer = None
        try:
            vin = container.streams.video[0]
            vin.thread_type = "AUTO"
            ain = container.streams.audio[0] if container.streams.audio else None
            if self.dst is not None:
                writer = _Writer(self.dst, vin, ain, self.info, crf=self.crf, preset=self.preset)
            yield from self._run(av, container, vin, ain, writer)
            if writer is not None:
                t = time.perf_counter()
                writer.finish()
                self.stats["encode"] += time.perf_counter() - t
                writer = None
        finally:
            if writer is not None:
                writer.abort()
            container.close()

    def _run(self, av, container, vin, ain, writer) -> Iterator[VideoFrame]:
        pipe = self.pipe
        tracker = FaceTracker(pipe._detect, pipe.detector, detect_every=self.detect_every,
                              face_size=pipe.face_size)
        end = None if self.duration is None else self.start + self.duration
        if self.start > 0:
            container.seek(int(self.start / vin.time_base), stream=vin, backward=True, any_frame=False)
        k = (self.info.rotation // 90) % 4
        window: deque[_Pending] = deque()
        series: dict[int, dict[int, np.ndarray]] = {}  # track id -> frame index -> landmarks
        ready: list[_Pending] = []
        done_frames: deque[_Pending] = deque()  # restored, waiting for their later neighbours to be fused with
        self._next = 0
        index, first_pts, last_pts, done = 0, None, None, False
        streams = [vin] + ([ain] if ain is not None and writer is not None else [])
        clock = time.perf_counter()
        for packet in _demux(av, container, streams, self.src):
            if packet.stream.type == "audio":
                if writer is not None:
                    writer.audio(packet, self.start, end)
                continue
            for frame in _decode(av, packet, self.src, index):
                # timestamps as stored (a variable frame rate stays); one missing or out of order (AVI) follows on
                pts = frame.pts
                if pts is None or (last_pts is not None and pts <= last_pts):
                    pts = 0 if last_pts is None else last_pts + max(1, round(1 / (self.info.fps * vin.time_base)))
                last_pts = pts
                t = float(pts * vin.time_base)
                if t < self.start - 1e-6:
                    continue
                if end is not None and t >= end - 1e-6:
                    done = True
                    break
                first_pts = pts if first_pts is None else first_pts
                image = frame.to_ndarray(format="rgb24")
                image = np.ascontiguousarray(np.rot90(image, k)) if k else image
                now = time.perf_counter()
                self.stats["decode"] += now - clock
                faces = tracker.update(image, index)
                for tid, points, _ in faces:
                    series.setdefault(tid, {})[index] = points
                window.append(_Pending(index, t - self.start, pts, image,
                                       {tid: (points, size) for tid, points, size in faces}))
                clock = time.perf_counter()
                self.stats["detect and track"] += clock - now
                index += 1
                while window and window[0].index <= index - 1 - self.smooth:
                    ready.append(window.popleft())
                if len(ready) >= self.batch_frames:
                    yield from self._restore(ready, series, done_frames, False, writer, first_pts, k)
                    ready = []
                clock = time.perf_counter()
            if done:
                break
        ready.extend(window)
        yield from self._restore(ready, series, done_frames, True, writer, first_pts, k)
        if index == 0:
            raise ValueError(f"{self.src}: no frames between {self.start:g} s and "
                             f"{'the end' if end is None else f'{end:g} s'}")
        self.detections = tracker.detections

    def _restore(self, ready: list[_Pending], series: dict, done: deque, final: bool, writer, first_pts, k: int
                 ) -> Iterator[VideoFrame]:
        """Align and restore the faces of the ``ready`` frames (one batch), then write every frame whose
        neighbours within ``fuse`` frames are restored (all of them when ``final``). ``done`` holds the restored
        frames not yet written and the last ``fuse`` written ones (their crops are the earlier neighbours)."""
        pipe = self.pipe
        t0 = time.perf_counter()
        crops, owners = [], []
        for p in ready:
            p.faces, p.ids, p.crops = [], list(p.tracks), {}
            for tid, (_, size) in p.tracks.items():
                pts = smooth_landmarks(series[tid], p.index, self.smooth, self.smooth / 2)
                x0, y0 = (pts.mean(0) - size / 2).round().astype(int)
                face = Face((int(x0), int(y0), int(x0) + size, int(y0) + size), pts)
                if size < pipe.min_face:
                    face.skipped = f"face of {size} px is below the {pipe.min_face} px minimum"
                    self.faces_skipped += 1
                else:
                    face.matrix = alignment_matrix(pts, pipe.face_size)
                    crops.append(align(p.image, face.matrix, pipe.face_size))
                    owners.append((p, tid))
                p.faces.append(face)
        restored = pipe.restore_faces(crops, self.keep, mask=False)[0] if crops else []
        for (p, tid), out in zip(owners, restored, strict=True):
            p.crops[tid] = out
        self.stats["restore"] += time.perf_counter() - t0
        done.extend(ready)
        oldest = ready[-1].index + 1 - self.smooth if ready else 0  # the next frame's smoothing window starts here
        for tid in list(series):
            for j in [j for j in series[tid] if j < oldest]:
                del series[tid][j]
            if not series[tid]:
                del series[tid]
        while self._next < len(done) and (final or done[-1].index >= done[self._next].index + self.fuse):
            yield self._write(done, self._next, writer, first_pts, k)
            self._next += 1
            while self._next > self.fuse:  # written frames beyond the fusion window are no longer read
                done.popleft()
                self._next -= 1

    def _write(self, done: deque, at: int, writer, first_pts, k: int) -> VideoFrame:
        p = done[at]
        t1 = time.perf_counter()
        todo = [(f, self._fused(done, at, tid)) for f, tid in zip(p.faces, p.ids, strict=True) if tid in p.crops]
        image = self.pipe.paste(p.image, [f for f, _ in todo], [o for _, o in todo]) if todo else p.image
        self.frames += 1
        self.frames_with_faces += bool(todo)
        self.faces_restored += len(todo)
        t2 = time.perf_counter()
        self.stats["paste back"] += t2 - t1
        if writer is not None:
            writer.video(np.rot90(image, -k) if k else image, p.pts - first_pts)
        self.stats["encode"] += time.perf_counter() - t2
        if self.progress is not None:
            self.progress(1)
        return VideoFrame(p.index, p.time, image, p.faces, p.ids)

    def _fused(self, done: deque, at: int, tid: int) -> np.ndarray:
        """The track's restored crop at ``done[at]`` fused with its crops in the frames up to ``fuse`` before and
        after (:func:`fuse_crops`)."""
        if not self.fuse:
            return done[at].crops[tid]
        index = done[at].index
        near = [(p.index - index, p.crops[tid]) for p in list(done)[max(0, at - self.fuse) : at + self.fuse + 1]
                if p is not done[at] and tid in p.crops and abs(p.index - index) <= self.fuse]
        return fuse_crops(done[at].crops[tid], near, self.fuse, self.fuse_tolerance)

    def summary(self) -> str:
        """One line on what the run did."""
        if not self.faces_restored:
            return (f"no face restored in {self.frames} frame(s): they pass through unchanged (encoded again)"
                    + (f"; {self.faces_skipped} face(s) below {self.pipe.min_face} px skipped"
                       if self.faces_skipped else ""))
        skipped = f", {self.faces_skipped} face(s) below {self.pipe.min_face} px skipped" if self.faces_skipped else ""
        return (f"restored {self.faces_restored} face(s) in {self.frames_with_faces} of {self.frames} "
                f"frame(s){skipped}")


__all__ = ["FUSE_TOLERANCE", "VIDEO_SUFFIXES", "FaceTracker", "VideoFrame", "VideoInfo", "VideoJob", "fuse_crops",
           "output_suffix", "probe", "smooth_landmarks"]
