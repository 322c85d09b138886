import hashlib
import json
import shutil

import pytest
from PIL import Image

from tests.conftest import EXAMPLES, run_cli, synthetic_photo


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def inputs(tmp_path):
    d = tmp_path / "in"
    (d / "nested").mkdir(parents=True)
    synthetic_photo(1, 90, 70).save(d / "a.jpg", quality=95)
    synthetic_photo(2, 64, 200).convert("RGBA").save(d / "nested" / "b.png")
    return d


def test_protect_folder_and_scan_json(tmp_path, inputs, tiny_card):
    before = _digest(inputs)
    out = tmp_path / "out"
    r = run_cli("protect", inputs, "-o", out, "--model", tiny_card)
    assert r.returncode == 0, r.stderr
    assert _digest(inputs) == before
    assert Image.open(out / "a.jpg").size == (90, 70)
    b = Image.open(out / "nested" / "b.png")
    assert b.size == (64, 200) and b.mode == "RGBA"
    r = run_cli("scan", out, inputs / "a.jpg", "--json", "--model", tiny_card)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3
    assert all(set(row) == {"path", "protected", "score", "threshold"} for row in rows)


def test_protect_bad_file_does_not_stop_the_rest(tmp_path, inputs, tiny_card):
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (inputs / "empty.png").write_bytes(b"")
    r = run_cli("protect", inputs, "-o", tmp_path / "out", "--model", tiny_card)
    assert r.returncode == 1
    assert "broken.jpg" in r.stderr and "empty.png: empty file" in r.stderr
    assert (tmp_path / "out" / "a.jpg").exists() and (tmp_path / "out" / "nested" / "b.png").exists()


def test_protect_never_overwrites(tmp_path, inputs, tiny_card):
    before = _digest(inputs)
    r = run_cli("protect", inputs, "-o", inputs, "--model", tiny_card)
    assert r.returncode == 1 and "overwrite an input" in r.stderr
    assert _digest(inputs) == before
    out = tmp_path / "out"
    assert run_cli("protect", inputs / "a.jpg", "-o", out, "--model", tiny_card).returncode == 0
    r = run_cli("protect", inputs / "a.jpg", "-o", out, "--model", tiny_card)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert run_cli("protect", inputs / "a.jpg", "-o", out, "--model", tiny_card, "--overwrite").returncode == 0


def test_rgba_to_jpeg_is_a_clear_error(tmp_path, inputs, tiny_card):
    r = run_cli("protect", inputs / "nested" / "b.png", "-o", tmp_path / "o", "--format", "jpg", "--model", tiny_card)
    assert r.returncode == 1 and "alpha" in r.stderr


def test_scan_errors_and_usage(tmp_path, inputs, tiny_card):
    (inputs / "notes.png").write_text("not an image")
    r = run_cli("scan", inputs / "notes.png", inputs / "missing.jpg", inputs / "a.jpg", "--json", "--model", tiny_card)
    assert r.returncode == 1
    rows = {json.loads(line)["path"].split("/")[-1]: json.loads(line) for line in r.stdout.splitlines()}
    assert "not a recognised image" in rows["notes.png"]["error"]
    assert "missing.jpg" in rows and "error" in rows["missing.jpg"]
    assert "score" in rows["a.jpg"]
    r = run_cli("scan", inputs / "a.jpg", "--json", "--max-pixels", "1000", "--model", tiny_card)
    assert r.returncode == 1 and "over the limit" in json.loads(r.stdout)["error"]
    assert run_cli("scan", inputs / "a.jpg", "--fpr", "0.0042", "--model", tiny_card).returncode == 2
    assert run_cli("scan", inputs / "a.jpg", "--model", tmp_path / "nowhere").returncode == 2
    assert run_cli("scan", "--bogus-option", inputs / "a.jpg").returncode == 2
    assert run_cli("protect", inputs / "a.jpg").returncode == 2  # missing -o


def test_info(tiny_card):
    r = run_cli("info", tiny_card, "--json")
    assert r.returncode == 0
    card = json.loads(r.stdout)
    assert card["name"] == "tiny" and "0.001" in card["thresholds"]
    assert card["training"]["steps"] == 6 and card["calibration"]["n_negatives"] > 0
    assert run_cli("info", tiny_card).returncode == 0


def test_export_cli(tmp_path, tiny_run, photo_dir):
    r = run_cli("export", tiny_run, "--name", "t2", "--out", tmp_path / "card", "--calib-data", photo_dir,
                "--variants", "2", "--fpr", "0.1")
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "card" / "card.json").read_text())
    assert set(card["thresholds"]) == {"0.1", "0.001"}


def test_fail_on_protected_with_default_model(tmp_path):
    photo = EXAMPLES / "opencv-doc__orange.jpg"
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(photo, clean)
    assert run_cli("scan", clean, "--fail-on-protected").returncode == 0
    out = tmp_path / "stamped"
    assert run_cli("protect", clean, "-o", out).returncode == 0
    r = run_cli("scan", out, "--fail-on-protected", "--json")
    assert r.returncode == 3, r.stdout + r.stderr
    assert json.loads(r.stdout)["protected"] is True
