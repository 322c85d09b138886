"""Archive scans on Ray Data: a local Ray cluster started by the command gives the same decisions
as ``deepraft scan``, keeps going past bad files, and writes Parquet or JSON lines."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

import deepraft
from deepraft.integrations.ray_scan import write_results
from tests.conftest import EXAMPLES, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    photos = sorted(EXAMPLES.glob("*.jpg"))[:4]
    for p in photos:
        shutil.copy2(p, folder / p.name)
    stamper = deepraft.load()
    stamper.protect_file(photos[0], folder / "stamped.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def _plain_scan(folder) -> dict[str, dict]:
    r = run_cli("scan", folder, "--json")
    assert r.returncode == 1, r.stderr  # the broken file
    return {row["path"]: row for row in map(json.loads, r.stdout.splitlines())}


def test_ray_scan_decides_as_deepraft_scan(archive, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"file://{archive / 'stamped.jpg'}\n{tmp_path / 'missing.jpg'}\n")
    out = tmp_path / "results.parquet"
    r = run_cli("archive-scan", archive, "--from-list", listing, "--out", out, "--actors", "2", "--batch-size", "2")
    assert r.returncode == 1, r.stderr[-3000:]  # a broken and a missing file: reported, the rest scanned
    rows = pq.read_table(out).to_pylist()
    plain = _plain_scan(archive)
    by_path = {row["path"]: row for row in rows}
    for path, want in plain.items():
        got = by_path[path]
        if "error" in want:
            assert got["error"] and got["protected"] is None
        else:
            assert got["protected"] == want["protected"] and got["score"] == pytest.approx(want["score"], abs=1e-3)
    assert by_path[str(archive / "stamped.jpg")]["protected"] is True
    uri = by_path[f"file://{archive / 'stamped.jpg'}"]
    assert uri["protected"] is True and uri["score"] == pytest.approx(by_path[str(archive / "stamped.jpg")]["score"])
    assert "cannot read" in by_path[str(tmp_path / "missing.jpg")]["error"]
    assert [row["path"] for row in rows][-2:] == [f"file://{archive / 'stamped.jpg'}", str(tmp_path / "missing.jpg")]


def test_results_are_written_as_json_lines_or_parquet(tmp_path):
    rows = [
        {"path": "a.jpg", "protected": True, "score": 9.5, "threshold": 1.86, "error": None},
        {
            "path": "b.jpg",
            "protected": None,
            "score": None,
            "threshold": None,
            "error": "b.jpg: unreadable",
        },
    ]
    lines = write_results(rows, tmp_path / "r.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"path": "a.jpg", "protected": True, "score": 9.5, "threshold": 1.86},
        {"path": "b.jpg", "error": "b.jpg: unreadable"},
    ]
    assert pq.read_table(write_results(rows, tmp_path / "r.parquet")).to_pylist() == rows
