"""Training, module by module:

* ``config``: typed configs from short YAML files with ``--set`` overrides; ``from_dict`` / ``from_yaml`` read any
  config dataclass (a bake-off's spec, a queue file), an error naming the key;
* ``loop`` (``fit``, ``evaluate``), ``state``, ``datasets``, ``schedule``, ``init``, ``runlog``: one training run;
  ``checkpoint``: its checkpoints, written atomically;
* ``jobs``: the one runner for batches of jobs: a typed ``Job`` (a training config, its scorings, the jobs it waits
  for, its share of a clock) run here or in processes side by side, a finished one not run again, a failure kept to
  its job;
* ``crossval``: cross-validation and the ablation, their folds and variants run as jobs;
* ``queue``: a queue file's jobs inside one wall-clock budget (a lent GPU's one command), its results in one small
  folder.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, load_config
from .loop import FitResult, TrainingDiverged, evaluate, fit

__all__ = ["FitResult", "TrainConfig", "TrainingDiverged", "evaluate", "fit", "load_checkpoint", "load_config",
           "save_checkpoint"]
