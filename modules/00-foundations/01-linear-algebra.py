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
# # Linear algebra for language models
#
# A language model is, to a first approximation, a long chain of matrix multiplications. Tokens
# become vectors, every layer multiplies them by learned matrices, and attention itself is two
# matrix products with a softmax in between. Fine-tuning methods such as LoRA rest on one more idea
# from linear algebra: a large matrix can often be replaced by a product of two thin ones. This
# notebook builds those ideas from the ground up, on real text: word vectors computed from the
# course corpus.
#
# **Learning objectives**
# - Read the shapes of a matrix product and write batched products with `einsum`.
# - Measure length and similarity of vectors with norms, dot products and cosine similarity, and
#   project one vector onto another.
# - Explain why attention divides its scores by $\sqrt{d}$, from a measurement.
# - Use the singular value decomposition (SVD) to find the best low-rank approximation of a
#   matrix, and relate it to LoRA's low-rank updates.
# - Write scaled dot-product attention as matrix products and check it against PyTorch.
#
# **Prerequisites:** Python and a first contact with NumPy arrays. No earlier notebook is needed;
# this is the first one of the course.
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
import re
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import shared
from shared.paths import data_file

shared.seed_everything(0)
print(shared.environment_summary("numpy", "matplotlib"))

# %% [markdown]
# ## Vectors: words as points in space
#
# A vector is an ordered list of numbers, $x \in \mathbb{R}^d$. Language models represent every
# token as such a vector (its *embedding*), learned so that tokens used in similar contexts end up
# close together. We can see the same effect without training anything: count which words appear
# near which others in tiny Shakespeare (the course corpus, 1.1 million characters), and each
# word's row of counts is already a vector.
#
# We keep the 1,000 most frequent words and count co-occurrences within a window of 4 words.

# %%
text = data_file("tinyshakespeare.txt").read_text(encoding="utf-8").lower()
words = re.findall(r"[a-z']+", text)
VOCAB_SIZE, WINDOW = 1000, 4
vocab = [w for w, _ in Counter(words).most_common(VOCAB_SIZE)]
index = {w: i for i, w in enumerate(vocab)}
ids = np.array([index.get(w, -1) for w in words])

counts = np.zeros((VOCAB_SIZE, VOCAB_SIZE))
for offset in range(1, WINDOW + 1):
    left, right = ids[:-offset], ids[offset:]
    keep = (left >= 0) & (right >= 0)
    np.add.at(counts, (left[keep], right[keep]), 1)
    np.add.at(counts, (right[keep], left[keep]), 1)

print(f"{len(words):,} words in the corpus; co-occurrence matrix {counts.shape}")
print("most frequent words:", vocab[:12])

# %% [markdown]
# Raw counts are dominated by frequent words ("the", "and"). The standard fix is *positive
# pointwise mutual information* (PPMI): how much more often two words co-occur than they would by
# chance, $\mathrm{PPMI}(a, b) = \max\left(0, \log \frac{p(a, b)}{p(a)\,p(b)}\right)$.
# Each row of this matrix is a 1,000-dimensional word vector.

# %%
joint = counts / counts.sum()
marginal = joint.sum(axis=1)
with np.errstate(divide="ignore"):
    pmi = np.log(joint / np.outer(marginal, marginal))
ppmi = np.maximum(pmi, 0.0)
print(f"PPMI matrix: shape {ppmi.shape}, {np.mean(ppmi > 0):.1%} of entries non-zero")

# %% [markdown]
# ## Norms, dot products and cosine similarity
#
# The length of a vector is its norm. The Euclidean ($L_2$) norm is
# $\lVert x \rVert_2 = \sqrt{\sum_i x_i^2}$; the $L_1$ norm sums absolute values and the
# $L_\infty$ norm takes the largest one. The dot product $x \cdot y = \sum_i x_i y_i =
# \lVert x\rVert \lVert y\rVert \cos\theta$ mixes length and direction; dividing by both lengths
# leaves the *cosine similarity*, which compares directions only.

# %%
x = np.array([3.0, -4.0, 0.0])
print("L1 =", np.linalg.norm(x, 1), " L2 =", np.linalg.norm(x), " Linf =", np.linalg.norm(x, np.inf))


def cosine_similarity_matrix(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row with every row: normalise rows, then one matrix product."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def nearest(word: str, vectors: np.ndarray, k: int = 6) -> list[str]:
    sims = cosine_similarity_matrix(vectors)[index[word]]
    return [vocab[i] for i in np.argsort(-sims)[1 : k + 1]]


for w in ["king", "night", "father", "sword"]:
    print(f"{w:>7} ->", nearest(w, ppmi))

# %% [markdown]
# Even raw PPMI rows put "king" near the kings of the history plays and "father" near "son".
# The whole similarity table
# came from one matrix product of the normalised matrix with its transpose: $1{,}000 \times
# 1{,}000$ cosines at once. That is the pattern to look for everywhere in this course: a loop over
# pairs becomes a single matmul.

# %% [markdown]
# ## Matrices and matrix multiplication
#
# A matrix $W \in \mathbb{R}^{m \times n}$ maps a vector $x \in \mathbb{R}^n$ to
# $Wx \in \mathbb{R}^m$: every output is a dot product of a row of $W$ with $x$. A linear layer
# in a network is exactly this (plus a bias). Multiplying $A \in \mathbb{R}^{m \times k}$ by
# $B \in \mathbb{R}^{k \times n}$ needs the inner sizes to agree and gives $m \times n$; it costs
# $2mkn$ floating-point operations (one multiply and one add per term).
#
# In a transformer, a batch of $B$ sequences of $T$ tokens with $d$ features is a tensor of shape
# $(B, T, d)$, and a linear layer multiplies its last axis. `einsum` names every axis explicitly,
# which makes such products easy to read: repeated letters are summed over, the rest are kept.

# %%
batch, seq, d_model, d_out = 2, 5, 8, 3
X = torch.randn(batch, seq, d_model)
W = torch.randn(d_model, d_out)

by_matmul = X @ W  # (2, 5, 8) @ (8, 3) -> (2, 5, 3): the last axis is contracted
by_einsum = torch.einsum("btd,do->bto", X, W)
by_loops = torch.zeros(batch, seq, d_out)
for b in range(batch):
    for t in range(seq):
        for o in range(d_out):
            by_loops[b, t, o] = sum(X[b, t, i] * W[i, o] for i in range(d_model))

print("shape:", tuple(by_matmul.shape))
print("einsum == matmul:", torch.allclose(by_einsum, by_matmul))
print("loops  == matmul:", torch.allclose(by_loops, by_matmul, atol=1e-6))
print(f"FLOPs of this product: 2*m*k*n = {2 * batch * seq * d_model * d_out}")

# %% [markdown]
# ## Projections
#
# The projection of $v$ onto the direction of $u$ is the multiple of $u$ closest to $v$:
#
# $$\mathrm{proj}_u(v) = \frac{v \cdot u}{u \cdot u}\, u,$$
#
# and what is left, $v - \mathrm{proj}_u(v)$, is orthogonal to $u$. Projections appear whenever a
# model reads one component out of a vector: a linear probe, an attention query that asks "how
# much of this direction is present?", or the removal of an unwanted direction from embeddings.

# %%
v = np.array([2.0, 1.0])
u = np.array([3.0, 0.5])
proj = (v @ u) / (u @ u) * u
residual = v - proj
print(f"projection {proj.round(3)}, residual {residual.round(3)}, residual . u = {residual @ u:.1e}")

fig, ax = plt.subplots(figsize=(5, 4))
for vec, label, color, dy in [(v, "v", "tab:blue", 0.05), (u, "u", "tab:gray", 0.05),
                              (proj, "proj_u(v)", "tab:orange", -0.15)]:
    ax.annotate("", xy=vec, xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": color, "lw": 2})
    ax.text(vec[0], vec[1] + dy, label, color=color)
ax.plot([v[0], proj[0]], [v[1], proj[1]], "k--", lw=1, label="residual (orthogonal to u)")
ax.set(xlim=(-0.2, 3.4), ylim=(-0.2, 1.6), xlabel="first coordinate", ylabel="second coordinate",
       title="Projecting v onto the direction of u", aspect="equal")
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# ## Why attention divides by $\sqrt{d}$
#
# Attention compares a query $q$ with every key $k$ through the dot product $q \cdot k$. If the
# entries of $q$ and $k$ are independent with mean 0 and variance 1, the dot product is a sum of
# $d$ such products, so its variance is $d$ and its typical size grows like $\sqrt{d}$. Large
# scores push the softmax towards a one-hot vector, where gradients vanish. Dividing by
# $\sqrt{d}$ keeps the scores at unit scale whatever the head size. Let us measure it.

# %%
dims = [16, 64, 256, 1024, 4096]
raw_std, scaled_std = [], []
for d in dims:
    q, k = torch.randn(20_000, d), torch.randn(20_000, d)
    dots = (q * k).sum(dim=1)
    raw_std.append(dots.std().item())
    scaled_std.append((dots / d**0.5).std().item())
    print(f"d={d:5d}: std of q.k = {raw_std[-1]:7.2f} (sqrt(d) = {d**0.5:5.1f}),"
          f" std of q.k/sqrt(d) = {scaled_std[-1]:.3f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(dims, raw_std, "o-", label="q . k")
ax.plot(dims, scaled_std, "s-", label="q . k / sqrt(d)")
ax.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="standard deviation of the score",
       title="Dot products grow like sqrt(d); scaling removes it")
ax.legend()
plt.show()

# %% [markdown]
# ## The SVD and low-rank approximation
#
# Every real matrix factorises as $M = U \Sigma V^\top$, with orthonormal columns in $U$ and $V$
# and non-negative *singular values* $\sigma_1 \ge \sigma_2 \ge \dots$ on the diagonal of
# $\Sigma$. Keeping only the top $r$ singular values gives $M_r = U_r \Sigma_r V_r^\top$, and the
# Eckart-Young theorem says no matrix of rank $r$ is closer to $M$ in Frobenius norm. The error is
# exactly what was dropped:
#
# $$\lVert M - M_r \rVert_F^2 = \sum_{i > r} \sigma_i^2 .$$
#
# A matrix whose singular values fall off quickly is well described by few directions. Text
# statistics are such matrices; random noise is not. Compare the PPMI matrix with a random matrix
# of the same shape and total size.

# %%
U_ppmi, S_ppmi, Vt_ppmi = np.linalg.svd(ppmi)
noise = np.random.default_rng(0).standard_normal(ppmi.shape)
noise *= np.linalg.norm(ppmi) / np.linalg.norm(noise)  # same Frobenius norm as PPMI
S_noise = np.linalg.svd(noise, compute_uv=False)

ranks = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512])


def relative_error(singular_values: np.ndarray, r: int) -> float:
    """||M - M_r||_F / ||M||_F from the singular values alone (Eckart-Young)."""
    return float(np.sqrt(np.sum(singular_values[r:] ** 2) / np.sum(singular_values**2)))


err_ppmi = [relative_error(S_ppmi, r) for r in ranks]
err_noise = [relative_error(S_noise, r) for r in ranks]

# The formula agrees with an explicit reconstruction:
r = 32
M_r = (U_ppmi[:, :r] * S_ppmi[:r]) @ Vt_ppmi[:r]
explicit = np.linalg.norm(ppmi - M_r) / np.linalg.norm(ppmi)
print(f"rank {r}: error from singular values {relative_error(S_ppmi, r):.6f}, "
      f"from reconstruction {explicit:.6f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].plot(ranks, err_ppmi, "o-", label="PPMI matrix (text)")
axes[0].plot(ranks, err_noise, "s-", label="random matrix, same norm")
axes[0].set(xscale="log", xlabel="rank r", ylabel="relative Frobenius error",
            title="Low-rank approximation error vs rank")
axes[0].legend()
axes[1].plot(S_ppmi / S_ppmi[0], label="PPMI matrix (text)")
axes[1].plot(S_noise / S_noise[0], label="random matrix")
axes[1].set(yscale="log", xlabel="index i", ylabel="sigma_i / sigma_1",
            title="Singular value spectrum")
axes[1].legend()
plt.tight_layout()
plt.show()

# %%
for r in (1, 16, 64):
    print(f"rank {r:3d} keeps {1 - relative_error(S_ppmi, r) ** 2:6.1%} of the squared norm of the "
          f"PPMI matrix, {1 - relative_error(S_noise, r) ** 2:6.1%} of the random one")

# %% [markdown]
# The text matrix puts more of its mass in its first singular directions (the large $\sigma_1$
# is the overall frequency pattern; the spectrum then falls faster than the noise spectrum), so
# each rank removes more error. It is not *low-rank* in a strict sense: PPMI is sparse and noisy,
# and its tail is long. Noise spreads its mass evenly, so every rank removes about the same small
# share. The factors are useful in their own right: the
# rows of $U_r \Sigma_r$ are $r$-dimensional word vectors, the idea behind latent semantic
# analysis and a precursor of learned embeddings.

# %%
word_vectors_64 = U_ppmi[:, :64] * S_ppmi[:64]
for w in ["king", "night", "father", "sword"]:
    print(f"{w:>7} ->", nearest(w, word_vectors_64))

# %% [markdown]
# ### From low rank to LoRA
#
# Fine-tuning changes a pretrained weight $W \in \mathbb{R}^{d \times k}$ into $W + \Delta W$.
# LoRA (Hu et al., 2021) trains only a low-rank update $\Delta W = BA$ with
# $B \in \mathbb{R}^{d \times r}$, $A \in \mathbb{R}^{r \times k}$ and small $r$, which stores
# $r(d + k)$ numbers instead of $dk$. The bet is that the useful update has low rank. The SVD tells
# us how much of an update a given rank can capture. Here we build an update whose true rank is
# 8, add a little noise, and ask the SVD to recover it.

# %%
d, k, true_rank = 512, 512, 8
rng = np.random.default_rng(1)
delta_W = rng.standard_normal((d, true_rank)) @ rng.standard_normal((true_rank, k)) / np.sqrt(true_rank)
observed = delta_W + 0.05 * rng.standard_normal((d, k))
S_update = np.linalg.svd(observed, compute_uv=False)
lora_ranks = [1, 2, 4, 8, 16, 32, 64]
errors = [relative_error(S_update, r) for r in lora_ranks]
for r, e in zip(lora_ranks, errors):
    print(f"r={r:3d}: relative error {e:.3f}, parameters {r * (d + k):7,d} vs full {d * k:,d}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(lora_ranks, errors, "o-")
ax.axvline(true_rank, color="gray", ls="--", label=f"true rank {true_rank}")
ax.set(xscale="log", xlabel="LoRA rank r", ylabel="relative error of the best rank-r update",
       title="A rank-8 update is captured at r = 8")
ax.legend()
plt.show()

# %% [markdown]
# ## Attention as matrix products
#
# Scaled dot-product attention (Vaswani et al., 2017) turns a sequence of vectors
# $X \in \mathbb{R}^{T \times d}$ into a new sequence by letting every position take a weighted
# average of all positions:
#
# $$Q = XW_Q,\quad K = XW_K,\quad V = XW_V,\qquad
# \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V .$$
#
# We take a real sentence, embed its words with the 64-dimensional SVD vectors above, and compute
# attention twice: once score by score with explicit loops, once with two matrix products.
# A trained model learns $W_Q, W_K, W_V$. Here random matrices stand in, with one twist: we use
# the same random projection for queries and keys, so that a score measures how similar two words
# are (random projections roughly preserve dot products). The arithmetic is the same either way.

# %%
sentence = "my lord the king is dead long live the king".split()
embeddings = torch.tensor(word_vectors_64[[index[w] for w in sentence]], dtype=torch.float32)
embeddings = embeddings / embeddings.norm(dim=1, keepdim=True)  # unit-length inputs
T, d_model, d_k = len(sentence), embeddings.shape[1], 16
W_Q = torch.randn(d_model, d_k) * 0.6  # scale chosen so that scores spread over a few units
W_K = W_Q  # shared with the queries: a score is then a projected similarity of two words
W_V = torch.randn(d_model, d_k) / d_model**0.5
Q, K, V = embeddings @ W_Q, embeddings @ W_K, embeddings @ W_V

# By hand: one dot product per (query, key) pair.
scores_by_hand = torch.empty(T, T)
for i in range(T):
    for j in range(T):
        scores_by_hand[i, j] = sum(Q[i, c] * K[j, c] for c in range(d_k)) / d_k**0.5

# By matmul: all T*T dot products at once.
scores = Q @ K.T / d_k**0.5
weights = torch.softmax(scores, dim=-1)
output = weights @ V
reference = F.scaled_dot_product_attention(Q[None], K[None], V[None])[0]

print(f"max |scores by hand - scores by matmul| = {(scores_by_hand - scores).abs().max():.2e}")
print(f"max |our attention - torch SDPA|        = {(output - reference).abs().max():.2e}")
print("rows of the weight matrix sum to 1:", torch.allclose(weights.sum(-1), torch.ones(T)))

# %%
fig, ax = plt.subplots(figsize=(6, 5))
im = ax.imshow(weights.numpy(), cmap="viridis")
ax.set_xticks(range(T), sentence, rotation=45, ha="right")
ax.set_yticks(range(T), sentence)
ax.set(xlabel="key (attended to)", ylabel="query (attending)",
       title="Attention weights softmax(QK^T / sqrt(d_k))")
fig.colorbar(im, ax=ax, label="weight")
plt.tight_layout()
plt.show()

# %% [markdown]
# With queries and keys from the same projection, each word attends most to itself and to
# other occurrences of itself: the diagonal and the "the"/"king" pairs are the brightest cells.
# Identical words get identical queries and keys, so the two occurrences of "the" (and of
# "king") also have identical rows in the heatmap: with no positional information,
# attention cannot tell repeated words apart. Module 02 adds positions to fix this.
#
# The loop version needed $T^2 d_k$ Python-level multiplications; the matrix version is one
# product, $2T^2d_k$ FLOPs that the hardware executes in bulk. The same product over a batch of
# sequences and several heads is a single `einsum`, and it is what the exercises below ask for.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Project a vector onto a direction
#
# Write `project(v, u)` returning the projection of the 1-D array `v` onto the direction of `u`
# (use the formula from the Projections section). The check compares it on several vectors and
# verifies that the residual is orthogonal to `u`.

# %% tags=["solution"]
def project(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Projection of v onto the line spanned by u."""
    # BEGIN SOLUTION
    return (v @ u) / (u @ u) * u
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_function, passed

check_function(
    project,
    [
        ((np.array([2.0, 1.0]), np.array([1.0, 0.0])), np.array([2.0, 0.0])),
        ((np.array([1.0, 1.0]), np.array([2.0, 2.0])), np.array([1.0, 1.0])),
        ((np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 5.0])), np.array([0.0, 0.0, 3.0])),
    ],
    "project",
)
v_test, u_test = np.array([0.3, -1.2, 2.0, 0.7]), np.array([1.0, 2.0, -0.5, 0.25])
check(abs((v_test - project(v_test, u_test)) @ u_test) < 1e-10, "project",
      "the residual v - project(v, u) to be orthogonal to u")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Multi-head attention scores with `einsum`
#
# Queries and keys for a batch of sequences and several heads have shape
# `(batch, heads, seq, d_head)`. Write `attention_scores(Q, K)` that returns the scaled scores
# $QK^\top / \sqrt{d_{head}}$ of shape `(batch, heads, seq, seq)` using a single `torch.einsum`
# call (no loops, no `@`). The check compares it with a matmul reference.

# %% tags=["solution"]
def attention_scores(Q: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product scores for every (query, key) pair, per batch and head."""
    # BEGIN SOLUTION
    return torch.einsum("bhqd,bhkd->bhqk", Q, K) / Q.shape[-1] ** 0.5
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close, check_shape

Q_test, K_test = torch.randn(2, 3, 7, 16), torch.randn(2, 3, 7, 16)
result = attention_scores(Q_test, K_test)
check_shape(result, (2, 3, 7, 7), "attention_scores")
check_close(result, Q_test @ K_test.transpose(-2, -1) / 4.0, "attention_scores", atol=1e-5)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: How much rank does the text matrix need?
#
# The share of a matrix's squared Frobenius norm that the best rank-$r$ approximation keeps is
# $\sum_{i \le r} \sigma_i^2 / \sum_i \sigma_i^2$. Write `rank_for_energy(singular_values,
# fraction)` that returns the smallest rank $r$ keeping at least `fraction` of it (singular values
# are given in decreasing order). Then set `ppmi_rank_90` to the rank the PPMI matrix needs for 90%
# and `noise_rank_90` to the rank the random matrix needs.

# %% tags=["solution"]
def rank_for_energy(singular_values: np.ndarray, fraction: float) -> int:
    """Smallest r such that the top r singular values hold `fraction` of the squared norm."""
    # BEGIN SOLUTION
    kept = np.cumsum(singular_values**2) / np.sum(singular_values**2)
    return int(np.searchsorted(kept, fraction - 1e-12) + 1)
    # END SOLUTION


ppmi_rank_90 = None
noise_rank_90 = None
# BEGIN SOLUTION
ppmi_rank_90 = rank_for_energy(S_ppmi, 0.9)
noise_rank_90 = rank_for_energy(S_noise, 0.9)
# END SOLUTION
print(f"90% of the squared norm: PPMI needs rank {ppmi_rank_90}, random needs {noise_rank_90}")

# %% tags=["check"]
from shared.exercises import check_equal

check_function(
    rank_for_energy,
    [((np.array([3.0, 2.0, 1.0]), 0.5), 1), ((np.array([3.0, 2.0, 1.0]), 0.9), 2),
     ((np.array([1.0, 1.0, 1.0, 1.0]), 1.0), 4), ((np.array([2.0, 0.0]), 1.0), 1)],
    "rank_for_energy",
    exact=True,
)
energy = np.cumsum(S_ppmi**2) / np.sum(S_ppmi**2)
check_equal(ppmi_rank_90, int(np.argmax(energy >= 0.9)) + 1, "ppmi_rank_90")
check(noise_rank_90 is not None and noise_rank_90 > ppmi_rank_90, "noise_rank_90",
      "the random matrix to need a higher rank than the text matrix")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: The parameter budget of LoRA
#
# For a weight of shape $d \times k$, a LoRA update of rank $r$ trains $r(d + k)$ numbers. Write
# `lora_savings(d, k, r)` returning the fraction of the full matrix's parameters that the update
# trains, $r(d+k)/(dk)$. Then set `largest_rank_under_1pct` to the largest rank whose update
# trains less than 1% of a $4096 \times 4096$ matrix (a projection in a 7B-parameter model).

# %% tags=["solution"]
def lora_savings(d: int, k: int, r: int) -> float:
    """Fraction of a d x k matrix's parameters trained by a rank-r LoRA update."""
    # BEGIN SOLUTION
    return r * (d + k) / (d * k)
    # END SOLUTION


largest_rank_under_1pct = None
# BEGIN SOLUTION
largest_rank_under_1pct = max(r for r in range(1, 4097) if lora_savings(4096, 4096, r) < 0.01)
# END SOLUTION

# %% tags=["check"]
check_function(lora_savings, [((512, 512, 8), 0.03125), ((4096, 1024, 16), 16 * 5120 / (4096 * 1024))],
               "lora_savings")
check_equal(largest_rank_under_1pct, 20, "largest_rank_under_1pct")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Tokens are vectors; layers are matrices; a batch of them is a tensor whose last axis a linear
#   layer contracts. `einsum` names the axes and makes batched products explicit.
# - Norms measure size, dot products mix size and direction, and cosine similarity compares
#   directions. A table of all pairwise similarities is one matrix product.
# - A projection reads out how much of one direction a vector holds; the residual is orthogonal.
# - Dot products of random $d$-dimensional vectors grow like $\sqrt{d}$, which is why attention
#   scales its scores by $1/\sqrt{d_k}$ (measured above).
# - The SVD gives the best rank-$r$ approximation (Eckart-Young). Text statistics put more of
#   their mass in the leading directions than noise does; LoRA bets that weight updates are
#   close to low-rank and trains $r(d+k)$ instead of $dk$ parameters.
# - Attention is $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$: two matrix products and a softmax, equal
#   to PyTorch's `scaled_dot_product_attention` to within float rounding.
#
# Next in this module: [probability for language models](02-probability), where the softmax
# becomes a distribution over the next token.
#
# ## References
#
# - G. Sanderson (3Blue1Brown), *Essence of linear algebra* (video series).
#   https://www.youtube.com/playlist?list=PLZHQObOWTQDPD3MizzM2xVFitgF8hE_ab
# - M. P. Deisenroth, A. A. Faisal, C. S. Ong, *Mathematics for Machine Learning*, Cambridge
#   University Press, 2020, chapters 2-4. https://mml-book.github.io/
# - C. Eckart, G. Young, "The approximation of one matrix by another of lower rank",
#   *Psychometrika* 1, 1936. https://doi.org/10.1007/BF02288367
# - O. Levy, Y. Goldberg, "Neural word embedding as implicit matrix factorization", NeurIPS 2014.
#   https://papers.nips.cc/paper/2014/hash/feab05aa91085b7a8012516bc3533958-Abstract.html
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - E. J. Hu et al., "LoRA: Low-rank adaptation of large language models", 2021.
#   https://arxiv.org/abs/2106.09685
