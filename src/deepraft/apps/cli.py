"""The ``deepraft`` command line.

Exit codes: 0 every input processed; 1 some inputs failed (the others were still processed);
2 usage error; 3 ``scan --fail-on-protected`` found a stamp; 4 ``serve`` cannot listen.

Relative paths, given or default (``--runs-dir runs``, ``models/NAME``, ``demo-out``, the demo's
SQLite file), are resolved against the working directory when the command starts.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, List, NoReturn, Optional, Sequence, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from deepraft.core.imageio import DEFAULT_MAX_PIXELS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PROTECTED = 0, 1, 2, 3
API_KEY_ENV = "DEEPRAFT_API_KEY"  # `deepraft serve` reads its API key from here too

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Invisible, robust 'only for you' stamps: protect pictures on send, scan them on forward.",
)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

if TYPE_CHECKING:
    from deepraft.runtime.stamper import Stamper


def _progress_iter(items: Sequence[T], label: str, enabled: bool = True) -> Iterable[T]:
    yield from _progress_iter_stream(items, len(items), label, enabled)


def _progress_iter_stream(items: Iterable[T], total: int, label: str, enabled: bool = True) -> Iterable[T]:
    """A progress bar on a terminal; in a log (not a terminal), a line every 5 %."""
    if enabled and not err.is_terminal:
        every = max(1, total // 20)
        for i, item in enumerate(items, 1):
            yield item
            if i % every == 0 or i == total:
                err.print(f"{label}: {i}/{total}", highlight=False)
        return
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not enabled,
        transient=True,
    ) as bar:
        yield from bar.track(items, total=total)


def _usage(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(EXIT_USAGE)


EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn", "multipart", "fastapi_offline"),
    "train": ("kornia",),
    "eval": ("kornia", "scipy", "matplotlib", "ssimulacra2", "torchattacks"),
    "onnx": ("onnx",),
    "ray": ("ray", "pyarrow"),
}
"""The modules each extra of ``pip install 'deepraft[EXTRA]'`` brings (pyproject.toml's
optional dependencies); the core install has what protect, scan, info and demo need."""


def _require_extra(extra: str, command: str) -> None:
    """Stop with a message naming the extra when one of its modules is missing."""
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        _usage(
            f"deepraft {command} needs the '{extra}' extra: pip install 'deepraft[{extra}]' "
            f"(missing: {', '.join(missing)})"
        )


NONPHOTO_TRAIN = typer.Option(
    None,
    exists=True,
    file_okay=False,
    help="Folder of pictures that are not photos, with a MANIFEST.tsv (file, kind, package): its "
    "training split gives data.nonphoto_fraction of the crops.",
)
NONPHOTO_CALIB = typer.Option(
    None, exists=True, file_okay=False, help="Non-photos with a MANIFEST.tsv: its val packages join calibration."
)
CALIB_CACHE = typer.Option(
    None,
    help="Keep each calibration picture's scores in this file as they come; rerun the same command to "
    "resume a stopped export from there (scores of other weights or draws are not reused).",
)
GENERATED_CALIB = typer.Option(0, min=0, help="Generated non-photos that join calibration (10 variants each).")

MAX_PIXELS_HELP = "Refuse images with more pixels than this (decompression-bomb guard)."


def _load(model: str, device: Optional[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Stamper:
    from deepraft.runtime.stamper import load

    try:
        return load(model, device=device, max_pixels=max_pixels)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        _usage(str(exc))


def _expand(inputs: List[Path]):
    from deepraft.core.imageio import iter_image_files

    missing = [str(p) for p in inputs if not p.exists()]
    return iter_image_files([p for p in inputs if p.exists()]), missing


@app.command()
def protect(
    inputs: List[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (created if needed)."),
    model: str = typer.Option("default", help="Bundled model name, model card folder or run folder."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Output format: png, jpg or webp (default: the input's)."),
    quality: int = typer.Option(95, min=1, max=100, help="JPEG/WebP quality of the outputs."),
    overwrite: bool = typer.Option(False, help="Replace existing output files (inputs are never replaced)."),
    force: bool = typer.Option(
        False, help="Stamp pictures that already carry the stamp again (by default they are skipped: one scan each)."
    ),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, min=1, help=MAX_PIXELS_HELP),
) -> None:
    """Stamp pictures. Outputs keep the size, alpha, ICC profile and EXIF of each input. A
    picture that already carries the stamp is skipped (--force stamps it again)."""
    from deepraft.core.imageio import SAVE_FORMATS, ImageError
    from deepraft.runtime.stamper import AlreadyStamped

    if fmt is not None and f".{fmt.lower().lstrip('.')}" not in SAVE_FORMATS:
        _usage(f"unsupported --format {fmt!r}; use png, jpg or webp")
    files, missing = _expand(inputs)
    for m in missing:
        err.print(f"{m}: no such file or folder", highlight=False)
    stamper = _load(model, device, max_pixels)
    input_set = {f.resolve() for f, _ in files}
    planned: set[Path] = set()
    failures = len(missing)
    done = skipped = 0
    for src, rel in _progress_iter(files, "protect"):
        dst = _output_path(out / rel, fmt)
        try:
            _check_destination(src, dst, input_set, planned, overwrite)
            _protect_one(stamper, src, dst, quality, force)
            done += 1
        except AlreadyStamped as exc:
            skipped += 1
            err.print(f"skipped {exc}; --force stamps it again", highlight=False)
        except (ImageError, ValueError, OSError) as exc:
            failures += 1
            err.print(f"[red]error:[/red] {exc}", highlight=False)
    summary = f"protected {done} image(s) into {out}"
    summary += f", {skipped} skipped (already stamped)" if skipped else ""
    err.print(summary + (f", {failures} failed" if failures else ""), highlight=False)
    raise typer.Exit(EXIT_FAILED if failures else EXIT_OK)


def _output_path(dst: Path, fmt: Optional[str]) -> Path:
    """Where ``protect`` writes a picture: ``--format``'s extension, else the input's when it
    can be written, else PNG."""
    from deepraft.core.imageio import SAVE_FORMATS

    if fmt is not None:
        return dst.with_suffix(f".{fmt.lower().lstrip('.')}")
    return dst if dst.suffix.lower() in SAVE_FORMATS else dst.with_suffix(".png")


def _check_destination(src: Path, dst: Path, inputs: set[Path], planned: set[Path], overwrite: bool) -> None:
    """Refuse an output that is an input, that another input writes, or that exists (unless
    ``overwrite``); then reserve it in ``planned``."""
    rdst = dst.resolve()
    if rdst in inputs:
        raise ValueError(f"{dst}: output would overwrite an input; choose another --out")
    if rdst in planned:
        raise ValueError(f"{src}: another input already writes {dst}")
    if dst.exists() and not overwrite:
        raise ValueError(f"{dst}: already exists (use --overwrite)")
    planned.add(rdst)


def _protect_one(stamper: Stamper, src: Path, dst: Path, quality: int, force: bool) -> None:
    """Stamp ``src`` into ``dst``, printing the decoder's warnings (not Pillow's pixel-limit
    warning: --max-pixels is the limit)."""
    from PIL import Image

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        stamper.protect_file(src, dst, quality=quality, force=force)
    for w in caught:
        err.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False)


@app.command()
def scan(
    paths: List[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
    model: str = typer.Option("default", help="Bundled model name, model card folder or run folder."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    fpr: Optional[float] = typer.Option(None, help="Use the threshold calibrated for this FPR."),
    fail_on_protected: bool = typer.Option(False, help="Exit 3 when any input carries the stamp."),
    workers: int = typer.Option(0, min=0, help="Processes decoding images in parallel (0: in this process)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda ... (default: cuda when available)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, min=1, help=MAX_PIXELS_HELP),
) -> None:
    """Tell which pictures carry the stamp."""
    from deepraft.core.imageio import ImageError

    files, missing = _expand(paths)
    stamper = _load(model, device, max_pixels)
    try:
        stamper.card.threshold(fpr)
    except ValueError as exc:
        _usage(str(exc))
    rows: list[dict[str, object]] = [{"path": m, "error": f"{m}: no such file or folder"} for m in missing]
    paths = [f for f, _ in files]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = stamper.scan_files(paths, fpr=fpr, workers=workers)
        for src, r in _progress_iter_stream(results, len(paths), "scan", enabled=not as_json):
            if isinstance(r, ImageError):
                rows.append({"path": str(src), "error": str(r)})
            else:
                rows.append(
                    {
                        "path": str(src),
                        "protected": r.protected,
                        "score": round(r.score, 4),
                        "threshold": round(r.threshold, 4),
                    }
                )
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
    else:
        table = Table("path", "protected", "score", "threshold")
        for row in rows:
            if "error" in row:
                table.add_row(str(row["path"]), "[red]error[/red]", str(row["error"]), "")
            else:
                table.add_row(
                    str(row["path"]),
                    "[bold red]yes[/bold red]" if row["protected"] else "no",
                    f"{row['score']:.3f}",
                    f"{row['threshold']:.3f}",
                )
        Console().print(table)
    failed = any("error" in r for r in rows)
    found = any(r.get("protected") for r in rows)
    for row in rows:
        if "error" in row and not as_json:
            err.print(f"[red]error:[/red] {row['error']}", highlight=False)
    if fail_on_protected and found:
        raise typer.Exit(EXIT_PROTECTED)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@app.command("archive-scan")
def archive_scan(
    paths: List[Path] = typer.Argument(None, help="Image files and/or folders (searched recursively)."),
    out: Path = typer.Option(..., help="Results: .parquet, or JSON lines for any other name."),
    from_list: Optional[Path] = typer.Option(
        None, exists=True, dir_okay=False, help="A file of paths or URIs (file://, s3://, ...), one per line."
    ),
    model: str = typer.Option("default", help="Bundled model name, model card folder or run folder."),
    fpr: Optional[float] = typer.Option(None, help="Use the threshold calibrated for this FPR."),
    actors: int = typer.Option(2, min=1, help="Ray actors scanning side by side (one model load each)."),
    batch_size: int = typer.Option(16, min=1, help="Pictures per actor call."),
    address: Optional[str] = typer.Option(None, help="A Ray cluster to join (default: start a local one)."),
) -> None:
    """Scan an archive of pictures on Ray Data (map_batches actors); one row per input."""
    _require_extra("ray", "archive-scan")
    from deepraft.integrations.ray_scan import BulkSettings, scan_archive, write_results

    files, missing = _expand(list(paths or []))
    targets = [str(f) for f, _ in files] + [str(m) for m in missing]
    if from_list is not None:
        targets += [line.strip() for line in from_list.read_text().splitlines() if line.strip()]
    if not targets:
        _usage("nothing to scan: give files, folders or --from-list")
    settings = BulkSettings(model=model, fpr=fpr, batch_size=batch_size, actors=actors)
    rows = scan_archive(targets, settings, address=address)
    write_results(rows, out)
    bad = sum(r["error"] is not None for r in rows)
    found = sum(bool(r["protected"]) for r in rows)
    err.print(f"{len(rows)} scanned, {found} carry the stamp, {bad} failed; wrote {out}", highlight=False)
    raise typer.Exit(EXIT_FAILED if bad else EXIT_OK)


@app.command()
def info(
    model: str = typer.Argument("default", help="Bundled model name, model card folder or run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the model card as JSON."),
) -> None:
    """Show a model card: architecture, calibrated thresholds, training record, metrics."""
    from deepraft.core.card import bundled_models, resolve_card

    try:
        card = resolve_card(model)
    except (FileNotFoundError, ValueError) as exc:
        _usage(str(exc))
    data = card.to_json()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    con = Console()
    con.print(f"[bold]{card.name}[/bold]  ({card.path})   bundled models: {', '.join(bundled_models()) or 'none'}")
    m = data["model"]
    con.print(
        f"encoder {m['encoder']} {m['encoder_kwargs']}, scanner {m['scanner']} {m['scanner_kwargs']}, "
        f"working size {m['work_size']} ({m['work_mode']}), scan scales {m['scan_scales']}"
        f"{' and transposes' if m['scan_transpose'] else ''}, PSNR target {m['psnr_target']} ({m['psnr_mode']}), "
        f"mask {m['mask']}, smoothing sigma {m['smoothing_std']}"
    )
    bounds = (card.calibration or {}).get("fpr_upper_bounds", {})
    kinds = (card.calibration or {}).get("kinds", {})
    t = Table("FPR", "threshold (logit)", "FPR upper bound (95 %)", "calibrated on", title="calibrated thresholds")
    for k, v in sorted(card.thresholds.items(), key=lambda kv: float(kv[0])):
        on = ", ".join(f"{kind} {e['n']}" for kind, e in kinds.items()) or f"{card.calibration.get('n_negatives', '?')}"
        bound = f"{bounds[k]:.1e}" if k in bounds else "not recorded"
        t.add_row(k + (" (default)" if abs(float(k) - card.default_fpr) < 1e-15 else ""), f"{v:.4f}", bound, on)
    con.print(t)
    for section in ("calibration", "training", "metrics"):
        if data[section]:
            shown = {k: v for k, v in data[section].items() if k != "config"}
            con.print(f"[bold]{section}[/bold]: {json.dumps(shown)}")


def _drop_none(d: dict) -> dict:
    """Nested dict without the options that were not given (None) and without empty sections."""
    out = {}
    for k, v in d.items():
        v = _drop_none(v) if isinstance(v, dict) else v
        if v is not None and v != {}:
            out[k] = v
    return out


@app.command()
def train(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML config (configs/*.yaml)."),
    data: Path = typer.Option(..., exists=True, file_okay=False, help="Folder of training images."),
    nonphoto: Optional[Path] = NONPHOTO_TRAIN,
    run_name: str = typer.Option(..., help="Run folder name under --runs-dir; an existing run resumes."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where runs live (relative: to the working directory)."),
    max_steps: Optional[int] = typer.Option(None, min=1),
    std: Optional[float] = typer.Option(None, min=0.0, help="Smoothing noise sigma on the scanner input."),
    aug_start: Optional[int] = typer.Option(None, min=0),
    aug_end: Optional[int] = typer.Option(None, min=0),
    batch_size: Optional[int] = typer.Option(None, min=1),
    grad_accum: Optional[int] = typer.Option(
        None, min=1, help="Micro-batches of --batch-size per step, gradients averaged (64 = 16 x 4)."
    ),
    lr: Optional[float] = typer.Option(None, min=0.0),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda ..."),
    workers: Optional[int] = typer.Option(
        None, min=0, help="Data-loading worker processes (data.num_workers; 0: in the training process)."
    ),
    no_resume: bool = typer.Option(False, help="Refuse to continue an existing run."),
    until_step: Optional[int] = typer.Option(None, min=1, help="End this slice at this step (resume later)."),
    time_limit: Optional[float] = typer.Option(None, min=0.0, help="End this slice after these many minutes."),
    init_from: Optional[str] = typer.Option(
        None,
        help="Start a new run from this model's weights (bundled name, "
        "card folder, run folder or .safetensors): fine-tuning.",
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train (or resume) a stamp model; torchrun --nproc_per_node N deepraft ... for DDP."""
    _require_extra("train", "train")
    from deepraft.core.config import load_train_config
    from deepraft.training.loop import train as run_training

    given = {
        "max_steps": max_steps,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "lr": lr,
        "device": device,
        "init_from": str(Path(init_from).resolve()) if init_from and Path(init_from).exists() else init_from,
        "model": {"smoothing_std": std},
        "augment": {"aug_start": aug_start, "aug_end": aug_end},
        "data": {"num_workers": workers},
    }
    try:
        result = run_training(
            load_train_config(config, _drop_none(given)),
            data,
            runs_dir.resolve() / run_name,
            resume=not no_resume,
            show_progress=progress,
            until_step=until_step,
            time_limit_s=None if time_limit is None else time_limit * 60,
            nonphoto_dir=nonphoto,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        _usage(str(exc))
    err.print(f"run {result.run_dir}: step {result.step}, {result.wall_time_s:.0f} s in all", highlight=False)


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run folder (or its name under --runs-dir); with --onnx any model."),
    name: Optional[str] = typer.Option(None, help="Model name recorded on the card (required without --onnx)."),
    onnx: Optional[Path] = typer.Option(None, help="Write encoder.onnx and scanner.onnx of RUN/MODEL here instead."),
    out: Optional[Path] = typer.Option(
        None, help="Card folder to write (default: models/NAME in the working directory)."
    ),
    runs_dir: Path = typer.Option(Path("runs"), help="Where runs live (relative: to the working directory)."),
    calib_data: Optional[Path] = typer.Option(
        None, exists=True, file_okay=False, help="Clean held-out photos to calibrate thresholds on."
    ),
    test_data: Optional[Path] = typer.Option(
        None, exists=True, file_okay=False, help="Photos for the card's metrics (PSNR, TPR, FPR)."
    ),
    fpr: List[float] = typer.Option([1e-1, 1e-2, 1e-3], help="FPRs to calibrate (repeat the option)."),
    default_fpr: float = typer.Option(1e-3),
    variants: int = typer.Option(50, min=1, help="Benign variants per calibration photo."),
    recipe: Optional[str] = typer.Option(None, help="The command that trained the run, for the card."),
    scan_scales: Optional[List[float]] = typer.Option(
        None, help="Scales the deployed scanner reads at, instead of the run's (repeat the option; include 1)."
    ),
    calib_nonphoto: Optional[Path] = NONPHOTO_CALIB,
    calib_generated: int = GENERATED_CALIB,
    calib_cache: Optional[Path] = CALIB_CACHE,
) -> None:
    """Turn a training run into a model card that deepraft.load() accepts (or, with --onnx, a
    model into ONNX graphs for mobile and edge clients)."""
    _require_extra("onnx" if onnx is not None else "eval", "export")
    from deepraft.evaluation.card_export import export_run

    if onnx is not None:
        _export_graphs(str(run), onnx)
        return
    if name is None:
        _usage("--name is required to export a run as a model card")
    run_dir = (run if run.exists() else runs_dir / run).resolve()  # relative paths: the working directory's
    target = (out or Path("models") / name).resolve()
    try:
        card = export_run(
            run_dir,
            name,
            target,
            calib_data,
            tuple(fpr),
            default_fpr,
            variants,
            test_data,
            recipe,
            progress=lambda xs: _progress_iter(list(xs), "export"),
            scan_scales=scan_scales or None,
            calib_nonphoto=calib_nonphoto,
            calib_generated=calib_generated,
            calib_cache=calib_cache,
        )
    except (FileNotFoundError, ValueError) as exc:
        _usage(str(exc))
    err.print(f"wrote {target}: thresholds {card.thresholds}", highlight=False)
    if card.metrics:
        err.print(json.dumps({k: v for k, v in card.metrics.items() if k != "failed"}), highlight=False)


def _export_graphs(model: str, out: Path) -> None:
    from deepraft.runtime.graph_export import export_onnx

    for p in export_onnx(_load(model, "cpu"), out):
        err.print(f"wrote {p}", highlight=False)


@app.command()
def prepare(
    src: Path = typer.Argument(..., exists=True, file_okay=False),
    dst: Path = typer.Argument(...),
    size: int = typer.Option(400, min=8, help="Side of the square outputs."),
    mode: str = typer.Option("crop", help="crop (centre square, then resize) or squash."),
    layout: str = typer.Option("auto", help="auto, folder, mirflickr or metfaces."),
) -> None:
    """The paper's preprocessing: every image of SRC as a SIZE x SIZE PNG under DST."""
    from deepraft.training.prepare import prepare_folder

    try:
        report = prepare_folder(src, dst, size, mode, layout, progress=lambda xs: _progress_iter(list(xs), "prepare"))
    except (FileNotFoundError, ValueError) as exc:
        _usage(str(exc))
    for f in report.failed:
        err.print(f"[red]error:[/red] {f}", highlight=False)
    err.print(f"wrote {len(report.written)} image(s) to {dst}", highlight=False)
    raise typer.Exit(EXIT_FAILED if report.failed else EXIT_OK)


@app.command()
def demo(
    photos: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of photos (e.g. examples/photos)."),
    out: Path = typer.Option(
        Path("demo-out"),
        "-o",
        "--out",
        help="Where stamped and forwarded copies go (default: demo-out in the working directory).",
    ),
    model: str = typer.Option("default"),
    device: Optional[str] = typer.Option(None),
) -> None:
    """Stamp photos, 'forward' them (re-compress, crop, resize) and scan everything."""
    from deepraft.apps.demo import run_demo

    stamper = _load(model, device)
    try:
        table, failures = run_demo(stamper, photos, out.resolve(), progress=lambda xs: _progress_iter(list(xs), "demo"))
    except (FileNotFoundError, ValueError) as exc:
        _usage(str(exc))
    con = Console()
    if not con.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        con = Console(width=112)
    con.print(table)
    for f in failures:
        err.print(f"[red]error:[/red] {f}", highlight=False)
    raise typer.Exit(EXIT_FAILED if failures else EXIT_OK)


def _photo_files(data: Path) -> list[Path]:
    from deepraft.core.data import find_images

    try:
        return find_images(data, "folder")
    except FileNotFoundError as exc:
        _usage(str(exc))


def _kinded_files(data: Path, split: Optional[str]) -> list[tuple[Path, str]]:
    """(file, kind) of ``data``: with a MANIFEST.tsv its files (of one ``split`` of its packages
    when given) and their kinds, else every image of the folder as ``picture``."""
    from deepraft.core.data import MANIFEST, read_manifest, split_files

    try:
        if (data / MANIFEST).is_file():
            if split is not None:
                return split_files(data, split)
            return [(data / r["file"], r["kind"]) for r in read_manifest(data)]
        if split is not None:
            _usage(f"--split {split}: {data} has no {MANIFEST} to split by package")
        return [(p, "picture") for p in _photo_files(data)]
    except (FileNotFoundError, ValueError) as exc:
        _usage(str(exc))


def _clean_eval(
    model: str, device: Optional[str], sources: list, out: Path, variants: Optional[int], seed: int
) -> None:
    from deepraft.evaluation.false_blocks import CleanSettings, run_clean_eval

    stamper = _load(model, device)
    settings = CleanSettings(variants=variants or 1, seed=seed)
    try:
        summary = run_clean_eval(stamper, sources, out, settings, progress=lambda xs: _progress_iter(list(xs), "clean"))
    except ValueError as exc:
        _usage(str(exc))
    name = f"{stamper.card.default_fpr:g}"
    for kind, e in summary["kinds"].items():
        if name not in e["at_threshold"]:  # an uncalibrated training run: its scores only
            err.print(f"{kind}: {e['n']} samples, highest score {e['highest_score']:.2f}", highlight=False)
            continue
        at = e["at_threshold"][name]
        err.print(
            f"{kind}: {at['flagged']} of {e['n']} samples flagged ({e['pictures_flagged']} of {e['pictures']} "
            f"pictures), FPR {at['fpr']:.2e}, upper bound {at['fpr_upper_bound']:.1e}",
            highlight=False,
        )
    err.print(f"report {Path(out) / 'report.md'}", highlight=False)
    raise typer.Exit(EXIT_FAILED if summary["failed"] else EXIT_OK)


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("default", help="Bundled model name, model card folder or run folder."),
    data: Path = typer.Option(..., exists=True, file_okay=False, help="Folder of photos (full resolution)."),
    out: Path = typer.Option(..., help="Output folder: images.csv, samples.csv, summary.json, report.md, plots."),
    quick: bool = typer.Option(False, help="A few representative edits, 4 variants, 8 photos (minutes on CPU)."),
    variants: Optional[int] = typer.Option(None, min=1, help="Variants per photo and condition (default 34)."),
    seed: int = typer.Option(0),
    workers: int = typer.Option(0, min=0, help="Processes sharing the photos (CPU; 0: this process)."),
    device: Optional[str] = typer.Option(None),
    clean_only: bool = typer.Option(
        False, help="False blocks: scan the clean pictures only (nothing stamped); FPR per kind with its bound."
    ),
    split: Optional[str] = typer.Option(
        None, help="With a MANIFEST.tsv in --data: only the packages of this split (train, val or test)."
    ),
    grid: Optional[str] = typer.Option(
        None,
        help="The edits: full (every condition), quick (--quick's) or false-blocks (what --clean-only does to "
        "each picture); default full, quick with --quick.",
    ),
) -> None:
    """Imperceptibility and robustness over the edit grid, stamped and clean copies alike; with
    --clean-only, how often clean pictures of each kind are flagged."""
    _require_extra("eval", "eval")
    from deepraft.evaluation.report import write_eval_report
    from deepraft.evaluation.runner import EvalSettings, run_eval

    if clean_only:
        _clean_eval(model, device, _kinded_files(data, split), out, variants, seed)
        return

    settings = EvalSettings.quick() if quick else EvalSettings()
    if grid is not None:
        settings.grid = _named_grid(grid)
    settings.seed = seed
    if variants is not None:
        settings.variants = variants
    stamper = _load(model, device)
    files = [p for p, _ in _kinded_files(data, split)] if split is not None else _photo_files(data)
    summary = run_eval(
        stamper,
        files,
        out,
        settings,
        workers=workers,
        progress=lambda xs: _progress_iter_stream(xs, len(files[: settings.max_photos or None]), "eval"),
    )
    report = write_eval_report(out)
    imp = summary["imperceptibility"]["psnr"]
    err.print(f"{summary['n_photos']} photos, PSNR {imp['mean']:.2f} dB; report {report}", highlight=False)
    raise typer.Exit(EXIT_FAILED if summary["failed"] else EXIT_OK)


def _named_grid(name: str) -> list[tuple[str, list]]:
    """The edit grid ``eval --grid`` names, or a usage error listing the names."""
    from deepraft.edits.grids import GRID, QUICK_GRID
    from deepraft.evaluation.false_blocks import FALSE_BLOCK_GRID

    grids = {"full": GRID, "quick": QUICK_GRID, "false-blocks": FALSE_BLOCK_GRID}
    if name not in grids:
        _usage(f"eval --grid: unknown grid {name!r}; known: {', '.join(grids)}")
    return list(grids[name])


@app.command()
def certify(
    model: str = typer.Option("default"),
    data: Path = typer.Option(..., exists=True, file_okay=False),
    out: Path = typer.Option(...),
    sigma: Optional[float] = typer.Option(None, min=0.0, help="Smoothing sigma (default: the model's, else 0.25)."),
    n0: int = typer.Option(100, min=1),
    n: int = typer.Option(10_000, min=1),
    alpha: float = typer.Option(0.001, min=0.0, max=1.0),
    quick: bool = typer.Option(False, help="n0 50, n 500, 6 photos."),
    device: Optional[str] = typer.Option(None),
) -> None:
    """Randomized-smoothing certification (Cohen et al.): certified L2 radius per photo."""
    _require_extra("eval", "certify")
    from deepraft.evaluation.smoothing.runner import CertifySettings, run_certify

    settings = CertifySettings.quick() if quick else CertifySettings(n0=n0, n=n, alpha=alpha)
    settings.sigma = sigma
    stamper = _load(model, device)
    summary = run_certify(
        stamper, _photo_files(data), out, settings, progress=lambda xs: _progress_iter(list(xs), "certify")
    )
    c = summary["curve"]
    err.print(
        f"sigma {summary['sigma']:g}: certified accuracy at radius 0: stamped {c['stamped'][0]:.2f}, "
        f"clean {c['clean'][0]:.2f}; abstain {summary['abstain_rate']:.2f}; {out / 'certify.json'}",
        highlight=False,
    )


ATTACK_MODE_HELP = (
    "adversarial: gradient and query attacks on the scanner (attack.json); forgery: model-free grating, "
    "averaged-residual and notch attacks and the residual statistics (forgery.json, forgery.md); all: both."
)
DONORS_HELP = (
    "Forgery: photos whose stamped copies give the averaged residual "
    "(default: the first --n-donors photos of --data, then held out)."
)
GRATING_HELP = (
    "Forgery: grating AxB cycles per picture (A down the height, B across the width; repeat). "
    "A set of others is always tried too."
)
ATTACK_QUICK_HELP = (
    "APGD-CE removal at 2 and 8 /255 on 4 photos; forgery: 6 donors, 4 held out, Gaussian residuals, 40 dB."
)


@app.command()
def attack(
    model: str = typer.Option("default"),
    data: Path = typer.Option(..., exists=True, file_okay=False),
    out: Path = typer.Option(...),
    mode: str = typer.Option("adversarial", help=ATTACK_MODE_HELP),
    attacks: List[str] = typer.Option(["apgd-ce", "square", "autoattack"], "--attack", help="Repeat to choose."),
    goal: List[str] = typer.Option(["removal", "forging"], help="removal and/or forging."),
    eps: List[float] = typer.Option([2, 4, 8, 16, 32], help="L-inf budgets in /255 units (repeat the option)."),
    l2: List[float] = typer.Option([0.5], help="L2 budgets on the [0,1] working copy (repeat; 0 for none)."),
    n_queries: int = typer.Option(1000, min=1, help="Square attack queries."),
    sigma: Optional[float] = typer.Option(None, min=0.0, help="Attack the scanner smoothed with this sigma."),
    eot: int = typer.Option(8, min=1, help="Noise draws per gradient against a smoothed scanner."),
    steps: int = typer.Option(50, min=1),
    max_photos: int = typer.Option(30, min=1),
    donors: Optional[Path] = typer.Option(None, exists=True, file_okay=False, help=DONORS_HELP),
    n_donors: int = typer.Option(19, min=2, help="Forgery: stamped photos averaged."),
    held_out: int = typer.Option(20, min=1, help="Forgery: most held-out photos forged (clean) or notched (stamped)."),
    grating: List[str] = typer.Option(["16x24"], help=GRATING_HELP),
    psnr: List[float] = typer.Option([40.0, 44.8], help="Forgery: PSNR of the forged photos, dB (repeat)."),
    denoiser: List[str] = typer.Option(["gaussian", "nlm"], help="Forgery: residual denoisers (gaussian, nlm)."),
    quick: bool = typer.Option(False, help=ATTACK_QUICK_HELP),
    device: Optional[str] = typer.Option(None),
) -> None:
    """Adversarial attacks on the scanner (not the evaluation's benign edits, not training's
    augmentations): white-box (APGD-CE), black-box (Square) and AutoAttack removal/forging, and
    model-free forgery and removal (--mode forgery)."""
    _require_extra("eval", "attack")
    if mode not in ("adversarial", "forgery", "all"):
        _usage(f"unknown --mode {mode!r}; use adversarial, forgery or all")
    stamper = _load(model, device)
    if mode in ("forgery", "all"):
        fs = _forgery_settings(quick, denoiser, grating, psnr, n_donors, held_out)
        _run_forgery_cmd(stamper, data, out, fs, donors)
        if mode == "forgery":
            return
    from deepraft.evaluation.adversaries.runner import AttackSettings

    settings = (
        AttackSettings.quick()
        if quick
        else AttackSettings(
            attacks=tuple(attacks),
            goals=tuple(goal),
            linf_eps=tuple(eps),
            l2_eps=tuple(e for e in l2 if e > 0),
            eot=eot,
            steps=steps,
            n_queries=n_queries,
            max_photos=max_photos,
        )
    )
    settings.sigma = sigma
    _run_adversarial_cmd(stamper, data, out, settings)


def _forgery_settings(
    quick: bool, denoiser: List[str], grating: List[str], psnr: List[float], n_donors: int, held_out: int
):
    """``attack --mode forgery``'s settings from its options (a usage error on bad ones)."""
    from deepraft.evaluation.adversaries.forgery import DENOISERS, ForgerySettings, parse_cycles

    if quick:
        return ForgerySettings.quick()
    unknown = [d for d in denoiser if d not in DENOISERS]
    if unknown:
        _usage(f"unknown --denoiser {unknown}; known: {sorted(DENOISERS)}")
    try:
        gratings = tuple(parse_cycles(g) for g in grating)
    except ValueError as exc:
        _usage(str(exc))
    return ForgerySettings(
        gratings=gratings, psnrs=tuple(psnr), n_donors=n_donors, denoisers=tuple(denoiser), max_targets=held_out
    )


def _run_forgery_cmd(stamper: Stamper, data: Path, out: Path, settings, donors: Optional[Path]) -> None:
    """Run the model-free attacks and print their table and residual statistics."""
    from deepraft.evaluation.adversaries.forgery import run_forgery

    try:
        fsum = run_forgery(
            stamper,
            _photo_files(data),
            out,
            settings,
            donor_files=_photo_files(donors) if donors is not None else None,
            log=lambda m: err.print(f"forgery: {m}", highlight=False),
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from exc
    table = Table("attack", "goal", "parameters", "flagged", "PSNR dB")
    shown = {"attack", "goal", "n", "flagged", "rate", "mean_score", "mean_psnr", "min_psnr", "chosen"}
    for r in fsum["results"]:
        params = ", ".join(
            f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items() if k not in shown
        )
        ps = "-" if "mean_psnr" not in r else f"{r['mean_psnr']:.1f}"
        table.add_row(r["attack"], r["goal"], params, f"{r['flagged']}/{r['n']}", ps)
    Console().print(table)
    for key, s in fsum["residual_stats"].items():
        Console().print(
            f"{key}: power share in top {s['top_k']} bins {s['power_share_mean']:.3f}, mean pairwise "
            f"cosine {s['mean_pairwise_cosine']:.3f}, cosine with the mean of the others "
            f"{s['loo_cosine_mean']:.3f}",
            highlight=False,
        )
    err.print(f"wrote {Path(out) / 'forgery.json'} and {Path(out) / 'forgery.md'}", highlight=False)


def _run_adversarial_cmd(stamper: Stamper, data: Path, out: Path, settings) -> None:
    """Run the adversarial attacks and print their table."""
    from deepraft.evaluation.adversaries import AttackSanityError
    from deepraft.evaluation.adversaries.runner import run_attacks

    try:
        summary = run_attacks(
            stamper, _photo_files(data), out, settings, progress=lambda xs: _progress_iter(list(xs), "attack")
        )
    except (AttackSanityError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from exc
    table = Table("attack", "goal", "norm", "eps", "robust acc.", "PSNR of successes")
    for r in summary["results"]:
        budget = f"{r['eps_255']:g}/255" if r["norm"] == "Linf" else f"{r['eps']:g}"
        mean_psnr = "-" if r["mean_psnr"] is None else f"{r['mean_psnr']:.1f}"
        table.add_row(r["attack"], r["goal"], r["norm"], budget, f"{r['robust_accuracy']:.3f}", mean_psnr)
    Console().print(table)


@app.command()
def report(
    folders: List[Path] = typer.Argument(..., help="Folders written by eval / certify / attack (one per model)."),
    out: Optional[Path] = typer.Option(None, help="Write the Markdown here (default: print it)."),
    curves: Optional[Path] = typer.Option(
        None, help="Also draw TPR against crop area, rotation angle and paste scale of every eval folder (a PNG)."
    ),
) -> None:
    """The paper's three tables, our runs beside the published DeepRAFT numbers."""
    _require_extra("eval", "report")
    from deepraft.core.fileio import atomic_write_bytes
    from deepraft.evaluation.paper_tables import build_report

    try:
        text = build_report(folders)
    except FileNotFoundError as exc:
        _usage(str(exc))
    if curves is not None:
        _write_curves(curves, folders)
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_bytes(out, text.encode())
        err.print(f"wrote {out}", highlight=False)


def _write_curves(path: Path, folders: List[Path]) -> None:
    """The part curves (:func:`deepraft.evaluation.report.plot_part_curves`) of the eval folders
    among ``folders``, each named by its model (and its folder when two share a model)."""
    import json

    from deepraft.evaluation.report import plot_part_curves

    runs = {}
    for f in folders:
        if (f / "summary.json").is_file():
            summary = json.loads((f / "summary.json").read_text())
            if "conditions" in summary:
                name = summary.get("model", f.name)
                runs[name if name not in runs else f"{name} ({f.name})"] = summary
    if not runs:
        _usage("report --curves: none of the folders holds an eval summary.json")
    plot_part_curves(path, runs)
    err.print(f"wrote {path}", highlight=False)


SERVE_EXIT_CANNOT_LISTEN = 4
"""``serve`` could not listen on the address (in use, not allowed): not 3, scan's 'stamp found'."""


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or exit 4 (``SERVE_EXIT_CANNOT_LISTEN``) saying why."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc.strerror or exc}", highlight=False)
        raise typer.Exit(SERVE_EXIT_CANNOT_LISTEN) from None
    return sock


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on; other than loopback it needs an API key (or --insecure)."
    ),
    port: int = typer.Option(8000, min=0, max=65535),
    model: str = typer.Option("default"),
    api_key: Optional[str] = typer.Option(
        None,
        envvar=API_KEY_ENV,
        help=f"Require this key for /v1/protect and the demo's sessions (or set {API_KEY_ENV}).",
    ),
    insecure: bool = typer.Option(
        False, help="Listen on a non-loopback address without an API key (/v1/protect open to anyone who reaches it)."
    ),
    demo: bool = typer.Option(False, help="Mount the /demo messenger (sessions opened with the API key)."),
    demo_db: Path = typer.Option(
        Path("deepraft-demo.sqlite3"), help="SQLite file of the /demo messenger (relative: to the working directory)."
    ),
    demo_quota_mb: float = typer.Option(50.0, min=0.001, help="Picture storage per demo account."),
    max_concurrency: int = typer.Option(2, min=1, help="Images processed at the same time."),
    max_body_mb: float = typer.Option(25.0, min=0.001, help="Largest upload; reading stops there."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, min=1, help=MAX_PIXELS_HELP),
    device: Optional[str] = typer.Option(None),
) -> None:
    """HTTP API (/v1/protect, /v1/scan, /v1/check-forward, /docs), and with --demo the /demo
    messenger. Exit codes: 0 stopped, 2 usage error or refused settings, 4 cannot listen."""
    _require_extra("serve", "serve")
    api_key = api_key or None
    sock = _open_service_socket(host, port, api_key, insecure, demo)
    from PIL import Image

    from deepraft.apps.service.app import ServiceSettings

    # every image the service decodes is checked against --max-pixels from its header, before
    # any pixel is decoded; Pillow's own guard (a second, fixed limit) would only refuse with
    # its number instead of ours, and warn from worker threads. Set once, before any thread.
    Image.MAX_IMAGE_PIXELS = None
    settings = ServiceSettings(
        model=model,
        device=device,
        api_key=api_key,
        max_body_bytes=int(max_body_mb * 2**20),
        max_pixels=max_pixels,
        max_concurrency=max_concurrency,
        demo=demo,
        demo_db=demo_db.resolve(),
        demo_quota_bytes=int(demo_quota_mb * 2**20),
    )
    _run_service(settings, sock)


def _open_service_socket(host: str, port: int, api_key: Optional[str], insecure: bool, demo: bool) -> socket.socket:
    """Refuse a non-loopback address without a key (unless ``insecure``), listen, and warn
    loudly when /v1/protect is open."""
    if api_key is None and not _is_loopback(host) and not insecure:
        _usage(
            f"refusing to listen on {host} without an API key: anyone who reaches it could stamp pictures. "
            f"Set --api-key (or {API_KEY_ENV}), listen on 127.0.0.1, or pass --insecure."
        )
    sock = _listen(host, port)
    if api_key is None:
        err.print(
            f"[bold red]WARNING: no API key: /v1/protect is open to anyone who can reach {host}:{port}"
            f"{' (and the demo)' if demo else ''}. Set --api-key or {API_KEY_ENV}.[/bold red]",
            highlight=False,
        )
    return sock


def _run_service(settings, sock: socket.socket) -> None:
    """Build the app and serve it on ``sock`` until stopped (exit 4 if it never started)."""
    import uvicorn

    from deepraft.apps.service.app import create_app

    try:
        application = create_app(settings)
    except (FileNotFoundError, ValueError) as exc:
        sock.close()
        _usage(str(exc))
    server = uvicorn.Server(uvicorn.Config(application, log_level="info"))
    server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(SERVE_EXIT_CANNOT_LISTEN)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
