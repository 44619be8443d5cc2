"""A photo-only install (no `train` extra) is enough to deblur: inference imports neither the training code nor
the training and plotting packages that extra holds."""

import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
import smfd
pipe = smfd.load_pipeline(precision="fp32")
faces, masks = pipe.restore_faces(np.zeros((1, 256, 256, 3), np.uint8))
from smfd.cli import app  # the command line too
loaded = sorted(m for m in ("matplotlib", "tensorboard", "smfd.train", "smfd.train.loop") if m in sys.modules)
print(",".join(loaded))
"""


def test_deblurring_imports_no_training_or_plotting_package():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1:] in ([""], []), f"loaded: {out.stdout}"
