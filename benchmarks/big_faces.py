"""Big faces in whole photos: does a face of 256 to 1,536 px come back at least as sharp as it went in?

Usage:
    python benchmarks/big_faces.py ../shared/data/synthface-512 --faces 6 --out results/big_faces.md \
        --picture results/big_faces.jpg

A face's size here is the side of its aligned crop at the photo's own resolution, framed as the training faces
are (a 256 px face fills a SynthFace image; the detector's box is about half of it). For each size, the first
FACES test faces of results/bakeoff/split.json (held out from training) are taken from the 512 px set, resized
to the size (area down, Lanczos up: above 512 px the sharp face holds no finer detail than the 512 px render), and
blended by their mask onto a portrait photo (1.25 x 1.6 the face's size, benchmarks/detect.py's photo-like
background): that is the sharp photo. Each family degrades the whole photo, with every blur scaled to the face
(``face_size``: a 1,024 px face's defocus is 4x as wide as a 256 px face's), seeded per face:

- ``sharp``: nothing (the photo as it is);
- ``jpeg``: JPEG at quality 50-90, no blur;
- ``defocus``, ``shake``, ``motion``: the realistic family's defocus disk, camera shake or linear motion at its
  ranges for a 256 px face, scaled to the face, then JPEG at quality 90 (as a camera saves).

Two ways of restoring run on every photo, on this machine, one after the other: ``today`` (every face aligned to a
256 px crop, restored there, enlarged and pasted back whole: the rule before) and ``now`` (the pipeline as it
ships: the face aligned at its own resolution, restored at its working size (above 256 px as given and mirrored,
averaged; ``--no-mirror``: once), its change added back). Per size
and family: PSNR over the face (its mask) against the sharp photo, as given and as restored; the mean change,
the share of faces made worse (a loss over 0.1 dB), seconds per photo. For ``sharp`` the table gives PSNR of the
restored face against the input (the face should stay itself). ``--timing`` also times one 12 MP photo
(4000x3000) with one 1,000 px face, both ways, in alternating rounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from detect import _background  # noqa: E402

from smfd import load_pipeline  # noqa: E402
from smfd.degrade import RealisticConfig, RealisticParams, RealisticPipeline  # noqa: E402
from smfd.degrade.realistic import jpeg_roundtrip  # noqa: E402
from smfd.infer.faces import align, alignment_matrix, paste_back  # noqa: E402
from smfd.infer.pipeline import NoFaceError  # noqa: E402

SIZES = (256, 384, 512, 768, 1024, 1536)
FAMILIES = ("sharp", "jpeg", "defocus", "shake", "motion")


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    mse = float(((a[where].astype(np.float64) - b[where].astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def portrait(face: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """The sharp photo (RGB uint8) with the face of ``size`` px blended in by its mask, and where the face is."""
    interp = cv2.INTER_AREA if size <= face.shape[0] else cv2.INTER_LANCZOS4
    face = cv2.resize(face, (size, size), interpolation=interp).astype(np.float32)
    head = cv2.resize((mask > 0).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    alpha = cv2.GaussianBlur(cv2.dilate(head.astype(np.float32), np.ones((5, 5))), (0, 0), 3 * size / 256)
    h, w = round(1.6 * size), round(1.25 * size)
    img = _background(rng, h, w)
    y, x = round(0.3 * size), round(0.125 * size)
    a = alpha[..., None]
    img[y:y + size, x:x + size] = img[y:y + size, x:x + size] * (1 - a) + face * a
    where = np.zeros((h, w), bool)
    skin_etc = cv2.erode(((mask > 0) & (mask < 3)).astype(np.uint8), np.ones((5, 5)))  # skin and features
    where[y:y + size, x:x + size] = cv2.resize(skin_etc, (size, size), interpolation=cv2.INTER_NEAREST) > 0
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), where


def degrade(photo: np.ndarray, family: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """The photo as the family leaves it, every blur scaled to a face of ``size`` px."""
    if family == "sharp":
        return photo
    if family == "jpeg":
        return jpeg_roundtrip(photo, int(rng.integers(50, 91)))
    c = RealisticConfig()
    draw = {"defocus": lambda: float(rng.uniform(*c.defocus_radius)),
            "shake": lambda: float(int(rng.uniform(*c.shake_size)) | 1),
            "motion": lambda: float(rng.uniform(*c.motion_length))}[family]
    params = RealisticParams(blur=family, size=draw(), angle=float(rng.uniform(0, 180)),
                             kernel_seed=int(rng.integers(2**63 - 1)), jpeg_quality=90, face_scale=size / 256)
    return RealisticPipeline().apply(photo, params)


def restore_today(pipe, photo: np.ndarray) -> np.ndarray:
    """The rule before: every face aligned to a 256 px crop, restored, enlarged and pasted back whole."""
    faces = [f for f in pipe.detect_faces(photo) if f.size >= pipe.min_face]
    if not faces:
        raise NoFaceError("no face found")
    mats = [alignment_matrix(f.landmarks, 256) for f in faces]
    restored, _ = pipe.restore_faces([align(photo, m, 256) for m in mats], mask=False)
    out = photo.copy()
    for m, r in zip(mats, restored, strict=True):
        corners = cv2.transform(np.float32([[[0, 0], [256, 0], [0, 256], [256, 256]]]), cv2.invertAffineTransform(m))
        x0, y0 = np.maximum(0, np.floor(corners[0].min(0)).astype(int) - 2)
        x1, y1 = np.minimum(photo.shape[1::-1], np.ceil(corners[0].max(0)).astype(int) + 2)
        moved = m.copy()
        moved[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
        out[y0:y1, x0:x1] = paste_back(out[y0:y1, x0:x1], r, moved)
    return out


def restore_now(pipe, photo: np.ndarray) -> np.ndarray:
    return pipe.deblur(photo, mask=False).image


def measure(pipe, faces_dir: Path, ids: list[int], sizes, families, seed: int, ways=("today", "now")
            ) -> tuple[list[dict], dict]:
    rows, shown = [], {}
    masks_dir = faces_dir.parent / "synthface" / "masks"
    for size in sizes:
        for k, fid in enumerate(ids):
            face = cv2.imread(str(faces_dir / "images" / f"{fid:05d}.webp"))[:, :, ::-1]
            mask = cv2.imread(str(masks_dir / f"{fid:05d}.png"), cv2.IMREAD_GRAYSCALE)
            sharp, where = portrait(face, mask, size, np.random.default_rng([seed, size, k]))
            for family in families:
                given = degrade(sharp, family, size, np.random.default_rng([seed, size, k, FAMILIES.index(family)]))
                row = {"size": size, "face": fid, "family": family, "input": _psnr(given, sharp, where)}
                for name, run in (("today", restore_today), ("now", restore_now)):
                    if name not in ways:
                        continue
                    t0 = time.perf_counter()
                    try:
                        out = run(pipe, given)
                    except NoFaceError:
                        row[name] = None
                        continue
                    row[name + "_s"] = time.perf_counter() - t0
                    row[name] = _psnr(out, sharp, where)
                    row[name + "_self"] = _psnr(out, given, where)
                    if family == "shake" and size == 1024 and k == 0 and name == "now":
                        shown = {"input": given, "restored": out, "sharp": sharp, "where": where}
                rows.append(row)
                print(json.dumps({k2: round(v, 3) if isinstance(v, float) else v for k2, v in row.items()}),
                      flush=True)
    return rows, shown


def table(rows: list[dict], families, ways=("today", "now")) -> list[str]:
    lines = ["| face | family | faces found | input dB | today: change / worse | now: change / worse | "
             "s per photo (today / now) |", "|---|---|---|---|---|---|---|"]
    for size in sorted({r["size"] for r in rows}):
        for family in families:
            rs = [r for r in rows if r["size"] == size and r["family"] == family]
            found = [r for r in rs if all(r.get(name) is not None for name in ways)]
            if not found:
                lines.append(f"| {size} px | {family} | 0 of {len(rs)} | | | | |")
                continue
            cells = []
            for name in ("today", "now"):
                if name not in ways:
                    cells.append("-")
                elif family == "sharp":  # the face should stay itself: PSNR against the input
                    self_db = [r[name + "_self"] for r in found]
                    cells.append(f"{np.mean(self_db):.1f} dB of itself (min {min(self_db):.1f})")
                else:
                    change = np.array([r[name] - r["input"] for r in found])
                    cells.append(f"{change.mean():+.2f} dB / {100 * (change < -0.1).mean():.0f} %")
            secs = " / ".join(f"{np.mean([r[name + '_s'] for r in found]):.2f}" if name in ways else "-"
                              for name in ("today", "now"))
            inp = np.mean([r["input"] for r in found])
            lines.append(f"| {size} px | {family} | {len(found)} of {len(rs)} | {inp:.2f} | {cells[0]} | {cells[1]} "
                         f"| {secs} |")
    return lines


def timing(pipe, faces_dir: Path, fid: int, rounds: int) -> list[str]:
    """One 12 MP photo (4000x3000) with one 1,000 px face (camera shake scaled to it), both ways, alternating."""
    masks_dir = faces_dir.parent / "synthface" / "masks"
    face = cv2.imread(str(faces_dir / "images" / f"{fid:05d}.webp"))[:, :, ::-1]
    mask = cv2.imread(str(masks_dir / f"{fid:05d}.png"), cv2.IMREAD_GRAYSCALE)
    rng = np.random.default_rng([0, 12])
    small, _ = portrait(face, mask, 1000, rng)
    photo = cv2.resize(_background(rng, 3000, 4000).clip(0, 255).astype(np.uint8), (4000, 3000))
    photo[800:800 + small.shape[0], 1500:1500 + small.shape[1]] = small
    photo = degrade(photo, "shake", 1000, np.random.default_rng([0, 13]))
    times: dict[str, list[float]] = {"today": [], "now": []}
    restore_now(pipe, photo)  # warm-up
    for _ in range(rounds):
        for name, run in (("today", restore_today), ("now", restore_now)):
            t0 = time.perf_counter()
            run(pipe, photo)
            times[name].append(time.perf_counter() - t0)
    t, n = np.median(times["today"]), np.median(times["now"])
    return [f"12 MP photo (4000x3000), one 1,000 px face, median of {rounds} alternating rounds: today {t:.2f} s, "
            f"now {n:.2f} s ({n / t:.2f}x)."]


def picture(shown: dict, path: Path) -> None:
    """input | restored | sharp, a 400 px window of the face at 100 % zoom."""
    ys, xs = np.nonzero(shown["where"])
    cy, cx = int(ys.mean()) - 60, int(xs.mean())
    win = tuple(slice(c - 200, c + 200) for c in (cy, cx))
    tiles = [shown[k][win] for k in ("input", "restored", "sharp")]
    gap = np.full((400, 8, 3), 255, np.uint8)
    grid = np.hstack([tiles[0], gap, tiles[1], gap, tiles[2]])
    cv2.imwrite(str(path), grid[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path, help="the 512 px SynthFace folder (images/*.webp); masks are read from the "
                                             "256 px folder beside it")
    ap.add_argument("--split", type=Path, default=Path("results/bakeoff/split.json"))
    ap.add_argument("--faces", dest="n", type=int, default=6, help="test faces per size")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--weights", default="default")
    ap.add_argument("--max-work-size", type=int, default=None, help="the pipeline's largest working size "
                    "(default: as shipped)")
    ap.add_argument("--pool-window", type=int, default=None, help="the window (px) the net's channel statistics "
                    "are taken over on larger working sizes (default: as shipped; 0: the whole crop, the rule "
                    "before)")
    ap.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=True,
                    help="restore crops above 256 px as given and mirrored, averaged (default: as shipped)")
    ap.add_argument("--ways", default="today,now", help="which ways of restoring run (today, now)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing", type=int, default=None,
                    help="rounds of the 12 MP timing (0: none; default 3 when both ways run, else none)")
    ap.add_argument("--out", type=Path, help="write the table (markdown) here")
    ap.add_argument("--picture", type=Path, help="write input | restored | sharp at 100 %% zoom here (JPEG)")
    args = ap.parse_args()
    ids = [int(i) for i in json.loads(args.split.read_text())["test"][: args.n]]
    sizes = [int(s) for s in args.sizes.split(",")]
    families = args.families.split(",")
    ways = args.ways.split(",")
    if not ways or set(ways) - {"today", "now"}:
        ap.error(f"--ways: choose from today, now (comma-separated), got {args.ways!r}")
    both = set(ways) == {"today", "now"}
    if args.timing is None:
        args.timing = 3 if both else 0
    if args.timing and not both:
        ap.error("--timing compares both ways: use it with --ways today,now")
    pipe = load_pipeline(args.weights, **({"max_work_size": args.max_work_size} if args.max_work_size else {}),
                         pool_window=args.pool_window, mirror_big=args.mirror)
    started = time.perf_counter()
    rows, shown = measure(pipe, args.faces, ids, sizes, families, args.seed, ways)
    lines = table(rows, families, ways)
    if args.timing:
        lines += ["", *timing(pipe, args.faces, ids[0], args.timing)]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    files = pipe.manifest.get("files", {})
    nets = f"deblurring net {files.get('deblur', {}).get('sha256', '?')[:8]}…" + (
        f", crops worked above {pipe.face_size} px by the big-face net {files['deblur_big']['sha256'][:8]}…"
        if pipe.big_net is not None else "")
    lines += ["", f"{len(ids)} test faces per size; weights {args.weights} ({nets}); working sizes up to "
              f"{pipe.max_work_size} px; channel statistics over "
              f"{f'{pipe.pool_window} px windows' if pipe.pool_window else 'the whole crop'}; "
              f"{'big crops as given and mirrored, averaged' if pipe.mirror_big else 'each crop restored once'}; "
              f"{pipe.precision}; "
              f"{cpu}, {platform.machine()}; {time.perf_counter() - started:.0f} s in all."]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    if args.picture and shown:
        picture(shown, args.picture)


if __name__ == "__main__":
    main()
