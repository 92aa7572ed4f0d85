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
# # The encoder-decoder transformer
#
# The transformer was introduced as a translation model (Vaswani et al., 2017): an *encoder*
# reads the whole source sentence at once, a *decoder* writes the translation one token at a
# time, and *cross-attention* lets every step of the decoder look back at every source word.
# Today's chat models keep only the decoder, but the encoder-decoder is still the clearest way
# to see what each kind of attention is for, and it lives on in T5, BART and Whisper. In this
# notebook we build one from PyTorch pieces, check each layer against PyTorch's own
# `nn.TransformerEncoderLayer` and `nn.TransformerDecoderLayer`, and train it until it
# translates sentences it has never seen without a single error.
#
# **Learning objectives**
# - Describe the encoder-decoder architecture: an encoder stack of N identical layers, a decoder
#   stack with masked self-attention, and cross-attention between them.
# - Build the three attention masks (source padding, causal, memory padding) and say which
#   attention each one belongs to.
# - Write an encoder layer and a decoder layer and show that they compute exactly what PyTorch's
#   reference layers compute.
# - Train a small sequence-to-sequence transformer with teacher forcing and decode it greedily.
# - Read a cross-attention map as a word alignment between source and translation.
#
# **Prerequisites:** [Linear algebra for language models](../00-foundations/01-linear-algebra)
# (attention as matrix products),
# [Probability for language models](../00-foundations/02-probability) (softmax, cross-entropy)
# and [PyTorch and autograd](../00-foundations/04-pytorch-and-autograd) (modules and training
# loops).
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
import random

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import shared
from shared.data import PairBatchSampler, toy_translation_pairs
from shared.layers import sinusoidal_positions
from shared.plotting import heatmap
from shared.training import TrainConfig, Trainer

shared.seed_everything(0)
# The models here are tiny: splitting each small operation over several threads costs more in
# coordination than it saves, so we use one.
torch.set_num_threads(1)
print(shared.environment_summary("matplotlib"))

# %% [markdown]
# ## A toy translation task
#
# Real machine translation needs millions of sentence pairs and hours of GPU time, and no
# parallel corpus ships with the course. So we generate one: a small English fragment and its
# French translation, produced by rules. It is small, but it has the two things that make
# translation more than word-by-word lookup:
#
# - **reordering**: most French adjectives follow the noun ("a red mouse" becomes
#   "une souris rouge"), but "big" and "small" precede it ("le grand chien");
# - **agreement**: the determiner and the adjective take the gender and number of the noun,
#   which in English is not marked at all ("the black mice" becomes "les souris noires"),
#   the verb takes the number of its subject, and the plural "des" becomes "de" before a
#   preceding adjective ("de petites fleurs").
#
# A sentence is *subject verb object*, each noun phrase being a determiner, an optional
# adjective and a noun.

# %%
NOUNS = {  # English singular: (English plural, French singular, French plural, gender)
    "cat": ("cats", "chat", "chats", "m"), "dog": ("dogs", "chien", "chiens", "m"),
    "horse": ("horses", "cheval", "chevaux", "m"), "boy": ("boys", "garçon", "garçons", "m"),
    "book": ("books", "livre", "livres", "m"), "mouse": ("mice", "souris", "souris", "f"),
    "house": ("houses", "maison", "maisons", "f"), "car": ("cars", "voiture", "voitures", "f"),
    "flower": ("flowers", "fleur", "fleurs", "f"), "girl": ("girls", "fille", "filles", "f"),
}
ADJECTIVES = {  # English: ((masc. sg., fem. sg., masc. pl., fem. pl.), goes before the noun?)
    "red": (("rouge", "rouge", "rouges", "rouges"), False),
    "black": (("noir", "noire", "noirs", "noires"), False),
    "green": (("vert", "verte", "verts", "vertes"), False),
    "white": (("blanc", "blanche", "blancs", "blanches"), False),
    "blue": (("bleu", "bleue", "bleus", "bleues"), False),
    "big": (("grand", "grande", "grands", "grandes"), True),
    "small": (("petit", "petite", "petits", "petites"), True),
}
VERBS = {  # English singular: (English plural, French singular, French plural)
    "sees": ("see", "voit", "voient"), "likes": ("like", "aime", "aiment"),
    "follows": ("follow", "suit", "suivent"), "finds": ("find", "trouve", "trouvent"),
    "eats": ("eat", "mange", "mangent"),
}
DETERMINERS = [  # (English, plural?, definite?)
    ("the", False, True), ("a", False, False), ("the", True, True), ("some", True, False),
]
FRENCH_DETERMINER = {  # (plural?, definite?, gender) -> French
    (False, True, "m"): "le", (False, True, "f"): "la", (False, False, "m"): "un",
    (False, False, "f"): "une", (True, True, "m"): "les", (True, True, "f"): "les",
    (True, False, "m"): "des", (True, False, "f"): "des",
}


def noun_phrase(rng: random.Random) -> tuple[list[str], list[str], bool]:
    """A random noun phrase in English and French, and whether it is plural."""
    det, plural, definite = rng.choice(DETERMINERS)
    noun = rng.choice(list(NOUNS))
    en_plural, fr_singular, fr_plural, gender = NOUNS[noun]
    adjective = rng.choice([None, *ADJECTIVES])
    english = [det] + ([adjective] if adjective else []) + [en_plural if plural else noun]
    fr_noun = fr_plural if plural else fr_singular
    french = [FRENCH_DETERMINER[(plural, definite, gender)]]
    if adjective is None:
        return english, french + [fr_noun], plural
    forms, before = ADJECTIVES[adjective]
    form = forms[2 * plural + (gender == "f")]
    if before and plural and not definite:
        french = ["de"]  # "des" becomes "de" before a preceding plural adjective
    return english, french + ([form, fr_noun] if before else [fr_noun, form]), plural


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    """A random English sentence (subject, verb, object) and its French translation."""
    subject_en, subject_fr, plural = noun_phrase(rng)
    object_en, object_fr, _ = noun_phrase(rng)
    verb = rng.choice(list(VERBS))
    en_plural, fr_singular, fr_plural = VERBS[verb]
    english = subject_en + [en_plural if plural else verb] + object_en
    french = subject_fr + [fr_plural if plural else fr_singular] + object_fr
    return " ".join(english), " ".join(french)


rng = random.Random(0)
for _ in range(5):
    print("%-40s -> %s" % sentence_pair(rng))

# %% [markdown]
# We draw 9,000 distinct sentences and hold out 1,000 of them. The language has
# $4 \times 8 \times 10 = 320$ noun phrases (determiner, adjective or none, noun), hence
# $320 \times 5 \times 320 = 512{,}000$ sentences: the training set covers under 2% of it, and
# every held-out sentence is one the model has never seen.

# %%
pairs: dict[str, str] = {}
while len(pairs) < 9000:
    english, french = sentence_pair(rng)
    pairs[english] = french
pairs_list = list(pairs.items())
train_pairs, test_pairs = pairs_list[:8000], pairs_list[8000:]
print(f"{len(train_pairs)} training pairs, {len(test_pairs)} held-out pairs, "
      f"overlap: {len({e for e, _ in train_pairs} & {e for e, _ in test_pairs})}")

# %% [markdown]
# The next notebooks reuse this task. The course library holds the same generator as
# `shared.data.toy_translation_pairs(n, seed)`, which draws from a fresh `random.Random(seed)`;
# from the same seed it gives the same sentences as `sentence_pair` here:

# %%
fresh_rng, ours = random.Random(0), {}
while len(ours) < 1000:
    english, french = sentence_pair(fresh_rng)
    ours[english] = french
print("same 1,000 pairs as shared.data.toy_translation_pairs:",
      list(ours.items()) == toy_translation_pairs(1000, seed=0))

# %% [markdown]
# Words are the tokens. Source and target share one vocabulary (as in the original paper,
# which shared a byte-pair vocabulary between English and German), with three special tokens:
# padding, begin-of-sentence `<s>` and end-of-sentence `</s>`. Source sentences are padded on
# the right to the longest source (7 words). Each target is `<s> words </s>`, padded to 10.

# %%
PAD, BOS, EOS = 0, 1, 2
words = sorted({w for en, fr in pairs_list for w in f"{en} {fr}".split()})
itos = ["<pad>", "<s>", "</s>"] + words
stoi = {w: i for i, w in enumerate(itos)}
SRC_LEN = max(len(en.split()) for en, _ in pairs_list)
TGT_LEN = max(len(fr.split()) for _, fr in pairs_list) + 2  # with <s> and </s>


def encode_pairs(batch: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Source ids (n, SRC_LEN) and target ids (n, TGT_LEN), padded with PAD."""
    src = torch.full((len(batch), SRC_LEN), PAD)
    tgt = torch.full((len(batch), TGT_LEN), PAD)
    for i, (english, french) in enumerate(batch):
        s = [stoi[w] for w in english.split()]
        t = [BOS] + [stoi[w] for w in french.split()] + [EOS]
        src[i, : len(s)] = torch.tensor(s)
        tgt[i, : len(t)] = torch.tensor(t)
    return src, tgt


train_src, train_tgt = encode_pairs(train_pairs)
test_src, test_tgt = encode_pairs(test_pairs)
print(f"vocabulary: {len(itos)} words; source {tuple(train_src.shape)}, "
      f"target {tuple(train_tgt.shape)}")
print("source ids:", train_src[0].tolist(), "\ntarget ids:", train_tgt[0].tolist())

# %% [markdown]
# ## The architecture
#
# The encoder-decoder of Vaswani et al. (2017) has two stacks.
#
# - The **encoder** is $N$ identical layers: identical in structure, each with its own weights.
#   Each layer has two sub-layers, *self-attention* over the source (every source word sees
#   every other source word, in both directions) and a position-wise *feed-forward network*.
#   Each sub-layer is wrapped in a residual connection and followed by layer normalisation:
#   $x \leftarrow \mathrm{LayerNorm}(x + \mathrm{Sublayer}(x))$. Its output, one vector per
#   source word, is called the *memory*.
# - The **decoder** is $N$ identical layers with three sub-layers: *masked self-attention*
#   over the target written so far (position $t$ may only see positions $\le t$), then
#   *cross-attention*, whose queries come from the decoder and whose keys and values come from
#   the memory, then a feed-forward network.
#
# Attention itself, $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ split over several heads, is opened
# up in [self-attention](03-self-attention) and [multi-head attention](04-multi-head-attention);
# here we take it from `nn.MultiheadAttention`. We name our sub-modules as PyTorch names
# them, so that our layers and PyTorch's can exchange weights.

# %%
class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each as LayerNorm(x + sublayer(x))."""

    def __init__(self, d_model: int, n_head: int, d_ff: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_head, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        attended = self.self_attn(x, x, x, key_padding_mask=padding_mask, need_weights=False)[0]
        x = self.norm1(x + attended)
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the memory, and a feed-forward network."""

    def __init__(self, d_model: int, n_head: int, d_ff: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_head, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d_model, n_head, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        causal_mask: torch.Tensor,
        memory_padding_mask: torch.Tensor,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the new target states and, if asked, the cross-attention weights per head."""
        attended = self.self_attn(y, y, y, attn_mask=causal_mask, need_weights=False)[0]
        y = self.norm1(y + attended)
        # Queries from the decoder, keys and values from the encoder's memory.
        crossed, weights = self.multihead_attn(
            y, memory, memory, key_padding_mask=memory_padding_mask,
            need_weights=need_weights, average_attn_weights=False,
        )
        y = self.norm2(y + crossed)
        return self.norm3(y + self.linear2(F.relu(self.linear1(y)))), weights


# %% [markdown]
# Before training anything, check that these layers are the standard ones: copy our weights
# into PyTorch's `nn.TransformerEncoderLayer` and `nn.TransformerDecoderLayer` (post-norm, ReLU,
# no dropout, as in the paper) and compare the outputs on random inputs with padding and a
# causal mask. The masks are boolean, `True` meaning "may not attend".

# %%
d_model, n_head, d_ff = 64, 4, 128
x, memory_in = torch.randn(3, 7, d_model), torch.randn(3, 9, d_model)
src_padding = torch.zeros(3, 9, dtype=torch.bool)
src_padding[0, 6:] = True  # the first sequence has 3 padding positions
causal = torch.ones(7, 7, dtype=torch.bool).triu(diagonal=1)

ours_enc = EncoderLayer(d_model, n_head, d_ff).eval()
torch_enc = nn.TransformerEncoderLayer(d_model, n_head, d_ff, dropout=0.0, batch_first=True).eval()
torch_enc.load_state_dict(ours_enc.state_dict())
ours_dec = DecoderLayer(d_model, n_head, d_ff).eval()
torch_dec = nn.TransformerDecoderLayer(d_model, n_head, d_ff, dropout=0.0, batch_first=True).eval()
torch_dec.load_state_dict(ours_dec.state_dict())

with torch.no_grad():
    enc_diff = (ours_enc(memory_in, src_padding)
                - torch_enc(memory_in, src_key_padding_mask=src_padding)).abs()
    reference = torch_dec(x, memory_in, tgt_mask=causal, memory_key_padding_mask=src_padding)
    dec_diff = (ours_dec(x, memory_in, causal, src_padding)[0] - reference).abs()
print("encoder layer: max |ours - torch| over non-padding positions = "
      f"{enc_diff[~src_padding].max():.2e}")
print(f"decoder layer: max |ours - torch|                             = {dec_diff.max():.2e}")

# %% [markdown]
# Both agree to float rounding. (Outputs at padding positions of the encoder are left out of
# the comparison: no query ever reads them, and PyTorch's fast path returns zeros there.)
#
# ## Three masks
#
# Each attention in the model has its own mask:
#
# 1. encoder self-attention: no source word may attend to *padding* (a key padding mask);
# 2. decoder self-attention: position $t$ may not attend to positions after $t$ (the *causal*
#    mask), so that training on a whole target at once cannot cheat by reading the answer;
# 3. cross-attention: no target position may attend to source *padding*.
#
# Here they are for one training pair.

# %%
padded = int(((train_src == PAD).sum(dim=1) >= 2).float().argmax())  # a pair with padding
example_src, example_tgt = train_src[padded : padded + 1], train_tgt[padded : padded + 1, :-1]
src_words = [itos[i] for i in example_src[0]]
tgt_words = [itos[i] for i in example_tgt[0]]
masks = {
    "encoder self-attention": (example_src[0] == PAD).expand(SRC_LEN, SRC_LEN),
    "decoder self-attention (causal)": torch.ones(TGT_LEN - 1, TGT_LEN - 1,
                                                  dtype=torch.bool).triu(1),
    "cross-attention": (example_src[0] == PAD).expand(TGT_LEN - 1, SRC_LEN),
}
axis_words = [(src_words, src_words), (tgt_words, tgt_words), (src_words, tgt_words)]
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
for ax, (title, mask), (keys, queries) in zip(axes, masks.items(), axis_words):
    ax.imshow(~mask, cmap="Greys_r", vmin=0, vmax=1)
    ax.set_xticks(range(len(keys)), keys, rotation=90)
    ax.set_yticks(range(len(queries)), queries)
    ax.set(title=f"{title}\n(white: may attend)", xlabel="key", ylabel="query")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The full model
#
# Around the two stacks sit the embeddings and the output layer. As in the paper, source and
# target share one embedding matrix, scaled by $\sqrt{d_{model}}$, to which the fixed
# sinusoidal position table is added (`shared.layers.sinusoidal_positions`; positions are the
# subject of a later notebook in this module), and the output layer reuses the embedding
# matrix. We initialise the embedding with standard deviation $d_{model}^{-1/2}$, so that
# after the $\sqrt{d_{model}}$ scaling tokens and positions have the same scale.
#
# The decoder is trained with **teacher forcing**: it reads the correct target shifted right by
# one (`<s> le chat ...`) and predicts the next word at every position at once (`le chat ...
# </s>`); the causal mask makes this equivalent to predicting one word at a time.

# %%
class Seq2SeqTransformer(nn.Module):
    """An encoder-decoder transformer (post-norm, as in Vaswani et al., 2017)."""

    def __init__(self, vocab_size: int, d_model: int, n_head: int, d_ff: int, n_layer: int,
                 max_len: int = 64) -> None:
        super().__init__()
        self.d_model = d_model
        self.embed_tokens = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed_tokens.weight, std=d_model**-0.5)
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, n_head, d_ff) for _ in range(n_layer))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, n_head, d_ff) for _ in range(n_layer))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(ids) * math.sqrt(self.d_model) + self.positions[: ids.shape[1]]

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory (B, S, d_model) and the source padding mask (B, S)."""
        padding_mask = src == PAD
        x = self.embed(src)
        for layer in self.encoder:
            x = layer(x, padding_mask)
        return x, padding_mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, padding_mask: torch.Tensor,
               need_weights: bool = False) -> tuple[torch.Tensor, list]:
        """Next-word logits (B, T, vocab) and, if asked, each layer's cross-attention weights."""
        T = tgt_in.shape[1]
        causal_mask = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).triu(diagonal=1)
        y, weights = self.embed(tgt_in), []
        for layer in self.decoder:
            y, w = layer(y, memory, causal_mask, padding_mask, need_weights)
            weights.append(w)
        return y @ self.embed_tokens.weight.T, weights  # output layer tied to the embedding

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, padding_mask = self.encode(src)
        return self.decode(tgt_in, memory, padding_mask)[0]


model = Seq2SeqTransformer(len(itos), d_model=64, n_head=4, d_ff=128, n_layer=2)
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_params:,} parameters; encoder layers: {len(model.encoder)}, "
      f"decoder layers: {len(model.decoder)}")
for name, part in [("embedding", model.embed_tokens), ("one encoder layer", model.encoder[0]),
                   ("one decoder layer", model.decoder[0])]:
    print(f"  {name:18s} {sum(p.numel() for p in part.parameters()):7,d}")

# %% [markdown]
# The decoder layer is larger than the encoder layer by exactly one attention block and one
# LayerNorm: the cross-attention. The original "base" model has $N = 6$ layers of width 512;
# ours has $N = 2$ of width 64, which is plenty for this language.
#
# ## Training
#
# `shared.training.Trainer` runs the loop (AdamW, warmup then cosine decay, gradient clipping,
# evaluation on held-out batches). It needs two small things from us: a source of batches,
# here random rows of the two tensors (`shared.data.PairBatchSampler`), and the loss,
# cross-entropy over the target positions with padding ignored.

# %%
def seq2seq_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Teacher forcing: read target[:-1], predict target[1:]; padding does not count."""
    src, tgt = batch
    logits = model(src, tgt[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)


config = TrainConfig(max_steps=200, batch_size=64, lr=5e-3, min_lr=5e-4, warmup_steps=20,
                     weight_decay=0.01, eval_interval=25, eval_batches=2, progress=False)
trainer = Trainer(model, PairBatchSampler(train_src, train_tgt, 64, seed=0),
                  PairBatchSampler(test_src, test_tgt, 250, seed=1), config, loss_fn=seq2seq_loss)
history = trainer.fit()
print(f"trained {config.max_steps} steps in {history.time_s[-1]:.1f} s; "
      f"held-out loss {history.val_loss[0]:.3f} -> {history.final_val_loss:.4f} nats/word")
history.plot(title="Encoder-decoder on the toy translation task", logy=True)
plt.show()

# %% [markdown]
# ## Greedy decoding
#
# At inference there is no target to read: the decoder writes one word, appends it to its
# input, and runs again, until it emits `</s>`. The encoder runs once per sentence; its memory
# is reused at every step. We decode the whole held-out set as one batch and count a sentence
# correct only if every word up to and including `</s>` matches the reference (exact match).

# %%
@torch.no_grad()
def greedy_decode(model: Seq2SeqTransformer, src: torch.Tensor,
                  max_len: int = TGT_LEN - 1) -> torch.Tensor:
    """Target ids (B, max_len) after <s>, chosen one at a time by argmax."""
    model.eval()
    memory, padding_mask = model.encode(src)
    out = torch.full((len(src), 1), BOS)
    for _ in range(max_len):
        logits = model.decode(out, memory, padding_mask)[0]
        out = torch.cat([out, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return out[:, 1:]


def words_until_eos(ids: torch.Tensor) -> list[str]:
    out = []
    for i in ids.tolist():
        if i == EOS:
            break
        out.append(itos[i])
    return out


predictions = greedy_decode(model, test_src)
correct = [words_until_eos(p) == fr.split() for p, (_, fr) in zip(predictions, test_pairs)]
accuracy = sum(correct) / len(correct)
print(f"held-out exact match: {sum(correct)}/{len(correct)} = {accuracy:.1%}")
for (english, french), p in list(zip(test_pairs, predictions))[:6]:
    print(f"  {english:38s} -> {' '.join(words_until_eos(p))}")

# %% [markdown]
# Every held-out sentence is translated exactly, word order and agreement included: the task is
# learned to convergence in a couple of hundred steps. The training curve above shows the
# held-out loss falling by three orders of magnitude.
#
# ## Cross-attention as alignment
#
# Which source words does the decoder read when it writes each French word? The weights of
# the cross-attention answer it. Below, for one held-out sentence with an adjective after the
# noun and one before it, the weights of each decoder layer, averaged over its 4 heads
# (rows: the French word being predicted, read from the word before it; columns: English
# source words).

# %%
@torch.no_grad()
def cross_attention_weights(src: torch.Tensor, out_ids: torch.Tensor) -> list[torch.Tensor]:
    """Each decoder layer's cross-attention (B, heads, T, S) while it reads <s> + out_ids."""
    tgt_in = torch.cat([torch.full((len(src), 1), BOS), out_ids[:, :-1]], dim=1)
    memory, padding_mask = model.encode(src)
    return model.decode(tgt_in, memory, padding_mask, need_weights=True)[1]


example = "the big dog follows a red mouse"
example_src, _ = encode_pairs([(example, "")])
example_out = greedy_decode(model, example_src)
src_words = example.split()
out_words = words_until_eos(example_out[0]) + ["</s>"]
layer_weights = cross_attention_weights(example_src, example_out)
print(example, "->", " ".join(out_words[:-1]))
fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
for layer, (ax, w) in enumerate(zip(axes, layer_weights)):
    w = w[0].mean(dim=0)[: len(out_words), : len(src_words)]  # mean over heads, no padding
    heatmap(w, src_words, out_words, f"Decoder layer {layer + 1}: cross-attention",
            xlabel="English source word (key)", ylabel="French word predicted (query)",
            ax=ax, colorbar_label="weight (mean over heads)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the figure row by row: each row is the step that *predicts* that French word. In the
# second layer the weights form a clean word alignment, crossing where the word order changes:
# the step that writes "souris" reads "mouse", and the step that writes "rouge" reads "red",
# although "red" comes first in English. The first layer is more diffuse; in this example the
# step that writes "le" reads ahead to "big" and "dog", and it is the noun's gender that
# decides between "le" and "la". Attention maps are evidence of where information flows, not a
# full explanation of the model (Jain and Wallace, 2019): the memory vectors are contextual,
# each having attended to the whole source, so information about one word can be read at
# another word's position.
#
# Let us measure the alignment over the whole held-out set instead of one sentence: for each
# French adjective, does the step that writes it attend most to the English adjective?

# %%
adjective_of = {form: english for english, (forms, _) in ADJECTIVES.items() for form in forms}
weights = torch.stack(cross_attention_weights(test_src, predictions)).mean(dim=(0, 2))  # (B, T, S)
most_attended = weights.argmax(dim=-1)  # (B, T): the source position each step reads most
hits = total = 0
for b, (english, _) in enumerate(test_pairs):
    source = english.split()
    for t, word in enumerate(words_until_eos(predictions[b])):
        if word in adjective_of:
            total += 1
            hits += source[most_attended[b, t]] == adjective_of[word]
print(f"French adjectives whose most-attended English word (mean over layers and heads) is the "
      f"English adjective: {hits}/{total} = {hits / total:.0%}")

# %% [markdown]
# Every French adjective in the held-out translations is written while the decoder reads the
# corresponding English adjective most: the alignment across the reordering is systematic, not
# a property of one example. Bahdanau et al. (2015) introduced exactly this kind of learned
# alignment for recurrent translation models; the transformer keeps it and drops the recurrence.

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The causal mask
#
# Write `causal_mask(T)` returning a boolean tensor of shape `(T, T)` that is `True` where
# query position $i$ may **not** attend to key position $j$, i.e. where $j > i$. The check
# compares it with PyTorch's `nn.Transformer.generate_square_subsequent_mask`, which returns
# the same mask in additive form ($-\infty$ where blocked, 0 elsewhere).

# %% tags=["solution"]
def causal_mask(T: int) -> torch.Tensor:
    """Boolean (T, T) mask, True where the key comes after the query."""
    # BEGIN SOLUTION
    return torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_equal, check_shape, passed

for T in (1, 4, 9):
    mask = causal_mask(T)
    check_shape(mask, (T, T), f"causal_mask({T})")
    check(mask.dtype == torch.bool, "causal_mask", "a boolean tensor")
    check_equal(mask, torch.isinf(nn.Transformer.generate_square_subsequent_mask(T)),
                f"causal_mask({T})")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Count the parameters of a layer
#
# Write `encoder_layer_params(d_model, d_ff)` and `decoder_layer_params(d_model, d_ff)` that
# return the number of parameters of one encoder and one decoder layer, from the architecture
# alone. An attention block has four $d \times d$ projections (queries, keys, values, output),
# each with a bias; the feed-forward network has a $d \times d_{ff}$ and a $d_{ff} \times d$
# layer with biases; a LayerNorm has a gain and a bias of size $d$. (The number of heads does
# not matter: why?) The check compares your formulas with PyTorch's layers for several sizes.

# %% tags=["solution"]
def encoder_layer_params(d_model: int, d_ff: int) -> int:
    """Parameters of one post-norm encoder layer (attention, FFN, two LayerNorms)."""
    # BEGIN SOLUTION
    attention = 4 * (d_model * d_model + d_model)
    ffn = d_model * d_ff + d_ff + d_ff * d_model + d_model
    return attention + ffn + 2 * 2 * d_model
    # END SOLUTION


def decoder_layer_params(d_model: int, d_ff: int) -> int:
    """Parameters of one decoder layer (two attentions, FFN, three LayerNorms)."""
    # BEGIN SOLUTION
    return encoder_layer_params(d_model, d_ff) + 4 * (d_model * d_model + d_model) + 2 * d_model
    # END SOLUTION


# %% tags=["check"]
def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


for d, h, ff in [(64, 4, 128), (512, 8, 2048), (96, 12, 384)]:
    check_equal(encoder_layer_params(d, ff), count(nn.TransformerEncoderLayer(d, h, ff)),
                f"encoder_layer_params({d}, {ff})")
    check_equal(decoder_layer_params(d, ff), count(nn.TransformerDecoderLayer(d, h, ff)),
                f"decoder_layer_params({d}, {ff})")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Exact match
#
# Write `exact_match(predicted, reference)` for two integer tensors of shape `(B, L)` holding
# target ids after `<s>`. A row counts as correct when the predicted ids equal the reference
# ids up to and including the reference's first `EOS`; whatever either holds after that
# position does not matter. Return the fraction of correct rows as a float. The check uses
# hand-made rows and the held-out predictions above.

# %% tags=["solution"]
def exact_match(predicted: torch.Tensor, reference: torch.Tensor) -> float:
    """Fraction of rows equal to the reference up to and including its first EOS."""
    # BEGIN SOLUTION
    after_eos = (reference == EOS).long().cumsum(dim=1) - (reference == EOS).long() > 0
    equal = (predicted == reference) | after_eos
    return equal.all(dim=1).float().mean().item()
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close

reference = torch.tensor([[5, 6, EOS, PAD], [5, 6, 7, EOS], [8, EOS, PAD, PAD]])
check_close(exact_match(reference.clone(), reference), 1.0, "exact_match(identical rows)")
after_eos_differs = torch.tensor([[5, 6, EOS, 9], [5, 6, 7, EOS], [8, EOS, 4, 4]])
check_close(exact_match(after_eos_differs, reference), 1.0, "exact_match (ids after EOS ignored)")
wrong = torch.tensor([[5, 6, 7, EOS], [5, 6, 7, EOS], [8, 9, EOS, PAD]])
check_close(exact_match(wrong, reference), 1 / 3, "exact_match (two rows wrong)")
check_close(exact_match(predictions, test_tgt[:, 1:]), accuracy, "exact_match on the held-out set")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Translate
#
# Write `translate(english)` that takes an English sentence of this language as a string and
# returns the model's French translation as a string (words joined by spaces, without `<s>`
# and `</s>`). Use `encode_pairs`, `greedy_decode` and `words_until_eos`. The check translates
# held-out sentences and two sentences written by hand.

# %% tags=["solution"]
def translate(english: str) -> str:
    """The trained model's French translation of one English sentence."""
    # BEGIN SOLUTION
    src, _ = encode_pairs([(english, "")])
    return " ".join(words_until_eos(greedy_decode(model, src)[0]))
    # END SOLUTION


# %% tags=["check"]
for english, french in test_pairs[:20]:
    check_equal(translate(english), french, f"translate({english!r})")
check_equal(translate("the small girls like some green cars"),
            "les petites filles aiment des voitures vertes", "translate (plural agreement)")
check_equal(translate("some big horses eat a white flower"),
            "de grands chevaux mangent une fleur blanche", "translate (des -> de)")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - An encoder-decoder transformer has an encoder stack of $N$ identical layers
#   (self-attention and feed-forward, each as $\mathrm{LayerNorm}(x + f(x))$) and a decoder
#   stack whose layers add *masked* self-attention and *cross-attention* to the encoder's memory.
# - Three masks: source padding (encoder), causal (decoder self-attention), memory padding
#   (cross-attention). Only the causal mask is about *time*; the others hide padding.
# - Our layers equal PyTorch's `nn.TransformerEncoderLayer` and `nn.TransformerDecoderLayer`
#   to float rounding once they share weights.
# - Trained with teacher forcing for 200 steps, a 2+2-layer model of width 64 translates every
#   one of 1,000 unseen sentences of the toy language exactly, reordering and agreement included.
# - Cross-attention weights show where the decoder reads from; they often look like a word
#   alignment, but they are evidence, not an explanation.
#
# Next: [decoder-only models](02-decoder-only), which drop the encoder and the
# cross-attention and are what GPT-style language models are.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017.
#   https://arxiv.org/abs/1706.03762
# - D. Bahdanau, K. Cho, Y. Bengio, "Neural machine translation by jointly learning to align
#   and translate", ICLR 2015. https://arxiv.org/abs/1409.0473
# - I. Sutskever, O. Vinyals, Q. V. Le, "Sequence to sequence learning with neural networks",
#   NeurIPS 2014. https://arxiv.org/abs/1409.3215
# - A. M. Rush, "The Annotated Transformer", Harvard NLP, 2018.
#   https://nlp.seas.harvard.edu/annotated-transformer/
# - S. Jain, B. C. Wallace, "Attention is not explanation", NAACL 2019.
#   https://arxiv.org/abs/1902.10186
# - Y. Tay, M. Dehghani, D. Bahri, D. Metzler, "Efficient transformers: a survey", 2020.
#   https://arxiv.org/abs/2009.06732
# - L. Voita, "Sequence to sequence (seq2seq) and attention", NLP Course For You.
#   https://lena-voita.github.io/nlp_course/seq2seq_and_attention.html
# - PyTorch documentation, `torch.nn.Transformer`.
#   https://pytorch.org/docs/stable/generated/torch.nn.Transformer.html
