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
# # Self-supervised objectives: contrastive learning and linear probes
#
# Predicting the next token is one way to make labels out of unlabelled data; it is not the only
# one. A *contrastive* objective makes two views of the same example (two crops of an image,
# two halves of a sentence, the same sentence under two dropout masks) and trains an encoder to
# recognise which views belong together among many that do not. This is how sentence-embedding
# models such as the course's MiniLM are trained, and how CLIP aligns images with text. Whether
# a representation is any good is then measured by *probing*: freeze it and fit a linear
# classifier on top for a labelled task. This notebook writes the InfoNCE loss, builds text
# augmentations, trains a small sentence encoder contrastively on real sentences, and probes it,
# a random encoder and the pretrained MiniLM on two real labels.
#
# **Learning objectives**
# - Write the InfoNCE loss as a classification over a batch, check it against its formula, and
#   relate its value to $\ln B$ and to a mutual-information bound.
# - Build text augmentations (word dropout, crops, random halves) and explain what a view must
#   keep and what it must change.
# - Train a small encoder with a contrastive objective and see from measurements why
#   dropout-only views (SimCSE) give no signal to an encoder trained from scratch.
# - Evaluate frozen representations with linear probes on a held-out split, layer by layer
#   for a pretrained model, and read what they do and do not show.
#
# **Prerequisites:** [pretraining data](01-pretraining-data) (objectives that make their own
# labels); [embeddings](../03-data-and-tokenization/05-embeddings) (sentence vectors and cosine
# similarity); [probability](../00-foundations/02-probability) (softmax and cross-entropy).
#
# **Estimated time:** 50 minutes.

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
import warnings
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits
from torch import nn

import shared
from shared.assets import corpus, sentence_encoder

torch.set_num_threads(1)  # small models: one thread avoids the overhead of two
threadpool_limits(1)  # the same for NumPy and scikit-learn (measured: much faster probes)
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
shared.seed_everything(0)
print(shared.environment_summary("scikit-learn", "sentence-transformers", "matplotlib"))

# %% [markdown]
# ## The data: 23,703 rated sentences
#
# `corpus("sentiment")` holds the human-rated sentences of the VADER study (Hutto and Gilbert,
# 2014): tweets, New York Times editorial sentences, and movie-review and Amazon-review
# snippets, each with a mean rating in $[-4, 4]$ and a binary label (rating $> 0$). They carry two
# real labels we can probe for: the **sentiment** and the **source** (which of the four kinds
# of text a sentence is). We set 1,200 sentences aside for probing (each probe is fitted on 600
# and tested on the other 600); the contrastive training uses the other 22,503 sentences,
# *without* their labels.

# %%
records = corpus("sentiment")
SOURCES = sorted({r["source"] for r in records})
order = np.random.default_rng(0).permutation(len(records))
N_PROBE, N_FIT = 1200, 600
probe_records = [records[i] for i in order[:N_PROBE]]
pool_texts = [records[i]["text"] for i in order[N_PROBE:]]
probe_texts = [r["text"] for r in probe_records]
labels = {
    "sentiment": np.array([r["label"] for r in probe_records]),
    "source": np.array([SOURCES.index(r["source"]) for r in probe_records]),
}
print(f"{len(records):,} sentences; probe set {N_PROBE:,} ({N_FIT} fit / {N_PROBE - N_FIT} test per split); "
      f"unlabelled pool {len(pool_texts):,}")
for name, y in labels.items():
    majority = np.bincount(y).max() / len(y)
    print(f"{name:>9}: {len(np.unique(y))} classes, majority class = {majority:.1%} of the probe set")
for r in probe_records[:4]:
    print(f"  [{r['source']}, rating {r['rating']:+.1f}] {r['text'][:90]}")

# %% [markdown]
# ## The contrastive objective: InfoNCE
#
# Take a batch of $B$ examples and make two views of each, encoded and normalised to unit
# vectors $z_i$ and $z'_i$. The score of a pair is the cosine similarity divided by a
# *temperature* $\tau$. For view $z_i$, the other view $z'_i$ is the positive and the $B - 1$
# other $z'_j$ are negatives:
#
# $$\mathcal{L}_{\text{InfoNCE}} = -\frac{1}{B}\sum_{i=1}^{B}
# \log \frac{\exp(z_i \cdot z'_i / \tau)}{\sum_{j=1}^{B} \exp(z_i \cdot z'_j / \tau)} .$$
#
# This is a $B$-way classification ("which of the $B$ candidates is my partner?") with the
# similarity matrix as logits and the diagonal as the correct classes, so it is one call to
# `F.cross_entropy`. Oord et al. (2018) introduced it for contrastive predictive coding and
# showed that $\ln B - \mathcal{L}$ is a lower bound on the mutual information between the two
# views; SimCLR (Chen et al., 2020) used it with image augmentations, SimCSE (Gao et al., 2021)
# with sentences. A guess that knows nothing scores $\ln B$.

# %%
def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE with in-batch negatives: row i of z1 should pick row i of z2."""
    logits = F.normalize(z1, dim=-1) @ F.normalize(z2, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(z1)))


def info_nce_by_loop(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> float:
    """The same formula, one example at a time."""
    total = 0.0
    for i in range(len(z1)):
        scores = [F.cosine_similarity(z1[i], z2[j], dim=0) / temperature for j in range(len(z2))]
        total -= (scores[i] - torch.logsumexp(torch.stack(scores), 0)).item()
    return total / len(z1)


torch.manual_seed(0)
a, b = torch.randn(16, 32), torch.randn(16, 32)
print(f"matrix form {info_nce(a, b).item():.6f}, loop {info_nce_by_loop(a, b):.6f}")
for B in (16, 256):
    z = torch.randn(B, 128)
    print(f"B={B:4d}: unrelated views {info_nce(z, torch.randn(B, 128)).item():.3f} "
          f"(ln B = {math.log(B):.3f}); identical views {info_nce(z, z).item():.4f}")

# %% [markdown]
# Unrelated views score about $\ln B$ and identical views about 0: the loss lives between
# "no information shared" and "every partner recognised". The interesting part is the choice
# of views.

# %% [markdown]
# ## Augmentations: what two views share
#
# A view must keep what we want the representation to capture and change what we want it to
# ignore. If the two views are nearly identical, the task is solved by surface matching and
# teaches nothing; if they share nothing, it cannot be solved. For text, the common choices
# are: delete words at random (word dropout), keep a contiguous span (a crop), keep a random
# half of the words, or leave the text alone and let the encoder's dropout make the two views
# differ (SimCSE). Here they are on real sentences. We work with lower-cased words and
# punctuation marks as tokens.

# %%
def words_of(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return re.findall(r"[a-z0-9']+|[^\sa-z0-9']", text.lower())


def word_dropout(words: list[str], rng: np.random.Generator, p: float = 0.3) -> list[str]:
    kept = [w for w in words if rng.random() >= p]
    return kept or words[:1]


def random_half(words: list[str], rng: np.random.Generator) -> list[str]:
    """A random half of the words, in their original order."""
    keep = np.sort(rng.permutation(len(words))[: max(1, len(words) // 2)])
    return [words[i] for i in keep]


aug_rng = np.random.default_rng(1)
for text in probe_texts[4:7]:
    words = words_of(text)
    print("original    :", " ".join(words))
    print("dropout 30% :", " ".join(word_dropout(words, aug_rng)))
    print("random half :", " ".join(random_half(words, aug_rng)), "|",
          " ".join(random_half(words, aug_rng)))
    print()

# %% [markdown]
# ## A small sentence encoder
#
# To keep training within seconds on a CPU, the encoder is deliberately small: a vocabulary of
# the 10,000 most frequent words of the unlabelled pool (others map to one unknown id), a
# 128-dimensional vector per word, and the sentence representation $h$ is the mean of its word
# vectors (the first 48 words; 99% of the sentences are shorter), with dropout on the word
# vectors during training. As in SimCLR, the loss is computed
# on $z = g(h)$, where $g$ is a small MLP *projection head*, and the representation we keep and
# probe is $h$ (Chen et al. found that the layer before the head transfers better).

# %%
MAX_WORDS = 48
word_counts = Counter(w for text in pool_texts for w in words_of(text))
vocab = {w: i + 1 for i, (w, _) in enumerate(word_counts.most_common(10_000))}  # 0: unknown


def word_ids(text: str) -> list[int]:
    return [vocab.get(w, 0) for w in words_of(text)[:MAX_WORDS]]


pool_ids = [word_ids(t) for t in pool_texts]
probe_ids = [word_ids(t) for t in probe_texts]


def to_batch(sentences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ids (B, L) and a mask of real words (B, L)."""
    length = max(1, max(len(s) for s in sentences))
    ids = np.zeros((len(sentences), length), dtype=np.int64)
    mask = np.zeros((len(sentences), length), dtype=bool)
    for row, sentence in enumerate(sentences):
        ids[row, : len(sentence)] = sentence
        mask[row, : len(sentence)] = True
    return torch.from_numpy(ids), torch.from_numpy(mask)


class MeanWordEncoder(nn.Module):
    """h = mean of the word vectors (with dropout in training); z = projection head(h)."""

    def __init__(self, vocab_size: int, dim: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        vectors = self.dropout(self.embed(ids)) * mask.unsqueeze(-1)
        return vectors.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)

    @torch.no_grad()
    def represent(self, sentences: list[list[int]]) -> np.ndarray:
        """Frozen representations h (eval mode: no dropout)."""
        self.eval()
        return self(*to_batch(sentences)).numpy()


torch.manual_seed(0)
random_encoder = MeanWordEncoder(len(vocab) + 1)
print(f"encoder parameters: {sum(p.numel() for p in random_encoder.parameters()):,}")

# %% [markdown]
# ## Training with two kinds of views
#
# We train two copies of the same initial encoder for the same number of steps, batch 256,
# $\tau = 0.1$, AdamW at a learning rate of 0.03 (high, but each word vector is updated only when
# its word is in the batch):
#
# - **dropout only** (the SimCSE recipe): the same sentence twice; the views differ only by the
#   dropout masks on the word vectors;
# - **random halves**: two independent random halves of the sentence (plus the same dropout).

# %%
CONTRASTIVE_STEPS = 300  # 5,000+ on a GPU
BATCH, TEMPERATURE = 256, 0.1


def train_contrastive(make_views, steps: int = CONTRASTIVE_STEPS, seed: int = 0):
    """Train a copy of random_encoder with InfoNCE on views of the pool; return it and the losses."""
    encoder = MeanWordEncoder(len(vocab) + 1)
    encoder.load_state_dict(random_encoder.state_dict())
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=3e-2, weight_decay=0.0)
    rng, losses = np.random.default_rng(seed), []
    encoder.train()
    for _ in range(steps):
        batch = [pool_ids[i] for i in rng.integers(0, len(pool_ids), BATCH)]
        view1, view2 = make_views(batch, rng)
        loss = info_nce(encoder.head(encoder(*to_batch(view1))),
                        encoder.head(encoder(*to_batch(view2))), TEMPERATURE)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return encoder, losses


def same_sentence(batch, rng):
    return batch, batch


def two_random_halves(batch, rng):
    return [random_half(s, rng) for s in batch], [random_half(s, rng) for s in batch]


dropout_encoder, dropout_losses = train_contrastive(same_sentence)
halves_encoder, halves_losses = train_contrastive(two_random_halves)
print(f"final loss (mean of last 20 steps): dropout only {np.mean(dropout_losses[-20:]):.3f}, "
      f"random halves {np.mean(halves_losses[-20:]):.3f}; ln B = {math.log(BATCH):.3f}")
print(f"mutual-information bound ln B - loss for random halves: "
      f">= {math.log(BATCH) - np.mean(halves_losses[-20:]):.2f} nats")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(dropout_losses, label="dropout only (SimCSE views)")
ax.plot(halves_losses, label="two random halves")
ax.axhline(math.log(BATCH), color="gray", ls=":", label="ln B (chance)")
ax.set(xlabel="optimizer step", ylabel="InfoNCE loss (nats, log scale)", yscale="log",
       title="Contrastive training of the small encoder")
ax.set_yticks([0.1, 0.3, 1, 3, 6], ["0.1", "0.3", "1", "3", "6"])
ax.minorticks_off()
ax.legend(loc="center right")
plt.show()

# %% [markdown]
# With dropout-only views the loss falls close to zero within a few dozen steps: two dropout
# masks barely move a sentence's mean vector, while the mean vectors of different sentences,
# even at random initialisation, are already far apart. The task is solved by recognising the
# words themselves, and little forces similar sentences together. SimCSE works because it
# starts from a pretrained BERT whose representations already place related sentences near
# each other; dropout then only has to tighten that structure. Random halves are a harder task
# (the final loss stays well above zero): to match two halves, the encoder must learn which words
# tend to occur in the same sentences.

# %% [markdown]
# ## Linear probes
#
# A linear probe (Alain and Bengio, 2016) freezes the encoder and fits a linear classifier
# (here L2-regularised logistic regression, on features standardised with the statistics of the
# fitting half) to predict a label. Its accuracy on held-out sentences measures what the
# representation makes *linearly available*, not what a fine-tuned model could learn. With 600
# test sentences, one split gives an accuracy with a standard error of about 2 points, so we
# repeat the 600/600 split five times at random and report the mean and the spread. We probe
# four representations of the same 1,200 sentences:
#
# - the random encoder (the initialisation both trained copies started from);
# - the two contrastive encoders;
# - MiniLM (`shared.assets.sentence_encoder()`), a 6-layer BERT fine-tuned with an InfoNCE
#   objective on about one billion sentence pairs (its model card; Reimers and Gurevych, 2019,
#   describe the sentence-transformers method). We take the mean of its token vectors at every
#   layer, so we can also probe layer by layer.

# %%
PROBE_SPLITS = [np.random.default_rng(100 + k).permutation(N_PROBE) for k in range(5)]


def probe_accuracy(features: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of held-out accuracy over the five random 600/600 splits."""
    scores = []
    for split in PROBE_SPLITS:
        fit, test = split[:N_FIT], split[N_FIT:]
        mean, std = features[fit].mean(0), features[fit].std(0) + 1e-6
        probe = LogisticRegression(C=0.01, max_iter=3000)  # strong L2: 600 examples, 128-384 features
        probe.fit((features[fit] - mean) / std, y[fit])
        scores.append(probe.score((features[test] - mean) / std, y[test]))
    return float(np.mean(scores)), float(np.std(scores))


minilm = sentence_encoder()
bert, wordpiece = minilm[0].auto_model, minilm.tokenizer


@torch.no_grad()
def minilm_layers(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Mean-pooled token vectors of every layer: (n_layers + 1, n_texts, 384)."""
    lengths = [len(ids) for ids in wordpiece(texts)["input_ids"]]
    order_by_length = np.argsort(lengths)  # batches of similar length: little padding
    out = np.zeros((bert.config.num_hidden_layers + 1, len(texts), bert.config.hidden_size),
                   dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        index = order_by_length[start : start + batch_size]
        batch = wordpiece([texts[i] for i in index], padding=True, truncation=True,
                          max_length=128, return_tensors="pt")
        hidden = bert(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).float()
        for layer, states in enumerate(hidden):
            out[layer, index] = ((states * mask).sum(1) / mask.sum(1)).numpy()
    return out


minilm_features = minilm_layers(probe_texts)
# The last layer, normalised, is exactly what the SentenceTransformer returns:
reference = minilm.encode(probe_texts[:8], convert_to_numpy=True)
ours = minilm_features[-1, :8] / np.linalg.norm(minilm_features[-1, :8], axis=1, keepdims=True)
print(f"max |our last layer - minilm.encode| = {np.abs(ours - reference).max():.1e}")

# %%
representations = {
    "random encoder": random_encoder.represent(probe_ids),
    "contrastive: dropout only": dropout_encoder.represent(probe_ids),
    "contrastive: random halves": halves_encoder.represent(probe_ids),
    "MiniLM (last layer)": minilm_features[-1],
}
accuracy = {name: {task: probe_accuracy(X, y) for task, y in labels.items()}
            for name, X in representations.items()}
print(f"{'representation':>28} |     sentiment |        source   (mean +- std over 5 splits)")
for name, scores in accuracy.items():
    (sent, sent_sd), (src, src_sd) = scores["sentiment"], scores["source"]
    print(f"{name:>28} | {sent:6.1%} +- {sent_sd:4.1%} | {src:6.1%} +- {src_sd:4.1%}")

fig, ax = plt.subplots(figsize=(8, 3.8))
width = 0.2
for k, (name, scores) in enumerate(accuracy.items()):
    ax.bar(np.arange(2) + (k - 1.5) * width, [scores[t][0] for t in labels], width,
           yerr=[scores[t][1] for t in labels], capsize=3, label=name)
for t, y in enumerate(labels.values()):
    majority = np.bincount(y).max() / len(y)
    ax.hlines(majority, t - 2 * width, t + 2 * width, colors="black", linestyles="--",
              label="majority class" if t == 0 else None)
ax.set_xticks(range(2), ["sentiment (2 classes)", "source (4 classes)"])
ax.set(ylabel="held-out probe accuracy", ylim=(0.3, 1.0),
       title="Linear probes on frozen representations (mean of 5 splits)")
ax.legend(fontsize=8, loc="upper left")
plt.show()

# %% [markdown]
# Three readings, each from the numbers above:
#
# - The encoder trained on random halves gained about 20 points on the **source**, close to
#   MiniLM: which words occur together in a sentence is largely a matter of topic and register
#   (a tweet, a film review, an editorial), and that is what matching two halves teaches. On
#   **sentiment** it gained under 2 points, within the spread over splits: sentiment hangs on a
#   few words and on negation, which a mean of word vectors cannot express and two halves do
#   not reliably share.
# - The dropout-only encoder, whose task was too easy, gained about 5 points on the source and
#   nothing on sentiment.
# - MiniLM leads on sentiment by 14 points. It was trained with the same family of objective,
#   but as a 6-layer transformer on a billion curated pairs (question and answer, title and body,
#   paraphrases) whose two sides share meaning rather than just vocabulary.
#
# A random encoder is a real baseline, not zero: a mean of random word vectors is a random
# projection of the bag of words, and a linear probe reads a fair amount from it.
#
# ### Probing layer by layer
#
# Alain and Bengio introduced probes to ask *where* in a network information becomes linearly
# available. The same probe on each layer of MiniLM, from the word-piece embeddings (layer 0)
# to the last layer:

# %%
layer_scores = {task: [probe_accuracy(minilm_features[layer], y)[0]
                       for layer in range(len(minilm_features))] for task, y in labels.items()}
for task, scores in layer_scores.items():
    print(f"{task:>9}: " + "  ".join(f"L{layer} {s:.1%}" for layer, s in enumerate(scores)))

fig, ax = plt.subplots(figsize=(7, 3.5))
for task, scores in layer_scores.items():
    ax.plot(range(len(scores)), scores, "o-", label=task)
ax.set(xlabel="MiniLM layer (0 = embeddings)", ylabel="probe accuracy (held-out)",
       title="What a linear probe reads from each MiniLM layer")
ax.legend()
plt.show()

# %% [markdown]
# Even the embedding layer (a mean of context-free word-piece vectors, layer 0) probes far above
# our encoders on sentiment, because those vectors were trained with the rest of the model. The
# transformer layers add about 5 points on sentiment and 4 on source, and the best layers are
# in the middle of the stack (3 to 5), not the last one, which was tuned for the similarity
# objective. Differences of a point or two are within the spread over splits.

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: A crop augmentation
#
# Write `random_crop(words, fraction, rng)` that returns a contiguous span of `words` of length
# `max(1, round(fraction * len(words)))`, starting at a position drawn uniformly with
# `rng.integers` among all the valid starts. The check verifies the length, that the result is
# a contiguous span, and that different starts occur.

# %% tags=["solution"]
def random_crop(words: list[str], fraction: float, rng: np.random.Generator) -> list[str]:
    """A contiguous span holding about `fraction` of the words."""
    # BEGIN SOLUTION
    length = max(1, round(fraction * len(words)))
    start = int(rng.integers(0, len(words) - length + 1))
    return words[start : start + length]
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_in_range, passed

sentence = words_of("the plot is thin , but the acting is wonderful and the music is great .")
crop_rng = np.random.default_rng(0)
starts = set()
for _ in range(200):
    crop = random_crop(sentence, 0.5, crop_rng)
    check_equal(len(crop), round(0.5 * len(sentence)), "len(random_crop(sentence, 0.5, rng))")
    where = [i for i in range(len(sentence) - len(crop) + 1) if sentence[i : i + len(crop)] == crop]
    check(bool(where), "random_crop", "a contiguous span of the input")
    starts.add(where[0])
check(len(starts) == len(sentence) - round(0.5 * len(sentence)) + 1, "random_crop",
      "every valid start position to occur over 200 draws")
check_equal(random_crop(["only"], 0.3, crop_rng), ["only"], "random_crop of a one-word sentence")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The symmetric loss of CLIP
#
# `info_nce` asks each row of `z1` to find its partner among the rows of `z2`. CLIP (Radford et
# al., 2021) also asks each row of `z2` to find its partner among the rows of `z1`, and averages
# the two losses. Write `symmetric_info_nce(z1, z2, temperature)` that way (one similarity
# matrix; use its transpose for the second direction). The check compares with two calls of
# `info_nce`.

# %% tags=["solution"]
def symmetric_info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Mean of the z1 -> z2 and z2 -> z1 InfoNCE losses."""
    # BEGIN SOLUTION
    logits = F.normalize(z1, dim=-1) @ F.normalize(z2, dim=-1).T / temperature
    targets = torch.arange(len(z1))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    # END SOLUTION


# %% tags=["check"]
torch.manual_seed(1)
for B, dim, temperature in [(8, 16, 0.1), (32, 64, 0.5), (5, 3, 1.0)]:
    u, v = torch.randn(B, dim), torch.randn(B, dim)
    expected = (info_nce(u, v, temperature) + info_nce(v, u, temperature)) / 2
    check_close(symmetric_info_nce(u, v, temperature), expected,
                f"symmetric_info_nce for B={B}, dim={dim}, temperature={temperature}", rtol=1e-5)
u = torch.randn(6, 4)
check(float(symmetric_info_nce(u, u.flip(0), 0.1)) > float(symmetric_info_nce(u, u, 0.1)),
      "symmetric_info_nce", "a lower loss when every row's partner is its own copy")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Measure what the objective trained
#
# The contrastive objective rewards recognising a sentence's partner view. Write
# `retrieval_accuracy(h1, h2)`: for each row of `h1`, find the row of `h2` with the highest
# cosine similarity, and return the fraction of rows for which it is the row with the same
# index. Then make two random halves (`random_half`) of each of the last 600 probe sentences,
# `probe_ids[N_FIT:]`, which no encoder saw in training (use `np.random.default_rng(5)`; first view for every sentence, then
# second view for every sentence), and set `retrieval = {"random": ..., "halves": ...}` to the accuracy of
# `random_encoder.represent` and `halves_encoder.represent` on those views.

# %% tags=["solution"]
def retrieval_accuracy(h1: np.ndarray, h2: np.ndarray) -> float:
    """Share of rows of h1 whose most similar row of h2 (cosine) is their partner."""
    # BEGIN SOLUTION
    a = h1 / np.linalg.norm(h1, axis=1, keepdims=True)
    b = h2 / np.linalg.norm(h2, axis=1, keepdims=True)
    return float(np.mean((a @ b.T).argmax(axis=1) == np.arange(len(a))))
    # END SOLUTION


retrieval = None
# BEGIN SOLUTION
view_rng = np.random.default_rng(5)
test_ids = probe_ids[N_FIT:]
first_views = [random_half(s, view_rng) for s in test_ids]
second_views = [random_half(s, view_rng) for s in test_ids]
retrieval = {
    "random": retrieval_accuracy(random_encoder.represent(first_views),
                                 random_encoder.represent(second_views)),
    "halves": retrieval_accuracy(halves_encoder.represent(first_views),
                                 halves_encoder.represent(second_views)),
}
# END SOLUTION
print("retrieval accuracy among 600 held-out sentences:", retrieval)

# %% tags=["check"]
check_close(retrieval_accuracy(np.eye(3), np.eye(3)), 1.0, "retrieval_accuracy of identical views")
check_close(retrieval_accuracy(np.eye(4), np.eye(4)[[1, 0, 2, 3]]), 0.5,
            "retrieval_accuracy with two partners swapped")
check_close(retrieval_accuracy(np.eye(2), np.array([[1.0, 0.2], [10.0, 10.0]])), 1.0,
            "retrieval_accuracy (by cosine similarity, not dot product)")
check(isinstance(retrieval, dict) and set(retrieval) == {"random", "halves"}, "retrieval",
      'a dict with keys "random" and "halves"')
check_in_range(retrieval["random"], 0.0, 1.0, 'retrieval["random"]')
check(retrieval["halves"] > retrieval["random"] + 0.05, "retrieval",
      "the contrastive encoder to retrieve partners clearly better than the random one")
passed("Exercise 3")

# %% [markdown]
# The trained encoder is much better at the task it was trained for, on sentences it never saw;
# the probes above show how much of that transfers to other questions.

# %% [markdown]
# ## Summary
#
# - InfoNCE is a $B$-way classification of the partner view among in-batch negatives, one
#   `F.cross_entropy` over the similarity matrix; it starts near $\ln B$, and $\ln B$ minus the
#   loss bounds the mutual information between the views from below.
# - The views decide what is learned. Dropout-only views were solved within a few dozen steps by
#   an encoder trained from scratch and taught it little; random halves of a sentence gave a
#   real task.
# - Linear probes measure what a frozen representation makes linearly available. Our small
#   contrastive encoder gained about 20 points on the source of a sentence (topic and register,
#   what two halves share) and under 2 on its sentiment; the random encoder is a non-trivial
#   baseline.
# - MiniLM, trained with the same kind of objective at a vastly larger scale and with pairs that
#   share meaning, leads on sentiment by 14 points, and layer-wise probes show that its middle
#   layers hold the most linearly available information.
#
# Next in this module: [the training loop](04-training-loop), which makes any of these
# objectives run at scale.
#
# ## References
#
# - A. van den Oord, Y. Li, O. Vinyals, "Representation learning with contrastive predictive
#   coding", 2018. https://arxiv.org/abs/1807.03748
# - T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A simple framework for contrastive learning
#   of visual representations" (SimCLR), ICML 2020. https://arxiv.org/abs/2002.05709
# - T. Gao, X. Yao, D. Chen, "SimCSE: Simple contrastive learning of sentence embeddings",
#   EMNLP 2021. https://arxiv.org/abs/2104.08821
# - G. Alain, Y. Bengio, "Understanding intermediate layers using linear classifier probes",
#   2016. https://arxiv.org/abs/1610.01644
# - A. Radford et al., "Learning transferable visual models from natural language supervision"
#   (CLIP), ICML 2021. https://arxiv.org/abs/2103.00020
# - N. Reimers, I. Gurevych, "Sentence-BERT: Sentence embeddings using siamese BERT-networks",
#   EMNLP 2019. https://arxiv.org/abs/1908.10084 ; the all-MiniLM-L6-v2 model card:
#   https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2
# - J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of deep bidirectional
#   transformers for language understanding", NAACL 2019. https://arxiv.org/abs/1810.04805
# - C. J. Hutto, E. Gilbert, "VADER: A parsimonious rule-based model for sentiment analysis of
#   social media text", ICWSM 2014. https://ojs.aaai.org/index.php/ICWSM/article/view/14550
# - L. Jing, Y. Tian, "Self-supervised visual feature learning with deep neural networks: a
#   survey", 2019. https://arxiv.org/abs/1902.06162
# - A. Baevski, H. Zhou, A. Mohamed, M. Auli, "wav2vec 2.0: A framework for self-supervised
#   learning of speech representations", NeurIPS 2020. https://arxiv.org/abs/2006.11477
# - M. Caron et al., "Emerging properties in self-supervised vision transformers" (DINO),
#   ICCV 2021. https://arxiv.org/abs/2104.14294
