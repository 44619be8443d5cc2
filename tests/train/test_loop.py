"""The protocol pieces with tiny data: plateau LR drop, early stop, best checkpoint, resume, NaN stop."""

import csv
import json

import pytest
import torch

from helpers import TINY_MODEL
from smfd.models.io import load_weights
from smfd.train import load_checkpoint, load_config
from smfd.train import loop as loop_mod


def _cfg(root, **sets):
    items = ["batch_size=4", "data.size=32", "data.num_workers=0", TINY_MODEL, *(f"{k}={v}" for k, v in sets.items())]
    return load_config(None, "mask", items, **{"data.root": str(root)})


def _rows(run):
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _fake_metrics(monkeypatch, values):
    it = iter(values)
    monkeypatch.setattr(loop_mod, "evaluate", lambda *a, **k: {"dice": next(it), "jaccard": 0.0, "loss": 0.0})


def test_lr_drops_on_plateau_and_early_stopping_fires(tiny_data, tmp_path, monkeypatch):
    _fake_metrics(monkeypatch, [0.5] * 10)
    cfg = _cfg(tiny_data, epochs=10, early_stop=3, **{"scheduler.patience": 1})
    res = loop_mod.fit(cfg, tmp_path / "run", progress=False)
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "run")]
    # epoch 1 sets the best; epochs 2-3 are bad (3 > patience 1: drop to 20 %); epoch 4 is the 3rd bad: stop
    assert lrs == pytest.approx([1e-3, 1e-3, 2e-4, 2e-4])
    assert res.stopped_early and res.epochs_run == 4 and res.best_epoch == 1


def test_lr_floor(tiny_data, tmp_path, monkeypatch):
    _fake_metrics(monkeypatch, [0.5] * 6)
    cfg = _cfg(tiny_data, epochs=6, early_stop=10, **{"scheduler.patience": 0, "scheduler.min_lr": 1e-4})
    loop_mod.fit(cfg, tmp_path / "run", progress=False)
    assert float(_rows(tmp_path / "run")[-1]["lr"]) == pytest.approx(1e-4)


def test_best_checkpoint_is_kept(tiny_data, tmp_path, monkeypatch):
    _fake_metrics(monkeypatch, [0.3, 0.7, 0.5])
    run = tmp_path / "run"
    res = loop_mod.fit(_cfg(tiny_data, epochs=3), run, progress=False)
    best, last = load_checkpoint(run / "best.pt"), load_checkpoint(run / "last.pt")
    assert (res.best_epoch, best["epoch"], last["epoch"], best["best_metric"]) == (2, 2, 3, 0.7)
    weights = load_weights(run / "best.safetensors").module.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in best["state_dict"].items())
    assert not all(torch.equal(best["state_dict"][k], v) for k, v in last["state_dict"].items())


def test_resume_after_a_kill_continues_the_epoch_count(tiny_data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_epoch = loop_mod.train_one_epoch
    calls = {"n": 0}

    def dies_in_epoch_3(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_epoch(*a, **k)

    monkeypatch.setattr(loop_mod, "train_one_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        loop_mod.fit(_cfg(tiny_data, epochs=4), run, progress=False)
    assert load_checkpoint(run / "last.pt")["epoch"] == 2  # only the interrupted epoch is lost
    monkeypatch.setattr(loop_mod, "train_one_epoch", real_epoch)
    res = loop_mod.fit(load_config(run / "config.yaml", "mask"), run, resume=True, progress=False)
    assert [int(r["epoch"]) for r in _rows(run)] == [1, 2, 3, 4] and res.epochs_run == 4
    assert load_checkpoint(run / "last.pt")["epoch"] == 4


def test_a_finished_run_is_not_overwritten(tiny_data, tmp_path):
    run = tmp_path / "run"
    loop_mod.fit(_cfg(tiny_data, epochs=1), run, progress=False)
    with pytest.raises(FileExistsError, match="holds a run already"):
        loop_mod.fit(_cfg(tiny_data, epochs=1), run, progress=False)


def test_deblur_with_generated_masks(tiny_data, tmp_path):
    loop_mod.fit(_cfg(tiny_data, epochs=1), tmp_path / "gen", progress=False)
    cfg = load_config(None, "deblur", ["epochs=1", "batch_size=4", "data.size=32", "data.num_workers=0", TINY_MODEL],
                      **{"data.root": str(tiny_data), "mask_source": f"generator:{tmp_path / 'gen'}"})
    res = loop_mod.fit(cfg, tmp_path / "deblur", progress=False)
    assert res.epochs_run == 1 and 0 < res.best_metric < 1
    assert {"val_psnr", "val_ssim", "val_mse"} <= set(_rows(tmp_path / "deblur")[0])


def test_limited_folds_train_on_different_faces_and_never_on_their_validation_faces():
    from smfd.data import make_splits
    from smfd.train.datasets import limit_ids

    splits = make_splits([f"{i:04d}" for i in range(200)], seed=0)
    seen = []
    for k in range(5):
        cfg = load_config(None, "mask", [f"data.fold={k}", "data.train_limit=20", "data.val_limit=5"])
        train, val = limit_ids(*splits.fold(k), cfg)
        assert len(train) == 20 and len(val) == 5
        assert set(train).isdisjoint(splits.fold(k)[1]) and set(val) <= set(splits.fold(k)[1])
        assert (train, val) == limit_ids(*splits.fold(k), cfg)  # deterministic
        seen.append(frozenset(train))
    assert len(set(seen)) == 5


def test_init_starts_from_a_weights_file_and_refuses_another_model(tiny_data, tmp_path, monkeypatch):
    first = tmp_path / "first"
    loop_mod.fit(_cfg(tiny_data, epochs=1), first, progress=False)
    seen = {}
    real_epoch = loop_mod.train_one_epoch

    def spy(runner, *args, **kwargs):  # the weights the second run starts its first epoch with
        seen.setdefault("state", {k: v.clone() for k, v in runner.module.state_dict().items()})
        return real_epoch(runner, *args, **kwargs)

    monkeypatch.setattr(loop_mod, "train_one_epoch", spy)
    init = first / "best.safetensors"
    loop_mod.fit(_cfg(tiny_data, epochs=1, **{"model.init": str(init)}), tmp_path / "second", progress=False)
    start = load_weights(init).module.state_dict()
    assert all(torch.equal(seen["state"][k], v) for k, v in start.items())
    cfg = load_config(None, "deblur", ["batch_size=4", "data.size=32", "data.num_workers=0", f"model.init={init}"],
                      **{"data.root": str(tiny_data)})
    with pytest.raises(ValueError, match="holds mask_generator"):
        loop_mod.fit(cfg, tmp_path / "third", progress=False)


@pytest.mark.parametrize("crop, warns", [(16, False), (8, True)])
def test_pool_window_larger_than_the_crop_is_flagged(tiny_data, tmp_path, caplog, crop, warns):
    cfg = load_config(None, "deblur", ["epochs=1", "batch_size=4", "data.size=32", "data.num_workers=0", TINY_MODEL,
                                       "model.kwargs.pool_window=16", f"data.crop={crop}"],
                      **{"data.root": str(tiny_data)})
    with caplog.at_level("WARNING", logger="smfd"):
        res = loop_mod.fit(cfg, tmp_path / "run", progress=False)
    assert res.epochs_run == 1 and 0 < res.best_metric < 1  # validated on whole 32 px faces, 16 px windows
    assert ("pool_window=16 is larger than data.crop=8" in caplog.text) == warns


def test_compile_trains_a_compiled_step_and_saves_plain_weights(tiny_data, tmp_path, monkeypatch):
    seen = {}
    real_epoch = loop_mod.train_one_epoch

    def spy(runner, *args, **kwargs):
        seen["net"] = type(runner.net).__name__
        seen.setdefault("before", {k: v.clone() for k, v in runner.net._orig_mod.state_dict().items()})
        return real_epoch(runner, *args, **kwargs)

    monkeypatch.setattr(loop_mod, "train_one_epoch", spy)
    real_compile = torch.compile  # dynamo's graph capture without inductor's C++ build (minutes on a CPU)
    monkeypatch.setattr(torch, "compile", lambda net, **kw: real_compile(net, backend="eager", **kw))
    run = tmp_path / "run"
    loop_mod.fit(_cfg(tiny_data, epochs=1, compile="true", ema=0.9), run, progress=False)
    assert seen["net"] == "OptimizedModule"
    saved = load_checkpoint(run / "last.pt")["state_dict"]
    assert not any("_orig_mod" in k for k in saved)  # the eager net's names: it loads anywhere
    assert any(not torch.equal(saved[k], v) for k, v in seen["before"].items() if k in saved)  # it trained
    assert set(load_weights(run / "best.safetensors").module.state_dict()) == set(saved)


def _state(path):
    ckpt = load_checkpoint(path)
    return ckpt["state_dict"], ckpt["optimizer"]["state"], {k: ckpt[k] for k in ("epoch", "best_metric", "bad_epochs",
                                                                               "steps", "ema_averaged", "scheduler")}


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tiny_data, tmp_path):
    """Seeded per epoch, with the optimizer, schedule, EMA and counters restored: stopping after epoch 1 and
    resuming gives the same weights, optimizer state and metrics as training both epochs at once."""
    sets = {"epochs": 2, "ema": 0.9, "threads": 1, "precision": "fp32", "scheduler.patience": 0}
    whole, split = tmp_path / "whole", tmp_path / "split"
    loop_mod.fit(_cfg(tiny_data, **sets), whole, progress=False)
    loop_mod.fit(_cfg(tiny_data, **{**sets, "epochs": 1}), split, progress=False)
    res = loop_mod.fit(_cfg(tiny_data, **sets), split, resume=True, progress=False)
    assert res.epochs_run == 2
    (w_sd, w_opt, w_loop), (s_sd, s_opt, s_loop) = _state(whole / "last.pt"), _state(split / "last.pt")
    assert w_loop == s_loop and w_loop["steps"] > 0
    assert all(torch.equal(w_sd[k], s_sd[k]) for k in w_sd)
    assert all(torch.equal(w_opt[i][k], s_opt[i][k]) for i in w_opt for k in w_opt[i])
    timing = ("seconds", "train_minutes")
    assert [{k: v for k, v in r.items() if k not in timing} for r in _rows(whole)] == \
        [{k: v for k, v in r.items() if k not in timing} for r in _rows(split)]


def test_hires_only_trains_on_the_faces_the_larger_set_holds(tiny_data, tmp_path):
    import json

    import cv2

    from smfd.data import FaceFolder, make_splits
    from smfd.train.datasets import datasets

    folder = FaceFolder(tiny_data)
    splits = make_splits(folder.ids, seed=0, folds=2, test_fraction=0.2)
    train_ids = splits.fold(0)[0]
    hires = tmp_path / "hires"
    (hires / "images").mkdir(parents=True)
    for id in train_ids[:3] + splits.fold(0)[1]:  # three training faces and the validation faces
        img, _ = folder.read(id)
        cv2.imwrite(str(hires / "images" / f"{id}.png"), cv2.resize(img, (64, 64))[..., ::-1])
    sets = ["data.sizes=[48, 64]", "data.crop=32", f"data.hires={hires}", "data.degradation=mixed", "data.size=32"]
    every = load_config(None, "deblur", sets)
    assert len(datasets(every, folder, splits)[0]) == len(train_ids)
    only = load_config(None, "deblur", [*sets, "data.hires_only=true"])
    train, val = datasets(only, folder, splits)
    assert sorted(train.ids) == sorted(train_ids[:3]) and len(val) == len(splits.fold(0)[1])
    with pytest.raises(ValueError, match="hires_only needs data.hires"):
        load_config(None, "deblur", ["data.hires_only=true"])
    # validation on the faces a big-face net restores: read at 64 px, degraded there, the central window
    big = load_config(None, "deblur", [*sets, "data.hires_only=true", "data.val_size=64"])
    val = datasets(big, folder, splits)[1]
    item = val[0]
    assert item["lq"].shape == (3, 32, 32) and json.loads(item["params"]).get("face_scale") == 64 / 256
    assert torch.equal(val[0]["lq"], item["lq"])  # fixed, as validation is
    with pytest.raises(ValueError, match="data.val_size 512: .* not set"):
        load_config(None, "deblur", ["data.val_size=512"])


def test_the_realistic_ranges_of_the_training_faces_can_be_set_and_validation_keeps_the_defaults(tiny_data):
    from smfd.data import FaceFolder, make_splits
    from smfd.degrade import RealisticConfig
    from smfd.train.datasets import datasets

    folder = FaceFolder(tiny_data)
    splits = make_splits(folder.ids, seed=0, folds=2, test_fraction=0.2)
    cfg = load_config(None, "deblur", ["data.degradation=mixed", "data.realistic_share=1",
                                       "data.realistic={blur_weights: [1, 0, 0, 0], shake_size: [21, 21]}"])
    train, val = datasets(cfg, folder, splits)
    shaken = train.degradation.realistic.config
    assert shaken.blur_weights == (1, 0, 0, 0) and shaken.shake_size == (21, 21)
    assert val.degradation.realistic.config == RealisticConfig()  # validated as every other run is
    params = [json.loads(train[0]["params"]) for _ in range(6)]
    assert {p["blur"] for p in params} <= {"shake", "none"} and "shake" in {p["blur"] for p in params}
    with pytest.raises(ValueError, match="unknown config key data.realistic.blur_weight "):
        load_config(None, "deblur", ["data.degradation=mixed", "data.realistic={blur_weight: [1, 0, 0, 0]}"])
    with pytest.raises(ValueError, match="blur_weights must be 4 non-negative odds"):
        load_config(None, "deblur", ["data.degradation=mixed", "data.realistic={blur_weights: [0, 0, 0, 0]}"])
    with pytest.raises(ValueError, match="data.realistic applies to degradation realistic or mixed"):
        load_config(None, "deblur", ["data.realistic={jpeg_prob: 0.5}"])


def test_realistic_ranges_by_key_through_a_saved_config_and_for_the_realistic_family(tmp_path):
    from smfd.degrade import RealisticConfig, make_degradation
    from smfd.train.config import realistic_config, save_config

    cfg = load_config(None, "deblur", ["data.degradation=mixed", "data.realistic.jpeg_prob=0.5",
                                       "data.realistic.shake_size=[21, 33]"])
    assert realistic_config(cfg.data) == RealisticConfig(jpeg_prob=0.5, shake_size=(21, 33))
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml", "deblur")
    assert realistic_config(again.data) == realistic_config(cfg.data)
    every = make_degradation("realistic", realistic=RealisticConfig(blur_weights=(1, 0, 0, 0), clean_share=0.5))
    assert every.config == RealisticConfig(blur_weights=(1, 0, 0, 0), clean_share=0.0)  # every face degraded
    with pytest.raises(ValueError, match="clean_share applies to degradation mixed"):
        load_config(None, "deblur", ["data.degradation=realistic", "data.realistic.clean_share=0.5"])
    with pytest.raises(ValueError, match="data.realistic.jpeg_prob must be in"):
        load_config(None, "deblur", ["data.degradation=mixed", "data.realistic.jpeg_prob=2"])
