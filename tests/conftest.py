"""Shared fixtures: tiny face folders made on the fly (no dependence on ../shared)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def make_face_folder(root: Path, n: int = 6, size: int = 48, seed: int = 0) -> Path:
    """A folder in the smfd layout: smooth random colour images and blocky 5-class masks."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        mask = cv2.resize(rng.integers(0, 5, (4, 4), dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(root / "images" / f"{i:05d}.png"), img)
        cv2.imwrite(str(root / "masks" / f"{i:05d}.png"), mask)
    return root


@pytest.fixture
def face_folder(tmp_path: Path) -> Path:
    return make_face_folder(tmp_path / "faces")


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys):
    """Run ``smfd ARGS`` through the real entry point (error handling included) in-process."""
    from smfd import cli

    def run(args: list[str]) -> CliResult:
        import sys

        old = sys.argv
        sys.argv = ["smfd", *args]
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.argv = old
            cli._state["debug"] = False
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
