"""Video files for :mod:`smfd.infer.video`: probe, read (packets and frames, errors naming the file) and write
(H.264 with the input's timestamps and rotation, the audio packets copied) with PyAV, FFmpeg's libraries from PyPI
(``pip install 'smfd[video]'``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

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
