"""Paired comparison of two ``smfd eval`` folders scored on the same faces: is B's gain over A real?

Both folders hold a ``per_image.csv``; faces are paired by ``id`` (the same seeded degradation in both when they
were scored with the same ``--degradation`` and split). For every numeric metric: both means, the mean of B - A,
its standard error, and the share of faces where B is higher. For face identification (``id_rank1``, 0/1 per face)
the faces that change: identified by A only, by B only, and the exact two-sided sign test on those (McNemar's exact
test), which asks whether the change could be chance.

One side may be several evaluations of one model, each scored with another degradation seed (``smfd eval
--seed``): ``A1,A2,A3`` against ``B1,B2,B3``, the k-th of A paired with the k-th of B. Each face then counts once
in the tests, not once per draw (its draws are not independent of one another): a metric's standard error is that
of the faces' mean differences over their draws, and the sign test counts the faces identified more often by one
side than by the other over their draws.

A score that is not finite (PSNR is infinite where a prediction equals its sharp face) has no difference to
average: such faces are left out of that metric, and the table says how many, as it does for faces not scored.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..fileio import read_text_or_gz

# metrics where lower is better (the rest: higher is better)
LOWER_IS_BETTER = {"mse", "colour_shift", "niqe", "id_distance"}


def read_rows(folder: Path) -> dict[str, dict[str, str]]:
    """``id`` -> row of ``folder/per_image.csv`` (or the ``per_image.csv.gz`` a kept folder holds); ValueError naming
    the file when it is missing or has no ids."""
    path = Path(folder) / "per_image.csv"
    try:
        rows = list(csv.DictReader(io.StringIO(read_text_or_gz(path), newline="")))
    except FileNotFoundError:
        raise ValueError(f"{path}: not found (pass a folder written by smfd eval)") from None
    if not rows or "id" not in rows[0]:
        raise ValueError(f"{path}: no per-face rows with an id column")
    return {r["id"]: r for r in rows}


def _folders(spec: str | Path) -> list[Path]:
    """The folders of ``A`` or ``A1,A2,...``."""
    if Path(spec).is_dir():
        return [Path(spec)]
    folders = [Path(f) for f in str(spec).split(",")]
    if any(not str(f).strip() for f in folders):
        raise ValueError(f"{spec}: an empty folder name in the list")
    return folders


def read_draws(spec: str | Path) -> dict:
    """:func:`read_rows` of one folder, or of several given as ``A1,A2,...``: the draws of one model, each scored
    with another degradation seed (rows keyed ``(id, k)`` for the k-th folder, counting from 0). ValueError when
    two of them were scored with one seed (their ``summary.json``) or a folder name is empty."""
    folders = _folders(spec)
    if len(folders) == 1:
        return read_rows(folders[0])
    seeds = [x for x in draw_seeds(folders) if x is not None]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"{spec}: the evaluations share a degradation seed ({seeds}): draws need one seed each")
    return {(i, k): row for k, folder in enumerate(folders) for i, row in read_rows(folder).items()}


def read_paired(a: str | Path, b: str | Path) -> tuple[dict, dict]:
    """:func:`read_draws` of both sides, whose k-th folders must be scored with one seed (ValueError otherwise,
    and when the sides list different numbers of folders)."""
    fa, fb = _folders(a), _folders(b)
    if len(fa) != len(fb):
        raise ValueError(f"A lists {len(fa)} evaluation(s) and B {len(fb)}: give each side one folder per seed, in "
                         "the same order")
    sa, sb = draw_seeds(fa), draw_seeds(fb)
    if len(fa) > 1 and any(x is not None and y is not None and x != y for x, y in zip(sa, sb, strict=True)):
        raise ValueError(f"the k-th folders of A and B must be scored with one seed: A {sa}, B {sb}")
    return read_draws(a), read_draws(b)


def draw_seeds(folders) -> list:
    """The degradation seed each ``smfd eval`` folder was scored with (its summary.json; None where not said)."""
    seeds = []
    for folder in folders:
        summary = Path(folder) / "summary.json"
        info = json.loads(summary.read_text()).get("info", {}) if summary.is_file() else {}
        seeds.append(info.get("degradation_seed"))
    return seeds


def _face(key) -> str:
    """The face a row's key is of (``ID`` of a draw's ``(ID, k)``)."""
    return key[0] if isinstance(key, tuple) else key


def _by_face(pairs: list) -> list[float]:
    """Each face's mean over its draws of the (key, value) pairs, in first-seen order."""
    faces: dict[str, list[float]] = {}
    for key, v in pairs:
        faces.setdefault(_face(key), []).append(v)
    return [sum(v) / len(v) for v in faces.values()]


def sign_test(k: int, n: int) -> float:
    """Exact two-sided binomial test of k successes in n trials at p = 1/2 (1.0 when n == 0)."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _float(v: str) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _same(a: dict[str, str], b: dict[str, str]) -> bool:
    return all(a.get(k) == b.get(k) for k in set(a) | set(b) if k != "path")


def compare(a: dict[str, dict[str, str]], b: dict[str, dict[str, str]]) -> dict:
    """Paired statistics of B against A over the faces both scored (see the module docstring)."""
    ids = sorted(set(a) & set(b), key=str)
    if not ids:
        raise ValueError("the two evaluations share no face ids")
    if all(_same(a[i], b[i]) for i in ids):
        raise ValueError(f"A and B hold the same scores for all {len(ids)} faces they share (the same evaluation "
                         "twice?): nothing to compare")
    metrics = [k for k in a[ids[0]] if k in b[ids[0]] and k not in ("id", "path", "id_rank1")]
    out: dict = {"n": len(ids), "faces": len({_face(i) for i in ids}), "only_a": len(set(a) - set(b)),
                 "only_b": len(set(b) - set(a)), "metrics": {}}
    for m in metrics:
        scored = [(i, x, y) for i in ids if (x := _float(a[i][m])) is not None and (y := _float(b[i][m])) is not None]
        pairs = [(i, x, y) for i, x, y in scored if math.isfinite(x) and math.isfinite(y)]
        if not pairs:
            continue
        n = len(pairs)
        d = [y - x for _, x, y in pairs]
        per_face = _by_face([(i, y - x) for i, x, y in pairs])  # one value per face (its draws' mean)
        f = len(per_face)
        mean = sum(per_face) / f  # the draws' mean where every face has every draw
        sd = math.sqrt(sum((v - mean) ** 2 for v in per_face) / (f - 1)) if f > 1 else 0.0
        out["metrics"][m] = {"n": n, "a": sum(x for _, x, _ in pairs) / n, "b": sum(y for _, _, y in pairs) / n,
                             "diff": mean, "se": sd / math.sqrt(f), "b_higher": sum(v > 0 for v in d) / n,
                             "lower_is_better": m in LOWER_IS_BETTER, "infinite": len(scored) - n,
                             "not_scored": len(ids) - len(scored)}
    if "id_rank1" in a[ids[0]] and "id_rank1" in b[ids[0]]:
        flags = [(i, fa, fb) for i in ids if (fa := _float(a[i]["id_rank1"])) is not None
                 and (fb := _float(b[i]["id_rank1"])) is not None]
        if flags:
            lost = sum(1 for _, x, y in flags if x == 1 and y == 0)
            gained = sum(1 for _, x, y in flags if x == 0 and y == 1)
            per_face = _by_face([(i, y - x) for i, x, y in flags])  # > 0: identified more often by B
            more_b, more_a = sum(v > 0 for v in per_face), sum(v < 0 for v in per_face)
            out["rank1"] = {"n": len(flags), "a": sum(x for _, x, _ in flags) / len(flags),
                            "b": sum(y for _, _, y in flags) / len(flags), "lost": lost, "gained": gained,
                            "faces_a": more_a, "faces_b": more_b, "p": sign_test(more_b, more_a + more_b)}
    return out


def to_markdown(stats: dict, name_a: str, name_b: str) -> str:
    """The comparison as a Markdown table (B - A per metric) and, when scored, the identification change."""
    draws = stats.get("faces", stats["n"]) != stats["n"]
    scored = f"{stats['n']} faces scored in both" if not draws else \
        f"{stats['n']} draws of {stats['faces']} faces scored in both"
    lines = [f"{scored} ({stats['only_a']} only in A, {stats['only_b']} only in B); A = {name_a}, B = {name_b}.", "",
             f"| metric | A | B | B - A | SE | {'draws' if draws else 'faces'} where B is higher |",
             "|---|---|---|---|---|---|"]
    for m, s in stats["metrics"].items():
        tag = " (lower is better)" if s["lower_is_better"] else ""
        lines.append(f"| {m}{tag} | {s['a']:.4f} | {s['b']:.4f} | {s['diff']:+.4f} | {s['se']:.4f} | "
                     f"{s['b_higher']:.0%} |")
    fewer = []
    for m, s in stats["metrics"].items():
        if s["n"] < stats["n"]:
            why = [f"{s['infinite']} scored infinite in A or B (a prediction equal to its sharp face)"
                   if s["infinite"] else "", f"{s['not_scored']} not scored in A or B" if s["not_scored"] else ""]
            fewer.append(f"- {m}: over {s['n']} of the {stats['n']} {'draws' if draws else 'faces'}; left out: "
                         f"{', '.join(w for w in why if w)}.")
    lines += ["", *fewer] if fewer else []
    r = stats.get("rank1")
    if r and not draws:
        lines += ["", f"Face identification (rank-1): A {r['a']:.1%}, B {r['b']:.1%}; {r['lost']} faces identified "
                      f"by A only, {r['gained']} by B only; exact sign test on those {r['lost'] + r['gained']}: "
                      f"p = {r['p']:.3f}."]
    elif r:
        lines += ["", f"Face identification (rank-1) over {r['n']} draws: A {r['a']:.1%}, B {r['b']:.1%}; {r['lost']} "
                      f"draws identified by A only, {r['gained']} by B only; {r['faces_a']} faces identified more "
                      f"often by A, {r['faces_b']} by B; exact sign test on those {r['faces_a'] + r['faces_b']} faces: "
                      f"p = {r['p']:.3f}."]
    if draws:
        lines += ["", "B - A and its SE are over the faces' mean differences across their draws (each face counts "
                      "once)."]
    return "\n".join(lines) + "\n"
