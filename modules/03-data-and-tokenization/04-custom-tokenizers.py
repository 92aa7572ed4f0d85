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
# # Training a tokenizer for a domain
#
# A general-purpose tokenizer spends its vocabulary on whatever was frequent in its training mix,
# usually English web text. A model for one domain, a programming language or another natural
# language, reads text whose frequent strings are different: indentation, keywords and
# docstring conventions in code; whole syllables and words in a non-Latin script. Every token
# the tokenizer saves is context the model gains and compute it does not spend, which is why
# code models (Codex, StarCoder) and multilingual models train their own tokenizers. This
# notebook trains domain tokenizers for Python and for Hindi, measures them in tokens per
# character against GPT-2, `cl100k_base` and `o200k_base` on held-out text, and counts what the
# savings cost.
#
# **Learning objectives**
# - Train a new tokenizer with the pipeline of an existing one (`train_new_from_iterator`), or
#   from `tokenizers` parts, on a domain corpus.
# - Measure tokens per character on held-out in-domain and out-of-domain text, and read a
#   vocabulary-size sweep against general tokenizers.
# - Show that what the training text looks like matters as much as its amount.
# - Weigh shorter sequences against embedding parameters, and against the small corpora that
#   domains often have.
#
# **Prerequisites:** [The Hugging Face `tokenizers` pipeline](03-hf-tokenizers) and
# [tokenization algorithms](02-tokenization-algorithms).
#
# **Estimated time:** 45 minutes.

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
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import shared
from shared.assets import corpus, gpt2_tokenizer, humaneval, tiktoken_encoding, translations

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
shared.seed_everything(0)
print(shared.environment_summary("tokenizers", "transformers", "tiktoken"))

# %% [markdown]
# ## A code corpus
#
# Two sources of real Python, both on this machine:
#
# - **HumanEval** (Chen et al., 2021): 164 programming problems, each a function signature with a
#   docstring and examples (`prompt`) and a reference body (`canonical_solution`). Problems 0-99
#   are training text; problems 100-163 are held out and never seen by any tokenizer we train.
# - **The course's own library**, the `shared/*.py` files: typed, documented Python in a
#   different style. Its size changes as the course grows, so the exact figures below can
#   shift a little between versions; the held-out set does not.

# %%
problems = humaneval()
as_text = [p["prompt"] + p["canonical_solution"] for p in problems]
humaneval_train, heldout_code = as_text[:100], as_text[100:]
library_code = [path.read_text(encoding="utf-8")
                for path in sorted((shared.REPO_ROOT / "shared").glob("*.py"))]
code_train = library_code + humaneval_train
sonnets = [corpus("shakespeare")["Sonnets"]]  # English verse: off-domain for a code tokenizer

print(f"training code: {sum(map(len, code_train)):,} characters "
      f"({len(library_code)} library files, {len(humaneval_train)} HumanEval problems)")
print(f"held-out code: {sum(map(len, heldout_code)):,} characters ({len(heldout_code)} problems)")
print(heldout_code[0][:400])

# %% [markdown]
# ## The general tokenizers as a baseline
#
# The measure throughout is **tokens per character** on held-out text: lower means shorter
# sequences for the same content. (Characters, not words, because code and many languages have
# no clean notion of a word.)

# %%
general = {name: tiktoken_encoding(name) for name in ("gpt2", "cl100k_base", "o200k_base")}
general_sizes = {name: e.n_vocab for name, e in general.items()}


def tokens_per_char(encode, texts: list[str]) -> float:
    """Total tokens over total characters of `texts`, for a function text -> list of ids."""
    return sum(len(encode(t)) for t in texts) / sum(len(t) for t in texts)


baseline = {name: {"code": tokens_per_char(e.encode_ordinary, heldout_code),
                   "verse": tokens_per_char(e.encode_ordinary, sonnets)}
            for name, e in general.items()}
for name, row in baseline.items():
    print(f"{name:>12} ({general_sizes[name]:,} tokens): {row['code']:.3f} tokens/char on "
          f"held-out code, {row['verse']:.3f} on English verse")

# %% [markdown]
# ## Training a code tokenizer
#
# `train_new_from_iterator` keeps everything about an existing fast tokenizer except its
# vocabulary: GPT-2's normalizer (none), byte-level pre-tokenizer, BPE model and decoder are
# reused, and the merges are learned afresh from the new text (the Hugging Face documentation
# calls it training a new tokenizer from an old one). Every comparison with GPT-2 is therefore a
# comparison of vocabularies alone. We sweep the vocabulary size and measure each tokenizer on
# held-out code and on English verse.

# %%
gpt2 = gpt2_tokenizer()
SIZES = [500, 1000, 2000, 4000, 8000]  # 32k-64k for a production code model, with far more data
domain = {size: gpt2.train_new_from_iterator(code_train, vocab_size=size) for size in SIZES}


def encoder(tokenizer) -> Callable[[str], list[int]]:
    """Raw ids from a transformers fast tokenizer, no special tokens, no length warning."""
    return lambda text: tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids


sweep = {size: {"vocab": len(tok), "code": tokens_per_char(encoder(tok), heldout_code),
                "verse": tokens_per_char(encoder(tok), sonnets)} for size, tok in domain.items()}
for size, row in sweep.items():
    print(f"domain {size:>5} (vocabulary {row['vocab']:>5}): {row['code']:.3f} tokens/char on "
          f"held-out code, {row['verse']:.3f} on English verse")
beats_gpt2 = [s for s in SIZES if sweep[s]["code"] < baseline["gpt2"]["code"]]
print("smallest domain vocabulary with fewer tokens than GPT-2 on held-out code:",
      min(beats_gpt2) if beats_gpt2 else None)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, key, title in [(axes[0], "code", "Held-out Python (in domain)"),
                       (axes[1], "verse", "Shakespeare's Sonnets (off domain)")]:
    ax.plot([sweep[s]["vocab"] for s in SIZES], [sweep[s][key] for s in SIZES], "o-", color="C3",
            label="code tokenizer trained here")
    for k, (name, size) in enumerate(general_sizes.items()):
        ax.scatter(size, baseline[name][key], s=60, marker="s", color=f"C{k}", label=name, zorder=3)
    ax.set(xscale="log", xlabel="vocabulary size (log scale)", title=title)
    ax.legend()
axes[0].set_ylabel("tokens per character (lower is better)")
fig.suptitle("A small code vocabulary against large general ones")
plt.tight_layout()
plt.show()

# %% [markdown]
# On held-out code the domain tokenizer overtakes GPT-2 with a vocabulary 25 times smaller, and
# keeps improving with size, with diminishing returns. `cl100k_base` and `o200k_base`, trained
# on vast amounts of code, stay slightly ahead of the largest one: they are already good code
# tokenizers, with 12 to 25 times its vocabulary. Off domain the picture flips: on English
# verse every code tokenizer is worse than all three general ones. A domain tokenizer is a bet
# on the domain.
#
# ## What the code tokenizer learned
#
# The longest tokens of the 4,000-entry vocabulary, the longest ones it actually uses on the
# held-out problems, and one held-out line of code in three tokenizers (in the vocabulary, GPT-2's
# byte-characters stand for bytes: `Ġ` is a space, `Ċ` a newline).

# %%
code_tokenizer = domain[4000]
by_length = sorted(code_tokenizer.get_vocab(), key=lambda t: (-len(t), t))
print("longest in the vocabulary:", by_length[:12])
used = {t for text in heldout_code for t in encoder(code_tokenizer)(text)}
used_tokens = sorted((code_tokenizer.convert_ids_to_tokens(i) for i in used),
                     key=lambda t: (-len(t), t))
print("longest used on held-out code:", used_tokens[:10])

line = next(candidate for text in heldout_code for candidate in text.splitlines()
            if candidate.startswith(" " * 8) and candidate.strip()[:1].isalpha()
            and "(" in candidate)
print(repr(line))
shown = {name: [general[name].decode([t]) for t in general[name].encode_ordinary(line)]
         for name in ("gpt2", "o200k_base")}
shown["code 4000"] = [code_tokenizer.decode([t]) for t in encoder(code_tokenizer)(line)]
for name, pieces in shown.items():
    print(f"{name:>11} ({len(pieces):2d}): {pieces}")

# %% [markdown]
# The longest entries are the training text's habits, mostly from the course library: long
# separator lines, deep indentation, its own long identifiers. A tokenizer memorises its corpus,
# including strings that will never help on other code. The
# longest tokens used on the held-out problems are the generally useful kind: a newline with the
# indentation that follows it, and the long words of docstrings with their leading space.
# Indentation is where GPT-2 loses most: it spends one token per leading space, while
# `o200k_base` spends one for the whole run and the domain tokenizer one or two.
#
# ## What you train on matters
#
# Same vocabulary size (2,000), three training sets: the course library alone (about six times
# more text than the HumanEval part, but a different style), the 100 HumanEval training
# problems alone, and both. All are measured on the same held-out HumanEval problems.

# %%
training_sets = {"course library": library_code, "HumanEval train": humaneval_train,
                 "both": code_train}
by_source = {}
for name, texts in training_sets.items():
    tok = domain[2000] if name == "both" else gpt2.train_new_from_iterator(texts, vocab_size=2000)
    by_source[name] = tokens_per_char(encoder(tok), heldout_code)
    print(f"{name:>16}: {sum(map(len, texts)):>7,} training characters -> "
          f"{by_source[name]:.3f} tokens/char on held-out HumanEval")

# %% [markdown]
# The 100 HumanEval problems, a small fraction of the characters, make a better tokenizer for
# HumanEval than the much larger course library, and even a better one than both together: at
# this vocabulary size the library's strings crowd out entries that HumanEval-style code needs
# (docstrings with `>>>` examples, short functions, the same naming habits). Matching the target
# distribution beats raw volume, the same lesson as for the model's own training data.
#
# ## What the savings cost
#
# A vocabulary is also an embedding matrix (and, unless tied, an output matrix) of
# $V \times d$ parameters. For a model of width $d = 768$ (GPT-2 small), here are the token
# counts of the held-out code and the parameters each vocabulary costs.

# %%
D_MODEL = 768
held_out_chars = sum(map(len, heldout_code))
rows = [(name, size, baseline[name]["code"]) for name, size in general_sizes.items()]
rows += [(f"code {s}", sweep[s]["vocab"], sweep[s]["code"]) for s in (1000, 2000, 4000)]
print(f"{'tokenizer':>12} {'vocabulary':>11} {'held-out tokens':>16} {'embedding params':>17}")
for name, size, rate in rows:
    print(f"{name:>12} {size:>11,} {round(rate * held_out_chars):>16,} {size * D_MODEL:>17,}")
extra = sweep[4000]["code"] / baseline["o200k_base"]["code"] - 1
print(f"code 4000 needs {extra:.0%} more tokens than o200k_base on this code, with "
      f"{general_sizes['o200k_base'] / sweep[4000]['vocab']:.0f}x fewer embedding parameters")

# %% [markdown]
# A 4,000-entry code vocabulary spends about 3 million embedding parameters where `o200k_base`
# spends 154 million, for the extra tokens printed above. For a small model, that is the
# difference between a model that is mostly embeddings and one that is mostly transformer. For a large model the embedding cost is minor, and a big general vocabulary that
# is good at everything wins. One more constraint: a pretrained model's embeddings are tied to its
# token ids, so changing its tokenizer means retraining (or at least re-initialising and
# fine-tuning) the embeddings.
#
# ## Another language: Hindi
#
# For a natural language the offline corpus is small. Sphinx, the documentation tool installed
# with this course, ships human translations of its interface messages; the Hindi catalogue holds
# about 600 messages (24,700 characters of Devanagari with some English markup). We train on a
# random 80% and test on the rest. The three general tokenizers are measured first.

# %%
hindi = sorted(translations("hi").values())  # English message -> Hindi, from shared.assets
random.Random(0).shuffle(hindi)
split = int(0.8 * len(hindi))
hindi_train, hindi_test = hindi[:split], hindi[split:]
print(f"{len(hindi)} messages: {sum(map(len, hindi_train)):,} training characters, "
      f"{sum(map(len, hindi_test)):,} held out; e.g. {hindi_test[0]!r}")

hindi_baseline = {name: tokens_per_char(e.encode_ordinary, hindi_test)
                  for name, e in general.items()}
hindi_domain = {size: gpt2.train_new_from_iterator(hindi_train, vocab_size=size)
                for size in (500, 1000)}
hindi_rates = {f"Hindi {size}": tokens_per_char(encoder(t), hindi_test)
               for size, t in hindi_domain.items()}
for name, rate in {**hindi_baseline, **hindi_rates}.items():
    print(f"{name:>12}: {rate:.3f} tokens/char on held-out Hindi")

sample = hindi_test[0]
print("\ntokens for the example message:",
      {name: len(e.encode_ordinary(sample)) for name, e in general.items()}
      | {"Hindi 1000": len(encoder(hindi_domain[1000])(sample))})

# %% [markdown]
# GPT-2 needs more than one token per Devanagari character: each character is three UTF-8
# bytes and few byte pairs were merged. A 1,000-entry tokenizer trained on 20,000 characters of
# Hindi already halves GPT-2's count and beats `cl100k_base`. It does not come near
# `o200k_base`, whose training data clearly held far more Hindi than this catalogue. With a
# corpus this small, a domain tokenizer learns the frequent words of *these* messages and little
# else; the fix is more text in the language, not a larger vocabulary. When a good general
# tokenizer already exists, measure it before training your own.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Characters per token, per problem
#
# `tokens_per_char` pools all texts. Write `per_text_chars_per_token(encode, texts)` returning a
# list with the characters per token of each text separately, then set `worst_problem_gpt2` to
# the index (into `heldout_code`) of the held-out problem on which GPT-2 has the *fewest*
# characters per token.

# %% tags=["solution"]
def per_text_chars_per_token(encode, texts: list[str]) -> list[float]:
    """Characters per token of each text."""
    # BEGIN SOLUTION
    return [len(t) / len(encode(t)) for t in texts]
    # END SOLUTION


worst_problem_gpt2 = None
# BEGIN SOLUTION
rates = per_text_chars_per_token(general["gpt2"].encode_ordinary, heldout_code)
worst_problem_gpt2 = min(range(len(rates)), key=rates.__getitem__)
# END SOLUTION
print("worst held-out problem for GPT-2:", worst_problem_gpt2)

# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_function, passed

check_function(per_text_chars_per_token, [((lambda t: t.split(), ["a b", "abc"]), [1.5, 3.0])],
               "per_text_chars_per_token")
gpt2_counts = [len(t) / len(general["gpt2"].encode_ordinary(t)) for t in heldout_code]
check_close(per_text_chars_per_token(general["gpt2"].encode_ordinary, heldout_code[:5]),
            gpt2_counts[:5], "per_text_chars_per_token(gpt2, first five)")
check_equal(worst_problem_gpt2, gpt2_counts.index(min(gpt2_counts)), "worst_problem_gpt2")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A code tokenizer from parts, with single digits
#
# Build a byte-level BPE code tokenizer from `tokenizers` parts whose pre-tokenizer first splits
# every digit into its own piece (`pre_tokenizers.Digits(individual_digits=True)`) and then
# applies `ByteLevel(add_prefix_space=False)`, in a `pre_tokenizers.Sequence`. Train it on
# `code_train` with a `BpeTrainer` of vocabulary size 2,000 and the byte-level initial alphabet,
# set a `ByteLevel` decoder, and return it from `digit_code_tokenizer()`. The check verifies that
# no token contains two digits, that decoding restores held-out code exactly, and that it is
# still far better than GPT-2 on held-out code.

# %% tags=["solution"]
def digit_code_tokenizer() -> Tokenizer:
    """Byte-level BPE for code that never merges digits together."""
    # BEGIN SOLUTION
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(code_train, trainers.BpeTrainer(
        vocab_size=2000, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tokenizer
    # END SOLUTION


# %% tags=["check"]
digits_tokenizer = digit_code_tokenizer()
multi_digit = [t for t in digits_tokenizer.get_vocab() if sum(c.isdigit() for c in t) > 1]
check(not multi_digit, "digit_code_tokenizer", f"no token with two digits, found {multi_digit[:5]}")
check_equal(digits_tokenizer.decode(digits_tokenizer.encode(heldout_code[0]).ids), heldout_code[0],
            "decode(encode(held-out code))")
digit_rate = tokens_per_char(lambda t: digits_tokenizer.encode(t).ids, heldout_code)
gpt2_rate = baseline["gpt2"]["code"]
check(digit_rate < gpt2_rate, "digit_code_tokenizer",
      f"fewer tokens per character than GPT-2 ({gpt2_rate:.3f}), got {digit_rate:.3f}")
print(f"single-digit code tokenizer: {digit_rate:.3f} tokens/char "
      f"(the same size without digit splitting: {sweep[2000]['code']:.3f})")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: How much of the vocabulary is new?
#
# Write `share_not_in(vocab_a, vocab_b)` returning the fraction of the token strings of
# `vocab_a` (a dict token -> id, as `get_vocab()` returns) that do not occur in `vocab_b`. Then
# set `new_in_code_4000` to that share for the 4,000-entry code tokenizer against GPT-2's
# vocabulary (`gpt2.get_vocab()`), and `new_in_hindi_1000` for the 1,000-entry Hindi tokenizer.
# Both share GPT-2's byte-level spelling of tokens, so the comparison is like with like.

# %% tags=["solution"]
def share_not_in(vocab_a: dict[str, int], vocab_b: dict[str, int]) -> float:
    """Fraction of vocab_a's tokens that vocab_b lacks."""
    # BEGIN SOLUTION
    return sum(token not in vocab_b for token in vocab_a) / len(vocab_a)
    # END SOLUTION


new_in_code_4000 = None
new_in_hindi_1000 = None
# BEGIN SOLUTION
new_in_code_4000 = share_not_in(code_tokenizer.get_vocab(), gpt2.get_vocab())
new_in_hindi_1000 = share_not_in(hindi_domain[1000].get_vocab(), gpt2.get_vocab())
# END SOLUTION
print(f"tokens GPT-2 lacks: code 4000 {new_in_code_4000:.1%}, Hindi 1000 {new_in_hindi_1000:.1%}")

# %% tags=["check"]
check_function(share_not_in, [(({"a": 0, "b": 1}, {"a": 5}), 0.5), (({"x": 0}, {"x": 1}), 0.0)],
               "share_not_in")
gpt2_vocab = gpt2.get_vocab()
code_vocab = code_tokenizer.get_vocab()
check_close(new_in_code_4000, sum(t not in gpt2_vocab for t in code_vocab) / len(code_vocab),
            "new_in_code_4000")
check(new_in_hindi_1000 is not None and new_in_hindi_1000 > new_in_code_4000, "new_in_hindi_1000",
      "the Hindi vocabulary to be newer to GPT-2 than the code vocabulary")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - `train_new_from_iterator` retrains only the vocabulary of an existing tokenizer; building
#   from `tokenizers` parts changes the pipeline too (digit splitting in Exercise 2).
# - On held-out HumanEval code, a code tokenizer trained here beat GPT-2 from a vocabulary of a
#   couple of thousand entries, and came within about 10% of `cl100k_base` and `o200k_base`
#   with a vocabulary 12 to 25 times smaller; on English verse it was worse than all three.
# - A smaller, well-matched training set (HumanEval-style problems) made a better tokenizer for
#   HumanEval than a larger set of code in another style, or than both together.
# - Vocabulary size is paid for in embedding parameters ($V \times d$), which matters most for
#   small models; a pretrained model cannot swap its tokenizer without retraining embeddings.
# - With 20,000 characters of Hindi, a domain tokenizer halved GPT-2's tokens but stayed far
#   behind `o200k_base`: for a language, the corpus, not the algorithm, is the limit.
#
# ## References
#
# - M. Chen et al., "Evaluating large language models trained on code" (Codex, HumanEval), 2021.
#   https://arxiv.org/abs/2107.03374
# - R. Li et al., "StarCoder: may the source be with you!", 2023 (a code model with its own
#   tokenizer). https://arxiv.org/abs/2305.06161
# - G. Dagan, G. Synnaeve, B. Rozière, "Getting the most out of your tokenizer for pre-training
#   and domain adaptation", ICML 2024. https://arxiv.org/abs/2402.01035
# - A. Petrov et al., "Language model tokenizers introduce unfairness between languages",
#   NeurIPS 2023. https://arxiv.org/abs/2305.15425
# - A. Forsythe, TokenMonster: an "ungreedy" subword tokenizer and vocabulary builder, 2023.
#   https://github.com/alasdairforsythe/tokenmonster
# - T. Kudo, J. Richardson, "SentencePiece: a simple and language independent subword tokenizer
#   and detokenizer for neural text processing", EMNLP 2018 (demo). https://arxiv.org/abs/1808.06226
#   and https://github.com/google/sentencepiece
# - Hugging Face, "Training a new tokenizer from an old one" (NLP course, chapter 6), and the
#   *Tokenizers* quicktour. https://huggingface.co/learn/nlp-course/chapter6/2 and
#   https://huggingface.co/docs/tokenizers/quicktour
# - A. Karpathy, "Let's build the GPT Tokenizer" (video), 2024.
#   https://www.youtube.com/watch?v=zduSFxRajkE
# - Sphinx translations (the Hindi messages used here), Sphinx 7.4 `sphinx/locale`, BSD licence.
#   https://www.sphinx-doc.org/en/master/usage/advanced/intl.html
