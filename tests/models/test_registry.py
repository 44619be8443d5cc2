"""Tests generated from the registry: every model, the same checks."""

import pytest
import torch

from smfd.models import THESIS_PARAMS, Runner, build, count_parameters, create_model, example_inputs, list_models

ALL = list_models()
TINY = {"encoder_channels": (8, 16), "decoder_channels": (8,), "head_channels": 8, "num_layers": 1, "growth": 4}

# Sizes in the thesis's Keras convention (trainable + BatchNorm moving mean/variance). The first four are the
# thesis's own models; see smfd.models.registry for how the widths were fitted.
PINNED = {
    "mask_generator": (5_416_029, 1_408),
    "mask_generator_lite": (2_345_854, 960),  # not in the thesis: 3.4 GFLOPs at 128 px against 17.0
    "smfd_unet": (7_532_503, 960),
    "unet": (31_401_605, 11_776),
    "unet_plusplus": (36_643_333, 14_592),
    "smfd_unet_no_post": (7_532_503, 960),
    "smfd_unet_residual": (7_532_503, 960),
    "smfd_unet_no_mask": (1_150_262, 640),
    "smfd_unet_plain_up": (2_787_134, 960),
    "smfd_unet_transpose_up": (1_960_599, 960),
    "nafnet": (7_371_923, 0),
    "nafnet_mask": (7_733_139, 0),  # NAFNet + a light mask encoder: 4.9 % more
}


def test_every_model_is_pinned():
    assert set(PINNED) == set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_parameter_counts(name):
    counts = count_parameters(create_model(name))
    assert (counts["total_keras_convention"], counts["non_trainable_bn"]) == PINNED[name]
    assert counts["trainable"] + counts["non_trainable_bn"] == counts["total_keras_convention"]


@pytest.mark.parametrize("name", ["mask_generator", "smfd_unet"])
def test_thesis_models_within_half_a_percent_and_exact_bn(name):
    counts = count_parameters(create_model(name))
    assert abs(counts["total_keras_convention"] - THESIS_PARAMS[name]) / THESIS_PARAMS[name] < 0.005
    assert counts["non_trainable_bn"] == {"mask_generator": 1_408, "smfd_unet": 960}[name]


@pytest.mark.parametrize("name", ALL)
def test_odd_sizes_shapes_no_nan_and_gradients(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    inputs = example_inputs(model, 2, 37, 45)
    out = model(*inputs)
    expected = model.num_classes if hasattr(model, "num_classes") else 3
    assert out.shape == (2, expected, 37, 45)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


@pytest.mark.parametrize("name", ALL)
def test_train_and_eval_modes(name):
    torch.manual_seed(0)
    model = create_model(name)
    inputs = example_inputs(model, 2, 16, 16)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    model.eval()
    with torch.no_grad():
        a, b = model(*inputs), model(*inputs)
    assert torch.equal(a, b)
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())  # eval leaves BN stats alone
    model.train()
    with torch.no_grad():
        model(*inputs)
    changed = any(not torch.equal(v, buffers[k]) for k, v in model.named_buffers() if "running" in k)
    assert changed == any("running" in k for k in buffers)  # training updates BN statistics


def test_mask_generator_probabilities():
    runner = build("mask_generator").eval()
    with torch.no_grad():
        probs = runner.probabilities(torch.rand(1, 3, 24, 40))  # an RGB face: the runner makes it grey
    assert probs.shape == (1, 5, 24, 40)
    assert torch.allclose(probs.sum(1), torch.ones(1, 24, 40), atol=1e-5)


@pytest.mark.parametrize("name", list_models("mask"))
def test_mask_nets_at_a_working_size_see_the_face_downscaled(name):
    torch.manual_seed(0)
    small = {"channels": (4, 8, 8)}
    if name.startswith("mask_generator"):
        small = {"encoder_channels": (4, 8), "decoder_channels": (8,), "head_channels": 4, "num_layers": 1, "growth": 2}
    free = build(name, **small).eval()
    fixed = build(name, **small, work_size=16).eval()
    fixed.module.load_state_dict(free.module.state_dict())  # no parameters of its own: trained weights take it
    assert (fixed.spec.work_size, free.spec.work_size) == (16, None)
    x = torch.rand(2, 1, 64, 48)
    with torch.no_grad():
        out = fixed(x)
        small_out = free.module(torch.nn.functional.interpolate(x, size=(16, 12), mode="area"))
        assert out.shape == (2, 5, 64, 48)
        # the net ran on the 16 x 12 (longer side 16) area-downscaled face; its logits were resized back
        torch.testing.assert_close(out, torch.nn.functional.interpolate(small_out, size=(64, 48), mode="bilinear"))
        torch.testing.assert_close(fixed(x[..., :16, :12]), free.module(x[..., :16, :12]))  # at its size: as is
        torch.testing.assert_close(fixed.module(x), free(x))  # the net runs at any size; the option is the runner's
    with pytest.raises(ValueError, match="use smfd.models.build"):
        create_model(name, **small, work_size=16)  # a plain net cannot hold a runner option


def test_smfd_unet_uses_the_mask():
    torch.manual_seed(0)
    model = create_model("smfd_unet").eval()
    image, mask = example_inputs(model, 1, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(image, mask), model(image, mask.flip(-1)))
    with pytest.raises(ValueError, match="mask"):
        model(image)
    with pytest.raises(ValueError, match=r"\(B, 5, 32, 32\)"):
        model(image, mask[:, :3])


def test_variants_differ_where_the_thesis_says():
    full, no_post = create_model("smfd_unet"), create_model("smfd_unet_no_post")
    assert type(full.post).__name__ == "PostProcess" and type(no_post.post).__name__ == "Identity"
    assert create_model("smfd_unet_no_mask").mask_encoder is None
    assert type(create_model("smfd_unet_transpose_up").up[0].up).__name__ == "TransposeUp"
    plain = create_model("smfd_unet_plain_up").up[0]
    assert type(plain.up).__name__ == "PlainUp" and type(plain.attn).__name__ == "Identity"
    assert create_model("smfd_unet", per_channel_post=True).post.per_channel


def test_residual_variant_adds_the_input():
    torch.manual_seed(0)
    plain, residual = create_model("smfd_unet_no_post").eval(), create_model("smfd_unet_no_post", residual=True).eval()
    residual.load_state_dict(plain.state_dict())
    image, mask = example_inputs(plain, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(residual(image, mask), image + plain(image, mask))
    variant = create_model("smfd_unet_residual")  # the registered variant is the same class as residual=True
    assert type(variant) is type(create_model("smfd_unet", residual=True)) is not type(create_model("smfd_unet"))


def test_keep_mean_gives_the_output_the_inputs_channel_means():
    torch.manual_seed(0)
    free = build("smfd_unet", residual=True).eval()
    kept = build("smfd_unet", residual=True, keep_mean=True).eval()
    kept.module.load_state_dict(free.module.state_dict())  # no parameters of its own: trained weights take it
    image, mask = example_inputs(free.module, 2, 40, 48)  # padded inside: the means are over the real pixels
    assert kept.spec.steps == ("keep_mean",) and free.spec.steps == ()
    with torch.no_grad():
        a, b = free(image, mask), kept(image, mask)
        torch.testing.assert_close(kept.module(image, mask), a)  # the net itself is unchanged: the step follows
    means = image.mean(dim=(2, 3))
    assert (a.clamp(0, 1).mean(dim=(2, 3)) - means).abs().max() > 1e-2  # the random net drifts...
    assert ((a < 0) | (a > 1)).float().mean() > 0.01  # ...with pixels outside [0, 1]...
    torch.testing.assert_close(b.clamp(0, 1).mean(dim=(2, 3)), means)  # ...the switch removes it, once clipped
    shift = (b - a).flatten(2)
    torch.testing.assert_close(shift, shift[..., :1].expand_as(shift))  # one shift per channel: nothing else changes


def test_unknown_model_and_bad_options():
    with pytest.raises(ValueError, match="known models: .*smfd_unet"):
        create_model("resnet50")
    with pytest.raises(ValueError, match="bad options"):
        create_model("smfd_unet", colour="blue")
    r = build("smfd_unet", head_channels=32)
    assert r.spec.name == "smfd_unet" and r.spec.options == {"head_channels": 32}
    assert (r.spec.task, r.spec.reads_mask, r.spec.stride) == ("deblur", True, r.module.stride)
    with pytest.raises(ValueError, match="keep_mean is an option of deblurring nets"):
        build("mask_generator", keep_mean=True)
    with pytest.raises(ValueError, match="work_size must be an integer"):
        build("mask_generator", work_size=4)


def test_a_runner_runs_every_net_the_same_way():
    """The runner pads to the stride (and up to the local-statistics window), crops back, passes the mask only
    to nets that read one and converts RGB faces for grey mask nets."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 45)  # needs padding
    probs = build("mask_generator", **TINY).probabilities(x)
    assert probs.shape == (2, 5, 37, 45)
    for name in ("smfd_unet", "nafnet", "nafnet_mask"):
        r = build(name, **({"width": 8} if name.startswith("nafnet") else TINY)).eval()
        with torch.no_grad():
            out = r(x, probs)
            ref = r.module(x, probs) if r.spec.reads_mask else r.module(x)
        assert out.shape == x.shape and out.dtype == torch.float32
        torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="reads a mask"):
        build("smfd_unet", **TINY)(x)
    assert Runner(build("nafnet", width=8).module, build("nafnet", width=8).spec).precision == "fp32"


@pytest.mark.parametrize("name", ["smfd_unet", "nafnet"])
def test_pool_window_is_a_parameterless_option_global_up_to_the_window(name):
    torch.manual_seed(0)
    plain = create_model(name).eval()
    for n, p in plain.named_parameters():  # NAFNet's blocks start as identities (zero scales): make them act
        if n.endswith(("beta", "gamma")):
            torch.nn.init.constant_(p, 0.5)
    local = create_model(name, pool_window=32).eval()
    local.load_state_dict(plain.state_dict())  # no parameters of its own
    x, m = torch.rand(1, 3, 32, 32), torch.softmax(torch.randn(1, 5, 32, 32), 1)
    args = (m,) if name == "smfd_unet" else ()
    with torch.no_grad():
        assert torch.allclose(local(x, *args), plain(x, *args), atol=1e-6)  # the window's size: global
        small = local(x[..., :20, :24], *(a[..., :20, :24] for a in args))  # padded up to the window
        assert small.shape == (1, 3, 20, 24) and torch.isfinite(small).all()
        big = torch.rand(1, 3, 96, 96) * 0.2
        big[..., 48:] += 0.8  # two regions: a larger image's local statistics differ from its global ones
        big_args = tuple(torch.softmax(torch.randn(1, 5, 96, 96), 1) for _ in args)
        assert (local(big, *big_args) - plain(big, *big_args)).abs().max() > 2e-5  # (untrained gates are near 0.5)
    windows = sorted({m.window for m in local.modules() if hasattr(m, "window")})
    assert windows == ([8, 16, 32] if name == "smfd_unet" else [2, 4, 8, 16, 32])  # per level, halving
    assert local.state_dict().keys() == plain.state_dict().keys()
    # one conversion of the built net (local_pooling.use_local_stats), not an argument of its blocks
    assert type(local) is type(plain) and not any(hasattr(m, "window") for m in plain.modules())
    with pytest.raises(ValueError, match="pool_window must be a multiple"):
        create_model(name, pool_window=20)


def test_local_stats_above_keeps_smaller_inputs_bit_for_bit_and_probes_where_the_net_is():
    """The pipeline's conversion for big crops (smfd.models.local_pooling.local_stats_above): inputs up to the
    window run exactly as the plain net (no padding, whole-input statistics), larger ones per window; a net on
    another device is probed there; a window the stride does not suit is refused; a net with windows keeps its."""
    from smfd.models.local_pooling import local_stats_above

    torch.manual_seed(0)
    plain = create_model("nafnet", width=4, middle_blocks=1).eval()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.3)
    local = create_model("nafnet", width=4, middle_blocks=1).eval()
    local.load_state_dict(plain.state_dict())
    assert local_stats_above(local, 32) == 32 and local.min_size == plain.min_size
    with torch.no_grad():
        for side in (16, 32, (32, 24)):
            h, w = side if isinstance(side, tuple) else (side, side)
            x = torch.rand(1, 3, h, w)
            assert torch.equal(local(x), plain(x))
        big = torch.rand(1, 3, 64, 96) * 0.2
        big[..., 48:] += 0.8
        assert (local(big) - plain(big)).abs().max() > 1e-4
    assert local_stats_above(local, 64) == 32  # already converted: its own window
    with pytest.raises(ValueError, match="pool_window must be a multiple"):
        local_stats_above(create_model("nafnet", width=4, middle_blocks=1), 20)
    on_meta = create_model("nafnet", width=4, middle_blocks=1).to("meta")  # stands in for a GPU
    assert local_stats_above(on_meta, 32) == 32
