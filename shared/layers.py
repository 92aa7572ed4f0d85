"""Small building blocks shared by the dense GPT (`shared.models`) and the MoE experts
(`shared.moe`): normalisation layers, the position-wise feed-forward network, and the position
encodings (sinusoidal table, RoPE, ALiBi slopes).

Used in: modules/02-transformer-architecture (05-positional-encoding, 06-feed-forward,
07-layer-normalization),
modules/04-llm-from-scratch, modules/20-advanced-topics/01-mixture-of-experts, and by
`shared.models` and `shared.moe`.
"""

from __future__ import annotations

import math

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


# --- Position encodings --------------------------------------------------------------------------
# Functions rather than modules: `shared.models` keeps their outputs as non-persistent buffers, so
# checkpoints hold no position tables for the sinusoidal, RoPE and ALiBi schemes.


def sinusoidal_positions(n_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed sinusoidal position table of Vaswani et al. (2017), shape ``(n_positions, dim)``.

    ``PE[p, 2i] = sin(p / base^(2i/dim))`` and ``PE[p, 2i+1] = cos(p / base^(2i/dim))``.

    Used in: modules/02-transformer-architecture/05-positional-encoding, and `shared.models`
    (``pos_encoding="sinusoidal"``).
    """
    if n_positions <= 0 or dim <= 0 or dim % 2:
        raise ValueError(f"need n_positions > 0 and an even dim > 0, got {n_positions=}, {dim=}")
    if base <= 0:
        raise ValueError(f"base must be > 0, got {base}")
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.empty(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)
    return table.float()


def rope_cos_sin(
    n_positions: int, head_dim: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine tables of rotary position embeddings (RoPE; Su et al., 2021).

    Returns two ``(n_positions, head_dim)`` tensors in the "rotate-half" layout used by GPT-NeoX,
    Llama and Hugging Face transformers: channel ``i`` and channel ``i + head_dim/2`` form one
    rotating pair, turned by the angle ``p * theta^(-2i/head_dim)`` at position ``p``.

    Used in: modules/02-transformer-architecture/05-positional-encoding,
    modules/04-llm-from-scratch/02-transformer-layers, and `shared.models`
    (``pos_encoding="rope"``).
    """
    if n_positions <= 0 or head_dim <= 0 or head_dim % 2:
        raise ValueError(
            f"need n_positions > 0 and an even head_dim > 0, got {n_positions=}, {head_dim=}"
        )
    if theta <= 0:
        raise ValueError(f"theta must be > 0, got {theta}")
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(n_positions, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``(..., T, head_dim)`` by the RoPE tables ``cos, sin`` ``(T, head_dim)``.

    ``x * cos + rotate_half(x) * sin`` with ``rotate_half([a, b]) = [-b, a]``: each pair
    ``(x_i, x_{i+d/2})``, read as the complex number ``x_i + j x_{i+d/2}``, is multiplied by
    ``e^{j p w_i}`` at position ``p``.

    Used in: modules/02-transformer-architecture/05-positional-encoding,
    modules/04-llm-from-scratch/02-transformer-layers, and `shared.models`.
    """
    if x.shape[-2:] != cos.shape or cos.shape != sin.shape:
        raise ValueError(
            f"expected x of shape (..., T, head_dim) and cos/sin of shape (T, head_dim), got "
            f"x {tuple(x.shape)}, cos {tuple(cos.shape)}, sin {tuple(sin.shape)}"
        )
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def alibi_slopes(n_head: int) -> torch.Tensor:
    """The per-head ALiBi slopes of Press et al. (2022), shape ``(n_head,)``.

    For ``n_head`` a power of two the slopes are the geometric sequence that starts at
    ``2^(-8/n_head)`` with that same ratio (for 8 heads: 1/2, 1/4, ..., 1/256). Otherwise, as in
    the paper, take the slopes of the closest smaller power of two ``m`` and add every other slope
    of ``2m`` heads until there are ``n_head``.

    Used in: modules/02-transformer-architecture/05-positional-encoding, and `shared.models`
    (``pos_encoding="alibi"``).
    """
    if n_head <= 0:
        raise ValueError(f"n_head must be a positive int, got {n_head}")

    def geometric(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    m = 2 ** math.floor(math.log2(n_head))
    slopes = geometric(m) + geometric(2 * m)[0::2][: n_head - m]
    return torch.tensor(slopes, dtype=torch.float32)
