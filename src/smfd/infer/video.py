"""Faces in videos: decode, find and follow each face, restore the faces in batches, paste them back, and encode
the clip again with its size, frame rate, timestamps, rotation, sound, subtitles and metadata.

PyAV (FFmpeg's libraries, from PyPI: ``pip install 'smfd[video]'``) reads and writes the clip
(:mod:`smfd.infer.video_io`): it keeps each frame's timestamp (variable frame rates stay as they were), counted
from the first frame whatever it is stored at, and copies the audio and subtitle packets as they are, in step with
the picture, so nothing is re-encoded but the picture (x264, visually lossless by default) and audio the output's
container cannot carry (a camera's PCM in MP4: AAC). OpenCV's VideoCapture/VideoWriter were the alternative; they
drop the audio and the timestamps.

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

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .faces import Face
from .photo_io import deepen
from .tracking import FUSE_TOLERANCE, FaceTracker, fuse_crops, smooth_landmarks, steady_side
from .video_io import VIDEO_SUFFIXES, Decoded, VideoInfo, VideoReader, output_suffix, probe
from .video_write import VideoWriter

if TYPE_CHECKING:
    from .pipeline import FaceDeblurrer

#: The most frames each side ``fuse`` may average: every frame in the window is held in memory.
MAX_FUSE = 8
#: The most frames each side the landmarks may be smoothed over.
MAX_SMOOTH = 30


@dataclass(frozen=True)
class VideoOptions:
    """How a clip is restored, checked once: ``start`` and ``duration`` (s, counted from the clip's first frame,
    whatever timestamp it is stored at), ``detect_every`` (frames between searches for faces), ``smooth`` (frames
    each side the landmarks are smoothed over), ``fuse`` (frames each side a restored face is averaged with, at
    most :data:`MAX_FUSE`), ``fuse_tolerance``, ``batch_frames`` (frames restored together), ``keep`` (mask classes
    kept as they were), ``crf`` and ``preset`` (x264's quality and speed), ``metadata`` (keep the container's and
    the streams' tags: title, creation time, location, languages)."""

    start: float = 0.0
    duration: float | None = None
    detect_every: int = 8
    smooth: int = 4
    fuse: int = 3
    fuse_tolerance: float = FUSE_TOLERANCE
    batch_frames: int = 8
    keep: tuple[int, ...] = ()
    crf: int = 18
    preset: str = "veryfast"
    metadata: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", tuple(self.keep))
        if not self.start >= 0:
            raise ValueError(f"start must be 0 or more (s from the clip's first frame), got {self.start:g}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be more than 0 s, got {self.duration:g}")
        for name, low, high in (("detect_every", 1, None), ("smooth", 0, MAX_SMOOTH), ("fuse", 0, MAX_FUSE),
                                ("batch_frames", 1, None), ("crf", 0, 51)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low or (high is not None and value > high):
                span = f"{low} or more" if high is None else f"{low} to {high}"
                raise ValueError(f"{name} must be {span}, got {value!r}")
        if not self.fuse_tolerance > 0:
            raise ValueError(f"fuse_tolerance must be more than 0, got {self.fuse_tolerance:g}")


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
    deep: np.ndarray | None = None  # RGB uint16 as stored, for a clip of more than 8 bits


class VideoJob:
    """Restore the faces of a clip; iterate to run it (:class:`VideoFrame` per frame, in order). With ``dst`` the
    clip is written there as it goes, to a hidden file in the same folder renamed at the end: a run that fails or
    is stopped (Ctrl-C, or the loop left early) leaves nothing behind, and the next run into the folder removes
    what a killed one left. Options: a :class:`VideoOptions` or its fields as keywords.

    Once it has run: ``stats`` (seconds per stage), the counts, ``notes`` (what the output changed: audio
    re-encoded, a stream left out, a size evened), and ``truncated`` with ``warning`` when the file ends before
    the length its container declares (what is there is written: a damaged clip, to report as such)."""

    STAGES = ("decode", "detect and track", "restore", "paste back", "encode")

    def __init__(self, pipe: FaceDeblurrer, src: str | os.PathLike, dst: str | os.PathLike | None = None,
                 options: VideoOptions | None = None, *, progress: Callable[[int], None] | None = None,
                 **fields) -> None:
        options = VideoOptions(**fields) if options is None else dataclasses.replace(options, **fields)
        self.pipe, self.src, self.options, self.progress = pipe, Path(src), options, progress
        self.dst = None if dst is None else Path(dst)
        self.info = probe(self.src)
        if options.start >= self.info.duration > 0:
            raise ValueError(f"{self.src}: start {options.start:g} s is past the end ({self.info.duration:.1f} s)")
        self.stats: dict[str, float] = dict.fromkeys(self.STAGES, 0.0)
        self.frames = self.faces_restored = self.frames_with_faces = self.faces_skipped = 0
        self.notes: list[str] = []
        self.truncated, self.warning = False, None

    @property
    def expected_frames(self) -> int:
        """Frames this job will write, estimated from the frame rate (for progress bars)."""
        length = self.info.duration - self.options.start
        if self.options.duration is not None:
            length = min(length, self.options.duration)
        return max(1, round(length * self.info.fps)) if length > 0 else max(1, self.info.frames)

    def __iter__(self) -> Iterator[VideoFrame]:
        o = self.options
        writer = None
        with VideoReader(self.src, self.info) as reader:
            try:
                if self.dst is not None:
                    until = None if o.duration is None else self.info.start + o.start + o.duration
                    writer = VideoWriter(self.dst, reader, crf=o.crf, preset=o.preset, metadata=o.metadata,
                                         keep_before=o.start == 0, until=until)
                    self.notes = list(writer.notes)
                yield from self._run(reader, writer)
                if writer is not None:
                    t = time.perf_counter()
                    writer.finish()
                    self.stats["encode"] += time.perf_counter() - t
                    writer = None
            finally:
                if writer is not None:
                    writer.abort()

    def _run(self, reader: VideoReader, writer: VideoWriter | None) -> Iterator[VideoFrame]:
        pipe, o = self.pipe, self.options
        tracker = FaceTracker(pipe.detect_faces, pipe.detector, detect_every=o.detect_every, face_size=pipe.face_size)
        end = None if o.duration is None else o.start + o.duration
        k = (self.info.rotation // 90) % 4
        window: deque[_Pending] = deque()
        series: dict[int, dict[int, np.ndarray]] = {}  # track id -> frame index -> landmarks
        ready: list[_Pending] = []
        done_frames: deque[_Pending] = deque()  # restored, waiting for their later neighbours to be fused with
        self._next = 0
        self._big: dict[int, bool] = {}  # track id -> whether its crops are restored above the training size
        index, last, read, cut = 0, None, 0, False
        clock = time.perf_counter()
        for item in reader.read(copy=writer is not None, start=o.start):
            if not isinstance(item, Decoded):
                writer.copy(item)
                continue
            read += 1
            if end is not None and item.time >= end - 1e-6:
                cut = True
                break
            last = item.time
            image = np.ascontiguousarray(np.rot90(item.image, k)) if k else item.image
            now = time.perf_counter()
            self.stats["decode"] += now - clock
            faces = tracker.update(image, index)
            for tid, points, _ in faces:
                series.setdefault(tid, {})[index] = points
            window.append(_Pending(index, item.time - o.start, item.pts, image,
                                   {tid: (points, size) for tid, points, size in faces}, deep=item.deep))
            clock = time.perf_counter()
            self.stats["detect and track"] += clock - now
            index += 1
            while window and window[0].index <= index - 1 - o.smooth:
                ready.append(window.popleft())
            if len(ready) >= o.batch_frames:
                yield from self._restore(ready, series, done_frames, False, writer, k)
                ready = []
            clock = time.perf_counter()
        ready.extend(window)
        yield from self._restore(ready, series, done_frames, True, writer, k)
        if index == 0:
            raise ValueError(f"{self.src}: no frames between {o.start:g} s and "
                             f"{'the end' if end is None else f'{end:g} s'}")
        self.detections = tracker.detections
        if not cut:
            self._check_length(last, read)

    def _check_length(self, last: float, read: int) -> None:
        """Mark the job ``truncated`` when the picture ends before what the container declares: fewer frames than
        its index counts, or, where it counts none (or the run began at ``start``), more than two frames (and half a
        second) short of its declared length."""
        info, step = self.info, 1 / self.info.fps
        by_count = bool(info.declared_frames) and self.options.start == 0
        short = read < info.declared_frames - 1 if by_count else info.duration - (last + step) > max(2 * step, 0.5)
        if short:
            self.truncated = True
            counted = f" ({read} of {info.declared_frames} frames)" if by_count else ""
            self.warning = (f"{self.src}: cut short: the picture ends at {last + step:.1f} s of the "
                            f"{info.duration:.1f} s the file declares{counted}; what is there was restored")

    def _restore(self, ready: list[_Pending], series: dict, done: deque, final: bool, writer, k: int
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
                pts = smooth_landmarks(series[tid], p.index, self.options.smooth, self.options.smooth / 2)
                x0, y0 = (pts.mean(0) - size / 2).round().astype(int)
                face = Face((int(x0), int(y0), int(x0) + size, int(y0) + size), pts)
                if size < pipe.min_face:
                    face.skipped = f"face of {size} px is below the {pipe.min_face} px minimum"
                    self.faces_skipped += 1
                else:
                    # the same rule as photos: aligned at the face's own resolution, restored at its working size;
                    # a face about the size where that rule changes stays on one side of it (no flicker)
                    side = pipe.crop_size(pts)
                    if pipe.max_work_size > pipe.face_size:
                        side = steady_side(side, self._big.get(tid), pipe.first_big_side)
                        self._big[tid] = side >= pipe.first_big_side
                    face.matrix, crop = pipe.align_face(p.image, pts, side)
                    crops.append(crop)
                    owners.append((p, tid))
                p.faces.append(face)
        restored = pipe.restore_faces(crops, self.options.keep, mask=False)[0] if crops else []
        for (p, tid), out in zip(owners, restored, strict=True):
            p.crops[tid] = out
        self.stats["restore"] += time.perf_counter() - t0
        done.extend(ready)
        # the next frame's smoothing window starts here
        oldest = ready[-1].index + 1 - self.options.smooth if ready else 0
        for tid in list(series):
            for j in [j for j in series[tid] if j < oldest]:
                del series[tid][j]
            if not series[tid]:
                del series[tid]
                self._big.pop(tid, None)
        while self._next < len(done) and (final or done[-1].index >= done[self._next].index + self.options.fuse):
            yield self._write(done, self._next, writer, k)
            self._next += 1
            while self._next > self.options.fuse:  # written frames beyond the fusion window are no longer read
                done.popleft()
                self._next -= 1

    def _write(self, done: deque, at: int, writer, k: int) -> VideoFrame:
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
            stored = np.rot90(image, -k) if k else image
            if p.deep is not None:  # written at its own depth: what the faces' restoration changed, added to it
                stored = deepen(p.deep, np.rot90(p.image, -k) if k else p.image, stored) if todo else p.deep
            writer.video(stored, p.pts)
        self.stats["encode"] += time.perf_counter() - t2
        if self.progress is not None:
            self.progress(1)
        return VideoFrame(p.index, p.time, image, p.faces, p.ids)

    def _fused(self, done: deque, at: int, tid: int) -> np.ndarray:
        """The track's restored crop at ``done[at]`` fused with its crops in the frames up to ``fuse`` before and
        after (:func:`fuse_crops`)."""
        radius = self.options.fuse
        if not radius:
            return done[at].crops[tid]
        index = done[at].index
        crop = done[at].crops[tid]
        near = [(p.index - index, _same_side(p.crops[tid], crop))
                for p in list(done)[max(0, at - radius) : at + radius + 1]
                if p is not done[at] and tid in p.crops and abs(p.index - index) <= radius]
        return fuse_crops(crop, near, radius, self.options.fuse_tolerance)

    def summary(self) -> str:
        """One line on what the run did, and what the output changed (``notes``)."""
        notes = "".join(f"; {n}" for n in self.notes)
        if not self.faces_restored:
            return (f"no face restored in {self.frames} frame(s): they pass through unchanged (encoded again)"
                    + (f"; {self.faces_skipped} face(s) below {self.pipe.min_face} px skipped"
                       if self.faces_skipped else "") + notes)
        skipped = f", {self.faces_skipped} face(s) below {self.pipe.min_face} px skipped" if self.faces_skipped else ""
        return (f"restored {self.faces_restored} face(s) in {self.frames_with_faces} of {self.frames} "
                f"frame(s){skipped}{notes}")



def _same_side(other: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """A neighbouring frame's crop of the same face at ``crop``'s side: a face aligned at its own resolution may
    be a few pixels larger or smaller in the next frame (the template scales with the side, so resizing keeps
    every point of the face on its pixel)."""
    if other.shape == crop.shape:
        return other
    return cv2.resize(other, crop.shape[1::-1], interpolation=cv2.INTER_LINEAR)


__all__ = ["FUSE_TOLERANCE", "MAX_FUSE", "VIDEO_SUFFIXES", "FaceTracker", "VideoFrame", "VideoInfo", "VideoJob",
           "VideoOptions", "fuse_crops", "output_suffix", "probe", "smooth_landmarks"]
