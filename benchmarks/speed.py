"""Speed on this machine, per precision, memory format, backend and batch size, measured interleaved in one run.

Prints (and with --out writes as Markdown):
* the machine, whether it does bf16 natively, and the fp32 and bf16 2048x2048 matmul peaks measured here;
* pipeline faces/s at 256 px (mask generator + deblurring net) for: torch fp32 NCHW (smfd before channels_last),
  torch fp32 channels_last, torch bf16 channels_last, torch.compile (inductor) fp32 channels_last, ONNX Runtime;
  batch 1 and 8; GFLOPs per face and the share of the same precision's matmul peak;
* a 1024x800 whole photo with one face (detect, align, restore, paste back) per backend;
* training faces/s per optimizer step (forward, backward, Adam) for SMFD-UNet, the mask generator, NAFNet and
  NAFNet + mask, on whole 256 px faces and 64/128 px crops, fp32 NCHW vs channels_last vs bf16.

Configurations are timed round-robin (``--rounds`` rounds, best round kept), so a busy machine slows them alike.
bf16 runs only where the CPU has it natively (``avx512_bf16``/``amx_bf16``), unless --emulated-bf16 is given:
elsewhere PyTorch emulates it, tens of times slower, and the row says so.

Usage: python benchmarks/speed.py [--weights default] [--faces 8] [--rounds 2] [--no-train] [--out results/speed_cpu.md]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time

import cv2
import numpy as np
import torch

from smfd.data import FaceFolder
from smfd.degrade import DegradationPipeline
from smfd.infer.pipeline import FaceDeblurrer, load_pipeline
from smfd.infer.weights import load_bundle
from smfd.models import create_model, example_inputs
from smfd.models.profile import count_flops
from smfd.precision import autocast, native_bf16, to_channels_last
from smfd.samples import samples_dir


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def matmul_peak(dtype: torch.dtype, n: int = 2048, runs: int = 3) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    return 2 * n**3 / min(_timed(lambda: a @ b) for _ in range(runs)) / 1e9


def _pipe(mask, deblur, precision: str, channels_last: bool, batch: int, compiled: bool = False) -> FaceDeblurrer:
    pipe = FaceDeblurrer(copy.deepcopy(mask), copy.deepcopy(deblur), batch_size=batch, precision="fp32",
                         channels_last=channels_last)
    for net in (pipe.mask_net, pipe.deblur_net):
        net.precision = precision  # as asked, even where bf16 would be emulated
        if compiled:
            net.net = torch.compile(net.net, dynamic=False)
    return pipe


def train_step_fps(name: str, size: int, batch: int, precision: str, channels_last: bool, steps: int = 2) -> float:
    torch.manual_seed(0)
    model = create_model(name).train()
    inputs = example_inputs(model, batch, size, size)
    target = torch.rand(batch, getattr(model, "num_classes", 3), size, size)
    if channels_last:
        model, inputs, target = to_channels_last(model), tuple(to_channels_last(x) for x in inputs), \
            to_channels_last(target)
    opt = torch.optim.Adam(model.parameters(), 1e-4)

    def step():
        with autocast(precision):
            out = model(*inputs)
        loss = torch.nn.functional.l1_loss(out.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    return batch / min(_timed(step) for _ in range(steps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="default")
    ap.add_argument("--faces", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-train", action="store_true", help="skip the training-step table")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--emulated-bf16", action="store_true", help="time bf16 even where the CPU lacks it")
    ap.add_argument("--baseline", default="", help="another bundle to time beside --weights' default pipeline "
                    "(as it ran then: the mask net on every face), interleaved in the same rounds")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    native = native_bf16("cpu")
    bf16 = native or args.emulated_bf16
    lines = [f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, torch "
             f"{torch.__version__} ({torch.get_num_threads()} threads), CPU capability "
             f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if native else 'no'}"]
    peak = {"fp32": matmul_peak(torch.float32)}
    peak["bf16"] = matmul_peak(torch.bfloat16, n=2048 if native else 512, runs=3 if native else 1)
    lines.append(f"2048x2048 matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.1f} GFLOP/s"
                 + ("" if native else " (512x512; emulated: this CPU has no native bf16)"))

    folder = FaceFolder(samples_dir())
    degrade = DegradationPipeline()
    base = [degrade(folder.read(i)[0], np.random.default_rng([0, k]))[0] for k, i in enumerate(folder.ids)]
    faces = (base * (args.faces // len(base) + 1))[: args.faces]
    mask, deblur, _ = load_bundle(args.weights)
    gflops = (count_flops(mask) + count_flops(deblur)) / 1e9
    lines.append(f"pipeline: {mask.spec.name} + {deblur.spec.name} ({args.weights}), {gflops:.1f} GFLOPs per 256 px "
                 f"face; {args.faces} degraded sample faces; best of {args.rounds} interleaved rounds")

    configs = [("torch fp32 NCHW", "fp32", False, False), ("torch fp32 channels_last", "fp32", True, False)]
    if bf16:
        configs.append(("torch bf16 channels_last" + ("" if native else " (emulated)"), "bf16", True, False))
    pipes = {(label, b): _pipe(mask, deblur, prec, cl, b) for label, prec, cl, _ in configs for b in (1, 8)}
    precisions = {label: prec for label, prec, _, _ in configs}
    compile_note = ""
    if not args.no_compile:
        label = "torch.compile fp32 channels_last"
        for b in (1, 8):
            pipes[label, b] = _pipe(mask, deblur, "fp32", True, b, compiled=True)
            t = _timed(lambda p=pipes[label, b], n=b: p.restore_faces(faces[:n]))
            compile_note += f"torch.compile first call (batch {b}, compiling): {t:.0f} s. "
        precisions[label] = "fp32"
    tmp = tempfile.TemporaryDirectory()
    try:
        from smfd.infer.export import export_onnx

        export_onnx(args.weights, tmp.name)
        for b in (1, 8):
            pipes["onnxruntime fp32", b] = load_pipeline(tmp.name, backend="onnxruntime", batch_size=b)
        precisions["onnxruntime fp32"] = "fp32"
    except ImportError:
        lines.append("onnxruntime: not installed (pip install 'smfd[onnx]'), not timed")
    for p in pipes.values():
        p.restore_faces(faces[: p.batch_size])  # warm-up
    best: dict = {}
    for _ in range(args.rounds):
        for key, p in pipes.items():
            fps = len(faces) / _timed(lambda p=p: p.restore_faces(faces))
            best[key] = max(best.get(key, 0.0), fps)
    ref = best["torch fp32 NCHW", 1]
    lines += ["", "| configuration | batch | faces/s | vs fp32 NCHW batch 1 | share of its matmul peak |",
              "|---|---|---|---|---|"]
    for (label, b), fps in best.items():
        lines.append(f"| {label} | {b} | {fps:.2f} | {fps / ref:.2f}x | {fps * gflops / peak[precisions[label]]:.0%} |")
    if compile_note:
        lines += ["", compile_note.strip()]

    # the default pipeline as users get it: the mask net runs only when something reads the mask
    default = load_pipeline(args.weights)
    default.restore_faces(faces[:1])
    ways = {"mask asked for (--save-mask, the page; every run before)": {},
            "no mask asked for (the command line's default)": {"mask": False}}
    timed = {label: (default, kwargs) for label, kwargs in ways.items()}
    if args.baseline:
        base_pipe = load_pipeline(args.baseline)
        base_pipe.restore_faces(faces[:1])
        timed = {f"baseline bundle {args.baseline}, mask net on every face (as it ran)": (base_pipe, {}), **timed}
    default_best: dict = {}
    for _ in range(args.rounds):
        for label, (pipe, kwargs) in timed.items():
            fps = len(faces) / _timed(lambda p=pipe, kw=kwargs: p.restore_faces(faces, **kw))
            default_best[label] = max(default_best.get(label, 0.0), fps)
    first = next(iter(default_best.values()))
    runs = "runs" if default.needs_mask_net(False) else "skipped"
    lines += ["", f"Default pipeline ({default.precision}, batch {default.batch_size}); without a mask asked for, the "
              f"mask net is {runs} for this bundle's deblurring net:", "",
              f"| way | faces/s | vs {'the baseline' if args.baseline else 'mask asked for'} |", "|---|---|---|"]
    lines += [f"| {label} | {fps:.2f} | {fps / first:.2f}x |" for label, fps in default_best.items()]

    face = folder.read(folder.ids[0])[0]
    photo = cv2.copyMakeBorder(cv2.resize(face, (512, 512), interpolation=cv2.INTER_CUBIC), 200, 88, 300, 212,
                               cv2.BORDER_REFLECT_101)  # a 1024x800 "photo" with one 512 px face
    photo, _ = degrade(photo, np.random.default_rng(1))
    lines += ["", "| whole photo 1024x800, one face | seconds (median of 3) |", "|---|---|"]
    for label in precisions:
        if label.startswith("torch.compile"):
            continue
        p = pipes[label, 1]
        p.deblur(photo)  # warm-up (the face detector loads once)
        lines.append(f"| {label} | {statistics.median(_timed(lambda p=p: p.deblur(photo)) for _ in range(3)):.2f} |")
    tmp.cleanup()

    if not args.no_train:
        bf16_head = ("bf16 channels_last | ", "---|") if bf16 else ("", "")
        lines += ["", "Training, faces/s per optimizer step (forward + backward + Adam; best of 2 after 1):", "",
                  f"| net | input | batch | fp32 NCHW | fp32 channels_last | {bf16_head[0]}channels_last gain |",
                  f"|---|---|---|---|---|{bf16_head[1]}---|"]
        for name in ("smfd_unet", "mask_generator", "nafnet", "nafnet_mask"):
            for size, batch in ((256, 2), (128, 4), (64, 8)):
                row = [train_step_fps(name, size, batch, "fp32", cl) for cl in (False, True)]
                if bf16:
                    row.append(train_step_fps(name, size, batch, "bf16", True))
                what = "whole 256 px face" if size == 256 else f"{size} px crop"
                cells = " | ".join(f"{v:.2f}" for v in row)
                lines.append(f"| {name} | {what} | {batch} | {cells} | {row[1] / row[0]:.2f}x |")

    text = "\n".join(lines)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
