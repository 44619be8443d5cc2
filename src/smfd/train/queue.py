"""A queue of training jobs inside one wall-clock budget, with everything worth keeping in one small folder.

Made for a lent GPU machine (one command of at most 10 minutes, at most 8 files of 16 MiB back), and the same
code runs a tiny queue on a CPU as a test. ``smfd queue QUEUE.yaml --data PACK -o OUT --minutes M``:

* each job trains with ``smfd train`` settings (a config, ``--set`` overrides, a mask source) for its own
  ``minutes`` (``budget_minutes``), in a process of its own, then is scored on its split's test faces for each
  listed degradation family; up to ``lanes`` jobs run side by side (the CPU cores are shared out among their
  data loaders), a job waits for the jobs it names in ``after`` (``mask_source: job:NAME`` uses a mask generator
  trained earlier in the queue), and no job starts that cannot finish before the deadline;
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
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from ..fileio import atomic_write_bytes
from ..score.masks import MaskSource, parse_mask_source

log = logging.getLogger("smfd.queue")

MAX_FILES = 8
PART_BYTES = 16 * 2**20
FIXED_FILES = ("results.md", "results.json", "metrics.csv", "queue.log")
EVAL_SECONDS = 90  # time kept free after a job's training for its scoring (400 faces: about a minute on a GPU)
START_SECONDS = 30  # a job's start-up (imports, CUDA, loader workers) before its training minutes begin
MARGIN_SECONDS = 30  # kept free before the deadline: no job is planned to end in it (the queue's own writing)


JobTask = Literal["mask", "deblur", "input"]  # input: score the degraded test faces themselves


@dataclass
class Job:
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

    def __post_init__(self) -> None:
        if self.task not in ("mask", "deblur", "input"):
            raise ValueError(f"job {self.name}: task must be mask, deblur or input, got {self.task!r}")
        if self.minutes <= 0:
            raise ValueError(f"job {self.name}: minutes must be > 0")
        source = self.source
        if source is not None and source.kind == "job" and source.target not in self.after:
            self.after = [*self.after, source.target]

    @property
    def source(self) -> MaskSource | None:
        """The job's mask source (None: its config's)."""
        if not self.mask_source:
            return None
        return parse_mask_source(self.mask_source, ("gt", "generator", "job"), name=f"job {self.name}: mask_source")


@dataclass
class Queue:
    jobs: list[Job]
    minutes: float = 8.0
    lanes: int = 1


def load_queue(path: str | os.PathLike) -> Queue:
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), list) or not raw["jobs"]:
        raise ValueError(f"{path}: expected a mapping with a non-empty 'jobs' list")
    unknown = set(raw) - {"jobs", "minutes", "lanes"}
    if unknown:
        raise ValueError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: jobs, minutes, lanes)")
    jobs = []
    for i, j in enumerate(raw["jobs"]):
        if not isinstance(j, dict) or "name" not in j or "task" not in j:
            raise ValueError(f"{path}: job {i + 1} needs a name and a task")
        try:
            jobs.append(Job(**j))
        except TypeError as e:
            raise ValueError(f"{path}: job {j['name']}: {e}") from None
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: job names repeat")
    for j in jobs:
        for d in j.after:
            if d not in names[: names.index(j.name)]:
                raise ValueError(f"{path}: job {j.name} waits for {d!r}, which is not an earlier job")
    return Queue(jobs, float(raw.get("minutes", 8.0)), int(raw.get("lanes", 1)))


def reserved_seconds(job: Job) -> float:
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
    finished: dict[str, str] = {}  # job -> status, once it has left its lane (or never got one)
    rows: dict[str, dict] = {}
    while pending or running:
        for lane, (end, name) in list(running.items()):
            if end <= t:
                del running[lane]
                finished[name] = "done"
        for job in list(pending):
            if len(running) >= lanes:
                break
            failed = [d for d in job.after if d in finished and finished[d] != "done"]
            if failed:
                pending.remove(job)
                rows[job.name] = {"job": job.name, "status": f"skipped: {failed[0]} not run"}
                finished[job.name] = rows[job.name]["status"]
                continue
            if any(d not in finished for d in job.after):
                continue  # waits; later jobs may start meanwhile
            pending.remove(job)
            need = reserved_seconds(job)
            if need + MARGIN_SECONDS > deadline - t:
                rows[job.name] = {"job": job.name, "status": f"not started: needs {need / 60:.1f} min, "
                                                             f"{(deadline - t) / 60:.1f} left"}
                finished[job.name] = rows[job.name]["status"]
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


# --- one job, in its own process ---------------------------------------------------------------------------


def run_job(spec: dict) -> dict:
    """Train (unless an input job) and score one job; writes and returns ``result.json`` in its run folder."""
    from ..models.io import resolve_model_path
    from ..score import evaluate_model, summarize
    from .config import load_config
    from .loop import fit

    data = spec["data"]
    job = Job(**json.loads(json.dumps(spec["job"]).replace("{data}", str(data).replace("\\", "/"))))
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"job": job.name, "task": job.task, "status": "running"}
    source = job.source
    if source is not None and source.kind == "job":  # the generator that job trained, in its folder
        source = MaskSource("generator", str(Path(spec["work"]) / source.target))
    mask_source = str(source) if source is not None else ""
    t0 = time.time()
    if job.task == "input":
        model, split_file, eval_mask = "input", job.split or None, "gt"
        result.update(model_name="input")
    else:
        overrides = [*job.set, f"budget_minutes={job.minutes}", *spec.get("extra_set", [])]
        fixed = {"data.root": data, **({"mask_source": mask_source} if mask_source else {})}
        cfg = load_config(job.config or None, job.task, overrides, **fixed)
        try:
            fr = fit(cfg, run_dir, progress=False)
            result["stopped"] = ""
        except KeyboardInterrupt:  # the queue's clock (SIGINT): score what the run has so far
            log.info("job %s: training stopped by the queue's clock; scoring its best epoch so far", job.name)
            fr = None
            result["stopped"] = "training cut at its wall-clock share"
        rows = _read_csv(run_dir / "metrics.csv")
        steps = int(rows[-1]["steps"]) if rows else 0
        from ..models import build

        reads_mask = build(cfg.model.name, **cfg.model.kwargs).spec.reads_mask
        result.update(model_name=cfg.model.name, mask_source=cfg.mask_source if reads_mask else "-",
                      batch_size=cfg.batch_size,
                      steps=steps, face_passes=steps * cfg.batch_size, epochs=len(rows),
                      train_minutes=float(rows[-1]["train_minutes"]) if rows else 0.0, monitor=cfg.monitor,
                      best_val=max((float(r[f"val_{cfg.monitor}"]) for r in rows), default=None),
                      stopped_early=bool(fr and fr.stopped_early), precision=cfg.precision)
        if not rows:
            raise RuntimeError(f"job {job.name}: no epoch finished, nothing to score")
        model, split_file, eval_mask = str(resolve_model_path(run_dir)), str(run_dir / "split.json"), cfg.mask_source
    result["test"] = {}
    for family in job.eval:
        rows, info, _ = evaluate_model(model, data, split="test", split_file=split_file, mask_source=eval_mask,
                                       limit=job.eval_limit, degradation=family, examples=0)
        summary = summarize(rows)
        result["test"][family] = {k: v["mean"] for k, v in summary.items()}
        result["test"][family]["n"] = info["n_images"]
        result["precision_eval"] = info["precision"]
    result.update(status="done", seconds=round(time.time() - t0, 1))
    atomic_write_bytes(run_dir / "result.json", json.dumps(result, indent=1, default=str).encode())
    return result


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- the queue -----------------------------------------------------------------------------------------------


@dataclass
class _Running:
    job: Job
    proc: subprocess.Popen
    started: float
    log_file: io.TextIOBase
    interrupted: bool = False


def run_queue(queue: Queue, data: str | os.PathLike, out: str | os.PathLike, *, work: str | os.PathLike,
              minutes: float | None = None, lanes: int | None = None, extra_set: list[str] | None = None,
              eval_limit: int | None = None, poll: float = 1.0) -> dict:
    """Run ``queue`` (see the module doc) and write its folder ``out``; returns the results record.
    ``extra_set``: overrides for every training job (after its own); ``eval_limit``: score at most this many
    test faces in every job (a quick run)."""
    out, work = Path(out), Path(work)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: folder is not empty (choose another -o)")
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "queue.log"
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    minutes = minutes or queue.minutes
    lanes = max(1, lanes or queue.lanes)
    deadline = time.monotonic() + minutes * 60
    cores = os.cpu_count() or 1
    workers = max(0, cores // lanes - 1)
    log.info("queue: %d jobs, %d lanes, %.1f min, %d cores (%d loader workers a job), data %s",
             len(queue.jobs), lanes, minutes, cores, workers, data)
    _log_machine()
    pending, running, results = list(queue.jobs), [], {}
    try:
        while pending or running:
            for r in list(running):
                code = r.proc.poll()
                now = time.monotonic()
                late = now > deadline
                if code is None and not r.interrupted and r.job.task != "input" and \
                        now - r.started > r.job.minutes * 60 + START_SECONDS:
                    r.proc.send_signal(signal.SIGINT)  # its wall-clock share is up: stop training, go on to scoring
                    r.interrupted = True
                    log.info("job %s: wall-clock share spent, training stopped", r.job.name)
                if code is None and not late:
                    continue
                if code is None:
                    r.proc.terminate()
                    try:
                        r.proc.wait(20)
                    except subprocess.TimeoutExpired:
                        r.proc.kill()
                        r.proc.wait()
                r.log_file.close()
                running.remove(r)
                results[r.job.name] = _collect(r.job, work, code, time.monotonic() - r.started)
                log.info("job %s: %s after %.0f s", r.job.name, results[r.job.name]["status"],
                         time.monotonic() - r.started)
            for job in list(pending):
                if len(running) >= lanes:
                    break
                failed = [d for d in job.after if d in results and results[d]["status"] != "done"]
                if failed:
                    pending.remove(job)
                    results[job.name] = {"job": job.name, "task": job.task, "status": f"skipped: {failed[0]} failed"}
                    continue
                if any(d not in results for d in job.after):
                    continue  # waits; later jobs may start meanwhile
                left = deadline - time.monotonic()
                need = reserved_seconds(job)
                if need + MARGIN_SECONDS > left:
                    pending.remove(job)
                    results[job.name] = {"job": job.name, "task": job.task,
                                         "status": f"not started: needs {need / 60:.1f} min, {left / 60:.1f} left"}
                    log.info("job %s: %s", job.name, results[job.name]["status"])
                    continue
                pending.remove(job)
                if eval_limit is not None:
                    job = Job(**{**asdict(job), "eval_limit": min(eval_limit, job.eval_limit or eval_limit)})
                running.append(_start(job, data, work, workers, extra_set or []))
            if not running and pending and all(any(d not in results for d in j.after) for j in pending):
                for job in pending:  # cannot happen with a checked queue; kept so the loop always ends
                    results[job.name] = {"job": job.name, "task": job.task, "status": "not started: waits forever"}
                pending = []
            time.sleep(poll if running else 0)
    finally:
        for r in running:
            r.proc.kill()
            r.log_file.close()
        log.removeHandler(handler)
        handler.close()
    record = {"minutes": minutes, "lanes": lanes, "data": str(data), "jobs": [results[j.name] for j in queue.jobs],
              "machine": _machine()}
    _write_out(queue, record, work, out)
    return record


def _start(job: Job, data, work: Path, workers: int, extra_set: list[str]) -> _Running:
    run_dir = work / job.name
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {"job": asdict(job), "data": str(data), "run_dir": str(run_dir), "work": str(work),
            "extra_set": [f"data.num_workers={workers}", *extra_set]}
    log_file = open(run_dir / "job.log", "w")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "smfd.train.queue", json.dumps(spec)], stdout=log_file,
                            stderr=subprocess.STDOUT, env=env)
    log.info("job %s: started (%s, %s min)", job.name, job.task, job.minutes)
    return _Running(job, proc, time.monotonic(), log_file)


def _collect(job: Job, work: Path, code: int | None, seconds: float) -> dict:
    path = work / job.name / "result.json"
    if code == 0 and path.is_file():
        return json.loads(path.read_text())
    tail = (work / job.name / "job.log").read_text(errors="replace").strip().splitlines()[-1:] if \
        (work / job.name / "job.log").is_file() else []
    why = "stopped at the deadline" if code is None else f"failed (exit {code})"
    return {"job": job.name, "task": job.task, "status": f"{why}: {tail[0][:300] if tail else ''}",
            "seconds": round(seconds, 1)}


def _machine() -> dict:
    import platform

    import torch

    info = {"platform": platform.platform(), "torch": torch.__version__, "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _log_machine() -> None:
    log.info("machine: %s", _machine())


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
        for row in _read_csv(work / job.name / "metrics.csv"):
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


def main() -> None:
    """``python -m smfd.train.queue SPEC_JSON``: one job (what :func:`run_queue` starts)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    # the queue's clock stops a job with SIGINT: take it as Ctrl-C whatever this process inherited (a parent that
    # ignores or blocks SIGINT, as a test runner or a service manager may, passes that on to its children)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    run_job(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
