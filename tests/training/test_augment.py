import pytest
import torch

from deepraft.core.config import AugmentConfig
from deepraft.edits import functional as AF
from deepraft.training.augment import AUGMENTATIONS, AugmentLayer, curriculum, draw_subset, replay

DIFFERENTIABLE = [n for n in AUGMENTATIONS if n != "jpeg"]


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_attack_shape_gradient_and_replay(name):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 3, 40, 48) * 0.8 + 0.1).requires_grad_(True)
    params = AUGMENTATIONS[name].sample(3, (40, 48), 1.0, g)
    y = AUGMENTATIONS[name].apply(x, params)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    (y * torch.linspace(0, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = AUGMENTATIONS[name].apply(x.detach(), params)
    assert torch.allclose(again, y.detach(), atol=1e-6)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_replay_runs_in_float32_under_bfloat16_autocast(name):
    """A GPU training step stamps under bfloat16 autocast; the edits must still run (the hue
    turn's colour-space inverse and the antialiased resizes have no bfloat16 kernel) and give
    float32 pictures with a gradient back to the bfloat16 input."""
    from deepraft.training.augment import AugmentRecord

    g = torch.Generator().manual_seed(2)
    x = (torch.rand(4, 3, 32, 40) * 0.8 + 0.1).bfloat16().requires_grad_(True)
    record = AugmentRecord(strength=1.0, ops=[(name, AUGMENTATIONS[name].sample(4, (32, 40), 1.0, g))])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = replay(x, record)
    assert y.dtype == torch.float32 and y.shape == x.shape and torch.isfinite(y).all()
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_strength_zero_is_identity(name):
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4) * 0.8 + 0.1, size=(32, 32), mode="bilinear")
    y = AUGMENTATIONS[name].apply(x, AUGMENTATIONS[name].sample(2, (32, 32), 0.0, g))
    assert (y - x).abs().mean() < 1e-2


@pytest.mark.parametrize("name", ["rotate", "crop", "color", "blur", "defocus", "perspective", "noise"])
def test_gradcheck(name):
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(1, 3, 8, 8, dtype=torch.float64) * 0.6 + 0.2).requires_grad_(True)
    params = {k: v.double() for k, v in AUGMENTATIONS[name].sample(1, (8, 8), 0.5, g).items()}
    assert torch.autograd.gradcheck(lambda t: AUGMENTATIONS[name].apply(t, params), (x,), eps=1e-6, atol=1e-4)


def test_jpeg_modes():
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    q = torch.tensor([50.0, 90.0])
    real = AF.jpeg(x, q, "real_ste")
    real.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # straight-through
    diff = AF.jpeg(x, q, "differentiable")
    assert (diff - real).abs().mean() < 0.05
    with pytest.raises(ValueError):
        AF.jpeg(x, q, "nope")


def test_hue_shift_full_turn_is_identity():
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(AF.hue_shift(x, torch.tensor([1.0, 0.0])), x, atol=1e-5)


def test_curriculum():
    assert curriculum(0, 10, 20) == 0.0
    assert curriculum(15, 10, 20) == 0.5
    assert curriculum(99, 10, 20) == 1.0
    assert curriculum(5, 5, 5) == 1.0


def test_attack_layer_stochastic_concatenation_and_replay():
    layer = AugmentLayer(AugmentConfig(enabled=True, aug_start=0, aug_end=1, max_ops=3, p_clean=0.0))
    x = torch.rand(4, 3, 32, 32)
    orders = set()
    for seed in range(12):
        g = torch.Generator().manual_seed(seed)
        y, rec = layer(x, 5, g)
        orders.add(tuple(n for n, _ in rec.ops))
        assert torch.allclose(replay(x, rec), y, atol=1e-6)
    assert len(orders) > 3
    assert any(len(o) > 1 for o in orders) and () in orders or len(orders) > 5


def test_attack_layer_always_ops_come_first_on_every_step():
    layer = AugmentLayer(
        AugmentConfig(
            enabled=True,
            aug_start=0,
            aug_end=1,
            max_ops=2,
            p_clean=0.0,
            always=["crop"],
            names=["rotate", "noise", "jpeg"],
        )
    )
    x = torch.rand(3, 3, 32, 32)
    lengths = set()
    for seed in range(10):
        y, rec = layer(x, 5, torch.Generator().manual_seed(seed))
        names = [n for n, _ in rec.ops]
        assert names[0] == "crop" and "crop" not in names[1:]
        lengths.add(len(names))
        assert torch.allclose(replay(x, rec), y, atol=1e-6)
    assert lengths == {1, 2, 3}
    y, rec = layer(x, 0, torch.Generator())  # before the curriculum starts nothing happens
    assert rec.ops == [] and rec.strength == 0.0 and torch.equal(y, x)
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentLayer(AugmentConfig(always=["teleport"]))


def test_attack_layer_disabled_and_unknown():
    layer = AugmentLayer(AugmentConfig(enabled=False))
    x = torch.rand(2, 3, 16, 16)
    y, rec = layer(x, 10**6, torch.Generator())
    assert torch.equal(x, y) and rec.ops == []
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentLayer(AugmentConfig(names=["rotate", "teleport"]))


def _draws(weights, draws=3000):
    """The edits drawn, in order, in ``draws`` subsets of up to two of five edits."""
    names = ["rotate", "noise", "jpeg", "blur", "crop"]
    layer = AugmentLayer(AugmentConfig(enabled=True, aug_end=0, max_ops=2, names=names, weights=weights))
    g = torch.Generator().manual_seed(0)
    return [tuple(n for n, _ in layer.sample(1, (8, 8), 1, g).ops) for _ in range(draws)]


def test_attack_weights_set_how_often_an_edit_is_drawn_not_its_place():
    for picked in _draws({"jpeg": 4.0}):
        assert len(picked) == len(set(picked))  # without replacement: an edit once per chain
    even = {n: sum(n in p for p in _draws({})) for n in ["rotate", "noise", "jpeg", "blur", "crop"]}
    heavy_draws = _draws({"jpeg": 4.0})
    heavy = {n: sum(n in p for p in heavy_draws) for n in even}
    # uniform: every edit about equally often; jpeg at weight 4 far more often than any other
    assert max(even.values()) < 1.25 * min(even.values())
    assert heavy["jpeg"] > 1.8 * max(v for n, v in heavy.items() if n != "jpeg")
    # the drawn pair is shuffled: jpeg is first in about half of the pairs that hold it
    pairs = [p for p in heavy_draws if len(p) == 2 and "jpeg" in p]
    assert 0.44 < sum(p[0] == "jpeg" for p in pairs) / len(pairs) < 0.56


def test_draw_subset_uniform_path_is_the_plain_permutation_and_weights_are_checked():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert draw_subset(6, 3, None, g1) == torch.randperm(6, generator=g2)[:3].tolist()
    g = torch.Generator().manual_seed(1)
    picked = draw_subset(4, 9, torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64), g)
    assert sorted(picked) == [0, 1, 2, 3]
    assert draw_subset(4, 0, torch.ones(4, dtype=torch.float64), g) == []
    with pytest.raises(ValueError, match="not in augment.names"):
        AugmentLayer(AugmentConfig(names=["rotate"], weights={"jpeg": 2.0}))
    with pytest.raises(ValueError, match="finite and positive"):
        AugmentLayer(AugmentConfig(names=["rotate", "jpeg"], weights={"jpeg": 0.0}))


def _marked(h=32, w=32):
    x = torch.zeros(1, 3, h, w)
    x[..., 2, 5] = 1.0  # a marked pixel near the top-left corner
    return x


@pytest.mark.parametrize("k,where", [(0, (2, 5)), (1, (26, 2)), (2, (29, 26)), (3, (5, 29)), (4, (2, 26))])
def test_d4_moves_a_marked_pixel_as_a_turn_or_mirror_would(k, where):
    y = AF.d4(_marked(), torch.tensor([k]))
    assert y[0, 0].nonzero().tolist() == [list(where)]


def test_d4_all_eight_are_distinct():
    x = torch.rand(1, 3, 16, 16)
    outs = [AF.d4(x, torch.tensor([k])) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8


def test_affine_shrink_leaves_a_border_of_the_fill_colour():
    x = torch.full((1, 3, 40, 40), 0.5)
    fill = torch.tensor([[1.0, 0.0, 0.0]])
    y = AF.affine(x, torch.zeros(1), torch.tensor([0.5]), torch.ones(1), torch.zeros(1, 2), fill)
    assert torch.allclose(y[0, :, 0, 0], fill[0])  # corner: border
    assert torch.allclose(y[0, :, 20, 20], torch.full((3,), 0.5), atol=1e-5)  # centre: picture
    border = (y[0, 1] < 0.25).float().mean()
    assert 0.65 < border < 0.85  # 1 - 0.5**2 of the area, up to the blended edge


def test_affine_rotation_has_black_corners_and_keeps_the_centre():
    x = torch.full((1, 3, 64, 64), 0.7)
    y = AF.affine(x, torch.tensor([30.0]), torch.ones(1), torch.ones(1), torch.zeros(1, 2), torch.zeros(1, 3))
    assert y[0, :, 0, 0].abs().max() < 1e-6 and torch.allclose(y[0, :, 32, 32], torch.full((3,), 0.7), atol=1e-5)


def test_collage_pastes_a_shrunken_copy_into_another_picture():
    a, b = torch.full((1, 3, 40, 40), 0.9), torch.full((1, 3, 40, 40), 0.1)
    x = torch.cat([a, b])
    y = AF.collage(x, torch.tensor([0.5, 1.0]), torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([1, 1]))
    assert torch.allclose(y[0, :, :20, 20:], torch.full((3, 20, 20), 0.9))  # top-right quarter
    assert torch.allclose(y[0, :, 20:, :], torch.full((3, 20, 40), 0.1))  # the rest: the other picture
    assert torch.allclose(y[1], b[0])  # scale 1: the picture itself


def test_occlude_covers_the_stated_boxes():
    x = torch.zeros(1, 3, 20, 20)
    boxes = torch.tensor([[[0.0, 0.8, 1.0, 0.2], [0.0, 0.0, 0.0, 0.0]]])
    colors = torch.tensor([[[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]]])
    y = AF.occlude(x, boxes, colors)
    assert y[0, 0, 16:].eq(1).all() and y[0, 0, :16].eq(0).all()


def test_grating_is_unit_rms_at_the_stated_frequency():
    gr = AF.grating(1, 64, 64, torch.tensor([8.0]), torch.tensor([0.0]), torch.tensor([0.3]))
    assert abs(float(gr.pow(2).mean()) - 1.0) < 1e-3
    spec = torch.fft.fft2(gr[0, 0]).abs()
    assert spec[0, 8] > 0.45 * spec.sum() and spec[0, 64 - 8] > 0.45 * spec.sum()


def test_sample_negatives_fractions_and_patterns():
    from deepraft.training.augment import sample_negatives

    assert sample_negatives(8, (16, 16), AugmentConfig(), torch.Generator()) is None
    neg = sample_negatives(4000, (16, 16), AugmentConfig(p_swap=0.2, p_pattern=0.3), torch.Generator().manual_seed(0))
    assert abs(float(neg["swap"].float().mean()) - 0.2) < 0.03
    assert abs(float(neg["use_pattern"].float().mean()) - 0.3) < 0.03
    assert not (neg["swap"] & neg["use_pattern"]).any()
    rms = neg["pattern"].pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-3)


def test_pattern_db_makes_the_forged_patterns_stronger_than_the_stamp():
    from deepraft.training.augment import sample_negatives

    cfg = AugmentConfig(p_swap=0.2, p_pattern=0.3)
    plain = sample_negatives(2000, (16, 16), cfg, torch.Generator().manual_seed(0))
    cfg.pattern_db = 14.0
    loud = sample_negatives(2000, (16, 16), cfg, torch.Generator().manual_seed(0))
    assert plain is not None and loud is not None
    assert torch.equal(plain["swap"], loud["swap"]) and torch.equal(plain["use_pattern"], loud["use_pattern"])
    db = 20 * loud["pattern"].pow(2).mean(dim=(1, 2, 3)).sqrt().log10()
    assert float(db.min()) >= -1e-3 and float(db.max()) <= 14.0 + 1e-3
    assert abs(float(db.mean()) - 7.0) < 0.5  # uniform in dB
    shape = loud["pattern"] / loud["pattern"].pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    assert torch.allclose(shape, plain["pattern"], atol=1e-5)  # the same patterns, louder


def test_jitter_moves_the_grid_by_sub_pixels_and_mirrors_the_edges_in():
    x = torch.rand(1, 3, 24, 32)
    one = torch.ones(1)
    right = AF.jitter(x, torch.tensor([[1.0, 0.0]]), one)  # content moves one pixel right
    assert torch.allclose(right[..., 1:], x[..., :-1], atol=1e-5)
    assert torch.allclose(right[..., 0], x[..., 0], atol=1e-5)  # the edge mirrored in
    half = AF.jitter(x, torch.tensor([[0.0, 0.5]]), one)  # half a pixel down: the mean of neighbours
    assert torch.allclose(half[..., 1:, :], (x[..., :-1, :] + x[..., 1:, :]) / 2, atol=1e-5)
    flat = torch.full((1, 3, 16, 16), 0.3)  # no border colour comes in, even when shrunk
    assert torch.allclose(AF.jitter(flat, torch.tensor([[2.0, -2.0]]), torch.tensor([0.97])), flat, atol=1e-6)
    params = AUGMENTATIONS["jitter"].sample(500, (16, 16), 1.0, torch.Generator().manual_seed(0))
    assert params["shift"].abs().max() <= 2.0 and params["shift"].abs().max() > 1.9
    assert params["scale"].log().abs().max() <= 0.03 + 1e-6


def test_exposure_scales_brightness_log_evenly_between_the_inverse_and_the_factor():
    g = torch.Generator().manual_seed(3)
    p = AUGMENTATIONS["exposure"].sample(4000, (8, 8), 1.0, g, 2.0)
    f = p["brightness"]
    assert 0.5 <= float(f.min()) < 0.52 and 1.95 < float(f.max()) <= 2.0
    assert abs(float(f.log().mean())) < 0.03 and abs(float((f > 1).float().mean()) - 0.5) < 0.03
    assert set(p) == {"brightness"}  # nothing but brightness changes
    half = AUGMENTATIONS["exposure"].sample(4000, (8, 8), 0.5, torch.Generator().manual_seed(3), 2.0)["brightness"]
    assert float(half.max()) <= 2.0**0.5 + 1e-6 and float(half.min()) >= 2.0**-0.5 - 1e-6
    x = torch.full((2, 3, 4, 4), 0.3)
    y = AUGMENTATIONS["exposure"].apply(x, {k: v[:2] for k, v in p.items()})
    torch.testing.assert_close(y, (0.3 * f[:2]).clamp(max=1).view(2, 1, 1, 1).expand_as(x))
