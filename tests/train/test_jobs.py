"""The one job runner: a tiny batch trains and scores, a re-run skips what is done (and runs again what changed),
and a failure stays with its job and the jobs waiting for it."""

import gzip
import json
from dataclasses import replace

import pytest

from helpers import make_face_folder
from smfd.train import load_config
from smfd.train.jobs import INPUT, Job, JobsFailed, Score, check_jobs, raise_failures, run_jobs

TINY = ["epochs=1", "batch_size=2", "data.size=32", "data.test_fraction=0.25", "data.val_limit=2",
        "data.augment=false", "threads=1", "data.num_workers=0"]


def test_a_batch_runs_skips_what_is_done_and_keeps_failures_to_their_job(tmp_path):
    faces = str(make_face_folder(tmp_path / "faces", n=12, size=32))
    masks = load_config(None, "mask", TINY, **{"data.root": faces})
    broken = load_config(None, "deblur", [*TINY, "model.name=no_such_net"], **{"data.root": faces})
    jobs = [Job("masks", str(tmp_path / "masks"), train=masks, scores=(Score(faces, limit=2),)),
            Job("broken", str(tmp_path / "broken"), train=broken, scores=(Score(faces),)),
            Job("after-broken", str(tmp_path / "after"), scores=(Score(faces, INPUT),), after=("broken",)),
            Job("blurry", str(tmp_path / "blurry"), scores=(Score(faces, INPUT, "lowres", limit=2),))]
    results = run_jobs(jobs, isolate=False)
    assert list(results) == ["masks", "broken", "after-broken", "blurry"]
    done = results["masks"]
    assert done["status"] == "done" and done["epochs"] == 1 and done["steps"] >= 1 and done["model_name"] == \
        "mask_generator"
    assert done["test"]["thesis"]["n"] == 2 and 0 <= done["test"]["thesis"]["dice"] <= 1
    assert results["broken"]["status"].startswith("failed") and "no_such_net" in results["broken"]["status"]
    assert results["after-broken"]["status"] == "skipped: broken did not finish"
    assert results["blurry"]["status"] == "done" and results["blurry"]["test"]["lowres"]["n"] == 2
    with pytest.raises(JobsFailed, match="2 of 4 jobs did not finish: broken: failed"):
        raise_failures(results, jobs)

    # run again: the finished jobs are not trained or scored again
    trained = (tmp_path / "masks" / "metrics.csv").stat().st_mtime_ns
    again = run_jobs(jobs, isolate=False)
    assert again["masks"] == done and again["blurry"] == results["blurry"]
    assert (tmp_path / "masks" / "metrics.csv").stat().st_mtime_ns == trained
    # the same scores kept in another folder (another bake-off's): copied there, not scored again
    kept = replace(jobs[3], scores=(Score(faces, INPUT, "lowres", limit=2, out=str(tmp_path / "blurry"),
                                          keep=str(tmp_path / "kept-a")),))
    assert run_jobs([kept], isolate=False)["blurry"]["test"]["lowres"]["n"] == 2  # scored (out was not asked before)
    scored = (tmp_path / "blurry" / "per_image.csv").stat().st_mtime_ns
    elsewhere = replace(kept, scores=(replace(kept.scores[0], keep=str(tmp_path / "kept-b")),))
    (tmp_path / "kept-b").mkdir()
    (tmp_path / "kept-b" / "per_image.csv").write_text("id\nan older plain copy\n")  # would be read first: removed
    assert run_jobs([elsewhere], isolate=False)["blurry"]["test"]["lowres"]["n"] == 2
    assert (tmp_path / "blurry" / "per_image.csv").stat().st_mtime_ns == scored  # not scored again
    kept_b = (tmp_path / "kept-b" / "per_image.csv.gz").read_bytes()  # kept gzip'd, the same bytes for the same table
    assert kept_b == (tmp_path / "kept-a" / "per_image.csv.gz").read_bytes()
    assert gzip.decompress(kept_b) == (tmp_path / "blurry" / "per_image.csv").read_bytes()
    assert not (tmp_path / "kept-b" / "per_image.csv").exists()
    # a spec kept before a field existed (here the degradation seed) is the same job at that field's default
    spec = tmp_path / "blurry" / "job.json"
    stored = json.loads(spec.read_text())
    for score in stored["scores"]:
        del score["seed"]
    spec.write_text(json.dumps(stored))
    assert run_jobs([elsewhere], isolate=False)["blurry"]["test"]["lowres"]["n"] == 2
    assert (tmp_path / "blurry" / "per_image.csv").stat().st_mtime_ns == scored  # not scored again
    # another seed draws other test faces: scored again
    reseeded = replace(elsewhere, scores=(replace(elsewhere.scores[0], seed=1),))
    assert set(run_jobs([reseeded], isolate=False)["blurry"]["test"]) == {"lowres-seed1"}  # the seed named
    assert (tmp_path / "blurry" / "per_image.csv").stat().st_mtime_ns != scored
    assert json.loads((tmp_path / "blurry" / "summary.json").read_text())["info"]["degradation_seed"] == 1
    # a job whose spec changed runs again: its run goes on from last.pt (nothing left to train), scored anew
    more = run_jobs([replace(jobs[0], scores=(Score(faces, limit=3),))], isolate=False)["masks"]
    assert more["test"]["thesis"]["n"] == 3 and more["steps"] == done["steps"]
    assert (tmp_path / "masks" / "metrics.csv").stat().st_mtime_ns == trained


def test_a_batch_is_checked_before_it_runs():
    with pytest.raises(ValueError, match="repeat"):
        check_jobs([Job("a", "a"), Job("a", "b")])
    with pytest.raises(ValueError, match="not an earlier job"):
        check_jobs([Job("a", "a", after=("b",)), Job("b", "b")])


def test_a_job_spec_survives_its_json():
    cfg = load_config(None, "deblur", ["model.kwargs={width: 8}", "data.sizes=[256]"])
    job = Job("j", "run", train=cfg, scores=(Score("faces", degradation="lowres", limit=3),), after=("m",),
              share_seconds=60.0)
    assert Job.from_json(job.to_json()) == job


def test_a_failure_is_told_in_one_line(tmp_path, monkeypatch):
    import smfd.train.jobs as jobs_module

    def fails(job, progress=False):
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2.00 GiB")

    monkeypatch.setattr(jobs_module, "run_job", fails)
    job = Job("big", str(tmp_path / "big"))
    results = run_jobs([job], isolate=False)
    assert results["big"]["status"] == "failed: RuntimeError: CUDA out of memory."
    with pytest.raises(JobsFailed) as e:
        raise_failures(results, [job])
    assert "\n" not in str(e.value)
