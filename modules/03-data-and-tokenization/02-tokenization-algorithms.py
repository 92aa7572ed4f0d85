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
# # Tokenization algorithms: BPE, WordPiece and Unigram
#
# A language model never sees text. It sees a sequence of integers, and the tokenizer decides what
# each integer stands for. Characters make sequences long; whole words leave every unseen word
# "unknown". Subword tokenizers sit in between: frequent words become one token, rare words are
# spelled from pieces, and nothing is ever out of vocabulary. The three algorithms behind almost
# every modern model (byte-pair encoding in GPT, WordPiece in BERT, Unigram in T5 and many
# SentencePiece models) make this trade differently. This notebook writes BPE from scratch, checks
# that it reproduces the Hugging Face `tokenizers` library merge for merge, and then measures the
# three algorithms against each other on text none of them was trained on.
#
# **Learning objectives**
# - Explain why subword units beat word and character units, from measured out-of-vocabulary
#   rates and sequence lengths.
# - Implement byte-level BPE (training, encoding, decoding) and reproduce the merges and token ids
#   of the `tokenizers` library exactly, including how it breaks ties.
# - Speed up BPE training with incremental pair counts and a priority queue, and say what the
#   speed-up is measured against.
# - Describe how WordPiece and Unigram choose and apply their vocabularies, and check a greedy
#   longest-match encoder and a Viterbi segmenter against the library.
# - Compare the three algorithms on held-out text: tokens per word, vocabulary use and unknowns.
#
# **Prerequisites:** [Data collection](01-data-collection) for where training text comes from;
# Python dictionaries, `collections.Counter` and `heapq`. The probability of
# [Probability for language models](../00-foundations/02-probability) helps for the Unigram
# section.
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
import heapq
import json
import math
import re
import time
from collections import Counter, defaultdict

import matplotlib.pyplot as plt
import regex
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import shared
from shared.assets import corpus

shared.seed_everything(0)
print(shared.environment_summary("tokenizers", "regex", "matplotlib"))

# %% [markdown]
# ## Why subwords
#
# The course corpus is tiny Shakespeare: 1.1 million characters of the plays. We train every
# tokenizer on the first 90% and keep the last 10% as held-out text, the way a model's validation
# set is kept. Training text is passed as paragraphs (blocks separated by a blank line), the unit
# a data loader would hand over.
#
# First, the two naive choices. A word-level vocabulary built from the training text fails on
# every held-out word it has not seen; a character-level one never fails but makes each word
# several tokens long.

# %%
text = corpus("tinyshakespeare")
cut = int(0.9 * len(text))
train_text, heldout_text = text[:cut], text[cut:]
train_docs = train_text.split("\n\n")

WORD_RE = re.compile(r"[A-Za-z']+")
train_words = Counter(WORD_RE.findall(train_text))
heldout_words = WORD_RE.findall(heldout_text)
unseen = [w for w in heldout_words if w not in train_words]

print(f"training text: {len(train_text):,} characters, {len(train_docs):,} paragraphs")
print(f"distinct characters: {len(set(train_text))}; distinct words: {len(train_words):,}, "
      f"of which {sum(n == 1 for n in train_words.values()) / len(train_words):.0%} occur once")
print(f"held-out words not in the training vocabulary: {len(unseen) / len(heldout_words):.1%} "
      f"of {len(heldout_words):,} (e.g. {sorted(set(unseen))[:6]})")
print(f"characters per word in the held-out text: "
      f"{sum(map(len, heldout_words)) / len(heldout_words):.2f}")

# %% [markdown]
# One held-out word in fifteen would be "unknown" to a word vocabulary built from 1 million
# characters, and half of that vocabulary occurs only once (Zipf's law: the tail never ends).
# Characters avoid unknowns at the price of sequences four times longer than words, and
# attention's cost grows with the square of the length. Subword tokenizers learn a vocabulary of
# a few thousand to a few hundred thousand pieces that spells frequent words whole and rare ones
# in parts.

# %% [markdown]
# ## Byte-level BPE from scratch
#
# Byte-pair encoding began as a compression scheme (Gage, 1994): repeatedly replace the most
# frequent pair of adjacent symbols by a new symbol. Sennrich et al. (2016) used it to build
# subword vocabularies for translation, and GPT-2 (Radford et al., 2019) made it *byte-level*:
# the starting symbols are the 256 byte values of the UTF-8 encoding, so any string, in any
# script, can be encoded without an unknown token.
#
# ### Bytes shown as characters
#
# GPT-2 gives each byte a printable stand-in character, so that tokens can be stored as ordinary
# strings. Printable bytes stand for themselves; the other 68 (space, newline, control bytes,
# ...) are moved to the code points from 256 up, which is why a space shows as `Ġ` and a newline
# as `Ċ` in GPT-2's vocabulary.

# %%
def byte_to_char_table() -> dict[int, str]:
    """GPT-2's map from each of the 256 byte values to a printable character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + i) for i, b in enumerate(others)})
    return table


BYTE_TO_CHAR = byte_to_char_table()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
print("space ->", BYTE_TO_CHAR[ord(" ")], " newline ->", BYTE_TO_CHAR[ord("\n")],
      " 'é' is two bytes ->", [BYTE_TO_CHAR[b] for b in "é".encode("utf-8")])

# %% [markdown]
# ### Pre-tokenization
#
# BPE never merges across the boundaries of *pre-tokens*. GPT-2 cuts text with a regular
# expression first: contractions, runs of letters with their leading space, runs of digits, runs
# of punctuation, and whitespace. A word and its leading space therefore become one unit
# (`" king"`), and no merge can glue the end of one word to the next. The `tokenizers` library
# uses the same pattern in its `ByteLevel` pre-tokenizer; we check that both cut the text the same
# way, since every later comparison rests on it.

# %%
GPT2_SPLIT = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


def pretokenize(text: str) -> list[str]:
    """Split with GPT-2's pattern, then spell every piece's UTF-8 bytes as byte-characters."""
    return ["".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8"))
            for piece in GPT2_SPLIT.findall(text)]


library_pretokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
sample = "ROMEO:\nIs the day so young?\n\nBENVOLIO: But new struck nine."
print(pretokenize(sample))
same_split = all(
    pretokenize(doc) == [piece for piece, _ in library_pretokenizer.pre_tokenize_str(doc)]
    for doc in train_docs + [heldout_text]
)
print("our pre-tokenization == tokenizers' ByteLevel on every paragraph:", same_split)

# %% [markdown]
# ### Training: count pairs, merge the most frequent, repeat
#
# Training works on the *word counts*: each distinct pre-token, spelled as a tuple of token ids,
# with how often it occurs. One step counts every adjacent pair of ids, weighted by the word's
# count, takes the most frequent pair $(a, b)$, adds the token $ab$ to the vocabulary and
# rewrites every word with the pair merged. The vocabulary starts with the 256 byte-characters,
# numbered in code-point order (the order `tokenizers` uses; it happens to be GPT-2's too).
#
# Two details decide whether we reproduce the library exactly:
#
# - **Ties.** Many pairs have the same count, especially late in training. The library's trainer
#   keeps its candidates in a max-heap ordered by count and, among equal counts, by the *smallest*
#   pair of ids $(a, b)$. We use the same key: `(-count, pair)` and take the minimum.
# - **Repeated strings.** If a merge produces a string that is already a token (reachable by two
#   merge paths), the library reuses the existing id instead of adding a new one.
#
# This first version is deliberately plain: it recounts every pair after every merge.

# %%
Pair = tuple[int, int]


def count_pairs(words: dict[tuple[int, ...], int]) -> Counter:
    """Occurrences of every adjacent pair of ids, each word weighted by its count."""
    counts: Counter = Counter()
    for word, n in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += n
    return counts


def merge_pair(word: tuple[int, ...], pair: Pair, new_id: int) -> tuple[int, ...]:
    """Replace every occurrence of `pair` in `word` by `new_id`, scanning left to right."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def initial_vocab() -> list[str]:
    """The 256 byte-characters, in code-point order: token id -> token string."""
    return sorted(BYTE_TO_CHAR.values())


def train_bpe(docs: list[str], vocab_size: int) -> tuple[list[str], list[Pair], list[dict]]:
    """Byte-level BPE, the readable way. Returns the vocabulary (id -> string), the merges in the
    order learned, and a log of each step (the winning count, how many pairs tied with it, and
    which pair a first-seen tie rule would have taken)."""
    vocab = initial_vocab()
    token_id = {token: i for i, token in enumerate(vocab)}
    word_counts = Counter(piece for doc in docs for piece in pretokenize(doc))
    words = {tuple(token_id[c] for c in piece): n for piece, n in word_counts.items()}
    merges, log = [], []
    while len(vocab) < vocab_size:
        counts = count_pairs(words)
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        log.append({"count": counts[best],
                    "tied": sum(c == counts[best] for c in counts.values()),
                    "first_seen": max(counts, key=counts.get)})
        new_token = vocab[best[0]] + vocab[best[1]]
        if new_token not in token_id:
            token_id[new_token] = len(vocab)
            vocab.append(new_token)
        merges.append(best)
        words = {merge_pair(word, best, token_id[new_token]): n for word, n in words.items()}
    return vocab, merges, log


small_docs = train_text[:100_000].split("\n\n")
N_MERGES = 150
start = time.perf_counter()
vocab, merges, log = train_bpe(small_docs, vocab_size=256 + N_MERGES)
simple_seconds = time.perf_counter() - start
print(f"{N_MERGES} merges on {sum(map(len, small_docs)):,} characters in {simple_seconds:.1f} s "
      f"(a measurement; it varies with the machine)")
print("first 12 merges:", [vocab[a] + " + " + vocab[b] for a, b in merges[:12]])
print("last 6 tokens learned:", vocab[-6:])
print("whole words already single tokens:",
      [w for w in ["Ġthe", "Ġand", "Ġyou", "Ġmy", "Ġnot", "Ġking"] if w in vocab])

# %% [markdown]
# The first merges are the letter pairs and space-letter pairs of English (`Ġ + t`, `h + e`,
# then `Ġt + he`), and after 150 merges the commonest words are single tokens. The last tokens
# learned include `ICINIUS`: these 100,000 characters are the opening of *Coriolanus*, where the
# speaker name SICINIUS heads dozens of speeches. BPE learns whatever is frequent in its data.
#
# ### Encoding and decoding
#
# Encoding a new text replays the training: pre-tokenize, spell each piece in bytes, then apply
# the learned merges *in the order they were learned*. Within a piece we repeatedly find the
# adjacent pair with the lowest merge rank and merge it, until no pair has a rank. Decoding
# concatenates the token strings, maps the byte-characters back to bytes and decodes UTF-8. A
# cache of encoded pieces makes repeated words free, as in every production BPE.

# %%
class ByteLevelBPE:
    """Encode and decode with a trained byte-level BPE vocabulary and merge list."""

    def __init__(self, vocab: list[str], merges: list[Pair]) -> None:
        self.vocab = vocab
        self.token_id = {token: i for i, token in enumerate(vocab)}
        # pair -> (rank, id of the merged token)
        self.ranks = {pair: (rank, self.token_id[vocab[pair[0]] + vocab[pair[1]]])
                      for rank, pair in enumerate(merges)}
        self.cache: dict[str, tuple[int, ...]] = {}

    def encode_piece(self, piece: str) -> tuple[int, ...]:
        if piece not in self.cache:
            word = tuple(self.token_id[c] for c in piece)
            while len(word) > 1:
                pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, (math.inf,)))
                if pair not in self.ranks:
                    break
                word = merge_pair(word, pair, self.ranks[pair][1])
            self.cache[piece] = word
        return self.cache[piece]

    def encode(self, text: str) -> list[int]:
        return [i for piece in pretokenize(text) for i in self.encode_piece(piece)]

    def decode(self, ids: list[int]) -> str:
        data = bytes(CHAR_TO_BYTE[c] for i in ids for c in self.vocab[i])
        return data.decode("utf-8", errors="replace")


bpe = ByteLevelBPE(vocab, merges)
ids = bpe.encode("KING RICHARD III: Now is the winter of our discontent")
print(ids)
print([vocab[i] for i in ids])
print("round trip on the held-out text:", bpe.decode(bpe.encode(heldout_text)) == heldout_text)

# %% [markdown]
# ## Does it match the `tokenizers` library?
#
# Now the same training with Hugging Face `tokenizers`: a `BPE` model, the `ByteLevel`
# pre-tokenizer without an added prefix space, all 256 byte-characters as the initial alphabet,
# no special tokens, the same vocabulary size and the same paragraphs. The library keeps its
# merges in the tokenizer's JSON; we compare them as strings, and compare the token ids that both
# produce on the held-out tenth of the corpus and on real tweets, which contain digits, `@`, `#`,
# URLs and non-ASCII characters that never occur in Shakespeare.

# %%
def train_library_bpe(docs: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(docs, trainer)
    return tokenizer


def library_merges(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    return [tuple(m) for m in json.loads(tokenizer.to_str())["model"]["merges"]]


def compare(ours: ByteLevelBPE, our_merges: list[Pair], library: Tokenizer,
            texts: list[str]) -> None:
    theirs = library_merges(library)
    mine = [(ours.vocab[a], ours.vocab[b]) for a, b in our_merges]
    first_difference = next((i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y), None)
    print(f"merges: {len(mine)} ours, {len(theirs)} library; identical: {mine == theirs} "
          f"(first difference at: {first_difference})")
    print("vocabulary (token -> id) identical:", ours.token_id == library.get_vocab())
    n_ids = n_same = 0
    for t in texts:
        a, b = ours.encode(t), library.encode(t).ids
        n_ids += len(b)
        n_same += a == b
    print(f"token ids identical on {n_same} of {len(texts)} held-out texts ({n_ids:,} tokens)")


tweets = [record["text"] for record in corpus("sentiment-tweets")]
start = time.perf_counter()
library_small = train_library_bpe(small_docs, vocab_size=256 + N_MERGES)
library_small_seconds = time.perf_counter() - start
compare(bpe, merges, library_small, [heldout_text] + tweets)

# %% [markdown]
# Identical merges, identical vocabulary, identical ids, on Shakespeare and on 4,200 tweets. The
# tie rule is not a detail: the log of our training run shows how many merges were decided by it,
# and what a plausible-looking alternative, taking the first pair seen with the top count (what
# `max` over a dictionary does), would have done.

# %%
ties = [step for step in log if step["tied"] > 1]
diverge = next(i for i, step in enumerate(log) if step["first_seen"] != merges[i])
print(f"{len(ties)} of {len(log)} merges had at least one other pair with the same count")
print(f"the first-seen rule would pick a different pair at merge {diverge}: "
      f"{vocab[log[diverge]['first_seen'][0]]!r} + {vocab[log[diverge]['first_seen'][1]]!r} "
      f"instead of {vocab[merges[diverge][0]]!r} + {vocab[merges[diverge][1]]!r} "
      f"(both seen {log[diverge]['count']} times)")
counts_per_step = [step["count"] for step in log]

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(range(1, len(log) + 1), counts_per_step, label="count of the merged pair")
ax.scatter([i + 1 for i, s in enumerate(log) if s["tied"] > 1],
           [s["count"] for s in log if s["tied"] > 1], color="C3", s=12, zorder=3,
           label="merge decided by a tie")
ax.set(yscale="log", xlabel="merge number", ylabel="pair count (log scale)",
       title="BPE merges: frequency falls fast, and ties become common")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Early merges are clear winners with a thousand or more occurrences; later ones are decided
# among pairs seen about a hundred times, where ties are frequent. A tokenizer that breaks ties
# differently learns a different vocabulary from the same data, which is one reason why a
# tokenizer is shipped as files (the merge list) and never retrained on the fly.

# %% [markdown]
# ## A faster trainer
#
# Recounting every pair after each merge costs a pass over all distinct words per merge. Most of
# that work is wasted: a merge changes only the words that contain the merged pair. The
# incremental trainer keeps
#
# - `pair_counts`: the current count of every pair;
# - `where`: for every pair, the set of words that contain it;
# - a heap of `(-count, pair)` entries. Entries go stale when counts change; instead of deleting
#   them, we check an entry when it reaches the top and push it back with its current count if
#   it is out of date ("lazy deletion"). Every pair whose count changed gets a fresh entry, so
#   the top of the heap, once checked, is the most frequent pair with the smallest ids.
#
# The tie rule, the id rule and the merge order are those of `train_bpe`, so it must produce the
# same merges, which we check, before training on the whole 90% with 1,000 merges.

# %%
def train_bpe_fast(docs: list[str], vocab_size: int) -> tuple[list[str], list[Pair]]:
    """The same byte-level BPE as `train_bpe`, with incremental pair counts and a lazy heap."""
    vocab = initial_vocab()
    token_id = {token: i for i, token in enumerate(vocab)}
    word_counts = Counter(piece for doc in docs for piece in pretokenize(doc))
    words = [tuple(token_id[c] for c in piece) for piece in word_counts]
    freqs = list(word_counts.values())

    pair_counts: Counter = Counter()
    where: defaultdict[Pair, set[int]] = defaultdict(set)
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges = []
    while len(vocab) < vocab_size and heap:
        negative_count, pair = heapq.heappop(heap)
        if -negative_count != pair_counts[pair]:  # stale entry: requeue with the current count
            if pair_counts[pair] > 0:
                heapq.heappush(heap, (-pair_counts[pair], pair))
            continue
        new_token = vocab[pair[0]] + vocab[pair[1]]
        if new_token not in token_id:
            token_id[new_token] = len(vocab)
            vocab.append(new_token)
        merges.append(pair)
        changed = set()
        for i in where.pop(pair):
            old, n = words[i], freqs[i]
            for p in zip(old, old[1:]):
                pair_counts[p] -= n
            words[i] = new = merge_pair(old, pair, token_id[new_token])
            for p in zip(new, new[1:]):
                pair_counts[p] += n
                where[p].add(i)
                changed.add(p)
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
    return vocab, merges


start = time.perf_counter()
fast_vocab, fast_merges = train_bpe_fast(small_docs, vocab_size=256 + N_MERGES)
fast_small_seconds = time.perf_counter() - start
print("same merges as the simple trainer:", fast_merges == merges)

N_MERGES_FULL = 1000  # 30,000+ on a real corpus; the fast trainer stays incremental
start = time.perf_counter()
full_vocab, full_merges = train_bpe_fast(train_docs, vocab_size=256 + N_MERGES_FULL)
fast_full_seconds = time.perf_counter() - start
start = time.perf_counter()
library_full = train_library_bpe(train_docs, vocab_size=256 + N_MERGES_FULL)
library_full_seconds = time.perf_counter() - start
full_bpe = ByteLevelBPE(full_vocab, full_merges)
compare(full_bpe, full_merges, library_full, [heldout_text] + tweets)
print("merges that produced an already existing string:",
      len(full_merges) - (len(full_vocab) - 256))

# %% [markdown]
# The whole training set (about 1 million characters, 1,000 merges) gives the same merge list,
# vocabulary and held-out ids as the library. The times below are measured in this run, back to
# back, on this machine; other processes make them noisy, so read the ratios, not the absolute
# times. (The library's time includes its own pre-tokenization; ours does too.)

# %%
print(f"150 merges, 100k characters: simple {simple_seconds:.2f} s, incremental "
      f"{fast_small_seconds:.2f} s ({simple_seconds / fast_small_seconds:.0f}x faster), "
      f"tokenizers {library_small_seconds:.2f} s")
print(f"1,000 merges, {len(train_text):,} characters: incremental {fast_full_seconds:.2f} s, "
      f"tokenizers {library_full_seconds:.2f} s "
      f"({fast_full_seconds / library_full_seconds:.0f}x faster than our Python)")

# %% [markdown]
# ## WordPiece
#
# WordPiece (Schuster & Nakajima, 2012; used by Wu et al., 2016 for Google's translation system
# and by BERT, Devlin et al., 2019) differs from BPE in two places:
#
# - **Which pair to merge.** The original algorithm adds the unit that most increases the
#   likelihood of the training data under a unigram model, which amounts to the score
#   $\mathrm{count}(ab) / (\mathrm{count}(a)\,\mathrm{count}(b))$: a pair is attractive when its
#   parts rarely occur apart, not merely when it is frequent. (The `tokenizers` library's
#   `WordPieceTrainer` does not do this: it runs its BPE trainer with a `##` prefix on
#   word-internal pieces and converts the result. Exercise 2 computes the real score.)
# - **How to encode.** There is no merge list. A word is split greedily from the left, taking the
#   *longest* vocabulary entry that matches at each position; pieces after the first carry the
#   prefix `##`. If some position matches nothing, the whole word becomes `[UNK]`.
#
# We train WordPiece and BPE on the same words, with the library's simple `Whitespace`
# pre-tokenizer (runs of letters, digits and underscore, or runs of punctuation) for every
# algorithm from here on, so that only the model differs.

# %%
VOCAB_SIZE = 2000


def train_library(kind: str, vocab_size: int, docs: list[str]) -> Tokenizer:
    """A BPE, WordPiece or Unigram tokenizer with an [UNK] token and the Whitespace pre-tokenizer."""
    if kind == "BPE":
        tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"],
                                      show_progress=False)
    elif kind == "WordPiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"],
                                            show_progress=False)
    elif kind == "Unigram":
        tokenizer = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"],
                                          unk_token="[UNK]", show_progress=False)
    else:
        raise ValueError(f"kind must be BPE, WordPiece or Unigram, got {kind!r}")
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(docs, trainer)
    return tokenizer


train_seconds = {}
trained = {}
for kind in ("BPE", "WordPiece", "Unigram"):
    start = time.perf_counter()
    trained[kind] = train_library(kind, VOCAB_SIZE, train_docs)
    train_seconds[kind] = time.perf_counter() - start

examples = "Methinks the unfortunate Bolingbroke misconstrues everything".split()
for kind, tokenizer in trained.items():
    print(f"{kind:>9}:", " | ".join(" ".join(tokenizer.encode(w).tokens) for w in examples))

# %% [markdown]
# ## Unigram
#
# The Unigram model (Kudo, 2018) turns the problem around. It assumes each piece $x$ has a
# probability $p(x)$ and a word is a sequence of independent pieces, so a segmentation
# $x_1 \dots x_k$ of a word has probability $\prod_i p(x_i)$. Encoding picks the most probable
# segmentation with the Viterbi algorithm (dynamic programming over positions). Training starts
# from a large set of candidate substrings, fits the probabilities with EM, and repeatedly drops
# the pieces whose removal costs the least likelihood, until the vocabulary has the target size.
# Because it is a probability model, it can also *sample* segmentations (subword regularization).
# SentencePiece (Kudo & Richardson, 2018) implements Unigram and BPE directly on raw text.
#
# The trained model stores $\log p(x)$ for every piece. Here are the pieces chosen for one word,
# with their log-probabilities, next to a worse segmentation of the same word.

# %%
unigram_scores = dict(map(tuple, json.loads(trained["Unigram"].to_str())["model"]["vocab"]))
word = "unfortunate"
best = trained["Unigram"].encode(word).tokens
print("Viterbi segmentation:", best, f"log p = {sum(unigram_scores[t] for t in best):.2f}")
letters = list(word)
print("letter by letter:    ", letters, f"log p = {sum(unigram_scores[t] for t in letters):.2f}")

# %% [markdown]
# ## Trade-offs, measured
#
# Each trained tokenizer is run on text it has not seen: the held-out tenth of the corpus, and
# the tweets (a different domain, with characters that never occur in Shakespeare). We measure
#
# - **tokens per word** on the held-out Shakespeare (words = whitespace-separated strings, the
#   same unit for every tokenizer; lower means shorter sequences);
# - **vocabulary use**: the share of the vocabulary that appears at least once in the held-out
#   encoding (entries that never appear waste embedding rows);
# - **unknown characters**: the share of the tweets' characters that end up inside an `[UNK]`
#   token, read from the tokens' character offsets (information the model can never see);
# - **training time**, measured in this run (a noisy figure; compare ratios).
#
# The byte-level BPE of the previous sections joins in, retrained at the same vocabulary size. It
# uses GPT-2's pre-tokenizer, which attaches spaces to words, so its pieces differ in kind.

# %%
def unknown_character_share(tokenizer: Tokenizer, texts: list[str]) -> float:
    unk = tokenizer.token_to_id("[UNK]")
    unknown = sum(end - start for encoding in tokenizer.encode_batch(texts)
                  for i, (start, end) in zip(encoding.ids, encoding.offsets) if i == unk)
    return unknown / sum(map(len, texts))


def measure(tokenizer: Tokenizer, has_unk: bool = True) -> dict:
    ids = tokenizer.encode(heldout_text).ids
    return {"tokens/word": len(ids) / len(heldout_text.split()),
            "vocab used": len(set(ids)) / tokenizer.get_vocab_size(),
            "unknown chars (tweets)": unknown_character_share(tokenizer, tweets) if has_unk else 0.0}


start = time.perf_counter()
byte_level = train_library_bpe(train_docs, VOCAB_SIZE)
train_seconds["byte-level BPE"] = time.perf_counter() - start
results = {kind: measure(tokenizer) for kind, tokenizer in trained.items()}
results["byte-level BPE"] = measure(byte_level, has_unk=False)
byte_level_tokens = byte_level.encode(heldout_text).tokens
whitespace_share = sum(t.strip("ĠĊ") == "" for t in byte_level_tokens) / len(byte_level_tokens)
unused_bytes = 256 - len({t for t in byte_level_tokens if len(t) == 1})

print(f"{'tokenizer':>15} {'vocab':>6} {'train s':>8} {'tokens/word':>12} {'vocab used':>11} "
      f"{'unknown chars (tweets)':>23}")
for kind, row in results.items():
    size = (trained.get(kind) or byte_level).get_vocab_size()
    print(f"{kind:>15} {size:>6} {train_seconds[kind]:>8.2f} {row['tokens/word']:>12.3f} "
          f"{row['vocab used']:>11.1%} {row['unknown chars (tweets)']:>23.2%}")
print(f"byte-level BPE: {whitespace_share:.1%} of its held-out tokens are pure whitespace; "
      f"{unused_bytes} of its 256 byte tokens do not occur in the held-out text")

# %% [markdown]
# With the same vocabulary size and pre-tokenizer, BPE gives the shortest encodings of held-out
# Shakespeare, WordPiece is close behind and Unigram the longest: Unigram spends vocabulary on
# pieces that are probable under its model rather than on whatever shortens frequent words.
# On unknowns the difference is qualitative. BPE and Unigram lose only the unseen characters;
# WordPiece turns every word that contains one (an `@user` handle, a URL, a number) into `[UNK]`,
# and loses more than twice as many characters. The byte-level BPE never produces an unknown.
# It needs the most tokens per word here for two reasons printed above: it keeps every newline
# and space run as tokens (the `Whitespace` pre-tokenizer throws whitespace away, so the other
# three cannot reproduce the text's layout), and most of its 256 byte entries never occur in
# English text, leaving fewer entries for words.
#
# How does the picture change with the vocabulary size? Larger vocabularies shorten the
# sequences with diminishing returns, and a growing share of the entries goes unused on
# held-out text. The gap between Unigram and the other two widens as the vocabulary grows.

# %%
SWEEP = [1000, 2000, 4000]  # 500 to 32,000 on a real corpus (Unigram training is the slow part)
sweep = {kind: [] for kind in trained}
for kind in trained:
    for size in SWEEP:
        tokenizer = trained[kind] if size == VOCAB_SIZE else train_library(kind, size, train_docs)
        ids = tokenizer.encode(heldout_text).ids
        sweep[kind].append((len(ids) / len(heldout_text.split()),
                            len(set(ids)) / tokenizer.get_vocab_size()))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for kind, points in sweep.items():
    axes[0].plot(SWEEP, [p[0] for p in points], "o-", label=kind)
    axes[1].plot(SWEEP, [p[1] for p in points], "o-", label=kind)
axes[0].set(xscale="log", xlabel="vocabulary size", ylabel="tokens per word (held-out)",
            title="Sequence length falls with vocabulary size")
axes[1].set(xscale="log", xlabel="vocabulary size", ylabel="share of vocabulary used",
            title="...and more of the vocabulary goes unused")
for ax in axes:
    ax.minorticks_off()
    ax.set_xticks(SWEEP, [str(s) for s in SWEEP])
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The library's tie rule
#
# Write `most_frequent_pair(words)` that takes word counts in the form used by `train_bpe`
# (a dict from tuples of token ids to counts) and returns the pair of adjacent ids that BPE merges
# next: the highest count, and among equal counts the smallest pair. Do not call `train_bpe`;
# you may use `count_pairs`. The check uses hand-made words with ties and the first steps of
# the training log.

# %% tags=["solution"]
def most_frequent_pair(words: dict[tuple[int, ...], int]) -> Pair:
    """The pair that byte-level BPE merges next, with tokenizers' tie rule."""
    # BEGIN SOLUTION
    counts = count_pairs(words)
    return min(counts, key=lambda pair: (-counts[pair], pair))
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_equal, check_function, passed

check_function(
    most_frequent_pair,
    [(({(5, 6, 7): 2, (6, 7): 1},), (6, 7)),
     (({(9, 8): 3, (1, 2): 3},), (1, 2)),
     (({(4, 4, 4): 1, (3, 5): 2},), (3, 5)),
     (({(7, 1): 2, (2, 9): 1, (9, 3): 1},), (7, 1))],
    "most_frequent_pair",
    exact=True,
)
start_words = {tuple(bpe.token_id[c] for c in p): n
               for p, n in Counter(p for d in small_docs for p in pretokenize(d)).items()}
check_equal(most_frequent_pair(start_words), merges[0], "most_frequent_pair(first step)")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The WordPiece score
#
# Original WordPiece merges the pair with the highest $\mathrm{count}(ab) /
# (\mathrm{count}(a)\,\mathrm{count}(b))$, where $\mathrm{count}(a)$ counts the symbol $a$ in the
# current segmentation of the words (weighted by word counts). Write `wordpiece_best_pair(words)`
# returning the pair with the highest score (break ties by the smallest pair), and set
# `bpe_first`, `wordpiece_first` to the strings (`vocab[a] + vocab[b]`) of the first merge each
# rule makes on `start_words` (the byte-level words of `small_docs` from the check above).

# %% tags=["solution"]
def wordpiece_best_pair(words: dict[tuple[int, ...], int]) -> Pair:
    """The pair with the highest WordPiece likelihood score."""
    # BEGIN SOLUTION
    symbol_counts: Counter = Counter()
    for word, n in words.items():
        for symbol in word:
            symbol_counts[symbol] += n
    pair_counts = count_pairs(words)
    return min(pair_counts, key=lambda p: (-pair_counts[p] / (symbol_counts[p[0]]
                                                               * symbol_counts[p[1]]), p))
    # END SOLUTION


bpe_first = None
wordpiece_first = None
# BEGIN SOLUTION
a, b = most_frequent_pair(start_words)
bpe_first = vocab[a] + vocab[b]
a, b = wordpiece_best_pair(start_words)
wordpiece_first = vocab[a] + vocab[b]
# END SOLUTION
print("BPE merges first:", repr(bpe_first), "  WordPiece merges first:", repr(wordpiece_first))

# %% tags=["check"]
check_function(wordpiece_best_pair,
               [(({(1, 2): 10, (1, 3): 50, (4, 3): 10},), (1, 2)),
                (({(7, 8): 4, (8, 7): 4},), (7, 8))],
               "wordpiece_best_pair", exact=True)
symbols = Counter()
for w, n in start_words.items():
    for s in w:
        symbols[s] += n
pair_totals = count_pairs(start_words)
expected_pair = max(pair_totals, key=lambda p: (pair_totals[p] / (symbols[p[0]] * symbols[p[1]]),
                                                 -p[0], -p[1]))
check_equal(wordpiece_first, vocab[expected_pair[0]] + vocab[expected_pair[1]], "wordpiece_first")
check_equal(bpe_first, vocab[merges[0][0]] + vocab[merges[0][1]], "bpe_first")
check(bpe_first != wordpiece_first, "wordpiece_first",
      "the two rules to disagree on the first merge")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: WordPiece encoding, greedy longest match
#
# Write `wordpiece_encode(word, vocab)`: starting at the first character, take the longest
# vocabulary entry that matches (pieces after the first are looked up with the `##` prefix),
# move past it, repeat. If at some position nothing matches, return `["[UNK]"]` for the whole
# word. The check compares your function with the library's trained WordPiece model on every
# distinct word of the held-out tweets' and Shakespeare's pre-tokens.

# %% tags=["solution"]
def wordpiece_encode(word: str, vocab: set[str]) -> list[str]:
    """Greedy longest-match-first segmentation of one pre-token."""
    # BEGIN SOLUTION
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:
            return ["[UNK]"]
    return pieces
    # END SOLUTION


# %% tags=["check"]
wordpiece = trained["WordPiece"]
wordpiece_vocab = set(wordpiece.get_vocab())
test_words = sorted({piece for t in [heldout_text] + tweets[:500]
                     for piece, _ in wordpiece.pre_tokenizer.pre_tokenize_str(t)})
mismatches = [w for w in test_words if wordpiece_encode(w, wordpiece_vocab)
              != [t.value for t in wordpiece.model.tokenize(w)]]
check(not mismatches, "wordpiece_encode",
      f"the library's segmentation for every word; first mismatch: {mismatches[:1]}")
print(f"{len(test_words):,} words segmented exactly as the library does")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Unigram segmentation with Viterbi
#
# Write `viterbi_segment(word, scores)` that returns the segmentation of `word` into vocabulary
# pieces with the highest total log-probability, where `scores` maps each piece to $\log p$
# (`unigram_scores` above). Use dynamic programming: `best[i]` is the best score of a
# segmentation of `word[:i]`, computed from `best[j] + scores[word[j:i]]` over all `j < i`.
# The check compares with the library's Unigram model on held-out words made only of known
# characters.

# %% tags=["solution"]
def viterbi_segment(word: str, scores: dict[str, float]) -> list[str]:
    """Most probable segmentation of `word` under a unigram model of pieces."""
    # BEGIN SOLUTION
    best = [0.0] + [-math.inf] * len(word)
    back = [0] * (len(word) + 1)
    for end in range(1, len(word) + 1):
        for start in range(end):
            piece = word[start:end]
            if piece in scores and best[start] + scores[piece] > best[end]:
                best[end], back[end] = best[start] + scores[piece], start
    pieces, end = [], len(word)
    while end > 0:
        pieces.append(word[back[end]:end])
        end = back[end]
    return pieces[::-1]
    # END SOLUTION


# %% tags=["check"]
unigram = trained["Unigram"]
known = set(unigram_scores)
unigram_words = sorted({p for p, _ in unigram.pre_tokenizer.pre_tokenize_str(heldout_text)
                        if all(c in known for c in p)})
disagree = [w for w in unigram_words
            if viterbi_segment(w, unigram_scores) != [t.value for t in unigram.model.tokenize(w)]]
check_equal(viterbi_segment("unfortunate", unigram_scores), best, "viterbi_segment('unfortunate')")
check(len(disagree) == 0, "viterbi_segment",
      f"the library's segmentation for every held-out word; first disagreement: {disagree[:1]}")
print(f"{len(unigram_words):,} held-out words segmented exactly as the library does")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - A word vocabulary left 6.6% of held-out words unknown, on the text of a single author;
#   characters never fail but quadruple the sequence length. Subwords trade between the two.
# - Byte-level BPE starts from the 256 bytes and greedily merges the most frequent adjacent pair
#   inside pre-tokens. Written from scratch, it reproduces the `tokenizers` library exactly, merge
#   list, vocabulary and ids, once the pre-tokenizer, the initial alphabet and the tie rule
#   (highest count, then smallest pair of ids) match.
# - Incremental pair counts with a lazily updated heap make training proportional to the words a
#   merge touches; the Rust library is still several times faster than Python for the same
#   algorithm.
# - WordPiece encodes by greedy longest match with `##` continuations and turns a whole word into
#   `[UNK]` when one character is unknown; Unigram picks the most probable segmentation under a
#   probability model of pieces and can sample alternatives.
# - At equal vocabulary size on held-out Shakespeare, BPE gave the fewest tokens per word and
#   Unigram the most; on out-of-domain tweets WordPiece lost the most characters to `[UNK]`, and
#   byte-level BPE none.
#
# Next: [the Hugging Face `tokenizers` pipeline](03-hf-tokenizers), where normalizers,
# pre-tokenizers, models and post-processors are assembled into a fast tokenizer.
#
# ## References
#
# - P. Gage, "A new algorithm for data compression", *C Users Journal* 12(2), 1994.
#   http://www.pennelynn.com/Documents/CUJ/HTML/94HTML/19940045.HTM
# - R. Sennrich, B. Haddow, A. Birch, "Neural machine translation of rare words with subword
#   units", ACL 2016. https://arxiv.org/abs/1508.07909
# - A. Radford et al., "Language models are unsupervised multitask learners" (GPT-2), 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - M. Schuster, K. Nakajima, "Japanese and Korean voice search", ICASSP 2012.
#   https://research.google/pubs/japanese-and-korean-voice-search/
# - Y. Wu et al., "Google's neural machine translation system: bridging the gap between human and
#   machine translation", 2016. https://arxiv.org/abs/1609.08144
# - J. Devlin et al., "BERT: pre-training of deep bidirectional transformers for language
#   understanding", NAACL 2019. https://arxiv.org/abs/1810.04805
# - T. Kudo, "Subword regularization: improving neural network translation models with multiple
#   subword candidates", ACL 2018. https://arxiv.org/abs/1804.10959
# - T. Kudo, J. Richardson, "SentencePiece: a simple and language independent subword tokenizer
#   and detokenizer for neural text processing", EMNLP 2018 (demo). https://arxiv.org/abs/1808.06226
# - Hugging Face, *Tokenizers* documentation and the NLP course's chapter on tokenization
#   algorithms. https://huggingface.co/docs/tokenizers and https://huggingface.co/learn/nlp-course/chapter6
# - L. Voita, "Tokenization" in *NLP Course For You*.
#   https://lena-voita.github.io/nlp_course/tokenization.html
# - C. Samiullah, "The technical user's introduction to LLM tokenization", 2024.
#   https://christophergs.com/blog/understanding-llm-tokenization
