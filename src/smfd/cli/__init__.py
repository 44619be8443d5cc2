"""The ``smfd`` command line: thin wrappers around the library.

Library errors become one line on stderr and a non-zero exit; ``smfd --debug ...`` shows the traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import BadOption, NoFaceError, OverLimit

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Deblur face images guided by semantic face masks (a mask generator and a deblurring net: NAFNet or "
         "the thesis's SMFD-UNet).",
    pretty_exceptions_enable=False,
)
prepare_app = typer.Typer(no_args_is_help=True, help="Convert public datasets to the smfd folder layout.")
app.add_typer(prepare_app, name="prepare")
report_app = typer.Typer(no_args_is_help=True, help="Figures: training curves, feature maps.")
app.add_typer(report_app, name="report")

console = Console(stderr=True, soft_wrap=True)  # errors stay one line, however long
_state = {"debug": False}


class CliError(Exception):
    """An error already worded for the user; exits with the given code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a scheduler stopping the job): handled as Ctrl-C is."""


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within: SIGTERM raises :class:`Terminated` (a KeyboardInterrupt), so what is being written is removed as on
    Ctrl-C; the handler before is put back after. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def stopped_in_one_line() -> Iterator[None]:
    """Ctrl-C or SIGTERM that no runner took over (while the options and inputs are looked at, say) ends the
    command as a stop later does: one line, exit 130 or 143 (Typer would exit 130 without a word, SIGTERM with
    none)."""
    try:
        with stop_on_sigterm():
            yield
    except Terminated:
        raise CliError("stopped by SIGTERM", code=143) from None
    except KeyboardInterrupt:
        raise CliError("stopped by Ctrl-C", code=130) from None


#: How the command line answers the library's errors, by type (the first that matches): the exit code, and a hint
#: said once after the error lines.
ERRORS: tuple[tuple[type[BaseException], int, str], ...] = (
    (BadOption, 2, ""),
    (NoFaceError, 1, "for a face crop, use aligned mode (--aligned)"),
    (OverLimit, 1, "--max-megapixels raises the limit (memory grows with it)"),
    (BaseException, 1, ""),
)


def answer(e: BaseException) -> tuple[int, str]:
    """(exit code, hint) for a library error, from :data:`ERRORS`."""
    return next((code, hint) for kind, code, hint in ERRORS if isinstance(e, kind))


def parse_model_options(values: list[str] | None, flag: str) -> dict:
    """``KEY=VALUE`` strings (values parsed as YAML) -> a dict of model options; a malformed one is a usage error."""
    from ..train.config import parse_assignments

    try:
        return dict(parse_assignments(values or [], flag))
    except ValueError as e:
        raise CliError(f"{e} (e.g. keep_mean=true)", code=2) from None


PRECISION_HELP = ("auto (bf16 where the CPU/GPU does bf16 natively, else fp32), bf16 or fp32; bf16 on hardware "
                  "without it falls back to fp32 with a warning.")


def precision_option(value: str) -> str:
    """A ``--precision`` value checked against the allowed ones (a usage error names them)."""
    from ..precision import check_precision

    try:
        return check_precision(value)
    except ValueError as e:
        raise CliError(f"--precision: {e}", code=2) from None


def progress_bar(disable: bool = False) -> Progress:
    """The commands' progress bar (on stderr, beside their error lines)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=False, disable=disable,
    )  # fmt: skip


def report_failures(failures: list[tuple[str, str]], total: int) -> None:
    """Name each input that failed (``(name, message)``), then end the command with an error counting them."""
    if failures:
        console.print(f"[red]{len(failures)} of {total} inputs failed:[/red]")
        for name, msg in failures:  # library errors already start with the file's name
            line = msg if msg.startswith(name) else f"{name}: {msg}"
            console.print(f"  {line}", markup=False, highlight=False)
        raise CliError(f"{len(failures)} of {total} inputs failed", code=1)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"smfd {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors (also after the command).")] = False,
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")] = None,
) -> None:
    _state["debug"] = _state["debug"] or debug


def setup_logging() -> None:
    """smfd's log lines (training, jobs) on the console, once however often a command asks."""
    import logging

    from rich.logging import RichHandler

    log = logging.getLogger("smfd")
    if not any(isinstance(h, RichHandler) for h in log.handlers):
        log.addHandler(RichHandler(console=console, show_path=False, show_time=False))
    log.setLevel(logging.INFO)


def main() -> None:
    """Console-script entry point: Typer handles usage errors; library errors become one line. ``--debug`` may
    stand anywhere on the line."""
    if "--debug" in sys.argv[1:]:
        _state["debug"] = True
        sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a != "--debug")]
    try:
        app()
    except KeyboardInterrupt:  # while Typer reads the command's options, before the command runs
        if _state["debug"]:
            raise
        console.print("smfd: error: stopped by Ctrl-C", markup=False, highlight=False)
        sys.exit(130)
    except CliError as e:
        if _state["debug"]:
            raise
        console.print(f"smfd: error: {e}", markup=False, highlight=False)
        sys.exit(e.code)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        if _state["debug"]:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        code, hint = answer(e)
        console.print(f"smfd: error: {msg}" + (f"; {hint}" if hint else ""), markup=False, highlight=False)
        sys.exit(code)


# the commands register themselves on `app` when their modules are imported
from . import experiments, product, research  # noqa: E402, F401

if __name__ == "__main__":
    main()
