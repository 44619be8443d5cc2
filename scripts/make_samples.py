"""Copy a few SynthFace test-split faces into the package as the bundled samples.

Usage: python scripts/make_samples.py ../shared/data/synthface --count 8

The faces come from the seed-0 test split (smfd.data.make_splits), so no bundled sample is ever a
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
test = make_splits(folder.ids, seed=0).test
step = len(test) // args.count
for i in test[::step][: args.count]:
    write_image(DEST / "images" / f"{i}.jpg", read_image(folder.image_path(i)), quality=90)
    (DEST / "masks").mkdir(parents=True, exist_ok=True)
    shutil.copy(folder.mask_path(i), DEST / "masks" / f"{i}.png")
    print(i)
