"""Videos: faces followed and restored frame by frame, the clip written again with its size, frame count,
timestamps, rotation and audio; bad clips named in one line, and nothing half-written left behind."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_clip

av = pytest.importorskip("av")
pytest.importorskip("dlib")

from smfd.infer.video import fuse_crops, probe, smooth_landmarks  # noqa: E402


def _read(path) -> tuple[list[np.ndarray], list[float], float]:
    """Displayed frames (RGB, as stored), their times (s) and the audio's length (s, 0 without audio)."""
    with av.open(str(path)) as c:
        frames, times = [], []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.pts * f.time_base))
        audio = 0.0
        if c.streams.audio:
            c.seek(0)
            for f in c.decode(audio=0):
                audio = max(audio, float(f.pts * f.time_base) + f.samples / f.sample_rate)
    return frames, times, audio


def test_a_clip_comes_back_with_its_size_frames_and_audio_and_the_face_restored(pipe, tmp_path):
    src = make_clip(tmp_path / "c.mp4", frames=12)
    job = pipe.deblur_video(src, tmp_path / "o.mp4", detect_every=4)
    frames = list(job)
    assert [f.index for f in frames] == list(range(12)) and all(f.tracks == [0] for f in frames)  # one face, one track
    assert job.detections == 3 and "restored 12 face(s) in 12 of 12 frame(s)" in job.summary()
    info_in, info_out = probe(src), probe(tmp_path / "o.mp4")
    assert (info_out.width, info_out.height, info_out.frames, info_out.fps) == (320, 240, 12, info_in.fps)
    before, t_in, audio_in = _read(src)
    after, t_out, audio_out = _read(tmp_path / "o.mp4")
    assert t_out == t_in and audio_out == pytest.approx(audio_in, abs=0.07) and audio_out > 1.0
    face = (slice(70, 170), slice(40, 120))  # where the face is in frame 5
    diff = [np.abs(a.astype(int) - b.astype(int)).mean(-1) for a, b in zip(before, after, strict=True)]
    assert diff[5][face].mean() > 5  # the tiny random net changes the face...
    assert diff[5][:, 250:].mean() < 2 and np.array_equal(frames[5].image.shape, (240, 320, 3))  # ...not the rest


def test_rotation_and_a_variable_frame_rate_are_kept(pipe, tmp_path):
    pts = [0, 1, 3, 4, 7, 8, 9, 12]
    src = make_clip(tmp_path / "r.mov", frames=8, rotation=90, pts=pts)
    out = tmp_path / "r.mov"
    out = tmp_path / "o" / "r.mov"
    job = pipe.deblur_video(src, out)
    frames = list(job)
    assert job.faces_restored == 8  # found upright as displayed: the rotation was applied the right way round
    assert frames[0].image.shape == (240, 320, 3)
    info = probe(out)
    assert (info.rotation, info.width, info.height) == (90, 240, 320)  # stored as the input, shown turned
    _, times, _ = _read(out)
    assert times == pytest.approx([p / 10 for p in pts])


def test_start_and_duration_cut_the_frames_and_the_audio(pipe, tmp_path):
    src = make_clip(tmp_path / "c.mp4", frames=30)
    frames = list(pipe.deblur_video(src, tmp_path / "o.mp4", start=0.8, duration=1.0))
    assert len(frames) == 10 and frames[0].time == pytest.approx(0.0)
    _, times, audio = _read(tmp_path / "o.mp4")
    assert len(times) == 10 and times[0] == 0 and audio == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ValueError, match="past the end"):
        pipe.deblur_video(src, tmp_path / "x.mp4", start=5)


def test_a_clip_without_faces_passes_through_and_says_so(pipe, tmp_path):
    src = make_clip(tmp_path / "empty.mp4", frames=6, with_face=False, audio=False)
    job = pipe.deblur_video(src)
    frames = list(job)
    assert len(frames) == 6 and not any(f.faces for f in frames)
    assert job.summary().startswith("no face restored in 6 frame(s): they pass through unchanged")
    before, _, _ = _read(src)
    assert all(np.array_equal(a, f.image) for a, f in zip(before, frames, strict=True))


def test_bad_clips_are_named_in_one_line_and_leave_nothing(pipe, tmp_path):
    good = make_clip(tmp_path / "good.mp4", frames=6)
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:2000])  # no index at the end: unreadable
    with av.open(str(tmp_path / "sound.m4a"), "w") as c:  # audio only
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in [*s.encode(frame), *s.encode(None)]:
            c.mux(p)
    out = tmp_path / "out"
    for name, reason in (("junk.mp4", "not a video FFmpeg can read"), ("cut.mp4", "not a video FFmpeg can read"),
                         ("sound.m4a", "no video stream"), ("missing.mp4", "no such file")):
        with pytest.raises((ValueError, OSError), match=reason) as e:
            list(pipe.deblur_video(tmp_path / name, out / name))
        assert str(e.value).startswith(str(tmp_path / name)) and "\n" not in str(e.value)
    assert not out.exists() or not list(out.iterdir())


def test_a_run_left_early_leaves_no_output(pipe, tmp_path):
    src = make_clip(tmp_path / "c.mp4", frames=20, audio=False)
    frames = iter(pipe.deblur_video(src, tmp_path / "o" / "c.mp4", batch_frames=2))
    for _ in range(12):
        next(frames)
    assert not (tmp_path / "o" / "c.mp4").exists()  # written to a hidden file first
    frames.close()  # as on Ctrl-C or an error in the caller
    assert list((tmp_path / "o").iterdir()) == []


def test_smoothing_keeps_steady_motion_and_damps_jitter():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 100, (5, 2))
    steady = {i: (base + 3.0 * i).astype(np.float32) for i in range(20)}
    assert np.allclose(smooth_landmarks(steady, 10, 4, 2.0), steady[10], atol=1e-4)  # no lag
    assert np.allclose(smooth_landmarks(steady, 0, 4, 2.0), steady[0] + 3 * 1.2, atol=2.0)  # one-sided at the edge
    shaky = {i: v + rng.normal(0, 1.0, v.shape).astype(np.float32) for i, v in steady.items()}
    raw = np.std([shaky[i] - steady[i] for i in range(4, 16)])
    smoothed = np.std([smooth_landmarks(shaky, i, 4, 2.0) - steady[i] for i in range(4, 16)])
    assert smoothed < 0.6 * raw


def test_the_cli_restores_videos_in_folders_beside_photos(bundle, tmp_path, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "clip.mp4", frames=10)
    make_clip(folder / "old.avi", frames=4, audio=False)
    res = run_cli(["deblur", str(folder), "-o", str(tmp_path / "o"), "--weights", str(bundle), "--duration", "0.5"])
    assert res.code == 0, res.err
    assert "from 2 of 2 input(s)" in res.err and "clip.mp4: restored 5 face(s) in 5 of 5 frame(s)" in res.err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["clip.mp4", "old.mp4"]  # .avi becomes .mp4
    assert probe(tmp_path / "o" / "clip.mp4").frames == 5
    res = run_cli(["deblur", str(folder / "clip.mp4"), "-o", str(tmp_path / "o2"), "--aligned"])
    assert res.code == 1 and "a video: leave out --aligned" in res.err
    res = run_cli(["deblur", str(folder / "clip.mp4"), "-o", str(tmp_path / "o"), "--weights", str(bundle)])
    assert res.code == 1 and "exists" in res.err  # no overwrite without --overwrite


def test_fusion_averages_frame_to_frame_noise_but_not_what_changes():
    rng = np.random.default_rng(0)
    face = rng.integers(40, 200, (64, 64, 3)).astype(np.float32)
    crops = [np.clip(face + rng.normal(0, 3, face.shape), 0, 255).astype(np.uint8) for _ in range(7)]
    for c in crops[4:]:  # from frame 4 on, the mouth region changes a lot (say, it opens)
        c[40:56, 20:44] = 10
    fused = fuse_crops(crops[3], [(i - 3, c) for i, c in enumerate(crops) if i != 3], radius=3)
    still = (slice(0, 30), slice(0, 64))
    assert np.abs(fused[still] - face[still]).mean() < 0.6 * np.abs(crops[3][still] - face[still]).mean()
    mouth = (slice(44, 52), slice(24, 40))
    assert np.abs(fused[mouth] - face[mouth]).mean() < 2.0  # no ghost of the open mouth of frames 4-6 (at 10)
    assert fuse_crops(crops[3], [], radius=3) is crops[3]


def test_ctrl_c_in_a_clip_leaves_the_clips_before_it_and_nothing_half_written(bundle, tmp_path, run_cli,
                                                                                monkeypatch):
    from smfd.infer.pipeline import FaceDeblurrer

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(folder / name, frames=12, audio=False)
    real, calls = FaceDeblurrer.restore_faces, []

    def restore(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:  # clip a takes two batches of 8 frames; Ctrl-C in clip b's first
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(FaceDeblurrer, "restore_faces", restore)
    res = run_cli(["deblur", str(folder), "-o", str(tmp_path / "o"), "--weights", str(bundle)])
    assert res.code == 130 and "Traceback" not in res.err and "stopped by Ctrl-C" in res.err
    assert "from 1 of 2 input(s)" in res.err and "1 input(s) not done, from" in res.err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.mp4"]  # b's hidden partial file is gone


def test_the_cli_passes_fuse_to_the_video_job_and_refuses_a_negative_one(bundle, tmp_path, run_cli, monkeypatch):
    from smfd.infer.video import VideoJob

    make_clip(tmp_path / "c.mp4", frames=6, audio=False)
    real, seen = VideoJob.__init__, []

    def init(self, *a, **k):
        seen.append(k.get("fuse"))
        real(self, *a, **k)

    monkeypatch.setattr(VideoJob, "__init__", init)
    res = run_cli(["deblur", str(tmp_path / "c.mp4"), "-o", str(tmp_path / "o"), "--weights", str(bundle),
                   "--fuse", "6"])
    assert res.code == 0, res.err
    assert seen == [6] and (tmp_path / "o" / "c.mp4").is_file()
    res = run_cli(["deblur", str(tmp_path / "c.mp4"), "-o", str(tmp_path / "o2"), "--fuse", "-1"])
    assert res.code == 2 and "--fuse must be at least 0, got -1" in res.err
    assert not (tmp_path / "o2").exists()


def test_a_face_about_the_big_face_line_stays_on_one_side_of_it(pipe, tmp_path, monkeypatch):
    """A tracked face whose crop hovers about the first size restored above 256 px (mirrored, by the big-face net)
    is restored one way all along, not by turns; a face that really grows or shrinks crosses the line."""
    from smfd.infer.tracking import steady_side

    line = pipe.first_big_side
    assert line == 320
    assert [steady_side(s, True, line) for s in (319, 290, 287, 350)] == [320, 320, 287, 350]
    assert [steady_side(s, False, line) for s in (320, 350, 352, 300)] == [319, 319, 352, 300]
    assert [steady_side(s, None, line) for s in (319, 320)] == [319, 320]  # a new track: its own size
    src = make_clip(tmp_path / "c.mp4", frames=8)
    sides = iter([318, 323, 317, 322, 319, 321, 316, 324])
    monkeypatch.setattr(pipe, "crop_size", lambda pts: next(sides))
    seen = []
    real = pipe.restore_faces
    monkeypatch.setattr(pipe, "restore_faces", lambda crops, *a, **k: seen.extend(c.shape[0] for c in crops)
                        or real(crops, *a, **k))
    list(pipe.deblur_video(src, tmp_path / "o.mp4", detect_every=4))
    assert seen == [318, 319, 317, 319, 319, 319, 316, 319]


@pytest.mark.parametrize("suffix", [".ts", ".mts"])
def test_a_transport_stream_from_a_camera_comes_back_as_mp4_in_step(pipe, tmp_path, suffix):
    """MPEG transport streams (.ts, AVCHD's .mts/.m2ts) start their clock after zero: the clip comes back as .mp4
    with every frame, its audio as long, and times from its first frame."""
    from smfd.infer.video import VIDEO_SUFFIXES, output_suffix

    assert suffix in VIDEO_SUFFIXES and output_suffix(suffix) == ".mp4"
    src = make_clip(tmp_path / f"c{suffix}", frames=12)
    assert probe(src).start > 0  # the stream's clock starts after zero
    job = pipe.deblur_video(src, tmp_path / "c.mp4", detect_every=4)
    assert len(list(job)) == 12 and job.warning is None
    _, t_in, audio_in = _read(src)
    _, t_out, audio_out = _read(tmp_path / "c.mp4")
    assert t_out == pytest.approx([t - t_in[0] for t in t_in], abs=1e-6)
    assert audio_out == pytest.approx(audio_in - t_in[0], abs=0.1)
