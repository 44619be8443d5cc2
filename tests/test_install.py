"""A photo-only install (no `train` extra) is enough to deblur: inference imports neither the training code nor
the training and plotting packages that extra holds."""

import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
import smfd
pipe = smfd.load_pipeline(precision="fp32")
faces, masks = pipe.restore_faces(np.zeros((1, 256, 256, 3), np.uint8))
from smfd.cli import app  # the command line too
loaded = sorted(m for m in ("matplotlib", "tensorboard", "smfd.train", "smfd.train.loop") if m in sys.modules)
print(",".join(loaded))
"""


def test_deblurring_imports_no_training_or_plotting_package():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1:] in ([""], []), f"loaded: {out.stdout}"


def test_a_missing_extra_fails_under_ci_and_skips_elsewhere(monkeypatch):
    """Under CI the suite cannot pass with a test file skipped because an extra was not installed."""
    import sys

    import pytest

    from conftest import extras_required, importorskip_or_fail

    monkeypatch.setitem(sys.modules, "av", None)  # import av now fails, as without the video extra
    monkeypatch.delenv("SMFD_REQUIRE_EXTRAS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        importorskip_or_fail("av")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="av is missing.*video"):
        importorskip_or_fail("av")
    with pytest.raises(pytest.skip.Exception):  # not an extra of smfd's: still a skip
        importorskip_or_fail("a_module_nobody_installs")
    assert not extras_required({"CI": "false"}) and extras_required({"SMFD_REQUIRE_EXTRAS": "1"})
