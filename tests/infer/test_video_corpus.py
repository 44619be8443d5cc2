"""The hostile clip corpus: small clips made here as recordings, cameras, phones, editors and downloads leave them
(first timestamps at 0, 10 s and before 0, camera AVIs with PCM, MP3 in AVI, several audio tracks, subtitles,
metadata, B-frames, variable frame rates, rotation, odd sizes, four codecs, 10 bits, 4:4:4, BT.709) and as they
break (cut short, no picture, no frames, damaged, not a clip at all), with --start/--duration in and out of range.

Each runs through the command line and through the Python API; each asserts the exit status (or the exception),
the message, and of what is written: the frame count, the frame times (the duration), the streams and the
picture's sync with the sound. Tiny faceless clips and the tiny bundle keep the whole corpus within seconds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from helpers import FPS, make_av_clip, measure_clip

av = pytest.importorskip("av")
pytest.importorskip("dlib")

from smfd.infer.video_io import looks_like_video, output_suffix  # noqa: E402

FRAMES = 15  # 1.5 s, the flash and the beep at 1.2 s


def _audio_only(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*s.encode(frame), *s.encode(None)]:
            c.mux(packet)
    return path


def _no_frames(path):
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    return path


def _bytes(data: bytes):
    def build(path):
        path.write_bytes(data)
        return path

    return build


def _cut_short(path):  # a download cut short: the index at the front still declares 40 frames
    full = make_av_clip(path.with_name(f"whole-{path.name}"), frames=40, flash=5, options={"movflags": "faststart"})
    path.write_bytes(full.read_bytes()[: full.stat().st_size * 4 // 5])
    full.unlink()
    return path


def _damaged(path):  # 600 bytes overwritten a third of the way in
    data = bytearray(make_av_clip(path, frames=FRAMES).read_bytes())
    data[len(data) // 3 : len(data) // 3 + 600] = np.random.default_rng(0).integers(0, 256, 600, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _mp4_named_mkv(path):
    path.write_bytes(make_av_clip(path.with_name("real.mp4"), frames=FRAMES).read_bytes())
    return path


@dataclass(frozen=True)
class Case:
    """A clip (``make``: :func:`make_av_clip`'s options, or a function making the file) and what a run with ``run``
    (start, duration, metadata) gives: ``code`` (the command line's exit status), ``words`` (in its error line or,
    for a clip written, in its note), ``error`` (the API's exception, None when it writes); for a clip written:
    ``frames``, their ``times`` (default: one every 1/FPS s from 0), ``streams`` ((type, codec[, language]) each),
    the ``flash``'s time ("input": where players show the input's), and other ``measured`` values."""

    file: str
    make: dict | object = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    code: int = 0
    words: str = ""
    error: type | None = None
    frames: int = FRAMES
    times: tuple | None = None
    streams: tuple = (("video", "h264"), ("audio", "aac"))
    flash: float | str | None = 1.2
    measured: dict = field(default_factory=dict)
    truncated: bool = False


PICTURE_ONLY = (("video", "h264"),)
CASES = {
    # where the first frame is stored: times and --start count from it, the sound in step
    "start at 0": Case("at0.mp4"),
    "start at 10 s (MP4)": Case("at10.mp4", {"t0": 10.0}),
    "start at 10 s (MKV)": Case("at10.mkv", {"t0": 10.0}),
    "start before 0 (WebM)": Case("before0.webm", {"t0": -0.1, "vcodec": "libvpx-vp9", "audio": ("libopus",),
                                                   "options": {"avoid_negative_ts": "disabled"}},
                                  streams=(("video", "h264"), ("audio", "opus"))),
    "first frame without a timestamp": Case("before0.mkv", {"t0": -0.1, "options": {"avoid_negative_ts": "disabled"}}),
    "--start 1": Case("cut.mp4", run={"start": 1.0}, frames=5, flash=0.2),
    "--start and --duration at 10 s": Case("cut10.mkv", {"t0": 10.0}, run={"start": 0.5, "duration": 0.5},
                                           frames=5, flash=None),
    "--duration beyond the end": Case("long.mp4", run={"duration": 100.0}),
    "--start past the end": Case("past.mp4", run={"start": 10.0}, code=1, words="start 10 s is past the end (1.5 s)",
                                 error=ValueError),
    "--start after the last frame": Case("last.mp4", run={"start": 1.45}, code=1, error=ValueError,
                                         words="no frames between 1.45 s and the end"),
    "--start before 0": Case("neg.mp4", run={"start": -0.1}, code=2, words="start must be 0 or more",
                             error=ValueError),
    "--duration 0": Case("zero.mp4", run={"duration": 0.0}, code=2, words="duration must be", error=ValueError),
    # sound, subtitles and tags
    "PCM in AVI": Case("camera.avi", {"vcodec": "mjpeg", "audio": ("pcm_s16le",)},
                       words="pcm_s16le audio re-encoded to AAC (.mp4 cannot carry it)"),
    "MP3 in AVI": Case("old.avi", {"vcodec": "mpeg4", "audio": ("libmp3lame",)},
                       streams=(("video", "h264"), ("audio", "mp3")), flash="input"),
    "PCM in MOV": Case("edit.mov", {"audio": ("pcm_s16le",)}, streams=(("video", "h264"), ("audio", "pcm_s16le"))),
    "two audio tracks": Case("two.mkv", {"audio": ("aac", "libopus")},
                             streams=(("video", "h264", None), ("audio", "aac", "eng"), ("audio", "opus", "fra"))),
    "subtitles": Case("subs.mkv", {"subtitles": True},
                      streams=(("video", "h264"), ("audio", "aac", "eng"), ("subtitle", "subrip", "spa"))),
    "container metadata": Case("phone.mp4", {"metadata": {"title": "Holiday",
                                                          "creation_time": "2024-05-01T10:00:00.000000Z"}},
                               measured={"metadata": {"title": "Holiday",
                                                      "creation_time": "2024-05-01T10:00:00.000000Z"}}),
    "metadata stripped": Case("strip.mp4", {"metadata": {"title": "Holiday"}}, run={"metadata": False},
                              streams=(("video", "h264"), ("audio", "aac", "eng")), measured={"metadata": {}}),
    # the picture
    "B-frames in AVI": Case("bframes.avi", {"bframes": True}),
    "variable frame rate": Case("vfr.mkv", {"frames": 10, "flash": 6, "pts": [0, 1, 3, 4, 7, 8, 9, 12, 13, 14]},
                                frames=10, times=(0, 0.1, 0.3, 0.4, 0.7, 0.8, 0.9, 1.2, 1.3, 1.4), flash=0.9),
    "rotation": Case("turned.mp4", {"rotation": 90}, measured={"rotation": 90, "size": (64, 48)}),
    "odd size": Case("odd.mkv", {"size": (65, 49), "vcodec": "ffv1", "audio": ()}, streams=PICTURE_ONLY,
                     words="written as 66x50", measured={"size": (66, 50)}),
    "odd size, 4:4:4": Case("odd444.mkv", {"size": (65, 49), "vcodec": "ffv1", "pix_fmt": "yuv444p", "audio": ()},
                            streams=PICTURE_ONLY, measured={"size": (65, 49), "pix_fmt": "yuv444p"}),
    "MPEG-4 Part 2": Case("mpeg4.avi", {"vcodec": "mpeg4", "audio": ()}, streams=PICTURE_ONLY),
    "VP9 and Opus": Case("web.webm", {"vcodec": "libvpx-vp9", "audio": ("libopus",)},
                         streams=(("video", "h264"), ("audio", "opus"))),
    "MJPEG": Case("mjpeg.mov", {"vcodec": "mjpeg", "audio": ()}, streams=PICTURE_ONLY),
    "FFV1 and FLAC": Case("lossless.mkv", {"vcodec": "ffv1", "audio": ("flac",)},
                          streams=(("video", "h264"), ("audio", "flac"))),
    "10-bit": Case("deep.mkv", {"pix_fmt": "yuv420p10le", "deep": True}, measured={"pix_fmt": "yuv420p10le"}),
    "10-bit HEVC": Case("hdr.mp4", {"vcodec": "libx265", "pix_fmt": "yuv420p10le", "deep": True, "audio": ()},
                        streams=PICTURE_ONLY, measured={"pix_fmt": "yuv420p10le"}),
    "12-bit": Case("deeper.mkv", {"vcodec": "ffv1", "pix_fmt": "yuv420p12le", "deep": True, "audio": ()},
                   streams=PICTURE_ONLY, words="12-bit 4:2:0 picture written as 10-bit 4:2:0",
                   measured={"pix_fmt": "yuv420p10le"}),
    "4:4:4": Case("full.mp4", {"pix_fmt": "yuv444p"}, measured={"pix_fmt": "yuv444p"}),
    "BT.709": Case("hd.mp4", {"bt709": True, "colour": (200, 60, 20)}, measured={"colours": (1, 1, 1)}),
    # Matroska stores nothing before 0: with the AAC's priming (1024 samples) before the picture, all of it starts
    # after it, in step (as FFmpeg's own remuxing does)
    "MP4 named .mkv": Case("named.mkv", _mp4_named_mkv, times=tuple(1024 / 16000 + i / FPS for i in range(FRAMES)),
                           flash=1024 / 16000 + 1.2),
    # broken
    "cut short (faststart MP4)": Case("short.mp4", _cut_short, code=1, truncated=True, frames=-1, flash="input",
                                      words="cut short: the picture ends at"),
    "no video stream": Case("sound.mp4", _audio_only, code=1, words="no video stream", error=ValueError),
    "zero frames": Case("empty.mkv", _no_frames, code=1, words="not a video FFmpeg can read", error=ValueError),
    "damaged": Case("damaged.mp4", _damaged, code=1, words="damaged after", error=ValueError),
    "corrupt bytes": Case("noise.mkv", _bytes(np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes()),
                          code=1, words="not a video FFmpeg can read", error=ValueError),
    "empty file": Case("nothing.mp4", _bytes(b""), code=1, words="not a video FFmpeg can read", error=ValueError),
    "text named .mp4": Case("notes.mp4", _bytes(b"shopping list: eggs, milk\n" * 20), code=1,
                            words="not a video FFmpeg can read", error=ValueError),
}


def _cli_args(run: dict) -> list[str]:
    args = []
    for name, value in run.items():
        args += ["--strip-metadata"] if name == "metadata" else [f"--{name}", str(value)]
    return args


def _check_written(case: Case, src, out, frames: int) -> None:
    """What a player meets in ``out``: the frames and their times, the streams, the flash, and the beep in step with
    it as in the input."""
    got, before = measure_clip(out), measure_clip(src)
    n = case.frames if case.frames >= 0 else frames
    assert len(got["times"]) == n == frames
    times, flash = case.times or [i / FPS for i in range(n)], case.flash
    if flash == "input":  # as players read the input (an MP3 in AVI shifts its picture a frame: kept so)
        times = [t - before["times"][0] for t in before["times"]][:n]
        flash = before["flash"] - before["times"][0]
    assert got["times"] == pytest.approx(times, abs=1e-3)
    assert [s[: len(e)] for s, e in zip(got["streams"], case.streams, strict=True)] == [tuple(e) for e in case.streams]
    if flash is None:  # the flash and the beep are outside what was restored
        assert got["flash"] is None and got["beep"] is None
    else:
        assert got["flash"] == pytest.approx(flash, abs=1e-3)
    if got["beep"] is not None:  # made in step: in step within a frame (as players show the input, where they
        offset = got["beep"] - got["flash"]  # shift it: an MP3 in AVI)
        assert abs(offset) <= 1 / FPS + 1e-3
        if case.flash == "input":
            assert offset == pytest.approx(before["beep"] - before["flash"], abs=1 / FPS + 1e-3)
    for key, value in case.measured.items():
        if key == "metadata":
            assert {k: got[key].get(k) for k in ("title", "creation_time")} == \
                {k: value.get(k) for k in ("title", "creation_time")}
        else:
            assert got[key] == value, key


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    made = {}
    for name, case in CASES.items():
        path = folder / case.file
        made[name] = case.make(path) if callable(case.make) else make_av_clip(path, **{"frames": FRAMES, **case.make})
    return made


def test_the_corpus_is_made_of_what_it_says(clips):
    assert len(CASES) >= 30
    for name, case in CASES.items():  # a clip is known by its content, whatever its name
        broken = callable(case.make) and case.make.__name__ == "build"
        assert looks_like_video(clips[name]) is not broken, name


@pytest.mark.parametrize("name", CASES)
def test_each_clip_through_the_command_line(bundle, tmp_path, run_cli, clips, name):
    case, src = CASES[name], clips[name]
    out = tmp_path / "o"
    res = run_cli(["deblur", str(src), "-o", str(out), "--weights", str(bundle), *_cli_args(case.run)])
    err = " ".join(res.err.split())  # lines wrapped by the console
    assert res.code == case.code, res.err
    assert "Traceback" not in res.err and case.words in err
    assert res.err.strip().splitlines()[-1].startswith("smfd: error:" if case.code else "note:"), res.err
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    dst = f"{src.stem}{output_suffix(src.suffix)}"
    assert written == ([dst] if case.error is None else [])  # and no hidden partial file
    if case.error is None:
        _check_written(case, src, out / dst, len(measure_clip(out / dst)["times"]))


@pytest.mark.parametrize("name", CASES)
def test_each_clip_through_the_python_api(pipe, tmp_path, clips, name):
    case, src = CASES[name], clips[name]
    dst = tmp_path / "o" / f"{src.stem}{output_suffix(src.suffix)}"
    if case.error is not None:
        with pytest.raises(case.error) as e:
            list(pipe.deblur_video(src, dst, **case.run))
        message = str(e.value)
        assert case.words in message and "\n" not in message
        assert message.startswith(str(src)) or case.code == 2  # an option's error names the option
        assert not dst.parent.exists() or list(dst.parent.iterdir()) == []
        return
    job = pipe.deblur_video(src, dst, **case.run)
    frames = list(job)
    assert job.truncated is case.truncated and (case.words in (job.warning or "") + job.summary())
    assert [f.index for f in frames] == list(range(len(frames))) and job.frames == len(frames)
    _check_written(case, src, dst, len(frames))
    assert sorted(p.name for p in dst.parent.iterdir()) == [dst.name]
