"""How far the fast scan path's scores sit from a full decode's, on large JPEGs.

    python benchmarks/scan_decode.py MODEL [--data ../shared/data/photos/val] [--photos 15] [--size 4000 3000]
                                         [--factors 2 1.5] [--out FILE]

Each photo is cut to the aspect of --size, enlarged to it (12 MP by default), stamped, and both
copies (clean, stamped) are saved as JPEG q90. Each copy is then scored twice: from the full
decode (``Stamper.scores`` on the decoded picture, what calibration and evaluation read) and by
``Stamper.scan_file``'s path (``read_work_copy``: a DCT-scaled decode no smaller than
``draft_factor`` times the working copy, resized straight to it) for each factor. Prints and
writes the largest and mean differences and how many copies each path flags at the card's
threshold.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

import deepraft
from deepraft.core.data import find_images
from deepraft.core.imageio import encode_image, picture_from_pil, read_image, read_work_copy

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402


def check(model: str, files: list[Path], size: tuple[int, int], factors: list[float]) -> dict[str, object]:
    st = deepraft.load(model)
    thr = st.card.threshold()
    rows = []
    for f in files:
        big = ImageOps.fit(Image.open(f).convert("RGB"), (size[0] // 5, size[1] // 5)).resize(size, Image.BICUBIC)
        pic = picture_from_pil(big)
        for kind, p in (("clean", pic), ("stamped", st.protect(pic))):
            data = encode_image(p, "JPEG", 90)
            row = {"photo": f.name, "kind": kind, "full": st.copies.score_pictures([read_image(io.BytesIO(data))])[0]}
            for k in factors:
                copy = read_work_copy(data, st.scan_size, mode=st.work_mode, draft_factor=k)
                row[f"draft {k:g}"] = st.copies.score_arrays([copy])[0]
            rows.append(row)
    paths = ["full"] + [f"draft {k:g}" for k in factors]
    summary: dict[str, object] = {}
    for name in paths[1:]:
        diff = np.array([r[name] - r["full"] for r in rows])
        summary[name] = {"max_abs_diff": float(np.abs(diff).max()), "mean_diff": float(diff.mean())}
    flagged = {
        n: {kind: sum(r[n] > thr for r in rows if r["kind"] == kind) for kind in ("clean", "stamped")} for n in paths
    }
    return {
        "model": model,
        "threshold": thr,
        "size": f"{size[0]}x{size[1]}",
        "n_photos": len(files),
        "differences": summary,
        "flagged": flagged,
        "rows": rows,
    }


def main() -> None:
    ap = heldout.parser(__doc__, photos=15)
    ap.add_argument("--size", type=int, nargs=2, default=(4000, 3000), metavar=("WIDTH", "HEIGHT"))
    ap.add_argument("--factors", type=float, nargs="+", default=[2.0, 1.5])
    args = ap.parse_args()
    files = find_images(args.data)[: args.photos]
    if not files:
        raise SystemExit(f"{args.data}: no photos")
    res = check(args.model, files, tuple(args.size), args.factors)
    print(f"{res['n_photos']} photos at {res['size']}, threshold {res['threshold']:.3f}")
    for name, d in res["differences"].items():  # type: ignore[union-attr]
        print(f"{name}: largest |score - full decode's| {d['max_abs_diff']:.3f}, mean difference {d['mean_diff']:+.4f}")
    for name, c in res["flagged"].items():  # type: ignore[union-attr]
        print(f"{name}: flagged {c['stamped']}/{res['n_photos']} stamped, {c['clean']}/{res['n_photos']} clean")
    heldout.write_json(args.out, res, indent=1)


if __name__ == "__main__":
    main()
