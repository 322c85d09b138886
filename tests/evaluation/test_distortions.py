"""The benign edits (``deepraft.edits``) and the evaluation grid over them: each edit does what its
name says, on small synthetic images."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image, ImageFilter

from deepraft.edits import benign as D
from deepraft.edits.benign import EDITS, SCENE_EDITS, Chain
from deepraft.edits.grids import ANGLES, GRID, QUICK_GRID, Condition, conditions


def noise_image(w: int = 64, h: int = 48, seed: int = 0, low: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(low, 256, (h, w, 3), dtype=np.uint8))


def smooth_image(w: int = 96, h: int = 72, seed: int = 0) -> Image.Image:
    """Structure at a few pixels' scale, all pixels bright enough to tell from black."""
    img = noise_image(w, h, seed).filter(ImageFilter.GaussianBlur(2))
    arr = np.asarray(img, dtype=np.float32)
    arr = 60 + 180 * (arr - arr.min()) / (np.ptp(arr) + 1e-6)
    return Image.fromarray(arr.astype(np.uint8))


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB")).astype(np.int16)


def find_exact(canvas: np.ndarray, patch: np.ndarray, tol: float = 0.0) -> list[tuple[int, int]]:
    """Every (x, y) where ``patch`` sits in ``canvas`` (max abs difference <= tol)."""
    ph, pw = patch.shape[:2]
    win = np.lib.stride_tricks.sliding_window_view(canvas, (ph, pw, 3))[..., 0, :, :, :]
    err = np.abs(win - patch).max(axis=(-3, -2, -1))
    ys, xs = np.nonzero(err <= tol)
    return list(zip(xs.tolist(), ys.tolist()))


NOT_IN_GRID: dict[str, object] = {
    "tilt": -12.5,
    "crop_uniform": 0.5,
    "center_crop": 0.1,
    "color": (1.3, 0.7, 1.5),
    "border": 0.2,
    "caption_bar": 0.1,
}
"""A strength for each edit that calibration or the demo use but the grid does not."""


def first_strengths() -> dict[str, object]:
    out: dict[str, object] = dict(NOT_IN_GRID)
    for name, strengths in GRID:
        out.setdefault(name, strengths[0])
    return out


# -- the registry ----------------------------------------------------------------------------


def test_every_edit_is_in_the_grid_or_serves_calibration_or_the_demo():
    from deepraft.edits.benign import FORWARDS, UPLOAD_KINDS

    others = {e for kind in UPLOAD_KINDS.values() for e in kind.edits} | {e for c in FORWARDS.values() for e, _ in c}
    in_grid = {name for name, _ in GRID} - set(SCENE_EDITS)
    assert in_grid <= set(EDITS)
    assert set(SCENE_EDITS) <= {name for name, _ in GRID}
    assert set(EDITS) - in_grid == set(NOT_IN_GRID)
    assert set(EDITS) - in_grid <= others


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_edit_returns_an_rgb_image(name):
    img = noise_image()
    out = EDITS[name](img, first_strengths()[name], np.random.default_rng(0))
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    assert min(out.size) >= 8


@pytest.mark.parametrize("cond", conditions(GRID), ids=lambda c: c.label)
def test_every_condition_is_deterministic_for_a_seed(cond):
    img = noise_image(48, 40, seed=1)
    a = cond.apply(img, np.random.default_rng(7))
    b = cond.apply(img, np.random.default_rng(7))
    assert a.mode == "RGB" and a.size == b.size
    assert np.array_equal(arr(a), arr(b))


@pytest.mark.parametrize(
    "name",
    [
        "crop",
        "rotate_corners",
        "pad",
        "collage",
        "phone_screenshot",
        "stickers",
        "caption",
        "recapture",
        "stretch",
        "perspective",
        "crop_uniform",
        "border",
        "caption_bar",
    ],
)
def test_random_edits_vary_with_the_seed(name):
    img = noise_image(64, 48, seed=2)
    outs = {arr(EDITS[name](img, first_strengths()[name], np.random.default_rng(s))).tobytes() for s in range(6)}
    assert len(outs) > 1


def test_quick_grid_is_small_and_has_the_forwarder_edits():
    names = {n for n, _ in QUICK_GRID}
    assert {"hflip", "pad", "collage", "rot90"} <= names
    assert len(conditions(QUICK_GRID)) <= 12
    full = {c.label for c in conditions(GRID)}
    assert {c.label for c in conditions(QUICK_GRID)} <= full


def test_grid_rejects_unknown_edits_also_inside_chains():
    with pytest.raises(ValueError, match="nope"):
        conditions([("nope", [None])])
    with pytest.raises(ValueError, match="nope"):
        conditions([("chain", [Chain([("hflip", None), ("nope", 1)])])])


# -- mirrors and turns -----------------------------------------------------------------------


def test_mirrors_move_a_marked_pixel():
    a = np.zeros((30, 40, 3), np.uint8)
    a[3, 5] = (255, 0, 0)
    img, rng = Image.fromarray(a), np.random.default_rng(0)
    h = arr(D.hflip(img, None, rng))
    v = arr(D.vflip(img, None, rng))
    assert tuple(h[3, 40 - 1 - 5]) == (255, 0, 0) and h.sum() == 255
    assert tuple(v[30 - 1 - 3, 5]) == (255, 0, 0) and v.sum() == 255


@pytest.mark.parametrize(("name", "k"), [("rot90", 1), ("rot180", 2), ("rot270", 3)])
def test_quarter_turns_are_counter_clockwise_quarter_turns(name, k):
    img = noise_image(40, 30)
    out = arr(EDITS[name](img, None, np.random.default_rng(0)))
    assert np.array_equal(out, np.rot90(arr(img), k))
    # a mark at the top-left corner ends at the bottom-left after a counter-clockwise quarter turn
    a = np.zeros((30, 40, 3), np.uint8)
    a[0, 0] = 255
    marked = arr(EDITS[name](Image.fromarray(a), None, np.random.default_rng(0)))
    where = {1: (39, 0), 2: (29, 39), 3: (0, 29)}[k]
    assert marked[where].tolist() == [255, 255, 255]


# -- tilts -------------------------------------------------------------------------------------


def test_tilt_angle_is_around_the_strength_with_both_signs():
    angles = np.array([D._tilt(10, np.random.default_rng(s)) for s in range(200)])
    assert np.all((np.abs(angles) >= 8) & (np.abs(angles) <= 12))
    assert (angles > 0).any() and (angles < 0).any()
    assert np.ptp(np.abs(angles)) > 2  # the magnitude varies too


def test_rotate_corners_keeps_the_frame_with_black_corners():
    img = smooth_image(96, 72)
    out = arr(D.rotate_corners(img, 15, np.random.default_rng(0)))
    assert out.shape == arr(img).shape
    for y, x in ((0, 0), (0, 95), (71, 0), (71, 95)):
        assert out[y, x].max() == 0
    # the middle is the picture turned about its centre, not moved
    assert np.abs(out[30:42, 42:54] - arr(img)[30:42, 42:54]).mean() < 40
    assert np.abs(out - arr(img)).mean() > 5


@pytest.mark.parametrize("degrees", [5, 15, 30])
def test_rotate_expand_keeps_the_whole_picture(degrees):
    img = smooth_image(96, 72)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        angle = np.radians(abs(D._tilt(degrees, np.random.default_rng(seed))))
        out = arr(D.rotate_expand(img, degrees, rng))
        c, s = np.cos(angle), np.sin(angle)
        assert abs(out.shape[1] - (96 * c + 72 * s)) <= 2 and abs(out.shape[0] - (96 * s + 72 * c)) <= 2
        assert out[0, 0].max() == 0 and out[-1, -1].max() == 0
        picture = np.count_nonzero(out.max(-1) > 30)
        assert abs(picture - 96 * 72) < 0.04 * 96 * 72  # nothing cut off, nothing added


def test_rotate_straighten_has_no_black_corners():
    img = smooth_image(96, 72)
    out = arr(D.rotate(img, 15, np.random.default_rng(0)))
    assert out.max(-1).min() > 30 and out.shape[0] < 72


# -- crops, stretches, borders -----------------------------------------------------------------


def test_crop_reaches_every_corner_and_the_middle():
    img = noise_image(64, 48)
    a = arr(img)
    positions = set()
    for seed in range(200):
        out = arr(D.crop(img, 0.25, np.random.default_rng(seed)))
        assert out.shape == (24, 32, 3)
        (pos,) = find_exact(a, out)
        positions.add(pos)
    assert {(0, 0), (32, 0), (0, 24), (32, 24)} <= positions
    assert any(0 < x < 32 and 0 < y < 24 for x, y in positions)
    assert len(positions) > 30


def test_stretch_scales_one_axis():
    img = noise_image(100, 50)
    seen = set()
    for seed in range(40):
        w, h = D.stretch(img, 0.2, np.random.default_rng(seed)).size
        assert (h == 50 and w in (80, 120)) or (w == 100 and h in (40, 60))
        seen.add((w, h))
    assert seen == {(80, 50), (120, 50), (100, 40), (100, 60)}


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3])
def test_pad_adds_the_stated_border_and_keeps_the_picture(fraction):
    img = noise_image(60, 40)
    a = arr(img)
    fills, modes = set(), set()
    for seed in range(30):
        out = arr(D.pad(img, fraction, np.random.default_rng(seed)))
        h, w = out.shape[:2]
        ((x0, y0),) = find_exact(out, a)
        padded = (w != 60, h != 40)
        assert any(padded)
        modes.add(padded)
        for side, size in ((w, 60), (h, 40)):
            if side != size:
                assert abs((side - size) / side - fraction) <= 1 / side
        assert (x0 > 0) == (w != 60) and (y0 > 0) == (h != 40)  # a border on both sides of a padded axis
        corner = tuple(out[0, 0]) if x0 > 0 else tuple(out[0, -1]) if x0 + 60 < w else tuple(out[0 if y0 else -1, 0])
        fills.add("black" if corner == (0, 0, 0) else "white" if corner == (255, 255, 255) else "blur")
    assert fills == {"black", "white", "blur"}
    assert modes == {(True, False), (False, True), (True, True)}


def test_blurred_pad_is_a_blurred_copy_of_the_picture():
    a = np.zeros((40, 60, 3), np.uint8)
    a[:, :30] = (200, 40, 40)
    a[:, 30:] = (40, 40, 200)
    fill = arr(D._blurred_fill(Image.fromarray(a), (90, 40)))
    assert fill[20, 2, 0] > fill[20, 2, 2] + 100 and fill[20, -3, 2] > fill[20, -3, 0] + 100


# -- collage -----------------------------------------------------------------------------------


def test_collage_puts_the_picture_at_half_size_anywhere():
    img = noise_image(64, 48)
    expected = arr(img.resize((32, 24), Image.Resampling.BICUBIC))
    positions = set()
    for seed in range(40):
        out = arr(D.collage(img, 0.5, np.random.default_rng(seed)))
        assert out.shape == (48, 64, 3)
        (pos,) = find_exact(out, expected)
        positions.add(pos)
    assert {(0, 0), (32, 24)} <= positions and len(positions) > 10


def test_collage_background_does_not_come_from_the_photo():
    a, b = noise_image(64, 48, seed=1), smooth_image(64, 48, seed=2)
    oa = arr(D.collage(a, 0.5, np.random.default_rng(3)))
    ob = arr(D.collage(b, 0.5, np.random.default_rng(3)))
    outside = np.ones((48, 64), bool)
    _, _, x0, y0 = D.collage_geometry(64, 48, 0.5, np.random.default_rng(3))
    outside[y0 : y0 + 24, x0 : x0 + 32] = False
    assert np.array_equal(oa[outside], ob[outside])
    oc = arr(D.collage(a, 0.5, np.random.default_rng(4)))
    assert np.abs(oc.astype(float).mean((0, 1)) - oa.astype(float).mean((0, 1))).max() > 1


def radial_slope(gray: np.ndarray) -> float:
    """Log-log slope of the radially averaged power spectrum (natural photos: about -2)."""
    f = np.fft.fftshift(np.abs(np.fft.fft2(gray - gray.mean())) ** 2)
    h, w = gray.shape
    yy, xx = np.indices(f.shape)
    r = np.hypot(yy - h // 2, xx - w // 2).astype(int)
    power = np.bincount(r.ravel(), f.ravel()) / np.maximum(np.bincount(r.ravel()), 1)
    k = np.arange(2, min(h, w) // 4)
    return float(np.polyfit(np.log(k), np.log(power[k]), 1)[0])


def test_pink_noise_has_the_asked_spectrum():
    n = D.pink_noise(256, 256, np.random.default_rng(0), exponent=2.0)
    assert abs(n.std() - 1) < 1e-6 and abs(n.mean()) < 1e-6
    assert abs(radial_slope(n) + 2.0) < 0.3


def test_natural_background_looks_like_a_photo_not_noise():
    bg = arr(D.natural_background(256, 192, np.random.default_rng(0))).astype(np.float64)
    gray = bg.mean(-1)
    assert gray.std() > 10
    assert -3.5 < radial_slope(gray) < -1.5  # white noise: 0


# -- stickers and captions ---------------------------------------------------------------------


def test_stickers_cover_the_stated_area_at_random_places():
    img = noise_image(120, 90)
    masks = []
    for seed in range(5):
        changed = np.any(arr(D.stickers(img, 0.15, np.random.default_rng(seed))) != arr(img), axis=-1)
        assert 0.15 <= changed.mean() <= 0.16 + 1e-9
        masks.append(changed)
    assert not np.array_equal(masks[0], masks[1])


def test_caption_bar_covers_the_stated_share_at_top_or_bottom():
    img = noise_image(200, 120)
    tops = set()
    for seed in range(12):
        out = arr(D.caption(img, 0.15, np.random.default_rng(seed)))
        changed_rows = np.any(out != arr(img), axis=(1, 2))
        assert changed_rows.sum() == 18
        top = bool(changed_rows[0])
        tops.add(top)
        bar = out[:18] if top else out[-18:]
        fill = bar[0, 0]
        assert tuple(fill) in ((0, 0, 0), (255, 255, 255))
        share = np.all(bar == fill, axis=-1).mean()
        assert 0.6 < share < 1.0  # a plain bar with text on it
    assert tops == {True, False}


# -- recapture -------------------------------------------------------------------------------


def test_perspective_coeffs_map_the_points():
    dst = [(3.0, 2.0), (90.0, 5.0), (88.0, 70.0), (1.0, 66.0)]
    src = [(0.0, 0.0), (96.0, 0.0), (96.0, 72.0), (0.0, 72.0)]
    a, b, c, d, e, f, g, h = D.perspective_coeffs(dst, src)
    for (x, y), (u, v) in zip(dst, src):
        den = g * x + h * y + 1
        assert abs((a * x + b * y + c) / den - u) < 1e-9 and abs((d * x + e * y + f) / den - v) < 1e-9


def test_recapture_is_the_picture_on_a_screen_seen_by_a_camera():
    yy, xx = np.mgrid[0:96, 0:128]
    ramp = np.stack([60 + xx * 1.4, 60 + yy * 1.8, 240 - xx - yy * 0.5], -1)
    img = Image.fromarray(ramp.astype(np.uint8))
    src = arr(img).astype(np.float64)
    for seed in range(3):
        out = arr(D.recapture(img, 1.0, np.random.default_rng(seed))).astype(np.float64)
        assert out.shape == src.shape
        assert out[:1, :1].max() < 80 and out[-1:, -1:].max() < 80  # the dark bezel at the corners
        mid = (slice(30, 66), slice(40, 88))
        for ch in range(3):  # still the picture
            assert np.corrcoef(out[mid][..., ch].ravel(), src[mid][..., ch].ravel())[0, 1] > 0.8
        assert np.abs(out[mid] - src[mid]).mean() > 2  # but not untouched
    keyed = arr(D.keystone(img, 0.08, np.random.default_rng(0), fill=(0, 0, 0)))
    assert keyed[0, 0].max() == 0 and keyed[48, 64].max() > 0


# -- chains ----------------------------------------------------------------------------------


def test_chain_applies_its_steps_in_order_with_one_rng():
    img = noise_image(64, 48)
    steps = Chain([("hflip", None), ("pad", 0.2)])
    out = D.chain(img, steps, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    manual = D.pad(D.hflip(img, None, rng), 0.2, rng)
    assert np.array_equal(arr(out), arr(manual))


def test_chain_label_is_readable_and_serialisable():
    steps = Chain([("rotate_corners", 10), ("crop", 0.5)])
    cond = Condition("chain", steps)
    assert cond.label == "chain rotate_corners 10+crop 0.5"
    assert str(Chain([("hflip", None), ("pad", 0.2)])) == "hflip+pad 0.2"
    assert json.loads(json.dumps(steps)) == [["rotate_corners", 10], ["crop", 0.5]]
    again = pickle.loads(pickle.dumps(cond))
    assert again == cond and str(again.strength) == str(steps)


def test_grid_has_the_chains_of_two_and_three():
    chains = {str(s) for name, strengths in GRID if name == "chain" for s in strengths}
    assert {"hflip+pad 0.2", "rotate_corners 10+crop 0.5", "collage 0.5+jpeg 70", "recapture 1.0+hflip"} <= chains
    assert {f"crop {a}+messenger" for a in (0.5, 0.25, 0.1)} | {"crop 0.36+rotate 7+messenger"} <= chains
    assert all(len(s) in (2, 3) for name, strengths in GRID if name == "chain" for s in strengths)


def test_grid_has_series_for_the_curves():
    """Crop areas, rotation angles (cropped and with corners) and paste scales come in series,
    so the report can draw TPR against each."""
    grid: dict[str, list] = {}
    for name, strengths in GRID:
        grid.setdefault(name, []).extend(strengths)
    assert {0.64, 0.5, 0.36, 0.25, 0.16, 0.1} <= set(grid["crop"])
    assert sorted(grid["rotate"]) == ANGLES and sorted(grid["rotate_corners"]) == ANGLES
    assert ANGLES[0] <= 5 and ANGLES[-1] >= 45 and all(b - a <= 5 for a, b in zip(ANGLES, ANGLES[1:]))
    assert grid["paste"] == [0.7, 0.5, 0.35] and grid["photo_grid"] == [None]
    assert {2.0, 0.25} <= set(grid["resize"]) and {0.5, 2.0} <= set(grid["gamma"])
    assert {"messenger", "phone_screenshot"} <= set(grid)
    labels = [c.label for c in conditions(GRID)]
    assert len(labels) == len(set(labels))  # an edit listed twice repeats no strength


def test_scene_edits_are_not_allowed_inside_chains():
    with pytest.raises(ValueError, match="paste"):
        conditions([("chain", [Chain([("paste", 0.5), ("jpeg", 70)])])])


# -- new in the v3 grid ----------------------------------------------------------------------


def test_messenger_caps_the_long_side_and_never_enlarges():
    big = noise_image(400, 300)
    out = D.messenger(big, 200, np.random.default_rng(0))
    assert out.size == (200, 150)
    small = noise_image(120, 90)
    assert D.messenger(small, None, np.random.default_rng(0)).size == (120, 90)
    assert np.array_equal(arr(D.messenger(small, None, np.random.default_rng(0))), arr(D.jpeg(small, 70, None)))


def test_gamma_keeps_black_and_white_and_bends_the_middle():
    ramp = Image.fromarray(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2))
    lo, hi = arr(D.gamma(ramp, 0.5, None))[0, :, 0], arr(D.gamma(ramp, 2.0, None))[0, :, 0]
    assert lo[0] == hi[0] == 0 and lo[255] == hi[255] == 255
    assert lo[64] == 128 and hi[128] == 64
    assert np.all(np.diff(lo) >= 0) and np.all(np.diff(hi) >= 0)


def test_phone_screenshot_shows_the_picture_full_width_between_the_bars():
    img = smooth_image(270, 180, seed=3)
    tops = set()
    for seed in range(8):
        out = D.phone_screenshot(img, None, np.random.default_rng(seed))
        assert out.size == D.PHONE_SCREEN
        shown = arr(img.resize((1080, 720), Image.Resampling.BICUBIC)).astype(float)
        screen = arr(out).astype(float)
        rows = [y for y in range(250, 2340 - 150 - 720 + 1, 4) if np.abs(screen[y : y + 720] - shown).mean() < 4]
        assert rows, "the picture is not on the screen at full width"
        tops.add(rows[0] // 40)
        assert screen[:80].std() > 5 and screen[-150:].std() > 5  # status and input bars drawn
    assert len(tops) > 2  # anywhere between the bars


def solid_scenery(n, size, rng):
    return [Image.new("RGB", size, (0, 200, 0)) for _ in range(n)]


def test_paste_puts_the_picture_into_the_scenery_at_its_scale():
    img = noise_image(64, 48)
    out = arr(D.paste(img, 0.5, np.random.default_rng(0), solid_scenery))
    expected = arr(img.resize((32, 24), Image.Resampling.BICUBIC))
    (pos,) = find_exact(out, expected)
    outside = np.ones((48, 64), bool)
    outside[pos[1] : pos[1] + 24, pos[0] : pos[0] + 32] = False
    assert np.all(out[outside] == (0, 200, 0))


def test_photo_grid_puts_the_picture_in_one_cell_of_four():
    img = noise_image(64, 48)
    cells = set()
    for seed in range(12):
        out = arr(D.photo_grid(img, None, np.random.default_rng(seed), solid_scenery))
        assert out.shape == (48, 64, 3)
        (pos,) = find_exact(out, arr(img.resize((32, 24), Image.Resampling.BICUBIC)))
        cells.add(pos)
        assert (out == (0, 200, 0)).all(-1).sum() == 3 * 32 * 24
    assert cells == {(0, 0), (32, 0), (0, 24), (32, 24)}


def test_scene_conditions_use_the_given_scenery_or_generated_pictures():
    img = noise_image(64, 48)
    cond = Condition("paste", 0.5)
    given = arr(cond.apply(img, np.random.default_rng(1), solid_scenery))
    generated = arr(cond.apply(img, np.random.default_rng(1)))
    assert (given == (0, 200, 0)).all(-1).sum() == 64 * 48 - 32 * 24
    assert (generated == (0, 200, 0)).all(-1).sum() < 10
