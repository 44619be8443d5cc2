"""Fixtures of the inference tests: a bundle of tiny randomly initialised nets (fast, every code path) and the
pipeline loaded from it."""

from __future__ import annotations

import pytest

from helpers import make_tiny_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp("w") / "bundle")


@pytest.fixture(scope="module")
def pipe(bundle):
    from smfd.infer.pipeline import load_pipeline

    return load_pipeline(str(bundle), precision="fp32")
