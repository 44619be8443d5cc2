"""``scripts/gpu_run.sh``, the lent GPU's one command, at a tiny scale on the CPU: it refuses a queue that does not
fit, then measures throughput and runs the queue into one output folder; and every queue in configs/gpu plans to
completion with configs and nets that exist."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import make_face_folder
from smfd.data.pack import make_pack
from smfd.models import build
from smfd.train import load_config
from smfd.train.queue import load_queue, plan_queue

ROOT = Path(__file__).resolve().parents[2]
TINY = ["epochs=1", "batch_size=2", "data.size=32", "data.val_limit=2", "data.augment=false", "threads=1",
        "data.split={data}/split.json"]


def _run(tmp_path, queue: dict, **env_over):
    q = tmp_path / "queue.yaml"
    q.write_text(yaml.safe_dump(queue))
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_ARGS", "BENCH_SECONDS", "QUEUE_ARGS", "PACK")}
    env = {**env, "PYTHON": sys.executable, "WORK": str(tmp_path / "work"), **env_over}
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu_run.sh"), str(q), str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def pack(tmp_path):
    faces = make_face_folder(tmp_path / "faces", n=12, size=32)
    make_pack(faces, tmp_path / "pack", subset=10, quality=90)
    return tmp_path / "pack"


def test_the_gpu_command_measures_then_runs_its_queue_into_one_folder(tmp_path, pack):
    queue = {"minutes": 3, "lanes": 2, "jobs": [
        {"name": "blurry", "task": "input", "split": "{data}/split.json"},
        {"name": "masks", "task": "mask", "minutes": 0.3, "set": TINY, "keep": True}]}
    bench = "--workers 0 --degradations thesis --nets unet --batch 2 --step-batches 2 --seconds 0.3"
    r = _run(tmp_path, queue, PACK=str(pack), BENCH_SECONDS="120", BENCH_ARGS=bench)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "out"
    assert "| unet | 2 |" in (out / "throughput.md").read_text()
    results = (out / "queue" / "results.md").read_text()
    assert "| blurry |" in results and "| masks | mask_generator |" in results and "| done |" in results
    assert (out / "queue" / "masks.safetensors").is_file()
    assert len([p for p in out.rglob("*") if p.is_file()]) <= 8


def test_the_gpu_command_refuses_a_queue_that_does_not_fit_before_spending_a_minute(tmp_path, pack):
    queue = {"minutes": 1, "lanes": 1, "jobs": [{"name": "long", "task": "mask", "minutes": 5, "set": TINY}]}
    r = _run(tmp_path, queue, PACK=str(pack))
    assert r.returncode != 0 and "would not run: long" in r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()
    r = _run(tmp_path, queue, PACK=str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "not a training pack" in r.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "gpu").glob("*.yaml")), ids=lambda p: p.name)
def test_every_gpu_queue_fits_its_minutes_with_configs_and_nets_that_exist(path):
    queue = load_queue(path)
    rows = plan_queue(queue)
    if path.name != "first-run.yaml":  # the first run's queue is kept as it ran; it did not fit (its results say so)
        assert all(r["status"] == "done" for r in rows), rows
    for job in queue.jobs:
        if job.task == "input":
            continue
        sets = [s.replace("{data}/", "") for s in job.set if not s.startswith("data.split")]
        cfg = load_config(str(ROOT / job.config), job.task, sets)
        build(cfg.model.name, **cfg.model.kwargs)


def test_the_plan_follows_the_queue_rules():
    from smfd.train.queue import EVAL_SECONDS, START_SECONDS, Queue, QueueJob

    jobs = [QueueJob("a", "mask", minutes=1.0), QueueJob("b", "deblur", minutes=1.0, mask_source="job:a"),
            QueueJob("c", "input"), QueueJob("d", "mask", minutes=3.0)]
    rows = plan_queue(Queue(jobs, minutes=7.0, lanes=2))
    per = (60 + START_SECONDS + EVAL_SECONDS) / 60
    a, b, c, d = rows
    assert (a["lane"], a["start"], c["lane"], c["start"]) == (1, 0.0, 2, 0.0)  # b waits for a; c takes the lane
    assert b["start"] == pytest.approx(round(per, 2)) and b["lane"] == 1
    assert d["start"] == pytest.approx(round(EVAL_SECONDS / 60, 2)) and d["lane"] == 2  # after c, in c's lane
    assert d["status"] == "done"
    rows = plan_queue(Queue(jobs, minutes=3.0, lanes=1))
    assert rows[3]["status"].startswith("not started")
    # a job whose dependency never ran is skipped; one that waits on a job of odd minutes still starts after it
    rows = plan_queue(Queue([QueueJob("a", "mask", minutes=9.0),
                             QueueJob("b", "deblur", minutes=1.0, mask_source="job:a")], minutes=4.0, lanes=2))
    assert rows[0]["status"].startswith("not started") and rows[1]["status"].startswith("skipped")
    for m in (1.007, 2.5, 2.8):
        rows = plan_queue(Queue([QueueJob("a", "mask", minutes=m),
                                 QueueJob("b", "deblur", minutes=0.5, mask_source="job:a")], minutes=20.0, lanes=1))
        assert [r["status"] for r in rows] == ["done", "done"] and rows[1]["start"] == rows[0]["end"]
