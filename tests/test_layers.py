"""`shared.layers`: RMSNorm against torch's, the feed-forward variants against direct formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.layers import FeedForward, RMSNorm, make_norm


def test_rmsnorm_matches_torch() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 7, 16)
    ours = RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(16))
    ref = torch.nn.RMSNorm(16, eps=1e-6)
    ref.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("activation", ["gelu", "relu", "swiglu"])
def test_feed_forward_formula(activation: str) -> None:
    torch.manual_seed(0)
    ffn = FeedForward(8, 32, activation, bias=True)
    x = torch.randn(3, 5, 8)
    act = {"gelu": F.gelu, "relu": F.relu}
    if activation == "swiglu":
        hidden = F.silu(x @ ffn.gate.weight.T + ffn.gate.bias) * (x @ ffn.up.weight.T + ffn.up.bias)
    else:
        hidden = act[activation](x @ ffn.up.weight.T + ffn.up.bias)
    expected = hidden @ ffn.down.weight.T + ffn.down.bias
    torch.testing.assert_close(ffn(x), expected)
    assert ffn.flops_per_token() == 2 * (3 if activation == "swiglu" else 2) * 8 * 32


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="activation must be one of"):
        FeedForward(8, 32, "tanh")
    with pytest.raises(ValueError, match="d_model=8"):
        FeedForward(8, 32)(torch.randn(2, 9))
    with pytest.raises(ValueError, match="dropout"):
        FeedForward(8, 32, dropout=1.0)
    with pytest.raises(ValueError, match="norm must be one of"):
        make_norm("batchnorm", 8)
    with pytest.raises(ValueError, match="expected last dimension 8"):
        RMSNorm(8)(torch.randn(2, 3))
