"""The mask-guided NAFNet warm-started from a plain NAFNet gives exactly the plain net's outputs before its first
step (the mask fusion starts at zero), and then learns from the mask (the fusion gets gradients)."""

import pytest
import torch

from smfd.models import build
from smfd.models.io import save_weights
from smfd.train.init import init_from, warm_start_mask_nafnet


def test_step_zero_reproduces_the_plain_net_exactly_and_the_fusion_learns(tmp_path):
    torch.manual_seed(0)
    plain = build("nafnet", width=8).eval()
    path = tmp_path / "plain.safetensors"
    save_weights(plain, path)
    guided = build("nafnet_mask", width=8)
    init_from(guided, str(path))
    guided.eval()
    x = torch.rand(2, 3, 48, 48)
    mask = torch.softmax(torch.randn(2, 5, 48, 48), 1)
    with torch.no_grad():
        assert torch.equal(plain(x), guided(x, mask))
    guided.train()
    guided(x, mask).abs().mean().backward()
    assert any(conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0 for conv in guided.module.fuse)


def test_a_plain_net_of_another_width_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        warm_start_mask_nafnet(build("nafnet_mask", width=8), build("nafnet", width=16))
