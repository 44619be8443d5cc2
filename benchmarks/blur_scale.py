"""Is each blur as wide relative to the face at every size? The degradations of benchmarks/big_faces.py drawn with the
same random numbers at every face size: if a blur scales with the face, the blurred face's PSNR over the face stays
the same from size to size.

Usage:
    python benchmarks/blur_scale.py ../shared/data/synthface-512 --faces 8 --out results/blur_scale.md

For each family and size, the first FACES test faces of results/bakeoff/split.json are placed in portrait photos as
benchmarks/big_faces.py does (one photo layout for every size) and degraded with one seed per face for every size
(big_faces.py seeds per face and size, so its rows differ in their draws); no net runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from big_faces import FAMILIES, _psnr, degrade, portrait  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path, help="the 512 px SynthFace folder (images/*.webp); masks are read from the "
                                             "256 px folder beside it")
    ap.add_argument("--split", type=Path, default=Path("results/bakeoff/split.json"))
    ap.add_argument("--faces", dest="n", type=int, default=8, help="test faces")
    ap.add_argument("--sizes", default="256,512,768,1024,1536")
    ap.add_argument("--families", default="defocus,shake,motion")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write the table (markdown) here")
    args = ap.parse_args()
    ids = [int(i) for i in json.loads(args.split.read_text())["test"][: args.n]]
    sizes = [int(s) for s in args.sizes.split(",")]
    families = args.families.split(",")
    masks_dir = args.faces.parent / "synthface" / "masks"
    lines = ["| family | " + " | ".join(f"{s} px" for s in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for family in families:
        cells = []
        for size in sizes:
            psnrs = []
            for k, fid in enumerate(ids):
                face = cv2.imread(str(args.faces / "images" / f"{fid:05d}.webp"))[:, :, ::-1]
                mask = cv2.imread(str(masks_dir / f"{fid:05d}.png"), cv2.IMREAD_GRAYSCALE)
                sharp, where = portrait(face, mask, size, np.random.default_rng([args.seed, k]))
                given = degrade(sharp, family, size, np.random.default_rng([args.seed, k, FAMILIES.index(family)]))
                psnrs.append(_psnr(given, sharp, where))
            cells.append(f"{np.mean(psnrs):.2f}")
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines += ["", f"Mean PSNR (dB) over the face of {len(ids)} test faces, the same draws at every size (seed "
              f"{args.seed}); a blur that scales with the face gives the same figure at every size."]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
