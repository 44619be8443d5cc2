"""``smfd bakeoff``: run a bake-off declared in a YAML file (configs/bakeoff.yaml): train every candidate for the
same wall-clock budget, ``lanes`` at a time, score each on the test split under every listed degradation (and the
blurry input itself), and write the table to results/bakeoff.md (and bakeoff.json). The mask generators the spec lists
under ``mask_generators`` are scored on the same faces (Dice and Jaccard per class, pixel confusion) into
results/masks.md.

Re-running resumes: a finished candidate is not trained again (its run stops at once on its spent budget), an
interrupted one continues from its last.pt, and existing evaluations are reused.

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
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import yaml

from ..data.celebamask import CLASSES
from ..fileio import atomic_write_bytes
from ..models import build, count_parameters
from ..models.io import load_runner, read_checkpoint
from ..models.profile import count_flops
from ..report.tables import markdown_table
from ..score.evaluation import confusion_markdown
from ..score.masks import MaskSource

SMFD = [sys.executable, "-c", "from smfd.cli import main; main()"]


def train_command(spec: dict, name: str, cand: dict) -> list[str]:
    run = Path(spec["out"]) / name
    if (run / "last.pt").is_file():
        return [*SMFD, "train", "deblur", "--resume", str(run), "--set", f"budget_minutes={spec['budget_minutes']}"]
    model = cand["model"]
    overrides = {"model.name": model["name"], "model.kwargs": model.get("kwargs", {}),
                 "budget_minutes": spec["budget_minutes"],
                 **(cand.get("set") or {})}  # the candidate's own dotted config keys (e.g. precision: fp32)
    args = [*SMFD, "train", "deblur", "-c", spec["config"], "--data", spec["data"], "-o", str(run)]
    for key, value in overrides.items():
        args += ["--set", f"{key}={json.dumps(value) if isinstance(value, (dict, list)) else value}"]
    if cand.get("masks"):
        args += ["--mask-source", mask_source(spec, cand)]
    return args


def mask_source(spec: dict, cand: dict) -> str:
    """What a mask-guided candidate reads: ``masks: true`` the spec's generator, ``masks: gt`` the true masks,
    ``masks: PATH`` that generator."""
    masks = cand["masks"]
    if masks == "gt":
        return str(MaskSource("gt"))
    return str(MaskSource("generator", str(spec["masks"] if masks is True else masks)))


def run_lanes(commands: list[tuple[str, list[str]]], lanes: int, log_dir: Path) -> None:
    """Run the commands ``lanes`` at a time (one thread each), logging to log_dir/NAME.log."""
    pending, running = list(commands), []
    while pending or running:
        while pending and len(running) < lanes:
            name, cmd = pending.pop(0)
            log = open(log_dir / f"{name}.log", "a")
            print(f"start {name}: {' '.join(cmd[3:])}", flush=True)
            running.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                   env={**_env(), "OMP_NUM_THREADS": "1"}), log))
        time.sleep(5)
        for item in list(running):
            name, proc, log = item
            if proc.poll() is not None:
                log.close()
                running.remove(item)
                print(f"done {name} (exit {proc.returncode})", flush=True)
                if proc.returncode:
                    raise ValueError(f"{name} failed; see {log_dir / (name + '.log')}")


def _env() -> dict:
    import os

    return dict(os.environ)


def _evaluation(spec: dict, name: str | None, cand: dict | None, degradation: str, identity: bool = True
                ) -> tuple[str, Path, Path, list[str] | None]:
    """(key, the eval's output folder, the folder its scores are kept in, the ``smfd eval`` command or None when
    the scores are kept already)."""
    ev = spec["evaluation"]
    key = f"{name or 'input'}-{degradation}"
    out, kept = Path(spec["out"]) / "eval" / key, Path(spec.get("evaluations") or Path(spec["out"]) / "eval") / key
    if (kept / "summary.json").is_file():
        return key, out, kept, None
    model = (cand.get("path") or str(Path(spec["out"]) / name)) if name else "input"
    cmd = [*SMFD, "eval", "--model", model, "--data", spec["data"], "--split-file", spec["split_file"],
           "--degradation", degradation, "--precision", ev.get("precision", "auto"), "-o", str(out), "--overwrite"]
    cmd += ["--limit", str(ev["limit"])] if ev.get("limit") else []  # none: every test face
    # identity against the sharp face means nothing when the input is the sharp face itself
    if identity and ev.get("identity", True) and degradation != "sharp":
        cmd += ["--identity", "--identity-cache", str(Path(spec["out"]) / "identity-cache")]
    if cand and cand.get("masks"):
        cmd += ["--mask-source", mask_source(spec, cand)]
    return key, out, kept, cmd


def _keep(out: Path, kept: Path) -> None:
    if kept != out:
        for file in ("per_image.csv", "summary.json"):
            atomic_write_bytes(kept / file, (out / file).read_bytes())


def evaluate_all(spec: dict, jobs: list[tuple[str | None, dict | None, str]], lanes: int) -> None:
    """Run the missing evaluations of ``jobs`` (name, candidate, degradation), ``lanes`` at a time."""
    todo = [e for e in (_evaluation(spec, *job) for job in jobs) if e[3] is not None]
    if todo:
        (Path(spec["out"]) / "eval").mkdir(parents=True, exist_ok=True)
        run_lanes([(f"eval-{key}", cmd) for key, _, _, cmd in todo], lanes, Path(spec["out"]) / "eval")
        for _, out, kept, _ in todo:
            _keep(out, kept)


def evaluate(spec: dict, name: str | None, cand: dict | None, degradation: str, identity: bool = True) -> dict:
    """``smfd eval`` of a candidate (or of the input when name is None) unless already done; its summary
    (``info`` too: what was scored, and a mask net's pixel confusion). The scores (per_image.csv, summary.json)
    are kept in the spec's ``evaluations`` folder, so the tables can be made again without evaluating again."""
    key, out, kept, cmd = _evaluation(spec, name, cand, degradation, identity)
    if cmd is not None:
        print(f"eval {name or 'input'} on {degradation}", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        _keep(out, kept)
    with open(kept / "per_image.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    summary = json.loads((kept / "summary.json").read_text())
    return {"summary": summary["metrics"], "info": summary["info"], "rows": rows}


def run_facts(run: Path) -> dict:
    """Steps (Adam's own count), epochs and training minutes of a finished run."""
    ckpt = read_checkpoint(run / "last.pt")
    steps = max(int(s["step"]) for s in ckpt["optimizer"]["state"].values())
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"steps": steps, "epochs": len(rows), "minutes": float(rows[-1].get("train_minutes") or "nan")}


def run(spec_path: str, *, only: str = "", lanes: int = 0, no_train: bool = False, out_dir: str = "results",
        masks: bool = False, card: str = "") -> None:
    """Train what is missing, score, and write OUT/bakeoff.md, bakeoff.json and masks.md (and card.json with
    ``card``). Raises ValueError on a bad spec or request."""
    args = SimpleNamespace(spec=spec_path, only=only, lanes=lanes, no_train=no_train, out=out_dir, masks=masks,
                         card=card)
    spec = yaml.safe_load(Path(args.spec).read_text())
    spec["lanes"] = args.lanes or spec["lanes"]
    only = set(args.only.split(",")) - {""}
    unknown = only - set(spec["candidates"]) - set(spec.get("references") or {})
    if unknown:
        raise ValueError(f"--only: no candidate or reference named {', '.join(sorted(unknown))} in {args.spec}")
    names = [n for n in spec["candidates"] if not only or n in only]
    references = {n: r for n, r in (spec.get("references") or {}).items() if not only or n in only}
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    kept = {n for n in names if spec["candidates"][n].get("path") and not (out / n / "last.pt").is_file()}
    if not args.no_train and not args.masks:  # a candidate whose run is kept only as weights is not trained again
        run_lanes([(n, train_command(spec, n, spec["candidates"][n])) for n in names if n not in kept],
                  spec["lanes"], out)
    done = [n for n in names if n in kept or (out / n / "last.pt").is_file()]
    # every candidate has the same split (same config, same seed); the spec's split file keeps it past the runs
    split_files = [str(out / n / "split.json") for n in done if n not in kept]
    tests = {tuple(json.loads(Path(f).read_text())["test"]) for f in split_files}
    assert len(tests) <= 1, "candidates were trained on different splits"
    spec["split_file"] = spec.get("split") or next(iter(split_files), None)
    if not spec["split_file"]:
        raise ValueError("no finished candidate to score, and no split file in the spec")
    if spec.get("mask_generators") and (args.masks or not only):
        atomic_write_bytes(Path(args.out) / "masks.md", mask_table(spec, args.spec).encode())
        print((Path(args.out) / "masks.md").read_text())
    if args.masks:
        return
    if not done and not references:
        raise ValueError("no finished candidate to score")
    degradations = spec["evaluation"]["degradations"]
    everything = {**{n: spec["candidates"][n] for n in done}, **references}
    evaluate_all(spec, [(None, None, d) for d in degradations]
                 + [(n, c, d) for n, c in everything.items() for d in c.get("degradations", degradations)],
                 spec["lanes"])  # side by side, one thread each
    inputs = {d: evaluate(spec, None, None, d) for d in degradations}
    table, record = [], {}
    for n in [*done, *references]:
        cand = spec["candidates"].get(n) or references[n]
        if n in references or n in kept:  # scored only (its own steps and minutes, if the spec gives them)
            model = load_runner(cand["path"])
            facts = {"steps": cand.get("steps", "-"), "minutes": cand.get("minutes", "-")}
        else:
            model = build(cand["model"]["name"], **cand["model"].get("kwargs", {}))
            facts = run_facts(out / n)
        gflops = count_flops(model) / 1e9
        row = [cand["label"], f"{count_parameters(model.module)['trainable'] / 1e6:.2f}M", f"{gflops:.1f}",
               f"{facts['steps']:,}" if facts["steps"] != "-" else "-",
               f"{facts['minutes']:.0f}" if facts["minutes"] != "-" else "-"]
        record[n] = {**facts, "gflops": gflops}
        for d in degradations:
            if d not in cand.get("degradations", degradations):  # a reference scored on some families only
                row += ["-"] * (2 if d == "sharp" else 5)
                continue
            ev = evaluate(spec, n, cand, d)
            s, base = ev["summary"], inputs[d]["summary"]
            worse = sum(float(r["psnr"]) < float(inputs[d]["rows"][i]["psnr"]) for i, r in ev["rows"].items())
            n_img = len(ev["rows"])
            if d == "sharp":  # the input is the sharp face itself: only the PSNR against it means something
                row += [f"{s['psnr']['mean']:.2f}", f"{s['ssim']['mean']:.3f}"]
            else:
                ident = f"{s['id_cosine']['mean'] - base['id_cosine']['mean']:+.3f}" if "id_cosine" in s else "-"
                rank1 = (f"{100 * base['id_rank1']['mean']:.1f} → {100 * s['id_rank1']['mean']:.1f} %"
                         if "id_rank1" in s and "id_rank1" in base else "-")
                row += [f"{s['psnr']['mean'] - base['psnr']['mean']:+.2f}", f"{s['ssim']['mean']:.3f}",
                        f"{100 * worse / n_img:.0f} %", ident, rank1]
            record[n][d] = {k: v["mean"] for k, v in s.items()} | {"worse_share": worse / n_img}
        table.append(row)
    head = ["candidate", "params", "GFLOPs/face", "steps", "train min"]
    for d in degradations:
        head += [f"{d}: PSNR vs itself", f"{d}: SSIM vs itself"] if d == "sharp" else [
            f"{d}: dB over input", f"{d}: SSIM", f"{d}: worse than input", f"{d}: identity gain",
            f"{d}: rank-1 (input → restored)"]
    base_line = ", ".join(f"{d} {inputs[d]['summary']['psnr']['mean']:.2f} dB / SSIM "
                          f"{inputs[d]['summary']['ssim']['mean']:.3f}" for d in degradations if d != "sharp")
    n_img = len(next(iter(inputs.values()))["rows"])
    made_by = (" --no-train" if args.no_train else "") + "".join(  # the command as run, so it makes this table again
        f" {flag} {value}" for flag, value in (("--only", args.only), ("--lanes", args.lanes), ("--card", args.card),
                                               ("--out", args.out if args.out != "results" else "")) if value)
    title = (f"Bake-off at equal CPU time ({spec['budget_minutes']} min of training each)" if not only else
             f"{', '.join(sorted(only))} on the bake-off's test faces")
    text = (f"# {title}\n\n"
            f"Made by `smfd bakeoff {args.spec}{made_by}`: "
            + (f"{spec['config']}, {spec['lanes']} one-thread runs side by side on this 2-core CPU; masks from "
               f"`{spec['masks']}`." if not only else
               f"{spec['config']}, each row trained as its `how` in `{args.spec}` says; the mask-guided nets read "
               "the masks of the row's `mask_weights`.")
            + f" Scored ({spec['evaluation'].get('precision', 'auto')} precision) on the "
            f"{'first ' if spec['evaluation'].get('limit') else ''}{n_img} test faces (seeded degradations, the "
            f"same for every row). The blurry input scores {base_line}. 'worse than input': share of faces whose "
            "PSNR drops; identity: dlib cosine to the sharp face, minus the input's; rank-1: share of faces whose "
            "nearest sharp test face (dlib descriptors, among all scored) is their own.\n\n"
            + markdown_table([dict(zip(head, r, strict=True)) for r in table], head) + "\n")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(args.out) / "bakeoff.md", text.encode())
    atomic_write_bytes(Path(args.out) / "bakeoff.json", (json.dumps(record, indent=1) + "\n").encode())
    if args.card:
        card = model_card(spec, args.card, record[args.card], {d: inputs[d]["summary"] for d in degradations}, n_img,
                          Path(args.out) / "card.json", args.spec, args.only or args.card)
        atomic_write_bytes(Path(args.out) / "card.json", (json.dumps(card, indent=1) + "\n").encode())
    print(text)


def mask_table(spec: dict, spec_path: str) -> str:
    """results/masks.md: every listed mask generator on the test faces under each degradation (Dice, Jaccard),
    then each one's pixel confusion matrix."""
    degradations = [d for d in spec["evaluation"]["degradations"] if d != "sharp"] + ["sharp"]
    gens = spec["mask_generators"]
    head = ["mask generator", "params", "runs at", "steps", "train min", "degradation",
            *[f"Dice {c}" for c in CLASSES[:4]], "mean Dice", "mean Jaccard"]
    rows, confusions = [], []
    for name, gen in gens.items():
        model = load_runner(gen["path"])
        for d in degradations:
            ev = evaluate(spec, name, gen, d, identity=False)
            s = ev["summary"]
            params = count_parameters(model.module)["trainable"]
            rows.append({"mask generator": gen["label"], "params": f"{params / 1e6:.2f}M",
                         "runs at": f"{model.spec.work_size or 256} px",
                         "steps": f"{gen['steps']:,}" if "steps" in gen else "-",
                         "train min": str(gen.get("minutes", "-")), "degradation": d,
                         **{f"Dice {c}": f"{s[f'dice_{i}']['mean']:.3f}" for i, c in enumerate(CLASSES[:4])},
                         "mean Dice": f"**{s['dice']['mean']:.3f}**", "mean Jaccard": f"{s['jaccard']['mean']:.3f}"})
            if d == degradations[0]:
                confusions.append(f"### {gen['label']}, {d} degradation\n"
                                  + confusion_markdown(ev["info"]["confusion"]))
    n_img = spec["evaluation"]["limit"]
    return (f"# Mask generation on whole faces (thesis Table 4.1 analogue)\n\n"
            f"Made by `smfd bakeoff {spec_path}`: each generator scored on the first {n_img} test faces "
            "of the bake-off's split (seeded degradations, the same faces and blur for every row; 'sharp': the "
            "undegraded face). Dice per class over the faces where the class is present, mean over the classes "
            "present; no test face has wearables. Target (issue 17): mean Dice >= 0.78, features >= 0.70.\n\n"
            + markdown_table(rows, head) + "\n\n" + "\n".join(confusions))


def model_card(spec: dict, name: str, rec: dict, inputs: dict, n_img: int, card_path: Path, spec_path: str,
               only: str) -> dict:
    """The model card of a candidate shipped with the mask generator it read (every number from the evaluations)."""
    cand = spec["candidates"].get(name) or spec["references"][name]
    model = load_runner(cand["path"]) if "path" in cand else build(cand["model"]["name"],
                                                                  **cand["model"].get("kwargs", {}))
    masks = cand.get("mask_weights", spec["masks"])
    weights = cand.get("path", f"{spec['out']}/{name}")
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
        "summary": f"{cand.get('summary', cand['label'].split(') ', 1)[-1])} "
                   f"({count_parameters(model.module)['trainable']:,} parameters, {rec['gflops']:.1f} GFLOPs a 256 px "
                   "face) "
                   f"with the mask generator {masks}, stored as float16.",
        "status": cand.get("status") or (
            f"Trained on a 2-core CPU for {rec['minutes']:.0f} minutes ({rec['steps']:,} AdamW steps of 4 whole "
            f"256 px faces) with {spec['config']}; the weights are the EMA of the training weights."),
        "data": cand.get("data") or (
            "SynthFace-4k (synthetic FFHQ-aligned faces), the seed-0 split of configs/whole_face.yaml (600 test faces "
            "held out; none seen in training by either net); each face degraded on the fly, half by the thesis's "
            "pipeline, half by the realistic family (camera shake, defocus, mild blur, sensor noise, JPEG, 10 % "
            "clean)."),
        "protocol": (f"{cand['how']}; " if cand.get("how") else "") + (
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
