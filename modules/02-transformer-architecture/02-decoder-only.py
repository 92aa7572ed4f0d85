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
# # Decoder-only models: causal masking, GPT and BERT
#
# GPT, Llama and nearly every chat model are *decoder-only*: one stack of transformer blocks,
# no encoder and no cross-attention, trained to predict the next token. What makes such a
# stack a generator is a single matrix, the *causal mask*, which stops every position from
# seeing the positions after it. Remove the mask and the same stack becomes a bidirectional
# encoder like BERT, which is good at representing text but cannot write it. This notebook
# builds the mask, proves that a model obeys it, compares a real bidirectional encoder with a
# causal model on the same sentence, and then pits a decoder-only model against an
# encoder-decoder of the same size on the translation task of the
# [previous notebook](01-encoder-decoder).
#
# **Learning objectives**
# - Build the causal mask in boolean and additive form and apply it in attention by hand,
#   matching PyTorch's `scaled_dot_product_attention(is_causal=True)`.
# - Verify causality of a model empirically: changing a token never changes the outputs before
#   it.
# - Contrast GPT (causal, next-token prediction, generation) with BERT (bidirectional, masked
#   language modelling, representation), and measure the difference on a real BERT-style model.
# - Frame a sequence-to-sequence task for a decoder-only model and compare it with an
#   encoder-decoder of similar size and equal training budget.
#
# **Prerequisites:** [The encoder-decoder transformer](01-encoder-decoder) (the toy translation
# task, the three masks) and [Probability for language models](../00-foundations/02-probability)
# (next-token prediction and cross-entropy).
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
import torch.nn as nn
import torch.nn.functional as F
import transformers

import shared
from shared.data import PairBatchSampler, toy_translation_pairs
from shared.generation import generate
from shared.layers import sinusoidal_positions
from shared.models import GPT, GPTConfig
from shared.plotting import heatmap, plot_curves
from shared.training import TrainConfig, Trainer

shared.seed_everything(0)
# The models here are tiny: splitting each small operation over several threads costs more in
# coordination than it saves, so we use one.
torch.set_num_threads(1)
print(shared.environment_summary("transformers", "sentence-transformers", "matplotlib"))

# %% [markdown]
# ## The causal mask, by hand
#
# Self-attention computes scores $S = QK^\top/\sqrt{d_k}$ between every query position $i$ and
# every key position $j$. A decoder that will generate text left to right must not let
# position $i$ use anything from positions $j > i$: at generation time those tokens do not
# exist yet. The causal mask sets those scores to $-\infty$ before the softmax, so that their
# weights are exactly $e^{-\infty} = 0$:
#
# $$\mathrm{weights}_{ij} = \frac{e^{S_{ij}}}{\sum_{j' \le i} e^{S_{ij'}}}\ \text{ for } j \le i,
# \qquad \mathrm{weights}_{ij} = 0 \ \text{ for } j > i .$$
#
# Written as a matrix, "may attend" is the lower triangle including the diagonal.

# %%
T, d_k = 6, 8
q, k, v = torch.randn(3, T, d_k).unbind(0)
allowed = torch.ones(T, T, dtype=torch.bool).tril()  # allowed[i, j]: j <= i
additive = torch.zeros(T, T).masked_fill(~allowed, float("-inf"))
print("boolean mask (1 = may attend):\n", allowed.int())
print("additive mask:\n", additive)

scores = q @ k.T / math.sqrt(d_k)
weights = torch.softmax(scores + additive, dim=-1)
by_hand = weights @ v
by_torch = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
print(f"max |by hand - SDPA(is_causal=True)| = {(by_hand - by_torch).abs().max():.2e}")
print(f"largest weight above the diagonal: {weights.triu(diagonal=1).max():.1f}; "
      f"rows sum to 1: {torch.allclose(weights.sum(-1), torch.ones(T))}")

# %% [markdown]
# Row $i$ of the weight matrix is a distribution over positions $0..i$: the first token attends
# only to itself, the last to everything. Because each row is computed independently, a whole
# sequence can be trained in one pass: position $i$ predicts token $i+1$ from tokens
# $0..i$, for every $i$ at once. That is what makes decoder-only training efficient.
#
# ## Verifying causality in a model
#
# A mask in one attention layer is not yet a guarantee about a whole model: a bug anywhere
# (a normalisation over the time axis, a convolution, a cache bug) can leak the future. The
# test is behavioural: change the token at position $j$ and check that no output before $j$
# moves. We run it on the course's GPT (`shared.models.GPT`, randomly initialised: causality is
# a property of the architecture, not of training).

# %%
gpt = GPT(GPTConfig(vocab_size=100, block_size=16, n_layer=2, n_head=4, d_model=32)).eval()
ids = torch.randint(100, (1, 12))
changed = ids.clone()
j = 7
changed[0, j] = (ids[0, j] + 1) % 100
with torch.no_grad():
    delta = (gpt(ids).logits - gpt(changed).logits).abs().amax(dim=-1)[0]
print(f"change the token at position {j}:")
print(f"  max |change| of the logits at positions 0..{j - 1}: {delta[:j].max():.1e}")
print(f"  max |change| of the logits at positions {j}..11:   {delta[j:].min():.3f} (smallest)")

# %% [markdown]
# Nothing before position 7 moves, and every position from 7 on does. Repeating the test for
# every position $j$ gives an *influence map*: entry $(i, j)$ is how much output $i$ changes when
# input $j$ changes. We draw it below next to the same map for a real bidirectional encoder.
#
# ## GPT and BERT: generation and representation
#
# The two families that came out of the transformer in 2018 differ in exactly this mask, and
# in the training objective that goes with it:
#
# | | GPT (Radford et al., 2018, 2019) | BERT (Devlin et al., 2019) |
# |---|---|---|
# | architecture | decoder-only stack | encoder-only stack |
# | attention | causal: position $i$ sees $0..i$ | bidirectional: every position sees all |
# | objective | next-token prediction at every position | masked language modelling: predict the ~15% of tokens that were hidden |
# | natural use | generation, continuation, chat | representations: classification, retrieval, tagging |
#
# A bidirectional model cannot generate left to right: its prediction for a position looks at
# the tokens after it, which do not exist yet during generation. A causal model can, but the
# vector it computes for a word knows nothing about the words that follow, so it is a weaker
# representation of that word in context.
#
# The course's real BERT-style model is all-MiniLM-L6-v2 (`shared.assets.sentence_encoder()`),
# a 6-layer, 12-head, 384-wide encoder distilled from a larger BERT-family model (Wang et al.,
# 2020) and tuned for sentence embeddings (Reimers and Gurevych, 2019). We take its underlying
# `transformers` model and ask for the attention weights (the "eager" implementation; the
# fused kernel does not return them).

# %%
transformers.logging.disable_progress_bar()  # no weight-loading progress bar in the output
sentence_model = shared.assets.sentence_encoder()
bert = sentence_model[0].auto_model.eval()  # the underlying transformers BertModel
bert.set_attn_implementation("eager")
tokenizer = sentence_model.tokenizer
print(type(bert).__name__, {k: getattr(bert.config, k) for k in
      ("num_hidden_layers", "num_attention_heads", "hidden_size", "vocab_size")})

sentences = ["i walked to the bank to deposit my salary",
             "i walked to the bank of the river to fish"]
batch = tokenizer(sentences, return_tensors="pt", padding=True)
tokens = [tokenizer.convert_ids_to_tokens(row) for row in batch["input_ids"]]
print(tokens[0], "\n", tokens[1], sep="")
with torch.no_grad():
    bert_out = bert(**batch, output_attentions=True)

# %% [markdown]
# First, how much attention does MiniLM put on *later* tokens? For a causal model the answer
# is zero by construction. For each layer we average, over heads and query positions of the
# first sentence, the total weight above the diagonal.

# %%
lengths = batch["attention_mask"].sum(dim=1).tolist()  # real tokens per sentence
for layer, att in enumerate(bert_out.attentions):
    a = att[0, :, : lengths[0], : lengths[0]]  # (heads, T, T), first sentence, no padding
    future = a.triu(diagonal=1).sum(dim=-1).mean()
    print(f"layer {layer + 1}: mean attention weight on future tokens = {future:.2f}")

# %% [markdown]
# Between a fifth and a third of every layer's attention goes to tokens that come *later*:
# MiniLM reads in both directions all the time. (BERT-style heads also park much of their
# weight on the special tokens `[CLS]` and `[SEP]` when nothing else is relevant, Clark et al.
# 2019; the [multi-head attention](04-multi-head-attention) notebook measures where MiniLM's
# heads look.)
#
# Now the consequence for representations. The two sentences share the prefix
# "[CLS] i walked to the bank". A causal model computes *identical* vectors for the prefix in
# both sentences, because nothing after it can reach it; a bidirectional model gives "bank"
# a different vector depending on whether money or a river follows. We compare the last-layer
# vectors of each prefix token across the two sentences (cosine similarity), for MiniLM and for
# a GPT reading the same token ids.

# %%
prefix = 6  # [CLS] i walked to the bank
gpt_words = GPT(GPTConfig(vocab_size=bert.config.vocab_size, block_size=32, n_layer=2,
                          n_head=4, d_model=64)).eval()


def gpt_hidden(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    """Final hidden states (B, T, d) of a shared.models.GPT: its blocks and final norm."""
    x = model.tok_emb(ids) + model.pos_emb(torch.arange(ids.shape[1]))
    for block in model.blocks:
        x = block(x)  # with no mask argument, a block's attention is causal
    return model.norm_f(x)


with torch.no_grad():
    bert_vectors = bert_out.last_hidden_state[:, :prefix]
    gpt_vectors = gpt_hidden(gpt_words, batch["input_ids"])[:, :prefix]
bert_cos = F.cosine_similarity(bert_vectors[0], bert_vectors[1], dim=-1)
gpt_cos = F.cosine_similarity(gpt_vectors[0], gpt_vectors[1], dim=-1)
print(f"{'token':>8} {'MiniLM cos':>11} {'GPT cos':>8}")
for t in range(prefix):
    print(f"{tokens[0][t]:>8} {bert_cos[t]:11.3f} {gpt_cos[t]:8.3f}")
print(f"GPT prefix vectors: max |difference| = {(gpt_vectors[0] - gpt_vectors[1]).abs().max():.1e}")

# %% [markdown]
# The GPT's prefix vectors are bit-for-bit the same in both sentences. MiniLM's all differ
# (cosine similarities between 0.52 and 0.91), including the vector of "bank", because every
# one of them already encodes what comes next. That is "representation vs generation" in one
# table. The influence maps show the same thing for every position pair: we replace each token
# in turn by BERT's `[MASK]` token and measure how far each output vector moves (relative to
# its length), for MiniLM and for the GPT.

# %%
def influence_map(hidden_fn, ids: torch.Tensor, replacement: int) -> torch.Tensor:
    """(T, T): relative change of output i when input j is replaced by `replacement`."""
    T = ids.shape[1]
    variants = ids.repeat(T, 1)
    variants[torch.arange(T), torch.arange(T)] = replacement  # row j has token j replaced
    with torch.no_grad():
        base, changed = hidden_fn(ids), hidden_fn(variants)  # (1, T, d), (T, T, d)
    return ((changed - base).norm(dim=-1) / base.norm(dim=-1)).T  # [i, j]


ids_bank = batch["input_ids"][1:, : lengths[1]]  # the river sentence, without padding
maps = {
    "MiniLM (bidirectional encoder)": influence_map(
        lambda x: bert(input_ids=x).last_hidden_state, ids_bank, tokenizer.mask_token_id),
    "GPT (causal decoder)": influence_map(
        lambda x: gpt_hidden(gpt_words, x), ids_bank, tokenizer.mask_token_id),
}
fig, axes = plt.subplots(1, 2, figsize=(13, 5))
for ax, (title, m) in zip(axes, maps.items()):
    heatmap(m, tokens[1][: lengths[1]], tokens[1][: lengths[1]], f"Influence map: {title}",
            xlabel="input token j (replaced by [MASK])", ylabel="output position i", ax=ax,
            colorbar_label="relative change of output i")
plt.tight_layout()
plt.show()
print("GPT: largest influence of a later token on an earlier output:",
      f"{maps['GPT (causal decoder)'].triu(diagonal=1).max():.1e}")

# %% [markdown]
# The causal model's map is exactly lower-triangular; the encoder's is full. (The GPT here is
# untrained, so the *sizes* in its map mean little; only the zero pattern matters.)
#
# ### Masked language modelling in one paragraph
#
# BERT is trained by hiding tokens and predicting them from both sides: 15% of positions are
# selected; of those, 80% are replaced by `[MASK]`, 10% by a random token and 10% left as they
# are (so that the model cannot assume that an unmasked token is always correct), and the loss
# is computed on the selected positions only. A causal LM gets a training signal at *every*
# position of every sequence; MLM gets one at 15% of them, so a causal LM draws about
# $1/0.15 \approx 6.7$ times as many targets from the same text. Exercise 2 implements the
# masking rule.
#
# ## Decoder-only vs encoder-decoder on the same task
#
# Any sequence-to-sequence task can be given to a decoder-only model by writing the input and
# the output as one sequence, `source <s> target </s>`, and computing the loss on the target
# tokens only: the model learns to *continue* a source with its translation. That is how a
# chat model "translates" when asked to. Does the dedicated encoder-decoder do better at equal
# size?
#
# We regenerate the toy English-to-French data of the [previous notebook](01-encoder-decoder)
# with the same rules: the course library holds the generator written there, as
# `shared.data.toy_translation_pairs`.

# %%
pairs: dict[str, str] = dict(toy_translation_pairs(9000, seed=0))
train_pairs, test_pairs = list(pairs.items())[:8000], list(pairs.items())[8000:]
print(f"{len(train_pairs)} training pairs, {len(test_pairs)} held-out pairs; e.g. {test_pairs[0]}")

# %% [markdown]
# Both models get the same tensors. The source is padded on the *left* to 7 words, so that in
# the decoder-only sequence the target always starts at the same position (position 7, right
# after the source) and a whole batch of prompts can be generated at once.

# %%
PAD, BOS, EOS = 0, 1, 2
words = sorted({w for en, fr in pairs.items() for w in f"{en} {fr}".split()})
itos = ["<pad>", "<s>", "</s>"] + words
stoi = {w: i for i, w in enumerate(itos)}
SRC_LEN = max(len(en.split()) for en in pairs)  # 7 English words at most
TGT_LEN = max(len(fr.split()) for fr in pairs.values()) + 2  # <s>, 7 French words, </s>


def encode_pairs(batch: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded source ids (n, SRC_LEN) and target ids <s> ... </s> (n, TGT_LEN)."""
    src = torch.full((len(batch), SRC_LEN), PAD)
    tgt = torch.full((len(batch), TGT_LEN), PAD)
    for i, (english, french) in enumerate(batch):
        s = [stoi[w] for w in english.split()]
        t = [BOS] + [stoi[w] for w in french.split()] + [EOS]
        src[i, SRC_LEN - len(s):] = torch.tensor(s)
        tgt[i, : len(t)] = torch.tensor(t)
    return src, tgt


train_src, train_tgt = encode_pairs(train_pairs)
test_src, test_tgt = encode_pairs(test_pairs)


def decoder_only_batch(src: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets for `source <s> target </s>`; loss on the target only."""
    sequence = torch.cat([src, tgt], dim=1)
    inputs, targets = sequence[:, :-1], sequence[:, 1:].clone()
    targets[:, :SRC_LEN] = -100  # predicting the source (and the given <s>) is not the task
    targets[targets == PAD] = -100
    return inputs, targets


x0, y0 = decoder_only_batch(train_src[:1], train_tgt[:1])
print("input :", " ".join(itos[i] for i in x0[0]))
print("target:", " ".join("-" if i == -100 else itos[i] for i in y0[0]))

# %% [markdown]
# The two contestants, at about the same parameter count:
#
# - **decoder-only**: `shared.models.GPT` with 5 layers of width 64 (4 heads, feed-forward
#   width 128, learned positions, pre-norm, GPT-2 initialisation);
# - **encoder-decoder**: PyTorch's `nn.Transformer` with 2 encoder and 2 decoder layers of the
#   same width (the layers we matched by hand in the previous notebook), the embedding
#   initialisation, sinusoidal positions and tied output layer of the previous notebook.
#
# A decoder layer with cross-attention has about 1.5 times the parameters of a self-attention
# layer, which is why 2 + 2 layers match 5.

# %%
class EncoderDecoder(nn.Module):
    """nn.Transformer with shared, tied embeddings and sinusoidal positions."""

    def __init__(self, vocab_size: int, d_model: int, n_head: int, d_ff: int, n_layer: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.embed_tokens = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", sinusoidal_positions(32, d_model), persistent=False)
        self.transformer = nn.Transformer(d_model, n_head, n_layer, n_layer, d_ff, dropout=0.0,
                                          batch_first=True)
        nn.init.normal_(self.embed_tokens.weight, std=d_model**-0.5)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(ids) * math.sqrt(self.d_model) + self.positions[: ids.shape[1]]

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], dtype=torch.bool)
        hidden = self.transformer(
            self.embed(src), self.embed(tgt_in), tgt_mask=causal, tgt_is_causal=True,
            src_key_padding_mask=src == PAD, memory_key_padding_mask=src == PAD,
        )
        return hidden @ self.embed_tokens.weight.T


def build(kind: str) -> nn.Module:
    if kind == "encoder-decoder":
        return EncoderDecoder(len(itos), d_model=64, n_head=4, d_ff=128, n_layer=2)
    return GPT(GPTConfig(vocab_size=len(itos), block_size=SRC_LEN + TGT_LEN - 1, n_layer=5,
                         n_head=4, d_model=64, d_ff=128))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


KINDS = ("decoder-only", "encoder-decoder")
n_params = {kind: count_params(build(kind)) for kind in KINDS}
print(n_params)

# %% [markdown]
# Training is identical for both: the same batches (32 pairs), 150 steps, learning rate
# schedule and seeds, through `shared.training.Trainer`; only the loss function differs in how
# it feeds the pair to the model. Each configuration is trained with two seeds.

# %%
def decoder_only_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return model(*decoder_only_batch(*batch)).loss


def encoder_decoder_loss(model: nn.Module,
                         batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    src, tgt = batch
    logits = model(src, tgt[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)


@torch.no_grad()
def translate_batch(model: nn.Module, src: torch.Tensor) -> torch.Tensor:
    """Greedy target ids (B, TGT_LEN - 1) after <s>, for either kind of model."""
    model.eval()
    if isinstance(model, GPT):  # continue `source <s>`, with shared.generation's KV cache
        prompt = torch.cat([src, torch.full((len(src), 1), BOS)], dim=1)
        return generate(model, prompt, TGT_LEN - 1)[:, SRC_LEN + 1:]
    out = torch.full((len(src), 1), BOS)
    for _ in range(TGT_LEN - 1):
        out = torch.cat([out, model(src, out)[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return out[:, 1:]


def exact_match(predicted: torch.Tensor, tgt: torch.Tensor) -> float:
    """Fraction of rows whose words up to and including </s> all match (tgt includes <s>)."""
    reference = tgt[:, 1:]
    return ((predicted == reference) | (reference == PAD)).all(dim=1).float().mean().item()


STEPS, SEEDS = 150, (0, 1)  # try STEPS = 300 (twice the time) and more seeds
results = {}
for kind in KINDS:
    for seed in SEEDS:
        shared.seed_everything(seed)
        model = build(kind)
        config = TrainConfig(max_steps=STEPS, batch_size=32, lr=5e-3, min_lr=5e-4,
                             warmup_steps=20, weight_decay=0.01, eval_interval=25,
                             eval_batches=2, seed=seed, progress=False)
        loss_fn = decoder_only_loss if kind == "decoder-only" else encoder_decoder_loss
        trainer = Trainer(model, PairBatchSampler(train_src, train_tgt, 32, seed),
                          PairBatchSampler(test_src, test_tgt, 250, seed=99), config, loss_fn=loss_fn)
        history = trainer.fit()
        results[kind, seed] = {
            "history": history,
            "exact_match": exact_match(translate_batch(model, test_src), test_tgt),
            "model": model,
        }
        print(f"{kind:16s} seed {seed}: held-out loss {history.final_val_loss:.4f}, "
              f"exact match {results[kind, seed]['exact_match']:.1%}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
curves = {f"{kind}, seed {seed}": r["history"].val_loss for (kind, seed), r in results.items()}
steps = {f"{kind}, seed {seed}": r["history"].val_steps for (kind, seed), r in results.items()}
plot_curves(steps, curves, "Held-out loss on the toy translation task", "optimizer step",
            "cross-entropy on target words (nats)", logy=True, ax=ax, markers=True)
plt.show()

print(f"{'model':16s} {'parameters':>10s} {'held-out exact match (per seed)':>33s}")
for kind in KINDS:
    em = ", ".join(f"{results[kind, seed]['exact_match']:.1%}" for seed in SEEDS)
    print(f"{kind:16s} {n_params[kind]:10,d} {em:>33s}")

# %% [markdown]
# At the same size and the same budget, the encoder-decoder learns this task much faster:
# with both seeds its held-out loss is below 0.05 by step 125, while the decoder-only model is
# still above 0.35 at step 150; the encoder-decoder then translates essentially every held-out
# sentence exactly, the decoder-only model between a fifth and a third of them. Given twice
# the budget (`STEPS = 300`), both models translate 99.8% or more of the held-out sentences
# exactly in our runs.
#
# Two structural differences plausibly explain the gap. The encoder reads the source in both
# directions, so the vector of "red" can already carry the gender of the noun after it,
# whereas the decoder-only model reads the source causally. And cross-attention keeps "read
# the source" apart from "write the target", which the decoder-only model must learn to do
# with one set of attention weights. The comparison has limits: the two models differ in more
# than the architecture (pre-norm with learned positions against post-norm with sinusoidal
# ones), their learning rate was not tuned separately, and this is one small task.
#
# Why, then, are large language models decoder-only? The advantage above belongs to tasks
# with a fixed split into input and output. Pre-training on raw text has no such split: every
# token is both context and target, and a causal LM learns from every position of every
# document. One model, one objective and one sequence format then serve translation,
# summarisation, question answering and chat alike, and the KV cache makes its generation
# cheap. (T5's systematic comparison, Raffel et al. 2020, found the encoder-decoder best on
# its benchmark suite; most large language models since have nevertheless been decoder-only.)
# A middle ground is the *prefix LM*: bidirectional attention inside the prefix, causal
# attention after it; Exercise 1 builds its mask.

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The prefix-LM mask
#
# A prefix language model (used by UniLM and T5's prefix-LM variant) attends bidirectionally
# inside a prefix of length `prefix_len` and causally after it. Write
# `prefix_lm_mask(T, prefix_len)` returning a boolean `(T, T)` tensor that is `True` where
# query $i$ **may** attend to key $j$: always when $j \le i$, and also when both $i$ and $j$
# are in the prefix. With `prefix_len = 0` it is the causal mask; with `prefix_len = T` it
# allows everything.

# %% tags=["solution"]
def prefix_lm_mask(T: int, prefix_len: int) -> torch.Tensor:
    """Boolean (T, T): True where query i may attend to key j in a prefix LM."""
    # BEGIN SOLUTION
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    mask[:prefix_len, :prefix_len] = True
    return mask
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_shape, passed

check_equal(prefix_lm_mask(5, 0), torch.ones(5, 5, dtype=torch.bool).tril(), "prefix_lm_mask(5, 0)")
check_equal(prefix_lm_mask(4, 4), torch.ones(4, 4, dtype=torch.bool), "prefix_lm_mask(4, 4)")
expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0],
                         [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
check_equal(prefix_lm_mask(5, 3), expected, "prefix_lm_mask(5, 3)")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: BERT's masking rule
#
# Write `mask_for_mlm(ids, mask_id, vocab_size, generator, p=0.15)` for an integer tensor
# `ids`. Select each position independently with probability `p`. Of the selected positions,
# replace 80% by `mask_id`, 10% by a token drawn uniformly from `range(vocab_size)`, and leave
# 10% unchanged. Return `(inputs, labels)`: the corrupted ids, and the original id at selected
# positions with `-100` everywhere else (the loss ignores -100). Use `generator` for every
# random draw. The check measures the proportions on a large tensor.

# %% tags=["solution"]
def mask_for_mlm(ids: torch.Tensor, mask_id: int, vocab_size: int, generator: torch.Generator,
                 p: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style corruption: (inputs, labels)."""
    # BEGIN SOLUTION
    selected = torch.rand(ids.shape, generator=generator) < p
    action = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[selected & (action < 0.8)] = mask_id
    random_positions = selected & (action >= 0.8) & (action < 0.9)
    random_tokens = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs[random_positions] = random_tokens[random_positions]
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    return inputs, labels
    # END SOLUTION


# %% tags=["check"]
ids = torch.randint(5, 30000, (200, 500), generator=torch.Generator().manual_seed(1))
inputs, labels = mask_for_mlm(ids, 103, 30522, torch.Generator().manual_seed(2))
check_shape(inputs, ids.shape, "inputs")
check_shape(labels, ids.shape, "labels")
selected = labels != -100
check_close(selected.float().mean().item(), 0.15, "share of selected positions", atol=0.005)
check_equal(labels[selected], ids[selected], "labels at selected positions (the original ids)")
check_equal(inputs[~selected], ids[~selected], "inputs at unselected positions (unchanged)")
masked = (inputs == 103) & selected
kept = (inputs == ids) & selected
check_close(masked.sum().item() / selected.sum().item(), 0.8, "share replaced by [MASK]", atol=0.01)
check_close(kept.sum().item() / selected.sum().item(), 0.1, "share left unchanged", atol=0.01)
check_close((~masked & ~kept & selected).sum().item() / selected.sum().item(), 0.1,
            "share replaced by a random token", atol=0.01)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: A causality test
#
# Write `future_leak(logits_fn, ids, j)`: `logits_fn` maps an id tensor `(1, T)` to outputs
# `(1, T, ...)`. Change the token at position `j` (to `(ids[0, j] + 1) % 100`) and return the
# largest absolute change of the outputs at positions **before** `j`, as a float. For a causal
# model it is 0; for a bidirectional one it is not. The check runs it on the GPT of this
# notebook and on a bidirectional attention function.

# %% tags=["solution"]
def future_leak(logits_fn, ids: torch.Tensor, j: int) -> float:
    """Largest change of outputs before position j when token j changes."""
    # BEGIN SOLUTION
    changed = ids.clone()
    changed[0, j] = (ids[0, j] + 1) % 100
    with torch.no_grad():
        return (logits_fn(ids)[:, :j] - logits_fn(changed)[:, :j]).abs().max().item()
    # END SOLUTION


# %% tags=["check"]
embedding = torch.randn(100, 16, generator=torch.Generator().manual_seed(0))


def bidirectional(x: torch.Tensor) -> torch.Tensor:
    e = embedding[x]
    return F.scaled_dot_product_attention(e, e, e)


def causal(x: torch.Tensor) -> torch.Tensor:
    e = embedding[x]
    return F.scaled_dot_product_attention(e, e, e, is_causal=True)


test_ids = torch.randint(100, (1, 10), generator=torch.Generator().manual_seed(3))
for j in (3, 6, 9):
    check(future_leak(lambda x: gpt(x).logits, test_ids, j) == 0.0, f"future_leak(gpt, j={j})",
          "0.0 for the causal GPT")
    check(future_leak(causal, test_ids, j) == 0.0, f"future_leak(causal, j={j})",
          "0.0 for causal attention")
    check(future_leak(bidirectional, test_ids, j) > 1e-3, f"future_leak(bidirectional, j={j})",
          "a clear change (> 1e-3) for bidirectional attention")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Greedy generation, written out
#
# `shared.generation.generate` hides a simple loop. Write `greedy_continue(model, prompt, n)`
# that appends `n` tokens to `prompt` `(B, T)` one at a time, each the argmax of the model's
# logits at the last position (`model(idx).logits[:, -1]`), re-running the model on the whole
# sequence every step (no cache). Return the extended `(B, T + n)` tensor. The check compares
# it with `generate` (which uses a KV cache) on a trained decoder-only model.

# %% tags=["solution"]
@torch.no_grad()
def greedy_continue(model: GPT, prompt: torch.Tensor, n: int) -> torch.Tensor:
    """Greedy decoding without a cache."""
    # BEGIN SOLUTION
    idx = prompt
    for _ in range(n):
        next_token = model(idx).logits[:, -1].argmax(dim=-1, keepdim=True)
        idx = torch.cat([idx, next_token], dim=1)
    return idx
    # END SOLUTION


# %% tags=["check"]
trained = results["decoder-only", 0]["model"]
prompts = torch.cat([test_src[:16], torch.full((16, 1), BOS)], dim=1)
result = greedy_continue(trained, prompts, TGT_LEN - 1)
check_shape(result, (16, SRC_LEN + TGT_LEN), "greedy_continue(...)")
check_equal(result, generate(trained, prompts, TGT_LEN - 1), "greedy_continue vs generate")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - The causal mask sets the scores of future keys to $-\infty$ before the softmax, so row
#   $i$ of the attention weights is a distribution over positions $0..i$. By hand it matches
#   `scaled_dot_product_attention(is_causal=True)`.
# - Causality is checked behaviourally: changing token $j$ leaves every earlier output exactly
#   unchanged in the course GPT; its influence map is lower-triangular.
# - GPT-style decoders (causal, next-token prediction) generate; BERT-style encoders
#   (bidirectional, masked language modelling) represent. In the real MiniLM encoder a large
#   share of attention goes to later tokens, and the vector of "bank" changes with what follows
#   it; in a causal model the prefix vectors are identical.
# - A decoder-only model handles a sequence-to-sequence task as `source <s> target </s>` with
#   the loss on the target. On the toy translation task, at about 175k parameters and 150
#   steps, the encoder-decoder learned much faster (about 100% of held-out sentences exact,
#   against 22-36%); with 300 steps both reach 99.8% or more. The decoder-only model's strength is
#   generality, not sample efficiency on one fixed task.
#
# Next: [self-attention](03-self-attention), opened up: queries, keys, values and the scores
# between them, by hand and in a real model.
#
# ## References
#
# - A. Radford, K. Narasimhan, T. Salimans, I. Sutskever, "Improving language understanding by
#   generative pre-training", OpenAI, 2018.
#   https://cdn.openai.com/research-covers/language-unsupervised/language_understanding_paper.pdf
# - A. Radford et al., "Language models are unsupervised multitask learners", OpenAI, 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: pre-training of deep bidirectional
#   transformers for language understanding", NAACL 2019. https://arxiv.org/abs/1810.04805
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017.
#   https://arxiv.org/abs/1706.03762
# - H. Touvron et al., "LLaMA: open and efficient foundation language models", 2023.
#   https://arxiv.org/abs/2302.13971
# - C. Raffel et al., "Exploring the limits of transfer learning with a unified text-to-text
#   transformer" (T5), JMLR 2020. https://arxiv.org/abs/1910.10683
# - L. Dong et al., "Unified language model pre-training for natural language understanding and
#   generation" (UniLM), NeurIPS 2019. https://arxiv.org/abs/1905.03197
# - K. Clark, U. Khandelwal, O. Levy, C. D. Manning, "What does BERT look at? An analysis of
#   BERT's attention", BlackboxNLP 2019. https://arxiv.org/abs/1906.04341
# - N. Reimers, I. Gurevych, "Sentence-BERT: sentence embeddings using Siamese BERT-networks",
#   EMNLP 2019. https://arxiv.org/abs/1908.10084
# - W. Wang et al., "MiniLM: deep self-attention distillation for task-agnostic compression of
#   pre-trained transformers", NeurIPS 2020. https://arxiv.org/abs/2002.10957
# - Hugging Face, "Text generation strategies".
#   https://huggingface.co/docs/transformers/generation_strategies
