"""The low-resolution family: replayable params, the small size really is small, compression at that size, the
mixed pipeline with and without it."""

import json

import cv2
import numpy as np
import pytest

from smfd.degrade import (
    DegradationPipeline,
    LowResConfig,
    LowResParams,
    LowResPipeline,
    MixedPipeline,
    RealisticPipeline,
    make_degradation,
    params_from_dict,
)


@pytest.fixture
def face():
    rng = np.random.default_rng(0)
    return cv2.resize(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), (128, 128), interpolation=cv2.INTER_CUBIC)


def test_sampling_then_applying_replays_byte_for_byte_from_json(face):
    pipe = LowResPipeline()
    codecs, apps = set(), set()
    for seed in range(40):
        out, params = pipe(face, np.random.default_rng(seed))
        again = pipe.apply(face, params_from_dict(json.loads(json.dumps(params.to_dict()))))
        assert out.dtype == np.uint8 and out.shape == face.shape and np.array_equal(out, again)
        assert 3 <= params.scale <= 8
        codecs.add(params.codec)
        apps.add(params.app_scale > 0)
    assert codecs == {"jpeg", "video"} and apps == {True, False}


def test_detail_finer_than_the_small_size_is_gone(face):
    """A x8 downscale leaves no detail above the small image's Nyquist limit: a fine checkerboard comes back
    flat, while a plain resize-free JPEG at the same quality keeps most of it."""
    checker = np.indices((128, 128)).sum(0) % 2 * 255
    img = np.repeat(checker[..., None], 3, axis=2).astype(np.uint8)
    out = LowResPipeline().apply(img, LowResParams(scale=8.0, codec="jpeg", quality=90))
    assert out.std() < 20 < img.std()


def test_video_frames_are_smoothed_across_block_edges(face):
    pipe = LowResPipeline()
    jpeg = pipe.apply(face, LowResParams(scale=3.0, codec="jpeg", quality=10))
    video = pipe.apply(face, LowResParams(scale=3.0, codec="video", quality=10))
    assert not np.array_equal(jpeg, video)


def test_float_and_grey_inputs_keep_their_dtype_and_shape(face):
    pipe = LowResPipeline()
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)[..., None]
    out, _ = pipe(grey, np.random.default_rng(1))
    assert out.shape == grey.shape and out.dtype == np.uint8
    out, _ = pipe(face.astype(np.float32) / 255, np.random.default_rng(1))
    assert out.dtype == np.float32 and out.shape == face.shape and 0 <= out.min() and out.max() <= 1


def test_bad_config_and_params_are_refused(face):
    with pytest.raises(ValueError, match="scale"):
        LowResConfig(scale=(0.5, 2.0))
    with pytest.raises(ValueError, match="codec"):
        LowResPipeline().apply(face, LowResParams(codec="gif"))


def test_mixed_without_lowres_draws_what_it_always_did(face):
    """Adding the family to the mix changed nothing for a mix that does not use it: same params, same bytes."""
    old = MixedPipeline(DegradationPipeline(), RealisticPipeline(), 0.5)
    new = make_degradation("mixed", 0.5, 0.0)
    for seed in range(10):
        a, pa = old(face, np.random.default_rng(seed))
        b, pb = new(face, np.random.default_rng(seed))
        assert pa == pb and np.array_equal(a, b)


def test_mixed_with_lowres_draws_all_three_families(face):
    mix = make_degradation("mixed", 0.4, 0.3)
    families = set()
    for seed in range(60):
        out, params = mix(face, np.random.default_rng(seed))
        families.add(getattr(params, "family", "thesis"))
        assert np.array_equal(out, mix.apply(face, params_from_dict(json.loads(json.dumps(params.to_dict())))))
    assert families == {"thesis", "realistic", "lowres"}
    with pytest.raises(ValueError, match="add up"):
        make_degradation("mixed", 0.8, 0.3)


def test_lowres_is_an_evaluation_family():
    assert isinstance(make_degradation("lowres"), LowResPipeline)
