"""Faces cut by the frame edge: found, and restored, with and without the detector's mirrored border.

Usage:
    python benchmarks/cut_faces.py ../shared/data/synthface --faces 80 --out results/cut_faces.md \
        --picture results/cut_faces.jpg

Each of the first FACES test faces of results/bakeoff/split.json (held out from training) is shrunk to SIZE px, put
on a canvas with its own border colours stretched around it, and the canvas is cut so that CUT of the face's
detector box (found on the whole, sharp canvas) lies left of the frame: that is the sharp photo. It is degraded
(seeded per face, numpy.random.default_rng(k)) with each family asked for. The pipeline runs on the whole photo with
the detector as shipped (mirrored border) and with none (``edge=0``). For each photo: was the face found, and PSNR
over the visible part of the face's square against the sharp photo, as given and as restored.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import cv2
import numpy as np

from smfd import load_pipeline
from smfd.degrade import make_degradation
from smfd.infer.faces import EDGE, FaceDetector
from smfd.infer.pipeline import NoFaceError


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    mse = float(((a[where].astype(np.float64) - b[where].astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def cut_photo(face: np.ndarray, size: int, cut: float, detector: FaceDetector) -> tuple[np.ndarray, np.ndarray] | None:
    """The sharp photo with ``cut`` of the face's box left of the frame, and the visible face square (a mask);
    None when the whole face is not found once."""
    face = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    m = size // 5
    canvas = cv2.copyMakeBorder(face, m, m, m, size, cv2.BORDER_REPLICATE)
    found = detector.detect(canvas)
    if len(found) != 1:
        return None
    x = round(found[0].box[0] + cut * found[0].size)
    where = np.zeros(canvas.shape[:2], bool)
    where[m:m + size, m:m + size] = True
    return np.ascontiguousarray(canvas[:, x:]), where[:, x:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path, help="SynthFace-style folder (images/)")
    ap.add_argument("--split", type=Path, default=Path("results/bakeoff/split.json"))
    ap.add_argument("--faces", dest="n", type=int, default=80, help="how many test faces")
    ap.add_argument("--size", type=int, default=160, help="face crop side (px); its detector box is about 0.6 of it")
    ap.add_argument("--cut", type=float, default=0.45, help="share of the face's box left of the frame")
    ap.add_argument("--degradations", default="realistic,thesis")
    ap.add_argument("--weights", default="default")
    ap.add_argument("--out", type=Path, help="write the table (markdown) here")
    ap.add_argument("--picture", type=Path, help="blurry | restored | sharp for the first 4 faces found (JPEG)")
    args = ap.parse_args()

    ids = json.loads(args.split.read_text())["test"][: args.n]
    pipe = load_pipeline(args.weights)
    detectors = {"mirrored border (shipped)": FaceDetector("hog"), "none": FaceDetector("hog", edge=0)}
    lines = [f"Command: `python benchmarks/cut_faces.py {args.faces} --faces {args.n} --size {args.size} --cut "
             f"{args.cut:g} --degradations {args.degradations}` (weights {args.weights}, detector hog, mirrored "
             f"border {EDGE:g} of the longer side; {platform.machine()}).", "",
             f"{args.n} held-out test faces at {args.size} px, {args.cut:.0%} of each face's box outside the frame; "
             "PSNR over the visible part of the face's square.", "",
             "| blur | border searched | found | PSNR given → restored (found faces) | made worse |",
             "|---|---|---|---|---|"]
    photos = []  # (k, sharp photo, visible face square), made once for every row
    for k, i in enumerate(ids):
        face = cv2.cvtColor(cv2.imread(str(args.faces / "images" / f"{i}.jpg")), cv2.COLOR_BGR2RGB)
        made = cut_photo(face, args.size, args.cut, detectors["mirrored border (shipped)"])
        if made is not None:
            photos.append((k, *made))
    tiles = []
    for family in args.degradations.split(","):
        degrade = make_degradation(family)
        for label, det in detectors.items():
            pipe.detector = det
            found, gains, total = 0, [], len(photos)
            for k, sharp, where in photos:
                blurry, _ = degrade(sharp, np.random.default_rng(k))
                try:
                    res = pipe.deblur(blurry, mask=False)
                except NoFaceError:
                    continue
                if not any(not f.skipped for f in res.faces):
                    continue
                found += 1
                gains.append((_psnr(blurry, sharp, where), _psnr(res.image, sharp, where)))
                if args.picture and label.startswith("mirrored") and family == args.degradations.split(",")[0] \
                        and len(tiles) < 4:
                    tiles.append(np.concatenate([blurry, res.image, sharp], 1))
            g = np.array(gains).reshape(-1, 2)
            cell = f"{g[:, 0].mean():.2f} → {g[:, 1].mean():.2f}" if len(g) else "-"
            worse = f"{100 * np.mean(g[:, 1] < g[:, 0] - 0.1):.0f} %" if len(g) else "-"
            lines.append(f"| {family} | {label} | {found} of {total} | {cell} | {worse} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text("# Faces cut by the frame edge\n\n" + text + "\n")
    if args.picture and tiles:
        w = max(t.shape[1] for t in tiles)
        grid = np.concatenate([cv2.copyMakeBorder(t, 0, 4, 0, w - t.shape[1], cv2.BORDER_CONSTANT) for t in tiles])
        cv2.imwrite(str(args.picture), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    main()
