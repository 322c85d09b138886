import pytest
import torch

from deepraft.core.weights_io import widen_state
from deepraft.models.scanners import mapnet


def test_a_widened_scanner_computes_what_the_narrow_one_did_and_can_learn_more():
    torch.manual_seed(0)
    narrow = mapnet(channels=(4, 8, 8), antialias=True)
    for p in narrow.parameters():  # trained-looking weights, not the fresh ones
        p.data.normal_(0, 0.3)
    narrow.train()
    narrow(torch.rand(4, 3, 48, 48))  # running statistics away from 0 and 1
    wide = mapnet(channels=(6, 12, 16), antialias=True)
    wide.load_state_dict(widen_state(narrow.state_dict(), wide.state_dict()))
    narrow.eval(), wide.eval()
    x = torch.rand(3, 3, 64, 80)
    assert torch.allclose(wide(x), narrow(x), atol=1e-5)
    assert not torch.allclose(narrow(x), mapnet(channels=(6, 12, 16))(x), atol=1e-3)
    # the new channels are live: a gradient reaches the weights that read them
    wide.train()
    wide(x).sum().backward()
    assert wide.head.weight.grad[0, 8:].abs().sum() > 0


def test_widening_refuses_narrower_targets_and_other_layers():
    narrow, wide = mapnet(channels=(4, 8)).state_dict(), mapnet(channels=(6, 12)).state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        widen_state(wide, narrow)
    with pytest.raises(ValueError, match="same layers"):
        widen_state(narrow, mapnet(channels=(6, 12, 12)).state_dict())
