"""A queue of training jobs inside one wall-clock budget, with everything worth keeping in one small folder.

Made for a lent GPU machine (one command of at most 10 minutes, at most 8 files of 16 MiB back), and the same
code runs a tiny queue on a CPU as a test. ``smfd queue QUEUE.yaml --data PACK -o OUT --minutes M``:

* each job trains with ``smfd train`` settings (a config, ``--set`` overrides, a mask source) for its own
  ``minutes`` (``budget_minutes``), in a process of its own, then is scored on its split's test faces for each
  listed degradation family; up to ``lanes`` jobs run side by side (the CPU cores are shared out among their
  data loaders), a job waits for the jobs it names in ``after`` (``mask_source: job:NAME`` uses a mask generator
  trained earlier in the queue), and no job starts that cannot finish before the deadline (the jobs run through
  :func:`smfd.train.jobs.run_jobs`; every job's config is resolved before the first starts, so a bad one costs
  no time; run again with the same work folder, a job already done for the same spec is not run again and an
  unfinished one continues its last.pt);
* ``OUT`` gets at most 8 files: ``results.md`` and ``results.json`` (per job: what ran, steps, face passes,
  minutes, validation and test scores, status), ``metrics.csv`` (every job's epochs, with a ``job`` column),
  ``queue.log`` (this process's log and the end of each job's), and the fp16 weights of the jobs marked
  ``keep`` (``NAME.safetensors``, or ``NAME.safetensors.part-00``, ``-01``, ... when over 16 MiB: join them with
  ``cat NAME.safetensors.part-* > NAME.safetensors`` and check the SHA-256 in results.json).

The queue file::

    minutes: 8          # default wall-clock budget (--minutes overrides)
    lanes: 2
    jobs:
      - {name: mask, task: mask, config: configs/thesis.yaml, minutes: 1.5, keep: true}
      - {name: smfd-gen, task: deblur, config: configs/thesis.yaml, minutes: 2.5, mask_source: "job:mask",
         set: [data.split=PACK/split.json], eval: [thesis], keep: true}
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ..fileio import atomic_write_bytes
from ..score.masks import MaskSource, parse_mask_source
from .config import from_yaml, load_config
from .jobs import INPUT, Job, Score, check_jobs, read_csv, readiness, run_jobs

log = logging.getLogger("smfd.queue")

MAX_FILES = 8
PART_BYTES = 16 * 2**20
FIXED_FILES = ("results.md", "results.json", "metrics.csv", "queue.log")
EVAL_SECONDS = 90  # time kept free after a job's training for its scoring (400 faces: about a minute on a GPU)
START_SECONDS = 30  # a job's start-up (imports, CUDA, loader workers) before its training minutes begin
MARGIN_SECONDS = 30  # kept free before the deadline: no job is planned to end in it (the queue's own writing)


JobTask = Literal["mask", "deblur", "input"]  # input: score the degraded test faces themselves


@dataclass
class QueueJob:
    """A job of a queue file, as written there (:func:`to_jobs` makes it a job of the runner)."""

    name: str
    task: JobTask  # mask, deblur, or input (score the degraded test faces themselves: a table's "blurry" row)
    config: str = ""
    minutes: float = 1.0
    set: list[str] = field(default_factory=list)
    mask_source: str = ""  # the config's if empty; gt, generator:PATH or job:NAME
    after: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=lambda: ["thesis"])  # degradation families to score the test faces
    eval_limit: int | None = None  # score only the first N test faces
    split: str = ""  # split file for an input job (training jobs: data.split in set); "{data}" stands for --data
    keep: bool = False  # bring back its fp16 weights

    def __post_init__(self) -> None:  # its messages begin with the key, so a queue file's error names its place
        if self.task not in ("mask", "deblur", "input"):
            raise ValueError(f"task must be mask, deblur or input, got {self.task!r}")
        if self.minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}")
        source = self.source
        if source is not None and source.kind == "job" and source.target not in self.after:
            self.after = [*self.after, source.target]

    @property
    def source(self) -> MaskSource | None:
        """The job's mask source (None: its config's)."""
        if not self.mask_source:
            return None
        return parse_mask_source(self.mask_source, ("gt", "generator", "job"), name="mask_source")


@dataclass
class Queue:
    """A queue file: its jobs, in order, the wall-clock budget and how many jobs run side by side."""

    jobs: list[QueueJob]
    minutes: float = 8.0
    lanes: int = 1

    def __post_init__(self) -> None:
        if not self.jobs:
            raise ValueError("jobs must list at least one job")
        if self.minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}")
        if self.lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {self.lanes}")
        check_jobs(self.jobs)


def load_queue(path: str | os.PathLike) -> Queue:
    """The queue file at ``path``, checked: an error is one line naming the file and the key
    (``queue.yaml: jobs[2].minutes must be > 0, got 0``)."""
    return from_yaml(Queue, path)


def reserved_seconds(job: QueueJob) -> float:
    """What the queue keeps free for a job before it starts it: start-up, training minutes, scoring."""
    return (0 if job.task == "input" else job.minutes * 60 + START_SECONDS) + EVAL_SECONDS


def plan_queue(queue: Queue, minutes: float | None = None, lanes: int | None = None) -> list[dict]:
    """The schedule :func:`run_queue` would follow if every job took its reserved seconds (start-up, its minutes,
    scoring), by the same rules: jobs in order, up to ``lanes`` at once, a job waits for those it names, and none
    starts that cannot finish ``MARGIN_SECONDS`` before the deadline. One row per job: lane, start and end in
    minutes, status."""
    deadline = (minutes or queue.minutes) * 60
    lanes = max(1, lanes or queue.lanes)
    t, pending = 0.0, list(queue.jobs)
    running: dict[int, tuple[float, str]] = {}  # lane -> (end in seconds, job)
    ended: dict[str, str] = {}  # job -> status, once it has left its lane (or never got one)
    rows: dict[str, dict] = {}
    while pending or running:
        for lane, (end, name) in list(running.items()):
            if end <= t:
                del running[lane]
                ended[name] = "done"
        for job in list(pending):
            if len(running) >= lanes:
                break
            need = reserved_seconds(job)
            verdict = readiness(job.after, ended, need, deadline - t, MARGIN_SECONDS)
            if verdict == "wait":
                continue  # later jobs may start meanwhile
            pending.remove(job)
            if verdict != "start":
                rows[job.name] = {"job": job.name, "status": verdict}
                ended[job.name] = verdict
                continue
            lane = min(set(range(lanes)) - set(running))
            running[lane] = (t + need, job.name)
            rows[job.name] = {"job": job.name, "lane": lane + 1, "start": round(t / 60, 2),
                              "end": round((t + need) / 60, 2), "status": "done"}
        if running:
            t = min(end for end, _ in running.values())
        elif pending:  # only jobs waiting on jobs that never ran: cannot happen with a checked queue
            for job in pending:
                rows[job.name] = {"job": job.name, "status": "not started: waits forever"}
            pending = []
    return [rows[j.name] for j in queue.jobs]


def plan_markdown(queue: Queue, rows: list[dict], minutes: float | None = None, lanes: int | None = None) -> str:
    lines = [f"Plan: {minutes or queue.minutes:g} min, {max(1, lanes or queue.lanes)} lane(s); each job reserves "
             f"{START_SECONDS} s to start, its minutes, and {EVAL_SECONDS} s to be scored; the last "
             f"{MARGIN_SECONDS} s stay free.", "",
             "| job | task | lane | starts, min | done by, min | |", "|---|---|---:|---:|---:|---|"]
    for job, r in zip(queue.jobs, rows, strict=True):
        ok = r["status"] == "done"
        lines.append(f"| {job.name} | {job.task} | {r.get('lane', '')} | {r.get('start', '')} | {r.get('end', '')} | "
                     f"{'fits' if ok else r['status']} |")
    return "\n".join(lines) + "\n"


# --- the queue's jobs, run ------------------------------------------------------------------------------------


def to_jobs(queue: Queue, data: str | os.PathLike, work: Path, extra_set: Sequence[str] = (),
            eval_limit: int | None = None) -> list[Job]:
    """The queue's jobs as the runner's: each training job's config resolved (its file, its ``set``, its minutes,
    then ``extra_set``), ``{data}`` filled in, ``job:NAME`` masks read from that job's run folder."""
    return [_to_job(_filled(j, data), data, work, extra_set, eval_limit) for j in queue.jobs]


def _filled(job: QueueJob, data: str | os.PathLike) -> QueueJob:
    """``job`` with ``{data}`` standing for the data folder (in its set, split...)."""
    text = json.dumps(asdict(job)).replace("{data}", str(data).replace("\\", "/"))
    return QueueJob(**json.loads(text))


def _to_job(job: QueueJob, data: str | os.PathLike, work: Path, extra_set: Sequence[str],
            eval_limit: int | None) -> Job:
    limit = job.eval_limit if eval_limit is None else min(eval_limit, job.eval_limit or eval_limit)
    if job.task == "input":
        scores = tuple(Score(str(data), INPUT, family, split_file=job.split or None, limit=limit)
                       for family in job.eval)
        return Job(job.name, str(work / job.name), scores=scores, after=tuple(job.after),
                   reserve_seconds=reserved_seconds(job))
    source = job.source
    if source is not None and source.kind == "job":  # the generator that job trained, in its folder
        source = MaskSource("generator", str(work / source.target))
    fixed = {"data.root": str(data), **({"mask_source": str(source)} if source is not None else {})}
    try:
        cfg = load_config(job.config or None, job.task, [*job.set, f"budget_minutes={job.minutes}", *extra_set],
                          **fixed)
    except (OSError, ValueError) as e:
        raise ValueError(f"job {job.name}: {e}") from None
    scores = tuple(Score(str(data), degradation=family, mask_source=cfg.mask_source, limit=limit)
                   for family in job.eval)
    return Job(job.name, str(work / job.name), train=cfg, scores=scores, after=tuple(job.after),
               share_seconds=job.minutes * 60 + START_SECONDS, reserve_seconds=reserved_seconds(job))


def run_queue(queue: Queue, data: str | os.PathLike, out: str | os.PathLike, *, work: str | os.PathLike,
              minutes: float | None = None, lanes: int | None = None, extra_set: list[str] | None = None,
              eval_limit: int | None = None, poll: float = 1.0) -> dict:
    """Run ``queue`` (see the module doc) and write its folder ``out``; returns the results record.
    ``extra_set``: overrides for every training job (after its own); ``eval_limit``: score at most this many
    test faces in every job (a quick run). A job's bad config refuses the queue before anything runs."""
    out, work = Path(out), Path(work)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: folder is not empty (choose another -o)")
    minutes = minutes or queue.minutes
    lanes = max(1, lanes or queue.lanes)
    cores = os.cpu_count() or 1
    workers = max(0, cores // lanes - 1)  # the CPU cores shared out among the lanes' data loaders
    jobs = to_jobs(queue, data, work, [f"data.num_workers={workers}", *(extra_set or [])], eval_limit)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    with _logging_to(work / "queue.log"):
        log.info("queue: %d jobs, %d lanes, %.1f min, %d cores (%d loader workers a job), data %s",
                 len(queue.jobs), lanes, minutes, cores, workers, data)
        log.info("machine: %s", _machine())
        results = run_jobs(jobs, lanes=lanes, minutes=minutes, margin=MARGIN_SECONDS, threads=2, poll=poll)
    record = {"minutes": minutes, "lanes": lanes, "data": str(data),
              "jobs": [{"job": j.name, "task": j.task, **({"model_name": INPUT} if j.task == "input" else {}),
                        **results[j.name]} for j in queue.jobs], "machine": _machine()}
    _write_out(queue, record, work, out)
    return record


@contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """The queue's and the runner's log lines also go to ``path`` while the queue runs."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    loggers = [log, logging.getLogger("smfd.jobs")]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        handler.close()


def _machine() -> dict:
    import platform

    import torch

    info = {"platform": platform.platform(), "torch": torch.__version__, "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _write_out(queue: Queue, record: dict, work: Path, out: Path) -> None:
    """results.md/json, metrics.csv, queue.log and the kept weights (fp16, in parts of at most 16 MiB)."""
    from ..models.io import load_weights, save_weights

    budget = MAX_FILES - len(FIXED_FILES)
    for job, res in zip(queue.jobs, record["jobs"], strict=True):
        best = work / job.name / "best.safetensors"
        if not (job.keep and job.task != "input" and best.is_file()):
            continue  # a job stopped at the deadline still brings back its best epoch's weights
        tmp = work / f"{job.name}.fp16.safetensors"
        source = best
        res["weights_sha256"] = save_weights(load_weights(source), tmp, half=True,
                                             extra={"job": job.name, "steps": res.get("steps"),
                                                    "test": res.get("test")})
        data = tmp.read_bytes()
        parts = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)]
        if len(parts) > budget:
            res["weights"] = f"not brought back: {len(parts)} file(s), {budget} left of {MAX_FILES}"
            continue
        names = [f"{job.name}.safetensors"] if len(parts) == 1 else \
            [f"{job.name}.safetensors.part-{i:02d}" for i in range(len(parts))]
        for name, part in zip(names, parts, strict=True):
            atomic_write_bytes(out / name, part)
        res["weights"] = names
        budget -= len(parts)
    metrics = []
    for job in queue.jobs:
        for row in read_csv(work / job.name / "metrics.csv"):
            metrics.append({"job": job.name, **row})
    if metrics:
        fields = list(dict.fromkeys(k for row in metrics for k in row))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(metrics)
        atomic_write_bytes(out / "metrics.csv", buf.getvalue().encode())
    logs = [(work / "queue.log").read_text(errors="replace")]
    for job in queue.jobs:
        p = work / job.name / "job.log"
        if p.is_file():
            lines = p.read_text(errors="replace").splitlines()
            logs.append(f"\n==== {job.name}: last {min(len(lines), 60)} of {len(lines)} lines ====\n" +
                        "\n".join(lines[-60:]))
    atomic_write_bytes(out / "queue.log", "\n".join(logs).encode())
    atomic_write_bytes(out / "results.json", json.dumps(record, indent=1, default=str).encode())
    atomic_write_bytes(out / "results.md", results_markdown(record).encode())


def results_markdown(record: dict) -> str:
    m = record["machine"]
    lines = [f"# Queue on {m.get('gpu', 'CPU')} ({m['cpus']} CPU cores, torch {m['torch']}), "
             f"{record['minutes']:g} min, {record['lanes']} lane(s)", "", f"Data: `{record['data']}`.", "",
             "| job | net | masks | steps | face passes | epochs | train min | best val | test | status |",
             "|---|---|---|---:|---:|---:|---:|---|---|---|"]
    for r in record["jobs"]:
        test = "; ".join(f"{fam}: " + ", ".join(f"{k} {v:.4f}" for k, v in s.items()
                                                  if k in ("psnr", "ssim", "dice", "dice_2", "jaccard"))
                         + f" (n={s.get('n')})" for fam, s in r.get("test", {}).items())
        val = f"{r.get('monitor', '')} {r['best_val']:.4f}" if isinstance(r.get("best_val"), float) else ""
        lines.append(f"| {r['job']} | {r.get('model_name', '')} | {r.get('mask_source', '')} | {r.get('steps', '')} | "
                     f"{r.get('face_passes', '')} | {r.get('epochs', '')} | {r.get('train_minutes', '')} | {val} | "
                     f"{test} | {r['status']}{' (' + r['stopped'] + ')' if r.get('stopped') else ''} |")
    return "\n".join(lines) + "\n"
