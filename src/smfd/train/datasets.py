"""A run's faces: its split (a split file or a seeded one), the training and validation sets with their
degradation, and the loader workers' set-up."""

from __future__ import annotations

import numpy as np
import torch

from ..data import FaceDeblurDataset, FaceFolder, JointAugment, Splits, make_splits
from ..degrade import make_degradation
from .config import TrainConfig, realistic_config


def make_splits_for(cfg: TrainConfig, folder: FaceFolder) -> Splits:
    if cfg.data.split:
        splits = Splits.load(cfg.data.split)
        unknown = set(splits.test) | set(splits.trainval)
        unknown -= set(folder.ids)
        if unknown:
            raise ValueError(f"{cfg.data.split}: {len(unknown)} ids are not in {folder.root}, e.g. {min(unknown)}")
        return splits
    return make_splits(folder.ids, seed=cfg.data.split_seed, subset=cfg.data.subset, folds=cfg.data.folds,
                       test_fraction=cfg.data.test_fraction)


def limit_ids(train_ids: list[str], val_ids: list[str], cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """Apply ``train_limit``/``val_limit`` with a seeded random sample of each side.

    A plain prefix would give every fold k >= 1 the same training faces (the folds are concatenated in order,
    so the first N are always fold 0's): the cross-validation folds would not differ.
    """
    rng = np.random.default_rng([cfg.data.split_seed, cfg.data.fold])
    out = []
    for ids, limit in ((train_ids, cfg.data.train_limit), (val_ids, cfg.data.val_limit)):
        if limit is not None and limit < len(ids):
            ids = sorted(ids[i] for i in rng.choice(len(ids), size=limit, replace=False))
        out.append(list(ids))
    return out[0], out[1]


def datasets(cfg: TrainConfig, folder: FaceFolder, splits: Splits) -> tuple[FaceDeblurDataset, FaceDeblurDataset]:
    train_ids, val_ids = splits.fold(cfg.data.fold)
    hires = FaceFolder(cfg.data.hires, require_masks=False) if cfg.data.hires else None
    if cfg.data.hires_only:
        held = set(hires.ids)
        train_ids = [i for i in train_ids if i in held]
        if not train_ids:
            raise ValueError(f"data.hires_only: {cfg.data.hires} holds none of fold {cfg.data.fold}'s training faces")
    train_ids, val_ids = limit_ids(train_ids, val_ids, cfg)
    grey = cfg.task == "mask"
    common = {"size": cfg.data.size, "grayscale": grey}
    # a mask net with a working size learns on whole faces resized to it (validation: full size, the net resizes)
    work_size = cfg.model.kwargs.get("work_size") if grey else None
    mix = (cfg.data.degradation, cfg.data.realistic_share, cfg.data.lowres_share)
    train_degradation = make_degradation(*mix, realistic_config(cfg.data))  # data.realistic's ranges, if any
    val_degradation = make_degradation(*mix)  # validation: the family's defaults, so runs with other ranges compare
    train = FaceDeblurDataset(folder, train_ids, train=True, augment=JointAugment() if cfg.data.augment else None,
                              crop=cfg.data.crop, work_size=work_size, degradation=train_degradation,
                              sizes=cfg.data.sizes, hires=hires, **common)
    big_val = {"val_side": cfg.data.val_size, "crop": cfg.data.crop, "hires": hires} if cfg.data.val_size else {}
    val = FaceDeblurDataset(folder, val_ids, train=False, seed=cfg.data.seed, degradation=val_degradation, **common,
                            **big_val)
    return train, val


def one_thread_worker(_: int) -> None:
    """A loader worker degrades one face at a time: torch's own thread pool would only oversubscribe the cores the
    other workers use. (OpenCV's is set to one thread in the parent before the workers fork: setting it inside a
    forked worker, after the parent used OpenCV's pool, deadlocks.)"""
    torch.set_num_threads(1)


__all__ = ["datasets", "limit_ids", "make_splits_for", "one_thread_worker"]
