import pytest
import torch

from deepraft.evaluation.adversaries import AttackSanityError, TwoClassScanner, check_gradients, run_attack
from deepraft.evaluation.adversaries.runner import check_attack_breaks_base


def linear_score(x: torch.Tensor) -> torch.Tensor:
    """A toy scanner: the stamp is a +0.02 shift of the mean; logits scaled so the margin is
    about 2 at the stamp and gradients are large."""
    return (x.mean(dim=(1, 2, 3)) - 0.51) * 200.0


def stamped_batch(n: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (0.5 + 0.02 + 0.01 * torch.rand(n, 3, 16, 16, generator=g)).clamp(0, 1)


def test_two_class_wrapper():
    m = TwoClassScanner(lambda x: torch.tensor([3.0, -1.0]), threshold=1.0)
    logits = m(torch.zeros(2, 3, 4, 4))
    assert logits.argmax(1).tolist() == [1, 0]
    assert torch.allclose(logits[:, 1] - logits[:, 0], torch.tensor([2.0, -2.0]))


def test_vanishing_gradients_fail_loudly():
    m = TwoClassScanner(lambda x: torch.zeros(x.shape[0]) + 0.0 * x.sum())
    with pytest.raises(AttackSanityError, match="gradients"):
        check_gradients(m, torch.rand(2, 3, 8, 8), torch.ones(2, dtype=torch.long))


def test_apgd_breaks_an_undefended_scanner_and_stays_in_budget():
    x = stamped_batch()
    assert (linear_score(x) > 0).all()
    r = run_attack(linear_score, x, "removal", "apgd-ce", 8 / 255, steps=10)
    assert r.clean_accuracy == 1.0 and r.robust_accuracy == 0.0
    assert r.mean_psnr is not None and r.mean_psnr > 20 * torch.log10(torch.tensor(255 / 8.0)).item() - 0.5
    assert check_attack_breaks_base(linear_score, x, 0.0)["tried"] == [{"eps_255": 8, "robust_accuracy": 0.0}]
    weak = run_attack(linear_score, x, "removal", "apgd-ce", 0.5 / 255, steps=10)
    assert weak.robust_accuracy == 1.0  # the margin needs more than 0.5/255


def test_square_black_box_and_forging():
    x = stamped_batch(4)
    r = run_attack(linear_score, x, "removal", "square", 16 / 255, n_queries=100)
    assert r.robust_accuracy < 1.0
    clean = x - 0.04
    f = run_attack(linear_score, clean, "forging", "apgd-ce", 16 / 255, steps=10)
    assert f.clean_accuracy == 1.0 and f.robust_accuracy == 0.0


def test_smoothed_attack_is_judged_by_the_smoothed_decision():
    x = stamped_batch(3)
    # noise of sigma 0.05 moves the toy score by about 0.36 (a mean over 768 pixels): the margin of
    # about 3 survives it; 8/255 takes the score far below 0, 0.5/255 only by about 0.4
    r = run_attack(linear_score, x, "removal", "apgd-ce", 8 / 255, smoothing_std=0.05, eot=2, steps=5, smooth_n=100)
    assert r.smoothed and r.clean_accuracy == 1.0 and r.robust_accuracy == 0.0
    weak = run_attack(
        linear_score, x, "removal", "apgd-ce", 0.5 / 255, smoothing_std=0.05, eot=2, steps=5, smooth_n=100
    )
    assert weak.clean_accuracy == 1.0 and weak.robust_accuracy == 1.0
    # a stamp at the threshold's edge: one noise-free pass says stamped, the smoothed classifier
    # abstains (about half its draws on each side), and an abstention counts against the defence
    edge = torch.full((3, 3, 16, 16), 0.51 + 0.00025)
    assert (linear_score(edge) > 0).all()
    e = run_attack(linear_score, edge, "removal", "apgd-ce", 8 / 255, smoothing_std=0.05, eot=2, steps=5, smooth_n=100)
    assert e.clean_accuracy == 0.0 and e.robust_accuracy == 0.0
    with pytest.raises(ValueError, match="goal"):
        run_attack(linear_score, x, "steal", "apgd-ce", 8 / 255)
    with pytest.raises(ValueError, match="unknown attack"):
        run_attack(linear_score, x, "removal", "fgsm-nope", 8 / 255)


def test_broken_attack_is_detected():
    x = stamped_batch()
    with pytest.raises(AttackSanityError, match="not working"):
        check_attack_breaks_base(linear_score, x, 0.0, eps_255=(0.1, 0.2))


def test_autoattack_standard_runs_on_two_classes():
    x = stamped_batch(3)
    r = run_attack(linear_score, x, "removal", "autoattack", 8 / 255)
    assert r.clean_accuracy == 1.0 and r.robust_accuracy == 0.0


def test_smoothed_stamp_model_scores_are_deterministic_and_attackable():
    from deepraft.core.config import ModelConfig
    from deepraft.models import build_model

    model = build_model(
        ModelConfig(encoder="unet_tiny", scanner="convnet_tiny", work_size=16, smoothing_std=0.25, scan_draws=5)
    ).eval()
    model.scanner = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 1), torch.nn.Flatten(0))
    torch.nn.init.normal_(model.scanner[1].weight, std=0.1)
    w = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        a, b = model.score(w), model.score(w, chunk=5)  # chunked one image at a time
        single = model.score(w[1:2])
        manual = torch.stack([model.scanner(w[i : i + 1] + model._scan_noise(5, w)).mean() for i in range(3)])
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a[1:2], single, atol=1e-6)
    assert torch.allclose(a, manual, atol=1e-6)
    assert not torch.allclose(a, model.scanner(w))  # the noise does enter
    thr = float(a.min()) - 0.1
    r = run_attack(model.score, w, "removal", "apgd-ce", 32 / 255, threshold=thr, steps=10)
    assert r.clean_accuracy == 1.0 and r.robust_accuracy < 1.0
    plain = build_model(ModelConfig(encoder="unet_tiny", scanner="convnet_tiny", work_size=16)).eval()
    assert torch.equal(plain.score(w), plain.scanner(w))


def test_attack_jobs_and_targets():
    from types import SimpleNamespace

    from deepraft.evaluation.adversaries.runner import AttackSettings, attack_jobs, attack_target

    s = AttackSettings(attacks=("apgd-ce",), goals=("removal", "forging"), linf_eps=(8,), l2_eps=(0.5,))
    assert attack_jobs(s) == [
        ("apgd-ce", "removal", "Linf", 8 / 255),
        ("apgd-ce", "forging", "Linf", 8 / 255),
        ("apgd-ce", "removal", "L2", 0.5),
        ("apgd-ce", "forging", "L2", 0.5),
    ]

    def stamper(std: float, draws: int) -> SimpleNamespace:
        model = SimpleNamespace(score=lambda x, **kw: x, scanner=object())
        mcfg = SimpleNamespace(smoothing_std=std, scan_draws=draws, scan_transpose=True, scan_scales=(1.0, 2.0))
        return SimpleNamespace(card=SimpleNamespace(model=mcfg), model=model)

    def is_base(fn, st: SimpleNamespace) -> bool:  # the deployed score without smoothing noise
        return fn.func is st.model.score and fn.keywords == {"smoothed": False}

    averaged = stamper(0.25, 5)
    t = attack_target(averaged, s)  # the deployed averaged score, exact gradients: no noise added
    assert (t.score_fn, t.sigma, t.attack_sigma, t.mode) == (averaged.model.score, 0.25, 0.0, "smoothed score")
    t = attack_target(averaged, AttackSettings(sigma=0.5))  # an asked-for sigma: Cohen's classifier
    assert is_base(t.score_fn, averaged) and (t.sigma, t.attack_sigma, t.mode) == (0.5, 0.5, "cohen")
    plain = stamper(0.0, 0)
    t = attack_target(plain, s)
    assert is_base(t.score_fn, plain) and (t.attack_sigma, t.mode) == (0.0, "undefended")
    assert t.query_fn is None  # a stamper without a scan engine: Square queries score_fn
    plain.copies = SimpleNamespace(score=lambda x, smoothed=True: x)
    t = attack_target(plain, s)  # Square queries the same score through the stamper's scan engine
    assert t.query_fn.func is plain.copies.score and t.query_fn.keywords == {"smoothed": False}
    assert t.description == "the scanner (the larger score of the copy, its transpose, scales 1 and 2)"


class _Mean(torch.nn.Module):
    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v.mean(dim=1) * self.gain


def test_attacks_aim_at_every_read_of_a_multi_scale_model():
    """A model that reads scales 1 and 2 and the transpose decides on the largest of four reads:
    the attack's target is that score (not the scanner alone), gradients reach the input through
    the antialiased resize, and removal that only fooled one read would not count."""
    from types import SimpleNamespace

    from deepraft.core.config import ModelConfig
    from deepraft.evaluation.adversaries.runner import base_score
    from deepraft.models import build_model

    model = build_model(
        ModelConfig(
            encoder="unet_tiny", scanner="convnet_tiny", work_size=16, scan_scales=(1.0, 2.0), scan_transpose=True
        )
    ).eval()
    torch.manual_seed(0)  # a scanner with signal (an untrained tiny one answers a constant): a
    conv = torch.nn.Conv2d(3, 1, 3)  # random 3x3 filter, not symmetric, so each read differs
    model.scanner = torch.nn.Sequential(conv, torch.nn.Flatten(1)).append(_Mean(50.0))
    st = SimpleNamespace(model=model)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    score = base_score(st)
    with torch.no_grad():
        small = torch.nn.functional.interpolate(x, (16, 16), mode="bilinear", antialias=True)
        reads = [model.scanner(v) for v in (x, x.transpose(-2, -1), small, small.transpose(-2, -1))]
        assert torch.allclose(score(x), torch.stack(reads).amax(0), atol=1e-5)
        assert not torch.allclose(score(x), model.scanner(small))
        thr = float(score(x).min()) - 0.05
    r = run_attack(score, x, "removal", "apgd-ce", 32 / 255, threshold=thr, steps=10)
    assert r.clean_accuracy == 1.0 and r.robust_accuracy < 1.0


def test_square_queries_the_stampers_scan_engine(tmp_path, tiny_card, photo_dir):
    """On a real stamper, Square's queries go through the scan engine (ONNX Runtime on a CPU),
    while the gradient attacks of the sanity check run the PyTorch model."""
    import deepraft
    from deepraft.evaluation.adversaries.runner import AttackSettings, run_attacks

    st = deepraft.load(tiny_card, device="cpu")
    assert st.engine == "onnxruntime"
    calls = []
    engine_read = st.copies.read

    def counted(work: torch.Tensor) -> torch.Tensor:
        calls.append(work.shape[0])
        return engine_read(work)

    st.copies.read = counted
    settings = AttackSettings(
        attacks=("square",), goals=("removal",), linf_eps=(16,), l2_eps=(), n_queries=20, max_photos=2
    )
    summary = run_attacks(st, sorted(photo_dir.iterdir()), tmp_path, settings)
    (row,) = summary["results"]
    assert (row["attack"], row["n"], row["eps_255"]) == ("square", 2, 16.0)
    assert len(calls) >= 2 and set(calls) <= {1, 2}  # Square's queries (the sanity check's APGD ran on PyTorch)
