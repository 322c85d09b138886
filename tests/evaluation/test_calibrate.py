import zlib

import numpy as np
import pytest
from PIL import Image

from deepraft.evaluation.calibrate import (
    ScoreCache,
    _step_label,
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


def test_a_cached_calibration_resumes_with_the_same_result_and_scores_only_what_is_new(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        synthetic_photo(i, 96 + 8 * i, 80).save(photos / f"p{i}.png")
    files = sorted(photos.iterdir())
    scored: list[int] = []

    def score(images: list[Image.Image]) -> list[float]:
        scored.append(len(images))
        return [_area_then_pixels(im) for im in images]

    def run(cache):
        return calibrate(
            score, files, fprs=(0.1,), variants_per_image=6, generated=2, generated_variants=3, cache=cache
        )

    plain = run(None)
    assert sum(scored) == 3 * 6 + 2 * 3
    cache_file = tmp_path / "cache.jsonl"
    # a first export stops after two photos: the cache holds them, and a cut-off last line
    scored.clear()
    calibrate(score, files[:2], fprs=(0.1,), variants_per_image=6, cache=ScoreCache(cache_file, "w1"))
    with cache_file.open("a") as fh:
        fh.write('{"key": "w1|p2.png|6|2", "kind": "ph')
    scored.clear()
    resumed = run(ScoreCache(cache_file, "w1"))
    assert sum(scored) == 6 + 2 * 3  # the third photo and the generated pictures only
    assert resumed.as_dict() == plain.as_dict()
    assert set(resumed.kinds) == set(plain.kinds) and any(k.startswith("generated ") for k in plain.kinds)
    scored.clear()
    assert run(ScoreCache(cache_file, "w1")).as_dict() == plain.as_dict() and scored == []  # all cached now
    run(ScoreCache(cache_file, "other weights"))
    assert sum(scored) == 3 * 6 + 2 * 3  # another model's scores are never reused


def _area_then_pixels(im: Image.Image) -> float:
    """A score that names one picture: its area (a border or an upscale scores high), then a hash
    of its pixels in the four decimals the tail keeps."""
    return float(im.width * im.height) + (zlib.crc32(im.tobytes()) % 10_000) / 10_000


def test_calibration_tail_names_the_photo_and_edit_of_the_highest_clean_scores(tmp_path):
    for i in range(3):
        synthetic_photo(i, 96 + 16 * i, 80).save(tmp_path / f"p{i}.png")

    def score(images: list[Image.Image]) -> list[float]:
        return [_area_then_pixels(im) for im in images]

    cal = calibrate(score, sorted(tmp_path.iterdir()), fprs=(0.1,), variants_per_image=12, tail_size=5)
    tail = cal.as_dict()["tail"]
    # every picture calibration scored, made again: photo i's variants come from seed 0 * 100_003 + i
    drawn = []
    for i in range(3):
        labels: list[str] = []
        pics = list(clean_variants(Image.open(tmp_path / f"p{i}.png").convert("RGB"), 12, seed=i, labels=labels))
        assert len(labels) == len(pics) == 12
        drawn += [(round(_area_then_pixels(p), 4), f"p{i}.png", label) for p, label in zip(pics, labels)]
    named = {score: (photo, label) for score, photo, label in drawn}
    assert len(named) == len(drawn) == 36  # every score names one picture
    # the tail is the five highest of them, each with the photo and edit of the picture that scored it
    assert [(t["score"], t["photo"], t["edit"]) for t in tail] == sorted(drawn, reverse=True)[:5]
    assert all(named[t["score"]] == (t["photo"], t["edit"]) for t in tail)
    assert tail[0]["photo"] == "p2.png"  # the largest picture of the largest photo comes first
    assert len({t["edit"] for t in tail}) > 1


def test_step_labels_known_answers():
    assert _step_label("color", (1.6412, 0.52449, 1.4567)) == "color 1.64,0.524,1.46"
    assert _step_label("crop_uniform", 0.52345) == "crop_uniform 0.523"
    assert _step_label("tilt", -12.3456) == "tilt -12.3"
    assert _step_label("jpeg", 82) == "jpeg 82"
    assert _step_label("hflip", None) == "hflip"


def _written(name: str, strength: object) -> str:
    """How a label writes one drawn step: the name, then the strength to 3 significant digits."""
    if strength is None:
        return name
    if isinstance(strength, tuple):
        return f"{name} " + ",".join(f"{v:.3g}" for v in strength)
    return f"{name} {strength}" if isinstance(strength, int) else f"{name} {strength:.3g}"


def test_variant_labels_are_the_steps_drawn(monkeypatch):
    """Each label lists exactly the steps the variant's draws made, in order, the encoder last."""
    from deepraft.edits.benign import UPLOAD_KINDS, UploadKind, sample_upload_codec
    from deepraft.evaluation import calibrate as cal

    drawn: list[tuple[str, object]] = []

    def recording(sample):
        def draw(rng):
            drawn.append(sample(rng))
            return drawn[-1]

        return draw

    kinds = {k: UploadKind(v.edits, recording(v.sample)) for k, v in UPLOAD_KINDS.items()}
    monkeypatch.setattr(cal, "UPLOAD_KINDS", kinds)
    monkeypatch.setattr(cal, "sample_upload_codec", recording(sample_upload_codec))
    labels: list[str] = []
    steps = []
    for _ in clean_variants(synthetic_photo(0), 40, seed=1, labels=labels):
        steps.append(list(drawn))  # a picture's steps are drawn before it is yielded
        drawn.clear()
    assert labels[0] == "original" and steps[0] == []
    assert len(labels) == len(steps) == 40
    for label, s in zip(labels[1:], steps[1:]):
        assert 2 <= len(s) <= 3 and s[-1][0] in ("jpeg", "webp", "none"), s
        assert label == " + ".join(_written(*step) for step in s)
    assert {len(s) for s in steps[1:]} == {2, 3}  # one edit and two, both drawn


def test_variant_labels_say_what_was_done_to_the_picture(monkeypatch):
    """With only a mirror and a quarter turn to draw and no encoder, each variant's pixels are
    what its label says: the steps applied to the photo in the label's order."""
    from deepraft.edits.benign import UploadKind
    from deepraft.evaluation import calibrate as cal

    kinds = {
        "flip": UploadKind(("hflip",), lambda rng: ("hflip", None)),
        "turn": UploadKind(("rot90",), lambda rng: ("rot90", None)),
    }
    monkeypatch.setattr(cal, "UPLOAD_KINDS", kinds)
    monkeypatch.setattr(cal, "sample_upload_codec", lambda rng: ("none", None))
    ops = {"hflip": lambda a: a[:, ::-1], "rot90": np.rot90}  # rot90: a quarter turn counter-clockwise
    img = synthetic_photo(3, 90, 60)
    labels: list[str] = []
    pics = list(clean_variants(img, 12, seed=5, labels=labels))
    assert labels[0] == "original" and np.array_equal(np.asarray(pics[0]), np.asarray(img))
    for pic, label in zip(pics[1:], labels[1:]):
        *edits, codec = label.split(" + ")
        assert codec == "none" and 1 <= len(edits) <= 2, label
        want = np.asarray(img)
        for e in edits:
            want = ops[e](want)
        assert np.array_equal(np.asarray(pic), want), label
    assert {"hflip + none", "rot90 + none"} <= set(labels) and len(set(labels)) >= 4


def test_clean_variants_with_labels_are_the_variants_without():
    labels: list[str] = []
    pics = list(clean_variants(synthetic_photo(0), 5, seed=1, labels=labels))
    assert len(labels) == len(pics) == 5 and labels[0] == "original"
    plain = list(clean_variants(synthetic_photo(0), 5, seed=1))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(pics, plain))


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
