"""deepraft against invisible-watermark (rivaGan, dwtDctSvd) on the same photos and attacks.

    python benchmarks/peers.py [--data ../shared/data/photos/test] [--variants 2] [--photos N] [--quick]

Each method stamps every photo, then every condition of the evaluation's attack grid is applied
(same random draws) to the stamped and to the clean photo. Scores: deepraft's scanner logit;
for invisible-watermark, the number of decoded bits that match the embedded 32-bit payload
(each peer's own decoding rule). Every method's threshold is set for FPR 1e-3 on the clean
samples of all conditions pooled, so the three are compared at the same false-positive rate.
Writes benchmarks/results/peers.json, peers.md and peers.png.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
PAYLOAD = [int(b) for b in np.unpackbits(np.frombuffer(b"DRft", dtype=np.uint8))]  # 32 bits


class DeepRaft:
    name = "deepraft default"

    def __init__(self, model: str) -> None:
        import deepraft

        self.stamper = deepraft.load(model, device="cpu")

    def embed(self, img: Image.Image) -> Image.Image:
        from deepraft.core.imageio import Picture

        return Image.fromarray(self.stamper.protect_batch([Picture(rgb=np.asarray(img))])[0].rgb)

    def scores(self, imgs: list[Image.Image]) -> list[float]:
        return [r.score for r in self.stamper.scan_batch([im.convert("RGB") for im in imgs])]


class InvisibleWatermark:
    def __init__(self, method: str) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self.method = method
        self.name = f"invisible-watermark {method}"
        self.encoder = WatermarkEncoder()
        self.encoder.set_watermark("bits", PAYLOAD)
        self.decoder = WatermarkDecoder("bits", 32)
        if method == "rivaGan":
            WatermarkEncoder.loadModel()

    def embed(self, img: Image.Image) -> Image.Image:
        bgr = np.ascontiguousarray(np.asarray(img)[:, :, ::-1])
        out = self.encoder.encode(bgr, self.method)
        return Image.fromarray(np.ascontiguousarray(out[:, :, ::-1]))

    def scores(self, imgs: list[Image.Image]) -> list[float]:
        out = []
        for im in imgs:
            bgr = np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1])
            try:
                bits = self.decoder.decode(bgr, self.method)
                out.append(float(np.sum(np.asarray(bits, dtype=int)[:32] == np.asarray(PAYLOAD))))
            except Exception:
                out.append(-1.0)
        return out


def perceptual_cost(stamped: list[Image.Image], originals: list[Image.Image]) -> dict[str, object]:
    """SSIMULACRA 2 and Butteraugli max-norm of each stamped photo against its original: mean,
    worst (lowest SSIMULACRA 2, highest Butteraugli), and what computed them."""
    from deepraft.evaluation.quality import perceptual, perceptual_setup

    tool, note = perceptual_setup(())
    rows = [perceptual(np.asarray(o), {"": np.asarray(s.convert("RGB"))}, tool) for s, o in zip(stamped, originals)]
    out: dict[str, object] = {"perceptual_note": note}
    for key, worst in (("ssimulacra2", min), ("butteraugli_max", max)):
        vals = [r[key] for r in rows if key in r]
        if vals:
            out[f"{key}_mean"], out[f"{key}_worst"] = float(np.mean(vals)), float(worst(vals))
    return out


def _draw(seed: int, photo: int, edit: int, variant: int) -> int:
    from deepraft.core.data import sample_seed

    return sample_seed(seed, photo, edit, variant)


def run(methods, photos: list[Path], grid, variants: int, seed: int, perceptual: bool = True) -> dict:
    from rich.progress import track

    from deepraft.core.imageio import Picture
    from deepraft.core.measures import psnr_uint8
    from deepraft.edits.grids import conditions
    from deepraft.evaluation.calibrate import threshold_at_fpr
    from deepraft.evaluation.kernel import files_scenery, grid_edits, measure, others_of
    from deepraft.evaluation.metrics import rate_above, roc_auc, tpr_at_fpr
    from deepraft.evaluation.runner import view_variant

    conds = conditions(grid)
    originals = [Image.open(p).convert("RGB") for p in photos]
    results = {}
    for m in methods:
        t0 = time.perf_counter()
        stamped = [m.embed(im) for im in originals]
        embed_s = (time.perf_counter() - t0) / len(originals)
        psnrs = [psnr_uint8(np.asarray(s), np.asarray(o)) for s, o in zip(stamped, originals)]
        perc = perceptual_cost(stamped, originals) if perceptual else {}
        pos: dict[str, list[float]] = {}
        neg: dict[str, list[float]] = {}
        timing = [0.0, 0]  # seconds in the method's detector, pictures it scored

        def detect(pics: list[Picture], m=m, timing=timing) -> list[float]:
            t1 = time.perf_counter()
            sc = m.scores([Image.fromarray(p.rgb) for p in pics])
            timing[0] += time.perf_counter() - t1
            timing[1] += len(pics)
            return sc

        for pi, (s_img, c_img) in enumerate(track(list(zip(stamped, originals)), description=m.name)):
            draws = partial(_draw, seed, pi)
            edits = grid_edits(conds, files_scenery(others_of(photos, photos[pi])))
            s_pic, c_pic = Picture(rgb=np.asarray(s_img)), Picture(rgb=np.asarray(c_img))
            for smp in measure(detect, s_pic, c_pic, edits, variants, seed=draws, view=view_variant):
                (pos if smp.kind == "stamped" else neg).setdefault(smp.edit, []).append(smp.score)
        t_detect, n_detect = timing
        pooled = np.concatenate([np.array(v) for v in neg.values()])
        thr = threshold_at_fpr(pooled, 1e-3)
        rows = {
            lab: {
                "tpr": rate_above(np.array(pos[lab]), thr),
                "fpr": rate_above(np.array(neg[lab]), thr),
                "auc": roc_auc(np.array(pos[lab]), np.array(neg[lab])),
                "tpr_own_1e-2": tpr_at_fpr(np.array(pos[lab]), np.array(neg[lab]), 1e-2)
                if len(neg[lab]) >= 100
                else None,
            }
            for lab in pos
        }
        results[m.name] = {
            "embed_s_per_image": round(embed_s, 4),
            "detect_s_per_image": round(t_detect / n_detect, 4),
            "psnr_mean": float(np.mean(psnrs)),
            "psnr_min": float(np.min(psnrs)),
            **perc,
            "threshold": thr,
            "n_clean_pooled": int(pooled.size),
            "conditions": rows,
        }
        print(
            f"{m.name}: PSNR {np.mean(psnrs):.2f} dB, SSIMULACRA 2 {perc.get('ssimulacra2_mean', float('nan')):.2f}, "
            f"Butteraugli max {perc.get('butteraugli_max_mean', float('nan')):.2f}, embed {embed_s:.3f} s, "
            f"detect {t_detect / n_detect * 1000:.1f} ms per image",
            flush=True,
        )
    labels = [label for label, _ in edits]
    return {"photos": len(photos), "variants": variants, "conditions": labels, "methods": results}


def markdown(res: dict) -> str:
    names = list(res["methods"])
    lines = [
        "# deepraft vs invisible-watermark",
        "",
        (
            f"{res['photos']} photos, {res['variants']} variant(s) per photo and condition, each stamped and clean. "
            "TPR at the threshold that gives FPR 1e-3 on each method's pooled clean samples "
            f"({next(iter(res['methods'].values()))['n_clean_pooled']} per method)."
        ),
        "",
        "| | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for key, label in (
        ("psnr_mean", "PSNR dB (mean)"),
        ("ssimulacra2_mean", "SSIMULACRA 2 (mean; higher: closer, 90: visually lossless)"),
        ("ssimulacra2_worst", "SSIMULACRA 2 (worst photo)"),
        ("butteraugli_max_mean", "Butteraugli max-norm (mean; lower: closer, <1: looks the same)"),
        ("butteraugli_max_worst", "Butteraugli max-norm (worst photo)"),
        ("embed_s_per_image", "embed s / image"),
        ("detect_s_per_image", "detect s / image"),
    ):
        if all(key in res["methods"][n] for n in names):
            lines.append(f"| {label} | " + " | ".join(f"{res['methods'][n][key]:.4g}" for n in names) + " |")
    lines += ["", "| attack | " + " | ".join(f"TPR {n}" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for lab in res["conditions"]:
        lines.append(
            f"| {lab} | " + " | ".join(f"{res['methods'][n]['conditions'][lab]['tpr']:.3f}" for n in names) + " |"
        )
    lines += ["", *comparison(res), "", "![TPR per attack](peers.png)", ""]
    return "\n".join(lines)


def comparison(res: dict) -> list[str]:
    """The first method against each other one: conditions won, tied and lost, and speed ratios."""
    names = list(res["methods"])
    ours = res["methods"][names[0]]
    out = []
    for n in names[1:]:
        peer = res["methods"][n]
        diff = {lab: ours["conditions"][lab]["tpr"] - peer["conditions"][lab]["tpr"] for lab in res["conditions"]}
        lost = [
            f"{lab} ({ours['conditions'][lab]['tpr']:.2f} vs {peer['conditions'][lab]['tpr']:.2f})"
            for lab, d in diff.items()
            if d < 0
        ]
        won = sum(d > 0 for d in diff.values())
        out.append(
            f"- {names[0]} vs {n}: higher TPR on {won} of {len(diff)} conditions, equal on "
            f"{sum(d == 0 for d in diff.values())}, lower on {len(lost)}"
            + (f" ({', '.join(lost)})" if lost else "")
            + f"; embedding {_speed_ratio(peer['embed_s_per_image'], ours['embed_s_per_image'])} and detection "
            f"{_speed_ratio(peer['detect_s_per_image'], ours['detect_s_per_image'])}."
        )
    return out


def _speed_ratio(theirs_s: float, ours_s: float) -> str:
    """'12x faster' or '3.4x slower' (ours against theirs, seconds per image)."""
    r = theirs_s / ours_s
    return f"{r:.2g}x faster" if r >= 1 else f"{1 / r:.2g}x slower"


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = res["conditions"]
    names = list(res["methods"])
    fig, ax = plt.subplots(figsize=(max(8.0, 0.32 * len(labels)), 4.5))
    width = 0.8 / len(names)
    x = np.arange(len(labels))
    for i, n in enumerate(names):
        ax.bar(x + i * width, [res["methods"][n]["conditions"][lab]["tpr"] for lab in labels], width, label=n)
    ax.set_xticks(x + 0.4 - width / 2, labels, rotation=75, fontsize=7)
    ax.set_ylabel("TPR at FPR 1e-3")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(-0.5, len(labels))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(names), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    from deepraft.core.data import find_images
    from deepraft.edits.grids import GRID, QUICK_GRID

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "photos" / "test")
    ap.add_argument("--model", default="default")
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", type=int, default=None, help="only the first N photos (rivaGan takes ~2 s a scan)")
    ap.add_argument("--quick", action="store_true", help="the quick grid on 6 photos")
    args = ap.parse_args()
    photos = find_images(args.data, "folder")[: args.photos]
    grid = QUICK_GRID if args.quick else GRID
    if args.quick:
        photos = photos[:6]
    methods = [DeepRaft(args.model), InvisibleWatermark("rivaGan"), InvisibleWatermark("dwtDctSvd")]
    res = run(methods, photos, grid, args.variants, args.seed)
    res["data"] = str(args.data.resolve())
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "peers.json").write_text(json.dumps(res, indent=2) + "\n")
    plot(res, out / "peers.png")
    (out / "peers.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
