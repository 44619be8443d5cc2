"""Shared fixtures: tiny face folders made on the fly (no dependence on ../shared); and, under CI, a missing extra
is a failure, not a skip."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from helpers import make_face_folder

#: The modules of smfd's extras (pyproject.toml's optional dependencies) that tests import with
#: ``pytest.importorskip``. On a developer's machine a test needing a missing one is skipped; under CI (``CI`` set,
#: as CI services do) or with ``SMFD_REQUIRE_EXTRAS=1`` it fails, so a set-up that left an extra out cannot pass
#: with whole test files skipped in silence. (Chromium for the browser test is not an extra: it still skips.)
EXTRA_MODULES = {"av", "dlib", "face_recognition_models", "gradio", "gradio_client", "hypothesis", "matplotlib",
                 "onnx", "onnxruntime", "playwright", "skimage", "tensorboard"}


def extras_required(environ=os.environ) -> bool:
    """Whether a missing extra fails the tests (CI, or ``SMFD_REQUIRE_EXTRAS=1``)."""
    return environ.get("CI", "").lower() not in ("", "0", "false", "no") or environ.get("SMFD_REQUIRE_EXTRAS") == "1"


_importorskip = getattr(pytest.importorskip, "__wrapped__", pytest.importorskip)  # the original, if imported twice


@functools.wraps(_importorskip)
def importorskip_or_fail(modname: str, *args, **kwargs):
    """``pytest.importorskip``, except that a missing extra fails when :func:`extras_required`."""
    try:
        return _importorskip(modname, *args, **kwargs)
    except pytest.skip.Exception as e:
        if modname.split(".")[0] in EXTRA_MODULES and extras_required():
            pytest.fail(f"{modname} is missing ({e.msg}): CI needs every extra the suite tests; install them with "
                        "make test, or pip install -e '.[dev,faces,onnx,train,video,web]'", pytrace=False)
        raise


pytest.importorskip = importorskip_or_fail  # before the test modules are collected: their module-level calls too


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
