"""Where a deblurring run writes: the output folder checked before any work, every output planned (none written
twice, none replaced without --overwrite), and one input's outputs written all or none."""

from __future__ import annotations

import errno
from pathlib import Path

from . import CliError


def writable_folder(out: Path) -> None:
    """Fail early if ``out`` could not be created or written, without creating it (it appears with the first
    output, so a failed run leaves nothing behind)."""
    import os

    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise CliError(f"{out}: output folder is not writable ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise CliError(f"{out}: output folder is not writable (permission denied)")


def not_read(inputs: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Files in the given folders that a folder run leaves out (not one of the ``suffixes`` it reads); hidden files
    are not counted."""

    left = []
    for item in inputs:
        if Path(item).is_dir():
            left += sorted(p for p in Path(item).iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.suffix.lower() not in suffixes)
    return left


def not_searched(inputs: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """The subfolders of the given folders that hold, at any depth, files of the ``suffixes`` a run reads: a folder
    run reads the folder's own files, not its subfolders' (their outputs would share one output folder, where
    names from different subfolders collide). Hidden folders and files are not counted."""
    import os

    found = []
    for item in inputs:
        if not Path(item).is_dir():
            continue
        for sub in sorted(p for p in Path(item).iterdir() if p.is_dir() and not p.name.startswith(".")):
            for _, dirs, files in os.walk(sub):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                if any(not f.startswith(".") and Path(f).suffix.lower() in suffixes for f in files):
                    found.append(sub)
                    break
    return found


def plan_outputs(targets: dict[Path, list[Path]], overwrite: bool, skip_existing: bool
          ) -> tuple[dict[Path, list[Path]], list[Path]]:
    """Check each input's output files: none written twice in one run, none an input, none replaced without
    --overwrite. Returns (the inputs to do with their outputs, the inputs already done, with --skip-existing)."""
    owners: dict[Path, list[Path]] = {}
    for f, ts in targets.items():
        for t in ts:
            owners.setdefault(t.resolve(), []).append(f)
    twice = [(t, fs) for t, fs in owners.items() if len(fs) > 1]
    if twice:
        t, fs = twice[0]
        raise CliError(f"{t}: would be written for both {fs[0]} and {fs[1]}; rename one of them or leave out "
                       "--save-mask/--side-by-side")
    inputs = {f.resolve(): f for f in targets}
    clash = [inputs[t] for t in owners if t in inputs]
    if clash:
        raise CliError(f"{clash[0]}: an input would be replaced by an output; choose another --out")
    done = [f for f, ts in targets.items() if skip_existing and all(t.exists() for t in ts)]
    todo = {f: ts for f, ts in targets.items() if f not in done}
    existing = [t for ts in todo.values() for t in ts if t.exists()]
    if existing and not overwrite and not skip_existing:  # --skip-existing redoes an input's incomplete set
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CliError(f"{existing[0]}: already exists{more}; use --overwrite to replace, or --skip-existing to go "
                       "on where a run stopped")
    return todo, done


class WriteFailed(Exception):
    """An output could not be written because of the disk (full, over quota, read-only, failing): the run stops,
    as every later output would fail too."""


#: errno values that stop a run; any other write error (a name too long, say) fails that input only
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


def write_set(writes: list[tuple[Path, object]]) -> None:
    """Write one input's outputs (path, function writing it) all or none: on failure or Ctrl-C, the ones
    already written are removed, so a re-run with --skip-existing redoes that input."""
    done = []
    try:
        for path, write in writes:
            write(path)
            done.append(path)
    except BaseException as e:
        for written in done:
            written.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in DISK_ERRORS:
            raise WriteFailed(f"{path}: cannot write: {e.strerror or e}") from None
        if isinstance(e, OSError):
            raise OSError(f"{path}: cannot write: {e.strerror or e}") from None
        raise


__all__ = ["DISK_ERRORS", "WriteFailed", "not_read", "not_searched", "plan_outputs", "writable_folder",
           "write_set"]
