import pytest
import torch

from smfd.models import CBAM, RDC, AttentionUp, PixelShuffleUp, PostProcess
from smfd.models.blocks import ChannelAttention, PlainUp, TransposeUp
from smfd.models.local_pooling import LocalChannelAttention, LocalPostProcess


def test_rdc_shapes_and_dense_inputs():
    block = RDC(6, 10, num_layers=3, growth=4)
    assert block(torch.rand(2, 6, 9, 11)).shape == (2, 10, 9, 11)
    # layer i sees the input plus i earlier outputs
    assert [layer[0].in_channels for layer in block.layers] == [6, 10, 14]
    assert block.fuse.in_channels == 6 + 3 * 4


def test_rdc_residual_path_carries_the_input():
    block = RDC(4, 4, num_layers=1, growth=2).eval()
    for p in block.fuse.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        block.shortcut.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        block.shortcut.bias.zero_()
    x = torch.rand(1, 4, 5, 5)
    assert torch.allclose(block(x), x)  # fuse silenced: y = ReLU(shortcut(x)) = x for x >= 0


def test_cbam_keeps_shape_and_scales_only():
    x = torch.rand(2, 16, 8, 8) + 0.1
    y = CBAM(16, reduction=4)(x)
    assert y.shape == x.shape
    ratio = y / x
    assert (ratio > 0).all() and (ratio < 1).all()  # sigmoid gates in (0, 1), applied twice


def test_upsamplers_double_the_resolution():
    x = torch.rand(1, 8, 5, 7)
    for cls in (PixelShuffleUp, PlainUp, TransposeUp):
        assert cls(8, 3)(x).shape == (1, 3, 10, 14)
    up = AttentionUp(8, 6, 4)
    assert up(x, torch.rand(1, 6, 10, 14)).shape == (1, 10, 10, 14)
    with pytest.raises(ValueError, match="mode"):
        AttentionUp(8, 6, 4, mode="nearest")


def test_pixelshuffle_up_starts_without_checkerboard():
    up = PixelShuffleUp(4, 3)
    y = up.shuffle(up.conv(torch.rand(1, 4, 6, 6)))  # before the ReLU
    # ICNR: every 2x2 block of the output is one value, a nearest-neighbour upsampling of one conv
    assert torch.allclose(y, y[..., ::2, ::2].repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert y.std() > 0


def test_post_process_all_channel_mean():
    x = torch.rand(2, 3, 6, 6)
    y = PostProcess()(x)
    mu = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(y, (x - mu) * 2.0 + mu + 0.1)
    # the image mean moves by exactly b, but channel means spread apart around it
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)) + 0.1, atol=1e-6)
    cm_x, cm_y = x.mean(dim=(2, 3)), y.mean(dim=(2, 3))
    assert torch.allclose(cm_y - cm_y.mean(1, keepdim=True), 2 * (cm_x - cm_x.mean(1, keepdim=True)), atol=1e-6)


def test_post_process_per_channel_keeps_colour_balance():
    x = torch.rand(2, 3, 6, 6)
    y = PostProcess(per_channel=True)(x)
    assert torch.allclose(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)) + 0.1, atol=1e-6)
    const = torch.full((1, 3, 4, 4), 0.3)
    assert torch.allclose(PostProcess()(const), const + 0.1)


def _two_regions(window: int) -> torch.Tensor:
    """(1, 8, window, 4 * window): one random feature vector on the left window, another on the rest."""
    torch.manual_seed(0)
    x = torch.rand(1, 8, 1, 1).expand(1, 8, window, 4 * window).clone()
    x[..., window:] = torch.rand(1, 8, 1, 1) * 3
    return x


@pytest.mark.parametrize("module", [lambda: CBAM(8, reduction=2).channel, lambda: PostProcess()])
def test_local_statistics_see_the_training_crop_around_each_pixel(module):
    window = 16
    glob = module().eval()
    local = (LocalChannelAttention if isinstance(glob, ChannelAttention) else LocalPostProcess)(glob, window).eval()
    assert local.state_dict().keys() == glob.state_dict().keys()  # same parameters, same keys
    x = _two_regions(window)
    with torch.no_grad():
        y = local(x)
        # far from the other region, a pixel is treated as in a crop of the training size holding only its region
        assert torch.allclose(y[..., :4], glob(x[..., :window])[..., :4], atol=1e-5)
        assert torch.allclose(y[..., -4:], glob(x[..., -window:])[..., -4:], atol=1e-5)
        assert not torch.allclose(y, glob(x), atol=1e-3)  # global statistics mix the two regions
        small = torch.rand(1, 8, window, window)  # at the training size, local is global
        assert torch.allclose(local(small), glob(small), atol=1e-6)
