"""ONNX export of a weight bundle and an ONNX Runtime backend for :class:`FaceDeblurrer`.

Each graph is the whole network (for SMFD-UNet: encoders, decoder, head, post-processing and, for the residual
variant, the residual; test-time local statistics where the net uses them), with dynamic batch, height and width.
A deblurring net that pools over its whole input has a second graph that takes those statistics over windows of
the training faces' side, for inputs larger than that, as the PyTorch backend does
(:func:`~smfd.models.local_pooling.local_stats_above`); the session picks the graph by the input's size.
Each graph's metadata holds its net's :class:`~smfd.models.runner.NetSpec`, and the session runs inside a
:class:`~smfd.models.runner.Runner`, the same code as the PyTorch backend: padding to a multiple of the stride
(reflect) and cropping back, the mask net's grey input, working size and softmax, and the inference steps such as
``keep_mean`` (:mod:`smfd.models.steps`). The manifest names those steps for readers (``pre`` and ``post``).
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
from ..models.local_pooling import fits_window, local_stats_above
from ..models.runner import NetSpec, Runner
from .weights import BIG, load_big_net, load_bundle

# 7: a bundle's big-face net is exported too (deblur_big); 6: a globally pooling deblurring net has a second graph for
# inputs larger than the statistics window (5: one graph, whole-input statistics at every size); each graph's
# metadata is its net's NetSpec; the steps around it are named
FORMAT = "smfd-onnx-7"
READS = ("smfd-onnx-6", FORMAT)  # 6 is 7 without a big-face net
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


def export_onnx(weights: str | os.PathLike = "default", out_dir: str | os.PathLike = "onnx", *,
                pool_window: int = 256) -> dict:
    """Export a bundle's networks to ``out_dir`` (``<mask net>.onnx``, ``<deblurring net>.onnx``, a big-face net as
    ``<net>-big.onnx``, manifest); a deblurring net that pools over its whole input also as ``<net>-windows.onnx``:
    its statistics over ``pool_window``-px windows (the pipeline's default, the training faces' side) on larger
    inputs."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise RuntimeError("ONNX export needs the onnx package: pip install 'smfd[onnx]'") from None
    mask_net, deblur_net, manifest = load_bundle(weights)
    nets = {"mask": mask_net, "deblur": deblur_net}
    big = load_big_net(weights, manifest, mask_net)
    if big is not None:
        nets[BIG] = big
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    with torch.no_grad():
        for role, net in nets.items():
            spec, model = net.spec, copy.deepcopy(net.module).float().eval()
            size = max(64, 2 * spec.min_size)  # traced where every local-statistics window fits
            if role == "mask":
                inputs, names = (torch.rand(1, spec.in_channels, size, size),), ["grey"]
                pre = ["grey (BT.601)"] + ([f"resize to {spec.work_size} px (longer side, area)"]
                                           if spec.work_size else []) + [PAD]
                post = [CROP] + (["resize back (bilinear)"] if spec.work_size else []) + ["softmax"]
            else:
                inputs = _deblur_inputs(spec, size)
                names = ["image", "mask"] if spec.reads_mask else ["image"]
                pre, post = [PAD], [CROP, *spec.steps]
            stem = f"{spec.name}-big" if role == BIG else spec.name
            path = out_dir / f"{stem}.onnx"
            _export(_Network(model), inputs, names, path, {"spec": spec.to_meta()})
            entries[role] = {"file": path.name, "sha256": sha256_file(path), "model_name": spec.name,
                             "pre": pre, "post": post, **({"steps": list(spec.steps)} if role != "mask" else {})}
            if role != "mask" and not getattr(model, "local_stats", None):
                windows = _export_windows(model, spec, pool_window, out_dir, names, stem)
                if windows:
                    entries[role]["windows"] = windows
    out = {"format": FORMAT, "source": str(weights), "opset": OPSET, "card": manifest.get("card", {}),
           "files": entries}
    atomic_write_bytes(out_dir / "manifest.json", (json.dumps(out, indent=1) + "\n").encode())
    return out


def _export_windows(model: nn.Module, spec: NetSpec, window: int, out_dir: Path, names: list[str], stem: str
                    ) -> dict | None:
    """The deblurring net with its statistics over ``window``-px windows, traced on an input larger than the window
    (where every level's window fits); its manifest entry, or None if the net pools nowhere."""
    if not local_stats_above(model, window):
        return None
    path = out_dir / f"{stem}-windows.onnx"
    _export(_Network(model), _deblur_inputs(spec, 2 * window), names, path, {"spec": spec.to_meta()})
    return {"file": path.name, "sha256": sha256_file(path), "above": window}


def _deblur_inputs(spec: NetSpec, size: int) -> tuple[torch.Tensor, ...]:
    """A deblurring net's inputs to trace at ``size`` px: a face, and class probabilities if it reads a mask."""
    image = torch.rand(1, spec.in_channels, size, size)
    return (image, torch.softmax(torch.randn(1, spec.mask_channels, size, size), 1)) if spec.reads_mask else (image,)


class _Session:
    """An ONNX Runtime session called like the torch net it was exported from, on stride-padded (B, C, H, W) tensors;
    its :class:`~smfd.models.runner.Runner` does the rest."""

    def __init__(self, path: Path, windows: Path | None = None, window: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        meta = {k: json.loads(v) for k, v in self.session.get_modelmeta().custom_metadata_map.items()}
        if not isinstance(meta.get("spec"), dict):
            raise ValueError(f"{path}: no net description in its metadata (not made by 'smfd export')")
        self.spec = NetSpec.from_meta(meta["spec"], str(path))
        self.input_names = [i.name for i in self.session.get_inputs()]
        #: the graph for inputs larger than ``window`` (statistics over windows), if the net has one
        self.windows = ort.InferenceSession(str(windows), opts, providers=["CPUExecutionProvider"]) if windows \
            else None
        self.window = window if windows else 0

    def use_whole_input_stats(self) -> None:
        """Run every input through the first graph (statistics over the whole input, at every size)."""
        self.windows, self.window = None, 0

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        larger = self.windows is not None and fits_window(*inputs[0].shape[-2:], self.window, above=True)
        feeds = {name: np.ascontiguousarray(x.float().numpy()) for name, x in zip(self.input_names, inputs,
                                                                                  strict=True)}
        return torch.from_numpy((self.windows if larger else self.session).run(None, feeds)[0])


def load_onnx(folder: str | os.PathLike) -> tuple[Runner, Runner, dict]:
    """The runners of an ``smfd export`` folder's sessions, checksums verified."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (make one with: smfd export --format onnx -o {folder})")
    manifest = json.loads(path.read_text())
    fmt = str(manifest.get("format", ""))
    if fmt.startswith("smfd-onnx-") and fmt not in READS:
        version = fmt.removeprefix("smfd-onnx-")
        if version.isdigit() and int(version) > int(FORMAT.removeprefix("smfd-onnx-")):
            raise ValueError(f"{path}: exported by a newer smfd ({fmt}, this one reads {', '.join(READS)}); "
                             "upgrade smfd or export again with this one")
        raise ValueError(f"{path}: exported by an older smfd ({fmt}, now {FORMAT}); export again with: "
                         f"smfd export --format onnx -o {folder}")
    if fmt not in READS:
        raise ValueError(f"{path}: not an smfd ONNX manifest")
    mask, deblur = (_runner(folder, manifest["files"][role]) for role in ("mask", "deblur"))
    return mask, deblur, manifest


def load_onnx_big(folder: str | os.PathLike, manifest: dict, mask: Runner) -> Runner | None:
    """The runner of an export's net for crops restored above the training size (the bundle's ``deblur_big``),
    checksum verified; None when the export has none. ``manifest``: as :func:`load_onnx` returned it; ``mask``:
    its mask net, whose classes the net must read."""
    entry = manifest["files"].get(BIG)
    if entry is None:
        return None
    big = _runner(Path(folder), entry)
    if big.spec.mask_channels not in (0, mask.spec.classes):
        raise ValueError(f"{folder}: the big-face net {big.spec.name} expects {big.spec.mask_channels} mask channels, "
                         f"the mask net gives {mask.spec.classes}")
    return big


def _runner(folder: Path, entry: dict) -> Runner:
    windows = entry.get("windows")
    session = _Session(_checked(folder, entry), _checked(folder, windows) if windows else None,
                       int(windows["above"]) if windows else 0)
    return Runner(session, session.spec)


def _checked(folder: Path, entry: dict) -> Path:
    """An exported graph's path, once it exists and its checksum matches the manifest's."""
    f = folder / entry["file"]
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no such file")
    if sha256_file(f) != entry["sha256"]:
        raise ValueError(f"{f}: checksum mismatch (the file is corrupt or not the exported model)")
    return f
