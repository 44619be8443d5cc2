"""Each released model's options file (configs/released/*.yaml) names a fixed start and runs whose configs load,
and the shipped weights are the ones a released file says it gives, named by the model card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from smfd.train.config import load_config

ROOT = Path(__file__).resolve().parents[2]
RELEASED = sorted((ROOT / "configs" / "released").glob("*.yaml"))


@pytest.mark.parametrize("path", RELEASED, ids=lambda p: p.stem)
def test_a_released_options_file_chains_runs_from_recorded_starts(path):
    spec = yaml.safe_load(path.read_text())
    assert spec["name"] == path.stem and len(spec["gives"]["sha256"]) == 64
    for run in spec["runs"]:
        start = run["start"]
        assert len(start["sha256"]) == 64 and (len(start.get("commit", "")) == 40 or "file" in start)
        cfg = load_config(ROOT / run["config"], "deblur", run.get("set", []))
        assert cfg.task == "deblur" and run["minutes"] > 0


@pytest.mark.parametrize("role", ["deblur", "deblur_big"])
def test_the_shipped_weights_are_a_released_files_and_the_card_names_it(role):
    manifest = json.loads((ROOT / "src/smfd/weights/manifest.json").read_text())
    if role not in manifest["files"]:
        pytest.skip(f"the shipped bundle has no {role} net")
    shipped = manifest["files"][role]["sha256"]
    assert shipped == hashlib.sha256((ROOT / "src/smfd/weights" / manifest["files"][role]["file"]).read_bytes()
                                     ).hexdigest()
    givers = [p for p in RELEASED if yaml.safe_load(p.read_text())["gives"]["sha256"] == shipped]
    assert len(givers) == 1, f"no options file in configs/released gives the shipped {role} net"
    card = (ROOT / "src/smfd/weights/MODEL_CARD.md").read_text()
    assert f"configs/released/{givers[0].name}" in card
