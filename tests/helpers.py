"""Test helpers shared by several test modules (tests/ is on the pytest pythonpath)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_face_folder(root: Path, n: int = 6, size: int = 48, seed: int = 0) -> Path:
    """A folder in the smfd layout: smooth random colour images and blocky 5-class masks."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        mask = cv2.resize(rng.integers(0, 5, (4, 4), dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(root / "images" / f"{i:05d}.png"), img)
        cv2.imwrite(str(root / "masks" / f"{i:05d}.png"), mask)
    return root


TINY_MODEL = ("model.kwargs={encoder_channels: [8, 16, 16, 16], decoder_channels: [16, 16, 8], head_channels: 8,"
              " growth: 4, num_layers: 2}")


def tiny_args(epochs: int = 2, extra: tuple = ()) -> list[str]:
    """CLI options for a tiny, fast training run on 32 px faces."""
    return ["--set", f"epochs={epochs}", "--set", "batch_size=4", "--set", "data.size=32", "--set",
            "data.num_workers=0", "--set", TINY_MODEL, *extra]


TINY_KWARGS = {"encoder_channels": (8, 16, 16, 16), "decoder_channels": (16, 16, 8), "head_channels": 8,
               "growth": 4, "num_layers": 2}


def make_tiny_bundle(folder: Path, seed: int = 0, favour_class: int | None = None, as_shipped: bool = False) -> Path:
    """A weights bundle with tiny randomly initialised networks (fast; exercises every code path).
    ``favour_class``: bias the mask generator's last conv so it labels (almost) every pixel with that class;
    ``as_shipped``: the networks have the shipped ones' options (mask: a working size, 32 px for the tiny test
    faces; deblurring: residual, keep_mean, local statistics over 32 px windows)."""
    import torch

    from smfd.infer.weights import make_bundle
    from smfd.models import build

    torch.manual_seed(seed)
    mask = build("mask_generator", **TINY_KWARGS, **({"work_size": 32} if as_shipped else {}))
    if favour_class is not None:
        last = [m for m in mask.module.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.bias[favour_class] += 100.0
    shipped = {"residual": True, "keep_mean": True, "pool_window": 32}
    deblur = build("smfd_unet", **TINY_KWARGS, **(shipped if as_shipped else {}))
    make_bundle(mask, deblur, folder, card={"status": "test bundle"})
    return folder


def write_bad_inputs(folder: Path) -> dict[str, Path]:
    """The bad-input corpus: name -> file."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    face = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (64, 64), interpolation=cv2.INTER_CUBIC)
    files = {}
    (folder / "empty.jpg").write_bytes(b"")
    files["empty"] = folder / "empty.jpg"
    ok, buf = cv2.imencode(".jpg", face)
    (folder / "truncated.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    files["truncated"] = folder / "truncated.jpg"
    (folder / "text.png").write_text("this is not an image")
    files["text"] = folder / "text.png"
    cv2.imwrite(str(folder / "deep.png"), face.astype(np.uint16) * 257)
    files["16bit"] = folder / "deep.png"
    Image.fromarray(np.dstack([face, np.full((64, 64), 100, np.uint8)])).save(folder / "rgba.png")
    files["rgba"] = folder / "rgba.png"
    Image.new("RGB", (1, 1)).save(folder / "tiny.png")
    files["1x1"] = folder / "tiny.png"
    # a 20000 x 20000 PNG is only ~1 MB compressed: the guard must refuse it before decoding
    Image.new("L", (20000, 20000)).save(folder / "bomb.png", optimize=False)
    files["bomb"] = folder / "bomb.png"
    return files


def make_clip(path: Path, frames: int = 10, size: tuple[int, int] = (320, 240), fps: int = 10, face: int = 120,
              audio: bool = True, rotation: int = 0, pts: list[int] | None = None, with_face: bool = True,
              faststart: bool = False) -> Path:
    """A small H.264 clip of a sample face moving right across a plain background (``pts``: the frames' timestamps
    in 1/fps units, for a variable frame rate), with a 440 Hz AAC tone, stored with a display ``rotation``."""
    from fractions import Fraction

    import av
    import cv2

    from smfd.samples import samples_dir

    img = cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)
    img = cv2.GaussianBlur(cv2.resize(img, (face, face), interpolation=cv2.INTER_AREA), (0, 0), 1.5)
    w, h = size
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height = (h, w) if rotation % 180 else (w, h)
        v.pix_fmt = "yuv420p"
        v.codec_context.time_base = Fraction(1, fps)
        if rotation:
            v.set_display_rotation(rotation)
        a = out.add_stream("aac", rate=16000) if audio else None
        for i in range(frames):
            canvas = np.full((h, w, 3), (90, 120, 150), np.uint8)
            if with_face:
                x, y = min(w - face, 10 + 4 * i), (h - face) // 2
                canvas[y : y + face, x : x + face] = img
            canvas = np.ascontiguousarray(np.rot90(canvas, -(rotation // 90)))  # displayed upright
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts, frame.time_base = (pts[i] if pts else i), Fraction(1, fps)
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)
        if a is not None:
            n = 16000 * ((pts[-1] + 1) if pts else frames) // fps
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)
            for s in range(0, n, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, s : s + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 16000, s, Fraction(1, 16000)
                for packet in a.encode(chunk):
                    out.mux(packet)
            for packet in a.encode(None):
                out.mux(packet)
    return path


#: The clips of :func:`make_av_clip`: frames per second, the audio's sample rate, the frame that flashes white (and
#: where the beep starts: 1.2 s after the first frame)
FPS, RATE, FLASH = 10, 16000, 12


def make_av_clip(path: Path, *, t0: float = 0.0, frames: int = 20, size: tuple[int, int] = (64, 48),
                 vcodec: str = "libx264", audio: tuple[str, ...] = ("aac",), bframes: bool = False,
                 options: dict | None = None, metadata: dict | None = None, subtitles: bool = False,
                 pix_fmt: str | None = None, flash: int = FLASH, rotation: int = 0, pts: list[int] | None = None,
                 deep: bool = False, colour: tuple[int, int, int] = (30, 30, 30), bt709: bool = False) -> Path:
    """A clip whose first frame is at ``t0`` s: dark frames but one white (frame ``flash``), and for each codec in
    ``audio`` a silent track with a 1 kHz beep starting at the white frame (tagged with a language). ``pts``: the
    frames' timestamps in 1/FPS units (a variable frame rate); ``deep``: the dark frames are a gradient finer than
    8 bits (16-bit RGB in, for 10-bit formats); ``colour``: the dark frames' RGB (8-bit clips); ``bt709``: the picture
    tagged BT.709 (HD clips, phones), converted to YUV with its matrix; ``rotation``: the display rotation stored."""
    from fractions import Fraction

    import av

    w, h = size
    srt = None
    if subtitles:  # subtitles come as packets of an SRT file: FFmpeg encodes none from scratch
        (path.parent / "sub.srt").write_text("1\n00:00:00,500 --> 00:00:01,500\nHola\n")
        srt = av.open(str(path.parent / "sub.srt"))
    pts = pts or list(range(frames))
    with av.open(str(path), "w", options=options or {}) as out:
        opts = {"libx264": {"bf": "2" if bframes else "0"}, "libx265": {"x265-params": "log-level=error"}}
        v = out.add_stream(vcodec, rate=FPS, options=opts.get(vcodec, {}))
        v.width, v.height = w, h
        v.pix_fmt = pix_fmt or ("yuvj420p" if vcodec == "mjpeg" else "yuv420p")
        v.codec_context.time_base = Fraction(1, FPS)
        if rotation:
            v.set_display_rotation(rotation)
        if bt709:
            v.codec_context.colorspace = v.codec_context.color_primaries = v.codec_context.color_trc = 1
        tracks = []
        for i, codec in enumerate(audio):
            a = out.add_stream(codec, rate=RATE, layout="mono")
            a.metadata["language"] = ("eng", "fra", "deu")[i]
            tracks.append(a)
        if srt is not None:
            sub = out.add_stream_from_template(srt.streams[0])
            sub.metadata["language"] = "spa"
            sub.disposition = av.stream.Disposition.forced
        out.metadata.update(metadata or {})
        wave = np.zeros(RATE * (pts[-1] + 1) // FPS, np.float32)
        beep = np.arange(RATE // FPS)
        start = RATE * pts[min(flash, frames - 1)] // FPS
        if flash < frames:
            wave[start:][: len(beep)] = 0.5 * np.sin(2 * np.pi * 1000 * beep / RATE)
        gradient = (30 * 257 + np.arange(w, dtype=np.uint16) * 64)[None, :, None].repeat(h, 0).repeat(3, 2)
        for i in range(frames + 1):  # interleaved as recorders write them: each frame's sound beside it
            if i < frames:
                if deep:
                    img = np.full((h, w, 3), 65535, np.uint16) if i == flash else gradient
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb48le")
                else:
                    img = np.full((h, w, 3), 255 if i == flash else colour, np.uint8)
                    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                    if bt709:
                        frame = frame.reformat(format=v.pix_fmt, dst_colorspace=1)
                frame.pts, frame.time_base = round(t0 * FPS) + pts[i], Fraction(1, FPS)
            out.mux(v.encode(frame if i < frames else None))
            end = RATE * (pts[i + 1] if i + 1 < frames else pts[-1] + 1) // FPS
            for a in tracks:
                if i < frames:
                    chunk = _audio_frame(wave[RATE * pts[i] // FPS : end], a.codec_context.format.name,
                                         round(t0 * RATE) + RATE * pts[i] // FPS)
                out.mux(a.encode(chunk if i < frames else None))
        if srt is not None:
            for p in srt.demux():
                if p.dts is not None:
                    p.stream = sub
                    out.mux(p)
            srt.close()
    return path


def _audio_frame(chunk: np.ndarray, fmt: str, pts: int):
    from fractions import Fraction

    import av

    chunk = chunk[None]
    if fmt.startswith(("s16", "s32")):
        bits = 16 if fmt.startswith("s16") else 32
        chunk = (chunk * (2 ** (bits - 1) - 1)).astype(np.int16 if bits == 16 else np.int32)
    af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout="mono")
    af.sample_rate, af.pts, af.time_base = RATE, pts, Fraction(1, RATE)
    return af


def measure_clip(path: Path) -> dict:
    """A clip as a player meets it: frame ``times``, the ``flash``'s and the first ``beep``'s times (s, None
    without), the ``streams`` (type, codec, language, disposition), the container's ``metadata``, the picture's
    ``pix_fmt``, ``size`` as stored, ``rotation`` and ``colours`` (matrix, primaries, transfer: FFmpeg's numbers).
    A file cut short is measured as far as it decodes."""
    import av

    with av.open(str(path)) as c:
        times, flash, rotation = [], None, 0
        for f in _decoded(c, video=0):
            times.append(None if f.pts is None else float(f.pts * f.time_base))  # None: a frame stored without one
            rotation = int(round(f.rotation or 0)) % 360
            if flash is None and f.to_ndarray(format="rgb24").mean() > 150:
                flash = times[-1]
        streams = [(s.type, s.codec_context.codec.canonical_name, s.metadata.get("language"), int(s.disposition))
                   for s in c.streams]
        v = c.streams.video[0].codec_context
        measured = {"times": times, "flash": flash, "beep": None, "streams": streams, "metadata": dict(c.metadata),
                    "pix_fmt": v.pix_fmt, "size": (v.width, v.height), "rotation": rotation,
                    "colours": (v.colorspace, v.color_primaries, v.color_trc)}
    with av.open(str(path)) as c:  # opened again: not every file can seek back to its start
        for f in _decoded(c, audio=0) if c.streams.audio else ():
            x = f.to_ndarray().astype(np.float32).reshape(-1)
            x = x / {"s16": 2**15, "s32": 2**31}.get(f.format.name[:3], 1)
            if np.abs(x).max() > 0.1:
                measured["beep"] = float(f.pts * f.time_base) + int(np.argmax(np.abs(x) > 0.1)) / f.sample_rate
                break
    return measured


def _decoded(container, **streams):
    """The frames of ``container.decode(**streams)`` up to where the file is damaged or cut."""
    import av

    frames = container.decode(**streams)
    while True:
        try:
            yield next(frames)
        except (StopIteration, av.error.FFmpegError):
            return
