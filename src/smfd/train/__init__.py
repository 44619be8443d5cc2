"""Training: typed configs, the loop (fit/evaluate), checkpoints, cross-validation and ablations."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, load_config
from .loop import FitResult, TrainingDiverged, evaluate, fit

__all__ = ["FitResult", "TrainConfig", "TrainingDiverged", "evaluate", "fit", "load_checkpoint", "load_config",
           "save_checkpoint"]
