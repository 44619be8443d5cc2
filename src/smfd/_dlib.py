"""Where the dlib models of the ``face_recognition_models`` package live (face detection and identity)."""

from __future__ import annotations

import importlib.util
import os


def models_dir(missing_hint: str) -> str:
    """Folder of the package's ``.dat`` files; ``missing_hint`` is the error shown when it is not installed.

    The package's own ``__init__`` needs ``pkg_resources``, gone from recent setuptools, so the files are
    located without importing it.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(missing_hint)
    return os.path.join(spec.submodule_search_locations[0], "models")
