"""Measure where dlib's 5 landmarks sit on the training faces: the template whole photos are aligned to.

Usage: python scripts/fit_face_template.py ../shared/data/synthface --count 400

Runs dlib's HOG detector and 5-point shape predictor (face_recognition_models) on sharp SynthFace faces
(FFHQ-aligned, 256 px) and prints the median position of each landmark, to paste into
smfd/infer/faces.py as TEMPLATE_256.
"""

import argparse

import numpy as np

from smfd.data import FaceFolder
from smfd.infer.faces import FaceDetector

ap = argparse.ArgumentParser()
ap.add_argument("root")
ap.add_argument("--count", type=int, default=400)
args = ap.parse_args()
folder = FaceFolder(args.root, require_masks=False)
det = FaceDetector()
pts = []
for i in folder.ids[: args.count]:
    img, _ = folder.read(i)
    faces = det.landmarks(img)
    if len(faces) == 1:
        pts.append(faces[0])
pts = np.array(pts)
print(f"{len(pts)} of {args.count} faces with exactly one detection")
print("median:", np.round(np.median(pts, axis=0), 2).tolist())
print("sd:", np.round(pts.std(axis=0), 2).tolist())
