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
# # The feed-forward network: activations, gating and width
#
# Attention moves information between positions; the feed-forward network (FFN) that follows it
# in every block transforms each position on its own. It is also where most of a transformer's
# parameters live: two thirds of every GPT-2 block. Its design has changed little since 2017,
# except in one respect: the nonlinearity, which went from ReLU (the original transformer) to
# GELU (BERT, GPT-2) to the gated SwiGLU of Llama, Mistral and most recent models. This notebook
# writes the FFN and the three activations by hand, checks them against the course library,
# compares them on one language-modelling task at matched parameter counts, measures how loss
# falls as the FFN grows, and looks inside a trained FFN for the key-value memories described by
# Geva et al. (2021).
#
# **Learning objectives**
# - Write the position-wise FFN and show that it treats every position independently.
# - Implement ReLU, GELU and SwiGLU, and match `shared.layers.FeedForward` and PyTorch.
# - Match parameter counts between a two-matrix FFN and a three-matrix gated FFN.
# - Compare the three activations on a character-level language model, and explain why the
#   outcome of a short comparison depends on the initialization.
# - Read an FFN as a key-value memory: what its hidden units detect and which tokens they promote.
#
# **Prerequisites:** [Positional encoding](05-positional-encoding) and
# [multi-head attention](04-multi-head-attention) for the rest of the block;
# [PyTorch and autograd](../00-foundations/04-pytorch-and-autograd) for modules and training.
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

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import shared
from shared.data import shakespeare_char_data
from shared.layers import FeedForward
from shared.models import GPT, GPTConfig
from shared.training import TrainConfig, train

# The models here are tiny: one thread avoids the cost of coordinating several.
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("torch", "matplotlib"))

# %% [markdown]
# ## The position-wise FFN
#
# For each position's vector $x \in \mathbb{R}^{d}$ the FFN computes
#
# $$\mathrm{FFN}(x) = W_2\,\phi(W_1 x + b_1) + b_2, \qquad
# W_1 \in \mathbb{R}^{d_{ff} \times d},\; W_2 \in \mathbb{R}^{d \times d_{ff}},$$
#
# with a hidden width $d_{ff}$ of usually $4d$ and a nonlinearity $\phi$. The same weights apply
# at every position and no position sees another, so running it on a whole sequence at once is
# the same as running it position by position, and shuffling the positions shuffles the output.
# We write it out and compare it with `shared.layers.FeedForward`, the FFN of every model in the
# course.

# %%
d_model, d_ff = 64, 256
library_ffn = FeedForward(d_model, d_ff, activation="gelu")


def ffn(x: torch.Tensor, W1, b1, W2, b2, phi=F.gelu) -> torch.Tensor:
    return phi(x @ W1.T + b1) @ W2.T + b2


weights = (library_ffn.up.weight, library_ffn.up.bias, library_ffn.down.weight,
           library_ffn.down.bias)
x = torch.randn(2, 10, d_model)  # (batch, positions, features)
with torch.no_grad():
    whole = ffn(x, *weights)
    one_by_one = torch.stack([ffn(x[:, t], *weights) for t in range(10)], dim=1)
    perm = torch.randperm(10)
    print(f"max |ours - shared.layers.FeedForward| = {(whole - library_ffn(x)).abs().max():.1e}")
    print(f"max |all positions at once - one at a time| = {(whole - one_by_one).abs().max():.1e}")
    shuffle_gap = (ffn(x[:, perm], *weights) - whole[:, perm]).abs().max()
    print(f"max |FFN(shuffled) - shuffled FFN| = {shuffle_gap:.1e}")

# %% [markdown]
# ## Where the parameters are
#
# Per block, attention holds $4d^2$ weights (query, key, value and output projections) and the
# FFN $2 d\, d_{ff} = 8d^2$. A GPT-2-small-shaped block ($d = 768$) confirms it:

# %%
gpt2_shaped = GPTConfig(vocab_size=65, block_size=64, n_layer=1, n_head=12, d_model=768)
gpt2_block = GPT(gpt2_shaped).blocks[0]
attention_params = sum(p.numel() for p in gpt2_block.attn.parameters())
ffn_params = sum(p.numel() for p in gpt2_block.ffn.parameters())
block_params = sum(p.numel() for p in gpt2_block.parameters())
print(f"attention {attention_params:,}  FFN {ffn_params:,}  block {block_params:,}  "
      f"-> FFN share {ffn_params / block_params:.1%}")

# %% [markdown]
# ## Three activations
#
# - **ReLU** (the original transformer): $\max(0, z)$. Cheap; exactly zero for half its inputs,
#   so its gradient there is zero too.
# - **GELU** (Hendrycks and Gimpel, 2016; BERT, GPT-2): $z\,\Phi(z)$, the input weighted by the
#   probability that a standard normal falls below it. Smooth, slightly negative for small
#   negative $z$. GPT-2's code used the tanh approximation
#   $\tfrac{z}{2}\big(1 + \tanh(\sqrt{2/\pi}\,(z + 0.044715 z^3))\big)$.
# - **SwiGLU** (Shazeer, 2020; PaLM, Llama): a *gated* unit with two input projections,
#   $\mathrm{FFN}(x) = W_2\big(\mathrm{SiLU}(W_g x) \odot W_1 x\big)$, where
#   $\mathrm{SiLU}(z) = z\,\sigma(z)$ (also called Swish). One projection decides how much of the
#   other passes through.
#
# We write each from its formula and compare with PyTorch.

# %%
def gelu_exact(z: torch.Tensor) -> torch.Tensor:
    return z * 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))


def gelu_tanh(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * z * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))


def silu(z: torch.Tensor) -> torch.Tensor:
    return z * torch.sigmoid(z)


z = torch.linspace(-6, 6, 10001)
print(f"max |gelu_exact - F.gelu|                     = "
      f"{(gelu_exact(z) - F.gelu(z)).abs().max():.1e}")
print(f"max |gelu_tanh - F.gelu(approximate='tanh')|  = "
      f"{(gelu_tanh(z) - F.gelu(z, approximate='tanh')).abs().max():.1e}")
print(f"max |gelu_tanh - gelu_exact| (the approximation error) = "
      f"{(gelu_tanh(z) - gelu_exact(z)).abs().max():.1e}")
print(f"max |silu - F.silu|                           = {(silu(z) - F.silu(z)).abs().max():.1e}")
print(f"minimum of GELU: {gelu_exact(z).min():.4f} at z = {z[gelu_exact(z).argmin()]:.3f}; "
      f"of SiLU: {silu(z).min():.4f} at z = {z[silu(z).argmin()]:.3f}")

# %%
z_plot = torch.linspace(-4, 4, 401, requires_grad=True)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name, fn in [("ReLU", F.relu), ("GELU", gelu_exact), ("SiLU (SwiGLU's gate)", silu)]:
    out = fn(z_plot)
    (slope,) = torch.autograd.grad(out.sum(), z_plot)
    axes[0].plot(z_plot.detach(), out.detach(), label=name)
    axes[1].plot(z_plot.detach(), slope, label=name)
axes[0].set(title="Activation functions", xlabel="pre-activation z", ylabel="phi(z)")
axes[1].set(title="Their derivatives (by autograd)", xlabel="pre-activation z", ylabel="d phi / dz")
for ax in axes:
    ax.grid(True, alpha=0.3)
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# SwiGLU by hand against the library's `FeedForward(activation="swiglu")`, whose projections are
# called `gate`, `up` and `down`:

# %%
swiglu_ffn = FeedForward(d_model, 171, activation="swiglu", bias=False)
with torch.no_grad():
    gated = silu(x @ swiglu_ffn.gate.weight.T) * (x @ swiglu_ffn.up.weight.T)
    ours = gated @ swiglu_ffn.down.weight.T
    print(f"max |our SwiGLU - shared.layers.FeedForward(swiglu)| = "
          f"{(ours - swiglu_ffn(x)).abs().max():.1e}")

# %% [markdown]
# ## Matching parameter counts
#
# A gated FFN has three matrices instead of two, so at the same width it has 50% more parameters
# and compute. A fair comparison shrinks its width to $\tfrac{2}{3}d_{ff}$: Shazeer (2020) and
# Llama use $d_{ff} = \tfrac{8}{3}d$ instead of $4d$. With $d = 64$ and no biases, a ReLU or
# GELU FFN of width 256 and a SwiGLU FFN of width 171 differ by 64 parameters in 32,768
# (Exercise 1 computes the best width in general).

# %%
def ffn_parameters(activation: str, width: int) -> int:
    module = FeedForward(64, width, activation=activation, bias=False)
    return sum(p.numel() for p in module.parameters())


for activation, width in [("relu", 256), ("gelu", 256), ("swiglu", 171)]:
    print(f"{activation:>6}, d_ff = {width}: {ffn_parameters(activation, width):,} parameters")

# %% [markdown]
# ## The comparison
#
# The task: next-character prediction on tiny Shakespeare with a one-block GPT ($d = 64$, 4
# heads, context 32), so the FFN is a large part of the model. Each activation gets the same
# budget (300 AdamW steps of 16 sequences, `shared.training`) and two seeds (the seed sets both
# the initialization and the batch order). These are small models trained for seconds, not to
# convergence.
#
# One choice needs care: the initialization of the FFN's input projections. The course library
# uses GPT-2's standard deviation of 0.02 for every matrix. GPT-2 is 768 wide, where that gives
# pre-activations of standard deviation $0.02\sqrt{768} \approx 0.55$; at our width of 64 it gives
# $0.02 \cdot 8 = 0.16$, where all three activations are close to linear (ReLU aside) and the
# gated product $\mathrm{SiLU}(g)\cdot u \approx g u / 2$ is tiny. We measure it at initialization:

# %%
L_CTX = 32
data = shakespeare_char_data(L_CTX)
VOCAB = data.tokenizer.vocab_size
WIDTHS = {"relu": 256, "gelu": 256, "swiglu": 171}


def build(activation: str, width: int, seed: int, input_std: float | None) -> GPT:
    """A one-block GPT; input_std re-initializes the FFN's input projections (None: library)."""
    shared.seed_everything(seed)
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=L_CTX, n_layer=1, n_head=4, d_model=64,
                          activation=activation, d_ff=width, bias=False))
    if input_std is not None:
        for name, param in model.named_parameters():
            if name.endswith(("ffn.up.weight", "ffn.gate.weight")):
                torch.nn.init.normal_(param, std=input_std)
    return model


def hidden_std(model: GPT) -> float:
    """Standard deviation of the FFN's hidden activations on a batch of real text, at init."""
    captured = {}
    handle = model.blocks[0].ffn.down.register_forward_pre_hook(
        lambda module, args: captured.update(hidden=args[0]))
    with torch.no_grad():
        model(data.train[: 16 * L_CTX].view(16, L_CTX))
    handle.remove()
    return captured["hidden"].std().item()


for std_name, std in [("library (0.02)", None), ("1/sqrt(d) = 0.125", 64**-0.5)]:
    stds = {a: hidden_std(build(a, w, 0, std)) for a, w in WIDTHS.items()}
    print(f"input init {std_name:>17}: std of the hidden activations "
          + ", ".join(f"{a} {s:.3f}" for a, s in stds.items()))

# %% [markdown]
# With the library's initialization, SwiGLU's hidden signal starts six to seven times smaller
# than the others', and in a short run that handicap, not the activation's quality,
# decides the result. For the comparison we initialize the input projections with standard
# deviation $1/\sqrt{d}$ (LeCun initialization), which gives unit-variance pre-activations as in
# the papers, for all three activations alike; one extra run shows SwiGLU with the library's
# initialization.

# %%
MAX_STEPS = 300  # several thousand on a GPU, with a deeper model, for a converged comparison
SEEDS = [0, 1]
INPUT_STD = 64**-0.5


def run(activation: str, width: int, seed: int, input_std: float | None = INPUT_STD):
    model = build(activation, width, seed, input_std)
    config = TrainConfig(max_steps=MAX_STEPS, batch_size=16, block_size=L_CTX, lr=3e-3,
                         min_lr=3e-4, warmup_steps=20, eval_interval=50, eval_batches=20,
                         seed=seed, progress=False)
    return model, train(model, data.train, data.val, config)


runs = {(a, s): run(a, w, s) for a, w in WIDTHS.items() for s in SEEDS}
_, swiglu_library_init = run("swiglu", 171, 0, input_std=None)

for activation in WIDTHS:
    finals = [runs[activation, s][1].final_val_loss for s in SEEDS]
    print(f"{activation:>6}: validation loss " + ", ".join(f"{v:.3f}" for v in finals)
          + f"  (mean {sum(finals) / len(finals):.3f})")
print(f"swiglu with the library's initialization (seed 0): "
      f"{swiglu_library_init.final_val_loss:.3f}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
colors = {"relu": "tab:blue", "gelu": "tab:orange", "swiglu": "tab:green"}
for (activation, seed), (_, history) in runs.items():
    ax.plot(history.val_steps, history.val_loss, color=colors[activation], marker="o", markersize=3,
            ls="-" if seed == 0 else ":", label=f"{activation} (seed {seed})")
ax.plot(swiglu_library_init.val_steps, swiglu_library_init.val_loss, color="gray", ls="--",
        label="swiglu, library init (seed 0)")
ax.set(xlabel="optimizer step", ylabel="validation loss (nats/token)", ylim=(2.1, 3.4),
       title="ReLU vs GELU vs SwiGLU at ~32.8k FFN parameters")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8, ncol=2)
plt.show()

# %% [markdown]
# With matched parameters and a sensible initialization, SwiGLU reaches the lowest loss in both
# seeds, and GELU finishes slightly ahead of ReLU: the ordering Shazeer (2020) reported at much
# larger scale. SwiGLU's lead over GELU (about 0.07 nats on average) is larger than the spread
# between its two seeds; GELU's edge over ReLU (about 0.01) is not, so this run cannot rank those
# two. The grey curve shows how easily a detail of the set-up reverses the conclusion at this
# budget: with the library's initialization SwiGLU finishes last, far behind.
#
# ## Parameters vs loss: the width of the FFN
#
# Now the hidden width. We train each activation at two more widths, a quarter and four times
# the one above (FFN parameters from about 8k to 131k), with seed 0.

# %%
SIZES = {"relu": [64, 256, 1024], "gelu": [64, 256, 1024], "swiglu": [43, 171, 683]}
sweep = {}
for activation, widths in SIZES.items():
    for width in widths:
        if width == WIDTHS[activation]:
            model, history = runs[activation, 0]
        else:
            model, history = run(activation, width, 0)
        n_ffn = sum(p.numel() for p in model.blocks[0].ffn.parameters())
        sweep[activation, width] = (n_ffn, model.num_parameters(), history.final_val_loss)
        print(f"{activation:>6} d_ff={width:5d}: FFN {n_ffn:7,d} of {model.num_parameters():7,d} "
              f"parameters, validation loss {history.final_val_loss:.3f}")

fig, ax = plt.subplots(figsize=(7, 4))
for activation, widths in SIZES.items():
    points = [sweep[activation, w] for w in widths]
    ax.plot([p[0] for p in points], [p[2] for p in points], marker="o", color=colors[activation],
            label=activation)
ax.set(xscale="log", xlabel="FFN parameters (log scale)", ylabel="validation loss (nats/token)",
       title=f"Loss vs FFN size after {MAX_STEPS} steps")
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# For every activation the loss falls as the FFN grows: sixteen times the FFN parameters bought
# between 0.08 and 0.13 nats here. SwiGLU is ahead at the two larger sizes and level with the
# others at the smallest, where a gated unit has only 43 hidden units. Bigger FFNs are not free:
# their compute per token grows with them (`FeedForward.flops_per_token`), and in a fixed compute
# budget a wider FFN means fewer steps. (All points share one 300-step budget.)
#
# ## Inside a trained FFN: keys and values
#
# Geva et al. (2021) read an FFN as a memory. Row $i$ of $W_1$ is a *key*: the hidden unit $i$
# fires when the input resembles it. Column $i$ of $W_2$ is the matching *value*: what that unit
# adds to the residual stream when it fires. Projected through the output head, a value vector is
# a preference over next tokens. We look at the ReLU model (whose units are either off or on):
# for the units that fire most strongly on validation text, which contexts trigger them, and
# which next characters do their values promote?

# %%
memory_model = runs["relu", 0][0].eval()
block = memory_model.blocks[0]
captured = {}
handle = block.ffn.down.register_forward_pre_hook(lambda module, args: captured.update(h=args[0]))
probe_ids = data.val[: 64 * L_CTX].view(64, L_CTX)
with torch.no_grad():
    memory_model(probe_ids)
handle.remove()
hidden = captured["h"].reshape(-1, captured["h"].shape[-1])  # (positions, d_ff)
text = data.tokenizer.decode(probe_ids.reshape(-1))
print(f"hidden units active (> 0) per position: {(hidden > 0).float().mean():.1%} on average")

with torch.no_grad():
    # value vector of each unit, read through the (tied) output embedding: (d_ff, vocab)
    promotes = block.ffn.down.weight.T @ memory_model.lm_head.weight.T
for unit in hidden.max(dim=0).values.topk(4).indices.tolist():
    top_positions = hidden[:, unit].topk(5).indices.tolist()
    contexts = [repr(text[max(0, p - 7) : p + 1]) for p in top_positions]
    promoted = [data.tokenizer.decode([i]) for i in promotes[unit].topk(5).indices.tolist()]
    print(f"unit {unit:3d} fires after {', '.join(contexts)}")
    print(f"          its value promotes {promoted}")

# %% [markdown]
# Each of these units responds to a recognizable pattern in the last few characters (the key),
# and its value raises the logits of characters that plausibly come next. Geva et al. found the
# same in large models, with keys for shallow patterns in lower layers and for semantic topics
# in upper ones. A one-block character model can hold only the shallow kind.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The matched width of a gated FFN
#
# Write `matched_glu_width(d_model, d_ff)`: the hidden width of a bias-free gated FFN (three
# $d \times w$ matrices) whose parameter count is closest to that of a bias-free two-matrix FFN
# of width `d_ff`. The check compares your widths with parameter counts of
# `shared.layers.FeedForward` modules.

# %% tags=["solution"]
def matched_glu_width(d_model: int, d_ff: int) -> int:
    """Width w minimizing |3 * d_model * w - 2 * d_model * d_ff|."""
    # BEGIN SOLUTION
    return round(2 * d_ff / 3)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, passed


def count(d: int, w: int, activation: str) -> int:
    return sum(p.numel() for p in FeedForward(d, w, activation=activation, bias=False).parameters())


for d, width in [(64, 256), (96, 384), (768, 3072), (100, 300), (48, 100)]:
    w = matched_glu_width(d, width)
    target = count(d, width, "gelu")
    gaps = {c: abs(count(d, c, "swiglu") - target) for c in (w - 1, w, w + 1)}
    check(isinstance(w, int) and gaps[w] == min(gaps.values()), f"matched_glu_width({d}, {width})",
          f"the width with the closest parameter count to {target:,}; got {w} ({gaps})")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The GLU family
#
# Shazeer (2020) compared gated units that differ only in the function applied to the gate:
# GLU (sigmoid), ReGLU (ReLU), GEGLU (GELU), SwiGLU (SiLU) and Bilinear (no function). Write
# `glu_ffn(x, ffn, gate_fn)` that computes the gated FFN with the weights of a
# `FeedForward(..., activation="swiglu")` module `ffn` (projections `gate`, `up`, `down`; biases
# may be present) and any gate function. The check compares it with the library for SiLU and
# with the formula for the others.

# %% tags=["solution"]
def glu_ffn(x: torch.Tensor, ffn: FeedForward, gate_fn) -> torch.Tensor:
    """down(gate_fn(gate(x)) * up(x)) with the weights of a gated FeedForward."""
    # BEGIN SOLUTION
    return ffn.down(gate_fn(ffn.gate(x)) * ffn.up(x))
    # END SOLUTION


# %% tags=["check"]
test_ffn = FeedForward(16, 24, activation="swiglu", bias=True)
x_test = torch.randn(3, 5, 16)
with torch.no_grad():
    check_close(glu_ffn(x_test, test_ffn, F.silu), test_ffn(x_test), "glu_ffn with SiLU (SwiGLU)",
                atol=1e-6)
    gate, up = test_ffn.gate(x_test), test_ffn.up(x_test)
    for name, fn in [("GLU", torch.sigmoid), ("ReGLU", F.relu), ("GEGLU", F.gelu),
                     ("Bilinear", lambda t: t)]:
        check_close(glu_ffn(x_test, test_ffn, fn), test_ffn.down(fn(gate) * up),
                    f"glu_ffn ({name})", atol=1e-6)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: How much of a model is FFN?
#
# Write `ffn_share(config)` returning the fraction of a `GPTConfig`'s *non-embedding*
# parameters that sit in its FFNs, from the configuration alone (no model). Count the matrices
# and, when `config.bias` is true, the FFN's biases; the rest of a block is attention (a fused
# query/key/value projection to $(n_{head} + 2 n_{kv})\,d_{head}$ outputs and an output
# projection, with biases if `config.bias`) and two norms (LayerNorm: gain and bias when
# `config.bias`, RMSNorm: gain only), plus the final norm for pre-norm models. The check builds
# the models and counts.

# %% tags=["solution"]
def ffn_share(config: GPTConfig) -> float:
    """Fraction of non-embedding parameters in the feed-forward networks."""
    # BEGIN SOLUTION
    d, w, b = config.d_model, config.d_ff, int(config.bias)
    n_in = 2 if config.activation == "swiglu" else 1
    ffn = n_in * (d * w + b * w) + w * d + b * d
    qkv_out = (config.n_head + 2 * config.n_kv_head) * config.head_dim
    attention = d * qkv_out + b * qkv_out + config.n_head * config.head_dim * d + b * d
    norm = d * (2 if config.norm == "layernorm" and config.bias else 1)
    total = config.n_layer * (ffn + attention + 2 * norm)
    if config.norm_position == "pre":
        total += norm
    return config.n_layer * ffn / total
    # END SOLUTION


# %% tags=["check"]
configs = [
    GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=4, d_model=64),
    GPTConfig(vocab_size=65, block_size=32, n_layer=3, n_head=4, n_kv_head=2, d_model=64,
              activation="swiglu", norm="rmsnorm", bias=False, pos_encoding="rope"),
    GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, d_model=32, d_ff=200,
              activation="relu", norm_position="post"),
]
for config in configs:
    model = GPT(config)
    ffn_count = sum(p.numel() for blk in model.blocks for p in blk.ffn.parameters())
    expected = ffn_count / model.num_parameters(non_embedding=True)
    check_close(ffn_share(config), expected, f"ffn_share({config.activation}, {config.norm}, "
                f"{config.norm_position}-norm)", atol=1e-9)
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - The FFN transforms each position independently with the same two (or three) matrices; it
#   holds about two thirds of a standard block's parameters.
# - ReLU, GELU and SiLU differ in how they treat negative and small inputs; GELU is
#   $z\Phi(z)$ and GPT-2 used a tanh approximation of it. A gated unit multiplies one projection
#   by a function of another; matched to a two-matrix FFN, its width is $\tfrac{2}{3}d_{ff}$.
# - At ~32.8k FFN parameters and unit-variance initialization, SwiGLU beat GELU and ReLU on
#   both seeds; with the library's small initialization at this tiny width, it finished far
#   behind. Short comparisons measure the set-up as much as the architecture.
# - Loss fell with FFN width for every activation; the gated unit led at the larger sizes.
# - A trained FFN reads like a key-value memory: units detect context patterns and promote
#   plausible next characters.
#
# Next: [layer normalization](07-layer-normalization), which keeps these sub-layers trainable in
# deep stacks.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - D. Hendrycks, K. Gimpel, "Gaussian error linear units (GELUs)", 2016.
#   https://arxiv.org/abs/1606.08415
# - N. Shazeer, "GLU variants improve transformer", 2020. https://arxiv.org/abs/2002.05202
# - M. Geva, R. Schuster, J. Berant, O. Levy, "Transformer feed-forward layers are key-value
#   memories", EMNLP 2021. https://arxiv.org/abs/2012.14913
# - H. Wang et al., "DeepNet: Scaling transformers to 1,000 layers", 2022.
#   https://arxiv.org/abs/2203.00555
# - M. Geva et al., "Transformer feed-forward layers build predictions by promoting concepts in
#   the vocabulary space", EMNLP 2022. https://arxiv.org/abs/2203.14680
# - H. Touvron et al., "LLaMA: Open and efficient foundation language models", 2023.
#   https://arxiv.org/abs/2302.13971
