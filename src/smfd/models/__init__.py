"""Networks: the blocks, the mask generator, SMFD-UNet and its ablation variants, and baselines."""

from .baselines import MaskNAFNet, NAFNet, UNet, UNetPlusPlus
from .blocks import CBAM, RDC, AttentionUp, PixelShuffleUp, PostProcess
from .mask_generator import MaskGenerator
from .registry import THESIS_PARAMS, count_parameters, create_model, example_inputs, list_models, model_task
from .smfd_unet import SMFDUNet

__all__ = [
    "CBAM",
    "RDC",
    "THESIS_PARAMS",
    "AttentionUp",
    "MaskGenerator",
    "MaskNAFNet",
    "NAFNet",
    "PixelShuffleUp",
    "PostProcess",
    "SMFDUNet",
    "UNet",
    "UNetPlusPlus",
    "count_parameters",
    "create_model",
    "example_inputs",
    "list_models",
    "model_task",
]
