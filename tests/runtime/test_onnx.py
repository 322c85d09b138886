"""ONNX export: parity with PyTorch through onnxruntime."""

import json

import numpy as np
import onnxruntime as ort  # a core dependency: its absence fails, it does not skip
import torch

from tests.conftest import run_cli


def test_onnx_parity(tmp_path, tiny_card, tiny_stamper):
    r = run_cli("export", tiny_card, "--onnx", tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "onnx.json").read_text())
    s = meta["work_size"]
    assert s == tiny_stamper.work_size and "0.001" in meta["thresholds"]
    x = torch.rand(3, 3, s, s)
    with torch.no_grad():
        ref_res = tiny_stamper.model.residual(x).numpy()
        ref_score = tiny_stamper.model.scanner(x).numpy()
    enc = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    scan = ort.InferenceSession(str(tmp_path / "scanner.onnx"), providers=["CPUExecutionProvider"])
    res = enc.run(None, {"work": x.numpy()})[0]
    score = scan.run(None, {"work": x.numpy()})[0]
    assert res.shape == ref_res.shape and score.shape == (3,)
    assert np.abs(res - ref_res).max() <= 1e-4 * max(1.0, np.abs(ref_res).max())
    assert np.abs(score - ref_score).max() < 1e-3


def test_export_leaves_the_callers_model_alone(tmp_path, tiny_stamper):
    """The stamper keeps its own model object, parameters and mode (export works on a copy)."""
    from deepraft.runtime.graph_export import export_onnx

    model = tiny_stamper.model
    params = {k: (p.data_ptr(), p.device) for k, p in model.named_parameters()}
    model.train()
    try:
        paths = export_onnx(tiny_stamper, tmp_path)
        assert tiny_stamper.model is model and model.training  # the old export switched it to eval mode
        assert {k: (p.data_ptr(), p.device) for k, p in model.named_parameters()} == params
    finally:
        model.eval()
    assert [p.name for p in paths] == ["encoder.onnx", "scanner.onnx", "onnx.json"]
    assert json.loads((tmp_path / "onnx.json").read_text())["usage"].startswith("A client squashes")
