import json

import numpy as np

from smfd.data import read_image
from smfd.degrade import DegradationParams, DegradationPipeline


def test_degrade_writes_images_and_replayable_params(face_folder, tmp_path, run_cli):
    out = tmp_path / "out"
    res = run_cli(["degrade", str(face_folder / "images"), "-o", str(out), "--seed", "5"])
    assert res.code == 0, res.err
    records = [json.loads(line) for line in (out / "params.jsonl").read_text().splitlines()]
    assert len(records) == 6
    rec = records[1]
    replay = DegradationPipeline().apply(read_image(rec["input"]), DegradationParams.from_dict(rec["params"]))
    assert np.array_equal(read_image(out / rec["output"]), replay)
    # the same seed again gives byte-identical files
    res2 = run_cli(["degrade", str(face_folder / "images"), "-o", str(tmp_path / "out2"), "--seed", "5"])
    assert res2.code == 0
    assert (out / "00001.png").read_bytes() == (tmp_path / "out2" / "00001.png").read_bytes()


def test_degrade_never_overwrites_silently(face_folder, tmp_path, run_cli):
    out = tmp_path / "out"
    assert run_cli(["degrade", str(face_folder / "images" / "00000.png"), "-o", str(out)]).code == 0
    before = (out / "00000.png").read_bytes()
    res = run_cli(["degrade", str(face_folder / "images" / "00000.png"), "-o", str(out), "--seed", "9"])
    assert res.code == 1 and "already exists" in res.err
    assert (out / "00000.png").read_bytes() == before
    assert run_cli(["degrade", str(face_folder / "images" / "00000.png"), "-o", str(out), "--seed", "9",
                    "--overwrite"]).code == 0


def test_degrade_goes_on_past_bad_files(face_folder, tmp_path, run_cli):
    (face_folder / "images" / "broken.png").write_text("not an image")
    res = run_cli(["degrade", str(face_folder / "images"), "-o", str(tmp_path / "o")])
    assert res.code == 1
    assert "broken.png" in res.err and "1 of 7 inputs failed" in res.err and "Traceback" not in res.err
    assert len(list((tmp_path / "o").glob("*.png"))) == 6


def test_missing_input_is_one_line(tmp_path, run_cli):
    res = run_cli(["degrade", str(tmp_path / "nothing.jpg"), "-o", str(tmp_path / "o")])
    assert res.code == 1
    assert res.err.strip() == f"smfd: error: {tmp_path / 'nothing.jpg'}: no such file or folder"


def test_demo_writes_a_picture_and_a_page(tmp_path, run_cli):
    from helpers import make_tiny_bundle

    bundle = make_tiny_bundle(tmp_path / "bundle")
    res = run_cli(["demo", "-o", str(tmp_path / "demo"), "--weights", str(bundle)])
    assert res.code == 0, res.err
    img = read_image(tmp_path / "demo" / "side_by_side.png")
    assert img.shape[1] > 4 * 256 and img.shape[0] > 8 * 256  # 8 faces x (blurry, mask, output, sharp)
    page = (tmp_path / "demo" / "index.html").read_text()
    # header, 8 faces, a mean row per family: by default the faces take turns between the two families
    assert page.count("<tr>") == 11 and "faces/00004_output.png" in page and "dB" in page
    assert "mean, thesis" in page and "mean, realistic" in page
    assert f"wrote {tmp_path / 'demo' / 'index.html'}" in res.out

    res = run_cli(["demo", "-o", str(tmp_path / "real"), "--weights", str(bundle), "--degradation", "realistic"])
    assert res.code == 0, res.err
    page = (tmp_path / "real" / "index.html").read_text()
    assert page.count("<tr>") == 10 and "mean, realistic" in page and "mean, thesis" not in page
    assert "camera shake" in page


def test_demo_rejects_an_unknown_degradation(tmp_path, run_cli):
    res = run_cli(["demo", "-o", str(tmp_path / "demo"), "--degradation", "heavy"])
    assert res.code == 2
    assert res.err.strip() == "smfd: error: --degradation must be one of both, thesis, realistic, got 'heavy'"
    assert not (tmp_path / "demo").exists()


def test_bundle_switches_a_deblur_option(tmp_path, run_cli):
    from helpers import make_tiny_bundle
    from smfd.infer.weights import load_bundle

    src = make_tiny_bundle(tmp_path / "src")
    res = run_cli(["bundle", "--mask", str(src / "mask_generator.safetensors"), "--deblur",
                   str(src / "smfd_unet.safetensors"), "-o", str(tmp_path / "b"), "--deblur-option", "keep_mean=true"])
    assert res.code == 0, res.err
    _, deblur, manifest = load_bundle(str(tmp_path / "b"))
    assert deblur.spec.steps == ("keep_mean",) and deblur.spec.options["keep_mean"] is True
    assert manifest["files"]["deblur"]["steps"] == ["keep_mean"]  # the inference step is recorded in the manifest
    run = tmp_path / "run"  # a training run folder: its best.safetensors
    run.mkdir()
    (run / "best.safetensors").write_bytes((src / "smfd_unet.safetensors").read_bytes())
    (run / "last.pt").write_bytes(b"not read")
    res = run_cli(["bundle", "--mask", str(src / "mask_generator.safetensors"), "--deblur", str(run), "-o",
                   str(tmp_path / "b2")])
    assert res.code == 0, res.err
    res = run_cli(["bundle", "--mask", str(src / "mask_generator.safetensors"), "--deblur", str(run / "last.pt"),
                   "-o", str(tmp_path / "b3")])  # the product reads safetensors only, never a pickle
    assert res.code != 0 and "not a .safetensors weights file" in res.err and not (tmp_path / "b3").exists()


def test_summary_table(run_cli):
    res = run_cli(["summary", "mask_generator", "smfd_unet", "--size", "64", "--runs", "1"])
    assert res.code == 0, res.err
    assert "5,416,029" in res.out and "5,416,159" in res.out and "7,532,503" in res.out
    assert "-0.002%" in res.out and "-0.001%" in res.out


def test_summary_unknown_model(run_cli):
    res = run_cli(["summary", "resnet50"])
    assert res.code == 1 and "unknown model 'resnet50'" in res.err
