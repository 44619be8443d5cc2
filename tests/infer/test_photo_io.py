import numpy as np
import pytest
from PIL import Image

from helpers import write_bad_inputs
from smfd.infer.photo_io import read_photo


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return write_bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("name, match", [
    ("empty", "empty"), ("truncated", "cannot decode"), ("text", "not a readable image"),
    ("16bit", "16-bit"), ("rgba", "transparency"), ("1x1", "too small"), ("bomb", "MP limit"),
])
def test_bad_inputs_give_one_clear_error(bad, name, match):
    with pytest.raises(ValueError, match=match) as e:
        read_photo(bad[name])
    assert str(bad[name]) in str(e.value) and "\n" not in str(e.value)


def test_handled_modes(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(np.dstack([rgb, np.full((40, 60), 255, np.uint8)])).save(tmp_path / "opaque.png")
    assert read_photo(tmp_path / "grey.png").shape == (40, 60, 3)
    assert read_photo(tmp_path / "cmyk.jpg").shape == (40, 60, 3)
    assert np.array_equal(read_photo(tmp_path / "opaque.png"), rgb)


def test_exif_rotation_is_applied(tmp_path):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :10] = 255  # a white band on the left
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = read_photo(tmp_path / "rotated.jpg")
    assert out.shape == (60, 40, 3)  # upright: portrait
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the band is now on top
