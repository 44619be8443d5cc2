"""Degradation throughput (one core, 256x256) and how hard the task is (degraded vs sharp PSNR/SSIM).

Usage:
    python benchmarks/degrade.py --data ../shared/data/synthface --count 200 --seed 0

Face k of the seed-0 test split is degraded with numpy.random.default_rng([seed, k]) (the dataset's
evaluation draw); PSNR/SSIM come from scikit-image on 0-255 RGB images.
"""

from __future__ import annotations

import argparse
import platform
import time

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from smfd.data import FaceFolder, make_splits
from smfd.degrade import DegradationPipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="face folder (images/ + masks/)")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="passes over the images for the timing")
    args = ap.parse_args()

    cv2.setNumThreads(1)
    folder = FaceFolder(args.data)
    ids = list(make_splits(folder.ids, seed=0).test)[: args.count]
    sharp = [folder.read(i)[0] for i in ids]
    pipe = DegradationPipeline()

    psnr, ssim, degraded = [], [], []
    for k, img in enumerate(sharp):
        lq, _ = pipe(img, np.random.default_rng([args.seed, k]))
        degraded.append(lq)
        psnr.append(peak_signal_noise_ratio(img, lq, data_range=255))
        ssim.append(structural_similarity(img, lq, channel_axis=2, data_range=255))

    rng = np.random.default_rng(args.seed)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for img in sharp:
            pipe(img, rng)
        times.append(time.perf_counter() - t)
    best = min(times)
    print(f"machine: {platform.processor() or platform.machine()}, OpenCV {cv2.__version__}, 1 thread")
    print(f"images: {len(sharp)} SynthFace test-split faces, {sharp[0].shape[1]}x{sharp[0].shape[0]}")
    print(f"throughput: {len(sharp) / best:.1f} images/s (best of {args.repeats} passes, "
          f"median {len(sharp) / np.median(times):.1f})")
    print(f"degraded vs sharp, seed {args.seed}: PSNR {np.mean(psnr):.2f} +- {np.std(psnr):.2f} dB, "
          f"SSIM {np.mean(ssim):.4f} +- {np.std(ssim):.4f}")


if __name__ == "__main__":
    main()
