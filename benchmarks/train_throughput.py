"""Does the data path keep a training step busy? Faces/s of each, on this machine.

* data path: the training dataset (read, degrade, augment, to tensors) through a DataLoader with N workers, for a
  degradation family, in faces/s;
* training step: forward, loss, backward and AdamW step of each net on a random batch already on the device
  (bf16 autocast where the device does it natively, channels_last), in faces/s, at each batch size asked for,
  eager and (``--compile``) under ``torch.compile``, with the seconds its compilation took.

If a step's faces/s grows much with the batch, the step is bound by kernel launches rather than arithmetic: a
larger batch or ``compile: true`` (training config) is then the cheap gain. Compilation pays inside a job's
budget only if its seconds are small against what it saves.

If the data path's faces/s at the workers a run can spare is below the step's, the accelerator waits on the CPU.

Usage:
    python benchmarks/train_throughput.py --data packs/synthface-2000 --workers 0,2 --nets nafnet,smfd_unet
    python benchmarks/train_throughput.py --data packs/synthface-2000 --workers 0,4,15 --batch 16 \
        --step-batches 16,64 --compile   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from torch.utils.data import DataLoader

from smfd.data import FaceDeblurDataset, FaceFolder
from smfd.degrade import DEGRADATIONS, make_degradation
from smfd.models import Runner, build
from smfd.train.datasets import one_thread_worker


def data_rate(folder: FaceFolder, degradation: str, workers: int, batch: int, seconds: float, grey: bool) -> float:
    import cv2

    cv2.setNumThreads(1)  # as training does: one thread a worker (and a workers=0 figure is one core's rate)
    ds = FaceDeblurDataset(folder, train=True, size=256, grayscale=grey, degradation=make_degradation(
        degradation, 0.4, 0.3) if degradation == "mixed" else make_degradation(degradation))
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, worker_init_fn=one_thread_worker,
                        persistent_workers=False)
    it = iter(loader)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < min(2.0, seconds):  # warm-up: workers started, files in the page cache
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        try:
            n += next(it)["lq"].shape[0]
        except StopIteration:
            it = iter(loader)
    return n / (time.perf_counter() - t0)


def step_rate(name: str, device: torch.device, batch: int, seconds: float,
              compiled: bool = False) -> tuple[float, str, float]:
    """Faces/s of a training step, its precision, and the seconds of the first two steps (compilation, if any)."""
    runner = build(name).to(device, precision="auto", channels_last=True).train()
    precision = runner.precision
    if compiled:  # as the training loop does with compile: true
        runner = Runner(torch.compile(runner.net), runner.spec, device=device, precision=precision,
                        channels_last=True)
    opt = torch.optim.AdamW(runner.module.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, 256, 256, device=device)
    mask = torch.softmax(torch.randn(batch, 5, 256, 256, device=device), 1)
    target = torch.rand(batch, 3, 256, 256, device=device)

    def step() -> None:
        out = runner(x, mask)  # as the training loop runs it (a mask net: logits of the grey face)
        loss = out.logsumexp(1).mean() if runner.spec.task == "mask" else (out - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    step()
    step()
    sync()
    warm = time.perf_counter() - t0
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += batch
        if device.type == "cuda" and n % (batch * 4) == 0:
            sync()
    sync()
    return n / (time.perf_counter() - t0), precision, warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="face folder or training pack")
    ap.add_argument("--workers", default="0,2", help="loader workers to try, comma-separated")
    ap.add_argument("--degradations", default="thesis,mixed", help=f"families ({', '.join(DEGRADATIONS)}); mixed "
                    "is 40 %% realistic, 30 %% lowres, 30 %% thesis")
    ap.add_argument("--nets", default="nafnet,nafnet_mask,smfd_unet,mask_generator")
    ap.add_argument("--batch", type=int, default=8, help="the data path's batch")
    ap.add_argument("--step-batches", default="", help="training step batch sizes, comma-separated (default --batch)")
    ap.add_argument("--compile", action="store_true", help="also time each step under torch.compile")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    folder = FaceFolder(args.data)
    where = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# Training throughput on {where} ({os.cpu_count()} CPU cores), torch {torch.__version__}, "
          f"batch {args.batch}, {args.seconds:g} s a measurement\n")
    print("| data path | workers | faces/s |\n|---|---:|---:|")
    for deg in args.degradations.split(","):
        for w in (int(v) for v in args.workers.split(",")):
            print(f"| {deg} (RGB) | {w} | {data_rate(folder, deg, w, args.batch, args.seconds, False):.1f} |",
                  flush=True)
    print(f"\n| training step on {device.type} | batch | precision | compiled | faces/s | first 2 steps, s |\n"
          "|---|---:|---|---|---:|---:|")
    batches = [int(b) for b in args.step_batches.split(",")] if args.step_batches else [args.batch]
    for compiled in (False, True) if args.compile else (False,):  # every eager row first: compiling takes long
        for name, batch in ((n, b) for n in args.nets.split(",") for b in batches):
            rate, prec, warm = step_rate(name, device, batch, args.seconds, compiled)
            print(f"| {name} | {batch} | {prec} | {'yes' if compiled else 'no'} | {rate:.1f} | {warm:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
