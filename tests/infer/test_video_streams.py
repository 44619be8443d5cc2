"""Videos as recordings come: timestamps that start at 10 s or before 0, camera AVIs with PCM audio, B-frames in AVI,
several audio and subtitle streams with their tags, the container's metadata, odd sizes, files cut short, and runs
killed halfway. Tiny clips without faces (the picture passes through), so each case takes a fraction of a second."""

from __future__ import annotations

import os
import signal
from fractions import Fraction

import numpy as np
import pytest

from helpers import FPS, make_clip
from helpers import make_av_clip as make
from helpers import measure_clip as measure

av = pytest.importorskip("av")
pytest.importorskip("dlib")

from smfd.infer.video import VideoOptions, probe  # noqa: E402


@pytest.mark.parametrize(("name", "t0"), [("at10.mp4", 10.0), ("at10.mkv", 10.0), ("before0.ts", -0.1),
                                          ("at0.mp4", 0.0)])
def test_picture_and_sound_stay_in_step_whatever_the_first_timestamp(pipe, tmp_path, name, t0):
    src = make(tmp_path / name, t0=t0, options={"avoid_negative_ts": "disabled"} if t0 < 0 else None)
    job = pipe.deblur_video(src, tmp_path / "o.mp4")
    assert len(list(job)) == 20 and not job.truncated
    out = measure(tmp_path / "o.mp4")
    assert out["times"] == pytest.approx([i / FPS for i in range(20)])  # 2 s of picture, from 0
    assert out["flash"] == pytest.approx(1.2) and out["beep"] == pytest.approx(1.2, abs=1 / FPS)


@pytest.mark.parametrize(("name", "options"), [
    ("at10.mkv", {"t0": 10.0}),
    ("at10.mp4", {"t0": 10.0}),
    ("before0.ts", {"t0": -0.1, "options": {"avoid_negative_ts": "disabled"}}),  # no index: read from its start
    ("bframes.avi", {"bframes": True}),
    ("web.webm", {"vcodec": "libvpx-vp9", "audio": ("libopus",)}),
])
def test_start_and_duration_count_from_the_first_frame(pipe, tmp_path, name, options):
    src = make(tmp_path / name, **options)
    for start, duration, frames, flash in ((1.0, 0.5, 5, 0.2), (0.5, None, 15, 0.7), (1.15, 0.3, 3, 0.0)):
        out = tmp_path / f"o{start}.mkv"
        times = [f.time for f in pipe.deblur_video(src, out, start=start, duration=duration)]  # from ``start``
        assert times == pytest.approx([i / FPS + (0.05 if start == 1.15 else 0) for i in range(frames)])
        res = measure(out)
        assert res["times"] == pytest.approx([i / FPS for i in range(frames)])
        assert res["flash"] == pytest.approx(flash) and res["beep"] == pytest.approx(flash, abs=1 / FPS)


def test_the_cli_cuts_a_clip_that_starts_at_10_s(tmp_path, bundle, run_cli):
    src = make(tmp_path / "at10.mkv", t0=10.0)
    res = run_cli(["deblur", str(src), "-o", str(tmp_path / "cli"), "--weights", str(bundle), "--start", "1.5"])
    assert res.code == 0, res.err
    assert measure(tmp_path / "cli" / "at10.mkv")["times"] == pytest.approx([i / FPS for i in range(5)])


@pytest.mark.parametrize(("name", "vcodec", "acodec", "out", "kept"), [
    ("camera.avi", "mjpeg", "pcm_s16le", "camera.mp4", "aac"),  # MP4 cannot carry PCM: re-encoded
    ("old.avi", "mpeg4", "libmp3lame", "old.mp4", "mp3"),
    ("web.webm", "libvpx-vp9", "libopus", "web.mp4", "opus"),
    ("edit.mov", "libx264", "pcm_s16le", "edit.mov", "pcm_s16le"),  # MOV carries PCM
    ("lossless.mkv", "ffv1", "flac", "lossless.mkv", "flac"),
    ("music.mkv", "libx264", "libopus", "music.mov", "aac"),  # MOV cannot carry Opus (a name the API was given)
])
def test_each_container_and_codec_comes_back_in_step(pipe, tmp_path, name, vcodec, acodec, out, kept):
    src = make(tmp_path / name, vcodec=vcodec, audio=(acodec,))
    job = pipe.deblur_video(src, tmp_path / "o" / out)
    assert len(list(job)) == 20
    res = measure(tmp_path / "o" / out)
    assert [s[:2] for s in res["streams"]] == [("video", "h264"), ("audio", kept)]
    before = measure(src)  # as players read the input (an MP3 in AVI shifts the picture a frame: kept so)
    assert res["times"] == pytest.approx(before["times"]) and res["flash"] == pytest.approx(before["flash"])
    assert res["beep"] - res["flash"] == pytest.approx(before["beep"] - before["flash"], abs=1 / FPS)
    assert res["flash"] == pytest.approx(1.2, abs=0.11) and res["beep"] == pytest.approx(1.2, abs=1 / FPS)
    suffix = out[out.index(".") :]
    assert (f"audio re-encoded to AAC ({suffix} cannot carry it)" in job.summary()) == (kept == "aac")
    assert [p.name for p in (tmp_path / "o").iterdir()] == [out]


def test_b_frames_in_avi_are_shown_at_their_presentation_times(pipe, tmp_path):
    src = make(tmp_path / "b.avi", bframes=True, audio=())
    list(pipe.deblur_video(src, tmp_path / "b.mp4"))
    out = measure(tmp_path / "b.mp4")
    assert out["times"] == pytest.approx([i / FPS for i in range(20)]) and out["flash"] == pytest.approx(1.2)


def test_every_audio_and_subtitle_stream_and_the_tags_are_kept(pipe, tmp_path):
    tags = {"title": "Holiday", "creation_time": "2024-05-01T10:00:00.000000Z", "location": "+48.8577+002.2950/"}
    src = make(tmp_path / "multi.mkv", audio=("aac", "libopus"), subtitles=True, metadata={"title": "Holiday"})
    list(pipe.deblur_video(src, tmp_path / "o.mkv"))
    out = measure(tmp_path / "o.mkv")
    assert out["streams"][1:] == measure(src)["streams"][1:]
    assert [(t, lang) for t, _, lang, _ in out["streams"]] == [("video", None), ("audio", "eng"), ("audio", "fra"),
                                                              ("subtitle", "spa")]
    assert out["streams"][3][3] & av.stream.Disposition.forced  # forced subtitles stay forced
    assert out["metadata"].get("title") == "Holiday"
    list(pipe.deblur_video(src, tmp_path / "cut.mkv", start=1.0))  # the subtitle (0.5-1.5 s) is shown across 1 s
    with av.open(str(tmp_path / "cut.mkv")) as c:
        cue = next(c.demux(subtitles=0))
        assert (cue.pts * cue.time_base, cue.duration * cue.time_base) == (0, Fraction(1, 2))
        assert min(p.pts for p in c.demux(audio=0) if p.pts is not None) >= 0
    src = make(tmp_path / "phone.mp4", metadata=tags)  # as phones write them: the AAC primed (a negative packet)
    list(pipe.deblur_video(src, tmp_path / "phone_out.mp4"))
    out = measure(tmp_path / "phone_out.mp4")
    assert {k: out["metadata"].get(k) for k in tags} == tags
    with av.open(str(tmp_path / "phone_out.mp4")) as c:
        assert next(c.demux(audio=0)).pts < 0  # the priming packet is still there
    job = pipe.deblur_video(src, tmp_path / "stripped.mp4", metadata=False)
    list(job)
    out = measure(tmp_path / "stripped.mp4")
    assert not {"title", "location"} & set(out["metadata"]) and out["streams"][1][2] == "eng"


def test_odd_sizes_are_written_so_players_play_them(pipe, tmp_path):
    src = make(tmp_path / "odd.mkv", size=(65, 49), vcodec="ffv1", audio=())
    job = pipe.deblur_video(src, tmp_path / "odd_out.mkv")
    frames = list(job)
    assert frames[0].image.shape == (49, 65, 3)
    info = probe(tmp_path / "odd_out.mkv")
    assert (info.width, info.height) == (66, 50) and measure(tmp_path / "odd_out.mkv")["pix_fmt"] == "yuv420p"
    assert "written as 66x50" in job.summary()
    src = make(tmp_path / "odd444.mkv", size=(65, 49), vcodec="ffv1", pix_fmt="yuv444p", audio=())
    job = pipe.deblur_video(src, tmp_path / "odd444_out.mkv")
    list(job)
    out = measure(tmp_path / "odd444_out.mkv")  # 4:4:4 is kept, and needs no even side
    assert out["pix_fmt"] == "yuv444p" and out["size"] == (65, 49) and "written as" not in job.summary()
    src = make(tmp_path / "grey.mkv", vcodec="ffv1", pix_fmt="gray", audio=())
    job = pipe.deblur_video(src, tmp_path / "grey_out.mkv")
    list(job)
    assert "8-bit grey picture written as 8-bit 4:2:0 (gray in)" in job.summary()


def test_a_clip_cut_short_is_written_and_reported(pipe, tmp_path, bundle, run_cli):
    full = make_clip(tmp_path / "full.mp4", frames=40, size=(96, 64), with_face=False, faststart=True)
    data = full.read_bytes()
    (tmp_path / "in").mkdir()
    cut = tmp_path / "in" / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index at the front still declares 40 frames
    job = pipe.deblur_video(cut, tmp_path / "o.mp4")
    n = len(list(job))
    assert 5 < n < 35 and job.truncated and (tmp_path / "o.mp4").is_file()
    assert job.warning.startswith(f"{cut}: cut short: the picture ends at") and f"({n} of 40 frames)" in job.warning
    res = run_cli(["deblur", str(cut), "-o", str(tmp_path / "cli"), "--weights", str(bundle)])
    assert res.code != 0 and "cut short" in res.err and (tmp_path / "cli" / "cut.mp4").is_file()
    whole = pipe.deblur_video(full, tmp_path / "whole.mp4")
    assert len(list(whole)) == 40 and not whole.truncated and whole.warning is None
    long = make(tmp_path / "long.mkv", frames=60, size=(96, 64))  # no index up front: the declared length counts
    data = long.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    job = pipe.deblur_video(tmp_path / "cut.mkv", tmp_path / "cut_out.mkv")
    assert len(list(job)) < 50 and job.truncated and "of the 6.1 s the file declares" in job.warning


def test_sigterm_is_a_stop_and_the_next_run_removes_what_a_killed_one_left(bundle, tmp_path, run_cli, monkeypatch):
    from smfd.infer.video import VideoJob

    folder, out = tmp_path / "in", tmp_path / "o"
    folder.mkdir()
    out.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make(folder / name, audio=())
    dead = out / ".x.partial-99999999.mp4"  # a run killed with SIGKILL: no process has this id
    alive = out / f".y.partial-{os.getppid()}.mp4"  # a run still going
    dead.write_bytes(b"x")
    alive.write_bytes(b"x")
    real = VideoJob._write

    def write(self, *a, **k):
        if self.src.name == "b.mp4" and self.frames == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, *a, **k)

    monkeypatch.setattr(VideoJob, "_write", write)
    before = signal.getsignal(signal.SIGTERM)
    res = run_cli(["deblur", str(folder), "-o", str(out), "--weights", str(bundle)])
    assert res.code == 143 and "stopped by SIGTERM" in res.err and "Traceback" not in res.err
    assert "from 1 of 2 input(s)" in res.err
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.mp4", alive.name])  # b's partial file and the dead
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the caller's again


def test_options_are_checked_once_with_messages_that_say_what_is_allowed(pipe, tmp_path):
    src = make(tmp_path / "c.mp4", audio=())
    for options, message in (({"fuse": 1000}, "fuse must be 0 to 8, got 1000"),
                             ({"start": -1}, "start must be 0 or more"),
                             ({"duration": 0}, "duration must be more than 0 s, got 0"),
                             ({"detect_every": 0}, "detect_every must be 1 or more, got 0")):
        with pytest.raises(ValueError, match=message):
            pipe.deblur_video(src, tmp_path / "o.mp4", **options)
    (tmp_path / "file").write_text("in the way")
    for src_, dst, error, message in ((src, tmp_path / "o.webm", ValueError, "written as .mp4, .m4v, .mov, .mkv, not"),
                                      (src, tmp_path / "file" / "o.mp4", OSError, "cannot write"),
                                      (tmp_path, tmp_path / "o.mp4", OSError, "a folder, not a video")):
        with pytest.raises(error, match=message) as e:  # FFmpeg's own exception types stay inside
            list(pipe.deblur_video(src_, dst))
        assert type(e.value).__module__ == "builtins" and str(e.value).startswith(str(dst if src_ == src else src_))
    options = VideoOptions(fuse=2, start=0.5)
    job = pipe.deblur_video(src, tmp_path / "o.mp4", options=options)
    assert job.options.fuse == 2 and len(list(job)) == 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "file", "o.mp4"]  # nothing half-written


def test_the_cli_restores_a_folder_of_awkward_clips_and_counts_the_one_cut_short(bundle, tmp_path, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    make(folder / "stream.mkv", t0=10.0)
    make(folder / "camera.avi", vcodec="mjpeg", audio=("pcm_s16le",))
    make(folder / "bframes.avi", bframes=True, audio=())
    make(folder / "web.webm", vcodec="libvpx-vp9", audio=("libopus",))
    make(folder / "odd.mov", size=(65, 49), vcodec="mjpeg", audio=("pcm_s16le",))
    full = make(tmp_path / "phone.mp4", frames=40, options={"movflags": "faststart"})
    (folder / "phone.mp4").write_bytes(full.read_bytes()[: full.stat().st_size * 4 // 5])  # its index up front
    res = run_cli(["deblur", str(folder), "-o", str(tmp_path / "o"), "--weights", str(bundle)])
    assert res.code == 1 and "Traceback" not in res.err
    err = " ".join(res.err.split())  # lines wrapped by the console
    assert "phone.mp4: cut short: the picture ends at" in err and "of the 4.0 s the file declares" in err
    assert "camera.avi: no face restored in 20 frame(s)" in err and "pcm_s16le audio re-encoded to AAC" in err
    assert "written as 66x50" in err
    outputs = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert outputs == ["bframes.mp4", "camera.mp4", "odd.mov", "phone.mp4", "stream.mkv", "web.mp4"]
    for name in ("stream.mkv", "camera.mp4", "bframes.mp4", "web.mp4"):
        out = measure(tmp_path / "o" / name)
        assert out["times"] == pytest.approx([i / FPS for i in range(20)]) and out["flash"] == pytest.approx(1.2)
        assert out["beep"] is None or out["beep"] == pytest.approx(1.2, abs=1 / FPS)


def _first_frame(path, fmt: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The first frame converted to ``fmt``, and the stream's colour matrix, primaries and transfer."""
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        return next(c.decode(video=0)).to_ndarray(format=fmt), (cc.colorspace, cc.color_primaries, cc.color_trc)


@pytest.mark.parametrize(("vcodec", "pix_fmt", "size", "kept", "note"), [
    ("libx264", "yuv420p10le", (64, 48), "yuv420p10le", ""),
    ("libx265", "yuv420p10le", (64, 48), "yuv420p10le", ""),  # a phone's HDR clip: HEVC Main 10
    ("libx264", "yuv422p10le", (64, 49), "yuv422p10le", ""),  # 4:2:2 needs an even width only
    ("ffv1", "yuv420p12le", (64, 48), "yuv420p10le", "12-bit 4:2:0 picture written as 10-bit 4:2:0"),
    ("ffv1", "rgb48le", (64, 48), "yuv444p10le", "16-bit 4:4:4 picture written as 10-bit 4:4:4"),
])
def test_more_than_8_bits_are_kept_where_h264_can(pipe, tmp_path, vcodec, pix_fmt, size, kept, note):
    src = make(tmp_path / f"deep.{'mp4' if vcodec == 'libx265' else 'mkv'}", frames=14, size=size, vcodec=vcodec,
               pix_fmt=pix_fmt, audio=(), deep=True)
    job = pipe.deblur_video(src, tmp_path / "o.mkv")
    assert len(list(job)) == 14 and (note in job.summary() if note else "picture written as" not in job.summary())
    out = measure(tmp_path / "o.mkv")
    assert out["pix_fmt"] == kept and out["size"] == size and out["flash"] == pytest.approx(1.2)
    before, after = (_first_frame(p, "rgb48le")[0].astype(int) for p in (src, tmp_path / "o.mkv"))
    assert np.abs(after - before).max() < 257  # within one 8-bit step...
    assert len(np.unique(after[..., 1])) > 40  # ...and finer: the 16-level gradient at 8 bits is 60 levels here


def test_colours_come_back_with_the_matrix_they_were_stored_in(pipe, tmp_path):
    for bt709 in (False, True):
        src = make(tmp_path / f"c{bt709}.mp4", frames=4, colour=(200, 60, 20), bt709=bt709, audio=())
        list(pipe.deblur_video(src, tmp_path / f"o{bt709}.mp4"))
        (yuv_in, tags_in), (yuv_out, tags_out) = (_first_frame(p, "yuv444p") for p in (src, tmp_path / f"o{bt709}.mp4"))
        assert tags_out == tags_in == ((1, 1, 1) if bt709 else (2, 2, 2))  # BT.709 named, or nothing named
        assert np.abs(yuv_out[:, 8:-8, 8:-8].astype(int) - yuv_in[:, 8:-8, 8:-8]).max() <= 2


def test_a_build_of_x264_without_10_bits_writes_8_and_says_so(pipe, tmp_path, monkeypatch):
    real = av.codec.Codec

    class Eight:  # x264 built for 8 bits only, as some FFmpeg builds are
        def __init__(self, name, mode):
            self.video_formats = [f for f in real(name, mode).video_formats if "10" not in f.name]

    src = make(tmp_path / "deep.mkv", frames=14, pix_fmt="yuv420p10le", audio=(), deep=True)
    monkeypatch.setattr(av.codec, "Codec", Eight)
    job = pipe.deblur_video(src, tmp_path / "o.mkv")
    assert len(list(job)) == 14 and "10-bit 4:2:0 picture written as 8-bit 4:2:0 (yuv420p10le in)" in job.summary()
    assert measure(tmp_path / "o.mkv")["pix_fmt"] == "yuv420p"
