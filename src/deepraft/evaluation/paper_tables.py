"""``deepraft report``: the paper's three tables, our measured runs beside the published numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAPER_DETECTION: dict[str, float] = {"plain": 100.0, "smoothing": 100.0, "smoothing+aug": 99.98}
PAPER_IMPERCEPTIBILITY: dict[str, tuple[float, float]] = {"plain": (40.72, 0.9968), "robust": (32.84, 0.9758)}
PAPER_APGD_RS05: dict[int, float] = {2: 97.04, 4: 91.76, 8: 71.22, 16: 50.03, 32: 6.60}
PAPER: dict[str, Any] = {
    "detection": PAPER_DETECTION,
    "imperceptibility": PAPER_IMPERCEPTIBILITY,
    "apgd_rs05": PAPER_APGD_RS05,
}
"""Published DeepRAFT numbers (paper metric: mean of clean and stamped accuracy, in %)."""

Run = tuple[str, Path, dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]
"""(model name, folder, summary.json, certify.json, attack.json) of one measured model."""


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    p = Path(folder) / name
    return json.loads(p.read_text()) if p.exists() else None


def _mean(imp: dict[str, Any], key: str, digits: int) -> str:
    """The mean of one imperceptibility column, or n/a where the run did not measure it."""
    v = imp.get(key)
    return f"{v['mean']:.{digits}f}" if v else "n/a"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def _runs(folders: list[Path]) -> list[Run]:
    runs: list[Run] = []
    for f in folders:
        ev, cert, atk = _load(f, "summary.json"), _load(f, "certify.json"), _load(f, "attack.json")
        found = ev or cert or atk
        if not found:
            raise FileNotFoundError(f"{f}: no summary.json, certify.json or attack.json")
        runs.append((found["model"], f, ev, cert, atk))
    return runs


def build_report(folders: list[Path]) -> str:
    """The Markdown report of the eval / certify / attack folders (one per model)."""
    runs = _runs(folders)
    out = _detection(runs) + _imperceptibility(runs) + _adversarial(runs) + _certified(runs)
    return "\n".join([*out, ""])


def _detection(runs: list[Run]) -> list[str]:
    out = [
        "# deepraft report",
        "",
        (
            "Our runs (measured by `deepraft eval` / `certify` / `attack`) beside the numbers published for "
            "DeepRAFT. The paper's detection metric is the mean of clean and stamped accuracy at probability 0.5; "
            "ours is computed the same way, and the eval report adds the deployment numbers (TPR at a "
            "calibrated FPR)."
        ),
        "",
        "## 1. Detection (unmodified images)",
        "",
        "| model | paper acc. % | TPR @ calibrated FPR | clean FPR | ROC AUC |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k, v in PAPER_DETECTION.items():
        out.append(f"| DeepRAFT {k} (published) | {v:.2f} | n/a | n/a | n/a |")
    for name, _f, ev, _, _ in runs:
        if ev:
            row = next((r for r in ev["conditions"] if r["edit"] == "none"), None)
            if row:
                out.append(
                    f"| {name} (ours, {ev['n_photos']} photos) | {_pct(row['paper_accuracy'])} | "
                    f"{row['tpr_at_calibrated']:.3f} | {row['fpr_at_calibrated']:.4f} | {row['roc_auc']:.4f} |"
                )
    return out


def _imperceptibility(runs: list[Run]) -> list[str]:
    out = [
        "",
        "## 2. Imperceptibility",
        "",
        (
            "Ours on full-resolution photos; the JPEG rows are the same photos re-saved at that quality (Pillow, "
            "4:2:0), for scale. SSIMULACRA 2: higher is closer (90: visually lossless); Butteraugli max-norm: lower "
            "is closer (below 1.0: looks the same)."
        ),
        "",
        "| model | PSNR dB | SSIM | MS-SSIM | SSIMULACRA 2 | Butteraugli max |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k, (p, s) in PAPER_IMPERCEPTIBILITY.items():
        out.append(f"| DeepRAFT {k} (published) | {p:.2f} | {s:.4f} | n/a | n/a | n/a |")
    for name, _f, ev, _, _ in runs:
        if ev:
            imp = ev["imperceptibility"]
            out.append(
                f"| {name} (ours) | {_mean(imp, 'psnr', 2)} | {_mean(imp, 'ssim', 4)} | "
                f"{_mean(imp, 'ms_ssim', 4)} | {_mean(imp, 'ssimulacra2', 2)} | "
                f"{_mean(imp, 'butteraugli_max', 3)} |"
            )
            for q in ev.get("jpeg_references", []):
                out.append(
                    f"| JPEG q{q} of the same {ev['n_photos']} photos | {_mean(imp, f'psnr_jpeg{q}', 2)} | "
                    f"{_mean(imp, f'ssim_jpeg{q}', 4)} | n/a | {_mean(imp, f'ssimulacra2_jpeg{q}', 2)} | "
                    f"{_mean(imp, f'butteraugli_max_jpeg{q}', 3)} |"
                )
    return out


def _adversarial(runs: list[Run]) -> list[str]:
    eps_list = sorted(PAPER_APGD_RS05)
    out = [
        "",
        "## 3. Adversarial: APGD-CE removal, robust accuracy % at L-inf eps/255",
        "",
        "| model | " + " | ".join(str(e) for e in eps_list) + " |",
        "|---" * (len(eps_list) + 1) + "|",
        "| DeepRAFT RS sigma=0.5 (published, base scanner attacked) | "
        + " | ".join(f"{PAPER_APGD_RS05[e]:.2f}" for e in eps_list)
        + " |",
    ]
    for name, _f, _, _, atk in runs:
        if atk:
            got = {
                r["eps_255"]: r["robust_accuracy"]
                for r in atk["results"]
                if r["attack"] == "apgd-ce" and r["goal"] == "removal" and r["norm"] == "Linf"
            }
            mode = atk.get("mode", "cohen" if atk["sigma"] > 0 else "undefended")
            kind = {
                "cohen": f"Cohen smoothed, sigma {atk['sigma']:g}, EOT",
                "smoothed score": f"deployed smoothed score, sigma {atk['sigma']:g}, exact gradients",
            }.get(mode, "undefended")
            out.append(
                f"| {name} (ours, {kind}, {atk['n_photos']} photos) | "
                + " | ".join(_pct(got.get(float(e))) for e in eps_list)
                + " |"
            )
    return out


def _certified(runs: list[Run]) -> list[str]:
    certs = [(name, cert) for name, _, _, cert, _ in runs if cert]
    out: list[str] = []
    if certs:
        out += [
            "",
            "## Certified accuracy (randomized smoothing, Cohen et al.)",
            "",
            "| model | sigma | n | abstain | stamped @0 | stamped @0.25 | clean @0 | clean @0.25 |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, c in certs:
            r = c["curve"]["radius"]
            i0, i25 = r.index(0.0), r.index(0.25)
            out.append(
                f"| {name} | {c['sigma']:g} | {c['settings']['n']} | {c['abstain_rate']:.2f} | "
                f"{c['curve']['stamped'][i0]:.2f} | {c['curve']['stamped'][i25]:.2f} | "
                f"{c['curve']['clean'][i0]:.2f} | {c['curve']['clean'][i25]:.2f} |"
            )
    return out
