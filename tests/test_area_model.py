"""A stamp-v2 model (aspect-keeping working copy, fully convolutional encoder and map scanner)
end to end: trained by the real loop, exported, loaded, used on pictures of any shape."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli, synthetic_photo


@pytest.fixture(scope="module")
def area_stamper(tiny_area_card):
    import deepraft

    return deepraft.load(tiny_area_card, device="cpu")


def test_card_records_the_v2_design(tiny_area_card, area_stamper):
    card = json.loads((tiny_area_card / "card.json").read_text())
    assert card["model"]["work_mode"] == "area" and card["model"]["scanner"] == "mapnet_tiny"
    assert card["training"]["config"]["strength_warmup_db"] == 6.0
    assert area_stamper.work_mode == "area"
    assert card["model"]["scan_scales"] == [1.0, 2.0] and area_stamper.scan_size == 2 * area_stamper.work_size


def test_scan_reads_the_copy_at_every_scale_and_keeps_the_largest(area_stamper):
    """scan_scales (1, 2): the score is the larger of the scanner's reads of a copy at twice the
    working size and of that copy brought down to the working size."""
    from deepraft.core.imageio import picture_from_pil, work_copy

    pic = picture_from_pil(synthetic_photo(3, 150, 100))
    big = area_stamper.copies.scan_arrays([pic])[0]
    assert big.shape[:2] == work_copy(pic.rgb, 80, "area").shape[:2]
    x = torch.from_numpy(big).permute(2, 0, 1)[None].float() / 255
    model = area_stamper.model
    with torch.no_grad():
        half = torch.nn.functional.interpolate(x, (x.shape[-2] // 2, x.shape[-1] // 2), mode="bilinear", antialias=True)
        want = max(float(model.read(x)), float(model.read(half)))
        assert float(model.score(x)) == pytest.approx(want, abs=1e-5)
    assert area_stamper.copies.score_pictures([pic])[0] == pytest.approx(want, abs=1e-5)
    assert area_stamper.scan(pic).score == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("size", [(97, 61), (61, 97), (200, 40)])
def test_protect_keeps_the_shape_and_scan_reads_any_aspect(area_stamper, size):
    img = synthetic_photo(5, *size)
    stamped = area_stamper.protect(img)
    assert stamped.size == img.size and stamped.mode == "RGB"
    diff = np.abs(np.asarray(stamped, dtype=int) - np.asarray(img, dtype=int))
    assert diff.max() > 0  # a stamp was added
    # the scan of a decoded image (no full-size array) equals the scan of its pixels
    from deepraft.core.imageio import picture_from_pil

    a = area_stamper.scan(stamped).score
    b = area_stamper.copies.score_pictures([picture_from_pil(stamped)])[0]
    assert a == pytest.approx(b, abs=1e-5)


def test_a_batch_of_mixed_shapes_scores_each_picture_on_its_own_frame(area_stamper):
    imgs = [synthetic_photo(i, *s) for i, s in enumerate([(90, 60), (60, 90), (90, 60)])]
    together = [r.score for r in area_stamper.scan_batch(imgs)]
    alone = [area_stamper.scan(im).score for im in imgs]
    assert together == pytest.approx(alone, abs=1e-5)


def test_scan_file_matches_scan_of_the_decoded_picture(area_stamper, tmp_path):
    img = synthetic_photo(9, 120, 80)
    f = tmp_path / "p.png"
    img.save(f)
    assert area_stamper.scan_file(f).score == pytest.approx(area_stamper.scan(Image.open(f)).score, abs=1e-5)


def test_onnx_export_takes_working_copies_of_any_shape(tiny_area_card, area_stamper, tmp_path):
    import onnxruntime as ort  # a core dependency: its absence fails, it does not skip

    r = run_cli("export", tiny_area_card, "--onnx", tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "onnx.json").read_text())
    assert meta["work_mode"] == "area" and "any h, w" in meta["usage"]
    assert meta["scan_scales"]["scales"] == [1.0, 2.0] and "largest" in meta["scan_scales"]["note"]
    enc = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    scan = ort.InferenceSession(str(tmp_path / "scanner.onnx"), providers=["CPUExecutionProvider"])
    for h, w in [(40, 40), (32, 56), (64, 24)]:
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            ref_res = area_stamper.model.residual(x).numpy()
            ref_score = area_stamper.model.scanner(x).numpy()
        res = enc.run(None, {"work": x.numpy()})[0]
        score = scan.run(None, {"work": x.numpy()})[0]
        assert res.shape == ref_res.shape and score.shape == (2,)
        assert np.abs(res - ref_res).max() <= 1e-4 * max(1.0, np.abs(ref_res).max())
        assert np.abs(score - ref_score).max() < 1e-3
