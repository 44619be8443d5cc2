import json

import cv2
import numpy as np
import pytest
import torch

import smfd
from helpers import TINY_KWARGS, make_tiny_bundle
from smfd.data.celebamask import parse_keep
from smfd.infer.pipeline import NoFaceError
from smfd.infer.weights import load_bundle
from smfd.samples import samples_dir


def test_aligned_batch_matches_single(bundle):
    pipe = smfd.load_pipeline(str(bundle), batch_size=4)
    faces = [np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8) for i in range(5)]
    outs, masks = pipe.restore_faces(faces)
    single = pipe.deblur(faces[3], aligned=True)
    assert len(outs) == 5 and outs[0].shape == (64, 64, 3) and masks[0].shape == (64, 64)
    assert np.abs(single.image.astype(int) - outs[3].astype(int)).max() <= 1  # batching changes nothing
    assert single.mask.max() <= 4 and single.faces == []


def test_batch_size_defaults_to_one_for_torch_on_cpu(bundle):
    assert smfd.load_pipeline(str(bundle)).batch_size == 1  # measured fastest there (results/speed_cpu.md)
    assert smfd.load_pipeline(str(bundle), batch_size=3).batch_size == 3
    with pytest.raises(ValueError, match="batch_size"):
        smfd.load_pipeline(str(bundle), batch_size=0)


def test_keep_regions_come_from_the_input(bundle):
    pipe = smfd.load_pipeline(str(bundle))
    face = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    plain = pipe.deblur(face, aligned=True)
    every_class = ",".join(smfd.data.CLASSES)
    kept = pipe.deblur(face, aligned=True, keep=every_class)
    assert np.abs(kept.image.astype(int) - face.astype(int)).max() <= 1  # keeping everything = the input
    assert not np.array_equal(plain.image, face)
    with pytest.raises(ValueError, match="unknown region 'beard'"):
        parse_keep("hair,beard")


def test_whole_photo_detects_aligns_and_pastes_back(tmp_path):
    pytest.importorskip("dlib")
    face = cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.copyMakeBorder(face, 60, 40, 120, 80, cv2.BORDER_CONSTANT, value=(90, 120, 150))
    pipe = smfd.load_pipeline(str(make_tiny_bundle(tmp_path / "bundle", favour_class=1)))  # masks all skin
    res = pipe.deblur(photo)
    assert res.image.shape == photo.shape and len(res.faces) == 1 and not res.faces[0].skipped
    changed = np.abs(res.image.astype(int) - photo.astype(int)).sum(2) > 0
    ys, xs = np.nonzero(changed)
    assert 100 < xs.mean() < 120 + 256 + 20 and 40 < ys.mean() < 60 + 256  # the face region changed ...
    assert not changed[:20].any() and not changed[:, :40].any()  # ... and the far background did not
    assert (res.mask > 0).sum() > 1000 and set(np.unique(res.mask)) == {0, 1}  # the face's mask, pasted back ...
    assert not res.mask[:20].any() and not res.mask[:, :40].any()  # ... where the face is


def test_no_face_and_small_faces(bundle):
    pytest.importorskip("dlib")
    pipe = smfd.load_pipeline(str(bundle), min_face=1000)
    face = cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)
    with pytest.raises(NoFaceError, match="below 1000 px"):
        pipe.deblur(face)
    with pytest.raises(NoFaceError, match="no face found") as e:
        smfd.load_pipeline(str(bundle)).deblur(np.full((200, 200, 3), 128, np.uint8))
    assert "--" not in str(e.value)  # the library's words: each front end adds its own hint


def test_errors_are_types_and_stay_value_errors(bundle):
    from smfd.errors import BadImage, BadOption, SmfdError
    from smfd.infer import pipeline

    assert pipeline.NoFaceError is smfd.NoFaceError and issubclass(NoFaceError, SmfdError)
    assert issubclass(SmfdError, ValueError)
    pipe = smfd.load_pipeline(str(bundle))
    with pytest.raises(BadOption, match="unknown region 'beard'"):
        pipe.deblur(np.zeros((64, 64, 3), np.uint8), aligned=True, keep="beard")
    with pytest.raises(BadImage, match=r"HxWx3 uint8 RGB, got \(64, 64\) uint8"):
        pipe.deblur(np.zeros((64, 64), np.uint8))
    with pytest.raises(BadOption, match="backend must be"):
        smfd.load_pipeline(str(bundle), backend="tensorflow")
    e = BadImage("file is empty", "a/b.jpg")
    assert str(e) == "a/b.jpg: file is empty" and e.reason == "file is empty"


def test_checksum_architecture_and_nan_errors(bundle, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from smfd.models.io import read_metadata

    bad = tmp_path / "corrupt"
    shutil.copytree(bundle, bad)
    f = bad / "smfd_unet.safetensors"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_bundle(bad)
    # right checksum, wrong contents: NaN weights and a foreign architecture
    for kind in ("nan", "arch"):
        d = tmp_path / kind
        shutil.copytree(bundle, d)
        f = d / "smfd_unet.safetensors"
        meta = read_metadata(f)
        state = load_file(str(f))
        if kind == "nan":
            k = next(k for k, v in state.items() if v.is_floating_point())
            state[k] = torch.full_like(state[k], float("nan"))
        else:
            state.pop(next(iter(state)))
        save_file(state, str(f), metadata=meta)
        manifest = json.loads((d / "manifest.json").read_text())
        from smfd.models.io import sha256_file

        manifest["files"]["deblur"]["sha256"] = sha256_file(f)
        (d / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ValueError, match="NaN" if kind == "nan" else "do not fit"):
            load_bundle(d)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_bundle(tmp_path)


# every kind of bundle: SMFD-UNet plain and as shipped (residual variant, keep_mean, local statistics, the mask
# net's working size), the residual no-mask ablation with local statistics, NAFNet with and without them, NAFNet + mask
NAF = {"width": 4, "middle_blocks": 1}
BUNDLE_KINDS = {  # name, the deblurring net's options, the mask net's
    "smfd_unet": ("smfd_unet", TINY_KWARGS, {}),
    "smfd_unet-shipped": ("smfd_unet", {**TINY_KWARGS, "residual": True, "keep_mean": True, "pool_window": 32},
                          {"work_size": 32}),
    "smfd_unet_no_mask-local": ("smfd_unet_no_mask", {**TINY_KWARGS, "residual": True, "pool_window": 32}, {}),
    "nafnet": ("nafnet", NAF, {}),
    "nafnet-local": ("nafnet", {**NAF, "pool_window": 32}, {}),
    "nafnet_mask": ("nafnet_mask", {**NAF, "mask_width": 4}, {"work_size": 32}),
}


@pytest.mark.parametrize("kind", list(BUNDLE_KINDS))
def test_onnx_export_is_the_whole_network_with_parity(tmp_path, kind):
    pytest.importorskip("onnxruntime")
    from smfd.infer.export import FORMAT, export_onnx
    from smfd.infer.weights import make_bundle
    from smfd.models import build

    name, kwargs, mask_kwargs = BUNDLE_KINDS[kind]
    torch.manual_seed(0)
    deblur = build(name, **kwargs)
    if name.startswith("nafnet"):
        for p in deblur.module.parameters():  # NAFNet starts as the identity; make it do something
            torch.nn.init.normal_(p, std=0.1)
    mask = build("mask_generator", **TINY_KWARGS, **mask_kwargs)
    make_bundle(mask, deblur, tmp_path / "b", card={"status": "test"})
    manifest = export_onnx(str(tmp_path / "b"), tmp_path / "onnx")
    steps = ["keep_mean"] if kwargs.get("keep_mean") else []
    assert manifest["files"]["deblur"]["steps"] == steps  # what runs outside the graphs is named
    assert manifest["files"]["deblur"]["post"] == ["crop to the input size", *steps]
    assert manifest["files"]["mask"]["post"][-1] == "softmax"
    assert any("resize to" in p for p in manifest["files"]["mask"]["pre"]) == bool(mask_kwargs.get("work_size"))
    torch_pipe = smfd.load_pipeline(str(tmp_path / "b"), precision="fp32")
    onnx_pipe = smfd.load_pipeline(str(tmp_path / "onnx"), backend="onnxruntime")
    rng = np.random.default_rng(1)
    # whole-input statistics in both graphs: the windows graph of a net that pools over its whole input is there
    assert ("windows" in manifest["files"]["deblur"]) == ("pool_window" not in kwargs)
    assert onnx_pipe.pool_window == torch_pipe.pool_window
    # a multiple of the stride, one that needs padding, one smaller than the local-statistics window, one larger
    # than the pipeline's window (the PyTorch net takes its statistics over 256 px windows there)
    for shape in ((64, 64, 3), (50, 70, 3), (20, 28, 3), (288, 576, 3)):
        ramp = np.linspace(0.1, 1.0, shape[1])[None, :, None]  # dark to bright: window statistics differ
        faces = [(rng.integers(0, 256, shape) * ramp).astype(np.uint8) for _ in range(2)]
        lq = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 255
        out_t, probs_t = torch_pipe._run(lq)
        out_o, probs_o = onnx_pipe._run(lq)
        assert (out_t - lq).abs().max() > 1e-3  # the net changes the image
        assert (out_t - out_o).abs().max().item() < 1e-4
        assert (probs_t - probs_o).abs().max().item() < 1e-5
    path = tmp_path / "onnx" / "manifest.json"
    path.write_text(path.read_text().replace(f'"{FORMAT}"', '"smfd-onnx-2"'))
    with pytest.raises(ValueError, match="older smfd .*export again"):  # its metadata would be read wrongly
        smfd.load_pipeline(str(tmp_path / "onnx"), backend="onnxruntime")


def test_the_shipped_default_weights_load_and_pass_their_checksums():
    pipe = smfd.load_pipeline()
    assert pipe.mask_net.spec.name == pipe.manifest["files"]["mask"]["model_name"]
    assert pipe.deblur_net.spec.name == pipe.manifest["files"]["deblur"]["model_name"]
    assert pipe.big_net is not None and pipe.big_net.spec.name == pipe.manifest["files"]["deblur_big"]["model_name"]
    assert pipe.manifest["dtype"] == "float16" and pipe.manifest["card"]["status"]
    out = pipe.deblur(np.zeros((64, 64, 3), np.uint8), aligned=True)
    assert out.image.shape == (64, 64, 3)




def test_an_oversized_aligned_crop_runs_at_the_working_size(bundle, monkeypatch):
    """A 4000x3000 'crop' once took 6 GB and minutes: the nets now see at most max_work_size pixels a side."""
    pipe = smfd.load_pipeline(str(bundle))
    seen = []
    real = pipe._run
    monkeypatch.setattr(pipe, "_run", lambda lq, *a: (seen.append(tuple(lq.shape)), real(lq, *a))[1])
    face = cv2.resize(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8), (1200, 900))
    res = pipe.deblur(face, aligned=True)
    assert seen == [(1, 3, 384, 512)]  # scaled to fit 512 px, aspect kept
    assert res.image.shape == face.shape and res.mask.shape == face.shape[:2]  # back at the input's size
    assert pipe.working_size(face.shape) == (384, 512) and pipe.working_size((200, 100, 3)) == (200, 100)
    kept = pipe.deblur(face, aligned=True, keep=",".join(smfd.data.CLASSES))
    assert np.abs(kept.image.astype(int) - face.astype(int)).max() <= 1  # kept regions: the full-size input
    small = smfd.load_pipeline(str(bundle), max_work_size=256)  # every face at the training size
    assert small.working_size(face.shape) == (192, 256)


def test_working_sizes_follow_the_face_up_to_the_limit(bundle):
    pipe = smfd.load_pipeline(str(bundle))
    sides = {n: pipe.working_size((n, n, 3))[0] for n in (64, 256, 300, 383, 384, 500, 512, 1000, 2000)}
    assert sides == {64: 64, 256: 256, 300: 256, 383: 320, 384: 384, 500: 448, 512: 512, 1000: 512, 2000: 512}
    with pytest.raises(ValueError, match="max_work_size"):
        smfd.load_pipeline(str(bundle), max_work_size=128)


def test_a_big_crop_keeps_the_detail_the_restoration_did_not_touch(bundle, monkeypatch):
    """Above the working size only the restoration's change is scaled up: a net that changes nothing gives back
    the 1,000 px crop exactly (scaling the restored face up would have smoothed its fine detail away), and a net
    that brightens it brightens it by that much."""
    pipe = smfd.load_pipeline(str(bundle))
    face = np.random.default_rng(1).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)  # detail at every pixel
    monkeypatch.setattr(pipe, "_run", lambda lq, *a: (lq.clone(), None))
    same = pipe.deblur(face, aligned=True, mask=False)
    assert np.array_equal(same.image, face)
    monkeypatch.setattr(pipe, "_run", lambda lq, *a: ((lq + 10 / 255).clamp(0, 1), None))
    brighter = pipe.deblur(np.full_like(face, 100), aligned=True, mask=False).image
    assert np.abs(brighter.astype(int) - 110).max() <= 1


def test_a_big_crop_is_pooled_over_windows_of_the_training_size(tmp_path):
    """NAFNet's channel attention pooled over the whole crop: a net trained on 256 px windows, run on a whole 512 px
    crop, met statistics it never saw, and a sharp face on a large magenta background came back changed (41 dB of
    itself, results/big_faces.md). Larger crops now take them over 256 px windows: a far corner of the crop leaves
    the face's pixels alone. Crops up to the window run as before."""
    from smfd.infer.weights import make_bundle
    from smfd.models import build

    torch.manual_seed(0)  # one block a level: what a pixel sees through the convolutions stays well within 256 px
    deblur = build("nafnet", **NAF, encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1))
    for p in deblur.module.parameters():  # NAFNet starts as the identity; make its attention matter
        torch.nn.init.normal_(p, std=0.3)
    make_bundle(build("mask_generator", **TINY_KWARGS), deblur, tmp_path / "b", card={"status": "test"})
    pipe = smfd.load_pipeline(str(tmp_path / "b"), precision="fp32")
    before = smfd.load_pipeline(str(tmp_path / "b"), precision="fp32", pool_window=0)  # the whole crop
    assert (pipe.pool_window, before.pool_window) == (pipe.face_size, 0) == (256, 0)

    def run(p, image):
        lq = torch.from_numpy(image[None]).permute(0, 3, 1, 2).float() / 255
        return p._run(lq, with_mask=False)[0][0]

    face = np.random.default_rng(3).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    far = face.copy()
    far[448:] = (248, 62, 241)  # a saturated background at the bottom, far from the top-left corner
    assert (run(before, face) - run(before, far))[:, :64, :64].abs().max() > 10 / 255  # it reached every pixel
    assert (run(pipe, face) - run(pipe, far))[:, :64, :64].abs().max() < 0.5 / 255  # the same uint8 pixels
    for small in (face[:256, :256], face[:200, :150]):
        assert (run(pipe, small) - run(before, small)).abs().max() < 1e-5


def test_a_big_crop_is_restored_as_given_and_mirrored_and_the_two_averaged(bundle):
    """Crops above the training size are restored twice, once mirrored left to right, and the two averaged; crops up
    to it once, as before (the 256 px test faces' scores cannot change)."""
    pipe = smfd.load_pipeline(str(bundle), precision="fp32")
    once = smfd.load_pipeline(str(bundle), precision="fp32", mirror_big=False)
    calls, given = [], []
    net = pipe.deblur_net

    class Counted:  # the pipeline's own net, counting its calls and keeping the inputs and masks it was given
        spec = net.spec

        def __call__(self, lq, probs):
            calls.append(tuple(lq.shape))
            given.append((lq, probs))
            return net(lq, probs)

    pipe.deblur_net = Counted()
    lq = torch.rand(1, 3, 288, 320)
    restored, probs = pipe._run(lq, with_mask=True)
    assert calls == [(1, 3, 288, 320)] * 2
    (first, first_probs), (second, second_probs) = given
    assert torch.equal(second, first.flip(-1)) and torch.equal(second_probs, first_probs.flip(-1))  # mask mirrored too
    assert torch.equal(probs, once._run(lq, with_mask=True)[1])  # the mask given back is the crop's own
    plain, mirrored = once._run(lq, with_mask=False)[0], once._run(lq.flip(-1), with_mask=False)[0].flip(-1)
    assert (plain - mirrored).abs().max() > 1e-3  # the net is not mirror-symmetric: both passes matter
    assert torch.allclose(restored, (plain + mirrored) / 2, atol=1e-6)
    calls.clear()
    small = torch.rand(1, 3, 256, 256)
    assert torch.equal(pipe._run(small, with_mask=False)[0], once._run(small, with_mask=False)[0])
    assert calls == [(1, 3, 256, 256)]


def test_faces_are_batched_by_working_size(bundle, monkeypatch):
    pipe = smfd.load_pipeline(str(bundle), batch_size=2)
    seen = []
    real = pipe._run
    monkeypatch.setattr(pipe, "_run", lambda lq, *a: (seen.append(tuple(lq.shape)), real(lq, *a))[1])
    rng = np.random.default_rng(2)
    faces = [rng.integers(0, 256, (n, n, 3), dtype=np.uint8) for n in (256, 600, 256, 256, 700, 400)]
    outs, _ = pipe.restore_faces(faces, mask=False)
    assert [o.shape[0] for o in outs] == [256, 600, 256, 256, 700, 400]  # in input order
    assert sorted(seen) == sorted([(2, 3, 256, 256), (1, 3, 256, 256), (2, 3, 512, 512), (1, 3, 384, 384)])


def test_a_large_photo_is_searched_on_a_bounded_copy(tmp_path, monkeypatch):
    pytest.importorskip("dlib")
    from smfd.infer import pipeline as pipeline_mod

    face = cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.copyMakeBorder(cv2.resize(face, (512, 512)), 200, 100, 300, 150, cv2.BORDER_CONSTANT,
                               value=(90, 120, 150))
    pipe = smfd.load_pipeline(str(make_tiny_bundle(tmp_path / "bundle", favour_class=1)))
    full = pipe.deblur(photo)
    seen = []
    real = pipe.detector.detect
    monkeypatch.setattr(pipe.detector, "detect", lambda im: (seen.append(im.shape), real(im))[1])
    monkeypatch.setattr(pipeline_mod, "DETECT_MAX_PIXELS", photo.shape[0] * photo.shape[1] // 4)
    half = pipe.deblur(photo)
    assert seen == [(photo.shape[0] // 2, photo.shape[1] // 2, 3)]  # the detector saw a quarter of the pixels
    assert len(half.faces) == 1 and np.abs(np.subtract(half.faces[0].box, full.faces[0].box)).max() < 0.1 * 310
    assert np.abs(half.faces[0].landmarks - full.faces[0].landmarks).max() < 6  # in the photo's own pixels
    assert half.image.shape == photo.shape and (half.mask > 0).sum() > 0.9 * (full.mask > 0).sum()


def test_paste_back_touches_only_the_face_region_and_matches_the_whole_photo_warp(tmp_path):
    pytest.importorskip("dlib")
    from smfd.infer.faces import paste_change

    face = cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.copyMakeBorder(face, 60, 300, 120, 400, cv2.BORDER_CONSTANT, value=(90, 120, 150))
    pipe = smfd.load_pipeline(str(make_tiny_bundle(tmp_path / "bundle")))
    res = pipe.deblur(photo)
    f = res.faces[0]
    side = pipe.crop_size(f.landmarks)
    crop = cv2.warpAffine(photo, f.matrix, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    restored, _ = pipe.restore_faces([crop])
    whole = paste_change(photo, restored[0], crop, f.matrix)  # the whole photo's change warped
    assert np.abs(whole.astype(int) - res.image.astype(int)).max() <= 1
    far = np.ones(photo.shape[:2], bool)
    x0, y0, x1, y1 = f.box
    far[max(0, 2 * y0 - y1):2 * y1 - y0, max(0, 2 * x0 - x1):2 * x1 - x0] = False
    assert np.array_equal(res.image[far], photo[far])  # nothing outside the face's region is touched


def test_the_mask_net_runs_only_when_something_reads_the_mask(monkeypatch):
    """The shipped deblurring net reads no mask: without a mask asked for and no region kept, the mask net (most
    of the work) is skipped and the restored face is the same."""
    pipe = smfd.load_pipeline(precision="fp32")
    assert not pipe.deblur_net.spec.reads_mask
    calls = []
    real = pipe.mask_net.probabilities
    monkeypatch.setattr(pipe.mask_net, "probabilities", lambda x: calls.append(1) or real(x))
    face = np.asarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3)), np.uint8)
    with_mask = pipe.deblur(face, aligned=True)
    assert len(calls) == 1 and with_mask.mask.shape == (64, 64)
    without = pipe.deblur(face, aligned=True, mask=False)
    assert len(calls) == 1 and without.mask is None
    np.testing.assert_array_equal(without.image, with_mask.image)
    kept = pipe.deblur(face, aligned=True, keep="hair", mask=False)  # keeping regions needs the mask
    assert len(calls) == 2 and kept.mask is None


def test_the_public_steps_make_what_deblur_makes(bundle):
    """detect_faces, align_faces, restore_faces and paste, called one by one (as the video job and the benchmarks
    do), give deblur's image; an assigned detector is the one searched with."""
    pytest.importorskip("dlib")
    from smfd.errors import BadOption
    from smfd.infer.faces import FaceDetector

    face = cv2.cvtColor(cv2.imread(str(samples_dir() / "images" / "00004.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.copyMakeBorder(face, 60, 40, 120, 80, cv2.BORDER_CONSTANT, value=(90, 120, 150))
    pipe = smfd.load_pipeline(str(bundle))
    faces = pipe.detect_faces(photo)
    todo, crops = pipe.align_faces(photo, faces)
    assert len(todo) == 1 and crops[0].shape == (258, 258, 3)  # a 256 px face at its own resolution
    restored, _ = pipe.restore_faces(crops, mask=False)
    assert np.array_equal(pipe.paste(photo, todo, restored), pipe.deblur(photo, mask=False).image)
    detector = FaceDetector("hog", edge=0)
    pipe.detector = detector
    assert pipe.detector is detector and pipe.detector_name == "hog"
    with pytest.raises(BadOption, match="must be a FaceDetector"):
        pipe.detector = "hog"
