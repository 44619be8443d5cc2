import cv2
import numpy as np
import pytest

from smfd.degrade import DIRECTIONS, gaussian_kernel, gaussian_sigma, motion_kernel

SIZES = (15, 21, 25, 31, 35, 41)


@pytest.mark.parametrize("size", SIZES)
def test_kernels_sum_to_one(size):
    assert gaussian_kernel(size).sum() == pytest.approx(1.0, abs=1e-6)
    for d in DIRECTIONS:
        k = motion_kernel(size, d)
        assert k.shape == (size, size)
        assert k.sum() == pytest.approx(1.0, abs=1e-6)
        assert np.count_nonzero(k) == size  # a line of `size` pixels


def test_gaussian_sigma_is_opencvs_rule():
    for size in SIZES:
        ours = gaussian_kernel(size)
        ref = cv2.getGaussianKernel(size, gaussian_sigma(size))
        np.testing.assert_allclose(ours, ref @ ref.T, atol=1e-7)
    assert gaussian_sigma(15) == pytest.approx(0.3 * (7 - 1) + 0.8)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_delta_image_stays_centred(direction):
    img = np.zeros((61, 61), np.float32)
    img[30, 30] = 1.0
    for k in (gaussian_kernel(21), motion_kernel(21, direction)):
        out = cv2.filter2D(img, -1, k)
        ys, xs = np.nonzero(out > 1e-9)
        w = out[ys, xs]
        assert (ys * w).sum() / w.sum() == pytest.approx(30, abs=1e-4)
        assert (xs * w).sum() / w.sum() == pytest.approx(30, abs=1e-4)


def test_motion_directions_are_lines():
    assert np.array_equal(np.nonzero(motion_kernel(5, "horizontal"))[0], [2] * 5)
    assert np.array_equal(np.nonzero(motion_kernel(5, "vertical"))[1], [2] * 5)
    ys, xs = np.nonzero(motion_kernel(5, "diagonal"))
    assert np.array_equal(ys, xs)
    ys, xs = np.nonzero(motion_kernel(5, "anti_diagonal"))
    assert np.array_equal(ys + xs, [4] * 5)


def test_bad_kernel_arguments():
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(4)
    with pytest.raises(ValueError, match="direction"):
        motion_kernel(5, "sideways")
