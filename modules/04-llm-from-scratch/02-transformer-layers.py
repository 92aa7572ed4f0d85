# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Transformer layers from scratch, checked against PyTorch
#
# A transformer layer is a handful of tensor operations, and almost every mistake in one still
# produces a model that trains: a mask shifted by one position lets the model read the answer, a
# wrong scale makes attention too sharp, RoPE applied to the wrong pairs of channels encodes
# positions inconsistently, a dropout layer left on at evaluation time makes every prediction
# noisy. Such bugs show up as a slightly worse loss, if at all. The defence is to check every
# layer against an independent implementation, number by number. This notebook writes
# multi-head attention, rotary position embeddings, LayerNorm, GELU and the feed-forward network
# from their definitions, places dropout where GPT-2 places it, and compares each piece with
# `torch.nn.functional.scaled_dot_product_attention`, `torch.nn.LayerNorm`, `F.gelu` and the
# course library (`shared.layers`, `shared.models`).
#
# **Learning objectives**
# - Implement causal multi-head attention with an explicit mask, match
#   `scaled_dot_product_attention` and `shared.models.CausalSelfAttention`, and test causality
#   directly.
# - Measure what a fused attention kernel saves: the $T \times T$ weights it does not store for
#   the backward pass, and time.
# - Implement rotary position embeddings (RoPE) as complex rotations, match
#   `shared.layers.apply_rope`, and verify that attention scores then depend only on relative
#   positions.
# - Implement LayerNorm, GELU and the feed-forward network and match PyTorch, including the
#   numerical details (biased variance, the tanh approximation of GELU, a stable softmax).
# - Place dropout on embeddings, attention weights and residual branches, and show what
#   `train()` and `eval()` change.
#
# **Prerequisites:** [a minimal GPT](01-minimal-llm) (the model these layers make up),
# [multi-head attention](../02-transformer-architecture/04-multi-head-attention) and
# [positional encoding](../02-transformer-architecture/05-positional-encoding) (the ideas behind
# the layers checked here).
#
# **Estimated time:** 60 minutes.

# %% [markdown]
# ## Setup
#
# Locally, `make install` has prepared everything. On Colab, the first cell below installs the
# course library; elsewhere it does nothing.

# %% tags=["colab"]
# Colab only: install the course library (locally, `make install` has done this).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        "git clone -q --depth 1 https://github.com/open-llm-course/llm-course /content/course"
        " && pip install -q -e /content/course",
        shell=True,
        check=True,
    )
    sys.path.insert(0, "/content/course")


# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import shared
from shared.layers import FeedForward, RMSNorm, alibi_slopes, apply_rope, rope_cos_sin
from shared.models import CausalSelfAttention, GPTConfig, TransformerBlock

shared.seed_everything(0)
print(shared.environment_summary("matplotlib"))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest absolute difference between two tensors of the same shape."""
    assert a.shape == b.shape, f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
    return (a - b).abs().max().item()


# %% [markdown]
# Every check below prints the largest absolute difference from the reference and asserts that
# it is at the level of float32 rounding (about $10^{-6}$ for values of order 1).

# %% [markdown]
# ## Multi-head causal self-attention
#
# For an input $X \in \mathbb{R}^{T \times d}$, each of $h$ heads projects it to queries, keys
# and values of width $d_h = d/h$ and computes
#
# $$\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{Q_i K_i^\top}{\sqrt{d_h}} + M\right) V_i,
# \qquad M_{tj} = \begin{cases} 0 & j \le t \\ -\infty & j > t, \end{cases}$$
#
# so that position $t$ mixes the values of positions $0..t$ only. The heads are concatenated and
# projected back to $d$. All heads are computed at once: one linear layer produces $Q, K, V$ for
# every head, and a reshape to `(B, heads, T, d_h)` turns the heads into a batch dimension.

# %%
def causal_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_h) + M) for (B, heads, T, d_h) queries and keys: (B, heads, T, T)."""
    T, d_head = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))  # exp(-inf) = 0: no weight on the future
    return scores.softmax(dim=-1)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal scaled dot-product attention with an explicit mask."""
    return causal_weights(q, k) @ v


class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention with attention and residual dropout (GPT-2 placement)."""

    def __init__(self, d_model: int, n_head: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.attn_dropout = nn.Dropout(dropout)  # on the attention weights
        self.resid_dropout = nn.Dropout(dropout)  # on the output, before the residual add

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        return tuple(t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))

    def forward(self, x: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.split_heads(x)
        if rope is not None:  # rotary positions rotate queries and keys, never values
            q, k = rope_rotate(q, *rope), rope_rotate(k, *rope)
        y = self.attn_dropout(causal_weights(q, k)) @ v  # (B, heads, T, d_h)
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(B, T, d)))


# %% [markdown]
# The `rope_rotate` function used when `rope` is given is written in the RoPE section below.
# First, the attention core against PyTorch's `scaled_dot_product_attention` with
# `is_causal=True`, forward and backward:

# %%
B, T, D_MODEL, N_HEAD = 2, 32, 64, 4
q, k, v = (torch.randn(B, N_HEAD, T, D_MODEL // N_HEAD, requires_grad=True) for _ in range(3))
ours = causal_attention(q, k, v)
reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)
grads_ours = torch.autograd.grad(ours.sum(), (q, k, v))
grads_ref = torch.autograd.grad(reference.sum(), (q, k, v))
print(f"forward : max |ours - SDPA| = {max_diff(ours, reference):.2e}")
for name, g_ours, g_ref in zip("qkv", grads_ours, grads_ref):
    print(f"backward: max |d{name} ours - d{name} SDPA| = {max_diff(g_ours, g_ref):.2e}")
assert torch.allclose(ours, reference, atol=1e-5)
assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads_ours, grads_ref))

# %% [markdown]
# Then the whole module, projections included, against `shared.models.CausalSelfAttention`
# loaded with the same weights (its parameters have the same names, `qkv` and `proj`):

# %%
config = GPTConfig(vocab_size=100, block_size=T, n_layer=1, n_head=N_HEAD, d_model=D_MODEL)
x = torch.randn(B, T, D_MODEL)
mha = MultiHeadAttention(D_MODEL, N_HEAD).eval()
library_attention = CausalSelfAttention(config).eval()
library_attention.load_state_dict(mha.state_dict())
with torch.no_grad():
    print(f"max |ours - shared.models.CausalSelfAttention| = "
          f"{max_diff(mha(x), library_attention(x)):.2e}")
    assert torch.allclose(mha(x), library_attention(x), atol=1e-5)

# %% [markdown]
# Agreement with a reference does not prove causality if both were wrong in the same way, so we
# also test the property itself: change the token at position 20 and check which outputs move.
# Positions 0 to 19 must not change at all; positions from 20 on may.

# %%
x_changed = x.clone()
x_changed[:, 20] = torch.randn(B, D_MODEL)
with torch.no_grad():
    change = (mha(x_changed) - mha(x)).abs().amax(dim=(0, 2))  # per position
print("largest output change at positions 0-19:", f"{change[:20].max():.1e}")
print("smallest output change at positions 20-31:", f"{change[20:].min():.1e}")
assert change[:20].max() == 0 and change[20:].min() > 0

# %% [markdown]
# ### What a fused kernel saves
#
# Our version materialises the $T \times T$ weight matrix of every head, and autograd keeps it
# for the backward pass. Fused kernels in the style of FlashAttention (Dao et al., 2022) compute
# the softmax block by block and keep only the output and one log-sum-exp number per row,
# recomputing the weights during the backward pass. We measure both with the saved-tensor hooks
# of [the first notebook](01-minimal-llm) at $T = 1024$, and time the forward passes.
# Timings are measurements on this machine, printed as a ratio.

# %%
def saved_bytes(fn, *args) -> int:
    """Bytes of the tensors autograd saves for backward while running fn(*args)."""
    seen: set[int] = set()
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(*args)
    return total


def sdpa_causal(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def best_time(fn, *args, repeats: int = 5) -> float:
    with torch.no_grad():
        fn(*args)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - start)
    return min(times)


T_LONG = 1024
q_long, k_long, v_long = (torch.randn(1, N_HEAD, T_LONG, 32, requires_grad=True)
                          for _ in range(3))
inputs_long = (q_long, k_long, v_long)
weights_mib = N_HEAD * T_LONG**2 * 4 / 2**20
print(f"T={T_LONG}, {N_HEAD} heads of 32: the weights alone are {weights_mib:.0f} MiB in fp32")
print(f"saved for backward: ours {saved_bytes(causal_attention, *inputs_long) / 2**20:.1f} MiB, "
      f"SDPA {saved_bytes(sdpa_causal, *inputs_long) / 2**20:.1f} MiB")
print(f"outputs agree: max diff {max_diff(causal_attention(*inputs_long), sdpa_causal(*inputs_long)):.1e}")
ratio = best_time(causal_attention, *inputs_long) / best_time(sdpa_causal, *inputs_long)
print(f"forward time, ours / SDPA: {ratio:.1f}x (measured)")

# %% [markdown]
# The explicit version keeps the 16 MiB of weights plus a 1 MiB boolean mask; the fused
# kernel keeps the inputs, the output and the row statistics, which grow linearly with $T$. The
# gap grows with the context: at $T = 32{,}768$ the weights of one head alone would be 4 GiB.

# %% [markdown]
# ## Rotary position embeddings (RoPE)
#
# Attention by itself is blind to order: permuting the keys permutes nothing in the result
# but the weights. RoPE (Su et al., 2021) injects positions by *rotating* queries and keys. Split
# a head's $d_h$ channels into $d_h/2$ pairs and read pair $i$ at position $p$ as a complex number
# $z_i$; RoPE multiplies it by $e^{\mathrm{j}\, p\, \theta_i}$ with frequencies
# $\theta_i = 10000^{-2i/d_h}$. Since
# $\langle e^{\mathrm{j} m\theta} a, e^{\mathrm{j} n\theta} b\rangle
# = \mathrm{Re}\big(a \bar b\, e^{\mathrm{j}(m-n)\theta}\big)$, the score between a query at
# position $m$ and a key at position $n$ depends on $m - n$ only.
#
# Two pairings of channels exist. The RoPE paper pairs neighbours $(x_{2i}, x_{2i+1})$; GPT-NeoX,
# Llama in Hugging Face `transformers`, and `shared.layers` pair $(x_i, x_{i + d_h/2})$, the
# "rotate-half" layout. They differ only by a fixed permutation of channels. We write the
# rotate-half version with complex numbers, straight from the definition.

# %%
def rope_angles(n_positions: int, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """Angle p * theta_i for every position p and pair i: shape (n_positions, head_dim / 2)."""
    theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    return torch.outer(torch.arange(n_positions, dtype=torch.float64), theta)


def rope_rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i + d/2}) of x (..., T, d) by the angles whose cosines and sines are
    given (T, d/2), as complex multiplication."""
    half = x.shape[-1] // 2
    z = torch.complex(x[..., :half], x[..., half:])  # pair i as one complex number
    z = z * torch.complex(cos, sin)  # multiply by e^{j p theta_i}
    return torch.cat([z.real, z.imag], dim=-1)


HEAD_DIM = 32
angles = rope_angles(T, HEAD_DIM)
cos_ours, sin_ours = angles.cos().float(), angles.sin().float()
q_heads = torch.randn(B, N_HEAD, T, HEAD_DIM)
cos_lib, sin_lib = rope_cos_sin(T, HEAD_DIM)  # (T, head_dim): each angle appears twice
print(f"max |ours - shared.layers.apply_rope| = "
      f"{max_diff(rope_rotate(q_heads, cos_ours, sin_ours), apply_rope(q_heads, cos_lib, sin_lib)):.2e}")
print("rotation keeps norms:", torch.allclose(rope_rotate(q_heads, cos_ours, sin_ours).norm(dim=-1),
                                              q_heads.norm(dim=-1), atol=1e-5))

# %% [markdown]
# The relative-position property, measured: place the same query and key at many pairs of
# positions $(m, n)$ and compare the scores of pairs with the same distance $m - n$.

# %%
n_pos = 64
angles64 = rope_angles(n_pos, HEAD_DIM)
cos64, sin64 = angles64.cos().float(), angles64.sin().float()
query, key = torch.randn(HEAD_DIM), torch.randn(HEAD_DIM)
rotated_q = rope_rotate(query.expand(n_pos, HEAD_DIM), cos64, sin64)  # the query at every position
rotated_k = rope_rotate(key.expand(n_pos, HEAD_DIM), cos64, sin64)
scores_mn = rotated_q @ rotated_k.T  # scores_mn[m, n]: query at m, key at n
spread = max((scores_mn.diagonal(-r).max() - scores_mn.diagonal(-r).min()).item()
             for r in range(n_pos))
print(f"largest spread of scores among pairs with equal distance m - n: {spread:.1e}")

ones = torch.ones(HEAD_DIM)
by_distance = (rope_rotate(ones.expand(n_pos, HEAD_DIM), cos64, sin64) @
               rope_rotate(ones[None], cos64[:1], sin64[:1]).T).squeeze(1)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
im = axes[0].imshow(scores_mn.numpy(), cmap="RdBu_r")
axes[0].set(xlabel="key position n", ylabel="query position m",
            title="q.k after RoPE: constant along diagonals")
fig.colorbar(im, ax=axes[0], label="score")
axes[1].plot(by_distance.numpy())
axes[1].set(xlabel="distance m - n", ylabel="score of two all-ones vectors",
            title="RoPE scores decay (with ripples) with distance")
plt.tight_layout()
plt.show()

# %% [markdown]
# Scores are constant along every diagonal (to float rounding), and for equal query and key
# vectors they fall off with distance, the "long-term decay" Su et al. point out: the pairs
# rotate at different speeds and stop adding up in phase.
#
# In a model, RoPE is applied to the queries and keys of every head after the projection. Our
# attention module with RoPE against the library's, which takes the same tables:

# %%
rope_tables = (rope_angles(T, D_MODEL // N_HEAD).cos().float(),
               rope_angles(T, D_MODEL // N_HEAD).sin().float())
with torch.no_grad():
    ours_rope = mha(x, rope=rope_tables)
    library_rope = library_attention(x, rope=rope_cos_sin(T, D_MODEL // N_HEAD))
print(f"attention with RoPE: max |ours - library| = {max_diff(ours_rope, library_rope):.2e}")
assert torch.allclose(ours_rope, library_rope, atol=1e-5)

# %% [markdown]
# ALiBi (Press et al., 2022) is the main alternative: no rotation at all, but a penalty
# $-m_h (t - j)$ added to the score of query $t$ and key $j$, with a fixed slope $m_h$ per head
# (`shared.layers.alibi_slopes`). Exercise 2 builds its bias matrix.

# %% [markdown]
# ## LayerNorm, GELU, the feed-forward network and a stable softmax
#
# **LayerNorm** (Ba et al., 2016) normalises each position's vector over its $d$ features and
# applies a learned gain $\gamma$ and shift $\beta$:
# $\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta$, with the
# *biased* variance $\sigma^2 = \frac{1}{d}\sum_i (x_i - \mu)^2$. `torch.var` defaults to the
# unbiased estimate (divide by $d - 1$), a classic source of a small mismatch.

# %%
def layer_norm(x: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor,
               eps: float = 1e-5) -> torch.Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return gain * (x - mean) / torch.sqrt(var + eps) + shift


reference_norm = nn.LayerNorm(D_MODEL)
with torch.no_grad():
    reference_norm.weight.normal_()
    reference_norm.bias.normal_()
    gain, shift = reference_norm.weight, reference_norm.bias
    print(f"max |ours - nn.LayerNorm| = {max_diff(layer_norm(x, gain, shift), reference_norm(x)):.2e}")
    unbiased = gain * (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-5) + shift
    print(f"with the unbiased variance instead: max diff {max_diff(unbiased, reference_norm(x)):.2e}")
    assert torch.allclose(layer_norm(x, gain, shift), reference_norm(x), atol=1e-5)

# %% [markdown]
# **GELU** (Hendrycks and Gimpel, 2016) weights its input by the probability that a standard
# normal variable is smaller: $\mathrm{GELU}(x) = x\,\Phi(x) = \frac{x}{2}\left(1 +
# \mathrm{erf}(x/\sqrt{2})\right)$. GPT-2 used a cheaper tanh approximation,
# $\frac{x}{2}\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715 x^3)\right)\right)$, which is why
# loading GPT-2 weights into a model with the exact GELU shifts its outputs slightly.

# %%
def gelu_exact(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


grid = torch.linspace(-6, 6, 2001)
print(f"max |gelu_exact - F.gelu|                  = {max_diff(gelu_exact(grid), F.gelu(grid)):.2e}")
print(f"max |gelu_tanh - F.gelu(approximate='tanh')| = "
      f"{max_diff(gelu_tanh(grid), F.gelu(grid, approximate='tanh')):.2e}")
print(f"max |exact - tanh approximation|            = {max_diff(gelu_exact(grid), gelu_tanh(grid)):.2e}")
assert torch.allclose(gelu_exact(grid), F.gelu(grid), atol=1e-6)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].plot(grid, F.relu(grid), label="ReLU")
axes[0].plot(grid, gelu_exact(grid), label="GELU (exact)")
axes[0].set(xlim=(-4, 3), ylim=(-0.5, 3), xlabel="x", ylabel="activation",
            title="GELU is a smooth ReLU that dips below zero")
axes[0].legend()
axes[1].plot(grid, gelu_exact(grid) - gelu_tanh(grid))
axes[1].set(xlabel="x", ylabel="exact - tanh approximation",
            title="The tanh approximation of GELU is off by < 5e-4")
plt.tight_layout()
plt.show()

# %% [markdown]
# The **feed-forward network** is `down(GELU(up(x)))` with a hidden width of $4d$; against
# `shared.layers.FeedForward` with the same weights:

# %%
ffn = FeedForward(D_MODEL, 4 * D_MODEL)
with torch.no_grad():
    ours_ffn = F.linear(gelu_exact(F.linear(x, ffn.up.weight, ffn.up.bias)),
                        ffn.down.weight, ffn.down.bias)
    print(f"max |ours - shared.layers.FeedForward| = {max_diff(ours_ffn, ffn(x)):.2e}")
    assert torch.allclose(ours_ffn, ffn(x), atol=1e-5)

# %% [markdown]
# **Softmax** must not overflow. $e^{x}$ exceeds the float32 range for $x > 88.7$, so the
# textbook formula returns NaN for large logits. Subtracting the row maximum first changes
# nothing mathematically ($e^{x - c} / \sum e^{x_j - c}$) and keeps every exponent at most 0.

# %%
def softmax_naive(z: torch.Tensor) -> torch.Tensor:
    return z.exp() / z.exp().sum(dim=-1, keepdim=True)


def softmax_stable(z: torch.Tensor) -> torch.Tensor:
    shifted = z - z.max(dim=-1, keepdim=True).values
    return shifted.exp() / shifted.exp().sum(dim=-1, keepdim=True)


logits = torch.tensor([[1.0, 2.0, 3.0], [100.0, 101.0, 102.0]])
print("naive :", softmax_naive(logits))
print("stable:", softmax_stable(logits))
print(f"max |stable - torch.softmax| = {max_diff(softmax_stable(logits), logits.softmax(-1)):.1e}")

# %% [markdown]
# ## Dropout: where it goes, and what `eval()` changes
#
# Dropout (Srivastava et al., 2014) zeroes each element with probability $p$ during training and
# scales the survivors by $1/(1-p)$, so that every element keeps its expected value; at
# evaluation it does nothing. GPT-2 and nanoGPT apply it in three places, all of them on
# something that is *added* or *mixed*, never on the residual stream itself:
#
# 1. after the token and position embeddings are summed;
# 2. on the attention weights, after the softmax (attention dropout: a position randomly
#    ignores some of the positions it attends to);
# 3. on the output of each attention and MLP branch, before it is added to the residual stream
#    (residual dropout).
#
# First the scaling rule, measured on one tensor:

# %%
dropout = nn.Dropout(p=0.2)
ones_big = torch.ones(1_000_000)
dropped = dropout(ones_big)
print(f"train mode: {(dropped == 0).float().mean():.4f} of the entries zeroed (p = 0.2), "
      f"survivors scaled to {dropped.max():.2f} = 1/(1-p), mean {dropped.mean():.4f}")
dropout.eval()
print("eval mode: output equals input:", torch.equal(dropout(ones_big), ones_big))

# %% [markdown]
# Now the attention module with dropout 0.1 in both places. In training mode two calls on the
# same input differ, and the dropped attention weights no longer sum to 1 in every row (only in
# expectation). In evaluation mode the module is deterministic and equals the same module
# built without dropout. With the same random seed, our module and the library's explicit
# attention path (`attention_impl="manual"`) drop exactly the same entries, which confirms that
# the dropout layers sit in the same places and are called in the same order.

# %%
mha_dropout = MultiHeadAttention(D_MODEL, N_HEAD, dropout=0.1)
mha_dropout.load_state_dict(mha.state_dict())
library_dropout = CausalSelfAttention(
    GPTConfig(**{**config.to_dict(), "dropout": 0.1, "attention_impl": "manual"}))
library_dropout.load_state_dict(mha.state_dict())

mha_dropout.train()
with torch.no_grad():
    first, second = mha_dropout(x), mha_dropout(x)
    q_d, k_d, _ = mha_dropout.split_heads(x)
    row_sums = mha_dropout.attn_dropout(causal_weights(q_d, k_d)).sum(dim=-1)
print(f"train mode: two calls differ by up to {max_diff(first, second):.2f}")
print(f"train mode: rows of dropped attention weights sum to {row_sums.min():.2f} .. "
      f"{row_sums.max():.2f} (mean {row_sums.mean():.3f})")

library_dropout.train()
torch.manual_seed(123)
with torch.no_grad():
    ours_train = mha_dropout(x)
torch.manual_seed(123)
with torch.no_grad():
    library_train = library_dropout(x)
print(f"train mode, same seed: max |ours - library (manual attention)| = "
      f"{max_diff(ours_train, library_train):.2e}")

mha_dropout.eval()
with torch.no_grad():
    print("eval mode: deterministic:", torch.equal(mha_dropout(x), mha_dropout(x)),
          "| equal to the module without dropout:", torch.equal(mha_dropout(x), mha(x)))
assert torch.equal(ours_train, library_train) and torch.equal(mha_dropout(x), mha(x))

# %% [markdown]
# Forgetting `model.eval()` before evaluating or generating is a common bug: the outputs are
# then noisy and the measured loss is worse than the model's. How much dropout helps depends on
# how much data there is per parameter: nanoGPT uses 0.2 for the small Shakespeare model, while
# large pretraining runs that see each token once often use none.

# %% [markdown]
# ## A whole block
#
# Our pieces assemble into the pre-norm block of the first notebook; against
# `shared.models.TransformerBlock` with the same weights, in evaluation mode:

# %%
class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d_model), MultiHeadAttention(d_model, n_head)
        self.norm2, self.ffn = nn.LayerNorm(d_model), FeedForward(d_model, 4 * d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(layer_norm(x, self.norm1.weight, self.norm1.bias))
        return x + self.ffn(layer_norm(x, self.norm2.weight, self.norm2.bias))


block = Block(D_MODEL, N_HEAD).eval()
library_block = TransformerBlock(config).eval()
library_block.load_state_dict(block.state_dict())
with torch.no_grad():
    print(f"max |our block - shared.models.TransformerBlock| = "
          f"{max_diff(block(x), library_block(x)):.2e}")
    assert torch.allclose(block(x), library_block(x), atol=1e-5)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Attention with an additive mask
#
# `scaled_dot_product_attention` also accepts an additive float mask instead of `is_causal`.
# Write `causal_additive_mask(T)` returning a `(T, T)` float tensor that is 0 where query $t$ may
# see key $j$ ($j \le t$) and `-inf` elsewhere. The check passes it to
# `F.scaled_dot_product_attention(q, k, v, attn_mask=...)` and compares with `is_causal=True`.

# %% tags=["solution"]
def causal_additive_mask(T: int) -> torch.Tensor:
    """(T, T) float mask: 0 on and below the diagonal, -inf above it."""
    # BEGIN SOLUTION
    return torch.zeros(T, T).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_shape, passed

mask = causal_additive_mask(7)
check_shape(mask, (7, 7), "causal_additive_mask")
check_equal(torch.isinf(mask), torch.ones(7, 7, dtype=torch.bool).triu(1), "causal_additive_mask")
check(bool((mask[~torch.isinf(mask)] == 0).all()), "causal_additive_mask",
      "zeros wherever a key is visible")
q7, k7, v7 = (torch.randn(2, 3, 7, 8) for _ in range(3))
check_close(F.scaled_dot_product_attention(q7, k7, v7, attn_mask=causal_additive_mask(7)),
            F.scaled_dot_product_attention(q7, k7, v7, is_causal=True),
            "attention with causal_additive_mask", atol=1e-6)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The ALiBi bias
#
# ALiBi adds $-m_h (t - j)$ to the score of query $t$ and key $j \le t$ in head $h$, and masks the
# future as usual. Write `alibi_bias(slopes, T)` returning a `(heads, T, T)` tensor with
# `-slopes[h] * (t - j)` for $j \le t$ and `-inf` above the diagonal. Use
# `shared.layers.alibi_slopes(n_head)` for the slopes; the check compares with an explicit loop
# and verifies that the most recent key gets the largest bias.

# %% tags=["solution"]
def alibi_bias(slopes: torch.Tensor, T: int) -> torch.Tensor:
    """(heads, T, T): -slope * distance on and below the diagonal, -inf above it."""
    # BEGIN SOLUTION
    distance = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # t - j
    bias = -slopes[:, None, None] * distance
    return bias.masked_fill(distance < 0, float("-inf"))
    # END SOLUTION


# %% tags=["check"]
slopes = alibi_slopes(4)
bias = alibi_bias(slopes, 5)
check_shape(bias, (4, 5, 5), "alibi_bias")
expected = torch.full((4, 5, 5), float("-inf"))
for h in range(4):
    for t in range(5):
        for j in range(t + 1):
            expected[h, t, j] = -slopes[h] * (t - j)
check_equal(torch.isinf(bias), torch.isinf(expected), "alibi_bias (where -inf goes)")
check_close(bias[~torch.isinf(bias)], expected[~torch.isinf(expected)], "alibi_bias", atol=1e-6)
check(bool((bias[:, 4].argmax(dim=-1) == 4).all()), "alibi_bias",
      "the most recent key (j = t) to get the largest bias")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: RMSNorm from scratch
#
# RMSNorm (Zhang and Sennrich, 2019), used by Llama, drops LayerNorm's mean and shift:
# $\mathrm{RMSNorm}(x) = \gamma \odot x / \sqrt{\frac{1}{d}\sum_i x_i^2 + \epsilon}$. Write
# `rms_norm(x, gain, eps)` and match `shared.layers.RMSNorm`. The check uses a random gain and
# inputs with a non-zero mean (where RMSNorm and LayerNorm differ).

# %% tags=["solution"]
def rms_norm(x: torch.Tensor, gain: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    # BEGIN SOLUTION
    return gain * x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    # END SOLUTION


# %% tags=["check"]
reference_rms = RMSNorm(D_MODEL, eps=1e-6)
with torch.no_grad():
    reference_rms.weight.normal_()
    shifted_x = x + 3.0
    check_close(rms_norm(shifted_x, reference_rms.weight, 1e-6), reference_rms(shifted_x),
                "rms_norm", atol=1e-5)
    plain_rms = rms_norm(shifted_x, torch.ones(D_MODEL))
    plain_layer_norm = layer_norm(shifted_x, torch.ones(D_MODEL), torch.zeros(D_MODEL))
    check(max_diff(plain_rms, plain_layer_norm) > 0.1, "rms_norm",
          "a result that differs from LayerNorm when the mean is not zero")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Inverted dropout by hand
#
# Write `my_dropout(x, p, generator)` that zeroes each entry with probability `p` (draw uniform
# numbers with `torch.rand(x.shape, generator=generator)` and drop where they are below `p`) and
# scales the rest by $1/(1-p)$. The check verifies on a large tensor that about a fraction `p`
# is zeroed, that every survivor equals `x / (1 - p)`, and that the mean is preserved.

# %% tags=["solution"]
def my_dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    # BEGIN SOLUTION
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1.0 - p)
    # END SOLUTION


# %% tags=["check"]
values = torch.rand(200_000) + 0.5  # no zeros of its own
out = my_dropout(values, 0.3, torch.Generator().manual_seed(0))
check_shape(out, values.shape, "my_dropout")
check_close((out == 0).float().mean(), 0.3, "fraction of dropped entries", atol=0.01)
survivors = out != 0
check_close(out[survivors], values[survivors] / 0.7, "survivors scaled by 1/(1-p)", rtol=1e-6)
check_close(out.mean(), values.mean(), "the mean after dropout", rtol=0.01)
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Causal multi-head attention is three reshapes, two matrix products, a mask and a softmax;
#   ours matches `scaled_dot_product_attention` forward and backward and
#   `shared.models.CausalSelfAttention`, and a perturbation test confirms that no position reads
#   the future.
# - A fused attention kernel keeps the inputs, output and row statistics instead of the
#   $T \times T$ weights: 2 MiB instead of 18.5 MiB at $T = 1024$ here, and faster.
# - RoPE rotates pairs of query and key channels by position-dependent angles; ours (complex
#   multiplication) matches `shared.layers.apply_rope`, scores depend only on $m - n$, and they
#   decay with distance for aligned vectors.
# - LayerNorm needs the biased variance; the tanh GELU differs from the exact one by under
#   $5 \times 10^{-4}$; a softmax must subtract the row maximum.
# - Dropout goes after the embeddings, on attention weights and on residual branches; `eval()`
#   turns it off, and the module is then identical to one without dropout.
#
# Next: [norms and gradients](03-norms-and-gradients), where the placement of LayerNorm decides
# whether a deep stack trains at all.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - A. Radford et al., "Language models are unsupervised multitask learners" (GPT-2), 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - A. Karpathy, nanoGPT (code reference). https://github.com/karpathy/nanoGPT
# - J. Su et al., "RoFormer: Enhanced transformer with rotary position embedding", 2021.
#   https://arxiv.org/abs/2104.09864
# - O. Press, N. A. Smith, M. Lewis, "Train short, test long: Attention with linear biases
#   enables input length extrapolation" (ALiBi), ICLR 2022. https://arxiv.org/abs/2108.12409
# - T. Dao, D. Y. Fu, S. Ermon, A. Rudra, C. Re, "FlashAttention: Fast and memory-efficient
#   exact attention with IO-awareness", NeurIPS 2022. https://arxiv.org/abs/2205.14135 and
#   https://github.com/HazyResearch/flash-attention
# - J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer normalization", 2016.
#   https://arxiv.org/abs/1607.06450
# - B. Zhang, R. Sennrich, "Root mean square layer normalization", NeurIPS 2019.
#   https://arxiv.org/abs/1910.07467
# - D. Hendrycks, K. Gimpel, "Gaussian error linear units (GELUs)", 2016.
#   https://arxiv.org/abs/1606.08415
# - N. Srivastava et al., "Dropout: A simple way to prevent neural networks from overfitting",
#   JMLR 2014. https://jmlr.org/papers/v15/srivastava14a.html
# - A. Rush et al., "The Annotated Transformer" (Harvard NLP).
#   https://nlp.seas.harvard.edu/annotated-transformer/
# - PyTorch documentation, `torch.nn.functional.scaled_dot_product_attention`.
#   https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html
