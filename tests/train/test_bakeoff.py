"""smfd bakeoff makes its tables again from kept weights (no run folders) and scores the mask generators."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers import TINY_KWARGS, make_face_folder
from smfd.data import Splits
from smfd.models import build
from smfd.models.io import save_weights

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kept_bakeoff(tmp_path: Path) -> Path:
    """A spec whose only candidate is kept as weights (its run folder gone), with two mask generators."""
    data = make_face_folder(tmp_path / "faces", n=6, size=32)
    Splits(0, ("00000", "00001", "00002"), (("00003", "00004", "00005"),)).save(tmp_path / "split.json")
    save_weights(build("nafnet", width=4, encoder_blocks=(1,), middle_blocks=1, decoder_blocks=(1,)),
                 tmp_path / "d.safetensors", half=True)
    for seed, name in enumerate(("m1", "m2")):
        torch.manual_seed(seed)
        save_weights(build("mask_generator", **TINY_KWARGS), tmp_path / f"{name}.safetensors")
    spec = {"config": "configs/whole_face.yaml", "budget_minutes": 60, "lanes": 1, "out": str(tmp_path / "runs"),
            "data": str(data), "split": str(tmp_path / "split.json"), "masks": str(tmp_path / "m1.safetensors"),
            "evaluation": {"limit": 3, "degradations": ["thesis", "sharp"], "identity": False, "precision": "fp32"},
            "evaluations": str(tmp_path / "kept-scores"),
            "candidates": {"d-tiny": {"label": "(d) tiny NAFNet", "model": {"name": "nafnet"},
                                      "path": str(tmp_path / "d.safetensors"), "steps": 12, "minutes": 3}},
            "mask_generators": {"m1": {"label": "mask one", "path": str(tmp_path / "m1.safetensors")},
                                "m2": {"label": "mask two", "path": str(tmp_path / "m2.safetensors"), "steps": 5,
                                       "minutes": 1}}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


def _bakeoff(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smfd", "bakeoff", str(folder / "spec.yaml"), "--out",
                           str(folder / "results"), *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_tables_are_made_again_from_kept_weights(kept_bakeoff):
    results = kept_bakeoff / "results"
    done = _bakeoff(kept_bakeoff, "--masks")  # the mask generators only
    assert done.returncode == 0, done.stderr[-2000:]
    assert (results / "masks.md").is_file() and not (results / "bakeoff.md").exists()

    done = _bakeoff(kept_bakeoff, "--no-train")  # everything, the mask evaluations reused
    assert done.returncode == 0, done.stderr[-2000:]
    table = (results / "bakeoff.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| (d) tiny NAFNet"))
    assert "| 12 | 3 |" in row  # the kept run's steps and minutes, from the spec
    assert f"--no-train --out {results}`" in table  # the header names the command that makes this table again
    record = json.loads((results / "bakeoff.json").read_text())
    assert set(record["d-tiny"]) >= {"thesis", "sharp", "steps"}
    assert not (kept_bakeoff / "runs" / "d-tiny").exists()  # scored, not trained again

    masks = (results / "masks.md").read_text()
    rows = [line for line in masks.splitlines() if line.startswith(("| mask one", "| mask two"))]
    assert len(rows) == 4  # two generators x (thesis, sharp)
    assert all(" px |" in r for r in rows) and "| 5 | 1 | thesis |" in masks
    assert masks.count("Pixels of each true class") == 2  # a confusion matrix per generator

    # the scores are kept beside the weights: with the run folders gone, the tables are made again unchanged
    assert (kept_bakeoff / "kept-scores" / "d-tiny-thesis" / "summary.json").is_file()
    shutil.rmtree(kept_bakeoff / "runs")
    done = _bakeoff(kept_bakeoff, "--no-train")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (results / "bakeoff.md").read_text() == table and (results / "masks.md").read_text() == masks
    assert not (kept_bakeoff / "runs" / "eval").exists()  # nothing evaluated again


def test_a_candidate_sets_its_own_config_overrides(tmp_path):
    """``set:`` in a candidate's entry reaches its training command (e.g. precision, so rows train alike)."""
    from smfd.experiments import bakeoff

    spec = {"config": "configs/whole_face.yaml", "data": "faces", "out": str(tmp_path), "budget_minutes": 60,
            "masks": "m.safetensors"}
    cand = {"model": {"name": "nafnet", "kwargs": {"width": 8}}, "set": {"precision": "fp32", "optim.lr": 5.0e-4}}
    cmd = bakeoff.train_command(spec, "d", cand)
    pairs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert pairs == ["model.name=nafnet", 'model.kwargs={"width": 8}', "budget_minutes=60", "precision=fp32",
                     "optim.lr=0.0005"]
    assert "--mask-source" not in cmd
    assert "precision=fp32" not in bakeoff.train_command(spec, "d", {"model": {"name": "nafnet"}})


def test_what_each_candidate_reads_and_how_many_faces_are_scored(tmp_path):
    from smfd.experiments.bakeoff import _evaluation, mask_source

    spec = {"masks": "m.safetensors", "out": str(tmp_path / "runs"), "data": "faces", "split_file": "split.json",
            "evaluation": {"limit": None, "precision": "auto"}}
    assert mask_source(spec, {"masks": True}) == "generator:m.safetensors"
    assert mask_source(spec, {"masks": "gt"}) == "gt"
    assert mask_source(spec, {"masks": "other.safetensors"}) == "generator:other.safetensors"
    key, _, _, cmd = _evaluation(spec, "c", {"path": "c.safetensors", "masks": "gt"}, "lowres")
    assert key == "c-lowres" and "--limit" not in cmd  # every test face
    assert cmd[cmd.index("--mask-source") + 1] == "gt" and cmd[cmd.index("--degradation") + 1] == "lowres"
    spec["evaluation"]["limit"] = 100
    _, _, _, cmd = _evaluation(spec, None, None, "thesis")
    assert cmd[cmd.index("--limit") + 1] == "100" and "--mask-source" not in cmd and "--identity" in cmd
