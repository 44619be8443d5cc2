"""Precision and memory format: the allowed values, the fallback without native bf16, and what bf16 and
channels_last change in the numbers (the shipped bundle on the sample faces; a short training run)."""

import copy

import numpy as np
import pytest
import torch

import smfd
from smfd import precision as prec_mod
from smfd.data import FaceFolder
from smfd.degrade import DegradationPipeline
from smfd.models import Runner
from smfd.samples import samples_dir


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def blurry_samples():
    folder = FaceFolder(samples_dir())
    return [DegradationPipeline()(folder.read(i)[0], np.random.default_rng([0, k]))[0]
            for k, i in enumerate(folder.ids)]


def test_unknown_precision_is_an_error_naming_the_allowed_values():
    for bad in ("fp16", "float32", ""):
        with pytest.raises(ValueError, match="auto, bf16, fp32"):
            prec_mod.resolve_precision(bad)
    with pytest.raises(ValueError, match="auto, bf16, fp32"):
        smfd.load_pipeline(precision="fp16")


def test_bf16_without_native_support_falls_back_to_fp32_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(prec_mod, "_cpu_flags", lambda: frozenset({"avx2"}))
    with caplog.at_level("WARNING", logger="smfd"):
        assert prec_mod.resolve_precision("bf16", "cpu") == "fp32"
    assert len(caplog.records) == 1 and "no native bf16" in caplog.records[0].getMessage()
    assert prec_mod.resolve_precision("auto", "cpu") == "fp32"


def test_auto_picks_bf16_where_the_cpu_does_it_natively(monkeypatch):
    monkeypatch.setattr(prec_mod, "_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert prec_mod.resolve_precision("auto", "cpu") == "bf16"
    assert prec_mod.resolve_precision("fp32", "cpu") == "fp32"
    assert prec_mod.autocast("bf16", "cpu").fast_dtype == torch.bfloat16


def test_fp32_channels_last_matches_the_plain_nchw_nets_on_the_sample_faces(blurry_samples):
    """precision=fp32 (channels_last) against the same weights run as before: contiguous NCHW, no autocast."""
    pipe = smfd.load_pipeline(precision="fp32")
    assert pipe.precision == "fp32"
    outs, _ = pipe.restore_faces(blurry_samples)
    mask_net, deblur_net = (Runner(copy.deepcopy(r.module).to(memory_format=torch.contiguous_format), r.spec)
                            for r in (pipe.mask_net, pipe.deblur_net))  # fp32, NCHW
    for lq_img, out in zip(blurry_samples, outs, strict=True):
        lq = torch.from_numpy(lq_img).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            probs = mask_net.probabilities(lq)  # at the mask net's working size
            ref = deblur_net(lq, probs).clamp(0, 1)  # with its inference steps
        ref = (ref[0] * 255).round().byte().permute(1, 2, 0).numpy()
        assert _psnr(out, ref) >= 60


@pytest.mark.slow
def test_bf16_agrees_with_fp32_on_the_sample_faces(blurry_samples, monkeypatch):
    """The shipped bundle's outputs (uint8, as users get them) under bf16 autocast vs fp32: >= 40 dB PSNR.
    bf16 is forced on here, so the test runs (emulated, slowly) where the CPU lacks it."""
    fp32, _ = smfd.load_pipeline(precision="fp32", batch_size=8).restore_faces(blurry_samples)
    monkeypatch.setattr(prec_mod, "native_bf16", lambda device="cpu": True)
    pipe = smfd.load_pipeline(precision="bf16", batch_size=8)
    assert pipe.precision == "bf16"
    bf16, _ = pipe.restore_faces(blurry_samples)
    scores = [_psnr(a, b) for a, b in zip(bf16, fp32, strict=True)]
    assert min(scores) >= 40, scores
    assert any(not np.array_equal(a, b) for a, b in zip(bf16, fp32, strict=True))  # bf16 really ran


def test_bf16_training_lowers_its_loss_like_fp32(tiny_data, tmp_path, monkeypatch):
    from helpers import TINY_MODEL
    from smfd.train import load_config
    from smfd.train import loop as loop_mod

    monkeypatch.setattr(prec_mod, "native_bf16", lambda device="cpu": True)
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(None, "deblur", ["batch_size=4", "data.size=32", "data.num_workers=0", TINY_MODEL,
                                           "epochs=6", "early_stop=10", "loss=l1", f"precision={precision}",
                                           "data.augment=false", "seed=1"],
                          **{"data.root": str(tiny_data)})
        loop_mod.fit(cfg, tmp_path / precision, progress=False)
        with open(tmp_path / precision / "metrics.csv") as f:
            rows = f.read().splitlines()[1:]
        losses[precision] = [float(r.split(",")[2]) for r in rows]
        assert (tmp_path / precision / "train.log").read_text().count(f"cpu, {precision}") == 1
    for precision, curve in losses.items():
        assert curve[-1] < 0.8 * curve[0], (precision, curve)
    assert losses["bf16"][-1] == pytest.approx(losses["fp32"][-1], rel=0.25)


def test_cli_rejects_an_unknown_precision(run_cli, tmp_path):
    img = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    res = run_cli(["deblur", str(img), "-o", str(tmp_path / "out"), "--aligned", "--precision", "fp16"])
    assert res.code == 2 and "auto, bf16, fp32" in res.err and res.err.count("\n") == 1
    assert not (tmp_path / "out").exists()
