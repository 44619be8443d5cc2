"""Collect the experiment runs of scripts/experiments.sh into results/: the tables (thesis Tables 4.1-4.4
analogues), the target checks, the comparison grid and the training curves.

Every number is read from the runs' evaluation files (summary.json, ablation.csv, cv.csv) except the mask
nets' CPU latency, which is measured here (run it on a quiet machine).

Usage: python scripts/make_results.py [--runs runs/exp] [--data ../shared/data/synthface] [--out results]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import platform
from pathlib import Path

import numpy as np
import torch
import yaml

from smfd.data import FaceFolder
from smfd.data.celebamask import CLASSES
from smfd.data.dataset import FaceDeblurDataset
from smfd.data.io import write_image
from smfd.fileio import atomic_write_bytes
from smfd.models.profile import measure_latency
from smfd.models.registry import count_parameters, create_model
from smfd.report import colorize_mask
from smfd.report.figures import plot_curves, run_chain, run_history
from smfd.report.grid import make_grid
from smfd.report.tables import markdown_table, mean_sd, mean_sd_row
from smfd.train.checkpoint import load_model
from smfd.train.evaluation import confusion_markdown
from smfd.train.loop import mask_provider

DEBLUR_ROWS = [  # (eval folder, label)
    ("input", "blurry input"),
    ("nafnet", "NAFNet (width 16)"),
    ("nafnet-global-pool", "NAFNet (width 16), global pooling"),
    ("deblur-nomask", "SMFD-UNet, no mask branch"),
    ("deblur-gen", "SMFD-UNet, generated masks"),
    ("deblur-gt", "SMFD-UNet, ground-truth masks"),
    ("deblur-gt-genmask", "SMFD-UNet trained on ground-truth masks, tested on generated"),
    ("deblur-gen-keep-mean", "SMFD-UNet, generated masks, keep_mean"),
    ("deblur-gt-keep-mean", "SMFD-UNet, ground-truth masks, keep_mean"),
    ("deblur-gt-keep-mean-global-pool", "SMFD-UNet, ground-truth masks, keep_mean, global pooling"),
    ("deblur-nomask-keep-mean", "SMFD-UNet, no mask branch, keep_mean"),
    ("deblur-gen-keep-mean-day1-masks", "SMFD-UNet, generated masks, keep_mean"),
    ("deblur-gen-day3-keep-mean", "SMFD-UNet, generated masks, keep_mean, tested on another generator's masks"),
    ("deblur-gen-keep-mean-day5-masks", "SMFD-UNet, generated masks, keep_mean"),
    ("deblur-gen-keep-mean-crop128", "SMFD-UNet, generated masks, keep_mean, then 2 epochs of 128 px crops"),
    ("deblur-gt-no-residual", "SMFD-UNet, ground-truth masks, thesis-exact (no global residual), from scratch"),
    ("deblur-gt-no-residual-keep-mean", "SMFD-UNet, ground-truth masks, thesis-exact (no global residual), from "
                                        "scratch, keep_mean"),
]
ABLATION_EXTRA = [  # (name, label): rows of the ablation table trained outside smfd ablate
    ("per-channel-post", "full + post-processing around each channel's mean (per_channel_post=true)"),
    ("no-residual", "full without the global residual (thesis-exact, residual=false)"),
]
SCORES = ("psnr", "ssim", "mse", "colour_shift", "niqe")
# left out of a day that did not score them
OPTIONAL_ROWS = {f for f, _ in DEBLUR_ROWS if "-keep-mean" in f or "-global-pool" in f or "-no-residual" in f}
MASK_ROWS = [("mask", "mask_generator", "ours (mask generator)"), ("mask-unet", "unet", "UNet"),
             ("mask-unetpp", "unet_plusplus", "UNet++")]


def _summary(path: Path) -> dict | None:
    f = path / "summary.json"
    return json.loads(f.read_text()) if f.is_file() else None


def _ms(m: dict, key: str, digits: int = 2) -> str:
    v = m.get(key)
    if not v or v["mean"] is None or math.isnan(v["mean"]):
        return "n/a"
    sd = "" if math.isnan(v["sd"]) else f" ± {v['sd']:.{digits}f}"
    return f"{v['mean']:.{digits}f}{sd}"


def _mean(s: dict | None, key: str) -> float:
    return s["metrics"][key]["mean"] if s and key in s["metrics"] else math.nan


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


# The working days of scripts/experiments.sh: each one's subfolder of the runs folder and what it did
STAGES = [
    ("", "day one", "every net trained from scratch, 4 epochs"),
    ("more", "day two", "every deblurring net continued for up to 8 more epochs from its day-one weights, the mask "
                        "generator and UNet for up to 4 (UNet++ not continued)"),
    ("day3", "day three", "the same nets continued again from their day-two weights, as many epochs, at lr 2e-4 "
                          "(the first step down of the thesis's plateau schedule)"),
    ("day4", "day four", "the mask generator and UNet continued from their day-three weights on whole faces at 128 px "
                         "for up to 8 epochs at lr 1e-3, and run at 128 px (work_size=128); the day-three SMFD-UNets "
                         "scored with the day-four generator's masks, and the generated-mask one continued for one "
                         "epoch on them"),
    ("day5", "day five", "at lr 2e-4: the generated-mask SMFD-UNet continued for up to 6 more epochs on the day-four "
                         "generator's masks, the no-mask SMFD-UNet for up to 7 (the epochs it lagged), the mask "
                         "generator and UNet for up to 4 more on whole faces at 128 px"),
    ("day6", "day six", "at lr 2e-4: the ground-truth-mask SMFD-UNet and NAFNet continued for up to 7 more epochs (the "
                        "epochs they lagged); every deblurring net scored with test-time local statistics (option "
                        "pool_window=64: channel attention and post-processing pool over 64 px windows, the training "
                        "crop's side, instead of the whole 256 px face)"),
    ("day7", "day seven", "UNet++ continued from its day-one weights on whole faces at 128 px for up to 4 epochs at "
                          "lr 1e-3 (as the mask generator and UNet on day four), and run at 128 px; the ablation "
                          "variants and the cross-validation folds scored again with test-time local statistics "
                          "(pool_window=64); the ablation trained again with the current code; the thesis-exact "
                          "SMFD-UNet (no global residual) trained from scratch on ground-truth masks for 4 epochs at "
                          "lr 1e-3"),
]
LOCAL = "day7"  # the day that scored the ablation and the CV folds again with pool_window=64


def day_of(run: str) -> str:
    """Which working day trained a run folder (``runs/exp/day3/mask`` -> ``day three``)."""
    parent = Path(run).parent.name
    return next((day for sub, day, _ in STAGES if sub and sub == parent), "day one")


def generator_day(source: str) -> str | None:
    """The working day that trained a ``generator:RUN`` mask source; ``None`` for any other source."""
    return day_of(source.split(":", 1)[1]) if source.startswith("generator:") else None


def masks_of(info: dict) -> str:
    """Where a deblurring evaluation's masks came from."""
    source = info.get("mask_source", "-")
    if (day := generator_day(source)) is not None:
        return f"generator ({day})"
    return {"gt": "ground truth"}.get(source, "-")


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text()) or {}


def _spans(run: Path, what) -> str:
    """A run's epochs, its continuations included, grouped by ``what(config)``: ``4 epochs on A, then 7 on B``."""
    spans: list[list] = []
    for r in run_chain(run):
        n, kind = len(_csv_rows(r / "metrics.csv")), what(_config(r))
        if spans and spans[-1][1] == kind:
            spans[-1][0] += n
        else:
            spans.append([n, kind])
    return ", then ".join(f"{n}{' epochs' if i == 0 else ''} on {kind}" for i, (n, kind) in enumerate(spans))


def deblur_masks(cfg: dict) -> str:
    """The masks a deblurring run's config trained on."""
    source = cfg.get("mask_source") or "gt"
    day = generator_day(source)
    return f"the {day.replace(' ', '-')} generator's masks" if day else {"gt": "ground-truth masks"}.get(source, source)


def _work_size(cfg: dict) -> int | None:
    return ((cfg.get("model") or {}).get("kwargs") or {}).get("work_size")


def mask_view(cfg: dict) -> str:
    """What a mask run's config trained on: crops of the face, or whole faces at the net's working size."""
    size = _work_size(cfg)
    return f"whole faces at {size} px" if size else f"{(cfg.get('data') or {}).get('crop')} px crops"


def last_stage(runs: Path, *folders: str) -> int:
    """The latest working day that has evaluated any of ``folders`` (0: day one)."""
    done = [i for i, (sub, _, _) in enumerate(STAGES) for folder in folders
            if (runs / sub / "eval" / folder / "summary.json").is_file()]
    return max(done, default=0)


def stage_summary(runs: Path, folder: str, stage: int) -> dict | None:
    """The evaluation of ``folder`` after day ``stage`` (0-based): from the latest day up to it that evaluated it,
    so a row a later day did not redo (the input, a net not continued) keeps its earlier evaluation."""
    for sub, _, _ in reversed(STAGES[: stage + 1]):
        if (s := _summary(runs / sub / "eval" / folder)) is not None:
            return s
    return None


def latest_run(runs: Path, name: str) -> Path:
    """A run's latest continuation (the last working day that trained it), else the day-one run."""
    for sub, _, _ in reversed(STAGES):
        if (runs / sub / name / "metrics.csv").is_file():
            return runs / sub / name
    return runs / name


def row_options(runs: Path, row: str) -> dict:
    """The model options (``smfd eval --model-option``) of ``row``'s latest evaluation."""
    info = stage_summary(runs, row, last_stage(runs, row))
    return dict(info["info"].get("model_options") or {}) if info else {}


def built_options(run: str) -> dict:
    """The parameter-free options a run was trained with (in its config's model kwargs); none for a run folder
    without a config (the blurry input, a weights file)."""
    run = Path(run)
    kwargs = ((_config(run).get("model") or {}).get("kwargs") or {}) if (run / "config.yaml").is_file() else {}
    return {k: kwargs[k] for k in ("keep_mean", "pool_window") if kwargs.get(k)}


def option_items(options: dict) -> list[str]:
    """``{"keep_mean": True, "pool_window": 64}`` -> ``["keep_mean=true", "pool_window=64"]``, as the CLI takes them."""
    return [f"{k}={json.dumps(v)}" for k, v in options.items()]


def shipped_run(runs: Path, row: str) -> Path:
    """The run folder of the deblurring net behind ``row``'s latest evaluation."""
    info = stage_summary(runs, row, last_stage(runs, row))
    return Path(info["info"]["model"]) if info else latest_run(runs, "deblur-gen")


def _epochs(run: str) -> str:
    try:
        return str(len(run_history(run)[0]))
    except FileNotFoundError:
        return "?"


def deblur_table(runs: Path, stage: int, shipped: str = "deblur-gen") -> str:
    """The deblurring rows after one working day (0-based); the input row is shared. ``shipped``: the row of the
    bundled weights (``deblur-gen``, or ``deblur-gen-keep-mean`` when bundled with keep_mean), which the target
    checks are about."""
    head = ("| row | params | epochs | masks | options | PSNR (dB) | SSIM | MSE | colour shift | NIQE "
            "| identity cosine | identity distance | n |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines, s, latest = [], {}, stage >= last_stage(runs, shipped)
    for folder, label in DEBLUR_ROWS:
        if folder == shipped and latest:
            label += " (shipped)"
        s[folder] = stage_summary(runs, folder, stage)
        if s[folder] is None and folder in OPTIONAL_ROWS:
            continue
        if s[folder] is None:
            lines.append(f"| {label} | not run | | | | | | | | | | | |")
            continue
        m, info = s[folder]["metrics"], s[folder]["info"]
        name = info.get("model_name", "input")
        masks = "-" if name == "input" or create_model(name).mask_channels == 0 else masks_of(info)
        params = "-" if name == "input" else f"{count_parameters(create_model(name))['total_keras_convention']:,}"
        epochs = "-" if name == "input" else _epochs(info["model"])
        opts = ", ".join(option_items({**built_options(info["model"]), **(info.get("model_options") or {})})) or "-"
        lines.append(f"| {label} | {params} | {epochs} | {masks} | {opts} | {_ms(m, 'psnr')} | {_ms(m, 'ssim', 4)} | "
                     f"{_ms(m, 'mse', 1)} | {_ms(m, 'colour_shift')} | {_ms(m, 'niqe')} | {_ms(m, 'id_cosine', 4)} | "
                     f"{_ms(m, 'id_distance', 4)} | {info['n_images']} |")
    p = {k: _mean(v, "psnr") for k, v in s.items()}
    c = {k: _mean(v, "colour_shift") for k, v in s.items()}
    ship = shipped if s.get(shipped) else "deblur-gen"
    kept = "keep-mean" in ship  # then compare with the other SMFD-UNets with keep_mean on too
    gt = "deblur-gt-keep-mean" if kept and s.get("deblur-gt-keep-mean") else "deblur-gt"
    nomask = "deblur-nomask-keep-mean" if kept and s.get("deblur-nomask-keep-mean") else "deblur-nomask"
    gain, over_nomask, gap = p[ship] - p["input"], p[ship] - p[nomask], p[gt] - p[ship]
    what = "SMFD-UNet (generated masks" + (", keep_mean)" if ship != "deblur-gen" else ")")
    checks = [
        f"- Gain of {what} over the blurry input: {gain:+.2f} dB (target >= 3 dB): {_verdict(gain >= 3)}.",
        f"- Over the no-mask variant{' (keep_mean)' if nomask != 'deblur-nomask' else ''}: {over_nomask:+.2f} dB "
        f"(target >= 0.8 dB): {_verdict(over_nomask >= 0.8)}.",
        f"- Ground-truth minus generated masks{' (both keep_mean)' if gt != 'deblur-gt' else ''}: {gap:+.2f} dB "
        f"(target <= 0.3 dB): {_verdict(gap <= 0.3)}.",
        f"- Colour shift (mean |channel-mean difference| to the sharp face, 0-255): output {c[ship]:.2f} vs "
        f"blurry input {c['input']:.2f} (target: lower than the input's): {_verdict(c[ship] < c['input'])}.",
        f"- NAFNet at the same budget: {p['nafnet'] - p['input']:+.2f} dB over the input.",
    ]
    gen = s.get("deblur-gen")
    k = next((r for r in ("deblur-gen-keep-mean", "deblur-gen-keep-mean-day1-masks")
              if gen and s.get(r) and masks_of(s[r]["info"]) == masks_of(gen["info"])), None)
    if k:
        checks.append(f"- keep_mean on the same generated-mask net: colour shift {c['deblur-gen']:.2f} -> {c[k]:.2f}, "
                      f"PSNR {p['deblur-gen']:.2f} -> {p[k]:.2f} dB.")
    new = "deblur-gen-day3-keep-mean"
    if k and s.get(new):
        ssim, niqe = (f"{_mean(s[k], m):.{d}f} -> {_mean(s[new], m):.{d}f}" for m, d in (("ssim", 4), ("niqe", 2)))
        checks.append(f"- The same net with keep_mean on masks from the {masks_of(s[new]['info'])} instead of the "
                      f"{masks_of(s[k]['info'])}: PSNR {p[k]:.2f} -> {p[new]:.2f} dB, SSIM {ssim}, NIQE {niqe}.")
    scored = min(stage, last_stage(runs, ship))  # the day that scored s[ship]
    before = stage_summary(runs, ship, scored - 1) if scored else None
    window = s[ship]["info"].get("model_options", {}).get("pool_window")
    if window and before and before["info"]["model"] == s[ship]["info"]["model"] \
            and "pool_window" not in before["info"].get("model_options", {}):
        ssim, colour = (f"{_mean(before, m):.{d}f} -> {_mean(s[ship], m):.{d}f}" for m, d in (("ssim", 4),
                                                                                             ("colour_shift", 2)))
        checks.append(f"- Test-time local statistics (pool_window={window}) on the same {what} net: PSNR "
                      f"{_mean(before, 'psnr'):.2f} -> {p[ship]:.2f} dB, SSIM {ssim}, colour shift {colour}.")
    return head + "\n".join(lines) + "\n\nTarget checks (computed from the rows above):\n\n" + "\n".join(checks) + "\n"


def mask_table(runs: Path, stage: int) -> str:
    """The mask rows after one working day (0-based); a net not continued keeps its earlier evaluation."""
    torch.set_num_threads(2)
    cls = " | ".join(f"Dice {c}" for c in CLASSES)
    head = (f"| model | params | epochs | runs at | {cls} | mean Dice (classes present) | mean Jaccard "
            "| CPU latency (ms) | n |\n|---|---|---|---|" + "---|" * len(CLASSES) + "---|---|---|---|\n")
    lines, dice, params, confusions = [], {}, {}, []
    for folder, name, label in MASK_ROWS:
        s = stage_summary(runs, folder, stage)
        if s is not None and "confusion" in s["info"]:
            where = confusion_markdown(s["info"]["confusion"])
            confusions.append(f"\n{label}, {_epochs(s['info']['model'])} epochs:\n{where}")
        params[name] = count_parameters(create_model(name))["total_keras_convention"]
        model = (load_model(s["info"]["model"]) if s else create_model(name)).float().eval()  # with its work_size
        lat = measure_latency(model, 256, runs=3) * 1000
        at = f"{model.work_size} px" if getattr(model, "work_size", None) else "256 px"
        if s is None:
            empty = "| " * len(CLASSES)
            lines.append(f"| {label} | {params[name]:,} | | {at} | {empty}not run | | {lat:.0f} | |")
            continue
        m = s["metrics"]
        dice[name] = m["dice"]["mean"]
        per = " | ".join(_ms(m, f"dice_{i}", 4) for i in range(len(CLASSES)))
        lines.append(f"| {label} | {params[name]:,} | {_epochs(s['info']['model'])} | {at} | {per} | "
                     f"{m['dice']['mean']:.4f} | {m['jaccard']['mean']:.4f} | {lat:.0f} | {s['info']['n_images']} |")
    ours, unet = dice.get("mask_generator", math.nan), dice.get("unet", math.nan)
    ratio = params["mask_generator"] / params["unet"]
    check = (f"\nTarget check: mean Dice {ours:.4f} (ours) vs {unet:.4f} (UNet) at {ratio:.2f}x UNet's parameters "
             f"(target: at least UNet's Dice at <= 0.2x): {_verdict(ours >= unet and ratio <= 0.2)}.\n")
    note = (f"\nLatency: one 256x256 grey face (resized inside to the net's working size), batch 1, 2 threads, "
            f"median of 3 after a warm-up, "
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}.\n")
    return head + "\n".join(lines) + "\n" + check + note + "".join(confusions)


def _csv_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def input_on_first(runs: Path, n: int) -> dict[str, float]:
    """The blurry input's mean scores on the first ``n`` test faces (the faces a ``--test-limit n`` run scores)."""
    rows = _csv_rows(runs / "eval" / "input" / "per_image.csv")[:n]
    if len(rows) < n:
        return {}
    return {k: float(np.mean([float(r[k]) for r in rows])) for k in SCORES}


def input_line(runs: Path, n: int) -> str:
    m = input_on_first(runs, n)
    if not m:
        return ""
    return (f"\nThe blurry input on the same {n} test faces: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, "
            f"MSE {m['mse']:.1f}, colour shift {m['colour_shift']:.2f}, NIQE {m['niqe']:.2f}.\n")


def _ablation_rows(rows: list[dict], extras: list[tuple[Path, str]]) -> str:
    """An ablation table: the rows of ``smfd ablate``'s ablation.csv, then the extra rows' evaluations
    (``(folder, label)``)."""
    cols = ["variant", "params", "test_psnr", "test_ssim", "test_mse", "test_colour_shift", "test_niqe"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    def fmt(c: str, v: str) -> str:
        if c == "params":
            return f"{int(v):,}"
        return v if c == "variant" else f"{float(v):.4f}"

    lines += ["| " + " | ".join(fmt(c, r.get(c, "")) for c in cols) + " |" for r in rows]
    full = f"{count_parameters(create_model('smfd_unet'))['total_keras_convention']:,}"
    for folder, label in extras:
        if s := _summary(folder):
            lines.append(f"| {label} | {full} | " + " | ".join(f"{_mean(s, k):.4f}" for k in SCORES) + " |")
    return "\n".join(lines) + "\n"


def ablation_table(runs: Path) -> str:
    rows = _csv_rows(runs / "ablate" / "ablation.csv")
    if not rows:
        return "Not run.\n"
    extras = [(runs / "eval" / f"ablate-{k}", label) for k, label in ABLATION_EXTRA]
    text = _ablation_rows(rows, extras) + input_line(runs, 40)
    # the same weights with test-time local statistics (day seven)
    local = [(runs / LOCAL / "eval" / "ablate" / r["model"], r["variant"], float(r["test_psnr"])) for r in rows]
    local += [(runs / LOCAL / "eval" / f"ablate-{k}", label, _mean(_summary(runs / "eval" / f"ablate-{k}"), "psnr"))
              for k, label in ABLATION_EXTRA]
    found = [(label, s, psnr) for path, label, psnr in local if (s := _summary(path))]
    if found:
        window = found[0][1]["info"].get("model_options", {}).get("pool_window")
        text += (f"\n## The same weights with test-time local statistics (pool_window={window}, {STAGES[-1][1]})\n\n"
                 f"Attention and post-processing pool over {window} px windows (the training crop's side) instead of "
                 "the whole face, as the shipped net runs; same 40 test faces.\n\n"
                 "| variant | test_psnr | test_ssim | test_mse | test_colour_shift | test_niqe "
                 "| PSNR vs global pooling |\n|---|---|---|---|---|---|---|\n")
        text += "".join(f"| {label} | " + " | ".join(f"{_mean(s, k):.4f}" for k in SCORES)
                        + f" | {_mean(s, 'psnr') - psnr:+.2f} dB |\n" for label, s, psnr in found)
    current = runs / LOCAL / "ablate-current"
    if (current / "ablation.csv").is_file():
        text += (f"\n## Trained again from scratch with the current code ({STAGES[-1][1]})\n\n"
                 "The same scale, config and seeds, with what changed since day one: the PixelShuffle upsamplers "
                 "start from ICNR (no checkerboard at initialisation), and configs/cpu.yaml's pool_window=64, so "
                 "validation (which picks the checkpoint) and the test see test-time local statistics.\n\n"
                 + _ablation_rows(_csv_rows(current / "ablation.csv"),
                                  [(current / "eval" / k, label) for k, label in ABLATION_EXTRA]
                                  + [(current / "eval" / "no-residual-keep-mean",
                                      "full without the global residual, keep_mean=true")]))
    return text


def cv_table(runs: Path) -> str:
    md = runs / "cv" / "cv.md"
    if not md.is_file():
        return "Not run.\n"
    text = md.read_text().split("\n", 2)[2] + input_line(runs, 20)
    before = {int(r["fold"]): float(r["test_psnr"]) for r in _csv_rows(runs / "cv" / "cv.csv") if r["fold"].isdigit()}
    folds = {k + 1: s for k in range(len(before)) if (s := _summary(runs / LOCAL / "eval" / "cv" / f"fold{k}"))}
    if folds:
        window = next(iter(folds.values()))["info"].get("model_options", {}).get("pool_window")
        cols = [f"test_{k}" for k in SCORES]
        rows = [{"fold": k, **{f"test_{m}": _mean(s, m) for m in SCORES}} for k, s in folds.items()]
        change = mean_sd([r["test_psnr"] - before[r["fold"]] for r in rows])
        text += (f"\n## The same folds with test-time local statistics (pool_window={window}, {STAGES[-1][1]})\n\n"
                 + markdown_table(rows + [mean_sd_row(rows, cols, "mean ± SD", "fold")], ["fold", *cols])
                 + f"\nPSNR vs global pooling, per fold: {change[0]:+.2f} ± {change[1]:.2f} dB.\n")
    return text


def model_card(runs: Path, row: str = "deblur-gen", mask_run: str = "mask") -> dict:
    """The bundle's model card (for ``smfd bundle --card``), its metrics read from the test evaluations of the
    shipped ``row`` and mask generator (``mask_run``, a run folder under ``runs``)."""
    stage = last_stage(runs, row)
    gen, shipped = stage_summary(runs, row, stage), shipped_run(runs, row)
    options = row_options(runs, row)
    option = "".join(f" --deblur-option {o}" for o in option_items(options))
    mask_dir = runs / mask_run
    inp, mask = _summary(runs / "eval" / "input"), _summary(mask_dir.parent / "eval" / mask_dir.name)
    size = _work_size(_config(mask_dir))
    metrics = {}
    if mask:
        metrics[f"mask generator test Dice, mean over the classes present ({mask['info']['n_images']} faces)"] = (
            f"{mask['metrics']['dice']['mean']:.4f}")
    if gen and inp:
        n = gen["info"]["n_images"]
        for key, label, d in (("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 4), ("colour_shift", "colour shift", 2),
                              ("id_cosine", "identity cosine", 4)):
            metrics[f"SMFD-UNet test {label} ({n} faces): restored vs blurry input"] = (
                f"{_mean(gen, key):.{d}f} vs {_mean(inp, key):.{d}f}")
    return {
        "summary": "Mask generator (5,416,029 parameters) and SMFD-UNet (7,532,503 parameters), stored as float16.",
        "status": "Trained on a 2-core CPU at the reduced budget of configs/cpu.yaml (mask generator, 600 faces: "
                  f"{_spans(mask_dir, mask_view)}{f', and it runs at {size} px' if size else ''}; SMFD-UNet, 64 px "
                  "crops of "
                  f"1,200 faces: {_spans(shipped, deblur_masks)}), "
                  "not the thesis's full protocol; SMFD-UNet has a global residual (output = blurry input + network "
                  "output), not in the thesis" + ("; it runs with keep_mean on (the output keeps each channel's mean "
                  "over the blurry input)" if options.get("keep_mean") else "") + (
                  f"; its attention and post-processing pool over {options['pool_window']} px windows (the training "
                  "crop's side) instead of the whole face" if options.get("pool_window") else "") + (
                  ", neither in the thesis" if options else "") + "; results/ has every table and "
                  "how it was made.",
        "data": "SynthFace-4k (synthetic FFHQ-aligned faces, pseudo-label masks), seed-0 splits of the 3,000 (mask) "
                "and 2,000 (deblur) subsets; never the test split.",
        "protocol": ("bash scripts/experiments.sh all (configs/cpu.yaml)"
                     + "".join(f"; bash scripts/experiments.sh {sub} ({day})" for sub, day, _ in STAGES[1: stage + 1])
                     + f"; then smfd bundle --mask {mask_dir} --deblur {shipped}{option} "
                       "--card results/card.json."),
        "metrics": metrics,
        "intended_use": "Deblurring aligned or detected faces under the blur this project simulates (motion and "
                        "Gaussian blur, rescaling, noise); research and trying the tool.",
        "limitations": "Trained on synthetic faces only, at a small budget: expect soft results on real photos; "
                       "see results/deblurring.md for the measured gains and their targets.",
        "licence": "Trained on SynthFace-4k (StyleGAN2/FFHQ-derived): research, non-commercial use only.",
    }


@torch.no_grad()
def comparison_grid(runs: Path, data: str, out: Path, n: int = 6, shipped: str = "deblur-gen",
                    mask_run: str = "mask") -> None:
    """Blurry | NAFNet | no mask | generated mask | SMFD-UNet (generated) | SMFD-UNet (GT masks) | sharp, the nets
    of the latest stage."""
    split = json.loads((runs / "deblur-gt" / "split.json").read_text())
    ids = split["test"][:n]
    ds = FaceDeblurDataset(FaceFolder(data), ids, train=False, seed=0, size=256)
    batch = {k: v for k, v in torch.utils.data.default_collate([ds[i] for i in range(len(ids))]).items()}
    gen = mask_provider(f"generator:{runs / mask_run}", torch.device("cpu"))(batch)
    gt = batch["mask_onehot"]
    lq = batch["lq"]
    opt = row_options(runs, shipped)  # the SMFD-UNets as shipped
    outs = {
        "NAFNet": load_model(str(latest_run(runs, "nafnet")), row_options(runs, "nafnet")).eval()(lq),
        "no mask": load_model(str(latest_run(runs, "deblur-nomask")), opt).eval()(lq),
        "generated masks": load_model(str(shipped_run(runs, shipped)), opt).eval()(lq, gen),
        "ground-truth masks": load_model(str(latest_run(runs, "deblur-gt")), opt).eval()(lq, gt),
    }

    def u8(t: torch.Tensor) -> np.ndarray:
        return (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)

    rows = []
    for i in range(len(ids)):
        rows.append([u8(lq[i]), u8(outs["NAFNet"][i]), u8(outs["no mask"][i]), colorize_mask(gen[i].argmax(0).numpy()),
                     u8(outs["generated masks"][i]), u8(outs["ground-truth masks"][i]), u8(batch["gt"][i])])
    titles = ["blurry", "NAFNet", "SMFD no mask", "generated mask", "SMFD (gen. mask)", "SMFD (GT mask)", "sharp"]
    write_image(out, make_grid(rows, titles, tile=192))


def by_stage(runs: Path, folders: tuple[str, ...], table, note: str) -> str:
    """``table`` after the latest working day that evaluated any of ``folders``, then after each earlier day."""
    last = last_stage(runs, *folders)
    if last == 0:
        return table(runs, 0)
    days = " ".join(f"{day.capitalize()} (`bash scripts/experiments.sh {sub or 'all'}`): {what}."
                    for sub, day, what in STAGES[: last + 1])
    text = f"After {STAGES[last][1]}. {days} {note}\n\n" + table(runs, last)
    for i in reversed(range(last)):
        text += f"\n## After {STAGES[i][1]}\n\n" + table(runs, i)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="runs/exp")
    ap.add_argument("--data", default="../shared/data/synthface")
    ap.add_argument("--out", default="results")
    ap.add_argument("--skip-figures", action="store_true")
    ap.add_argument("--shipped", default="deblur-gen",
                    choices=[f for f, _ in DEBLUR_ROWS if f.startswith("deblur-gen")],
                    help="the deblurring row the bundle ships (deblur-gen-keep-mean: bundled with keep_mean on)")
    ap.add_argument("--mask", default="mask", help="the mask generator's run folder (under --runs) the bundle ships")
    args = ap.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = stage_summary(runs, args.shipped, last_stage(runs, args.shipped)) or {"info": {}}
    where = (f"Data: {args.data} (SynthFace), the seed-0 test split, seeded degradations "
             f"(every row sees the same blurry faces). Machine: {info['info'].get('machine', platform.platform())}, "
             f"torch {torch.__version__}. Budget: configs/cpu.yaml; runs: scripts/experiments.sh.\n")
    mask_note = (f"The shipped bundle has the {day_of(str(runs / args.mask))} generator; the shipped SMFD-UNet was "
                 f"trained {_spans(shipped_run(runs, args.shipped), deblur_masks)}.")
    parts = {
        "deblurring.md": "# Deblurring (thesis Table 4.2 analogue)\n\n" + where + "\n" + by_stage(
            runs, (args.shipped, "deblur-gt-no-residual"), functools.partial(deblur_table, shipped=args.shipped),
            "Early stopping after 3 epochs without a better validation SSIM; the epochs column counts every day. "
            "keep_mean: the same weights with SMFD-UNet's parameter-free keep_mean option on "
            "(`smfd eval --model-option keep_mean=true`); options: the model options each row was scored with, its "
            "own or set at test time (pool_window: test-time local statistics)."),
        "masks.md": "# Mask generation (thesis Table 4.1 analogue)\n\n" + where.replace(
            "the seed-0 test split", "the seed-0 test split of the 3,000-face mask subset") + "\n" + by_stage(
            runs, tuple(f for f, _, _ in MASK_ROWS), mask_table, mask_note),
        "ablation.md": ("# Ablation (thesis Table 4.3 analogue), reduced scale\n\n" + where
                        + "Reduced scale: 480 training faces x 2 epochs per variant, ground-truth masks, 40 test "
                          "faces. Every variant has the global residual of configs/cpu.yaml (NAFNet-style: output "
                          "= blurry input + network output) except the last row, the thesis-exact net.\n\n"
                        + ablation_table(runs)),
        "cv.md": ("# 5-fold cross-validation (thesis Table 4.4 analogue), reduced scale\n\n" + where
                  + "Reduced scale: 480 training faces x 2 epochs per fold, ground-truth masks, 20 test faces.\n\n"
                  + cv_table(runs)),
    }
    parts["card.json"] = json.dumps(model_card(runs, args.shipped, args.mask), indent=1) + "\n"
    for name, text in parts.items():
        atomic_write_bytes(out / name, text.encode())
        print(f"wrote {out / name}")
    if not args.skip_figures:
        comparison_grid(runs, args.data, out / "comparison.jpg", shipped=args.shipped, mask_run=args.mask)
        for names, png in ((("mask", "mask-unet", "mask-unetpp"), "curves_masks.png"),
                           (("deblur-gen", "deblur-gt", "deblur-nomask", "nafnet"), "curves_deblur.png")):
            latest = [latest_run(runs, r) for r in names]
            plot_curves([r for r in latest if (r / "metrics.csv").is_file()], out / png)
        print(f"wrote {out / 'comparison.jpg'}, curves_masks.png, curves_deblur.png")


if __name__ == "__main__":
    main()
