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

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .faces import Face, align, alignment_matrix, roll_degrees

if TYPE_CHECKING:
    from .pipeline import FaceDeblurrer

#: How far (0-255, mean over a 5x5 patch) a neighbouring frame's restored crop may differ from a frame's own and
#: still be averaged in (weight exp(-(diff / tolerance)^2)): restoring frame by frame varies by a few levels;
#: a face that moves or changes expression differs by tens.
FUSE_TOLERANCE = 20.0

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")
_HINT = "videos need PyAV (FFmpeg's libraries): pip install 'smfd[video]'"

#: Containers a restored clip keeps; any other input (.avi, .webm) is written as .mp4.
_KEPT_CONTAINERS = (".mp4", ".mov", ".m4v", ".mkv")


def _av():
    try:
        import av
    except ImportError:
        raise RuntimeError(_HINT) from None
    return av


def output_suffix(suffix: str) -> str:
    """The suffix of a restored clip: the input's for MP4, MOV and MKV, else ``.mp4`` (H.264 in all of them)."""
    return suffix if suffix.lower() in _KEPT_CONTAINERS else ".mp4"


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reads: ``width`` x ``height`` as stored, ``rotation`` (degrees, counter-clockwise, to
    display it), ``fps`` (average), ``frames`` (as the container counts them, or estimated from the duration),
    ``duration`` (s), ``audio`` (an audio stream is there), ``codec``."""

    width: int
    height: int
    fps: float
    frames: int
    duration: float
    rotation: int
    audio: bool
    codec: str


def _open(path: Path):
    av = _av()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a video FFmpeg can read ({_reason(e)})") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path}: no video stream")
    return container


def _demux(av, container, streams, src: Path):
    """The packets of ``streams``; a read error is a ValueError naming the file."""
    packets = container.demux(streams)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as e:
            raise ValueError(f"{src}: cannot be read to the end ({_reason(e)})") from None
        yield packet


def _decode(av, packet, src: Path, index: int):
    try:
        return packet.decode()
    except av.error.FFmpegError as e:
        raise ValueError(f"{src}: damaged after {index} frames ({_reason(e)})") from None


def _write_error(dst: Path, e: Exception) -> OSError:
    error = OSError(f"{dst}: cannot write: {_reason(e)}")
    error.errno = getattr(e, "errno", None)  # a full disk stops a folder run
    return error


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).split(": ")[0] or type(e).__name__


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, rotation, frame rate, frame count, duration and audio of a video file (reads its first frame)."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        else:
            duration = 0.0
        frames = stream.frames or round(duration * float(rate))
        rotation = 0
        try:
            first = next(container.decode(stream), None)
        except _av().error.FFmpegError as e:
            raise ValueError(f"{path}: the first frame cannot be decoded ({_reason(e)})") from None
        if first is None:
            raise ValueError(f"{path}: the video stream holds no frames")
        rotation = int(round(first.rotation or 0)) % 360
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, float(rate), int(frames),
                         duration, rotation, bool(container.streams.audio), stream.codec_context.name)


# --- following faces ------------------------------------------------------------------------------------------------


@dataclass
class _Track:
    id: int
    landmarks: np.ndarray  # (5, 2) in the frame, as last found
    side: float  # the detector's box side, in template pixels (scale-free: follows the face's size)
    centre: np.ndarray  # the detector's box centre, in template pixels (the landmarks' predictor expects that box)
    misses: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # px a frame, of the landmarks


class FaceTracker:
    """Faces across frames: detected every ``detect_every`` frames (and on the first), followed between by their
    landmarks. A face the detector no longer finds is dropped at the second detection that misses it, or at once
    when it leaves the frame. ``detect`` is the pipeline's whole-frame detector (``FaceDeblurrer._detect``)."""

    def __init__(self, detect: Callable[[np.ndarray], list[Face]], detector, *, detect_every: int = 8,
                 face_size: int = 256) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        self.detect, self.detector, self.every, self.face_size = detect, detector, detect_every, face_size
        self.tracks: list[_Track] = []
        self._next_id = 0
        self.detections = 0

    def _box(self, face: Face) -> tuple[float, np.ndarray]:
        """The detector's box of ``face`` in template pixels: (side, centre)."""
        m = alignment_matrix(face.landmarks, self.face_size)
        centre = np.array([(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2], np.float64)
        return face.size * math.hypot(m[0, 0], m[1, 0]), m[:, :2] @ centre + m[:, 2]

    def _follow(self, image: np.ndarray, track: _Track) -> np.ndarray | None:
        """The track's landmarks in ``image``: looked for where the face would be if it kept moving as it did,
        then once more in the box those landmarks give (the predictor is most accurate in the detector's box)."""
        pts = track.landmarks + track.velocity
        h, w = image.shape[:2]
        for _ in range(2):
            m = alignment_matrix(pts, self.face_size)
            side = track.side / math.hypot(m[0, 0], m[1, 0])
            inv = cv2.invertAffineTransform(m)
            centre = (inv[:, :2] @ track.centre + inv[:, 2]).astype(np.float32)
            if not (0 <= centre[0] < w and 0 <= centre[1] < h) or side < 8:
                return None
            pts = self.detector.points_near(image, centre, side, roll_degrees(pts))
        return pts

    @staticmethod
    def _moved(track: _Track, pts: np.ndarray) -> None:
        track.velocity = (pts - track.landmarks).mean(0)
        track.landmarks = pts

    def update(self, image: np.ndarray, index: int) -> list[tuple[int, np.ndarray, int]]:
        """The faces of frame ``index``: (track id, landmarks (5, 2), face size in px)."""
        if index % self.every == 0 or not self.tracks:
            self.detections += 1
            found = self.detect(image)
            kept: list[_Track] = []
            for face in found:
                centre = face.landmarks.mean(0)
                near = [t for t in self.tracks if t not in kept
                        and np.linalg.norm(t.landmarks.mean(0) - centre) < 0.5 * face.size]
                track = min(near, key=lambda t: np.linalg.norm(t.landmarks.mean(0) - centre)) if near else None
                if track is None:
                    track = _Track(self._next_id, face.landmarks, 0.0, np.zeros(2))
                    self._next_id += 1
                self._moved(track, face.landmarks)
                track.misses = 0
                track.side, track.centre = self._box(face)
                kept.append(track)
            for t in self.tracks:
                if t not in kept:
                    t.misses += 1
                    if t.misses < 2 and (pts := self._follow(image, t)) is not None:
                        self._moved(t, pts)
                        kept.append(t)
            self.tracks = kept
        else:
            alive = []
            for t in self.tracks:
                pts = self._follow(image, t)
                if pts is not None:
                    self._moved(t, pts)
                    alive.append(t)
            self.tracks = alive
        out = []
        for t in self.tracks:
            m = alignment_matrix(t.landmarks, self.face_size)
            out.append((t.id, t.landmarks.copy(), int(round(t.side / math.hypot(m[0, 0], m[1, 0])))))
        return out


def smooth_landmarks(series: dict[int, np.ndarray], at: int, radius: int, sigma: float) -> np.ndarray:
    """A track's landmarks at frame ``at``, averaged with Gaussian weights over the frames ``at - radius .. at +
    radius`` where the track has them (``series``: frame index -> landmarks; a centred window: no lag for a face
    moving steadily)."""
    total, weight = np.zeros((5, 2), np.float64), 0.0
    for i in range(at - radius, at + radius + 1):
        if i not in series:
            continue
        w = math.exp(-0.5 * ((i - at) / sigma) ** 2) if sigma > 0 else float(i == at)
        total += w * series[i]
        weight += w
    return (total / weight).astype(np.float32)


def fuse_crops(crop: np.ndarray, neighbours: list[tuple[int, np.ndarray]], radius: int,
               tolerance: float = FUSE_TOLERANCE) -> np.ndarray:
    """A restored aligned face crop averaged with the same face's restored crops in neighbouring frames
    (``neighbours``: (frame offset, crop)). The crops are aligned, so the same point of the face is the same pixel.
    Weights: Gaussian in time (sigma ``radius / 2`` frames), and per pixel by how close the neighbour is to this
    crop (exp(-(d / tolerance)^2), d the mean absolute difference over a 5x5 patch, 0-255), so what really changes
    between frames (a blink, the mouth, a turn of the head) comes from this frame alone and does not ghost, while
    the frame-to-frame variation of restoring each frame on its own (a few levels) is averaged away."""
    if not neighbours:
        return crop
    centre = crop.astype(np.float32)
    total, weight = centre.copy(), np.ones(centre.shape[:2] + (1,), np.float32)
    for offset, other in neighbours:
        other = other.astype(np.float32)
        diff = cv2.blur(np.abs(other - centre).mean(-1), (5, 5))
        w = math.exp(-0.5 * (offset / (radius / 2)) ** 2) * np.exp(-((diff / tolerance) ** 2))
        total += other * w[..., None]
        weight += w[..., None]
    return np.clip(np.rint(total / weight), 0, 255).astype(np.uint8)


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


class _Writer:
    """Encodes the restored frames (H.264, the input's timestamps and rotation) and copies the audio packets into a
    hidden file beside ``dst``, renamed to ``dst`` by :meth:`finish`; :meth:`abort` removes it."""

    def __init__(self, dst: Path, vin, ain, info: VideoInfo, *, crf: int, preset: str) -> None:
        av = _av()
        self.dst = dst
        dst.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = dst.with_name(f".{dst.stem}.partial-{os.getpid()}{dst.suffix}")
        try:
            self.out = av.open(str(self.tmp), "w")
        except av.error.FFmpegError as e:
            raise _write_error(dst, e) from None
        try:
            rate = vin.average_rate or vin.guessed_rate or Fraction(30)
            odd = info.width % 2 or info.height % 2
            self.v = self.out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
            self.v.width, self.v.height = info.width, info.height
            self.v.pix_fmt = "yuv444p" if odd else "yuv420p"  # 4:2:0 needs even sides
            self.v.time_base = vin.time_base
            self.v.codec_context.time_base = vin.time_base
            if info.rotation:
                self.v.set_display_rotation(info.rotation)
            self.a = self.out.add_stream_from_template(ain) if ain is not None else None
            self.audio_offset: int | None = None
        except Exception:
            self.abort()
            raise

    def _mux(self, packets) -> None:
        try:
            for packet in packets:
                self.out.mux(packet)
        except _av().error.FFmpegError as e:
            raise _write_error(self.dst, e) from None

    def video(self, image: np.ndarray, pts: int) -> None:
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = pts, self.v.codec_context.time_base
        self._mux(self.v.encode(frame))

    def audio(self, packet, start: float, end: float | None) -> None:
        if self.a is None or packet.pts is None or packet.dts is None:
            return
        t = float(packet.pts * packet.time_base)
        if t < start - 1e-6 or (end is not None and t >= end):
            return
        if self.audio_offset is None:
            self.audio_offset = packet.pts if start > 0 else 0
        packet.pts -= self.audio_offset
        packet.dts -= self.audio_offset
        packet.stream = self.a
        self._mux([packet])

    def finish(self) -> None:
        try:
            self._mux(self.v.encode(None))
            self.out.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self.tmp, self.dst)

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:  # noqa: BLE001 - the file is removed either way
            pass
        self.tmp.unlink(missing_ok=True)


__all__ = ["FUSE_TOLERANCE", "VIDEO_SUFFIXES", "FaceTracker", "VideoFrame", "VideoInfo", "VideoJob", "fuse_crops",
           "output_suffix", "probe", "smooth_landmarks"]
