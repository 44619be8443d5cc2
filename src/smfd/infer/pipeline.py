"""``FaceDeblurrer``: blurry photo or face crop -> predicted face mask -> deblurring net -> restored image.

Example:
    >>> import smfd
    >>> pipe = smfd.load_pipeline()                       # bundled weights, CPU
    >>> result = pipe.deblur(photo_rgb_uint8)             # whole photo: every face found is restored
    >>> result.image, result.mask, result.faces
    >>> pipe.deblur(face_crop, aligned=True, keep=("hair", "background"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from ..data.celebamask import CLASSES
from ..models.mask_generator import mask_probabilities
from ..precision import autocast, check_precision, resolve_precision, to_channels_last
from .faces import Face, align, alignment_matrix, paste_back
from .steps import restore


class NoFaceError(ValueError):
    """No face was found in a whole photo."""


@dataclass
class Result:
    """``image``: restored RGB uint8; ``mask``: predicted class ids (H, W) (0 outside restored faces in whole
    photos); ``faces``: the faces found (empty in aligned mode), skipped ones with their reason."""

    image: np.ndarray
    mask: np.ndarray
    faces: list[Face] = field(default_factory=list)


def parse_keep(keep: str | Sequence[str | int] | None) -> tuple[int, ...]:
    """Region names (``hair,wearables,background``) or class ids -> class ids; unknown names are an error."""
    if not keep:
        return ()
    items = keep.split(",") if isinstance(keep, str) else keep
    ids = [int(k) for k in items if isinstance(k, (int, np.integer))]
    bad_ids = [i for i in ids if not 0 <= i < len(CLASSES)]
    if bad_ids:
        raise ValueError(f"unknown class id {bad_ids[0]} for keep; ids are 0..{len(CLASSES) - 1}")
    names = [k.strip() for k in items if isinstance(k, str) and k.strip()]
    bad = [n for n in names if n not in CLASSES]
    if bad:
        raise ValueError(f"unknown region {bad[0]!r} for keep; choose from {', '.join(CLASSES)}")
    return tuple(dict.fromkeys([*ids, *(CLASSES.index(n) for n in names)]))


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be HxWx3 uint8 RGB, got {got}")


class FaceDeblurrer:
    """Restores blurry faces with a mask generator and a deblurring net (PyTorch or ONNX Runtime).

    Args:
        mask_model, deblur_model: the two networks (torch modules) or ONNX Runtime sessions.
        device: torch device for torch models.
        batch_size: faces per forward pass; None picks 1 for PyTorch on a CPU (measured faster there, see
            results/speed_cpu.md: larger batches spill the caches) and 8 otherwise.
        face_size: side of the aligned crops whole-photo faces are restored at (the training size).
        min_face: faces smaller than this (box side, px) are skipped and reported.
        precision: ``auto`` (bf16 autocast where the hardware does bf16 natively, else fp32), ``bf16`` or ``fp32``
            (see :mod:`smfd.precision`); PyTorch only, ONNX Runtime runs fp32.
        channels_last: run the nets and their inputs in the channels_last memory format (measured faster on CPUs,
            ``benchmarks/speed.py``); ``False`` keeps plain NCHW.
    """

    def __init__(self, mask_model, deblur_model, *, device: str = "cpu", batch_size: int | None = None,
                 face_size: int = 256, min_face: int = 48, manifest: dict | None = None,
                 precision: str = "auto", channels_last: bool = True) -> None:
        self.device = torch.device(device)
        self.mask_model, self.deblur_model = mask_model, deblur_model
        self.onnx = not isinstance(mask_model, nn.Module)
        check_precision(precision)
        self.precision = "fp32" if self.onnx else resolve_precision(precision, self.device)
        self._layout = to_channels_last if channels_last else (lambda x: x)
        if not self.onnx:
            self.mask_model = self._layout(mask_model.to(self.device).eval())
            self.deblur_model = self._layout(deblur_model.to(self.device).eval())
        if batch_size is None:
            batch_size = 1 if not self.onnx and self.device.type == "cpu" else 8
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size, self.face_size, self.min_face = batch_size, face_size, min_face
        self.manifest = manifest or {}
        self._detector = None

    # --- networks ---------------------------------------------------------------------------------------------

    def _run(self, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> (restored (B, 3, H, W) in [0, 1], mask probabilities (B, 5, H, W))."""
        with torch.inference_mode(), autocast(self.precision, self.device):
            lq_d = lq if self.onnx else self._layout(lq.to(self.device))
            probs = mask_probabilities(self.mask_model, lq_d)
            out = restore(self.deblur_model, lq_d, probs if self.onnx else self._layout(probs))  # + the net's steps
            return out.float().clamp(0, 1).cpu().contiguous(), probs.float().cpu().contiguous()

    def restore_faces(
        self, faces: Sequence[np.ndarray], keep: Sequence[int] = ()
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Restore aligned RGB uint8 face crops in batches; returns (restored faces, class-id masks).

        ``keep``: class ids whose pixels are taken from the input (e.g. hair, background), with a soft edge.
        """
        outs, masks = [], []
        for start in range(0, len(faces), self.batch_size):
            chunk = list(faces[start : start + self.batch_size])
            for f in chunk:
                _check_image(f)
            same = all(f.shape == chunk[0].shape for f in chunk)
            groups = [chunk] if same else [[f] for f in chunk]  # batch faces of one size together
            for group in groups:
                lq = torch.from_numpy(np.stack(group)).permute(0, 3, 1, 2).float() / 255
                out, probs = self._run(lq)
                ids = probs.argmax(1)
                if keep:
                    kept = torch.zeros_like(ids, dtype=torch.float32)
                    for c in keep:
                        kept += (ids == c).float()
                    kept = _soften(kept)
                    out = out * (1 - kept) + lq * kept
                outs += [(o * 255).round().byte().permute(1, 2, 0).numpy() for o in out]
                masks += [m.byte().numpy() for m in ids]
        return outs, masks

    # --- images -------------------------------------------------------------------------------------------------

    def deblur(self, image: np.ndarray, *, aligned: bool = False, keep: str | Sequence[str] = ()) -> Result:
        """Restore one image: an aligned face crop (``aligned=True``) or every face in a whole photo.

        Raises:
            NoFaceError: whole-photo mode found no face large enough (use ``aligned=True`` for crops).
        """
        _check_image(image)
        keep_ids = parse_keep(keep)
        if aligned:
            (out,), (mask,) = self.restore_faces([image], keep_ids)
            return Result(out, mask, [])
        faces = self.detector.detect(image)
        todo = []
        for f in faces:
            if f.size < self.min_face:
                f.skipped = f"face of {f.size} px is below the {self.min_face} px minimum"
                continue
            f.matrix = alignment_matrix(f.landmarks, self.face_size)
            todo.append(f)
        if not todo:
            why = "no face found" if not faces else f"all {len(faces)} faces are below {self.min_face} px"
            raise NoFaceError(f"{why}; for a face crop use aligned mode (--aligned)")
        crops = [align(image, f.matrix, self.face_size) for f in todo]
        restored, masks = self.restore_faces(crops, keep_ids)
        out = image
        full_mask = np.zeros(image.shape[:2], np.uint8)
        for f, face, m in sorted(zip(todo, restored, masks, strict=True), key=lambda t: t[0].size):
            out = paste_back(out, face, f.matrix)
            inv = cv2.invertAffineTransform(f.matrix)
            warped = cv2.warpAffine(m, inv, image.shape[1::-1], flags=cv2.INTER_NEAREST, borderValue=255)
            full_mask = np.where(warped != 255, warped, full_mask)
        return Result(out, full_mask, faces)

    @property
    def detector(self):
        if self._detector is None:
            from .faces import FaceDetector

            self._detector = FaceDetector()
        return self._detector


def _soften(m: torch.Tensor, k: int = 7) -> torch.Tensor:
    """Blur a (B, H, W) 0/1 map so kept regions join the restored ones without a hard seam."""
    x = m.unsqueeze(1)
    x = torch.nn.functional.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
    return x.clamp(0, 1)


def load_pipeline(weights: str = "default", device: str = "cpu", *, backend: str = "torch",
                  batch_size: int | None = None, min_face: int = 48, precision: str = "auto") -> FaceDeblurrer:
    """Load a :class:`FaceDeblurrer` from a weight bundle (``"default"``: the one shipped in the package).

    ``backend="onnxruntime"`` runs a bundle's ONNX export instead (see ``smfd export``); ``weights`` must then
    be the export folder. An export folder given with ``backend="torch"`` (the default) is run with ONNX Runtime,
    as what it holds can only run there. ``precision``: ``auto``, ``bf16`` or ``fp32`` (PyTorch backend; see
    :mod:`smfd.precision`).
    """
    from .weights import is_onnx_export

    check_precision(precision)
    if backend == "torch" and is_onnx_export(weights):
        backend = "onnxruntime"
    if backend == "onnxruntime" and str(weights) == "default":
        raise ValueError("the onnxruntime backend needs an export folder: make one with 'smfd export -o DIR' "
                         "and pass --weights DIR")
    if backend == "torch":
        from .weights import load_bundle

        mask_model, deblur_model, manifest = load_bundle(weights)
        return FaceDeblurrer(mask_model, deblur_model, device=device, batch_size=batch_size, min_face=min_face,
                             manifest=manifest, precision=precision)
    if backend == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise RuntimeError("the onnxruntime backend needs ONNX Runtime: pip install 'smfd[onnx]'") from None
        from .export import load_onnx

        mask_sess, deblur_sess, manifest = load_onnx(weights)
        return FaceDeblurrer(mask_sess, deblur_sess, batch_size=batch_size, min_face=min_face, manifest=manifest)
    raise ValueError(f"backend must be torch or onnxruntime, got {backend!r}")
