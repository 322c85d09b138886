"""Scan engines: what runs the scanner's read when :class:`deepraft.api.Stamper` scans.

``torch`` runs the model as it is (any device; what training, attacks and certification use).
``onnxruntime`` runs the same read, exported in memory to the ONNX graph that
``deepraft export --onnx`` writes as ``scanner.onnx``, through ONNX Runtime on the CPU: the
same logits to about 1e-5, in about half the time of PyTorch's CPU kernels on this scanner
(``benchmarks/speed.py`` records which engine it measured). ``auto`` takes ``onnxruntime`` on a
CPU where the package imports, else ``torch``.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import warnings
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from .models import StampModel


class ScannerRead(nn.Module):
    """:meth:`StampModel.read` of ``model`` as a module (what the scanner graph holds)."""

    def __init__(self, model: StampModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, work: torch.Tensor) -> torch.Tensor:
        return self.model.read(work)


def export_copy(model: StampModel) -> StampModel:
    """A CPU copy of ``model`` in eval mode to export: the caller's model keeps its device and mode."""
    return copy.deepcopy(model).to("cpu").eval()


def export_graph(module: nn.Module, dest: str | BinaryIO, out_name: str, size: int, area: bool, opset: int) -> None:
    """Export ``module`` (work -> ``out_name``) as an ONNX graph to ``dest`` (a path or a
    binary stream): batch dynamic, and height and width too for ``area`` working copies (the
    example has ``size`` rows and ``size`` + 8 columns so that the two axes stay distinct)."""
    g = torch.Generator().manual_seed(0)  # a local generator: exporting leaves torch's global one alone
    example = torch.rand(1, 3, size, size + 8 if area else size, generator=g)
    axes = {0: "batch", 2: "height", 3: "width"} if area else {0: "batch"}
    out_axes = axes if out_name == "residual" else {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            dest,  # type: ignore[arg-type]  # the TorchScript exporter writes to a stream too
            input_names=["work"],
            output_names=[out_name],
            dynamic_axes={"work": axes, out_name: out_axes},
            opset_version=opset,
            dynamo=False,
        )


def scanner_graph(model: StampModel, opset: int = 17) -> bytes:
    """The scanner's read (:meth:`StampModel.read`: working copies -> logits, the transposed
    read included) as an ONNX graph in memory, the graph ``scanner.onnx`` holds; any height
    and width, whatever the working-copy mode (the scan reads several scales). ``model`` is
    left as it was."""
    buf = io.BytesIO()
    export_graph(ScannerRead(export_copy(model)), buf, "score", model.cfg.work_size, True, opset)
    return buf.getvalue()


ENGINES = ("auto", "torch", "onnxruntime")


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def resolve_engine(engine: str, device: torch.device) -> str:
    """The engine ``engine`` stands for on ``device``; ValueError for an unknown name or
    ``onnxruntime`` anywhere but on the CPU (or without the package)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown scan engine {engine!r}; known: {', '.join(ENGINES)}")
    if engine == "auto":
        return "onnxruntime" if device.type == "cpu" and onnxruntime_available() else "torch"
    if engine == "onnxruntime":
        if device.type != "cpu":
            raise ValueError(f"scan engine onnxruntime runs on the CPU, not on {device}")
        if not onnxruntime_available():
            raise ValueError("scan engine onnxruntime: the onnxruntime package is not installed")
    return engine


class OnnxRead:
    """:meth:`StampModel.read` of ``model`` through an ONNX Runtime session on the CPU: a
    callable from (B,3,h,w) working copies to (B,) logits, as :meth:`StampModel.score` takes
    for ``read``. The graph is exported from the model's weights as they are now, and the
    session made, here (about half a second; the exporter's notes about its own constant
    folding are silenced, so build it before serving threads start). A session runs calls from
    several threads at once. ``threads``: ONNX Runtime's intra-op threads (default: torch's)."""

    def __init__(self, model: StampModel, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        # no busy-waiting between calls: spinning threads would take the cores from the PyTorch
        # work that comes between scans (a protect, a decode), and from other processes
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            graph = scanner_graph(model)
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def __call__(self, work: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(work.detach().to("cpu", torch.float32).numpy())
        (logits,) = self.session.run(None, {"work": x})
        return torch.from_numpy(logits).to(work.device)
