"""The measurement kernel: stamped and clean copies get the same edit draws, every edit and
variant is scored once per copy, and the scores land on the right labels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from deepraft.core.imageio import Picture
from deepraft.edits.grids import conditions
from deepraft.evaluation.kernel import Sample, by_edit, grid_edits, measure


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
