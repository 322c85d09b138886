"""Images per second of an archive scan: ``deepraft archive-scan`` (Ray Data actors) against the
plain ``deepraft scan`` on the same folder and machine, each a fresh command, wall time from
start to results (model loads and, for Ray, starting the local cluster included).

    python benchmarks/archive_scan.py [--copies 8] [--actors 2] [--out FILE]

The folder holds ``--copies`` copies of each example photo (``examples/photos``), re-encoded so
that no two files are alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "photos"


def make_archive(folder: Path, copies: int) -> int:
    n = 0
    for p in sorted(EXAMPLES.glob("*.jpg")):
        with Image.open(p) as im:
            rgb = im.convert("RGB")
            for c in range(copies):
                rgb.save(folder / f"{p.stem}.{c}.jpg", "JPEG", quality=90 - c)
                n += 1
    return n


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    cli = [sys.executable, "-m", "deepraft.apps.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "archive"
        folder.mkdir()
        n = make_archive(folder, args.copies)
        plain = timed([*cli, "scan", str(folder), "--json"])
        ray = timed(
            [*cli, "archive-scan", str(folder), "--out", str(Path(tmp) / "r.parquet"), "--actors", str(args.actors)]
        )
    res = {
        "images": n,
        "actors": args.actors,
        "plain_scan": {"seconds": round(plain, 2), "images_per_s": round(n / plain, 2)},
        "ray_archive_scan": {"seconds": round(ray, 2), "images_per_s": round(n / ray, 2)},
    }
    print(json.dumps(res, indent=2))
    heldout.write_json(args.out, res)


if __name__ == "__main__":
    main()
