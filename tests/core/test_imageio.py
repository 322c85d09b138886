import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.imageio import ImageError, encode_image, image_files_in, iter_image_files, read_image, save_image
from tests.conftest import synthetic_photo


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_rgb_roundtrip_with_icc_and_exif(tmp_path):
    img = synthetic_photo(0, 64, 48)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    src = tmp_path / "a.jpg"
    img.save(src, quality=95, icc_profile=icc, exif=exif.tobytes())
    pic = read_image(src)
    assert pic.rgb.shape == (48, 64, 3) and pic.alpha is None and pic.icc_profile == icc
    out = tmp_path / "b.png"
    save_image(pic, out)
    back = Image.open(out)
    assert back.info.get("icc_profile") == icc
    assert back.getexif()[0x010F] == "CameraMaker"


def test_exif_orientation_applied(tmp_path):
    img = synthetic_photo(1, 60, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    src = tmp_path / "rot.jpg"
    img.save(src, exif=exif.tobytes())
    pic = read_image(src)
    assert pic.rgb.shape[:2] == (60, 30)
    with Image.open(src) as stored:  # the same decoded pixels, turned 90 degrees clockwise
        assert np.array_equal(pic.rgb, np.rot90(np.asarray(stored.convert("RGB")), k=-1))
    out_exif = Image.Exif()
    if pic.exif is not None:
        out_exif.load(pic.exif)
    assert out_exif.get(0x0112, 1) == 1  # the orientation tag is reset: a viewer must not turn it again
    assert pic.to_pil().getexif().get(0x0112, 1) == 1


def test_rgba_alpha_untouched(tmp_path):
    rgba = synthetic_photo(2).convert("RGBA")
    alpha = np.random.default_rng(0).integers(0, 256, size=(80, 96), dtype=np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    pic = read_image(_bytes(rgba, "PNG"))
    assert np.array_equal(pic.alpha, alpha)
    with pytest.raises(ImageError, match="alpha"):
        encode_image(pic, "JPEG", dest="x.jpg")
    back = Image.open(io.BytesIO(encode_image(pic, "PNG")))
    assert back.mode == "RGBA" and np.array_equal(np.asarray(back.getchannel("A")), alpha)


@pytest.mark.parametrize(
    "mode,note", [("L", "grayscale"), ("P", "palette"), ("CMYK", "CMYK"), ("1", "grayscale"), ("LA", "grayscale")]
)
def test_modes_converted_with_warning(mode, note):
    img = synthetic_photo(3).convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    with pytest.warns(UserWarning, match=note):
        pic = read_image(_bytes(img, fmt), source="x")
    assert pic.rgb.dtype == np.uint8 and pic.rgb.shape == (80, 96, 3)
    assert (pic.alpha is not None) == (mode == "LA")


def test_16bit_gray_scaled():
    arr = np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    with pytest.warns(UserWarning, match="16-bit"):
        pic = read_image(_bytes(img, "PNG"))
    assert pic.rgb[0, 0, 0] == 0 and pic.rgb[-1, -1, 0] == 255


@pytest.mark.parametrize("data,problem", [(b"", "empty file"), (b"hello, I am text", "not a recognised image")])
def test_bad_bytes(data, problem):
    with pytest.raises(ImageError, match=problem):
        read_image(data, source="bad.bin")


def test_bad_files_name_the_file(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        read_image(empty)
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(_bytes(synthetic_photo(4, 200, 200), "JPEG")[:400])
    with pytest.raises(ImageError, match=r"trunc\.jpg: truncated"):
        read_image(trunc)
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.png")
    err = None
    try:
        read_image(trunc)
    except ImageError as exc:
        err = str(exc)
    assert "\n" not in err


def test_pixel_limit():
    data = _bytes(Image.new("RGB", (400, 300)), "PNG")
    with pytest.raises(ImageError, match="over the limit"):
        read_image(data, max_pixels=100_000)
    assert read_image(data, max_pixels=None).size == (400, 300)


def test_atomic_write_leaves_no_partial(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_iter_image_files(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / ".cache").mkdir()
    for name in ["d/a.jpg", "d/e/b.PNG", "d/notes.txt", "d/.hidden.jpg", "d/.cache/c.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    found = iter_image_files([tmp_path / "d"])
    assert [str(r) for _, r in found] == ["a.jpg", "e/b.PNG"]
    assert [str(r) for _, r in iter_image_files([tmp_path / "d"], recursive=False)] == ["a.jpg"]
    # a file named on the command line is taken as given, hidden or not
    assert iter_image_files([tmp_path / "d" / ".hidden.jpg"]) == [(tmp_path / "d" / ".hidden.jpg", Path(".hidden.jpg"))]


def test_one_folder_walker_for_the_library_and_the_training_data(tmp_path):
    from deepraft.core.data import find_images

    for name in ["a.jpg", "sub/b.png", ".hidden.jpg", ".cache/c.jpg", "sub/.d.webp", "x.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    expected = [tmp_path / "a.jpg", tmp_path / "sub" / "b.png"]
    assert image_files_in(tmp_path) == expected
    assert find_images(tmp_path, "folder") == expected
    assert [f for f, _ in iter_image_files([tmp_path])] == expected


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    import deepraft.core.fileio

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def boom(tmp, path):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(deepraft.core.fileio, "finish_temp_file", boom)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_pixel_limits_are_named_once():
    """One limit, in deepraft.core.imageio: the library's, the CLI's and the service's default."""
    import inspect

    from deepraft.apps import cli
    from deepraft.apps.service.core import ServiceSettings
    from deepraft.core.imageio import DEFAULT_MAX_PIXELS

    assert ServiceSettings().max_pixels == DEFAULT_MAX_PIXELS
    for command in (cli.protect, cli.scan):
        assert inspect.signature(command).parameters["max_pixels"].default.default == DEFAULT_MAX_PIXELS
    assert inspect.signature(cli.serve).parameters["max_pixels"].default.default == DEFAULT_MAX_PIXELS
    assert inspect.signature(cli._load).parameters["max_pixels"].default == DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("mode", ["square", "area"])
def test_work_copy_from_pil_equals_the_array_path(mode):
    from deepraft.core.imageio import picture_from_pil, work_copy, work_copy_from_pil

    img = synthetic_photo(3, 640, 400)
    fast = work_copy_from_pil(img, 64, mode)
    slow = work_copy(picture_from_pil(img).rgb, 64, mode)
    assert np.array_equal(fast, slow)
    assert fast.shape == ((64, 64, 3) if mode == "square" else (51, 81, 3))
    rgba = img.convert("RGBA")  # another mode goes through the full decode, same pixels
    assert np.array_equal(work_copy_from_pil(rgba, 64, mode), slow)


def test_work_copy_from_pil_applies_exif_rotation_and_the_pixel_limit():
    from deepraft.core.imageio import work_copy_from_pil

    img = synthetic_photo(4, 120, 60)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    rotated = Image.open(io.BytesIO(_bytes(img, "JPEG", exif=exif.tobytes())))
    assert work_copy_from_pil(rotated, 32, "area").shape[:2] == (45, 23)  # portrait after rotation
    with pytest.raises(ImageError, match="over the limit"):
        work_copy_from_pil(img, 32, "area", max_pixels=1000)


@pytest.mark.parametrize("orientation", [1, 6])
def test_read_work_copy_decodes_a_large_jpeg_at_a_reduced_scale_close_to_the_full_decode(orientation, monkeypatch):
    """A 1600 x 1200 JPEG read for a 128 px area working copy (148 x 111): libjpeg's DCT scaling
    gives 1/4 scale (400 x 300, at least 1.5x the copy on each side), and the copy is within a
    few levels of the one made from the full decode; an EXIF turn transposes both alike."""
    from deepraft.core.imageio import read_work_copy, work_copy

    img = synthetic_photo(5, 400, 300).resize((1600, 1200), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _bytes(img, "JPEG", quality=92, exif=exif.tobytes())
    from PIL import JpegImagePlugin

    requested, sizes = [], []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(im, mode, size):
        requested.append(size)
        out = draft(im, mode, size)
        sizes.append(im.size)
        return out

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    fast = read_work_copy(data, 128, mode="area")
    full = work_copy(read_image(data).rgb, 128, "area")
    assert requested == [(222, 167)] and sizes == [(400, 300)]  # 1.5 x (148, 111), as stored
    assert fast.shape == full.shape == ((111, 148, 3) if orientation == 1 else (148, 111, 3))
    diff = np.abs(fast.astype(float) - full.astype(float))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) < 8


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (no pixel data follows)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_400_megapixel_png_is_refused_with_our_limit_in_the_message(tmp_path):
    from deepraft.core.imageio import read_work_copy

    f = tmp_path / "bomb.png"
    f.write_bytes(_png_header(20000, 20000))
    for read in (lambda: read_image(f), lambda: read_work_copy(f, 64)):
        with pytest.raises(ImageError, match=r"400,000,000 pixels, over the limit of 64,000,000") as info:
            read()
        assert "bomb.png" in str(info.value) and "MAX_IMAGE_PIXELS" not in str(info.value)
