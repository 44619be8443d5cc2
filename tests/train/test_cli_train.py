import subprocess
import sys

import pytest

from helpers import tiny_args
from smfd.train import load_checkpoint
from smfd.train import loop as loop_mod


def test_train_cli_writes_a_run(tiny_data, tmp_path, run_cli):
    run = tmp_path / "run"
    res = run_cli(["train", "mask", "--data", str(tiny_data), "-o", str(run), *tiny_args(epochs=2)])
    assert res.code == 0, res.err
    assert {"config.yaml", "split.json", "metrics.csv", "last.pt", "best.pt", "best.safetensors"} <= {
        p.name for p in run.iterdir()}
    res = run_cli(["train", "mask", "--resume", str(run), "--set", "epochs=3"])
    assert res.code == 0, res.err
    assert load_checkpoint(run / "last.pt")["epoch"] == 3


def test_nan_loss_stops_cleanly(tiny_data, tmp_path, run_cli, monkeypatch):
    import torch

    real = loop_mod._loss
    calls = {"n": 0}

    def nan_in_epoch_2(*a, **k):
        calls["n"] += 1
        return real(*a, **k) if calls["n"] <= 2 else torch.tensor(float("nan"))  # 2 steps per epoch

    monkeypatch.setattr(loop_mod, "_loss", nan_in_epoch_2)
    run = tmp_path / "run"
    res = run_cli(["train", "mask", "--data", str(tiny_data), "-o", str(run), *tiny_args(epochs=3)])
    assert res.code == 1
    last_line = res.err.strip().splitlines()[-1]
    assert "loss became nan" in last_line and "epoch 2" in last_line and "Traceback" not in res.err
    assert load_checkpoint(run / "last.pt")["epoch"] == 1  # the last good state survives


def test_train_needs_data(run_cli):
    res = run_cli(["train", "mask"])
    assert res.code == 2 and "--data" in res.err


@pytest.mark.slow
def test_ddp_two_cpu_processes(tiny_data, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "smfd", "train", "mask", "--data", str(tiny_data), "-o", str(run), *tiny_args(epochs=1)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                               "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["epoch"] == 1
    assert "2 process(es)" in (run / "train.log").read_text()
