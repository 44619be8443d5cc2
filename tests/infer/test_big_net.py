"""A bundle's second deblurring net for big faces (``deblur_big``): crops restored above the training size go
through it, smaller ones through the deblurring net, in every backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import smfd
from helpers import TINY_KWARGS
from smfd.infer.weights import make_bundle
from smfd.models import build

NAF = {"width": 4, "middle_blocks": 1}  # pools over its whole input: the export gets a windows graph


def _nets(seed: int = 0):
    torch.manual_seed(seed)
    mask = build("mask_generator", **TINY_KWARGS)
    small, big = build("nafnet", **NAF), build("nafnet", **NAF)
    for net in (small, big):  # NAFNet starts as the identity; make each do something of its own
        for p in net.module.parameters():
            torch.nn.init.normal_(p, std=0.1)
    return mask, small, big


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    mask, small, big = _nets()
    make_bundle(mask, small, root / "both", card={"status": "test"}, big_net=big)
    make_bundle(mask, small, root / "small", card={"status": "test"})
    make_bundle(mask, big, root / "big", card={"status": "test"})
    return root


def _faces(side: int, n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(side)
    return [rng.integers(0, 256, (side, side, 3)).astype(np.uint8) for _ in range(n)]


def test_crops_worked_above_the_training_size_go_through_the_big_net(bundles):
    both = smfd.load_pipeline(str(bundles / "both"), precision="fp32")
    small = smfd.load_pipeline(str(bundles / "small"), precision="fp32")
    big = smfd.load_pipeline(str(bundles / "big"), precision="fp32")
    assert small.big_net is None and both.big_net is not None
    manifest = json.loads((bundles / "both" / "manifest.json").read_text())
    assert manifest["files"]["deblur_big"]["file"] == "nafnet-big.safetensors"
    for side, like, unlike in ((256, small, big), (320, big, small)):  # 256: as trained; 320: worked at 320
        faces = _faces(side)
        got = both.restore_faces(faces, mask=False)[0]
        assert all(np.array_equal(g, w) for g, w in zip(got, like.restore_faces(faces, mask=False)[0], strict=True))
        assert not np.array_equal(got[0], unlike.restore_faces(faces, mask=False)[0][0])
    # a photo's face, an aligned crop, a video frame: every caller restores through restore_faces; the rule is one
    assert both.net_for((1, 3, 256, 200)) is both.deblur_net and both.net_for((1, 3, 200, 264)) is both.big_net


def test_a_bundle_refuses_a_big_net_that_is_not_a_deblurring_net_or_fails_its_checksum(bundles, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(bundles / "both", bad)
    path = bad / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["deblur_big"] = {**manifest["files"]["mask"]}  # the mask net named as the big-face net
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="holds a mask net .* deblur_big net"):
        smfd.load_pipeline(str(bad))
    shutil.copy(bundles / "both" / "manifest.json", path)
    (bad / "nafnet-big.safetensors").write_bytes((bad / "nafnet.safetensors").read_bytes())
    with pytest.raises(ValueError, match="nafnet-big.safetensors"):
        smfd.load_pipeline(str(bad))
    manifest["files"]["extra"] = manifest["files"]["mask"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="holds the nets mask, deblur .and optionally deblur_big., this one .*extra"):
        smfd.load_pipeline(str(bad))


def test_the_onnx_export_holds_the_big_net_with_parity(bundles, tmp_path):
    pytest.importorskip("onnxruntime")
    from smfd.infer.export import export_onnx

    manifest = export_onnx(str(bundles / "both"), tmp_path / "onnx")
    entry = manifest["files"]["deblur_big"]
    assert entry["file"] == "nafnet-big.onnx" and entry["windows"]["file"] == "nafnet-big-windows.onnx"
    torch_pipe = smfd.load_pipeline(str(bundles / "both"), precision="fp32")
    onnx_pipe = smfd.load_pipeline(str(tmp_path / "onnx"))
    assert onnx_pipe.big_net is not None and onnx_pipe.onnx
    for side in (64, 320):
        lq = torch.from_numpy(np.stack(_faces(side))).permute(0, 3, 1, 2).float() / 255
        out_t, _ = torch_pipe._run(lq, with_mask=False)
        out_o, _ = onnx_pipe._run(lq, with_mask=False)
        assert (out_t - out_o).abs().max().item() < 1e-4
    path = tmp_path / "onnx" / "manifest.json"
    path.write_text(path.read_text().replace('"smfd-onnx-7"', '"smfd-onnx-99"'))
    with pytest.raises(ValueError, match="exported by a newer smfd .smfd-onnx-99"):
        smfd.load_pipeline(str(tmp_path / "onnx"))
    export_onnx(str(bundles / "small"), tmp_path / "six")  # an export made before big-face nets still loads
    path = tmp_path / "six" / "manifest.json"
    path.write_text(path.read_text().replace('"smfd-onnx-7"', '"smfd-onnx-6"'))
    assert smfd.load_pipeline(str(tmp_path / "six")).big_net is None


def test_smfd_bundle_takes_a_big_face_net(bundles, tmp_path, run_cli):
    src = bundles / "both"
    res = run_cli(["bundle", "--mask", str(src / "mask_generator.safetensors"), "--deblur",
                   str(src / "nafnet.safetensors"), "--deblur-big", str(src / "nafnet-big.safetensors"),
                   "-o", str(tmp_path / "b")])
    assert res.code == 0, res.err
    assert "deblur_big:" in res.out
    made = json.loads((tmp_path / "b" / "manifest.json").read_text())["files"]
    assert made["deblur_big"]["sha256"] == json.loads((src / "manifest.json").read_text())["files"]["deblur_big"][
        "sha256"]
    assert "deblur_big" in (tmp_path / "b" / "MODEL_CARD.md").read_text()


def test_a_big_net_that_reads_the_mask_runs_the_mask_net_only_for_big_crops(tmp_path):
    mask, small, _ = _nets()
    torch.manual_seed(1)
    reader = build("nafnet_mask", **NAF, mask_width=4)
    make_bundle(mask, small, tmp_path / "b", card={"status": "test"}, big_net=reader)
    pipe = smfd.load_pipeline(str(tmp_path / "b"), precision="fp32")
    calls = []
    real = pipe.mask_net.probabilities
    pipe.mask_net.probabilities = lambda x: calls.append(tuple(x.shape[-2:])) or real(x)
    pipe.restore_faces(_faces(64) + _faces(320), mask=False)
    assert calls == [(320, 320)] * 2  # one a crop (a batch a crop on a CPU); the 64 px crops skip it
    assert pipe.needs_mask_net(False) and not pipe.needs_mask_net(False, shape=(1, 3, 64, 64))
    # kept regions come from the input on big crops too, through the big net
    restored, masks = pipe.restore_faces(_faces(320), keep=list(range(5)))
    assert all(np.array_equal(r, f) for r, f in zip(restored, _faces(320), strict=True))
    wrong = build("nafnet_mask", **NAF, mask_width=4, mask_channels=3)
    make_bundle(mask, small, tmp_path / "w", card={"status": "test"}, big_net=wrong)
    with pytest.raises(ValueError, match="nafnet_mask expects 3 mask channels, the mask net gives 5"):
        smfd.load_pipeline(str(tmp_path / "w"))
    assert smfd.load_pipeline(str(tmp_path / "w"), max_work_size=256).big_net is None  # never used: not loaded
