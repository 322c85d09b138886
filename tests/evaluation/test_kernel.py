"""The measurement kernel: stamped and clean copies get the same edit draws, every edit and
variant is scored once per copy, and the scores land on the right labels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from deepraft.core.imageio import Picture
from deepraft.edits.grids import conditions
from deepraft.evaluation.kernel import Sample, by_edit, files_scenery, grid_edits, measure


def _picture(value: int) -> Picture:
    return Picture(rgb=np.full((24, 32, 3), value, np.uint8))


def _mean_scorer(seen: list[np.ndarray]):
    def score(pics: list[Picture]) -> list[float]:
        seen.extend(p.rgb for p in pics)
        return [float(p.rgb.mean()) for p in pics]

    return score


def test_stamped_and_clean_copies_get_the_same_draws():
    seen: list[np.ndarray] = []
    edits = grid_edits(conditions([("noise", [0.1]), ("crop", [0.5])]))
    same = _picture(100)
    samples = measure(_mean_scorer(seen), same, same, edits, variants=3, seed=lambda e, v: 10 * e + v)
    assert len(samples) == len(seen) == 2 * 3 * 2
    for k in range(0, len(seen), 2):  # each (edit, variant): stamped then clean, edited alike
        assert np.array_equal(seen[k], seen[k + 1])
    noisy = [seen[k] for k in range(0, 6, 2)]
    assert not np.array_equal(noisy[0], noisy[1])  # variants draw anew
    assert 20 < np.std(noisy[0].astype(float) - 100) < 30  # sigma 0.1 of 255


def test_scores_land_on_their_edit_and_kind():
    def brighter(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return Image.fromarray(np.clip(np.asarray(img).astype(int) + 10, 0, 255).astype(np.uint8))

    edits = [("none", lambda img, rng: img), ("brighter", brighter)]
    samples = measure(_mean_scorer([]), _picture(200), _picture(50), edits, variants=2)
    assert samples[:2] == [Sample("none", 0, "stamped", 200.0), Sample("none", 0, "clean", 50.0)]
    table = by_edit(samples)
    assert list(table) == ["none", "brighter"]
    assert table["brighter"] == ([210.0, 210.0], [60.0, 60.0])


def test_kept_copies_are_the_scored_ones():
    kept: list[tuple[str, int, str, float]] = []
    measure(
        _mean_scorer([]),
        _picture(30),
        _picture(40),
        [("none", lambda img, rng: img)],
        keep=lambda label, v, kind, img: kept.append((label, v, kind, float(np.asarray(img).mean()))),
    )
    assert kept == [("none", 0, "stamped", 30.0), ("none", 0, "clean", 40.0)]


def test_files_scenery_draws_distinct_pictures_of_the_files_fitted_to_the_size(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    files = []
    for i, c in enumerate(colours):
        f = tmp_path / f"p{i}.png"
        Image.new("RGB", (80 + 20 * i, 60), c).save(f)
        files.append(f)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    draw = files_scenery(files)
    rng = np.random.default_rng(0)
    for _ in range(10):
        pics = draw(3, (40, 30), rng)
        assert [p.size for p in pics] == [(40, 30)] * 3
        seen = [tuple(int(v) for v in np.asarray(p)[15, 20]) for p in pics]
        assert len(set(seen)) == 3 and set(seen) <= set(colours)
    # same draws, same pictures (the stamped and the clean copy of an edit)
    a = [np.asarray(p) for p in draw(2, (40, 30), np.random.default_rng(5))]
    b = [np.asarray(p) for p in draw(2, (40, 30), np.random.default_rng(5))]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # an unreadable file gives a generated picture; no files at all, generated ones
    (only_broken,) = files_scenery([broken])(1, (40, 30), np.random.default_rng(0))
    assert only_broken.size == (40, 30) and np.asarray(only_broken).std() > 1
    assert [p.size for p in files_scenery([])(2, (16, 12), np.random.default_rng(0))] == [(16, 12)] * 2


def test_grid_edits_pass_the_scenery_to_scene_edits():
    def green(n, size, rng):
        return [Image.new("RGB", size, (0, 200, 0)) for _ in range(n)]

    ((label, edit),) = grid_edits(conditions([("paste", [0.5])]), green)
    out = np.asarray(edit(Image.new("RGB", (64, 48), (9, 9, 9)), np.random.default_rng(0)))
    assert label == "paste 0.5"
    assert (out == (0, 200, 0)).all(-1).sum() == 64 * 48 - 32 * 24
