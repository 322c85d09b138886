"""Archive scans on Ray Data: ``deepraft scan PATH... --runner ray --out results.parquet``.

The pictures (local paths, ``file://`` URIs, or any URI pyarrow's file systems open, such as
``s3://``) are spread over Ray Data ``map_batches`` actors; each actor loads the model once and
scans its batches with the ONNX Runtime engine through the fast file path (reduced-scale JPEG
decoding), one intra-op thread each so that actors fill the cores side by side. A file that
cannot be read or decoded gives a row with its ``error`` and the rest go on. The results (path,
protected, score, threshold, error) are written as Parquet or JSON lines, atomically, in input
order.

Needs the ``ray`` extra (``pip install 'deepraft[ray]'``). Without an address Ray starts a local
cluster on this machine; ``address`` joins an existing one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepraft.core.fileio import atomic_write_bytes

COLUMNS = ("path", "protected", "score", "threshold", "error")


@dataclass(frozen=True)
class BulkSettings:
    model: str = "default"
    fpr: float | None = None
    batch_size: int = 16
    actors: int = 2
    max_pixels: int | None = 64_000_000


def read_bytes(path: str) -> bytes:
    """The bytes of a local path, a ``file://`` URI or any URI pyarrow opens (``s3://``, ``gs://``...)."""
    if "://" not in path:
        return Path(path).read_bytes()
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path)
    with filesystem.open_input_stream(inner) as f:
        return bytes(f.read())


class ScanActor:
    """One Ray actor: the model loaded once, batches of paths scanned in turn."""

    def __init__(self, settings: BulkSettings) -> None:
        import torch

        from deepraft.runtime.stamper import load

        torch.set_num_threads(1)
        self.settings = settings
        self.stamper = load(settings.model, device="cpu", max_pixels=settings.max_pixels)
        self.threshold = self.stamper.card.threshold(settings.fpr)

    def scan_one(self, path: str) -> dict[str, Any]:
        from deepraft.core.imageio import ImageError

        try:
            r = self.stamper.scan_file(read_bytes(path), fpr=self.settings.fpr)
        except (ImageError, OSError) as exc:
            problem = exc.problem if isinstance(exc, ImageError) else f"cannot read ({exc})"
            return {"path": path, "protected": None, "score": None, "threshold": None, "error": f"{path}: {problem}"}
        return {"path": path, "protected": r.protected, "score": r.score, "threshold": r.threshold, "error": None}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        rows = [self.scan_one(str(p)) for p in batch["path"]]
        return {k: [r[k] for r in rows] for k in COLUMNS}


def scan_archive(
    paths: Sequence[str], settings: BulkSettings | None = None, address: str | None = None
) -> list[dict[str, Any]]:
    """Scan ``paths`` on Ray Data; rows in input order (see the module docstring)."""
    import ray

    settings = settings or BulkSettings()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        items = [{"path": str(p), "index": i} for i, p in enumerate(paths)]
        ds = ray.data.from_items(items).map_batches(
            _Indexed,
            fn_constructor_kwargs={"settings": settings},
            batch_size=settings.batch_size,
            concurrency=settings.actors,
            batch_format="numpy",
        )
        rows = sorted(ds.iter_rows(), key=lambda r: int(r["index"]))
    finally:
        if started:
            ray.shutdown()
    return [{k: _plain(r[k]) for k in COLUMNS} for r in rows]


class _Indexed(ScanActor):
    """:class:`ScanActor` that carries each row's input position through, so results keep it."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out = super().__call__(batch)
        out["index"] = [int(i) for i in batch["index"]]
        return out


def _plain(v: Any) -> Any:
    """A Ray/NumPy cell as a plain Python value (None stays None)."""
    if v is None:
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def write_results(rows: list[dict[str, Any]], out: Path) -> Path:
    """Write ``rows`` to ``out`` atomically: Parquet for ``.parquet``, else JSON lines."""
    out = Path(out)
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(
            rows,
            schema=pa.schema(
                [
                    ("path", pa.string()),
                    ("protected", pa.bool_()),
                    ("score", pa.float64()),
                    ("threshold", pa.float64()),
                    ("error", pa.string()),
                ]
            ),
        )
        buf = io.BytesIO()
        pq.write_table(table, buf)
        atomic_write_bytes(out, buf.getvalue())
    else:
        text = "".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in rows)
        atomic_write_bytes(out, text.encode())
    return out
