import numpy as np
import pytest
from PIL import Image

from helpers import write_bad_inputs
from smfd.infer.photo_io import encode_photo, open_photo, output_format, output_suffix, read_photo, save_photo


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return write_bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("name, match", [
    ("empty", "empty"), ("truncated", "cannot decode"), ("text", "not a readable image"),
    ("1x1", "too small"), ("bomb", "MP limit"),
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


def _tagged(rgb: np.ndarray, orientation: int = 1) -> tuple[Image.Image, bytes, bytes]:
    """An image with EXIF (camera, date, GPS, orientation) and an sRGB ICC profile."""
    from PIL import ImageCms

    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112], exif[0x010F] = orientation, "Canon"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"  # date taken
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0)})  # GPS
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return im, exif.tobytes(), icc


@pytest.mark.parametrize("suffix, fmt", [(".jpg", "JPEG"), (".png", "PNG")])
def test_outputs_keep_exif_and_icc_but_not_the_applied_orientation(tmp_path, suffix, fmt):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    im, exif, icc = _tagged(rgb, orientation=6)
    im.save(tmp_path / f"in{suffix}", fmt, exif=exif, icc_profile=icc)
    photo = open_photo(tmp_path / f"in{suffix}")
    assert photo.image.shape == (60, 40, 3)  # orientation applied
    out = save_photo(tmp_path / f"out{suffix}", photo, 255 - photo.image)
    with Image.open(out) as back:
        tags = back.getexif()
        assert back.info["icc_profile"] == icc and back.size == (40, 60)
        assert tags[0x010F] == "Canon" and 0x0112 not in tags  # orientation applied, so not repeated
        assert tags.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09" and tags.get_ifd(0x8825)[1] == "N"
    bare = save_photo(tmp_path / f"bare{suffix}", photo, photo.image, strip_metadata=True)
    with Image.open(bare) as back:
        assert not back.getexif() and "icc_profile" not in back.info


def test_transparency_is_kept_and_put_back(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "cut.png")
    photo = open_photo(tmp_path / "cut.png")
    assert np.array_equal(photo.image, rgba[..., :3]) and np.array_equal(photo.alpha, rgba[..., 3])
    assert output_format(photo, ".png") == "png" and output_format(photo, ".jpg") == "png"
    restored = 255 - photo.image
    back = np.asarray(Image.open(save_photo(tmp_path / "out.png", photo, restored)))
    assert back.shape == (40, 60, 4) and np.array_equal(back[..., 3], rgba[..., 3])
    assert np.array_equal(back[..., :3], restored)


def test_sixteen_bits_are_read_and_written_back_at_sixteen_bits(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (40, 60, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "scan.png"), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    photo = open_photo(tmp_path / "scan.png")
    assert np.array_equal(photo.deep, deep) and photo.image.dtype == np.uint8
    assert np.abs(photo.image.astype(int) * 257 - deep).max() <= 128  # the 8-bit copy the nets see
    restored = photo.image.copy()
    restored[10:20, 10:20] = np.clip(restored[10:20, 10:20].astype(int) + 9, 0, 255)  # the "restored face"
    out = save_photo(tmp_path / "out.png", photo, restored)
    back = cv2.cvtColor(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert back.dtype == np.uint16
    outside = np.ones((40, 60), bool)
    outside[10:20, 10:20] = False
    assert np.array_equal(back[outside], deep[outside])  # untouched pixels keep every one of their 16 bits
    assert np.abs(back[10:20, 10:20].astype(int) - deep[10:20, 10:20] - 9 * 257).max() <= 257 * 9 + 1
    assert (back[~outside].astype(int) > deep[~outside]).mean() > 0.9
    grey = rng.integers(0, 65536, (30, 30), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "grey16.png"), grey)
    assert np.array_equal(open_photo(tmp_path / "grey16.png").deep[..., 1], grey)


def test_encode_photo_checks_its_arguments(tmp_path):
    photo = open_photo(_write(tmp_path / "a.png"))
    with pytest.raises(ValueError, match="format must be jpg or png"):
        encode_photo(photo, photo.image, "tiff")
    with pytest.raises(ValueError, match="must match the photo"):
        encode_photo(photo, photo.image[:10], "png")


def _write(path):
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(path)
    return path


def test_one_output_format_rule_by_name_and_by_photo(tmp_path):
    assert output_suffix(".JPEG") == ".JPEG" and output_suffix(".jpg") == ".jpg"
    assert output_suffix(".webp") == ".png" and output_suffix(".tif") == ".png"
    assert output_suffix(".png", "jpg") == ".jpg" and output_suffix(".jpg", "png") == ".png"
    with pytest.raises(ValueError, match="format must be"):
        output_suffix(".jpg", "webp")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.jpeg")
    photo = open_photo(tmp_path / "a.jpeg")
    assert output_format(photo, ".jpeg") == "jpg" and output_format(photo, ".webp") == "png"
    assert output_format(photo, ".jpeg", "png") == "png"


def test_a_file_is_what_it_holds_not_what_it_is_named(tmp_path):
    from smfd.infer.photo_io import stored_format

    Image.fromarray(np.zeros((32, 32, 4), np.uint8)).save(tmp_path / "cut.jpg", "PNG")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    assert stored_format(tmp_path / "cut.jpg") == "PNG" and stored_format(tmp_path / "a.jpg") == "JPEG"
    assert stored_format(tmp_path / "text.jpg") == "" and stored_format(tmp_path / "missing.jpg") == ""
    assert output_suffix(".jpg", "keep", "PNG") == ".png" and output_suffix(".JPG", "keep", "JPEG") == ".JPG"
    assert output_suffix(".jpg", "keep", "MPO") == ".jpg" and output_suffix(".jpg", "jpg", "PNG") == ".jpg"
    assert output_format(open_photo(tmp_path / "cut.jpg"), ".jpg") == "png"
