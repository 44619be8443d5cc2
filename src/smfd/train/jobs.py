"""One runner for batches of jobs: cross-validation's folds and the ablation's variants, a queue's jobs, a bake-off's
training runs and scorings.

A :class:`Job` is typed: what it trains (a :class:`~smfd.train.config.TrainConfig`, continued from its run folder's
``last.pt`` when there is one), what it scores (:class:`Score`: what ``smfd eval`` does), the jobs it waits for and,
on a clock, its share of the time. :func:`run_jobs` runs a list of them, in this process one after another or each
in a process of its own, ``lanes`` at a time (``python -m smfd.train.jobs RUN_DIR/job.json``: the job's spec is the
whole command). Each job keeps its spec in ``job.json`` and writes ``result.json`` in its run folder: its status,
the training's facts (steps, epochs, best validation score) and its scores. A job whose result.json says done for
the same spec is not run again, so a batch that was stopped goes on where it was; a job that fails is reported, the
jobs waiting for it are skipped and the others go on.
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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from ..fileio import atomic_write_bytes, atomic_write_gzip
from .config import TrainConfig, config_from_dict

log = logging.getLogger("smfd.jobs")

INPUT = "input"  # Score.model: the degraded test faces themselves (a table's "blurry" row)
OWN_RUN = ""  # Score.model: the net this job trains (its run folder's best)


@dataclass(frozen=True)
class Score:
    """One scoring of a net (or of the degraded input) on the test faces, as ``smfd eval`` does it."""

    data: str
    model: str = OWN_RUN  # a run folder, checkpoint or weights file; INPUT; OWN_RUN: the job's own run folder
    degradation: str = "thesis"
    seed: int = 0  # the degradation draws' seed (smfd eval --seed); result.json's "test" names it when not 0
    split_file: str | None = None  # None: the run folder's split.json, else the folder's seed-0 split
    mask_source: str = "gt"
    limit: int | None = None  # the first N test faces
    precision: str = "auto"
    identity: bool = False
    identity_cache: str | None = None
    examples: int = 0  # faces shown in examples.png
    out: str = ""  # write per_image.csv, summary.json/md (and examples.png) here; "": only the means in result.json
    keep: str = ""  # also keep per_image.csv (gzip'd) and summary.json here (a folder that outlives the runs)


@dataclass(frozen=True)
class Job:
    """A unit of a batch: train (``train``), then score (``scores``), in ``run_dir``."""

    name: str
    run_dir: str
    train: TrainConfig | None = None
    scores: tuple[Score, ...] = ()
    after: tuple[str, ...] = ()  # jobs that must be done first (e.g. the one training the masks this one reads)
    share_seconds: float | None = None  # on a clock: training is stopped (SIGINT) after this long, then scored
    reserve_seconds: float = 0.0  # on a clock: the time it needs; it is not started unless that much is left

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Job:
        d = json.loads(text)
        return cls(**{**d, "train": config_from_dict(d["train"]) if d["train"] else None,
                      "scores": tuple(Score(**s) for s in d["scores"]), "after": tuple(d["after"])})


class JobsFailed(RuntimeError):
    """Jobs of a batch did not finish (the message names each, with the end of its log)."""


def readiness(after: Sequence[str], statuses: Mapping[str, str], need: float = 0.0, left: float | None = None,
              margin: float = 0.0) -> str:
    """Whether a pending job starts now: ``start``, ``wait`` (a job it waits for has not ended), or the status it
    ends with unrun (a job it waits for did not finish; ``need`` seconds do not fit in the ``left`` ones less
    ``margin``). ``statuses``: the jobs that have ended. :func:`run_jobs` and a queue's plan decide by it."""
    unfinished = [d for d in after if d in statuses and statuses[d] != "done"]
    if unfinished:
        return f"skipped: {unfinished[0]} did not finish"
    if any(d not in statuses for d in after):
        return "wait"
    if left is not None and need + margin > left:
        return f"not started: needs {need / 60:.1f} min, {left / 60:.1f} left"
    return "start"


class _Ordered(Protocol):
    name: str
    after: Sequence[str]


def check_jobs(jobs: Sequence[_Ordered]) -> None:
    """Names are unique and a job waits only for jobs before it (a :class:`Job`, or a queue file's job)."""
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    for i, job in enumerate(jobs):
        for d in job.after:
            if d not in names[:i]:
                raise ValueError(f"job {job.name} waits for {d!r}, which is not an earlier job")


def finished(job: Job) -> dict | None:
    """The job's result when a run of this very job (the same spec, in its job.json) is done, else None: a job
    whose spec changed (a longer budget, more test faces) runs again, continuing its last.pt. A job that differs
    only in where its scores are kept (the same input scores for another bake-off) is not scored again: its scores
    are copied there."""
    run_dir = Path(job.run_dir)
    spec, result = run_dir / "job.json", run_dir / "result.json"
    if not (spec.is_file() and result.is_file()):
        return None
    # read through the spec's fields, so a field added since is no change: a new field's default must do what the
    # jobs did before it existed (as Score.seed's 0 does)
    try:
        before = json.loads(Job.from_json(spec.read_text()).to_json())
    except (ValueError, TypeError, KeyError):
        return None
    now = json.loads(job.to_json())
    if _unkept(before) != _unkept(now):
        return None
    done = json.loads(result.read_text())
    if done.get("status") != "done":
        return None
    if before != now:
        if not all(_keep(score) for score in job.scores):
            return None  # its scores' files are gone: score again
        atomic_write_bytes(spec, job.to_json().encode())
    return done


def _unkept(spec: dict) -> dict:
    """A job's spec without where its scores are kept."""
    return {**spec, "scores": [{**score, "keep": ""} for score in spec.get("scores", [])]}


def _keep(score: Score) -> bool:
    """Copy a score's per-face table (gzip'd) and summary to its ``keep`` folder; False if they are not in ``out``."""
    if not (score.out and score.keep) or Path(score.keep).resolve() == Path(score.out).resolve():
        return True
    table, summary = Path(score.out) / "per_image.csv", Path(score.out) / "summary.json"
    if not (table.is_file() and summary.is_file()):
        return False
    keep = Path(score.keep)
    atomic_write_gzip(keep / "per_image.csv.gz", table.read_bytes())  # a kept table is read back gzip'd or not
    (keep / "per_image.csv").unlink(missing_ok=True)  # an older plain copy would be read first
    atomic_write_bytes(keep / summary.name, summary.read_bytes())
    return True


# --- one job ---------------------------------------------------------------------------------------------------


def run_job(job: Job, *, progress: bool = False) -> dict:
    """Train (continuing last.pt) and score ``job``; writes and returns its ``result.json``. On a clock, a SIGINT
    stops the training and the run's best epoch so far is scored."""
    run_dir = Path(job.run_dir)
    (run_dir / "result.json").unlink(missing_ok=True)  # an earlier spec's result says nothing of this one
    atomic_write_bytes(run_dir / "job.json", job.to_json().encode())  # what was run (and what a re-run compares)
    t0 = time.time()
    result: dict = {"job": job.name, "status": "running"}
    if job.train is not None:
        result.update(_train(job, progress))
    result["test"] = {}
    for score in job.scores:
        key = score.degradation if not score.seed else f"{score.degradation}-seed{score.seed}"
        result["test"][key], result["precision_eval"] = _score(score, run_dir)
    result.update(status="done", seconds=round(time.time() - t0, 1))
    atomic_write_bytes(run_dir / "result.json", json.dumps(result, indent=1, default=str).encode())
    return result


def _train(job: Job, progress: bool) -> dict:
    """Train the job's config; the facts of the run (steps, epochs, best validation score, why it stopped)."""
    from .loop import fit

    cfg, run_dir = job.train, Path(job.run_dir)
    stopped, early = "", False
    try:
        early = fit(cfg, run_dir, resume=(run_dir / "last.pt").is_file(), progress=progress).stopped_early
    except KeyboardInterrupt:
        if job.share_seconds is None:
            raise
        log.info("job %s: training stopped by the clock; scoring its best epoch so far", job.name)
        stopped = "training cut at its wall-clock share"
    facts = train_facts(cfg, run_dir)
    if not facts["epochs"]:
        raise RuntimeError(f"job {job.name}: no epoch finished, nothing to score")
    return {**facts, "stopped_early": early, "stopped": stopped}


def train_facts(cfg: TrainConfig, run_dir: Path) -> dict:
    """What a run did: net, masks read, steps and face passes, epochs, training minutes, best validation score."""
    from ..models import build

    rows = read_csv(run_dir / "metrics.csv")
    steps = int(rows[-1]["steps"]) if rows else 0
    reads_mask = build(cfg.model.name, **cfg.model.kwargs).spec.reads_mask
    return {"model_name": cfg.model.name, "mask_source": cfg.mask_source if reads_mask else "-",
            "batch_size": cfg.batch_size, "steps": steps, "face_passes": steps * cfg.batch_size, "epochs": len(rows),
            "train_minutes": float(rows[-1]["train_minutes"]) if rows else 0.0, "monitor": cfg.monitor,
            "best_val": max((float(r[f"val_{cfg.monitor}"]) for r in rows), default=None), "precision": cfg.precision}


def _score(score: Score, run_dir: Path) -> tuple[dict, str]:
    """Score as ``score`` says (writing its folders); the metrics' means with ``n``, and the precision it ran at."""
    from ..score import evaluate_model, summarize, write_results

    model = str(run_dir) if score.model == OWN_RUN else score.model
    rows, info, examples = evaluate_model(
        model, score.data, split="test", split_file=score.split_file, mask_source=score.mask_source,
        limit=score.limit, degradation=score.degradation, seed=score.seed, precision=score.precision,
        identity=score.identity, identity_cache=score.identity_cache, examples=score.examples)
    if score.out:
        write_results(score.out, rows, info, examples, overwrite=True)
        _keep(score)
    means = {k: v["mean"] for k, v in summarize(rows).items()}
    return {**means, "n": info["n_images"]}, info["precision"]


def read_csv(path: Path) -> list[dict]:
    """A CSV file's rows (none when it is missing)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- a batch -----------------------------------------------------------------------------------------------------


@dataclass
class _Running:
    """A job in a process of its own."""

    job: Job
    proc: subprocess.Popen
    started: float
    log_file: io.TextIOBase
    interrupted: bool = False

    def stop(self) -> None:
        """Ask it to end (SIGTERM), then end it."""
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class _Batch:
    """The state of :func:`run_jobs`: what waits, what runs and what has ended."""

    pending: list[Job]
    lanes: int
    isolate: bool
    deadline: float | None
    margin: float
    threads: int
    running: list[_Running] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)


def run_jobs(jobs: Sequence[Job], *, lanes: int = 1, isolate: bool = True, minutes: float | None = None,
             margin: float = 0.0, threads: int = 1, poll: float = 1.0) -> dict[str, dict]:
    """Run ``jobs`` in order, up to ``lanes`` at once, each when the jobs it waits for are done; returns each job's
    result (its result.json, or ``{"job", "status"}`` for one that failed or did not run), in the jobs' order.

    ``isolate``: each job in a process of its own (``threads`` CPU threads, log in RUN_DIR/job.log), else here, one
    after another. ``minutes``: a clock for the whole batch: no job starts whose ``reserve_seconds`` would not end
    ``margin`` seconds before it, a job's training is stopped after its ``share_seconds``, and at the deadline the
    jobs still running are stopped.
    """
    check_jobs(jobs)
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    batch = _Batch(list(jobs), max(1, lanes) if isolate else 1, isolate, deadline, margin, threads)
    try:
        while batch.pending or batch.running:
            _reap(batch)
            _start_ready(batch)
            time.sleep(poll if batch.running else 0)
    finally:
        for r in batch.running:
            r.proc.kill()
            r.log_file.close()
    return {j.name: batch.results[j.name] for j in jobs}


def _reap(batch: _Batch) -> None:
    """Stop the training of a job whose share is spent, stop everything at the deadline, collect ended jobs."""
    now = time.monotonic()
    for r in list(batch.running):
        code = r.proc.poll()
        share = r.job.share_seconds
        if code is None and not r.interrupted and share is not None and now - r.started > share:
            r.proc.send_signal(signal.SIGINT)  # its share is up: stop training, go on to scoring
            r.interrupted = True
            log.info("job %s: wall-clock share spent, training stopped", r.job.name)
        late = batch.deadline is not None and now > batch.deadline
        if code is None and not late:
            continue
        if code is None:
            r.stop()
        r.log_file.close()
        batch.running.remove(r)
        _end(batch, r.job, _collect(r.job, code, time.monotonic() - r.started))


def _start_ready(batch: _Batch) -> None:
    """Start the pending jobs that can start (in order; later jobs may pass one that waits), up to the lanes."""
    for job in list(batch.pending):
        if len(batch.running) >= batch.lanes:
            break
        left = None if batch.deadline is None else batch.deadline - time.monotonic()
        statuses = {name: r["status"] for name, r in batch.results.items()}
        verdict = readiness(job.after, statuses, job.reserve_seconds, left, batch.margin)
        if verdict == "wait":
            continue
        batch.pending.remove(job)
        done = finished(job) if verdict == "start" else None
        if done is not None:
            batch.results[job.name] = done
            log.info("job %s: done already (%s)", job.name, Path(job.run_dir) / "result.json")
        elif verdict != "start":
            _end(batch, job, {"job": job.name, "status": verdict})
        elif batch.isolate:
            batch.running.append(_spawn(job, batch.threads))
        else:
            _end(batch, job, _run_here(job))
    if not batch.running and batch.pending:  # only jobs waiting on jobs that never ran: not with checked jobs
        for job in batch.pending:
            _end(batch, job, {"job": job.name, "status": "not started: waits forever"})
        batch.pending.clear()


def _end(batch: _Batch, job: Job, result: dict) -> None:
    batch.results[job.name] = result
    seconds = f" after {result['seconds']:.0f} s" if "seconds" in result else ""
    log.info("job %s: %s%s", job.name, result["status"], seconds)


def _run_here(job: Job) -> dict:
    """Run ``job`` in this process; a failure becomes its status (Ctrl-C still stops the batch)."""
    log.info("job %s: started", job.name)
    t0 = time.time()
    try:
        return run_job(job, progress=True)
    except Exception as e:
        log.exception("job %s failed", job.name)
        why = (str(e).strip().splitlines() or [""])[0][:300]  # one line, as a job run in a process of its own says
        return {"job": job.name, "status": f"failed: {type(e).__name__}: {why}", "seconds": round(time.time() - t0, 1)}


def _spawn(job: Job, threads: int) -> _Running:
    """Start ``job`` in a process of its own: its spec in RUN_DIR/job.json, its output in RUN_DIR/job.log."""
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "job.json", job.to_json().encode())
    log_file = open(run_dir / "job.log", "w")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "smfd.train.jobs", str(run_dir / "job.json")], stdout=log_file,
                            stderr=subprocess.STDOUT, env=env)
    what = f"train {job.train.task} {job.train.model.name}, " if job.train is not None else ""
    log.info("job %s: started (%s%d scoring(s)) in %s", job.name, what, len(job.scores), run_dir)
    return _Running(job, proc, time.monotonic(), log_file)


def _collect(job: Job, code: int | None, seconds: float) -> dict:
    """The result of a job's process: its result.json, or why it has none with the last line of its log."""
    path = Path(job.run_dir) / "result.json"
    if code == 0 and path.is_file():
        return json.loads(path.read_text())
    job_log = Path(job.run_dir) / "job.log"
    tail = job_log.read_text(errors="replace").strip().splitlines()[-1:] if job_log.is_file() else []
    why = "stopped at the deadline" if code is None else f"failed (exit {code})"
    return {"job": job.name, "status": f"{why}: {tail[0][:300] if tail else ''}", "seconds": round(seconds, 1)}


def raise_failures(results: Mapping[str, dict], jobs: Sequence[Job]) -> None:
    """Raise :class:`JobsFailed` naming every job that did not finish (and where its log is)."""
    failed = [(name, r["status"]) for name, r in results.items() if r["status"] != "done"]
    if failed:
        logs = {j.name: Path(j.run_dir) / "job.log" for j in jobs}
        raise JobsFailed(f"{len(failed)} of {len(results)} jobs did not finish: " + "; ".join(
            f"{name}: {status}" + (f" (see {logs[name]})" if logs[name].is_file() else "") for name, status in failed))


def main() -> None:
    """``python -m smfd.train.jobs RUN_DIR/job.json``: one job (what :func:`run_jobs` starts)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    # a clock stops a job's training with SIGINT: take it as Ctrl-C whatever this process inherited (a parent that
    # ignores or blocks SIGINT, as a test runner or a service manager may, passes that on to its children)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    run_job(Job.from_json(Path(sys.argv[1]).read_text()))


if __name__ == "__main__":
    main()
