"""Identification of compressed faces restored above 256 px: does the big-face net keep who they are?

Usage:
    python benchmarks/big_identity.py ../shared/data/synthface-512 --weights default,runs/two-bundle \
        --sizes 384,512 --out results/big_identity.md

The 256 px test faces score identification on faces restored at 256 px, by the deblurring net; a face of 320 px and
more is restored at its own size, by a bundle's big-face net when it has one. This benchmark asks the same question
of those faces. Each of the test faces of results/bakeoff/split.json (held out from training) is read from the
512 px set, area-resized to each size, and degraded by the lowres family at that size (a small face, 3-8x smaller,
JPEG- or video-compressed, resized up: a surveillance frame's face; seeded per face and size). Each bundle restores
the aligned crop (as ``smfd deblur --aligned`` does: its working size, mirrored above 256 px). Restored, given and
sharp faces are area-resized to 256 px and described by dlib's face-recognition net (the box found on the sharp
face); rank-1: the share of faces whose nearest sharp test face is their own, with exact sign tests between each
bundle and the first on the faces one identifies and the other not. PSNR over the whole crop is given too.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from smfd.data import FaceFolder, Splits
from smfd.degrade.lowres import LowResPipeline
from smfd.infer.pipeline import load_pipeline
from smfd.metrics.identity import IdentityScorer, rank1
from smfd.score.compare import sign_test


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def _small(x: np.ndarray) -> np.ndarray:
    return cv2.resize(x, (256, 256), interpolation=cv2.INTER_AREA)


def measure(folder: FaceFolder, ids: list[str], size: int, bundles: list[str], seed: int, scorer: IdentityScorer
            ) -> dict:
    """Descriptors (N, 128) and PSNRs (N,) of the sharp, given and each bundle's restored faces at ``size``."""
    pipes = {w: load_pipeline(w) for w in bundles}
    degrade = LowResPipeline()
    desc: dict[str, list] = {"sharp": [], "given": [], **{w: [] for w in bundles}}
    psnr: dict[str, list] = {"given": [], **{w: [] for w in bundles}}
    seconds = {w: 0.0 for w in bundles}
    for k, fid in enumerate(ids):
        sharp = cv2.resize(folder.read(fid)[0], (size, size), interpolation=cv2.INTER_AREA)
        given, _ = degrade(sharp, np.random.default_rng([seed, size, k]), size)
        outs = {"given": given}
        for w, pipe in pipes.items():
            t0 = time.perf_counter()
            outs[w] = pipe.restore_faces([given], mask=False)[0][0]
            seconds[w] += time.perf_counter() - t0
        ref = None
        for name, out in outs.items():
            d, ref = scorer.descriptors(_small(out), _small(sharp))
            desc[name].append(d)
            psnr[name].append(_psnr(out, sharp))
        desc["sharp"].append(ref)
        if k % 50 == 49:
            print(f"{size} px: {k + 1} of {len(ids)} faces", flush=True)
    return {"desc": {n: np.array(v) for n, v in desc.items()}, "psnr": {n: np.array(v) for n, v in psnr.items()},
            "seconds": {w: s / len(ids) for w, s in seconds.items()}}


def table(results: dict[int, dict], bundles: list[str]) -> list[str]:
    lines = ["| size | way | rank-1 | mean identity distance | PSNR (dB) | against the first bundle: lost / gained, "
             "sign test p | s a face |", "|---|---|---:|---:|---:|---|---:|"]
    for size, r in results.items():
        gallery = r["desc"]["sharp"]
        hits = {n: rank1(r["desc"][n], gallery) for n in ["given", *bundles]}
        first = hits[bundles[0]]
        for n in ["given", *bundles]:
            dist = np.linalg.norm(r["desc"][n] - gallery, axis=1).mean()
            lost, gained = int(((first == 1) & (hits[n] == 0)).sum()), int(((first == 0) & (hits[n] == 1)).sum())
            p = sign_test(min(lost, gained), lost + gained)
            versus = "-" if n == bundles[0] else f"{lost} / {gained}, p = {p:.2f}"
            secs = f"{r['seconds'][n]:.2f}" if n in r["seconds"] else "-"
            lines.append(f"| {size} px | {'as given' if n == 'given' else n} | {100 * hits[n].mean():.1f} % | "
                         f"{dist:.4f} | {r['psnr'][n].mean():.2f} | {versus} | {secs} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path, help="the 512 px SynthFace folder (images/*.webp)")
    ap.add_argument("--weights", default="default", help="bundles, comma-separated; the first is the reference")
    ap.add_argument("--sizes", default="384,512", help="face sides (px), comma-separated")
    ap.add_argument("--split", type=Path, default=Path("results/bakeoff/split.json"))
    ap.add_argument("--faces-limit", type=int, default=None, help="the first N test faces only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--identity-cache", type=Path, default=None, help="keep the sharp faces' descriptors here")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    bundles = [w for w in args.weights.split(",") if w]
    sizes = [int(s) for s in args.sizes.split(",")]
    ids = sorted(Splits.load(args.split).test)[: args.faces_limit]
    folder = FaceFolder(args.faces, require_masks=False)
    scorer = IdentityScorer(args.identity_cache)
    started = time.perf_counter()
    results = {s: measure(folder, ids, s, bundles, args.seed, scorer) for s in sizes}
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    lines = [f"# Compressed faces restored above 256 px: identification ({len(ids)} test faces a size)", "",
             "Command: `python benchmarks/big_identity.py " + " ".join(
                 [str(args.faces), f"--weights {args.weights}", f"--sizes {args.sizes}", f"--seed {args.seed}"]
                 + ([f"--faces-limit {args.faces_limit}"] if args.faces_limit else [])) + "`", "",
             *table(results, bundles), "",
             f"Degradation: the lowres family at each size, seed {args.seed}; rank-1 among the {len(ids)} sharp test "
             f"faces (dlib descriptors at 256 px); {cpu}, {platform.machine()}; "
             f"{time.perf_counter() - started:.0f} s in all."]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
