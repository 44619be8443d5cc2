"""Names of a package imported on first use (PEP 562), so that importing the package waits for nothing heavy.

Example (a package's ``__init__.py``)::

    __getattr__, __dir__ = lazy_names(__name__, {"load_pipeline": ".infer.pipeline"}, submodules=("data",))
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping


def lazy_names(package: str, names: Mapping[str, str], submodules: Iterable[str] = ()
               ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each of ``names`` imported from its module (relative to the
    package) when first used, then kept; each of ``submodules`` imported when used as an attribute."""
    submodules = tuple(submodules)

    def __getattr__(name: str):
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names, *submodules})

    return __getattr__, __dir__


__all__ = ["lazy_names"]
