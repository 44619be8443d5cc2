"""Where a run's weights start: ``model.init`` (an smfd safetensors file, never a pickle), and the mask-guided
NAFNet's warm start from a plain one."""

from __future__ import annotations

import logging

import torch

from ..models.io import load_state, load_weights
from ..models.runner import Runner

log = logging.getLogger("smfd.train")


def init_from(runner: Runner, path: str) -> None:
    """Load an smfd safetensors file (never a pickle) into the runner's net; its architecture must match."""
    source, spec = load_weights(path), runner.spec
    if (source.spec.name, spec.name) == ("nafnet", "nafnet_mask"):
        warm_start_mask_nafnet(runner, source, path)
        return
    if source.spec.name != spec.name:
        raise ValueError(f"model.init: {path} holds {source.spec.name}, the config trains {spec.name}")
    if source.spec.options != spec.options:
        log.warning("model.init: %s was made with options %s, the config has %s", path, source.spec.options,
                    spec.options)
    load_state(runner.module, source.module.state_dict(), path, spec.name)
    log.info("initialised %s from %s", spec.name, path)


def warm_start_mask_nafnet(runner: Runner, plain: Runner, source: str = "plain NAFNet") -> None:
    """Start a mask-guided NAFNet from a plain one: the shared body takes the plain net's weights and the mask
    fusion (the 1x1 projections that add the mask features to the image branch) starts at zero, so before the
    first step the guided net gives exactly the plain net's outputs and training adds what the mask is worth
    (the zero-initialised branch of ControlNet)."""
    model = runner.module
    own, theirs = model.state_dict(), plain.module.state_dict()
    missing = [k for k in theirs if k not in own]
    extra = [k for k in own if k not in theirs and not k.startswith(("mask_levels.", "mask_down.", "fuse."))]
    if missing or extra or any(own[k].shape != v.shape for k, v in theirs.items()):
        raise ValueError(f"model.init: {source} does not fit {runner.spec.name}'s image branch "
                         f"(options {plain.spec.options} vs {runner.spec.options})")
    load_state(model, {**own, **theirs}, source, runner.spec.name)
    with torch.no_grad():
        for conv in model.fuse:
            conv.weight.zero_()
            conv.bias.zero_()
    log.info("initialised %s from the plain NAFNet %s (mask fusion at zero)", runner.spec.name, source)


__all__ = ["init_from", "warm_start_mask_nafnet"]
