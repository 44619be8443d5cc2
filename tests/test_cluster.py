"""smfd on Ray (extra ``cluster``): a folder run on a local Ray instance (2 CPUs) writes what the local run writes,
byte for byte, with its rules, counts every input once, and survives an actor killed mid-run; the Python API
restores a Dataset; without the extra, nothing imports Ray."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import make_clip, make_tiny_bundle
from smfd.data import read_image
from smfd.samples import samples_dir


def test_smfd_and_its_command_line_do_not_import_ray():
    code = ("import sys, smfd, smfd.cli, smfd.cluster, smfd.cli.cluster; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__import__("smfd").__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


DRIVER_UNTIL_RAY_STARTS = """
import sys, ray
from smfd.__main__ import run
class RayStarts(Exception): pass
def init(*args, **kwargs): raise RayStarts
ray.init = init
sys.argv = ["smfd", "deblur", sys.argv[1], "-o", sys.argv[2], "--ray"]
try:
    run()
except RayStarts:
    print(sorted(m for m in ("torch", "dlib", "av") if m in sys.modules))
"""


def test_the_driver_plans_a_ray_run_without_pytorch(tmp_path):
    """Everything `smfd deblur --ray` does before Ray starts (options, inputs, planned outputs) needs no PyTorch:
    the driver only gathers reports, so its start-up and memory stay small (the actors load the nets)."""
    pytest.importorskip("ray.data")
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted((samples_dir() / "images").iterdir())[:2]:
        shutil.copy(f, src / f.name)
    out = subprocess.run([sys.executable, "-c", DRIVER_UNTIL_RAY_STARTS, str(src), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """One local Ray instance (2 CPUs) for the module; its workers see the crash marker's variable."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    pytest.importorskip("dlib")
    from smfd.cli.cluster import CRASH_ONCE_ENV

    marker = tmp_path_factory.mktemp("crash") / "crash-once"
    os.environ[CRASH_ONCE_ENV] = str(marker)  # inherited by the workers; harmless while the file does not exist
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield marker
    ray.shutdown()
    os.environ.pop(CRASH_ONCE_ENV, None)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp("w") / "bundle")


def _photos(folder: Path, n: int = 3) -> list[Path]:
    """Whole photos with one face each (the sample faces on a border), the first with EXIF."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, src in enumerate(sorted((samples_dir() / "images").iterdir())[:n]):
        photo = cv2.copyMakeBorder(read_image(src), 60, 40, 120, 80, cv2.BORDER_CONSTANT, value=(90, 120, 150))
        exif = Image.Exif()
        exif[0x0132] = "2026:12:07 10:00:00"  # DateTime
        Image.fromarray(photo).save(folder / f"p{i}.jpg", quality=90, **({"exif": exif} if i == 0 else {}))
        paths.append(folder / f"p{i}.jpg")
    return paths


def _local(bundle: Path, f: Path, out: Path, save_mask: bool = False) -> list[bytes]:
    """What the local run writes for photo ``f`` (smfd.load_pipeline(...).deblur, then its writers)."""
    import smfd
    from smfd.data.io import write_image
    from smfd.infer.photo_io import open_photo, save_photo
    from smfd.report import colorize_mask

    photo = open_photo(f)
    result = smfd.load_pipeline(str(bundle)).deblur(photo.image, mask=save_mask)
    files = [save_photo(out / f.name, photo, result.image)]
    if save_mask:
        files.append(write_image(out / f"{f.stem}_mask.png", colorize_mask(result.mask)))
    return [p.read_bytes() for p in files]


def _targets(files: list[Path], out: Path, save_mask: bool = False) -> dict[Path, list[Path]]:
    from smfd.infer.photo_io import output_suffix
    from smfd.infer.video import VIDEO_SUFFIXES
    from smfd.infer.video import output_suffix as video_suffix

    return {f: [out / f"{f.stem}{video_suffix(f.suffix)}"] if f.suffix in VIDEO_SUFFIXES else
            [out / f"{f.stem}{output_suffix(f.suffix)}", *([out / f"{f.stem}_mask.png"] if save_mask else [])]
            for f in files}


def _counted_once(s) -> bool:
    names = [*map(str, s.written), *map(str, s.done_before), *(n for n, _ in s.failures), *map(str, s.not_done)]
    return sorted(names) == sorted(map(str, s.inputs))


def test_a_folder_on_ray_is_the_local_run(ray_local, bundle, tmp_path):
    """Bad file, existing output (refused, then left alone with skip_existing), a clip; outputs byte-identical to
    the local run's; every input counted once."""
    from smfd.cli import CliError
    from smfd.cli.cluster import partial_files, print_summary, run_on_ray

    photos = _photos(tmp_path / "in")
    (tmp_path / "in" / "bad.png").write_text("not an image")
    clip = make_clip(tmp_path / "in" / "clip.mp4", frames=6, audio=False)
    files = [*photos, tmp_path / "in" / "bad.png", clip]
    out = tmp_path / "out"
    out.mkdir()
    (out / "p0.jpg").write_bytes(b"done before")
    targets = _targets(files, out)
    with pytest.raises(CliError, match="already exists"):
        run_on_ray(files, targets, actors=2, weights=str(bundle), progress=False)
    s = run_on_ray(files, targets, actors=2, weights=str(bundle), skip_existing=True, progress=False)
    assert _counted_once(s) and s.stop is None
    assert s.done_before == [photos[0]] and sorted(s.written) == sorted([photos[1], photos[2], clip])
    assert [n for n, _ in s.failures] == [str(tmp_path / "in" / "bad.png")] and "not a readable" in s.failures[0][1]
    assert (out / "p0.jpg").read_bytes() == b"done before"
    assert s.restored >= 2 + 1 and any("clip.mp4: restored" in n for n in s.notes)
    assert not partial_files([t for ts in targets.values() for t in ts])
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "p0.jpg", "p1.jpg", "p2.jpg"]
    local = tmp_path / "local"
    for f in photos[1:]:
        assert (out / f.name).read_bytes() == _local(bundle, f, local)[0], f
    assert Image.open(out / "p1.jpg").format == "JPEG"
    import smfd

    for _ in smfd.load_pipeline(str(bundle)).deblur_video(clip, local / "clip.mp4"):
        pass
    # the same pictures (x264's bitstream was seen to differ between two processes encoding the same frames)
    import av

    def frames(path: Path) -> list[np.ndarray]:
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]

    ray_frames, local_frames = frames(out / "clip.mp4"), frames(local / "clip.mp4")
    assert len(ray_frames) == len(local_frames) == 6
    assert all((a == b).all() for a, b in zip(ray_frames, local_frames, strict=True))
    with pytest.raises(CliError, match="1 of 5 inputs failed"):
        print_summary(s, out)


def test_an_actor_killed_mid_run_redoes_its_photo(ray_local, bundle, tmp_path, monkeypatch):
    """The first actor to write dies after the first file of a photo's set; Ray restarts it and retries: every
    set is complete, byte-identical to the local run's, nothing is left half written, each photo counted once.
    Paths are relative, as a user types them."""
    from smfd.cli.cluster import partial_files, run_on_ray

    _photos(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    photos = sorted(Path("in").iterdir())
    ray_local.write_text("")
    out = Path("out")
    targets = _targets(photos, out, save_mask=True)
    s = run_on_ray(photos, targets, actors=2, weights=str(bundle), save_mask=True, progress=False)
    assert not ray_local.exists()  # an actor died
    assert _counted_once(s) and sorted(s.written) == sorted(photos) and not s.failures
    assert not partial_files([t for ts in targets.values() for t in ts])
    assert len(list(out.iterdir())) == 6
    for f in photos:
        image, mask = _local(bundle, f, Path("local"), save_mask=True)
        assert (out / f.name).read_bytes() == image and (out / f"{f.stem}_mask.png").read_bytes() == mask
    exif = Image.open(out / "p0.jpg").getexif()
    assert exif.get(0x0132) == "2026:12:07 10:00:00"  # metadata kept


def test_deblur_dataset_restores_paths_and_images(ray_local, bundle, tmp_path):
    import ray

    import smfd
    from smfd.cluster import deblur_dataset

    photos = _photos(tmp_path / "in", n=2)
    ds = ray.data.from_items([{"path": str(p), "id": i} for i, p in enumerate(photos)]
                             + [{"path": str(tmp_path / "gone.jpg"), "id": 9}])
    rows = sorted(deblur_dataset(ds, str(bundle), actors=1).take_all(), key=lambda r: r["id"])
    pipe = smfd.load_pipeline(str(bundle))
    for row, p in zip(rows, photos, strict=False):
        assert row["error"] == "" and row["faces"] == 1 and row["path"] == str(p)
        np.testing.assert_array_equal(row["image"], pipe.deblur(read_image(p), mask=False).image)
    assert rows[2]["id"] == 9 and "no such file" in rows[2]["error"] and rows[2]["image"].size == 0
    crops = [read_image(p) for p in sorted((samples_dir() / "images").iterdir())[:2]]
    rows = deblur_dataset(ray.data.from_items([{"image": c} for c in crops]), str(bundle), aligned=True,
                          batch_size=2).take_all()
    want = pipe.restore_faces(crops, mask=False)[0]
    assert len(rows) == 2 and all(r["faces"] == 1 for r in rows)
    assert sorted(r["image"].tobytes() for r in rows) == sorted(w.tobytes() for w in want)


def test_an_actor_that_cannot_load_is_one_line(ray_local, tmp_path):
    from smfd.cli.cluster import run_on_ray

    f = tmp_path / "a.jpg"
    shutil.copy(samples_dir() / "images" / "00004.jpg", f)
    (tmp_path / "w").mkdir()  # there, but not a bundle
    with pytest.raises(RuntimeError, match=r"the Ray job failed: .*manifest\.json: no such file.*--skip-existing"):
        run_on_ray([f], {f: tmp_path / "o" / "a.jpg"}, weights=str(tmp_path / "w"), aligned=True, progress=False)
    assert not (tmp_path / "o").exists()


def test_an_actor_keeps_pytorch_and_opencv_to_its_cpus(bundle):
    """Two one-CPU actors on two cores: neither may run OpenCV's pool on every core (it would slow the other)."""
    pytest.importorskip("ray")
    import torch

    from smfd.cluster import Deblur

    before = cv2.getNumThreads(), torch.get_num_threads()
    try:
        cv2.setNumThreads(4)
        Deblur(str(bundle), threads=1)
        assert (cv2.getNumThreads(), torch.get_num_threads()) == (1, 1)
    finally:
        cv2.setNumThreads(before[0])
        torch.set_num_threads(before[1])


def test_options_are_checked_before_ray_starts(tmp_path):
    pytest.importorskip("ray")
    from smfd.cli import CliError
    from smfd.cli.cluster import run_on_ray

    f = tmp_path / "a.jpg"
    shutil.copy(samples_dir() / "images" / "00004.jpg", f)
    with pytest.raises(CliError, match="every node"):
        run_on_ray([f], {f: tmp_path / "o" / "a.jpg"}, weights=str(tmp_path / "nowhere"))
    with pytest.raises(CliError, match="actors must be"):
        run_on_ray([f], {f: tmp_path / "o" / "a.jpg"}, actors=0)


def test_a_stopped_ray_run_says_what_was_not_done(tmp_path, capsys):
    """A full disk on an actor stops the run: the summary names what was done and not, and exits as the local run."""
    from smfd.cli import CliError
    from smfd.cli.cluster import RaySummary, _take, print_summary

    files = [tmp_path / f"p{i}.jpg" for i in range(3)]
    s = RaySummary(files)
    base = {"faces": 0, "reason": "", "skips": "", "notes": "", "over_limit": False, "pid": 7, "peak_mb": 500.0,
            "node": "n1"}
    _take(s, {**base, "path": str(files[0]), "status": "written", "faces": 2})
    _take(s, {**base, "path": str(files[1]), "status": "stop", "reason": f"{tmp_path}/p1.jpg: cannot write: No space"})
    s.not_done = files[1:]
    with pytest.raises(CliError) as e:
        print_summary(s, tmp_path)
    err = capsys.readouterr().err
    assert e.value.code == 1 and "restored 2 face(s) from 1 of 3 image(s)" in err
    assert "2 image(s) not done, from" in err and "--skip-existing" in err and s.actors == {7: 500.0}
    assert s.nodes == {"n1": 2}  # each report names the node its actor ran on


def test_a_local_instance_stops_its_monitor_before_shutting_down():
    """An instance the run started has its autoscaler monitor stopped first (ray.shutdown() otherwise waits a second
    for it); a joined cluster is only left; a Ray without that node shuts down as usual."""
    from types import SimpleNamespace

    Node = pytest.importorskip("ray._private.node").Node

    from smfd.cli.cluster import _stop

    assert callable(getattr(Node, "kill_monitor", None))  # the installed Ray's node has it
    calls = []
    node = SimpleNamespace(kill_monitor=lambda check_alive: calls.append(("monitor", check_alive)))
    ray = SimpleNamespace(_private=SimpleNamespace(worker=SimpleNamespace(_global_node=node)),
                          shutdown=lambda: calls.append("shutdown"))
    _stop(ray, own=True)
    assert calls == [("monitor", False), "shutdown"]
    calls.clear()
    _stop(ray, own=False)
    assert calls == ["shutdown"]
    calls.clear()
    _stop(SimpleNamespace(shutdown=lambda: calls.append("shutdown")), own=True)
    assert calls == ["shutdown"]


def test_smfd_deblur_with_ray_writes_what_the_local_command_writes(ray_local, bundle, tmp_path, run_cli):
    """The command line: the same plan run locally and as a Ray job gives the same files, byte for byte."""
    photos = _photos(tmp_path / "in", n=2)
    (tmp_path / "in" / "bad.jpg").write_bytes(b"not an image")
    args = ["deblur", str(tmp_path / "in"), "--weights", str(bundle), "--save-mask"]
    local = run_cli([*args, "-o", str(tmp_path / "local")])
    on_ray = run_cli([*args, "-o", str(tmp_path / "ray"), "--ray", "--ray-actors", "2"])
    assert local.code == on_ray.code == 1 and "bad.jpg" in on_ray.err + on_ray.out  # the bad file, in one line
    assert "on Ray: 2 actor(s)" in on_ray.err
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ray").iterdir()) and len(names) == 2 * len(photos)
    for name in names:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    assert run_cli([*args, "-o", str(tmp_path / "x"), "--ray", "--ray-actors", "0"]).code == 2


_TWO_NODES = """
import subprocess, sys
from ray.cluster_utils import Cluster

cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1, "include_dashboard": False})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
try:
    out = subprocess.run([sys.executable, "-m", "smfd", *sys.argv[1:], "--ray-address", cluster.address],
                         capture_output=True, text=True, timeout=600)
    print(out.returncode)
    print(out.stdout + out.stderr)
finally:
    cluster.shutdown()
"""


def test_smfd_deblur_joins_a_running_cluster(bundle, tmp_path):
    """``--ray-address`` joins a running cluster (two nodes of one CPU each, on this machine): the run uses that
    cluster (not a new local instance), every photo is written once and the summary says on how many nodes."""
    pytest.importorskip("ray.cluster_utils")
    pytest.importorskip("dlib")
    photos = _photos(tmp_path / "in", n=4)
    script = tmp_path / "two_nodes.py"
    script.write_text(_TWO_NODES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__import__("smfd").__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    env.pop("SMFD_TEST_CRASH_ONCE", None)
    out = subprocess.run([sys.executable, str(script), "deblur", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                          "--weights", str(bundle), "--ray", "--ray-actors", "2"],
                         capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    code, _, text = out.stdout.partition("\n")
    assert code.strip() == "0", out.stdout[-3000:] + out.stderr[-3000:]
    assert "on Ray: 2 actor(s) on a cluster of 2 node(s)" in text, text[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in photos)


def test_ray_is_started_with_its_usage_statistics_off_unless_the_user_turned_them_on(monkeypatch):
    """Nothing about a run leaves the machine: Ray's usage statistics (collected and sent by default) are off in the
    instance the run starts, and Ray Data starts no actor to collect them; a user's own setting is kept."""
    from types import SimpleNamespace

    from smfd.cli.cluster import USAGE_STATS, _start_ray

    seen = []
    ray = SimpleNamespace(is_initialized=lambda: False, cluster_resources=lambda: {"CPU": 2.0},
                          init=lambda **kw: seen.append((os.environ.get(USAGE_STATS), kw["address"])))
    monkeypatch.setenv(USAGE_STATS, "unset below")  # so the value _start_ray sets is undone after the test
    monkeypatch.delenv(USAGE_STATS)
    assert _start_ray(ray, None, None, 1) == 2
    monkeypatch.setenv(USAGE_STATS, "1")
    _start_ray(ray, "auto", 1, 1)
    assert seen == [("0", "local"), ("1", "auto")]
