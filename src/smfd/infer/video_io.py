"""Video files for :mod:`smfd.infer.video`: probe, read and write them with PyAV, FFmpeg's libraries from PyPI
(``pip install 'smfd[video]'``). Every error is a ValueError, RuntimeError or OSError with one line naming the file.

- :func:`probe`: size, rotation, frame rate, frames, duration and the first frame's time.
- :class:`VideoReader`: the picture decoded in presentation order, each frame timed from the stream's first frame
  (clips cut from recordings and streams often start at 10 s or more), and the packets of the streams copied.
- :class:`VideoWriter`: H.264 with the input's timestamps and rotation into a hidden file renamed at the end; every
  audio and subtitle stream copied with its tags (audio MP4 cannot carry, such as a camera's PCM, re-encoded to
  AAC), the container's metadata kept, and all of it kept in step with the picture.
"""

from __future__ import annotations

import heapq
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")
_HINT = "videos need PyAV (FFmpeg's libraries): pip install 'smfd[video]'"

#: Containers a restored clip keeps; any other input (.avi, .webm) is written as .mp4.
_KEPT_CONTAINERS = (".mp4", ".mov", ".m4v", ".mkv")

#: FFmpeg's muxer for each output suffix.
_MUXERS = {".mp4": "mp4", ".m4v": "ipod", ".mov": "mov", ".mkv": "matroska"}
#: Audio FFmpeg writes into MP4 but common players refuse there (PCM, which FFmpeg's MP4 takes since version 7).
_REFUSED_BY_PLAYERS = {".mp4": "pcm_", ".m4v": "pcm_"}
#: Tags that describe the old file rather than its content.
_STALE_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration", "number_of_frames",
               "number_of_bytes", "bps"}
_PARTIAL = re.compile(r"^\..+\.partial-(\d+)\.[A-Za-z0-9]+$")


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
    av = _av()
    if not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(f"{path}: a folder, not a video")
        raise FileNotFoundError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a video FFmpeg can read ({_reason(e)})") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path}: no video stream")
    return container


def _write_error(dst: Path, e: Exception) -> OSError:
    error = OSError(f"{dst}: cannot write: {_reason(e)}")
    error.errno = getattr(e, "errno", None)  # a full disk stops a folder run
    return error


def _reason(e: Exception) -> str:
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


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, rotation, frame rate, frame count, duration, start and audio of a video file (reads its first frame)."""
    path = Path(path)
    av = _av()
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as e:
            raise ValueError(f"{path}: the first frame cannot be decoded ({_reason(e)})") from None
        if first is None:
            raise ValueError(f"{path}: the video stream holds no frames")
        start = float(first.pts * stream.time_base) if first.pts is not None and stream.time_base else 0.0
        if container.format.name == "avi":  # decoding timestamps: the first frame is shown at the first of them
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration = _duration(container, stream, start)
        frames = stream.frames or round(duration * float(rate))
        rotation = int(round(first.rotation or 0)) % 360
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, float(rate), int(frames),
                         duration, rotation, bool(container.streams.audio), stream.codec_context.name, start,
                         int(stream.frames or 0))


@dataclass
class Decoded:
    """A frame of :meth:`VideoReader.read`: ``pts`` (the stream's time base, as stored), ``time`` (s from the
    stream's first frame) and ``image`` (RGB uint8, as stored: not yet turned by the rotation)."""

    pts: int
    time: float
    image: np.ndarray


class VideoReader:
    """An open clip (a context manager): :meth:`read` yields its frames in presentation order and, with ``copy``,
    the packets of its audio and subtitle streams as stored."""

    def __init__(self, path: str | os.PathLike, info: VideoInfo | None = None) -> None:
        self.path = Path(path)
        self.info = info or probe(self.path)
        self.container = _open(self.path)
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.copied = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        self.time_base = self.video.time_base or Fraction(1, 90000)
        self.origin = round(Fraction(self.info.start) / self.time_base)  # the first frame's pts
        # AVI stores decoding timestamps: with B-frames, frames come out in presentation order, each shown at the
        # next of the packets' times in increasing order
        self._reorder = self.container.format.name == "avi"

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def seek(self, time: float) -> None:
        """Go to the key frame at or before ``time`` (s from the first frame)."""
        if time > 0:
            target = self.origin + int(Fraction(time) / self.time_base)
            try:
                self.container.seek(target, stream=self.video, backward=True, any_frame=False)
            except _av().error.FFmpegError as e:
                raise ValueError(f"{self.path}: cannot go to {time:g} s ({_reason(e)})") from None

    def read(self, copy: bool = False) -> Iterator[Decoded | object]:
        """:class:`Decoded` frames and, with ``copy``, the packets of the streams in :attr:`copied`."""
        av = _av()
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
                raise ValueError(f"{self.path}: cannot be read to the end ({_reason(e)})") from None
            if packet.stream is not self.video:
                yield packet
                continue
            if self._reorder and (packet.dts is not None or packet.pts is not None) and packet.size:
                heapq.heappush(times, packet.dts if packet.dts is not None else packet.pts)
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                raise ValueError(f"{self.path}: damaged after {count} frames ({_reason(e)})") from None
            for frame in frames:
                pts = heapq.heappop(times) if self._reorder and times else frame.pts
                # a timestamp missing or out of order follows on from the last one
                if pts is None or (last is not None and pts <= last):
                    pts = self.origin if last is None else last + step
                last = pts
                count += 1
                yield Decoded(pts, float((pts - self.origin) * self.time_base), frame.to_ndarray(format="rgb24"))


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove the hidden partial files (``.NAME.partial-PID.EXT``) that runs killed before they could clean up left
    in ``folder``: those whose process is gone. Returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _PARTIAL.match(p.name)
        if not m or f".{p.name.rsplit('.', 1)[-1].lower()}" not in _KEPT_CONTAINERS:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        pass
    return True


def _carries(suffix: str, stream) -> bool:
    """Whether FFmpeg's muxer for ``suffix`` takes ``stream``'s packets as they are (tried on a header in memory)."""
    av = _av()
    try:
        with av.open(io.BytesIO(), "w", format=_MUXERS.get(suffix, "mp4")) as trial:
            trial.add_stream_from_template(stream)
            trial.start_encoding()
    except (av.error.FFmpegError, ValueError):
        return False
    return True


def _tags(metadata) -> dict[str, str]:
    return {k: v for k, v in dict(metadata).items()
            if k.lower() not in _STALE_TAGS and not k.lower().startswith("_statistics")}


class VideoWriter:
    """Encodes the restored frames (H.264 with the input's timestamps and rotation) and copies the other streams of
    ``reader`` into a hidden file beside ``dst``, renamed to ``dst`` by :meth:`finish`; :meth:`abort` removes it.

    Everything is checked before the first frame: each audio and subtitle stream is copied with its tags,
    re-encoded to AAC (audio ``dst``'s container cannot carry or players refuse there) or, for a subtitle or data
    stream it cannot carry, left out; ``notes`` says what changed. Times are kept relative to the first frame
    written: ``keep_before`` keeps the packets before it (a clip restored from its start keeps its audio's priming
    and anything that starts before the picture), ``until`` (s, as stored) drops those from there on."""

    def __init__(self, dst: str | os.PathLike, reader: VideoReader, *, crf: int = 18, preset: str = "veryfast",
                 metadata: bool = True, keep_before: bool = True, until: float | None = None) -> None:
        av = _av()
        self.dst, self.reader, info = Path(dst), reader, reader.info
        self.keep_before, self.until = keep_before, until
        self.notes: list[str] = []
        if self.dst.suffix.lower() not in _MUXERS:
            raise ValueError(f"{self.dst}: restored clips are written as {', '.join(_MUXERS)}, "
                             f"not {self.dst.suffix or 'a name without a suffix'}")
        try:
            self.dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _write_error(self.dst, e) from None
        remove_stale_partials(self.dst.parent)
        self.tmp = self.dst.with_name(f".{self.dst.stem}.partial-{os.getpid()}{self.dst.suffix}")
        plan = self._plan(reader, self.dst.suffix.lower())  # refused here, before any file is made
        try:
            self.out = av.open(str(self.tmp), "w")
        except av.error.FFmpegError as e:
            raise _write_error(self.dst, e) from None
        try:
            self._add_video(reader, info, crf, preset, metadata)
            self.streams: dict[int, tuple[object, object | None]] = {}  # input index -> (output stream, decoder)
            for s, action in plan:
                if action == "copy":
                    o = self.out.add_stream_from_template(s)
                    self.streams[s.index] = (o, None)
                else:  # re-encode to AAC: the input stream decodes its own packets
                    cc = s.codec_context
                    layout = {1: "mono", 2: "stereo"}.get(cc.channels, cc.layout.name)
                    o = self.out.add_stream("aac", rate=cc.sample_rate or 48000, layout=layout)
                    o.codec_context.open(strict=False)  # refused now, not after the frames
                    self.streams[s.index] = (o, s)
                if metadata:
                    o.metadata.update(_tags(s.metadata))
                elif "language" in s.metadata:
                    o.metadata["language"] = s.metadata["language"]  # which track is which is not private
            if metadata:
                self.out.metadata.update(_tags(reader.container.metadata))
            self.out.start_encoding()  # the header: refused now, not after the frames
        except av.error.FFmpegError as e:
            self.abort()
            raise ValueError(f"{reader.path}: its streams cannot be written to {self.dst.suffix} "
                             f"({_reason(e)})") from None
        except BaseException:
            self.abort()
            raise
        self.origin: float | None = None  # the first frame written, s as stored
        self.first_pts = 0
        self._waiting: list = []  # packets read before the first frame is known

    def _plan(self, reader: VideoReader, suffix: str) -> list[tuple[object, str]]:
        plan = []
        for s in reader.copied:
            cc = s.codec_context
            name = cc.codec.canonical_name if cc is not None else "unknown"
            refused = name.startswith(_REFUSED_BY_PLAYERS.get(suffix, "-"))
            if not refused and _carries(suffix, s):
                plan.append((s, "copy"))
            elif s.type == "audio":
                if cc is None or not cc.codec.is_decoder:
                    raise ValueError(f"{reader.path}: its {name} audio cannot go into {suffix} and cannot be decoded "
                                     "to re-encode it")
                plan.append((s, "aac"))
                self.notes.append(f"{name} audio re-encoded to AAC ({suffix} cannot carry it)")
            else:
                self.notes.append(f"a {name} subtitle stream left out ({suffix} cannot carry it)")
        others = [s for s in reader.container.streams if s.type not in ("video", "audio", "subtitle")]
        others += list(reader.container.streams.video)[1:]
        if others:
            self.notes.append(f"{len(others)} other stream(s) left out ({', '.join(sorted({s.type for s in others}))})")
        return plan

    def _add_video(self, reader: VideoReader, info: VideoInfo, crf: int, preset: str, metadata: bool) -> None:
        vin = reader.video
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        self.v = self.out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
        # 4:2:0, which common players need, needs even sides: an odd one gets its edge row or column repeated
        self.pad = (info.height % 2, info.width % 2)
        self.v.width, self.v.height = info.width + self.pad[1], info.height + self.pad[0]
        self.v.pix_fmt = "yuv420p"
        self.v.time_base = reader.time_base
        self.v.codec_context.time_base = reader.time_base
        if any(self.pad):
            self.notes.append(f"written as {self.v.width}x{self.v.height} (players need even sides: the edge "
                              "repeated)")
        pix = vin.codec_context.pix_fmt or ""
        if pix not in ("yuv420p", "yuvj420p", "nv12", ""):
            self.notes.append(f"written as 8-bit 4:2:0 ({pix} in)")
        if info.rotation:
            self.v.set_display_rotation(info.rotation)
        if metadata:
            self.v.metadata.update({k: v for k, v in _tags(vin.metadata).items() if k.lower() != "handler_name"})

    def _mux(self, packets) -> None:
        try:
            for packet in packets:
                self.out.mux(packet)
        except _av().error.FFmpegError as e:
            raise _write_error(self.dst, e) from None

    def _encode(self, stream, frame) -> None:
        try:
            packets = stream.encode(frame)
        except _av().error.FFmpegError as e:
            raise _write_error(self.dst, e) from None
        self._mux(packets)

    def video(self, image: np.ndarray, pts: int) -> None:
        """Encode ``image`` (as stored) at ``pts`` (the input's time base, as stored)."""
        av = _av()
        if self.origin is None:
            self.first_pts = pts
            self.origin = float(pts * self.reader.time_base)
            for packet in self._waiting:
                self.copy(packet)
            self._waiting = []
        if any(self.pad):
            image = np.pad(image, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = pts - self.first_pts, self.v.codec_context.time_base
        self._encode(self.v, frame)

    def copy(self, packet) -> None:
        """Write a packet of one of the reader's copied streams, in step with the picture."""
        if packet.stream.index not in self.streams or packet.dts is None and packet.pts is None:
            return
        if self.origin is None:
            self._waiting.append(packet)
            return
        pts = packet.pts if packet.pts is not None else packet.dts
        tb = packet.time_base
        t, length = float(pts * tb), float((packet.duration or 0) * tb)
        if (not self.keep_before and t + length <= self.origin + 1e-6) or (self.until is not None and t >= self.until):
            return
        shift = round(Fraction(self.origin) / tb)
        out, decoder = self.streams[packet.stream.index]
        if decoder is None:
            packet.pts = pts - shift
            packet.dts = (packet.dts if packet.dts is not None else pts) - shift
            packet.stream = out
            self._mux([packet])
            return
        try:
            frames = packet.decode()
        except _av().error.FFmpegError:
            return  # a damaged audio packet: the encoder goes on with the next
        for frame in frames:
            frame.pts = (pts - shift) if frame.pts is None else frame.pts - shift
            frame.time_base = tb
            self._encode(out, frame)

    def finish(self) -> None:
        """Flush the encoders, close the file and rename it to ``dst``."""
        try:
            self._encode(self.v, None)
            for out, decoder in self.streams.values():
                if decoder is not None:
                    self._encode(out, None)
            try:
                self.out.close()
            except _av().error.FFmpegError as e:
                raise _write_error(self.dst, e) from None
        except BaseException:
            self.abort()
            raise
        os.replace(self.tmp, self.dst)

    def abort(self) -> None:
        """Close and remove the hidden file."""
        try:
            self.out.close()
        except Exception:  # noqa: BLE001 - the file is removed either way
            pass
        self.tmp.unlink(missing_ok=True)


__all__ = ["VIDEO_SUFFIXES", "Decoded", "VideoInfo", "VideoReader", "VideoWriter", "output_suffix", "probe",
           "remove_stale_partials"]
