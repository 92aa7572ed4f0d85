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
# # Positional encoding: sinusoidal, learned, RoPE and ALiBi
#
# Attention compares every token with every other token through dot products, and a dot product
# does not care where the two tokens sit. Without extra information, "the dog bit the man" and
# "the man bit the dog" would look alike to it. Positional encodings supply the missing order, and
# the four schemes in use today do so in three different places: added to the input (sinusoidal
# and learned tables), rotating the queries and keys (RoPE), or biasing the attention scores
# (ALiBi). Where the information enters decides what happens when a model meets a sequence
# longer than any it was trained on. This notebook writes each scheme by hand, checks it against
# the course library, and then trains five small character-level models that differ only in their
# positions to measure how each one copes with 2, 4 and 8 times its training length.
#
# **Learning objectives**
# - Show that attention without positions treats its input as a set, and say how a causal mask
#   changes that.
# - Implement the sinusoidal table, a learned table, rotary embeddings (RoPE) and ALiBi biases,
#   and check each against `shared.layers` or PyTorch.
# - Explain why RoPE and ALiBi make attention scores depend on relative position only.
# - Measure length extrapolation: the loss of models trained at 64 tokens when they read 128 to
#   512, and explain why learned positions cannot take part.
#
# **Prerequisites:** [Self-attention](03-self-attention) and
# [multi-head attention](04-multi-head-attention) for queries, keys and heads;
# [PyTorch and autograd](../00-foundations/04-pytorch-and-autograd) for training loops. Complex
# numbers as rotations help for RoPE.
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

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import shared
from shared.data import shakespeare_char_data
from shared.layers import alibi_slopes, apply_rope, rope_cos_sin, sinusoidal_positions
from shared.models import GPT, GPTConfig
from shared.plotting import heatmap, plot_curves
from shared.training import TrainConfig, train

# The models here are tiny: one thread avoids the cost of coordinating several.
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("torch", "matplotlib"))

# %% [markdown]
# ## Attention alone does not see order
#
# Self-attention without a mask computes, for each query, a weighted average over *all* keys. If
# we shuffle the input tokens, every query still sees the same set of keys, so each output row is
# the same as before, only shuffled along. In symbols, for a permutation matrix $P$,
# $\mathrm{Attn}(PX) = P\,\mathrm{Attn}(X)$: attention is *permutation-equivariant*. Nothing in
# the output says which token came first.

# %%
torch.manual_seed(0)
T, d = 6, 16
X = torch.randn(T, d)
W_q, W_k, W_v = (torch.randn(d, d) / d**0.5 for _ in range(3))


def attention(x: torch.Tensor, causal: bool = False) -> torch.Tensor:
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    return F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=causal)[0]


perm = torch.randperm(T)
gap = (attention(X[perm]) - attention(X)[perm]).abs().max().item()
gap_causal = (attention(X[perm], causal=True) - attention(X, causal=True)[perm]).abs().max().item()
print(f"no mask:     max |Attn(PX) - P Attn(X)| = {gap:.1e}  (equivariant)")
print(f"causal mask: max |Attn(PX) - P Attn(X)| = {gap_causal:.2f}  (order now matters)")

# %% [markdown]
# A causal mask breaks the symmetry: token $t$ averages over $t$ tokens, so the first token sees
# only itself and later tokens see more. Kazemnejad et al. (2023) showed that decoder-only models
# can in fact infer positions from this alone ("NoPE", no positional encoding). We include such a
# model in the experiment below. Encoders, which have no mask, need explicit positions, and all
# widely used decoders add them too.

# %% [markdown]
# ## Sinusoidal positions (Vaswani et al., 2017)
#
# The original transformer adds a fixed table to the token embeddings. Channel pair $i$ of
# position $p$ holds a sine and a cosine of frequency $\omega_i = 10000^{-2i/d}$:
#
# $$\mathrm{PE}_{p,\,2i} = \sin(p\,\omega_i), \qquad \mathrm{PE}_{p,\,2i+1} = \cos(p\,\omega_i).$$
#
# The first pairs turn fast (a period of $2\pi$ positions); the last turn so slowly that they
# act like a coarse clock over thousands of positions. We write the table and compare it with the
# library's.

# %%
def sinusoidal_table(n_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Sinusoidal position table of shape (n_positions, dim), sines in even channels."""
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]
    omega = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * omega)
    table[:, 1::2] = torch.cos(position * omega)
    return table.float()


PE = sinusoidal_table(512, 64)
print(f"max |ours - shared.layers.sinusoidal_positions| = "
      f"{(PE - sinusoidal_positions(512, 64)).abs().max():.1e}")

# %% [markdown]
# Two properties make the table useful. Each pair is a point on a circle, so moving $k$ positions
# turns every pair by a fixed angle $k\omega_i$: $\mathrm{PE}_{p+k}$ is a fixed linear function of
# $\mathrm{PE}_p$ (Exercise 1 builds that matrix). And the dot product of two rows,
# $\sum_i \cos((p - q)\,\omega_i)$, depends only on the offset $p - q$ and falls as the offset
# grows, so nearby positions look alike.

# %%
offsets = torch.arange(-64, 65)
similarity_at = {p: [(PE[p] @ PE[p + int(k)]).item() for k in offsets] for p in (100, 300)}
print("PE[100].PE[110] =", round(float(PE[100] @ PE[110]), 4), "| PE[300].PE[310] =",
      round(float(PE[300] @ PE[310]), 4))

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
heatmap(PE[:128].T, None, None, "Sinusoidal table (first 128 positions)", xlabel="position p",
        ylabel="channel", ax=axes[0], cmap="RdBu", colorbar_label="value")
plot_curves(offsets.tolist(), {f"p = {p}": v for p, v in similarity_at.items()},
            "Dot product of PE[p] and PE[p + k]", "offset k", "PE[p] . PE[p+k]", ax=axes[1])
plt.tight_layout()
plt.show()

# %% [markdown]
# The two curves lie on top of each other: the similarity depends on the offset only, whatever
# the absolute position.
#
# One practical detail matters when the table meets a real model. It has entries of size 1, while
# `shared.models` initialises token embeddings with standard deviation 0.02, as GPT-2 does.
# Added together, the sum is almost all position.

# %%
config_64 = GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, d_model=64,
                      pos_encoding="sinusoidal")
probe = GPT(config_64)
token_norm = probe.tok_emb.weight.norm(dim=1).mean().item()
position_norm = probe.sinusoidal.norm(dim=1).mean().item()
inputs = probe.tok_emb.weight[:2] + probe.sinusoidal[10]  # two different tokens at position 10
print(f"mean row norm: token embedding {token_norm:.3f}, sinusoidal row {position_norm:.3f} "
      f"({position_norm / token_norm:.0f}x larger)")
print(f"cosine similarity of two different tokens at the same position: "
      f"{F.cosine_similarity(inputs[0], inputs[1], dim=0):.4f}")

# %% [markdown]
# Two different characters at the same position give nearly the same input vector, so the model
# must first grow its token embeddings many times over before it can tell characters apart.
# Vaswani et al. multiply the embeddings by $\sqrt{d_{model}}$ for this reason. `shared.models`
# adds the table as it is, so in our experiment we scale the table down to the size of the
# token embeddings instead (the same cure, applied to the other term).

# %%
SINUSOIDAL_SCALE = token_norm / position_norm
print(f"sinusoidal table scaled by {SINUSOIDAL_SCALE:.4f} in the experiment below")

# %% [markdown]
# ## Learned positions (GPT-2)
#
# GPT-2 and BERT simply learn a table: `nn.Embedding(block_size, d_model)`, one trainable vector
# per position, added to the token embedding like the sinusoidal one. It can learn whatever
# layout suits the data, at the cost of `block_size * d_model` parameters, and it has nothing to
# say about position `block_size` or beyond: there is no row for it. `shared.models` refuses such
# inputs outright.

# %%
learned = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, d_model=64,
                        pos_encoding="learned"))
print("learned position table:", tuple(learned.pos_emb.weight.shape),
      f"= {learned.pos_emb.weight.numel():,} parameters")
try:
    learned(torch.zeros(1, 128, dtype=torch.long))
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## Rotary position embeddings (Su et al., 2021)
#
# Shaw et al. (2018) were the first to make attention scores depend on the *relative* offset
# between two tokens, by learning one vector per (clipped) offset and adding it to the keys.
# RoPE and ALiBi reach the same goal with no learned table. RoPE leaves the token embeddings
# alone and acts inside attention. Split a query (or key) of
# head size $d_h$ into $d_h/2$ pairs, read each pair as a complex number $z_i$, and multiply it
# by $e^{\,j p \theta_i}$ at position $p$, with $\theta_i = 10000^{-2i/d_h}$: every pair is rotated
# by an angle proportional to the position. The score between a query at $m$ and a key at $n$ is
# then
#
# $$\mathrm{Re}\sum_i q_i e^{jm\theta_i}\,\overline{k_i e^{jn\theta_i}}
#   = \mathrm{Re}\sum_i q_i \overline{k_i}\, e^{j(m-n)\theta_i},$$
#
# a function of the offset $m - n$ only. The library (like Llama and Hugging Face) pairs channel
# $i$ with channel $i + d_h/2$ ("rotate-half" layout); we write RoPE with complex numbers in that
# layout and compare.

# %%
def rope_complex(x: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Rotate x of shape (..., T, head_dim): pair (i, i + head_dim/2) turns by p * theta_i."""
    T, head_dim = x.shape[-2:]
    half = head_dim // 2
    freqs = theta ** (-torch.arange(half, dtype=torch.float64) * 2 / head_dim)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * freqs  # (T, half)
    z = torch.complex(x[..., :half].double(), x[..., half:].double()) * torch.polar(
        torch.ones_like(angles), angles)
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


x = torch.randn(2, 4, 64, 16)  # (batch, heads, positions, head_dim)
cos, sin = rope_cos_sin(64, 16)
rope_gap = (rope_complex(x) - apply_rope(x, cos, sin)).abs().max()
print(f"max |ours - shared.layers.apply_rope| = {rope_gap:.1e}")

# %% [markdown]
# Now the relative property, measured: one query vector and one key vector placed at several
# pairs of positions with the same offset give the same score, and a different offset gives a
# different one.

# %%
q_vec, k_vec = torch.randn(16), torch.randn(16)


def rope_score(m: int, n: int) -> float:
    """Score of q placed at position m against k placed at position n, after RoPE."""
    seq = torch.zeros(2, max(m, n) + 1, 16)
    seq[0, m], seq[1, n] = q_vec, k_vec
    rotated = rope_complex(seq)
    return float(rotated[0, m] @ rotated[1, n])


for m, n in [(5, 2), (40, 37), (63, 60), (500, 497), (40, 30)]:
    print(f"query at {m:3d}, key at {n:3d} (offset {m - n:2d}): score {rope_score(m, n):+.5f}")

# %% [markdown]
# The rotation speeds set what a model trained on $L$ tokens has seen. A pair with wavelength
# $2\pi/\theta_i$ shorter than $L$ has turned through all its angles in training; a slower pair
# has only seen a slice of its circle, and at longer offsets it reaches angles the model never
# met. For our models ($d_h = 16$, $L = 64$):

# %%
head_dim, L = 16, 64
wavelengths = 2 * math.pi * 10000 ** (torch.arange(0, head_dim, 2) / head_dim)
for i, wave in enumerate(wavelengths.tolist()):
    seen = min(1.0, (L - 1) / wave)
    print(f"pair {i}: wavelength {wave:9.1f} positions; share of its circle seen in training "
          f"{seen:6.1%}")

# %% [markdown]
# Three pairs cycle fully within 64 positions; the other five see only part of their circle.
# Methods that stretch RoPE to longer contexts change these rotation speeds: position
# interpolation slows every pair down, NTK-aware scaling and YaRN mostly the slow ones.
# Exercise 4 tries the first.
#
# ## ALiBi (Press et al., 2022)
#
# ALiBi adds no vectors at all. Each head $h$ subtracts a penalty proportional to the distance
# from the attention score: $s_{mn} = q_m \cdot k_n/\sqrt{d_h} - m_h\,(m - n)$ for $n \le m$,
# with slopes $m_h$ forming a geometric sequence ($1/2, 1/4, \dots, 1/256$ for 8 heads; for 4
# heads $1/4, 1/16, 1/64, 1/256$). Steep heads look at the last few tokens; shallow heads look far
# back. The bias depends only on $m - n$, so nothing about it is specific to the training length.

# %%
def my_alibi_slopes(n_head: int) -> torch.Tensor:
    """Slopes 2^(-8/n), 2^(-16/n), ... for a power-of-two number of heads."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / n_head) for h in range(n_head)])


def alibi_bias(n_head: int, T: int) -> torch.Tensor:
    """Additive attention bias (n_head, T, T): -slope * distance, -inf above the diagonal."""
    distance = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # m - n
    bias = -my_alibi_slopes(n_head)[:, None, None] * distance
    return bias.masked_fill(distance < 0, float("-inf"))


print("our slopes (4 heads):   ", my_alibi_slopes(4).tolist())
slope_gap = max((my_alibi_slopes(n) - alibi_slopes(n)).abs().max().item()
                for n in (1, 2, 4, 8, 16, 32, 64))
print(f"max |ours - shared.layers.alibi_slopes| over 1, 2, ..., 64 heads = {slope_gap:.1e}")

# Attention with the bias, by hand and through PyTorch's fused kernel.
q, k, v = torch.randn(3, 1, 4, 12, 16).unbind(0)
bias = alibi_bias(4, 12)
by_hand = torch.softmax(q @ k.transpose(-2, -1) / 4.0 + bias, dim=-1) @ v
fused = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
print(f"max |ALiBi attention by hand - scaled_dot_product_attention| = "
      f"{(by_hand - fused).abs().max():.1e}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for head, ax in zip((0, 3), axes):
    heatmap(alibi_bias(4, 16)[head].clamp(min=-16), None, None,
            f"ALiBi bias, head {head} (slope {my_alibi_slopes(4)[head]:.4f})", ax=ax,
            colorbar_label="bias added to the score (-inf shown as -16)")
plt.tight_layout()
plt.show()

# %% [markdown]
# | scheme | where it enters | parameters | a position beyond training |
# |---|---|---|---|
# | sinusoidal | added to the input | none | a new table row, never seen in training |
# | learned | added to the input | `block_size * d_model` | no row exists: cannot run |
# | RoPE | rotates queries and keys | none | slow pairs reach unseen angles |
# | ALiBi | bias on the scores | none | the same linear penalty, just longer |
# | NoPE | nowhere (causal mask only) | none | position must be inferred from counts |
#
# ## The experiment: train at 64 tokens, read up to 512
#
# We train five character-level GPTs on tiny Shakespeare (2 layers, 4 heads, $d_{model}=64$,
# context 64), identical except for their positions, with the same seed, data order and budget
# (`shared.training`, 200 AdamW steps of 16 sequences). NoPE is ALiBi with its slopes set to zero:
# causal attention with no position signal at all. These are tiny models trained for a few
# seconds, not converged ones; the budget is a knob.

# %%
L = 64
MAX_STEPS = 200  # 2000+ on a GPU gives converged models and the same ranking, more sharply
ENCODINGS = ["learned", "sinusoidal", "rope", "alibi", "nope"]
data = shakespeare_char_data(L)


def build(encoding: str, block_size: int) -> GPT:
    """A small GPT with the given position scheme and context length (weights random)."""
    config = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=block_size, n_layer=2,
                       n_head=4, d_model=64,
                       pos_encoding="alibi" if encoding == "nope" else encoding)
    model = GPT(config)
    if encoding == "nope":
        model.alibi_slopes.zero_()  # ALiBi with zero slopes: no position signal
    if encoding == "sinusoidal":
        model.sinusoidal.mul_(SINUSOIDAL_SCALE)  # match the token embeddings' size (see above)
    return model


train_config = TrainConfig(max_steps=MAX_STEPS, batch_size=16, block_size=L, lr=6e-3, min_lr=6e-4,
                           warmup_steps=20, eval_interval=50, eval_batches=10, progress=False)
models, histories = {}, {}
for encoding in ENCODINGS:
    shared.seed_everything(0)
    models[encoding] = build(encoding, L)
    histories[encoding] = train(models[encoding], data.train, data.val, train_config)
    print(f"{encoding:>10}: {models[encoding].num_parameters():,} parameters, validation loss "
          f"{histories[encoding].final_val_loss:.3f} after {MAX_STEPS} steps")

# %% [markdown]
# To read longer sequences we need the same weights in a model whose position tables reach
# further. For sinusoidal, RoPE, ALiBi and NoPE the tables are computed, not learned (they are not
# even in the checkpoint), so we build a model with a larger `block_size` and load the weights
# into it. For learned positions the checkpoint holds a 64-row table and the longer model wants
# more rows, so loading fails: there is no principled value for the missing rows.

# %%
def at_context(model: GPT, encoding: str, n: int) -> GPT:
    """The trained weights of `model` in a copy whose position tables cover n tokens."""
    longer = build(encoding, n)
    longer.load_state_dict(model.state_dict())
    return longer.eval()


try:
    at_context(models["learned"], "learned", 4 * L)
except RuntimeError as error:
    print("learned positions:", str(error).strip().splitlines()[-1].strip())

# %% [markdown]
# Every model reads the same 16,384 validation characters, cut into windows of $n$ = 64, 128, 256
# and 512 tokens. The text is identical at every length; only how much context each prediction
# can use, and which positions the model must handle, changes. We record the loss at every
# position of the window.

# %%
EVAL_TOKENS = 16384
eval_ids = data.val[: EVAL_TOKENS + 1]
LENGTHS = [L, 2 * L, 4 * L, 8 * L]


@torch.no_grad()
def loss_by_position(model: GPT, n: int) -> torch.Tensor:
    """Mean cross-entropy at each of the n positions of the windows of the validation text."""
    inputs, targets = eval_ids[:-1].view(-1, n), eval_ids[1:].view(-1, n)
    logits = model(inputs).logits
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").mean(dim=0)


results = {}
for encoding in ENCODINGS:
    lengths = LENGTHS[:1] if encoding == "learned" else LENGTHS
    results[encoding] = {n: loss_by_position(at_context(models[encoding], encoding, n), n)
                         for n in lengths}

print(f"{'encoding':>10} " + " ".join(f"{f'{n // L}x ({n})':>11}" for n in LENGTHS))
for encoding in ENCODINGS:
    row = [f"{results[encoding][n].mean():11.3f}" if n in results[encoding] else f"{'n/a':>11}"
           for n in LENGTHS]
    print(f"{encoding:>10} " + " ".join(row))

# %%
COLORS = dict(zip(ENCODINGS, ["black", "tab:blue", "tab:orange", "tab:green", "tab:red"]))
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
for encoding in ENCODINGS:
    lengths = sorted(results[encoding])
    is_learned = encoding == "learned"  # one point, drawn on top of the others
    axes[0].plot(lengths, [results[encoding][n].mean().item() for n in lengths],
                 marker="x" if is_learned else "o", markersize=10 if is_learned else 6,
                 markeredgewidth=2 if is_learned else 1, zorder=5 if is_learned else 2,
                 color=COLORS[encoding], label=encoding)
axes[0].set(xscale="log", xlabel="evaluation window (tokens)",
            ylabel="validation loss (nats/token)",
            title="Loss vs evaluation length (trained at 64 tokens)")
axes[0].set_xticks(LENGTHS, [str(n) for n in LENGTHS])
axes[0].minorticks_off()
axes[0].annotate("learned (x): no result\nbeyond 64 tokens",
                 (L, results["learned"][L].mean().item()), xytext=(90, 2.36),
                 arrowprops={"arrowstyle": "->"})
axes[0].grid(True, alpha=0.3)

bucket = 32  # average positions in groups of 32 to reduce noise
centres = [i + bucket / 2 for i in range(0, 8 * L, bucket)]
for encoding in ENCODINGS[1:]:
    axes[1].plot(centres, results[encoding][8 * L].view(-1, bucket).mean(dim=1).tolist(),
                 color=COLORS[encoding], label=encoding)
axes[1].axvline(L, color="gray", ls="--", label="training length")
axes[1].set(xlabel="position in the 512-token window", ylabel="validation loss (nats/token)",
            title="Loss by position (means over 32 positions)")
axes[1].grid(True, alpha=0.3)
axes[1].legend(loc="upper left", fontsize=8)
fig.legend(*axes[0].get_legend_handles_labels(), loc="center right")
plt.tight_layout(rect=(0, 0, 0.9, 1))
plt.show()

# %% [markdown]
# What the measurements show (these numbers come from the run above):
#
# - **ALiBi** extrapolates: its loss at 512 tokens is no worse than at 64, and the per-position
#   curve stays flat past the training length. That is the result of Press et al. (2022): train
#   short, test long.
# - **RoPE** learns fastest in this budget (lowest loss at 64) but degrades beyond its training
#   length: its loss per position stays low up to about twice the training length, then climbs
#   steeply, as the slow rotation pairs reach angles the model never saw.
# - **Sinusoidal** and **NoPE** also get worse past 64 tokens, more gently; at this budget both
#   also learn more slowly than RoPE and ALiBi.
# - **Learned** positions have no answer at all beyond the table: the model refuses the input, and
#   its weights do not fit a longer table.
#
# Real long-context models take RoPE and then extend it deliberately (position interpolation,
# NTK-aware scaling, YaRN) with a little fine-tuning at the new length; ALiBi-style biases or no
# positions at all are the alternatives that need no such step (Kazemnejad et al., 2023).
#
# Finally, a look inside the learned model: cosine similarity between its learned position
# vectors. After 200 steps, neighbouring positions have become similar and distant ones have
# not (the numbers below), which is what the sinusoidal table builds in by design; the table has
# also split into a block of early and a block of late positions.

# %%
pos_vectors = F.normalize(models["learned"].pos_emb.weight.detach(), dim=1)
fig, ax = plt.subplots(figsize=(5.5, 4.5))
heatmap(pos_vectors @ pos_vectors.T, None, None,
        f"Learned positions after {MAX_STEPS} steps: cosine similarity", xlabel="position",
        ylabel="position", colorbar_label="cosine similarity", ax=ax)
plt.show()
near = torch.stack([pos_vectors[i] @ pos_vectors[i + 1] for i in range(L - 1)]).mean()
far = torch.stack([pos_vectors[i] @ pos_vectors[i + 32] for i in range(L - 32)]).mean()
print(f"mean cosine similarity: neighbours {near:.3f}, 32 positions apart {far:.3f}")

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Shifting a sinusoidal table is a rotation
#
# Write `shift_matrix(k, dim)` returning the `(dim, dim)` matrix $M_k$ such that
# $\mathrm{PE}_{p+k} = \mathrm{PE}_p M_k$ for every position $p$ (rows are positions, as in
# `sinusoidal_positions`). Hint: channels $2i$ and $2i+1$ hold $\sin(p\omega_i)$ and
# $\cos(p\omega_i)$; use the angle-sum formulas. The check applies it to the library's table
# for several $p$ and $k$.

# %% tags=["solution"]
def shift_matrix(k: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """M with sinusoidal_positions(...)[p + k] == sinusoidal_positions(...)[p] @ M."""
    # BEGIN SOLUTION
    omega = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    M = torch.zeros(dim, dim, dtype=torch.float64)
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    # new sin = sin*c + cos*s ; new cos = cos*c - sin*s
    M[0::2, 0::2] = torch.diag(c)
    M[1::2, 0::2] = torch.diag(s)
    M[0::2, 1::2] = torch.diag(-s)
    M[1::2, 1::2] = torch.diag(c)
    return M.float()
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close, check_shape, passed

table = sinusoidal_positions(300, 32)
for k in (1, 7, 50):
    M = shift_matrix(k, 32)
    check_shape(M, (32, 32), f"shift_matrix({k}, 32)")
    check_close(table[:200] @ M, table[k : 200 + k], f"PE[p] @ shift_matrix({k}) vs PE[p + {k}]",
                atol=1e-4)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: RoPE in the paper's interleaved layout
#
# The RoFormer paper (and GPT-J) pairs neighbouring channels, $(x_0, x_1), (x_2, x_3), \dots$,
# where the library pairs $x_i$ with $x_{i+d/2}$. Write `rope_interleaved(x, theta)` for `x` of
# shape `(..., T, head_dim)`: pair $i$ is channels $2i$ and $2i+1$, rotated by $p\,\theta_i$ with
# $\theta_i = \mathrm{theta}^{-2i/d}$. The check verifies that it equals the library's rotate-half
# RoPE once the channels are reordered (evens first, then odds) and that scores depend on the
# offset only.

# %% tags=["solution"]
def rope_interleaved(x: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """RoPE with neighbouring channels (2i, 2i+1) as the rotating pairs."""
    # BEGIN SOLUTION
    T, head_dim = x.shape[-2:]
    freqs = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.arange(T, dtype=torch.float32)[:, None] * freqs  # (T, head_dim/2)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out
    # END SOLUTION


# %% tags=["check"]
x_test = torch.randn(3, 40, 16)
order = torch.cat([torch.arange(0, 16, 2), torch.arange(1, 16, 2)])  # evens, then odds
result = rope_interleaved(x_test)
check_shape(result, (3, 40, 16), "rope_interleaved")
c40, s40 = rope_cos_sin(40, 16)
check_close(result[..., order], apply_rope(x_test[..., order], c40, s40), "rope_interleaved",
            atol=1e-5)
same = torch.zeros(40, 16)
same[:] = x_test[0, 0]  # one vector at every position
rotated = rope_interleaved(same)
check_close(rotated[30] @ rotated[20], rotated[15] @ rotated[5], "score at offset 10", atol=1e-4)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: ALiBi slopes for any number of heads
#
# Our `my_alibi_slopes` assumes a power of two. For other head counts, Press et al. take the
# slopes of the largest power of two $m \le n$ and then add every other slope of the sequence for
# $2m$ heads (the 1st, 3rd, 5th, ...) until there are $n$. Write `alibi_slopes_any(n)`; the check
# compares it with `shared.layers.alibi_slopes` for 1 to 24 heads.

# %% tags=["solution"]
def alibi_slopes_any(n_head: int) -> torch.Tensor:
    """ALiBi slopes for any positive number of heads."""
    # BEGIN SOLUTION
    m = 2 ** int(math.floor(math.log2(n_head)))
    extra = my_alibi_slopes(2 * m)[0::2][: n_head - m]
    return torch.cat([my_alibi_slopes(m), extra])
    # END SOLUTION


# %% tags=["check"]
for n in range(1, 25):
    check_close(alibi_slopes_any(n), alibi_slopes(n), f"alibi_slopes_any({n})", atol=1e-7)
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Position interpolation for RoPE
#
# Chen et al. (2023) extend a RoPE model to $n > L$ tokens by squeezing positions: position $p$
# is rotated as if it were $p \cdot L / n$, so every angle stays inside the range seen in training.
# Write `interpolated_rope_tables(n, head_dim, train_length)` returning `(cos, sin)` of shape
# `(n, head_dim)` in the library's layout (like `rope_cos_sin(n, head_dim)`, but at positions
# $p L / n$). Then put them into a 4x-length copy of the trained RoPE model (its buffers
# `rope_cos` and `rope_sin`) and set `pi_loss_4x` to its mean loss on the 256-token windows
# (use `at_context` and `loss_by_position`). Compare with plain RoPE at 4x in the table above.
# Chen et al. follow the squeeze with a short fine-tuning at the new length; from your number,
# and from what the squeeze does to the fast pairs (two neighbours now differ by a quarter of the
# angle the model learned), say why that step is needed.

# %% tags=["solution"]
def interpolated_rope_tables(n: int, head_dim: int, train_length: int,
                             theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE cos/sin tables for n positions squeezed into [0, train_length)."""
    # BEGIN SOLUTION
    freqs = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    positions = torch.arange(n, dtype=torch.float32) * train_length / n
    angles = torch.outer(positions, freqs)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()
    # END SOLUTION


pi_loss_4x = None
# BEGIN SOLUTION
pi_model = at_context(models["rope"], "rope", 4 * L)
pi_cos, pi_sin = interpolated_rope_tables(4 * L, 16, L)
pi_model.rope_cos.copy_(pi_cos)
pi_model.rope_sin.copy_(pi_sin)
pi_loss_4x = loss_by_position(pi_model, 4 * L).mean().item()
# END SOLUTION
print(f"RoPE at 4x: plain {results['rope'][4 * L].mean():.3f}, interpolated {pi_loss_4x}")

# %% tags=["check"]
c_pi, s_pi = interpolated_rope_tables(128, 16, 64)
check_shape(c_pi, (128, 16), "interpolated_rope_tables cos")
c_ref, s_ref = rope_cos_sin(64, 16)
check_close(c_pi[0::2], c_ref, "cos at even positions of a 2x squeeze", atol=1e-5)
check_close(s_pi[0::2], s_ref, "sin at even positions of a 2x squeeze", atol=1e-5)
reference_model = at_context(models["rope"], "rope", 4 * L)
reference_model.rope_cos.copy_(interpolated_rope_tables(4 * L, 16, L)[0])
reference_model.rope_sin.copy_(interpolated_rope_tables(4 * L, 16, L)[1])
check_close(pi_loss_4x, loss_by_position(reference_model, 4 * L).mean().item(), "pi_loss_4x",
            atol=1e-4)
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Attention without positions is permutation-equivariant; a causal mask breaks the symmetry
#   and lets decoders infer some position (NoPE), but explicit positions are the norm.
# - Sinusoidal and learned tables are added to the input. The sinusoidal table makes offsets a
#   rotation and dot products a function of the offset; its scale must match the token
#   embeddings'. A learned table has no rows past its training length, so the model cannot run
#   there.
# - RoPE rotates queries and keys so that scores depend on $m - n$ only; ALiBi subtracts a
#   per-head linear penalty in $m - n$. Both agree with the library to float precision above.
# - Trained at 64 tokens and read at up to 512, ALiBi kept its loss flat, RoPE learned fastest but
#   degraded past its training length, and sinusoidal and NoPE degraded more gently. Position
#   interpolation keeps RoPE's angles in the trained range, but without the short fine-tuning
#   that Chen et al. add it made the loss worse here (Exercise 4).
#
# Next: [the feed-forward network](06-feed-forward), the other half of every transformer block.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - P. Shaw, J. Uszkoreit, A. Vaswani, "Self-attention with relative position representations",
#   NAACL 2018. https://arxiv.org/abs/1803.02155
# - J. Su et al., "RoFormer: Enhanced transformer with rotary position embedding", 2021.
#   https://arxiv.org/abs/2104.09864
# - O. Press, N. A. Smith, M. Lewis, "Train short, test long: Attention with linear biases enables
#   input length extrapolation", ICLR 2022. https://arxiv.org/abs/2108.12409
# - A. Kazemnejad et al., "The impact of positional encoding on length generalization in
#   transformers", NeurIPS 2023. https://arxiv.org/abs/2305.19466
# - S. Chen et al., "Extending context window of large language models via positional
#   interpolation", 2023. https://arxiv.org/abs/2306.15595
# - S. Biderman et al., "Rotary embeddings: a relative revolution", EleutherAI blog, 2021.
#   https://blog.eleuther.ai/rotary-embeddings/
# - J. Alammar, "The illustrated transformer". https://jalammar.github.io/illustrated-transformer/
