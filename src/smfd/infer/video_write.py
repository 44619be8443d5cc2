"""Restored clips written with PyAV (:mod:`smfd.infer.video_io` reads them): H.264 with the input's timestamps and
rotation into a hidden file renamed at the end; every audio and subtitle stream copied with its tags (audio the
output's container cannot carry, or players refuse there, such as a camera's PCM in MP4, re-encoded to AAC), the
container's metadata kept, and all of it kept in step with the picture. Partial files that killed runs left behind
are removed by the next run into the same folder."""

from __future__ import annotations

import io
import os
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from .video_io import KEPT_CONTAINERS, VideoInfo, VideoReader, pixel_layout, reason, require_av

#: FFmpeg's muxer for each output suffix.
_MUXERS = {".mp4": "mp4", ".m4v": "ipod", ".mov": "mov", ".mkv": "matroska"}
#: Audio FFmpeg writes into MP4 but common players refuse there (PCM, which FFmpeg's MP4 takes since version 7).
_REFUSED_BY_PLAYERS = {".mp4": ("pcm_",), ".m4v": ("pcm_",)}
#: Tags that describe the old file rather than its content.
_STALE_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration", "number_of_frames",
               "number_of_bytes", "bps"}
_PARTIAL = re.compile(r"^\..+\.partial-(\d+)\.[A-Za-z0-9]+$")
#: Chroma layouts H.264 keeps (anything else becomes 4:2:0) and FFmpeg's names for them.
_CHROMA = {"4:2:0": "yuv420p", "4:2:2": "yuv422p", "4:4:4": "yuv444p"}
_UNSPECIFIED = 2  # FFmpeg's value for a colour matrix, primaries or transfer a file does not name


def _write_error(dst: Path, e: Exception) -> OSError:
    error = OSError(f"{dst}: cannot write: {reason(e)}")
    error.errno = getattr(e, "errno", None)  # a full disk stops a folder run
    return error


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
        if not m or f".{p.name.rsplit('.', 1)[-1].lower()}" not in KEPT_CONTAINERS:
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
    av = require_av()
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
        av = require_av()
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
            self._add_copied(plan, metadata)
            if metadata:
                self.out.metadata.update(_tags(reader.container.metadata))
            self.out.start_encoding()  # the header: refused now, not after the frames
        except av.error.FFmpegError as e:
            self.abort()
            if isinstance(e, OSError):  # the disk (full, read-only), not the streams
                raise _write_error(self.dst, e) from None
            raise ValueError(f"{reader.path}: its streams cannot be written to {self.dst.suffix} "
                             f"({reason(e)})") from None
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
            if not name.startswith(_REFUSED_BY_PLAYERS.get(suffix, ())) and _carries(suffix, s):
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

    def _add_copied(self, plan: list[tuple[object, str]], metadata: bool) -> None:
        self.streams: dict[int, tuple[object, object | None]] = {}  # input index -> (output stream, decoder)
        for s, action in plan:
            if action == "copy":
                o = self.out.add_stream_from_template(s)
                self.streams[s.index] = (o, None)
            else:  # re-encode to AAC: the input stream decodes its own packets
                cc = s.codec_context
                layout = {1: "mono", 2: "stereo"}.get(cc.channels, cc.layout.name)
                o = self.out.add_stream("aac", rate=cc.sample_rate or 48000, layout=layout)
                self.streams[s.index] = (o, s)
            o.disposition = s.disposition  # the default track, forced subtitles, commentary
            if metadata:
                o.metadata.update(_tags(s.metadata))
            elif "language" in s.metadata:
                o.metadata["language"] = s.metadata["language"]  # which track is which is not private

    def _add_video(self, reader: VideoReader, info: VideoInfo, crf: int, preset: str, metadata: bool) -> None:
        vin = reader.video
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        self.v = self.out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
        self.v.pix_fmt = self._pixel_format(vin.codec_context.pix_fmt or "yuv420p")
        # subsampled chroma needs even sides (4:2:0 both, 4:2:2 the width): an odd one gets its edge repeated
        chroma = pixel_layout(self.v.pix_fmt)[1]
        self.pad = (info.height % 2 * (chroma == "4:2:0"), info.width % 2 * (chroma != "4:4:4"))
        self.v.width, self.v.height = info.width + self.pad[1], info.height + self.pad[0]
        self.v.time_base = reader.time_base
        self.v.codec_context.time_base = reader.time_base
        if any(self.pad):
            self.notes.append(f"written as {self.v.width}x{self.v.height} (players need even sides: the edge "
                              "repeated)")
        self._colours(vin.codec_context)
        if info.rotation:
            self.v.set_display_rotation(info.rotation)
        if metadata:
            self.v.metadata.update({k: v for k, v in _tags(vin.metadata).items() if k.lower() != "handler_name"})

    def _pixel_format(self, pix: str) -> str:
        """The input's bit depth (8 or 10: H.264's) and chroma (4:2:0, 4:2:2 or 4:4:4) where x264 takes them; a note
        says what changed otherwise."""
        bits, chroma = pixel_layout(pix)
        want, layout = min(10, max(8, bits)), chroma if chroma in _CHROMA else "4:2:0"
        supported = {f.name for f in require_av().codec.Codec("libx264", "w").video_formats}
        for depth, kept in ((want, layout), (want, "4:2:0"), (8, layout), (8, "4:2:0")):
            name = _CHROMA[kept] + ("10le" if depth > 8 else "")
            if name in supported:
                break
        if depth < bits or kept != chroma:
            self.notes.append(f"{bits}-bit {chroma} picture written as {depth}-bit {kept} ({pix} in)")
        return name

    def _colours(self, cin) -> None:
        """The input's colour matrix, primaries and transfer (BT.709, BT.2020, HLG, PQ), named in the output too;
        frames go back to YUV with the matrix they were decoded with, so the colours come back as they were."""
        self.matrix = None
        cout = self.v.codec_context
        if cin.colorspace not in (None, _UNSPECIFIED, 0):  # 0: RGB, which has no matrix
            self.matrix = cout.colorspace = cin.colorspace
        for name in ("color_primaries", "color_trc"):
            if getattr(cin, name) not in (None, _UNSPECIFIED):
                setattr(cout, name, getattr(cin, name))

    def _mux(self, packets) -> None:
        try:
            for packet in packets:
                self.out.mux(packet)
        except require_av().error.FFmpegError as e:
            raise _write_error(self.dst, e) from None

    def _encode(self, stream, frame) -> None:
        try:
            packets = stream.encode(frame)
        except require_av().error.FFmpegError as e:
            raise _write_error(self.dst, e) from None
        self._mux(packets)

    def video(self, image: np.ndarray, pts: int) -> None:
        """Encode ``image`` (RGB as stored: uint8, or uint16 for a clip of more than 8 bits) at ``pts`` (the input's
        time base, as stored)."""
        av = require_av()
        if self.origin is None:
            self.first_pts = pts
            self.origin = float(pts * self.reader.time_base)
            for packet in self._waiting:
                self.copy(packet)
            self._waiting = []
        if any(self.pad):
            image = np.pad(image, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image),
                                           format="rgb48le" if image.dtype == np.uint16 else "rgb24")
        frame = frame.reformat(format=self.v.pix_fmt, dst_colorspace=self.matrix)
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
        dts = packet.dts if packet.dts is not None else pts
        tb = packet.time_base
        shift = round(Fraction(self.origin) / tb)
        if self.until is not None and float(pts * tb) >= self.until:
            return
        if not self.keep_before and pts < shift:
            # a cut: the sound starts with its first packet from the cut on (a time before 0 would make some
            # containers shift the picture); a subtitle shown across the cut is shown from it
            if packet.stream.type != "subtitle" or pts + (packet.duration or 0) <= shift:
                return
            packet.duration -= shift - pts
            pts = dts = shift
        out, decoder = self.streams[packet.stream.index]
        if decoder is None:
            packet.pts, packet.dts = pts - shift, dts - shift
            packet.stream = out
            self._mux([packet])
            return
        try:
            frames = packet.decode()
        except require_av().error.FFmpegError:
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
            except require_av().error.FFmpegError as e:
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


__all__ = ["VideoWriter", "remove_stale_partials"]
