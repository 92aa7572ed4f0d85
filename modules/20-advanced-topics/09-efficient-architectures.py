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
# # Efficient architectures: state-space models, RWKV and what lies beyond attention
#
# A transformer pays for its flexibility twice. Training on $L$ tokens costs $O(L^2)$ in the
# attention layers, and generating each new token means reading a key/value cache that grows by a
# fixed number of bytes with every token already seen. Recurrent architectures take the opposite
# bet: they compress the past into a state of fixed size, so each token costs the same whatever the
# context length. Mamba (a *selective state-space model*) and RWKV (a linear recurrence with
# learned time decay) are the two best-known modern members of that family, and both can also be
# trained in parallel over the sequence like a transformer. This notebook builds a minimal version
# of each in plain PyTorch, checks each recurrence against an explicit "attention-like" form of
# the same function, measures how they scale against softmax attention, and shows what the fixed
# state buys at inference and what it costs in recall. It ends with a short, cited overview of
# other efficiency research: sparse training, neural architecture search, hardware/software
# co-design and photonic computing.
#
# **Learning objectives**
# - Explain why causal attention costs $O(L^2)$ time and a KV cache that grows with $L$, and how
#   linear attention turns the same computation into a recurrence with a fixed-size state.
# - Discretise a continuous state-space model, make its parameters input-dependent (Mamba's
#   selection mechanism), and verify the recurrent scan against the materialised kernel.
# - Implement RWKV's WKV recurrence with time decay $w$ and bonus $u$, verify it against its
#   quadratic softmax form, and make it numerically stable with a running maximum.
# - Measure operation counts, peak memory and time against sequence length, fit log-log slopes,
#   and compare the bytes of a recurrent state with those of a KV cache during generation.
# - Describe, with sources, what sparse training, neural architecture search, co-design and
#   photonic computing try to achieve and where they stand.
#
# **Prerequisites:** [self-attention](../02-transformer-architecture/03-self-attention) (causal
# scaled dot-product attention) and [long context and ring attention](02-long-context-ring-attention)
# (the quadratic cost, the online softmax and peak-memory measurement).
# [Mixture of experts](01-mixture-of-experts) is useful background for the sparsity overview.
#
# **Estimated time:** 75 minutes.

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
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import shared
from shared.attention import peak_memory_bytes, vanilla_attention
from shared.energy import count_flops

shared.seed_everything(0)
# One thread for every timing below: the measurements compare algorithms, and on a machine whose
# cores are shared with other jobs a second thread mostly measures the scheduler.
torch.set_num_threads(1)
print(shared.environment_summary("numpy", "matplotlib"))
KIB, MIB = 2**10, 2**20

# %% [markdown]
# ## Why attention is quadratic, and what a recurrence does instead
#
# Causal attention computes, for every position $t$,
#
# $$o_t = \sum_{s \le t} \frac{\exp(q_t \cdot k_s / \sqrt{d})}{\sum_{s' \le t}
# \exp(q_t \cdot k_{s'} / \sqrt{d})}\, v_s .$$
#
# Position $t$ compares its query with $t$ keys ($2td$ operations) and mixes $t$ values (another
# $2td$), so a sequence of $L$ tokens costs $\sum_t 4td \approx 2L^2d$ operations per head and
# layer. During generation the keys and values of all earlier tokens must be kept: the KV cache
# grows by $2d$ numbers per head and layer for every token, and every new token reads all of it.
# FlashAttention-style kernels remove the $L \times L$ matrix from memory (see
# [long context and ring attention](02-long-context-ring-attention)), but not the $L^2$ work and
# not the growing cache.
#
# A recurrent layer instead keeps a state $h_t$ of fixed size and updates it once per token,
# $h_t = f(h_{t-1}, x_t)$, $y_t = g(h_t, x_t)$. Work per token is constant, so a sequence costs
# $O(L)$, and generation needs only $h_t$. The price: everything the layer knows about the past
# must fit in $h_t$.
#
# ### Linear attention: the bridge between the two
#
# Katharopoulos et al. (2020) replaced the exponential similarity by a product of feature maps,
# $\exp(q \cdot k) \to \phi(q)^\top \phi(k)$ with $\phi(x) = \mathrm{elu}(x) + 1 > 0$. The sum over
# the past then factorises:
#
# $$o_t = \frac{\phi(q_t)^\top \sum_{s \le t} \phi(k_s) v_s^\top}{\phi(q_t)^\top \sum_{s\le t}
# \phi(k_s)} = \frac{\phi(q_t)^\top S_t}{\phi(q_t)^\top z_t},\qquad S_t = S_{t-1} + \phi(k_t)
# v_t^\top,\quad z_t = z_{t-1} + \phi(k_t).$$
#
# The same function can be computed in two ways: the *quadratic form* builds the $L \times L$
# matrix of weights $\phi(q_t)^\top\phi(k_s)$ (parallel over $t$, like attention), the
# *recurrent form* carries a $d \times d_v$ state $S_t$ (like an RNN). Both are below.

# %%
def feature_map(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1: positive, so that the weights below are positive."""
    return F.elu(x) + 1


def linear_attention_quadratic(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal linear attention for q, k (L, d) and v (L, d_v), with the L x L weight matrix."""
    weights = (feature_map(q) @ feature_map(k).T).tril()  # weights[t, s] = phi(q_t) . phi(k_s)
    return (weights @ v) / weights.sum(dim=1, keepdim=True)


def linear_attention_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The same function with a (d, d_v) state S and a (d,) normaliser z, one token at a time."""
    phi_q, phi_k = feature_map(q), feature_map(k)
    S = torch.zeros(k.shape[1], v.shape[1])
    z = torch.zeros(k.shape[1])
    out = torch.empty_like(v)
    for t in range(len(q)):
        S = S + torch.outer(phi_k[t], v[t])
        z = z + phi_k[t]
        out[t] = (phi_q[t] @ S) / (phi_q[t] @ z)
    return out


q, k, v = torch.randn(3, 256, 32).unbind(0)
difference = linear_attention_quadratic(q, k, v) - linear_attention_recurrent(q, k, v)
print(f"max |quadratic form - recurrent form| = {difference.abs().max():.1e}")
print(f"state of the recurrent form: S {32 * 32} + z {32} = {32 * 32 + 32} numbers, "
      "for any sequence length")

# %% [markdown]
# The two forms agree to float32 rounding. This duality (parallel quadratic form for training,
# fixed-state recurrence for generation) is the common thread of the architectures below. Mamba
# and RWKV add what plain linear attention lacks: a way to *forget*, through a decay that is
# learned per channel (RWKV) or chosen per token from the input (Mamba).

# %% [markdown]
# ## State-space models: from S4 to Mamba
#
# ### A continuous system, discretised
#
# A linear state-space model (SSM) maps an input signal $x(t)$ to an output $y(t)$ through a
# hidden state $h(t) \in \mathbb{R}^N$:
#
# $$h'(t) = A\,h(t) + B\,x(t), \qquad y(t) = C\,h(t) + D\,x(t).$$
#
# To apply it to tokens, hold $x$ constant over a step of length $\Delta$ and integrate exactly
# (the *zero-order hold*, ZOH). That gives a linear recurrence
#
# $$h_t = \bar A\, h_{t-1} + \bar B\, x_t,\qquad \bar A = \exp(\Delta A),\qquad
# \bar B = (\Delta A)^{-1}\left(\exp(\Delta A) - I\right)\Delta B .$$
#
# With a diagonal $A$ (entries $a_n < 0$, so the state decays) everything is element-wise:
# $\bar A_n = e^{\Delta a_n}$ and $\bar B_n = \frac{e^{\Delta a_n} - 1}{a_n} B_n$. Mamba's
# reference implementation uses the simpler $\bar B \approx \Delta B$, which agrees with ZOH to
# first order in $\Delta$; so does the code below (Exercise 1 implements exact ZOH). The step
# $\Delta$ acts as a gate: a large $\Delta$ resets the state towards the current input, a small
# one keeps the past.
#
# ### Fixed parameters: a convolution (S4)
#
# If $\Delta, B, C$ are the same at every step (a *linear time-invariant* system), unrolling the
# recurrence from $h_{-1} = 0$ gives
#
# $$y_t = \sum_{s \le t} C \bar A^{\,t-s} \bar B\, x_s + D x_t = (K * x)_t + D x_t,\qquad
# K_j = C \bar A^{\,j} \bar B ,$$
#
# a causal convolution with a kernel as long as the sequence. S4 (Gu et al. 2021) computes $K$
# efficiently for a structured $A$ and applies it with an FFT in $O(L \log L)$, which is how it
# trains in parallel. Below, with one state of size $N$ per channel, the scan and the FFT
# convolution agree.

# %%
def lti_scan(x: torch.Tensor, delta: float, A: torch.Tensor, B: torch.Tensor,
             C: torch.Tensor) -> torch.Tensor:
    """Time-invariant SSM, one independent state of size N per channel.

    x: (L, d); A: (d, N) diagonal entries (negative); B, C: (N,). Returns y: (L, d) without D.
    """
    A_bar, B_bar = torch.exp(delta * A), delta * B  # (d, N), (N,)
    h = torch.zeros_like(A)
    out = []
    for x_t in x:
        h = A_bar * h + B_bar * x_t[:, None]
        out.append(h @ C)
    return torch.stack(out)


def lti_convolution(x: torch.Tensor, delta: float, A: torch.Tensor, B: torch.Tensor,
                    C: torch.Tensor) -> torch.Tensor:
    """The same map as a causal convolution with K_j = C A_bar^j B_bar, applied with an FFT."""
    L = x.shape[0]
    powers = torch.exp(delta * A[None] * torch.arange(L)[:, None, None])  # A_bar^j: (L, d, N)
    kernel = (powers * (delta * B) * C).sum(-1)  # (L, d)
    n_fft = 2 * L  # zero padding turns the FFT's circular convolution into a linear one
    y = torch.fft.irfft(torch.fft.rfft(kernel, n_fft, dim=0) * torch.fft.rfft(x, n_fft, dim=0),
                        n_fft, dim=0)
    return y[:L]


WIDTH, STATE = 64, 16  # channels d and state size N used throughout
A_diag = -torch.arange(1, STATE + 1, dtype=torch.float32).repeat(WIDTH, 1)  # -1..-N, as Mamba
x = torch.randn(512, WIDTH)
B_fixed, C_fixed = torch.randn(STATE), torch.randn(STATE)
by_scan = lti_scan(x, 0.05, A_diag, B_fixed, C_fixed)
by_fft = lti_convolution(x, 0.05, A_diag, B_fixed, C_fixed)
print(f"time-invariant SSM: max |scan - FFT convolution| = {(by_scan - by_fft).abs().max():.1e}"
      f" (outputs up to {by_scan.abs().max():.2f})")

# %% [markdown]
# ### Selection: parameters that depend on the input (Mamba)
#
# A time-invariant system treats every token the same way: it cannot decide to ignore a filler
# token or to reset its memory at a separator. Mamba (Gu & Dao 2023) makes $\Delta$, $B$ and $C$
# functions of the current input,
#
# $$\Delta_t = \mathrm{softplus}(W_\Delta x_t + b_\Delta),\qquad B_t = W_B x_t,\qquad
# C_t = W_C x_t,$$
#
# with $\Delta_t$ one value per channel and $B_t, C_t \in \mathbb{R}^N$ shared by the channels.
# The recurrence becomes time-varying,
#
# $$h_t = \exp(\Delta_t A) \odot h_{t-1} + \Delta_t B_t x_t, \qquad y_t = h_t C_t + D x_t,$$
#
# and there is no longer a single kernel $K$, so the FFT trick is gone. Two ways remain. The
# **recurrent scan** visits the tokens in order with a state of $d \times N$ numbers. The
# **materialised form** unrolls the recurrence: since the $\bar A_r$ are diagonal, their product
# from $s+1$ to $t$ is $\exp\!\big(A\,(S_t - S_s)\big)$ with $S_t = \sum_{r \le t} \Delta_r$, so
#
# $$y_t = \sum_{s \le t} M_{ts}\, x_s + D x_t,\qquad M_{ts} = \sum_{n} C_{t,n}\,
# e^{a_n (S_t - S_s)}\, B_{s,n}\, \Delta_s ,$$
#
# an $L \times L$ lower-triangular matrix per channel: an attention matrix that the SSM never
# builds. (Mamba-2, Dao & Gu 2024, builds on exactly this duality.) The layer below follows
# Mamba's parametrisation: $A = -\exp(A_{\log})$ initialised to $-1, \dots, -N$, and $\Delta$'s
# bias set so that, before the input's contribution, $\Delta$ lies between 0.001 and 0.1. Mamba computes $\Delta$ through a
# low-rank projection and wraps the SSM in a block with a short causal convolution and a SiLU
# gate; those are left out here to keep the selective scan itself in view.

# %%
def selective_scan(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """Selective SSM by a sequential scan.

    x, delta: (batch, L, d); A: (d, N); B, C: (batch, L, N); D: (d,). Returns y: (batch, L, d).
    """
    A_bar = torch.exp(delta[..., None] * A)  # (batch, L, d, N): one decay per token and channel
    Bx = (delta * x)[..., None] * B[:, :, None, :]  # (batch, L, d, N): Delta_t B_t x_t
    states = torch.empty_like(A_bar)
    h = torch.zeros_like(A_bar[:, 0])  # (batch, d, N): the whole memory of the layer
    for t in range(x.shape[1]):
        h = A_bar[:, t] * h + Bx[:, t]
        states[:, t] = h
    return torch.einsum("bldn,bln->bld", states, C) + x * D


def selective_kernel(delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                     C: torch.Tensor) -> torch.Tensor:
    """The materialised matrix M[b, t, s, channel] of the selective SSM (zero above the diagonal)."""
    L = delta.shape[1]
    S = delta.cumsum(dim=1)  # (batch, L, d)
    causal = torch.ones(L, L, dtype=torch.bool).tril()[None, :, :, None]
    gap = (S[:, :, None, :] - S[:, None, :, :]).masked_fill(~causal, 0.0)  # S_t - S_s
    decay = torch.exp(gap[..., None] * A)  # (batch, t, s, d, N)
    M = torch.einsum("btn,btsdn,bsn->btsd", C, decay, B) * delta[:, None, :, :]
    return M * causal


def selective_materialised(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                           C: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """y = M x + D x with the materialised matrix: O(L^2) time and memory."""
    return torch.einsum("btsd,bsd->btd", selective_kernel(delta, A, B, C), x) + x * D


class SelectiveSSM(nn.Module):
    """A minimal selective state-space layer (Mamba's SSM without its block around it)."""

    def __init__(self, width: int, state_size: int = 16, dt_min: float = 1e-3,
                 dt_max: float = 1e-1):
        super().__init__()
        self.to_delta = nn.Linear(width, width)
        self.to_B = nn.Linear(width, state_size, bias=False)
        self.to_C = nn.Linear(width, state_size, bias=False)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state_size + 1.0)).repeat(width, 1))
        self.D = nn.Parameter(torch.ones(width))
        # Delta starts log-uniform in [dt_min, dt_max]: the bias is softplus^-1 of that value.
        dt = torch.exp(torch.empty(width).uniform_(math.log(dt_min), math.log(dt_max)))
        with torch.no_grad():
            self.to_delta.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def ssm_parameters(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Delta (.., d), A (d, N), B (.., N), C (.., N) for the input x (.., d)."""
        return F.softplus(self.to_delta(x)), -torch.exp(self.A_log), self.to_B(x), self.to_C(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return selective_scan(x, *self.ssm_parameters(x), self.D)

    def step(self, x_t: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token x_t (d,) with state h (d, N): returns (y_t, new state). O(d N) work."""
        delta, A, B, C = self.ssm_parameters(x_t)
        h = torch.exp(delta[:, None] * A) * h + (delta * x_t)[:, None] * B
        return h @ C + self.D * x_t, h


ssm = SelectiveSSM(WIDTH, STATE)
x = torch.randn(2, 128, WIDTH)
with torch.no_grad():
    params = ssm.ssm_parameters(x)
    y_scan = ssm(x)
    y_materialised = selective_materialised(x, *params, ssm.D)
print(f"selective SSM, 2 x 128 tokens x {WIDTH} channels, state {WIDTH} x {STATE}:")
print(f"  max |scan - materialised| = {(y_scan - y_materialised).abs().max():.1e}"
      f" (outputs up to {y_scan.abs().max():.2f})")
print(f"  Delta ranges over [{params[0].min():.4f}, {params[0].max():.4f}]: it depends on the token")

# %% [markdown]
# The scan and the materialised matrix agree to float32 rounding. The materialised matrices are
# worth a look: for a time-invariant SSM, $M_{ts}$ depends only on $t - s$ (constant along each
# diagonal, a convolution); for the selective layer each row and column depends on the tokens.

# %%
with torch.no_grad():
    x_short = torch.randn(1, 48, WIDTH)
    delta, A, B, C = ssm.ssm_parameters(x_short)
    M_selective = selective_kernel(delta, A, B, C)[0, :, :, 0]
    M_lti = selective_kernel(torch.full_like(delta, float(delta.mean())), A,
                             B.mean(1, keepdim=True).expand_as(B),
                             C.mean(1, keepdim=True).expand_as(C))[0, :, :, 0]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, M, name in [(axes[0], M_lti, "time-invariant (Delta, B, C fixed)"),
                    (axes[1], M_selective, "selective (Delta, B, C from each token)")]:
    bound = float(M.abs().max())
    im = ax.imshow(M.numpy(), cmap="RdBu_r", vmin=-bound, vmax=bound)
    ax.set(title=name, xlabel="input position s", ylabel="output position t")
    fig.colorbar(im, ax=ax, label="M[t, s]")
fig.suptitle("The SSM's implicit L x L matrix for one channel (the scan never builds it)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Why a recurrence can still train in parallel
#
# The scan above is a Python loop over tokens, which a GPU cannot parallelise as written. But the
# update $h_t = a_t h_{t-1} + b_t$ is *associative*: two consecutive steps compose into one,
# $(a_1, b_1) \circ (a_2, b_2) = (a_1 a_2,\; a_2 b_1 + b_2)$. A parallel prefix scan (Blelloch
# 1990; applied to linear RNNs by Martin & Cundy 2018) therefore computes all $h_t$ in
# $O(\log L)$ parallel rounds. Mamba's CUDA kernel runs such a scan with the expanded
# $(L, d, N)$ states kept in on-chip SRAM rather than written to GPU memory, and recomputes them
# in the backward pass; our reference version stores them (the `states` tensor), which is why its
# memory below grows with $L \cdot d \cdot N$. Exercise 3 implements the log-depth scan.

# %% [markdown]
# ## RWKV: a recurrence with a learned time decay
#
# RWKV (Peng et al. 2023) replaces attention by the *WKV* operator. For each channel, with a
# learned decay $w > 0$ and a "bonus" $u$ for the current token,
#
# $$\mathrm{wkv}_t = \frac{\sum_{i<t} e^{-(t-1-i)w + k_i}\, v_i + e^{u + k_t}\, v_t}
# {\sum_{i<t} e^{-(t-1-i)w + k_i} + e^{u + k_t}} .$$
#
# Read it as softmax attention without a query: token $i$ gets the score $k_i - (t-1-i)w$ (its
# key, minus a penalty that grows with its age), the current token gets $u + k_t$, and the output
# is the softmax-weighted average of the values. Because the score does not depend on $t$ except
# through the linear age penalty, the sums can be carried forward:
#
# $$a_t = e^{-w} a_{t-1} + e^{k_t} v_t,\qquad b_t = e^{-w} b_{t-1} + e^{k_t},\qquad
# \mathrm{wkv}_t = \frac{a_{t-1} + e^{u+k_t} v_t}{b_{t-1} + e^{u+k_t}} .$$
#
# The full RWKV time-mixing layer computes $k, v$ and a *receptance* $r$ from a mix of the current
# and previous token ("token shift") and outputs $W_o\big(\sigma(r_t) \odot \mathrm{wkv}_t\big)$.
# First the WKV operator, in its quadratic form and as the recurrence above:

# %%
def wkv_quadratic(k: torch.Tensor, v: torch.Tensor, w: torch.Tensor,
                  u: torch.Tensor) -> torch.Tensor:
    """WKV as a softmax over all earlier positions. k, v: (L, c); w, u: (c,). O(L^2 c)."""
    L = k.shape[0]
    t = torch.arange(L)
    age = (t[:, None] - 1 - t[None, :]).float()  # t - 1 - i
    scores = k[None, :, :] - age[:, :, None] * w  # (t, i, c)
    scores = torch.where((t[:, None] == t[None, :])[:, :, None], u + k[None, :, :], scores)
    scores = scores.masked_fill((t[None, :] > t[:, None])[:, :, None], -math.inf)  # causal
    return torch.einsum("tic,ic->tc", torch.softmax(scores, dim=1), v)


def wkv_naive(k: torch.Tensor, v: torch.Tensor, w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """WKV as the recurrence on (a, b), exactly as written above: O(L c), but overflows."""
    a, b = torch.zeros_like(k[0]), torch.zeros_like(k[0])
    out = torch.empty_like(v)
    for t in range(len(k)):
        bonus = torch.exp(u + k[t])
        out[t] = (a + bonus * v[t]) / (b + bonus)
        a = torch.exp(-w) * a + torch.exp(k[t]) * v[t]
        b = torch.exp(-w) * b + torch.exp(k[t])
    return out


L_check, channels = 128, WIDTH
k, v = torch.randn(2, L_check, channels).unbind(0)
w = torch.exp(torch.linspace(-5, 1, channels))  # decays from very slow to fast, as RWKV inits
u = torch.full((channels,), 0.5)
reference = wkv_quadratic(k, v, w, u)
print(f"keys ~ N(0, 1):  max |naive recurrence - quadratic form| = "
      f"{(wkv_naive(k, v, w, u) - reference).abs().max():.1e}")
large_keys = 60 * k  # trained models do produce large keys; exp(88.8) overflows float32
naive = wkv_naive(large_keys, v, w, u)
print(f"keys ~ N(0, 60^2): naive recurrence gives {int(naive.isnan().sum())} NaN of {naive.numel()}"
      f" outputs; the quadratic form gives {int(wkv_quadratic(large_keys, v, w, u).isnan().sum())}")

# %% [markdown]
# The naive recurrence is right until $e^{k}$ overflows: then $a$ and $b$ become infinite and
# their ratio NaN. The quadratic form is safe because `torch.softmax` subtracts the maximum score
# before exponentiating. The recurrence can do the same with the trick of the online softmax in
# [long context and ring attention](02-long-context-ring-attention): keep $a$ and $b$ scaled by
# $e^{-p}$, where $p$ is the largest exponent seen so far, and store $p$ in the state. A new term
# with exponent $m$ is merged with the past (exponent $p'$) through $q = \max(p', m)$:
#
# $$\mathrm{wkv}_t = \frac{e^{p - q}\, a + e^{m - q}\, v_t}{e^{p - q}\, b + e^{m - q}}
# \ \text{ with } m = u + k_t,\ p' = p; \qquad
# (a, b, p) \leftarrow \big(e^{p - w - q} a + e^{m - q} v_t,\; e^{p - w - q} b + e^{m - q},\; q\big)
# \ \text{ with } m = k_t,\ p' = p - w .$$
#
# The decay becomes a subtraction in log space, and every exponential is at most 1. This is how
# RWKV-4's kernels compute it.

# %%
def wkv_step(state: tuple[torch.Tensor, ...], k_t: torch.Tensor, v_t: torch.Tensor,
             w: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One stable WKV step. state = (a, b, p), each (c,): sums scaled by exp(-p)."""
    a, b, p = state
    q = torch.maximum(p, u + k_t)  # output: the past (exponent p) and the bonus term
    scale_past, scale_now = torch.exp(p - q), torch.exp(u + k_t - q)
    out = (scale_past * a + scale_now * v_t) / (scale_past * b + scale_now)
    q = torch.maximum(p - w, k_t)  # update: decay the past by w, add the current token
    scale_past, scale_now = torch.exp(p - w - q), torch.exp(k_t - q)
    return out, (scale_past * a + scale_now * v_t, scale_past * b + scale_now, q)


def wkv_initial_state(channels: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    """Empty sums, with p = -inf so that the first token sets the scale."""
    return (torch.zeros(channels, dtype=dtype), torch.zeros(channels, dtype=dtype),
            torch.full((channels,), -math.inf, dtype=dtype))


def wkv_stable(k: torch.Tensor, v: torch.Tensor, w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """WKV by the stable recurrence: O(L c) time, a state of 3c numbers."""
    state = wkv_initial_state(k.shape[1], k.dtype)
    out = torch.empty_like(v)
    for t in range(len(k)):
        out[t], state = wkv_step(state, k[t], v[t], w, u)
    return out


for name, keys in [("keys ~ N(0, 1)", k), ("keys ~ N(0, 60^2)", large_keys)]:
    stable = wkv_stable(keys, v, w, u)
    print(f"{name:>17}: max |stable recurrence - quadratic form| = "
          f"{(stable - wkv_quadratic(keys, v, w, u)).abs().max():.1e}, NaN: {int(stable.isnan().sum())}")
as_double = [t.double() for t in (large_keys, v, w, u)]
print(f"the same large keys in float64: max difference "
      f"{(wkv_stable(*as_double) - wkv_quadratic(*as_double)).abs().max():.1e}")

# %% [markdown]
# The stable recurrence never produces NaN. With scores near $\pm 200$, a float32 exponent is
# exact only to about $1.5 \times 10^{-5}$ (the spacing of floats near 200), and so is every
# exponential computed from it: both float32 forms carry rounding errors of that relative size; in float64 the two forms agree to float64 rounding (about $10^{-15}$), which shows that
# the recurrence itself is exact.
#
# Now the whole time-mixing layer. Token shift mixes each input with the previous one through
# learned per-channel weights $\mu$; $w$ is the exponential of the parameter `time_decay`, which
# keeps the decay positive. The
# layer's `step` method is what generation uses: its state is the previous token's input plus
# $(a, b, p)$, four vectors of width $d$.

# %%
class RWKVTimeMix(nn.Module):
    """RWKV-4 time mixing for one sequence x (L, d), with a parallel and a step-by-step path."""

    def __init__(self, width: int):
        super().__init__()
        self.mix_k, self.mix_v, self.mix_r = (nn.Parameter(torch.rand(width)) for _ in range(3))
        self.key, self.value, self.receptance, self.output = (
            nn.Linear(width, width, bias=False) for _ in range(4))
        self.time_decay = nn.Parameter(torch.linspace(-5, 1, width))  # w = exp(time_decay) > 0
        self.time_first = nn.Parameter(torch.full((width,), 0.5))  # the bonus u

    def project(self, x: torch.Tensor, x_prev: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Token shift, then the key, value and receptance projections."""
        mixed = [x * m + x_prev * (1 - m) for m in (self.mix_k, self.mix_v, self.mix_r)]
        return self.key(mixed[0]), self.value(mixed[1]), self.receptance(mixed[2])

    def forward(self, x: torch.Tensor, wkv=wkv_stable) -> torch.Tensor:
        x_prev = F.pad(x, (0, 0, 1, 0))[:-1]  # the previous token's input, zeros before the first
        k, v, r = self.project(x, x_prev)
        return self.output(torch.sigmoid(r) * wkv(k, v, torch.exp(self.time_decay), self.time_first))

    def step(self, x_t: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        """One token x_t (d,) with state (x_prev, (a, b, p)): returns (output, new state)."""
        x_prev, wkv_state = state
        k, v, r = self.project(x_t, x_prev)
        out, wkv_state = wkv_step(wkv_state, k, v, torch.exp(self.time_decay), self.time_first)
        return self.output(torch.sigmoid(r) * out), (x_t, wkv_state)


rwkv = RWKVTimeMix(WIDTH)
x = torch.randn(L_check, WIDTH)
with torch.no_grad():
    parallel, recurrent = rwkv(x, wkv=wkv_quadratic), rwkv(x, wkv=wkv_stable)
print(f"RWKV time mixing: max |quadratic WKV - stable recurrence| = "
      f"{(parallel - recurrent).abs().max():.1e}")

# %% [markdown]
# ## Linear-time scaling, measured
#
# Now the sequence-mixing cores side by side at width $d = 64$: the selective scan (state
# $N = 16$), the stable WKV recurrence, and causal softmax attention, one head of dimension 64,
# through `torch.nn.functional.scaled_dot_product_attention` (SDPA). Three measures, with
# different reliability:
#
# - **Operations.** Counted from the code, one per multiply, add, exponential, maximum or
#   division: the selective scan does $7dN + 3d$ per token (per state entry: a multiply and an
#   exponential for $\bar A$, two multiplies for $\Delta B x$, two for the update, two for
#   $h C$; per channel: $\Delta x$, $D x$ and the sum); `wkv_step` does $25d$ (read off line by
#   line: 13 per channel for the output, 12 for the update); causal attention does $4d + 5$ per
#   (query, visible key) pair ($2d$ for the score, 5 for scaling and softmax, $2d$ for the
#   weighted sum), over $L(L+1)/2$ pairs. torch's FLOP counter
#   (`shared.energy.count_flops`) checks the attention figure below: it counts $4L^2d$ for SDPA,
#   since it does not discount the causal mask.
# - **Peak memory**, measured with `shared.attention.peak_memory_bytes` (PyTorch's memory
#   profiler, as in [long context and ring attention](02-long-context-ring-attention)). Besides
#   SDPA, which never holds the $L\times L$ scores, we measure the textbook
#   attention that materialises them (`shared.attention.vanilla_attention`). The profiler slows
#   the Python loops of the recurrences, so memory is measured up to 2,048 tokens.
# - **Wall-clock time**, the best of two runs on one thread. This is a measurement on a shared
#   machine, noisy, and it compares a fused C++ kernel (SDPA) with Python loops that pay
#   interpreter overhead on every token: read it for its slope, not its level.

# %%
def ops_selective_scan(L: int, d: int = WIDTH, n: int = STATE) -> int:
    return L * (7 * d * n + 3 * d)


def ops_wkv(L: int, d: int = WIDTH) -> int:
    return L * 25 * d


def ops_causal_attention(L: int, d: int = WIDTH) -> int:
    return (4 * d + 5) * L * (L + 1) // 2


def make_inputs(L: int, seed: int) -> dict[str, tuple]:
    """Inputs of the three layers at length L, with the same width."""
    gen = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=gen)  # noqa: E731
    delta = F.softplus(randn(1, L, WIDTH) - 3)
    return {
        "selective scan": (randn(1, L, WIDTH), delta, A_diag, randn(1, L, STATE),
                           randn(1, L, STATE), torch.ones(WIDTH)),
        "RWKV (WKV)": (randn(L, WIDTH), randn(L, WIDTH), w, u),
        "attention (SDPA)": tuple(randn(1, 1, L, WIDTH) for _ in range(3)),
    }


CORES = {
    "selective scan": selective_scan,
    "RWKV (WKV)": wkv_stable,
    "attention (SDPA)": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
}
attention_flops = count_flops(CORES["attention (SDPA)"], *make_inputs(1024, 0)["attention (SDPA)"])
print(f"torch's FLOP counter for SDPA at L = 1024: {attention_flops:,} = 4 L^2 d: "
      f"{attention_flops == 4 * 1024**2 * WIDTH}; our causal count: {ops_causal_attention(1024):,}")
for name, ops in [("selective scan", ops_selective_scan), ("RWKV (WKV)", ops_wkv)]:
    crossing = next(L for L in range(1, 10_000) if ops_causal_attention(L) > ops(L))
    print(f"attention needs more operations than the {name} from L = {crossing} tokens on")

# %%
MEMORY_LENGTHS = [256, 512, 1024, 2048]
TIME_LENGTHS = [512, 1024, 2048, 4096, 8192, 16384]
peak = {name: {} for name in [*CORES, "attention (materialised)"]}
seconds = {name: {} for name in CORES}
with torch.no_grad():
    for L in MEMORY_LENGTHS:
        inputs = make_inputs(L, seed=L)
        for name, fn in CORES.items():
            peak[name][L] = peak_memory_bytes(fn, *inputs[name])
        q, k_, v_ = inputs["attention (SDPA)"]
        peak["attention (materialised)"][L] = peak_memory_bytes(
            lambda: vanilla_attention(q, k_, v_, causal=True))
    for name, fn in CORES.items():  # warm-up: first calls pay one-off initialisation
        fn(*make_inputs(256, seed=0)[name])
    for L in TIME_LENGTHS:
        inputs = make_inputs(L, seed=L)
        for name, fn in CORES.items():
            runs = []
            for _ in range(2):
                start = time.perf_counter()
                fn(*inputs[name])
                runs.append(time.perf_counter() - start)
            seconds[name][L] = min(runs)


def slope(lengths: list[int], values: list[float]) -> float:
    """Exponent b of values ~ L^b, fitted on the three longest lengths (log-log)."""
    return float(np.polyfit(np.log(lengths[-3:]), np.log(values[-3:]), 1)[0])


operations = {"selective scan": ops_selective_scan, "RWKV (WKV)": ops_wkv,
              "attention (SDPA)": ops_causal_attention}
print(f"{'':>25} | {'operations':>10} | {'peak memory':>11} | {'time':>6}   (log-log slopes)")
for name in peak:
    ops_slope = (f"{slope(TIME_LENGTHS, [operations[name](L) for L in TIME_LENGTHS]):10.2f}"
                 if name in operations else f"{'-':>10}")
    mem_slope = slope(MEMORY_LENGTHS, [peak[name][L] for L in MEMORY_LENGTHS])
    time_slope = (f"{slope(TIME_LENGTHS, [seconds[name][L] for L in TIME_LENGTHS]):6.2f}"
                  if name in seconds else f"{'-':>6}")
    print(f"{name:>25} | {ops_slope} | {mem_slope:11.2f} | {time_slope}")
print(f"\nload average while timing (other jobs share the machine): {os.getloadavg()[0]:.1f}")
for name in ("selective scan", "RWKV (WKV)"):
    faster = [L for L in TIME_LENGTHS if seconds[name][L] < seconds["attention (SDPA)"][L]]
    print(f"{name} faster than SDPA in this run at: {faster if faster else 'no length measured'}")

# %%
print(f"{'tokens':>6} | " + " | ".join(f"{name:>16}" for name in CORES) + "   (time, s)")
for L in TIME_LENGTHS:
    print(f"{L:>6} | " + " | ".join(f"{seconds[name][L]:>16.4f}" for name in CORES))
print(f"\n{'tokens':>6} | " + " | ".join(f"{name:>24}" for name in peak) + "   (peak memory, MiB)")
for L in MEMORY_LENGTHS:
    print(f"{L:>6} | " + " | ".join(f"{peak[name][L] / MIB:>24.2f}" for name in peak))

# %%
styles = {"selective scan": "o-", "RWKV (WKV)": "s-", "attention (SDPA)": "^-",
          "attention (materialised)": "v--"}
fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
for name, fn in operations.items():
    axes[0].plot(TIME_LENGTHS, [fn(L) for L in TIME_LENGTHS], styles[name], label=name)
for name in peak:
    axes[1].plot(MEMORY_LENGTHS, [peak[name][L] / MIB for L in MEMORY_LENGTHS], styles[name],
                 label=name)
for name in seconds:
    axes[2].plot(TIME_LENGTHS, [seconds[name][L] for L in TIME_LENGTHS], styles[name], label=name)
titles = ["Operations (counted from the code)", "Peak extra memory (measured)",
          "Wall-clock time, 1 thread (measured, noisy)"]
ylabels = ["operations per layer", "MiB", "seconds"]
for ax, title, ylabel, lengths in zip(axes, titles, ylabels,
                                     [TIME_LENGTHS, MEMORY_LENGTHS, TIME_LENGTHS]):
    ax.set(xscale="log", yscale="log", xlabel="sequence length L (tokens)", ylabel=ylabel,
           title=title)
    ax.set_xticks(lengths, [f"{L:,}" for L in lengths])
    ax.minorticks_off()
    ax.legend(fontsize=8)
fig.suptitle(f"Sequence mixing at width {WIDTH}: recurrences grow like L, attention like L^2")
plt.tight_layout()
plt.show()

# %% [markdown]
# What the measurements show:
#
# - **Operations**: slope 1 for both recurrences and 2 for attention. Attention does fewer
#   operations only on short inputs (below the crossings printed above, a few dozen tokens at
#   this width); beyond them, the gap grows linearly with $L$.
# - **Memory**: the recurrences and SDPA grow linearly (their inputs, outputs and, for the scan,
#   the stored $(L, d, N)$ states), while the attention that materialises its scores grows with
#   slope close to 2. A fused attention kernel fixes attention's *memory*, not its *work*.
# - **Time**: the recurrences' slope is about 1 and attention's approaches 2 at the longest
#   lengths. But each step of a Python loop pays interpreter overhead on every small tensor
#   operation, which dwarfs the arithmetic, so on this CPU the fused SDPA kernel is faster at
#   short and medium lengths although it does far more work. The selective scan, whose loop body
#   is two tensor operations, catches up first; the WKV loop, with about twenty per token, later
#   or not within 16k tokens (the lines above give this run's crossings). Asymptotic complexity
#   sets the slope; the kernel sets the constant, which is why Mamba ships a fused scan kernel
#   rather than a loop (see co-design below).

# %% [markdown]
# ## Constant-state inference
#
# During generation a transformer appends one key and one value per head and layer to its cache
# for every token; a recurrent layer overwrites its state. Here the two recurrent layers built
# above and one attention head of the same width generate step by step for 1,024 tokens, and we
# record the bytes each must keep between steps. The recurrent steps must also reproduce the
# parallel forward pass to float32 rounding, which the cell checks.

# %%
GENERATED = 1024
x = torch.randn(GENERATED, WIDTH)
Wq, Wk, Wv = (torch.randn(WIDTH, WIDTH) / WIDTH**0.5 for _ in range(3))
ssm_state = torch.zeros(WIDTH, STATE)
rwkv_state = (torch.zeros(WIDTH), wkv_initial_state(WIDTH))
k_cache, v_cache = torch.empty(0, WIDTH), torch.empty(0, WIDTH)
memory_bytes = {"selective SSM state": [], "RWKV state": [], "attention KV cache": []}
ssm_out, rwkv_out, attn_out = [], [], []
with torch.no_grad():
    for x_t in x:
        y, ssm_state = ssm.step(x_t, ssm_state)
        ssm_out.append(y)
        y, rwkv_state = rwkv.step(x_t, rwkv_state)
        rwkv_out.append(y)
        k_cache = torch.cat([k_cache, (x_t @ Wk)[None]])  # the cache grows by one row per token
        v_cache = torch.cat([v_cache, (x_t @ Wv)[None]])
        attn_out.append(torch.softmax(k_cache @ (x_t @ Wq) / WIDTH**0.5, dim=0) @ v_cache)
        x_prev, (a, b, p) = rwkv_state
        memory_bytes["selective SSM state"].append(ssm_state.nbytes)
        memory_bytes["RWKV state"].append(x_prev.nbytes + a.nbytes + b.nbytes + p.nbytes)
        memory_bytes["attention KV cache"].append(k_cache.nbytes + v_cache.nbytes)
    parallel_attention = F.scaled_dot_product_attention(x @ Wq, x @ Wk, x @ Wv, is_causal=True)
    checks = {"selective SSM": (torch.stack(ssm_out), ssm(x[None])[0]),
              "RWKV": (torch.stack(rwkv_out), rwkv(x)),
              "attention": (torch.stack(attn_out), parallel_attention)}
for name, (stepwise, parallel) in checks.items():
    print(f"{name:>13}: max |token-by-token - parallel forward| = "
          f"{(stepwise - parallel).abs().max():.1e}")
print()
for name, values in memory_bytes.items():
    print(f"{name:>20}: {values[0]:>7,} B after 1 token, {values[255]:>7,} B after 256, "
          f"{values[-1]:>7,} B after {GENERATED}")
kv_per_token = memory_bytes["attention KV cache"][1] - memory_bytes["attention KV cache"][0]
print(f"the KV cache grows by {kv_per_token} B per token (2 x {WIDTH} floats); it reaches the "
      f"size of the SSM state at {memory_bytes['selective SSM state'][0] // kv_per_token} tokens")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
tokens = np.arange(1, GENERATED + 1)
for (name, values), style in zip(memory_bytes.items(), ["-", "--", "-"]):
    ax.plot(tokens, np.array(values) / KIB, style, label=name, lw=2)
ax.set(yscale="log", xlabel="tokens generated", ylabel="bytes kept between steps (KiB, log scale)",
       title=f"Memory carried from token to token, one layer of width {WIDTH}")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# At full scale the same arithmetic decides how many sequences fit on a GPU. In half precision,
# a transformer of the GPT-2 small shape (12 layers of 768) stores $2 \times 12 \times 768$
# numbers per token; a Mamba of the Mamba-130M shape (24 layers, $d_{model} = 768$, expanded to
# 1,536 channels, $N = 16$, a convolution of width 4 whose last 3 inputs are kept) and RWKV-4 of
# the 169M shape (12 layers of 768, five vectors per layer) keep a fixed state:

# %%
BYTES = 2  # fp16
kv_bytes_per_token = 2 * 12 * 768 * BYTES
mamba_state = 24 * (1536 * 16 + 1536 * 3) * BYTES
rwkv_state_bytes = 12 * 5 * 768 * BYTES
print(f"GPT-2-small-shaped KV cache: {kv_bytes_per_token / KIB:.0f} KiB per token -> "
      + ", ".join(f"{n:,} tokens: {n * kv_bytes_per_token / MIB:,.0f} MiB" for n in (2048, 32768)))
print(f"Mamba-130M-shaped state:     {mamba_state / MIB:.2f} MiB at any length "
      f"(= the KV cache of {mamba_state / kv_bytes_per_token:.0f} tokens)")
print(f"RWKV-4-169M-shaped state:    {rwkv_state_bytes / KIB:.0f} KiB at any length "
      f"(= the KV cache of {rwkv_state_bytes / kv_bytes_per_token:.1f} tokens)")

# %% [markdown]
# ## What a fixed state costs: recall
#
# A state of fixed size cannot remember an unbounded context exactly. The cleanest way to see
# this is associative recall: store $m$ (key, value) pairs, then query with one of the keys and
# ask for its value. A KV cache stores them all and attention looks them up (with sharp scores,
# exactly). A linear recurrence such as linear attention stores $S = \sum_i k_i v_i^\top$, a
# $d \times d$ matrix, and reads a value as $k^\top S$: with $d = 64$ it can hold at most 64
# independent pairs exactly. Even the best $d \times d$ matrix for the job, fitted by least
# squares, must fail beyond that.

# %%
d_key = 64
gen = torch.Generator().manual_seed(3)
pair_counts = [8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512]
recall_error = {"attention over a KV cache": [], "linear state, sum of k v^T": [],
                "best d x d state (least squares)": []}
for m in pair_counts:
    keys = F.normalize(torch.randn(m, d_key, generator=gen), dim=1)
    values = torch.randn(m, d_key, generator=gen)
    retrieved = {
        "attention over a KV cache": torch.softmax(50 * keys @ keys.T, dim=1) @ values,
        "linear state, sum of k v^T": keys @ (keys.T @ values),  # k_j^T S for every key
        "best d x d state (least squares)": keys @ torch.linalg.lstsq(keys, values).solution,
    }
    for name, got in retrieved.items():
        recall_error[name].append(float((got - values).norm() / values.norm()))

for name, errors in recall_error.items():
    print(f"{name:>33}: relative error {errors[pair_counts.index(32)]:.3f} with 32 pairs, "
          f"{errors[pair_counts.index(256)]:.3f} with 256")
fig, ax = plt.subplots(figsize=(7, 4))
for name, errors in recall_error.items():
    ax.plot(pair_counts, errors, "o-", label=name)
ax.axvline(d_key, color="gray", ls=":", label=f"state width d = {d_key}")
ax.set(xscale="log", xlabel="key-value pairs stored (m)", ylabel="relative recall error",
       title="Associative recall from a fixed d x d state vs a KV cache")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The least-squares state is exact up to $m = d$ pairs; beyond, the $m$ values it returns are
# linear functions of $d$-dimensional keys, and its error follows $\sqrt{1 - d/m}$ for random
# pairs (0.87 at $m = 256$). The plain sum of outer products interferes from the start unless
# the keys are orthogonal. Attention over the cache stays near zero error because it keeps every
# pair. Studies of trained models find the same gap: recurrent and convolutional models lag
# attention on associative recall (Arora et al. 2023, Zoology) and on copying long strings from
# the context (Jelassi et al. 2024); Arora et al. close most of it with hybrids that add
# input-dependent sparse attention. Input-dependent decay (selection) helps a recurrence decide
# *what* to keep, not to keep more than its state holds.

# %% [markdown]
# ## Beyond the architecture: an overview
#
# The rest of this section is an overview with sources, not an experiment: four research lines
# on efficiency, what each does and where it stands. Two small illustrations are computed; the
# claims about large systems come from the cited papers.
#
# ### Sparse training
#
# Most weights of a trained network can be removed with little loss. Han et al. (2015) pruned the
# smallest-magnitude weights and retrained, repeatedly. The *lottery ticket hypothesis* (Frankle
# & Carbin 2019) sharpened this: in the small vision networks they studied, iterative magnitude
# pruning finds sparse subnetworks that, reset to their original initial weights, train to the
# accuracy of the dense network. Both start dense. *Dynamic sparse training* keeps the network
# sparse throughout: RigL (Evci et al. 2020) periodically drops the smallest weights and regrows
# connections where the gradient is largest, at a fixed parameter and FLOP budget. For LLMs,
# SparseGPT (Frantar & Alistarh 2023) prunes GPT-family models to 50% in one shot without
# retraining.
#
# The catch is hardware: scattered zeros save little on dense matrix units. NVIDIA's Ampere
# tensor cores accept a *2:4* pattern (two zeros in every group of four weights) and run such
# matrix products at up to twice the dense math throughput (Mishra et al. 2021). The pattern
# costs some freedom, which the cell below measures on a random matrix: the share of the squared
# weight magnitude kept by 50% magnitude pruning with and without the 2:4 constraint (a group of
# four that holds three large weights must drop one of them).
# [Compression and pruning](05-compression-and-pruning) prunes a real encoder, and
# [mixture of experts](01-mixture-of-experts) is sparsity in activations rather than weights.

# %%
weight = torch.randn(256, 256, generator=torch.Generator().manual_seed(4))
unstructured = weight.abs() >= weight.abs().flatten().kthvalue(weight.numel() // 2).values
groups = weight.abs().reshape(-1, 4)  # consecutive groups of 4 along each row
two_four = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, groups.topk(2, dim=1).indices,
                                                               True).reshape(weight.shape)
for name, mask in [("unstructured 50%", unstructured), ("2:4 (50%)", two_four)]:
    kept = float((weight[mask] ** 2).sum() / (weight**2).sum())
    print(f"{name:>16}: {float(mask.float().mean()):.0%} of weights kept, "
          f"{kept:.1%} of the squared magnitude kept")

# %% [markdown]
# ### Neural architecture search (NAS)
#
# NAS automates choices such as layer types, widths and connections. It needs a search space, a
# search strategy and a cheap way to estimate how good a candidate is. Zoph & Le (2017) trained
# a recurrent controller with reinforcement learning to propose architectures, each trained to
# completion: effective, and very expensive. DARTS (Liu et al. 2019) made the search
# differentiable by mixing all candidate operations with learned weights and keeping the
# strongest. Hardware-aware NAS adds measured latency or energy to the objective: ProxylessNAS
# (Cai et al. 2019) searches directly on the target device, and Once-for-All (Cai et al. 2020)
# trains one large network whose sub-networks serve many devices without retraining. For LLMs a
# candidate is a pretraining run, so architecture choices are mostly made with small-scale
# ablations and scaling-law fits (Kaplan et al. 2020); the hybrids mentioned above, which mix
# attention and recurrent layers, are the kind of design question this settles.
#
# ### Hardware/software co-design
#
# An algorithm's cost on real hardware depends on memory traffic and on which operations the
# chip does fast, not only on its operation count. The measurement above showed it: the
# recurrences do fewer operations than attention at long lengths and still lose at medium ones
# on this CPU, because a fused kernel beats a Python loop by a large constant. Co-design shapes
# both sides at once. The TPU (Jouppi et al. 2017) is a large systolic array for dense matrix
# products, the dominant operation of neural networks. FlashAttention (Dao et al. 2022) reorders
# attention into tiles that stay in on-chip SRAM. Mamba's selective scan keeps its expanded
# states in SRAM and recomputes them for the backward pass (Gu & Dao 2023), and Mamba-2 (Dao &
# Gu 2024) rewrites most of the scan as matrix products so that tensor cores do the work. 2:4
# sparsity is the same idea from the hardware side. [Kernels and hardware](08-kernels-and-hardware)
# measures fused against unfused kernels.
#
# ### Photonic computing
#
# Optical hardware computes linear maps with light: interference in a mesh of Mach-Zehnder
# interferometers applies a unitary matrix to amplitudes encoded on waveguides, and any matrix
# factors as $U \Sigma V^\top$ (two unitaries and a diagonal of attenuations). Shen et al. (2017)
# demonstrated a programmable nanophotonic processor with 56 interferometers on a vowel
# recognition task; Lin et al. (2018) trained 3D-printed diffractive layers that classify
# handwritten digits at terahertz frequencies. The appeal is parallelism and a low energy cost for
# the linear part of the computation. The open problems, reviewed by Wetzstein et al. (2020),
# are analog noise and limited precision, optical nonlinearities, and the cost of converting
# between the electronic and optical domains and of memory, which can dominate the savings. The
# cell below shows what analog precision means for one matrix-vector product: a 1% random error
# on every component of the three factors gives a larger output error than rounding the weights
# to 8-bit integers.

# %%
gen = torch.Generator().manual_seed(5)
W = torch.randn(256, 256, generator=gen) / 16
x_in = torch.randn(256, generator=gen)
U, S, Vh = torch.linalg.svd(W)
exact = W @ x_in
print(f"W = U diag(S) V^T: max reconstruction error {(U @ torch.diag(S) @ Vh - W).abs().max():.1e}")
for noise in (0.001, 0.01, 0.05):
    jitter = lambda M: M * (1 + noise * torch.randn(M.shape, generator=gen))  # noqa: E731
    analog = jitter(U) @ (jitter(S) * (jitter(Vh) @ x_in))
    print(f"analog factors with {noise:.1%} component error: relative output error "
          f"{float((analog - exact).norm() / exact.norm()):.2%}")
scale = W.abs().max() / 127
int8 = (W / scale).round().clamp(-127, 127) * scale
print(f"int8 weights (one scale per matrix):        relative output error "
      f"{float((int8 @ x_in - exact).norm() / exact.norm()):.2%}")

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Exact zero-order-hold discretisation
#
# Write `discretize_zoh(delta, A, B)` for a diagonal SSM: `delta` has shape `(d,)` (one step per
# channel), `A` has shape `(d, N)` (negative diagonal entries) and `B` has shape `(N,)`. Return
# `(A_bar, B_bar)`, both `(d, N)`, with $\bar A = e^{\Delta a}$ and
# $\bar B = \frac{e^{\Delta a} - 1}{a} B$ (use `torch.expm1` for accuracy when $\Delta a$ is
# small). The check compares each entry with the matrix exponential of the $2 \times 2$ system
# $\begin{pmatrix} \Delta a & \Delta b \\ 0 & 0 \end{pmatrix}$, whose exponential is
# $\begin{pmatrix} \bar A & \bar B \\ 0 & 1 \end{pmatrix}$, and checks that $\bar B \approx
# \Delta B$ (Mamba's simplification) when $\Delta$ is small.

# %% tags=["solution"]
def discretize_zoh(delta: torch.Tensor, A: torch.Tensor,
                   B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-order hold for a diagonal SSM: returns (A_bar, B_bar), each (d, N)."""
    # BEGIN SOLUTION
    delta_a = delta[:, None] * A
    return torch.exp(delta_a), torch.expm1(delta_a) / A * B
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_function, passed

gen = torch.Generator().manual_seed(11)
delta_t = torch.rand(6, generator=gen, dtype=torch.float64) * 0.5 + 0.01
A_t = -torch.rand(6, 4, generator=gen, dtype=torch.float64) * 5 - 0.1
B_t = torch.randn(4, generator=gen, dtype=torch.float64)
system = torch.zeros(6, 4, 2, 2, dtype=torch.float64)
system[..., 0, 0] = delta_t[:, None] * A_t
system[..., 0, 1] = delta_t[:, None] * B_t
exponential = torch.linalg.matrix_exp(system)
A_bar_t, B_bar_t = discretize_zoh(delta_t, A_t, B_t)
check_close(A_bar_t, exponential[..., 0, 0], "discretize_zoh: A_bar", rtol=1e-9)
check_close(B_bar_t, exponential[..., 0, 1], "discretize_zoh: B_bar", rtol=1e-9)
_, B_bar_small = discretize_zoh(torch.full((6,), 1e-4, dtype=torch.float64), A_t, B_t)
check_close(B_bar_small, 1e-4 * B_t.expand(6, 4), "discretize_zoh: B_bar for small delta",
            rtol=1e-3)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A stable WKV with a data-dependent decay
#
# Later RWKV versions let the decay depend on the token (RWKV-6, "Finch", Peng et al. 2024), in
# the spirit of Mamba's selection. Write `wkv_varying_decay(k, v, w, u)` where `w` now has shape
# `(L, c)`: after outputting token $t$, the past is decayed by $e^{-w_t}$ instead of a constant
# $e^{-w}$, so
#
# $$\mathrm{wkv}_t = \frac{\sum_{i<t} e^{k_i - \sum_{r=i+1}^{t-1} w_r}\, v_i + e^{u+k_t} v_t}
# {\sum_{i<t} e^{k_i - \sum_{r=i+1}^{t-1} w_r} + e^{u+k_t}} .$$
#
# Keep the recurrence stable with a running maximum exponent $p$, as `wkv_step` does (you may
# call it); what changes is which decay applies at each step. The check compares with the quadratic form on keys large enough to
# overflow a naive version, and with `wkv_quadratic` when the decay is constant.

# %% tags=["solution"]
def wkv_varying_decay(k: torch.Tensor, v: torch.Tensor, w: torch.Tensor,
                      u: torch.Tensor) -> torch.Tensor:
    """WKV with a per-token decay w (L, c); k, v (L, c); u (c,). Numerically stable."""
    # BEGIN SOLUTION
    state = wkv_initial_state(k.shape[1], k.dtype)
    out = torch.empty_like(v)
    for t in range(len(k)):
        out[t], state = wkv_step(state, k[t], v[t], w[t], u)
    return out
    # END SOLUTION


# %% tags=["check"]
gen = torch.Generator().manual_seed(12)
L_t, c_t = 40, 8
k_t = torch.randn(L_t, c_t, generator=gen) * 40  # exp(k) overflows float32 for k > 88.7
v_t = torch.randn(L_t, c_t, generator=gen)
w_t = torch.rand(L_t, c_t, generator=gen) * 2
u_t = torch.randn(c_t, generator=gen)
t_idx = torch.arange(L_t)
decay_sum = torch.cat([torch.zeros(1, c_t), w_t.cumsum(0)])  # decay_sum[j] = w_0 + ... + w_{j-1}
gaps = decay_sum[t_idx][:, None, :] - decay_sum[t_idx + 1][None, :, :]  # sum_{r=i+1}^{t-1} w_r
scores = k_t[None] - gaps
scores = torch.where((t_idx[:, None] == t_idx[None, :])[..., None], u_t + k_t[None], scores)
scores = scores.masked_fill((t_idx[None, :] > t_idx[:, None])[..., None], -math.inf)
expected = torch.einsum("tic,ic->tc", torch.softmax(scores, dim=1), v_t)
result = wkv_varying_decay(k_t, v_t, w_t, u_t)
check(not result.isnan().any(), "wkv_varying_decay", "no NaN for keys of size ~100")
check_close(result, expected, "wkv_varying_decay (large keys)", atol=1e-4, rtol=1e-4)
constant_w = torch.rand(c_t, generator=gen)
k_small = torch.randn(L_t, c_t, generator=gen)
check_close(wkv_varying_decay(k_small, v_t, constant_w.expand(L_t, c_t), u_t),
            wkv_quadratic(k_small, v_t, constant_w, u_t),
            "wkv_varying_decay (constant decay)", atol=1e-5)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: A log-depth parallel scan
#
# Write `parallel_linear_scan(a, b)` that computes $h_t = a_t h_{t-1} + b_t$ (with $h_{-1} = 0$)
# along the first axis of `a` and `b` (same shape) without a loop over tokens. Use the
# Hillis-Steele scan (Hillis & Steele 1986): for offsets $1, 2, 4, \dots < L$, combine every position $t \ge$ offset with
# position $t -$ offset using $(a_{\text{earlier}}, b_{\text{earlier}}) \circ (a_t, b_t) =
# (a_{\text{earlier}} a_t,\; a_t b_{\text{earlier}} + b_t)$, computing each round from the
# previous round's values. Return `(h, rounds)`, where `rounds` is the number of rounds you ran.
# The check compares with a sequential loop and expects $\lceil \log_2 L \rceil$ rounds.

# %% tags=["solution"]
def parallel_linear_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, int]:
    """h_t = a_t h_{t-1} + b_t along dim 0, in ceil(log2 L) vectorised rounds."""
    # BEGIN SOLUTION
    a, b = a.clone(), b.clone()
    offset, rounds = 1, 0
    while offset < a.shape[0]:
        b_new = b.clone()
        b_new[offset:] = a[offset:] * b[:-offset] + b[offset:]
        a_new = a.clone()
        a_new[offset:] = a[offset:] * a[:-offset]
        a, b = a_new, b_new
        offset, rounds = 2 * offset, rounds + 1
    return b, rounds
    # END SOLUTION


# %% tags=["check"]
def sequential_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    h, out = torch.zeros_like(b[0]), []
    for a_t, b_t in zip(a, b):
        h = a_t * h + b_t
        out.append(h)
    return torch.stack(out)


gen = torch.Generator().manual_seed(13)
for L_t in (1, 2, 5, 64, 100):
    a_t = torch.rand(L_t, 3, 4, generator=gen, dtype=torch.float64)
    b_t = torch.randn(L_t, 3, 4, generator=gen, dtype=torch.float64)
    h_t, rounds_t = parallel_linear_scan(a_t, b_t)
    check_close(h_t, sequential_scan(a_t, b_t), f"parallel_linear_scan (L={L_t})", atol=1e-12)
    check_equal(rounds_t, math.ceil(math.log2(L_t)) if L_t > 1 else 0,
                f"rounds of parallel_linear_scan (L={L_t})")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: State bytes against KV-cache bytes
#
# Write `kv_cache_bytes_per_token(layers, kv_heads, head_dim, bytes_per_value)` (a key and a value
# per KV head and layer) and `mamba_state_bytes(layers, d_model, expand, d_state, d_conv,
# bytes_per_value)` (per layer: the SSM state of `expand * d_model` channels times `d_state`, plus
# the last `d_conv - 1` inputs of each channel for the causal convolution). Then set
# `crossover_tokens` to the smallest number of tokens at which the fp16 KV cache of a model shaped
# like Llama-3-8B (32 layers, 8 KV heads of dimension 128, grouped-query attention) holds
# strictly more bytes than the fp16 state of a model shaped like Mamba-2.8B (64 layers, $d_{model} = 2560$, expansion 2,
# $N = 16$, convolution width 4).

# %% tags=["solution"]
def kv_cache_bytes_per_token(layers: int, kv_heads: int, head_dim: int,
                             bytes_per_value: int) -> int:
    """Bytes a transformer's KV cache grows by for every token."""
    # BEGIN SOLUTION
    return 2 * layers * kv_heads * head_dim * bytes_per_value
    # END SOLUTION


def mamba_state_bytes(layers: int, d_model: int, expand: int, d_state: int, d_conv: int,
                      bytes_per_value: int) -> int:
    """Bytes of a Mamba model's recurrent state (SSM states plus convolution buffers)."""
    # BEGIN SOLUTION
    channels = expand * d_model
    return layers * channels * (d_state + d_conv - 1) * bytes_per_value
    # END SOLUTION


crossover_tokens = None
# BEGIN SOLUTION
per_token = kv_cache_bytes_per_token(32, 8, 128, 2)
state = mamba_state_bytes(64, 2560, 2, 16, 4, 2)
crossover_tokens = state // per_token + 1
# END SOLUTION
print(f"the KV cache exceeds the Mamba state after {crossover_tokens} tokens")

# %% tags=["check"]
check_function(kv_cache_bytes_per_token, [((12, 12, 64, 2), 36_864), ((32, 8, 128, 2), 131_072),
                                          ((1, 1, 64, 4), 512)], "kv_cache_bytes_per_token",
               exact=True)
check_function(mamba_state_bytes, [((24, 768, 2, 16, 4, 2), mamba_state),
                                   ((1, 64, 1, 16, 1, 4), 64 * 16 * 4)], "mamba_state_bytes",
               exact=True)
check_equal(crossover_tokens, 96, "crossover_tokens")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Causal attention costs about $2L^2d$ operations per head and layer and a KV cache that grows
#   by a fixed number of bytes per token. A fused kernel removes the $L \times L$ memory, not the
#   quadratic work (measured: SDPA's memory grows linearly, its time with slope near 2).
# - Linear attention, SSMs and RWKV each compute one function in two forms: a quadratic,
#   attention-like form that is parallel over positions, and a recurrence with a fixed-size state.
#   Here each pair agreed to float32 rounding.
# - A state-space model is a discretised linear ODE. With fixed parameters it is a long
#   convolution (S4, FFT); Mamba makes $\Delta$, $B$, $C$ depend on the token, which lets it
#   choose what to keep and turns the convolution into a scan that is still parallel through an
#   associative prefix scan.
# - RWKV's WKV is a query-free softmax over the past with a linear age penalty $w$; it runs as a
#   recurrence on two sums, stable when they are kept relative to a running maximum exponent.
# - Measured slopes: about 1 for the recurrences in operations, memory and time, about 2 for
#   attention's operations and for the memory of materialised attention. On a CPU, Python loops
#   lose to a fused attention kernel except at the longest lengths, if at all (the crossings
#   printed above are this run's): the constant factor is the kernel's job.
# - A fixed state is small (a Mamba-130M-shaped model keeps the equivalent of 38 tokens of a
#   GPT-2-small KV cache) but it limits exact recall: a $d \times d$ state cannot store more than
#   $d$ independent pairs, which is why hybrids keep some attention.
# - Sparse training, NAS, co-design and photonic computing attack cost elsewhere: fewer weights,
#   searched designs, algorithms shaped to the chip, and a different physics for matrix products,
#   each with real results and open problems.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - A. Katharopoulos, A. Vyas, N. Pappas, F. Fleuret, "Transformers are RNNs: fast autoregressive
#   transformers with linear attention", ICML 2020. https://arxiv.org/abs/2006.16236
# - A. Gu, K. Goel, C. Re, "Efficiently modeling long sequences with structured state spaces"
#   (S4), ICLR 2022 (arXiv 2021). https://arxiv.org/abs/2111.00396
# - A. Gu, T. Dao, "Mamba: linear-time sequence modeling with selective state spaces", 2023.
#   https://arxiv.org/abs/2312.00752
# - T. Dao, A. Gu, "Transformers are SSMs: generalized models and efficient algorithms through
#   structured state space duality" (Mamba-2), ICML 2024. https://arxiv.org/abs/2405.21060
# - B. Peng et al., "RWKV: reinventing RNNs for the transformer era", Findings of EMNLP 2023.
#   https://arxiv.org/abs/2305.13048
# - B. Peng et al., "Eagle and Finch: RWKV with matrix-valued states and dynamic recurrence",
#   2024. https://arxiv.org/abs/2404.05892
# - G. E. Blelloch, "Prefix sums and their applications", Carnegie Mellon University technical
#   report CMU-CS-90-190, 1990.
#   https://www.cs.cmu.edu/afs/cs.cmu.edu/project/scandal/public/papers/CMU-CS-90-190.html
# - W. D. Hillis, G. L. Steele, "Data parallel algorithms", Communications of the ACM 29(12),
#   1986. https://doi.org/10.1145/7902.7903
# - E. Martin, C. Cundy, "Parallelizing linear recurrent neural nets over sequence length",
#   ICLR 2018. https://arxiv.org/abs/1709.04057
# - S. Arora et al., "Zoology: measuring and improving recall in efficient language models",
#   ICLR 2024 (arXiv 2023). https://arxiv.org/abs/2312.04927
# - S. Jelassi, D. Brandfonbrener, S. M. Kakade, E. Malach, "Repeat after me: transformers are
#   better than state space models at copying", ICML 2024. https://arxiv.org/abs/2402.01032
# - T. Dao, D. Y. Fu, S. Ermon, A. Rudra, C. Re, "FlashAttention: fast and memory-efficient exact
#   attention with IO-awareness", NeurIPS 2022. https://arxiv.org/abs/2205.14135
# - S. Han, J. Pool, J. Tran, W. J. Dally, "Learning both weights and connections for efficient
#   neural networks", NeurIPS 2015. https://arxiv.org/abs/1506.02626
# - J. Frankle, M. Carbin, "The lottery ticket hypothesis: finding sparse, trainable neural
#   networks", ICLR 2019. https://arxiv.org/abs/1803.03635
# - U. Evci, T. Gale, J. Menick, P. S. Castro, E. Elsen, "Rigging the lottery: making all tickets
#   winners", ICML 2020. https://arxiv.org/abs/1911.11134
# - E. Frantar, D. Alistarh, "SparseGPT: massive language models can be accurately pruned in
#   one-shot", ICML 2023. https://arxiv.org/abs/2301.00774
# - A. Mishra et al., "Accelerating sparse deep neural networks", 2021.
#   https://arxiv.org/abs/2104.08378
# - B. Zoph, Q. V. Le, "Neural architecture search with reinforcement learning", ICLR 2017.
#   https://arxiv.org/abs/1611.01578
# - H. Liu, K. Simonyan, Y. Yang, "DARTS: differentiable architecture search", ICLR 2019.
#   https://arxiv.org/abs/1806.09055
# - H. Cai, L. Zhu, S. Han, "ProxylessNAS: direct neural architecture search on target task and
#   hardware", ICLR 2019. https://arxiv.org/abs/1812.00332
# - H. Cai, C. Gan, T. Wang, Z. Zhang, S. Han, "Once-for-all: train one network and specialize it
#   for efficient deployment", ICLR 2020. https://arxiv.org/abs/1908.09791
# - J. Kaplan et al., "Scaling laws for neural language models", 2020.
#   https://arxiv.org/abs/2001.08361
# - N. P. Jouppi et al., "In-datacenter performance analysis of a tensor processing unit",
#   ISCA 2017. https://arxiv.org/abs/1704.04760
# - Y. Shen et al., "Deep learning with coherent nanophotonic circuits", Nature Photonics 11,
#   441-446, 2017. https://arxiv.org/abs/1610.02365
# - X. Lin et al., "All-optical machine learning using diffractive deep neural networks",
#   Science 361, 1004-1008, 2018. https://arxiv.org/abs/1804.08711
# - G. Wetzstein et al., "Inference in artificial intelligence with deep optics and photonics",
#   Nature 588, 39-47, 2020. https://doi.org/10.1038/s41586-020-2973-6
