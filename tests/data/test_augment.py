import numpy as np
import pytest

from smfd.data import JointAugment


def _square_scene(size=64):
    img = np.full((size, size, 3), 40, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    img[20:36, 12:28] = 220
    mask[20:36, 12:28] = 3
    return img, mask


@pytest.mark.parametrize("seed", range(12))
def test_painted_square_moves_with_its_label(seed):
    img, mask = _square_scene()
    blurred = img.copy()
    aug = JointAugment(brightness_range=(1.0, 1.0), contrast_range=(1.0, 1.0))
    (a, b), m = aug([img, blurred], mask, np.random.default_rng(seed))
    assert np.array_equal(a, b)  # one geometry for every image
    inside = m == 3
    assert inside.sum() > 50  # the square survives a 0.8 crop and a 30 degree turn
    bright = a[..., 0] > 130
    # the labelled pixels are the bright pixels, up to a one-pixel interpolation rim
    assert (bright & inside).sum() / inside.sum() > 0.85
    assert (bright & ~inside).sum() / bright.sum() < 0.15
    assert set(np.unique(m)) <= {0, 3}  # nearest neighbour invents no labels


def test_geometry_actually_changes_things():
    img, mask = _square_scene()
    moved = [not np.array_equal(JointAugment()([img], mask, np.random.default_rng(s))[1], mask) for s in range(5)]
    assert all(moved)


def test_identity_settings_are_identity():
    img, mask = _square_scene()
    aug = JointAugment(max_rotation=0, flip_prob=0, crop_range=(1, 1), brightness_range=(1, 1),
                       contrast_range=(1, 1))
    (a,), m = aug([img], mask, np.random.default_rng(0))
    assert np.array_equal(a, img) and np.array_equal(m, mask)


def test_flip_mirrors():
    img, mask = _square_scene()
    aug = JointAugment(max_rotation=0, flip_prob=1, crop_range=(1, 1), brightness_range=(1, 1),
                       contrast_range=(1, 1))
    (a,), m = aug([img], mask, np.random.default_rng(0))
    assert np.array_equal(a, img[:, ::-1]) and np.array_equal(m, mask[:, ::-1])


def test_photometric_same_factors_for_all_images():
    img, _ = _square_scene()
    aug = JointAugment(max_rotation=0, flip_prob=0, crop_range=(1, 1))
    (a, b), _ = aug([img, img.copy()], None, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, img)
