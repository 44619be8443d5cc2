"""Typed training configuration from short YAML files, with ``--set key=value`` overrides.

A YAML file holds the settings shared by both tasks and a ``tasks:`` section whose ``mask:`` or ``deblur:``
entry is merged over them, so one file (``configs/thesis.yaml``) describes the whole protocol. Unknown keys
are errors. The resolved config of a run is written into its folder as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from ..degrade import DEGRADATIONS, RealisticConfig
from ..models.runner import TASKS, Task
from ..precision import PRECISIONS
from ..score.masks import parse_mask_source


@dataclass
class ModelConfig:
    name: str = ""  # registry name; the task's default if empty
    kwargs: dict = field(default_factory=dict)
    init: str = ""  # start from these weights (an smfd .safetensors file: a run's best.safetensors or a bundle's)


@dataclass
class DataConfig:
    root: str = ""  # face folder (images/ + masks/); usually given with --data
    split: str = ""  # split JSON to use; if empty, made from the folder's ids with split_seed and subset
    split_seed: int = 0
    subset: int | None = None  # random subset before splitting (thesis: 3,000 mask / 2,000 deblur)
    test_fraction: float = 0.2  # share held out for testing (the thesis: 0.2)
    fold: int = 0  # which of the 5 folds validates (the others train)
    folds: int = 5
    size: int = 256  # faces are resized to size x size
    crop: int | None = None  # random training crops of this side (validation uses whole faces)
    train_limit: int | None = None  # use at most this many training faces (quick runs)
    val_limit: int | None = None
    augment: bool = True
    degradation: str = "thesis"  # thesis, realistic or mixed (see smfd.degrade.make_degradation)
    realistic_share: float = 0.5  # mixed: the share of faces degraded with the realistic family
    lowres_share: float = 0.0  # mixed: the share of small faces compressed and resized up (the lowres family)
    num_workers: int = 2
    seed: int = 0  # seed of the fixed validation degradations
    # faces at several sizes: each training face is drawn at one of these sides (px, uniformly), read from `hires`
    # when larger than `size` (the same ids at a larger size; masks come from `root`, scaled), then degraded at
    # that size (blur scaled to the face) and cut to `crop`; empty: every face at `size`. Validation stays at `size`.
    sizes: tuple[int, ...] = ()
    hires: str = ""  # e.g. ../shared/data/synthface-512 (images only, ids as in root)
    hires_only: bool = False  # train only on the faces `hires` holds, so every face can be drawn at every size
    # validate on faces at this side (read from `hires` when larger, degraded at that size, the central `crop`):
    # the faces a big-face net restores; 0: validation faces at `size`, whole
    val_size: int = 0
    # the realistic family's ranges for the training faces (smfd.degrade.RealisticConfig's fields, e.g.
    # {blur_weights: [0.55, 0.2, 0.1, 0.15]}: more camera shake); empty: its defaults. Validation faces keep the
    # defaults, so runs with different training mixes are validated on the same faces and degradations
    realistic: dict = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "adam"  # adam (the thesis) or adamw
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0


@dataclass
class SchedulerConfig:
    name: str = "plateau"  # plateau (the thesis: ReduceLROnPlateau) or cosine (over budget_minutes, else the epochs)
    factor: float = 0.2
    patience: int = 5
    min_lr: float = 1e-9


@dataclass
class TrainConfig:
    task: Task = "deblur"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    epochs: int = 50
    batch_size: int = 16
    early_stop: int = 10  # stop after this many epochs without a better validation metric
    loss: str = ""  # dice (mask) / mse (deblur) if empty; deblur also l1 or charbonnier
    fft_loss: float = 0.0  # deblur: add this times the L1 distance of the 2-D FFTs (frequency loss)
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: off); validated and saved
    budget_minutes: float | None = None  # stop training after this much wall-clock (epochs is then an upper bound)
    checkpoint_minutes: float | None = None  # also write last.pt every this many training minutes within an epoch
    monitor: str = ""  # dice (mask) / ssim (deblur) if empty; higher is better
    mask_source: str = "gt"  # deblur only: gt or generator:RUN_OR_CHECKPOINT
    device: str = "auto"  # auto, cpu, cuda
    seed: int = 0
    threads: int | None = None  # torch CPU threads
    precision: str = "auto"  # auto (bf16 where the hardware does it natively), bf16 or fp32; see smfd.precision
    channels_last: bool = True  # the net and its batches in channels_last (benchmarks/speed.py: faster for most nets)
    compile: bool = False  # torch.compile the net for the training step (weights, EMA and validation stay eager);
    # its compilation (minutes on a CPU) counts in budget_minutes: measure with benchmarks/train_throughput.py --compile

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        defaults = {"mask": ("mask_generator", "dice", "dice"), "deblur": ("smfd_unet", "mse", "ssim")}[self.task]
        self.model.name = self.model.name or defaults[0]
        self.loss = self.loss or defaults[1]
        self.monitor = self.monitor or defaults[2]
        if self.loss not in ("dice", "mse", "l1", "charbonnier"):
            raise ValueError(f"loss must be dice, mse, l1 or charbonnier, got {self.loss!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.optim.name not in ("adam", "adamw"):
            raise ValueError(f"optim.name must be adam or adamw, got {self.optim.name!r}")
        if self.scheduler.name not in ("plateau", "cosine"):
            raise ValueError(f"scheduler.name must be plateau or cosine, got {self.scheduler.name!r}")
        if self.data.degradation not in DEGRADATIONS:
            raise ValueError(f"data.degradation must be one of {', '.join(DEGRADATIONS)}, "
                             f"got {self.data.degradation!r}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.budget_minutes is not None and self.budget_minutes <= 0:
            raise ValueError(f"budget_minutes must be > 0, got {self.budget_minutes}")
        if self.checkpoint_minutes is not None and self.checkpoint_minutes <= 0:
            raise ValueError(f"checkpoint_minutes must be > 0, got {self.checkpoint_minutes}")
        if self.monitor not in ("dice", "jaccard", "ssim", "psnr"):
            raise ValueError(f"monitor must be dice, jaccard, ssim or psnr, got {self.monitor!r}")
        if parse_mask_source(self.mask_source, name="mask_source").kind != "gt" and self.task == "mask":
            raise ValueError("mask_source applies to the deblur task only")
        self._check_realistic()
        self._check_sizes()
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def _check_realistic(self) -> None:
        d = self.data
        if not d.realistic:
            return
        if d.degradation not in ("realistic", "mixed"):
            raise ValueError(f"data.realistic applies to degradation realistic or mixed, not {d.degradation!r}")
        if d.degradation == "realistic" and "clean_share" in d.realistic:
            raise ValueError("data.realistic.clean_share applies to degradation mixed (realistic degrades every face)")
        realistic_config(d)  # its keys and values checked now, not at the first batch

    def _check_sizes(self) -> None:
        d = self.data
        if d.hires_only and not d.hires:
            raise ValueError("data.hires_only needs data.hires, the folder whose faces it keeps")
        if d.val_size and (d.val_size < 16 or (d.val_size > d.size and not d.hires)):
            raise ValueError(f"data.val_size {d.val_size}: a face side of at least 16 px, and above data.size "
                             f"({d.size}) read from data.hires, which is not set")
        if d.val_size and self.task != "deblur":
            raise ValueError("data.val_size applies to the deblur task")
        if not d.sizes:
            return
        if min(d.sizes) < 16:
            raise ValueError(f"data.sizes must be face sides of at least 16 px, got {list(d.sizes)}")
        if len(set(d.sizes)) > 1 and (d.crop is None or d.crop > min(d.sizes)):
            raise ValueError(f"data.sizes {list(d.sizes)}: faces of several sizes need data.crop (at most "
                             f"{min(d.sizes)}) so a batch holds one shape")
        if max(d.sizes) > d.size and not d.hires:
            raise ValueError(f"data.sizes up to {max(d.sizes)} px need data.hires, a folder of the faces at that "
                             f"size (data.size is {d.size})")
        if d.degradation == "thesis" and set(d.sizes) != {256}:
            raise ValueError("the thesis's degradation is defined at 256 px: data.sizes needs degradation realistic, "
                             "lowres or mixed")
        if self.task != "deblur":
            raise ValueError("data.sizes applies to the deblur task")

    def to_dict(self) -> dict:
        return asdict(self)


def realistic_config(data: DataConfig) -> RealisticConfig:
    """The realistic family's ranges for the training faces: :class:`~smfd.degrade.RealisticConfig` with
    ``data.realistic``'s values; an unknown key or a bad value is a ValueError naming ``data.realistic.KEY``."""
    return from_dict(RealisticConfig, data.realistic, "data.realistic")


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file's contents; a file that is not YAML is a ValueError of one line naming it (and where)."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ValueError(f"{path}: not valid YAML: {getattr(e, 'problem', None) or 'unreadable'}{where}") from None


def from_yaml(cls: type, path: str | os.PathLike) -> Any:
    """A config dataclass from a YAML file, checked as :func:`from_dict` does; an error names the file and the key."""
    raw = read_yaml(path)
    try:
        return from_dict(cls, raw if raw is not None else {})
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def from_dict(cls: type, values: dict, where: str = "") -> Any:
    """A config dataclass from a YAML mapping, every value checked against its field's type; ``where`` is the
    mapping's dotted path, so an error names the key (``unknown config key candidates.d.modle``)."""
    if not isinstance(values, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {values!r}")
    hints = get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown config key {where + '.' if where else ''}{sorted(unknown)[0]} "
                         f"(known: {', '.join(sorted(names))})")
    missing = [f.name for f in fields if f.name not in values and f.init and
               f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"config key {where + '.' if where else ''}{missing[0]} is missing")
    kwargs = {key: _coerce(hints[key], value, f"{where}.{key}" if where else key) for key, value in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as e:  # a section's own checks (__post_init__) begin with the field's name: put its path before
        raise ValueError(f"{where}.{e}" if where else str(e)) from None


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check and convert a YAML value to a field's type (YAML 1.1 reads ``2e-4`` as a string)."""
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value or {}, path)
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return _coerce_union(args, value, path)
    if typing.get_origin(hint) is dict and dataclasses.is_dataclass(args[1]) and isinstance(value, dict):
        return {k: from_dict(args[1], v, f"{path}.{k}") for k, v in value.items()}  # named sections
    if typing.get_origin(hint) is list:
        return _coerce_list(args[0], value, path)
    try:
        if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return float(value)
        if hint is int and isinstance(value, (int, str)) and not isinstance(value, bool):
            return int(value)
        if hint is bool and isinstance(value, bool):
            return value
        if hint is str and isinstance(value, str):
            return value
        if hint is dict and isinstance(value, dict):
            return value
        if typing.get_origin(hint) is typing.Literal and isinstance(value, str):
            return value  # checked against its choices in __post_init__, which names them
        if typing.get_origin(hint) is tuple and isinstance(value, (list, tuple)) and args[-1] is Ellipsis:
            return tuple(_coerce(args[0], v, path) for v in value)
        if typing.get_origin(hint) is tuple and isinstance(value, (list, tuple)):
            return tuple(_coerce(a, v, path) for a, v in zip(args, value, strict=True))
    except ValueError:
        pass
    raise ValueError(f"config key {path}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _coerce_list(item: Any, value: Any, path: str) -> list:
    """``list[str]`` (or of another scalar type), or ``list[Section]``: each item checked as the field's type
    would be, an error naming its place (``jobs[1].set[0]``)."""
    if not isinstance(value, list):
        name = "mappings" if dataclasses.is_dataclass(item) else getattr(item, "__name__", str(item))
        raise ValueError(f"config key {path}: expected a list of {name}, got {value!r}")
    return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]


def _coerce_union(args: tuple, value: Any, path: str) -> Any:
    """``X | None``, ``bool | str``, ``int | float``: a value of one of the types as it is, else the first that
    converts it."""
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    for a in options:
        if isinstance(a, type) and type(value) is a:
            return value
    for a in options:
        try:
            return _coerce(a, value, path)
        except ValueError:
            if len(options) == 1:
                raise
    raise ValueError(f"config key {path}: expected {' or '.join(getattr(a, '__name__', str(a)) for a in options)}, "
                     f"got {value!r}")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _set(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise ValueError(f"--set {dotted}: {k} is not a section")
    d[keys[-1]] = value


def load_config(
    path: str | os.PathLike | None, task: Task, overrides: list[str] | tuple[str, ...] = (), **fixed: Any
) -> TrainConfig:
    """Resolve a config: YAML file (shared keys, then ``tasks.<task>``), then ``--set`` overrides.

    Args:
        path: YAML file, or None for the built-in defaults.
        task: ``mask`` or ``deblur``.
        overrides: ``key=value`` strings with dotted keys (``optim.lr=2e-4``); values are parsed as YAML.
        fixed: dotted keys set last (e.g. ``{"data.root": ...}`` from ``--data``).
    """
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        raw = read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a config must be a YAML mapping")
    tasks = raw.pop("tasks", {}) or {}
    if set(tasks) - set(TASKS):
        raise ValueError(f"{path}: tasks may only hold {TASKS}, got {sorted(tasks)}")
    raw = _merge(raw, tasks.get(task, {}))
    raw["task"] = task
    for key, value in parse_assignments(overrides):
        _set(raw, key, value)
    for key, value in fixed.items():
        if value is not None:
            _set(raw, key, value)
    return from_dict(TrainConfig, raw)


def parse_assignments(items: list[str] | tuple[str, ...], flag: str = "--set") -> list[tuple[str, Any]]:
    """``key=value`` command-line strings -> ``(key, value)`` pairs, values parsed as YAML (``true``, ``2e-4``)."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} expects key=value, got {item!r}")
        pairs.append((key.strip(), yaml.safe_load(value)))
    return pairs


def config_from_dict(d: dict) -> TrainConfig:
    """Rebuild a config saved with :meth:`TrainConfig.to_dict` (e.g. from a checkpoint)."""
    return from_dict(TrainConfig, d)


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    from ..fileio import atomic_write_bytes

    atomic_write_bytes(path, yaml.safe_dump(_plain(config.to_dict()), sort_keys=False).encode())


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
