"""The imports between smfd's packages point one way: each imports only packages below it."""

import ast
import re
from pathlib import Path

import smfd

RANK = {"errors": -1, "lazy": -1, "fileio": 0, "precision": 0, "_dlib": 0, "samples": 0, "degrade": 1, "models": 1,
        "metrics": 1, "data": 2, "report": 3, "infer": 3, "score": 3.5, "cluster": 3.6, "train": 4, "experiments": 4.3,
        "app": 4.5, "http_api": 4.4, "cli": 5, "__main__": 6}
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


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _reaches_in(target: tuple[str, ...], package: tuple[str, ...], root: Path) -> str | None:
    """The private part of ``target`` (a dotted path into the package) that a module of ``package`` may not use,
    else None. A private module (``_dlib.py``) belongs to the package that holds it and the packages below it; a
    private name in a module (a ``_helper`` function, class or constant) belongs to that module alone."""
    for i, name in enumerate(target):
        if not _is_private(name):
            continue
        place = root.parent.joinpath(*target[: i + 1])
        if place.is_dir() or place.with_suffix(".py").is_file():  # a private module
            if package[:i] == target[:i]:
                continue
        return ".".join(target[: i + 1])
    return None


def _private_uses(path: Path, root: Path) -> list[str]:
    """Where the module at ``path`` uses another module's private names: ``from .x import _name``, ``from . import
    x`` then ``x._name``, or a private module imported from outside the package that holds it."""
    parts = (root.name, *path.relative_to(root).with_suffix("").parts)
    package = parts[:-1]  # the package a module sits in (for __init__.py: the package itself)
    modules: dict[str, tuple[str, ...]] = {}  # names bound to the package's modules -> their dotted paths
    found = []

    def check(target: tuple[str, ...], line: int) -> None:
        private = _reaches_in(target, package, root)
        if private:
            found.append(f"{path.relative_to(root.parent)}:{line} uses {private}")

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif (node.module or "").split(".")[0] == root.name:
                base = ()
            else:
                continue
            source = (*base, *(node.module or "").split(".")) if node.module else base
            for alias in node.names:
                target = (*source, alias.name)
                check(target, node.lineno)
                if root.parent.joinpath(*target).is_dir() or root.parent.joinpath(*target).with_suffix(".py").is_file():
                    modules[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root.name:
                    target = tuple(alias.name.split("."))
                    check(target, node.lineno)
                    modules[alias.asname or root.name] = target if alias.asname else (root.name,)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):  # each link of a.b._c: the whole chain is checked at its end
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in modules:
                check((*modules[value.id], *chain), node.lineno)
    return sorted(set(found))


def test_no_module_uses_another_modules_private_names():
    """Issue 43: a private name (``_helper``) stays inside its module, and a private module (``models/_x.py``)
    inside its package; what another module needs is public."""
    root = Path(smfd.__file__).parent
    found = [use for path in sorted(root.rglob("*.py")) for use in _private_uses(path, root)]
    assert not found, found


def test_the_private_names_check_sees_each_way_in(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "other").mkdir()
    for init in (pkg / "__init__.py", pkg / "sub" / "__init__.py", pkg / "other" / "__init__.py"):
        init.write_text("")
    (pkg / "_shared.py").write_text("def tool(): ...\n")
    (pkg / "sub" / "_own.py").write_text("def tool(): ...\n")
    (pkg / "sub" / "a.py").write_text("def _helper(): ...\nfrom ._own import tool\nfrom .._shared import tool\n")
    (pkg / "other" / "b.py").write_text(
        "from ..sub.a import _helper\nfrom ..sub import a\nimport pkg.sub.a as aa\nfrom ..sub._own import tool\n"
        "def f():\n    return a._helper(), aa._helper, a.__name__\n")
    assert _private_uses(pkg / "sub" / "a.py", pkg) == []  # its own package's private module; the package's
    assert _private_uses(pkg / "other" / "b.py", pkg) == [
        "pkg/other/b.py:1 uses pkg.sub.a._helper", "pkg/other/b.py:4 uses pkg.sub._own",
        "pkg/other/b.py:6 uses pkg.sub.a._helper"]
