"""Keep a finished run's weights in results/bakeoff: its best.safetensors (the EMA weights) as float16, with the
run's metadata, and its metrics.csv beside it, so a later stretch can continue from them (``model.init``).

Usage: python scripts/keep_run.py runs/long/nafnet4 d-nafnet-long-580 [--to results/bakeoff]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from smfd.fileio import atomic_write_bytes
from smfd.models.io import load_weights, read_metadata, save_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder holding best.safetensors and metrics.csv")
    ap.add_argument("name", help="file stem: NAME.safetensors and NAME-metrics.csv")
    ap.add_argument("--to", type=Path, default=Path("results/bakeoff"))
    args = ap.parse_args()
    best = args.run / "best.safetensors"
    extra = json.loads(read_metadata(best).get("extra") or "{}")  # save_weights stores it as JSON text
    sha = save_weights(load_weights(best), args.to / f"{args.name}.safetensors", half=True, extra=extra)
    atomic_write_bytes(args.to / f"{args.name}-metrics.csv", (args.run / "metrics.csv").read_bytes())
    print(f"kept {args.to / args.name}.safetensors (sha256 {sha}) and its metrics.csv; run metadata {extra}")


if __name__ == "__main__":
    main()
