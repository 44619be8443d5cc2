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
* the same limits and one-line errors as the command line;
* private: nothing is sent out (:func:`stay_offline`: no Gradio analytics or version check, no Hugging Face Hub
  calls), and the folder with the uploads and results is deleted when the server stops or fails to start.

HTTP endpoint (``POST /api/deblur``, multipart field ``file``; its contract is in :mod:`smfd.http_api`)::

    curl -F file=@photo.jpg http://127.0.0.1:7860/api/deblur -o restored.jpg
    curl -F file=@crop.png "http://127.0.0.1:7860/api/deblur?aligned=true&keep=hair&output=report"
"""


import atexit
import concurrent.futures
import ctypes
import ctypes.util
import logging
import math
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from .errors import NoFaceError, SmfdError
from .http_api import Busy, LocalFilesOnly, add_http_api, sweep
from .infer.photo_io import MAX_PIXELS, open_photo, output_format, save_photo
from .infer.pipeline import FaceDeblurrer
from .report.palette import colorize_mask

KEEP_CHOICES = ["hair", "wearables", "background"]

#: Set before Gradio is imported or builds anything: no usage analytics or version check (api.gradio.app), no
#: Hugging Face Hub telemetry or look-ups (huggingface.co). The server then makes no outbound connection.
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "DO_NOT_TRACK": "1"}


def stay_offline() -> None:
    """Switch off everything in Gradio and the Hugging Face Hub client that calls out (see ``OFFLINE_ENV``)."""
    os.environ.update(OFFLINE_ENV)


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


SHOWN_SIDE = 1600  # the page shows photos at most this wide or high; the download is full size


def _shown(image: np.ndarray, side: int = SHOWN_SIDE) -> np.ndarray:
    """A copy small enough to send to the browser (the page shows it at a fraction of that anyway)."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def face_pairs(image: np.ndarray, result, aligned: bool, size: int = 256) -> list[tuple[np.ndarray, str]]:
    """Each restored face enlarged: (before | after at ``size`` px, caption) for the page's gallery."""
    from .infer.faces import align, alignment_matrix

    if aligned:
        pairs = [(_shown(image, size), _shown(result.image, size))]
    else:
        # each face shown at ``size`` px whatever side it was restored at
        mats = [alignment_matrix(f.landmarks, size) for f in result.faces if not f.skipped]
        pairs = [(align(image, m, size), align(result.image, m, size)) for m in mats]
    gap = lambda a: np.full((a.shape[0], 8, 3), 255, np.uint8)  # noqa: E731
    return [(np.hstack([b, gap(b), a]), f"face {i + 1}: before | after") for i, (b, a) in enumerate(pairs)]


def _user_error(message: str):
    """A message for the page, without a traceback in the server's log (the user's file is not a fault)."""
    import gradio as gr

    return gr.Error(message, print_exception=False)


#: The page's words for what goes wrong, by type (the first that matches), and whether it is a fault of the server
#: (its traceback logged). ``{name}``: the upload's name; ``{reason}``: the error's own words about it.
PAGE_ERRORS: tuple[tuple[type[BaseException], str, bool], ...] = (
    (Busy, "{reason}", False),
    (NoFaceError, "{name}: {reason}. If it is a face crop, tick 'Aligned face crop'.", False),
    (SmfdError, "{name}: {reason}", False),
    (OSError, "{name}: the file cannot be read", False),
    (RuntimeError, "{reason}", False),  # e.g. face detection not installed
    (Exception, "{name}: restoring it failed ({reason})", True),
)


def page_error(e: Exception, name: str):
    """The page's notice for ``e`` (:data:`PAGE_ERRORS`)."""
    words, fault = next((words, fault) for kind, words, fault in PAGE_ERRORS if isinstance(e, kind))
    if fault:
        logging.getLogger("smfd").error("restoring %s failed", name, exc_info=e)
    reason = e.reason if isinstance(e, SmfdError) else " ".join(str(e).split())
    return _user_error(words.format(name=name, reason=reason))


def make_handler(pipe: FaceDeblurrer | ModelWorker, max_upload_mb: float, out_dir: Path, *, keep_minutes: float = 60,
                 keep_files: int = 200, max_pixels: int = MAX_PIXELS):
    """The function behind the Deblur button: (file, aligned, keep) -> ((input, output) for the before/after slider,
    mask, [(face before | after, caption)], download path, status). The download is named after the upload
    (``NAME_deblurred.jpg``) and keeps its EXIF and ICC profile."""
    worker = pipe if isinstance(pipe, ModelWorker) else ModelWorker(pipe)

    def deblur(path: str | None, aligned: bool, keep: list[str]):
        if not path:
            raise _user_error("Upload a photo first.")
        size_mb = os.path.getsize(path) / 1e6
        if size_mb > max_upload_mb:
            raise _user_error(f"The file is {size_mb:.1f} MB; the limit is {max_upload_mb:g} MB.")
        name = Path(path).name
        try:
            photo = open_photo(path, max_pixels=max_pixels)
            result = worker.deblur(photo.image, aligned=aligned, keep=keep or ())
        except Exception as e:
            raise page_error(e, name) from None
        sweep(out_dir, max_age_s=keep_minutes * 60, max_files=keep_files)
        fmt = output_format(photo, Path(name).suffix)
        out_path = Path(tempfile.mkdtemp(dir=out_dir)) / f"{Path(name).stem}_deblurred.{fmt}"
        save_photo(out_path, photo, result.image)
        restored = [f for f in result.faces if not f.skipped]
        status = "Restored the face crop." if aligned else f"Restored {len(restored)} face(s)."
        skipped = [f.skipped for f in result.faces if f.skipped]
        if skipped:
            status += f" Skipped {len(skipped)}: {skipped[0]}."
        if not aligned and max(photo.image.shape[:2]) > SHOWN_SIDE:
            status += " Shown smaller here; the download is full size."
        shown = (_shown(photo.image), _shown(result.image))
        return (shown, _shown(colorize_mask(result.mask)), face_pairs(photo.image, result, aligned), str(out_path),
                status)

    return deblur


PAGE_HEADER = """# Restore blurry faces
Upload a photo: the faces in it are found, restored and blended back; compare before and after with the slider,
and each face enlarged below. For a face crop already aligned like a passport photo, tick *Aligned face crop*.
Runs on this machine only: nothing is sent anywhere, and uploads and results are deleted after {minutes:g} minutes
(and when the server stops)."""


def build_app(pipe: FaceDeblurrer | ModelWorker, *, max_upload_mb: float = 20.0, queue_size: int = 32,
              keep_minutes: float = 60, keep_files: int = 200, out_dir: Path | None = None,
              max_pixels: int = MAX_PIXELS):
    """The Gradio Blocks app: upload, options, a before/after slider, the face mask, each face before | after,
    download."""
    stay_offline()
    import gradio as gr

    worker = pipe if isinstance(pipe, ModelWorker) else ModelWorker(pipe, queue_size)
    if out_dir is None:  # a folder of its own: deleted at exit, or by the next server if this process is killed
        out_dir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
        (out_dir / "pid").write_text(str(os.getpid()))
        atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    # Gradio's own cache (uploads, shown images): checked every 10 minutes, files older than keep_minutes removed
    with gr.Blocks(title="smfd: restore blurry faces", delete_cache=(600, int(keep_minutes * 60)),
                   analytics_enabled=False) as app:
        gr.Markdown(PAGE_HEADER.format(minutes=keep_minutes))
        with gr.Row():
            upload = gr.File(label=f"Photo (JPEG, PNG, ...; up to {max_upload_mb:g} MB)", file_types=["image"],
                             type="filepath", elem_id="upload")
            with gr.Column():
                aligned = gr.Checkbox(label="Aligned face crop (like the training faces)", value=False,
                                      elem_id="aligned")
                keep = gr.CheckboxGroup(KEEP_CHOICES, label="Keep these regions from the input", elem_id="keep")
                button = gr.Button("Deblur", variant="primary", elem_id="deblur")
                status = gr.Markdown(elem_id="status")
        with gr.Row():
            compare = gr.ImageSlider(label="Before | after (drag the handle)", type="numpy", format="png",
                                     interactive=False, elem_id="output-image", max_height=700, scale=3)
            shown_mask = gr.Image(label="Face mask", type="numpy", interactive=False, elem_id="mask-image", scale=1)
        faces = gr.Gallery(label="Each face, before | after", columns=2, object_fit="contain", elem_id="faces",
                           format="png")
        download = gr.File(label="Download the result (full size, with the photo's EXIF and colour profile)",
                           elem_id="download")
        handler = make_handler(worker, max_upload_mb, out_dir, keep_minutes=keep_minutes, keep_files=keep_files,
                               max_pixels=max_pixels)
        button.click(handler, [upload, aligned, keep], [compare, shown_mask, faces, download, status],
                     concurrency_limit=1)
    app.queue(max_size=queue_size, default_concurrency_limit=1)  # one model run at a time; others wait in line
    return app


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
          on_ready=None, max_pixels: int = MAX_PIXELS) -> Server:
    """Start the page (``/``) and the HTTP endpoint (``/api/deblur``); with ``block=False`` returns the running
    :class:`Server` (tests, benchmarks). ``on_ready(url)`` is called once the port is bound. Nothing is fetched
    from or sent to the network (:func:`stay_offline`); the temporary folder with the uploads and results is
    deleted when the server stops, or when it fails to start."""
    stay_offline()
    limit_malloc_arenas()  # before the server's threads exist
    sock = _listen(host, port)
    remove_stale_work_dirs()
    work_dir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (work_dir / "pid").write_text(str(os.getpid()))
    worker = ModelWorker(pipe, queue_size)
    restore_env = _gradio_temp_in(work_dir)

    def clean_up():
        sock.close()
        worker.close()
        shutil.rmtree(work_dir, ignore_errors=True)
        restore_env()

    try:
        server = _uvicorn_server(worker, work_dir, max_upload_mb=max_upload_mb, queue_size=queue_size,
                                 keep_minutes=keep_minutes, keep_files=keep_files, max_pixels=max_pixels)
    except BaseException:
        clean_up()
        raise
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    if block:
        _run_until_stopped(server, sock, url, on_ready, clean_up)
        return Server(server, None, url, work_dir, worker)
    thread = _start_in_thread(server, sock, url, clean_up)
    if on_ready:
        on_ready(url)
    return Server(server, thread, url, work_dir, worker, restore_env)


def _gradio_temp_in(work_dir: Path) -> Callable[[], None]:
    """Gradio's cache inside ``work_dir``, deleted with it (unless the user chose a folder of their own); set before
    Gradio is first imported, which reads it then. Returns what puts ``GRADIO_TEMP_DIR`` back as it was."""
    before = os.environ.get("GRADIO_TEMP_DIR")
    if before is None or before.startswith(tempfile.gettempdir() + os.sep + WORK_PREFIX):
        os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "gradio")

    def restore_env():
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before

    return restore_env


def _uvicorn_server(worker: ModelWorker, work_dir: Path, *, max_upload_mb: float, queue_size: int,
                    keep_minutes: float, keep_files: int, max_pixels: int):
    """The page and the endpoint on one app, in a server not started yet; their folders made in ``work_dir``."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    for sub in ("results", "uploads", "gradio"):
        (work_dir / sub).mkdir()
    blocks = build_app(worker, max_upload_mb=max_upload_mb, queue_size=queue_size, keep_minutes=keep_minutes,
                       keep_files=keep_files, out_dir=work_dir / "results", max_pixels=max_pixels)
    api = FastAPI(title="smfd", docs_url=None, redoc_url=None)
    add_http_api(api, worker, max_upload_mb=max_upload_mb, upload_dir=work_dir / "uploads",
                 keep_minutes=keep_minutes, keep_files=keep_files, max_pixels=max_pixels)
    app = gr.mount_gradio_app(api, blocks, path="", max_file_size=_gradio_file_limit(max_upload_mb),
                              show_error=True, allowed_paths=[str(work_dir / "results")])
    return uvicorn.Server(uvicorn.Config(LocalFilesOnly(app), log_level="warning"))


def _run_until_stopped(server, sock: socket.socket, url: str, on_ready, clean_up: Callable[[], None]) -> None:
    """Serve in this thread until the server stops, then clean up (on an error too)."""
    # uvicorn stops gracefully on SIGTERM, then raises it again: as an exception here, so the folder still goes
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if main else None
    try:
        if on_ready:
            on_ready(url)
        server.run(sockets=[sock])
    finally:
        clean_up()
        if main:
            signal.signal(signal.SIGTERM, previous)


def _start_in_thread(server, sock: socket.socket, url: str, clean_up: Callable[[], None]) -> threading.Thread:
    """Serve from a thread of its own; returns it once the server has started (else cleans up and raises)."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            return thread
        time.sleep(0.05)
    server.should_exit = True
    thread.join(timeout=10)
    clean_up()
    raise RuntimeError(f"the server did not start on {url}")


WORK_PREFIX = "smfd-serve-"


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def remove_stale_work_dirs() -> int:
    """Delete the temporary folders of servers that ended without cleaning up (killed, or the machine lost
    power): each holds its server's process id, and a folder whose process is gone goes. Returns how many."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        try:
            pid = int((folder / "pid").read_text())
            os.kill(pid, 0)  # raises if no such process
            continue
        except ProcessLookupError:
            pass
        except (OSError, ValueError):  # another user's server, a folder being made, or not ours: left alone
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _gradio_file_limit(max_upload_mb: float) -> int:
    """The page's own upload limit in bytes: a little over ours, as Gradio states limits in MiB ('19.1 Mb' for
    20 MB); the handler refuses anything over ``max_upload_mb`` MB with our message."""
    return int(math.ceil(max_upload_mb * 1e6 / 2**20) * 2**20)


__all__ = ["Busy", "ModelWorker", "Server", "add_http_api", "build_app", "make_handler", "remove_stale_work_dirs",
           "serve", "stay_offline", "sweep"]
