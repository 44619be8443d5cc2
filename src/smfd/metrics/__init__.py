"""Metrics: PSNR/SSIM/MSE/colour shift for images, Dice/Jaccard for masks, and the Dice loss."""

from .image import colour_shift, from_uint8, mse255, psnr, psnr_uint8, scores_uint8, ssim
from .masks import dice_loss, dice_per_class, jaccard_per_class

__all__ = ["colour_shift", "dice_loss", "dice_per_class", "from_uint8", "jaccard_per_class", "mse255", "psnr",
           "psnr_uint8", "scores_uint8", "ssim"]
