"""``smfd bakeoff``: run a bake-off declared in a YAML file (configs/bakeoff.yaml, read by
:mod:`smfd.experiments.spec`): train every candidate for the same wall-clock budget, ``lanes`` at a time, score each
on the test split under every listed degradation (and the blurry input itself), and write the table to
results/bakeoff.md (and bakeoff.json). The mask generators the spec lists under ``mask_generators`` are scored on the
same faces (Dice and Jaccard per class, pixel confusion) into results/masks.md. Trainings and scorings are jobs of
:func:`smfd.train.jobs.run_jobs`, built from the spec's config objects.

Re-running resumes: a finished candidate is not trained again, an interrupted one continues from its last.pt, and
existing evaluations are reused.

A candidate whose run folder is gone but whose weights the spec keeps (``path``, with its ``steps`` and
``minutes``) is scored from those weights, on the spec's ``split`` file, so the tables can be made again from
what is committed.

Usage: smfd bakeoff configs/bakeoff.yaml [--only d-nafnet,e-nafnet-mask] [--lanes 1] [--no-train] [--masks]
       [--out results] [--card NAME]

The model card of a shipped candidate (``--card``) is rendered here from the evaluations: every number in it is a
measured one, and its protocol names the config and commands that make the weights and the card again.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path

from ..data.celebamask import CLASSES
from ..fileio import atomic_write_bytes
from ..models import build, count_parameters
from ..models.io import load_runner, read_checkpoint
from ..models.profile import count_flops
from ..report.tables import markdown_table
from ..score.compare import read_rows
from ..score.evaluation import confusion_markdown
from ..score.masks import MaskSource
from ..train.config import TrainConfig, load_config
from ..train.jobs import INPUT, Job, Score, raise_failures, run_jobs
from .spec import BakeoffSpec, Candidate, MaskGenerator, load_bakeoff


@dataclass(frozen=True)
class Request:
    """What ``smfd bakeoff`` is asked: the spec file and the options (the table names them, so the command that
    made it can be run again)."""

    spec: str
    only: str = ""  # comma-separated candidates and references (empty: all)
    lanes: int = 0  # 0: the spec's
    no_train: bool = False
    out: str = "results"
    masks: bool = False  # only the mask generators
    card: str = ""

    @property
    def chosen(self) -> set[str]:
        return set(self.only.split(",")) - {""}

    def command(self) -> str:
        """The command as run, so it makes the same table again."""
        flags = (("--only", self.only), ("--lanes", self.lanes), ("--card", self.card),
                 ("--out", self.out if self.out != "results" else ""))
        return f"smfd bakeoff {self.spec}" + (" --no-train" if self.no_train else "") + "".join(
            f" {flag} {value}" for flag, value in flags if value)


# --- the jobs: training runs and scorings ------------------------------------------------------------------------


def mask_source(spec: BakeoffSpec, cand: Candidate) -> str:
    """What a mask-guided candidate reads: ``masks: true`` the spec's generator, ``masks: gt`` the true masks,
    ``masks: PATH`` that generator."""
    if cand.masks == "gt":
        return str(MaskSource("gt"))
    return str(MaskSource("generator", spec.masks if cand.masks is True else str(cand.masks)))


def train_config(spec: BakeoffSpec, name: str, cand: Candidate) -> TrainConfig:
    """A candidate's training config: the spec's config, its model and own keys (``set``), the budget; a run
    that has begun goes on with its own config.yaml and the budget. A config that does not load is a ValueError
    naming the candidate (``candidates.d-nafnet: unknown config key optim.lrr``)."""
    run = Path(spec.out) / name
    try:
        if (run / "last.pt").is_file():
            return load_config(run / "config.yaml", "deblur", budget_minutes=spec.budget_minutes)
        keys = {"model.name": cand.model.name, "model.kwargs": cand.model.kwargs,
                **({"model.init": cand.model.init} if cand.model.init else {}), "budget_minutes": spec.budget_minutes,
                **cand.set, "data.root": spec.data, "mask_source": mask_source(spec, cand) if cand.masks else None}
        return load_config(spec.config, "deblur", **keys)
    except (OSError, ValueError) as e:
        raise ValueError(f"candidates.{name}: {e}") from None


def train_all(spec: BakeoffSpec, names: list[str]) -> None:
    """Train (or go on training) the named candidates, ``lanes`` at a time, one thread each."""
    jobs = [Job(n, str(Path(spec.out) / n), train=train_config(spec, n, spec.candidates[n])) for n in names]
    raise_failures(run_jobs(jobs, lanes=spec.lanes, threads=1), jobs)


def _scoring(spec: BakeoffSpec, name: str | None, cand: Candidate | MaskGenerator | None, degradation: str,
             identity: bool = True) -> tuple[Path, Job | None]:
    """Where the scores of a row (the input when name is None) under ``degradation`` are kept, and the job that
    makes them (None when they are kept already)."""
    key = f"{name or INPUT}-{degradation}"
    out = Path(spec.out) / "eval" / key
    kept = Path(spec.evaluations or Path(spec.out) / "eval") / key
    if (kept / "summary.json").is_file():
        return kept, None
    ev = spec.evaluation
    identity = identity and ev.identity and degradation != "sharp"  # the sharp input is the sharp face itself
    reads = mask_source(spec, cand) if isinstance(cand, Candidate) and cand.masks else "gt"
    score = Score(spec.data, (cand.path or str(Path(spec.out) / name)) if name else INPUT, degradation,
                  split_file=spec.split, mask_source=reads, limit=ev.limit, precision=ev.precision,
                  identity=identity, identity_cache=str(Path(spec.out) / "identity-cache") if identity else None,
                  examples=6, out=str(out), keep=str(kept))
    return kept, Job(f"eval-{key}", str(out), scores=(score,))


def evaluate_all(spec: BakeoffSpec, rows: list[tuple[str | None, Candidate | None, str]]) -> None:
    """Make the missing scores of ``rows`` (name, candidate, degradation), ``lanes`` at a time, one thread each."""
    jobs = [job for _, job in (_scoring(spec, *row) for row in rows) if job is not None]
    raise_failures(run_jobs(jobs, lanes=spec.lanes, threads=1), jobs)


def evaluate(spec: BakeoffSpec, name: str | None, cand: Candidate | MaskGenerator | None, degradation: str,
             identity: bool = True) -> dict:
    """The scores of a candidate (or of the input when name is None), made here unless kept: its summary,
    ``info`` (what was scored, and a mask net's pixel confusion) and its rows by face. The scores
    (per_image.csv.gz, summary.json) are kept in the spec's ``evaluations`` folder, so the tables can be made again
    without evaluating again."""
    kept, job = _scoring(spec, name, cand, degradation, identity)
    if job is not None:
        raise_failures(run_jobs([job], isolate=False), [job])
    rows = read_rows(kept)
    summary = json.loads((kept / "summary.json").read_text())
    return {"summary": summary["metrics"], "info": summary["info"], "rows": rows}


def run_facts(run: Path) -> dict:
    """Steps (Adam's own count), epochs and training minutes of a finished run."""
    ckpt = read_checkpoint(run / "last.pt")
    steps = max(int(s["step"]) for s in ckpt["optimizer"]["state"].values())
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"steps": steps, "epochs": len(rows), "minutes": float(rows[-1].get("train_minutes") or "nan")}


# --- the bake-off ----------------------------------------------------------------------------------------------


def run(request: Request) -> None:
    """Train what is missing, score, and write OUT/bakeoff.md, bakeoff.json and masks.md (and card.json with
    ``card``). Raises ValueError on a bad spec or request, :class:`~smfd.train.jobs.JobsFailed` when a training
    run or a scoring fails (after the others have ended)."""
    spec = load_bakeoff(request.spec)
    spec = replace(spec, lanes=request.lanes or spec.lanes)
    names, references = _chosen(spec, request)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    kept = {n for n in names if spec.candidates[n].path and not (out / n / "last.pt").is_file()}
    if not request.no_train and not request.masks:  # a candidate whose run is kept only as weights is not trained
        try:
            train_all(spec, [n for n in names if n not in kept])
        except ValueError as e:  # a candidate's config (its failed runs are JobsFailed)
            raise ValueError(f"{request.spec}: {e}") from None
    done = [n for n in names if n in kept or (out / n / "last.pt").is_file()]
    spec = replace(spec, split=_split_file(spec, [n for n in done if n not in kept]))
    if spec.mask_generators and (request.masks or not request.chosen):
        atomic_write_bytes(Path(request.out) / "masks.md", mask_table(spec, request.spec).encode())
        print((Path(request.out) / "masks.md").read_text())
    if request.masks:
        return
    if not done and not references:
        raise ValueError("no finished candidate to score")
    rows = {**{n: (spec.candidates[n], n in kept) for n in done}, **{n: (r, True) for n, r in references.items()}}
    _tabulate(spec, request, rows)


def _chosen(spec: BakeoffSpec, request: Request) -> tuple[list[str], dict[str, Candidate]]:
    """The candidates and the references ``--only`` keeps (all by default)."""
    only = request.chosen
    unknown = only - set(spec.candidates) - set(spec.references)
    if unknown:
        raise ValueError(f"--only: no candidate or reference named {', '.join(sorted(unknown))} in {request.spec}")
    names = [n for n in spec.candidates if not only or n in only]
    return names, {n: r for n, r in spec.references.items() if not only or n in only}


def _split_file(spec: BakeoffSpec, trained: list[str]) -> str:
    """The split scored on: the spec's, else the one every trained candidate shares (same config, same seed)."""
    split_files = [str(Path(spec.out) / n / "split.json") for n in trained]
    tests = {tuple(json.loads(Path(f).read_text())["test"]) for f in split_files}
    if len(tests) > 1:
        raise ValueError(f"candidates were trained on different splits: {', '.join(trained)}")
    split = spec.split or next(iter(split_files), "")
    if not split:
        raise ValueError("no finished candidate to score, and no split file in the spec")
    return split


def _tabulate(spec: BakeoffSpec, request: Request, rows: dict[str, tuple[Candidate, bool]]) -> None:
    """Score every row and the input (what is missing, side by side), write bakeoff.md/json (and card.json)."""
    degradations = spec.evaluation.degradations
    evaluate_all(spec, [(None, None, d) for d in degradations]
                 + [(n, c, d) for n, (c, _) in rows.items() for d in c.degradations or degradations])
    inputs = {d: evaluate(spec, None, None, d) for d in degradations}
    table, record = [], {}
    for n, (cand, scored_only) in rows.items():
        row, record[n] = _row(spec, n, cand, scored_only, inputs)
        table.append(row)
    n_img = len(next(iter(inputs.values()))["rows"])
    text = _markdown(spec, request, table, inputs, n_img)
    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "bakeoff.md", text.encode())
    atomic_write_bytes(out / "bakeoff.json", (json.dumps(record, indent=1) + "\n").encode())
    if request.card:
        card = model_card(spec, request.card, record[request.card], {d: inputs[d]["summary"] for d in degradations},
                          n_img, out / "card.json", request.spec, request.only or request.card)
        atomic_write_bytes(out / "card.json", (json.dumps(card, indent=1) + "\n").encode())
    print(text)


def _row(spec: BakeoffSpec, name: str, cand: Candidate, scored_only: bool, inputs: dict) -> tuple[list[str], dict]:
    """A row of the table (its net's size and cost, its training, its scores by family) and its record."""
    if scored_only:  # its own steps and minutes, if the spec gives them
        model = load_runner(cand.path)
        facts = {"steps": "-" if cand.steps is None else cand.steps, "minutes": "-" if cand.minutes is None
                 else cand.minutes}
    else:
        model = build(cand.model.name, **cand.model.kwargs)
        facts = run_facts(Path(spec.out) / name)
    gflops = count_flops(model) / 1e9
    row = [cand.label, f"{count_parameters(model.module)['trainable'] / 1e6:.2f}M", f"{gflops:.1f}",
           f"{facts['steps']:,}" if facts["steps"] != "-" else "-",
           f"{facts['minutes']:.0f}" if facts["minutes"] != "-" else "-"]
    record = {**facts, "gflops": gflops}
    for d in spec.evaluation.degradations:
        if d not in (cand.degradations or spec.evaluation.degradations):  # a reference scored on some families only
            row += ["-"] * (2 if d == "sharp" else 5)
            continue
        cells, record[d] = _cells(evaluate(spec, name, cand, d), inputs[d], d)
        row += cells
    return row, record


def _cells(ev: dict, inp: dict, degradation: str) -> tuple[list[str], dict]:
    """A row's cells for one family, against the input's scores on the same faces, and their record."""
    s, base = ev["summary"], inp["summary"]
    worse = sum(float(r["psnr"]) < float(inp["rows"][i]["psnr"]) for i, r in ev["rows"].items())
    n_img = len(ev["rows"])
    if degradation == "sharp":  # the input is the sharp face itself: only the PSNR against it means something
        cells = [f"{s['psnr']['mean']:.2f}", f"{s['ssim']['mean']:.3f}"]
    else:
        ident = f"{s['id_cosine']['mean'] - base['id_cosine']['mean']:+.3f}" if "id_cosine" in s else "-"
        rank1 = (f"{100 * base['id_rank1']['mean']:.1f} → {100 * s['id_rank1']['mean']:.1f} %"
                 if "id_rank1" in s and "id_rank1" in base else "-")
        cells = [f"{s['psnr']['mean'] - base['psnr']['mean']:+.2f}", f"{s['ssim']['mean']:.3f}",
                 f"{100 * worse / n_img:.0f} %", ident, rank1]
    return cells, {k: v["mean"] for k, v in s.items()} | {"worse_share": worse / n_img}


def _markdown(spec: BakeoffSpec, request: Request, table: list[list[str]], inputs: dict, n_img: int) -> str:
    """bakeoff.md: what was run and how it was scored, then the table."""
    degradations = spec.evaluation.degradations
    head = ["candidate", "params", "GFLOPs/face", "steps", "train min"]
    for d in degradations:
        head += [f"{d}: PSNR vs itself", f"{d}: SSIM vs itself"] if d == "sharp" else [
            f"{d}: dB over input", f"{d}: SSIM", f"{d}: worse than input", f"{d}: identity gain",
            f"{d}: rank-1 (input → restored)"]
    base_line = ", ".join(f"{d} {inputs[d]['summary']['psnr']['mean']:.2f} dB / SSIM "
                          f"{inputs[d]['summary']['ssim']['mean']:.3f}" for d in degradations if d != "sharp")
    only = request.chosen
    title = (f"Bake-off at equal CPU time ({spec.budget_minutes:g} min of training each)" if not only else
             f"{', '.join(sorted(only))} on the bake-off's test faces")
    how = (f"{spec.config}, {spec.lanes} one-thread runs side by side on this 2-core CPU; masks from "
           f"`{spec.masks}`." if not only else
           f"{spec.config}, each row trained as its `how` in `{request.spec}` says; the mask-guided nets read "
           "the masks of the row's `mask_weights`.")
    return (f"# {title}\n\nMade by `{request.command()}`: {how}"
            f" Scored ({spec.evaluation.precision} precision) on the "
            f"{'first ' if spec.evaluation.limit else ''}{n_img} test faces (seeded degradations, the "
            f"same for every row). The blurry input scores {base_line}. 'worse than input': share of faces whose "
            "PSNR drops; identity: dlib cosine to the sharp face, minus the input's; rank-1: share of faces whose "
            "nearest sharp test face (dlib descriptors, among all scored) is their own.\n\n"
            + markdown_table([dict(zip(head, r, strict=True)) for r in table], head) + "\n")


def mask_table(spec: BakeoffSpec, spec_path: str) -> str:
    """results/masks.md: every listed mask generator on the test faces under each degradation (Dice, Jaccard),
    then each one's pixel confusion matrix."""
    degradations = [d for d in spec.evaluation.degradations if d != "sharp"] + ["sharp"]
    head = ["mask generator", "params", "runs at", "steps", "train min", "degradation",
            *[f"Dice {c}" for c in CLASSES[:4]], "mean Dice", "mean Jaccard"]
    rows, confusions = [], []
    for name, gen in spec.mask_generators.items():
        model = load_runner(gen.path)
        for d in degradations:
            ev = evaluate(spec, name, gen, d, identity=False)
            s = ev["summary"]
            params = count_parameters(model.module)["trainable"]
            rows.append({"mask generator": gen.label, "params": f"{params / 1e6:.2f}M",
                         "runs at": f"{model.spec.work_size or 256} px",
                         "steps": "-" if gen.steps is None else f"{gen.steps:,}",
                         "train min": "-" if gen.minutes is None else str(gen.minutes), "degradation": d,
                         **{f"Dice {c}": f"{s[f'dice_{i}']['mean']:.3f}" for i, c in enumerate(CLASSES[:4])},
                         "mean Dice": f"**{s['dice']['mean']:.3f}**", "mean Jaccard": f"{s['jaccard']['mean']:.3f}"})
            if d == degradations[0]:
                confusions.append(f"### {gen.label}, {d} degradation\n"
                                  + confusion_markdown(ev["info"]["confusion"]))
    n_img = spec.evaluation.limit
    return (f"# Mask generation on whole faces (thesis Table 4.1 analogue)\n\n"
            f"Made by `smfd bakeoff {spec_path}`: each generator scored on the first {n_img} test faces "
            "of the bake-off's split (seeded degradations, the same faces and blur for every row; 'sharp': the "
            "undegraded face). Dice per class over the faces where the class is present, mean over the classes "
            "present; no test face has wearables. Target (issue 17): mean Dice >= 0.78, features >= 0.70.\n\n"
            + markdown_table(rows, head) + "\n\n" + "\n".join(confusions))


def model_card(spec: BakeoffSpec, name: str, rec: dict, inputs: dict, n_img: int, card_path: Path, spec_path: str,
               only: str) -> dict:
    """The model card of a candidate shipped with the mask generator it read (every number from the evaluations)."""
    cand = spec.candidates.get(name) or spec.references[name]
    model = load_runner(cand.path) if cand.path else build(cand.model.name, **cand.model.kwargs)
    masks = cand.mask_weights or spec.masks
    weights = cand.path or f"{spec.out}/{name}"
    metrics = {}
    for d in ("thesis", "realistic", "lowres"):
        if d in rec:
            metrics[f"{d} degradation, PSNR dB ({n_img} test faces): restored vs blurry input"] = (
                f"{rec[d]['psnr']:.2f} vs {inputs[d]['psnr']['mean']:.2f}")
            metrics[f"{d} degradation, SSIM: restored vs blurry input"] = (
                f"{rec[d]['ssim']:.3f} vs {inputs[d]['ssim']['mean']:.3f}")
            metrics[f"{d} degradation, faces made worse than the input"] = f"{100 * rec[d]['worse_share']:.0f} %"
            if "id_cosine" in rec[d]:
                metrics[f"{d} degradation, identity cosine: restored vs blurry input"] = (
                    f"{rec[d]['id_cosine']:.3f} vs {inputs[d]['id_cosine']['mean']:.3f}")
            if "id_rank1" in rec[d] and "id_rank1" in inputs[d]:
                metrics[f"{d} degradation, face identification rank-1: restored vs blurry input"] = (
                    f"{100 * rec[d]['id_rank1']:.1f} % vs {100 * inputs[d]['id_rank1']['mean']:.1f} %")
    if "sharp" in rec:
        metrics["sharp faces through the net, PSNR dB against themselves"] = f"{rec['sharp']['psnr']:.2f}"
    return {
        "summary": f"{cand.summary or cand.label.split(') ', 1)[-1]} "
                   f"({count_parameters(model.module)['trainable']:,} parameters, {rec['gflops']:.1f} GFLOPs a 256 px "
                   "face) "
                   f"with the mask generator {masks}, stored as float16.",
        "status": cand.status or (
            f"Trained on a 2-core CPU for {rec['minutes']:.0f} minutes ({rec['steps']:,} AdamW steps of 4 whole "
            f"256 px faces) with {spec.config}; the weights are the EMA of the training weights."),
        "data": cand.data or (
            "SynthFace-4k (synthetic FFHQ-aligned faces), the seed-0 split of configs/whole_face.yaml (600 test faces "
            "held out; none seen in training by either net); each face degraded on the fly, half by the thesis's "
            "pipeline, half by the realistic family (camera shake, defocus, mild blur, sensor noise, JPEG, 10 % "
            "clean)."),
        "protocol": (f"{cand.how}; " if cand.how else "") + (
            f"scored by smfd bakeoff {spec_path} --no-train --only {only} --card {name} --out "
            f"{card_path.parent}; then smfd bundle --mask {masks} --deblur {weights} -o src/smfd/weights --card "
            f"{card_path}"),
        "metrics": metrics,
        "intended_use": "Deblurring aligned or detected faces in photos (motion, camera shake, defocus, rescaling, "
                        "noise, JPEG); research and trying the tool.",
        "limitations": "Trained on synthetic faces only: real photos whose lighting, pose or occlusions SynthFace "
                       "lacks may come back less sharp. Heavy (thesis-strength) blur comes back with eyes, mouth "
                       "and outline in place but soft. Every measured score: "
                       f"{card_path.parent}/bakeoff.md and results/bakeoff.md.",
        "licence": "Trained on SynthFace-4k (StyleGAN2/FFHQ-derived): research, non-commercial use only.",
    }
