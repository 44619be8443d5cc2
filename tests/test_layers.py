"""The imports between smfd's packages point one way: each imports only packages below it."""

import re
from pathlib import Path

import smfd

RANK = {"errors": -1, "fileio": 0, "precision": 0, "_dlib": 0, "samples": 0, "degrade": 1, "models": 1, "metrics": 1,
        "data": 2, "report": 3, "infer": 3, "score": 3.5, "cluster": 3.6, "train": 4, "experiments": 4.3, "app": 4.5,
        "http_api": 4.4, "cli": 5, "__main__": 6}
IMPORT = re.compile(r"^\s*from (\.+)([a-z_]*)", re.M)


def _imports(path: Path, root: Path) -> set[str]:
    """The smfd packages a file imports (relative imports resolved)."""
    parts = path.relative_to(root).with_suffix("").parts
    found = set()
    for dots, name in IMPORT.findall(path.read_text()):
        base = parts[: len(parts) - len(dots)]
        target = (*base, name) if name else base
        if target:
            found.add(target[0])
    return found


def test_imports_point_one_way():
    root = Path(smfd.__file__).parent
    wrong = []
    for path in root.rglob("*.py"):
        own = path.relative_to(root).parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for target in _imports(path, root) - {own, "__init__"}:
            if RANK.get(target, 99) >= RANK[own]:
                wrong.append(f"{path.relative_to(root)} imports {target}")
    assert not wrong, wrong
