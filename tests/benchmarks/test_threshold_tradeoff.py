"""benchmarks/threshold_tradeoff.py: TPR of an eval folder's stamped samples at several thresholds,
beside a baseline folder at its own threshold (known answers on hand-made folders)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.benchmarks import benchmark_module


def _module():
    return benchmark_module("threshold_tradeoff")


def _eval_folder(folder: Path, threshold: float, scores: dict[str, list[float]], gz: bool) -> Path:
    folder.mkdir()
    lines = ["photo,edit,strength,variant,kind,score"]
    for label, values in scores.items():
        edit, _, strength = label.partition(" ")
        lines += [f"a.png,{edit},{strength},{i},stamped,{v}" for i, v in enumerate(values)]
        lines += [f"a.png,{edit},{strength},{i},clean,-5" for i in range(len(values))]
    text = "\n".join(lines) + "\n"
    if gz:
        (folder / "samples.csv.gz").write_bytes(gzip.compress(text.encode()))
    else:
        (folder / "samples.csv").write_text(text)
    (folder / "summary.json").write_text(json.dumps({"threshold": threshold}))
    return folder


def test_tradeoff_counts_stamped_samples_above_each_threshold(tmp_path):
    tt = _module()
    new = _eval_folder(tmp_path / "new", 6.0, {"none": [1, 3, 5, 7], "crop 0.5": [0, 0, 2, 9]}, gz=False)
    old = _eval_folder(tmp_path / "old", 1.5, {"none": [2, 2, 2, 1], "rotate 10": [9, 9, 9, 9]}, gz=True)
    res = tt.tradeoff(new, [2.0, 6.0], old)
    rows = {r["condition"]: r for r in res["conditions"]}
    assert rows["none"]["tpr"] == {"2": 0.75, "6": 0.25} and rows["crop 0.5"]["tpr"] == {"2": 0.25, "6": 0.25}
    assert rows["none"]["baseline_tpr"] == 0.75 and "baseline_tpr" not in rows["crop 0.5"]
    assert res["baseline_threshold"] == 1.5
    text = tt.markdown(res)
    assert "| none | 0.750 | 0.750 | 0.250 | 4.00 (2.00) |" in text and "| crop 0.5 | - |" in text
