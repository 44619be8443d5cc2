"""``detector=`` picks the face detector whole photos are searched with."""

import pytest

from smfd.infer.pipeline import load_pipeline


def test_unknown_detector_is_one_clear_error():
    with pytest.raises(ValueError, match="detector must be one of hog"):
        load_pipeline(detector="mediapipe")


def test_named_detector_is_the_one_used():
    pytest.importorskip("dlib")
    pipe = load_pipeline(detector="hog-roll")
    assert pipe.detector.name == "hog-roll"
    assert load_pipeline().detector.name == "hog"
