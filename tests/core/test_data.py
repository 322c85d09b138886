"""Data folders: manifests and the split of packages into train, val and test."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepraft.core.data import SPLITS, package_splits, read_manifest, split_files

SHARED_NONPHOTO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nonphoto"


def _manifest(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["file\tkind\tpackage\tlicence"] + [f"{f}\t{k}\t{p}\tMIT" for f, k, p in rows]
    (tmp_path / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_packages_are_dealt_largest_first_within_each_kind(tmp_path):
    rows = [(f"a{i}.png", "document", "big") for i in range(5)]
    rows += [(f"b{i}.png", "document", "mid") for i in range(3)]
    rows += [(f"c{i}.png", "document", "small") for i in range(2)]
    rows += [("d.png", "document", "tiny"), ("e.png", "screenshot", "tiny")]  # tiny: mostly... a tie
    rows += [(f"s{i}.png", "screenshot", "app") for i in range(4)]
    splits = package_splits(read_manifest(_manifest(tmp_path, rows)))
    assert splits["big"] == "test" and splits["mid"] == "train" and splits["small"] == "val"
    assert splits["app"] == "test"  # the largest screenshot package
    assert splits["tiny"] in SPLITS


def test_split_files_keep_each_package_whole(tmp_path):
    rows = [(f"{p}{i}.png", "illustration", p) for p in "abcdefg" for i in range(len(p) + ord(p) % 3)]
    folder = _manifest(tmp_path, rows)
    seen: dict[str, str] = {}
    for split in SPLITS:
        for path, kind in split_files(folder, split):
            assert kind == "illustration" and seen.setdefault(path.name[0], split) == split
    assert len(seen) == 7 and set(seen.values()) == set(SPLITS)


def test_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="MANIFEST.tsv: no manifest"):
        read_manifest(tmp_path)
    (tmp_path / "MANIFEST.tsv").write_text("file\tkind\nx.png\tdocument\n")
    with pytest.raises(ValueError, match="missing column"):
        read_manifest(tmp_path)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        split_files(tmp_path, "dev")


def test_the_shared_non_photos_have_every_kind_in_the_test_split():
    if not (SHARED_NONPHOTO / "MANIFEST.tsv").is_file():
        pytest.skip(f"{SHARED_NONPHOTO} is not there")
    test = {k for _, k in split_files(SHARED_NONPHOTO, "test")}
    assert {"screenshot", "document", "diagram", "illustration"} <= test
    packages = {split: {p.name.split("__")[0] for p, _ in split_files(SHARED_NONPHOTO, split)} for split in SPLITS}
    assert not (packages["train"] & packages["test"]) and not (packages["val"] & packages["test"])
