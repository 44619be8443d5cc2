"""The errors smfd raises about what it is given, as types.

Each front end (the command line, the page, the endpoint) picks its own words and its exit or status code from
the type, in one table of its own; nobody reads a message to learn what went wrong. Every one is a
``ValueError``, so code written for ``except ValueError`` keeps working. Messages are about the input only: no
front end's options or flags appear in them.

Where the error is about a file, ``path`` names it and ``reason`` is the message without the name (a front end
that names the file another way, the endpoint by the upload's name for example, uses ``reason``).
"""

from __future__ import annotations

import os


class SmfdError(ValueError):
    """The root of smfd's errors: ``str(e)`` is ``"PATH: reason"`` where a file is named, else the reason."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(reason if path is None else f"{path}: {reason}")
        self.reason, self.path = reason, path


class NotAnImage(SmfdError):
    """The file holds no image smfd reads: text, a document, a video clip, an unknown format."""


class BadImage(SmfdError):
    """An image smfd cannot use: an empty or damaged file, too small, floating-point pixels, a wrong array."""


class OverLimit(SmfdError):
    """An image over a size limit (its pixels), refused before it is decoded."""


class NoFaceError(SmfdError):
    """No face large enough to restore was found in a whole photo."""


class BadOption(SmfdError):
    """An option the library does not know or cannot use (a region, a detector, a format, a backend, a size)."""


__all__ = ["BadImage", "BadOption", "NoFaceError", "NotAnImage", "OverLimit", "SmfdError"]
