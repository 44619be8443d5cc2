"""smfd bakeoff makes its tables again from kept weights (no run folders) and scores the mask generators."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from helpers import TINY_KWARGS, make_face_folder
from smfd.data import Splits
from smfd.experiments.spec import BakeoffSpec, Candidate, Evaluation, load_bakeoff
from smfd.models import build
from smfd.models.io import save_weights
from smfd.train.config import ModelConfig

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


def _spec(tmp_path: Path, **over) -> BakeoffSpec:
    return BakeoffSpec(**{"config": str(ROOT / "configs" / "whole_face.yaml"), "budget_minutes": 60,
                          "out": str(tmp_path / "runs"), "data": "faces", "masks": "m.safetensors",
                          "split": "split.json", "evaluation": Evaluation(("thesis",)), **over})


def test_a_candidate_sets_its_own_config_overrides(tmp_path):
    """``set:`` in a candidate's entry reaches its training config (e.g. precision, so rows train alike)."""
    from smfd.experiments.bakeoff import train_config

    spec = _spec(tmp_path)
    cand = Candidate("d", model=ModelConfig("nafnet", {"width": 8}), set={"precision": "fp32", "optim.lr": 5.0e-4})
    cfg = train_config(spec, "d", cand)
    assert (cfg.model.name, cfg.model.kwargs, cfg.budget_minutes) == ("nafnet", {"width": 8}, 60)
    assert (cfg.precision, cfg.optim.lr, cfg.data.root, cfg.mask_source) == ("fp32", 5.0e-4, "faces", "gt")
    plain = train_config(spec, "d", Candidate("d", model=ModelConfig("nafnet")))
    assert plain.precision == "auto" and plain.optim.lr == 1e-3  # the config's own
    guided = train_config(spec, "e", Candidate("e", model=ModelConfig("nafnet_mask"), masks=True))
    assert guided.mask_source == "generator:m.safetensors"


def test_a_candidate_whose_config_does_not_load_is_named_with_the_spec_file(tmp_path):
    from smfd.experiments.bakeoff import Request, run

    spec = {"config": str(ROOT / "configs" / "whole_face.yaml"), "budget_minutes": 1, "out": str(tmp_path / "runs"),
            "data": "faces", "evaluation": {"degradations": ["thesis"]},
            "candidates": {"d": {"label": "(d)", "model": {"name": "nafnet"}, "set": {"optim.lrr": 1}}}}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError) as e:
        run(Request(str(tmp_path / "b.yaml"), out=str(tmp_path / "results")))
    assert str(e.value).startswith(f"{tmp_path / 'b.yaml'}: candidates.d: unknown config key optim.lrr")
    assert not (tmp_path / "runs" / "d").exists()  # refused before anything ran


def test_candidates_train_as_their_configs_say_and_are_not_trained_again(tmp_path):
    from smfd.experiments.bakeoff import train_all

    tiny = {"width": 4, "encoder_blocks": [1], "middle_blocks": 1, "decoder_blocks": [1]}
    quick = {"precision": "fp32", "epochs": 1, "data.size": 32, "data.val_limit": 2, "data.augment": False}
    spec = _spec(tmp_path, data=str(make_face_folder(tmp_path / "faces", n=12, size=32)), budget_minutes=0.2,
                 candidates={"d": Candidate("(d)", model=ModelConfig("nafnet", tiny), set=quick)})
    train_all(spec, ["d"])
    run = tmp_path / "runs" / "d"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["model"]["name"], saved["precision"], saved["budget_minutes"]) == ("nafnet", "fp32", 0.2)
    assert json.loads((run / "result.json").read_text())["steps"] >= 1
    trained = (run / "last.pt").stat().st_mtime_ns
    train_all(spec, ["d"])  # finished: not started again
    assert (run / "last.pt").stat().st_mtime_ns == trained


def test_what_each_candidate_reads_and_how_many_faces_are_scored(tmp_path):
    from smfd.experiments.bakeoff import _scoring, mask_source

    spec = _spec(tmp_path)
    assert mask_source(spec, Candidate("x", masks=True)) == "generator:m.safetensors"
    assert mask_source(spec, Candidate("x", masks="gt")) == "gt"
    assert mask_source(spec, Candidate("x", masks="other.safetensors")) == "generator:other.safetensors"
    _, job = _scoring(spec, "c", Candidate("c", path="c.safetensors", masks="gt"), "lowres")
    (score,) = job.scores
    assert job.name == "eval-c-lowres" and score.limit is None  # every test face
    assert (score.model, score.mask_source, score.degradation) == ("c.safetensors", "gt", "lowres")
    _, job = _scoring(replace(spec, evaluation=Evaluation(("thesis",), limit=100)), None, None, "thesis")
    (score,) = job.scores
    assert (score.model, score.limit, score.mask_source, score.identity) == ("input", 100, "gt", True)
    _, job = _scoring(spec, None, None, "sharp")
    assert not job.scores[0].identity  # the sharp input is the sharp face itself


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*bakeoff.yaml")), ids=lambda p: p.name)
def test_the_bakeoffs_in_configs_load(path):
    spec = load_bakeoff(path)
    assert spec.candidates and all(c.model is not None for c in spec.candidates.values())


@pytest.mark.parametrize("change, message", [
    (lambda r: r["candidates"]["d-nafnet"].update(modle={}), "unknown config key candidates.d-nafnet.modle"),
    (lambda r: r["candidates"]["d-nafnet"].pop("model"), "candidates.d-nafnet.model is missing"),
    (lambda r: r["candidates"]["d-nafnet"].pop("label"), "config key candidates.d-nafnet.label is missing"),
    (lambda r: r["evaluation"].update(limit="many"), "config key evaluation.limit: expected int, got 'many'"),
    (lambda r: r["evaluation"].update(degradations=["blur"]), "evaluation.degradations holds 'blur'"),
    (lambda r: r["references"]["shipped-crop"].pop("path"), "references.shipped-crop.path is missing"),
    (lambda r: r.pop("masks"), "masks is missing: candidates.a-smfd-thesis reads the spec's generator"),
    (lambda r: r.update(lanes=0), "lanes must be >= 1"),
])
def test_a_bad_bakeoff_spec_is_refused_naming_the_key(tmp_path, change, message):
    raw = yaml.safe_load((ROOT / "configs" / "bakeoff.yaml").read_text())
    change(raw)
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'b.yaml'}: {message}")):
        load_bakeoff(tmp_path / "b.yaml")
