"""One way to run a net: :class:`NetSpec`, what a net's caller must know (its contract), and :class:`Runner`, which
holds a net with its spec and runs it.

A runner is built once, from a registry name (:func:`smfd.models.build`), a weights file or run folder
(:func:`smfd.models.io.load_runner`) or an ONNX Runtime session (:func:`smfd.infer.export.load_onnx`), and its
call does everything around the net, the same way for both backends: device, memory format, precision, padding to
the stride (and up to the local-statistics window), cropping back, a mask net's grey input, working size and fp32
logits, a deblurring net's mask input and inference steps. The pipeline, scoring, validation inside training, the
mask provider of mask-guided training and ``smfd report features`` all run nets through it.

Example:
    >>> mask_net = build("mask_generator", work_size=128).to("cpu", precision="auto")
    >>> probs = mask_net.probabilities(faces)            # (B, 3, H, W) in [0, 1] -> (B, 5, H, W)
    >>> restored = deblur_net(faces, probs)              # the mask is passed on only if the net reads one
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch import nn

from ..precision import autocast, check_precision, resolve_precision, to_channels_last
from .mask_generator import rgb_to_grey
from .sizes import at_work_size, crop_to, pad_to_multiple
from .steps import apply_steps, check_steps

Task = Literal["mask", "deblur"]  # a mask net (face -> classes) or a deblurring net
TASKS: tuple[Task, ...] = ("mask", "deblur")


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (a CUDA GPU when there is one, else the CPU) or a torch device name, checked."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r} requested but no CUDA device is available")
    return device


@dataclass(frozen=True)
class NetSpec:
    """A net's contract.

    Attributes:
        name: registry name; ``options``: the registry options it was built with (a weights file stores both, so it
            rebuilds the same net).
        task: ``mask`` (face -> class logits) or ``deblur`` (blurry face [+ mask] -> sharp face).
        in_channels: 1 (a grey face: the runner converts RGB input) or 3.
        classes: mask nets: classes out (0 for deblurring nets).
        mask_channels: deblurring nets: classes of the mask they read (0: none).
        stride: inputs are padded to a multiple of it; ``min_size``: and to at least this side (a local-statistics
            window).
        work_size: mask nets: the longer side faces are resized to before the net (None: their own size).
        steps: deblurring nets: inference steps after the net (:mod:`smfd.models.steps`).
    """

    name: str
    task: Task
    options: dict = field(default_factory=dict)
    in_channels: int = 3
    classes: int = 0
    mask_channels: int = 0
    stride: int = 1
    min_size: int = 0
    work_size: int | None = None
    steps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task must be one of {', '.join(TASKS)}, got {self.task!r}")
        object.__setattr__(self, "steps", check_steps(self.steps, self.name))

    @property
    def reads_mask(self) -> bool:
        return self.mask_channels > 0

    def to_meta(self) -> dict:
        """The spec as JSON-able values (ONNX metadata)."""
        return {**asdict(self), "steps": list(self.steps)}

    @classmethod
    def from_meta(cls, meta: dict, source: str = "metadata") -> NetSpec:
        try:
            return cls(**{**meta, "steps": tuple(meta.get("steps", ()))})
        except TypeError as e:
            raise ValueError(f"{source}: not a net description smfd knows ({e})") from None


class Runner:
    """A net and its :class:`NetSpec`, run on faces in [0, 1].

    ``net``: a torch module (a DDP wrapper too: the spec's net inside it) or any callable on stride-padded
    tensors (the ONNX Runtime sessions of :mod:`smfd.infer.export`). ``device``, ``precision`` (``auto``, ``bf16``,
    ``fp32``) and ``channels_last`` apply to torch nets; other backends run fp32 on the CPU.

    Call: mask nets ``runner(faces)`` -> fp32 logits (B, classes, H, W) at the faces' size (RGB or grey faces);
    deblurring nets ``runner(blurry, mask)`` -> fp32 restored faces (B, 3, H, W), not clipped, the net's steps
    applied; ``mask`` (B, mask_channels, H, W) is read only by nets whose spec says so.
    """

    def __init__(self, net: nn.Module | Callable, spec: NetSpec, *, device: str | torch.device = "cpu",
                 precision: str = "fp32", channels_last: bool = False) -> None:
        self.net, self.spec = net, spec
        self.device, self.precision, self.channels_last = torch.device("cpu"), "fp32", False
        if self.is_torch:
            self.to(device, precision=precision, channels_last=channels_last)

    def __repr__(self) -> str:
        return f"Runner({self.spec.name}, {self.spec.task}, {self.device}, {self.precision})"

    @property
    def is_torch(self) -> bool:
        return isinstance(self.net, nn.Module)

    @property
    def module(self) -> nn.Module:
        """The torch net itself (inside a DDP wrapper, if any)."""
        if not self.is_torch:
            raise TypeError(f"{self.spec.name}: an ONNX Runtime session, not a torch module")
        return getattr(self.net, "module", self.net)

    def to(self, device: str | torch.device | None = None, *, precision: str | None = None,
           channels_last: bool | None = None) -> Runner:
        """Move a torch net (in place; returns the runner): ``precision`` is resolved for the device."""
        if not self.is_torch:
            return self
        if device is not None:
            self.device = resolve_device(device)
            self.net = self.net.to(self.device)
        if precision is not None:
            self.precision = resolve_precision(check_precision(precision), self.device)
        if channels_last is not None:
            self.channels_last = channels_last
            if channels_last:
                self.net = to_channels_last(self.net)
        return self

    def eval(self) -> Runner:
        if self.is_torch:
            self.net.eval()
        return self

    def train(self, mode: bool = True) -> Runner:
        self.net.train(mode)
        return self

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if not self.is_torch:
            return x.float().cpu()
        x = x.to(self.device, non_blocking=True)
        return to_channels_last(x) if self.channels_last else x

    def _padded(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The net on inputs padded to its stride and smallest size, cropped back."""
        size = tuple(inputs[0].shape[-2:])
        return crop_to(self.net(*(pad_to_multiple(x, self.spec.stride, self.spec.min_size)[0] for x in inputs)),
                       size)

    def __call__(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self._input(x)
        with autocast(self.precision, self.device):
            if self.spec.task == "mask":
                grey = rgb_to_grey(x) if x.shape[1] == 3 and self.spec.in_channels == 1 else x
                return at_work_size(self._padded, grey, self.spec.work_size).float()
            if self.spec.reads_mask:
                if mask is None:
                    raise ValueError(f"{self.spec.name} reads a mask: pass one ({self.spec.mask_channels} channels)")
                out = self._padded(x, self._input(mask))
            else:
                out = self._padded(x)
            return apply_steps(out.float(), x, self.spec.steps)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """A mask net's class probabilities (softmax of its logits, fp32): the deblurring nets' mask input."""
        if self.spec.task != "mask":
            raise ValueError(f"{self.spec.name} is a deblurring net, not a mask net")
        return torch.softmax(self(x), dim=1)


__all__ = ["TASKS", "NetSpec", "Runner", "resolve_device"]
