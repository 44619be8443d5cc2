"""``smfd queue``: jobs inside a budget, lanes, jobs that use an earlier job's mask generator, one small output
folder (at most 8 files, weights in fp16 parts), failures kept to their job; and ``smfd prepare pack``."""

import json
import re

import numpy as np
import pytest
import yaml

from helpers import make_face_folder
from smfd.data import FaceFolder, Splits
from smfd.data.pack import make_pack
from smfd.models.io import load_weights
from smfd.train.queue import MAX_FILES, load_queue, run_queue

TINY = ["epochs=1", "batch_size=2", "data.size=32", "data.test_fraction=0.25", "data.val_limit=2",
        "data.augment=false", "threads=1"]


def _queue(tmp_path, jobs, **top):
    path = tmp_path / "queue.yaml"
    path.write_text(yaml.safe_dump({"minutes": 4, "lanes": 2, **top, "jobs": jobs}))
    return load_queue(path)


@pytest.fixture
def faces(tmp_path):
    return make_face_folder(tmp_path / "faces", n=12, size=32)


def test_a_queue_trains_scores_and_keeps_its_results_in_at_most_eight_files(tmp_path, faces):
    q = _queue(tmp_path, [
        {"name": "blurry", "task": "input", "eval": ["thesis", "lowres"]},
        {"name": "masks", "task": "mask", "minutes": 0.5, "set": TINY, "keep": True},
        {"name": "deblur", "task": "deblur", "minutes": 0.5, "mask_source": "job:masks", "keep": True,
         "set": [*TINY, "model.name=nafnet_mask", "model.kwargs.width=8"]},
        {"name": "broken", "task": "deblur", "minutes": 0.5, "set": [*TINY, "model.name=no_such_net"]},
        {"name": "after-broken", "task": "deblur", "minutes": 0.5, "mask_source": "job:broken", "set": TINY},
    ])
    out = tmp_path / "out"
    record = run_queue(q, faces, out, work=tmp_path / "work", extra_set=["data.num_workers=1"])
    status = {j["job"]: j["status"] for j in record["jobs"]}
    assert status["blurry"] == status["masks"] == status["deblur"] == "done", status
    assert status["broken"].startswith("failed") and "no_such_net" in status["broken"]
    assert status["after-broken"].startswith("skipped")
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= MAX_FILES
    assert {"results.md", "results.json", "metrics.csv", "queue.log", "masks.safetensors",
            "deblur.safetensors"} <= set(files)
    deblur = next(j for j in record["jobs"] if j["job"] == "deblur")
    assert deblur["mask_source"].startswith("generator:") and deblur["steps"] >= 1
    assert deblur["face_passes"] == deblur["steps"] * 2 and set(deblur["test"]) == {"thesis"}
    assert np.isfinite(deblur["test"]["thesis"]["psnr"])
    blurry = next(j for j in record["jobs"] if j["job"] == "blurry")
    assert set(blurry["test"]) == {"thesis", "lowres"} and blurry["test"]["thesis"]["n"] == 2  # 20 % of 12
    net = load_weights(out / "deblur.safetensors")
    assert net.spec.name == "nafnet_mask" and net.spec.options == {"width": 8}
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("job,") and any(r.startswith("masks,") for r in metrics[1:])
    assert "| deblur | nafnet_mask |" in (out / "results.md").read_text()
    with pytest.raises(FileExistsError):
        run_queue(q, faces, out, work=tmp_path / "work2")


def test_big_weights_come_back_in_parts_that_join(tmp_path, faces, monkeypatch):
    import smfd.train.queue as queue

    monkeypatch.setattr(queue, "PART_BYTES", 1_500_000)  # width-8 NAFNet: about 3.7 MB in fp16
    q = _queue(tmp_path, [{"name": "net", "task": "deblur", "minutes": 0.3, "keep": True,
                           "set": [*TINY, "model.name=nafnet", "model.kwargs.width=8"]}])
    record = run_queue(q, faces, tmp_path / "out", work=tmp_path / "work")
    names = record["jobs"][0]["weights"]
    assert len(names) > 1 and all(n.startswith("net.safetensors.part-") for n in names)
    joined = tmp_path / "net.safetensors"
    joined.write_bytes(b"".join((tmp_path / "out" / n).read_bytes() for n in sorted(names)))
    from smfd.fileio import sha256_file

    assert sha256_file(joined) == record["jobs"][0]["weights_sha256"]
    assert load_weights(joined).spec.name == "nafnet"


def test_jobs_that_cannot_finish_before_the_deadline_do_not_start(tmp_path, faces):
    q = _queue(tmp_path, [{"name": "long", "task": "deblur", "minutes": 30, "set": TINY}], minutes=1)
    record = run_queue(q, faces, tmp_path / "out", work=tmp_path / "work")
    assert record["jobs"][0]["status"].startswith("not started")


def test_queue_files_are_checked(tmp_path):
    with pytest.raises(ValueError, match="not an earlier job"):
        _queue(tmp_path, [{"name": "a", "task": "deblur", "mask_source": "job:b"}, {"name": "b", "task": "mask"}])
    with pytest.raises(ValueError, match="task must be"):
        _queue(tmp_path, [{"name": "a", "task": "dance"}])
    with pytest.raises(ValueError, match="repeat"):
        _queue(tmp_path, [{"name": "a", "task": "mask"}, {"name": "a", "task": "mask"}])


@pytest.mark.parametrize("text, message", [
    ("jobs: [{name: a, task: mask, set: epochs=1}]", "config key jobs[0].set: expected a list of str, got 'epochs=1'"),
    ("jobs: [{name: a, task: mask}, {name: b, task: mask, after: [a, 1]}]",
     "config key jobs[1].after[1]: expected str, got 1"),
    ("jobs: [{name: a, task: mask, minutes: soon}]", "config key jobs[0].minutes: expected float, got 'soon'"),
    ("jobs: [{name: a, task: mask, minutes: 0}]", "jobs[0].minutes must be > 0"),
    ("jobs: [{name: a, task: deblur, mask_source: 'jb:x'}]", "jobs[0].mask_source must be gt or generator:PATH"),
    ("jobs: [{name: a, task: mask}, {task: mask}]", "config key jobs[1].name is missing"),
    ("jobs: [{name: a, task: mask, colour: red}]", "unknown config key jobs[0].colour"),
    ("jobs: []", "jobs must list at least one job"),
    ("lanes: 2", "config key jobs is missing"),
    ("jobs: [{name: a, task: mask}]\nlane: 2", "unknown config key lane"),
    ("jobs: [{name: a, task: mask}\n", "not valid YAML"),
])
def test_a_bad_queue_file_is_refused_in_one_line_naming_the_key(tmp_path, text, message):
    (tmp_path / "q.yaml").write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'q.yaml'}: {message}")) as e:
        load_queue(tmp_path / "q.yaml")
    assert "\n" not in str(e.value)


def test_pack_keeps_the_split_of_its_source_and_reports_its_fidelity(tmp_path, faces):
    record = make_pack(faces, tmp_path / "pack", subset=8, quality=90)
    pack = FaceFolder(tmp_path / "pack")
    assert len(pack) == 8 and all(pack.image_path(i).suffix == ".webp" for i in pack.ids)
    source = FaceFolder(faces)
    for i in pack.ids:  # masks are lossless, images close to the source
        img, mask = pack.read(i)
        src_img, src_mask = source.read(i)
        assert np.array_equal(mask, src_mask)
        assert np.abs(img.astype(int) - src_img).mean() < 6
    from smfd.data import make_splits

    assert Splits.load(tmp_path / "pack" / "split.json") == make_splits(source.ids, seed=0, subset=8)
    assert record["faces"] == 8 and record["psnr_vs_source"]["mean"] > 30
    assert json.loads((tmp_path / "pack" / "pack.json").read_text())["quality"] == 90
    with pytest.raises(FileExistsError):
        make_pack(faces, tmp_path / "pack", subset=8)
    with pytest.raises(ValueError, match="max-mib"):
        make_pack(faces, tmp_path / "small", subset=8, max_mib=0.001)
    assert not (tmp_path / "small").exists()  # a refused pack leaves nothing behind


def test_pack_carries_another_split_restricted_to_its_faces(tmp_path, faces):
    from smfd.data import make_splits

    whole = make_splits(FaceFolder(faces).ids, seed=0, test_fraction=0.25, folds=2)
    whole.save(tmp_path / "whole.json")
    make_pack(faces, tmp_path / "pack", subset=10, folds=2, also_splits=(tmp_path / "whole.json",))
    carried = Splits.load(tmp_path / "pack" / "split-whole.json")
    packed = set(FaceFolder(tmp_path / "pack").ids)
    assert set(carried.test) == set(whole.test) & packed
    assert set(carried.trainval) == set(whole.trainval) & packed and not set(carried.trainval) & set(whole.test)


def test_a_job_past_its_wall_clock_share_is_stopped_and_still_scored(tmp_path, faces, monkeypatch):
    """Validation and start-up are outside a run's training budget: the queue stops a job that overstays its
    share (SIGINT), and the job scores its best epoch so far and brings back its weights."""
    import smfd.train.queue as queue

    monkeypatch.setattr(queue, "START_SECONDS", 0)
    q = _queue(tmp_path, [{"name": "slow", "task": "deblur", "minutes": 0.2, "keep": True,
                           "set": [*TINY, "model.name=nafnet", "model.kwargs.width=8"]}])
    # the run itself would train for 10 minutes and 1000 epochs: only the queue's clock stops it
    record = run_queue(q, faces, tmp_path / "out", work=tmp_path / "work",
                       extra_set=["budget_minutes=10", "epochs=1000", "early_stop=1000"])
    job = record["jobs"][0]
    assert job["status"] == "done" and "cut" in job["stopped"], job
    assert job["epochs"] >= 1 and np.isfinite(job["test"]["thesis"]["psnr"])
    assert (tmp_path / "out" / "slow.safetensors").is_file()
