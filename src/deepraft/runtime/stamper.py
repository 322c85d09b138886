"""The Python API: ``deepraft.load()`` and :class:`Stamper` (protect / scan)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from deepraft.core.card import ModelCard, resolve_card, sha256_file
from deepraft.core.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    Picture,
    picture_from_pil,
    read_image,
    read_work_copy,
    save_image,
    work_copy_from_pil,
)
from deepraft.core.weights_io import load_weights
from deepraft.models import StampModel, build_model, require_zero_bit
from deepraft.models import functional as Fn
from deepraft.runtime.copies import WorkCopies
from deepraft.runtime.engine import OnnxRead, resolve_engine, shipped_graph

ImageLike = Image.Image | Picture

STRIP_PIXELS = 1_000_000
"""Pixels per strip when adding the upsampled stamp (bounds float memory on huge images)."""


@dataclass(frozen=True)
class ScanResult:
    """``score`` is the scanner's logit (higher: more likely stamped); the image is judged
    ``protected`` when ``score > threshold``, the threshold calibrated for the requested FPR."""

    protected: bool
    score: float
    threshold: float


class AlreadyStamped(ValueError):
    """The picture already carries the stamp (one scan at the card's calibrated threshold);
    raised by :meth:`Stamper.protect_file` unless ``force``."""

    def __init__(self, source: str, result: ScanResult) -> None:
        super().__init__(
            f"{source}: already carries the stamp (score {result.score:.2f} > threshold {result.threshold:.2f})"
        )
        self.source = source
        self.result = result


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Stamper:
    """Protects (stamps) and scans images with one model card."""

    def __init__(
        self,
        card: ModelCard,
        model: StampModel,
        device: torch.device,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        engine: str = "torch",
        graph: bytes | None = None,
    ) -> None:
        self.card = card
        self.model = model.eval()
        self.device = device
        self.max_pixels = max_pixels
        # what runs the scanner when scanning (deepraft.runtime.engine): torch, or onnxruntime (the
        # card's shipped graph when it was exported from these weights, else one exported now)
        self.engine = resolve_engine(engine, device)
        self._read: OnnxRead | None = None
        if self.engine == "onnxruntime":
            try:
                sha = sha256_file(card.weights_path) if graph is not None else None
                self._read = OnnxRead(model, graph=graph, weights_sha256=sha)
            except Exception as exc:  # an export or runtime failure: auto falls back, a choice fails
                if engine != "auto":
                    raise
                warnings.warn(f"scan engine onnxruntime unavailable ({exc}); scanning with torch", stacklevel=2)
                self.engine = "torch"
        self.copies = WorkCopies(self.model, device, self._read)

    @property
    def work_size(self) -> int:
        return self.copies.work_size

    @property
    def work_mode(self) -> str:
        return self.copies.work_mode

    @property
    def scan_size(self) -> int:
        """``work_size`` of the copies the scanner reads (see ``StampModel.scan_size``)."""
        return self.copies.scan_size

    def _picture(self, image: ImageLike) -> Picture:
        if isinstance(image, Picture):
            return image
        if isinstance(image, Image.Image):
            return picture_from_pil(image, max_pixels=self.max_pixels)
        raise TypeError(f"expected a PIL image or a Picture, got {type(image).__name__}")

    # -- protect ---------------------------------------------------------------------------
    @torch.inference_mode()
    def _protect(self, pics: Sequence[Picture]) -> list[Picture]:
        if not pics:
            return []
        if self.work_mode == "square":
            residuals = self.model.residual(self.copies.work_batch(pics)).float()
            return [self._add_stamp(p, residuals[i : i + 1]) for i, p in enumerate(pics)]
        return [
            self._add_stamp(p, self.model.residual(self.copies.batch([a])).float())
            for p, a in zip(pics, self.copies.arrays(pics))
        ]

    def _add_stamp(self, pic: Picture, residual: torch.Tensor) -> Picture:
        h, w = pic.rgb.shape[:2]
        out = np.empty_like(pic.rgb)
        up = Fn.StripUpsampler(residual[0], h, w, scale=255.0, offset=0.5)  # +0.5: the uint8 cast rounds
        rows = max(1, STRIP_PIXELS // max(1, w))
        for a in range(0, h, rows):
            b = min(h, a + rows)
            # decoded pixels are read-only: one strip is copied out (torch warns on a read-only
            # array, and a warning filter is process-wide state, unsafe in a service's threads)
            strip = torch.from_numpy(np.array(pic.rgb[a:b]))
            block = up.rows(a, b).add_(strip.to(self.device)).clamp_(0, 255)
            torch.from_numpy(out[a:b]).copy_(block)  # float -> uint8 truncates
        return pic.with_rgb(out)

    @overload
    def protect(self, image: Picture) -> Picture: ...
    @overload
    def protect(self, image: Image.Image) -> Image.Image: ...
    def protect(self, image: ImageLike) -> ImageLike:
        """Stamp one image; returns the same kind (PIL image or Picture), same size, with the
        alpha channel, ICC profile and EXIF of the input."""
        out = self._protect([self._picture(image)])[0]
        return out if isinstance(image, Picture) else out.to_pil()

    @overload
    def protect_batch(self, images: Sequence[Picture]) -> list[Picture]: ...
    @overload
    def protect_batch(self, images: Sequence[Image.Image]) -> list[Image.Image]: ...
    @overload
    def protect_batch(self, images: Sequence[ImageLike]) -> list[ImageLike]: ...
    def protect_batch(self, images: Sequence[ImageLike]) -> Sequence[ImageLike]:
        """Stamp several images; each comes back as the kind it came in."""
        outs = self._protect([self._picture(im) for im in images])
        return [o if isinstance(im, Picture) else o.to_pil() for im, o in zip(images, outs)]

    def protect_file(
        self, src: str | os.PathLike[str], dst: str | os.PathLike[str], quality: int = 95, force: bool = True
    ) -> Picture:
        """Stamp ``src`` into ``dst`` (atomic write; refuses to overwrite ``src``). With
        ``force=False`` a picture that already carries the stamp raises :class:`AlreadyStamped`
        (it costs one scan of the decoded picture) and nothing is written."""
        if Path(dst).resolve() == Path(src).resolve():
            raise ValueError(f"{dst}: refusing to overwrite the input")
        pic = read_image(src, max_pixels=self.max_pixels)
        if not force:
            found = self.scan(pic)
            if found.protected:
                raise AlreadyStamped(str(src), found)
        out = self._protect([pic])[0]
        save_image(out, dst, quality=quality)
        return out

    # -- scan ------------------------------------------------------------------------------
    def _results(self, arrays: Sequence[np.ndarray], fpr: float | None) -> list[ScanResult]:
        thr = self.card.threshold(fpr)
        return [
            ScanResult(protected=bool(sc > thr), score=sc, threshold=thr) for sc in self.copies.score_arrays(arrays)
        ]

    def _scan_array(self, image: ImageLike) -> np.ndarray:
        """The scan copy of one image; a PIL image is resized directly (no full-size array)."""
        if isinstance(image, Picture):
            return self.copies.scan_arrays([image])[0]
        if isinstance(image, Image.Image):
            return work_copy_from_pil(image, self.scan_size, self.work_mode, max_pixels=self.max_pixels)
        raise TypeError(f"expected a PIL image or a Picture, got {type(image).__name__}")

    def scan(self, image: ImageLike, fpr: float | None = None) -> ScanResult:
        """Is the stamp in ``image``? ``fpr`` picks another calibrated operating point."""
        return self.scan_batch([image], fpr)[0]

    def scan_batch(self, images: Sequence[ImageLike], fpr: float | None = None) -> list[ScanResult]:
        self.card.threshold(fpr)  # fail before scoring on an uncalibrated FPR
        return self._results([self._scan_array(im) for im in images], fpr)

    def scan_file(self, path: str | os.PathLike[str] | bytes, fpr: float | None = None) -> ScanResult:
        """Scan a file (or encoded bytes) through the fast path: reduced-scale JPEG decoding
        straight to the working copy, no full-resolution copy."""
        self.card.threshold(fpr)
        copy = read_work_copy(path, self.scan_size, max_pixels=self.max_pixels, mode=self.work_mode)
        return self._results([copy], fpr)[0]

    def scan_files(
        self, paths: Sequence[Path], fpr: float | None = None, batch_size: int = 64, workers: int = 0
    ) -> Iterator[tuple[Path, ScanResult | ImageError]]:
        """Scan many files, decoding in ``workers`` DataLoader processes while the model runs;
        yields (path, result) in input order, an :class:`ImageError` for a file that failed."""
        self.card.threshold(fpr)
        dataset = _WorkCopies(list(paths), self.scan_size, self.max_pixels, self.work_mode)
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=list)
        for batch in loader:
            good = [(p, a) for p, a in batch if not isinstance(a, ImageError)]
            results = iter(self._results([a for _, a in good], fpr) if good else [])
            for p, a in batch:
                yield Path(p), a if isinstance(a, ImageError) else next(results)


class _WorkCopies(Dataset[tuple[str, "np.ndarray | ImageError"]]):
    """Map-style dataset of working copies (or the error a file gave), for DataLoader workers."""

    def __init__(self, paths: list[Path], size: int, max_pixels: int | None, mode: str = "square") -> None:
        self.paths, self.size, self.max_pixels, self.mode = paths, size, max_pixels, mode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[str, np.ndarray | ImageError]:
        p = str(self.paths[i])
        try:
            return p, read_work_copy(p, self.size, max_pixels=self.max_pixels, mode=self.mode)
        except ImageError as exc:
            return p, exc
        except OSError as exc:
            return p, ImageError(p, f"cannot read file ({exc})")


def load(
    model: str | os.PathLike[str] = "default",
    device: str | torch.device | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    engine: str = "auto",
) -> Stamper:
    """Load a bundled model by name, a model card folder, or a training run folder.
    ``engine``: what runs the scanner when scanning (:mod:`deepraft.runtime.engine`; ``auto``: ONNX
    Runtime on a CPU, PyTorch on a GPU)."""
    card = resolve_card(model if isinstance(model, str) else Path(model))
    require_zero_bit(card.model, card.weights_path)
    dev = default_device() if device is None else torch.device(device)
    net = build_model(card.model)
    load_weights(net, card.weights_path)
    # a channels-last scanner: faster convolutions on CPU (oneDNN), scores equal to ~1e-6
    net.scanner.to(memory_format=torch.channels_last)
    graph = shipped_graph(card.weights_path) if dev.type == "cpu" else None
    return Stamper(card, net.to(dev), dev, max_pixels=max_pixels, engine=engine, graph=graph)
