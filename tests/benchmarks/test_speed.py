"""The speed benchmark (benchmarks/speed.py) runs end to end and writes its tables (numbers
are not judged here: timings belong to the benchmark, not to tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_speed_benchmark_writes_tables(tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "speed.py"),
            "--sizes",
            "256px",
            "--bulk",
            "6",
            "--workers",
            "1",
            "--repeats",
            "1",
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    res = json.loads((tmp_path / "speed_cpu.json").read_text())
    assert res["model"] == "default" and res["device"] == "cpu"
    (row,) = res["sizes"]
    assert (row["size"], row["width"], row["height"]) == ("256px", 256, 256)
    assert row["protect_total_s"] >= row["stamp_s"] > 0 and row["scan_total_s"] > 0 and row["scan_pil_s"] > 0
    assert res["bulk"]["images"] == 6 and res["scanner"]["images_per_s"] > 0
    md = (tmp_path / "speed_cpu.md").read_text()
    assert "| 256px (256x256) |" in md and "Bulk scan: 6 1MP JPEG files" in md


def test_a_card_folder_given_as_a_path_names_the_tables_by_its_folder(tmp_path, tiny_area_card):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--model", str(tiny_area_card)]
    cmd += ["--sizes", "256px", "--bulk", "0", "--repeats", "1", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert (tmp_path / f"speed_cpu_{tiny_area_card.name}.json").is_file()
    assert (tmp_path / f"speed_cpu_{tiny_area_card.name}.md").is_file()
