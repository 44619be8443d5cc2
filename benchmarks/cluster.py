"""Whole photos through one local process and through Ray (`smfd deblur --ray`'s runner) with 1 and 2 one-thread
actors: files/s and faces/s with start-up included, start-up, peak memory per process.

Usage:
    python benchmarks/cluster.py --photos 200 --clip-frames 96 --out results/cluster.md

The photos (1024x768 JPEGs, quality 90) are a procedural photo-like background (benchmarks/detect.py's) with one
or two of the bundled sample faces (every other photo has two), each 180-260 px and lightly blurred; photo k is
drawn from numpy.random.default_rng([seed, k]). Each way runs in a fresh process, as a user would start it, on the
same folder into an empty output folder, with the shipped weights:
- **local**: `python -m smfd deblur IN -o OUT` (torch's default threads: every core); **local1** the same with
  `OMP_NUM_THREADS=1` (one torch thread, as each actor has);
- **ray N**: `smfd.cli.cluster.run_on_ray` with N actors of one CPU and one torch thread each, on a local Ray
  instance started by the call (the driver only gathers a one-line report per photo; the actors write).
Wall time is the process's, from its start to its exit (Python start, imports, Ray and actors, pipeline load).
Start-up: for local, a process that only imports smfd and loads the pipeline and detector; for Ray, the runner's
own measure (from the call to its first result, less that photo's time). Files/s after start-up: the files over
the time left once start-up is taken away (local: the wall time less the separate start-up; Ray: the call's time
less its start-up, so Python's own start and Ray's shut-down are left out too). Peak memory: the local process's maximum
resident set (wait4); each actor's and the driver's own (getrusage in each process).

``--clip-frames N`` also times one clip (1280x720, 24 frames/s, H.264, N frames: one sample face drifting and
slowly zooming, 200-300 px, lightly blurred) through each way on its own: on Ray a clip is one call, so it runs on
one actor whatever the pool; the table gives its frames/s with start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from detect import _background  # noqa: E402

W, H = 1024, 768

RAY_DRIVER = """
import json, resource, sys, time
from pathlib import Path
from smfd.cli.cluster import run_on_ray
from smfd.infer.photo_io import output_suffix
from smfd.infer.video import VIDEO_SUFFIXES, output_suffix as clip_suffix
src, out, actors = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
files = sorted(src.iterdir())
suffix = {f: (clip_suffix if f.suffix in VIDEO_SUFFIXES else output_suffix)(f.suffix) for f in files}
s = run_on_ray(files, {f: [out / f"{f.stem}{suffix[f]}"] for f in files}, actors=actors, threads=1,
               progress=False)
print(json.dumps({"written": len(s.written), "faces": s.restored, "failed": len(s.failures), "seconds": s.seconds,
                  "startup_s": s.startup_s, "actors_mb": sorted(s.actors.values()),
                  "driver_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

STARTUP = "import smfd, smfd.cli; p = smfd.load_pipeline(); p.detector"


def make_photos(folder: Path, n: int, seed: int = 0) -> int:
    """``n`` photos with one or two faces each; returns the number of faces placed."""
    from smfd.data import read_image
    from smfd.samples import samples_dir

    faces = [read_image(p) for p in sorted((samples_dir() / "images").glob("*.jpg"))]
    folder.mkdir(parents=True, exist_ok=True)
    placed = 0
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        img = np.clip(_background(rng, H, W), 0, 255).astype(np.uint8)
        count = 1 + k % 2
        for j in range(count):
            side = int(rng.integers(180, 261))
            face = cv2.resize(faces[int(rng.integers(len(faces)))], (side, side), interpolation=cv2.INTER_AREA)
            x = int(rng.integers(0, W // count - side)) + j * W // count
            y = int(rng.integers(0, H - side))
            img[y : y + side, x : x + side] = cv2.GaussianBlur(face, (0, 0), 1.2)
        placed += count
        cv2.imwrite(str(folder / f"photo{k:04d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
    return placed


def make_clip(folder: Path, frames: int, seed: int = 0) -> Path:
    """A 1280x720 H.264 clip of ``frames`` frames with one face; returns its path."""
    import av

    from smfd.data import read_image
    from smfd.samples import samples_dir

    rng = np.random.default_rng([seed, 10**6])
    face = read_image(sorted((samples_dir() / "images").glob("*.jpg"))[0])
    bg = np.clip(_background(rng, 720, 1280), 0, 255).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "clip.mp4"
    with av.open(str(path), "w") as box:
        stream = box.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i in range(frames):
            t = i / max(frames - 1, 1)
            side = int(200 + 100 * t)
            img = bg.copy()
            x, y = int(200 + 600 * t), int(150 + 100 * np.sin(3 * t))
            img[y : y + side, x : x + side] = cv2.GaussianBlur(cv2.resize(face, (side, side)), (0, 0), 1.2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return path


def _timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, str, str, int]:
    """Run ``cmd``; (wall s, peak resident MB of the process, stdout, stderr, exit code)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read(), err.read(), p.returncode


def run_local(src: Path, out: Path, threads: int | None = None) -> dict:
    env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}  # torch's thread count
    wall, peak, _, err, code = _timed([sys.executable, "-m", "smfd", "deblur", str(src), "-o", str(out)], env)
    m = re.search(r"restored (\d+) face\(s\) from (\d+) of", err)  # a folder of photos or of clips
    if code != 0 or not m:
        raise RuntimeError(f"local run failed ({code}): {err[-2000:]}")
    startup, _, _, _, _ = _timed([sys.executable, "-c", STARTUP], env)
    way = "local (1 process, " + (f"{threads} torch thread)" if threads else "torch's default threads: every core)")
    return {"way": way, "wall": wall, "files": int(m.group(2)), "faces": int(m.group(1)), "startup": startup,
            "after_startup": wall - startup, "peak_mb": [peak]}


def run_ray(src: Path, out: Path, actors: int) -> dict:
    wall, _, stdout, err, code = _timed([sys.executable, "-c", RAY_DRIVER, str(src), str(out), str(actors)])
    if code != 0:
        raise RuntimeError(f"ray run failed ({code}): {err[-2000:]}")
    r = json.loads(stdout.strip().splitlines()[-1])
    return {"way": f"Ray, {actors} actor(s) x 1 thread", "wall": wall, "files": r["written"], "faces": r["faces"],
            "startup": r["startup_s"], "after_startup": r["seconds"] - r["startup_s"], "peak_mb": r["actors_mb"],
            "driver_mb": r["driver_mb"]}


def run_way(way: str, src: Path, out: Path) -> dict:
    """One way (local, localN, rayN) over the folder ``src`` into ``out``; prints and returns its row."""
    if way.startswith("local"):
        row = run_local(src, out, int(way.removeprefix("local")) if way != "local" else None)
    else:
        row = run_ray(src, out, int(way.removeprefix("ray")))
    print(json.dumps(row), flush=True)
    return row


def _lscpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return platform.processor()
    keep = ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "L2 cache", "L3 cache")
    return "; ".join(" ".join(line.split()) for line in text.splitlines() if line.split(":")[0].strip() in keep)


def write_report(rows: list[dict], n: int, faces: int, path: Path, note: str, loads: list[str]) -> None:
    import torch

    first = next((r for r in rows if r["way"].startswith("local (1 process, torch's")), rows[0])
    base = first["files"] / first["wall"]  # today's single process is the baseline
    lines = [
        "# smfd deblur on Ray against one local process", "",
        f"`python benchmarks/cluster.py --photos {n}`: {n} whole photos (1024x768 JPEG, {faces} faces: one or two "
        "a photo, 180-260 px, lightly blurred, on a procedural background), the shipped weights, each way in a "
        "fresh process into an empty folder. Rates are over the whole process (start, imports, Ray and its actors, "
        "loading, every photo); start-up is shown apart.", "",
        f"Machine: {_lscpu()}; torch {torch.__version__}, Python {platform.python_version()}.", "",
        (f"**{note}** " if note else "") + "Load average (1, 5, 15 min) before each way: " + ", ".join(loads) + ".",
        "",
        "| way | wall (s) | files/s | faces/s | vs local | start-up (s) | files/s after start-up | "
        "peak memory per process (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rate = r["files"] / r["wall"]
        mem = ", ".join(f"{m:.0f}" for m in r["peak_mb"]) + (f" (driver {r['driver_mb']:.0f})" if "driver_mb" in r
                                                              else "")
        lines.append(f"| {r['way']} | {r['wall']:.1f} | {rate:.2f} | {r['faces'] / r['wall']:.2f} | "
                     f"{rate / base:.2f}x | {r['startup']:.1f} | {r['files'] / r['after_startup']:.2f} | {mem} |")
    path.write_text("\n".join(lines) + "\n")


def clip_table(rows: list[dict], frames: int) -> list[str]:
    """The clip through each way: frames/s with start-up included (the clip's faces: one per frame found)."""
    base = frames / rows[0]["wall"]
    lines = ["", f"One clip (1280x720, {frames} frames, one face of 200-300 px), each way on its own (a clip is one "
             "call on Ray: one actor restores it whatever the pool):", "",
             "| way | wall (s) | frames/s | faces restored | vs the first way | start-up (s) | peak memory (MB) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        mem = ", ".join(f"{m:.0f}" for m in r["peak_mb"])
        lines.append(f"| {r['way']} | {r['wall']:.1f} | {frames / r['wall']:.2f} | {r['faces']} | "
                     f"{frames / r['wall'] / base:.2f}x | {r['startup']:.1f} | {mem} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--ways", default="local,local1,ray1,ray2",
                    help="comma-separated: local (torch's threads), localN (N torch threads), rayN (N actors)")
    ap.add_argument("--out", type=Path, default=Path("results/cluster.md"))
    ap.add_argument("--clip-frames", type=int, default=0, help="also time one 1280x720 clip of this many frames")
    ap.add_argument("--note", default="", help="a sentence on the machine's state, written above the table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="smfd-cluster-") as tmp:
        src = Path(tmp) / "photos"
        faces = make_photos(src, args.photos)
        rows, loads = [], []
        for way in args.ways.split(","):
            loads.append(f"{way} {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            rows.append(run_way(way, src, Path(tmp) / f"out-{way}"))
        clips = []
        if args.clip_frames:
            clip = make_clip(Path(tmp) / "clip", args.clip_frames).parent
            clips = [run_way(way, clip, Path(tmp) / f"clip-{way}") for way in args.ways.split(",")]
    write_report(rows, args.photos, faces, args.out, args.note, loads)
    if clips:
        args.out.write_text(args.out.read_text() + "\n".join(clip_table(clips, args.clip_frames)) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
