"""Weights files: self-describing safetensors whose bytes depend only on the weights."""

import json

import torch

from helpers import TINY_KWARGS
from smfd.models import create_model
from smfd.models.io import load_weights, save_weights


def test_saving_the_same_weights_twice_gives_the_same_bytes(tmp_path):
    torch.manual_seed(0)
    model = create_model("smfd_unet", **TINY_KWARGS)
    shas = [save_weights(model, tmp_path / f"{i}.safetensors", half=True, extra={"b": 1, "a": 2}) for i in range(4)]
    assert len(set(shas)) == 1  # five metadata keys: an unsorted header would differ between saves
    data = (tmp_path / "0.safetensors").read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0
    header = json.loads(data[8 : 8 + n])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(header["__metadata__"])
    loaded = load_weights(tmp_path / "0.safetensors")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v.half().float() if v.is_floating_point() else v)
