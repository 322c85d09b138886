import numpy as np
import pytest
from PIL import Image

from deepraft.evaluation.calibrate import (
    bootstrap_threshold,
    calibrate,
    clean_variants,
    fpr_resolution,
    threshold_at_fpr,
)
from tests.conftest import synthetic_photo


def test_threshold_known_answers():
    scores = np.arange(1000, dtype=float)  # 0..999
    assert threshold_at_fpr(scores, 1e-3) == 998.0  # one score (999) above
    assert threshold_at_fpr(scores, 1e-2) == 989.0  # ten scores above
    assert threshold_at_fpr(scores, 0.5) == 499.0
    assert threshold_at_fpr(np.arange(10.0), 1e-3) == 9.0  # below resolution: the maximum
    for fpr in (1e-3, 1e-2, 0.1, 0.25):
        t = threshold_at_fpr(scores, fpr)
        assert np.mean(scores > t) <= fpr


def test_threshold_rejects_bad_input():
    with pytest.raises(ValueError):
        threshold_at_fpr([1.0, 2.0], 0.0)
    with pytest.raises(ValueError):
        threshold_at_fpr([], 0.1)
    assert fpr_resolution(2000) == 5e-4


def test_clean_variants_are_deterministic_and_varied():
    img = synthetic_photo(0, 120, 90)
    a = [np.asarray(v) for v in clean_variants(img, 6, seed=4)]
    b = [np.asarray(v) for v in clean_variants(img, 6, seed=4)]
    assert len(a) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(a[0], np.asarray(img))
    assert len({x.shape for x in a}) > 1


def test_calibrate_with_a_known_scorer(tmp_path):
    for i in range(4):
        synthetic_photo(i).save(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"junk")
    rng = np.random.default_rng(0)

    def scorer(images: list[Image.Image]) -> list[float]:
        return rng.normal(size=len(images)).tolist()

    cal = calibrate(scorer, sorted(tmp_path.iterdir()), fprs=(0.5, 0.1), variants_per_image=25)
    assert cal.n_images == 4 and cal.n_negatives == 100 and len(cal.failed) == 1
    assert cal.thresholds["0.5"] < cal.thresholds["0.1"]
    assert abs(cal.empirical["0.5"]) < 0.5  # median of a standard normal
    for k in ("0.5", "0.1"):  # the photo-bootstrap bound never lies below the empirical threshold
        assert cal.thresholds[k] >= cal.empirical[k]
    assert cal.as_dict()["empirical_thresholds"] == cal.empirical


def test_calibration_tail_names_the_photo_and_edit_of_the_highest_clean_scores(tmp_path):
    for i in range(3):
        synthetic_photo(i, 96 + 16 * i, 80).save(tmp_path / f"p{i}.png")

    def by_area(images: list[Image.Image]) -> list[float]:  # a border or an upscale scores high
        return [float(im.width * im.height) for im in images]

    cal = calibrate(by_area, sorted(tmp_path.iterdir()), fprs=(0.1,), variants_per_image=12, tail_size=5)
    tail = cal.as_dict()["tail"]
    assert len(tail) == 5 and [t["score"] for t in tail] == sorted((t["score"] for t in tail), reverse=True)
    # the largest picture of the largest photo comes first, and its label says how it was made
    biggest = max(
        clean_variants(Image.open(tmp_path / "p2.png").convert("RGB"), 12, seed=2), key=lambda im: im.width * im.height
    )
    assert tail[0]["photo"] == "p2.png" and tail[0]["score"] == biggest.width * biggest.height
    assert all(t["edit"] == "original" or any(c in t["edit"] for c in ("jpeg", "webp", "none")) for t in tail)
    labels: list[str] = []
    pics = list(clean_variants(synthetic_photo(0), 5, seed=1, labels=labels))
    assert len(labels) == len(pics) == 5 and labels[0] == "original" and all(" + " in x or x for x in labels[1:])
    assert [np.asarray(p).shape for p in pics] == [
        np.asarray(p).shape for p in clean_variants(synthetic_photo(0), 5, seed=1)
    ]


def test_bootstrap_threshold_keeps_an_outlier_photo_in():
    rng = np.random.default_rng(1)
    groups = [rng.normal(-5, 1, 50) for _ in range(28)] + [rng.normal(0, 1, 50)]  # one look-alike photo
    flat = np.concatenate(groups)
    emp = threshold_at_fpr(flat, 1e-3)
    boot = bootstrap_threshold(groups, 1e-3)
    assert boot > emp and boot >= np.sort(groups[-1])[-2]  # two copies of the outlier photo are likely enough
    assert bootstrap_threshold(groups, 1e-3) == boot  # seeded: deterministic
    iid = [rng.normal(0, 1, 50) for _ in range(200)]  # many independent photos: close to the empirical value
    assert abs(bootstrap_threshold(iid, 0.1) - threshold_at_fpr(np.concatenate(iid), 0.1)) < 0.1
    with pytest.raises(ValueError):
        bootstrap_threshold([[], []], 0.1)


def test_benign_variants_include_turns_borders_and_rotations():
    from deepraft.evaluation.calibrate import benign_variant

    img = synthetic_photo(1, 120, 80)
    rng = np.random.default_rng(0)
    shapes = {benign_variant(img, rng).size for _ in range(200)}
    assert any(w < h for w, h in shapes)  # quarter turns make landscape photos portrait
    assert any(w > 120 and h > 80 for w, h in shapes)  # borders make them larger
