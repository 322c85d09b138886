"""The benign-edit registry (``deepraft.edits``): what each caller selects from it, the edits that
only calibration and the demo use, and the map from training's augmentations to these edits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepraft.edits.benign import (
    EDITS,
    FORWARDS,
    TRAINING_COUNTERPARTS,
    TRAINING_ONLY,
    UPLOAD_CODECS,
    UPLOAD_KINDS,
    Chain,
    sample_upload_codec,
)
from tests.conftest import synthetic_photo


def px(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB")).astype(np.int16)


def test_every_training_augmentation_maps_to_benign_edits_or_is_training_only():
    from deepraft.training.augment import AUGMENTATIONS

    assert set(TRAINING_COUNTERPARTS) | TRAINING_ONLY == set(AUGMENTATIONS)
    assert not set(TRAINING_COUNTERPARTS) & TRAINING_ONLY
    unknown = {t: e for t, edits in TRAINING_COUNTERPARTS.items() for e in edits if e not in EDITS}
    assert unknown == {}
    assert all(TRAINING_COUNTERPARTS.values())
    assert {"hflip", "vflip", "rot90", "rot180", "rot270"} == set(TRAINING_COUNTERPARTS["d4"])


@pytest.mark.parametrize("kind", sorted(UPLOAD_KINDS))
def test_upload_samplers_draw_steps_of_their_declared_edits(kind):
    rng = np.random.default_rng(0)
    img = synthetic_photo(0, 64, 48)
    seen = set()
    for _ in range(40):
        name, strength = UPLOAD_KINDS[kind].sample(rng)
        assert name in UPLOAD_KINDS[kind].edits and name in EDITS
        out = EDITS[name](img, strength, rng)
        assert isinstance(out, Image.Image) and out.mode == "RGB"
        seen.add(name)
    assert seen == set(UPLOAD_KINDS[kind].edits)  # every declared edit is reachable


def test_upload_kinds_keep_calibrations_ranges():
    """The kinds and ranges of calibration's benign uploads: crops keep 30-95 % of the area,
    resizes 0.3-1.2, borders 5-30 %, tilts within +-30 degrees, caption bars 5-20 % of the height."""
    assert list(UPLOAD_KINDS) == ["crop", "resize", "color", "flip", "turn", "pad", "rotate", "caption", "none"]
    rng = np.random.default_rng(1)
    draws = {
        k: [UPLOAD_KINDS[k].sample(rng)[1] for _ in range(500)] for k in ("crop", "resize", "pad", "rotate", "caption")
    }
    ranges = {
        "crop": (0.3, 0.95),
        "resize": (0.3, 1.2),
        "pad": (0.05, 0.3),
        "rotate": (-30, 30),
        "caption": (0.05, 0.2),
    }
    for k, (lo, hi) in ranges.items():
        assert lo <= min(draws[k]) and max(draws[k]) <= hi
        assert min(draws[k]) < lo + 0.1 * (hi - lo) and max(draws[k]) > hi - 0.1 * (hi - lo)
    b, c, s = zip(*(UPLOAD_KINDS["color"].sample(rng)[1] for _ in range(500)))
    assert 0.5 <= min(b) and max(b) <= 2.0 and 0.5 <= min(c) and max(c) <= 2.0 and 0.0 <= min(s) and max(s) <= 2.0


def test_upload_codec_draws_jpeg_webp_or_none_with_their_qualities():
    rng = np.random.default_rng(2)
    steps = [sample_upload_codec(rng) for _ in range(400)]
    names = [n for n, _ in steps]
    assert set(names) == set(UPLOAD_CODECS)
    assert 0.4 < names.count("jpeg") / len(names) < 0.6
    assert all(30 <= q <= 95 for n, q in steps if n == "jpeg")
    assert all(40 <= q <= 95 for n, q in steps if n == "webp")
    assert all(q is None for n, q in steps if n == "none")


def test_the_demo_forwards_are_chains_of_registry_edits_and_do_what_their_labels_say():
    from deepraft.apps.demo import forward

    assert all(isinstance(c, Chain) and all(e in EDITS for e, _ in c) for c in FORWARDS.values())
    img = synthetic_photo(0, 200, 150)
    sizes = {label: forward(img, label).size for label in FORWARDS}
    assert sizes == {"JPEG75": (200, 150), "crop64%": (160, 120), "half-size": (100, 75)}
    middle = EDITS["jpeg"](img.crop((20, 15, 180, 135)), 85, np.random.default_rng(0))
    assert np.array_equal(px(forward(img, "crop64%")), px(middle))  # the middle 80 % of each side, JPEG 85


def test_tilt_turns_by_exactly_the_signed_angle_with_black_corners():
    img = Image.new("RGB", (80, 60), (200, 200, 200))
    rng = np.random.default_rng(0)
    out = px(EDITS["tilt"](img, 20.0, rng))
    assert out.shape == (60, 80, 3) and out[0, 0].max() == 0 and out[30, 40].min() == 200
    assert np.array_equal(px(EDITS["tilt"](img, 0.0, rng)), px(img))
    a = Image.new("RGB", (80, 60))
    a.putpixel((70, 30), (255, 255, 255))  # right of centre: a counter-clockwise turn lifts it
    ys, _ = np.nonzero(px(EDITS["tilt"](a, 30.0, rng)).sum(-1) > 100)
    assert ys.mean() < 30


def test_crop_uniform_keeps_the_area_and_reaches_the_whole_frame():
    img = synthetic_photo(0, 100, 80)
    rng = np.random.default_rng(0)
    outs = [EDITS["crop_uniform"](img, 0.25, rng) for _ in range(200)]
    assert {o.size for o in outs} == {(50, 40)}
    a = px(img)
    starts = set()
    for o in outs:
        hits = [
            (x, y)
            for x in range(51)
            for y in range(41)
            if np.array_equal(a[y, x], px(o)[0, 0]) and np.array_equal(a[y : y + 40, x : x + 50], px(o))
        ]
        starts.add(hits[0])
    xs, ys = zip(*starts)
    assert min(xs) <= 3 and max(xs) >= 47 and min(ys) <= 3 and max(ys) >= 37


def test_border_adds_the_fraction_in_one_flat_colour_around_the_picture():
    img = synthetic_photo(0, 100, 80)
    rng = np.random.default_rng(3)
    colours = set()
    for _ in range(30):
        out = px(EDITS["border"](img, 0.2, rng))
        assert out.shape == (96, 120, 3)
        found = [(x, y) for x in range(21) for y in range(17) if np.array_equal(out[y : y + 80, x : x + 100], px(img))]
        assert len(found) == 1
        x, y = found[0]
        edge = np.concatenate(
            [
                out[:y].reshape(-1, 3),
                out[y + 80 :].reshape(-1, 3),
                out[:, :x].reshape(-1, 3),
                out[:, x + 100 :].reshape(-1, 3),
            ]
        )
        assert len(edge) and (edge == edge[0]).all() and len(set(edge[0].tolist())) == 1  # one grey level
        colours.add(int(edge[0, 0]))
    assert {0, 255} <= colours and len(colours) > 2  # black, white and random greys


def test_caption_bar_covers_the_top_or_the_bottom_in_one_colour():
    img = synthetic_photo(0, 100, 80)
    rng = np.random.default_rng(0)
    places = set()
    for _ in range(20):
        out = px(EDITS["caption_bar"](img, 0.1, rng))
        top = (out[:8] == out[0, 0]).all() and np.array_equal(out[8:], px(img)[8:])
        bottom = (out[72:] == out[79, 0]).all() and np.array_equal(out[:72], px(img)[:72])
        assert top != bottom
        places.add("top" if top else "bottom")
    assert places == {"top", "bottom"}


def test_color_applies_brightness_contrast_and_saturation():
    img = synthetic_photo(0, 64, 48)
    rng = np.random.default_rng(0)
    assert np.abs(px(EDITS["color"](img, (1.0, 1.0, 1.0), rng)) - px(img)).max() <= 1
    assert px(EDITS["color"](img, (0.5, 1.0, 1.0), rng)).mean() < 0.6 * px(img).mean()
    grey = px(EDITS["color"](img, (1.0, 1.0, 0.0), rng))
    assert np.abs(grey - grey[..., :1]).max() <= 1
