"""``POST /api/deblur``: the HTTP endpoint of ``smfd serve`` for programs (see :mod:`smfd.app`).

The contract, kept whatever a client sends: one photo in the multipart field ``file``; the query options
``aligned``, ``keep``, ``output`` (``image``, ``mask`` or ``report``) and ``strip_metadata``; every error is one
line of JSON, ``{"error": "..."}``, with one of the documented codes:

* 400 a request smfd cannot use: no ``file`` field, two of them, a raw body instead of a form, an unknown or
  malformed option, an unreadable or damaged image, an image too large or too small;
* 405 a method other than POST; 411 no ``Content-Length`` (the size is checked before anything is read);
* 413 over the upload limit; 415 not an image (a video clip included, known by its content whatever its name:
  restoring one takes minutes of CPU, longer than a request should, so videos go through ``smfd deblur clip.mp4``
  or ``pipe.deblur_video``); 422 no face found (whole-photo mode); 503 busy (``Retry-After``);
* 500 only for a fault of the server itself (e.g. face detection not installed, or an error it did not expect,
  logged with its traceback).

The image comes back in the upload's format (JPEG stays JPEG; transparent and 16-bit images as PNG) with its
EXIF and ICC profile, unless ``strip_metadata=true``.
"""

# no "from __future__ import annotations" here: FastAPI reads the endpoint's annotations as real types
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .data.celebamask import CLASSES, parse_keep
from .errors import BadOption, NoFaceError, NotAnImage, SmfdError
from .infer.photo_io import MAX_PIXELS, encode_photo, open_photo, output_format
from .infer.video_io import looks_like_video
from .report.palette import colorize_mask

VIDEO_REFUSED = ("not a readable image: a video; this endpoint takes photos (a clip takes minutes of CPU), use "
                 "smfd deblur CLIP -o OUT/ or pipe.deblur_video")

OPTIONS = ("aligned", "keep", "output", "strip_metadata")
OUTPUTS = ("image", "mask", "report")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class Busy(RuntimeError):
    """The line of waiting requests is full."""


class UploadTooLarge(SmfdError):
    """An upload over the server's limit (``smfd serve --max-upload-mb``)."""


#: The endpoint's status code and words for each error, by type (the first that matches), and whether the upload's
#: name leads the words; every one goes out as one line of JSON. ``{reason}``: the error's own words.
ERRORS: tuple[tuple[type[BaseException], int, str, bool], ...] = (
    (Busy, 503, "{reason}", False),
    (UploadTooLarge, 413, "{reason}", True),
    (NoFaceError, 422, "{reason}; for a face crop use aligned=true", True),
    (NotAnImage, 415, "{reason}", True),
    (SmfdError, 400, "{reason}", True),  # over the pixel limit, damaged, too small, a bad option
    (OSError, 400, "the upload cannot be read", True),
    (RuntimeError, 500, "{reason}", False),  # a fault of the server, e.g. face detection not installed
    (Exception, 500, "restoring it failed ({reason})", True),  # a fault of the server: logged with its traceback
)


def sweep(folder: Path, *, max_age_s: float, max_files: int) -> int:
    """Delete the results in ``folder`` (files, or folders holding one result) older than ``max_age_s`` and all but
    the newest ``max_files``; returns how many."""
    now, removed = time.time(), 0
    entries = []
    for p in folder.iterdir() if folder.is_dir() else ():
        try:
            entries.append((p.stat().st_mtime, p))
        except OSError:
            continue
    entries.sort(reverse=True)
    for i, (mtime, p) in enumerate(entries):
        if now - mtime > max_age_s or i >= max_files:
            try:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _error(status: int, message: str, **headers):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def refusal(e: Exception, name: str = ""):
    """The one-line JSON reply for ``e`` (:data:`ERRORS`); ``name``: the upload's, where it is known."""
    status, words, named = next((status, words, named) for kind, status, words, named in ERRORS
                                if isinstance(e, kind))
    if status == 500 and not isinstance(e, RuntimeError):
        logging.getLogger("smfd").error("POST /api/deblur %s failed", name, exc_info=e)
    reason = e.reason if isinstance(e, SmfdError) else " ".join(str(e).split())
    words = words.format(reason=reason)
    return _error(status, f"{name}: {words}" if named and name else words,
                  **({"Retry-After": "5"} if isinstance(e, Busy) else {}))


def parse_options(query) -> dict:
    """The endpoint's query options, checked: an unknown, repeated or malformed one is a :class:`BadOption`."""
    unknown = [k for k in query.keys() if k not in OPTIONS]
    if unknown:
        raise BadOption(f"unknown option {unknown[0]!r}; the options are {', '.join(OPTIONS)}")
    repeated = [k for k in OPTIONS if len(query.getlist(k)) > 1]
    if repeated:
        raise BadOption(f"option {repeated[0]!r} given {len(query.getlist(repeated[0]))} times; give it once")
    opts = {}
    for flag in ("aligned", "strip_metadata"):
        value = query.get(flag, "false").strip().lower()
        if value not in _TRUE + _FALSE:
            raise BadOption(f"{flag} must be true or false, got {query.get(flag)!r}")
        opts[flag] = value in _TRUE
    opts["output"] = query.get("output", "image")
    if opts["output"] not in OUTPUTS:
        raise BadOption(f"output must be image, mask or report, got {opts['output']!r}")
    opts["keep"] = parse_keep(query.get("keep", ""))
    return opts


HOW = "send the photo as the multipart form field 'file' (curl -F file=@photo.jpg URL)"


@dataclass(frozen=True)
class _Uploads:
    """Where the endpoint keeps an upload while it reads it, and what it takes."""

    folder: Path
    limit: int  # bytes
    max_mb: float
    keep_minutes: float
    keep_files: int
    max_pixels: int

    @property
    def too_big(self) -> str:
        return f"the upload is over the {self.max_mb:g} MB limit"

    def read(self, part, name: str):
        """The upload as a :class:`~smfd.infer.photo_io.Photo`; its copy on disk is removed."""
        sweep(self.folder, max_age_s=self.keep_minutes * 60, max_files=self.keep_files)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=Path(name).suffix or ".img")
        try:
            with os.fdopen(fd, "wb") as f:
                part.file.seek(0)
                copied = _copy_at_most(part.file, f, self.limit)
            if copied > self.limit:
                raise UploadTooLarge(self.too_big)
            try:
                return open_photo(tmp, max_pixels=self.max_pixels)
            except NotAnImage:
                if looks_like_video(tmp):  # by its content: a text file named .mp4 is no video
                    raise NotAnImage(VIDEO_REFUSED) from None
                raise
        finally:
            Path(tmp).unlink(missing_ok=True)


def add_http_api(api, worker, *, max_upload_mb: float, upload_dir: Path, keep_minutes: float = 60,
                 keep_files: int = 200, max_pixels: int = MAX_PIXELS) -> None:
    """``POST /api/deblur`` on a FastAPI app; ``worker`` is the server's :class:`smfd.app.ModelWorker`."""
    from fastapi import Request
    from starlette.concurrency import run_in_threadpool
    from starlette.formparsers import MultiPartException

    uploads = _Uploads(upload_dir, int(max_upload_mb * 1e6), max_upload_mb, keep_minutes, keep_files, max_pixels)

    @api.api_route("/api/deblur", methods=["GET", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    def wrong_method():
        return _error(405, f"use POST: {HOW}", Allow="POST")

    @api.post("/api/deblur")
    async def deblur_endpoint(request: Request):
        try:
            opts = parse_options(request.query_params)
        except ValueError as e:
            return refusal(e)
        problem = _headers_problem(request.headers, uploads)
        if problem is not None:
            return _error(*problem)
        try:
            form = await request.form(max_files=2, max_fields=8)
        except MultiPartException as e:
            return _error(400, f"the form cannot be read ({e}); {HOW}")
        try:
            parts = form.getlist("file")
            problem = _file_problem(parts)
            if problem is not None:
                return _error(400, problem)
            return await run_in_threadpool(_deblur, worker, uploads, parts[0], opts)
        finally:
            await form.close()


def _headers_problem(headers, uploads: _Uploads) -> tuple[int, str] | None:
    """The status and words for a request whose headers refuse it before its body is read (None: go on)."""
    length = headers.get("content-length")
    if length is None:
        return 411, f"the request has no Content-Length; {HOW}"
    if not length.isdigit():
        return 400, f"Content-Length must be a number of bytes, got {length!r}"
    if int(length) > uploads.limit + 64_000:  # multipart overhead allowed
        return 413, uploads.too_big
    if not headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return 400, f"the body is not a multipart form; {HOW}"
    return None


def _file_problem(parts: list) -> str | None:
    """What is wrong with the form's ``file`` fields (None: one file, as the endpoint takes)."""
    if not parts:
        return f"no 'file' field in the form; {HOW}"
    if len(parts) > 1:
        return f"{len(parts)} 'file' fields in the form; send one photo per request"
    if isinstance(parts[0], str):
        return f"'file' is a text field, not a file; {HOW}"
    return None


def _deblur(worker, uploads: _Uploads, part, opts: dict):
    """The reply to one upload: the restored photo (or its mask, or the report), or a refusal."""
    name = Path(part.filename or "upload").name
    try:
        photo = uploads.read(part, name)
        result = worker.deblur(photo.image, aligned=opts["aligned"], keep=opts["keep"])
        return _response(name, photo, result, opts)
    except Exception as e:
        return refusal(e, name)


class LocalFilesOnly:
    """ASGI middleware for the page's API (``/gradio_api/...``): files must be uploaded. Gradio fetches a file given
    as an http(s) URL from wherever the URL points, an outbound connection on a client's say; such a request is
    refused with 400 before Gradio sees it. JSON bodies there are small (files are uploaded apart): over 1 MB, 413."""

    def __init__(self, app, max_body: int = 1_000_000) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/gradio_api/") or \
                not dict(scope["headers"]).get(b"content-type", b"").startswith(b"application/json"):
            return await self.app(scope, receive, send)
        messages, size, more = [], 0, True
        while more:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            more = message.get("more_body", False) and message["type"] == "http.request"
            if size > self.max_body:
                return await _error(413, "the request body is over 1 MB; upload files apart")(scope, receive, send)
        if _names_a_remote_file(b"".join(m.get("body", b"") for m in messages)):
            return await _error(400, "files must be uploaded, not given as URLs")(scope, receive, send)

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


def _names_a_remote_file(body: bytes) -> bool:
    """Whether a JSON body holds a file payload whose ``path`` is a URL (what Gradio would download)."""
    import json

    try:
        todo = [json.loads(body)]
    except ValueError:
        return False  # not JSON: Gradio refuses it itself
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            path = item.get("path")
            if isinstance(path, str) and "://" in path.strip()[:16]:
                return True
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return False


def _copy_at_most(src, dst, limit: int) -> int:
    """Copy up to ``limit + 1`` bytes; returns how many were copied (more than ``limit``: too large)."""
    size = 0
    while size <= limit and (chunk := src.read(min(1 << 20, limit + 1 - size))):
        dst.write(chunk)
        size += len(chunk)
    return size


def _response(name: str, photo, result, opts: dict):
    from fastapi.responses import Response

    aligned = opts["aligned"]
    if opts["output"] == "report":
        counts = np.bincount(result.mask.ravel(), minlength=len(CLASSES))[: len(CLASSES)]
        faces = [{"box": [int(v) for v in f.box], "size": int(f.size), "restored": not f.skipped,
                  "skipped": f.skipped} for f in result.faces]
        h, w = photo.image.shape[:2]
        return {"file": name, "width": w, "height": h, "aligned": aligned, "faces": faces,
                "restored_faces": sum(not f.skipped for f in result.faces) if not aligned else 1,
                "mask_share": {c: float(n) / result.mask.size for c, n in zip(CLASSES, counts, strict=True)}}
    if opts["output"] == "mask":
        ok, buf = cv2.imencode(".png", cv2.cvtColor(colorize_mask(result.mask), cv2.COLOR_RGB2BGR))
        return Response(buf.tobytes(), media_type="image/png")
    fmt = output_format(photo, Path(name).suffix)
    data = encode_photo(photo, result.image, fmt, strip_metadata=opts["strip_metadata"])
    return Response(data, media_type="image/jpeg" if fmt == "jpg" else "image/png")


__all__ = ["ERRORS", "OPTIONS", "Busy", "LocalFilesOnly", "UploadTooLarge", "add_http_api", "parse_options", "refusal",
           "sweep"]
