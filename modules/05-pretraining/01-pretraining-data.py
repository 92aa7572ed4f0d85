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
# # Pretraining data: from a corpus to batches
#
# A pretraining run is a machine that turns documents into gradient updates. Between the raw
# text and the model sit a tokenizer, a way of cutting token streams into fixed-length rows, a
# data loader that shuffles and shards those rows, and an *objective* that says which tokens the
# model must predict. Each choice decides how much of the compute is spent on real text and what
# the model learns from it: padding short documents can waste most of a batch, packing them
# together wastes nothing but lets documents see each other, and a causal objective supervises
# every position where a masked one supervises 15% of them. This notebook builds the whole path
# on real documents (the speeches of nine Shakespeare plays) and measures each of these effects.
#
# **Learning objectives**
# - Turn a corpus of documents into token ids with a character tokenizer and a byte-level BPE,
#   and measure their compression on a held-out play.
# - Pack documents into fixed-length rows, and measure packing efficiency against padding for
#   context lengths from 32 to 1,024 tokens.
# - Keep packed documents apart with a document mask, and verify that attention then equals
#   attention over each document alone.
# - Build data loaders: shifted inputs and targets, padding left out of the loss, seeded
#   shuffling, sharding across data-parallel ranks, and an exactly resumable position.
# - Contrast the causal and masked language-modelling objectives (attention masks, supervised
#   positions, the 80/10/10 rule) and take an MLM gradient step on a small encoder.
#
# **Prerequisites:** [byte-level BPE](../03-data-and-tokenization/02-tokenization-algorithms)
# and [the `tokenizers` library](../03-data-and-tokenization/03-hf-tokenizers);
# [a minimal GPT](../04-llm-from-scratch/01-minimal-llm) (embeddings, causal attention,
# the next-token loss).
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
import re
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler

import shared
from shared.assets import corpus
from shared.data import (
    BlockDataset,
    CharTokenizer,
    RowBatchSampler,
    block_dataloader,
    pack_sequences,
    packing_efficiency,
    pad_sequences,
    train_bpe_tokenizer,
)

torch.set_num_threads(1)  # the models here are tiny: one thread avoids the overhead of two
shared.seed_everything(0)
print(shared.environment_summary("tokenizers", "matplotlib"))

# %% [markdown]
# ## The corpus: documents of very different lengths
#
# A pretraining corpus is a collection of *documents* (web pages, books, code files) whose
# lengths span several orders of magnitude; The Pile (Gao et al., 2020) mixes 22 sources, from
# short chat messages to whole books. Our stand-in is the Globe edition of Shakespeare from
# `shared.assets.corpus("shakespeare")`. A document is one paragraph of a play: a speech with
# its speaker's name, or a stage direction. Eight plays are the training corpus; a ninth,
# *Antony and Cleopatra*, is held out to measure the tokenizers on text they never saw.

# %%
works = corpus("shakespeare")
TRAIN_PLAYS = ["Hamlet", "Macbeth", "King Lear", "Othello", "Romeo and Juliet",
               "Julius Caesar", "The Tempest", "Twelfth Night"]
HELD_OUT_PLAY = "Antony and Cleopatra"


def split_documents(text: str) -> list[str]:
    """The blank-line-separated paragraphs of a play: speeches and stage directions."""
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


train_docs = [doc for play in TRAIN_PLAYS for doc in split_documents(works[play])]
held_out_docs = split_documents(works[HELD_OUT_PLAY])
print(f"{len(works)} works in the corpus; training documents: {len(train_docs):,} "
      f"({sum(map(len, train_docs)):,} characters) from {len(TRAIN_PLAYS)} plays; "
      f"held out: {len(held_out_docs):,} from {HELD_OUT_PLAY}")
print("three documents:", [train_docs[i] for i in (60, 61, 62)])

# %% [markdown]
# ## Tokens: characters or byte-level BPE
#
# The simplest tokenizer maps each character to an id (`CharTokenizer`, as nanoGPT's
# `shakespeare_char`). A byte-level BPE (GPT-2's scheme, Radford et al., 2019) starts from the
# 256 bytes and merges frequent pairs into longer tokens, so the same text needs fewer tokens.
# We train one with 2,048 tokens on the training plays, with three special tokens: the
# end-of-text separator `<|endoftext|>`, `<pad>` for padding and `<mask>` for the masked
# objective at the end of this notebook.

# %%
char_tokenizer = CharTokenizer.fit("".join(train_docs))
bpe = train_bpe_tokenizer(train_docs, vocab_size=2048,
                          special_tokens=("<|endoftext|>", "<pad>", "<mask>"))
EOS_ID, PAD_ID, MASK_ID = (bpe.token_to_id(t) for t in ("<|endoftext|>", "<pad>", "<mask>"))
held_out_text = "\n\n".join(held_out_docs)
for name, tokenizer in [("characters", char_tokenizer), ("byte-level BPE", bpe)]:
    n_tokens = len(tokenizer.encode(held_out_text))
    print(f"{name:>15}: vocabulary {tokenizer.vocab_size:5d}, held-out play -> {n_tokens:7,d} "
          f"tokens, {len(held_out_text) / n_tokens:.2f} characters per token")
print("round trip exact:", bpe.decode(bpe.encode(held_out_text)) == held_out_text)
example = held_out_docs[100]
print(repr(example))
print([bpe.decode([i]) for i in bpe.encode(example)])

# %% [markdown]
# The BPE needs about 2.6 times fewer tokens for the same text, so a context of $T$ tokens holds
# about 2.6 times more Shakespeare, and each training step covers more text. From here on the
# documents are BPE token ids. Their lengths are spread wide: most speeches are a line or two,
# a few run to hundreds of tokens.

# %%
train_ids = [bpe.encode(doc) for doc in train_docs]
lengths = np.array([len(ids) + 1 for ids in train_ids])  # + 1 for the end-of-text separator
print(f"{lengths.sum():,} tokens in {len(lengths):,} documents; length percentiles "
      f"10/50/90/99: {np.percentile(lengths, [10, 50, 90, 99]).round().astype(int).tolist()}, "
      f"longest {lengths.max()}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(lengths, bins=np.logspace(0, np.log10(lengths.max() + 1), 40), color="tab:blue")
for block in (64, 256, 1024):
    ax.axvline(block, color="gray", ls="--")
    ax.text(block * 1.05, ax.get_ylim()[1] * 0.9, f"T={block}", color="gray")
ax.set(xscale="log", xlabel="document length (BPE tokens, with separator)",
       ylabel="number of documents", title="Document lengths in the training plays")
plt.show()

# %% [markdown]
# ## Padding or packing
#
# A batch is a rectangle of $B$ rows of $T$ tokens. There are two ways to fill it with
# documents:
#
# - **Padding** (`pad_sequences`): each document, followed by the separator, starts a new row;
#   a document longer than $T$ fills several rows, and the last row of every document is filled
#   up with `<pad>`. The model computes on the padding and the loss then ignores it.
# - **Packing** (`pack_sequences`): concatenate all documents, each followed by the separator,
#   and cut the stream into rows. Every slot holds a real token; documents cross row
#   boundaries. GPT-2 and nanoGPT train this way; RoBERTa's "full-sentences" input is the same
#   idea (Liu et al., 2019).
#
# *Packing efficiency* is the fraction of slots that hold real tokens (`packing_efficiency`).
# For padding it is $\sum_d L_d / \sum_d T \lceil L_d / T \rceil$, which falls as $T$ grows past
# the typical document length. Below, the first rows of each layout at $T = 64$, coloured by
# document.

# %%
def document_index_map(rows: torch.Tensor, pad_id: int | None) -> np.ndarray:
    """Colour each slot by the document it belongs to (documents end at EOS); padding -> NaN."""
    boundaries = torch.cumsum((rows == EOS_ID).flatten().long(), 0).view(rows.shape)
    doc = (boundaries - (rows == EOS_ID).long()).numpy().astype(float)  # EOS ends its document
    if pad_id is not None:
        doc[(rows == pad_id).numpy()] = np.nan
    return doc % 10  # cycle through 10 colours


BLOCK = 64
packed = pack_sequences(train_ids, BLOCK, EOS_ID)
padded = pad_sequences(train_ids, BLOCK, EOS_ID, PAD_ID)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for ax, rows, pad, name in [(axes[0], padded, PAD_ID, "padded"), (axes[1], packed, None, "packed")]:
    ax.imshow(document_index_map(rows[:12], pad), cmap="tab10", aspect="auto",
              interpolation="nearest")
    ax.set(xlabel="position in row", ylabel="row",
           title=f"{name}: {len(rows):,} rows, efficiency {packing_efficiency(rows, pad):.0%}")
fig.suptitle("The first 12 rows at T = 64, one colour per document (white: padding)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Now the measurement over the whole training set for context lengths from 32 to 1,024: the
# efficiency of each layout, and the number of rows (the compute: every row costs the same
# forward and backward pass) needed to see every token once.

# %%
blocks = [32, 64, 128, 256, 512, 1024]
pad_efficiency, pack_efficiency, pad_rows, pack_rows = [], [], [], []
for block in blocks:
    rows_padded = pad_sequences(train_ids, block, EOS_ID, PAD_ID)
    rows_packed = pack_sequences(train_ids, block, EOS_ID)
    pad_efficiency.append(packing_efficiency(rows_padded, PAD_ID))
    pack_efficiency.append(packing_efficiency(rows_packed, PAD_ID))
    pad_rows.append(len(rows_padded))
    pack_rows.append(len(rows_packed))
    predicted = lengths.sum() / (block * np.ceil(lengths / block)).sum()
    print(f"T={block:5d}: padding efficiency {pad_efficiency[-1]:6.1%} (formula {predicted:6.1%}),"
          f" rows padded {pad_rows[-1]:6,d} vs packed {pack_rows[-1]:5,d}:"
          f" {pad_rows[-1] / pack_rows[-1]:5.1f}x the compute")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].plot(blocks, pad_efficiency, "o-", label="padding")
axes[0].plot(blocks, pack_efficiency, "s-", label="packing")
axes[0].set(xscale="log", xlabel="context length T (tokens)", ylabel="packing efficiency",
            title="Share of slots holding real tokens", ylim=(0, 1.05))
axes[0].set_xticks(blocks, [str(b) for b in blocks])
axes[0].minorticks_off()
axes[0].legend()
axes[1].plot(blocks, np.array(pad_rows) / np.array(pack_rows), "o-", color="tab:red")
axes[1].set(xscale="log", yscale="log", xlabel="context length T (tokens)",
            ylabel="rows padded / rows packed", title="Extra compute of padding for one epoch")
axes[1].set_xticks(blocks, [str(b) for b in blocks])
axes[1].set_yticks([1, 2, 5, 10, 20], ["1", "2", "5", "10", "20"])
axes[1].minorticks_off()
plt.tight_layout()
plt.show()

# %% [markdown]
# Padding wastes half of the batch at $T = 64$ and 96% of it at $T = 1{,}024$, where every
# speech (median length 19 tokens) sits alone in a row of a thousand slots; packing needs
# 25 times fewer rows for the same tokens. The formula matches the measurement to the
# digit. Packing is why pretraining runs with long contexts pack, and why fine-tuning code that
# pads (one example per row) sorts or buckets examples by length. Krell et al. (2021) measured
# the same effect on BERT's Wikipedia data, where padding made up more than half of the tokens at
# length 512, and packed whole sequences into rows by treating it as a bin-packing problem
# (Exercise 1 writes the classic bin-packing heuristic).

# %% [markdown]
# ## Packing lets documents see each other
#
# In a packed row, causal attention lets a token attend to the end of the *previous* document,
# which has nothing to do with it. For short pretraining documents this adds some noise;
# when the model must not mix documents (fine-tuning examples, or a row of unrelated
# prompts), the fix is a *document mask*: position $i$ may attend to position $j$ only if
# $j \le i$ and both lie in the same document. Krell et al. (2021) use this mask and restart
# the position ids at each document. The mask is block-diagonal, each block a causal triangle.

# %%
def document_causal_mask(row: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(T, T) boolean mask: True where query i may attend to key j (same document, j <= i)."""
    is_eos = (row == eos_id).long()
    document = torch.cumsum(is_eos, 0) - is_eos  # an EOS belongs to the document it ends
    same_document = document[:, None] == document[None, :]
    causal = torch.ones(len(row), len(row), dtype=torch.bool).tril()
    return same_document & causal


row = packed[int((packed[:100] == EOS_ID).sum(1).argmax())]  # a row with many documents
mask = document_causal_mask(row, EOS_ID)
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
axes[0].imshow(torch.ones(BLOCK, BLOCK).tril(), cmap="Blues", vmin=0, vmax=1.3)
axes[0].set(title="causal mask", xlabel="key position j", ylabel="query position i")
axes[1].imshow(mask, cmap="Blues", vmin=0, vmax=1.3)
axes[1].set(title=f"document mask ({int((row == EOS_ID).sum())} separators in this row)",
            xlabel="key position j", ylabel="query position i")
plt.tight_layout()
plt.show()

# %% [markdown]
# The claim to check: with this mask, attention over the packed row gives, for every document
# in it, exactly what attention over that document alone gives. We use one attention layer with
# random projections of random token embeddings (no positions, so that the only thing that
# differs is what each token can see).

# %%
torch.manual_seed(0)
d_head = 16
embedding = torch.randn(bpe.vocab_size, d_head)
W_q, W_k, W_v = (torch.randn(d_head, d_head) / d_head**0.5 for _ in range(3))


def attend(ids: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    x = embedding[ids]
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    if attn_mask is None:
        return F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
    return F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=attn_mask)[0]


packed_out = attend(row, mask)
causal_out = attend(row)
ends = (row == EOS_ID).nonzero().flatten().tolist()
starts = [0] + [e + 1 for e in ends]
worst_masked, worst_causal = 0.0, 0.0
for start, end in zip(starts, ends + [BLOCK - 1]):
    alone = attend(row[start : end + 1])
    worst_masked = max(worst_masked, (packed_out[start : end + 1] - alone).abs().max().item())
    worst_causal = max(worst_causal, (causal_out[start : end + 1] - alone).abs().max().item())
print(f"{len(starts)} document pieces in the row")
print(f"max |packed with document mask - each document alone| = {worst_masked:.1e}")
print(f"max |packed with plain causal mask - each document alone| = {worst_causal:.2f}")

# %% [markdown]
# With the document mask the difference is at the level of float rounding; with the plain
# causal mask, tokens after the first document attend across the boundary and their outputs
# change by order one. (A document cut by the row boundary is a separate piece in each row:
# packing without a mask or with one never lets a row see the previous row.)

# %% [markdown]
# ## Data loaders
#
# A causal model's training pair is a row and the same row shifted by one: inputs
# `row[:-1]`, targets `row[1:]`. `BlockDataset` makes exactly that, and with a `pad_id` it turns
# padding targets into $-100$, the index that `F.cross_entropy` skips, so padding never adds to
# the loss. `block_dataloader` wraps it in a standard PyTorch `DataLoader` with seeded
# shuffling.

# %%
loader = block_dataloader(padded, batch_size=8, seed=0, pad_id=PAD_ID)
x, y = next(iter(loader))
print(f"inputs {tuple(x.shape)}, targets {tuple(y.shape)}")
print("input  :", [bpe.decode([i]) for i in x[0, :10].tolist()])
print("target :", [bpe.decode([i]) if i >= 0 else "-100" for i in y[0, :10].tolist()])
supervised = (y != -100).sum().item()
print(f"supervised targets in this padded batch: {supervised} of {y.numel()} "
      f"({supervised / y.numel():.0%}); in a packed batch: all of them")

# %% [markdown]
# Data-parallel training runs one copy of the model per GPU, and each copy (rank) must see a
# different part of the data every epoch. `torch.utils.data.DistributedSampler` shards the
# indices: with a shared seed, every rank draws the same permutation and keeps every
# `num_replicas`-th index starting at its rank. We can call it for both ranks in one process
# (passing `num_replicas` and `rank` explicitly) to check that the shards are disjoint and
# together cover the dataset, and that `set_epoch` reshuffles. One detail matters: when the
# number of rows is not a multiple of the number of ranks, the sampler by default *repeats*
# rows so that every rank gets the same count; `drop_last=True` drops the remainder instead.

# %%
dataset = BlockDataset(packed)
print(f"{len(dataset):,} rows for 2 ranks")
for drop_last in (False, True):
    shards = {}
    for rank in (0, 1):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0,
                                     drop_last=drop_last)
        sampler.set_epoch(0)
        shards[rank] = list(sampler)
        if not drop_last:
            sampler.set_epoch(1)
            print(f"rank {rank}: {len(shards[rank]):,} rows; epoch 0 starts {shards[rank][:4]}, "
                  f"epoch 1 starts {list(sampler)[:4]}")
    shared_rows = set(shards[0]) & set(shards[1])
    missing = set(range(len(dataset))) - set(shards[0]) - set(shards[1])
    print(f"drop_last={drop_last}: rows on both ranks {sorted(shared_rows)}, "
          f"rows on neither {sorted(missing)}")

# %% [markdown]
# By default one row went to both ranks (5,765 rows were padded to 5,766 so that each rank gets
# 2,883); with `drop_last=True` one row is left out of this epoch instead. Either is harmless
# for one row in thousands, but it is worth knowing when a run must see every example exactly
# once.

# %% [markdown]
# A long run is interrupted and resumed, and it should then see exactly the batches it would
# have seen. `RowBatchSampler` (the sampler `shared.training` uses for rows) keeps its position
# as three integers, so resuming is exact: draw three batches, save the state, draw two more;
# a fresh sampler that loads the state draws the same two.

# %%
sampler = RowBatchSampler(packed, batch_size=8, seed=0)
for _ in range(3):
    sampler.next_batch()
state = sampler.state_dict()
expected = [sampler.next_batch()[0] for _ in range(2)]
resumed = RowBatchSampler(packed, batch_size=8, seed=0)
resumed.load_state_dict(state)
print("state:", state)
print("resumed batches identical:", all(torch.equal(resumed.next_batch()[0], e) for e in expected))

# %% [markdown]
# ## Two objectives: causal and masked language modelling
#
# A **causal** language model (GPT; Radford et al., 2018) predicts every token from the tokens
# before it. Attention is causal, and every position of a row is a target: $T$ predictions per
# row. A **masked** language model (BERT; Devlin et al., 2019) sees the whole row at once and
# predicts tokens that were hidden. BERT selects 15% of positions; of those, 80% are replaced by
# `<mask>`, 10% by a random token and 10% are left as they are, so that the model cannot learn
# that only `<mask>` positions matter (the actual input at fine-tuning time never contains
# `<mask>`). The loss covers the selected positions only.
#
# $$\mathcal{L}_{\text{causal}} = -\frac{1}{T}\sum_{t=1}^{T} \log p(x_t \mid x_{<t}), \qquad
# \mathcal{L}_{\text{MLM}} = -\frac{1}{|M|}\sum_{t \in M} \log p(x_t \mid \tilde{x}),$$
#
# where $M$ is the set of selected positions and $\tilde{x}$ the corrupted row. Drawing a new
# mask every time a row is used is RoBERTa's *dynamic masking* (Liu et al., 2019); the function
# below does that, since it runs per batch.

# %%
def bert_mask(
    ids: torch.Tensor, generator: torch.Generator, select: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: (corrupted inputs, targets with -100 everywhere except selected)."""
    selected = torch.rand(ids.shape, generator=generator) < select
    targets = torch.where(selected, ids, torch.full_like(ids, -100))
    choice = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[selected & (choice < 0.8)] = MASK_ID
    randomised = selected & (choice >= 0.8) & (choice < 0.9)
    inputs[randomised] = torch.randint(bpe.vocab_size, (int(randomised.sum()),), generator=generator)
    return inputs, targets


generator = torch.Generator().manual_seed(0)
inputs, targets = bert_mask(packed, generator)
selected = targets != -100
print(f"selected: {selected.float().mean():.2%} of {packed.numel():,} tokens; of those, "
      f"<mask> {(inputs[selected] == MASK_ID).float().mean():.1%}, "
      f"unchanged {(inputs[selected] == packed[selected]).float().mean():.1%}, "
      f"other {((inputs[selected] != MASK_ID) & (inputs[selected] != packed[selected])).float().mean():.1%}")
shown = [(f"[{bpe.decode([t])}->{bpe.decode([i])}]" if s else bpe.decode([i]))
         for i, t, s in zip(inputs[1, :32].tolist(), packed[1, :32].tolist(), selected[1, :32].tolist())]
print("row 1, [original->input] at selected positions:\n" + "".join(shown))

# %% [markdown]
# The measured shares are 15%, then 80/10/10 of those. (A random replacement can draw the
# original token, one chance in 2,048, which is why "unchanged" is not counted as "random".)
# The two objectives differ in what the model sees and in how much supervision a row gives:

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
T_show = 16
axes[0].imshow(torch.ones(T_show, T_show).tril(), cmap="Blues", vmin=0, vmax=1.3)
axes[0].set(title="causal: attend to the past", xlabel="key position", ylabel="query position")
axes[1].imshow(torch.ones(T_show, T_show), cmap="Blues", vmin=0, vmax=1.3)
axes[1].set(title="masked LM: attend everywhere", xlabel="key position", ylabel="query position")
per_row = [BLOCK - 1, selected.sum(1).float().mean().item()]
axes[2].bar(["causal", "masked (15%)"], per_row, color=["tab:blue", "tab:orange"])
axes[2].set(title=f"targets per row of {BLOCK} tokens", ylabel="supervised positions")
for i, value in enumerate(per_row):
    axes[2].text(i, value + 1, f"{value:.1f}", ha="center")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### An MLM step on a small encoder
#
# The pretrained MiniLM of the course (`shared.assets.sentence_encoder()`) is a BERT, but it
# ships without its MLM head, so we build a small encoder ourselves: token and position
# embeddings, two bidirectional `torch.nn.TransformerEncoder` layers (no causal mask), a final
# LayerNorm, and an MLM head that reuses the token embedding matrix (with a bias per token), as
# BERT's does. As in BERT implementations, the head runs only at the selected positions.
# Embeddings start at a standard deviation of 0.02, so the first loss is close to
# $\ln V = \ln 2048 = 7.62$.

# %%
class TinyEncoder(nn.Module):
    """A bidirectional transformer encoder with a tied masked-language-modelling head."""

    def __init__(self, vocab_size: int, block_size: int, d_model: int = 128, n_layer: int = 2,
                 n_head: int = 4) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_head, 4 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head_bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Contextual vectors (B, T, d): every position sees every other (no mask)."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.norm(self.encoder(self.tok_emb(ids) + self.pos_emb(positions)))

    def mlm_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy at the selected positions only (targets != -100)."""
        hidden = self(inputs)
        selected = targets != -100
        logits = hidden[selected] @ self.tok_emb.weight.T + self.head_bias
        return F.cross_entropy(logits, targets[selected])


torch.manual_seed(0)
encoder = TinyEncoder(bpe.vocab_size, BLOCK)
optimizer = torch.optim.AdamW(encoder.parameters(), lr=3e-3)
print(f"encoder parameters: {sum(p.numel() for p in encoder.parameters()):,}")

batch_inputs, batch_targets = bert_mask(packed[:32], torch.Generator().manual_seed(1))
loss_before = encoder.mlm_loss(batch_inputs, batch_targets)
optimizer.zero_grad()
loss_before.backward()
grad_norm = torch.nn.utils.get_total_norm([p.grad for p in encoder.parameters()])
optimizer.step()
with torch.no_grad():
    loss_after = encoder.mlm_loss(batch_inputs, batch_targets)
print(f"{int((batch_targets != -100).sum())} selected positions in a batch of 32 rows")
print(f"MLM loss on the batch: {loss_before.item():.3f} before the step (ln V = "
      f"{math.log(bpe.vocab_size):.3f}), {loss_after.item():.3f} after one AdamW step "
      f"(gradient norm {grad_norm:.2f})")

# %% [markdown]
# One step lowers the loss on the batch it was computed on, which is what a gradient step
# promises and nothing more. A short run on fresh batches (a new mask each time) shows how far a
# small budget gets. A useful reference is the entropy of the unigram distribution of the
# training tokens: the loss of a model that predicts each token's overall frequency and ignores
# the context.

# %%
MLM_STEPS = 80  # 10,000+ on a GPU to learn more than word frequencies
counts = Counter(packed.flatten().tolist())
frequencies = np.array(list(counts.values()), dtype=float) / packed.numel()
unigram_entropy = float(-(frequencies * np.log(frequencies)).sum())
batch_generator = torch.Generator().manual_seed(2)
mlm_losses = []
for step in range(MLM_STEPS):
    rows_index = torch.randint(len(packed), (32,), generator=batch_generator)
    loss = encoder.mlm_loss(*bert_mask(packed[rows_index], batch_generator))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    mlm_losses.append(loss.item())
print(f"MLM loss, mean of the last 10 steps: {np.mean(mlm_losses[-10:]):.3f}; "
      f"unigram entropy {unigram_entropy:.3f}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(range(2, MLM_STEPS + 2), mlm_losses, label="MLM training loss (fresh masks)")  # step 1 above
ax.axhline(math.log(bpe.vocab_size), color="gray", ls=":", label="ln V (uniform guess)")
ax.axhline(unigram_entropy, color="tab:red", ls="--", label="unigram entropy")
ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats/token)",
       title="A small encoder learns word frequencies first")
ax.legend()
plt.show()

# %% [markdown]
# In 80 steps the loss levels off just above the unigram entropy: the encoder has learned
# which tokens are frequent, not yet how the context changes them. Getting below that line takes thousands of steps;
# notebook [02](02-next-token-prediction) does the causal version of that longer run, and
# compares with a model trained for longer still.

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Packing without cutting documents (first-fit decreasing)
#
# `pack_sequences` cuts documents at row boundaries. Krell et al. (2021) instead pack whole
# documents into rows, leaving a little padding: a bin-packing problem. Write the classic
# heuristic for it, `first_fit_decreasing(lengths, block)`:
# sort the lengths from longest to shortest, put each into the first row that still has room
# (open a new row when none has), and return the rows as lists of document indices. Every
# length is at most `block`. Then set `ffd_efficiency` to the packing efficiency (real tokens
# over `rows * block`) it achieves on the training documents at `block = 256` (documents longer
# than 256 are cut into pieces of at most 256 first, as done for you below). The check verifies
# the rows on small cases and compares the efficiency with padding.

# %% tags=["solution"]
def first_fit_decreasing(lengths: list[int], block: int) -> list[list[int]]:
    """Bins of document indices; each bin's total length is at most `block`."""
    # BEGIN SOLUTION
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r, free in enumerate(room):
            if lengths[index] <= free:
                rows[r].append(index)
                room[r] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(block - lengths[index])
    return rows
    # END SOLUTION


pieces = [min(256, int(n) - start) for n in lengths for start in range(0, int(n), 256)]
ffd_efficiency = None
# BEGIN SOLUTION
ffd_rows = first_fit_decreasing(pieces, 256)
ffd_efficiency = sum(pieces) / (len(ffd_rows) * 256)
print(f"first-fit decreasing at T=256: {len(ffd_rows)} rows, efficiency {ffd_efficiency:.1%} "
      f"(padding: {pad_efficiency[blocks.index(256)]:.1%})")
# END SOLUTION

# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_in_range, passed

check_equal(first_fit_decreasing([5, 5, 5], 10), [[0, 1], [2]], "first_fit_decreasing([5, 5, 5], 10)")
check_equal(first_fit_decreasing([2, 9, 3, 8], 10), [[1], [3, 0], [2]],
            "first_fit_decreasing([2, 9, 3, 8], 10)")
small = [7, 1, 4, 4, 3, 6, 2, 9, 5]
bins = first_fit_decreasing(small, 10)
check(sorted(i for b in bins for i in b) == list(range(len(small))), "first_fit_decreasing",
      "every document index to appear in exactly one row")
check(all(sum(small[i] for i in b) <= 10 for b in bins), "first_fit_decreasing",
      "no row longer than block")
check_equal(len(bins), 5, "number of rows for the lengths [7, 1, 4, 4, 3, 6, 2, 9, 5]")
check_in_range(ffd_efficiency, 0.95, 1.0, "ffd_efficiency")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Position ids that restart at each document
#
# With a document mask, Krell et al. (2021) also restart the position ids, so that the second
# document of a row is encoded as if it started at position 0. Write
# `document_positions(row, eos_id)` returning a 1-D `long` tensor with, for every slot, its
# distance from the start of its document (an EOS belongs to the document it ends). For example
# `[5, 6, EOS, 7, EOS, 8]` gives `[0, 1, 2, 0, 1, 0]`. Use tensor operations; the check compares
# with a loop on random rows.

# %% tags=["solution"]
def document_positions(row: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Position of each slot within its document."""
    # BEGIN SOLUTION
    is_eos = (row == eos_id).long()
    document = torch.cumsum(is_eos, 0) - is_eos
    index = torch.arange(len(row))
    starts = torch.zeros(int(document.max()) + 1, dtype=torch.long)
    first = torch.ones(len(row), dtype=torch.bool)
    first[1:] = document[1:] != document[:-1]
    starts[document[first]] = index[first]
    return index - starts[document]
    # END SOLUTION


# %% tags=["check"]
def positions_by_loop(row: list[int], eos_id: int) -> list[int]:
    out, position = [], 0
    for token in row:
        out.append(position)
        position = 0 if token == eos_id else position + 1
    return out


check_equal(document_positions(torch.tensor([5, 6, 0, 7, 0, 8]), 0), torch.tensor([0, 1, 2, 0, 1, 0]),
            "document_positions([5, 6, EOS, 7, EOS, 8])")
test_generator = torch.Generator().manual_seed(3)
for trial in range(20):
    test_row = torch.randint(0, 4, (int(torch.randint(1, 40, (1,), generator=test_generator)),),
                             generator=test_generator)
    result = document_positions(test_row, 0)
    check(isinstance(result, torch.Tensor) and result.dtype == torch.long, "document_positions",
          "a torch.long tensor")
    check_equal(result, torch.tensor(positions_by_loop(test_row.tolist(), 0)),
                f"document_positions on {test_row.tolist()}")
check_equal(document_positions(row, EOS_ID), torch.tensor(positions_by_loop(row.tolist(), EOS_ID)),
            "document_positions on packed row 3")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: T5's span corruption
#
# T5 (Raffel et al., 2020) corrupts spans instead of single tokens: each span is replaced in
# the input by one sentinel token, and the target lists the sentinels, each followed by the
# tokens it hid, and ends with one more sentinel. Write `span_corrupt(tokens, spans)` where
# `spans` is a sorted list of non-overlapping `(start, length)` pairs and sentinels are the
# strings `"<extra_id_0>"`, `"<extra_id_1>"`, ... For the paper's example,
# `"Thank you for inviting me to your party last week ."` with spans `[(2, 2), (8, 1)]` gives
# input `Thank you <extra_id_0> me to your party <extra_id_1> week .` and target
# `<extra_id_0> for inviting <extra_id_1> last <extra_id_2>`. Return `(input_tokens,
# target_tokens)` as two lists of strings. Then set `t5_ratio` to the ratio of target length to
# original length when 15% of a 100-token text is corrupted in 5 spans of 3 tokens.

# %% tags=["solution"]
def span_corrupt(tokens: list[str], spans: list[tuple[int, int]]) -> tuple[list[str], list[str]]:
    """T5 span corruption: spans -> sentinels in the input; sentinels + spans in the target."""
    # BEGIN SOLUTION
    inputs, targets, position = [], [], 0
    for k, (start, length) in enumerate(spans):
        sentinel = f"<extra_id_{k}>"
        inputs += tokens[position:start] + [sentinel]
        targets += [sentinel] + tokens[start : start + length]
        position = start + length
    inputs += tokens[position:]
    targets.append(f"<extra_id_{len(spans)}>")
    return inputs, targets
    # END SOLUTION


t5_ratio = None
# BEGIN SOLUTION
text_100 = [f"w{i}" for i in range(100)]
t5_ratio = len(span_corrupt(text_100, [(10 + 20 * k, 3) for k in range(5)])[1]) / 100
# END SOLUTION
print("target length / text length:", t5_ratio)

# %% tags=["check"]
sentence = "Thank you for inviting me to your party last week .".split()
check_equal(span_corrupt(sentence, [(2, 2), (8, 1)]),
            ("Thank you <extra_id_0> me to your party <extra_id_1> week .".split(),
             "<extra_id_0> for inviting <extra_id_1> last <extra_id_2>".split()),
            "span_corrupt on the paper's example")
check_equal(span_corrupt(["a", "b", "c"], []), (["a", "b", "c"], ["<extra_id_0>"]),
            "span_corrupt with no spans")
check_equal(span_corrupt(["a", "b", "c"], [(0, 3)]), (["<extra_id_0>"], ["<extra_id_0>", "a", "b", "c", "<extra_id_1>"]),
            "span_corrupt of the whole text")
check_close(t5_ratio, 0.21, "t5_ratio")
passed("Exercise 3")

# %% [markdown]
# The target of span corruption is about a fifth of the text, against the whole text for a
# causal model: T5 chose it partly because short targets make pretraining cheaper per example.

# %% [markdown]
# ## Summary
#
# - A corpus becomes token ids document by document. A byte-level BPE of 2,048 tokens needed
#   about 2.6 times fewer tokens than characters on a held-out play, so a fixed context holds
#   more text.
# - Padding each document to the context length wastes the slots it leaves empty; on short
#   documents the waste grows with the context (measured: 49% efficiency at $T = 64$, 4% at
#   $T = 1{,}024$). Packing fills every slot and needed up to 25 times fewer rows; first-fit
#   decreasing packs whole documents at over 99%.
# - Packing lets documents attend to each other; a block-diagonal document mask (with position
#   ids restarted per document) removes that, and attention then equals attention over each
#   document alone (checked to float rounding).
# - A loader makes shifted input/target pairs, ignores padding targets with $-100$, shuffles
#   with a seed, shards indices across data-parallel ranks (`DistributedSampler`) and resumes
#   exactly from a saved position.
# - Causal LM supervises every position with causal attention; masked LM supervises 15% of the
#   positions (80/10/10 corruption) with bidirectional attention. One MLM step lowered the
#   loss on its batch; 80 steps brought a small encoder close to the unigram entropy.
#
# Next: [next-token prediction](02-next-token-prediction) trains a causal model on this kind of
# data, and [self-supervised objectives](03-self-supervised-objectives) looks beyond
# predicting tokens.
#
# ## References
#
# - A. Radford, K. Narasimhan, T. Salimans, I. Sutskever, "Improving language understanding by
#   generative pre-training", OpenAI, 2018.
#   https://cdn.openai.com/research-covers/language-unsupervised/language_understanding_paper.pdf
# - A. Radford et al., "Language models are unsupervised multitask learners", OpenAI, 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of deep bidirectional
#   transformers for language understanding", NAACL 2019. https://arxiv.org/abs/1810.04805
# - Y. Liu et al., "RoBERTa: A robustly optimized BERT pretraining approach", 2019.
#   https://arxiv.org/abs/1907.11692
# - C. Raffel et al., "Exploring the limits of transfer learning with a unified text-to-text
#   transformer" (T5), JMLR 2020. https://arxiv.org/abs/1910.10683
# - L. Gao et al., "The Pile: An 800GB dataset of diverse text for language modeling", 2020.
#   https://arxiv.org/abs/2101.00027
# - M. M. Krell, M. Kosec, S. P. Perez, A. Fitzgibbon, "Efficient sequence packing without
#   cross-contamination: accelerating large language models without impacting performance",
#   2021. https://arxiv.org/abs/2107.02027
# - Hugging Face, "Fine-tune a pretrained model" (Trainer and data collators).
#   https://huggingface.co/docs/transformers/training
# - PyTorch, `torch.utils.data.DistributedSampler`.
#   https://pytorch.org/docs/stable/data.html#torch.utils.data.distributed.DistributedSampler
