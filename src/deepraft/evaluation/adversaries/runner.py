"""``deepraft attack``: adversarial removal and forging attacks (an attacker's, not the evaluation's
benign edits nor training's augmentations) over a grid of budgets, as a table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.imageio import read_images
from deepraft.evaluation.adversaries.adversarial import QUERY_ATTACKS, AttackSanityError, run_attack

LINF_EPS = (2, 4, 8, 16, 32)
L2_EPS = (0.5,)


@dataclass
class AttackSettings:
    attacks: tuple[str, ...] = ("apgd-ce", "square", "autoattack")
    goals: tuple[str, ...] = ("removal", "forging")
    linf_eps: tuple[float, ...] = LINF_EPS
    """L-inf budgets in 1/255 units."""
    l2_eps: tuple[float, ...] = L2_EPS
    """L2 budgets in [0,1] units on the scan copy."""
    steps: int = 50
    eot: int = 8
    n_queries: int = 1000
    smooth_n: int = 200
    max_photos: int | None = 30
    sigma: float | None = None
    """Smoothing sigma of the attacked scanner (default: the model's training sigma; 0: base scanner)."""
    seed: int = 0

    @classmethod
    def quick(cls) -> AttackSettings:
        return cls(
            attacks=("apgd-ce",),
            goals=("removal",),
            linf_eps=(2, 8),
            l2_eps=(),
            steps=10,
            eot=2,
            smooth_n=50,
            max_photos=4,
        )


def check_attack_breaks_base(
    score_fn, stamped: torch.Tensor, threshold: float, eps_255: tuple[float, ...] = (8, 32), max_robust: float = 0.1
) -> dict:
    """APGD-CE must remove the stamp from nearly every image for the undefended (noise-free)
    scanner, at 8/255 (a plain model) or at the latest at 32/255 (a model whose stamp is strong
    enough to resist small budgets even without its smoothing); if not, the attack is broken
    and every number it gives is suspect."""
    tried = []
    for e in eps_255:
        with torch.enable_grad():
            r = run_attack(score_fn, stamped, "removal", "apgd-ce", e / 255, threshold, "Linf", 0.0, steps=50)
        tried.append({"eps_255": e, "robust_accuracy": r.robust_accuracy})
        if r.robust_accuracy <= max_robust:
            return {"check": "apgd-ce removal on the undefended (noise-free) scanner", "tried": tried}
    raise AttackSanityError(
        f"APGD-CE left {r.robust_accuracy:.0%} of stamps on the undefended scanner even at "
        f"{eps_255[-1]:g}/255 (expected <= {max_robust:.0%}): the attack is not working"
    )


@dataclass(frozen=True)
class _Target:
    """What the attacks aim at: the score they follow, the smoothing they add themselves, and how
    the summary names it."""

    score_fn: Callable[[torch.Tensor], torch.Tensor]
    sigma: float
    attack_sigma: float
    mode: str
    description: str
    query_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    """The same score for attacks that only query it (Square): run by the stamper's scan engine
    (ONNX Runtime on a CPU, about half the time); ``None``: ``score_fn``."""


def attack_target(stamper: Any, settings: AttackSettings) -> _Target:
    """The deployed decision when the model averages its scanner over fixed noise draws (and no
    sigma is asked for); otherwise the scanner, smoothed by Cohen's noise when sigma > 0."""
    mcfg = stamper.card.model
    if settings.sigma is None and mcfg.smoothing_std > 0 and mcfg.scan_draws > 0:
        # the scanner averaged over fixed noise draws, attacked with its exact gradient (the
        # expectation over every draw it uses: EOT without sampling error); the noise lives inside
        # score_fn, so run_attack adds none
        description = (
            f"the deployed smoothed score (scanner logit averaged over {mcfg.scan_draws} fixed draws of "
            f"N(0, {mcfg.smoothing_std:g}^2)), exact gradients"
        )
        return _Target(stamper.model.score, mcfg.smoothing_std, 0.0, "smoothed score", description)
    sigma = mcfg.smoothing_std if settings.sigma is None else settings.sigma
    base = base_score(stamper)
    if sigma > 0:
        description = (
            f"the smoothed classifier of Cohen et al. (sigma {sigma:g}) around {_describe_base(mcfg)}: EOT "
            f"over {settings.eot} noise draws per gradient, judged by PREDICT with {settings.smooth_n} draws"
        )
        return _Target(base, sigma, sigma, "cohen", description)
    copies = getattr(stamper, "copies", None)  # the stamper's scan engine, where it has one
    query_fn = partial(copies.score, smoothed=False) if copies is not None else None
    return _Target(base, sigma, sigma, "undefended", _describe_base(mcfg), query_fn)


def base_score(stamper: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The deployed score of scan copies without smoothing noise: the scanner, and for a model
    that reads several scales or the transpose too, the largest of those reads (what
    :meth:`Stamper.scan` decides on), so an attack must get past every one of them."""
    return partial(stamper.model.score, smoothed=False)


def _describe_base(mcfg: Any) -> str:
    reads = []
    if mcfg.scan_transpose:
        reads.append("its transpose")
    if len(mcfg.scan_scales) > 1:
        reads.append("scales " + " and ".join(f"{s:g}" for s in mcfg.scan_scales))
    return "the scanner" + (f" (the larger score of the copy, {', '.join(reads)})" if reads else "")


def attack_jobs(settings: AttackSettings) -> list[tuple[str, str, str, float]]:
    """(attack, goal, norm, eps) of every run: the L-inf budgets (eps in [0, 1] units), then L2."""
    jobs = [(a, g, "Linf", e / 255.0) for a in settings.attacks for g in settings.goals for e in settings.linf_eps]
    jobs += [(a, g, "L2", e) for a in settings.attacks for g in settings.goals for e in settings.l2_eps]
    return jobs


def run_attacks(
    stamper: Any,
    files: Sequence[Path],
    out_dir: Path,
    settings: AttackSettings,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict:
    """Every job of :func:`attack_jobs` on the stamped (removal) or clean (forging) working copies
    of the photos, after the sanity check; writes ``attack.json`` and the robust-accuracy plot."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = list(files)[: settings.max_photos] if settings.max_photos else list(files)
    failed: list[str] = []
    pics = [p for _, p in read_images(files, failed, stamper.max_pixels)]
    if not pics:
        raise ValueError("attack: no readable photos")
    stamped = stamper.copies.scan_batch(stamper.protect_batch(pics))
    clean = stamper.copies.scan_batch(pics)
    thr = stamper.card.threshold()
    target = attack_target(stamper, settings)
    sanity = check_attack_breaks_base(base_score(stamper), stamped, thr)
    jobs = attack_jobs(settings)
    rows = []
    for attack, goal, norm, eps in progress(jobs) if progress else jobs:
        x = stamped if goal == "removal" else clean
        fn = target.query_fn if attack in QUERY_ATTACKS and target.query_fn is not None else target.score_fn
        with torch.enable_grad():
            r = run_attack(
                fn,
                x,
                goal,
                attack,
                eps,
                thr,
                norm,
                target.attack_sigma,
                settings.eot,
                settings.steps,
                settings.n_queries,
                settings.smooth_n,
                seed=settings.seed,
            )
        rows.append({**asdict(r), "eps_255": round(eps * 255, 3) if norm == "Linf" else None})
    summary = {
        "model": stamper.card.name,
        "sigma": target.sigma,
        "mode": target.mode,
        "target": target.description,
        "threshold": thr,
        "n_photos": len(pics),
        "failed": failed,
        "settings": asdict(settings),
        "sanity": sanity,
        "results": rows,
        "space": f"perturbations of the scan copy (a working copy at {stamper.scan_size}^2 pixels, "
        f"{tuple(stamped.shape[-2:])} in this batch)",
    }
    atomic_write_bytes(out_dir / "attack.json", (json.dumps(summary, indent=2) + "\n").encode())
    plot_robust(out_dir, summary)
    return summary


def plot_robust(out_dir: Path, summary: dict) -> Path:
    from deepraft.evaluation.plotting import line_plot

    series: dict[str, list[tuple[float, float]]] = {}
    for r in summary["results"]:
        if r["norm"] == "Linf":
            series.setdefault(f"{r['attack']} {r['goal']}", []).append((r["eps_255"], r["robust_accuracy"]))
    curves = {k: ([p[0] for p in sorted(v)], [p[1] for p in sorted(v)]) for k, v in series.items()}
    return line_plot(
        Path(out_dir) / "robust_accuracy.png",
        curves,
        "L-inf budget (x/255)",
        "robust accuracy",
        f"robust accuracy vs budget ({summary['mode']}, sigma {summary['sigma']:g})",
    )
