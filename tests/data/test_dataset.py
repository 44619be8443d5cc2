import json

import cv2
import torch
from torch.utils.data import DataLoader

from smfd.data import FaceDeblurDataset
from smfd.degrade import DegradationParams


def test_item_shapes_and_ranges(face_folder):
    ds = FaceDeblurDataset(face_folder, train=True)
    item = ds[0]
    assert item["lq"].shape == (3, 48, 48) and item["gt"].shape == (3, 48, 48)
    assert item["lq"].dtype == torch.float32 and 0 <= item["lq"].min() and item["lq"].max() <= 1
    assert item["mask"].shape == (48, 48) and item["mask"].dtype == torch.int64
    assert item["mask_onehot"].shape == (5, 48, 48)
    assert torch.equal(item["mask_onehot"].argmax(0), item["mask"])
    assert DegradationParams.from_dict(json.loads(item["params"])).scale >= 2.0
    assert item["path"].endswith("00000.png")


def test_eval_items_are_fixed_per_index(face_folder):
    a = FaceDeblurDataset(face_folder, seed=1)
    b = FaceDeblurDataset(face_folder, seed=1)
    assert torch.equal(a[2]["lq"], b[2]["lq"]) and torch.equal(a[2]["lq"], a[2]["lq"])
    assert not torch.equal(a[2]["lq"], FaceDeblurDataset(face_folder, seed=2)[2]["lq"])
    assert torch.equal(a[2]["gt"], b[2]["gt"])  # no augmentation outside training


def test_grayscale_and_resize(face_folder):
    item = FaceDeblurDataset(face_folder, grayscale=True, size=32)[0]
    assert item["lq"].shape == (1, 32, 32) and item["gt"].shape == (3, 32, 32) and item["mask"].shape == (32, 32)


def test_work_size_gives_whole_training_faces_degraded_at_full_size(face_folder):
    ds = FaceDeblurDataset(face_folder, train=True, work_size=24, augment=None)
    item = ds[0]
    assert item["lq"].shape == (3, 24, 24) and item["gt"].shape == (3, 24, 24) and item["mask"].shape == (24, 24)
    assert FaceDeblurDataset(face_folder, work_size=24)[0]["lq"].shape == (3, 48, 48)  # validation: full size
    sharp, mask = ds.folder.read(ds.ids[0])  # the whole face, area-downscaled (the mask: nearest)
    expected = cv2.resize(sharp, (24, 24), interpolation=cv2.INTER_AREA).transpose(2, 0, 1) / 255.0
    torch.testing.assert_close(item["gt"], torch.from_numpy(expected).float())
    small_mask = cv2.resize(mask, (24, 24), interpolation=cv2.INTER_NEAREST)
    assert torch.equal(item["mask"], torch.from_numpy(small_mask).long())


def test_workers_do_not_repeat_draws(face_folder):
    ds = FaceDeblurDataset(face_folder, train=True)
    loader = DataLoader(ds, batch_size=1, num_workers=2)
    epochs = []
    for _ in range(2):
        seeds = [json.loads(b["params"][0])["noise_seed"] for b in loader]
        assert len(set(seeds)) == len(ds)  # no two workers drew the same degradation
        epochs.append(seeds)
    assert set(epochs[0]).isdisjoint(epochs[1])  # and epochs differ


def test_unknown_ids(face_folder):
    import pytest

    with pytest.raises(ValueError, match="not in"):
        FaceDeblurDataset(face_folder, ids=["nope"])


def test_faces_at_several_sizes_read_the_larger_copy_and_scale_their_blur(face_folder, tmp_path):
    import numpy as np

    from smfd.data import FaceFolder
    from smfd.degrade import make_degradation

    folder = FaceFolder(face_folder)
    hires = tmp_path / "hires"
    (hires / "images").mkdir(parents=True)
    for id in folder.ids[:2]:  # the others have no larger copy
        img, _ = folder.read(id)
        cv2.imwrite(str(hires / "images" / f"{id}.png"), cv2.resize(img, (96, 96))[..., ::-1])
    ds = FaceDeblurDataset(folder, train=True, augment=None, crop=32, sizes=(96,), hires=hires,
                           degradation=make_degradation("mixed", 0.5, 0.2))
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["lq"].shape == (3, 32, 32) and item["mask"].shape == (32, 32)
        scale = json.loads(item["params"]).get("face_scale")
        seen.add((i < 2, scale))
    assert seen == {(True, 96 / 256), (False, 48 / 256)}  # no larger copy: the face stays at its own size
    big = FaceDeblurDataset(folder, train=True, augment=None, sizes=(96,), hires=hires,
                            degradation=make_degradation("realistic"))[0]
    assert big["gt"].shape == (3, 96, 96) and set(np.unique(big["mask"].numpy())) <= set(range(5))
