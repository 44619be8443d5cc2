"""Face detectors on faces of known size, roll, yaw and cut by the frame edge: recall, false detections, time.

Usage:
    python benchmarks/detect.py ../shared/data/synthface --canvases 48 --out results/detect.md

FACES is a SynthFace-style folder: images/{id:05d}.jpg (256 px, FFHQ-aligned), masks/{id:05d}.png (0 =
background) and landmarks.npz (``five``: eye centres, nose tip, mouth corners). Each canvas (1024x768) is a
procedural photo-like background (coloured 1/f noise, shaded shapes, lines) with patches of the faces'
own photo backgrounds (non-face regions: up to 6 corners of face photos with under 2 % head in them) and
5 heads pasted on it (their mask, feathered), then a little noise and JPEG. Canvas k is drawn with
numpy.random.default_rng([seed, k]): the same seed gives the same canvases.

A face's size is 2.4 x the distance between its eye centres, which is the width of dlib's HOG box for it.
Faces come in three kinds per canvas: 2 "size" faces (20-400 px, roll within +-10 degrees), 2 "roll" faces
(48-200 px, |roll| 0-60 degrees) and 1 "cut" face (48-200 px, its centre 10-30 % of its size from an edge, so
20-40 % of it lies outside). Half the faces are drawn from the 10 % most turned heads in the folder; yaw is
bucketed by the nose tip's offset from the eyes' midpoint over the eye distance (0.3 is about 30 degrees).

A detection finds a face when its centre is within half the face's size of the face's centre and its size is
within 0.5-2x; detections matching no face are false; a second detection of a face is a duplicate (counted
apart). Landmarks: eye centres (mean of dlib's two corners) against the true ones, over the eye distance;
"aligned" means both within 0.25 of it. Time is wall-clock per megapixel of canvas, on this machine.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from smfd.infer.faces import DETECTORS, EDGE, FaceDetector

SIZE_BUCKETS = ((20, 24), (24, 32), (32, 40), (40, 64), (64, 128), (128, 256), (256, 401))
ROLL_BUCKETS = ((0, 15), (15, 30), (30, 45), (45, 61))
YAW_BUCKETS = ((0.0, 0.15), (0.15, 0.3), (0.3, 9.0))
CANVAS = (768, 1024)  # (h, w)
FACE_PER_IOD = 2.4


@dataclass(frozen=True)
class Placed:
    """One face on a canvas: face ``id``, ``size`` (px), ``roll`` (degrees, counter-clockwise), ``centre``."""

    id: int
    kind: str
    size: float
    roll: float
    centre: tuple[float, float]


@dataclass(frozen=True)
class Scene:
    faces: tuple[Placed, ...]
    seed: tuple[int, int]


def _yaw(five: np.ndarray) -> np.ndarray:
    iod = np.linalg.norm(five[:, 1] - five[:, 0], axis=1)
    return np.abs(five[:, 2, 0] - (five[:, 0, 0] + five[:, 1, 0]) / 2) / iod


def sample_scene(rng: np.random.Generator, k: int, seed: int, ids: np.ndarray, turned: np.ndarray) -> Scene:
    h, w = CANVAS
    wanted = []
    for j in range(2):
        lo, hi = SIZE_BUCKETS[(2 * k + j) % len(SIZE_BUCKETS)]
        wanted.append(("size", float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), rng.uniform(-10, 10)))
    for j in range(2):
        lo, hi = ROLL_BUCKETS[(2 * k + j) % len(ROLL_BUCKETS)]
        wanted.append(("roll", float(np.exp(rng.uniform(np.log(48), np.log(200)))),
                       rng.choice([-1, 1]) * rng.uniform(lo, min(hi, 60))))
    wanted.append(("cut", float(np.exp(rng.uniform(np.log(48), np.log(200)))), rng.uniform(-10, 10)))
    placed: list[Placed] = []
    for kind, size, roll in sorted(wanted, key=lambda t: -t[1]):
        fid = int(rng.choice(turned) if rng.random() < 0.5 else rng.choice(ids))
        for _ in range(100):
            if kind == "cut":
                d = rng.uniform(0.1, 0.3) * size
                edge = rng.integers(4)
                x, y = rng.uniform(size, w - size), rng.uniform(size, h - size)
                x, y = [(d, y), (w - d, y), (x, d), (x, h - d)][edge]
            else:
                x, y = rng.uniform(size / 2, w - size / 2), rng.uniform(size / 2, h - size / 2)
            if all(np.hypot(x - p.centre[0], y - p.centre[1]) > 0.9 * (size + p.size) for p in placed):
                placed.append(Placed(fid, kind, size, float(roll), (float(x), float(y))))
                break
    return Scene(tuple(placed), (seed, k))


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.float32)
    for octave in range(1, 7):  # coloured 1/f noise
        s = 2 ** octave
        noise = rng.normal(0, 1, (s * h // w + 1, s, 3)).astype(np.float32)
        img += cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC) * (60 / octave)
    img += rng.uniform(40, 200, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img += ((xx / w - 0.5) * rng.uniform(-80, 80) + (yy / h - 0.5) * rng.uniform(-80, 80))[..., None]
    for _ in range(rng.integers(4, 10)):  # shaded shapes: walls, furniture, windows
        mask = np.zeros((h, w), np.float32)
        pts = (rng.random((rng.integers(3, 7), 2)) * [w, h]).astype(np.int32)
        cv2.fillPoly(mask, [cv2.convexHull(pts)], 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.5, 3))[..., None]
        shade = rng.uniform(0, 255, 3) + ((xx / w) * rng.uniform(-60, 60))[..., None]
        img = img * (1 - mask) + shade * mask
    for _ in range(rng.integers(5, 20)):
        p = (rng.random(4) * [w, h, w, h]).astype(int)
        cv2.line(img, (p[0], p[1]), (p[2], p[3]), tuple(float(v) for v in rng.uniform(0, 255, 3)),
                 int(rng.integers(1, 6)), cv2.LINE_AA)
    return img


def _non_face_patch(rng: np.random.Generator, faces: Path, ids: np.ndarray) -> np.ndarray | None:
    """A corner of a face photo that holds no head (its mask is all background), or None."""
    fid = int(rng.choice(ids))
    mask = cv2.imread(str(faces / "masks" / f"{fid:05d}.png"), cv2.IMREAD_GRAYSCALE)
    y, x = [(0, 0), (0, 176), (176, 0), (176, 176)][rng.integers(4)]
    if (mask[y:y + 80, x:x + 80] > 0).mean() > 0.02:
        return None
    img = cv2.imread(str(faces / "images" / f"{fid:05d}.jpg"))[:, :, ::-1]
    return img[y:y + 80, x:x + 80].astype(np.float32)


def render(scene: Scene, faces: Path, five: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """The canvas (RGB uint8) and, per face, its truth: centre, size, roll, eye centres, kind, yaw."""
    rng = np.random.default_rng([*scene.seed, 1])
    h, w = CANVAS
    img = _background(rng, h, w)
    patches = 0
    for _ in range(80):
        patch = _non_face_patch(rng, faces, ids)
        if patch is None or patches == 6:
            continue
        patches += 1
        s = int(rng.uniform(150, 400))
        patch = cv2.resize(patch, (s, s), interpolation=cv2.INTER_CUBIC)
        x, y = int(rng.uniform(0, w - s)), int(rng.uniform(0, h - s))
        img[y:y + s, x:x + s] = patch
    truth = []
    for p in scene.faces:
        face = cv2.imread(str(faces / "images" / f"{p.id:05d}.jpg"))[:, :, ::-1].astype(np.float32)
        mask = cv2.imread(str(faces / "masks" / f"{p.id:05d}.png"), cv2.IMREAD_GRAYSCALE)
        alpha = cv2.GaussianBlur(cv2.dilate((mask > 0).astype(np.float32), np.ones((5, 5))), (0, 0), 3)
        pts = five[p.id].astype(np.float32)
        iod = float(np.linalg.norm(pts[1] - pts[0]))
        k = p.size / (FACE_PER_IOD * iod)
        if k < 1:  # shrink with area averaging first (as a camera would), then turn and place
            n = max(2, round(256 * k))
            face = cv2.resize(face, (n, n), interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, (n, n), interpolation=cv2.INTER_AREA)
            kk, rot_scale = n / 256, 1.0
        else:
            kk, rot_scale = 1.0, k
        c0 = (pts.mean(0) + 0.5) * kk - 0.5
        m = cv2.getRotationMatrix2D((float(c0[0]), float(c0[1])), p.roll, rot_scale)
        m[:, 2] += np.array(p.centre) - c0
        warped = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        img = img * (1 - a) + warped * a
        eyes = ((pts[:2] + 0.5) * kk - 0.5) @ m[:, :2].T + m[:, 2]
        truth.append({"kind": p.kind, "size": p.size, "roll": abs(p.roll), "centre": np.array(p.centre),
                      "eyes": eyes, "yaw": float(_yaw(pts[None])[0])})
    img += rng.normal(0, 2.0, img.shape)
    ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8)[:, :, ::-1],
                           [cv2.IMWRITE_JPEG_QUALITY, 90])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]), truth


def match(faces, truth: list[dict]) -> tuple[list[dict | None], int, int]:
    """Per true face its matched detection's result (None: missed), false detections, duplicates."""
    hits: list[dict | None] = [None] * len(truth)
    false = dup = 0
    for f in sorted(faces, key=lambda f: -f.score):
        c = np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2])
        near = [(np.linalg.norm(c - t["centre"]), i) for i, t in enumerate(truth)
                if np.linalg.norm(c - t["centre"]) < 0.5 * t["size"] and 0.5 < f.size / t["size"] < 2]
        if not near:
            false += 1
            continue
        i = min(near)[1]
        if hits[i] is not None:
            dup += 1
            continue
        t = truth[i]
        iod = np.linalg.norm(t["eyes"][1] - t["eyes"][0])
        pred = np.stack([f.landmarks[2:4].mean(0), f.landmarks[0:2].mean(0)])  # image-left, image-right eye
        err = float(np.linalg.norm(pred - t["eyes"], axis=1).max() / iod)
        hits[i] = {"err": err}
    return hits, false, dup


def _pct(hit: list[bool]) -> str:
    return f"{100 * np.mean(hit):.0f} ({len(hit)})" if hit else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path, help="face folder: images/, masks/, landmarks.npz")
    ap.add_argument("--canvases", type=int, default=48)
    ap.add_argument("--slow-canvases", type=int, default=12, help="canvases for the cnn detector (slow)")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--edges", default=f"{EDGE:g}",
                    help="mirrored borders (share of the longer side) to run each detector with, e.g. 0,0.06,0.1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write the tables (markdown) here")
    args = ap.parse_args()

    lm = np.load(args.faces / "landmarks.npz")
    ids, five = lm["ids"].astype(int), lm["five"].astype(np.float32)
    five_by_id = np.zeros((ids.max() + 1, 5, 2), np.float32)
    five_by_id[ids] = five
    yaw = _yaw(five)
    turned = ids[yaw >= np.quantile(yaw, 0.9)]
    scenes = [sample_scene(np.random.default_rng([args.seed, k]), k, args.seed, ids, turned)
              for k in range(args.canvases)]
    rendered = [render(s, args.faces, five_by_id, ids) for s in scenes]
    mp = CANVAS[0] * CANVAS[1] / 1e6

    rows = []
    for name, edge in [(d, float(e)) for d in args.detectors.split(",") for e in args.edges.split(",")]:
        det = FaceDetector(name, edge=edge)
        n = min(len(rendered), args.slow_canvases) if DETECTORS[name].kind == "cnn" else len(rendered)
        truth, hits, false, dup, secs = [], [], 0, 0, 0.0
        for img, tr in rendered[:n]:
            t0 = time.perf_counter()
            faces = det.detect(img)
            secs += time.perf_counter() - t0
            h, fa, du = match(faces, tr)
            truth += tr
            hits += h
            false, dup = false + fa, dup + du
        label = name if edge == EDGE else f"{name}, edge {edge:g}"
        rows.append({"name": label, "truth": truth, "hits": hits, "false": false, "dup": dup, "mp": n * mp,
                     "ms_mp": 1000 * secs / (n * mp), "canvases": n})
        print(f"{label}: {n} canvases, {sum(h is not None for h in hits)}/{len(hits)} found, {false} false, "
              f"{1000 * secs / (n * mp):.0f} ms/MP", flush=True)

    def recall(r, keep) -> str:
        return _pct([h is not None for t, h in zip(r["truth"], r["hits"], strict=True) if keep(t)])

    upright = lambda t: t["kind"] != "cut" and t["roll"] < 15  # noqa: E731
    lines = [f"Canvases {CANVAS[1]}x{CANVAS[0]}, seed {args.seed}; cnn on the first {args.slow_canvases}. "
             f"Recall in % (faces). {platform.processor() or platform.machine()}, {platform.python_version()}.",
             "", "**Recall by size** (upright faces, |roll| < 15°, size in px):", "",
             "| detector | " + " | ".join(f"{lo}-{hi - 1 if hi == 401 else hi}" for lo, hi in SIZE_BUCKETS) + " |",
             "|---" * (len(SIZE_BUCKETS) + 1) + "|"]
    for r in rows:
        cells = [recall(r, lambda t, lo=lo, hi=hi: upright(t) and lo <= t["size"] < hi) for lo, hi in SIZE_BUCKETS]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    lines += ["", "**Recall by roll, yaw and frame edge** (faces of 48 px and more; yaw: upright faces; cut: "
              "20-40 % outside the frame), **landmarks**, **false detections** and **time**:", "",
              "| detector | " + " | ".join(f"roll {lo}-{hi - 1 if hi == 61 else hi}°" for lo, hi in ROLL_BUCKETS)
              + " | " + " | ".join(f"yaw {lo}-{hi}" if hi < 9 else f"yaw {lo}+" for lo, hi in YAW_BUCKETS)
              + " | cut | aligned, cut | aligned, roll ≥ 30° | false /MP | duplicates | ms/MP |",
              "|---" * (len(ROLL_BUCKETS) + len(YAW_BUCKETS) + 7) + "|"]
    big = lambda t: t["size"] >= 48  # noqa: E731
    for r in rows:
        cells = [recall(r, lambda t, lo=lo, hi=hi: big(t) and t["kind"] != "cut" and lo <= t["roll"] < hi)
                 for lo, hi in ROLL_BUCKETS]
        cells += [recall(r, lambda t, lo=lo, hi=hi: big(t) and upright(t) and lo <= t["yaw"] < hi)
                  for lo, hi in YAW_BUCKETS]
        cells.append(recall(r, lambda t: t["kind"] == "cut"))
        cells.append(_pct([h["err"] < 0.25 for t, h in zip(r["truth"], r["hits"], strict=True)
                           if h and t["kind"] == "cut"]))
        errs = [h["err"] for t, h in zip(r["truth"], r["hits"], strict=True) if h and t["roll"] >= 30]
        cells.append(_pct([e < 0.25 for e in errs]))
        cells += [f"{r['false'] / r['mp']:.2f}", str(r["dup"]), f"{r['ms_mp']:.0f}"]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
