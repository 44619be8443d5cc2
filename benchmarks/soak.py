"""Soak test of ``smfd serve``: rounds of concurrent requests through the page's API and the HTTP endpoint.

Starts ``smfd serve`` as a child process on loopback (its temporary files in a folder of its own), then sends
``--rounds`` rounds of ``--concurrent`` simultaneous requests, alternating the Gradio API (``gradio_client``,
what the page uses) and ``POST /api/deblur``, each an 800x800 photo with one face. Prints per round: answered /
busy / failed, p50 and p95 latency, the server's resident memory and its temporary disk, then the targets:
nothing lost except clean busy replies, memory after the last round within 15 % of after the first, temporary
disk under 100 MB throughout, Gradio's analytics off and nothing left in the temporary folder once it stops.
Only 127.0.0.1 is contacted; every loop is bounded in count and time.

Usage: python benchmarks/soak.py [--rounds 10] [--concurrent 20] [--weights default] [--out results/soak.md]
"""

import argparse
import concurrent.futures
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _disk_mb(folder: Path) -> float:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total / 1e6


def make_photo(path: Path) -> None:
    from smfd.samples import samples_dir

    face = cv2.imread(str(samples_dir() / "images" / "00004.jpg"))
    face = cv2.resize(face, (400, 400), interpolation=cv2.INTER_CUBIC)
    photo = cv2.copyMakeBorder(face, 220, 180, 200, 200, cv2.BORDER_REFLECT_101)  # 800x800, one face
    cv2.imwrite(str(path), cv2.GaussianBlur(photo, (0, 0), 2.0), [cv2.IMWRITE_JPEG_QUALITY, 90])


def http_request(url: str, photo: Path) -> tuple[str, float]:
    import httpx

    t = time.perf_counter()
    try:
        with open(photo, "rb") as f:
            r = httpx.post(f"{url}/api/deblur", files={"file": (photo.name, f)}, timeout=600)
        kind = "answered" if r.status_code == 200 else "busy" if r.status_code == 503 else "failed"
    except Exception:  # noqa: BLE001 - any transport error counts as a failure
        kind = "failed"
    return kind, time.perf_counter() - t


def gradio_request(client, photo: Path) -> tuple[str, float]:
    from gradio_client import handle_file

    t = time.perf_counter()
    try:
        client.predict(handle_file(str(photo)), False, [], api_name="/deblur")
        kind = "answered"
    except Exception as e:  # noqa: BLE001 - the queue's refusal arrives as an exception
        kind = "busy" if "queue is full" in str(e).lower() or "busy" in str(e).lower() else "failed"
    return kind, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--weights", default="default")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="smfd-soak-"))
    photo = work / "photo.jpg"
    make_photo(photo)
    tmp = work / "server-tmp"
    tmp.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_TEMP_DIR", "GRADIO_ANALYTICS_ENABLED")}
    env["TMPDIR"] = str(tmp)  # the server's own defaults: its folders under here, analytics off by itself
    server = subprocess.Popen([sys.executable, "-c", "from smfd.cli import main; main()", "serve", "--port", str(port),
                               "--weights", args.weights], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines, analytics = [], None
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise SystemExit("the server did not start")
        from gradio_client import Client

        client = Client(url, verbose=False)
        start_rss = _rss_mb(server.pid)
        lines += [f"smfd serve ({args.weights} weights) on {url}; {args.rounds} rounds of {args.concurrent} concurrent "
                  f"requests, an 800x800 photo with one face; resident memory after start-up {start_rss:.0f} MB", "",
                  "| round | API | answered | busy | failed | p50 s | p95 s | resident MB | temporary disk MB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        rss, disk, lost = [], [], 0
        for r in range(args.rounds):
            api = "page (Gradio)" if r % 2 == 0 else "HTTP /api/deblur"
            with concurrent.futures.ThreadPoolExecutor(args.concurrent) as pool:
                if r % 2 == 0:
                    futures = [pool.submit(gradio_request, client, photo) for _ in range(args.concurrent)]
                else:
                    futures = [pool.submit(http_request, url, photo) for _ in range(args.concurrent)]
                results = [f.result(timeout=1800) for f in futures]
            kinds = [k for k, _ in results]
            lat = sorted(t for k, t in results if k == "answered")
            p50 = statistics.median(lat) if lat else float("nan")
            p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else float("nan")
            rss.append(_rss_mb(server.pid))
            disk.append(_disk_mb(tmp))
            lost += kinds.count("failed")
            lines.append(f"| {r + 1} | {api} | {kinds.count('answered')} | {kinds.count('busy')} | "
                         f"{kinds.count('failed')} | {p50:.1f} | {p95:.1f} | {rss[-1]:.0f} | {disk[-1]:.1f} |")
            print(lines[-1], flush=True)
        growth = (rss[-1] - rss[0]) / rss[0]
        lines += ["", f"nothing lost except busy replies: {'met' if lost == 0 else f'NOT met ({lost} failed)'}",
                  f"memory after the last round vs after the first: {rss[-1]:.0f} vs {rss[0]:.0f} MB ({growth:+.0%}; "
                  f"target within 15 %): {'met' if abs(growth) <= 0.15 else 'NOT met'}",
                  f"largest temporary disk: {max(disk):.1f} MB (target under 100 MB): "
                  f"{'met' if max(disk) < 100 else 'NOT met'}"]
        analytics = httpx.get(f"{url}/config", timeout=10).json().get("analytics_enabled")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        left = [p.name for p in tmp.iterdir()]
        shutil.rmtree(work, ignore_errors=True)
    lines += [f"Gradio analytics: {'off' if analytics is False else analytics}; temporary files left after the "
              f"server stopped: {len(left)} (target 0): {'met' if not left else f'NOT met ({left[:3]})'}"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(f"# Serving soak test\n\nMade by `python benchmarks/soak.py --rounds {args.rounds} "
                                  f"--concurrent {args.concurrent} --out {args.out}`.\n\n{text}\n")


if __name__ == "__main__":
    main()
