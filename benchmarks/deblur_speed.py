"""Deblurring speed on this CPU: faces/s for aligned 256 px faces (torch and ONNX Runtime, batch 1 and 8),
whole-photo time (detect + align + restore + paste back), GFLOPs per face and the share of the machine's
measured fp32 matmul peak.

Usage: python benchmarks/deblur_speed.py [--weights default] [--faces 16] [--out results/speed.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import cv2
import numpy as np
import torch

import smfd
from smfd.data import FaceFolder
from smfd.degrade import DegradationPipeline
from smfd.infer.export import export_onnx
from smfd.models.profile import count_flops
from smfd.samples import samples_dir


def matmul_peak_gflops(n: int = 2048, runs: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(runs))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def faces_per_second(pipe, faces, batch: int, repeats: int = 2) -> float:
    pipe.batch_size = batch
    pipe.restore_faces(faces[:batch])  # warm-up
    return len(faces) / min(_timed(lambda: pipe.restore_faces(faces)) for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="default")
    ap.add_argument("--faces", type=int, default=16)
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    folder = FaceFolder(samples_dir())
    degrade = DegradationPipeline()
    base = [degrade(folder.read(i)[0], np.random.default_rng([0, k]))[0] for k, i in enumerate(folder.ids)]
    faces = (base * (args.faces // len(base) + 1))[: args.faces]
    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
             f"({torch.get_num_threads()} threads)", f"faces: {args.faces} degraded 256x256 sample faces"]
    peak = matmul_peak_gflops()
    pipe = smfd.load_pipeline(args.weights)
    gflops = (count_flops(pipe.mask_model) + count_flops(pipe.deblur_model)) / 1e9
    lines.append(f"compute: {gflops:.1f} GFLOPs per face (mask generator + SMFD-UNet); fp32 matmul peak "
                 f"{peak:.0f} GFLOP/s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(args.weights, tmp)
        onnx_pipe = smfd.load_pipeline(tmp, backend="onnxruntime")
        lq = torch.from_numpy(np.stack(faces[:8])).permute(0, 3, 1, 2).float() / 255
        (out_t, probs_t), (out_o, probs_o) = pipe._run(lq), onnx_pipe._run(lq)
        lines.append(f"ONNX parity on {len(lq)} faces: max |torch - onnxruntime| = "
                     f"{(out_t - out_o).abs().max().item():.2e} (output), "
                     f"{(probs_t - probs_o).abs().max().item():.2e} (mask probabilities)")
        for name, p in (("torch", pipe), ("onnxruntime", onnx_pipe)):
            for batch in (1, 8):
                fps = faces_per_second(p, faces, batch)
                rows.append((name, batch, fps, fps * gflops / peak))
    lines += ["", "| backend | batch | faces/s | share of matmul peak |", "|---|---|---|---|"]
    lines += [f"| {n} | {b} | {f:.2f} | {s:.0%} |" for n, b, f, s in rows]
    face = folder.read(folder.ids[0])[0]
    photo = cv2.copyMakeBorder(cv2.resize(face, (512, 512), interpolation=cv2.INTER_CUBIC), 200, 88, 300, 212,
                               cv2.BORDER_REFLECT_101)  # a 1024x800 "photo" with one 512 px face
    photo, _ = degrade(photo, np.random.default_rng(1))
    pipe.batch_size = 8
    times = [_timed(lambda: pipe.deblur(photo)) for _ in range(3)]
    lines += ["", f"whole photo {photo.shape[1]}x{photo.shape[0]} with one face: {statistics.median(times):.2f} s "
                  "(median of 3; detect + align + mask + deblur + paste back)"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
