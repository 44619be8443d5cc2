"""Video files for :mod:`smfd.infer.video`, read with PyAV, FFmpeg's libraries from PyPI (``pip install
'smfd[video]'``); written by :mod:`smfd.infer.video_write`. Every error is a ValueError, RuntimeError or OSError with
one line naming the file.

- :func:`probe`: size, rotation, frame rate, frames, duration and the first frame's time.
- :class:`VideoReader`: the picture decoded in presentation order, each frame timed from the stream's first frame
  (clips cut from recordings and streams often start at 10 s or more), and the packets of the streams copied.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .photo_io import narrow

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".ts", ".mts", ".m2ts")  # .mts, .m2ts: AVCHD cameras
_HINT = "videos need PyAV (FFmpeg's libraries): pip install 'smfd[video]'"

#: Containers a restored clip keeps; any other input (.avi, .webm, MPEG transport streams) is written as .mp4.
KEPT_CONTAINERS = (".mp4", ".mov", ".m4v", ".mkv")


def require_av():
    """PyAV, or a RuntimeError saying how to install it."""
    try:
        import av
    except ImportError:
        raise RuntimeError(_HINT) from None
    return av


#: Brands of the ISO media file format (its ``ftyp`` box) that hold still images: HEIF, AVIF, JPEG 2000, raw photos.
_IMAGE_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis", b"jp2 ",
                 b"jpx ", b"crx ")


def looks_like_video(path: str | os.PathLike) -> bool:
    """Whether the file's first bytes are those of a clip in a container smfd reads (MP4, MOV, M4V, MKV, WebM,
    AVI), whatever its name: a file's name is not its content. Reads 12 bytes; needs no PyAV."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    return (head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip")  # QuickTime files without an ftyp box
            or head[:4] == b"\x1aE\xdf\xa3"  # Matroska and WebM (EBML)
            or head[:4] == b"RIFF" and head[8:12] == b"AVI ")


def output_suffix(suffix: str) -> str:
    """The suffix of a restored clip: the input's for MP4, MOV and MKV, else ``.mp4`` (H.264 in all of them)."""
    return suffix if suffix.lower() in KEPT_CONTAINERS else ".mp4"


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reads: ``width`` x ``height`` as stored, ``rotation`` (degrees, counter-clockwise, to
    display it), ``fps`` (average), ``frames`` (as the container counts them, or estimated from the duration),
    ``duration`` (s, from the first frame), ``audio`` (an audio stream is there), ``codec``, ``start`` (the first
    frame's timestamp as stored, s: times and ``--start`` count from it) and ``declared_frames`` (the count the
    container's index declares, 0 when it declares none)."""

    width: int
    height: int
    fps: float
    frames: int
    duration: float
    rotation: int
    audio: bool
    codec: str
    start: float = 0.0
    declared_frames: int = 0


def _open(path: Path):
    av = require_av()
    if not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(f"{path}: a folder, not a video")
        raise FileNotFoundError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a video FFmpeg can read ({reason(e)})") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path}: no video stream")
    return container


def reason(e: Exception) -> str:
    """What went wrong in FFmpeg, in a few words (its error's first clause)."""
    return getattr(e, "strerror", None) or str(e).split(": ")[0] or type(e).__name__


def _duration(container, stream, start: float) -> float:
    """The video's length in s from its first frame, as the container declares it."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is None:
        return 0.0
    if "matroska" in container.format.name:  # Matroska declares where the clip ends, not how long it lasts
        return max(0.0, container.duration / 1e6 - start)
    return container.duration / 1e6


def _first_time(frames, time_base, fps: float, default: float) -> float:
    """The first frame's time (s) when it has no timestamp: that of the first of the next ``frames`` that has one,
    less a frame's step for each frame before it."""
    try:
        for k, frame in enumerate(itertools.islice(frames, 30), 1):
            if frame.pts is not None:
                return float(frame.pts * time_base) - k / fps
    except require_av().error.FFmpegError:
        pass
    return default


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, rotation, frame rate, frame count, duration, start and audio of a video file (reads its first frame)."""
    path = Path(path)
    av = require_av()
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        frames = container.decode(stream)
        try:
            first = next(frames, None)
        except av.error.FFmpegError as e:
            raise ValueError(f"{path}: the first frame cannot be decoded ({reason(e)})") from None
        if first is None:
            raise ValueError(f"{path}: the video stream holds no frames")
        start = float(first.pts * stream.time_base) if first.pts is not None and stream.time_base else 0.0
        if first.pts is None and stream.time_base:  # (a Matroska file's frame before 0 s): a frame's step before
            start = _first_time(frames, stream.time_base, float(rate), start)  # the first frame that has one
        if container.format.name == "avi":  # decoding timestamps: the first frame is shown at the first of them
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration = _duration(container, stream, start)
        frames = stream.frames or round(duration * float(rate))
        rotation = int(round(first.rotation or 0)) % 360
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, float(rate), int(frames),
                         duration, rotation, bool(container.streams.audio), stream.codec_context.name, start,
                         int(stream.frames or 0))


def pixel_layout(pix_fmt: str) -> tuple[int, str]:
    """(bits per sample, chroma) of an FFmpeg pixel format: ``"4:2:0"``, ``"4:2:2"``, ``"4:4:4"`` (RGB and
    palettes too), ``"4:1:1"``, ``"4:4:0"``, ``"4:1:0"`` or ``"grey"``."""
    av = require_av()
    fmt = av.VideoFormat(pix_fmt, 16, 16)
    bits = max(c.bits for c in fmt.components)
    if fmt.is_rgb or fmt.has_palette:
        return bits, "4:4:4"
    if sum(not c.is_alpha for c in fmt.components) < 3:
        return bits, "grey"
    across, down = 16 // fmt.chroma_width(), 16 // fmt.chroma_height()
    return bits, {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (4, 1): "4:1:1", (1, 2): "4:4:0"}.get(
        (across, down), "4:1:0")


@dataclass
class Decoded:
    """A frame of :meth:`VideoReader.read`: ``pts`` (the stream's time base, as stored), ``time`` (s from the
    stream's first frame), ``image`` (RGB uint8, as stored: not yet turned by the rotation) and, for a clip of more
    than 8 bits, ``deep`` (RGB uint16, of which ``image`` is the 8-bit copy the nets run on)."""

    pts: int
    time: float
    image: np.ndarray | None
    deep: np.ndarray | None = None


class VideoReader:
    """An open clip (a context manager): :meth:`read` yields its frames in presentation order and, with ``copy``,
    the packets of its audio and subtitle streams as stored."""

    def __init__(self, path: str | os.PathLike, info: VideoInfo | None = None) -> None:
        self.path = Path(path)
        self.info = info or probe(self.path)
        self._open()
        self.time_base = self.video.time_base or Fraction(1, 90000)
        self.origin = round(Fraction(self.info.start) / self.time_base)  # the first frame's pts
        # AVI stores decoding timestamps: with B-frames, frames come out in presentation order, each shown at the
        # next of the packets' times in increasing order
        self._reorder = self.container.format.name == "avi"
        pix = self.video.codec_context.pix_fmt
        self.deep = bool(pix) and pixel_layout(pix)[0] > 8  # decoded at 16 bits, so none is lost

    def _open(self) -> None:
        self.container = _open(self.path)
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.copied = [s for s in self.container.streams if s.type in ("audio", "subtitle")]

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def read(self, copy: bool = False, start: float = 0.0) -> Iterator[Decoded | object]:
        """:class:`Decoded` frames from ``start`` (s from the first frame) and, with ``copy``, the packets of the
        streams in :attr:`copied` from the key frame before it. A seek lands on that key frame; where it lands past
        ``start`` (MPEG-TS and other clips without an index), the clip is read from its beginning instead."""
        head: list = []
        items = self._read(copy, start)
        if start > 0:
            try:
                self.container.seek(self.origin + int(Fraction(start) / self.time_base), stream=self.video,
                                    backward=True, any_frame=False)
            except require_av().error.FFmpegError as e:
                raise ValueError(f"{self.path}: cannot go to {start:g} s ({reason(e)})") from None
            for item in items:
                head.append(item)
                if isinstance(item, Decoded):
                    break
            if head and isinstance(head[-1], Decoded) and head[-1].time > start + 1e-6:
                items.close()
                self.close()
                self._open()
                head, items = [], self._read(copy, start)
        for item in itertools.chain(head, items):
            if not isinstance(item, Decoded) or item.image is not None:
                yield item

    def _read(self, copy: bool, start: float) -> Iterator[Decoded | object]:
        """What :meth:`read` yields from where the container is, and the frames before ``start`` without their
        picture (``image`` None: not converted)."""
        av = require_av()
        streams = [self.video, *(self.copied if copy else [])]
        packets = self.container.demux(streams)
        times: list[int] = []  # pending decoding timestamps (AVI)
        last, count = None, 0
        step = max(1, round(1 / (self.info.fps * self.time_base)))
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                raise ValueError(f"{self.path}: cannot be read to the end ({reason(e)})") from None
            if packet.stream is not self.video:
                yield packet
                continue
            if self._reorder and (packet.dts is not None or packet.pts is not None) and packet.size:
                heapq.heappush(times, packet.dts if packet.dts is not None else packet.pts)
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                raise ValueError(f"{self.path}: damaged after {count} frames ({reason(e)})") from None
            for frame in frames:
                pts = heapq.heappop(times) if self._reorder and times else frame.pts
                # a timestamp missing or out of order follows on from the last one
                if pts is None or (last is not None and pts <= last):
                    pts = self.origin if last is None else last + step
                last = pts
                count += 1
                time = float((pts - self.origin) * self.time_base)
                if time < start - 1e-6:
                    yield Decoded(pts, time, None)
                elif self.deep:
                    deep = frame.to_ndarray(format="rgb48le")
                    yield Decoded(pts, time, narrow(deep), deep)
                else:
                    yield Decoded(pts, time, frame.to_ndarray(format="rgb24"))


__all__ = ["KEPT_CONTAINERS", "VIDEO_SUFFIXES", "Decoded", "VideoInfo", "VideoReader", "looks_like_video",
           "output_suffix", "pixel_layout", "probe", "reason", "require_av"]
