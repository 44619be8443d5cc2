"""ONNX export of a weight bundle and an ONNX Runtime backend for :class:`FaceDeblurrer`.

Each graph is the whole network (for SMFD-UNet: encoders, decoder, head, post-processing and, for the residual
variant, the residual; test-time local statistics where the net uses them), with dynamic batch, height and width.
What stays outside a graph is named in the manifest (``pre`` and ``post`` of each role) and run by the same code as
the PyTorch backend: padding to a multiple of the stride (reflect) and cropping back, the mask net's working size
and softmax (:func:`smfd.models.mask_generator.mask_probabilities`) and the inference steps such as ``keep_mean``
(:mod:`smfd.infer.steps`).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..fileio import atomic_write_bytes, sha256_file
from ..models._utils import crop_to, pad_to_multiple
from .steps import check_steps
from .weights import load_bundle

# 4: the deblurring graph is the whole net; the steps around each graph are named in the manifest ("pre", "post")
FORMAT = "smfd-onnx-4"
OPSET = 17
PAD = "pad to a multiple of the stride (reflect; up to the local-statistics window, if smaller)"
CROP = "crop to the input size"


class _Network(nn.Module):
    """A net on stride-multiple inputs: deblurring nets' ``network`` (the whole net but its padding and cropping),
    a mask net's logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model.network(*inputs) if hasattr(self.model, "network") else self.model(*inputs)


def _export(module: nn.Module, inputs: tuple, names: list[str], path: Path, meta: dict) -> None:
    import onnx

    dyn = {n: {0: "batch", 2: "height", 3: "width"} for n in [*names, "output"]}
    with warnings.catch_warnings():
        # shape checks and padding branches are traced as constants on purpose: the session pads to the stride
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding")  # slices of the local-statistics grids
        torch.onnx.export(module, inputs, str(path), input_names=names, output_names=["output"], dynamic_axes=dyn,
                          opset_version=OPSET, dynamo=False)
    model = onnx.load(str(path))
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=json.dumps(v))
    onnx.save(model, str(path))


def export_onnx(weights: str | os.PathLike = "default", out_dir: str | os.PathLike = "onnx") -> dict:
    """Export a bundle's two networks to ``out_dir`` (``<mask net>.onnx``, ``<deblurring net>.onnx``, manifest)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise RuntimeError("ONNX export needs the onnx package: pip install 'smfd[onnx]'") from None
    mask_model, deblur_model, manifest = load_bundle(weights)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = deblur_model.steps  # the inference steps the bundle's net records (create_model's keep_mean)
    entries = {}
    with torch.no_grad():
        for role, model in (("mask", mask_model), ("deblur", deblur_model)):
            model = copy.deepcopy(model).float().eval()
            window = getattr(model, "local_stats", None) or 0  # traced where every window fits; run pads up to it
            size = max(64, 2 * window)
            masked = bool(getattr(model, "mask_channels", 0))
            if role == "mask":
                inputs, names = (torch.rand(1, model.in_channels, 64, 64),), ["grey"]
                meta = {"work_size": model.work_size, "num_classes": model.num_classes}
                pre = ["grey (BT.601)"] + ([f"resize to {model.work_size} px (longer side, area)"]
                                           if model.work_size else []) + [PAD]
                post = [CROP] + (["resize back (bilinear)"] if model.work_size else []) + ["softmax"]
            else:
                image = torch.rand(1, model.in_channels, size, size)
                inputs = (image, torch.softmax(torch.randn(1, model.mask_channels, size, size), 1)) if masked \
                    else (image,)
                names, meta = ["image", "mask"] if masked else ["image"], {"steps": list(steps)}
                pre, post = [PAD], [CROP, *steps]
            path = out_dir / f"{model.model_name}.onnx"
            _export(_Network(model), inputs, names, path,
                    {"stride": model.stride, "role": role, "min_size": window, "mask_channels": model.mask_channels,
                     **meta})
            entries[role] = {"file": path.name, "sha256": sha256_file(path), "model_name": model.model_name,
                             "pre": pre, "post": post,
                             **({"steps": list(steps)} if role == "deblur" else {})}
    out = {"format": FORMAT, "source": str(weights), "opset": OPSET, "card": manifest.get("card", {}),
           "files": entries}
    atomic_write_bytes(out_dir / "manifest.json", (json.dumps(out, indent=1) + "\n").encode())
    return out


class _Session:
    """An ONNX Runtime session that runs like the torch net it was exported from: ``sess(*inputs)`` on (B, C, H, W)
    tensors of any size (padded to the stride and cropped back around the graph), with the net's ``mask_channels``,
    ``work_size`` and ``steps``, so :func:`~smfd.models.mask_generator.mask_probabilities` and
    :func:`~smfd.infer.steps.restore` treat both backends alike."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        meta = {k: json.loads(v) for k, v in self.session.get_modelmeta().custom_metadata_map.items()}
        self.stride, self.min_size = meta.get("stride", 1), meta.get("min_size", 0)
        self.work_size, self.mask_channels = meta.get("work_size"), meta.get("mask_channels", 0)
        self.steps = check_steps(meta.get("steps", []), str(path))
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        size = tuple(inputs[0].shape[-2:])
        feeds = {}
        for name, x in zip(self.input_names, inputs, strict=True):
            x, _ = pad_to_multiple(x, self.stride, self.min_size)
            feeds[name] = np.ascontiguousarray(x.float().numpy())
        return crop_to(torch.from_numpy(self.session.run(None, feeds)[0]), size)


def load_onnx(folder: str | os.PathLike) -> tuple[_Session, _Session, dict]:
    """Sessions for an ``smfd export`` folder, checksums verified."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (make one with: smfd export --format onnx -o {folder})")
    manifest = json.loads(path.read_text())
    if str(manifest.get("format", "")).startswith("smfd-onnx-") and manifest["format"] != FORMAT:
        raise ValueError(f"{path}: exported by an older smfd ({manifest['format']}, now {FORMAT}); export again with: "
                         f"smfd export --format onnx -o {folder}")
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not an smfd ONNX manifest")
    sessions = []
    for role in ("mask", "deblur"):
        entry = manifest["files"][role]
        f = folder / entry["file"]
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no such file")
        if sha256_file(f) != entry["sha256"]:
            raise ValueError(f"{f}: checksum mismatch (the file is corrupt or not the exported model)")
        sessions.append(_Session(f))
    return sessions[0], sessions[1], manifest
