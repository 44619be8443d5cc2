"""Shared fixtures: tiny face folders made on the fly (no dependence on ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_face_folder


@pytest.fixture
def face_folder(tmp_path: Path) -> Path:
    return make_face_folder(tmp_path / "faces")


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return make_face_folder(tmp_path / "tiny", n=12, size=32)


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
