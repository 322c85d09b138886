import pytest
import torch
from torch.nn import functional as F

from deepraft.config import ModelConfig
from deepraft.models import (
    ENCODERS,
    SCANNERS,
    build_model,
    create_encoder,
    create_scanner,
)
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
    model = build_model(ModelConfig(encoder="unet_tiny", scanner="convnet_tiny", work_size=32, psnr_target=35.0,
                                    mask="texture"))
    x = torch.rand(2, 3, *size) * 0.8 + 0.1
    y = model.stamp(x)
    assert y.shape == x.shape
    p = Fn.psnr(y, x)
    assert torch.all(p > 34.0) and torch.all(p < 40.0)
    assert model.scan(y).shape == (2,)


def test_training_forward_orders_stamped_then_clean():
    model = build_model(ModelConfig(encoder="unet_tiny", scanner="convnet_tiny", work_size=32, smoothing_std=0.5))
    x = torch.rand(3, 3, 40, 40)
    stamped, logits = model(x)
    assert stamped.shape == x.shape and logits.shape == (6,)
    model.eval()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(model.scan(x, noise=True, generator=g1), model.scan(x, noise=True, generator=g2))
    assert not torch.equal(model.scan(x, noise=True), model.scan(x, noise=False))


@pytest.mark.parametrize("out_size", [(300, 517), (64, 90), (128, 128), (7, 500)])
def test_upsample_matches_interpolate_and_strips(out_size):
    r = torch.randn(2, 3, 32, 32)
    ref = F.interpolate(r, size=out_size, mode="bilinear", align_corners=False)
    assert torch.allclose(Fn.upsample(r, *out_size), ref, atol=1e-5)
    h = out_size[0]
    strips = torch.cat([Fn.upsample(r, *out_size, a, min(h, a + 50)) for a in range(0, h, 50)], dim=2)
    assert torch.allclose(strips, ref, atol=1e-5)


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
    r = torch.randn(3, 32, 32)
    ref = F.interpolate(r[None], size=out_size, mode="bilinear", align_corners=False)[0].permute(1, 2, 0) * 2.0 + 0.5
    up = Fn.StripUpsampler(r, *out_size, scale=2.0, offset=0.5)
    h = out_size[0]
    got = torch.cat([up.rows(a, min(h, a + 40)) for a in range(0, h, 40)])
    assert torch.allclose(got, ref, atol=1e-4)


def test_luma_only_and_crest_limit():
    cfg = ModelConfig(encoder="unet_tiny", scanner="convnet_tiny", work_size=32, psnr_target=30.0, luma_only=True,
                      crest_factor=2.0, mask="texture")
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
    base = dict(encoder="unet_tiny", scanner="convnet_tiny", work_size=32, psnr_target=35.0, luma_only=True)
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
