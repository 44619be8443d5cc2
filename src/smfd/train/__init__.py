"""Training: typed configs, the loop (fit/evaluate), checkpoints, one runner for batches of jobs (jobs), and on it
cross-validation and ablations (crossval) and a queue inside a time budget (queue)."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, load_config
from .loop import FitResult, TrainingDiverged, evaluate, fit

__all__ = ["FitResult", "TrainConfig", "TrainingDiverged", "evaluate", "fit", "load_checkpoint", "load_config",
           "save_checkpoint"]
