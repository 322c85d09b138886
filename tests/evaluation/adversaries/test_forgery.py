"""Model-free forgery and removal: known answers for the pure functions, the runner against two
synthetic stampers whose weaknesses are known, and the bundled model through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepraft.edits.benign import pink_noise
from deepraft.evaluation.adversaries import forgery as F
from deepraft.runtime.stamper import ScanResult
from tests.conftest import REPO, run_cli, synthetic_photo

EXAMPLES = REPO / "examples" / "photos"


def background(h: int, w: int, seed: int) -> np.ndarray:
    """A photo-like (h, w, 3) float picture: 1/f^2 texture around mid-grey."""
    rng = np.random.default_rng(seed)
    return np.stack([128 + 30 * pink_noise(h, w, rng) for _ in range(3)], -1).astype(np.float32)


# -- measures ------------------------------------------------------------------------------


def test_power_share_of_a_sinusoid_is_one_and_of_white_noise_small():
    g = F.grating(64, 64, (5, 7), 0.4)
    assert F.power_share(g, 20) > 0.999 and F.power_share(g, 2) > 0.999
    assert F.power_share(g, 1) == pytest.approx(0.5, abs=1e-3)  # a real sinusoid: two conjugate bins
    noise = np.random.default_rng(0).normal(size=(64, 64))
    assert F.power_share(noise, 20) < 0.05


def test_scale_to_psnr_is_exact():
    rng = np.random.default_rng(1)
    x = rng.uniform(50, 200, (40, 30, 3))
    d = rng.normal(size=x.shape)
    for target in (40.0, 44.8, 30.0):
        assert F.psnr(x + F.scale_to_psnr(d, target), x) == pytest.approx(target, abs=1e-9)
    with pytest.raises(ValueError):
        F.scale_to_psnr(np.zeros(4), 40)


@pytest.mark.parametrize("target", [40.0, 44.8])
def test_add_at_psnr_reaches_the_target_after_rounding_and_clipping(target):
    rgb = np.clip(background(96, 128, 0), 0, 255).astype(np.uint8)
    rgb[:10] = 255  # saturated rows: clipping eats part of the perturbation there
    out, p = F.add_at_psnr(rgb, np.random.default_rng(3).normal(size=rgb.shape), target)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert p == F.psnr(out, rgb)
    assert target <= p < target + 0.02
    # a grating takes few values, so rounding moves the PSNR in steps: the step just above the target
    out, p = F.add_at_psnr(rgb, F.grating(96, 128, (16, 24))[..., None], target)
    assert p == F.psnr(out, rgb) and target <= p < target + 0.4
    assert np.any(out[20:] != rgb[20:])


def test_psnr_of_known_error():
    a = np.zeros((10, 10, 3))
    assert F.psnr(a, a + 255 / 100) == pytest.approx(40.0)
    assert F.psnr(a, a) == math.inf


# -- patterns --------------------------------------------------------------------------------


def test_grating_has_the_stated_cycles_per_picture():
    g = F.grating(60, 90, (16, 24), 0.0)
    assert g[0, 0] == pytest.approx(1.0)
    assert g[0, 15] == pytest.approx(1.0, abs=1e-6)  # 24 cycles in 90 px: one every 3.75 px, 4 in 15 px

    def crossings(line):  # sign changes around the (periodic) line
        return np.count_nonzero(np.diff(np.sign(np.append(line, line[0]))) != 0)

    assert crossings(g[0]) == 48  # 24 cycles across the width
    assert crossings(F.grating(60, 90, (16, 24), 0.3)[:, 0]) == 32  # 16 down the height
    for cycles in [(16, 24), (16, -24), (0, 5), (7, 0)]:
        assert F.top_bins(F.grating(60, 90, cycles, 1.0), 1) == [cycles]


def test_parse_cycles():
    assert F.parse_cycles("16x24") == (16, 24) and F.parse_cycles("16X-24") == (16, -24)
    with pytest.raises(ValueError, match="AxB"):
        F.parse_cycles("16")


def test_cycles_per_picture_survive_resizing():
    """A pattern fixed in cycles per picture stays on the same bin whatever the photo's size."""
    g = F.grating(150, 220, (9, -13), 0.7)
    assert F.top_bins(F.resize_planes(g, (128, 128)), 1) == [(9, -13)]
    assert F.resize_planes(np.stack([g, g], -1), (64, 80)).shape == (64, 80, 2)


def test_notch_removes_a_planted_sinusoid_and_little_else():
    bg = background(96, 128, 2)
    wave = 3.0 * F.grating(96, 128, (16, 24), 0.9)[..., None] * np.ones(3, np.float32)
    bins = [(16, 24)]
    assert np.abs(F.notch(wave, bins, radius=1)).max() < 1e-3  # the sinusoid is gone
    assert F.psnr(F.notch(bg, bins, radius=1), bg) > 40  # the picture barely changes
    notched = F.notch(bg + wave, bins, radius=1)
    assert F.psnr(notched, bg) > F.psnr(bg + wave, bg) + 5
    assert np.abs(F.notch(wave, [(5, -30)], radius=1) - wave).max() < 1e-3  # a notch elsewhere misses it
    assert np.abs(F.notch(wave, [(16, 22)], radius=1) - wave).max() < 1e-3  # two bins away: outside radius 1
    assert np.abs(F.notch(wave, [(16, 22)], radius=2)).max() < 1e-3


def test_top_bins_skip_the_conjugate_and_low_frequencies():
    plane = 5 * F.grating(64, 64, (1, 0)) + F.grating(64, 64, (6, -9)) + 0.5 * F.grating(64, 64, (0, 12))
    assert F.top_bins(plane, 2, whiten=False) == [(6, -9), (0, 12)]
    assert F.top_bins(plane, 3, min_cycles=0, whiten=False) == [(1, 0), (6, -9), (0, 12)]


def test_ring_whitening_finds_a_weak_peak_on_a_steep_spectrum():
    bg = background(128, 128, 3)[..., 0]
    plane = bg + 2.0 * F.grating(128, 128, (20, 30))
    assert F.top_bins(plane, 1) == [(20, 30)]
    assert F.top_bins(plane, 1, whiten=False) != [(20, 30)]  # raw power: the picture's low frequencies win


def test_random_bins_like_keep_the_radius():
    rng = np.random.default_rng(0)
    bins = [(16, 24), (3, -40), (0, 10)]
    other = F.random_bins_like(rng, bins)
    assert len(other) == 3 and not set(other) & set(bins)
    for (a, b), (c, d) in zip(bins, other):
        assert abs(math.hypot(a, b) - math.hypot(c, d)) <= 0.75
        assert c > 0 or (c == 0 and d > 0)


# -- residuals -------------------------------------------------------------------------------


def test_residual_cosines_known_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(32, 32))
    same = F.residual_cosines([a, a, a])
    assert same["mean_pairwise_cosine"] == pytest.approx(1.0) and same["loo_cosine_min"] == pytest.approx(1.0)
    assert F.residual_cosines([a, -a])["mean_pairwise_cosine"] == pytest.approx(-1.0)
    indep = F.residual_cosines([rng.normal(size=(32, 32)) for _ in range(8)])
    assert abs(indep["mean_pairwise_cosine"]) < 0.05 and abs(indep["loo_cosine_mean"]) < 0.1
    with pytest.raises(ValueError):
        F.residual_cosines([a])


def test_averaged_residual_recovers_a_stamp_shared_by_photos_of_any_size():
    sizes = [(96, 128), (120, 90), (100, 100), (80, 160), (128, 96), (90, 120), (110, 140), (100, 75)]
    stamp = (20, 30)
    residuals = []
    for i, (h, w) in enumerate(sizes):
        photo = background(h, w, 10 + i) + 2.0 * F.grating(h, w, stamp)[..., None]
        residuals.append(F.noise_residual(photo, F.gaussian_denoise))
    avg = F.average_residual(residuals, 128)
    assert avg.shape == (128, 128, 3)
    assert F.top_bins(F.luma(avg), 1) == [stamp]
    single = F.top_bins(F.luma(F.resize_planes(residuals[0], (128, 128))), 3)
    assert stamp in single  # the peak is there in one photo too, the average makes it the strongest


def test_nlm_denoiser_removes_noise():
    import cv2  # noqa: F401  # OpenCV comes with the test extras (invisible-watermark needs it): no skip

    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 120.0)
    noisy = np.clip(np.rint(flat + rng.normal(0, 4, flat.shape)), 0, 255).astype(np.uint8)
    out = F.nlm_denoise(noisy)
    assert out.shape == noisy.shape and np.abs(out - flat).std() < 0.5 * np.abs(noisy - flat).std()
    assert F.noise_residual(noisy, F.nlm_denoise).std() > 2


# -- the runner, against stampers whose weaknesses are known -----------------------------------


class _Card:
    def __init__(self, name: str, thr: float) -> None:
        self.name, self.thr = name, thr

    def threshold(self, fpr=None) -> float:
        return self.thr


class _FakeStamper:
    """The public API (protect_batch / scan_batch / card) around a stamp and a detector."""

    def __init__(self, name: str, thr: float) -> None:
        self.card = _Card(name, thr)

    def protect(self, img: Image.Image) -> Image.Image:
        a = np.asarray(img, dtype=np.float32)
        return Image.fromarray(np.clip(np.rint(a + self.stamp(*a.shape[:2])), 0, 255).astype(np.uint8))

    def protect_batch(self, imgs):
        return [self.protect(im) for im in imgs]

    def scan_batch(self, imgs):
        return [ScanResult(bool(s > self.card.thr), s, self.card.thr) for s in (self.score(im) for im in imgs)]


class GratingStamper(_FakeStamper):
    """A stamp that is one grating (16x24, 2.5 levels) and a detector that reads that bin: the
    weakness the forgery attacks were written for."""

    def __init__(self) -> None:
        super().__init__("grating", math.log(30.0))

    def stamp(self, h: int, w: int) -> np.ndarray:
        return 2.5 * F.grating(h, w, (16, 24))[..., None]

    def score(self, img: Image.Image) -> float:
        y = F.luma(F.resize_planes(np.asarray(img, dtype=np.float32), (128, 128)))
        return float(np.log(F.ring_whiten(F.fft_power(y))[16, 24]))


class KeyedNoiseStamper(_FakeStamper):
    """A fixed pseudo-random pattern (32x32 cells, +-3 levels) found by correlation: spread
    over the spectrum, so gratings and notches miss it, but the same in every photo."""

    def __init__(self) -> None:
        super().__init__("keyed", 6.0)
        self.key = np.random.default_rng(1234).choice([-1.0, 1.0], size=(32, 32)).astype(np.float32)

    def stamp(self, h: int, w: int) -> np.ndarray:
        return 3.0 * F.resize_planes(self.key, (h, w))[..., None]

    def score(self, img: Image.Image) -> float:
        y = F.luma(F.resize_planes(np.asarray(img, dtype=np.float32), (32, 32)))
        hp = y - F.gaussian_denoise(y[..., None], 1.5)[..., 0]
        k = self.key - F.gaussian_denoise(self.key[..., None], 1.5)[..., 0]
        return float(F.cosine_matrix([hp, k])[0, 1] * 32)  # ~ a z-score: about N(0,1) without the key


@pytest.fixture(scope="module")
def synthetic_photos(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("forgery_photos")
    paths = []
    for i in range(14):
        p = d / f"p{i:02d}.png"
        synthetic_photo(100 + i, 96 + 8 * (i % 5), 80 + 6 * (i % 3)).save(p)
        paths.append(p)
    return paths


SMALL = F.ForgerySettings(
    psnrs=(40.0,),
    n_donors=8,
    denoisers=("gaussian",),
    residual_at=("common",),
    common_size=128,
    notch_bins=(4,),
    max_targets=6,
    grating_set=((0, 16), (16, 24)),
)


def _rows(summary: dict, attack: str) -> list[dict]:
    return [r for r in summary["results"] if r["attack"] == attack]


def test_runner_breaks_a_grating_stamp(tmp_path, synthetic_photos):
    s = F.run_forgery(GratingStamper(), synthetic_photos, tmp_path, SMALL)
    assert s["n_donors"] == 8 and s["n_targets"] == 6 and not set(s["donors"]) & set(s["targets"])
    none_f, none_r = _rows(s, "none")
    assert none_f["flagged"] == 0 and none_r["flagged"] == 6  # the detector works before the attacks
    g = {r["cycles"]: r for r in _rows(s, "grating")}
    assert g["16x24"]["flagged"] == 6 and g["0x16"]["flagged"] == 0
    assert 40.0 <= g["16x24"]["min_psnr"] < 40.05
    assert _rows(s, "white noise (control)")[0]["flagged"] == 0
    assert _rows(s, "averaged true stamp (oracle)")[0]["flagged"] == 6
    (peak,) = _rows(s, "grating at the estimate's peak (gaussian@128)")
    assert peak["cycles"] == "16x24" and peak["flagged"] == 6
    (notched,) = _rows(s, "notch (gaussian@128)")
    (control,) = _rows(s, "notch at random bins (gaussian@128, control)")
    assert notched["flagged"] == 0 and control["flagged"] == 6
    assert notched["min_psnr"] > 30
    assert s["estimated_bins"]["gaussian@128"][0] == "16x24"
    st = s["residual_stats"]["stamp:stamped"]
    assert st["n"] == 14 and st["power_share_mean"] > 0.95 and st["mean_pairwise_cosine"] > 0.95
    clean = s["residual_stats"]["gaussian@128:clean"]
    assert clean["power_share_mean"] < 0.3 and abs(clean["mean_pairwise_cosine"]) < 0.2
    on_disk = json.loads((tmp_path / "forgery.json").read_text())
    assert on_disk["results"] == json.loads(json.dumps(s["results"]))
    assert on_disk["method"] == F.METHOD and "averaged" in F.METHOD  # a constant: survives python -OO
    md = (tmp_path / "forgery.md").read_text()
    assert "| grating | forging | psnr_target 40.0, cycles 16x24 | 6/6 |" in md and "## Residual statistics" in md


def test_runner_on_a_spread_spectrum_stamp(tmp_path, synthetic_photos):
    s = F.run_forgery(KeyedNoiseStamper(), synthetic_photos, tmp_path, SMALL)
    none_f, none_r = _rows(s, "none")
    assert none_f["flagged"] == 0 and none_r["flagged"] == 6
    assert all(r["flagged"] == 0 for r in _rows(s, "grating"))  # no grating is the key
    (notched,) = _rows(s, "notch (gaussian@128)")
    assert notched["flagged"] == 6  # a few bins of a spread-spectrum stamp are not the stamp
    assert _rows(s, "averaged true stamp (oracle)")[0]["flagged"] == 6  # but it is the same in every photo
    st = s["residual_stats"]["stamp:stamped"]
    assert st["power_share_mean"] < 0.3 and st["mean_pairwise_cosine"] > 0.95


def test_runner_needs_donors_and_held_out_photos(tmp_path, synthetic_photos):
    with pytest.raises(ValueError, match="held out"):
        F.run_forgery(GratingStamper(), synthetic_photos[:8], tmp_path, SMALL)
    donors, rest = synthetic_photos[:5], synthetic_photos
    s = F.run_forgery(GratingStamper(), rest, tmp_path, SMALL, donor_files=donors)
    assert s["n_donors"] == 5 and s["n_targets"] == 6 and not set(s["donors"]) & set(s["targets"])


# -- the bundled model ---------------------------------------------------------------------------


def test_bundled_default_has_no_fixed_pattern(tmp_path, default_stamper):
    """The bundled stamp (v2) is a function of its picture: residuals of different photos are
    nearly uncorrelated and spread over many frequencies, so neither a grating nor the averaged
    residual of stamped photos, added to clean ones, gets them flagged (v1's 16x24 grating was
    forged by both and notched out)."""
    files = sorted(EXAMPLES.glob("*.jpg"))
    settings = F.ForgerySettings(
        psnrs=(44.8,),
        n_donors=6,
        denoisers=("gaussian",),
        residual_at=("common",),
        notch_bins=(20,),
        max_targets=6,
        grating_set=((0, 16), (16, 24)),
    )
    s = F.run_forgery(default_stamper, files, tmp_path, settings)
    none_f, none_r = _rows(s, "none")
    assert none_f["flagged"] == 0 and none_r["flagged"] == 6
    gratings = _rows(s, "grating")
    assert {r["cycles"] for r in gratings} >= {"16x24", "0x16"}
    assert all(r["flagged"] == 0 for r in gratings)
    (averaged,) = _rows(s, "averaged residual (gaussian@256)")
    assert averaged["flagged"] == 0
    assert _rows(s, "averaged true stamp (oracle)")[0]["flagged"] == 0  # no common stamp to average
    st = s["residual_stats"]["stamp:stamped"]
    assert st["power_share_mean"] < 0.25 and abs(st["mean_pairwise_cosine"]) < 0.1


@pytest.mark.slow
def test_cli_attack_forgery_mode(tmp_path):
    r = run_cli("attack", "--mode", "forgery", "--quick", "--data", EXAMPLES, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "forgery.json").read_text())
    assert s["n_donors"] == 6 and s["n_targets"] == 4
    attacks = {row["attack"] for row in s["results"]}
    assert {"none", "grating", "averaged residual (gaussian@256)", "notch (gaussian@256)"} <= attacks
    assert "stamp:stamped" in s["residual_stats"] and (tmp_path / "forgery.md").exists()
    assert "notch (gaussian@256)" in r.stdout and "power share" in r.stdout
    assert not (tmp_path / "attack.json").exists()  # forgery mode runs no gradient attack
    bad = run_cli("attack", "--mode", "bogus", "--data", EXAMPLES, "--out", tmp_path)
    assert bad.returncode == 2 and "adversarial, forgery or all" in bad.stderr
