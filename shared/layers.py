"""Small building blocks shared by the dense GPT (`shared.models`) and the MoE experts
(`shared.moe`): normalisation layers and the position-wise feed-forward network.

Used in: modules/02-transformer-architecture (06-feed-forward, 07-layer-normalization),
modules/04-llm-from-scratch, modules/20-advanced-topics/01-mixture-of-experts, and by
`shared.models` and `shared.moe`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("gelu", "relu", "swiglu")
NORMS = ("layernorm", "rmsnorm")


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang and Sennrich, 2019): ``x / rms(x) * weight``.

    Unlike LayerNorm it neither subtracts the mean nor adds a bias.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f"dim must be a positive int, got {dim}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"expected last dimension {self.weight.shape[0]}, got shape {tuple(x.shape)}")
        rms = torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (x.float() * rms).type_as(x) * self.weight


def make_norm(kind: str, dim: int, bias: bool = True, eps: float = 1e-5) -> nn.Module:
    """Return a LayerNorm (``"layernorm"``) or an RMSNorm (``"rmsnorm"``) over ``dim`` features."""
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=eps, bias=bias)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps=eps)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


class FeedForward(nn.Module):
    """The position-wise feed-forward network of a transformer block.

    ``gelu`` / ``relu``: ``down(act(up(x)))`` with ``up: d_model -> d_ff``.
    ``swiglu`` (Shazeer, 2020): ``down(silu(gate(x)) * up(x))``, two input projections.

    The same class is the expert of `shared.moe`, so dense and MoE layers share one definition.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str = "gelu",
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model <= 0 or d_ff <= 0:
            raise ValueError(f"d_model and d_ff must be positive, got d_model={d_model}, d_ff={d_ff}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.d_ff, self.activation = d_model, d_ff, activation
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.gate = nn.Linear(d_model, d_ff, bias=bias) if activation == "swiglu" else None
        self.down = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected last dimension d_model={self.d_model}, got shape {tuple(x.shape)}")
        if self.activation == "swiglu":
            hidden = F.silu(self.gate(x)) * self.up(x)
        elif self.activation == "gelu":
            hidden = F.gelu(self.up(x))
        else:
            hidden = F.relu(self.up(x))
        return self.dropout(self.down(hidden))

    def flops_per_token(self) -> int:
        """Forward multiply-accumulates times two (matmuls only) for one token."""
        projections = 3 if self.activation == "swiglu" else 2
        return 2 * projections * self.d_model * self.d_ff
