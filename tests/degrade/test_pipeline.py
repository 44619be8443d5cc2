import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from smfd.degrade import (
    BlurOp,
    DegradationConfig,
    DegradationParams,
    DegradationPipeline,
    count_combinations,
)

SIZES = (15, 21, 25, 31, 35, 41)


def test_count_matches_thesis_ranges():
    # 1,176 per layer; 1,176 + 1,176^2 + 1,176^3 stacks; x 21 scales x 51 noise levels.
    assert count_combinations() == 1_743_335_166_888
    assert count_combinations() == (1176 + 1176**2 + 1176**3) * 21 * 51
    # The thesis prints 1,743,940,018,728, which no combination of its own ranges gives (arithmetic slips).
    assert count_combinations() != 1_743_940_018_728


def test_count_follows_the_config():
    base = DegradationConfig()
    assert count_combinations(replace(base, num_layers=(1,), scale_range=(2.0, 2.0),
                                      noise_range=(5.0, 5.0))) == 1176
    assert count_combinations(replace(base, num_layers=(1,), sequences=("M",), scale_range=(2.0, 2.0),
                                      noise_range=(5.0, 5.0))) == 24
    smaller = replace(base, gaussian_sizes=SIZES[:-1])
    assert count_combinations(smaller) < count_combinations(base)
    assert count_combinations(replace(base, noise_range=(5.0, 6.0))) == count_combinations(base) // 51 * 11


def test_10000_draws_reach_every_choice_and_stay_in_range():
    pipe = DegradationPipeline()
    rng = np.random.default_rng(0)
    n, seqs, gsizes, msizes, dirs = Counter(), Counter(), Counter(), Counter(), Counter()
    scales, etas = [], []
    for _ in range(10_000):
        p = pipe.sample(rng)
        n[len(p.layers)] += 1
        seqs.update(p.sequences)
        for layer in p.layers:
            for op in layer:
                if op.kind == "gaussian":
                    gsizes[op.size] += 1
                else:
                    msizes[op.size] += 1
                    dirs[op.direction] += 1
        scales.append(p.scale)
        etas.append(p.noise_sigma)
    assert set(n) == {1, 2, 3}
    assert set(seqs) == {"M", "G->M", "M->G", "G->M->G"}
    assert set(gsizes) == set(SIZES) and set(msizes) == set(SIZES)
    assert set(dirs) == {"horizontal", "vertical", "diagonal", "anti_diagonal"}
    assert 2.0 <= min(scales) and max(scales) <= 4.0 and max(scales) - min(scales) > 1.9
    assert 5.0 <= min(etas) and max(etas) <= 10.0 and max(etas) - min(etas) > 4.9


@pytest.fixture
def face():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)


def test_same_seed_same_bytes(face):
    pipe = DegradationPipeline()
    a, pa = pipe(face, np.random.default_rng(7))
    b, pb = pipe(face, np.random.default_rng(7))
    c, _ = pipe(face, np.random.default_rng(8))
    assert pa == pb and a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    assert a.dtype == np.uint8 and a.shape == face.shape


def test_params_json_round_trip_replays_exactly(face):
    pipe = DegradationPipeline()
    out, params = pipe(face, np.random.default_rng(3))
    again = DegradationParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert again == params
    assert pipe.apply(face, again).tobytes() == out.tobytes()


def test_constant_image_stays_constant_without_noise():
    img = np.full((50, 40, 3), 123, np.uint8)
    params = DegradationParams(((BlurOp("gaussian", 41), BlurOp("motion", 41, "diagonal")),), 3.3, 0.0, 0)
    assert np.array_equal(DegradationPipeline().apply(img, params), img)


def test_noise_has_the_drawn_strength():
    img = np.full((128, 128), 128, np.uint8)
    out = DegradationPipeline().apply(img, DegradationParams((), 1.0, 8.0, 5)).astype(float)
    assert out.std() == pytest.approx(8.0, rel=0.05)


def test_float_path_matches_uint8_path(face):
    pipe = DegradationPipeline()
    params = pipe.sample(np.random.default_rng(2))
    u8 = pipe.apply(face, params)
    f32 = pipe.apply(face.astype(np.float32) / 255, params)
    assert f32.dtype == np.float32
    assert np.abs(f32 * 255 - u8).max() <= 0.5 + 1e-3


def test_grey_images_keep_their_shape():
    pipe = DegradationPipeline()
    for shape in ((40, 30), (40, 30, 1)):
        out, _ = pipe(np.zeros(shape, np.uint8), np.random.default_rng(0))
        assert out.shape == shape


@pytest.mark.parametrize(
    "image, match",
    [(np.zeros((8, 8, 4), np.uint8), "HxWx3"), (np.zeros((8, 8, 3), np.uint16), "uint8")],
)
def test_bad_images(image, match):
    with pytest.raises(ValueError, match=match):
        DegradationPipeline().apply(image, DegradationParams((), 2.0, 5.0, 0))


def test_bad_config():
    with pytest.raises(ValueError, match="gaussian_sizes"):
        DegradationConfig(gaussian_sizes=(4,))
    with pytest.raises(ValueError, match="scale_range"):
        DegradationConfig(scale_range=(3.0, 2.0))
    with pytest.raises(ValueError, match="sequences"):
        DegradationConfig(sequences=("GX",))
