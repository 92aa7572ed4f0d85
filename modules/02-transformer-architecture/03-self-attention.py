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
# # Self-attention: queries, keys and values
#
# Self-attention is the one operation that lets a transformer move information between
# positions. Every token asks a question (its *query*), every token advertises what it holds
# (its *key*), the match between the two decides how much each token listens to each other
# token, and what is passed along is a third vector (the *value*). This notebook computes
# attention three ways, by hand on a two-token example, by hand inside a real pretrained model,
# and with PyTorch and `transformers`, and shows they agree. Then it looks at what a real model
# attends to across several sentences, why attention alone cannot see word order, how relative
# positions fix that, and how sparse patterns cut attention's quadratic cost.
#
# **Learning objectives**
# - Compute relevance scores $QK^\top/\sqrt{d_k}$, the softmax weights and the weighted sum of
#   values, by hand and with matrix products.
# - Reproduce the attention weights and outputs of a layer of a real pretrained encoder
#   (all-MiniLM-L6-v2) from its weight matrices, and match `transformers` and PyTorch's
#   `scaled_dot_product_attention`.
# - Read attention heatmaps, and test an interpretation (coreference) instead of assuming it.
# - Show that attention without positions is permutation-equivariant, and implement relative
#   position representations (Shaw et al., 2018).
# - Build local and strided sparse attention masks and count what they save.
#
# **Prerequisites:** [Linear algebra for language models](../00-foundations/01-linear-algebra)
# (attention as matrix products, why $\sqrt{d}$), [Probability for language
# models](../00-foundations/02-probability) (softmax) and [decoder-only models](02-decoder-only)
# (masks, BERT vs GPT).
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
import warnings

# transformers imports tqdm.auto, whose notebook progress bar needs ipywidgets: silence
# its warning (progress bars are switched off below anyway).
warnings.filterwarnings("ignore", message="IProgress not found")

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import transformers

import shared
from shared.plotting import heatmap

shared.seed_everything(0)
torch.set_num_threads(1)  # small tensors: one thread avoids coordination overhead
transformers.logging.disable_progress_bar()  # no weight-loading progress bar in the output
print(shared.environment_summary("transformers", "sentence-transformers", "matplotlib"))

# %% [markdown]
# ## Relevance scoring and combining, with two tokens
#
# Attention has two steps. **Relevance scoring**: the query of the current token is compared
# with the key of every token by a dot product; a softmax turns the scores into weights that
# are positive and sum to 1. **Combining**: the output is the weighted sum of the value
# vectors. With queries, keys and values stacked as rows of matrices,
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V .$$
#
# Here is the smallest example, one query and two tokens with 2-dimensional vectors, worked
# with plain Python arithmetic first.

# %%
q = [1.0, 0.5]
keys = [[1.0, 0.5], [0.3, 0.8]]
values = [[0.2, 0.7], [0.6, 0.1]]
d_k = 2

raw_scores = [q[0] * k[0] + q[1] * k[1] for k in keys]  # 1*1 + 0.5*0.5, 1*0.3 + 0.5*0.8
scaled = [s / math.sqrt(d_k) for s in raw_scores]
exps = [math.exp(s) for s in scaled]
weights_by_hand = [e / sum(exps) for e in exps]
output_by_hand = [sum(w * v[c] for w, v in zip(weights_by_hand, values)) for c in range(2)]
print(f"scores       q.k = {raw_scores}")
print(f"scaled   q.k/sqrt(2) = {[round(s, 4) for s in scaled]}")
print(f"weights (softmax)    = {[round(w, 4) for w in weights_by_hand]}")
print(f"output = sum w_j v_j = {[round(o, 4) for o in output_by_hand]}")

Q, K, V = torch.tensor([q]), torch.tensor(keys), torch.tensor(values)
library = F.scaled_dot_product_attention(Q[None], K[None], V[None])[0]
print(f"PyTorch scaled_dot_product_attention: {library[0].tolist()}; "
      f"max difference {(library[0] - torch.tensor(output_by_hand)).abs().max():.1e}")

# %% [markdown]
# The query matches the first key better (1.25 against 0.70), so the output is pulled towards
# the first value, but not all the way: the softmax keeps some weight on the second token.
# Without the $\sqrt{d_k}$ the weights would be sharper; at realistic sizes ($d_k = 64$ or
# 128) unscaled scores grow like $\sqrt{d_k}$ and push the softmax to near one-hot, where its
# gradients vanish ([measured in module 00](../00-foundations/01-linear-algebra)).
#
# ## Queries, keys and values in a real model
#
# In a transformer layer the three roles come from three learned projections of the same
# input vectors $X \in \mathbb{R}^{T \times d}$: $Q = XW_Q + b_Q$, $K = XW_K + b_K$,
# $V = XW_V + b_V$. Separate projections let a token look for one thing (its query) while
# advertising another (its key) and handing over a third (its value). A layer has several
# *heads*: the $d$ columns are split into $h$ groups of $d_k = d/h$, and each group attends on
# its own (the subject of the [next notebook](04-multi-head-attention)).
#
# The course's pretrained encoder is all-MiniLM-L6-v2 (`shared.assets.sentence_encoder()`), a
# BERT-style model with 6 layers of width 384 and 12 heads of size 32. We run it on a sentence,
# keep every layer's input (the hidden states) and the attention weights that `transformers`
# computes, and then recompute one layer's attention from its weight matrices.

# %%
sentence_model = shared.assets.sentence_encoder()
bert = sentence_model[0].auto_model.eval()  # the underlying transformers BertModel
bert.set_attn_implementation("eager")  # the fused kernel does not return attention weights
tokenizer = sentence_model.tokenizer
n_layers, n_heads = bert.config.num_hidden_layers, bert.config.num_attention_heads
head_dim = bert.config.hidden_size // n_heads


def run_bert(sentence: str) -> tuple[list[str], object]:
    """Tokens and the model output (hidden states and attention weights of every layer)."""
    batch = tokenizer([sentence], return_tensors="pt")
    with torch.no_grad():
        out = bert(**batch, output_attentions=True, output_hidden_states=True)
    return tokenizer.convert_ids_to_tokens(batch["input_ids"][0]), out


tokens, out = run_bert("The cat sat on the mat because it was tired.")
print(tokens)
print(f"{len(out.hidden_states)} hidden states of shape {tuple(out.hidden_states[0].shape)}; "
      f"{len(out.attentions)} attention tensors of shape {tuple(out.attentions[0].shape)}")

# %% [markdown]
# Take layer 3 (index 2). Its input is `hidden_states[2]`, and its self-attention module holds
# the three projections as `nn.Linear` layers (`query`, `key`, `value`). First one head, score
# by score, with explicit loops; then all heads at once with matrix products.

# %%
LAYER, HEAD = 2, 0
attention_module = bert.encoder.layer[LAYER].attention.self
x = out.hidden_states[LAYER][0]  # (T, 384): the layer's input
T = x.shape[0]
with torch.no_grad():
    Q, K, V = attention_module.query(x), attention_module.key(x), attention_module.value(x)

# One head, by hand: the head's slice of the columns, one dot product per (query, key) pair.
cols = slice(HEAD * head_dim, (HEAD + 1) * head_dim)
scores_loop = torch.empty(T, T)
for i in range(T):
    for j in range(T):
        dot = sum(Q[i, c] * K[j, c] for c in range(cols.start, cols.stop))
        scores_loop[i, j] = dot / math.sqrt(head_dim)
weights_loop = torch.softmax(scores_loop, dim=-1)

# All heads at once: split the 384 columns into 12 heads of 32, then two batched products.
def split_heads(m: torch.Tensor) -> torch.Tensor:
    return m.view(T, n_heads, head_dim).transpose(0, 1)  # (heads, T, head_dim)


Qh, Kh, Vh = split_heads(Q), split_heads(K), split_heads(V)
weights_matmul = torch.softmax(Qh @ Kh.transpose(-2, -1) / math.sqrt(head_dim), dim=-1)
context_matmul = (weights_matmul @ Vh).transpose(0, 1).reshape(T, -1)  # heads side by side

# What the library computed: the weights transformers returned, and the module's own output.
weights_library = out.attentions[LAYER][0]
with torch.no_grad():
    context_library = attention_module(x[None])[0][0]
    context_sdpa = F.scaled_dot_product_attention(Qh, Kh, Vh).transpose(0, 1).reshape(T, -1)
print(f"head {HEAD + 1}: max |loops - transformers weights|    = "
      f"{(weights_loop - weights_library[HEAD]).abs().max():.1e}")
print(f"all heads: max |matmul - transformers weights|  = "
      f"{(weights_matmul - weights_library).abs().max():.1e}")
print(f"all heads: max |matmul - transformers output|   = "
      f"{(context_matmul - context_library).abs().max():.1e}")
print(f"all heads: max |matmul - torch SDPA output|     = "
      f"{(context_matmul - context_sdpa).abs().max():.1e}")

# %% [markdown]
# The three computations agree to float rounding: the pretrained model's attention is exactly
# the formula, applied per head. (A single sentence has no padding; with padding the library
# adds $-\infty$ to the scores of padding keys, the masks of the
# [encoder-decoder notebook](01-encoder-decoder).) After attention the layer concatenates the
# heads, applies an output projection, a residual connection and LayerNorm, then its
# feed-forward network.
#
# ## Attention heatmaps for several sentences
#
# The seed example of relevance scoring is the sentence "The cat sat on the mat because it
# was tired.": to understand "it", a model must decide between "cat" and "mat". Does MiniLM
# attend from "it" to the right noun? We test it on three sentence pairs in which one final
# word changes the correct referent (Winograd-style pairs, Levesque et al., 2012): "tired"
# makes it the cat, "soft" makes it the mat.
#
# MiniLM has $6 \times 12 = 72$ heads. Rather than browse all of them and show the prettiest,
# we choose a head by a rule stated in advance: the head in which "it" puts the most weight on
# the two candidate nouns, summed over all six sentences.

# %%
winograd = [
    ("The cat sat on the mat because it was tired.", "cat", "mat", "cat"),
    ("The cat sat on the mat because it was soft.", "cat", "mat", "mat"),
    ("The animal didn't cross the street because it was too tired.", "animal", "street", "animal"),
    ("The animal didn't cross the street because it was too wide.", "animal", "street", "street"),
    ("The trophy would not fit in the suitcase because it was too big.",
     "trophy", "suitcase", "trophy"),
    ("The trophy would not fit in the suitcase because it was too small.",
     "trophy", "suitcase", "suitcase"),
]
runs = [run_bert(sentence) for sentence, *_ in winograd]
# attention from "it" to each candidate, for every layer and head: (sentences, 2, layers, heads)
from_it = torch.stack([
    torch.stack([
        torch.stack([att[0, :, toks.index("it"), toks.index(noun)] for att in o.attentions])
        for noun in (first, second)
    ])
    for (toks, o), (_, first, second, _) in zip(runs, winograd)
])
total = from_it.sum(dim=(0, 1))  # (layers, heads)
L, H = divmod(int(total.argmax()), n_heads)
print(f"selected head: layer {L + 1}, head {H + 1} "
      f"(mean weight from 'it' to the two nouns: {total[L, H] / len(winograd):.2f})")

# %%
fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
for ax, index in zip(axes, (0, 2, 4)):
    toks, o = runs[index]
    title = f"Layer {L + 1}, head {H + 1}: '{winograd[index][0][:32]}...'"
    heatmap(o.attentions[L][0, H], toks, toks, title,
            xlabel="key (attended to)", ylabel="query (attending)", ax=ax, colorbar_label="weight")
plt.tight_layout()
plt.show()

# %% [markdown]
# In this head nearly every token, not only "it", puts most of its weight on one column: the
# subject noun ("cat", "animal", "trophy"). Now the test: does the weight from "it" follow the
# correct referent when the last word changes it?

# %%
labels, first_weights, second_weights = [], [], []
print(f"{'sentence':68s} {'correct':>8s} {'w(first)':>9s} {'w(second)':>10s}")
for (sentence, first, second, answer), w in zip(winograd, from_it[:, :, L, H]):
    print(f"{sentence:68s} {answer:>8s} {w[0]:9.2f} {w[1]:10.2f}")
    labels.append(sentence.split(" because ")[1].rstrip(".") + f"\n(it = {answer})")
    first_weights.append(w[0].item())
    second_weights.append(w[1].item())

fig, ax = plt.subplots(figsize=(11, 4))
positions = torch.arange(len(labels)).float()
ax.bar(positions - 0.2, first_weights, width=0.4, label="first noun (cat / animal / trophy)")
ax.bar(positions + 0.2, second_weights, width=0.4, label="second noun (mat / street / suitcase)")
ax.set_xticks(positions.tolist(), labels, fontsize=8)
ax.set(xlabel="ending of the sentence (and the correct referent of 'it')",
       ylabel="attention weight from 'it'",
       title=f"Layer {L + 1}, head {H + 1}: where does 'it' look?")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the pairs, not the single sentences. In all three pairs this head sends "it" to the
# *first* noun, the subject, whichever noun the last word makes correct: the weights hardly
# move between "tired" and "soft", or between "big" and "small". So this head implements
# something like "a pronoun looks at the subject", a heuristic that is right for three of these
# sentences and wrong for the other three; it is not coreference resolution. Winograd pairs are
# built to defeat exactly such heuristics.
# An attention heatmap shows where information *can* flow; what the model does with it must be
# tested, as here (Jain and Wallace, 2019; Clark et al., 2019).
#
# ## Attention alone does not see word order
#
# Nothing in $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ refers to positions. Permute the input
# rows and the outputs are permuted the same way, and otherwise unchanged: attention is
# *permutation-equivariant*. We check it with the real layer-3 projections of MiniLM, applied
# to the word embeddings without their position embeddings.

# %%
word_vectors = bert.embeddings.word_embeddings(tokenizer(["the dog bit the man"],
                                                        return_tensors="pt")["input_ids"])[0]


def attend(x: torch.Tensor) -> torch.Tensor:
    """Multi-head self-attention of MiniLM's layer 3 (no output projection), for (T, 384)."""
    t = x.shape[0]
    q, k, v = (proj(x).view(t, n_heads, head_dim).transpose(0, 1)
               for proj in (attention_module.query, attention_module.key, attention_module.value))
    return F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(t, -1)


permutation = torch.tensor([0, 1, 5, 3, 4, 2, 6])  # swap "dog" and "man"
with torch.no_grad():
    original, permuted = attend(word_vectors), attend(word_vectors[permutation])
print("max |attend(X[perm]) - attend(X)[perm]| = "
      f"{(permuted - original[permutation]).abs().max():.1e}")

# %% [markdown]
# "The dog bit the man" and "the man bit the dog" give the same set of output vectors. That is
# why every transformer injects positions somewhere. BERT and MiniLM add a learned absolute
# position embedding to each token before the first layer; the original transformer added
# fixed sinusoids. The [positional encoding](05-positional-encoding) notebook compares
# sinusoidal, learned, ALiBi and rotary encodings in detail.
#
# ## Relative positions
#
# Shaw et al. (2018) put positions inside attention instead, as *relative* distances. Each
# clipped distance $r = \mathrm{clip}(j - i, -k, k)$ has two learned vectors $a^K_r$ and
# $a^V_r$ of size $d_k$, added to the key and to the value that query $i$ sees at position $j$:
#
# $$e_{ij} = \frac{q_i \cdot (k_j + a^K_{j-i})}{\sqrt{d_k}}, \qquad
# z_i = \sum_j \alpha_{ij}\,(v_j + a^V_{j-i}), \qquad \alpha_{ij} = \mathrm{softmax}_j(e_{ij}).$$
#
# Only $2(2k+1)$ vectors are needed whatever the sequence length, and the model sees "three
# to the left" the same way at every position. Here it is twice, with loops over $(i, j)$ and
# vectorised with an index matrix, for one head.

# %%
def relative_index(T: int, max_distance: int) -> torch.Tensor:
    """(T, T) matrix of clip(j - i, -k, k) + k: which relative embedding each pair uses."""
    distance = torch.arange(T)[None, :] - torch.arange(T)[:, None]
    return distance.clamp(-max_distance, max_distance) + max_distance


def relative_attention_loops(q, k, v, a_key, a_value, max_distance):
    """Relative-position attention for one head, one (query, key) pair at a time."""
    T, d = q.shape
    out = torch.zeros(T, d)
    for i in range(T):
        r = [max(-max_distance, min(max_distance, j - i)) + max_distance for j in range(T)]
        scores = torch.stack([q[i] @ (k[j] + a_key[r[j]]) for j in range(T)]) / math.sqrt(d)
        alpha = torch.softmax(scores, dim=0)
        for j in range(T):
            out[i] += alpha[j] * (v[j] + a_value[r[j]])
    return out


def relative_attention(q, k, v, a_key, a_value, max_distance):
    """Vectorised relative-position attention (Shaw et al., 2018) for one head."""
    T, d = q.shape
    rel = relative_index(T, max_distance)                 # (T, T)
    content = q @ k.T                                      # q_i . k_j
    position = torch.einsum("id,ijd->ij", q, a_key[rel])   # q_i . a^K_{j-i}
    alpha = torch.softmax((content + position) / math.sqrt(d), dim=-1)
    return alpha @ v + torch.einsum("ij,ijd->id", alpha, a_value[rel])


T_rel, d_rel, k_max = 9, 16, 3
q_r, k_r, v_r = torch.randn(3, T_rel, d_rel).unbind(0)
a_key, a_value = torch.randn(2, 2 * k_max + 1, d_rel).unbind(0)
loops = relative_attention_loops(q_r, k_r, v_r, a_key, a_value, k_max)
vectorised = relative_attention(q_r, k_r, v_r, a_key, a_value, k_max)
print(f"max |loops - vectorised| = {(loops - vectorised).abs().max():.1e}")
print("relative index matrix (k = 3):\n", relative_index(7, 3))

# %% [markdown]
# The index matrix is constant along every diagonal (a Toeplitz matrix): the pair (2, 4) uses
# the same embedding as (5, 7). Two consequences can be measured. First, order now matters:
# the permutation test above fails. Second, with the position term alone (the same query at
# every position), the scores are constant along every diagonal: every query sees the same
# pattern relative to itself.

# %%
swap = torch.tensor([0, 5, 2, 3, 4, 1, 6, 7, 8])
permuted_rel = relative_attention(q_r[swap], k_r[swap], v_r[swap], a_key, a_value, k_max)
print(f"relative attention, max |attend(X[perm]) - attend(X)[perm]| = "
      f"{(permuted_rel - vectorised[swap]).abs().max():.2f}  (not equivariant any more)")

same_query = torch.randn(d_rel).expand(T_rel, d_rel)
position_scores = torch.einsum("id,ijd->ij", same_query, a_key[relative_index(T_rel, k_max)])
print(f"max |score(i, j) - score(i + 1, j + 1)| = "
      f"{(position_scores[:-1, :-1] - position_scores[1:, 1:]).abs().max():.1e}")
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
heatmap(relative_index(T_rel, k_max), None, None, "Relative index clip(j - i, -3, 3) + 3",
        xlabel="key position j", ylabel="query position i", ax=axes[0],
        colorbar_label="embedding index")
heatmap(position_scores, None, None, "Scores from the position term alone",
        xlabel="key position j", ylabel="query position i", ax=axes[1],
        colorbar_label="q . a_K(j - i)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Each row of the right-hand map is the row above shifted one step to the right: the
# position part of the score depends on $j - i$ only. Later models simplified the idea: T5
# learns one scalar bias per (bucketed) distance and head (Raffel et al., 2020), ALiBi uses a
# fixed linear penalty (Press et al., 2022), and rotary embeddings make $q_i \cdot k_j$ itself
# depend on $j - i$ by rotating queries and keys (Su et al., 2021).
#
# ## Sparse attention: fewer pairs
#
# Full self-attention scores all $T^2$ pairs, which dominates the cost for long inputs. Sparse
# attention keeps a fixed subset. Two classic patterns, both causal here:
#
# - **local** (sliding window): each token attends to the $w$ most recent tokens
#   (Longformer's local attention, Beltagy et al., 2020; Mistral 7B's sliding window, Jiang et
#   al., 2023);
# - **strided**: in addition, every $s$-th token further back (Child et al., 2019), so that
#   information can travel far in two hops.
#
# Masks are all it takes: a boolean matrix of allowed pairs, passed to attention.

# %%
def local_mask(T: int, window: int) -> torch.Tensor:
    """Causal sliding window: query i may attend to keys i - window + 1 .. i."""
    distance = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # i - j
    return (distance >= 0) & (distance < window)


T_sparse, window = 24, 4
masks = {"causal (full)": torch.ones(T_sparse, T_sparse, dtype=torch.bool).tril(),
         f"local, window {window}": local_mask(T_sparse, window)}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax, (name, mask) in zip(axes, masks.items()):
    heatmap(mask.float(), None, None, f"{name}: {int(mask.sum())} of {T_sparse**2} pairs",
            xlabel="key position j", ylabel="query position i", ax=ax, cmap="Greys",
            colorbar_label="1 = may attend")
plt.tight_layout()
plt.show()

# Attention with a sparse mask is ordinary attention with the other scores at -inf.
q_s, k_s, v_s = torch.randn(3, 1, T_sparse, 16).unbind(0)
scores_s = q_s @ k_s.transpose(-2, -1) / 4.0  # head size 16
scores_s = scores_s.masked_fill(~local_mask(T_sparse, window), float("-inf"))
by_hand_s = torch.softmax(scores_s, dim=-1) @ v_s
sdpa_s = F.scaled_dot_product_attention(q_s, k_s, v_s, attn_mask=local_mask(T_sparse, window))
# shared.attention has the same pattern and a kernel that only visits key blocks inside the band.
library_mask = shared.attention.sliding_window_mask(T_sparse, window, causal=True)
library_s = shared.attention.sliding_window_attention(q_s[None], k_s[None], v_s[None], window,
                                                      causal=True)[0]
same_mask = torch.equal(local_mask(T_sparse, window), library_mask)
print(f"local_mask == shared.attention.sliding_window_mask: {same_mask}")
print(f"max |by hand - SDPA with the mask|       = {(by_hand_s - sdpa_s).abs().max():.1e}")
print(f"max |by hand - sliding_window_attention| = {(by_hand_s - library_s).abs().max():.1e}")
for T_long in (1_024, 8_192, 65_536):
    full = T_long * (T_long + 1) // 2
    local = sum(min(i + 1, 512) for i in range(T_long))
    print(f"T = {T_long:6,d}: causal pairs {full:14,d}; "
          f"window 512: {local:12,d} ({local / full:.1%})")

# %% [markdown]
# A mask alone saves no time: a dense kernel still computes every score and then discards
# most. The saving comes from kernels that skip the masked blocks, such as
# `shared.attention.sliding_window_attention` above, which gives the same output. The pair
# counts are what such kernels can save: with a window of 512, a 64k-token sequence needs
# 1.6% of the scores of full causal attention.

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Relevance scoring and combining
#
# Write `relevance_and_combine(Q, K, V, scale=True)` for tensors of shape `(n_queries, d)`,
# `(n_keys, d)` and `(n_keys, d_v)`. Return `(weights, output)`: the softmax weights
# `(n_queries, n_keys)` of the scores $QK^\top$, divided by $\sqrt{d}$ when `scale` is true, and
# the output `weights @ V`. Use matrix products, not loops. The check uses the two-token example
# from the top of the notebook and random inputs.

# %% tags=["solution"]
def relevance_and_combine(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                          scale: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax relevance weights and the combined values."""
    # BEGIN SOLUTION
    scores = Q @ K.T
    if scale:
        scores = scores / math.sqrt(Q.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    return weights, weights @ V
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close, check_equal, check_shape, passed

two_tokens = torch.tensor([q]), torch.tensor(keys), torch.tensor(values)
weights_ex, output_ex = relevance_and_combine(*two_tokens)
check_close(weights_ex[0], torch.tensor(weights_by_hand), "weights (two-token example)", atol=1e-6)
check_close(output_ex[0], torch.tensor(output_by_hand), "output (two-token example)", atol=1e-6)
unscaled, _ = relevance_and_combine(*two_tokens, scale=False)
check_close(unscaled[0], torch.softmax(torch.tensor(raw_scores), 0), "weights with scale=False",
            atol=1e-6)
Qx, Kx, Vx = torch.randn(5, 8), torch.randn(7, 8), torch.randn(7, 3)
w_x, o_x = relevance_and_combine(Qx, Kx, Vx)
check_shape(w_x, (5, 7), "weights")
check_close(o_x, F.scaled_dot_product_attention(Qx[None], Kx[None], Vx[None])[0], "output",
            atol=1e-5)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Attention with a mask, batched over heads
#
# Write `masked_attention(Q, K, V, allowed)` for `Q`, `K`, `V` of shape
# `(batch, heads, T, d)` and a boolean `allowed` of shape `(T, T)` (`True` where query $i$ may
# attend to key $j$; every row allows at least one key). Return the attention output of shape
# `(batch, heads, T, d)`, with disallowed scores set to $-\infty$ before the softmax. The check
# compares it with PyTorch's `scaled_dot_product_attention` for a causal and a local mask.

# %% tags=["solution"]
def masked_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                     allowed: torch.Tensor) -> torch.Tensor:
    """softmax(QK^T / sqrt(d) with -inf where not allowed) V."""
    # BEGIN SOLUTION
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ V
    # END SOLUTION


# %% tags=["check"]
Qm, Km, Vm = torch.randn(3, 2, 4, 10, 8).unbind(0)
for name, allowed in [("causal", torch.ones(10, 10, dtype=torch.bool).tril()),
                      ("local window 3", local_mask(10, 3))]:
    result = masked_attention(Qm, Km, Vm, allowed)
    check_shape(result, (2, 4, 10, 8), f"masked_attention ({name})")
    check_close(result, F.scaled_dot_product_attention(Qm, Km, Vm, attn_mask=allowed),
                f"masked_attention ({name})", atol=1e-5)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Reading a real attention map
#
# Using `run_bert`, find which token the word "it" attends to most in layer `L + 1`, head
# `H + 1` (the head selected above, indices `L` and `H`) of the sentence
# "The trophy would not fit in the suitcase because it was too big.". Set `most_attended` to
# that token (a string, as in the tokenizer's output), and `it_weights` to the row of weights
# of "it" in that head (a tensor over all tokens). The check recomputes them.

# %% tags=["solution"]
most_attended = None
it_weights = None
# BEGIN SOLUTION
toks_ex, out_ex = run_bert("The trophy would not fit in the suitcase because it was too big.")
it_weights = out_ex.attentions[L][0, H, toks_ex.index("it")]
most_attended = toks_ex[int(it_weights.argmax())]
# END SOLUTION
print(most_attended)

# %% tags=["check"]
toks_ref, out_ref = runs[4]
row_ref = out_ref.attentions[L][0, H, toks_ref.index("it")]
check_close(it_weights, row_ref, "it_weights", atol=1e-6)
check_equal(most_attended, toks_ref[int(row_ref.argmax())], "most_attended")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: A strided sparse mask
#
# The strided pattern of Child et al. (2019) lets query $i$ attend to key $j \le i$ when $j$ is
# among the `stride` most recent positions ($i - j < s$) **or** when $i - j$ is a multiple of
# $s$. Write `strided_mask(T, stride)` returning the boolean `(T, T)` mask of allowed pairs.
# The check compares it with a direct definition and checks the count of allowed pairs.

# %% tags=["solution"]
def strided_mask(T: int, stride: int) -> torch.Tensor:
    """Causal strided sparse attention mask (local band plus every stride-th key)."""
    # BEGIN SOLUTION
    distance = torch.arange(T)[:, None] - torch.arange(T)[None, :]
    return (distance >= 0) & ((distance < stride) | (distance % stride == 0))
    # END SOLUTION


# %% tags=["check"]
for T_check, s in [(8, 3), (16, 4), (5, 1)]:
    expected = torch.tensor([[j <= i and (i - j < s or (i - j) % s == 0) for j in range(T_check)]
                             for i in range(T_check)])
    check_equal(strided_mask(T_check, s), expected, f"strided_mask({T_check}, {s})")
check_equal(int(strided_mask(16, 4).sum()), 82, "number of allowed pairs for T=16, stride=4")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Self-attention scores relevance with $q_i \cdot k_j / \sqrt{d_k}$, turns the scores into
#   weights with a softmax and combines the values with those weights. Queries, keys and values
#   are three learned projections of the same vectors.
# - Computed by hand (loops, then matrix products), the attention of a layer of the pretrained
#   MiniLM encoder matches the weights and outputs of `transformers` and of PyTorch's
#   `scaled_dot_product_attention` to float rounding.
# - Heatmaps show where information can flow. Tested on Winograd pairs, the MiniLM head that
#   looks most at the candidate nouns sends "it" to the subject whatever the correct referent:
#   a heuristic, not coreference resolution.
# - Attention alone is permutation-equivariant. Relative position representations add learned
#   vectors indexed by the clipped distance $j - i$, so the model sees order and sees it the same
#   way at every position.
# - Sparse masks (local window, strided) keep a fraction of the $T^2$ pairs; the saving is real
#   only with kernels that skip the masked blocks.
#
# Next: [multi-head attention](04-multi-head-attention), where many heads run in parallel,
# specialise, and share their keys and values to save memory.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017.
#   https://arxiv.org/abs/1706.03762
# - D. Bahdanau, K. Cho, Y. Bengio, "Neural machine translation by jointly learning to align
#   and translate", ICLR 2015. https://arxiv.org/abs/1409.0473
# - P. Shaw, J. Uszkoreit, A. Vaswani, "Self-attention with relative position representations",
#   NAACL 2018. https://arxiv.org/abs/1803.02155
# - J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: pre-training of deep bidirectional
#   transformers for language understanding", NAACL 2019. https://arxiv.org/abs/1810.04805
# - K. Clark, U. Khandelwal, O. Levy, C. D. Manning, "What does BERT look at? An analysis of
#   BERT's attention", BlackboxNLP 2019. https://arxiv.org/abs/1906.04341
# - S. Jain, B. C. Wallace, "Attention is not explanation", NAACL 2019.
#   https://arxiv.org/abs/1902.10186
# - H. J. Levesque, E. Davis, L. Morgenstern, "The Winograd schema challenge", KR 2012.
#   https://cdn.aaai.org/ocs/4492/4492-21843-1-PB.pdf
# - R. Child, S. Gray, A. Radford, I. Sutskever, "Generating long sequences with sparse
#   transformers", 2019. https://arxiv.org/abs/1904.10509
# - I. Beltagy, M. E. Peters, A. Cohan, "Longformer: the long-document transformer", 2020.
#   https://arxiv.org/abs/2004.05150
# - J. Vig, "A multiscale visualization of attention in the transformer model" (BertViz), ACL
#   2019 demo. https://arxiv.org/abs/1906.05714
# - C. Raffel et al., "Exploring the limits of transfer learning with a unified text-to-text
#   transformer" (T5), JMLR 2020. https://arxiv.org/abs/1910.10683
# - O. Press, N. A. Smith, M. Lewis, "Train short, test long: attention with linear biases
#   enables input length extrapolation" (ALiBi), ICLR 2022. https://arxiv.org/abs/2108.12409
# - J. Su et al., "RoFormer: enhanced transformer with rotary position embedding", 2021.
#   https://arxiv.org/abs/2104.09864
# - A. Q. Jiang et al., "Mistral 7B", 2023. https://arxiv.org/abs/2310.06825
# - N. Reimers, I. Gurevych, "Sentence-BERT: sentence embeddings using Siamese BERT-networks",
#   EMNLP 2019. https://arxiv.org/abs/1908.10084
# - W. Wang et al., "MiniLM: deep self-attention distillation for task-agnostic compression of
#   pre-trained transformers", NeurIPS 2020. https://arxiv.org/abs/2002.10957
