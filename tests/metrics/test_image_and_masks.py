import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from smfd.metrics import colour_shift, dice_loss, dice_per_class, jaccard_per_class, mse255, psnr, ssim


def _pairs(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (2, 40, 52, 3), dtype=np.uint8)
    noise = rng.normal(0, 20, a.shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    to_t = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).double() / 255  # noqa: E731
    return a, b, to_t(a), to_t(b)


@pytest.mark.parametrize("seed", range(3))
def test_agree_with_scikit_image(seed):
    a, b, ta, tb = _pairs(seed)
    ours_psnr, ours_ssim, ours_mse = psnr(tb, ta), ssim(tb, ta), mse255(tb, ta)
    for i in range(len(a)):
        assert ours_psnr[i].item() == pytest.approx(peak_signal_noise_ratio(a[i], b[i], data_range=255), abs=1e-6)
        ref = structural_similarity(a[i], b[i], channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert ours_ssim[i].item() == pytest.approx(ref, abs=1e-6)
        assert ours_mse[i].item() == pytest.approx(mean_squared_error(a[i], b[i]), rel=1e-9)


def test_identical_images():
    x = torch.rand(1, 3, 32, 32)
    assert ssim(x, x).item() == pytest.approx(1.0) and torch.isinf(psnr(x, x)).all() and mse255(x, x).item() == 0


def test_colour_shift_sees_a_colour_cast_and_not_blur():
    rng = np.random.default_rng(0)
    sharp = torch.from_numpy(rng.uniform(0.2, 0.8, (1, 3, 32, 32)))
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(sharp, (1, 1, 1, 1), mode="circular"), 3, 1)
    assert colour_shift(blurred, sharp).item() < 1e-9  # blur keeps channel means
    cast = sharp + torch.tensor([10, 0, -4]).view(1, 3, 1, 1) / 255  # +10 red, -4 blue
    assert colour_shift(cast, sharp).item() == pytest.approx(14 / 3)
    assert colour_shift(sharp, sharp).item() == 0


def test_dice_and_jaccard_by_hand():
    target = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 0, 0, 1], [0, 0, 1, 1]]])
    d, j = dice_per_class(pred, target, 3), jaccard_per_class(pred, target, 3)
    assert d[0, 0].item() == pytest.approx(2 * 4 / (5 + 4)) and d[0, 1].item() == pytest.approx(2 * 3 / (3 + 4))
    assert j[0, 0].item() == pytest.approx(4 / 5) and j[0, 1].item() == pytest.approx(3 / 4)
    assert torch.isnan(d[0, 2]) and torch.isnan(j[0, 2])  # class 2 in neither: undefined, not perfect


def test_dice_loss():
    target = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 8, 8)), 3).permute(0, 3, 1, 2).float()
    perfect = dice_loss(target * 50, target).item()
    random = dice_loss(torch.randn(2, 3, 8, 8), target).item()
    assert perfect < 0.01 < 0.3 < random
def test_uint8_scores_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from smfd.metrics import psnr_uint8, scores_uint8

    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    p, s = scores_uint8(a, b)
    assert abs(p - peak_signal_noise_ratio(b, a, data_range=255)) < 1e-6 and p == psnr_uint8(a, b)
    assert abs(s - structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)) < 1e-6
    assert psnr_uint8(a, a) == float("inf")
