"""Weight bundles: the mask generator and the deblurring net as safetensors, a manifest with their SHA-256 and a model
card. The package ships one (``smfd/weights``, loaded as ``weights="default"``); ``smfd bundle`` makes one
from training runs. Every file's checksum is verified before anything is loaded; nothing is unpickled.

A bundle may hold a second deblurring net, ``deblur_big``: the net for crops restored above the training faces'
size (big faces, :meth:`~smfd.infer.pipeline.FaceDeblurrer.working_size`); without it one net restores every size.
"""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path

from ..fileio import atomic_write_bytes, sha256_file
from ..models.io import load_weights, save_weights
from ..models.runner import Runner

FORMAT = "smfd-bundle-1"
ROLES = ("mask", "deblur")  # the nets every bundle holds
BIG = "deblur_big"  # the optional net for crops restored above the training faces' size


def default_weights_dir() -> Path:
    return Path(str(files("smfd") / "weights"))


def read_manifest(folder: str | os.PathLike) -> dict:
    if Path(folder).is_file():
        raise ValueError(f"{folder}: a file, not a weights folder; give the folder that holds manifest.json (made by "
                         "'smfd bundle' or 'smfd export')")
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (weights must be an smfd bundle: see 'smfd bundle --help')")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: not an smfd weights manifest (a JSON object is expected)")
    if str(manifest.get("format", "")).startswith("smfd-onnx-"):
        raise ValueError(f"{path}: an ONNX export; run it with the onnxruntime backend (load_pipeline(..., "
                         "backend='onnxruntime'); the command line picks it by itself)")
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise ValueError(f"{path}: not an smfd weights manifest")
    roles = set(manifest["files"])
    if roles - {BIG} != set(ROLES):
        raise ValueError(f"{path}: a bundle holds the nets {', '.join(ROLES)} (and optionally {BIG}), this one "
                         f"{', '.join(sorted(roles)) or 'none'}")
    return manifest


def is_onnx_export(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is an ``smfd export`` folder (its manifest says so)."""
    path = Path(folder) / "manifest.json"
    if str(folder) == "default" or not path.is_file():
        return False
    try:
        return str(json.loads(path.read_text()).get("format", "")).startswith("smfd-onnx-")
    except (json.JSONDecodeError, AttributeError):
        return False


def _folder(folder: str | os.PathLike) -> Path:
    return default_weights_dir() if str(folder) == "default" else Path(folder)


def _load_role(folder: Path, manifest: dict, role: str) -> Runner:
    entry = manifest["files"][role]
    net = load_weights(folder / entry["file"], sha256=entry["sha256"]).eval()
    task = role.split("_")[0]
    if net.spec.task != task:
        raise ValueError(f"{folder}: {entry['file']} holds a {net.spec.task} net ({net.spec.name}), the manifest "
                         f"names it the {role} net")
    return net


def load_bundle(folder: str | os.PathLike = "default") -> tuple[Runner, Runner, dict]:
    """``(mask net, deblurring net, manifest)`` from a bundle folder, checksums verified: the nets' runners.
    A bundle's big-face net is loaded by :func:`load_big_net`."""
    folder = _folder(folder)
    manifest = read_manifest(folder)
    mask, deblur = (_load_role(folder, manifest, role) for role in ROLES)
    _check_mask_channels(folder, mask, deblur)
    return mask, deblur, manifest


def load_big_net(folder: str | os.PathLike, manifest: dict, mask_net: Runner) -> Runner | None:
    """The bundle's net for crops restored above the training size (``deblur_big``), checksum verified; None when
    the bundle has none (its deblurring net restores every size). ``manifest``: the bundle's, as
    :func:`load_bundle` returned it; ``mask_net``: its mask net, whose classes the net must read."""
    if BIG not in manifest["files"]:
        return None
    folder = _folder(folder)
    big = _load_role(folder, manifest, BIG)
    _check_mask_channels(folder, mask_net, big)
    return big


def _check_mask_channels(folder: Path, mask: Runner, deblur: Runner) -> None:
    if deblur.spec.mask_channels not in (0, mask.spec.classes):
        raise ValueError(f"{folder}: the deblurring net {deblur.spec.name} expects {deblur.spec.mask_channels} mask "
                         f"channels, the mask net gives {mask.spec.classes}")


def make_bundle(mask_net: Runner, deblur_net: Runner, out_dir: str | os.PathLike, *, half: bool = True,
                card: dict | None = None, big_net: Runner | None = None) -> dict:
    """Write the nets (fp16 by default) with a manifest and a model card (``MODEL_CARD.md`` + in the manifest).
    ``big_net``: a second deblurring net for crops restored above the training size (``deblur_big``)."""
    out_dir = Path(out_dir)
    entries = {}
    nets = [("mask", mask_net), ("deblur", deblur_net)] + ([(BIG, big_net)] if big_net is not None else [])
    for role, net in nets:
        task = role.split("_")[0]
        if net.spec.task != task:
            raise ValueError(f"the {role} net of a bundle must be a {task} net, got {net.spec.name}")
        name = f"{net.spec.name}{'-big' if role == BIG else ''}.safetensors"
        sha = save_weights(net, out_dir / name, half=half)
        entries[role] = {"file": name, "sha256": sha, "model_name": net.spec.name,
                         "bytes": (out_dir / name).stat().st_size}
        if task == "deblur":  # the inference steps after the net (smfd.models.steps), run by both backends
            entries[role]["steps"] = list(net.spec.steps)
    manifest = {"format": FORMAT, "dtype": "float16" if half else "float32", "files": entries, "card": card or {}}
    atomic_write_bytes(out_dir / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    atomic_write_bytes(out_dir / "MODEL_CARD.md", _card_markdown(manifest).encode())
    return manifest


def _card_markdown(manifest: dict) -> str:
    card = manifest["card"]
    lines = ["# smfd weights — model card", ""]
    for key in ("summary", "status", "data", "protocol", "intended_use", "limitations", "licence"):
        if key in card:
            lines += [f"**{key.replace('_', ' ').capitalize()}.** {card[key]}", ""]
    if "metrics" in card:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in card["metrics"].items()] + [""]
    lines += ["| role | file | model | SHA-256 |", "|---|---|---|---|"]
    for role, e in manifest["files"].items():
        lines.append(f"| {role} | {e['file']} | {e['model_name']} | `{e['sha256']}` |")
    return "\n".join(lines) + "\n"


__all__ = ["BIG", "ROLES", "default_weights_dir", "load_big_net", "load_bundle", "make_bundle", "read_manifest",
           "sha256_file"]
