"""Scan engines: what runs the scanner's read when :class:`deepraft.runtime.stamper.Stamper` scans.

``torch`` runs the model as it is (any device; what training, attacks and certification use).
``onnxruntime`` runs the same read as an ONNX graph through ONNX Runtime on the CPU: the same
logits to about 1e-5, in about half the time of PyTorch's CPU kernels on this scanner
(``benchmarks/speed.py`` records which engine it measured). ``auto`` takes ``onnxruntime`` on a
CPU where the package imports, else ``torch``.

The graph comes from the model card when the card ships one (``scanner.onnx``, written by
:func:`write_scan_graph`; its metadata names the SHA-256 of the weights it was exported from,
so a graph of other weights is never used), else it is exported in memory from the weights,
which needs the ``onnx`` package (the ``onnx`` extra). A plain install scans the bundled model
through its shipped graph: ONNX Runtime alone.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from deepraft.core.card import sha256_file
from deepraft.core.fileio import atomic_write_bytes
from deepraft.models import StampModel


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


GRAPH_FILE = "scanner.onnx"
"""The scan graph a model card may ship beside its weights."""

WEIGHTS_KEY = "deepraft_weights_sha256"
"""Metadata key of a shipped scan graph: the SHA-256 of the weights file it was exported from."""


def scanner_graph(model: StampModel, opset: int = 17, weights_sha256: str | None = None) -> bytes:
    """The scanner's read (:meth:`StampModel.read`: working copies -> logits, the transposed
    read included) as an ONNX graph in memory, the graph ``scanner.onnx`` holds; any height
    and width, whatever the working-copy mode (the scan reads several scales). With
    ``weights_sha256`` the graph's metadata records it (:data:`WEIGHTS_KEY`). ``model`` is left
    as it was. Needs the ``onnx`` package."""
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's notes about its own constant folding
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        export_graph(ScannerRead(export_copy(model)), buf, "score", model.cfg.work_size, True, opset)
    if weights_sha256 is None:
        return buf.getvalue()
    import onnx

    proto = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(proto, {WEIGHTS_KEY: weights_sha256})
    return proto.SerializeToString()


def write_scan_graph(model: StampModel, weights_path: Path, opset: int = 17) -> Path:
    """Write :data:`GRAPH_FILE` beside ``weights_path`` (a card's or a run's weights file, which
    ``model`` holds): the scan graph a plain install runs, tied to those weights by their hash."""
    dest = Path(weights_path).with_name(GRAPH_FILE)
    atomic_write_bytes(dest, scanner_graph(model, opset, sha256_file(weights_path)))
    return dest


def shipped_graph(weights_path: Path) -> bytes | None:
    """The :data:`GRAPH_FILE` beside ``weights_path``, or None where there is none."""
    path = Path(weights_path).with_name(GRAPH_FILE)
    return path.read_bytes() if path.is_file() else None


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
    for ``read``. ``graph``: a shipped scan graph, used when its metadata names
    ``weights_sha256`` (the hash of the weights ``model`` was loaded from); otherwise the graph
    is exported here from the model's weights as they are now (about half a second, needs the
    ``onnx`` package; build it before serving threads start). ``source`` says which it was:
    ``"shipped"`` or ``"exported"``. A session runs calls from several threads at once.
    ``threads``: ONNX Runtime's intra-op threads (default: torch's)."""

    def __init__(
        self,
        model: StampModel,
        threads: int | None = None,
        graph: bytes | None = None,
        weights_sha256: str | None = None,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        # no busy-waiting between calls: spinning threads would take the cores from the PyTorch
        # work that comes between scans (a protect, a decode), and from other processes
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = None
        self.source = "shipped"
        if graph is not None and weights_sha256 is not None:
            session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
            if session.get_modelmeta().custom_metadata_map.get(WEIGHTS_KEY) != weights_sha256:
                session = None  # a graph of other weights is never used
        if session is None:
            session = ort.InferenceSession(scanner_graph(model), opts, providers=["CPUExecutionProvider"])
            self.source = "exported"
        self.session = session

    def __call__(self, work: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(work.detach().to("cpu", torch.float32).numpy())
        (logits,) = self.session.run(None, {"work": x})
        return torch.from_numpy(logits).to(work.device)
