import numpy as np
import pytest
from PIL import Image

import deepraft
from deepraft import Picture, ScanResult
from deepraft.core.imageio import read_image
from deepraft.core.measures import psnr_uint8
from tests.conftest import EXAMPLES, synthetic_photo


@pytest.mark.parametrize("size", [(64, 64), (256, 64), (64, 256), (401, 99), (1000, 250), (97, 389)])
def test_protect_keeps_size_any_aspect(tiny_stamper, size):
    img = synthetic_photo(1, *size)
    out = tiny_stamper.protect(img)
    assert isinstance(out, Image.Image) and out.size == img.size and out.mode == "RGB"
    assert 25 < psnr_uint8(np.asarray(out), np.asarray(img)) < 45


def test_protect_rgba_keeps_alpha(tiny_stamper):
    img = synthetic_photo(2).convert("RGBA")
    alpha = np.tile(np.arange(96, dtype=np.uint8), (80, 1))
    img.putalpha(Image.fromarray(alpha))
    out = tiny_stamper.protect(img)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out.getchannel("A")), alpha)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16"])
def test_protect_other_modes(tiny_stamper, mode):
    img = synthetic_photo(3).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img).astype(np.uint16) * 257)
    with pytest.warns(UserWarning):
        out = tiny_stamper.protect(img)
    assert out.size == img.size and out.mode == "RGB"


def test_scan_result_and_operating_points(tiny_stamper):
    img = synthetic_photo(4)
    r = tiny_stamper.scan(img)
    assert isinstance(r, ScanResult) and isinstance(r.protected, bool)
    assert r.threshold == tiny_stamper.card.threshold(1e-3)
    assert r.protected == (r.score > r.threshold)
    r1 = tiny_stamper.scan(img, fpr=0.1)
    assert r1.score == pytest.approx(r.score) and r1.threshold == tiny_stamper.card.threshold(0.1)
    with pytest.raises(ValueError, match="no threshold calibrated for FPR 0.0042"):
        tiny_stamper.scan(img, fpr=0.0042)


def test_batch_forms_match_single(tiny_stamper):
    imgs = [synthetic_photo(i, 70 + 10 * i, 60) for i in range(3)]
    outs = tiny_stamper.protect_batch(imgs)
    assert [o.size for o in outs] == [i.size for i in imgs]
    single = tiny_stamper.protect(imgs[1])
    assert np.array_equal(np.asarray(outs[1]), np.asarray(single))
    scans = tiny_stamper.scan_batch(outs)
    assert [s.score for s in scans] == pytest.approx([tiny_stamper.scan(o).score for o in outs], abs=1e-4)


def test_picture_in_picture_out_and_exif_rotation(tiny_stamper, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    src = tmp_path / "r.jpg"
    synthetic_photo(5, 90, 40).save(src, exif=exif.tobytes())
    pic = read_image(src, max_pixels=tiny_stamper.max_pixels)
    out = tiny_stamper.protect(pic)
    assert isinstance(out, Picture) and out.size == (40, 90)
    dst = tmp_path / "out.webp"
    tiny_stamper.protect_file(src, dst)
    assert Image.open(dst).size == (40, 90)
    with pytest.raises(ValueError, match="overwrite"):
        tiny_stamper.protect_file(src, src)


@pytest.mark.slow
def test_fifty_megapixels(tiny_stamper):
    pic = Picture(rgb=np.full((6250, 8000, 3), 128, dtype=np.uint8))
    out = tiny_stamper.protect(pic)
    assert out.rgb.shape == pic.rgb.shape
    assert 25 < psnr_uint8(out.rgb, pic.rgb) < 50
    assert isinstance(tiny_stamper.scan(out).score, float)


def test_load_errors():
    with pytest.raises(FileNotFoundError, match="not a bundled model"):
        deepraft.load("no-such-model")


def test_fast_scan_path_matches_full_decode(tiny_stamper, tmp_path):
    img = synthetic_photo(7, 1600, 1200)
    path = tmp_path / "big.jpg"
    tiny_stamper.protect(img).save(path, quality=92)
    fast = tiny_stamper.scan_file(path)
    full = tiny_stamper.scan(read_image(path, max_pixels=tiny_stamper.max_pixels))
    assert abs(fast.score - full.score) < 0.05 * max(1.0, abs(full.score))
    assert fast.threshold == full.threshold


def test_scan_files_with_workers(tiny_stamper, tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        synthetic_photo(i, 80, 60).save(p)
        paths.append(p)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    paths.insert(2, bad)
    seq = list(tiny_stamper.scan_files(paths, workers=0, batch_size=2))
    par = list(tiny_stamper.scan_files(paths, workers=2, batch_size=2))
    assert [p for p, _ in seq] == paths == [p for p, _ in par]
    assert isinstance(seq[2][1], deepraft.ImageError) and "bad.jpg" in str(par[2][1])
    for (_, a), (_, b) in zip(seq, par):
        if not isinstance(a, deepraft.ImageError):
            assert a.score == pytest.approx(b.score, abs=1e-5)


def test_every_scan_path_reads_its_own_picture_on_real_photos(default_stamper, tmp_path):
    """The bundled model on real photos, stamped and clean, saved as JPEG: the fast file path
    (reduced-scale JPEG decode: the large photo decodes at 1/2 scale), a decoded PIL image, a
    batch and the file iterator give each picture its own score. Stamped and clean scores lie
    far apart (more than 3 on the logit), so a path that read another picture would show."""
    with Image.open(EXAMPLES / "scikit-learn__china.jpg") as im:
        small = im.convert("RGB")  # 640 x 427: decoded at full scale
    with Image.open(EXAMPLES / "tuxpaint-data__sun_behind_leaves.jpg") as im:
        large = im.convert("RGB").resize((1920, 1276), Image.Resampling.LANCZOS)  # a JPEG draft at 1/2
    paths = []
    for name, img in (("small", small), ("large", large)):
        for kind, pic in (("clean", img), ("stamped", default_stamper.protect(img))):
            paths.append(tmp_path / f"{name}-{kind}.jpg")
            pic.save(paths[-1], quality=95)
    kinds = ["clean", "stamped"] * 2
    opened = []
    for p in paths:
        with Image.open(p) as im:
            opened.append(im.convert("RGB"))
    fast = [default_stamper.scan_file(p).score for p in paths]
    single = [default_stamper.scan(im).score for im in opened]
    batch = [r.score for r in default_stamper.scan_batch(opened[::-1])][::-1]  # another order
    files = [r.score for _, r in default_stamper.scan_files(paths, batch_size=3)]
    assert batch == pytest.approx(single, abs=1e-4)
    assert files == pytest.approx(fast, abs=1e-4)
    assert fast[:2] == pytest.approx(single[:2], abs=1e-4)  # the small photo: the same decode
    assert fast[2:] == pytest.approx(single[2:], abs=0.1)  # the large one: a reduced decode
    thr = default_stamper.card.threshold()
    stamped = [s for s, k in zip(single, kinds) if k == "stamped"]
    clean = [s for s, k in zip(single, kinds) if k == "clean"]
    assert min(stamped) > thr > max(clean) and min(stamped) - max(clean) > 3.0, single
    # every pair of a stamped and a clean picture differs by far more than the tolerances above
    for i, j in [(0, 1), (2, 3), (0, 3), (1, 2)]:
        assert abs(fast[i] - fast[j]) > 3.0 and abs(single[i] - single[j]) > 3.0
