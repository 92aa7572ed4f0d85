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
# # Probability for language models
#
# A language model is a probability distribution. Given the text so far, it assigns a probability
# to every possible next token; training makes the observed text as likely as possible, evaluation
# asks how surprised the model is by text it has not seen, and generation draws tokens from the
# distribution, usually after sharpening or flattening it with a temperature. Every one of those
# words (likelihood, surprise, temperature) has a precise meaning, and this notebook makes each one
# concrete on the course corpus with the simplest language model there is: a character bigram
# model, built from counts and then learned by gradient descent.
#
# **Learning objectives**
# - Treat a next-token prediction as a categorical distribution; turn scores (logits) into
#   probabilities with the softmax, and control its sharpness with a temperature.
# - Compute entropy, cross-entropy and KL divergence, and show numerically that
#   $\mathrm{KL}(p \,\|\, q) = H(p, q) - H(p)$.
# - Explain why the maximum-likelihood estimate of a categorical distribution is the normalised
#   counts, and watch gradient descent on the negative log-likelihood arrive at the same answer.
# - Build a character bigram model of Shakespeare, measure its validation perplexity against
#   uniform and unigram baselines, and sample from it at several temperatures.
#
# **Prerequisites:** [Linear algebra for language models](01-linear-algebra), where the softmax
# first appears inside attention. Logarithms and sums; no probability course is assumed.
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
from shared.paths import data_file

shared.seed_everything(0)
print(shared.environment_summary("numpy", "matplotlib"))
# The computations here are small: splitting each operation over several threads costs more in
# coordination than it saves, so we use one.
torch.set_num_threads(1)

# %% [markdown]
# ## Text as a sequence of symbols
#
# The course corpus is tiny Shakespeare: 1.1 million characters of the plays. We model it one
# character at a time, so the vocabulary is the set of distinct characters and every character
# becomes an integer id. As in nanoGPT, the first 90% is the training split and the last 10% the
# validation split: the model is fitted on one and judged on the other.

# %%
text = data_file("tinyshakespeare.txt").read_text(encoding="utf-8")
chars = sorted(set(text))
V = len(chars)
stoi = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([stoi[c] for c in text])
n_train = int(0.9 * len(ids))
train_ids, val_ids = ids[:n_train], ids[n_train:]


def show(c: str) -> str:
    """A printable name for a character (newline and space are otherwise invisible)."""
    return {"\n": "\\n", " ": "' '"}.get(c, c)


print(f"{len(text):,} characters, vocabulary of V = {V}: {''.join(chars)!r}")
print(f"train {len(train_ids):,} characters, validation {len(val_ids):,}")

# %% [markdown]
# ## Distributions: the unigram model
#
# A *categorical distribution* over $V$ outcomes is a vector $p$ with $p_i \ge 0$ and
# $\sum_i p_i = 1$. The simplest model of text ignores context altogether and says that each
# character is drawn independently from one such distribution, the *unigram* model. Its natural
# estimate is the relative frequency of each character in the training text,
# $\hat p_c = n_c / N$; we will see below that this is the maximum-likelihood estimate.

# %%
unigram_counts = torch.bincount(train_ids, minlength=V).double()
unigram = unigram_counts / unigram_counts.sum()
top = torch.argsort(unigram, descending=True)[:20]

fig, ax = plt.subplots(figsize=(9, 3.2))
ax.bar([show(chars[i]) for i in top], unigram[top].numpy())
ax.set(xlabel="character", ylabel="probability",
       title="Unigram distribution: the 20 most frequent characters")
plt.show()
print(f"p(' ') = {unigram[stoi[' ']]:.3f}, p('e') = {unigram[stoi['e']]:.3f}, "
      f"p('z') = {unigram[stoi['z']]:.5f}; sum = {unigram.sum():.6f}")

# %% [markdown]
# *Sampling* draws outcomes with these probabilities; `torch.multinomial` does it. The empirical
# frequencies of $n$ samples approach $p$ as $n$ grows, and the error shrinks like $1/\sqrt{n}$
# (the law of large numbers, with the central limit theorem giving the rate). Here the error is
# the total variation distance $\frac12 \sum_i |\hat p_i - p_i|$.

# %%
generator = torch.Generator().manual_seed(0)
sample_sizes = [10**k for k in range(2, 7)]
tv_distance = []
for n in sample_sizes:
    draws = torch.multinomial(unigram, n, replacement=True, generator=generator)
    empirical = torch.bincount(draws, minlength=V).double() / n
    tv_distance.append(0.5 * (empirical - unigram).abs().sum().item())
    print(f"n = {n:>9,}: total variation distance {tv_distance[-1]:.4f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(sample_sizes, tv_distance, "o-", label="measured")
ax.plot(sample_sizes, [tv_distance[0] * (sample_sizes[0] / n) ** 0.5 for n in sample_sizes], "k--",
        label="slope -1/2 (error ~ 1/sqrt(n))")
ax.set(xscale="log", yscale="log", xlabel="number of samples n", ylabel="total variation distance",
       title="Empirical frequencies converge to p")
ax.legend()
plt.show()

# %% [markdown]
# ## Softmax and temperature
#
# A neural network does not output probabilities directly; its last layer outputs one real score
# per token, the *logits* $z \in \mathbb{R}^V$. The softmax turns them into a distribution:
#
# $$\mathrm{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}} .$$
#
# Adding a constant to every logit changes nothing (it cancels), which gives the standard
# numerically safe implementation: subtract the largest logit first, so that no exponential
# overflows. Conversely, log-probabilities are valid logits: $\mathrm{softmax}(\log p) = p$.

# %%
def softmax_naive(z: torch.Tensor) -> torch.Tensor:
    return z.exp() / z.exp().sum()


def softmax_stable(z: torch.Tensor) -> torch.Tensor:
    e = (z - z.max()).exp()
    return e / e.sum()


z = torch.tensor([2.0, 1.0, 0.1])
print("softmax([2, 1, 0.1])        =", softmax_stable(z).numpy().round(4))
print("max |ours - torch.softmax|  =",
      f"{(softmax_stable(z) - torch.softmax(z, 0)).abs().max():.1e}")
print("shifted by +1000, naive     =", softmax_naive(z + 1000).numpy(), "(exp overflowed)")
print("shifted by +1000, stable    =", softmax_stable(z + 1000).numpy().round(4))
print("softmax(log p) == p:", torch.allclose(torch.softmax(unigram.log(), 0), unigram))

# %% [markdown]
# The *temperature* $T > 0$ divides the logits before the softmax,
# $p_T = \mathrm{softmax}(z / T)$. $T = 1$ leaves the distribution as it is; $T < 1$ sharpens it
# towards the most likely token (the limit $T \to 0$ is the argmax, greedy decoding); $T > 1$
# flattens it towards uniform. Below, the unigram's log-probabilities serve as logits.

# %%
temperatures = [0.5, 1.0, 2.0]
top12 = top[:12]
width = 0.27
fig, ax = plt.subplots(figsize=(9, 3.5))
for k, T in enumerate(temperatures):
    p_T = torch.softmax(unigram.log() / T, dim=0)
    ax.bar(torch.arange(12) + (k - 1) * width, p_T[top12].numpy(), width, label=f"T = {T}")
ax.set_xticks(range(12), [show(chars[i]) for i in top12])
ax.set(xlabel="character", ylabel="probability",
       title="Temperature reshapes a distribution (unigram logits)")
ax.legend()
plt.show()

# %% [markdown]
# ## Entropy
#
# How uncertain is a distribution? Shannon's *entropy*
#
# $$H(p) = -\sum_i p_i \log p_i$$
#
# is the average surprise $-\log p_i$ of an outcome. With $\log_2$ it is measured in bits, with
# the natural log in nats ($1 \text{ nat} = 1/\ln 2 \approx 1.443$ bits). By Shannon's source
# coding theorem it is also the smallest average number of bits per symbol that any code can
# achieve. It is 0 for a certain outcome and largest, $\log V$, for the uniform distribution.
# The convention $0 \log 0 = 0$ handles outcomes with zero probability.

# %%
def entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of the distributions along the last axis (0 log 0 = 0)."""
    return torch.where(p > 0, -p * p.log(), torch.zeros_like(p)).sum(-1)


uniform = torch.full((V,), 1.0 / V, dtype=torch.float64)
one_hot = torch.zeros(V, dtype=torch.float64)
one_hot[stoi["e"]] = 1.0
for name, p in [("uniform", uniform), ("unigram", unigram), ("one-hot", one_hot)]:
    print(f"H({name:7s}) = {entropy(p):.4f} nats = {entropy(p) / math.log(2):.4f} bits")
print(f"log2(V) = {math.log2(V):.4f} bits: the uniform distribution attains the maximum")

# %% [markdown]
# ## Cross-entropy and KL divergence
#
# A model $q$ judged on data drawn from $p$ pays, on average, the *cross-entropy*
#
# $$H(p, q) = -\sum_i p_i \log q_i ,$$
#
# the average surprise of the model at outcomes from $p$ (in coding terms: the bits per symbol
# of a code designed for $q$ and used on data from $p$). The excess over the best possible,
# $H(p)$, is the *Kullback-Leibler divergence*
#
# $$\mathrm{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i} = H(p, q) - H(p) \;\ge\; 0,$$
#
# which is zero only when $q = p$ (Gibbs' inequality). KL is not symmetric and not a distance.
#
# Take $p$ to be the character frequencies of the *validation* text and compare two models: the
# unigram fitted on the training text and the uniform distribution. We check the identity and
# compare with PyTorch's two implementations. Note the argument order of `F.kl_div`: it takes the
# model's *log*-probabilities first and the target distribution second, the reverse of the
# mathematical notation.

# %%
val_counts = torch.bincount(val_ids, minlength=V).double()
p_val = val_counts / val_counts.sum()


def cross_entropy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """H(p, q) in nats; terms with p_i = 0 contribute nothing."""
    return -torch.where(p > 0, p * q.log(), torch.zeros_like(p)).sum(-1)


for name, q in [("train unigram", unigram), ("uniform", uniform)]:
    h_pq, h_p = cross_entropy(p_val, q), entropy(p_val)
    kl_torch = torch.distributions.kl_divergence(
        torch.distributions.Categorical(probs=p_val), torch.distributions.Categorical(probs=q))
    kl_functional = F.kl_div(q.log(), p_val, reduction="sum")
    print(f"q = {name:13s}: H(p,q) = {h_pq:.5f}, H(p) = {h_p:.5f}, H(p,q) - H(p) = {h_pq - h_p:.5f}"
          f" | torch KL = {kl_torch:.5f}, F.kl_div = {kl_functional:.5f}")

kl_forward = torch.distributions.kl_divergence(
    torch.distributions.Categorical(probs=p_val), torch.distributions.Categorical(probs=uniform))
kl_reverse = torch.distributions.kl_divergence(
    torch.distributions.Categorical(probs=uniform), torch.distributions.Categorical(probs=p_val))
print(f"asymmetry: KL(p_val || uniform) = {kl_forward:.4f}, "
      f"KL(uniform || p_val) = {kl_reverse:.4f}")

# %% [markdown]
# The unigram fitted on the first 90% describes the last 10% closely (a KL of about a hundredth
# of a nat); the uniform model wastes about 0.84 nats per character. The reverse divergence
# $\mathrm{KL}(\text{uniform} \,\|\, p_{\text{val}})$ is infinite: a few characters never occur in
# the validation text, and the uniform distribution puts mass on them. Training a language model
# means making this excess small, on text the model has not seen.

# %% [markdown]
# ## Maximum likelihood
#
# Suppose the training text $x_1, \dots, x_N$ was drawn from a categorical distribution with
# unknown parameters $\theta$. The *likelihood* of $\theta$ is the probability it gives the data,
# $\prod_t \theta_{x_t} = \prod_c \theta_c^{n_c}$, and the *maximum-likelihood estimate* (MLE) is
# the $\theta$ that makes it largest. Taking logs and dividing by $-N$ turns this into minimising
# the average *negative log-likelihood* (NLL), which is a cross-entropy:
#
# $$-\frac{1}{N} \log \prod_c \theta_c^{n_c} = -\sum_c \hat p_c \log \theta_c = H(\hat p, \theta)
# = H(\hat p) + \mathrm{KL}(\hat p \,\|\, \theta), \qquad \hat p_c = \frac{n_c}{N}.$$
#
# $H(\hat p)$ does not depend on $\theta$ and KL is zero only at $\theta = \hat p$, so the MLE is
# the normalised counts. The NLL it reaches, $H(\hat p)$, is the floor that no choice of $\theta$
# can go below. Minimising cross-entropy loss, the objective of every language model in this
# course, is maximum likelihood.
#
# A network parametrises $\theta = \mathrm{softmax}(z)$ with free logits $z$, and the gradient of
# the NLL with respect to the logits is remarkably simple:
#
# $$\frac{\partial}{\partial z_c} H\big(\hat p, \mathrm{softmax}(z)\big)
# = \mathrm{softmax}(z)_c - \hat p_c ,$$
#
# "predicted minus observed". It vanishes exactly at the counts. Autograd agrees:

# %%
logits = torch.randn(V, dtype=torch.float64, requires_grad=True)
nll = cross_entropy(unigram, torch.softmax(logits, 0))
nll.backward()
by_formula = torch.softmax(logits, 0) - unigram
print("max |autograd gradient - (softmax(z) - p_hat)| =",
      f"{(logits.grad - by_formula).abs().max():.1e}")

# %% [markdown]
# ## A bigram language model
#
# The unigram model ignores context. A *bigram* model conditions on the previous character:
# $p(x_t \mid x_{t-1})$, one categorical distribution per previous character, a $V \times V$
# table whose rows sum to 1. Its likelihood factorises row by row, so the argument above applies
# to each row: the MLE is the matrix of bigram counts $C_{ab}$ (how often $b$ follows $a$)
# normalised per row.
#
# Counts have a flaw: a pair never seen in training gets probability exactly zero, and a single
# such pair in the validation text makes its likelihood zero and its cross-entropy infinite.
# *Add-$\alpha$ smoothing* (Laplace smoothing for $\alpha = 1$) pretends every pair was seen
# $\alpha$ extra times:
#
# $$p_\alpha(b \mid a) = \frac{C_{ab} + \alpha}{\sum_{b'} C_{ab'} + \alpha V}.$$

# %%
def bigram_counts(x: torch.Tensor) -> torch.Tensor:
    """V x V matrix: entry [a, b] counts how often character b follows character a in x."""
    return torch.bincount(x[:-1] * V + x[1:], minlength=V * V).view(V, V).double()


def bigram_model(counts: torch.Tensor, alpha: float) -> torch.Tensor:
    """Add-alpha smoothed conditional probabilities p(b | a), rows summing to 1."""
    smoothed = counts + alpha
    return smoothed / smoothed.sum(dim=1, keepdim=True)


train_counts, val_counts_2d = bigram_counts(train_ids), bigram_counts(val_ids)
unseen = train_counts == 0
print(f"{int(unseen.sum())} of {V * V} possible pairs never occur in the training text")
print(f"{int(val_counts_2d[unseen].sum())} validation pairs are among them: with alpha = 0 their "
      "probability is 0 and the validation cross-entropy is infinite")

ALPHA = 1.0
P = bigram_model(train_counts, ALPHA)
print("rows sum to 1:", torch.allclose(P.sum(1), torch.ones(V, dtype=torch.float64)))
for a in ["q", "."]:
    best = torch.argsort(P[stoi[a]], descending=True)[:4]
    print(f"after {a!r}: " + ", ".join(f"{show(chars[b])} {P[stoi[a], b]:.3f}" for b in best))

# %%
shown = [c for c in "\n !',.:;?abcdefghijklmnopqrstuvwxyz" if c in stoi]
rows = torch.tensor([stoi[c] for c in shown])
fig, ax = plt.subplots(figsize=(8, 7))
im = ax.imshow(P[rows][:, rows].log10().numpy(), cmap="magma")
ax.set_xticks(range(len(shown)), [show(c) for c in shown], fontsize=7)
ax.set_yticks(range(len(shown)), [show(c) for c in shown], fontsize=7)
ax.set(xlabel="next character b", ylabel="previous character a",
       title="Bigram model log10 p(b | a) (subset of the vocabulary)")
fig.colorbar(im, ax=ax, label="log10 probability")
plt.tight_layout()
plt.show()

# %% [markdown]
# The structure of English spelling is visible: after "q" almost only "u"; after a full stop,
# a newline or a space; vowels follow most consonants.
#
# ## Cross-entropy and perplexity on held-out text
#
# The model's validation cross-entropy is the average NLL of each validation character given
# the one before it, $-\frac{1}{N}\sum_t \log p(x_t \mid x_{t-1})$. Its exponential is the
# *perplexity*,
#
# $$\mathrm{PPL} = \exp\big(H(p, q)\big),$$
#
# the number of equally likely choices that would leave the model as uncertain as it is on
# average: a uniform model over $k$ outcomes has perplexity exactly $k$. Dividing the
# cross-entropy by $\ln 2$ gives *bits per character*.
#
# We compute the bigram model's cross-entropy by hand and check it against
# `torch.nn.functional.cross_entropy`, which takes logits (the log-probabilities serve) and the
# target ids.

# %%
prev, nxt = val_ids[:-1], val_ids[1:]
log_P = P.log()
ce_by_hand = -log_P[prev, nxt].mean()
ce_torch = F.cross_entropy(log_P[prev], nxt)
print(f"bigram validation cross-entropy: by hand {ce_by_hand:.6f}, F.cross_entropy {ce_torch:.6f}, "
      f"difference {abs(ce_by_hand - ce_torch):.1e}")

models = {
    "uniform": -math.log(1.0 / V),
    "unigram": -unigram.log()[nxt].mean().item(),
    "bigram": ce_by_hand.item(),
}
print(f"\n{'model':8s} {'nats/char':>10s} {'bits/char':>10s} {'perplexity':>11s}")
for name, ce in models.items():
    print(f"{name:8s} {ce:10.4f} {ce / math.log(2):10.4f} {math.exp(ce):11.2f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(list(models), [math.exp(ce) for ce in models.values()],
       color=["tab:gray", "tab:blue", "tab:orange"])
for i, ce in enumerate(models.values()):
    ax.text(i, math.exp(ce) + 0.8, f"{math.exp(ce):.1f}", ha="center")
ax.set(xlabel="model", ylabel="validation perplexity",
       title="One character of context cuts perplexity from 65 to 12")
plt.show()

# %% [markdown]
# The uniform model's perplexity equals the vocabulary size, 65. Knowing character frequencies
# brings it to about 28, and one character of context to about 12: on average the bigram model
# hesitates between 12 characters. Shannon (1951) estimated that people predicting English with
# long context need only about 1 bit per character; the gap between that and the bigram's 3.6
# bits is what longer contexts, and the transformers of later modules, are for.

# %% [markdown]
# ## The same model, learned by gradient descent
#
# A neural language model (Bengio et al., 2003) replaces the count table by a network that maps
# the context to logits, trained by minimising the cross-entropy. The simplest such network for
# one character of context is a $V \times V$ matrix $W$ of logits: row $a$ is
# $\mathrm{softmax}(W_a) = p(\cdot \mid a)$. By the argument of the maximum-likelihood section,
# gradient descent on the training cross-entropy should drive each row of $\mathrm{softmax}(W)$
# to the row-normalised training counts, and the loss to the floor of the unsmoothed MLE.
#
# Evaluating the loss over all 1 million training pairs at every step would be slow. It is not
# needed: the loss only depends on how often each pair occurs, so
# $\frac{1}{N}\sum_t -\log p(x_t \mid x_{t-1}) = -\frac{1}{N}\sum_{a,b} C_{ab} \log p(b \mid a)$.
# We check this identity once, with a random $W$, against the average over the actual pairs.

# %%
def count_weighted_nll(W: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Average NLL of all pairs in `counts` under p(b | a) = softmax(W[a])[b]."""
    return -(counts * torch.log_softmax(W, dim=1)).sum() / counts.sum()


W = torch.zeros(V, V, dtype=torch.float64, requires_grad=True)
W_probe = torch.randn(V, V, dtype=torch.float64)
over_pairs = -torch.log_softmax(W_probe, dim=1)[train_ids[:-1], train_ids[1:]].mean()
print(f"loss over all {len(train_ids) - 1:,} pairs {over_pairs:.6f}, "
      f"from the count matrix {count_weighted_nll(W_probe, train_counts):.6f}")

mle = bigram_model(train_counts, 0.0)  # unsmoothed: the maximum-likelihood estimate
floor = -(train_counts[~unseen] * mle[~unseen].log()).sum() / train_counts.sum()
optimizer = torch.optim.Adam([W], lr=0.5)
losses, gaps = [], []
for step in range(200):
    loss = count_weighted_nll(W, train_counts)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    gaps.append((torch.softmax(W.detach(), 1) - mle).abs().max().item())

learned_val = -torch.log_softmax(W.detach(), 1)[prev, nxt].mean().item()
print(f"training loss after 200 steps {losses[-1]:.5f}; the MLE floor H(p_hat) is {floor:.5f}")
print(f"max |softmax(W) - normalised counts| = {gaps[-1]:.4f}")
print(f"validation perplexity: learned {math.exp(learned_val):.3f}, counts with alpha = 1 "
      f"{math.exp(models['bigram']):.3f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].plot(losses, label="training loss (cross-entropy)")
axes[0].axhline(floor.item(), color="k", ls="--", label="floor: NLL of the count MLE")
axes[0].set(xlabel="step", ylabel="nats per character", ylim=(floor.item() - 0.1, 4.3),
            title="Gradient descent reaches the MLE floor")
axes[0].legend()
axes[1].plot(gaps)
axes[1].set(yscale="log", xlabel="step", ylabel="max |softmax(W) - counts / row sum|",
            title="The learned table converges to the counts")
plt.tight_layout()
plt.show()

# %% [markdown]
# The training loss settles on the floor, and the learned table ends within a few
# ten-thousandths of the count table. Its validation perplexity (12.02) is close to that of the
# smoothed counts (11.96): pairs never seen in training keep a small but non-zero probability
# after finitely many steps, an implicit smoothing. What gradient descent
# buys is not a better bigram model but generality: the same loss and the same update train a
# network whose context is hundreds of tokens long, for which no count table could ever be
# filled.

# %% [markdown]
# ## Sampling, and what temperature does to it
#
# To generate text, start from a character, draw the next one from $p(\cdot \mid a)$, append it,
# and repeat. With a temperature, the row's log-probabilities are divided by $T$ before the
# softmax. Greedy decoding, always taking the most likely character, is the limit $T \to 0$.

# %%
def sample(log_probs: torch.Tensor, length: int, temperature: float, start: str,
           seed: int = 0) -> str:
    """Sample `length` characters from a bigram table of log-probabilities at a temperature."""
    generator = torch.Generator().manual_seed(seed)
    current, out = stoi[start], []
    for _ in range(length):
        if temperature == 0.0:
            current = int(log_probs[current].argmax())
        else:
            probs = torch.softmax(log_probs[current] / temperature, dim=0)
            current = int(torch.multinomial(probs, 1, generator=generator))
        out.append(chars[current])
    return "".join(out)


print("--- greedy (T -> 0), starting from 't' ---")
print(sample(log_P, 60, 0.0, start="t"))
for T in [0.5, 1.0, 1.5]:
    print(f"--- T = {T}, starting from a newline ---")
    print(sample(log_P, 240, T, start="\n", seed=1))

# %% [markdown]
# Greedy decoding falls into a loop ("the the the ..."), because the bigram's most likely successor
# chain is a cycle. (Started from a newline it would print newlines forever: the most likely
# character after a newline is another newline.) The three samples use the same random seed, so
# their differences come from the temperature alone. At $T = 0.5$ the text is made of frequent short
# words; at $T = 1$ it has the model's own statistics (word-like fragments, speaker names, line
# breaks), and at $T = 1.5$ rare characters and unpronounceable strings appear. Temperature trades
# diversity for plausibility, and we can measure both.
#
# ## Entropy and cross-entropy against temperature
#
# For each temperature we compute two numbers, both averaged over the previous characters of
# the validation text:
# - the *entropy* of the tempered next-character distribution: how random the samples are;
# - the *cross-entropy* of the tempered model on the validation text: how well it predicts real
#   text.

# %%
T_grid = torch.logspace(math.log10(0.1), math.log10(5.0), 60, dtype=torch.float64)
prev_weights = val_counts_2d.sum(1) / val_counts_2d.sum()  # how often each a occurs as context
entropy_bits, val_ce_bits = [], []
for T in T_grid:
    log_q = torch.log_softmax(log_P / T, dim=1)
    entropy_bits.append((prev_weights * entropy(log_q.exp())).sum().item() / math.log(2))
    val_ce = -(val_counts_2d * log_q).sum() / val_counts_2d.sum()
    val_ce_bits.append(val_ce.item() / math.log(2))

best_T = T_grid[int(torch.tensor(val_ce_bits).argmin())].item()
at_T1 = int((T_grid - 1).abs().argmin())
print(f"entropy of the model: {entropy_bits[0]:.2f} bits at T = 0.1, {entropy_bits[at_T1]:.2f} "
      f"at T = 1, {entropy_bits[-1]:.2f} at T = 5 (ceiling log2 V = {math.log2(V):.2f})")
print(f"validation cross-entropy is lowest at T = {best_T:.2f}: {min(val_ce_bits):.3f} bits/char")

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(T_grid, entropy_bits, label="entropy of the tempered model")
ax.plot(T_grid, val_ce_bits, label="cross-entropy on validation text")
ax.axhline(math.log2(V), color="gray", ls=":", label="log2 V (uniform)")
ax.axvline(1.0, color="k", ls="--", lw=1, label="T = 1")
ax.set(xscale="log", xlabel="temperature T", ylabel="bits per character", ylim=(0, 7.5),
       title="Bigram model: entropy and validation cross-entropy vs temperature")
ax.legend()
plt.show()

# %% [markdown]
# Entropy rises steadily with temperature, from almost deterministic to nearly uniform. The
# validation cross-entropy is lowest near $T = 1$, where the two curves meet: the model's own
# uncertainty matches its average surprise at real text. A maximum-likelihood model is *calibrated*
# in this sense, and any other temperature makes it predict real text worse. Lower temperatures are
# still useful for generation, where a reader may prefer plausible text to faithful statistics, but
# they are a decoding choice, not a better model. Module 11 treats decoding strategies (top-$k$,
# top-$p$) in depth.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Softmax with temperature
#
# Write `softmax_with_temperature(logits, temperature)` for a 1-D tensor of logits. It must be
# numerically safe (logits of 1,000 must not produce `nan`) and must not call `torch.softmax`
# or `F.softmax`. The check compares it with `torch.softmax(logits / T)` at several temperatures
# and verifies that lowering the temperature lowers the entropy.

# %% tags=["solution"]
def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / temperature), computed without overflow."""
    # BEGIN SOLUTION
    scaled = logits / temperature
    e = (scaled - scaled.max()).exp()
    return e / e.sum()
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, passed

test_logits = torch.tensor([3.0, -1.0, 0.5, 2.0, 0.0])
for T in [0.25, 1.0, 3.0]:
    check_close(softmax_with_temperature(test_logits, T), torch.softmax(test_logits / T, 0),
                f"softmax_with_temperature(T={T})", atol=1e-6)
check_close(softmax_with_temperature(test_logits + 1000.0, 0.5), torch.softmax(test_logits / 0.5, 0),
            "softmax_with_temperature(logits + 1000)", atol=1e-6)
check(bool(entropy(softmax_with_temperature(test_logits, 0.5))
           < entropy(softmax_with_temperature(test_logits, 2.0))),
      "softmax_with_temperature", "a lower temperature to give a lower entropy")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: KL divergence
#
# Write `kl_divergence(p, q)` returning $\mathrm{KL}(p \,\|\, q)$ in nats for two 1-D
# probability tensors, with the convention $0 \log 0 = 0$ (entries where $p_i = 0$ contribute
# nothing, even where $q_i = 0$). Then set `kl_val_from_train` to
# $\mathrm{KL}(\text{p\_val} \,\|\, \text{unigram})$, the divergence of the validation character
# frequencies from the training unigram. The check compares with
# `torch.distributions.kl_divergence`.

# %% tags=["solution"]
def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) in nats, with 0 log 0 = 0."""
    # BEGIN SOLUTION
    terms = torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p))
    return terms.sum()
    # END SOLUTION


kl_val_from_train = None
# BEGIN SOLUTION
kl_val_from_train = kl_divergence(p_val, unigram)
# END SOLUTION

# %% tags=["check"]
def reference_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return torch.distributions.kl_divergence(torch.distributions.Categorical(probs=p),
                                             torch.distributions.Categorical(probs=q))


g = torch.Generator().manual_seed(3)
for _ in range(3):
    p_test = torch.softmax(torch.randn(10, generator=g, dtype=torch.float64), 0)
    q_test = torch.softmax(torch.randn(10, generator=g, dtype=torch.float64), 0)
    check_close(kl_divergence(p_test, q_test), reference_kl(p_test, q_test), "kl_divergence",
                atol=1e-10)
check_close(kl_divergence(p_test, p_test), 0.0, "kl_divergence(p, p)", atol=1e-12)
with_zeros = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
check_close(kl_divergence(with_zeros, torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)),
            math.log(2), "kl_divergence with p_i = 0", atol=1e-12)
check_close(kl_divergence(with_zeros, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)), 0.0,
            "kl_divergence with p_i = q_i = 0", atol=1e-12)
check_close(kl_val_from_train, reference_kl(p_val, unigram), "kl_val_from_train", atol=1e-10)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Perplexity of a bigram model
#
# Write `bigram_perplexity(log_probs, ids)`: given a $V \times V$ table of log-probabilities
# (`log_probs[a, b]` $= \log p(b \mid a)$) and a 1-D tensor of character ids, return the
# perplexity of the sequence, $\exp$ of the average NLL of `ids[1:]` given `ids[:-1]`, as a
# Python float. The check uses the uniform model (whose perplexity must be $V$) and the bigram
# model of this notebook.

# %% tags=["solution"]
def bigram_perplexity(log_probs: torch.Tensor, ids: torch.Tensor) -> float:
    """exp(mean negative log-likelihood of ids[1:] given ids[:-1])."""
    # BEGIN SOLUTION
    nll = -log_probs[ids[:-1], ids[1:]].mean()
    return math.exp(nll.item())
    # END SOLUTION


# %% tags=["check"]
uniform_table = torch.full((V, V), -math.log(V), dtype=torch.float64)
check_close(bigram_perplexity(uniform_table, val_ids), float(V), "bigram_perplexity(uniform)",
            rtol=1e-9)
check_close(bigram_perplexity(log_P, val_ids), math.exp(F.cross_entropy(log_P[prev], nxt).item()),
            "bigram_perplexity(bigram, val_ids)", rtol=1e-9)
tiny = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64))
check_close(bigram_perplexity(tiny, torch.tensor([0, 1, 0])),
            math.exp(-(math.log(0.5) + math.log(0.9)) / 2), "bigram_perplexity on [0, 1, 0]",
            rtol=1e-9)
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Choose the smoothing on validation data
#
# The smoothing strength $\alpha$ is a hyperparameter: it cannot be fitted on the training text
# (there, $\alpha = 0$ always wins). For each $\alpha$ in `alphas`, build the model with
# `bigram_model(train_counts, alpha)` and measure its validation perplexity (Exercise 3 helps).
# Set `best_alpha` to the $\alpha$ with the lowest validation perplexity and `best_alpha_ppl` to
# that perplexity.

# %% tags=["solution"]
alphas = [0.001, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0]
best_alpha = None
best_alpha_ppl = None
# BEGIN SOLUTION
val_ppl = {a: bigram_perplexity(bigram_model(train_counts, a).log(), val_ids) for a in alphas}
best_alpha = min(val_ppl, key=val_ppl.get)
best_alpha_ppl = val_ppl[best_alpha]
for a, ppl in val_ppl.items():
    print(f"alpha = {a:6.3f}: validation perplexity {ppl:.3f}")
# END SOLUTION

# %% tags=["check"]
from shared.exercises import check_equal

reference_ppl = {a: math.exp(-bigram_model(train_counts, a).log()[prev, nxt].mean().item())
                 for a in alphas}
check_equal(best_alpha, min(reference_ppl, key=reference_ppl.get), "best_alpha")
check_close(best_alpha_ppl, reference_ppl[best_alpha], "best_alpha_ppl", rtol=1e-9)
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - A language model outputs a categorical distribution over the next token. Logits become
#   probabilities through the softmax, computed safely by subtracting the largest logit.
# - Entropy measures a distribution's uncertainty; cross-entropy measures a model's average
#   surprise at data; their difference is the KL divergence, which is never negative (shown
#   numerically against two PyTorch implementations).
# - The maximum-likelihood estimate of a categorical distribution is the normalised counts,
#   because the NLL equals $H(\hat p) + \mathrm{KL}(\hat p \,\|\, \theta)$. Minimising
#   cross-entropy loss is maximum likelihood, and gradient descent on logits arrived at the
#   counts.
# - Perplexity is $\exp$ of the cross-entropy, the effective number of choices. On the validation
#   text of tiny Shakespeare: uniform 65, unigram about 28, character bigram about 12.
# - Temperature divides logits before the softmax: the model's entropy grows with $T$, while its
#   validation cross-entropy is best near $T = 1$, where a maximum-likelihood model is
#   calibrated.
#
# Next in this module: [GPU essentials](03-gpu-essentials), what the hardware does with the
# matrix products that compute these distributions.
#
# ## References
#
# - C. E. Shannon, "A mathematical theory of communication", *Bell System Technical Journal* 27,
#   1948. https://doi.org/10.1002/j.1538-7305.1948.tb01338.x
# - C. E. Shannon, "Prediction and entropy of printed English", *Bell System Technical Journal*
#   30, 1951. https://doi.org/10.1002/j.1538-7305.1951.tb01366.x
# - T. M. Cover, J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley, 2006,
#   chapter 2 (entropy, relative entropy, Gibbs' inequality). https://doi.org/10.1002/047174882X
# - Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin, "A neural probabilistic language model",
#   *JMLR* 3, 2003. https://www.jmlr.org/papers/v3/bengio03a.html
# - D. Jurafsky, J. H. Martin, *Speech and Language Processing*, 3rd ed. draft, chapter 3
#   ("N-gram language models": smoothing, perplexity). https://web.stanford.edu/~jurafsky/slp3/
# - S. F. Chen, J. Goodman, "An empirical study of smoothing techniques for language modeling",
#   *Computer Speech & Language* 13, 1999. https://doi.org/10.1006/csla.1999.0128
# - A. Holtzman et al., "The curious case of neural text degeneration", ICLR 2020 (why greedy
#   decoding loops). https://arxiv.org/abs/1904.09751
# - J. Lowin, "An intuitive guide to how LLMs work".
#   https://www.jlowin.dev/blog/an-intuitive-guide-to-how-llms-work
# - A. Karpathy, nanoGPT (the character-level Shakespeare setup and its 90/10 split).
#   https://github.com/karpathy/nanoGPT
