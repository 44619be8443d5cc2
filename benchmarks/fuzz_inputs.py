"""Fuzz the photo reader (and, with ``--http``, the server's endpoint) with damaged files: every outcome must be a
photo or one clean line naming the file, never another exception, and never memory beyond the photo limit.

Each case is a sample face saved in one of the formats smfd reads, then damaged by one seeded mutation: bytes
flipped, a run overwritten, cut short, a chunk repeated, or its header's size fields set to huge or zero values.
Prints per format how many files were read, refused cleanly, or raised something else (a bug: listed with its
seed so it can be replayed). Only 127.0.0.1 is contacted; every loop is bounded.

Usage: python benchmarks/fuzz_inputs.py [--per-format 300] [--seed 0] [--http] [--weights default]
"""

import argparse
import collections
import io
import os
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "tif": "TIFF", "gif": "GIF", "ppm": "PPM",
           "ico": "ICO", "tga": "TGA", "jp2": "JPEG2000", "png16": None}


def _sample(fmt: str) -> bytes:
    from smfd.samples import samples_dir

    face = cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)
    face = cv2.resize(face, (96, 96), interpolation=cv2.INTER_AREA)
    if fmt == "png16":
        return cv2.imencode(".png", cv2.cvtColor(face, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)[1].tobytes()
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, FORMATS[fmt])
    return buf.getvalue()


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One seeded damage of ``data``."""
    b = bytearray(data)
    kind = rng.integers(6)
    if kind == 0:  # flip a few bytes
        for i in rng.integers(0, len(b), rng.integers(1, 9)):
            b[i] ^= 1 << rng.integers(8)
    elif kind == 1:  # overwrite a run
        i = rng.integers(0, len(b))
        b[i : i + rng.integers(1, 64)] = bytes(rng.integers(0, 256, 64, dtype=np.uint8).tolist())[: len(b[i:])]
    elif kind == 2:  # cut short
        b = b[: rng.integers(0, len(b))]
    elif kind == 3:  # repeat a chunk
        i, n = rng.integers(0, len(b)), rng.integers(1, 256)
        b[i:i] = b[i : i + n]
    else:  # big or zero numbers where headers keep sizes (the first 64 bytes)
        for _ in range(rng.integers(1, 4)):
            i = rng.integers(0, max(1, min(60, len(b) - 4)))
            b[i : i + 4] = struct.pack(">I", int(rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])))
    return bytes(b)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-format", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--http", action="store_true", help="also POST every file to a local smfd serve")
    ap.add_argument("--weights", default="default")
    args = ap.parse_args()

    import resource

    from smfd.infer.photo_io import open_photo

    work = Path(tempfile.mkdtemp(prefix="smfd-fuzz-"))
    server = None
    if args.http:
        import httpx

        import smfd
        from smfd.app import serve

        server = serve(smfd.load_pipeline(args.weights), port=_free_port(), block=False)
    counts: dict[str, collections.Counter] = {}
    bugs = []
    t0 = time.perf_counter()
    try:
        for fmt in FORMATS:
            try:
                clean = _sample(fmt)
            except (OSError, KeyError, ValueError) as e:  # a format this Pillow cannot write
                print(f"{fmt}: skipped ({e})")
                continue
            c = counts[fmt] = collections.Counter()
            for k in range(args.per_format):
                rng = np.random.default_rng([args.seed, k, len(fmt), ord(fmt[0])])
                path = work / f"case-{k}.{fmt.rstrip('16')}"
                path.write_bytes(mutate(clean, rng))
                try:
                    photo = open_photo(path)
                    assert photo.image.dtype == np.uint8 and photo.image.ndim == 3
                    c["read"] += 1
                except (ValueError, FileNotFoundError) as e:
                    one_line = "\n" not in str(e) and str(path) in str(e)
                    c["refused, one line" if one_line else "refused, badly worded"] += 1
                    if not one_line:
                        bugs.append((fmt, k, repr(e)[:200]))
                except Exception as e:  # noqa: BLE001 - anything else is what we are looking for
                    c["other exception"] += 1
                    bugs.append((fmt, k, repr(e)[:200]))
                if server is not None:
                    r = httpx.post(f"{server.url}/api/deblur", params={"aligned": "true"},
                                   files={"file": (path.name, path.read_bytes())}, timeout=120)
                    ok = r.status_code == 200 or (r.status_code in (400, 413, 415) and list(r.json()) == ["error"])
                    c[f"http {r.status_code}"] += 1
                    if not ok:
                        bugs.append((fmt, k, f"http {r.status_code}: {r.text[:200]}"))
    finally:
        if server is not None:
            server.close()
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    total = sum(sum(c.values()) for c in counts.values())
    print(f"{args.per_format} damaged files per format, seed {args.seed}, in {time.perf_counter() - t0:.0f} s")
    for fmt, c in counts.items():
        print(f"  {fmt:6} " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items())))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{total} outcomes; other exceptions or badly worded refusals: {len(bugs)}; peak resident memory "
          f"{peak:.0f} MB")
    for fmt, k, what in bugs[:20]:
        print(f"  replay: --seed {args.seed}, format {fmt}, case {k}: {what}")
    sys.exit(1 if bugs else 0)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
