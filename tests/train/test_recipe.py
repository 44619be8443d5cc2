"""The whole-face recipe's pieces: frequency and Charbonnier losses, AdamW + cosine over a time budget, the EMA
that is validated and saved, the degradation family in the config, and what a resume carries over."""

import csv

import pytest
import torch

from helpers import TINY_MODEL
from smfd.models.io import load_weights
from smfd.train import load_checkpoint, load_config, schedule
from smfd.train import loop as loop_mod


def _cfg(root, task="deblur", **sets):
    items = ["batch_size=4", "data.size=32", "data.num_workers=0", *(f"{k}={v}" for k, v in sets.items())]
    if task == "deblur" and "model.name" not in sets:
        items.append(TINY_MODEL)
    return load_config(None, task, items, **{"data.root": str(root)})


def _rows(run):
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_losses():
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    assert loop_mod.fft_l1(x, x).item() == 0 and loop_mod.fft_l1(x, y).item() > 0
    assert loop_mod.charbonnier(x, x).item() == pytest.approx(1e-3)
    assert loop_mod.charbonnier(x, y).item() == pytest.approx((x - y).abs().mean().item(), abs=1e-3)


def test_cosine_lr():
    assert schedule.cosine_lr(1e-3, 0, 0) == pytest.approx(1e-3)
    assert schedule.cosine_lr(1e-3, 0, 0.5) == pytest.approx(5e-4)
    assert schedule.cosine_lr(1e-3, 1e-6, 1.0) == pytest.approx(1e-6)
    assert schedule.cosine_lr(1e-3, 1e-6, 7.0) == pytest.approx(1e-6)  # past the budget: the floor


def test_config_checks_the_new_keys(tiny_data):
    for key, value, match in (("precision", "fp16", "auto, bf16, fp32"), ("optim.name", "sgd", "adam or adamw"),
                              ("scheduler.name", "step", "plateau or cosine"), ("loss", "ssim", "charbonnier"),
                              ("data.degradation", "gan", "realistic, lowres, mixed"), ("ema", 1.5, "ema"),
                              ("budget_minutes", 0, "budget_minutes")):
        with pytest.raises(ValueError, match=match):
            _cfg(tiny_data, **{key: value})


def test_cosine_epochs_ema_fft_and_mixed_degradation_run(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, epochs=3, loss="charbonnier", fft_loss=0.1, ema=0.9, **{
        "optim.name": "adamw", "scheduler.name": "cosine", "scheduler.min_lr": 0, "data.degradation": "mixed",
        "model.name": "nafnet_mask", "model.kwargs": "{width: 4, mask_width: 4, middle_blocks: 1}"})
    run = tmp_path / "run"
    loop_mod.fit(cfg, run, progress=False)
    rows = _rows(run)
    lrs = [float(r["lr"]) for r in rows]
    assert len(rows) == 3 and lrs[0] > lrs[1] > lrs[2]  # decays every step, not on plateaus
    last = load_checkpoint(run / "last.pt")
    assert last["ema_state_dict"] is not None and last["train_seconds"] > 0
    saved = load_weights(run / "best.safetensors").module.state_dict()
    best = load_checkpoint(run / "best.pt")
    ema_keys = [k for k in saved if k.endswith("weight")]
    # the file holds the averaged weights, not the raw ones
    assert all(torch.equal(saved[k], best["ema_state_dict"][k]) for k in ema_keys)
    assert not all(torch.equal(saved[k], best["state_dict"][k]) for k in ema_keys)
    assert last["ema_averaged"] == int(rows[-1]["steps"]) > 0


def test_ema_warms_up_and_a_restored_average_is_not_overwritten():
    assert schedule.ema_decay(0.998, 0) == pytest.approx(0.1)
    assert schedule.ema_decay(0.998, 100) == pytest.approx(101 / 110)
    assert schedule.ema_decay(0.998, 100_000) == 0.998
    net = torch.nn.Linear(2, 2)
    ema = schedule.make_ema(net, 0.5)
    with torch.no_grad():
        ema.module.weight.fill_(1.0)  # a restored average
        net.weight.fill_(3.0)
    ema.n_averaged.fill_(1000)  # as a resume sets it: the update blends instead of copying the live weights
    ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, torch.full((2, 2), 2.0))


def test_time_budget_stops_mid_epoch_and_a_resume_keeps_the_time_spent(tiny_data, tmp_path, monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(loop_mod.time, "monotonic", lambda: clock["t"])
    real = loop_mod._forward

    def slow_forward(*a, **k):  # every training step "takes" 20 s
        clock["t"] += 20
        return real(*a, **k)

    monkeypatch.setattr(loop_mod, "_forward", slow_forward)
    cfg = _cfg(tiny_data, epochs=50, budget_minutes=1, **{"scheduler.name": "cosine"})
    run = tmp_path / "run"
    loop_mod.fit(cfg, run, progress=False)  # 3 train steps (2 per epoch) spend the minute
    rows = _rows(run)
    assert len(rows) == 2 and float(rows[-1]["train_minutes"]) >= 1
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["train_seconds"] >= 60
    cfg = _cfg(tiny_data, epochs=50, budget_minutes=2, **{"scheduler.name": "cosine"})
    loop_mod.fit(cfg, run, resume=True, progress=False)  # a longer budget: one more minute, not two
    assert 2 <= float(_rows(run)[-1]["train_minutes"]) < 2.7 and len(_rows(run)) == 4


def test_time_checkpoint_within_an_epoch_resumes_at_the_next_batch(tiny_data, tmp_path, monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(loop_mod.time, "monotonic", lambda: clock["t"])
    real = loop_mod._forward

    def recording(trained, kill_at=None):  # every training step "takes" 20 s; the one after kill_at is killed
        def forward(runner, batch, *a, **k):
            if runner.module.training:
                if len(trained) == kill_at:
                    raise KeyboardInterrupt
                clock["t"] += 20
                trained.append(tuple(batch["path"]))
            return real(runner, batch, *a, **k)
        return forward

    cfg = _cfg(tiny_data, epochs=1, batch_size=2, checkpoint_minutes=0.5, **{"scheduler.name": "cosine"})
    killed, whole, resumed = [], [], []
    monkeypatch.setattr(loop_mod, "_forward", recording(whole))
    loop_mod.fit(cfg, tmp_path / "whole", progress=False)
    assert len(whole) >= 4

    run = tmp_path / "run"
    monkeypatch.setattr(loop_mod, "_forward", recording(killed, kill_at=3))
    with pytest.raises(KeyboardInterrupt):
        loop_mod.fit(cfg, run, progress=False)
    assert killed == whole[:3]  # the same seeded order
    ckpt = load_checkpoint(run / "last.pt")  # written after the 2nd batch (40 s >= 30 s), not after the 3rd
    assert (ckpt["epoch"], ckpt["epoch_batches"], ckpt["steps"]) == (0, 2, 2)
    assert f"epoch 1: batch 2/{len(whole)}, 2 steps" in (run / "train.log").read_text()  # progress off a terminal
    assert ckpt["train_seconds"] == pytest.approx(40)
    assert not (run / "metrics.csv").exists()

    monkeypatch.setattr(loop_mod, "_forward", recording(resumed))
    loop_mod.fit(cfg, run, resume=True, progress=False)
    assert resumed == whole[2:]  # the rest of the epoch from its 3rd batch: nothing trained twice or left out
    rows = _rows(run)
    assert len(rows) == 1 and int(rows[0]["steps"]) == len(whole)
    assert "epoch_batches" not in load_checkpoint(run / "last.pt")  # the epoch's own checkpoint


def test_checkpoint_minutes_must_be_positive(tiny_data):
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        _cfg(tiny_data, checkpoint_minutes=0)
