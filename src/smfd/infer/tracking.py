"""Faces across video frames: followed between detections by their landmarks, smoothed over time, and their
restored crops fused with the neighbouring frames' (used by :mod:`smfd.infer.video`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from .faces import Face, alignment_matrix, roll_degrees

#: How far (0-255, mean over a 5x5 patch) a neighbouring frame's restored crop may differ from a frame's own and
#: still be averaged in (weight exp(-(diff / tolerance)^2)): restoring frame by frame varies by a few levels;
#: a face that moves or changes expression differs by tens.
FUSE_TOLERANCE = 20.0
#: A tracked face stays on its side of the line between crops restored at the training size and those restored
#: above it (mirrored too, by the big-face net) until its crop moves this share of the line past it.
BIG_MARGIN = 0.1

@dataclass
class _Track:
    id: int
    landmarks: np.ndarray  # (5, 2) in the frame, as last found
    side: float  # the detector's box side, in template pixels (scale-free: follows the face's size)
    centre: np.ndarray  # the detector's box centre, in template pixels (the landmarks' predictor expects that box)
    misses: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # px a frame, of the landmarks


class FaceTracker:
    """Faces across frames: detected every ``detect_every`` frames (and on the first), followed between by their
    landmarks. A face the detector no longer finds is dropped at the second detection that misses it, or at once
    when it leaves the frame. ``detect`` is the pipeline's whole-frame detector (``FaceDeblurrer.detect_faces``)."""

    def __init__(self, detect: Callable[[np.ndarray], list[Face]], detector, *, detect_every: int = 8,
                 face_size: int = 256) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        self.detect, self.detector, self.every, self.face_size = detect, detector, detect_every, face_size
        self.tracks: list[_Track] = []
        self._next_id = 0
        self.detections = 0

    def _box(self, face: Face) -> tuple[float, np.ndarray]:
        """The detector's box of ``face`` in template pixels: (side, centre)."""
        m = alignment_matrix(face.landmarks, self.face_size)
        centre = np.array([(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2], np.float64)
        return face.size * math.hypot(m[0, 0], m[1, 0]), m[:, :2] @ centre + m[:, 2]

    def _follow(self, image: np.ndarray, track: _Track) -> np.ndarray | None:
        """The track's landmarks in ``image``: looked for where the face would be if it kept moving as it did,
        then once more in the box those landmarks give (the predictor is most accurate in the detector's box)."""
        pts = track.landmarks + track.velocity
        h, w = image.shape[:2]
        for _ in range(2):
            m = alignment_matrix(pts, self.face_size)
            side = track.side / math.hypot(m[0, 0], m[1, 0])
            inv = cv2.invertAffineTransform(m)
            centre = (inv[:, :2] @ track.centre + inv[:, 2]).astype(np.float32)
            if not (0 <= centre[0] < w and 0 <= centre[1] < h) or side < 8:
                return None
            pts = self.detector.points_near(image, centre, side, roll_degrees(pts))
        return pts

    @staticmethod
    def _moved(track: _Track, pts: np.ndarray) -> None:
        track.velocity = (pts - track.landmarks).mean(0)
        track.landmarks = pts

    def update(self, image: np.ndarray, index: int) -> list[tuple[int, np.ndarray, int]]:
        """The faces of frame ``index``: (track id, landmarks (5, 2), face size in px)."""
        if index % self.every == 0 or not self.tracks:
            self.detections += 1
            found = self.detect(image)
            kept: list[_Track] = []
            for face in found:
                centre = face.landmarks.mean(0)
                near = [t for t in self.tracks if t not in kept
                        and np.linalg.norm(t.landmarks.mean(0) - centre) < 0.5 * face.size]
                track = min(near, key=lambda t: np.linalg.norm(t.landmarks.mean(0) - centre)) if near else None
                if track is None:
                    track = _Track(self._next_id, face.landmarks, 0.0, np.zeros(2))
                    self._next_id += 1
                self._moved(track, face.landmarks)
                track.misses = 0
                track.side, track.centre = self._box(face)
                kept.append(track)
            for t in self.tracks:
                if t not in kept:
                    t.misses += 1
                    if t.misses < 2 and (pts := self._follow(image, t)) is not None:
                        self._moved(t, pts)
                        kept.append(t)
            self.tracks = kept
        else:
            alive = []
            for t in self.tracks:
                pts = self._follow(image, t)
                if pts is not None:
                    self._moved(t, pts)
                    alive.append(t)
            self.tracks = alive
        out = []
        for t in self.tracks:
            m = alignment_matrix(t.landmarks, self.face_size)
            out.append((t.id, t.landmarks.copy(), int(round(t.side / math.hypot(m[0, 0], m[1, 0])))))
        return out


def steady_side(side: int, was_big: bool | None, line: int, margin: float = BIG_MARGIN) -> int:
    """The crop side a tracked face is aligned at: ``side`` (its own), kept on the side of ``line`` (the first crop
    side restored above the training size) its track was on (``was_big``; None: a new track) unless it moved more
    than ``margin`` of ``line`` past it. A face hovering about the line is then not restored by turns one way and
    the other, which would flicker; the crop is at most ``margin`` off the face's own resolution."""
    if was_big is True and line * (1 - margin) <= side < line:
        return line
    if was_big is False and line <= side < line * (1 + margin):
        return line - 1
    return side


def smooth_landmarks(series: dict[int, np.ndarray], at: int, radius: int, sigma: float) -> np.ndarray:
    """A track's landmarks at frame ``at``, averaged with Gaussian weights over the frames ``at - radius .. at +
    radius`` where the track has them (``series``: frame index -> landmarks; a centred window: no lag for a face
    moving steadily)."""
    total, weight = np.zeros((5, 2), np.float64), 0.0
    for i in range(at - radius, at + radius + 1):
        if i not in series:
            continue
        w = math.exp(-0.5 * ((i - at) / sigma) ** 2) if sigma > 0 else float(i == at)
        total += w * series[i]
        weight += w
    return (total / weight).astype(np.float32)


def fuse_crops(crop: np.ndarray, neighbours: list[tuple[int, np.ndarray]], radius: int,
               tolerance: float = FUSE_TOLERANCE) -> np.ndarray:
    """A restored aligned face crop averaged with the same face's restored crops in neighbouring frames
    (``neighbours``: (frame offset, crop)). The crops are aligned, so the same point of the face is the same pixel.
    Weights: Gaussian in time (sigma ``radius / 2`` frames), and per pixel by how close the neighbour is to this
    crop (exp(-(d / tolerance)^2), d the mean absolute difference over a 5x5 patch, 0-255), so what really changes
    between frames (a blink, the mouth, a turn of the head) comes from this frame alone and does not ghost, while
    the frame-to-frame variation of restoring each frame on its own (a few levels) is averaged away."""
    if not neighbours:
        return crop
    centre = crop.astype(np.float32)
    total, weight = centre.copy(), np.ones(centre.shape[:2] + (1,), np.float32)
    for offset, other in neighbours:
        other = other.astype(np.float32)
        diff = cv2.blur(np.abs(other - centre).mean(-1), (5, 5))
        w = math.exp(-0.5 * (offset / (radius / 2)) ** 2) * np.exp(-((diff / tolerance) ** 2))
        total += other * w[..., None]
        weight += w[..., None]
    return np.clip(np.rint(total / weight), 0, 255).astype(np.uint8)
