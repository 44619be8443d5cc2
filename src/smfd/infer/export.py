"""ONNX export of a weight bundle and an ONNX Runtime backend for :class:`FaceDeblurrer`.

Both networks are exported with dynamic batch, height and width. The exported graphs expect sides that are
multiples of the network stride; :func:`run_onnx` pads (reflect) and crops around them, and applies
SMFD-UNet's last steps (post-processing, residual, keep_mean) after the crop, exactly as the PyTorch models do, so
any size works. A mask net with a working size is exported without its resizing and its softmax, which
:func:`run_onnx` applies around the graph in the PyTorch model's order (resize in, graph, resize logits back, softmax).
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

from ..data.io import atomic_write_bytes
from ..models._utils import pad_to_multiple, resize, work_shape
from ..models.blocks import PostProcess
from ..models.io import sha256_file
from ..models.smfd_unet import SMFDUNet, finish_output
from .weights import load_bundle

# 2: SMFD-UNet's last steps (post-processing, residual, keep_mean) in the "finish" metadata;
# 3: the mask graph gives logits; its working size and softmax are in the "work_size" and "softmax" metadata
FORMAT = "smfd-onnx-3"
OPSET = 17


class _Network(nn.Module):
    """A deblurring net's ``network`` on stride-multiple inputs: for SMFD-UNet without its last steps
    (post-processing, residual, keep_mean), which :func:`run_onnx` applies; for NAFNet the whole net."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.stride = model, model.stride

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model.network(*inputs)


class _MaskLogits(nn.Module):
    """A mask net's logits at the input's size (its working-size resizing and the softmax: :func:`run_onnx`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        return self.model.network(grey)


def _export(module: nn.Module, inputs: tuple, names: list[str], path: Path, meta: dict) -> None:
    import onnx

    dyn = {n: {0: "batch", 2: "height", 3: "width"} for n in [*names, "output"]}
    with warnings.catch_warnings():
        # shape checks and padding branches are traced as constants on purpose: run_onnx pads to the stride
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding")  # slices of the local-statistics grids
        torch.onnx.export(module, inputs, str(path), input_names=names, output_names=["output"], dynamic_axes=dyn,
                          opset_version=OPSET, dynamo=False)
    model = onnx.load(str(path))
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=json.dumps(v))
    onnx.save(model, str(path))


def export_onnx(weights: str | os.PathLike = "default", out_dir: str | os.PathLike = "onnx") -> dict:
    """Export a bundle's two networks to ``out_dir`` (``mask_generator.onnx``, ``smfd_unet.onnx``, manifest)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise RuntimeError("ONNX export needs the onnx package: pip install 'smfd[onnx]'") from None
    mask_model, deblur_model, manifest = load_bundle(weights)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    core = copy.deepcopy(deblur_model).float().eval()
    finish = None
    if isinstance(core, SMFDUNet):  # run_onnx does its last steps after cropping, so padding cannot shift a mean
        post = core.post if isinstance(core.post, PostProcess) else None
        finish = {"post": {"contrast": post.contrast, "brightness": post.brightness, "per_channel": post.per_channel,
                           "window": post.window} if post else None,
                  "residual": core.residual, "keep_mean": core.keep_mean}
    min_size = getattr(core, "pool_window", None) or 0  # run_onnx pads to it; traced where every window fits
    core = _Network(core)
    size = max(64, 2 * min_size)
    image, mask = torch.rand(1, 3, size, size), torch.softmax(torch.randn(1, 5, size, size), 1)
    grey = torch.rand(1, 1, 64, 64)
    files = {}
    with torch.no_grad():
        path = out_dir / f"{mask_model.model_name}.onnx"
        _export(_MaskLogits(mask_model.float().eval()), (grey,), ["grey"], path,
                {"stride": mask_model.stride, "role": "mask", "work_size": getattr(mask_model, "work_size", None),
                 "softmax": True})
        files["mask"] = path
        path = out_dir / f"{deblur_model.model_name}.onnx"
        masked = bool(getattr(deblur_model, "mask_channels", 0))
        _export(core, (image, mask) if masked else (image,), ["image", "mask"] if masked else ["image"], path,
                {"stride": core.stride, "role": "deblur", "finish": finish, "min_size": min_size})
        files["deblur"] = path
    out = {"format": FORMAT, "source": str(weights), "opset": OPSET, "card": manifest.get("card", {}),
           "files": {r: {"file": p.name, "sha256": sha256_file(p)} for r, p in files.items()}}
    atomic_write_bytes(out_dir / "manifest.json", (json.dumps(out, indent=1) + "\n").encode())
    return out


class _Session:
    """An ONNX Runtime session with the metadata run_onnx needs."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.stride = json.loads(meta.get("stride", "1"))
        self.finish = json.loads(meta.get("finish", "null"))
        self.min_size = json.loads(meta.get("min_size", "0"))
        self.work_size = json.loads(meta.get("work_size", "null"))
        self.softmax = json.loads(meta.get("softmax", "false"))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.mask_input = "mask" in self.input_names


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


def run_onnx(sess: _Session, *inputs: torch.Tensor) -> torch.Tensor:
    """Run a session on (B, C, H, W) tensors of any size; returns a torch tensor of the input size."""
    first, size = inputs[0], tuple(inputs[0].shape[-2:])
    if sess.work_size:
        inputs = tuple(resize(x, work_shape(size, sess.work_size)) for x in inputs)
    h, w = inputs[0].shape[-2:]
    feeds = {}
    for name, x in zip(sess.input_names, inputs, strict=True):
        x, _ = pad_to_multiple(x, sess.stride, sess.min_size)
        feeds[name] = np.ascontiguousarray(x.float().numpy())
    out = torch.from_numpy(sess.session.run(None, feeds)[0])[..., :h, :w]
    if sess.work_size:
        out = resize(out, size)
    if sess.softmax:
        out = torch.softmax(out, dim=1)
    if sess.finish:
        f = sess.finish
        out = finish_output(out, first, PostProcess(**f["post"]) if f["post"] else None,
                            residual=f["residual"], keep_mean=f["keep_mean"])
    return out
