"""Named models: ``create_model(name, **overrides)``, one factory per variant (timm/smp style).

How the default sizes were found
--------------------------------
The thesis gives totals counted the Keras way (BatchNorm moving mean and variance included) but not the
RDC depth, growth or widths. BatchNorm sits only in the RDC dense layers, so the non-trainable counts fix
``blocks x num_layers x growth``: the mask generator has 8 RDCs (4 encoder, 3 decoder, 1 head) and 1,408 / 2
= 704 BN channels, so ``num_layers x growth = 88``; SMFD-UNet has 12 RDCs (2 x 4 encoder, 3 decoder, 1 head)
and 960 / 2 = 480 BN channels, so ``num_layers x growth = 40``. A search over widths (doubling encoders),
(num_layers, growth) pairs with those products, CBAM reductions and decoder/head widths then gave:

* mask generator: encoder 48-96-192-384, decoder 256-128-64 (the thesis's), head RDC 32 (the thesis's),
  4 dense layers of growth 22, CBAM reduction 4: 5,416,029 vs 5,416,159 (-130, -0.002 %), BN channels 704
  (exact).
* SMFD-UNet: encoders 32-64-128-256 per branch, decoder 256-160-96, head RDC 64, 5 dense layers of growth 8,
  CBAM reduction 4: 7,532,503 vs 7,532,601 (-98, -0.001 %), BN channels 480 (exact).
* UNet and UNet++ (classic 64-1024 widths, BatchNorm, parameter-free 2x upsampling) reproduce the thesis's
  31,401,605 and 36,643,333 exactly.

The search script is ``scripts/fit_model_sizes.py``; ``tests/models`` pin these counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import torch
from torch import nn

from .baselines import UNet, UNetPlusPlus
from .local_pooling import use_local_stats
from .mask_generator import MaskGenerator
from .nafnet import MaskNAFNet, NAFNet
from .runner import NetSpec, Runner
from .smfd_unet import ResidualSMFDUNet, SMFDUNet

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_TASKS: dict[str, str] = {}

#: Sizes the thesis reports (Keras convention), for comparison in ``smfd summary``.
THESIS_PARAMS = {"mask_generator": 5_416_159, "smfd_unet": 7_532_601, "unet": 31_401_605, "unet_plusplus": 36_643_333}


def _register(task: str) -> Callable:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[fn.__name__] = fn
        _TASKS[fn.__name__] = task
        return fn

    return deco


@_register("mask")
def mask_generator(**kwargs) -> MaskGenerator:
    """The thesis's mask generator: grey face -> 5-class logits."""
    return MaskGenerator(**kwargs)


@_register("mask")
def mask_generator_lite(**kwargs) -> MaskGenerator:
    """The thesis's mask generator made light (not in the thesis): five levels of half the width (16-256), decoder
    160-96-48-24, head 16, dense layers of growth 12. 2.34M parameters and 3.4 GFLOPs a face at 128 px, against
    5.42M and 17.0 GFLOPs; the deeper level sees the whole face at 128 px."""
    return MaskGenerator(**{"encoder_channels": (16, 32, 64, 128, 256), "decoder_channels": (160, 96, 48, 24),
                            "head_channels": 16, "growth": 12, **kwargs})


@_register("mask")
def unet(**kwargs) -> UNet:
    """Classic UNet with BatchNorm (mask baseline, thesis Table 4.1)."""
    return UNet(**kwargs)


@_register("mask")
def unet_plusplus(**kwargs) -> UNetPlusPlus:
    """UNet++ (mask baseline, thesis Table 4.1)."""
    return UNetPlusPlus(**kwargs)


# The ablation variants follow the thesis's Table 4.3, where each row adds one component to the previous:
# backbone without mask branch -> + mask branch (plain upsampling) -> + attention upsampling with transposed
# conv -> + attention upsampling with PixelShuffle -> + post-processing (the full model).


def _smfd(residual: bool = False, **kwargs) -> SMFDUNet:
    """SMFD-UNet, or with ``residual`` its residual variant (:class:`ResidualSMFDUNet`, the same parameters)."""
    return (ResidualSMFDUNet if residual else SMFDUNet)(**kwargs)


@_register("deblur")
def smfd_unet_no_mask(**kwargs) -> SMFDUNet:
    """Ablation row 1: image branch only, plain upsampling, no attention, no post-processing."""
    return _smfd(**{"mask_channels": 0, "upsample": "plain", "attention": False, "post_process": False, **kwargs})


@_register("deblur")
def smfd_unet_plain_up(**kwargs) -> SMFDUNet:
    """Ablation row 2: + mask branch; plain (bilinear + conv) upsampling, no attention, no post-processing."""
    return _smfd(**{"upsample": "plain", "attention": False, "post_process": False, **kwargs})


@_register("deblur")
def smfd_unet_transpose_up(**kwargs) -> SMFDUNet:
    """Ablation row 3: attention upsampling with a transposed conv + CBAM on the skips; no post-processing."""
    return _smfd(**{"upsample": "transpose", "post_process": False, **kwargs})


@_register("deblur")
def smfd_unet_no_post(**kwargs) -> SMFDUNet:
    """Ablation row 4: attention upsampling with PixelShuffle + CBAM; no post-processing."""
    return _smfd(**{"post_process": False, **kwargs})


@_register("deblur")
def smfd_unet(**kwargs) -> SMFDUNet:
    """The full SMFD-UNet: both branches, PixelShuffle attention upsampling, post-processing (``residual=True``:
    the residual variant)."""
    return _smfd(**kwargs)


@_register("deblur")
def smfd_unet_residual(**kwargs) -> SMFDUNet:
    """SMFD-UNet predicting a correction to the blurry input (not in the thesis; configs/cpu.yaml)."""
    return _smfd(residual=True, **kwargs)


@_register("deblur")
def nafnet(**kwargs) -> NAFNet:
    """NAFNet-style general deblurrer (no mask), width 16: 7.37M parameters, near SMFD-UNet's 7.53M."""
    return NAFNet(**{"width": 16, **kwargs})


@_register("deblur")
def nafnet_mask(**kwargs) -> MaskNAFNet:
    """NAFNet (width 16) with a light mask encoder fused into every encoder level (mask width 8): the thesis's
    mask guidance at close to NAFNet's cost."""
    return MaskNAFNet(**{"width": 16, **kwargs})


def list_models(task: str | None = None) -> list[str]:
    """Registered names, optionally only those of one task (``mask`` or ``deblur``)."""
    return [n for n in _REGISTRY if task is None or _TASKS[n] == task]


def model_task(name: str) -> str:
    _check_name(name)
    return _TASKS[name]


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}")


#: Options without parameters, kept in a net's options (so a weights file rebuilds the same net) and applied at one
#: place each: ``pool_window``: test-time local statistics, built into the net
#: (:func:`smfd.models.local_pooling.use_local_stats`); ``keep_mean`` (deblurring nets): the inference step of
#: :mod:`smfd.models.steps`; ``work_size`` (mask nets): the size the runner runs the net at. The last two are the
#: runner's (:data:`RUN_OPTIONS`): :func:`build` takes them, :func:`create_model` refuses them.
SETTINGS = ("pool_window", "keep_mean", "work_size")
RUN_OPTIONS = ("keep_mean", "work_size")


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered net (a plain torch module); ``overrides`` replace the factory's keyword defaults and
    ``pool_window`` switches on test-time local statistics. To run a net, build its :class:`Runner` instead
    (:func:`build`), which also takes the runner's options (:data:`RUN_OPTIONS`).

    Raises:
        ValueError: unknown name (the message lists the known ones), bad overrides, or a runner option.
    """
    _check_name(name)
    run = [k for k in RUN_OPTIONS if k in overrides]
    if run:
        raise ValueError(f"bad options for model {name!r}: {run[0]} is applied when the net is run; "
                         "use smfd.models.build(name, ...) for a runner")
    try:
        model = _REGISTRY[name](**{k: v for k, v in overrides.items() if k != "pool_window"})
    except TypeError as e:
        raise ValueError(f"bad options for model {name!r}: {e}") from None
    if overrides.get("pool_window"):
        use_local_stats(model, int(overrides["pool_window"]))
    return model


def build(name: str, **options) -> Runner:
    """A registered net with its :class:`NetSpec`, ready to run: ``options`` are the factory's keyword arguments
    plus :data:`SETTINGS`, all kept in the spec (a weights file stores them and rebuilds the same net).

    Raises:
        ValueError: unknown name, bad options, or a runner option of the other task.
    """
    _check_name(name)
    task = _TASKS[name]
    wrong = [k for k in RUN_OPTIONS if k in options and (k == "keep_mean") != (task == "deblur")]
    if wrong:
        raise ValueError(f"bad options for model {name!r}: {wrong[0]} is an option of "
                         f"{'deblurring' if wrong[0] == 'keep_mean' else 'mask'} nets")
    model = create_model(name, **{k: v for k, v in options.items() if k not in RUN_OPTIONS})
    work_size = options.get("work_size")
    if work_size is not None and (not isinstance(work_size, int) or work_size < 2 * model.stride):
        raise ValueError(f"bad options for model {name!r}: work_size must be an integer of at least "
                         f"{2 * model.stride}, got {work_size!r}")
    try:  # as a weights file stores them (JSON: tuples become lists), so a loaded net has the same spec
        stored = json.loads(json.dumps(options))
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad options for model {name!r}: not storable in a weights file ({e})") from None
    spec = NetSpec(name=name, task=task, options=stored, in_channels=model.in_channels,
                   classes=model.num_classes if task == "mask" else 0, mask_channels=model.mask_channels,
                   stride=model.stride, min_size=getattr(model, "min_size", 0), work_size=work_size,
                   steps=("keep_mean",) if options.get("keep_mean") else ())
    return Runner(model, spec)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter counts in the thesis's (Keras) convention.

    Returns:
        ``trainable``: PyTorch parameters (BatchNorm gamma and beta included, as in Keras);
        ``non_trainable_bn``: BatchNorm moving mean and variance (2 per BN channel; buffers in PyTorch);
        ``total_keras_convention``: their sum, comparable with the thesis's totals.
    """
    trainable = sum(p.numel() for p in model.parameters())
    bn = sum(m.num_features for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    return {"trainable": trainable, "non_trainable_bn": 2 * bn, "total_keras_convention": trainable + 2 * bn}


def example_inputs(model: nn.Module, batch: int = 1, height: int = 256, width: int = 256) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shapes: ``(image,)`` or ``(image, mask probabilities)``."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, model.in_channels, height, width, generator=g)
    if model.mask_channels:
        logits = torch.randn(batch, model.mask_channels, height, width, generator=g)
        return image, torch.softmax(logits, dim=1)
    return (image,)
