"""SSIMULACRA 2 and Butteraugli on known answers, and their place in eval's summary and report."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from deepraft.evaluation import quality
from deepraft.evaluation.quality import butteraugli, column_stats, jpeg_copy, perceptual, ssimulacra2

ROOT = Path(__file__).resolve().parents[2]
LIBERTY = ROOT / "examples" / "photos" / "gcompris-qt-data__explore_monuments_statueofLiberty.jpg"


@pytest.fixture()
def butteraugli_installed() -> None:
    """Debian's butteraugli command: skipped where it is missing, except in CI, where .ci/run
    installs it and its absence is a failure."""
    if shutil.which("butteraugli") is None:
        if os.environ.get("CI"):
            pytest.fail("the butteraugli command is missing in CI (.ci/run installs it: apt-get install butteraugli)")
        pytest.skip("the butteraugli command is not installed (apt-get install butteraugli)")


needs_butteraugli = pytest.mark.usefixtures("butteraugli_installed")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 384 px corner of a real photo (sky and stone: flat and textured parts)."""
    return np.asarray(Image.open(LIBERTY).convert("RGB"))[:384, :384].copy()


def noisy(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return np.clip(np.rint(rgb + np.random.default_rng(0).normal(0, sigma, rgb.shape)), 0, 255).astype(np.uint8)


def blurred(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return np.rint(ndimage.gaussian_filter(rgb.astype(np.float64), (sigma, sigma, 0))).astype(np.uint8)


def test_ssimulacra2_identical_is_100(photo):
    assert ssimulacra2(photo, photo) == 100.0


@pytest.mark.parametrize(
    ("make", "cpp"),
    [
        (lambda a: noisy(a, 1.0), 92.663),
        (lambda a: noisy(a, 3.0), 78.518),
        (lambda a: blurred(a, 1.0), 67.442),
    ],
)
def test_ssimulacra2_agrees_with_the_reference_tool(photo, make, cpp):
    """Scores of the C++ tool (cloudinary/ssimulacra2, built from source) on the same pairs: the
    Python port must stay within a point of them on a photo-sized image."""
    assert ssimulacra2(photo, make(photo)) == pytest.approx(cpp, abs=1.0)


def test_ssimulacra2_orders_distortions(photo):
    mild, strong = ssimulacra2(photo, noisy(photo, 1.5)), ssimulacra2(photo, noisy(photo, 10.0))
    assert 100.0 > mild > strong + 20
    q90, q50 = ssimulacra2(photo, jpeg_copy(photo, 90)), ssimulacra2(photo, jpeg_copy(photo, 50))
    assert 75.0 < q90 < 95.0 and q50 < q90 - 10


def test_ssimulacra2_refuses_mismatched_images(photo):
    with pytest.raises(ValueError, match="one size"):
        ssimulacra2(photo, photo[:-1])
    with pytest.raises(ValueError, match="uint8"):
        ssimulacra2(photo, photo.astype(np.float32))


@needs_butteraugli
def test_butteraugli_known_answers(photo):
    same, mild, strong, q90, q50 = butteraugli(
        photo, [photo, noisy(photo, 1.5), noisy(photo, 10.0), jpeg_copy(photo, 90), jpeg_copy(photo, 50)]
    )
    assert same == 0.0
    assert 0.0 < mild < strong and strong > 2.0
    assert 0.0 < q90 < q50


@needs_butteraugli
def test_perceptual_names_the_columns(photo):
    row = perceptual(photo, {"": noisy(photo, 1.5), "jpeg90": jpeg_copy(photo, 90)}, quality.butteraugli_tool())
    assert set(row) == {"ssimulacra2", "ssimulacra2_jpeg90", "butteraugli_max", "butteraugli_max_jpeg90"}
    assert row["ssimulacra2_jpeg90"] == ssimulacra2(photo, jpeg_copy(photo, 90))


def test_missing_butteraugli_is_reported_not_raised(monkeypatch, photo):
    monkeypatch.setattr(quality, "BUTTERAUGLI_TOOL", "no-such-butteraugli-command")
    with pytest.raises(quality.ButteraugliUnavailable, match="apt-get install butteraugli"):
        quality.butteraugli_tool()
    row = perceptual(photo, {"": photo}, None)
    assert row == {"ssimulacra2": 100.0}


def test_column_stats_worst_follows_the_metric_direction():
    rows = [
        {"photo": "a", "ssimulacra2": 80.0, "butteraugli_max": 1.0},
        {"photo": "b", "ssimulacra2": 60.0, "butteraugli_max": 0.5},
        {"photo": "c", "ssimulacra2": 70.0},
    ]
    s2, ba = column_stats(rows, "ssimulacra2"), column_stats(rows, "butteraugli_max")
    assert s2 == {"mean": 70.0, "min": 60.0, "max": 80.0, "worst": {"photo": "b", "value": 60.0}}
    assert ba["worst"] == {"photo": "a", "value": 1.0} and ba["mean"] == 0.75
    assert column_stats(rows, "lpips") is None


def test_eval_summary_and_report_carry_the_perceptual_columns(tmp_path, tiny_stamper, photo_dir, monkeypatch):
    import csv

    from deepraft.core.data import find_images
    from deepraft.evaluation.report import eval_markdown
    from deepraft.evaluation.runner import EvalSettings, run_eval

    monkeypatch.setattr(quality, "BUTTERAUGLI_TOOL", "no-such-butteraugli-command")
    settings = EvalSettings(grid=[("none", [None])], variants=1, max_photos=4, jpeg_references=(90, 95))
    summary = run_eval(tiny_stamper, find_images(photo_dir), tmp_path, settings)
    imp = summary["imperceptibility"]
    for key in ("ssimulacra2", "ssimulacra2_jpeg90", "ssimulacra2_jpeg95", "psnr_jpeg90", "ssim_jpeg95"):
        assert set(imp[key]) == {"mean", "min", "max", "worst"}
    assert imp["ssimulacra2_jpeg95"]["mean"] > imp["ssimulacra2_jpeg90"]["mean"]
    assert not any(k.startswith("butteraugli") for k in imp)
    assert "Butteraugli skipped" in summary["perceptual_note"] and summary["perceptual_cost"]["seconds_per_photo"] > 0
    rows = list(csv.DictReader((tmp_path / "images.csv").open()))
    assert len(rows) == 4 and {"ssimulacra2", "ssimulacra2_jpeg90", "perceptual_s"} <= set(rows[0])
    # the three photos with the lowest SSIMULACRA 2, each shown at 100 %
    shown = summary["before_after"]
    assert [s["file"] for s in shown] == ["before_after_1.png", "before_after_2.png", "before_after_3.png"]
    assert [s["ssimulacra2"] for s in shown] == sorted(float(r["ssimulacra2"]) for r in rows)[:3]
    md = eval_markdown(summary, [])
    assert "| SSIMULACRA 2 (higher: closer) |" in md and "JPEG q95 mean" in md and "Butteraugli skipped" in md
    assert all(f"![before_after_{i}](before_after_{i}.png)" in md for i in (1, 2, 3))


def test_before_after_strip_is_clean_stamped_and_amplified_difference():
    from deepraft.evaluation.runner import before_after_strip

    clean = np.full((40, 60, 3), 100, dtype=np.uint8)
    stamped = clean.copy()
    stamped[:, :, 0] += 2
    strip = before_after_strip(clean, stamped, (10, 5, 42, 37), gain=10.0)
    assert strip.shape == (32, 3 * 32 + 16, 3)
    assert (strip[:, :32] == 100).all() and (strip[:, 40:72, 0] == 102).all()
    assert (strip[:, 80:, 0] == 148).all() and (strip[:, 80:, 1:] == 128).all()
