"""Copy a few SynthFace test-split faces into the package as the bundled samples.

Usage: python scripts/make_samples.py ../shared/data/synthface --count 8

The faces come from the seed-0 test split of the 2,000-face subset (smfd.data.make_splits(ids, seed=0,
subset=2000)). Subsets share one permutation, so that test split lies inside the test split of every seed-0
configuration (all faces, the 3,000 mask subset, the 2,000 deblur subset): no bundled sample is ever a
training face. Images are re-encoded as JPEG q90; masks are copied as they are.
"""

import argparse
import shutil
from pathlib import Path

from smfd.data import FaceFolder, make_splits, read_image, write_image

DEST = Path(__file__).resolve().parents[1] / "src/smfd/assets/samples"

ap = argparse.ArgumentParser()
ap.add_argument("root")
ap.add_argument("--count", type=int, default=8)
args = ap.parse_args()
folder = FaceFolder(args.root)
test = make_splits(folder.ids, seed=0, subset=2000).test
for old in DEST.glob("*/*"):
    if old.suffix in (".jpg", ".png"):
        old.unlink()
step = len(test) // args.count
for i in test[::step][: args.count]:
    write_image(DEST / "images" / f"{i}.jpg", read_image(folder.image_path(i)), quality=90)
    (DEST / "masks").mkdir(parents=True, exist_ok=True)
    shutil.copy(folder.mask_path(i), DEST / "masks" / f"{i}.png")
    print(i)
