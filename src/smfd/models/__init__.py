"""Networks: blocks, mask generators, SMFD-UNet and its ablations, NAFNet (shipped), the mask baselines."""

from .baselines import UNet, UNetPlusPlus
from .blocks import CBAM, RDC, AttentionUp, PixelShuffleUp, PostProcess
from .mask_generator import MaskGenerator
from .nafnet import MaskNAFNet, NAFNet
from .registry import THESIS_PARAMS, build, count_parameters, create_model, example_inputs, list_models, model_task
from .runner import NetSpec, Runner
from .smfd_unet import SMFDUNet

__all__ = [
    "CBAM",
    "RDC",
    "THESIS_PARAMS",
    "AttentionUp",
    "MaskGenerator",
    "MaskNAFNet",
    "NAFNet",
    "NetSpec",
    "PixelShuffleUp",
    "PostProcess",
    "Runner",
    "SMFDUNet",
    "UNet",
    "UNetPlusPlus",
    "build",
    "count_parameters",
    "create_model",
    "example_inputs",
    "list_models",
    "model_task",
]
