"""Commands that run whole experiments from a config: a GPU queue, a bake-off."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import CliError, app, setup_logging


@app.command()
def queue(
    queue_file: Annotated[Path, typer.Argument(help="Queue YAML (configs/gpu/first-run.yaml): jobs, minutes, lanes.")],
    data: Annotated[Path | None, typer.Option(help="Face folder or training pack (smfd prepare pack).")] = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Folder for at most 8 files: results, metrics, "
                                                                 "log, kept weights.")] = None,
    minutes: Annotated[float | None, typer.Option(help="Wall-clock budget of the whole queue (default: "
                                                       "the file's).")] = None,
    lanes: Annotated[int | None, typer.Option(help="Jobs run side by side (default: the file's).")] = None,
    work: Annotated[Path | None, typer.Option(help="Folder for the jobs' run folders (default OUT-work).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config override for every training job.")] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Score at most this many test faces a job.")] = None,
    plan: Annotated[bool, typer.Option(help="Only print the schedule: which job runs when, in which lane, and "
                                            "which would not start before the deadline (exit 1 if any).")] = False,
) -> None:
    """Run a queue of training jobs inside a time budget (a lent GPU's one command) and keep results, metrics, a
    log and fp16 weights in one small folder."""
    from ..train.queue import load_queue, plan_markdown, plan_queue, run_queue

    if minutes is not None and minutes <= 0:
        raise CliError(f"--minutes must be > 0, got {minutes}", code=2)
    if lanes is not None and lanes < 1:
        raise CliError(f"--lanes must be >= 1, got {lanes}", code=2)
    q = load_queue(queue_file)
    if plan:
        rows = plan_queue(q, minutes, lanes)
        typer.echo(plan_markdown(q, rows, minutes, lanes))
        left_out = [r["job"] for r in rows if r["status"] != "done"]
        if left_out:
            raise CliError(f"{queue_file}: {len(left_out)} job(s) would not run: {', '.join(left_out)}")
        return
    if data is None or out is None:
        raise CliError("--data and --out are needed to run the queue (or --plan to only show its schedule)", code=2)
    record = run_queue(q, data, out, work=work or out.with_name(out.name + "-work"), minutes=minutes, lanes=lanes,
                       extra_set=set_ or [], eval_limit=eval_limit)
    typer.echo((out / "results.md").read_text())
    failed = [j for j in record["jobs"] if j["status"] != "done"]
    if failed:
        raise CliError(f"{len(failed)} of {len(record['jobs'])} jobs did not finish (see {out / 'results.md'})")


@app.command()
def bakeoff(
    spec: Annotated[Path, typer.Argument(help="Bake-off YAML (configs/bakeoff.yaml): candidates, budget, lanes, "
                                              "evaluation, mask generators.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for bakeoff.md/json, masks.md, card.json.")] = Path(
        "results"),
    only: Annotated[str, typer.Option(help="Comma-separated candidates and references to train and score (default: "
                                           "all); the table then holds only those rows.")] = "",
    lanes: Annotated[int, typer.Option(help="Runs side by side (default: the spec's lanes).")] = 0,
    no_train: Annotated[bool, typer.Option(help="Only score and tabulate finished runs and kept weights.")] = False,
    masks: Annotated[bool, typer.Option(help="Only score the mask generators (masks.md).")] = False,
    card: Annotated[str, typer.Option(help="Also render OUT/card.json (for smfd bundle --card) of this "
                                           "candidate, from its evaluations.")] = "",
) -> None:
    """Train every candidate of a bake-off for the same budget (what is missing), score each and the blurry input on
    the same test faces under every listed degradation, and write the tables (re-running resumes and reuses
    scores)."""
    from ..experiments.bakeoff import Request, run

    if not spec.is_file():
        raise CliError(f"{spec}: no such bake-off file", code=2)
    if lanes < 0:
        raise CliError(f"--lanes must be >= 0, got {lanes}", code=2)
    setup_logging()
    run(Request(str(spec), only=only, lanes=lanes, no_train=no_train, out=str(out), masks=masks, card=card))
