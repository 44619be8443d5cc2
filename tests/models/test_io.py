"""Weights files: self-describing safetensors whose bytes depend only on the weights."""

import json

import torch

from helpers import TINY_KWARGS
from smfd.models import build
from smfd.models.io import load_weights, save_weights


def test_saving_the_same_weights_twice_gives_the_same_bytes(tmp_path):
    torch.manual_seed(0)
    model = build("smfd_unet", **TINY_KWARGS)
    shas = [save_weights(model, tmp_path / f"{i}.safetensors", half=True, extra={"b": 1, "a": 2}) for i in range(4)]
    assert len(set(shas)) == 1  # five metadata keys: an unsorted header would differ between saves
    data = (tmp_path / "0.safetensors").read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0
    header = json.loads(data[8 : 8 + n])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(header["__metadata__"])
    loaded = load_weights(tmp_path / "0.safetensors")
    assert loaded.spec == model.spec  # the same contract: name, options, stride, mask channels, steps
    for k, v in model.module.state_dict().items():
        torch.testing.assert_close(loaded.module.state_dict()[k], v.half().float() if v.is_floating_point() else v)
