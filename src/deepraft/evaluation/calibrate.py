"""Detection thresholds calibrated to a stated false-positive rate on clean photos.

A platform scans every upload, nearly all of them clean, so the number that matters is how
often a clean picture is wrongly blocked. The threshold for FPR ``f`` is read off the scores
of clean held-out photos and of benign edits of them (re-compression, resizing, crops, colour
tweaks: what ordinary uploads look like), so that at most a fraction ``f`` of them score above it.
The benign edits are the upload subset of the edit registry (:mod:`deepraft.edits`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from deepraft.edits.benign import EDITS, UPLOAD_KINDS, sample_upload_codec

DEFAULT_FPRS = (1e-1, 1e-2, 1e-3)


def threshold_at_fpr(negative_scores: Sequence[float] | np.ndarray, fpr: float) -> float:
    """Smallest threshold ``t`` among the scores with ``mean(score > t) <= fpr``.

    With ``n`` negatives, ``k = floor(fpr * n)`` of them may lie above ``t``: ``t`` is the
    (k+1)-th largest score. When ``fpr * n < 1`` this is the largest score (an empirical FPR
    of 0, which says little: see :func:`fpr_resolution`)."""
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    s = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    if s.size == 0:
        raise ValueError("no negative scores to calibrate on")
    k = int(math.floor(fpr * s.size + 1e-9))
    return float(s[min(k, s.size - 1)])


def bootstrap_threshold(
    groups: Sequence[Sequence[float]], fpr: float, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> float:
    """Upper ``confidence`` bound on the FPR-``fpr`` threshold when the negative scores come in
    correlated groups (the benign variants of one photo): resample the groups (photos) with
    replacement, take :func:`threshold_at_fpr` of every resample, return the ``confidence``
    quantile. With 29 photos the data hold 29 independent draws, not 29 x 50: a photo that
    happens to look like a stamp (or its absence) moves the tail, and this bound keeps it in."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays:
        raise ValueError("no negative scores to calibrate on")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(arrays), size=(n_boot, len(arrays)))
    values = [threshold_at_fpr(np.concatenate([arrays[i] for i in row]), fpr) for row in picks]
    return float(max(np.quantile(values, confidence), threshold_at_fpr(np.concatenate(arrays), fpr)))


def fpr_upper_bound(false_positives: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound, at ``confidence``, on a false-positive rate of which
    ``false_positives`` of ``n`` clean samples were seen: with no false positive in ``n`` the
    bound is about 3 / n at 95 % (the rule of three), so showing FPR <= 1e-4 takes some 30,000."""
    if n <= 0:
        raise ValueError("no clean samples")
    if not 0 <= false_positives <= n:
        raise ValueError(f"false_positives must be in [0, {n}], got {false_positives}")
    if false_positives == n:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(confidence, false_positives + 1, n - false_positives))


def rates_by_kind(
    scores: Sequence[float], kinds: Sequence[str], thresholds: dict[str, float], confidence: float = 0.95
) -> dict[str, dict[str, object]]:
    """Per kind of picture: its number of clean samples and, at each named threshold, how many
    scored above it, that rate and its upper bound (:func:`fpr_upper_bound`)."""
    s = np.asarray(scores, dtype=np.float64)
    k = np.asarray(kinds)
    out: dict[str, dict[str, object]] = {}
    for kind in sorted(set(kinds)):
        mine = s[k == kind]
        at: dict[str, dict[str, float]] = {}
        for name, thr in thresholds.items():
            flagged = int((mine > thr).sum())
            at[name] = {
                "flagged": flagged,
                "fpr": flagged / mine.size,
                "fpr_upper_bound": fpr_upper_bound(flagged, int(mine.size), confidence),
            }
        out[kind] = {"n": int(mine.size), "at_threshold": at}
    return out


def fpr_resolution(n_negatives: int) -> float:
    """Smallest FPR that ``n_negatives`` clean samples can resolve (one false positive)."""
    return 1.0 / max(1, n_negatives)


def _step_label(name: str, strength: object) -> str:
    """``name`` and its step's strength, numbers to 3 significant digits (``color 1.64,0.524,1.46``)."""
    if strength is None:
        return name
    values = strength if isinstance(strength, (tuple, list)) else (strength,)
    return f"{name} " + ",".join(f"{v:.3g}" if isinstance(v, (int, float)) else str(v) for v in values)


def benign_variant(img: Image.Image, rng: np.random.Generator, steps: list[str] | None = None) -> Image.Image:
    """One random everyday edit (or chain of two) of a clean RGB photo, then an encoder: one or
    two kinds of :data:`deepraft.edits.benign.UPLOAD_KINDS` (crop, resize, colour, mirror, turn, border,
    slight rotation, caption bar, none), each drawing its step, then
    :func:`deepraft.edits.benign.sample_upload_codec` (JPEG, WebP or none). The steps taken, as
    ``name strength``, are appended to ``steps`` when given."""
    out = img
    kinds = rng.choice(list(UPLOAD_KINDS), size=int(rng.integers(1, 3)), replace=False)
    for kind in kinds:
        name, strength = UPLOAD_KINDS[str(kind)].sample(rng)
        out = EDITS[name](out, strength, rng)
        if steps is not None:
            steps.append(_step_label(name, strength))
    name, strength = sample_upload_codec(rng)
    if steps is not None:
        steps.append(_step_label(name, strength))
    return EDITS[name](out, strength, rng)


def clean_variants(img: Image.Image, count: int, seed: int, labels: list[str] | None = None) -> Iterable[Image.Image]:
    """The photo itself, then ``count - 1`` deterministic benign variants of it. With ``labels``,
    what was done to each yielded picture is appended to it (``original``, or the edit steps
    joined by ``+``) before the picture is yielded."""
    if labels is not None:
        labels.append("original")
    yield img
    rng = np.random.default_rng(seed)
    for _ in range(count - 1):
        steps: list[str] | None = [] if labels is not None else None
        out = benign_variant(img, rng, steps)
        if labels is not None and steps is not None:
            labels.append(" + ".join(steps))
        yield out


@dataclass
class Calibration:
    thresholds: dict[str, float]
    n_images: int
    n_negatives: int
    variants_per_image: int
    data: str
    failed: list[str]
    empirical: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.95
    tail: list[dict[str, object]] = field(default_factory=list)
    """The highest clean scores (photo, what was done to it, score), highest first: what sets
    the low-FPR thresholds."""
    kinds: dict[str, dict[str, object]] = field(default_factory=dict)
    """Per kind of picture (photo, screenshot, document, ...): clean samples, and the rate above
    each card threshold with its upper bound (:func:`rates_by_kind`)."""
    fpr_upper_bounds: dict[str, float] = field(default_factory=dict)
    """At each card threshold: the upper bound on the FPR of all the clean samples."""

    def as_dict(self) -> dict[str, object]:
        return {
            "data": self.data,
            "n_images": self.n_images,
            "n_negatives": self.n_negatives,
            "variants_per_image": self.variants_per_image,
            "fpr_resolution": fpr_resolution(self.n_negatives),
            "failed": self.failed,
            "empirical_thresholds": self.empirical,
            "confidence": self.confidence,
            "tail": self.tail,
            "kinds": self.kinds,
            "fpr_upper_bounds": self.fpr_upper_bounds,
            "method": "empirical threshold = (floor(fpr*n)+1)-th largest score over clean pictures (photos, "
            "and the non-photos and generated pictures named in kinds) and benign edits of them "
            "(JPEG/WebP, resize, crop, colour, mirrors, turns, borders, slight rotations, caption bars); the "
            "card's threshold is its "
            f"upper {self.confidence:.0%} bound over a bootstrap of the photos (the edits of one "
            "photo are correlated), so that an unlucky draw of calibration photos does not set "
            "it too low",
        }


class ScoreCache:
    """The clean scores of a calibration as they are made, one JSON line per picture in ``path``,
    keyed by the model's weights (``model_key``: their SHA-256), the picture and its variants'
    count and seed: a calibration stopped part-way (a 30,000-sample one takes hours on two
    cores) resumes from the pictures already scored, and a cache of other weights or other draws
    is never reused. A line cut short by a stop is ignored."""

    def __init__(self, path: Path, model_key: str) -> None:
        self.path, self.model_key = Path(path), model_key
        self.known: dict[str, tuple[str, list[float], list[str]]] = {}
        text = self.path.read_text() if self.path.exists() else ""
        self._cut = bool(text) and not text.endswith("\n")  # a line cut short: the next starts on its own
        if text:
            for line in text.splitlines():
                try:
                    row = json.loads(line)
                    self.known[str(row["key"])] = (str(row["kind"]), [float(v) for v in row["scores"]], row["edits"])
                except (ValueError, KeyError, TypeError):
                    continue

    def key(self, name: str, count: int, vseed: int) -> str:
        return f"{self.model_key}|{name}|{count}|{vseed}"

    def get(self, key: str) -> tuple[str, list[float], list[str]] | None:
        """(kind, scores, edit labels) of a picture scored before, or None."""
        return self.known.get(key)

    def put(self, key: str, kind: str, scores: list[float], edits: list[str]) -> None:
        self.known[key] = (kind, scores, edits)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(
                ("\n" if self._cut else "") + json.dumps({"key": key, "kind": kind, "scores": scores, "edits": edits})
            )
            fh.write("\n")
        self._cut = False


Source = Callable[[], tuple[str, Image.Image]]
"""What makes a calibration picture when it is needed: () -> (kind, picture)."""


class _CleanScores:
    """The clean scores of a calibration, grouped by picture (a picture's variants are correlated),
    with each group's kind and the highest scores tagged with their picture and edit."""

    def __init__(
        self, score_fn: Callable[[list[Image.Image]], list[float]], tail_size: int, cache: ScoreCache | None = None
    ) -> None:
        self.score_fn, self.tail_size, self.cache = score_fn, tail_size, cache
        self.groups: list[list[float]] = []
        self.kinds: list[str] = []
        self.tagged: list[tuple[float, str, str]] = []
        self.failed: list[str] = []
        self.n_images = 0

    def add(self, make: Source, name: str, count: int, vseed: int) -> None:
        """Score ``count`` benign variants of the picture ``make`` makes (not made at all when the
        cache holds its scores)."""
        key = self.cache.key(name, count, vseed) if self.cache is not None else ""
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None and len(hit[1]) == count:
            kind, group, labels = hit
        else:
            kind, img = make()
            labels = []
            group = [float(v) for v in self.score_fn(list(clean_variants(img, count, vseed, labels)))]
            if self.cache is not None:
                self.cache.put(key, kind, group, labels)
        self.groups.append(group)
        self.kinds.append(kind)
        self.tagged.extend(sorted(zip(group, [name] * len(group), labels), reverse=True)[: self.tail_size])

    def add_files(
        self,
        sources: list[tuple[Path, str]],
        variants: int,
        seed: int,
        progress: Callable[[Iterable], Iterable] | None,
    ) -> None:
        from deepraft.core.imageio import ImageError, read_image

        def reader(f: Path, kind: str) -> Source:
            return lambda: (kind, Image.fromarray(read_image(f).rgb))

        for i, (f, kind) in enumerate(progress(sources) if progress else sources):
            try:
                self.add(reader(f, kind), Path(f).name, variants, seed * 100_003 + i)
            except ImageError as exc:
                self.failed.append(str(exc))
                continue
            self.n_images += 1

    def add_generated(
        self, count: int, variants: int, seed: int, offset: int, progress: Callable[[Iterable], Iterable] | None
    ) -> None:
        from deepraft.training.nonphoto import generate

        for j in progress(range(count)) if progress else range(count):

            def make(j: int = j) -> tuple[str, Image.Image]:
                kind, img = generate(seed, j)
                return f"generated {kind}", img

            self.add(make, f"generated {j}", variants, seed * 100_003 + offset + j)


def calibrate(
    score_fn: Callable[[list[Image.Image]], list[float]],
    files: Sequence[Path],
    fprs: Sequence[float] = DEFAULT_FPRS,
    variants_per_image: int = 50,
    seed: int = 0,
    data_name: str = "",
    progress: Callable[[Iterable], Iterable] | None = None,
    confidence: float = 0.95,
    tail_size: int = 10,
    kinds: Sequence[str] | None = None,
    generated: int = 0,
    generated_variants: int = 10,
    cache: ScoreCache | None = None,
) -> Calibration:
    """Score every file and its benign variants with ``score_fn`` and derive thresholds; the
    ``tail_size`` highest clean scores are kept with their photo and edit. ``kinds`` names the
    kind of each file (default: all ``photo``); ``generated`` non-photos
    (:func:`deepraft.training.nonphoto.generate`, stream ``seed``) join with
    ``generated_variants`` variants each. The card's thresholds come from all of them together;
    the rate above each, with its upper bound, is reported per kind. ``cache``: where the
    scores of each picture are kept as they come, and found again on a rerun (:class:`ScoreCache`)."""
    file_kinds = list(kinds) if kinds is not None else ["photo"] * len(files)
    if len(file_kinds) != len(files):
        raise ValueError(f"calibration: {len(files)} files but {len(file_kinds)} kinds")
    pool = _CleanScores(score_fn, tail_size, cache)
    pool.add_files(list(zip(files, file_kinds)), variants_per_image, seed, progress)
    if generated > 0:
        pool.add_generated(generated, generated_variants, seed, len(files), progress)
    groups, group_kinds, tagged, failed, n_images = pool.groups, pool.kinds, pool.tagged, pool.failed, pool.n_images
    if not groups:
        raise ValueError("calibration: no readable clean pictures")
    scores = [s for g in groups for s in g]
    score_kinds = [k for g, k in zip(groups, group_kinds) for _ in g]
    empirical = {f"{fpr:g}": threshold_at_fpr(scores, fpr) for fpr in fprs}
    thresholds = {f"{fpr:g}": bootstrap_threshold(groups, fpr, confidence=confidence, seed=seed) for fpr in fprs}
    tail = [
        {"photo": photo, "edit": label, "score": round(score, 4)}
        for score, photo, label in sorted(tagged, reverse=True)[:tail_size]
    ]
    everything = np.asarray(scores)
    bounds = {
        name: fpr_upper_bound(int((everything > thr).sum()), everything.size, confidence)
        for name, thr in thresholds.items()
    }
    return Calibration(
        thresholds,
        n_images,
        len(scores),
        variants_per_image,
        data_name,
        failed,
        empirical,
        confidence,
        tail,
        rates_by_kind(scores, score_kinds, thresholds, confidence),
        bounds,
    )
