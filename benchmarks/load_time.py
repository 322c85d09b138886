"""How long ``deepraft.load()`` takes to be ready to scan on a CPU: with the scan graph the model
card ships (what a plain install does) and with the graph exported from the weights at load
(what a card without one needs, with the ``onnx`` package). Each in a fresh interpreter, so no
import or cache of one run helps the next; the median of ``--repeats`` runs.

    python benchmarks/load_time.py [--model default] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout

PROBE = """
import time, warnings
t0 = time.perf_counter()
import deepraft
from deepraft.runtime import stamper as st
t1 = time.perf_counter()
if {exported}:
    st.shipped_graph = lambda path: None  # as a card without scanner.onnx
s = deepraft.load({model!r}, device="cpu")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, s.engine, s._read.source if s._read is not None else "none")
"""


def measure(model: str, exported: bool, repeats: int) -> dict[str, object]:
    rows = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(model=model, exported=exported)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout.split()
        rows.append((float(out[0]), float(out[1]), out[2], out[3]))
    return {
        "import_s": statistics.median(r[0] for r in rows),
        "load_s": statistics.median(r[1] for r in rows),
        "engine": rows[0][2],
        "graph": rows[0][3],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res = {"model": args.model, "repeats": args.repeats}
    res["shipped"] = measure(args.model, False, args.repeats)
    res["exported"] = measure(args.model, True, args.repeats)
    for k in ("shipped", "exported"):
        r = res[k]
        print(f"{k:9s} graph: import {r['import_s']:.2f} s, load {r['load_s']:.2f} s ({r['engine']}, {r['graph']})")
    heldout.write_json(args.out, res)


if __name__ == "__main__":
    main()
