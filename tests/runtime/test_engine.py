"""Scan engines: ONNX Runtime reads what PyTorch reads."""

import pytest
import torch

from deepraft.core.config import ModelConfig
from deepraft.models import build_model
from deepraft.runtime.engine import OnnxRead, resolve_engine

pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency")


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
        {"scanner_kwargs": {"antialias": True, "symmetric": True}},
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

    def broken(model):
        raise RuntimeError("exporter missing")

    monkeypatch.setattr(api, "OnnxRead", broken)
    with pytest.warns(UserWarning, match="onnxruntime unavailable .exporter missing.; scanning with torch"):
        st = deepraft.load(tiny_card, device="cpu")
    assert st.engine == "torch" and st._read is None
    with pytest.raises(RuntimeError, match="exporter missing"):
        deepraft.load(tiny_card, device="cpu", engine="onnxruntime")
