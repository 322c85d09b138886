"""Protect / scan latency, throughput and peak memory versus image size, and bulk scanning.

    python benchmarks/speed.py [--model default] [--device cpu|cuda] [--engine auto|torch|onnxruntime]
                               [--repeats 5] [--bulk 1000] [--out DIR]

The scan engine (``deepraft.runtime.engine``) runs the scanner: ``auto`` is ONNX Runtime on a CPU, PyTorch on a GPU.
Writes speed_<device>[_<model>][_<engine>].json and .md to benchmarks/results/ (or --out; ``_<engine>`` when
--engine is not auto). Each size runs in a fresh process so its peak memory (VmHWM, minus the process's size after
loading the model) is its own.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PHOTO = HERE.parent / "examples" / "photos" / "gcompris-qt-data__erase_giraffe.jpg"
SIZES = {"256px": (256, 256), "1MP": (1152, 864), "4MP": (2304, 1728), "12MP": (4000, 3000), "24MP": (6000, 4000)}


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _photo_bytes(size: tuple[int, int]) -> bytes:
    from PIL import Image

    img = Image.open(PHOTO).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def one_size(model: str, device: str, label: str, repeats: int, engine: str = "auto") -> dict:
    """Measure one size in this (fresh) process."""
    import torch
    from PIL import Image

    import deepraft
    from deepraft.core.imageio import encode_image, read_image

    torch.set_num_threads(os.cpu_count() or 1)
    stamper = deepraft.load(model, device=device, engine=engine)
    data = _photo_bytes(SIZES[label])
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    # warm-up (allocations, kernels), then reset nothing: VmHWM after warm-up is the peak
    stamper.protect_batch([read_image(data)])
    stamper.scan_file(data)
    base = _rss_mb("VmRSS")
    t = {"decode": [], "stamp": [], "encode": [], "protect_total": [], "scan_total": [], "scan_pil": []}
    decoded = Image.open(io.BytesIO(data))
    decoded.load()  # a picture the caller already holds decoded: Stamper.scan(PIL image)
    stamper.scan(decoded)
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        pic = read_image(data)
        t1 = time.perf_counter()
        out = stamper.protect(pic)
        sync()
        t2 = time.perf_counter()
        encode_image(out, "JPEG", 95)
        t3 = time.perf_counter()
        stamper.scan_file(data)
        sync()
        t4 = time.perf_counter()
        stamper.scan(decoded)
        sync()
        t["scan_pil"].append(time.perf_counter() - t4)
        t["decode"].append(t1 - t0)
        t["stamp"].append(t2 - t1)
        t["encode"].append(t3 - t2)
        t["protect_total"].append(t3 - t0)
        t["scan_total"].append(t4 - t3)
        del pic, out
    med = {k: statistics.median(v) for k, v in t.items()}
    w, h = SIZES[label]
    return {
        "size": label,
        "width": w,
        "height": h,
        "megapixels": round(w * h / 1e6, 2),
        "engine": stamper.engine,
        **{f"{k}_s": round(v, 4) for k, v in med.items()},
        "protect_per_s": round(1 / med["protect_total"], 2),
        "scan_per_s": round(1 / med["scan_total"], 2),
        "peak_extra_mb": round(_rss_mb("VmHWM") - base, 1),
    }


def bulk_scan(model: str, device: str, count: int, workers: int, engine: str = "auto") -> dict:
    """Scan a folder of ``count`` 1 MP JPEGs with DataLoader workers (a progress bar on stderr)."""
    from PIL import Image
    from rich.progress import track

    import deepraft

    stamper = deepraft.load(model, device=device, engine=engine)
    base = Image.open(PHOTO).convert("RGB").resize(SIZES["1MP"], Image.Resampling.BICUBIC)
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i in range(count):
            p = Path(d) / f"{i:05d}.jpg"
            base.rotate(i % 7, resample=Image.Resampling.NEAREST).save(p, quality=85 + i % 10)
            paths.append(p)
        t0 = time.perf_counter()
        n = sum(
            1
            for _ in track(
                stamper.scan_files(paths, workers=workers, batch_size=64),
                total=count,
                description="bulk scan",
                transient=True,
            )
        )
        wall = time.perf_counter() - t0
    return {
        "images": n,
        "image_size": "1MP JPEG",
        "workers": workers,
        "seconds": round(wall, 2),
        "images_per_s": round(n / wall, 1),
    }


def scanner_throughput(model: str, device: str, batch: int = 1024, seconds: float = 5.0, engine: str = "auto") -> dict:
    """Model-only scanning throughput on already-decoded 256 px images (the scan's resizes and
    reads, run by the scan engine)."""
    import torch

    import deepraft

    stamper = deepraft.load(model, device=device, engine=engine)
    x = torch.rand(batch, 3, 256, 256, device=stamper.device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.startswith("cuda")
        else torch.autocast("cpu", enabled=False)
    )
    n, t0 = 0, time.perf_counter()
    with torch.inference_mode(), amp:
        stamper.copies.score(x)
        sync()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            stamper.copies.score(x)
            n += batch
        sync()
    wall = time.perf_counter() - t0
    return {"batch": batch, "input": "256x256 decoded tensors", "images_per_s": round(n / wall, 1)}


def hardware(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def markdown(res: dict) -> str:
    lines = [
        f"# Speed: model `{res['model']}` on {res['hardware']} ({res['device']}, scan engine "
        f"{res.get('engine', 'torch')})",
        "",
        "| size | decode s | stamp s | encode s | protect total s | scan total s | scan of a decoded image s | "
        "protect/s | scan/s | peak extra MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["sizes"]:
        lines.append(
            f"| {r['size']} ({r['width']}x{r['height']}) | {r['decode_s']} | {r['stamp_s']} | {r['encode_s']} | "
            f"{r['protect_total_s']} | {r['scan_total_s']} | {r.get('scan_pil_s', '-')} | {r['protect_per_s']} | "
            f"{r['scan_per_s']} | "
            f"{r['peak_extra_mb']} |"
        )
    b, s = res.get("bulk"), res.get("scanner")
    if b:
        lines += [
            "",
            f"Bulk scan: {b['images']} {b['image_size']} files with {b['workers']} DataLoader workers: "
            f"{b['seconds']} s, {b['images_per_s']} images/s.",
        ]
    if s:
        lines += [
            "",
            f"Scanner alone (resize + network, batch {s['batch']}, {s['input']}): {s['images_per_s']} images/s.",
        ]
    lines += [
        "",
        "protect total = decode JPEG + stamp at full resolution + encode JPEG q95; scan total = bytes to "
        "decision (reduced-scale JPEG decode straight to the working copy); scan of a decoded image = "
        "Stamper.scan on a PIL image already decoded (resized straight to the working copy). Medians of "
        f"{res['repeats']} runs.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--engine", default="auto", help="scan engine: auto, torch or onnxruntime")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", nargs="*", default=list(SIZES))
    ap.add_argument("--bulk", type=int, default=1000, help="images in the bulk scan (0: skip)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=HERE / "results", help="where the tables go")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_size(args.model, args.device, args.one, args.repeats, args.engine)))
        return
    sizes = []
    for label in args.sizes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--model",
                args.model,
                "--device",
                args.device,
                "--repeats",
                str(args.repeats),
                "--engine",
                args.engine,
                "--one",
                label,
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        sizes.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(sizes[-1]))
    res = {
        "model": args.model,
        "device": args.device,
        "hardware": hardware(args.device),
        "engine": sizes[0]["engine"] if sizes else args.engine,  # what the stamper resolved it to
        "repeats": args.repeats,
        "sizes": sizes,
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.bulk:
        res["bulk"] = bulk_scan(args.model, args.device, args.bulk, args.workers, args.engine)
        print(json.dumps(res["bulk"]))
    batch = 1024 if args.device.startswith("cuda") else 256
    res["scanner"] = scanner_throughput(args.model, args.device, batch=batch, engine=args.engine)
    print(json.dumps(res["scanner"]))
    args.out.mkdir(parents=True, exist_ok=True)
    name = Path(args.model).name  # a card folder given as a path: its folder name, no slashes in the file name
    tag = ("cuda" if args.device.startswith("cuda") else "cpu") + ("" if args.model == "default" else f"_{name}")
    tag += "" if args.engine == "auto" else f"_{args.engine}"
    (args.out / f"speed_{tag}.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / f"speed_{tag}.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
