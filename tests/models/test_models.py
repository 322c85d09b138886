import math

import pytest
import torch
from torch.nn import functional as F

from deepraft.core.config import ModelConfig
from deepraft.core.imageio import work_shape
from deepraft.models import ENCODERS, SCANNERS, build_model, create_encoder, create_scanner
from deepraft.models import functional as Fn


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_shape_and_gradient(name):
    enc = create_encoder(name, work_size=32)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    r = enc(x)
    assert r.shape == (2, 3, 32, 32)
    r.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters())


@pytest.mark.parametrize("name", sorted(SCANNERS))
def test_every_scanner_shape_and_gradient(name):
    scanner = create_scanner(name)
    x = torch.rand(3, 3, 32, 32, requires_grad=True)
    logits = scanner(x)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in scanner.parameters())


def test_unknown_names_are_clear():
    with pytest.raises(KeyError, match="unknown encoder 'nope'"):
        create_encoder("nope")
    with pytest.raises(KeyError, match="unknown scanner 'nope'"):
        create_scanner("nope")


@pytest.mark.parametrize("size", [(64, 64), (64, 256), (300, 75), (37, 129)])
def test_stamp_keeps_size_and_hits_psnr(size):
    model = build_model(
        ModelConfig(encoder="unet_tiny", scanner="convnet_tiny", work_size=32, psnr_target=35.0, mask="texture")
    )
    x = torch.rand(2, 3, *size) * 0.8 + 0.1
    y = model.stamp(x)
    assert y.shape == x.shape
    p = Fn.psnr(y, x)
    assert torch.all(p > 34.0) and torch.all(p < 40.0)
    assert model.scan(y).shape == (2,)


def test_training_forward_orders_stamped_then_clean():
    model = build_model(ModelConfig(encoder="unet_tiny", scanner="convnet_tiny", work_size=32, smoothing_std=0.5))
    x = torch.rand(3, 3, 40, 40)
    out = model(x)
    assert out.stamped.shape == x.shape and out.logits.shape == (6,) and out.copies.shape == (6, 3, 40, 40)
    assert out.messages is None  # a zero-bit model
    model.eval()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(model.scan(x, noise=True, generator=g1), model.scan(x, noise=True, generator=g2))
    assert not torch.equal(model.scan(x, noise=True), model.scan(x, noise=False))


@pytest.mark.parametrize("out_size", [(300, 517), (64, 90), (128, 128), (7, 500)])
def test_upsample_matches_interpolate_and_strips(out_size):
    """Float32 sums of interpolation weights: equal to interpolate's to a few float32 steps of
    the values (about 4 here; 1e-5 was exceeded by 1.8e-5 on some unseeded draws)."""
    r = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(r, size=out_size, mode="bilinear", align_corners=False)
    assert torch.allclose(Fn.upsample(r, *out_size), ref, atol=1e-4)
    h = out_size[0]
    strips = torch.cat([Fn.upsample(r, *out_size, a, min(h, a + 50)) for a in range(0, h, 50)], dim=2)
    assert torch.allclose(strips, ref, atol=1e-4)


def test_scale_to_psnr_exact():
    r = torch.randn(4, 3, 16, 16)
    y = Fn.scale_to_psnr(r, 40.0)
    assert torch.allclose(Fn.psnr(y, torch.zeros_like(y)), torch.full((4,), 40.0), atol=1e-3)
    y = Fn.scale_to_psnr(r, 40.0, reference_size=48)
    up = F.interpolate(y, size=(48, 48), mode="bilinear", align_corners=False)
    assert torch.allclose(Fn.psnr(up, torch.zeros_like(up)), torch.full((4,), 40.0), atol=1e-3)
    assert torch.all(Fn.psnr(y, torch.zeros_like(y)) < 40.0)  # white noise loses energy when upsampled


def test_texture_mask_prefers_texture():
    x = torch.full((1, 3, 32, 32), 0.5)
    x[..., 16:] += torch.rand(1, 3, 32, 16) * 0.4
    m = Fn.texture_mask(x)
    assert m[..., 24:].mean() > 2 * m[..., :8].mean()
    assert torch.allclose(m.pow(2).mean(), torch.tensor(1.0), atol=1e-4)


def test_quantize_ste():
    x = torch.tensor([0.1234, 0.5], requires_grad=True)
    y = Fn.quantize_ste(x)
    assert torch.allclose(y * 255, (y * 255).round(), atol=1e-4)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(2))


@pytest.mark.parametrize("out_size", [(300, 517), (64, 90), (7, 500), (20, 13)])
def test_strip_upsampler_matches_interpolate(out_size):
    r = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(r[None], size=out_size, mode="bilinear", align_corners=False)[0].permute(1, 2, 0) * 2.0 + 0.5
    up = Fn.StripUpsampler(r, *out_size, scale=2.0, offset=0.5)
    h = out_size[0]
    got = torch.cat([up.rows(a, min(h, a + 40)) for a in range(0, h, 40)])
    assert torch.allclose(got, ref, atol=1e-4)


def test_luma_only_and_crest_limit():
    cfg = ModelConfig(
        encoder="unet_tiny",
        scanner="convnet_tiny",
        work_size=32,
        psnr_target=30.0,
        luma_only=True,
        crest_factor=2.0,
        mask="texture",
    )
    model = build_model(cfg)
    x = torch.rand(2, 3, 32, 32)
    r = model.residual(x)
    assert torch.allclose(r[:, 0], r[:, 1]) and torch.allclose(r[:, 1], r[:, 2])
    up = F.interpolate(r, size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(Fn.psnr(up, torch.zeros_like(up)), torch.full((2,), 30.0), atol=1e-3)
    rms = r.pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert torch.all(r.abs().amax(dim=(1, 2, 3)) < 2.0 * 1.6 * rms)  # peak bounded by the crest factor
    spike = torch.zeros(1, 3, 16, 16)
    spike[..., 3, 3] = 1.0
    assert Fn.limit_crest(spike, 2.0).abs().max() <= 2.0 * spike.pow(2).mean().sqrt() + 1e-6
    y = model.stamp(torch.rand(2, 3, 80, 50))
    assert y.shape == (2, 3, 80, 50)


def test_residual_blur_band_limits_the_stamp():
    """With residual_blur the stamp has almost no energy near the Nyquist frequency of the
    working copy, so resampling the scanner's grid (any crop or resize) cannot alias it away."""

    def high_freq_share(r):
        spec = torch.fft.rfft2(r[:, 0]).abs().pow(2)
        fy = torch.fft.fftfreq(r.shape[-2]).abs().view(-1, 1)
        fx = torch.fft.rfftfreq(r.shape[-1]).view(1, -1)
        return float(spec[:, (fy > 0.25) | (fx > 0.25)].sum() / spec.sum())

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    base = {"encoder": "unet_tiny", "scanner": "convnet_tiny", "work_size": 32, "psnr_target": 35.0, "luma_only": True}
    sharp = build_model(ModelConfig(**base))
    blurred = build_model(ModelConfig(**base, residual_blur=1.0))
    blurred.load_state_dict(sharp.state_dict())
    with torch.no_grad():
        r_sharp, r_blur = sharp.residual(x), blurred.residual(x)
    assert r_blur.shape == r_sharp.shape
    assert high_freq_share(r_blur) < 0.1 * high_freq_share(r_sharp)
    up = F.interpolate(r_blur, size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(Fn.psnr(up, torch.zeros_like(up)), torch.full((2,), 35.0), atol=1e-3)  # PSNR still held
    x.requires_grad_(True)
    blurred.residual(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_low_pass_keeps_constants_and_removes_checkerboard():
    flat = torch.full((1, 1, 16, 16), 0.3)
    assert torch.allclose(Fn.low_pass(flat, 1.0), flat, atol=1e-6)
    checker = (torch.arange(16).view(-1, 1) + torch.arange(16).view(1, -1)) % 2 * 2.0 - 1.0
    out = Fn.low_pass(checker.view(1, 1, 16, 16).float(), 1.0)
    assert out.abs().max() < 0.02


@pytest.mark.parametrize("h,w", [(1024, 768), (768, 1024), (4000, 3000), (100, 400), (256, 256)])
def test_area_work_shape_keeps_aspect_and_area(h, w):
    wh, ww = work_shape(h, w, 256, "area")
    assert abs(wh * ww / 256**2 - 1) < 0.02
    assert abs((wh / ww) / (h / w) - 1) < 0.02
    assert work_shape(h, w, 128, "square") == (128, 128)
    with pytest.raises(ValueError, match="unknown working-copy mode"):
        work_shape(h, w, 128, "circle")


def test_cap_to_psnr_only_weakens():
    r = torch.randn(2, 3, 16, 16)
    r[1] *= 1e-4  # already far weaker than 40 dB
    y = Fn.cap_to_psnr(r, 40.0)
    assert abs(float(Fn.psnr(y[:1], torch.zeros_like(y[:1]))) - 40.0) < 1e-3
    assert torch.equal(y[1], r[1])


def test_absolute_texture_mask_is_small_on_flat_areas():
    x = torch.full((1, 3, 32, 64), 0.5)
    x[..., 32:] += 0.2 * torch.randn(1, 1, 32, 32)  # right half textured
    m = Fn.texture_mask(x.clamp(0, 1), power=1.0, window=5, floor=0.004, normalize=False)
    assert m[..., :, :24].max() < 0.01 and m[..., :, 40:].mean() > 0.1


def test_area_model_stamps_without_a_fixed_pattern_and_keeps_flat_areas_clean():
    cfg = ModelConfig(
        encoder="unet_fc_tiny",
        scanner="mapnet_tiny",
        work_size=32,
        work_mode="area",
        psnr_target=40.0,
        psnr_mode="cap",
        residual_activation="tanh",
        mask="texture",
        mask_power=1.0,
        mask_window=5,
        mask_floor=0.004,
        mask_gain=0.25,
        luma_only=True,
    )
    model = build_model(cfg)
    x = torch.full((1, 3, 48, 96), 0.5)
    x[..., 48:] = torch.rand(1, 3, 48, 48)
    y = model.stamp(x)
    assert y.shape == x.shape and model.scan(y).shape == (1,)
    d = (y - x).abs()
    assert d[..., :, :40].max() < 2e-3 < d[..., :, 56:].mean() * 10
    assert float(Fn.psnr(y, x)) >= 40.0 - 1e-3
    assert model.encoder.bias is None  # no learned constant pattern


def test_map_scanner_pools_its_top_fraction():
    from deepraft.models.scanners import top_mean

    v = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 8.0]])
    assert torch.equal(top_mean(v, 0.5), torch.tensor([3.5, 4.0]))
    assert torch.equal(top_mean(v, 0.01), torch.tensor([4.0, 8.0]))
    s = create_scanner("mapnet_tiny", top_fraction=0.25)
    assert s(torch.rand(2, 3, 40, 72)).shape == (2,)


def test_training_forward_forges_negatives_from_other_stamps():
    from deepraft.models.stamp import forge

    x = torch.zeros(3, 3, 8, 8)
    r = torch.stack([torch.full((3, 8, 8), v) for v in (0.1, 0.2, 0.3)])
    pattern = torch.ones(3, 1, 8, 8)
    neg = {
        "swap": torch.tensor([True, False, False]),
        "use_pattern": torch.tensor([False, True, False]),
        "pattern": pattern,
    }
    y = forge(x, r, neg)
    assert torch.allclose(y[0], torch.full((3, 8, 8), 0.3))  # the previous picture's stamp (roll)
    assert torch.allclose(y[1], torch.full((3, 8, 8), 0.2))  # a pattern at its own stamp's RMS
    assert torch.equal(y[2], x[2])


def test_texture_mask_ceiling_caps_hard_edges():
    x = torch.zeros(1, 3, 32, 32)
    x[..., 16:] = 1.0  # one hard edge
    free = Fn.texture_mask(x, power=1.0, window=5, floor=0.0, normalize=False)
    capped = Fn.texture_mask(x, power=1.0, window=5, floor=0.0, normalize=False, ceiling=0.05)
    assert free.max() > 0.4 and abs(float(capped.max()) - 0.05) < 1e-6


def test_low_pass_matches_kornia_and_high_pass_removes_the_mean():

    from kornia.filters import gaussian_blur2d

    x = torch.rand(2, 3, 40, 50)
    for sigma in (0.7, 2.0):
        k = 2 * max(1, math.ceil(3 * sigma)) + 1
        ref = gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")
        assert torch.allclose(Fn.low_pass(x, sigma), ref, atol=1e-6)
    smooth = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 1, 64, 64)
    assert Fn.high_pass(smooth, 2.0)[..., 8:-8, 8:-8].abs().max() < 1e-5  # a ramp has no fine detail
    assert Fn.high_pass(torch.ones(1, 1, 16, 16), 2.0).abs().max() < 1e-6


def test_unit_tanh_stamp_does_not_depend_on_the_encoders_scale():
    cfg = ModelConfig(
        encoder="unet_fc_tiny",
        scanner="mapnet_tiny",
        work_size=32,
        work_mode="area",
        psnr_target=None,
        residual_activation="unit_tanh",
        residual_highpass=2.0,
        luma_only=True,
    )
    model = build_model(cfg)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        r = model.residual(x)
        model.encoder.head.weight.mul_(1e-4)  # a nearly silent encoder: the same pattern, 1e4 times weaker
        model.encoder.head.bias.mul_(1e-4)
        quiet = model.residual(x)
    assert torch.allclose(r, quiet, atol=1e-3)
    assert r.abs().max() <= 1.0 and float(r.pow(2).mean().sqrt()) > 0.2
    with pytest.raises(ValueError, match="unknown residual_activation"):
        build_model(
            ModelConfig(encoder="unet_fc_tiny", scanner="mapnet_tiny", work_size=32, residual_activation="relu")
        ).residual(torch.rand(1, 3, 32, 32))


def test_scan_transpose_reads_a_copy_and_its_transpose_alike():
    base = {"encoder": "unet_fc_tiny", "scanner": "mapnet_tiny", "work_size": 32, "work_mode": "area"}
    model = build_model(ModelConfig(**base, scan_transpose=True)).eval()
    plain = build_model(ModelConfig(**base)).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        both = model.read(x)
        assert torch.allclose(both, model.read(x.transpose(-2, -1)))
        one, other = plain.read(x), plain.read(x.transpose(-2, -1))
    assert torch.allclose(both, torch.maximum(one, other))
    assert model.scan(x).shape == (2,)


def test_blur_pool_reads_a_pixel_pattern_alike_wherever_the_grid_falls():
    from deepraft.models.scanners import BlurPool

    checker = (torch.arange(16).view(1, 16) + torch.arange(16).view(16, 1)) % 2
    x = checker.float().expand(1, 2, 16, 16)
    moved = x.roll(1, dims=-1)  # the same pattern, the grid one pixel over
    plain = (x[..., ::2, ::2], moved[..., ::2, ::2])  # what a strided conv sees: all 0, then all 1
    assert not torch.allclose(*plain)
    pool = BlurPool(2, 2)
    assert pool(x).shape == (1, 2, 8, 8)
    assert torch.allclose(pool(x)[..., 1:-1, 1:-1], pool(moved)[..., 1:-1, 1:-1])
    assert torch.allclose(pool(torch.ones(1, 2, 9, 9)), torch.ones(1, 2, 5, 5))
    assert list(pool.state_dict()) == []


def test_antialiased_scanner_takes_the_plain_scanners_weights():
    plain = create_scanner("mapnet", channels=(8, 16, 16), stem_stride=2)
    smooth = create_scanner("mapnet", channels=(8, 16, 16), stem_stride=2, antialias=True)
    smooth.load_state_dict(plain.state_dict())  # strict: same names and shapes
    x = torch.rand(2, 3, 48, 64)
    assert smooth.local_map(x).shape == plain.local_map(x).shape
    assert not torch.allclose(smooth(x), plain(x))


def test_as_work_stamps_and_scans_the_input_as_it_is():
    from tests.conftest import TINY_AREA_MODEL

    model = build_model(ModelConfig(**TINY_AREA_MODEL)).eval()  # working copy: area 40^2
    x = torch.rand(2, 3, 24, 24) * 0.8 + 0.1  # a window of a working copy, smaller than one
    with torch.no_grad():
        direct = model.stamp(x, as_work=True)
        assert torch.allclose(direct, (x + model.residual(x)).clamp(0, 1))
        assert not torch.allclose(direct, model.stamp(x))  # else it goes through a 40 px copy
        assert torch.equal(model.scan(x, as_work=True), model.read(x))
        out = model(x, as_work=True)
        stamped, logits = out.stamped, out.logits
    assert torch.allclose(stamped, direct) and logits.shape == (4,)


def test_training_reads_at_scales_as_the_deployed_score_does():
    from tests.conftest import TINY_AREA_MODEL

    cfg = ModelConfig(**{**TINY_AREA_MODEL, "scan_scales": (0.5, 1.0)})
    model = build_model(cfg).eval()
    x = torch.rand(2, 3, 40, 48)  # scan copies at the largest scale, 1
    with torch.no_grad():
        trained = model.scan(x, as_work=True, scales=(0.5, 1.0))
        assert torch.allclose(trained, model.score(x), atol=1e-6)  # the loss sees the deployed score
        half = model.read(F.interpolate(x, (20, 24), mode="bilinear", antialias=True))
        assert torch.allclose(trained, torch.maximum(half, model.read(x)), atol=1e-6)
        assert torch.equal(model.scan(x, as_work=True), model.read(x))  # default: one read at 1
        logits = model(x, as_work=True, scales=(0.5, 1.0)).logits
    assert logits.shape == (4,)
    with pytest.raises(ValueError, match="scales is empty"):
        model.scan(x, as_work=True, scales=())


@pytest.mark.parametrize(("scales", "std"), [((0.5, 2.0), 0.0), ((1.0, 0.0), 0.0), ((1.0, 2.0), 0.25)])
def test_scan_scales_must_include_one_and_leave_smoothing_alone(scales, std):
    with pytest.raises(ValueError, match="scan_scales"):
        build_model(ModelConfig(encoder="unet_tiny", scanner="convnet_tiny", scan_scales=scales, smoothing_std=std))


def test_keyed_score_is_sqrt_k_on_the_key_and_unit_variance_over_keys():
    """Over all 2^k keys, any logits score mean 0 and mean square 1 (the bound behind the keyed
    threshold); the key itself scores sqrt(k), its complement -sqrt(k)."""
    import itertools

    logits = torch.tensor([[2.0, -0.5, 1.5, -3.0], [0.1, 0.2, -0.3, 0.4]])
    keys = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # (16, 4)
    scores = torch.stack([Fn.keyed_score(logits, k) for k in keys])  # (16, 2)
    assert torch.allclose(scores.mean(dim=0), torch.zeros(2), atol=1e-6)
    assert torch.allclose(scores.pow(2).mean(dim=0), torch.ones(2), atol=1e-5)
    own = (logits > 0).float()
    assert torch.allclose(Fn.keyed_score(logits, own), logits.abs().sum(1) / logits.norm(dim=1))
    assert torch.allclose(Fn.keyed_score(torch.tensor([[3.0, -3.0]]), torch.tensor([1.0, 0.0])), torch.tensor([2**0.5]))
    assert torch.allclose(
        Fn.keyed_score(torch.tensor([[3.0, -3.0]]), torch.tensor([0.0, 1.0])), torch.tensor([-(2**0.5)])
    )


def test_stronger_read_keeps_the_larger_logit_or_the_bit_read_of_larger_norm():
    assert torch.equal(Fn.stronger_read(torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])), torch.tensor([1.0, 3.0]))
    a = torch.tensor([[3.0, -3.0], [0.1, 0.1]])
    b = torch.tensor([[-1.0, 1.0], [-2.0, 2.0]])
    assert torch.equal(Fn.stronger_read(a, b), torch.tensor([[3.0, -3.0], [-2.0, 2.0]]))


def _keyed_model(**over):
    cfg = {
        "encoder": "unet_fc_tiny",
        "scanner": "mapnet_tiny",
        "work_size": 32,
        "work_mode": "area",
        "psnr_target": 30.0,
        "message_bits": 8,
        "scan_transpose": True,
    }
    return build_model(ModelConfig(**{**cfg, **over}))


def test_keyed_model_writes_its_message_and_reads_bits():
    torch.manual_seed(0)
    model = _keyed_model()
    x = torch.rand(2, 3, 48, 40)
    m0, m1 = torch.zeros(2, 8), torch.ones(2, 8)
    a, b = model.stamp(x, message=m0), model.stamp(x, message=m1)
    assert a.shape == x.shape and not torch.allclose(a, b)  # the bits change the stamp
    with pytest.raises(ValueError, match=r"\(2, 8\) message"):
        model.stamp(x)
    assert model.scan(a).shape == (2, 8)  # transposed read: the stronger of the two
    out = model(x, generator=torch.Generator().manual_seed(1))
    assert out.logits.shape == (4, 8) and out.messages.shape == (2, 8)
    assert set(out.messages.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(out.stamped, model.stamp(x, message=out.messages))


def test_keyed_model_needs_a_message_carrying_encoder_and_no_smoothing():
    with pytest.raises(ValueError, match="carries no message"):
        _keyed_model(encoder="unet_tiny")
    with pytest.raises(ValueError, match="without smoothing"):
        _keyed_model(smoothing_std=0.25)
