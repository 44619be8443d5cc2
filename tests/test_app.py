"""The web app: handler checks, and a real browser (Debian chromium via Playwright) uploading a face."""

import os
import shutil
import socket

import pytest

from helpers import make_tiny_bundle
from smfd.samples import samples_dir

gr = pytest.importorskip("gradio")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    import smfd

    return smfd.load_pipeline(str(make_tiny_bundle(tmp_path_factory.mktemp("w") / "bundle")))


def test_handler_checks_uploads(pipe, tmp_path):
    from smfd.app import make_handler

    handler = make_handler(pipe, max_upload_mb=0.01, out_dir=tmp_path)
    with pytest.raises(gr.Error, match="Upload a photo first"):
        handler(None, False, [])
    big = tmp_path / "big.png"
    big.write_bytes(b"x" * 20_000)
    with pytest.raises(gr.Error, match="limit is 0.01 MB"):
        handler(str(big), False, [])
    text = tmp_path / "note.png"
    text.write_text("not an image")
    with pytest.raises(gr.Error, match="note.png: not a readable image") as e:
        make_handler(pipe, 20, tmp_path)(str(text), False, [])
    assert e.value.print_exception is False  # a user's bad file is no fault of the server: no traceback in its log
    (image, out), mask, faces, download, status = make_handler(pipe, 20, tmp_path)(
        str(samples_dir() / "images" / "00004.jpg"), True, ["hair"])
    assert out.shape == image.shape == (256, 256, 3) and mask.shape == (256, 256, 3)
    assert len(faces) == 1 and faces[0][0].shape == (256, 2 * 256 + 8, 3)  # the face, before | after
    assert os.path.isfile(download) and status == "Restored the face crop."
    assert os.path.basename(download) == "00004_deblurred.jpg"  # named after the upload
    with pytest.raises(gr.Error, match="00004.jpg: 256x256 is over the 0.05 MP limit"):  # serve --max-megapixels
        make_handler(pipe, 20, tmp_path, max_pixels=50_000)(str(samples_dir() / "images" / "00004.jpg"), True, [])


def test_the_page_explains_itself_and_its_limits():
    from smfd.app import PAGE_HEADER, _gradio_file_limit

    assert "runs on this machine only" in PAGE_HEADER.lower() and "restore blurry faces" in PAGE_HEADER.lower()
    assert not any(w in PAGE_HEADER for w in ("fp32", "190 minutes", "--aligned"))
    assert _gradio_file_limit(20) / 2**20 >= 20 > (_gradio_file_limit(20) - 2**20) / 2**20  # Gradio: "20 Mb"


def test_the_page_handler_on_a_whole_photo(tmp_path):
    pytest.importorskip("dlib")
    import cv2
    import numpy as np
    from PIL import Image

    import smfd
    from smfd.app import make_handler

    face = cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.copyMakeBorder(face, 60, 40, 120, 80, cv2.BORDER_CONSTANT, value=(90, 120, 150))
    im = Image.fromarray(photo)
    exif = im.getexif()
    exif[0x010F] = "Canon"
    im.save(tmp_path / "party.jpg", exif=exif.tobytes(), quality=95)
    (tmp_path / "wall.png").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((200, 300, 3), 120, np.uint8))
    handler = make_handler(smfd.load_pipeline(str(make_tiny_bundle(tmp_path / "b"))), 20, tmp_path / "out")
    (tmp_path / "out").mkdir()
    (before, after), mask, faces, download, status = handler(str(tmp_path / "party.jpg"), False, [])
    assert status == "Restored 1 face(s)." and before.shape == after.shape == photo.shape and len(faces) == 1
    with Image.open(download) as out:
        assert out.getexif()[0x010F] == "Canon" and os.path.basename(download) == "party_deblurred.jpg"
    with pytest.raises(gr.Error) as e:
        handler(str(tmp_path / "wall.png"), False, [])
    assert "wall.png: no face found" in str(e.value) and "--aligned" not in str(e.value)
    assert "Aligned face crop" in str(e.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(pipe):
    from smfd.app import serve

    port = _free_port()
    app = serve(pipe, port=port, block=False, max_upload_mb=0.5)
    yield app
    app.close()


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def test_browser_upload_shows_the_output(server, page, tmp_path):
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
    page.goto(server.url)
    page.locator("#upload input[type=file]").set_input_files(str(samples_dir() / "images" / "00004.jpg"))
    page.locator("#aligned input").check()
    page.locator("#deblur").click()
    page.locator("#output-image img").first.wait_for(timeout=120_000)  # the before/after slider holds two images
    page.get_by_text("Restored the face crop.").wait_for(timeout=30_000)
    shot = tmp_path / "web_ui.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("SMFD_SCREENSHOT"):
        shutil.copy(shot, os.environ["SMFD_SCREENSHOT"])
    assert page.locator("#mask-image img").count() == 1 and shot.stat().st_size > 10_000
    assert page.locator("#faces img").count() >= 1  # the face enlarged, before | after
    assert outside == []  # the page loads nothing from elsewhere (fonts, scripts, analytics)


def test_browser_rejects_a_non_image(server, page, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_text("definitely not a picture")
    page.goto(server.url)
    page.locator("#upload input[type=file]").set_input_files(str(fake))
    page.locator("#deblur").click()
    page.get_by_text("holiday.png: not a readable image").first.wait_for(timeout=60_000)
    assert page.locator("#output-image img").count() == 0


def test_http_endpoint_status_codes(server, tmp_path):
    import cv2
    import httpx
    import numpy as np

    url = f"{server.url}/api/deblur"
    face = samples_dir() / "images" / "00004.jpg"
    with open(face, "rb") as f:
        r = httpx.post(url, params={"aligned": "true"}, files={"file": ("00004.jpg", f)}, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR).shape == (256, 256, 3)
    with open(face, "rb") as f:
        r = httpx.post(url, params={"aligned": "true", "output": "report", "keep": "hair"},
                       files={"file": ("00004.jpg", f)}, timeout=120)
    assert r.status_code == 200 and abs(sum(r.json()["mask_share"].values()) - 1) < 1e-6
    cases = [("broken.jpg", face.read_bytes()[:300], 400, "cannot decode"),
             ("notes.png", b"just some text, not a picture", 415, "not a readable image"),
             ("big.png", b"x" * 700_000, 413, "0.5 MB limit")]
    for name, data, code, words in cases:
        r = httpx.post(url, files={"file": (name, data)}, timeout=60)
        named = name in r.json()["error"] or code == 413  # too large: refused before the form (and name) is read
        assert r.status_code == code and words in r.json()["error"] and named, (name, r.text)
    pytest.importorskip("dlib")
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((200, 300, 3), 120, np.uint8))
    with open(wall, "rb") as f:
        r = httpx.post(url, files={"file": ("wall.png", f)}, timeout=60)
    assert r.status_code == 422 and "no face found" in r.json()["error"]


def test_busy_is_a_clean_reply(pipe):
    import threading

    import numpy as np

    from smfd.app import Busy, ModelWorker

    worker = ModelWorker(pipe, queue_size=1)
    gate = threading.Event()
    real = pipe.deblur
    pipe.deblur = lambda *a, **k: (gate.wait(10), real(*a, **k))[1]
    try:
        t = threading.Thread(target=worker.deblur, args=(np.zeros((32, 32, 3), np.uint8),), kwargs={"aligned": True})
        t.start()
        import time

        time.sleep(0.2)
        with pytest.raises(Busy, match="try again"):
            worker.deblur(np.zeros((32, 32, 3), np.uint8), aligned=True)
        gate.set()
        t.join(10)
    finally:
        pipe.deblur = real
        worker.close()


def _forced_errors():
    """(error raised inside the pipeline, endpoint status, endpoint's error, page's notice) for each kind."""
    from smfd.errors import BadImage, BadOption, NoFaceError, NotAnImage, OverLimit, SmfdError
    from smfd.http_api import Busy

    return [
        (NoFaceError("no face found"), 422, "a.jpg: no face found; for a face crop use aligned=true",
         "a.jpg: no face found. If it is a face crop, tick 'Aligned face crop'."),
        (NotAnImage("not a readable image", "/tmp/x/tmpab12.jpg"), 415, "a.jpg: not a readable image",
         "a.jpg: not a readable image"),
        (OverLimit("9000x9000 is over the 50 MP limit", "/tmp/x/tmpab12.jpg"), 400,
         "a.jpg: 9000x9000 is over the 50 MP limit", "a.jpg: 9000x9000 is over the 50 MP limit"),
        (BadImage("file is empty", "/tmp/x/tmpab12.jpg"), 400, "a.jpg: file is empty", "a.jpg: file is empty"),
        (BadOption("unknown region 'beard' for keep"), 400, "a.jpg: unknown region 'beard' for keep",
         "a.jpg: unknown region 'beard' for keep"),
        (SmfdError("something smfd refuses"), 400, "a.jpg: something smfd refuses", "a.jpg: something smfd refuses"),
        (Busy("busy: 32 requests are already waiting; try again in a few seconds"), 503,
         "busy: 32 requests are already waiting; try again in a few seconds",
         "busy: 32 requests are already waiting; try again in a few seconds"),
        (OSError(5, "Input/output error"), 400, "a.jpg: the upload cannot be read", "a.jpg: the file cannot be read"),
        (RuntimeError("whole-photo mode needs face detection"), 500, "whole-photo mode needs face detection",
         "whole-photo mode needs face detection"),
        (ValueError("could not align the face\n(degenerate landmarks)"), 500,
         "a.jpg: restoring it failed (could not align the face (degenerate landmarks))",
         "a.jpg: restoring it failed (could not align the face (degenerate landmarks))"),
        (KeyError("landmarks"), 500, "a.jpg: restoring it failed ('landmarks')",
         "a.jpg: restoring it failed ('landmarks')"),
    ]


@pytest.mark.parametrize("error, status, words, notice", _forced_errors(), ids=lambda v: type(v).__name__)
def test_every_error_of_the_endpoint_is_one_line_of_json(server, monkeypatch, error, status, words, notice):
    import httpx

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(server.worker.pipe, "deblur", fail)
    r = httpx.post(f"{server.url}/api/deblur", files={"file": ("a.jpg", _face_bytes())}, timeout=60)
    assert (r.status_code, r.json()) == (status, {"error": words}) and "\n" not in r.text
    assert (r.headers.get("retry-after") == "5") == (status == 503)


@pytest.mark.parametrize("error, status, words, notice", _forced_errors(), ids=lambda v: type(v).__name__)
def test_every_error_of_the_page_is_a_notice(tmp_path, error, status, words, notice):
    from smfd.app import make_handler

    class Failing:
        def deblur(self, *args, **kwargs):
            raise error

    shutil.copy(samples_dir() / "images" / "00004.jpg", tmp_path / "a.jpg")
    with pytest.raises(gr.Error) as e:
        make_handler(Failing(), 20, tmp_path / "out")(str(tmp_path / "a.jpg"), False, [])
    assert e.value.message == notice


def test_sweep_removes_old_results_and_keeps_fresh_ones(tmp_path):
    import time

    from smfd.app import sweep

    for i in range(5):
        (tmp_path / f"r{i}.png").write_bytes(b"x")
    old = time.time() - 7200
    os.utime(tmp_path / "r0.png", (old, old))
    assert sweep(tmp_path, max_age_s=3600, max_files=100) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.png", "r2.png", "r3.png", "r4.png"]
    for i, p in enumerate(sorted(tmp_path.iterdir())):
        os.utime(p, (time.time() - 10 * (4 - i), time.time() - 10 * (4 - i)))  # r4 newest
    assert sweep(tmp_path, max_age_s=3600, max_files=2) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r3.png", "r4.png"]


def test_heap_arenas_are_capped_unless_the_environment_sets_them(monkeypatch):
    import platform

    from smfd.app import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # glibc read the user's own setting at start-up
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert limit_malloc_arenas() is True


NET_GUARD = '''
import atexit, ipaddress, json, socket, sys

OUTBOUND = []


def _local(host):
    host = host.decode() if isinstance(host, bytes) else host
    if host in (None, "", "localhost") or str(host).endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback or str(host) in ("0.0.0.0", "::")
    except ValueError:
        return False


_getaddrinfo, _connect, _connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex


def getaddrinfo(host, *args, **kwargs):
    if not _local(host):
        OUTBOUND.append(f"lookup {host}")
        raise socket.gaierror(f"blocked: lookup of {host}")
    return _getaddrinfo(host, *args, **kwargs)


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        OUTBOUND.append(f"connect {address[0]}")
        raise OSError(f"blocked: connection to {address[0]}")


def connect(self, address):
    _check(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(self, address)
    return _connect_ex(self, address)


socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex = getaddrinfo, connect, connect_ex
atexit.register(lambda: print("outbound: " + json.dumps(OUTBOUND), file=sys.stderr, flush=True))
'''


def _start_cli_server(tmp_path, *args):
    """``smfd serve ARGS`` in a child process with every DNS look-up and connection outside loopback blocked and
    recorded; its temporary files under ``tmp_path / "tmp"``. Returns (process, url, the first stdout line)."""
    import subprocess
    import sys

    (tmp_path / "guard").mkdir(exist_ok=True)
    (tmp_path / "guard" / "netguard.py").write_text(NET_GUARD)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "guard"), os.environ.get("PYTHONPATH", "")])}
    for key in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_OFFLINE", "GRADIO_TEMP_DIR"):  # the server must set them
        env.pop(key, None)
    code = "import sys, netguard; from smfd.cli import main; sys.argv = ['smfd', *sys.argv[1:]]; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # blocks until the server is up (or the process ended)
    url = line.split()[2] if line.startswith("smfd on ") else None
    return proc, url, line


def test_the_server_is_offline_and_leaves_no_photos_behind(pipe, tmp_path):
    """No look-up or connection outside loopback at start-up or while serving (Gradio's analytics and version
    check, Hugging Face telemetry); Ctrl-C stops it and deletes the folder with the uploads and results."""
    import signal

    import httpx

    from helpers import make_tiny_bundle

    bundle = make_tiny_bundle(tmp_path / "bundle")
    proc, url, line = _start_cli_server(tmp_path, "--port", str(_free_port()), "--weights", str(bundle))
    try:
        assert url, (line, proc.stderr.read() if proc.poll() is not None else "")
        assert "offline" in line
        assert httpx.get(url + "/").status_code == 200
        assert httpx.get(url + "/config").json()["analytics_enabled"] is False
        with open(samples_dir() / "images" / "00004.jpg", "rb") as f:
            r = httpx.post(f"{url}/api/deblur", params={"aligned": "true"}, files={"file": ("a.jpg", f)},
                           timeout=120)
        assert r.status_code == 200
        # the page's API would download a file given as a URL from anywhere: refused before Gradio sees it
        remote = {"path": "https://example.com/face.png", "url": "https://example.com/face.png",
                  "meta": {"_type": "gradio.FileData"}, "orig_name": "face.png"}
        for route, body in (("call/deblur", {"data": [remote, True, []]}),
                            ("queue/join", {"data": [remote, True, []], "fn_index": 0, "session_hash": "x"})):
            r = httpx.post(f"{url}/gradio_api/{route}", json=body, timeout=30)
            assert r.status_code == 400 and r.json() == {"error": "files must be uploaded, not given as URLs"}
        assert [p.name[:11] for p in (tmp_path / "tmp").iterdir()] == ["smfd-serve-"]  # while it runs
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130) and "Traceback" not in err, err  # 130: stopped by SIGINT, as it was
    assert "outbound: []" in err, err
    assert list((tmp_path / "tmp").iterdir()) == []  # the uploads and results went with it


def test_a_server_that_cannot_start_says_so_in_one_line_and_leaves_nothing(tmp_path, run_cli):
    res = run_cli(["serve", "--port", "70000"])
    assert res.code == 2 and res.err.strip() == "smfd: error: --port must be 1..65535, got 70000"
    res = run_cli(["serve", "--max-megapixels", "0"])
    assert res.code == 2 and "--max-megapixels must be positive" in res.err and res.err.count("\n") == 1
    from helpers import make_tiny_bundle

    bundle = make_tiny_bundle(tmp_path / "bundle")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc, url, line = _start_cli_server(tmp_path, "--port", str(port), "--weights", str(bundle))
        _, err = proc.communicate(timeout=120)
    assert url is None and proc.returncode == 1
    assert err.splitlines()[0] == f"smfd: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert list((tmp_path / "tmp").iterdir()) == []



def test_serve_restores_big_faces_as_deblur_is_told_to(tmp_path, run_cli, monkeypatch):
    """The page and the endpoint take --max-work-size and --no-mirror as smfd deblur does."""
    pytest.importorskip("gradio")
    import smfd.app
    from helpers import make_tiny_bundle

    bundle = make_tiny_bundle(tmp_path / "bundle")
    served = []
    monkeypatch.setattr(smfd.app, "serve", lambda pipe, **kw: served.append(pipe))
    res = run_cli(["serve", "--weights", str(bundle), "--max-work-size", "384", "--no-mirror"])
    assert res.code == 0, res.err
    assert served[0].max_work_size == 384 and not served[0].mirror_big
    res = run_cli(["serve", "--weights", str(bundle)])
    assert res.code == 0 and served[1].max_work_size == 512 and served[1].mirror_big
    res = run_cli(["serve", "--max-work-size", "200"])
    assert res.code == 2 and res.err.strip() == "smfd: error: --max-work-size must be at least 256, got 200"


def _face_bytes() -> bytes:
    return (samples_dir() / "images" / "00004.jpg").read_bytes()


def _png(array) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _http_cases():
    """(id, request keyword arguments, expected status, words in the error): what hostile or careless clients
    send. Each must get one line of JSON with the documented code, and leave nothing behind."""
    import numpy as np

    face = _face_bytes()
    tiny = _png(np.zeros((4, 4, 3), np.uint8))
    chunks = (b for b in (face[:100], face[100:]))
    return [
        ("no file field", {"files": {"photo": ("a.jpg", face)}}, 400, "no 'file' field"),
        ("raw body", {"content": face, "headers": {"content-type": "image/jpeg"}}, 400, "not a multipart form"),
        ("two files", {"files": [("file", ("a.jpg", face)), ("file", ("b.jpg", face))]}, 400, "2 'file' fields"),
        ("text field", {"data": {"file": "hello"}, "files": {"other": ("x", b"x")}}, 400, "text field"),
        ("urlencoded", {"data": {"file": "a.jpg"}}, 400, "not a multipart form"),
        ("no body", {}, 400, "not a multipart form"),
        ("chunked", {"content": chunks, "headers": {"content-type": "multipart/form-data; boundary=x"}}, 411,
         "Content-Length"),
        ("unknown option", {"params": {"align": "true"}, "files": {"file": ("a.jpg", face)}}, 400,
         "unknown option 'align'"),
        ("bad flag", {"params": {"aligned": "maybe"}, "files": {"file": ("a.jpg", face)}}, 400,
         "aligned must be true or false"),
        ("bad strip flag", {"params": {"strip_metadata": "2"}, "files": {"file": ("a.jpg", face)}}, 400,
         "strip_metadata must be true or false"),
        ("repeated option", {"params": [("aligned", "true"), ("aligned", "false")],
                             "files": {"file": ("a.jpg", face)}}, 400, "given 2 times"),
        ("bad output", {"params": {"output": "pdf"}, "files": {"file": ("a.jpg", face)}}, 400, "output must be"),
        ("bad keep", {"params": {"keep": "beard"}, "files": {"file": ("a.jpg", face)}}, 400, "unknown region"),
        ("broken jpeg", {"files": {"file": ("broken.jpg", face[:300])}}, 400, "broken.jpg: cannot decode"),
        ("text as png", {"files": {"file": ("notes.png", b"just some text")}}, 415, "notes.png: not a readable"),
        ("empty file", {"files": {"file": ("empty.jpg", b"")}}, 400, "empty.jpg: file is empty"),
        ("tiny image", {"files": {"file": ("tiny.png", tiny)}}, 400, "tiny.png: 4x4 is too small"),
        ("over the limit", {"files": {"file": ("big.png", b"x" * 700_000)}}, 413, "0.5 MB limit"),
        ("html upload", {"files": {"file": ("x.html", b"<script>alert(1)</script>")}}, 415, "not a readable"),
        ("path in name", {"files": {"file": ("../../etc/passwd", b"root:x:0:0")}}, 415, "passwd: not a readable"),
        ("zip bomb name", {"files": {"file": ("a.png", b"PK\x03\x04" + b"\0" * 100)}}, 415, "not a readable"),
        ("a video", {"files": {"file": ("clip.mp4", b"\0\0\0\x18ftypmp42" + b"\0" * 100)}}, 415,
         "clip.mp4: not a readable image: a video; this endpoint takes photos"),
        ("a video named .jpg", {"files": {"file": ("clip.jpg", b"\x1aE\xdf\xa3" + b"\0" * 100)}}, 415,
         "clip.jpg: not a readable image: a video"),
        ("text named .mp4", {"files": {"file": ("notes.mp4", b"just some text, not a clip")}}, 415,
         "notes.mp4: not a readable image"),  # not called a video: its content is text
        ("photo format named .mov", {"files": {"file": ("a.mov", b"\0\0\0\x18ftypheic" + b"\0" * 100)}}, 415,
         "a.mov: not a readable image"),
    ]


@pytest.mark.parametrize("case", _http_cases(), ids=lambda c: c[0])
def test_http_contract_for_bad_requests(server, case):
    import httpx

    _, kwargs, code, words = case
    # other tests on the same server may have kept their results (--keep-minutes): a refused request adds none
    before = {d: set((server.work_dir / d).iterdir()) for d in ("uploads", "results")}
    r = httpx.post(f"{server.url}/api/deblur", timeout=60, **kwargs)
    assert r.status_code == code, r.text
    assert list(r.json()) == ["error"] and words in r.json()["error"] and "\n" not in r.text, r.text
    assert ("a video" in r.json()["error"]) == ("a video" in words)  # by what the upload holds, not its name
    assert set((server.work_dir / "uploads").iterdir()) <= before["uploads"]  # nothing of the upload stays
    assert set((server.work_dir / "results").iterdir()) <= before["results"]


def test_http_other_methods_and_bombs(server, tmp_path):
    import httpx

    r = httpx.get(f"{server.url}/api/deblur")
    assert r.status_code == 405 and "use POST" in r.json()["error"] and r.headers["allow"] == "POST"
    from helpers import write_bad_inputs

    bad = write_bad_inputs(tmp_path)
    r = httpx.post(f"{server.url}/api/deblur", files={"file": ("bomb.png", bad["bomb"].read_bytes())}, timeout=60)
    assert r.status_code == 400 and "MP limit" in r.json()["error"] and "--max-megapixels" not in r.text


def test_http_results_keep_what_the_photo_carries(server):
    import io

    import httpx
    import numpy as np
    from PIL import Image

    im = Image.open(samples_dir() / "images" / "00004.jpg")
    exif = im.getexif()
    exif[0x010F] = "Canon"
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    url = f"{server.url}/api/deblur"
    r = httpx.post(url, params={"aligned": "true"}, files={"file": ("a.jpg", buf.getvalue())}, timeout=120)
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).getexif()[0x010F] == "Canon"
    r = httpx.post(url, params={"aligned": "1", "strip_metadata": "true"}, files={"file": ("a.jpg", buf.getvalue())},
                   timeout=120)
    assert r.status_code == 200 and not Image.open(io.BytesIO(r.content)).getexif()
    rgba = np.dstack([np.asarray(im), np.full(im.size[::-1], 77, np.uint8)])
    r = httpx.post(url, params={"aligned": "true"}, files={"file": ("cut.png", _png(rgba))}, timeout=120)
    back = np.asarray(Image.open(io.BytesIO(r.content)))
    assert r.headers["content-type"] == "image/png" and back.shape == (256, 256, 4) and (back[..., 3] == 77).all()


def test_an_oversized_aligned_request_stays_small(server, monkeypatch):
    """4000x3000 'crops' once took 6 GB: the nets see the working size, the reply is the upload's size."""
    import io

    import cv2
    import httpx
    import numpy as np
    from PIL import Image

    face = cv2.imdecode(np.frombuffer(_face_bytes(), np.uint8), cv2.IMREAD_COLOR)
    ok, buf = cv2.imencode(".jpg", cv2.resize(face, (2000, 1500)))
    seen = []
    real = server.worker.pipe._run
    monkeypatch.setattr(server.worker.pipe, "_run", lambda lq, *a: (seen.append(tuple(lq.shape)), real(lq, *a))[1])
    r = httpx.post(f"{server.url}/api/deblur", params={"aligned": "true"}, files={"file": ("big.jpg", buf.tobytes())},
                   timeout=120)
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (2000, 1500)
    assert seen == [(1, 3, 384, 512)]  # the one path: at most 512 px a side, as photos and the command line


def test_the_page_api_answers_with_a_slider_the_faces_and_a_named_download(server, tmp_path):
    """What the browser gets, through the page's own API (no browser needed)."""
    gradio_client = pytest.importorskip("gradio_client")

    client = gradio_client.Client(server.url, verbose=False)
    slider, mask, faces, download, status = client.predict(
        gradio_client.handle_file(str(samples_dir() / "images" / "00004.jpg")), True, [], api_name="/deblur")
    assert status == "Restored the face crop." and len(slider) == 2 and len(faces) == 1
    assert os.path.basename(download) == "00004_deblurred.jpg"
    (tmp_path / "holiday.png").write_text("definitely not a picture")
    with pytest.raises(Exception, match="holiday.png: not a readable image"):
        client.predict(gradio_client.handle_file(str(tmp_path / "holiday.png")), False, [], api_name="/deblur")


def test_sigterm_and_a_killed_server_leave_no_photos_behind(tmp_path):
    """A server stopped by SIGTERM (systemd, docker stop) deletes its folder; one that was killed outright has its
    folder deleted by the next start."""
    import subprocess
    import sys

    from helpers import make_tiny_bundle

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "tmp" / "smfd-serve-killed"
    stale.mkdir(parents=True)
    (stale / "pid").write_text(gone.stdout.strip())  # a process that no longer runs
    (stale / "results").mkdir()
    (stale / "results" / "someones_photo.jpg").write_bytes(b"x")
    other = tmp_path / "tmp" / "smfd-serve-running"
    other.mkdir()
    (other / "pid").write_text(str(os.getpid()))  # a server still running: left alone
    bundle = make_tiny_bundle(tmp_path / "bundle")
    proc, url, line = _start_cli_server(tmp_path, "--port", str(_free_port()), "--weights", str(bundle))
    try:
        assert url, line
        names = sorted(p.name for p in (tmp_path / "tmp").iterdir())
        assert "smfd-serve-killed" not in names and "smfd-serve-running" in names and len(names) == 2
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == ["smfd-serve-running"]


def test_an_app_built_without_a_folder_removes_its_own_at_exit(tmp_path):
    """build_app() used as a library (no out_dir): its temporary folder holds its process id (so a later server
    sweeps it if this process is killed) and goes when the process ends."""
    import subprocess
    import sys

    bundle = make_tiny_bundle(tmp_path / "bundle")
    (tmp_path / "tmp").mkdir()
    code = ("import os, smfd; from smfd.app import build_app; build_app(smfd.load_pipeline(os.environ['B'])); "
            "print(sorted(p.name[:11] for p in __import__('pathlib').Path(os.environ['TMPDIR']).iterdir()))")
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "B": str(bundle)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "'smfd-serve-'" in out.stdout  # while it ran
    assert not list((tmp_path / "tmp").glob("smfd-serve-*"))  # and not after
