"""Paired comparison of two ``smfd eval`` folders scored on the same faces: is B's gain over A real?

Both folders hold a ``per_image.csv``; faces are paired by ``id`` (the same seeded degradation in both when they
were scored with the same ``--degradation`` and split). For every numeric metric: both means, the mean of B - A,
its standard error, and the share of faces where B is higher. For face identification (``id_rank1``, 0/1 per face)
the faces that change: identified by A only, by B only, and the exact two-sided sign test on those (McNemar's exact
test), which asks whether the change could be chance.

A score that is not finite (PSNR is infinite where a prediction equals its sharp face) has no difference to
average: such faces are left out of that metric, and the table says how many, as it does for faces not scored.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

# metrics where lower is better (the rest: higher is better)
LOWER_IS_BETTER = {"mse", "colour_shift", "niqe", "id_distance"}


def read_rows(folder: Path) -> dict[str, dict[str, str]]:
    """``id`` -> row of ``folder/per_image.csv``; ValueError naming the file when it is missing or has no ids."""
    path = Path(folder) / "per_image.csv"
    if not path.is_file():
        raise ValueError(f"{path}: not found (pass a folder written by smfd eval)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "id" not in rows[0]:
        raise ValueError(f"{path}: no per-face rows with an id column")
    return {r["id"]: r for r in rows}


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
    ids = sorted(set(a) & set(b))
    if not ids:
        raise ValueError("the two evaluations share no face ids")
    if all(_same(a[i], b[i]) for i in ids):
        raise ValueError(f"A and B hold the same scores for all {len(ids)} faces they share (the same evaluation "
                         "twice?): nothing to compare")
    metrics = [k for k in a[ids[0]] if k in b[ids[0]] and k not in ("id", "path", "id_rank1")]
    out: dict = {"n": len(ids), "only_a": len(set(a) - set(b)), "only_b": len(set(b) - set(a)), "metrics": {}}
    for m in metrics:
        scored = [(x, y) for i in ids if (x := _float(a[i][m])) is not None and (y := _float(b[i][m])) is not None]
        pairs = [(x, y) for x, y in scored if math.isfinite(x) and math.isfinite(y)]
        if not pairs:
            continue
        n = len(pairs)
        d = [y - x for x, y in pairs]
        mean = sum(d) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1)) if n > 1 else 0.0
        out["metrics"][m] = {"n": n, "a": sum(x for x, _ in pairs) / n, "b": sum(y for _, y in pairs) / n,
                             "diff": mean, "se": sd / math.sqrt(n), "b_higher": sum(v > 0 for v in d) / n,
                             "lower_is_better": m in LOWER_IS_BETTER, "infinite": len(scored) - n,
                             "not_scored": len(ids) - len(scored)}
    if "id_rank1" in a[ids[0]] and "id_rank1" in b[ids[0]]:
        flags = [(fa, fb) for i in ids if (fa := _float(a[i]["id_rank1"])) is not None
                 and (fb := _float(b[i]["id_rank1"])) is not None]
        if flags:
            lost = sum(1 for x, y in flags if x == 1 and y == 0)
            gained = sum(1 for x, y in flags if x == 0 and y == 1)
            out["rank1"] = {"n": len(flags), "a": sum(x for x, _ in flags) / len(flags),
                            "b": sum(y for _, y in flags) / len(flags), "lost": lost, "gained": gained,
                            "p": sign_test(gained, lost + gained)}
    return out


def to_markdown(stats: dict, name_a: str, name_b: str) -> str:
    """The comparison as a Markdown table (B - A per metric) and, when scored, the identification change."""
    lines = [f"{stats['n']} faces scored in both ({stats['only_a']} only in A, {stats['only_b']} only in B); "
             f"A = {name_a}, B = {name_b}.", "",
             "| metric | A | B | B - A | SE | faces where B is higher |", "|---|---|---|---|---|---|"]
    for m, s in stats["metrics"].items():
        tag = " (lower is better)" if s["lower_is_better"] else ""
        lines.append(f"| {m}{tag} | {s['a']:.4f} | {s['b']:.4f} | {s['diff']:+.4f} | {s['se']:.4f} | "
                     f"{s['b_higher']:.0%} |")
    fewer = []
    for m, s in stats["metrics"].items():
        if s["n"] < stats["n"]:
            why = [f"{s['infinite']} scored infinite in A or B (a prediction equal to its sharp face)"
                   if s["infinite"] else "", f"{s['not_scored']} not scored in A or B" if s["not_scored"] else ""]
            fewer.append(f"- {m}: over {s['n']} of the {stats['n']} faces; left out: {', '.join(w for w in why if w)}.")
    lines += ["", *fewer] if fewer else []
    r = stats.get("rank1")
    if r:
        lines += ["", f"Face identification (rank-1): A {r['a']:.1%}, B {r['b']:.1%}; {r['lost']} faces identified "
                      f"by A only, {r['gained']} by B only; exact sign test on those {r['lost'] + r['gained']}: "
                      f"p = {r['p']:.3f}."]
    return "\n".join(lines) + "\n"
