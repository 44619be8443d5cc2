"""The tracked tree stays light: a clone is quick and the tree fits a lent GPU machine (64 MiB with the training
pack), and everything beside the shipped bundle is small. Weights that are neither shipped nor the next run's start
live in git history (results/archived-weights.md); kept per-face tables are gzip'd and
live in git history too (results/archived-tables.md)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREE_LIMIT = 35 * 2**20  # the whole tree: a quick clone; with the 23.6 MiB training pack under a GPU run's 64 MiB
FILE_LIMIT = 16 * 2**20  # one tracked file (the largest a GPU run can send back, too)
REST_LIMIT = 2.25 * 2**20  # everything but the weights the shipped manifest lists: code, configs, documents, results
BUNDLE = ROOT / "src" / "smfd" / "weights"


def _tracked() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def test_tracked_tree_is_light():
    files = _tracked()
    sizes = {p: p.stat().st_size for p in files}
    total = sum(sizes.values())
    assert total < TREE_LIMIT, f"tracked tree is {total / 2**20:.1f} MiB (limit {TREE_LIMIT / 2**20:.0f} MiB)"
    big = {str(p.relative_to(ROOT)): s for p, s in sizes.items() if s > FILE_LIMIT}
    assert not big, f"tracked files over {FILE_LIMIT / 2**20:.0f} MiB: {big}"
    shipped = {BUNDLE / f["file"] for f in json.loads((BUNDLE / "manifest.json").read_text())["files"].values()}
    rest = sum(s for p, s in sizes.items() if p not in shipped)
    assert rest < REST_LIMIT, (f"the tree beside the shipped weights is {rest / 2**20:.1f} MiB "
                               f"(limit {REST_LIMIT / 2**20:.2f})")
