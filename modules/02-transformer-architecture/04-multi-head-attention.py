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
# # Multi-head attention, head specialisation and grouped-query attention
#
# One attention pattern per layer would force every token to look in a single place at a
# time. Multi-head attention runs several attention operations side by side on slices of the
# same vectors, so that one head can track the previous word while another finds the subject
# of the sentence, at no extra parameter cost. This notebook writes multi-head attention by
# hand and checks it against PyTorch and the course library, measures what the 72 heads of a
# real pretrained encoder specialise in, compares 4, 8, 12 and 16 heads on one task at fixed
# width, and measures the memory that grouped-query and multi-query attention save in the KV
# cache of a generating model.
#
# **Learning objectives**
# - Implement multi-head attention (split, attend per head in parallel, concatenate, project)
#   and match `nn.MultiheadAttention` and `shared.models.CausalSelfAttention`.
# - Explain why the parameter count does not depend on the number of heads, and what changes
#   with it (head size, number of patterns, cost).
# - Measure head specialisation in a real model (previous-token, next-token, sink and broad
#   heads) with the statistics of Clark et al. (2019).
# - Run a controlled comparison of 4/8/12/16 heads with several seeds and read it with its noise.
# - Implement grouped-query attention (GQA) and multi-query attention (MQA), and measure their
#   KV-cache saving against the formula.
#
# **Prerequisites:** [Self-attention](03-self-attention) (queries, keys, values, one head by
# hand) and [decoder-only models](02-decoder-only) (causal masks, generation, the toy
# translation task).
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
import statistics
import time
import warnings

# transformers imports tqdm.auto, whose notebook progress bar needs ipywidgets: silence
# its warning (progress bars are switched off below anyway).
warnings.filterwarnings("ignore", message="IProgress not found")

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers

import shared
from shared.data import PairBatchSampler, toy_translation_pairs
from shared.generation import generate
from shared.models import GPT, CausalSelfAttention, GPTConfig
from shared.plotting import bar, heatmap
from shared.training import TrainConfig, Trainer

shared.seed_everything(0)
# The models here are tiny: splitting each small operation over several threads costs more in
# coordination than it saves, so we use one.
torch.set_num_threads(1)
transformers.logging.disable_progress_bar()  # no weight-loading progress bar in the output
print(shared.environment_summary("transformers", "sentence-transformers", "matplotlib"))

# %% [markdown]
# ## Heads in parallel
#
# With model width $d$ and $h$ heads, each head works in a subspace of size $d_k = d/h$:
#
# $$\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{Q_i K_i^\top}{\sqrt{d_k}}\right) V_i,
# \qquad \mathrm{MultiHead}(X) = [\mathrm{head}_1; \dots; \mathrm{head}_h]\, W_O ,$$
#
# where $Q_i, K_i, V_i$ are columns $i d_k .. (i+1) d_k$ of $XW_Q$, $XW_K$, $XW_V$. The heads
# do not need a loop: reshaping $(B, T, d)$ to $(B, h, T, d_k)$ makes the head a batch
# dimension, and one batched matrix product computes all of them at once.
#
# We write it once for the general case in which keys and values have their own, possibly
# smaller, number of heads $h_{kv}$ (we need it later for grouped-query attention; for now
# $h_{kv} = h$). The projections are stored as one fused matrix, as in `shared.models`: its
# output is the queries, then the keys, then the values.

# %%
def multi_head_attention(x: torch.Tensor, qkv: nn.Linear, proj: nn.Linear, n_head: int,
                         n_kv_head: int, causal: bool) -> torch.Tensor:
    """Multi-head (or grouped-query) self-attention of x (B, T, d), written out."""
    B, T, d = x.shape
    head_dim = d // n_head
    q, k, v = qkv(x).split([n_head * head_dim, n_kv_head * head_dim, n_kv_head * head_dim], dim=-1)
    q = q.view(B, T, n_head, head_dim).transpose(1, 2)     # (B, h, T, d_k)
    k = k.view(B, T, n_kv_head, head_dim).transpose(1, 2)  # (B, h_kv, T, d_k)
    v = v.view(B, T, n_kv_head, head_dim).transpose(1, 2)
    group = n_head // n_kv_head  # query heads that share each key/value head
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)  # (B, h, T, T): all heads at once
    if causal:
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    heads = torch.softmax(scores, dim=-1) @ v                # (B, h, T, d_k)
    return proj(heads.transpose(1, 2).reshape(B, T, d))     # concatenate heads, project


def multi_head_attention_loop(x, qkv, proj, n_head, causal):
    """The same for h_kv = h, one head at a time: what the batched version replaces."""
    B, T, d = x.shape
    head_dim = d // n_head
    q, k, v = qkv(x).chunk(3, dim=-1)
    outputs = []
    for i in range(n_head):
        cols = slice(i * head_dim, (i + 1) * head_dim)
        scores = q[..., cols] @ k[..., cols].transpose(-2, -1) / math.sqrt(head_dim)
        if causal:
            scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        outputs.append(torch.softmax(scores, dim=-1) @ v[..., cols])
    return proj(torch.cat(outputs, dim=-1))


# %% [markdown]
# Three checks. The loop and the batched version must agree. PyTorch's
# `nn.MultiheadAttention` stores the same fused projection (`in_proj_weight`, queries then keys
# then values) and an output projection, so we can load our weights into it. And the course's
# GPT attention, `shared.models.CausalSelfAttention`, has a step-by-step ("manual") and a
# fused ("sdpa") implementation; both must give our numbers when they hold our weights.

# %%
d_model, n_head, T = 64, 8, 10
x = torch.randn(2, T, d_model)
config = GPTConfig(vocab_size=10, block_size=T, n_layer=1, n_head=n_head, d_model=d_model)
library_attention = {
    impl: CausalSelfAttention(GPTConfig(**{**config.to_dict(), "attention_impl": impl})).eval()
    for impl in ("manual", "sdpa")
}
library_attention["sdpa"].load_state_dict(library_attention["manual"].state_dict())
qkv, proj = library_attention["manual"].qkv, library_attention["manual"].proj

torch_mha = nn.MultiheadAttention(d_model, n_head, batch_first=True).eval()
with torch.no_grad():
    torch_mha.in_proj_weight.copy_(qkv.weight)
    torch_mha.in_proj_bias.copy_(qkv.bias)
    torch_mha.out_proj.weight.copy_(proj.weight)
    torch_mha.out_proj.bias.copy_(proj.bias)
    ours = multi_head_attention(x, qkv, proj, n_head, n_head, causal=True)
    comparisons = {
        "one head at a time (loop)": multi_head_attention_loop(x, qkv, proj, n_head, causal=True),
        "nn.MultiheadAttention": torch_mha(
            x, x, x, attn_mask=torch.ones(T, T, dtype=torch.bool).triu(1), need_weights=False)[0],
        "CausalSelfAttention (manual)": library_attention["manual"](x),
        "CausalSelfAttention (sdpa)": library_attention["sdpa"](x),
    }
for name, result in comparisons.items():
    print(f"max |ours - {name:29s}| = {(ours - result).abs().max():.1e}")

# %% [markdown]
# All four agree to float rounding. Now the parameter count: the four $d \times d$ projections
# are the same matrices whatever $h$ is; the heads only decide how their columns are grouped.

# %%
for heads in (1, 4, 8, 16, 64):
    layer = nn.MultiheadAttention(d_model, heads, batch_first=True)
    print(f"{heads:3d} heads of size {d_model // heads:3d}: "
          f"{sum(p.numel() for p in layer.parameters()):,} parameters")

# %% [markdown]
# So at a fixed width the number of heads trades *how many* attention patterns a layer has
# against *how large* each head is. A head of size $d_k$ computes scores $q \cdot k$ in a
# $d_k$-dimensional space: its score matrix has rank at most $d_k$, a limit that bites when
# heads get small (Bhojanapalli et al., 2020). The original transformer used $h = 8$ heads of
# 64 at $d = 512$; most large models keep $d_k$ at 64 or 128 and add heads as they widen.
# (Heads need not stay independent: talking-heads attention, Shazeer et al. 2020, mixes the
# heads' scores with a learned matrix before and after the softmax.)
#
# ## What do heads specialise in?
#
# Clark et al. (2019) measured what BERT's 144 heads attend to and found recurring types:
# heads that attend to the previous or the next token, heads that put nearly all their weight
# on a special token (`[SEP]` or `[CLS]`), used as a "no-op" when the head has nothing to do,
# and broad heads that average over the sentence. Voita et al. (2019) found positional,
# syntactic and rare-word heads in translation models, and showed that most heads can be
# pruned with little loss, as did Michel et al. (2019).
#
# We measure the same statistics for all $6 \times 12 = 72$ heads of all-MiniLM-L6-v2 (the
# course's pretrained BERT-style encoder, `shared.assets.sentence_encoder()`), over 20 varied
# sentences. For each head: the mean weight a token puts on the previous token, on the next
# token, on itself, on `[CLS]`, on `[SEP]` and on punctuation, and the entropy of its
# attention distribution (low: focused; high: broad).

# %%
sentence_model = shared.assets.sentence_encoder()
bert = sentence_model[0].auto_model.eval()  # the underlying transformers BertModel
bert.set_attn_implementation("eager")  # the fused kernel does not return attention weights
tokenizer = sentence_model.tokenizer
SENTENCES = [
    "The cat sat on the mat because it was tired.",
    "A quick brown fox jumps over the lazy dog.",
    "Scientists discovered a new species of frog in the rainforest.",
    "She opened the window, and cold air filled the room.",
    "The committee will announce its decision on Friday.",
    "After the storm, the village slowly rebuilt its bridges.",
    "He forgot his keys, so he waited outside for an hour.",
    "Prices rose sharply in the first quarter of the year.",
    "The old library holds thousands of rare manuscripts.",
    "Can you tell me where the nearest train station is?",
    "My sister plays the violin in a small orchestra.",
    "The engine failed shortly after takeoff, but the pilot landed safely.",
    "Children learn languages faster than most adults do.",
    "The recipe calls for two eggs, flour and a pinch of salt.",
    "Heavy rain delayed the match by almost three hours.",
    "They planted tomatoes, beans and peppers in the garden.",
    "The museum closed early because of a power outage.",
    "Our teacher explained the theorem with a simple drawing.",
    "The river flooded the fields near the town last spring.",
    "I would rather walk than wait for the bus.",
]
batch = tokenizer(SENTENCES, return_tensors="pt", padding=True)
with torch.no_grad():
    attentions = torch.stack(bert(**batch, output_attentions=True).attentions, dim=1)
print(f"attention weights: {tuple(attentions.shape)} = (sentences, layers, heads, query, key)")

# %% [markdown]
# Padding must be left out of every average: padded *queries* are not real tokens (their keys
# get zero weight already, through the attention mask). `per_head` averages a per-query
# statistic over the real query positions of all sentences.

# %%
real = batch["attention_mask"].bool()  # (sentences, T)
ids = batch["input_ids"]


def per_head(per_query: torch.Tensor, queries: torch.Tensor = real) -> torch.Tensor:
    """Mean over the selected query positions of all sentences: (S, L, H, T) -> (L, H)."""
    w = queries[:, None, None, :].float()
    return (per_query * w).sum(dim=(0, 3)) / w.sum(dim=(0, 3))


def weight_on(keys: torch.Tensor) -> torch.Tensor:
    """Per query, the total weight on the keys selected by a boolean (S, T) mask."""
    return (attentions * keys[:, None, None, None, :].float()).sum(dim=-1)


offset_weight = lambda offset: torch.diagonal(attentions, offset=offset, dim1=-2, dim2=-1)
has_previous = real.clone()
has_previous[:, 0] = False
has_next = real & real.roll(-1, dims=1)
has_next[:, -1] = False
punctuation = torch.tensor([[t in {".", ",", "?"} for t in tokenizer.convert_ids_to_tokens(row)]
                            for row in ids])
statistics_per_head = {
    "previous token": per_head(F.pad(offset_weight(-1), (1, 0)), has_previous),
    "next token": per_head(F.pad(offset_weight(1), (0, 1)), has_next),
    "itself": per_head(offset_weight(0)),
    "[CLS]": per_head(weight_on(ids == tokenizer.cls_token_id)),
    "[SEP]": per_head(weight_on(ids == tokenizer.sep_token_id)),
    "punctuation": per_head(weight_on(punctuation)),
    "entropy (nats)": per_head(-(attentions * attentions.clamp_min(1e-12).log()).sum(dim=-1)),
}
fig, axes = plt.subplots(2, 4, figsize=(18, 6.5))
for ax, (name, values) in zip(axes.flat, statistics_per_head.items()):
    heatmap(values, [str(h + 1) for h in range(12)], [str(l + 1) for l in range(6)],
            f"Mean weight on: {name}" if "entropy" not in name else "Attention entropy (nats)",
            xlabel="head", ylabel="layer", ax=ax, cmap="magma")
axes.flat[-1].axis("off")
plt.tight_layout()
plt.show()
for name, values in statistics_per_head.items():
    layer, head = divmod(int(values.argmax()), 12)
    print(f"{name:15s}: strongest head layer {layer + 1} head {head + 1} ({values.max():.2f}); "
          f"mean over all heads {values.mean():.2f}")

# %% [markdown]
# The maps show clear specialists. A few heads attend almost exclusively to the previous
# token or to the next one (positional heads, in the first two layers). Many heads in the
# middle layers put most of their weight on `[CLS]`: in this model `[CLS]` plays the role of
# the "no-op" target that `[SEP]` plays in BERT-base (Clark et al., 2019), while `[SEP]`
# receives little. Entropy is highest in the first and last layers, where heads average more
# broadly. Here are three of these heads on one sentence.

# %%
examples = {name: divmod(int(statistics_per_head[name].argmax()), 12)
            for name in ("previous token", "next token", "[CLS]")}
n_real = int(real[3].sum())
words = tokenizer.convert_ids_to_tokens(ids[3][:n_real])
fig, axes = plt.subplots(1, 3, figsize=(18, 5.2))
for ax, (name, (layer, head)) in zip(axes, examples.items()):
    heatmap(attentions[3, layer, head, :n_real, :n_real], words, words,
            f"Layer {layer + 1}, head {head + 1}: the '{name}' head",
            xlabel="key (attended to)", ylabel="query (attending)", ax=ax, colorbar_label="weight")
plt.tight_layout()
plt.show()

# %% [markdown]
# Heads are not assigned roles; these patterns emerge from training. How much each head
# matters is a separate question, answered by removing heads: Michel et al. (2019) removed a
# large share of the heads of trained BERT and translation models at test time with little
# loss, and Voita et al. (2019) found that the few heads that survive pruning are the
# specialists.
#
# ## How many heads? 4, 8, 12 and 16 at fixed width
#
# Does a layer do better with more, smaller heads? We train the same decoder-only model on the
# same task with 4, 8, 12 and 16 heads and nothing else changed: width $d = 48$ (head sizes
# 12, 6, 4 and 3), 2 layers, so the parameter count is identical. The task is the toy
# English-to-French translation of the [encoder-decoder](01-encoder-decoder) and
# [decoder-only](02-decoder-only) notebooks, generated by the same rules
# (`shared.data.toy_translation_pairs`).

# %%
pairs: dict[str, str] = dict(toy_translation_pairs(9000, seed=0))
PAD, BOS, EOS = 0, 1, 2
words = sorted({w for en, fr in pairs.items() for w in f"{en} {fr}".split()})
itos = ["<pad>", "<s>", "</s>"] + words
stoi = {w: i for i, w in enumerate(itos)}
SRC_LEN = max(len(en.split()) for en in pairs)  # 7 English words at most
TGT_LEN = max(len(fr.split()) for fr in pairs.values()) + 2  # <s>, 7 French words, </s>


def as_sequences(batch: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """`source <s> target </s>` rows, source left-padded; inputs and next-token targets
    (-100 on the source and on padding, so the loss covers the translation only)."""
    rows = torch.full((len(batch), SRC_LEN + TGT_LEN), PAD)
    for i, (english, french) in enumerate(batch):
        s, t = [stoi[w] for w in english.split()], [stoi[w] for w in french.split()]
        rows[i, SRC_LEN - len(s): SRC_LEN] = torch.tensor(s)
        rows[i, SRC_LEN: SRC_LEN + len(t) + 2] = torch.tensor([BOS] + t + [EOS])
    inputs, targets = rows[:, :-1], rows[:, 1:].clone()
    targets[:, :SRC_LEN] = -100
    targets[targets == PAD] = -100
    return inputs, targets


pair_list = list(pairs.items())
train_x, train_y = as_sequences(pair_list[:8000])
test_x, test_y = as_sequences(pair_list[8000:])
print(f"train {tuple(train_x.shape)}, held-out {tuple(test_x.shape)}")

# %% [markdown]
# Each configuration is trained with three seeds (the seed sets the initial weights and the
# order of the batches) for 150 steps of 32 sentences: long enough for the models to learn most
# of the task, short enough that differences in learning speed show. The score is the loss on
# the 1,000 held-out sentences and the share of them translated exactly by greedy decoding
# (`shared.generation.generate`).

# %%
def held_out_scores(model: GPT) -> tuple[float, float]:
    """Held-out loss (nats per target word) and greedy exact-match rate."""
    model.eval()
    with torch.no_grad():
        loss = model(test_x, targets=test_y).loss.item()
    prompts = test_x[:, : SRC_LEN + 1]  # the source and <s>
    generated = generate(model, prompts, TGT_LEN - 1)[:, SRC_LEN + 1:]
    reference = test_y[:, SRC_LEN:]
    correct = ((generated == reference) | (reference == -100)).all(dim=1)
    return loss, correct.float().mean().item()


HEADS, SEEDS, STEPS = (4, 8, 12, 16), (0, 1, 2), 150  # more seeds narrow the error bars
head_results = {}
for n_heads in HEADS:
    for seed in SEEDS:
        shared.seed_everything(seed)
        model = GPT(GPTConfig(vocab_size=len(itos), block_size=SRC_LEN + TGT_LEN - 1,
                              n_layer=2, n_head=n_heads, d_model=48))
        config = TrainConfig(max_steps=STEPS, batch_size=32, lr=1e-2, min_lr=1e-3,
                             warmup_steps=20, eval_interval=0, seed=seed, progress=False)
        Trainer(model, PairBatchSampler(train_x, train_y, 32, seed), None, config).fit()
        loss, exact = held_out_scores(model)
        head_results[n_heads, seed] = {"loss": loss, "exact": exact,
                                       "params": model.num_parameters()}
    runs = [head_results[n_heads, s] for s in SEEDS]
    losses = ", ".join(f"{r['loss']:.3f}" for r in runs)
    exacts = ", ".join(f"{r['exact']:.0%}" for r in runs)
    print(f"{n_heads:2d} heads (size {48 // n_heads:2d}), {runs[0]['params']:,} parameters: "
          f"held-out loss {losses}; exact match {exacts}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, key, label in [(axes[0], "loss", "held-out loss (nats per target word)"),
                       (axes[1], "exact", "held-out exact match")]:
    for n_heads in HEADS:
        values = [head_results[n_heads, s][key] for s in SEEDS]
        ax.scatter([n_heads] * len(values), values, color="tab:blue", alpha=0.6,
                   label="one seed" if n_heads == HEADS[0] else None)
        ax.errorbar(n_heads, statistics.mean(values), yerr=statistics.stdev(values), fmt="s",
                    color="black", capsize=4, label="mean and std" if n_heads == HEADS[0] else None)
    ax.set(xticks=list(HEADS), xlabel="number of heads (d_model = 48)", ylabel=label,
           title=f"{label.split(' (')[0].capitalize()} after {STEPS} steps")
    ax.legend()
plt.tight_layout()
plt.show()
for h in HEADS:
    losses = [head_results[h, s]["loss"] for s in SEEDS]
    print(f"{h:2d} heads: held-out loss mean {statistics.mean(losses):.3f}, "
          f"std {statistics.stdev(losses):.3f}, range {min(losses):.3f}-{max(losses):.3f}")

# %% [markdown]
# The parameter count is identical, but the cost is not. Each head computes its own $T \times T$
# score matrix, so a layer with $h$ heads computes, masks and normalises $h T^2$ scores, and
# splits its work into more, smaller matrix products. We time a forward and backward pass of
# each configuration back to back (three rounds, best of each; a measurement on a shared
# machine, so only the ratios mean anything).

# %%
def seconds_per_step(n_heads: int, repeats: int = 10) -> float:
    model = GPT(GPTConfig(vocab_size=len(itos), block_size=SRC_LEN + TGT_LEN - 1, n_layer=2,
                          n_head=n_heads, d_model=48))
    start = time.perf_counter()
    for _ in range(repeats):
        model(train_x[:32], targets=train_y[:32]).loss.backward()
    return (time.perf_counter() - start) / repeats


timings = {h: [] for h in HEADS}
for _ in range(3):
    for h in HEADS:
        timings[h].append(seconds_per_step(h))
for h in HEADS:
    scores = h * (SRC_LEN + TGT_LEN - 1) ** 2
    print(f"{h:2d} heads: {min(timings[h]) / min(timings[4]):.2f}x the time of 4 heads per "
          f"training step; {scores:,} attention scores per sequence and layer")

# %% [markdown]
# Read the results with their noise. Between 8 and 12 heads the seeds overlap completely:
# ranking neighbours would take many more seeds. The extremes are further apart than the
# spread: every 4-head run beats every 16-head run, on held-out loss (0.14-0.21 against
# 0.33-0.42) and on exact match. A likely reason is the head size: at width 48, 16 heads
# leave each head 3 dimensions, too few to compute sharp content-based scores (the low-rank
# bottleneck of Bhojanapalli et al., 2020), while 4 heads of size 12 suffice for a task that
# needs only a few lookups at a time. Three seeds on one small task support a modest
# conclusion: more heads is not better when it makes each head tiny, and it costs more time.
# Real models keep the head size at 64 to 128 and add heads as they widen.
#
# ## Grouped-query and multi-query attention
#
# When a decoder generates, it keeps the keys and values of every past token of every layer
# in the KV cache, so that each new token costs one token's work
# ([decoder-only models](02-decoder-only)). For long contexts and large batches this cache can
# take more memory than the weights: it holds
#
# $$\text{KV bytes} = 2 \times n_{layer} \times B \times h_{kv} \times T \times d_k \times
# \text{bytes per value},$$
#
# the 2 counting keys and values. Multi-query attention (MQA, Shazeer, 2019) keeps all $h$
# query heads but a single key/value head shared by all of them, $h_{kv} = 1$; grouped-query
# attention (GQA, Ainslie et al., 2023) is the middle ground: $h_{kv}$ key/value heads, each
# shared by a group of $h / h_{kv}$ query heads. Llama 2 70B and Mistral 7B use GQA with 8
# key/value heads.
#
# Our `multi_head_attention` above already handles it: it repeats each key/value head for its
# group. `CausalSelfAttention` with `n_kv_head < n_head` does the same in its manual path and
# passes `enable_gqa=True` to `scaled_dot_product_attention` in its fused path; all three must
# agree.

# %%
for n_kv in (8, 2, 1):
    gqa_config = GPTConfig(vocab_size=10, block_size=T, n_layer=1, n_head=8, n_kv_head=n_kv,
                           d_model=d_model)
    manual_config = GPTConfig(**{**gqa_config.to_dict(), "attention_impl": "manual"})
    gqa_manual = CausalSelfAttention(manual_config).eval()
    gqa_sdpa = CausalSelfAttention(gqa_config).eval()
    gqa_sdpa.load_state_dict(gqa_manual.state_dict())
    with torch.no_grad():
        ours = multi_head_attention(x, gqa_manual.qkv, gqa_manual.proj, 8, n_kv, causal=True)
        diff_manual = (ours - gqa_manual(x)).abs().max()
        diff_sdpa = (ours - gqa_sdpa(x)).abs().max()
    print(f"n_kv_head = {n_kv}: {gqa_manual.qkv.weight.shape[0]:3d} projection outputs "
          f"(64 queries + 2 x {8 * n_kv} keys/values); max |ours - manual| = {diff_manual:.1e}, "
          f"max |ours - sdpa| = {diff_sdpa:.1e}")

# %% [markdown]
# ### Measuring the KV cache
#
# Now the memory, measured on real cache tensors. We build the same 4-layer model (width 256,
# 8 query heads of size 32) with 8, 4, 2 and 1 key/value heads, let it read a 512-token prompt
# into a `shared.models.KVCache` (what `shared.generation.generate` allocates), and count the
# bytes of the cache's key and value tensors.

# %%
N_LAYER, D_MODEL, N_HEAD, CONTEXT, BATCH = 4, 256, 8, 512, 2
HEAD_DIM = D_MODEL // N_HEAD
measured_bytes, formula_bytes = {}, {}
for n_kv in (8, 4, 2, 1):
    model = GPT(GPTConfig(vocab_size=100, block_size=CONTEXT, n_layer=N_LAYER, n_head=N_HEAD,
                          n_kv_head=n_kv, d_model=D_MODEL)).eval()
    cache = model.new_cache(BATCH, CONTEXT)
    prompt = torch.randint(100, (BATCH, CONTEXT))
    with torch.no_grad():
        model(prompt, cache=cache)
    measured_bytes[n_kv] = cache.keys.nbytes + cache.values.nbytes
    bytes_per_value = cache.keys.element_size()  # 4 for fp32
    formula_bytes[n_kv] = 2 * N_LAYER * BATCH * n_kv * CONTEXT * HEAD_DIM * bytes_per_value
    print(f"n_kv_head = {n_kv}: cache holds {cache.length} tokens, keys {tuple(cache.keys.shape)}; "
          f"measured {measured_bytes[n_kv] / 2**20:.2f} MiB, "
          f"formula {formula_bytes[n_kv] / 2**20:.2f} MiB, "
          f"{measured_bytes[8] / measured_bytes[n_kv]:.0f}x smaller than MHA; "
          f"parameters {model.num_parameters():,}")

# %%
bar(["MHA\n(8 KV heads)", "GQA\n(4 KV heads)", "GQA\n(2 KV heads)", "MQA\n(1 KV head)"],
    [measured_bytes[k] / 2**20 for k in (8, 4, 2, 1)],
    f"Measured KV cache: {N_LAYER} layers, 8 query heads, {CONTEXT} tokens, batch {BATCH} (fp32)",
    "attention variant", "KV cache (MiB)", fmt="{:.2f} MiB")
plt.show()

# %% [markdown]
# The measured bytes equal the formula exactly, and the cache shrinks by the factor
# $h / h_{kv}$: 2, 4 and 8. The parameters shrink a little too (smaller key and value
# projections), but that is a small effect next to the cache, which grows with every token of
# context and every sequence in the batch.
#
# At the scale of real models the same formula gives the numbers that motivated GQA. Per
# sequence, in 16-bit precision (2 bytes per value), with each model's published configuration:

# %%
REAL_CONFIGS = {  # name: (layers, query heads, key/value heads, head size)
    "Llama 2 7B (MHA)": (32, 32, 32, 128),
    "Llama 2 70B (GQA-8)": (80, 64, 8, 128),
    "Llama 2 70B if it were MHA": (80, 64, 64, 128),
    "Mistral 7B (GQA-8)": (32, 32, 8, 128),
    "Falcon 7B (MQA)": (32, 71, 1, 64),
}
contexts = [1_024, 4_096, 16_384, 32_768]
print(f"{'model':28s} {'KiB per token':>13s} " + " ".join(f"{c:>9,d} tok" for c in contexts))
fig, ax = plt.subplots(figsize=(7.5, 4.5))
for name, (layers, _, kv_heads, head_size) in REAL_CONFIGS.items():
    per_token = 2 * layers * kv_heads * head_size * 2
    gib = [per_token * c / 2**30 for c in contexts]
    print(f"{name:28s} {per_token / 1024:13.0f} " + " ".join(f"{g:9.2f} GiB" for g in gib))
    ax.plot(contexts, gib, marker="o", label=name)
ax.set(xscale="log", yscale="log", xlabel="context length (tokens)",
       ylabel="KV cache per sequence (GiB, 16-bit)",
       title="KV cache of real configurations (from the formula)")
ax.set_xticks(contexts, [f"{c:,}" for c in contexts])
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# With full multi-head attention, a 70B model would need 80 GiB of cache for one 32k-token
# sequence, as much as a whole 80 GB accelerator holds, on top of its 140 GB of 16-bit
# weights; GQA-8 brings it to 10 GiB. The price is quality: sharing keys and values removes
# capacity. Ainslie et al. (2023) found GQA with 8 groups close to full multi-head quality and
# clearly better than MQA, and showed that an existing multi-head checkpoint can be converted
# by mean-pooling the key and value heads of each group, then briefly trained further
# ("uptraining"). Exercise 4 implements that conversion.

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Split and merge heads
#
# Write `split_heads(x, n_head)`, which turns `(B, T, d)` into `(B, n_head, T, d // n_head)`
# (head $i$ gets columns $i d_k .. (i+1) d_k$), and `merge_heads(x)`, its inverse. The check
# compares them with explicit slicing and checks the round trip.

# %% tags=["solution"]
def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, d) -> (B, n_head, T, d // n_head)."""
    # BEGIN SOLUTION
    B, T, d = x.shape
    return x.view(B, T, n_head, d // n_head).transpose(1, 2)
    # END SOLUTION


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, n_head, T, d_k) -> (B, T, n_head * d_k)."""
    # BEGIN SOLUTION
    B, h, T, d_k = x.shape
    return x.transpose(1, 2).reshape(B, T, h * d_k)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_shape, passed

x_test = torch.randn(2, 5, 24)
split = split_heads(x_test, 6)
check_shape(split, (2, 6, 5, 4), "split_heads(x, 6)")
for i in range(6):
    check_equal(split[:, i], x_test[..., 4 * i: 4 * (i + 1)], f"split_heads: head {i}")
check_equal(merge_heads(split), x_test, "merge_heads(split_heads(x))")
check_equal(merge_heads(split_heads(x_test, 3)), x_test, "merge_heads(split_heads(x, 3))")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The KV-cache formula
#
# Write `kv_cache_bytes(n_layer, n_kv_head, head_dim, seq_len, batch, bytes_per_value)` that
# returns the number of bytes a KV cache needs. The check compares it with the caches measured
# above and with Llama 2 70B at 4,096 tokens in 16-bit precision.

# %% tags=["solution"]
def kv_cache_bytes(n_layer: int, n_kv_head: int, head_dim: int, seq_len: int, batch: int,
                   bytes_per_value: int) -> int:
    """Bytes of keys and values for every layer, sequence and position."""
    # BEGIN SOLUTION
    return 2 * n_layer * n_kv_head * head_dim * seq_len * batch * bytes_per_value
    # END SOLUTION


# %% tags=["check"]
for n_kv, measured in measured_bytes.items():
    check_equal(kv_cache_bytes(N_LAYER, n_kv, HEAD_DIM, CONTEXT, BATCH, 4), measured,
                f"kv_cache_bytes for the measured cache with {n_kv} KV heads")
check_equal(kv_cache_bytes(80, 8, 128, 4096, 1, 2), 1_342_177_280,
            "Llama 2 70B, 4096 tokens, 16-bit")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: A previous-token score
#
# Write `previous_token_score(weights)` for attention weights of shape `(..., T, T)` (rows are
# queries): the mean, over query positions $i = 1 .. T-1$, of the weight that query $i$ puts on
# key $i - 1$, returned with the leading dimensions kept (so `(L, H, T, T)` gives `(L, H)`).
# Then set `best_previous_head` to the `(layer, head)` pair, counted from 1, of the MiniLM head
# with the highest score on the first sentence of `SENTENCES` (use `attentions[0]`, without its
# padding positions).

# %% tags=["solution"]
def previous_token_score(weights: torch.Tensor) -> torch.Tensor:
    """Mean weight on the previous token, over queries 1..T-1."""
    # BEGIN SOLUTION
    return torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)
    # END SOLUTION


best_previous_head = None
# BEGIN SOLUTION
first = attentions[0][..., : int(real[0].sum()), : int(real[0].sum())]
layer, head = divmod(int(previous_token_score(first).argmax()), 12)
best_previous_head = (layer + 1, head + 1)
# END SOLUTION
print(best_previous_head)

# %% tags=["check"]
w = torch.softmax(torch.randn(3, 6, 6), dim=-1)
expected = torch.stack([sum(w[b, i, i - 1] for i in range(1, 6)) / 5 for b in range(3)])
check_close(previous_token_score(w), expected, "previous_token_score on random weights", atol=1e-6)
check_shape(previous_token_score(attentions[0]), (6, 12), "previous_token_score(attentions[0])")
n0 = int(real[0].sum())
scores0 = torch.stack([torch.stack([torch.diagonal(attentions[0, l, h, :n0, :n0], -1).mean()
                                    for h in range(12)]) for l in range(6)])
check_equal(best_previous_head, tuple(int(i) + 1 for i in divmod(int(scores0.argmax()), 12)),
            "best_previous_head")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Convert multi-head keys to grouped-query keys
#
# Ainslie et al. (2023) turn a multi-head checkpoint into a GQA one by replacing the key (and
# value) projection of each group of query heads by the mean of the group's heads. Write
# `mean_pool_kv_heads(weight, n_head, n_kv_head)`: `weight` is a key projection of shape
# `(n_head * head_dim, d)`, head $i$ owning rows $i \cdot head\_dim .. (i+1) \cdot head\_dim$;
# return the `(n_kv_head * head_dim, d)` projection whose group $g$ is the mean of heads
# $g \cdot n / n_{kv} .. (g+1) \cdot n / n_{kv} - 1$ (consecutive heads form a group, as in
# `repeat_interleave`).

# %% tags=["solution"]
def mean_pool_kv_heads(weight: torch.Tensor, n_head: int, n_kv_head: int) -> torch.Tensor:
    """Mean-pool the heads of a key or value projection into n_kv_head groups."""
    # BEGIN SOLUTION
    head_dim, d = weight.shape[0] // n_head, weight.shape[1]
    grouped = weight.view(n_kv_head, n_head // n_kv_head, head_dim, d)
    return grouped.mean(dim=1).reshape(n_kv_head * head_dim, d)
    # END SOLUTION


# %% tags=["check"]
heads_weight = torch.arange(4 * 2 * 3, dtype=torch.float32).view(4 * 2, 3)  # 4 heads of size 2
pooled = mean_pool_kv_heads(heads_weight, 4, 2)
check_shape(pooled, (4, 3), "mean_pool_kv_heads(weight, 4, 2)")
check_close(pooled[:2], (heads_weight[0:2] + heads_weight[2:4]) / 2, "group 0 (heads 0 and 1)")
check_close(pooled[2:], (heads_weight[4:6] + heads_weight[6:8]) / 2, "group 1 (heads 2 and 3)")
check_close(mean_pool_kv_heads(heads_weight, 4, 4), heads_weight, "n_kv_head = n_head (unchanged)")
check_close(mean_pool_kv_heads(heads_weight, 4, 1), heads_weight.view(4, 2, 3).mean(0),
            "n_kv_head = 1 (multi-query)")
# If all heads of a group are equal, pooling loses nothing: GQA then computes exactly MHA.
mha = CausalSelfAttention(GPTConfig(vocab_size=10, block_size=T, n_layer=1, n_head=8,
                                    d_model=64)).eval()
gqa = CausalSelfAttention(GPTConfig(vocab_size=10, block_size=T, n_layer=1, n_head=8, n_kv_head=2,
                                    d_model=64)).eval()
with torch.no_grad():
    wq, wk, wv = mha.qkv.weight.split(64)
    bq, bk, bv = mha.qkv.bias.split(64)
    # 8 heads of size 8 in 2 groups of 4: make the heads within each group equal.
    wk, wv = (w.view(2, 4, 8, 64)[:, :1].expand(2, 4, 8, 64).reshape(64, 64) for w in (wk, wv))
    bk, bv = (b.view(2, 4, 8)[:, :1].expand(2, 4, 8).reshape(64) for b in (bk, bv))
    mha.qkv.weight.copy_(torch.cat([wq, wk, wv]))
    mha.qkv.bias.copy_(torch.cat([bq, bk, bv]))
    gqa.qkv.weight.copy_(torch.cat([wq, mean_pool_kv_heads(wk, 8, 2),
                                    mean_pool_kv_heads(wv, 8, 2)]))
    gqa.qkv.bias.copy_(torch.cat([bq, mean_pool_kv_heads(bk[:, None], 8, 2)[:, 0],
                                  mean_pool_kv_heads(bv[:, None], 8, 2)[:, 0]]))
    gqa.proj.load_state_dict(mha.proj.state_dict())
    check_close(gqa(x), mha(x), "GQA from pooled weights vs MHA with grouped-equal heads",
                atol=1e-5)
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Multi-head attention splits the width into $h$ heads of size $d/h$, attends in each head
#   independently (one batched matrix product, no loop), concatenates and projects. Written by
#   hand it matches `nn.MultiheadAttention` and `shared.models.CausalSelfAttention` to float
#   rounding; its parameter count does not depend on $h$.
# - Heads of a real encoder specialise: MiniLM has previous-token and next-token heads,
#   many heads that park their weight on `[CLS]` when they have nothing to do, and broad heads.
#   The patterns emerge from training; pruning studies show many heads can be removed.
# - At a fixed width of 48 on the toy translation task, every 4-head run beat every 16-head
#   run after 150 steps, while 8 and 12 heads were indistinguishable within the seed spread:
#   more heads is not better when it makes each head tiny, and it costs more time per step.
# - The KV cache holds $2\, n_{layer} B\, h_{kv} T d_k$ values. GQA and MQA share key/value
#   heads across groups of query heads; measured on real cache tensors the saving is exactly
#   $h/h_{kv}$ (2x, 4x, 8x here), which for Llama 2 70B means 1.25 GiB instead of 10 GiB per
#   4k-token sequence.
#
# Next: [positional encodings](05-positional-encoding), which give attention its sense of
# order.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017.
#   https://arxiv.org/abs/1706.03762
# - K. Clark, U. Khandelwal, O. Levy, C. D. Manning, "What does BERT look at? An analysis of
#   BERT's attention", BlackboxNLP 2019. https://arxiv.org/abs/1906.04341
# - E. Voita, D. Talbot, F. Moiseev, R. Sennrich, I. Titov, "Analyzing multi-head
#   self-attention: specialized heads do the heavy lifting, the rest can be pruned", ACL 2019.
#   https://arxiv.org/abs/1905.09418
# - P. Michel, O. Levy, G. Neubig, "Are sixteen heads really better than one?", NeurIPS 2019.
#   https://arxiv.org/abs/1905.10650
# - S. Bhojanapalli, C. Yun, A. S. Rawat, S. J. Reddi, S. Kumar, "Low-rank bottleneck in
#   multi-head attention models", ICML 2020. https://arxiv.org/abs/2002.07028
# - N. Shazeer, "Fast transformer decoding: one write-head is all you need" (MQA), 2019.
#   https://arxiv.org/abs/1911.02150
# - J. Ainslie et al., "GQA: training generalized multi-query transformer models from
#   multi-head checkpoints", EMNLP 2023. https://arxiv.org/abs/2305.13245
# - N. Shazeer, Z. Lan, Y. Cheng, N. Ding, L. Hou, "Talking-heads attention", 2020.
#   https://arxiv.org/abs/2003.02436
# - H. Touvron et al., "Llama 2: open foundation and fine-tuned chat models", 2023.
#   https://arxiv.org/abs/2307.09288
# - A. Q. Jiang et al., "Mistral 7B", 2023. https://arxiv.org/abs/2310.06825
# - E. Almazrouei et al., "The Falcon series of open language models", 2023.
#   https://arxiv.org/abs/2311.16867
# - N. Reimers, I. Gurevych, "Sentence-BERT: sentence embeddings using Siamese BERT-networks",
#   EMNLP 2019. https://arxiv.org/abs/1908.10084
# - J. Alammar, "The illustrated transformer", 2018.
#   https://jalammar.github.io/illustrated-transformer/
