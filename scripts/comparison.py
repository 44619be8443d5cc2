"""The comparison picture: test faces blurred by each degradation family, restored by each listed model.

Columns: blurry input, one per ``--model LABEL=PATH[@MASKS]`` (PATH: a run folder, checkpoint, weights file or
bundle folder; MASKS: the mask generator it reads, by default the shipped one), sharp. Rows: ``--faces`` test
faces per ``--degradation``; the PSNR of each restored face is written under it.

Usage: python scripts/comparison.py --model "before: SMFD-UNet=results/previous-weights/smfd_unet.safetensors" \
    --model "now: NAFNet=src/smfd/weights" --split results/bakeoff/split.json -o results/comparison.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from smfd.data import FaceDeblurDataset, FaceFolder, Splits
from smfd.data.io import write_image
from smfd.degrade import make_degradation
from smfd.infer.pipeline import FaceDeblurrer
from smfd.infer.weights import default_weights_dir, load_bundle
from smfd.metrics import psnr_uint8
from smfd.models.io import load_runner
from smfd.report.grid import label_tile, make_grid


def load(spec: str) -> tuple[str, FaceDeblurrer]:
    label, _, rest = spec.partition("=")
    path, _, masks = rest.partition("@")
    if (Path(path) / "manifest.json").is_file():
        mask_net, deblur_net, _ = load_bundle(path)
    else:
        mask_net = load_runner(masks or default_weights_dir() / "mask_generator.safetensors")
        deblur_net = load_runner(path)
    return label, FaceDeblurrer(mask_net, deblur_net, precision="auto")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True, help="LABEL=PATH[@MASK_GENERATOR] (repeatable)")
    ap.add_argument("--data", default="../shared/data/synthface")
    ap.add_argument("--split", required=True, help="split.json whose test faces are shown")
    ap.add_argument("--degradation", action="append", default=None, help="thesis, realistic, ... (repeatable)")
    ap.add_argument("--faces", type=int, default=3, help="faces per degradation")
    ap.add_argument("--first", type=int, default=0, help="index of the first test face shown")
    ap.add_argument("-o", "--out", default="results/comparison.jpg")
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality of the picture (the README's is 85)")
    args = ap.parse_args()
    models = [load(s) for s in args.model]
    folder = FaceFolder(args.data)
    ids = list(Splits.load(args.split).test)[args.first : args.first + args.faces]
    rows = []
    for name in args.degradation or ["thesis", "realistic"]:
        ds = FaceDeblurDataset(folder, ids, train=False, degradation=make_degradation(name), size=256)
        for i in range(len(ds)):
            item = ds[i]
            lq = (item["lq"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            gt = (item["gt"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            row = [label_tile(lq, f"{name} {psnr_uint8(lq, gt):.1f} dB")]
            for _, pipe in models:
                (out,), _ = pipe.restore_faces([lq])
                row.append(label_tile(out, f"{psnr_uint8(out, gt):.1f} dB"))
            rows.append([*row, gt])
    titles = ["blurry input", *(label for label, _ in models), "sharp"]
    print(f"wrote {write_image(args.out, make_grid(rows, titles), quality=args.quality)}")


if __name__ == "__main__":
    main()
