"""Write a run's last weights (the EMA of its last.pt, as best.safetensors holds the best epoch's) as
``last.safetensors`` beside it: for a net whose validation faces are not the ones it is meant for, where the last
epoch, not the best-validated one, is the run's result.

Usage: python scripts/last_weights.py runs/big-faces-5   # -> runs/big-faces-5/last.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from smfd.models import build
from smfd.models.io import load_state, read_checkpoint, save_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder holding last.pt")
    args = ap.parse_args()
    ckpt = read_checkpoint(args.run / "last.pt")  # a run's own checkpoint, read with weights_only
    state = ckpt.get("ema_state_dict") or ckpt["state_dict"]
    runner = build(ckpt["model_name"], **ckpt["model_kwargs"])
    load_state(runner.module, state, str(args.run / "last.pt"), runner.spec.name)
    extra = {"epoch": ckpt["epoch"], "steps": ckpt.get("steps"), "ema": ckpt.get("ema_state_dict") is not None}
    sha = save_weights(runner, args.run / "last.safetensors", extra=extra)
    print(f"wrote {args.run / 'last.safetensors'} (sha256 {sha}) from epoch {ckpt['epoch']}, "
          f"{'EMA' if extra['ema'] else 'training'} weights")


if __name__ == "__main__":
    main()
