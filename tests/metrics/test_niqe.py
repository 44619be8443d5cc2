import hashlib
import math
from importlib.resources import files

import cv2
import numpy as np
import pytest

from smfd.data import read_image
from smfd.metrics.niqe import matlab_imresize, niqe
from smfd.samples import samples_dir


def test_parameter_file_is_the_published_one():
    data = files("smfd.metrics").joinpath("data/niqe_pris_params.npz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"


def test_matches_the_reference_implementation_on_a_sample():
    # 6.04311 is what basicsr 1.4.2's calculate_niqe (a port of the MATLAB code) gives for this face.
    img = read_image(samples_dir() / "images" / "00004.jpg")
    assert niqe(img) == pytest.approx(6.04311, abs=2e-3)


def test_blur_scores_worse():
    img = read_image(samples_dir() / "images" / "00558.jpg")
    assert niqe(img) + 5 < niqe(cv2.GaussianBlur(img, (0, 0), 4))


def test_matlab_imresize_halves_and_keeps_constants():
    x = np.full((10, 14), 7.0)
    y = matlab_imresize(x, 0.5)
    assert y.shape == (5, 7) and np.allclose(y, 7.0)


def test_small_or_flat_images():
    with pytest.raises(ValueError, match="at least 96"):
        niqe(np.zeros((50, 200, 3), np.uint8))
    assert math.isnan(niqe(np.full((100, 100, 3), 128, np.uint8)))
