"""``FaceDeblurrer``: blurry photo or face crop -> predicted face mask -> deblurring net -> restored image.

Example:
    >>> import smfd
    >>> pipe = smfd.load_pipeline()                       # bundled weights, CPU
    >>> result = pipe.deblur(photo_rgb_uint8)             # whole photo: every face found is restored
    >>> result.image, result.mask, result.faces
    >>> pipe.deblur(face_crop, aligned=True, keep=("hair", "background"))

The whole-photo steps, one by one (what ``deblur`` does; the video job and the benchmarks call them too):
    >>> faces = pipe.detect_faces(photo_rgb_uint8)        # pipe.detector = FaceDetector(...) searches another way
    >>> todo, crops = pipe.align_faces(photo_rgb_uint8, faces)
    >>> restored, masks = pipe.restore_faces(crops)
    >>> image = pipe.paste(photo_rgb_uint8, todo, restored)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..data.celebamask import parse_keep
from ..errors import BadImage, BadOption, NoFaceError
from ..models.runner import Runner
from ..precision import check_precision
from .faces import MAX_WORK_SIZE, MIN_FACE, Face, FaceDetector, align, alignment_matrix, native_size, paste_change

#: Whole photos larger than this are searched for faces on a scaled-down copy (12 MP photo: faces from about
#: 70 px are found instead of 40 px; the detector's memory stays about 0.3 GB instead of growing with the photo).
DETECT_MAX_PIXELS = 4_000_000

#: Working sizes are multiples of this (px), so faces of similar size share a batch.
WORK_STEP = 64
#: Whole-photo faces are aligned at their own resolution up to this side (px): the memory per face stays bounded.
MAX_CROP = 2048
#: The training faces' side (px): crops up to it are restored at their own size by the deblurring net.
FACE_SIZE = 256


@dataclass
class Result:
    """``image``: restored RGB uint8; ``mask``: predicted class ids (H, W) (0 outside restored faces in whole
    photos), or None where no mask was asked for and nothing needed one; ``faces``: the faces found (empty in
    aligned mode), skipped ones with their reason."""

    image: np.ndarray
    mask: np.ndarray | None
    faces: list[Face] = field(default_factory=list)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
            or image.size == 0:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise BadImage(f"image must be HxWx3 uint8 RGB, got {got}")


class FaceDeblurrer:
    """Restores blurry faces with a mask generator and a deblurring net (PyTorch or ONNX Runtime).

    Args:
        mask_net, deblur_net: the two nets' :class:`~smfd.models.runner.Runner` (torch modules or ONNX Runtime
            sessions, both the same backend).
        device: torch device for torch models.
        batch_size: faces per forward pass; None picks 1 for PyTorch on a CPU (measured faster there, see
            results/speed_cpu.md: larger batches spill the caches) and 8 otherwise.
        face_size: side of the aligned crops whole-photo faces are restored at (the training size).
        min_face: faces smaller than this (box side, px) are skipped and reported.
        precision: ``auto`` (bf16 autocast where the hardware does bf16 natively, else fp32), ``bf16`` or ``fp32``
            (see :mod:`smfd.precision`); PyTorch only, ONNX Runtime runs fp32.
        channels_last: run the nets and their inputs in the channels_last memory format (measured faster on CPUs,
            ``benchmarks/speed.py``); ``False`` keeps plain NCHW.
        detector: the face detector whole photos are searched with, one of
            :data:`smfd.infer.faces.DETECTORS` (``results/detect.md`` measures them).
        max_work_size: the largest side (px) a face is restored at (:data:`MAX_WORK_SIZE`); see
            :meth:`working_size`. ``face_size`` restores every face at the training size, as a 256 px crop.
        pool_window: a deblurring net that pools over its whole input (NAFNet's channel attention) takes those
            statistics over windows of this side (px) around each pixel instead, on working sizes larger than it
            (:func:`~smfd.models.local_pooling.local_stats_above`; an ONNX export has them as a second graph);
            None: ``face_size``, the side of the training faces and windows; 0: over the whole crop. A net trained
            on 256 px windows never saw the statistics of a whole 512 px crop: a sharp face on a large saturated
            background was restored as if blurry (results/big_faces.md). Crops up to the window run as before, and
            a net trained with windows keeps its own. The deblurring net given is changed in place.
        mirror_big: a crop restored at a working size above ``face_size`` (:meth:`working_size`) is restored
            twice, as given and mirrored left to right, and the two averaged: big blurry faces come back sharper
            for twice their restoration (results/big_faces.md); crops worked at up to ``face_size`` are restored
            once. False: once, every crop.
        big_net: a second deblurring net (same backend) for crops restored at a working size above
            ``face_size``: big faces, whose blurs are wider than the training faces' (a bundle's ``deblur_big``);
            None: ``deblur_net`` restores every size. A net trained for big faces alone would change how small
            faces are restored (results/identity-draws), so the two are kept apart.
    """

    def __init__(self, mask_net: Runner, deblur_net: Runner, *, device: str = "cpu", batch_size: int | None = None,
                 face_size: int = FACE_SIZE, min_face: int = MIN_FACE, manifest: dict | None = None,
                 precision: str = "auto", channels_last: bool = True, detector: str = "hog",
                 max_work_size: int = MAX_WORK_SIZE, pool_window: int | None = None, mirror_big: bool = True,
                 big_net: Runner | None = None) -> None:
        from .faces import DETECTORS

        if detector not in DETECTORS:
            raise BadOption(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        self.detector_name = detector
        nets = [("mask", mask_net), ("deblur", deblur_net)] + ([("big", big_net)] if big_net is not None else [])
        for role, net in nets:
            task = "mask" if role == "mask" else "deblur"
            if not isinstance(net, Runner) or net.spec.task != task:
                raise ValueError(f"{role} net: expected the Runner of a {task} net, got {net!r}")
            if net.is_torch != mask_net.is_torch:
                raise ValueError("the mask and deblurring nets must run on the same backend (all torch or all ONNX)")
        check_precision(precision)
        self.mask_net = mask_net.to(device, precision=precision, channels_last=channels_last).eval()
        self.deblur_net = deblur_net.to(device, precision=precision, channels_last=channels_last).eval()
        self.big_net = None if big_net is None else \
            big_net.to(device, precision=precision, channels_last=channels_last).eval()
        self.onnx = not mask_net.is_torch
        self.device, self.precision = self.mask_net.device, self.mask_net.precision
        if batch_size is None:
            batch_size = 1 if not self.onnx and self.device.type == "cpu" else 8
        if batch_size < 1:
            raise BadOption(f"batch_size must be at least 1, got {batch_size}")
        if max_work_size < face_size:
            raise BadOption(f"max_work_size must be at least the face size {face_size}, got {max_work_size}")
        self.batch_size, self.face_size, self.min_face = batch_size, face_size, min_face
        self.max_work_size, self.mirror_big = max_work_size, bool(mirror_big)
        self.pool_window = _pool_locally(self.deblur_net, face_size if pool_window is None else pool_window)
        if self.big_net is not None:
            _pool_locally(self.big_net, face_size if pool_window is None else pool_window)
        self.manifest = manifest or {}
        self._detector = None

    # --- networks ---------------------------------------------------------------------------------------------

    def needs_mask_net(self, mask: bool = True, keep: Sequence[int] = (), shape: tuple[int, ...] | None = None
                       ) -> bool:
        """Whether restoring runs the mask net: when the deblurring net reads the mask, regions are kept, or the
        caller wants the mask (``mask``). Otherwise it is skipped (for the shipped NAFNet, most of the work).
        ``shape``: of a batch at its working size (..., H, W), whose net (:meth:`net_for`) is asked; None: any
        net that may run."""
        nets = [self.net_for(shape)] if shape is not None else [self.deblur_net, self.big_net]
        return bool(mask or keep or any(n is not None and n.spec.reads_mask for n in nets))

    def net_for(self, shape: tuple[int, ...]) -> Runner:
        """The deblurring net that restores a crop worked at ``shape`` (..., H, W): the big-face net above
        ``face_size``, when there is one; otherwise ``deblur_net``."""
        big = max(shape[-2:]) > self.face_size
        return self.big_net if big and self.big_net is not None else self.deblur_net

    @property
    def first_big_side(self) -> int:
        """The smallest crop side (px) restored above ``face_size`` (:meth:`working_size`): from it on, a crop is
        restored mirrored too and by the big-face net, if there is one."""
        return (self.face_size // WORK_STEP + 1) * WORK_STEP

    def _run(self, lq: torch.Tensor, with_mask: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 3, H, W) in [0, 1] -> (restored (B, 3, H, W) in [0, 1], mask probabilities (B, 5, H, W), or None
        without ``with_mask`` when the deblurring net reads no mask)."""
        net = self.net_for(lq.shape)
        with torch.inference_mode():
            probs = self.mask_net.probabilities(lq) if with_mask or net.spec.reads_mask else None
            out = net(lq, probs)  # the mask goes in only if the net reads one; then the net's steps
            if self.mirror_big and max(lq.shape[-2:]) > self.face_size:
                mirrored = net(lq.flip(-1), None if probs is None else probs.flip(-1))
                out = (out + mirrored.flip(-1)) / 2
            return out.clamp(0, 1).cpu().contiguous(), None if probs is None else probs.cpu().contiguous()

    def restore_faces(
        self, faces: Sequence[np.ndarray], keep: Sequence[int] = (), *, mask: bool = True
    ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Restore aligned RGB uint8 face crops in batches; returns (restored faces, class-id masks).

        ``keep``: class ids whose pixels are taken from the input (e.g. hair, background), with a soft edge.
        ``mask=False``: no masks are returned (None each) and the mask net runs only if something needs it
        (:meth:`needs_mask_net`).
        A crop larger than its working size (:meth:`working_size`) is restored at that size and gets back what the
        restoration did not touch: the crop itself plus the restoration's change, scaled up. Crops are batched by
        working size, so the work and memory per face stay bounded whatever the input's size.
        """
        if isinstance(faces, np.ndarray) and faces.ndim == 4:  # a stack of same-size crops
            faces = list(faces)
        if isinstance(faces, np.ndarray) or not isinstance(faces, Sequence):
            got = "one image" if isinstance(faces, np.ndarray) else type(faces).__name__
            raise ValueError(f"faces must be a list of HxWx3 uint8 RGB face crops, got {got}")
        for f in faces:
            _check_image(f)
        outs: list = [None] * len(faces)
        masks: list = [None] * len(faces)
        for batch in self._batches(faces):
            small = [self._fit(faces[i]) for i in batch]
            lq = torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).float() / 255
            out, probs = self._run(lq, self.needs_mask_net(mask, keep, lq.shape))
            ids = probs.argmax(1) if probs is not None else None
            kept = _soften(sum((ids == c).float() for c in keep)) if keep else None
            for j, i in enumerate(batch):
                outs[i], m = self._full_size(faces[i], lq[j], out[j], None if ids is None else ids[j],
                                             None if kept is None else kept[j])
                masks[i] = m if mask else None
        return outs, masks

    def _batches(self, faces: Sequence[np.ndarray]) -> list[list[int]]:
        """Indices of ``faces`` in batches of at most ``batch_size`` that share one working size, in input order
        within each size."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(faces):
            groups.setdefault(self.working_size(f.shape), []).append(i)
        return [g[k : k + self.batch_size] for g in groups.values() for k in range(0, len(g), self.batch_size)]

    def working_size(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(height, width) an aligned crop of ``shape`` is restored at. Up to ``face_size`` (the training faces'
        256 px), its own size. Larger, its own size rounded down to a multiple of :data:`WORK_STEP`, at most
        ``max_work_size``: a big face is restored at (nearly) its own resolution, where its blur and detail are
        as wide as the net learnt them, and faces of similar size share a batch."""
        h, w = shape[:2]
        longer = max(h, w)
        if longer <= self.face_size:
            return (h, w)
        side = max(self.face_size, min(self.max_work_size, longer // WORK_STEP * WORK_STEP))
        scale = side / longer
        return (max(1, round(h * scale)), max(1, round(w * scale))) if scale < 1 else (h, w)

    def crop_size(self, landmarks: np.ndarray) -> int:
        """The side (px) a whole-photo face with these landmarks is aligned at: its own resolution
        (:func:`~smfd.infer.faces.native_size`), at least ``face_size`` (a small face is enlarged to it, as the
        training faces) and at most :data:`MAX_CROP`."""
        return int(min(MAX_CROP, max(self.face_size, round(native_size(landmarks)))))

    def align_face(self, image: np.ndarray, landmarks: np.ndarray, size: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(alignment matrix, aligned crop) of one face of ``image``, at ``size`` px or :meth:`crop_size`."""
        size = size or self.crop_size(landmarks)
        matrix = alignment_matrix(landmarks, size)
        return matrix, align(image, matrix, size)

    def _fit(self, face: np.ndarray) -> np.ndarray:
        h, w = self.working_size(face.shape)
        return face if (h, w) == face.shape[:2] else cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)

    @staticmethod
    def _full_size(face: np.ndarray, lq: torch.Tensor, out: torch.Tensor, ids: torch.Tensor | None,
                   kept: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray | None]:
        """One restored crop as uint8 (H, W, 3) and its class ids (H, W) (None without ``ids``), at the size of the
        input ``face``.

        Shape:
            lq, out: (3, h, w) in [0, 1] at the working size; ids: (h, w); kept: (1, h, w).
        """
        h, w = face.shape[:2]
        if out.shape[1:] == (h, w):
            if kept is not None:
                out = out * (1 - kept) + lq * kept
            return (out * 255).round().byte().permute(1, 2, 0).numpy(), None if ids is None else ids.byte().numpy()
        size = (w, h)
        # the crop keeps its own pixels and gets the restoration's change, scaled up: detail finer than the
        # working size, which the restoration never saw, is the input's, not a smooth enlargement
        change = ((out - lq) * 255).permute(1, 2, 0).numpy()
        restored = face.astype(np.float32) + cv2.resize(change, size, interpolation=cv2.INTER_CUBIC)
        restored = np.clip(np.rint(restored), 0, 255).astype(np.uint8)
        mask = None if ids is None else cv2.resize(ids.byte().numpy(), size, interpolation=cv2.INTER_NEAREST)
        if kept is not None:  # kept regions come from the full-size input, not from its scaled-down copy
            alpha = cv2.resize(kept[0].numpy(), size, interpolation=cv2.INTER_LINEAR)[..., None]
            blend = restored.astype(np.float32)
            blend += (face.astype(np.float32) - blend) * alpha
            restored = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
        return restored, mask

    # --- images -------------------------------------------------------------------------------------------------

    def deblur(self, image: np.ndarray, *, aligned: bool = False, keep: str | Sequence[str] = (),
               mask: bool = True) -> Result:
        """Restore one image: an aligned face crop (``aligned=True``) or every face in a whole photo.
        ``mask=False``: the result holds no mask, and the mask net runs only if something needs it (the deblurring
        net reads it, or regions are kept).

        Raises:
            NoFaceError: whole-photo mode found no face large enough (``aligned=True`` restores a crop as it is).
        """
        _check_image(image)
        keep_ids = parse_keep(keep)
        if aligned:
            (out,), (ids,) = self.restore_faces([image], keep_ids, mask=mask)
            return Result(out, ids, [])
        faces = self.detect_faces(image)
        todo, crops = self.align_faces(image, faces)
        if not todo:
            why = "no face found" if not faces else f"all {len(faces)} faces are below {self.min_face} px"
            raise NoFaceError(why)
        restored, masks = self.restore_faces(crops, keep_ids, mask=mask)
        if not mask:
            return Result(self.paste(image, todo, restored), None, faces)
        return Result(*self.paste(image, todo, restored, masks), faces)

    def align_faces(self, image: np.ndarray, faces: Sequence[Face]) -> tuple[list[Face], list[np.ndarray]]:
        """The faces large enough to restore (each given its alignment ``matrix``) and their aligned crops of
        ``image``, each at the face's own resolution (:meth:`crop_size`); a face under ``min_face`` is marked
        ``skipped`` with the reason."""
        todo = []
        for f in faces:
            if f.size < self.min_face:
                f.skipped = f"face of {f.size} px is below the {self.min_face} px minimum"
                continue
            todo.append(f)
        crops = []
        for f in todo:
            f.matrix, crop = self.align_face(image, f.landmarks)
            crops.append(crop)
        return todo, crops

    def paste(self, image: np.ndarray, faces: Sequence[Face], restored: Sequence[np.ndarray],
              masks: Sequence[np.ndarray] | None = None):
        """Add what restoring changed in each aligned crop back into a copy of ``image`` (each face's ``matrix`` says
        where; the crop's side is the restored crop's), smallest face first: pixels the restoration left alone keep
        their exact values. Returns the new image, or (image, class-id map of the photo) when ``masks`` are given."""
        out = image.copy()
        full_mask = np.zeros(image.shape[:2], np.uint8) if masks is not None else None
        order = sorted(range(len(faces)), key=lambda i: faces[i].size)
        for i in order:
            # only the face's own region of the photo is touched: memory per face stays bounded by its size
            side = restored[i].shape[0]
            (x0, y0, x1, y1), matrix = _face_region(faces[i].matrix, side, image.shape)
            if x1 <= x0 or y1 <= y0:
                continue
            region = out[y0:y1, x0:x1]
            out[y0:y1, x0:x1] = paste_change(region, restored[i], align(region, matrix, side), matrix)
            if full_mask is None:
                continue
            inv = cv2.invertAffineTransform(matrix)
            warped = cv2.warpAffine(masks[i], inv, (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST, borderValue=255)
            region = full_mask[y0:y1, x0:x1]
            region[warped != 255] = warped[warped != 255]
        return out if masks is None else (out, full_mask)

    def deblur_video(self, src: str | os.PathLike, dst: str | os.PathLike | None = None, **options):
        """Restore the faces of a video clip: returns a :class:`~smfd.infer.video.VideoJob`, an iterable of restored
        frames that writes ``dst`` (if given) as it goes. Options: ``start``, ``duration`` (s), ``detect_every``,
        ``smooth`` (frames each side), ``fuse`` (frames each side averaged where they agree), ``batch_frames``,
        ``keep`` (class ids), ``crf``, ``preset``, ``progress``."""
        from .video import VideoJob

        return VideoJob(self, src, dst, **options)

    def detect_faces(self, image: np.ndarray) -> list[Face]:
        """The faces in a whole RGB uint8 photo, searched on a copy of at most ``DETECT_MAX_PIXELS`` (the
        detector's memory and time grow with the pixels it scans), with boxes and landmarks in the photo's own
        pixels."""
        h, w = image.shape[:2]
        scale = min(1.0, (DETECT_MAX_PIXELS / (h * w)) ** 0.5)
        if scale == 1.0:
            return self.detector.detect(image)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        faces = self.detector.detect(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        sx, sy = w / size[0], h / size[1]
        for f in faces:
            f.box = (round(f.box[0] * sx), round(f.box[1] * sy), round(f.box[2] * sx), round(f.box[3] * sy))
            f.landmarks = (f.landmarks + 0.5) * np.array([sx, sy], np.float32) - 0.5
        return faces


    @property
    def detector(self) -> FaceDetector:
        """The :class:`~smfd.infer.faces.FaceDetector` whole photos are searched with, made when first needed;
        assign another (e.g. ``FaceDetector("hog", edge=0)``) to search with it instead."""
        if self._detector is None:
            self._detector = FaceDetector(self.detector_name)
        return self._detector

    @detector.setter
    def detector(self, detector: FaceDetector) -> None:
        if not isinstance(detector, FaceDetector):
            raise BadOption(f"detector must be a FaceDetector, got {type(detector).__name__}")
        self._detector, self.detector_name = detector, detector.name


def _face_region(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> tuple[tuple[int, int, int, int],
                                                                             np.ndarray]:
    """The part of the photo an aligned ``size`` crop covers, (x0, y0, x1, y1) clipped to the photo, and the
    alignment matrix for that part (its origin moved to (x0, y0))."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float32)
    inv = cv2.invertAffineTransform(matrix)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    h, w = shape[:2]
    x0, y0 = (max(0, int(np.floor(v)) - 2) for v in pts.min(0))
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max())) + 2), min(h, int(np.ceil(pts[:, 1].max())) + 2)
    moved = matrix.copy()
    moved[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    return (x0, y0, x1, y1), moved


def _pool_locally(net: Runner, window: int) -> int:
    """A net that pools over its whole input takes those statistics over ``window``-px windows on inputs larger
    than that (:func:`~smfd.models.local_pooling.local_stats_above`; an ONNX export has them built in, a second
    graph made by ``smfd export``: 0 turns it off); returns the window the net now uses (0: the whole input). A net
    trained with windows keeps its own. A window the net's stride does not suit is a BadOption."""
    from ..models.local_pooling import local_stats_above

    if not net.is_torch:
        if window <= 0:
            net.net.use_whole_input_stats()
        return net.net.window or int(net.spec.options.get("pool_window") or 0)
    if window <= 0:
        return int(getattr(net.module, "local_stats", 0) or 0)
    try:
        return local_stats_above(net.module, window)
    except ValueError as e:
        raise BadOption(str(e)) from None


def _soften(m: torch.Tensor, k: int = 7) -> torch.Tensor:
    """Blur a (B, H, W) 0/1 map so kept regions join the restored ones without a hard seam."""
    x = m.unsqueeze(1)
    x = torch.nn.functional.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
    return x.clamp(0, 1)


def load_pipeline(weights: str = "default", device: str = "cpu", *, backend: str = "torch",
                  batch_size: int | None = None, min_face: int = MIN_FACE, precision: str = "auto",
                  detector: str = "hog", max_work_size: int = MAX_WORK_SIZE,
                  pool_window: int | None = None, mirror_big: bool = True) -> FaceDeblurrer:
    """Load a :class:`FaceDeblurrer` from a weight bundle (``"default"``: the one shipped in the package).

    ``backend="onnxruntime"`` runs a bundle's ONNX export instead (see ``smfd export``); ``weights`` must then
    be the export folder. An export folder given with ``backend="torch"`` (the default) is run with ONNX Runtime,
    as what it holds can only run there. ``precision``: ``auto``, ``bf16`` or ``fp32`` (PyTorch backend; see
    :mod:`smfd.precision`); ``detector``: the face detector for whole photos (:data:`smfd.infer.faces.DETECTORS`);
    ``max_work_size``: the largest side a face is restored at (:meth:`FaceDeblurrer.working_size`);
    ``pool_window``: the window a globally pooling net takes its statistics over, ``mirror_big``: big crops
    restored as given and mirrored, averaged (:class:`FaceDeblurrer`).
    """
    from .weights import is_onnx_export

    if not isinstance(weights, (str, os.PathLike)):
        raise BadOption(f"weights must be 'default' or a weights folder, got {weights!r}")
    check_precision(precision)
    if backend == "torch" and is_onnx_export(weights):
        backend = "onnxruntime"
    if backend == "onnxruntime" and str(weights) == "default":
        raise BadOption("the onnxruntime backend needs an export folder: make one with 'smfd export -o DIR' "
                        "and pass --weights DIR")
    if backend == "torch":
        from .weights import load_big_net, load_bundle

        mask_net, deblur_net, manifest = load_bundle(weights)
        # a big-face net is loaded only where some crop can be worked above the training size
        big_net = load_big_net(weights, manifest, mask_net) if max_work_size > FACE_SIZE else None
        return FaceDeblurrer(mask_net, deblur_net, device=device, batch_size=batch_size, min_face=min_face,
                             manifest=manifest, precision=precision, detector=detector, max_work_size=max_work_size,
                             pool_window=pool_window, mirror_big=mirror_big, big_net=big_net)
    if backend == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise RuntimeError("the onnxruntime backend needs ONNX Runtime: pip install 'smfd[onnx]'") from None
        from .export import load_onnx, load_onnx_big

        mask_sess, deblur_sess, manifest = load_onnx(weights)
        big_sess = load_onnx_big(weights, manifest, mask_sess) if max_work_size > FACE_SIZE else None
        return FaceDeblurrer(mask_sess, deblur_sess, batch_size=batch_size, min_face=min_face, manifest=manifest,
                             detector=detector, max_work_size=max_work_size, pool_window=pool_window,
                             mirror_big=mirror_big, big_net=big_sess)
    raise BadOption(f"backend must be torch or onnxruntime, got {backend!r}")
