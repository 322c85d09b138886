"""What a threshold costs in TPR: the share of stamped samples above each of several thresholds,
per condition of an eval folder, beside a baseline eval folder at its own card threshold.

    python benchmarks/threshold_tradeoff.py EVAL_DIR --thresholds 2.38 3.69 4.79 6.09
        [--baseline reports/default] [--out FILE.md]

Both folders are ``deepraft eval`` outputs (``samples.csv`` or ``samples.csv.gz`` and
``summary.json``); conditions are matched by label (those the baseline lacks show "-"). Used to
weigh a scanner whose calibrated threshold moved (a scanner fine-tuned on non-photos, calibrated
on photos and non-photos) against the bundled one, without re-running the eval per threshold.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout


def stamped_scores(folder: Path) -> dict[str, list[float]]:
    """Label -> stamped scores of an eval folder's samples, in the order the conditions came."""
    path = folder / "samples.csv"
    opener = open if path.exists() else gzip.open
    path = path if path.exists() else folder / "samples.csv.gz"
    out: dict[str, list[float]] = defaultdict(list)
    with opener(path, "rt") as fh:
        for r in csv.DictReader(fh):
            if r["kind"] == "stamped":
                out[r["edit"] if not r["strength"] else f"{r['edit']} {r['strength']}"].append(float(r["score"]))
    return out


def tradeoff(folder: Path, thresholds: list[float], baseline: Path | None) -> dict:
    new = stamped_scores(folder)
    old = stamped_scores(baseline) if baseline is not None else {}
    base_thr = json.loads((baseline / "summary.json").read_text())["threshold"] if baseline is not None else None
    rows = []
    for label, scores in new.items():
        s = np.asarray(scores)
        row: dict = {"condition": label, "n": int(s.size), "median": float(np.median(s))}
        row["tpr"] = {f"{t:g}": float((s > t).mean()) for t in thresholds}
        if label in old:
            o = np.asarray(old[label])
            row["baseline_tpr"], row["baseline_median"] = float((o > base_thr).mean()), float(np.median(o))
        rows.append(row)
    return {"eval": str(folder), "baseline": str(baseline) if baseline else None, "baseline_threshold": base_thr,
            "thresholds": thresholds, "conditions": rows}  # fmt: skip


def markdown(res: dict) -> str:
    thr = res["thresholds"]
    head = f"| condition | baseline TPR at {res['baseline_threshold']:.2f} | " if res["baseline"] else "| condition | "
    beside = f", beside `{res['baseline']}` at its own" if res["baseline"] else ""
    lines = [
        f"TPR of `{res['eval']}` at each threshold{beside}",
        "",
        head + " | ".join(f"TPR at {t:g}" for t in thr) + " | median stamped score (baseline) |",
        "|---" * (len(thr) + (3 if res["baseline"] else 2)) + "|",
    ]
    for r in res["conditions"]:
        base = f"{r['baseline_tpr']:.3f} | " if "baseline_tpr" in r else ("- | " if res["baseline"] else "")
        med = f"{r['median']:.2f}" + (f" ({r['baseline_median']:.2f})" if "baseline_median" in r else "")
        tprs = " | ".join(f"{r['tpr'][f'{t:g}']:.3f}" for t in thr)
        lines.append(f"| {r['condition']} | {base}{tprs} | {med} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("--thresholds", type=float, nargs="+", required=True)
    ap.add_argument("--baseline", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="Markdown file to write (and FILE.json beside it)")
    args = ap.parse_args()
    res = tradeoff(args.eval_dir, args.thresholds, args.baseline)
    text = markdown(res)
    print(text)
    if args.out is not None:
        heldout.write_json(args.out.with_suffix(".json"), res)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
