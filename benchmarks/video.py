"""Video: flicker, face PSNR over the frames and speed of restoring a clip, against restoring each frame as a photo.

Usage:
    python benchmarks/video.py ../shared/data/synthface --clips 3 --frames 48 --out results/video.md

Each clip (1280x720, 24 frames/s) is a sharp SynthFace test face (its head, mask-feathered) on a procedural
photo-like background (benchmarks/detect.py's), moving along a smooth path while it zooms (face 150 -> 230 px) and
rolls a little (+-6 degrees). The blurry clip blurs every frame with its own kernel (a motion blur whose length,
7-17 px, and angle change from frame to frame, on a small Gaussian), adds sensor noise and is compressed with x264
at CRF 28; it is what smfd reads. Clip k is drawn from numpy.random.default_rng([seed, k]).

Measured on the face only, after undoing its known motion: each frame's face is warped back to a fixed 160 px
face frame (the placement is known exactly) and compared inside the head's mask (eroded, so the paste-back seam
and the background are left out):
- **flicker**: the mean absolute change of that face from one frame to the next (0-255), against the sharp
  clip's own (which is not zero: resampling a moving, zooming face changes pixels too). 1.0x is as steady as
  the sharp clip.
- **PSNR** of the face against the sharp clip's, averaged over the frames.
Restorers: `smfd video` (pipe.deblur_video: detection every 8 frames, landmarks followed between and smoothed
over +-4 frames), the same without smoothing (`--smooth 0`), and each frame restored as a photo (pipe.deblur,
detection on every frame).

Speed (--speed): a 1280x720 clip with one face, written to disk with its audio: frames/s and the seconds per frame
of each stage (decode, detect and track, restore, paste back, encode), on this machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from detect import _background  # noqa: E402

W, H, FPS = 1280, 720, 24
CANON = 160  # the fixed face frame the faces are compared in (px a side)


def _test_ids(faces: Path, n: int) -> list[int]:
    split = Path("results/bakeoff/split.json")
    if split.is_file():
        ids = json.loads(split.read_text())["test"]
    else:
        ids = sorted(int(p.stem) for p in (faces / "images").glob("*.jpg"))
    return [int(i) for i in ids[:: max(1, len(ids) // n)][:n]]


def _motion_kernel(length: float, angle: float, sigma: float) -> np.ndarray:
    size = int(math.ceil(length)) | 1
    k = np.zeros((size + 4, size + 4), np.float32)
    c = (size + 3) / 2
    dx, dy = math.cos(math.radians(angle)) * length / 2, math.sin(math.radians(angle)) * length / 2
    cv2.line(k, (round((c - dx) * 16), round((c - dy) * 16)), (round((c + dx) * 16), round((c + dy) * 16)), 1.0,
             1, cv2.LINE_AA, shift=4)
    k = cv2.GaussianBlur(k, (0, 0), sigma)
    return k / k.sum()


def make_clip(faces: Path, fid: int, frames: int, rng: np.random.Generator, zoom: float = 1.0):
    """Sharp and blurry frames (RGB uint8; the blurry ones before compression) and per frame the 2x3 matrix from
    the 256 px face photo to the frame; plus the canonical mask (CANON px) the faces are compared in. ``zoom``
    scales the face (1: a 150 -> 230 px face; 2: 300 -> 460 px, kept inside the frame)."""
    bg = _background(rng, H, W)
    face = cv2.imread(str(faces / "images" / f"{fid:05d}.jpg"))[:, :, ::-1].astype(np.float32)
    mask = cv2.imread(str(faces / "masks" / f"{fid:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0
    alpha = cv2.GaussianBlur(cv2.dilate(mask.astype(np.float32), np.ones((5, 5))), (0, 0), 3)
    start, end = rng.uniform([250, 200], [400, 330]), rng.uniform([850, 250], [1000, 380])
    phase, angle0 = rng.uniform(0, 2 * np.pi), rng.uniform(0, 180)
    sharp, blurry_in, placements = [], [], []
    for t in range(frames):
        u = t / max(1, frames - 1)
        u = 0.5 - 0.5 * math.cos(math.pi * u)  # eases in and out
        size = (150 + 80 * u) * zoom  # the 256 px photo's head spans about 0.8 of it
        half = 0.625 * size
        centre = np.clip(start + (end - start) * u, half, np.array([W, H]) - half)
        roll = 6 * math.sin(2 * math.pi * t / frames + phase)
        m = cv2.getRotationMatrix2D((127.5, 127.5), roll, size / 256 * 1.25)
        m[:, 2] += centre - 127.5
        warped = cv2.warpAffine(face, m, (W, H), flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(alpha, m, (W, H), flags=cv2.INTER_LINEAR)[..., None]
        img = bg * (1 - a) + warped * a
        sharp.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        k = _motion_kernel(12 + 5 * math.sin(t * 0.9 + phase) + rng.uniform(-1, 1), angle0 + 25 * math.sin(t * 0.5)
                           + rng.uniform(-10, 10), 0.6)
        b = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT) + rng.normal(0, 2.0, img.shape)
        blurry_in.append(np.clip(np.rint(b), 0, 255).astype(np.uint8))
        placements.append(m)
    canon_mask = cv2.erode(cv2.resize(mask.astype(np.uint8), (CANON, CANON), interpolation=cv2.INTER_NEAREST),
                           np.ones((9, 9), np.uint8)) > 0
    return sharp, blurry_in, placements, canon_mask


def canonical(frame: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The face of ``frame`` placed by ``m`` (256 px photo -> frame), warped back to the CANON px face frame."""
    to_frame = np.vstack([m, [0, 0, 1]]) @ np.diag([256 / CANON, 256 / CANON, 1.0])
    inv = np.linalg.inv(to_frame)[:2]
    return cv2.warpAffine(frame, inv, (CANON, CANON), flags=cv2.INTER_AREA).astype(np.float32)


def jitter(matrices: list[np.ndarray | None], placements) -> float:
    """How far the face moves in the aligned crop from one frame to the next (px, mean over the face photo's
    central 128 px): 0 when alignment follows the face exactly. ``matrices``: frame -> crop, None where no face."""
    grid = np.stack(np.meshgrid(np.linspace(64, 192, 9), np.linspace(64, 192, 9)), -1).reshape(-1, 2)
    pos = []
    for a, m in zip(matrices, placements, strict=True):
        if a is None:
            pos.append(None)
            continue
        inner = grid @ m[:, :2].T + m[:, 2]
        pos.append(inner @ a[:, :2].T + a[:, 2])
    moves = [np.linalg.norm(b - a, axis=1).mean() for a, b in zip(pos, pos[1:], strict=False)
             if a is not None and b is not None]
    return float(np.mean(moves)) if moves else float("nan")


def scores(frames: list[np.ndarray], sharp: list[np.ndarray], placements, mask: np.ndarray) -> dict:
    faces = [canonical(f, m) for f, m in zip(frames, placements, strict=True)]
    refs = [canonical(f, m) for f, m in zip(sharp, placements, strict=True)]
    flicker = np.mean([np.abs(b - a)[mask].mean() for a, b in zip(faces, faces[1:], strict=False)])
    mse = [((f - r)[mask] ** 2).mean() for f, r in zip(faces, refs, strict=True)]
    return {"flicker": float(flicker), "psnr": float(np.mean([10 * np.log10(255**2 / max(e, 1e-10)) for e in mse]))}


def _write_clip(path: Path, frames: list[np.ndarray], audio: bool = True) -> list[np.ndarray]:
    """Store the blurry clip as a camera would (x264, CRF 28), with a tone; returns its frames as decoded."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS, options={"crf": "28", "preset": "medium"})
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        a = out.add_stream("aac", rate=48000) if audio else None
        for img in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            n = 48000 * len(frames) // FPS
            tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
            for s in range(0, n, 1024):
                f = av.AudioFrame.from_ndarray(tone[None, s:s + 1024], format="fltp", layout="mono")
                f.sample_rate, f.pts, f.time_base = 48000, s, Fraction(1, 48000)
                for p in a.encode(f):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _nets(pipe) -> str:
    """The bundle's nets and the first digits of their SHA-256 (which weights made the table)."""
    files = pipe.manifest.get("files", {}).values()
    return ", ".join(f"{e.get('model_name', '?')} {e.get('sha256', '')[:12]}" for e in files)


def _fused_name(n: int, tolerance: float) -> str:
    return f"smfd video, fused over +-{n} (tolerance {tolerance:g})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("faces", type=Path)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default="default")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--fuse", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                    help="fusion windows to compare (frames each side)")
    ap.add_argument("--tolerance", type=lambda v: [float(x) for x in v.split(",")], default=[20.0],
                    help="fusion tolerances to compare (0-255; smfd.infer.video.FUSE_TOLERANCE)")
    ap.add_argument("--speed", action="store_true", help="also time a 1280x720 clip written to disk")
    ap.add_argument("--speed-frames", type=int, default=96)
    ap.add_argument("--speed-rounds", type=int, default=1)
    ap.add_argument("--speed-zoom", type=float, default=1.0, help="the speed clip's face, times the quality clips'")
    ap.add_argument("--work-sizes", type=_work_sizes, default=_work_sizes("512"),
                    help="largest working sizes the speed run compares (e.g. 256,512; the shipped default is 512); "
                         "SIZE:once restores big faces once instead of as given and mirrored (--no-mirror)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from smfd.infer.faces import alignment_matrix
    from smfd.infer.pipeline import load_pipeline

    pipe = load_pipeline(args.weights, precision=args.precision)
    methods = ("blurry", "each frame as a photo", "followed faces, not smoothed, not fused",
               "followed and smoothed, not fused", "smfd video (default: smoothed, fused over +-3)",
               *(_fused_name(n, t) for n in args.fuse for t in args.tolerance))
    rows: dict[str, list[dict]] = {m: [] for m in ("sharp", *methods)}
    tmp = Path(tempfile.mkdtemp())
    if not args.clips:  # speed only
        sizes = ",".join(f"{c}" if m else f"{c}:once" for _, c, m in args.work_sizes)
        text = "\n".join([f"Command: `python benchmarks/video.py {args.faces} --clips 0 --speed --speed-frames "
                          f"{args.speed_frames} --speed-rounds {args.speed_rounds} --speed-zoom {args.speed_zoom:g} "
                          f"--work-sizes "
                          f"{sizes}` (weights {args.weights}: {_nets(pipe)})", "",
                          *speed(pipe, args, tmp)]) + "\n"
        print(text)
        if args.out:
            args.out.write_text(text)
        return
    for k, fid in enumerate(_test_ids(args.faces, args.clips)):
        rng = np.random.default_rng([args.seed, k])
        sharp, blurry, placements, mask = make_clip(args.faces, fid, args.frames, rng)
        src = tmp / f"clip{k}.mp4"
        blurry = _write_clip(src, blurry, audio=False)
        def run(src=src, **options):
            frames = list(pipe.deblur_video(src, **options))
            # jitter in the 256 px crop's pixels, whatever side each face was aligned at
            return [f.image for f in frames], [alignment_matrix(f.faces[0].landmarks, 256) if f.faces else None
                                               for f in frames]

        (default, a_smooth), (smoothed, _), (raw, a_raw) = run(), run(fuse=0), run(smooth=0, fuse=0)
        fused = {(n, t): run(fuse=n, fuse_tolerance=t)[0] for n in args.fuse for t in args.tolerance}
        photos, a_photo = [], []
        for img in blurry:
            try:
                result = pipe.deblur(img, mask=False)
                photos.append(result.image)
                a_photo.append(alignment_matrix(result.faces[0].landmarks, 256))
            except ValueError:  # no face found in this frame: it stays as it is
                photos.append(img)
                a_photo.append(None)
        for name, frames in (("sharp", sharp), ("blurry", blurry), ("each frame as a photo", photos),
                             ("followed faces, not smoothed, not fused", raw),
                             ("followed and smoothed, not fused", smoothed),
                             ("smfd video (default: smoothed, fused over +-3)", default),
                             *((_fused_name(*key), v) for key, v in fused.items())):
            rows[name].append(scores(frames, sharp, placements, mask))
            matrices = {"followed and smoothed, not fused": a_smooth, "followed faces, not smoothed, not fused": a_raw,
                        "each frame as a photo": a_photo}
            rows[name][-1]["jitter"] = jitter(matrices[name], placements) if name in matrices else float("nan")
        print(f"clip {k} (face {fid}): " + ", ".join(
            f"{n} {rows[n][-1]['flicker']:.2f}/{rows[n][-1]['psnr']:.2f}/{rows[n][-1]['jitter']:.2f}" for n in rows),
            flush=True)
    base = np.mean([r["flicker"] for r in rows["sharp"]])
    lines = [
        "# Video: flicker and face PSNR over the frames",
        "",
        f"Command: `python benchmarks/video.py {args.faces} --clips {args.clips} --frames {args.frames}"
        f"{' --fuse ' + ','.join(map(str, args.fuse)) if args.fuse else ''}"
        f"{' --tolerance ' + ','.join(f'{t:g}' for t in args.tolerance) if args.fuse else ''}"
        f"{' --speed' if args.speed else ''}` (seed {args.seed}; weights {args.weights}: "
        f"{_nets(pipe)}; precision {pipe.precision}).",
        f"{args.clips} clips of {args.frames} frames, 1280x720 at {FPS} frames/s; faces compared in a {CANON} px face "
        "frame after undoing their known motion (see the script's docstring).",
        "",
        "| clip | face flicker (0-255) | against the sharp clip's | face PSNR (dB) | alignment jitter (px) |",
        "|---|---|---|---|---|",
    ]
    for name, rs in rows.items():
        f = np.mean([r["flicker"] for r in rs])
        j = np.mean([r["jitter"] for r in rs])
        psnr = "(itself)" if name == "sharp" else f"{np.mean([r['psnr'] for r in rs]):.2f}"
        lines.append(f"| {name} | {f:.2f} | {f / base:.2f}x | {psnr} | "
                     f"{'-' if np.isnan(j) else f'{j:.2f}'} |")
    if args.speed:
        lines += ["", *speed(pipe, args, tmp)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


def _work_sizes(value: str) -> list[tuple[str, int, bool]]:
    """``--work-sizes``: sizes of at least 256, each optionally ``:once``; (label, size, mirror_big) each."""
    ways = []
    for way in (x.strip() for x in value.split(",")):
        cap, colon, once = way.partition(":")
        if not cap.isdigit() or int(cap) < 256 or (colon and once != "once"):
            raise argparse.ArgumentTypeError(f"expected SIZE or SIZE:once (SIZE at least 256), got {way!r}")
        ways.append((f"{cap} px" + (", each face once (--no-mirror)" if once else ""), int(cap), not once))
    return ways


def speed(pipe, args, tmp: Path) -> list[str]:
    """Frames/s of one 1280x720 clip written to disk, once per largest working size in ``args.work_sizes`` (the
    sizes alternate in each of ``args.speed_rounds`` rounds; the median round counts)."""
    rng = np.random.default_rng([args.seed, 99])
    _, blurry, _, _ = make_clip(args.faces, _test_ids(args.faces, 1)[0], args.speed_frames, rng, args.speed_zoom)
    src = tmp / "speed.mp4"
    _write_clip(src, blurry)
    runs: dict[str, list[tuple[float, int, dict, int]]] = {w[0]: [] for w in args.work_sizes}
    sizes: dict[str, set] = {w[0]: set() for w in args.work_sizes}
    for _ in range(args.speed_rounds):
        for k, (way, cap, mirror) in enumerate(args.work_sizes):
            pipe.max_work_size, pipe.mirror_big = cap, mirror
            out = tmp / f"out-{k}.mp4"
            out.unlink(missing_ok=True)
            job = pipe.deblur_video(src, out)
            t, n = time.perf_counter(), 0
            for frame in job:
                n += 1
                sizes[way].update(pipe.working_size((s, s))[0] for s in
                                  (pipe.crop_size(f.landmarks) for f in frame.faces))
            runs[way].append((time.perf_counter() - t, n, dict(job.stats), job.detections))
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    lines = ["## Speed", "",
             f"A 1280x720 clip of {args.speed_frames} frames with one face ({150 * args.speed_zoom:.0f}-"
             f"{230 * args.speed_zoom:.0f} px), with audio, written to "
             f"disk, {args.speed_rounds} round(s) alternating the largest working size ({os.cpu_count()} cores: "
             f"{cpu}; torch threads {__import__('torch').get_num_threads()}; precision {pipe.precision}):", "",
             "| largest working size | faces restored at (px) | frames/s | per frame, ms |", "|---|---|---|---|"]
    for way, rs in runs.items():
        total, n, stats, detections = sorted(rs, key=lambda r: r[0])[len(rs) // 2]
        split = ", ".join(f"{stage} {1000 * s / n:.0f}" for stage, s in stats.items())
        lines.append(f"| {way} | {', '.join(map(str, sorted(sizes[way])))} | **{n / total:.2f}** | {split} "
                     f"(detection ran {detections} times) |")
    return lines


if __name__ == "__main__":
    main()
