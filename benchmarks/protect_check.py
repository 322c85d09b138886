"""What the "already carries the stamp" check of protect costs: one scan of the decoded picture
(``Stamper.scan``, the card's calibrated threshold), beside the rest of a protect.

    python benchmarks/protect_check.py [--model default] [--device cpu] [--repeats 5] [--out DIR]

Writes protect_check_<device>.json to benchmarks/results/ (or --out) and prints a table."""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PHOTO = HERE.parent / "examples" / "photos" / "gcompris-qt-data__erase_giraffe.jpg"
SIZES = {"1MP": (1152, 864), "12MP": (4000, 3000)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()

    import torch
    from PIL import Image

    import deepraft
    from deepraft.core.imageio import encode_image, read_image

    torch.set_num_threads(os.cpu_count() or 1)
    stamper = deepraft.load(args.model, device=args.device)
    rows = {}
    for label, size in SIZES.items():
        buf = io.BytesIO()
        Image.open(PHOTO).convert("RGB").resize(size, Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
        data = buf.getvalue()
        pic = read_image(data, quiet=True)
        stamper.scan(pic)
        stamper.protect_batch([pic])  # warm-up
        t = {"decode": [], "check (one scan)": [], "stamp": [], "encode": []}
        for _ in range(args.repeats):
            a = time.perf_counter()
            pic = read_image(data, quiet=True)
            b = time.perf_counter()
            stamper.scan(pic)
            c = time.perf_counter()
            out = stamper.protect(pic)
            d = time.perf_counter()
            encode_image(out, "JPEG", quality=95)
            e = time.perf_counter()
            for k, v in zip(t, (b - a, c - b, d - c, e - d)):
                t[k].append(v * 1000)
        med = {k: statistics.median(v) for k, v in t.items()}
        med["protect without the check"] = med["decode"] + med["stamp"] + med["encode"]
        med["check share"] = med["check (one scan)"] / (med["protect without the check"] + med["check (one scan)"])
        rows[label] = med
    result = {
        "model": args.model,
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "median_ms": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"protect_check_{args.device}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"model {args.model} on {args.device}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print("| size | decode | check (one scan) | stamp | encode | check share |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, m in rows.items():
        print(
            f"| {label} | {m['decode']:.0f} ms | {m['check (one scan)']:.0f} ms | {m['stamp']:.0f} ms | "
            f"{m['encode']:.0f} ms | {100 * m['check share']:.0f} % |"
        )


if __name__ == "__main__":
    main()
