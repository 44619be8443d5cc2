"""eval, cv, ablate and the figures through the real CLI, on tiny data."""

import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch

from helpers import TINY_MODEL, make_face_folder, tiny_args
from smfd.data import read_image


def test_eval_a_run_and_the_input(tmp_path, run_cli):
    data = make_face_folder(tmp_path / "faces", n=12, size=96)
    run = tmp_path / "run"
    assert run_cli(["train", "deblur", "--data", str(data), "-o", str(run), *tiny_args(1),
                    "--set", "data.size=96"]).code == 0
    res = run_cli(["eval", "--model", str(run), "--data", str(data)])
    assert res.code == 0, res.err
    summary = json.loads((run / "eval-test" / "summary.json").read_text())
    assert summary["info"]["n_images"] == 2 and summary["info"]["split_source"].endswith("split.json")
    assert {"psnr", "ssim", "mse", "niqe"} <= set(summary["metrics"])
    assert summary["info"]["lpips"] == "n/a"
    assert read_image(run / "eval-test" / "examples.png").shape[1] > 4 * 256
    again = run_cli(["eval", "--model", str(run), "--data", str(data)])
    assert again.code == 1 and "--overwrite" in again.err
    res = run_cli(["eval", "--model", "input", "--data", str(data), "-o", str(tmp_path / "blurry")])
    assert res.code == 0, res.err
    with open(tmp_path / "blurry" / "per_image.csv", newline="") as f:
        first = list(csv.DictReader(f))
    assert len(first) == 2
    # another seed draws the test faces' degradations again (the same seed: the same faces, byte for byte)
    res = run_cli(["eval", "--model", "input", "--data", str(data), "-o", str(tmp_path / "seed1"), "--seed", "1"])
    assert res.code == 0, res.err
    with open(tmp_path / "seed1" / "per_image.csv", newline="") as f:
        other = list(csv.DictReader(f))
    assert [r["id"] for r in other] == [r["id"] for r in first] and other != first
    assert json.loads((tmp_path / "seed1" / "summary.json").read_text())["info"]["degradation_seed"] == 1
    res = run_cli(["eval", "--model", str(run), "--data", str(data), "-o", str(tmp_path / "kept"),
                   "--model-option", "keep_mean=true"])
    assert res.code == 0, res.err
    assert json.loads((tmp_path / "kept" / "summary.json").read_text())["info"]["model_options"] == {"keep_mean": True}
    bad = run_cli(["eval", "--model", str(run), "--data", str(data), "-o", str(tmp_path / "x"), "--model-option", "k"])
    assert bad.code == 2 and "--model-option expects key=value" in bad.err
    bad = run_cli(["eval", "--model", str(run), "--data", str(data), "-o", str(tmp_path / "x"),
                   "--model-option", "colour=blue"])
    assert bad.code == 1 and "bad options" in bad.err and not (tmp_path / "x").exists()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # an infinite PSNR must not reach numpy's SD
def test_eval_pred_vs_gt_folders(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    for i in range(3):
        img = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / "gt" / f"{i}.png"), img)
        cv2.imwrite(str(tmp_path / "pred" / f"{i}.png"), img if i else 255 - img)
    cv2.imwrite(str(tmp_path / "pred" / "stray.png"), img)
    res = run_cli(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "-o", str(tmp_path / "o")])
    assert res.code == 1 and "stray.png" in res.err  # scored the rest, reported the unpaired file
    rows = {r["id"]: r for r in csv.DictReader((tmp_path / "o" / "per_image.csv").read_text().splitlines())}
    assert set(rows) == {"0", "1", "2"} and rows["1"]["psnr"] == "inf" and float(rows["0"]["psnr"]) < 10
    psnr = json.loads((tmp_path / "o" / "summary.json").read_text())["metrics"]["psnr"]
    assert math.isinf(psnr["mean"]) and math.isnan(psnr["sd"]) and psnr["n"] == 3


def test_mask_eval_dice(tmp_path, run_cli):
    data = make_face_folder(tmp_path / "faces", n=12, size=32)
    run = tmp_path / "m"
    assert run_cli(["train", "mask", "--data", str(data), "-o", str(run), *tiny_args(1)]).code == 0
    res = run_cli(["eval", "--model", str(run), "--data", str(data)])
    assert res.code == 0, res.err
    summary = json.loads((run / "eval-test" / "summary.json").read_text())
    metrics, confusion = summary["metrics"], np.array(summary["info"]["confusion"])
    assert 0 <= metrics["dice"]["mean"] <= 1 and "jaccard_3" in metrics
    assert confusion.shape == (5, 5) and confusion.sum() == 2 * 256 * 256  # each pixel of 2 faces (256 px)
    # the diagonal is what the per-class scores count: a class with a correct pixel has a positive Dice somewhere
    per_image = list(csv.DictReader((run / "eval-test" / "per_image.csv").read_text().splitlines()))
    for c in range(5):
        assert (confusion[c, c] > 0) == any(r[f"dice_{c}"] not in ("", "0") and float(r[f"dice_{c}"]) > 0
                                            for r in per_image)
    assert "true \\ predicted" in (run / "eval-test" / "summary.md").read_text()


def test_cv_and_ablation_tables(tmp_path, run_cli):
    data = make_face_folder(tmp_path / "faces", n=15, size=32)
    sets = ["--set", "epochs=1", "--set", "batch_size=4", "--set", "data.size=32", "--set", "data.num_workers=0",
            "--set", TINY_MODEL]
    res = run_cli(["cv", "mask", "--data", str(data), "-o", str(tmp_path / "cv"), "--folds", "3", *sets])
    assert res.code == 0, res.err
    table = (tmp_path / "cv" / "cv.md").read_text()
    assert "| 3 |" in table and "mean ± SD" in table and (tmp_path / "cv" / "fold2" / "best.pt").is_file()
    res = run_cli(["ablate", "--data", str(data), "-o", str(tmp_path / "abl"), *sets])
    assert res.code == 0, res.err
    rows = list(csv.DictReader(open(tmp_path / "abl" / "ablation.csv", newline="")))
    assert [r["model"] for r in rows] == ["smfd_unet_no_mask", "smfd_unet_plain_up", "smfd_unet_transpose_up",
                                          "smfd_unet_no_post", "smfd_unet"]
    assert all(0 < float(r["test_ssim"]) <= 1 for r in rows)


def test_figures(tmp_path, run_cli):
    data = make_face_folder(tmp_path / "faces", n=12, size=32)
    run = tmp_path / "run"
    assert run_cli(["train", "mask", "--data", str(data), "-o", str(run), *tiny_args(2)]).code == 0
    assert run_cli(["report", "curves", str(run), "-o", str(tmp_path / "c.png")]).code == 0
    assert read_image(tmp_path / "c.png").shape[0] > 100
    res = run_cli(["report", "features", "--model", str(run), "--image", str(data / "images" / "00000.png"),
                   "-o", str(tmp_path / "f.png")])
    assert res.code == 0, res.err
    assert read_image(tmp_path / "f.png").shape[1] > 500
    res = run_cli(["report", "features", "--model", str(run), "--image", str(data / "images" / "00000.png"),
                   "--model-option", "work_size=16", "-o", str(tmp_path / "f16.png")])
    assert res.code == 0, res.err
    assert not (read_image(tmp_path / "f16.png") == read_image(tmp_path / "f.png")).all()  # the net ran at 16 px
    res = run_cli(["report", "features", "--model", str(run), "--image", str(data / "images" / "00000.png"),
                   "--model-option", "bogus", "-o", str(tmp_path / "g.png")])
    assert res.code != 0 and "--model-option" in res.err and not (tmp_path / "g.png").exists()


def test_feature_maps_show_the_channel_that_varies_most():
    from smfd.report.figures import _feature_to_image, strongest_channel

    t = torch.zeros(8, 4, 4)
    t[5] = torch.arange(16.0).reshape(4, 4)  # the only channel with structure; channel 0 is a dead ReLU map
    t[2] = 7.0  # constant: large but flat
    assert strongest_channel(t) == 5
    img = _feature_to_image(t)
    assert img.shape == (4, 4, 3) and img[0, 0, 0] == 0 and img[3, 3, 0] == 255


def test_curves_join_a_run_to_the_run_it_continues(tmp_path):
    from smfd.report.figures import plot_curves, run_chain, run_history

    def fake_run(name, epochs, init=""):
        run = tmp_path / name
        run.mkdir()
        (run / "config.yaml").write_text(f"task: deblur\nmodel:\n  name: smfd_unet\n  init: '{init}'\n")
        rows = ["epoch,lr,train_loss,val_psnr,val_loss"] + [f"{e},0.001,{1 / e},{20 + e},{1 / e}" for e in epochs]
        (run / "metrics.csv").write_text("\n".join(rows) + "\n")
        return run

    first = fake_run("first", [1, 2, 3])
    second = fake_run("second", [1, 2], init=str(first / "best.safetensors"))
    assert run_chain(second) == [first, second]
    rows, starts = run_history(second)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5] and starts == [3]
    assert [r["val_psnr"] for r in rows] == [21, 22, 23, 21, 22]
    other = fake_run("other", [1], init=str(tmp_path / "weights.safetensors"))  # a bundle, not a run: no chain
    assert run_history(other) == ([{"epoch": 1, "lr": 0.001, "train_loss": 1.0, "val_psnr": 21.0, "val_loss": 1.0}], [])
    assert read_image(plot_curves([second, other], tmp_path / "c.png")).shape[0] > 100
