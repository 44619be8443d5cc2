"""The realistic degradation family: replayable params, kernels that sum to 1, clean faces, the mixed pipeline."""

import json

import numpy as np
import pytest

from smfd.degrade import (
    DegradationParams,
    MixedPipeline,
    RealisticConfig,
    RealisticParams,
    RealisticPipeline,
    make_degradation,
    params_from_dict,
    shake_kernel,
)
from smfd.degrade.pipeline import DegradationPipeline
from smfd.degrade.realistic import defocus_kernel, gaussian_blur_kernel, line_kernel


@pytest.fixture
def face():
    rng = np.random.default_rng(0)
    import cv2

    return cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (64, 64), interpolation=cv2.INTER_CUBIC)


def test_sampling_then_applying_replays_byte_for_byte_from_json(face):
    pipe = RealisticPipeline()
    kinds = set()
    for seed in range(40):
        out, params = pipe(face, np.random.default_rng(seed))
        again = pipe.apply(face, params_from_dict(json.loads(json.dumps(params.to_dict()))))
        assert out.dtype == np.uint8 and out.shape == face.shape and np.array_equal(out, again)
        kinds.add(params.blur)
    assert kinds == {"none", "shake", "defocus", "gaussian", "motion"}  # every blur is drawn


def test_float_and_grey_images_keep_their_type(face):
    pipe = RealisticPipeline(RealisticConfig(clean_share=0, jpeg_prob=1))
    params = pipe.sample(np.random.default_rng(3))
    f = pipe.apply(face.astype(np.float32) / 255, params)
    assert f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
    grey = pipe.apply(face[..., 0], params)
    assert grey.shape == face.shape[:2] and grey.dtype == np.uint8
    assert pipe.apply(face[..., :1], params).shape == (64, 64, 1)


@pytest.mark.parametrize("kernel", [shake_kernel(21, np.random.default_rng(1)), defocus_kernel(3.5),
                                    gaussian_blur_kernel(1.2), line_kernel(9, 30)])
def test_kernels_are_odd_normalised_and_non_negative(kernel):
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.min() >= 0 and kernel.sum() == pytest.approx(1, abs=1e-5)


def test_a_256_px_shake_kernel_is_the_one_it_always_was():
    """The thesis-size family must not move when big faces' blurs change (the bytes of commit 96913c7's kernel)."""
    import hashlib

    k = shake_kernel(21, np.random.default_rng(1))
    assert hashlib.sha256(k.tobytes()).hexdigest() == "228dedb002d847864fc1f75c3d247692d03f60d5178ddff1e770cb6b4e827909"
    assert np.array_equal(RealisticParams(blur="shake", size=21.0, kernel_seed=7).kernel(),
                          shake_kernel(21, np.random.default_rng(7)))


@pytest.mark.parametrize("size,scale", [(3, 0.1), (9, 0.3), (33, 0.5), (33, 4.0)])
def test_a_scaled_shake_kernel_fits_its_square_and_sums_to_one(size, scale):
    k = shake_kernel(size, np.random.default_rng(2), scale=scale)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and k.shape[0] <= max(1, size * scale) + 2
    assert k.min() >= 0 and k.sum() == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("scale", [2.0, 6.0])
def test_a_wide_shake_kernel_is_a_line_not_dots(scale):
    """Drawn wider for a big face, the path is splatted from enough points to stay a line: the kernel is what a
    much denser splat of the same path gives (4 points a step, as at 256 px, leaves dots at scale 6)."""
    def kernel(**kw):
        return shake_kernel(33, np.random.default_rng(0), scale=scale, **kw).astype(np.float64)

    dense = kernel(points_per_step=64)
    assert np.abs(kernel() - dense).sum() / 2 < 0.01
    if scale == 6.0:
        assert np.abs(kernel(points_per_step=4) - dense).sum() / 2 > 0.05
    with pytest.raises(ValueError, match="points_per_step must be >= 1"):
        kernel(points_per_step=0)


def test_shake_kernels_are_random_paths_not_points_or_lines():
    a, b = shake_kernel(25, np.random.default_rng(0)), shake_kernel(25, np.random.default_rng(1))
    assert not np.array_equal(a, b)
    assert (a > 1e-3).sum() > 10 and a.max() < 0.5  # the light is spread over a path


def test_clean_share_leaves_faces_untouched_and_blur_softens(face):
    clean = RealisticPipeline(RealisticConfig(clean_share=1.0))
    assert np.array_equal(clean(face, np.random.default_rng(0))[0], face)
    blur = RealisticPipeline(RealisticConfig(clean_share=0, blur_weights=(0, 1, 0, 0), defocus_radius=(4, 4),
                                             noise_prob=0, poisson_prob=0, jpeg_prob=0, scale_prob=0))
    sharp = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = blur(sharp, np.random.default_rng(0))[0].astype(float)
    assert np.abs(np.diff(out, axis=1)).mean() < 0.3 * np.abs(np.diff(sharp.astype(float), axis=1)).mean()


def test_jpeg_and_noise_change_the_image(face):
    base = RealisticParams()
    assert not np.array_equal(RealisticPipeline().apply(face, RealisticParams(jpeg_quality=30)), face)
    noisy = RealisticPipeline().apply(face, RealisticParams(noise_sigma=5, poisson_peak=200, noise_seed=1))
    assert not np.array_equal(noisy, face) and np.array_equal(RealisticPipeline().apply(face, base), face)


def test_mixed_pipeline_and_the_factory(face):
    rng = np.random.default_rng(0)
    assert all(isinstance(MixedPipeline(DegradationPipeline(), share=0).sample(rng), DegradationParams)
               for _ in range(5))
    assert all(isinstance(MixedPipeline(DegradationPipeline(), share=1).sample(rng), RealisticParams)
               for _ in range(5))
    mixed = make_degradation("mixed", 0.5)
    families = {type(mixed(face, np.random.default_rng(s))[1]).__name__ for s in range(20)}
    assert families == {"DegradationParams", "RealisticParams"}
    assert isinstance(make_degradation("thesis"), DegradationPipeline)
    with pytest.raises(ValueError, match="thesis, realistic, lowres, mixed, sharp"):
        make_degradation("gan")
    with pytest.raises(ValueError, match="clean_share"):
        RealisticConfig(clean_share=2)


def test_blur_scales_with_the_face_size_and_replays():
    """A 512 px face gets the same blur as a 256 px one relative to its size: twice as wide."""
    from smfd.degrade import LowResPipeline, MixedPipeline

    pipe = RealisticPipeline(RealisticConfig(clean_share=0.0))
    a, b = pipe.sample(np.random.default_rng(3)), pipe.sample(np.random.default_rng(3), face_size=512)
    assert a.face_scale == 1.0 and b.face_scale == 2.0 and a.size == b.size and a.blur == b.blur
    assert pipe.sample(np.random.default_rng(3), face_size=256) == a  # the reference size draws as before
    for blur, size in (("defocus", 3.0), ("gaussian", 1.5), ("motion", 9.0), ("shake", 15.0)):
        small = RealisticParams(blur=blur, size=size).kernel()
        big = RealisticParams(blur=blur, size=size, face_scale=2.0).kernel()
        spread = lambda k: np.sqrt((k * (np.indices(k.shape) - (np.array(k.shape)[:, None, None] - 1) / 2) ** 2  # noqa: E731
                                    ).sum())
        assert 1.6 < spread(big) / spread(small) < 2.4, blur
    for seed in range(8):  # a shake's trajectory is as wide relative to the face at any size, the largest included
        small = RealisticParams(blur="shake", size=33.0, kernel_seed=seed).kernel()
        for scale in (0.5, 3.0, 6.0):
            big = RealisticParams(blur="shake", size=33.0, kernel_seed=seed, face_scale=scale).kernel()
            assert 0.9 * scale < spread(big) / spread(small) < 1.1 * scale, (seed, scale)
    sharp = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    out, params = pipe(sharp, np.random.default_rng(4), 384)
    assert np.array_equal(pipe.apply(sharp, RealisticParams.from_dict(json.loads(json.dumps(params.to_dict())))), out)
    low = LowResPipeline().sample(np.random.default_rng(5), face_size=512)
    assert low.face_scale == 2.0
    mix = MixedPipeline(DegradationPipeline(), pipe, 0.2, lowres=LowResPipeline(), lowres_share=0.2)
    families = {getattr(mix.sample(np.random.default_rng(i), 512), "family", "thesis") for i in range(60)}
    assert families == {"realistic", "lowres"}  # the thesis's blur is defined at 256 px only
    with pytest.raises(ValueError, match="256 px"):
        DegradationPipeline()(sharp, np.random.default_rng(0), 512)
