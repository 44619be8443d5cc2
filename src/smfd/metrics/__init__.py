"""Metrics: PSNR/SSIM/MSE/colour shift for images, Dice/Jaccard for masks, and the Dice loss."""

from .image import colour_shift, mse255, psnr, ssim
from .masks import dice_loss, dice_per_class, jaccard_per_class

__all__ = ["colour_shift", "dice_loss", "dice_per_class", "jaccard_per_class", "mse255", "psnr", "ssim"]
