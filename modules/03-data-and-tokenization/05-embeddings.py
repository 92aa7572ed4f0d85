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
# # Embeddings: words, sentences and positions
#
# A model never sees a token id as a number to compute with. Its first operation turns every id
# into a vector, a row of a learned table, and adds a second vector that says where in the
# sequence the token stands. Word2vec (Mikolov et al., 2013) and GloVe (Pennington et al., 2014)
# made such vectors famous as standalone "word embeddings"; in a transformer the same table is
# just the first layer, trained with the rest. Sentence encoders go one step further and pool the
# model's contextual outputs into one vector per text, which is what semantic search, clustering
# and retrieval-augmented generation run on. This notebook opens a real pretrained encoder,
# all-MiniLM-L6-v2 (Wang et al., 2020; Reimers and Gurevych, 2019), and reads each of its
# embeddings in turn: what the word table has learned, how far analogy arithmetic goes, how a
# sentence vector is built and where it fails, and what the learned position table looks like.
#
# **Learning objectives**
# - Explain an embedding lookup as a row selection, reproduce a model's input layer (word,
#   position and segment embeddings, then LayerNorm) by hand, and count what the table costs.
# - Find nearest neighbours and solve analogies with a pretrained model's token embeddings, and
#   judge analogy accuracy against a baseline that ignores the analogy.
# - Build a sentence embedding by hand (contextual states, mean pooling, normalisation), match
#   the library, and measure it against similarity judgements, including pairs where it fails.
# - Read the learned position embeddings of a real model, compare them with sinusoidal
#   encodings, and show that without them the model cannot see word order.
#
# **Prerequisites:** cosine similarity and PCA-style projections from
# [linear algebra](../00-foundations/01-linear-algebra); WordPiece tokens from
# [the Hugging Face `tokenizers` pipeline](03-hf-tokenizers).
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
import copy
import re
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from sklearn.decomposition import PCA

import shared
from shared.assets import corpus, sentence_encoder
from shared.layers import sinusoidal_positions
from shared.plotting import heatmap

shared.seed_everything(0)
print(shared.environment_summary("sentence-transformers", "transformers", "scikit-learn", "numpy"))

# %% [markdown]
# ## What the encoder is made of
#
# `shared.assets.sentence_encoder()` loads all-MiniLM-L6-v2 from the course's offline copy. It is
# a `SentenceTransformer`: a BERT-style transformer (6 layers, 384 dimensions, distilled from a
# larger model by MiniLM's self-attention distillation) followed by mean pooling and
# normalisation, fine-tuned on about a billion sentence pairs so that related texts get nearby
# vectors. The underlying Hugging Face model is `model[0].auto_model`.

# %%
model = sentence_encoder()
bert = model[0].auto_model.eval()
tokenizer = model.tokenizer
print(model)
print(bert.embeddings)

word_table = bert.embeddings.word_embeddings.weight.detach()
position_table = bert.embeddings.position_embeddings.weight.detach()
n_params = sum(p.numel() for p in bert.parameters())
print(f"word embeddings {tuple(word_table.shape)} = {word_table.numel():,} parameters, "
      f"{word_table.numel() / n_params:.0%} of the model's {n_params:,}")
print(f"position embeddings {tuple(position_table.shape)} = {position_table.numel():,} parameters")

# %% [markdown]
# Half of this small model is its vocabulary table. In large models the share is small (a
# 7B-parameter model with a 32k vocabulary and 4,096 dimensions spends about 2% of its
# parameters on it), which is one reason vocabularies have grown
# (see [custom tokenizers](04-custom-tokenizers) for the cost of a larger one).

# %% [markdown]
# ## An embedding is a table lookup
#
# Token $t$ with id $i$ becomes row $i$ of the table $E \in \mathbb{R}^{V \times d}$. Writing the
# id as a one-hot vector $e_i \in \{0,1\}^V$ makes the lookup a matrix product, $e_i^\top E$,
# which is why an embedding layer is a linear layer whose input happens to be one-hot; the
# library simply indexes the row instead of multiplying by zeros.
#
# The input to BERT's first layer adds two more lookups, one for the position (a learned table
# of 512 rows) and one for the segment (sentence A or B), and normalises the sum:
#
# $$x_p = \mathrm{LayerNorm}\big(E[\text{id}_p] + P[p] + S[\text{segment}_p]\big).$$
#
# We compute both by hand and compare with the model.

# %%
sentence = "The king spoke to the queen."
encoded = tokenizer(sentence, return_tensors="pt")
ids = encoded["input_ids"][0]
print("tokens:", tokenizer.convert_ids_to_tokens(ids))

one_hot = F.one_hot(ids, num_classes=word_table.shape[0]).float()
print(f"one-hot @ E == E[ids]: max difference "
      f"{(one_hot @ word_table - word_table[ids]).abs().max():.1e}")

emb = bert.embeddings
with torch.no_grad():
    by_hand = emb.LayerNorm(word_table[ids] + position_table[: len(ids)]
                            + emb.token_type_embeddings.weight[0])
    by_model = emb(input_ids=ids[None])[0]
print(f"input layer by hand vs the model: max difference {(by_hand - by_model).abs().max():.1e}")

# %% [markdown]
# The word table is *static*: "the" gets the same row at both of its positions, whatever the
# sentence is about. Only the layers above mix in context. The rest of this notebook looks at
# the table first, then at what the layers add.

# %% [markdown]
# ## Word embeddings: nearest neighbours
#
# WordPiece vocabularies hold whole words and `##` continuation pieces. We keep the 21,745
# entries that are plain lower-case words and rank them by cosine similarity to a query word.

# %%
vocab = tokenizer.convert_ids_to_tokens(list(range(word_table.shape[0])))
in_vocab = set(vocab)  # `tokenizer.vocab` rebuilds a dict on every access: keep a set
is_word = np.array([re.fullmatch(r"[a-z]+", token) is not None for token in vocab])
word_ids = np.flatnonzero(is_word)
unit_table = F.normalize(word_table, dim=1).numpy()
print(f"{len(word_ids):,} whole-word tokens out of {len(vocab):,}")


def nearest_tokens(word: str, k: int = 7) -> list[tuple[str, float]]:
    """The k whole-word tokens whose input embeddings are closest (cosine) to `word`'s."""
    token_id = tokenizer.convert_tokens_to_ids(word)
    sims = unit_table[word_ids] @ unit_table[token_id]
    order = [i for i in np.argsort(-sims) if word_ids[i] != token_id][:k]
    return [(vocab[word_ids[i]], float(sims[i])) for i in order]


for word in ["king", "paris", "good", "running", "three", "computer", "happy"]:
    print(f"{word:>9}: " + ", ".join(f"{w} {s:.2f}" for w, s in nearest_tokens(word)))

# %% [markdown]
# The neighbours mix several relations, as distributional vectors always do: inflections
# ("running": run, ran, runs), members of the same class ("three": four, two, five; "paris":
# london, cairo), related concepts ("king": queen, monarch), and antonyms ("good": bad;
# "happy": unhappy), which occur in the same contexts as their opposites. The table was
# trained only to help the layers above predict masked words, yet it has organised the
# vocabulary by meaning.

# %% [markdown]
# ## Analogies: how far does vector arithmetic go?
#
# Mikolov, Yih and Zweig (2013) observed that offsets between word2vec vectors encode relations:
# $\vec{\text{queen}} \approx \vec{\text{king}} - \vec{\text{man}} + \vec{\text{woman}}$. For an
# analogy $a : b :: c : d$ the standard test (3CosAdd) predicts
#
# $$\hat d = \arg\max_{x \notin \{a, b, c\}} \cos\big(x,\; b - a + c\big).$$
#
# Two cautions from the literature make the test honest. The inputs must be excluded (otherwise
# $c$ itself usually wins), and even then the nearest neighbour of $c$ is often the answer on
# its own (Linzen, 2016): "dogs" is close to "dog" whether or not we add the plural offset. So we
# also report the **only-c baseline**, $\arg\max_{x \notin \{a,b,c\}} \cos(x, c)$, and the
# analogy deserves credit only for what it adds on top.
#
# The 30 analogies below were written for this notebook, six in each of five relations; they
# are common words and easy cases, not a benchmark.

# %%
ANALOGIES = {  # a b c d: a is to b as c is to d
    "gender": ["man woman king queen", "boy girl brother sister", "father mother son daughter",
               "husband wife uncle aunt", "he she his her", "prince princess actor actress"],
    "capital": ["france paris italy rome", "germany berlin japan tokyo",
                "spain madrid russia moscow", "england london egypt cairo",
                "china beijing greece athens", "canada ottawa kenya nairobi"],
    "plural": ["cat cats dog dogs", "car cars house houses", "child children man men",
               "book books tree trees", "woman women mouse mice", "city cities country countries"],
    "past tense": ["walk walked play played", "go went see saw", "run ran eat ate",
                   "take took give gave", "write wrote speak spoke", "buy bought think thought"],
    "comparative": ["good better bad worse", "big bigger small smaller", "fast faster slow slower",
                    "high higher low lower", "old older young younger",
                    "strong stronger weak weaker"],
}
analogy_words = sorted({w for items in ANALOGIES.values() for item in items for w in item.split()})
assert all(w in in_vocab for w in analogy_words)  # every word is a single token


def solve_analogies(vectors: np.ndarray, words: list[str], use_offset: bool = True) -> dict:
    """Accuracy per relation of 3CosAdd (or of the only-c baseline) over the rows of `vectors`."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    row = {w: i for i, w in enumerate(words)}
    accuracy = {}
    for relation, items in ANALOGIES.items():
        correct = 0
        for item in items:
            a, b, c, d = item.split()
            target = unit[row[b]] - unit[row[a]] + unit[row[c]] if use_offset else unit[row[c]]
            sims = unit @ target
            sims[[row[a], row[b], row[c]]] = -np.inf
            correct += words[int(np.argmax(sims))] == d
        accuracy[relation] = correct / len(items)
    return accuracy


all_words = [vocab[i] for i in word_ids]
results = {
    "input embeddings, 21,745 words": solve_analogies(word_table[word_ids].numpy(), all_words),
    "  only-c baseline": solve_analogies(word_table[word_ids].numpy(), all_words, use_offset=False),
}

# %% [markdown]
# The input table can be searched over its whole vocabulary. A *sentence-level* vector of a word
# (the word encoded alone through all six layers, pooled and normalised) costs a forward pass
# per candidate, so for a fair comparison both kinds of vector search the same smaller pool:
# the 1,500 most frequent words of the sentiment corpus (23,703 real sentences) that are single
# tokens, plus the analogy words.

# %%
word_counts = Counter(w for record in corpus("sentiment")
                      for w in re.findall(r"[a-z]+", record["text"].lower()))
frequent = [w for w, _ in word_counts.most_common() if w in in_vocab][:1500]
pool = sorted(set(frequent) | set(analogy_words))

start = time.perf_counter()
pool_sentence_vectors = model.encode(pool, batch_size=256)
elapsed = time.perf_counter() - start
print(f"encoded {len(pool):,} single words in {elapsed:.1f} s ({len(pool) / elapsed:,.0f} per s)")
pool_input_vectors = word_table[tokenizer.convert_tokens_to_ids(pool)].numpy()

results |= {
    f"input embeddings, {len(pool):,} words": solve_analogies(pool_input_vectors, pool),
    "  only-c baseline ": solve_analogies(pool_input_vectors, pool, use_offset=False),
    f"sentence vectors, {len(pool):,} words": solve_analogies(pool_sentence_vectors, pool),
    "  only-c baseline  ": solve_analogies(pool_sentence_vectors, pool, use_offset=False),
}
print(f"{'':>34}" + "".join(f"{r:>12}" for r in ANALOGIES) + f"{'mean':>8}")
for name, accuracy in results.items():
    print(f"{name:>34}" + "".join(f"{accuracy[r]:>12.2f}" for r in ANALOGIES)
          + f"{np.mean(list(accuracy.values())):>8.2f}")

# %%
fig, ax = plt.subplots(figsize=(10, 4))
names = [n for n in results if not n.startswith(" ")]
baselines = [n for n in results if n.startswith(" ")]
width = 0.27
x = np.arange(len(ANALOGIES))
for k, (name, base) in enumerate(zip(names, baselines)):
    ax.bar(x + (k - 1) * width, [results[name][r] for r in ANALOGIES], width, label=name)
    ax.scatter(x + (k - 1) * width, [results[base][r] for r in ANALOGIES], color="black",
               marker="_", s=200, zorder=3, label="only-c baseline" if k == 0 else None)
ax.set_xticks(x, list(ANALOGIES))
ax.set(xlabel="relation", ylabel="top-1 accuracy (6 analogies each)", ylim=(0, 1.1),
       title="3CosAdd analogies: bars; the nearest neighbour of c alone: black marks")
ax.legend(loc="lower right", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Over the whole vocabulary the input table solves 25 of the 30 analogies (0.83), against 11 for
# the only-c baseline (0.37). The offset does real work for gender, capitals and past tenses,
# where the nearest neighbour of $c$ is never the answer ("king" is nearest to "kings", not
# "queen"). For plurals and comparatives it adds little: the baseline already scores 1.00 and
# 0.83, because the answer is usually the nearest neighbour of $c$ anyway ("dogs" of "dog").
#
# Shrinking the candidates to 1,558 frequent words lifts the scores, the baseline most (0.37 to
# 0.77), since fewer distractors remain: published analogy accuracies depend heavily on the
# candidate set. On that pool the sentence-level vectors of single words do worse than the
# input table (0.87 against 0.97), and on plurals and comparatives they beat their own baseline
# by a single analogy each. The layers above, trained to compare sentences, do not make word relations
# more linear. So analogy arithmetic does work on this contextual model's input embeddings, for
# easy relations between frequent words, and a "solved" analogy is evidence of a linear
# relation only where it beats the baseline.

# %% [markdown]
# ## Word vectors in two dimensions
#
# A 384-dimensional space can be looked at through its two directions of largest variance
# (principal component analysis, PCA). Below are 48 words from six categories, as input
# embeddings and as sentence-level vectors. The category colours are our labels; PCA never sees
# them. [Text vectorization](06-text-vectorization) does the same for whole texts, with t-SNE.

# %%
CATEGORIES = {
    "country": "france germany italy spain japan china egypt kenya",
    "animal": "dog cat horse mouse lion tiger bird fish",
    "number": "one two three four five six seven eight",
    "colour": "red blue green yellow black white purple orange",
    "emotion": "happy sad angry afraid proud jealous lonely excited",
    "food": "bread cheese apple rice soup meat cake butter",
}
category_words = [w for words in CATEGORIES.values() for w in words.split()]
category_labels = [c for c, words in CATEGORIES.items() for _ in words.split()]
spaces = {
    "input embeddings": word_table[tokenizer.convert_tokens_to_ids(category_words)].numpy(),
    "sentence vectors": model.encode(category_words),
}
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for ax, (space, vectors) in zip(axes, spaces.items()):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    pca = PCA(n_components=2, random_state=0).fit(unit)
    points = pca.transform(unit)
    for category in CATEGORIES:
        mask = np.array(category_labels) == category
        ax.scatter(points[mask, 0], points[mask, 1], label=category, s=25)
    for word, (px, py) in zip(category_words, points):
        ax.annotate(word, (px, py), fontsize=7, alpha=0.7)
    ax.set(xlabel="principal component 1", ylabel="principal component 2",
           title=f"{space}: {pca.explained_variance_ratio_.sum():.0%} of variance in 2-D")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()


def nearest_centroid_accuracy(vectors: np.ndarray, labels: list[str]) -> float:
    """Leave-one-out accuracy of assigning each word to the category with the closest mean."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array(labels)
    correct = 0
    for i in range(len(unit)):
        others = np.arange(len(unit)) != i
        centroids = {c: unit[others & (labels == c)].mean(0) for c in CATEGORIES}
        correct += max(centroids, key=lambda c: unit[i] @ centroids[c]) == labels[i]
    return correct / len(unit)


for space, vectors in spaces.items():
    print(f"{space}: nearest-centroid category accuracy in 384-D "
          f"{nearest_centroid_accuracy(vectors, category_labels):.2f}")

# %% [markdown]
# Both spaces put the six categories in separate regions. The 2-D views keep only 17% and 22% of
# the variance, so overlaps in the pictures (animals and food) partly come from the
# projection; in all 384 dimensions a nearest-centroid rule recovers the category of 47 of the
# 48 words in either space. "one" sits away from the other numbers in both views, plausibly
# because it is also a pronoun ("no one", "this one").

# %% [markdown]
# ## Sentence embeddings
#
# The six transformer layers turn the static input vectors into *contextual* ones: every
# output vector depends on the whole sentence. all-MiniLM-L6-v2 turns the output vectors of a
# text into one vector by averaging them over the real tokens (padding excluded) and scaling to
# unit length (Reimers and Gurevych, 2019):
#
# $$s = \frac{m}{\lVert m \rVert},\qquad m = \frac{\sum_p a_p h_p}{\sum_p a_p},$$
#
# where $h_p$ is the last layer's output at position $p$ and $a_p \in \{0,1\}$ the attention
# mask. We compute it from the raw model and compare with `model.encode`.

# %%
sentences = ["A man is playing a guitar.", "The restaurant was excellent, I would go back.",
             "Stock markets fell sharply."]
batch = tokenizer(sentences, padding=True, return_tensors="pt")
with torch.no_grad():
    states = bert(**batch).last_hidden_state  # (batch, tokens, 384): one vector per token
mask = batch["attention_mask"].unsqueeze(-1).float()
by_hand = F.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
library = model.encode(sentences, convert_to_tensor=True)
print(f"token states {tuple(states.shape)}; sentence vectors {tuple(by_hand.shape)}")
print(f"mean pooling by hand vs model.encode: max difference {(by_hand - library).abs().max():.1e}")

# %% [markdown]
# Context changes a token's vector. The word "bank" has one row in the input table, but its
# output vectors in a sentence about a river and in one about money differ:

# %%
bank_sentences = ["We sat on the bank of the river and watched the water.",
                  "The fishermen pulled their boat onto the muddy bank.",
                  "I need to deposit this cheque at the bank today.",
                  "The bank raised its interest rates again."]
bank_batch = tokenizer(bank_sentences, padding=True, return_tensors="pt")
with torch.no_grad():
    bank_states = bert(**bank_batch).last_hidden_state
bank_id = tokenizer.convert_tokens_to_ids("bank")
bank_vectors = torch.stack([bank_states[i, (bank_batch["input_ids"][i] == bank_id).nonzero()[0, 0]]
                            for i in range(len(bank_sentences))])
bank_similarity = F.normalize(bank_vectors, dim=1) @ F.normalize(bank_vectors, dim=1).T
print(np.round(bank_similarity.numpy(), 2))
print(f"river/river {bank_similarity[0, 1]:.2f}, money/money {bank_similarity[2, 3]:.2f}, "
      f"river/money mean {bank_similarity[:2, 2:].mean():.2f}")

# %% [markdown]
# ### Similarity judgements: where a sentence encoder works and where it does not
#
# Semantic textual similarity (STS) benchmarks (Cer et al., 2017) pair sentences with human
# scores from 0 (unrelated) to 5 (equivalent) and report the Spearman rank correlation between a
# model's cosine and those scores. The 16 pairs below are ours: written for this notebook and
# scored by its authors on the STS scale, so they illustrate rather than benchmark. Each pair
# also has a kind. Four are *contrast* pairs: the same words in another order, a negation,
# opposite sentiment, and a different instrument.
#
# Two baselines show what the transformer layers add: the cosine of the **mean input
# embeddings** of the two sentences (a static bag of vectors, the pre-transformer recipe), and
# the **Jaccard overlap** of their word sets.

# %%
STS_PAIRS = [  # sentence 1, sentence 2, our score 0-5, kind
    ("A man is playing a guitar.", "A man plays the guitar.", 5.0, "paraphrase"),
    ("The film was dull and far too long.", "That movie bored me; it dragged on forever.",
     4.5, "paraphrase"),
    ("The cat is sleeping on the sofa.", "A cat naps on the couch.", 4.5, "paraphrase"),
    ("The company's profits rose sharply this year.",
     "Earnings at the firm increased a lot in the past year.", 4.5, "paraphrase"),
    ("How do I reset my password?", "I forgot my password and need a new one.", 4.0, "paraphrase"),
    ("Photosynthesis turns light into chemical energy.", "Plants use sunlight to make their food.",
     4.0, "paraphrase"),
    ("A woman is slicing an onion.", "A woman is cutting vegetables.", 3.5, "related"),
    ("The children are playing football in the park.", "Kids are playing a game outside.",
     3.5, "related"),
    ("The train to London leaves at noon.", "The flight to Paris departs in the morning.",
     2.0, "related"),
    ("She is reading a book in the library.", "She is writing a letter at home.", 1.5, "related"),
    ("Stock markets fell after the announcement.", "The weather will be sunny tomorrow.",
     0.0, "unrelated"),
    ("He scored the winning goal in the final minute.", "The recipe needs two cups of flour.",
     0.0, "unrelated"),
    ("The dog bit the man.", "The man bit the dog.", 1.5, "contrast"),
    ("The restaurant was excellent.", "The restaurant was not excellent.", 1.5, "contrast"),
    ("I love this phone, the battery lasts for days.",
     "The battery life of this phone is terrible.", 1.5, "contrast"),
    ("A man is playing a guitar.", "A man is playing a piano.", 2.5, "contrast"),
]
first, second, gold, kinds = map(list, zip(*STS_PAIRS))
gold, kinds = np.array(gold), np.array(kinds)

sentence_cos = (model.encode(first) * model.encode(second)).sum(1)


def mean_input_embedding(text: str) -> np.ndarray:
    token_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return F.normalize(word_table[token_ids].mean(0), dim=0).numpy()


static_cos = np.array([mean_input_embedding(a) @ mean_input_embedding(b)
                       for a, b in zip(first, second)])


def jaccard(a: str, b: str) -> float:
    words_a, words_b = set(re.findall(r"[a-z']+", a.lower())), set(re.findall(r"[a-z']+", b.lower()))
    return len(words_a & words_b) / len(words_a | words_b)


overlap = np.array([jaccard(a, b) for a, b in zip(first, second)])
methods = {"MiniLM sentence vectors": sentence_cos, "mean input embeddings": static_cos,
           "word overlap (Jaccard)": overlap}
ordinary = kinds != "contrast"
for name, scores in methods.items():
    print(f"{name:>24}: Spearman {spearmanr(gold, scores).statistic:+.2f} on all 16 pairs, "
          f"{spearmanr(gold[ordinary], scores[ordinary]).statistic:+.2f} without the 4 contrast pairs")
print()
for (a, b, score, kind), cos in zip(STS_PAIRS, sentence_cos):
    print(f"{score:3.1f} {kind:>10} cos {cos:.2f}  {a} | {b}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharex=True)
for ax, (name, scores) in zip(axes, methods.items()):
    for kind, marker in [("paraphrase", "o"), ("related", "s"), ("unrelated", "^"),
                         ("contrast", "X")]:
        chosen = kinds == kind
        ax.scatter(gold[chosen], scores[chosen], marker=marker, s=50, label=kind)
    ax.set(xlabel="our similarity score (0-5)", ylabel="cosine / overlap",
           title=f"{name}\nSpearman {spearmanr(gold, scores).statistic:+.2f}")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# On the twelve ordinary pairs, the sentence vectors order the pairs much as our scores do
# (Spearman 0.81); the mean input embeddings (0.49) and word overlap (0.26) do not. "The film
# was dull and far too long" and "That movie bored me; it dragged on forever" share no word
# (Jaccard 0) and still get cosine 0.57: this is what the transformer layers and the training on
# related pairs bought.
#
# The contrast pairs take much of it back. Swapping subject and object gives cosine 0.98, as high
# as the true paraphrase; the negation and the opposite-sentiment review get 0.74 and 0.76,
# above several real paraphrases. With them Spearman falls to 0.44. An encoder trained to bring
# related texts together measures relatedness of topic more than sameness of meaning, which
# suits search and hurts tasks such as entailment or sentiment. The cosines are also not
# calibrated: a paraphrase scores 0.54 and an unrelated pair 0.15, so any threshold has to be
# set on labelled data.

# %% [markdown]
# ## Positional embeddings
#
# Attention compares every token with every other by content alone; without extra information,
# shuffling the input tokens would just shuffle the outputs. BERT-style models therefore add a
# learned vector $P[p]$ for each position $p < 512$, trained like any other weight. The
# original transformer (Vaswani et al., 2017) used a fixed table instead, sines and cosines of
# geometrically spaced frequencies (`shared.layers.sinusoidal_positions`; the Module 02
# notebook on positional encoding builds it and its successors). Comparing the cosine
# similarity of every pair of positions in the two tables shows what training produced.

# %%
def cosine_matrix(table: torch.Tensor) -> np.ndarray:
    unit = F.normalize(table.float(), dim=1)
    return (unit @ unit.T).numpy()


learned_similarity = cosine_matrix(position_table)
sinusoidal_similarity = cosine_matrix(sinusoidal_positions(512, position_table.shape[1]))

fig, axes = plt.subplots(1, 2, figsize=(12, 5))
heatmap(learned_similarity, None, None, "MiniLM learned position embeddings",
        xlabel="position", ylabel="position", ax=axes[0], colorbar_label="cosine similarity")
heatmap(sinusoidal_similarity, None, None, "Sinusoidal encoding (d = 384)",
        xlabel="position", ylabel="position", ax=axes[1], colorbar_label="cosine similarity")
plt.tight_layout()
plt.show()

# %%
offsets = np.arange(1, 300)
learned_by_offset = [np.diag(learned_similarity, k)[1:].mean() for k in offsets]  # skip [CLS]
sinusoidal_by_offset = [np.diag(sinusoidal_similarity, k).mean() for k in offsets]
norms = position_table.norm(dim=1).numpy()
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(offsets, learned_by_offset, label="learned (MiniLM)")
axes[0].plot(offsets, sinusoidal_by_offset, label="sinusoidal")
axes[0].set(xscale="log", xlabel="distance between positions |i - j|",
            ylabel="mean cosine similarity", title="Similarity of positions by distance")
axes[0].legend()
axes[1].plot(norms)
axes[1].set(xlabel="position", ylabel="L2 norm of P[p]", yscale="log",
            title="Norm of each learned position vector")
plt.tight_layout()
plt.show()
for k in (1, 2, 4, 8, 16, 32, 64, 128, 256):
    print(f"distance {k:3d}: learned {learned_by_offset[k - 1]:+.2f}, "
          f"sinusoidal {sinusoidal_by_offset[k - 1]:+.2f}")
print(f"norm of P[0] {norms[0]:.2f}; median norm of the others {np.median(norms[1:]):.2f}")

# %% [markdown]
# The two tables are organised differently. In the sinusoidal table, similarity falls smoothly
# with distance and never goes far: at distance 256 it is still 0.36, because the
# low-frequency dimensions barely change over 512 positions. The learned table was not told
# about distance at all, yet adjacent positions came out similar (0.85) and distant ones close
# to orthogonal (0.08 at 128, -0.03 at 256). Its similarity also oscillates with distance (0.29
# at 8, 0.43 at 16), the parallel stripes in the heatmap: training found a partly periodic
# code, as Wang and Chen (2020) report for BERT.
#
# The norms show a seam. Position 0, always `[CLS]`, has a vector five times longer than the
# others; positions 0-127 are shorter than 128-511, with a spike at 127. A plausible reason is
# BERT's pretraining recipe, which runs 90% of the steps on 128-token sequences (Devlin et al.,
# 2019), so that later positions are updated far less often; we have not verified MiniLM's own
# schedule. Either way, a learned table knows only the positions it was trained on, and this
# model cannot read past 512 tokens (its sentence-transformers wrapper truncates at 256).
#
# What do the positions buy? Encode a sentence and the same words in another order, then do it
# again with a copy of the model whose position table is set to zero.

# %%
pair = ["The dog bit the man.", "The man bit the dog."]
with_positions = model.encode(pair)
no_position_model = copy.deepcopy(model)
with torch.no_grad():
    no_position_model[0].auto_model.embeddings.position_embeddings.weight.zero_()
without_positions = no_position_model.encode(pair)
print(f"with positions:    cosine {with_positions[0] @ with_positions[1]:.4f}")
print(f"without positions: cosine {without_positions[0] @ without_positions[1]:.4f}, "
      f"max difference {np.abs(without_positions[0] - without_positions[1]).max():.1e}")

# %% [markdown]
# Without position vectors the two sentences get the same embedding, to within float rounding:
# self-attention and the feed-forward layers treat the input as a set, so permuting the words
# permutes the output vectors, and the mean over them does not change. With positions the model
# can tell them apart, but only just (cosine 0.98): mean pooling and training on pairs of related
# texts have made the encoder mostly a judge of *topic*, which is also why it rated the
# dog/man contrast pair as near-paraphrase above.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Mean pooling with a mask
#
# Write `mean_pool(token_states, attention_mask)` that takes the last-layer states
# `(batch, tokens, dim)` and the mask `(batch, tokens)` of a padded batch and returns unit-length
# sentence vectors `(batch, dim)`: the mean over the unmasked positions only, then L2-normalised.
# The check compares it with `model.encode` on a batch whose sentences have very different
# lengths, so padding that leaks into the mean fails.

# %% tags=["solution"]
def mean_pool(token_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over the token axis, then L2 normalisation."""
    # BEGIN SOLUTION
    mask = attention_mask.unsqueeze(-1).to(token_states.dtype)
    return F.normalize((token_states * mask).sum(1) / mask.sum(1), dim=-1)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_shape, passed

texts = ["Hi.", "The quick brown fox jumps over the lazy dog near the quiet river bank."]
padded = tokenizer(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    padded_states = bert(**padded).last_hidden_state
pooled = mean_pool(padded_states, padded["attention_mask"])
check_shape(pooled, (2, 384), "mean_pool(...)")
check_close(pooled, model.encode(texts, convert_to_tensor=True), "mean_pool vs model.encode",
            atol=1e-5)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Another analogy rule, 3CosMul
#
# Levy and Goldberg (2014) proposed 3CosMul, which rewards a candidate $x$ for being close to
# both $b$ and $c$ and far from $a$ multiplicatively, with cosines shifted to $[0, 1]$:
#
# $$\hat d = \arg\max_{x \notin \{a,b,c\}} \frac{\cos'(x, b)\,\cos'(x, c)}{\cos'(x, a) + \varepsilon},
# \qquad \cos' = \frac{\cos + 1}{2},\ \varepsilon = 10^{-3}.$$
#
# Write `three_cos_mul(vectors, words, a, b, c)` returning the predicted word, then set
# `cosmul_accuracy` to the fraction of the 30 analogies it solves with the input embeddings of
# the frequent-word `pool` (`pool_input_vectors`, `pool`).

# %% tags=["solution"]
def three_cos_mul(vectors: np.ndarray, words: list[str], a: str, b: str, c: str) -> str:
    """The 3CosMul answer to a : b :: c : ? among `words` (rows of `vectors`)."""
    # BEGIN SOLUTION
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    row = {w: i for i, w in enumerate(words)}
    shifted = {w: (unit @ unit[row[w]] + 1) / 2 for w in (a, b, c)}
    score = shifted[b] * shifted[c] / (shifted[a] + 1e-3)
    score[[row[a], row[b], row[c]]] = -np.inf
    return words[int(np.argmax(score))]
    # END SOLUTION


cosmul_accuracy = None
# BEGIN SOLUTION
all_analogies = [item.split() for items in ANALOGIES.values() for item in items]
cosmul_accuracy = np.mean([three_cos_mul(pool_input_vectors, pool, a, b, c) == d
                           for a, b, c, d in all_analogies])
# END SOLUTION
print(f"3CosMul accuracy on the pool: {cosmul_accuracy}")

# %% tags=["check"]
toy_words = ["a", "b", "c", "d", "e"]
toy = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0],
                [0.2, 0.1, 1.0]])
check_equal(three_cos_mul(toy, toy_words, "a", "b", "c"), "d", "three_cos_mul on the toy vectors")
check_equal(three_cos_mul(pool_input_vectors, pool, "man", "woman", "king"), "queen",
            "three_cos_mul(man, woman, king)")
unit_pool = pool_input_vectors / np.linalg.norm(pool_input_vectors, axis=1, keepdims=True)
pool_row = {w: i for i, w in enumerate(pool)}
expected_correct = 0
for items in ANALOGIES.values():
    for item in items:
        a_, b_, c_, d_ = item.split()
        cos_ = {w: (unit_pool @ unit_pool[pool_row[w]] + 1) / 2 for w in (a_, b_, c_)}
        score_ = cos_[b_] * cos_[c_] / (cos_[a_] + 1e-3)
        score_[[pool_row[a_], pool_row[b_], pool_row[c_]]] = -np.inf
        expected_correct += pool[int(np.argmax(score_))] == d_
check_close(cosmul_accuracy, expected_correct / 30, "cosmul_accuracy")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Similarity by distance
#
# Write `similarity_by_distance(similarity, max_distance)` that takes a square matrix of
# position similarities and returns an array whose entry `k` is the mean of all entries
# `similarity[i, i + k]`, for `k = 0, ..., max_distance - 1` (the $k$-th diagonal). Then set
# `learned_minus_sinusoidal_at_32` to the learned table's mean similarity at distance 32 minus
# the sinusoidal table's (use the full matrices, including position 0).

# %% tags=["solution"]
def similarity_by_distance(similarity: np.ndarray, max_distance: int) -> np.ndarray:
    """Mean of each of the first `max_distance` upper diagonals of a square matrix."""
    # BEGIN SOLUTION
    n = similarity.shape[0]
    return np.array([similarity[np.arange(n - k), np.arange(k, n)].mean()
                     for k in range(max_distance)])
    # END SOLUTION


learned_minus_sinusoidal_at_32 = None
# BEGIN SOLUTION
learned_minus_sinusoidal_at_32 = (similarity_by_distance(learned_similarity, 33)[32]
                                  - similarity_by_distance(sinusoidal_similarity, 33)[32])
# END SOLUTION

# %% tags=["check"]
toy_matrix = np.arange(16, dtype=float).reshape(4, 4)
check_close(similarity_by_distance(toy_matrix, 4), [7.5, 6.0, 4.5, 3.0],
            "similarity_by_distance(arange(16).reshape(4, 4), 4)")
check_close(similarity_by_distance(learned_similarity, 1), [1.0], "distance 0 (the diagonal)",
            atol=1e-5)
check_close(learned_minus_sinusoidal_at_32,
            np.diag(learned_similarity, 32).mean() - np.diag(sinusoidal_similarity, 32).mean(),
            "learned_minus_sinusoidal_at_32", atol=1e-6)
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: The contextual vector of a word
#
# Write `contextual_vector(text, word)` that runs `bert` on `text` and returns the last-layer
# output vector (shape `(384,)`) at the first position whose token is `word` (a single-token
# word). Raise `ValueError` if `word` is not among the text's tokens. The check compares the
# vector of "bank" with the states computed above and tests that a river bank is closer to
# another river bank than to a money bank.

# %% tags=["solution"]
def contextual_vector(text: str, word: str) -> torch.Tensor:
    """Last-layer state of the first occurrence of single-token `word` in `text`."""
    # BEGIN SOLUTION
    batch_ = tokenizer(text, return_tensors="pt")
    positions = (batch_["input_ids"][0] == tokenizer.convert_tokens_to_ids(word)).nonzero()
    if len(positions) == 0:
        raise ValueError(f"{word!r} is not a token of {text!r}")
    with torch.no_grad():
        return bert(**batch_).last_hidden_state[0, positions[0, 0]]
    # END SOLUTION


# %% tags=["check"]
river = contextual_vector(bank_sentences[0], "bank")
check_shape(river, (384,), "contextual_vector(...)")
check_close(river, bank_vectors[0], "contextual_vector(bank_sentences[0], 'bank')", atol=1e-4)
other_river = contextual_vector("The otters swam along the bank of the stream.", "bank")
money = contextual_vector("She opened a savings account at the bank.", "bank")
check(F.cosine_similarity(river, other_river, dim=0) > F.cosine_similarity(river, money, dim=0),
      "contextual_vector", "two river banks to be closer than a river bank and a money bank")
try:
    contextual_vector("No such word here.", "bank")
    raised = False
except ValueError:
    raised = True
check(raised, "contextual_vector", "a ValueError when the word is not in the text")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - An embedding layer is a table lookup, equivalent to a one-hot vector times the table. In
#   all-MiniLM-L6-v2 the word table is 52% of the parameters; the input to layer 1 is
#   LayerNorm(word + position + segment), reproduced here to $5 \times 10^{-7}$.
# - The pretrained input table groups words by meaning (inflections, classes, antonyms). 3CosAdd
#   analogies solved 25 of 30 easy items over the whole vocabulary against 11 for the
#   nearest-neighbour baseline; sentence-level vectors of single words did worse than the table.
# - A sentence vector is the masked mean of contextual token states, normalised; our version
#   equals `model.encode` exactly. It tracks relatedness well (Spearman 0.81 on ordinary pairs)
#   but scores word-order swaps, negations and opposite opinions as near-paraphrases.
# - Learned position embeddings came out similar for nearby positions and nearly orthogonal for
#   distant ones, with periodic stripes and a seam at 128; sinusoidal ones decay smoothly. With the
#   position table zeroed, the model gives "the dog bit the man" and "the man bit the dog" the
#   same vector.
#
# Next: [text vectorization](06-text-vectorization), which compares these dense vectors with
# bag-of-words and TF-IDF vectors on a retrieval task.
#
# ## References
#
# - T. Mikolov, K. Chen, G. Corrado, J. Dean, "Efficient estimation of word representations in
#   vector space" (word2vec), 2013. https://arxiv.org/abs/1301.3781
# - T. Mikolov, W. Yih, G. Zweig, "Linguistic regularities in continuous space word
#   representations", NAACL 2013. https://aclanthology.org/N13-1090/
# - J. Pennington, R. Socher, C. D. Manning, "GloVe: global vectors for word representation",
#   EMNLP 2014. https://aclanthology.org/D14-1162/
# - O. Levy, Y. Goldberg, "Linguistic regularities in sparse and explicit word representations",
#   CoNLL 2014 (3CosMul). https://aclanthology.org/W14-1618/
# - T. Linzen, "Issues in evaluating semantic spaces using word analogies", RepEval 2016.
#   https://aclanthology.org/W16-2503/
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017 (sinusoidal positions).
#   https://arxiv.org/abs/1706.03762
# - J. Devlin et al., "BERT: pre-training of deep bidirectional transformers for language
#   understanding", NAACL 2019. https://arxiv.org/abs/1810.04805
# - N. Reimers, I. Gurevych, "Sentence-BERT: sentence embeddings using Siamese BERT-networks",
#   EMNLP 2019. https://arxiv.org/abs/1908.10084
# - W. Wang et al., "MiniLM: deep self-attention distillation for task-agnostic compression of
#   pre-trained transformers", NeurIPS 2020. https://arxiv.org/abs/2002.10957
# - Sentence-Transformers, the all-MiniLM-L6-v2 model card (training data and pooling).
#   https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2
# - K. Ethayarajh, "How contextual are contextualized word representations?", EMNLP 2019.
#   https://arxiv.org/abs/1909.00512
# - D. Cer et al., "SemEval-2017 task 1: semantic textual similarity" (the STS benchmark), 2017.
#   https://arxiv.org/abs/1708.00055
# - Y.-A. Wang, Y.-N. Chen, "What do position embeddings learn? An empirical study of pre-trained
#   language model positional encoding", EMNLP 2020. https://arxiv.org/abs/2010.04903
# - J. Alammar, "The illustrated word2vec". https://jalammar.github.io/illustrated-word2vec/
# - A. Kazemnejad, "Transformer architecture: the positional encoding".
#   https://kazemnejad.com/blog/transformer_architecture_positional_encoding/
