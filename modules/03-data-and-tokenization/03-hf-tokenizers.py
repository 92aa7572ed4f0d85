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
# # The Hugging Face `tokenizers` pipeline
#
# A production tokenizer is more than a merge list. Before the model splits anything, text is
# normalised (Unicode forms, case, accents) and cut into pre-tokens; after it, special tokens are
# added, sequences are padded and truncated, and every token keeps the character offsets that
# map it back to the input. Hugging Face's `tokenizers` library builds a tokenizer from exactly
# these four parts (normalizer, pre-tokenizer, model, post-processor, plus a decoder), runs them
# in Rust, and is what every "fast" tokenizer in `transformers` is made of. This notebook
# assembles one piece by piece, looks inside GPT-2's, measures GPT-2, `cl100k_base` (GPT-4) and
# `o200k_base` (GPT-4o) on prose, code, numbers and nine other languages, and times the library
# against the from-scratch BPE of the previous notebook.
#
# **Learning objectives**
# - Name the stages of a `tokenizers` pipeline and inspect what each one does to a string.
# - Choose normalizers and pre-tokenizers, and predict their effect (NFC against NFD, NFKC,
#   lower-casing, digit splitting, byte-level and Metaspace pre-tokenization).
# - Assemble, train, save and reload a BERT-style tokenizer with a post-processor template,
#   padding, truncation with overlap, and offsets, and use it from `transformers`.
# - Compare real tokenizers (GPT-2, `cl100k_base`, `o200k_base`) on the same texts, including
#   the extra tokens that non-English text costs.
# - Measure the speed of the Rust implementation against a Python BPE that gives the same ids.
#
# **Prerequisites:** [Tokenization algorithms](02-tokenization-algorithms), where BPE, WordPiece
# and Unigram are built and compared.
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
import json
import math
import re
import tempfile
import time
import unicodedata
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import regex
import tiktoken
from tokenizers import (Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)

import shared
from shared.assets import corpus, gpt2_tokenizer, humaneval, tiktoken_encoding, translations

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
shared.seed_everything(0)
print(shared.environment_summary("tokenizers", "transformers", "tiktoken"))

# %% [markdown]
# ## The pipeline
#
# `Tokenizer.encode(text)` runs four stages, and `decode(ids)` runs a fifth:
#
# | stage | what it does | examples |
# |---|---|---|
# | normalizer | rewrites the string | Unicode NFC/NFKC, lower-case, strip accents |
# | pre-tokenizer | cuts it into pre-tokens, with offsets | whitespace, punctuation, digits, GPT-2's regex |
# | model | splits each pre-token into vocabulary ids | BPE, WordPiece, Unigram, WordLevel |
# | post-processor | adds special tokens and type ids | `[CLS] A [SEP] B [SEP]`, `<s> A </s>` |
# | decoder | turns tokens back into text | undo byte mapping, join `##` pieces |
#
# GPT-2's tokenizer, loaded from its original vocabulary files, shows a minimal configuration: no
# normalizer at all (GPT-2 sees text exactly as written), the byte-level pre-tokenizer, a BPE
# model with 50,000 merges, a post-processor that adds nothing, and the byte-level decoder.

# %%
gpt2 = gpt2_tokenizer()
backend = gpt2.backend_tokenizer
for stage in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
    print(f"{stage:>15}: {getattr(backend, stage)}")
gpt2_model = json.loads(backend.to_str())["model"]
print(f"{'model':>15}: {gpt2_model['type']}, {len(gpt2_model['vocab']):,} tokens, "
      f"{len(gpt2_model['merges']):,} merges; first merges {gpt2_model['merges'][:4]}")

# %% [markdown]
# ## Normalizers
#
# Unicode offers several ways to write the same visible text. "é" is either one code point
# (U+00E9, the composed form NFC) or "e" followed by a combining accent (U+0065 U+0301, the
# decomposed form NFD). NFKC goes further and folds *compatibility* characters (ligatures,
# full-width letters, superscripts, fractions) into plain ones. A tokenizer without a normalizer,
# like GPT-2's, sees these as different bytes and spends different tokens on them. Real text
# for the example: a French message from Sphinx's translation catalogue (the documentation tool's
# human translations, which ship with the package).

# %%
french = translations("fr")  # English message -> French, from shared.assets
sentence = next(v for v in sorted(french.values()) if "é" in v and len(v) > 40)
nfd = unicodedata.normalize("NFD", sentence)
print(repr(sentence))
print(f"NFC: {len(sentence)} code points, {len(gpt2.encode(sentence))} GPT-2 tokens; "
      f"NFD: {len(nfd)} code points, {len(gpt2.encode(nfd))} GPT-2 tokens; equal strings? "
      f"{sentence == nfd}")

samples = ["Cafe\u0301 cr\u00e8me", "ﬁnal ½ Ｆｕｌｌ－ｗｉｄｔｈ x²", "ÉLAN Straße"]
pipelines = {
    "NFC": normalizers.NFC(),
    "NFKC": normalizers.NFKC(),
    "Lowercase": normalizers.Lowercase(),
    "NFD+Lowercase+StripAccents (BERT uncased)": normalizers.Sequence(
        [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]),
}
for name, normalizer in pipelines.items():
    print(f"{name:>42}: {[normalizer.normalize_str(s) for s in samples]}")

# %% [markdown]
# NFC and NFD are the same text to a reader and not to GPT-2. Lower-casing and accent stripping
# make a vocabulary go further (BERT uncased) but destroy information a model may need ("US" and
# "us"; "résumé" and "resume"). GPT-2's tokenizer, above, applies no normalizer and keeps case.
#
# ## Pre-tokenizers
#
# The pre-tokenizer decides where the model may *not* merge. Each returns pre-tokens with
# character offsets into the normalised string. One made-up line that mixes contractions,
# punctuation, a number and runs of spaces, through several of them:

# %%
line = "KING. What's o'clock? 'Tis 1599, and     the day's    begun."
choices = {
    "WhitespaceSplit": pre_tokenizers.WhitespaceSplit(),
    "Whitespace (\\w+|[^\\w\\s]+)": pre_tokenizers.Whitespace(),
    "Punctuation": pre_tokenizers.Punctuation(),
    "Digits(individual)": pre_tokenizers.Digits(individual_digits=True),
    "Metaspace (SentencePiece)": pre_tokenizers.Metaspace(),
    "ByteLevel (GPT-2)": pre_tokenizers.ByteLevel(add_prefix_space=False),
}
for name, pre_tokenizer in choices.items():
    pieces = [piece for piece, _ in pre_tokenizer.pre_tokenize_str(line)]
    print(f"{name:>26} ({len(pieces):2d}): {pieces}")

combined = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                    pre_tokenizers.Digits(individual_digits=True)])
print("Sequence(Whitespace, Digits):", combined.pre_tokenize_str("in 1599, at 12:30")[:8])

# %% [markdown]
# `Whitespace` throws the spaces away (their positions survive only in the offsets), while
# `Metaspace` and `ByteLevel` turn them into visible characters (`▁`, `Ġ`), so that decoding can
# restore the text exactly, including the runs of spaces. Splitting digits one by one, as
# LLaMA does (Touvron et al., 2023), gives every number a regular spelling; we will see below what GPT-2 and GPT-4's
# tokenizers do instead.
#
# ## Assembling a tokenizer piece by piece
#
# Now a BERT-style tokenizer, built from parts and trained on tiny Shakespeare:
#
# - normalizer: NFD, lower-case, strip accents;
# - pre-tokenizer: `Whitespace`;
# - model: WordPiece with `[UNK]`, vocabulary 8,000, special tokens `[PAD] [UNK] [CLS] [SEP]
#   [MASK]`;
# - post-processor: a template `[CLS] $A [SEP]` for one sequence and `[CLS] $A [SEP] $B [SEP]`
#   for a pair, with type ids 0 and 1;
# - decoder: WordPiece (joins `##` pieces and cleans up spaces).

# %%
text = corpus("tinyshakespeare")
cut = int(0.9 * len(text))
train_docs, heldout_text = text[:cut].split("\n\n"), text[cut:]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

bert_like = Tokenizer(models.WordPiece(unk_token="[UNK]"))
bert_like.normalizer = normalizers.Sequence(
    [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
bert_like.pre_tokenizer = pre_tokenizers.Whitespace()
start = time.perf_counter()
bert_like.train_from_iterator(
    train_docs, trainers.WordPieceTrainer(vocab_size=8000, special_tokens=SPECIALS,
                                          show_progress=False))
print(f"trained in {time.perf_counter() - start:.2f} s; vocabulary {bert_like.get_vocab_size():,}")
cls_id, sep_id = bert_like.token_to_id("[CLS]"), bert_like.token_to_id("[SEP]")
bert_like.post_processor = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
    special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
bert_like.decoder = decoders.WordPiece(prefix="##")

question, answer = "Who's there? ÉLAN!", "Nay, answer me: stand, and unfold yourself."
encoding = bert_like.encode(question, answer)
print("tokens:  ", encoding.tokens)
print("type ids:", encoding.type_ids)
print("offsets of the first sequence, read back from the original string:",
      [question[s:e] for (s, e), seq in zip(encoding.offsets, encoding.sequence_ids) if seq == 0])
print("decoded: ", bert_like.decode(encoding.ids))

# %% [markdown]
# The offsets point into the *original* string, before lower-casing and accent stripping: the
# tokens `el` and `##an` map back to `ÉL` and `AN`. This is what lets a question-answering model
# return a span of the user's text, or a named-entity tagger highlight the right characters.
# The decoded string is lower-case and accent-free: the normalizer's changes cannot be undone.
#
# Batches need equal lengths, and long documents need cutting. Padding adds `[PAD]` with an
# attention mask of 0; truncation with a *stride* keeps the cut-off remainder as overflowing
# windows that overlap by `stride` tokens, so that no token loses its context entirely.

# %%
bert_like.enable_padding(pad_id=bert_like.token_to_id("[PAD]"), pad_token="[PAD]")
batch = bert_like.encode_batch(["To be, or not to be", "that is the question"])
for e in batch:
    print(e.tokens, e.attention_mask)
bert_like.no_padding()

bert_like.enable_truncation(max_length=16, stride=4)
long = bert_like.encode(heldout_text[:300])
windows = [long] + long.overflowing
print(f"{len(windows)} windows of at most 16 tokens; the first two:")
for window in windows[:2]:
    print(" ", window.tokens)
bert_like.no_truncation()

# %% [markdown]
# A trained tokenizer is one JSON file that holds all five stages. Saving and reloading gives
# the same encodings, and `transformers` wraps the same object as a `PreTrainedTokenizerFast`,
# the class behind `AutoTokenizer` for every fast tokenizer on the Hub.

# %%
from transformers import PreTrainedTokenizerFast

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "tokenizer.json"
    bert_like.save(str(path))
    reloaded = Tokenizer.from_file(str(path))
    size_kib = path.stat().st_size / 1024
same = all(bert_like.encode(d).ids == reloaded.encode(d).ids for d in train_docs[:200])
print(f"tokenizer.json: {size_kib:.0f} KiB; reloaded tokenizer gives identical ids: {same}")

wrapped = PreTrainedTokenizerFast(tokenizer_object=reloaded, unk_token="[UNK]", pad_token="[PAD]",
                                  cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
batch = wrapped(["To be, or not to be", "that is the question"], padding=True)
print(batch["input_ids"])
print(wrapped.convert_ids_to_tokens(batch["input_ids"][1]))

# %% [markdown]
# ## Real tokenizers on the same texts
#
# Three byte-level BPE tokenizers used by OpenAI models, loaded offline by `shared.assets`:
# GPT-2's (50,257 tokens, 2019), `cl100k_base` (about 100,000, GPT-3.5 and GPT-4) and
# `o200k_base` (about 200,000, GPT-4o). `tiktoken` implements all three; we first check that its
# GPT-2 encoding and the `transformers` GPT-2 tokenizer agree, then use `tiktoken` throughout.
#
# The later tokenizers changed more than the vocabulary size. Their pre-tokenizer regexes cut
# numbers into groups of at most three digits, let a word absorb one leading non-letter, and keep
# runs of newlines and spaces together; and, judging by the measurements below, their training
# data held far more code and more languages. Here is how each one spells numbers and a line of
# indented code (from HumanEval, a set of Python problems).

# %%
encodings = {name: tiktoken_encoding(name) for name in ("gpt2", "cl100k_base", "o200k_base")}
problems = humaneval()
code = "".join(p["prompt"] + p["canonical_solution"] for p in problems)
sonnets = corpus("shakespeare")["Sonnets"]
print("transformers GPT-2 == tiktoken gpt2 on the sonnets and the code:",
      all(backend.encode(t).ids == encodings["gpt2"].encode(t) for t in (sonnets, code)))


def token_strings(encoding, text: str) -> list[str]:
    return [encoding.decode_single_token_bytes(t).decode("utf-8", errors="replace")
            for t in encoding.encode(text)]


for example in ["1234567", "3.14159", "2,048,000", "    for idx, elem in enumerate(numbers):"]:
    print(repr(example))
    for name, encoding in encodings.items():
        print(f"  {name:>11}: {token_strings(encoding, example)}")

# %% [markdown]
# GPT-2 splits numbers wherever its merges happen to fall (`1234567` is `123` + `45` + `67`),
# so the same digit lands in different tokens depending on its neighbours; `cl100k_base` and
# `o200k_base` cut them left to right into groups of three. The indentation of the code line is
# a single token in the newer encodings; GPT-2 spends three single-space tokens before ` for`,
# a sign that it saw little code.
#
# Now measured over whole texts: characters per token (higher means fewer tokens for the same
# text) on English verse (the *Sonnets*), Python (the 164 HumanEval prompts with their
# solutions), and numbers (the numeric literals of four or more digits in HumanEval's test code,
# one per line; shorter ones are a single token in all three).

# %%
literals = regex.findall(r"\d+(?:\.\d+)?", "".join(p["test"] for p in problems))
numbers = "\n".join(n for n in literals if len(n.replace(".", "")) >= 4)
texts = {"English verse": sonnets, "Python code": code, "numbers (4+ digits)": numbers}
chars_per_token = {name: [len(t) / len(e.encode(t)) for t in texts.values()]
                   for name, e in encodings.items()}
print(f"{'':>12}" + "".join(f"{k:>21}" for k in texts))
for name, values in chars_per_token.items():
    print(f"{name:>12}" + "".join(f"{v:>21.2f}" for v in values))

# %% [markdown]
# The same messages in ten languages come from Sphinx's catalogues again: 288 interface strings
# translated into all of French, Spanish, Greek, Russian, Hindi, Persian, Japanese, Korean and
# Chinese. Because the content is the same, the ratio of a language's token count to the
# English token count measures what the tokenizer charges for the language itself (Petrov et
# al., 2023, call it tokenization unfairness). A ratio of 3 means that a model reads a third as
# much text in its context window, pays three times as much per message, and generates three
# times as slowly.

# %%
LANGUAGES = {"fr": "French", "es": "Spanish", "el": "Greek", "ru": "Russian", "hi": "Hindi",
             "fa": "Persian", "ja": "Japanese", "ko": "Korean", "zh_CN": "Chinese"}
catalogs = {code_: translations(code_) for code_ in LANGUAGES}
messages = sorted(set.intersection(*(set(c) for c in catalogs.values())))
parallel = {"English": messages} | {name: [catalogs[c][m] for m in messages]
                                     for c, name in LANGUAGES.items()}
print(f"{len(messages)} messages, {sum(map(len, messages)):,} English characters; e.g.")
for name in ("English", "Greek", "Hindi", "Japanese"):
    print(f"  {name:>8}: {parallel[name][3]}")


def token_count(encoding, strings: list[str]) -> int:
    return sum(len(encoding.encode(s)) for s in strings)


token_tax = {name: {lang: token_count(e, parallel[lang]) / token_count(e, parallel["English"])
                    for lang in parallel if lang != "English"}
             for name, e in encodings.items()}
print(f"{'':>9}" + "".join(f"{name:>13}" for name in encodings))
for lang in LANGUAGES.values():
    print(f"{lang:>9}" + "".join(f"{token_tax[name][lang]:>13.2f}" for name in encodings))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2]})
width = 0.27
for k, name in enumerate(encodings):
    axes[0].bar(np.arange(len(texts)) + (k - 1) * width, chars_per_token[name], width, label=name)
    langs = list(LANGUAGES.values())
    axes[1].bar(np.arange(len(langs)) + (k - 1) * width, [token_tax[name][lang] for lang in langs],
                width, label=name)
axes[0].set_xticks(range(len(texts)), list(texts), rotation=15)
axes[0].set(xlabel="kind of text", ylabel="characters per token",
            title="Efficiency by kind of text")
axes[1].set_xticks(range(len(langs)), langs, rotation=30)
axes[1].axhline(1, color="k", lw=1, ls="--")
axes[1].set(xlabel="language", ylabel="tokens relative to English",
            title="The same 288 messages in nine languages")
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# On English verse the three are within about 10% of each other: English was never the
# problem. On Python, `cl100k_base` and `o200k_base` need about a third fewer tokens than GPT-2.
# On long numbers the three-digit rule costs a little: slightly more tokens than GPT-2's
# arbitrary chunks, in exchange for a consistent spelling.
#
# Across languages the differences are large. For GPT-2, the same message costs between about
# 3 and 7 times the English tokens outside French and Spanish (each Devanagari or Greek character
# is two or three UTF-8 bytes, and GPT-2's merges were learned from English web text).
# `cl100k_base` halves the cost of Russian, Korean and Chinese but helps Greek and Hindi much
# less. `o200k_base`, with twice the vocabulary and a training mix with more languages, brings
# every language here to at most about 2.2 times English. The messages share placeholders and
# markup (`%s`, `<MODULE_PATH>`) that cost the same in every language, so the ratios for prose
# would be somewhat larger.
#
# ## Speed: the from-scratch BPE against the libraries
#
# How much does a Rust implementation buy? We take the byte-level BPE of the previous notebook,
# trained by the library with 1,000 merges on tiny Shakespeare, and encode the held-out tenth,
# line by line, four ways: the plain Python encoder of the previous notebook reading the
# library's vocabulary and merges (with and without a word cache), the `tokenizers` library, and
# `tiktoken`, OpenAI's Rust BPE, loaded with the same vocabulary. First we check that all give
# the same ids; then we time them back to back. The times are measurements on this machine,
# noisy when other processes run; compare the ratios.

# %%
bpe = Tokenizer(models.BPE())
bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
bpe.decoder = decoders.ByteLevel()
bpe.train_from_iterator(train_docs, trainers.BpeTrainer(
    vocab_size=256 + 1000, show_progress=False,
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
model = json.loads(bpe.to_str())["model"]
GPT2_SPLIT = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_to_char_table() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte (see 02-tokenization-algorithms)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    table.update({b: chr(256 + i) for i, b in enumerate(b for b in range(256) if b not in table)})
    return table


byte_to_char = byte_to_char_table()


class PythonBPE:
    """Byte-level BPE encoding in plain Python (the algorithm of 02-tokenization-algorithms)."""

    def __init__(self, vocab: dict[str, int], merges: list[list[str]], use_cache: bool) -> None:
        self.vocab = vocab
        self.ranks = {(vocab[a], vocab[b]): (rank, vocab[a + b])
                      for rank, (a, b) in enumerate(merges)}
        self.cache: dict[str, list[int]] | None = {} if use_cache else None

    def encode_piece(self, piece: str) -> list[int]:
        word = [self.vocab[c] for c in piece]
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, (math.inf,)))
            if pair not in self.ranks:
                break
            new_id, merged, i = self.ranks[pair][1], [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    merged.append(new_id)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in GPT2_SPLIT.findall(text):
            piece = "".join(byte_to_char[b] for b in piece.encode("utf-8"))
            if self.cache is None:
                ids += self.encode_piece(piece)
            else:
                if piece not in self.cache:
                    self.cache[piece] = self.encode_piece(piece)
                ids += self.cache[piece]
        return ids


lines = heldout_text.splitlines(keepends=True)
reference = [e.ids for e in bpe.encode_batch(lines)]
python_bpe = PythonBPE(model["vocab"], model["merges"], use_cache=True)


def encode_lines(encoder: PythonBPE) -> list[list[int]]:
    return [encoder.encode(t) for t in lines]


print("Python BPE == tokenizers on every held-out line:", encode_lines(python_bpe) == reference)
held_out_pieces = GPT2_SPLIT.findall(heldout_text)
print(f"{len(held_out_pieces):,} pre-tokens in the held-out text, "
      f"{len(set(held_out_pieces)):,} distinct")

# tiktoken builds an encoder from token ranks alone: here a token's rank is its id, which for
# this vocabulary is also the order in which its merge was learned.
char_to_byte = {c: b for b, c in byte_to_char.items()}
same_vocab_tiktoken = tiktoken.Encoding(
    "course-bpe", pat_str=GPT2_SPLIT.pattern, special_tokens={},
    mergeable_ranks={bytes(char_to_byte[c] for c in token): i
                     for token, i in model["vocab"].items()})
print("tiktoken with the same vocabulary == tokenizers:",
      [same_vocab_tiktoken.encode_ordinary(t) for t in lines] == reference)


def best_time(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


timings = {
    "Python, no cache": best_time(
        lambda: encode_lines(PythonBPE(model["vocab"], model["merges"], use_cache=False)),
        repeats=1),
    "Python, word cache": best_time(lambda: encode_lines(python_bpe)),
    "tokenizers, encode per line": best_time(lambda: [bpe.encode(t) for t in lines]),
    "tokenizers, encode_batch": best_time(lambda: bpe.encode_batch(lines)),
    "tokenizers, encode_batch_fast": best_time(lambda: bpe.encode_batch_fast(lines)),
    "tiktoken, same vocabulary": best_time(
        lambda: [same_vocab_tiktoken.encode_ordinary(t) for t in lines]),
}
n_chars = len(heldout_text)
baseline = timings["Python, no cache"]
for name, seconds in timings.items():
    print(f"{name:>30}: {seconds * 1000:8.1f} ms, {n_chars / seconds / 1e6:6.2f} M chars/s, "
          f"{baseline / seconds:6.1f}x the uncached Python encoder")

# %% [markdown]
# All six give the same ids. Warm caches everywhere (the equality checks above ran over the
# same lines first), except the row that has none. Three things show:
#
# - The word cache is the biggest single win in Python: natural text repeats its words, and each
#   distinct pre-token is merged once (the counts are printed above: about one pre-token in eight
#   is new).
# - The `tokenizers` encoders are no faster than the warm, cached Python encoder on this text.
#   They do more work per character: every `Encoding` carries offsets, an attention mask, type
#   ids and an alignment between the original and the normalised string. `encode_batch_fast`,
#   which skips the offsets, is quicker; `encode_batch` parallelises over lines, which helps
#   little with two busy cores and short lines.
# - `tiktoken`, given exactly the same vocabulary, is several times faster than all of them: it
#   returns bare ids and nothing else.
#
# The right tool depends on what you need: offsets for span extraction and alignment
# (`tokenizers`), raw ids for pretraining data or token counting (`tiktoken`), and a Python BPE
# only to understand it.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: A normalizer for messy input
#
# Write `make_normalizer()` returning a `tokenizers` normalizer that folds compatibility
# characters (ligatures, full-width letters), lower-cases, and removes accents, so that
# `"Ｃａｆé ﬁnal"` becomes `"cafe final"`. Think about the order: accents can only be stripped
# once they are separate combining characters.

# %% tags=["solution"]
def make_normalizer() -> normalizers.Normalizer:
    """NFKC folding, lower-casing and accent stripping, in a working order."""
    # BEGIN SOLUTION
    return normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase(),
                                 normalizers.StripAccents()])
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_type, passed

normalizer = make_normalizer()
check_type(normalizer, normalizers.Normalizer, "make_normalizer()")
for raw, expected in [("Ｃａｆé ﬁnal", "cafe final"), ("ÉLAN Straße", "elan straße"),
                      ("Cafe\u0301 x²", "cafe x2"), ("naïve", "naive")]:
    check_equal(normalizer.normalize_str(raw), expected, f"make_normalizer().normalize_str({raw!r})")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A RoBERTa-style template
#
# RoBERTa marks sequences with `<s>` and `</s>`: one sequence is `<s> A </s>`, a pair is
# `<s> A </s> </s> B </s>`, and all type ids are 0. Write `roberta_template(cls_id, sep_id)`
# returning a `TemplateProcessing` post-processor that does this, where `cls_id` and `sep_id` are
# the ids of `<s>` and `</s>`. The check attaches it to a copy of the BERT-like tokenizer, to
# which the two tokens have been added.

# %% tags=["solution"]
def roberta_template(cls_id: int, sep_id: int) -> processors.PostProcessor:
    """<s> $A </s> and <s> $A </s> </s> $B </s>, all type ids 0."""
    # BEGIN SOLUTION
    return processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", cls_id), ("</s>", sep_id)])
    # END SOLUTION


# %% tags=["check"]
roberta_like = Tokenizer.from_str(bert_like.to_str())
roberta_like.add_special_tokens(["<s>", "</s>"])
roberta_like.post_processor = roberta_template(roberta_like.token_to_id("<s>"),
                                               roberta_like.token_to_id("</s>"))
pair = roberta_like.encode("to be", "or not")
check_equal(pair.tokens, ["<s>", "to", "be", "</s>", "</s>", "or", "not", "</s>"], "pair tokens")
check_equal(pair.type_ids, [0] * 8, "pair type ids")
check_equal(roberta_like.encode("to be").tokens, ["<s>", "to", "be", "</s>"], "single tokens")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Back to the original characters
#
# Write `original_spans(tokenizer, text)` that encodes `text` with `tokenizer` and returns, for
# every token that is not a special token, the substring of the *original* `text` it covers
# (use the encoding's `offsets` and `special_tokens_mask`). For the BERT-like tokenizer and
# `"ÉLAN, Straße"`, the spans must come back with their capitals and accents.

# %% tags=["solution"]
def original_spans(tokenizer: Tokenizer, text: str) -> list[str]:
    """The slice of `text` behind every non-special token."""
    # BEGIN SOLUTION
    encoding = tokenizer.encode(text)
    return [text[start:end] for (start, end), special
            in zip(encoding.offsets, encoding.special_tokens_mask) if not special]
    # END SOLUTION


# %% tags=["check"]
spans = original_spans(bert_like, "ÉLAN, Straße")
reference_encoding = bert_like.encode("ÉLAN, Straße")
check_equal(len(spans), len(reference_encoding.tokens) - sum(reference_encoding.special_tokens_mask),
            "number of spans")
check_equal("".join(spans).replace(" ", ""), "ÉLAN,Straße", "the spans joined together")
check(spans[0].startswith("É"), "original_spans", "the first span to keep the capital É")
check_equal(original_spans(bert_like, "to be"), ["to", "be"], "original_spans('to be')")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Who pays the most?
#
# Using `parallel` and `encodings` from above, write `tokens_per_english_token(encoding,
# language)` returning the ratio of the token count of all `language` messages to the token
# count of the English messages. Then set `most_expensive` to a dict mapping each encoding name
# to the language (a key of `parallel` other than `"English"`) with the highest ratio for it.

# %% tags=["solution"]
def tokens_per_english_token(encoding, language: str) -> float:
    """Token count of the messages in `language` over the English token count."""
    # BEGIN SOLUTION
    count = lambda strings: sum(len(encoding.encode(s)) for s in strings)  # noqa: E731
    return count(parallel[language]) / count(parallel["English"])
    # END SOLUTION


most_expensive = None
# BEGIN SOLUTION
most_expensive = {name: max((lang for lang in parallel if lang != "English"),
                            key=lambda lang: tokens_per_english_token(e, lang))
                  for name, e in encodings.items()}
# END SOLUTION
print(most_expensive)

# %% tags=["check"]
check_close(tokens_per_english_token(encodings["gpt2"], "Hindi"), token_tax["gpt2"]["Hindi"],
            "tokens_per_english_token(gpt2, Hindi)")
check_close(tokens_per_english_token(encodings["o200k_base"], "French"),
            token_tax["o200k_base"]["French"], "tokens_per_english_token(o200k_base, French)")
check_type(most_expensive, dict, "most_expensive")
check_equal(most_expensive, {name: max(token_tax[name], key=token_tax[name].get)
                             for name in encodings}, "most_expensive")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - A `tokenizers` pipeline is normalizer, pre-tokenizer, model, post-processor and decoder,
#   saved together in one `tokenizer.json`; `transformers`' fast tokenizers are this object.
# - Normalization decides which strings count as equal (NFC against NFD, NFKC folding, case,
#   accents); GPT-style tokenizers normalise nothing and spend more tokens on unusual forms.
# - Pre-tokenizers set the boundaries merges cannot cross; byte-level and Metaspace keep
#   whitespace recoverable, `Whitespace` discards it.
# - Post-processors add special tokens and type ids; offsets map every token back to the
#   original characters, even through lower-casing and accent removal.
# - From GPT-2 to `cl100k_base` to `o200k_base`, code got cheaper and non-English text much
#   cheaper, measured on the same 288 messages in nine languages.
# - Speed depends on what an encoder returns as much as on its language: with a word cache, Python
#   BPE came close to `tokenizers`, which tracks offsets for every character, while `tiktoken`,
#   returning bare ids, was several times faster than both.
#
# Next: [custom tokenizers](04-custom-tokenizers), trained for a domain and measured against
# these general ones.
#
# ## References
#
# - Hugging Face, *Tokenizers* documentation: the pipeline, components and training.
#   https://huggingface.co/docs/tokenizers
# - Hugging Face, *Transformers* documentation: tokenizers.
#   https://huggingface.co/docs/transformers/main_classes/tokenizer
# - Hugging Face NLP course, chapter 6 (the tokenizers library, normalization and
#   pre-tokenization, building a tokenizer block by block). https://huggingface.co/learn/nlp-course/chapter6
# - J. Devlin et al., "BERT: pre-training of deep bidirectional transformers for language
#   understanding", NAACL 2019 (WordPiece and the [CLS]/[SEP] template). https://arxiv.org/abs/1810.04805
# - P. Rust et al., "How good is your tokenizer? On the monolingual performance of multilingual
#   language models", ACL 2021. https://aclanthology.org/2021.acl-long.243/
# - A. Petrov et al., "Language model tokenizers introduce unfairness between languages",
#   NeurIPS 2023. https://arxiv.org/abs/2305.15425
# - H. Touvron et al., "LLaMA: open and efficient foundation language models", 2023 (digits split
#   one by one). https://arxiv.org/abs/2302.13971
# - A. Radford et al., "Language models are unsupervised multitask learners" (GPT-2), 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - OpenAI, `tiktoken` (the `cl100k_base` and `o200k_base` encodings). https://github.com/openai/tiktoken
# - Unicode Standard Annex #15, "Unicode normalization forms". https://unicode.org/reports/tr15/
# - Sphinx translations (the parallel messages used here), Sphinx 7.4 `sphinx/locale`, BSD
#   licence. https://www.sphinx-doc.org/en/master/usage/advanced/intl.html
