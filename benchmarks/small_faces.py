"""Small faces in photos: is restoring them a gain? Sets the pipeline's smallest face (``min_face``) by measurement.

Usage:
    python benchmarks/small_faces.py ../shared/data/synthface --canvases 8 --out results/small_faces.md

For each face size (24-128 px across), canvases of 1024x768 hold 6 upright faces of that size (SynthFace test
faces, pasted with benchmarks/detect.py's renderer on its photo-like backgrounds): that is the sharp photo. The
photo a user has is that one as a small camera or a messaging app stores it: a slight blur (Gaussian sigma
0.5-1.2 px), sensor noise (sigma 1-4) and JPEG at quality 35-75, drawn per canvas from
numpy.random.default_rng([seed, size, k]).

The pipeline runs on the whole photo with ``min_face=0`` (every face it finds is restored) and the chosen
detector; for each face it finds, PSNR over the face's square (0.8 of its size, centred) against the sharp photo,
for the photo as given and as restored. Per size: faces found, the mean gain (dB) and the share made worse (a
loss over 0.1 dB). ``min_face`` is the smallest size from which every size gains on average and makes no more
faces worse than the sizes of 48 px and up (the smallest restored before) do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from detect import Placed, Scene, render  # noqa: E402

SIZES = (24, 32, 40, 48, 64, 96, 128)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.5, 1.2))
    x = np.clip(np.rint(x + rng.normal(0, rng.uniform(1, 4), x.shape)), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", x[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 76))])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path)
    ap.add_argument("--canvases", type=int, default=8, help="canvases per size (6 faces each)")
    ap.add_argument("--weights", default="default")
    ap.add_argument("--detector", default="hog-small")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from smfd.infer.pipeline import NoFaceError, load_pipeline

    pipe = load_pipeline(args.weights, min_face=0, detector=args.detector, precision=args.precision)
    lm = np.load(args.faces / "landmarks.npz")
    ids, five = lm["ids"].astype(int), lm["five"].astype(np.float32)
    five_by_id = np.zeros((ids.max() + 1, 5, 2), np.float32)
    five_by_id[ids] = five
    split = Path("results/bakeoff/split.json")
    test = np.array(json.loads(split.read_text())["test"], int) if split.is_file() else ids
    rows = []
    for size in SIZES:
        found, gains = 0, []
        total = 0
        for k in range(args.canvases):
            rng = np.random.default_rng([args.seed, size, k])
            placed = tuple(Placed(int(rng.choice(test)), "size", float(size), float(rng.uniform(-5, 5)),
                                  (170.0 + 340 * (j % 3), 200.0 + 370 * (j // 3))) for j in range(6))
            sharp, truth = render(Scene(placed, (args.seed, 1000 * size + k)), args.faces, five_by_id, ids)
            photo = degrade(sharp, rng)
            try:
                result = pipe.deblur(photo, mask=False)
                faces = result.faces
            except NoFaceError:
                result, faces = None, []
            for t in truth:
                total += 1
                hit = [f for f in faces if np.hypot(*(np.array(f.landmarks).mean(0) - t["centre"])) < 0.5 * size]
                if not hit or result is None:
                    continue
                found += 1
                half = max(2, round(0.4 * size))
                cx, cy = np.round(t["centre"]).astype(int)
                box = (slice(cy - half, cy + half), slice(cx - half, cx + half))
                gains.append(_psnr(result.image[box], sharp[box]) - _psnr(photo[box], sharp[box]))
        g = np.array(gains)
        rows.append({"size": size, "faces": total, "found": found, "gain": float(g.mean()) if len(g) else np.nan,
                     "worse": float((g < -0.1).mean()) if len(g) else np.nan})
        print(f"{size} px: found {found}/{total}, gain {rows[-1]['gain']:+.2f} dB, worse {rows[-1]['worse']:.0%}",
              flush=True)
    # what restoring was already trusted with (48 px and up, the smallest face before): its worst share made worse
    bar = max(r["worse"] for r in rows if r["size"] >= 48)
    ok = [r["size"] for r in rows if r["gain"] > 0 and r["worse"] <= bar]
    smallest = next((s for s in SIZES if all(x in ok for x in SIZES if x >= s)), None)
    lines = [
        "# Small faces: does restoring them gain?",
        "",
        f"Command: `python benchmarks/small_faces.py {args.faces} --canvases {args.canvases} --detector "
        f"{args.detector} --weights {args.weights}` (seed {args.seed}, precision {pipe.precision}).",
        "",
        "| face size (px) | faces | found | PSNR gain (dB) | made worse |",
        "|---|---|---|---|---|",
        *(f"| {r['size']} | {r['faces']} | {r['found'] / r['faces']:.0%} | {r['gain']:+.2f} | {r['worse']:.0%} |"
          for r in rows),
        "",
        f"Smallest size from which every size gains on average and makes no more faces worse than the sizes of "
        f"48 px and up do (at most {bar:.0%}): {f'{smallest} px' if smallest else 'none'}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
