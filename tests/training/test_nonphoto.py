"""Generated non-photos and the crops that mix them (and shared non-photos) with the photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepraft.training.datasets import PhotoCrops
from deepraft.training.nonphoto import KINDS, generate


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_made_again_exactly_from_its_seed(kind):
    k1, a = generate(7, 3, kind)
    k2, b = generate(7, 3, kind)
    assert k1 == k2 == kind and a.mode == "RGB" and min(a.size) >= 100
    assert np.array_equal(np.asarray(a), np.asarray(b))
    _, c = generate(7, 4, kind)
    assert not np.array_equal(np.asarray(a)[:50, :50], np.asarray(c)[:50, :50]) or a.size != c.size


def test_kinds_are_drawn_evenly_and_an_unknown_kind_is_named():
    drawn = [generate(0, i)[0] for i in range(200)]
    counts = {k: drawn.count(k) for k in KINDS}
    assert all(20 <= n <= 60 for n in counts.values()), counts
    with pytest.raises(ValueError, match="unknown non-photo kind 'meme'"):
        generate(0, 0, "meme")


def test_documents_hold_dark_text_on_light_paper():
    _, page = generate(1, 0, "document")
    a = np.asarray(page.convert("L"), np.float32)
    assert np.median(a) > 200 and (a < 100).mean() > 0.005  # paper with ink on it


def _solid(tmp_path, name: str, colour: tuple[int, int, int], n: int = 3) -> list:
    out = []
    for i in range(n):
        p = tmp_path / f"{name}{i}.png"
        Image.new("RGB", (120, 100), colour).save(p)
        out.append(p)
    return out


def _sources(crops: PhotoCrops, steps: int = 40) -> list[str]:
    names = []
    for step in range(steps):
        px = crops[step, 0].float().mean(dim=(1, 2)).tolist()
        names.append("photo" if px[0] > 200 and px[2] < 50 else "other" if px[2] > 200 and px[0] < 50 else "generated")
    return names


def test_crops_come_from_each_source_in_their_fractions(tmp_path):
    photos, others = _solid(tmp_path, "red", (255, 0, 0)), _solid(tmp_path, "blue", (0, 0, 255))
    only_photos = _sources(PhotoCrops(photos, 32, seed=1))
    assert set(only_photos) == {"photo"}
    mixed = _sources(PhotoCrops(photos, 32, seed=1, others=others, other_fraction=0.4, synthetic_fraction=0.3), 200)
    share = {k: mixed.count(k) / len(mixed) for k in ("photo", "other", "generated")}
    assert abs(share["other"] - 0.4) < 0.1 and abs(share["generated"] - 0.3) < 0.1, share


def test_photo_only_crops_do_not_change(tmp_path):
    """Runs without other sources draw exactly the crops they always drew."""
    photos = _solid(tmp_path, "p", (10, 200, 30))
    a = PhotoCrops(photos, 32, seed=3)[5, 1]
    b = PhotoCrops(photos, 32, seed=3, others=None, other_fraction=0.0, synthetic_fraction=0.0)[5, 1]
    assert a.equal(b)


def test_bad_fractions_are_refused(tmp_path):
    photos = _solid(tmp_path, "p", (1, 2, 3), 1)
    with pytest.raises(ValueError, match="other_fraction > 0 needs other pictures"):
        PhotoCrops(photos, 32, other_fraction=0.2)
    with pytest.raises(ValueError, match="at most 1"):
        PhotoCrops(photos, 32, others=photos, other_fraction=0.6, synthetic_fraction=0.6)
