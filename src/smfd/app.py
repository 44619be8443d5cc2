"""``smfd serve``: a local Gradio page to deblur a photo, and an HTTP endpoint for programs, on one server.

Thin: all the image work is in :mod:`smfd.infer`. What this module adds is what a server left running all day
needs:

* one model thread: the page and the endpoint hand their work to a single worker (:class:`ModelWorker`), so one
  model run happens at a time and every tensor is allocated in one thread, whose freed memory is handed back to
  the system after each request (glibc's ``malloc_trim``);
* few heap arenas: glibc gives each new thread that allocates its own heap arena (up to 8 per core), and the
  server's request threads decode uploads and encode results in theirs, each keeping its high-water mark. The
  soak benchmark measured resident memory +15 % over 10 rounds with glibc's default and flat (-2 %) with two
  arenas (``benchmarks/soak.py``, results/soak.md), so :func:`serve` limits them to two (``MALLOC_ARENA_MAX``
  in the environment overrides it);
* a bounded line: at most ``queue_size`` requests wait or run; the next gets a clean "busy" reply (503 with
  ``Retry-After`` from the endpoint, "Queue is full" from the page);
* bounded disk: results and uploads older than ``keep_minutes`` are deleted, and at most ``keep_files`` results
  are kept (newest first), Gradio's own cache included (``delete_cache``);
* the same limits and one-line errors as the command line.

HTTP endpoint (``POST /api/deblur``, multipart field ``file``)::

    curl -F file=@photo.jpg http://127.0.0.1:7860/api/deblur -o restored.jpg
    curl -F file=@crop.png "http://127.0.0.1:7860/api/deblur?aligned=true&keep=hair&output=report"

``output``: ``image`` (default; the input's format: JPEG stays JPEG), ``mask`` (coloured PNG) or ``report``
(JSON: the faces found, restored or skipped, and the mask's class shares). Errors are JSON ``{"error": ...}``:
400 unreadable image, 413 over the upload limit, 415 not an image, 422 no face found, 503 busy.
"""


# no "from __future__ import annotations" here: FastAPI reads the endpoint's annotations as real types
import concurrent.futures
import ctypes
import ctypes.util
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from .data.celebamask import CLASSES
from .data.io import write_image
from .infer.photo_io import read_photo
from .infer.pipeline import FaceDeblurrer, NoFaceError, parse_keep
from .report.palette import colorize_mask

KEEP_CHOICES = ["hair", "wearables", "background"]

#: Set before Gradio is imported or builds anything: no usage analytics or version check (api.gradio.app), no
#: Hugging Face Hub telemetry or look-ups (huggingface.co). The server then makes no outbound connection.
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "DO_NOT_TRACK": "1"}


def stay_offline() -> None:
    """Switch off everything in Gradio and the Hugging Face Hub client that calls out (see ``OFFLINE_ENV``)."""
    os.environ.update(OFFLINE_ENV)


class Busy(RuntimeError):
    """The line of waiting requests is full."""


def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        fn = None
    return (lambda: fn(0)) if fn else (lambda: None)


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's heap arenas for threads created from now on (no-op elsewhere, or if ``MALLOC_ARENA_MAX`` is set,
    which glibc has already read). Returns whether the cap was set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        return bool(name) and ctypes.CDLL(name).mallopt(M_ARENA_MAX, count) == 1
    except (OSError, AttributeError):  # not glibc
        return False


class ModelWorker:
    """Runs the pipeline in one thread, one request at a time, with at most ``queue_size`` waiting or running."""

    def __init__(self, pipe: FaceDeblurrer, queue_size: int = 32) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.pipe, self.queue_size = pipe, queue_size
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smfd-model")
        self._slots = threading.BoundedSemaphore(queue_size)
        self._trim = _malloc_trim()

    def _run(self, image: np.ndarray, aligned: bool, keep) -> object:
        try:
            return self.pipe.deblur(image, aligned=aligned, keep=keep)
        finally:
            self._trim()

    def deblur(self, image: np.ndarray, *, aligned: bool = False, keep=()) -> object:
        """The pipeline's :class:`~smfd.infer.pipeline.Result`; raises :class:`Busy` when the line is full."""
        if not self._slots.acquire(blocking=False):
            raise Busy(f"busy: {self.queue_size} requests are already waiting; try again in a few seconds")
        try:
            return self._pool.submit(self._run, image, aligned, keep).result()
        finally:
            self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def sweep(folder: Path, *, max_age_s: float, max_files: int) -> int:
    """Delete files in ``folder`` older than ``max_age_s`` and all but the newest ``max_files``; returns how many."""
    now, removed = time.time(), 0
    files = []
    for p in folder.iterdir() if folder.is_dir() else ():
        try:
            files.append((p.stat().st_mtime, p))
        except OSError:
            continue
    files.sort(reverse=True)
    for i, (mtime, p) in enumerate(files):
        if now - mtime > max_age_s or i >= max_files:
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def make_handler(pipe: FaceDeblurrer | ModelWorker, max_upload_mb: float, out_dir: Path, *, keep_minutes: float = 60,
                 keep_files: int = 200):
    """The function behind the Deblur button: (file, aligned, keep) -> (input, mask, output, download, status)."""
    import gradio as gr

    worker = pipe if isinstance(pipe, ModelWorker) else ModelWorker(pipe)

    def deblur(path: str | None, aligned: bool, keep: list[str]):
        if not path:
            raise gr.Error("Upload a photo first.")
        size_mb = os.path.getsize(path) / 1e6
        if size_mb > max_upload_mb:
            raise gr.Error(f"The file is {size_mb:.1f} MB; the limit is {max_upload_mb:g} MB.")
        name = Path(path).name
        try:
            image = read_photo(path)
        except (OSError, ValueError) as e:
            raise gr.Error(f"{name}: {str(e).split(': ', 1)[-1]}") from None
        try:
            result = worker.deblur(image, aligned=aligned, keep=keep or ())
        except Busy as e:
            raise gr.Error(str(e)) from None
        except NoFaceError as e:
            raise gr.Error(f"{name}: {e}. Tick 'aligned face crop' for a face crop.") from None
        except RuntimeError as e:  # e.g. face detection not installed
            raise gr.Error(str(e)) from None
        sweep(out_dir, max_age_s=keep_minutes * 60, max_files=keep_files)
        jpeg = Path(name).suffix.lower() in (".jpg", ".jpeg")
        fd, out_path = tempfile.mkstemp(suffix=f"_{Path(name).stem}_deblurred{'.jpg' if jpeg else '.png'}",
                                        dir=out_dir)
        os.close(fd)
        write_image(out_path, result.image)
        restored = [f for f in result.faces if not f.skipped]
        status = "Restored the face crop." if aligned else f"Restored {len(restored)} face(s)."
        skipped = [f.skipped for f in result.faces if f.skipped]
        if skipped:
            status += f" Skipped {len(skipped)}: {skipped[0]}."
        return image, colorize_mask(result.mask), result.image, out_path, status

    return deblur


def build_app(pipe: FaceDeblurrer | ModelWorker, *, max_upload_mb: float = 20.0, queue_size: int = 32,
              keep_minutes: float = 60, keep_files: int = 200, out_dir: Path | None = None):
    """The Gradio Blocks app: upload, options, input | mask | output, download."""
    stay_offline()
    import gradio as gr

    worker = pipe if isinstance(pipe, ModelWorker) else ModelWorker(pipe, queue_size)
    out_dir = out_dir or Path(tempfile.mkdtemp(prefix="smfd-serve-"))
    card = worker.pipe.manifest.get("card", {})
    # Gradio's own cache (uploads, shown images): checked every 10 minutes, files older than keep_minutes removed
    with gr.Blocks(title="smfd face deblurring", delete_cache=(600, int(keep_minutes * 60)),
                   analytics_enabled=False) as app:
        gr.Markdown("# smfd: face deblurring guided by semantic face masks\n"
                    "Upload a photo with faces (or an aligned face crop). Everything runs locally on this "
                    f"machine. {card.get('status', '')}")
        with gr.Row():
            upload = gr.File(label="Photo (JPEG, PNG, ...)", file_types=["image"], type="filepath",
                             elem_id="upload")
            with gr.Column():
                aligned = gr.Checkbox(label="Aligned face crop (like the training faces)", value=False,
                                      elem_id="aligned")
                keep = gr.CheckboxGroup(KEEP_CHOICES, label="Keep these regions from the input", elem_id="keep")
                button = gr.Button("Deblur", variant="primary", elem_id="deblur")
                status = gr.Markdown(elem_id="status")
        with gr.Row():
            shown_in = gr.Image(label="Input", type="numpy", interactive=False, elem_id="input-image")
            shown_mask = gr.Image(label="Face mask", type="numpy", interactive=False, elem_id="mask-image")
            shown_out = gr.Image(label="Output", type="numpy", format="png", interactive=False, elem_id="output-image")
        download = gr.File(label="Download the result", elem_id="download")
        handler = make_handler(worker, max_upload_mb, out_dir, keep_minutes=keep_minutes, keep_files=keep_files)
        button.click(handler, [upload, aligned, keep], [shown_in, shown_mask, shown_out, download, status],
                     concurrency_limit=1)
    app.queue(max_size=queue_size, default_concurrency_limit=1)  # one model run at a time; others wait in line
    return app


def _error(status: int, message: str, **headers):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def add_http_api(api, worker: ModelWorker, *, max_upload_mb: float, upload_dir: Path, keep_minutes: float = 60,
                 keep_files: int = 200) -> None:
    """``POST /api/deblur`` on a FastAPI app (see the module doc)."""
    from typing import Annotated

    from fastapi import File, Request, UploadFile
    from fastapi.responses import Response

    limit = int(max_upload_mb * 1e6)

    @api.post("/api/deblur")
    def deblur_endpoint(request: Request, file: Annotated[UploadFile, File()], aligned: bool = False, keep: str = "",
                        output: str = "image"):
        name = Path(file.filename or "upload").name
        if output not in ("image", "mask", "report"):
            return _error(400, f"output must be image, mask or report, got {output!r}")
        try:
            keep_ids = parse_keep(keep)
        except ValueError as e:
            return _error(400, str(e))
        if int(request.headers.get("content-length") or 0) > limit + 64_000:  # multipart overhead allowed
            return _error(413, f"{name}: the upload is over the {max_upload_mb:g} MB limit")
        sweep(upload_dir, max_age_s=keep_minutes * 60, max_files=keep_files)
        fd, tmp = tempfile.mkstemp(dir=upload_dir, suffix=Path(name).suffix or ".img")
        try:
            with os.fdopen(fd, "wb") as f:
                size = 0
                while chunk := file.file.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        return _error(413, f"{name}: the upload is over the {max_upload_mb:g} MB limit")
                    f.write(chunk)
            try:
                image = read_photo(tmp)
            except (OSError, ValueError) as e:
                reason = str(e).split(": ", 1)[-1]
                return _error(415 if "not a readable image" in reason else 400, f"{name}: {reason}")
        finally:
            Path(tmp).unlink(missing_ok=True)
        try:
            result = worker.deblur(image, aligned=aligned, keep=keep_ids)
        except Busy as e:
            return _error(503, str(e), **{"Retry-After": "5"})
        except NoFaceError as e:
            return _error(422, f"{name}: {e}")
        except RuntimeError as e:
            return _error(500, str(e))
        if output == "report":
            counts = np.bincount(result.mask.ravel(), minlength=len(CLASSES))[: len(CLASSES)]
            faces = [{"box": [int(v) for v in f.box], "size": int(f.size), "restored": not f.skipped,
                      "skipped": f.skipped} for f in result.faces]
            return {"file": name, "width": image.shape[1], "height": image.shape[0], "aligned": aligned,
                    "faces": faces, "restored_faces": sum(not f.skipped for f in result.faces) if not aligned else 1,
                    "mask_share": {c: float(n) / result.mask.size for c, n in zip(CLASSES, counts, strict=True)}}
        if output == "mask":
            ok, buf = cv2.imencode(".png", cv2.cvtColor(colorize_mask(result.mask), cv2.COLOR_RGB2BGR))
            return Response(buf.tobytes(), media_type="image/png")
        jpeg = Path(name).suffix.lower() in (".jpg", ".jpeg")
        bgr = cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg" if jpeg else ".png", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95] if jpeg else [])
        return Response(buf.tobytes(), media_type="image/jpeg" if jpeg else "image/png")


class Server:
    """A running ``smfd serve``: ``url``, ``work_dir`` (results and uploads) and ``close()``, which stops it and
    deletes ``work_dir`` with every photo in it."""

    def __init__(self, server, thread: threading.Thread | None, url: str, work_dir: Path, worker: ModelWorker,
                 restore_env=lambda: None):
        self._server, self._thread, self.url, self.work_dir, self.worker = server, thread, url, work_dir, worker
        self._restore_env = restore_env

    def close(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.worker.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self._restore_env()


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything is announced: a port in use or out of range is one line."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port}")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    except UnicodeError:  # an address that is not one (e.g. a name with an empty label)
        sock.close()
        raise ValueError(f"--host: not an address, got {host!r}") from None
    sock.set_inheritable(True)
    return sock


def serve(pipe: FaceDeblurrer, *, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 20.0,
          queue_size: int = 32, keep_minutes: float = 60, keep_files: int = 200, block: bool = True,
          on_ready=None) -> Server:
    """Start the page (``/``) and the HTTP endpoint (``/api/deblur``); with ``block=False`` returns the running
    :class:`Server` (tests, benchmarks). ``on_ready(url)`` is called once the port is bound. Nothing is fetched
    from or sent to the network (:func:`stay_offline`); the temporary folder with the uploads and results is
    deleted when the server stops, or when it fails to start."""
    stay_offline()
    limit_malloc_arenas()  # before the server's threads exist
    sock = _listen(host, port)
    work_dir = Path(tempfile.mkdtemp(prefix="smfd-serve-"))
    worker = ModelWorker(pipe, queue_size)
    before = os.environ.get("GRADIO_TEMP_DIR")
    if before is None or before.startswith(tempfile.gettempdir() + os.sep + "smfd-serve-"):
        # Gradio's cache inside ours, deleted with it; set before Gradio is first imported, which reads it then
        os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "gradio")

    def restore_env():
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before

    def clean_up():
        sock.close()
        worker.close()
        shutil.rmtree(work_dir, ignore_errors=True)
        restore_env()

    try:
        import gradio as gr
        import uvicorn
        from fastapi import FastAPI

        for sub in ("results", "uploads", "gradio"):
            (work_dir / sub).mkdir()
        blocks = build_app(worker, max_upload_mb=max_upload_mb, queue_size=queue_size, keep_minutes=keep_minutes,
                           keep_files=keep_files, out_dir=work_dir / "results")
        api = FastAPI(title="smfd", docs_url=None, redoc_url=None)
        add_http_api(api, worker, max_upload_mb=max_upload_mb, upload_dir=work_dir / "uploads",
                     keep_minutes=keep_minutes, keep_files=keep_files)
        app = gr.mount_gradio_app(api, blocks, path="", max_file_size=_gradio_file_limit(max_upload_mb),
                                  show_error=True, allowed_paths=[str(work_dir / "results")])
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    except BaseException:
        clean_up()
        raise
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    if block:
        try:
            if on_ready:
                on_ready(url)
            server.run(sockets=[sock])
        finally:
            clean_up()
        return Server(server, None, url, work_dir, worker)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        time.sleep(0.05)
    else:
        server.should_exit = True
        thread.join(timeout=10)
        clean_up()
        raise RuntimeError(f"the server did not start on {url}")
    if on_ready:
        on_ready(url)
    return Server(server, thread, url, work_dir, worker, restore_env)


def _gradio_file_limit(max_upload_mb: float) -> int:
    """The page's own upload limit in bytes: a little over ours, as Gradio states limits in MiB ('19.1 Mb' for
    20 MB); the handler refuses anything over ``max_upload_mb`` MB with our message."""
    return int(math.ceil(max_upload_mb * 1e6 / 2**20) * 2**20)


__all__ = ["Busy", "ModelWorker", "Server", "add_http_api", "build_app", "make_handler", "serve", "stay_offline",
           "sweep"]
