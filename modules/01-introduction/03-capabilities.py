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
# # What language models can do: zero-shot, few-shot and fine-tuned
#
# The most useful property of pretrained language models is that one model can be pointed at
# many tasks. There are three ways to do the pointing, and they differ in how many labelled
# examples they need: **zero-shot** (describe the task, give no examples), **few-shot** (give a
# handful of examples, either in the prompt or to a cheap classifier) and **fine-tuning** (train
# on many labelled examples). Brown et al. (2020) made this distinction central with GPT-3. This
# notebook measures all three on one real task, the sentiment of sentences rated by people (a
# corpus of 23,703), with two real pretrained models: the sentence encoder all-MiniLM-L6-v2 and
# the instruction-tuned chat model SmolLM2-135M-Instruct. It closes with "emergent abilities",
# a claim about scale that deserves a careful reading.
#
# **Learning objectives**
# - Classify text zero-shot by comparing its embedding with embeddings of label descriptions,
#   and measure how much the wording of the descriptions matters.
# - Measure accuracy against the number of labelled examples for few-shot classifiers
#   (nearest centroid, logistic regression) and a classifier head trained on the full labelled
#   set, and read off what zero-shot is worth in labelled examples.
# - Prompt a small generative model zero-shot and few-shot, read its actual replies, and score
#   them with a stated rule.
# - Explain what "emergent abilities" means (Wei et al., 2022) and why the choice of metric can
#   create the appearance of emergence (Schaeffer et al., 2023).
#
# **Prerequisites:** [Overview](01-overview) (what a language model computes) and
# [linear algebra](../00-foundations/01-linear-algebra) (cosine similarity). Logistic regression
# is used as a tool; no more than "a linear classifier with a probability output" is needed.
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
import copy
import warnings
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

import shared
from shared.assets import chat_model, chat_tokenizer, corpus, sentence_encoder

shared.seed_everything(0)
# The models here are small and run one sentence or one small batch at a time: one thread does
# nearly as well as two, and stays fast when other programs share the CPU.
torch.set_num_threads(1)
print(shared.environment_summary("numpy", "scikit-learn", "sentence-transformers", "transformers"))
# transformers imports tqdm, which warns that ipywidgets (progress bars in Jupyter) is absent.
warnings.filterwarnings("ignore", message="IProgress not found")

# %% [markdown]
# ## The task: sentiment of human-rated sentences
#
# The corpus (Hutto and Gilbert, 2014) has 23,703 sentences from tweets, New York Times
# editorials, movie reviews and Amazon reviews. About 20 people rated each one on a scale from
# -4 to +4, and the label is positive when the mean rating is above 0. Sentences rated near 0
# are ambiguous even to people, so we keep those with a mean rating of at least 1 in absolute
# value, and at most 200 characters (to keep the notebook fast). From these we draw, with a
# fixed seed, a balanced **test set** of 300 sentences and a disjoint balanced **labelled pool**
# of 800, which plays the role of the training data we could afford to label.

# %%
records = [r for r in corpus("sentiment") if abs(r["rating"]) >= 1.0 and len(r["text"]) <= 200]
rng = np.random.default_rng(0)
by_label = {label: [r for r in records if r["label"] == label] for label in (0, 1)}
shuffled = {label: [rows[i] for i in rng.permutation(len(rows))] for label, rows in by_label.items()}
N_TEST, N_POOL = 150, 400  # per class
test = shuffled[0][:N_TEST] + shuffled[1][:N_TEST]
pool = shuffled[0][N_TEST : N_TEST + N_POOL] + shuffled[1][N_TEST : N_TEST + N_POOL]
y_test = np.array([r["label"] for r in test])
y_pool = np.array([r["label"] for r in pool])

print(f"{len(records):,} clear-cut sentences kept; test {len(test)}, labelled pool {len(pool)}")
print("test set sources:", dict(sorted(Counter(r["source"] for r in test).items())))
for r in test[:2] + test[-2:]:
    print(f"  rating {r['rating']:+.1f} label {r['label']}: {r['text'][:90]}")

# %% [markdown]
# ## Sentence embeddings
#
# all-MiniLM-L6-v2 (Reimers and Gurevych, 2019; Wang et al., 2020) is a 6-layer transformer
# that maps a sentence to a 384-dimensional vector of unit length, trained so that sentences
# with similar meaning get similar vectors. It was trained for semantic similarity, not for
# sentiment: whatever it knows about sentiment came along with meaning. We embed every sentence
# once and reuse the vectors below.

# %%
encoder = sentence_encoder()
emb_test = encoder.encode([r["text"] for r in test], batch_size=64)
emb_pool = encoder.encode([r["text"] for r in pool], batch_size=64)
print("embeddings:", emb_test.shape, emb_pool.shape,
      f"| norms between {np.linalg.norm(emb_test, axis=1).min():.4f} "
      f"and {np.linalg.norm(emb_test, axis=1).max():.4f}")

# %% [markdown]
# ## Zero-shot: compare with a description of each label
#
# With no labelled example at all, we can still classify: embed a short description of each
# label and give every sentence the label whose description is closest (largest cosine
# similarity; with unit vectors that is a dot product). This is the embedding version of
# zero-shot classification (Yin et al., 2019 frame it as entailment). The choice of words is a
# decision we make without data, so we try several and look at the spread.

# %%
def zero_shot_accuracy(label_descriptions: list[list[str]], embeddings: np.ndarray,
                       labels: np.ndarray) -> float:
    """Accuracy when each sentence gets the label whose mean description embedding is closest.

    label_descriptions[c] is a list of phrasings for class c (0 = negative, 1 = positive).
    """
    prototypes = np.stack([encoder.encode(phrases).mean(axis=0) for phrases in label_descriptions])
    predictions = (embeddings @ prototypes.T).argmax(axis=1)
    return float((predictions == labels).mean())


DESCRIPTIONS = {
    "negative / positive": [["negative"], ["positive"]],
    "bad / good": [["bad"], ["good"]],
    "I hate it. / I love it.": [["I hate it."], ["I love it."]],
    "This is a negative review.": [["This is a negative review."], ["This is a positive review."]],
    "This text expresses a negative sentiment.": [["This text expresses a negative sentiment."],
                                                   ["This text expresses a positive sentiment."]],
}
DESCRIPTIONS["all five, averaged"] = [sum((d[c] for d in DESCRIPTIONS.values()), []) for c in (0, 1)]

zero_shot = {name: zero_shot_accuracy(d, emb_test, y_test) for name, d in DESCRIPTIONS.items()}
for name, acc in zero_shot.items():
    print(f"{acc:6.1%}  {name}")

# %% [markdown]
# Every description beats chance (50%), and the wording moves accuracy by about 14 points:
# single words are the weakest (59% to 64%), sentences the strongest (68% to 72%). Choosing the
# best description by looking at the test set, as this table invites, would be cheating: a fair
# comparison fixes the description in advance. Averaging the five descriptions' embeddings
# does about as well as the best single one without any choice, so we take it as *the*
# zero-shot result.

# %% [markdown]
# ## Few-shot and a trained head: accuracy against labelled examples
#
# Now suppose we label $k$ sentences of each class. Two classifiers use them:
#
# - **nearest centroid**: average the $k$ embeddings of each class and give a sentence the
#   label of the closest average (the zero-shot method, with examples instead of descriptions);
# - **logistic regression** on the 384-dimensional embeddings: a linear classifier, trained.
#
# With $k = 400$ per class, the whole labelled pool, the logistic regression is a classification
# head trained on all our labels with the encoder frozen, the cheapest form of fine-tuning (a
# *linear probe*). Fine-tuning the encoder's own weights as well can go further; it costs
# minutes rather than seconds on a CPU and is the subject of module 10.
#
# With few examples the result depends on *which* examples were drawn, so for each $k$ we draw
# 20 different sets with fixed seeds and report the mean and spread.

# %%
def nearest_centroid(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Predict the class whose mean training embedding has the largest dot product."""
    centroids = np.stack([train_x[train_y == c].mean(axis=0) for c in (0, 1)])
    return (test_x @ centroids.T).argmax(axis=1)


K_VALUES = [1, 2, 4, 8, 16, 32, 64, 128, N_POOL]
N_DRAWS = 20
curves = {"nearest centroid": {}, "logistic regression": {}}
positives, negatives = np.flatnonzero(y_pool == 1), np.flatnonzero(y_pool == 0)
for k in K_VALUES:
    scores = {name: [] for name in curves}
    for draw in range(N_DRAWS if k < N_POOL else 1):  # one way to take the whole pool
        draw_rng = np.random.default_rng(draw)
        idx = np.concatenate([draw_rng.choice(negatives, k, replace=False),
                              draw_rng.choice(positives, k, replace=False)])
        x, y = emb_pool[idx], y_pool[idx]
        scores["nearest centroid"].append((nearest_centroid(x, y, emb_test) == y_test).mean())
        head = LogisticRegression(max_iter=1000).fit(x, y)
        scores["logistic regression"].append(head.score(emb_test, y_test))
    for name in curves:
        curves[name][k] = (np.mean(scores[name]), np.std(scores[name]))

print(f"{'k per class':>11s} " + " ".join(f"{name:>24s}" for name in curves))
for k in K_VALUES:
    print(f"{k:11d} " + " ".join(f"{curves[n][k][0]:17.1%} +- {curves[n][k][1]:4.1%}" for n in curves))

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
for name, marker in zip(curves, ["o", "s"]):
    means = np.array([curves[name][k][0] for k in K_VALUES])
    stds = np.array([curves[name][k][1] for k in K_VALUES])
    ax.plot(K_VALUES, means, marker + "-", label=f"{name} (mean of {N_DRAWS} draws)")
    ax.fill_between(K_VALUES, means - stds, means + stds, alpha=0.2)
ax.axhline(zero_shot["all five, averaged"], color="black", ls="--",
           label="zero-shot, label descriptions (no labels)")
ax.axhline(0.5, color="gray", ls=":", label="chance")
ax.set(xscale="log", xlabel="labelled examples per class (log scale)", ylabel="test accuracy",
       title="MiniLM embeddings: accuracy against the number of labelled examples")
ax.set_xticks(K_VALUES, [str(k) for k in K_VALUES])
ax.legend(loc="lower right", fontsize=8)
plt.tight_layout()
plt.show()

# %%
zs = zero_shot["all five, averaged"]
k_match = next(k for k in K_VALUES if curves["logistic regression"][k][0] >= zs)
print(f"zero-shot accuracy {zs:.1%}; logistic regression first matches it at k = {k_match} per class")
print(f"head trained on the whole pool ({2 * N_POOL} labels): "
      f"{curves['logistic regression'][N_POOL][0]:.1%}")

# %% [markdown]
# Three things to read from the curve. With one or two examples per class, the few-shot
# classifiers are barely above chance and vary a lot from draw to draw: two sentences are a
# poor description of a class. The zero-shot description is worth a few dozen labelled
# examples per class (the printed $k$). Labels keep helping all the way to the full pool, where
# both classifiers end about 10 points above zero-shot. (At 400 per class the nearest centroid
# even edges out the logistic regression, whose default regularisation we did not tune; tuning
# it on the test set would be cheating again.) Beyond that, a better encoder for the task
# (fine-tuning it) is what would move the ceiling, since this one was not trained for
# sentiment.
#
# ## A generative model, prompted
#
# GPT-3's zero-shot and few-shot results came from a different mechanism: the task description
# and the examples are written into the prompt, and the model's continuation is the answer. No
# weights change; the examples act only through the context ("in-context learning"). We try it
# with SmolLM2-135M-Instruct, a chat model three orders of magnitude smaller than GPT-3, on 24
# test sentences (12 per class): a small sample, because each answer costs a forward pass of a
# 135M-parameter model on a CPU. With 24 sentences one accuracy figure has a standard error of
# about 10 points, so only large differences mean anything.
#
# The zero-shot prompt asks the question; the few-shot prompt puts four solved examples (two per
# class, from the labelled pool) before it as earlier turns of the conversation. The prompts
# share their beginning, so we compute that shared prefix once and reuse its keys and values
# (the KV cache) for every sentence; greedy decoding makes every reply deterministic.

# %%
model, tokenizer = chat_model(), chat_tokenizer()
QUESTION = "Is the sentiment of this sentence positive or negative? Answer with one word.\n"
SLOT = "\x00"  # marks where the sentence goes in the rendered prompt
smol_sample = test[:12] + test[-12:]
y_smol = np.array([r["label"] for r in smol_sample])
short_pool = [r for r in pool if len(r["text"]) <= 100]
demos = [next(r for r in short_pool if r["label"] == c) for c in (1, 0)]
demos += [next(r for r in short_pool if r["label"] == c and r not in demos) for c in (1, 0)]


def build_messages(sentence: str, shots: list[dict]) -> list[dict[str, str]]:
    """A chat: each demonstration is a user question and the assistant's one-word answer."""
    messages = []
    for shot in shots:
        messages.append({"role": "user", "content": QUESTION + shot["text"]})
        messages.append({"role": "assistant", "content": ["negative", "positive"][shot["label"]]})
    return messages + [{"role": "user", "content": QUESTION + sentence}]


def replies(sentences: list[str], shots: list[dict], max_new_tokens: int) -> list[str]:
    """Greedy replies of SmolLM2 to each sentence, reusing the KV cache of the shared prefix."""
    rendered = tokenizer.apply_chat_template(build_messages(SLOT, shots), tokenize=False,
                                             add_generation_prompt=True)
    prefix, suffix = rendered.split(SLOT)
    prefix_ids = tokenizer(prefix, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        prefix_cache = model(prefix_ids, use_cache=True).past_key_values
    answers = []
    for sentence in sentences:
        rest = tokenizer(sentence + suffix, return_tensors="pt", add_special_tokens=False).input_ids
        ids = torch.cat([prefix_ids, rest], dim=1)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 past_key_values=copy.deepcopy(prefix_cache))
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return answers


print(tokenizer.apply_chat_template(build_messages("<the sentence>", demos[:1]), tokenize=False,
                                    add_generation_prompt=True))

# %% [markdown]
# Above is the few-shot prompt with one of its four examples, exactly as the model sees it
# (the chat template adds the default system message). The scoring rule: a reply counts as
# "positive" or "negative" if that word occurs in it (ignoring case; the first one wins if both
# do); anything else, including "neutral", counts as wrong. Zero-shot replies get up to 8 tokens,
# enough for "The sentiment of this sentence is positive"; few-shot replies get 3.

# %%
def parse_label(reply: str) -> int | None:
    """1 for positive, 0 for negative, None if the reply names neither (first mention wins)."""
    text = reply.lower()
    found = [(text.find(word), label) for word, label in (("negative", 0), ("positive", 1))
             if word in text]
    return min(found)[1] if found else None


sentences = [r["text"] for r in smol_sample]
zero_replies = replies(sentences, [], max_new_tokens=8)
few_replies = replies(sentences, demos, max_new_tokens=3)

table = pd.DataFrame({
    "label": [["negative", "positive"][y] for y in y_smol],
    "sentence": [s[:60] + ("..." if len(s) > 60 else "") for s in sentences],
    "zero-shot reply": zero_replies,
    "few-shot reply": few_replies,
})
pd.set_option("display.max_colwidth", 70)
table

# %%
def accuracy(replies_: list[str], labels: np.ndarray) -> tuple[float, float, float]:
    """Overall accuracy and accuracy on the negative and on the positive sentences."""
    correct = np.array([parse_label(r) == y for r, y in zip(replies_, labels)])
    return correct.mean(), correct[labels == 0].mean(), correct[labels == 1].mean()


head = LogisticRegression(max_iter=1000).fit(emb_pool, y_pool)
smol_idx = list(range(12)) + list(range(len(test) - 12, len(test)))
prototypes = np.stack([encoder.encode(p).mean(axis=0) for p in DESCRIPTIONS["all five, averaged"]])
rows = {
    "SmolLM2 zero-shot prompt": accuracy(zero_replies, y_smol),
    "SmolLM2 few-shot prompt (4 examples)": accuracy(few_replies, y_smol),
}
for name, predictions in [
    ("MiniLM zero-shot descriptions", (emb_test[smol_idx] @ prototypes.T).argmax(axis=1)),
    ("MiniLM + head on 800 labels", head.predict(emb_test[smol_idx])),
]:
    correct = predictions == y_smol
    rows[name] = (correct.mean(), correct[y_smol == 0].mean(), correct[y_smol == 1].mean())
print(f"{'on the same 24 sentences':38s} {'accuracy':>9s} {'negatives':>10s} {'positives':>10s}")
for name, (overall, neg, pos) in rows.items():
    print(f"{name:38s} {overall:9.1%} {neg:10.1%} {pos:10.1%}")
print("zero-shot replies that name neither label:", sum(parse_label(r) is None for r in zero_replies))

# %% [markdown]
# Read the replies before the numbers. Zero-shot, the 135M model mostly ignores "Answer with one
# word" and writes a sentence, and a quarter of its replies say "neutral", which the question
# did not offer; its accuracy on these 24 is close to chance. With four examples in the prompt the
# replies take the demonstrated one-word format, and accuracy rises; the per-class columns
# show that the errors are not symmetric: the model calls many negative sentences positive.
# Such a preference for one label is a known property of in-context classification, which
# depends on the examples chosen, their order and the label words (Zhao et al., 2021).
#
# On this task, the 22M-parameter encoder with a trained head is the better tool than the
# prompted 135M chat model. The prompt-only route is what becomes strong with scale: GPT-3's
# few-shot accuracy rose steeply with model size, and its headline results came from the 175B
# model. That is not something this notebook can show with a
# 135M model, and it brings us to the claims about scale.
#
# ## Emergent abilities, and how a metric can create them
#
# Wei et al. (2022) call an ability *emergent* if it is "not present in smaller models but is
# present in larger models": on plots of task accuracy against model scale, performance stays
# near chance and then rises sharply past some size, for example on multi-step arithmetic in
# BIG-bench (Srivastava et al., 2022). Schaeffer et al. (2023) showed that many of these jumps
# come from the metric. If a task is scored by **exact match** on an answer of $L$ tokens, and
# the model gets each token right with probability $p$ independently, the exact-match accuracy
# is $p^L$. When $p$ improves smoothly with scale, $p^L$ stays near zero for a long time and then
# shoots up. Scored per token, or by a continuous metric, the same models improve smoothly, and
# the "emergence" disappears.
#
# The figure below is arithmetic, not a measurement of any model: we assume a per-token
# accuracy that rises smoothly (a logistic curve in log-compute) and plot what each metric
# would report.

# %%
log_compute = np.linspace(18, 26, 200)  # an assumed x axis: log10 of training FLOPs
per_token = 1 / (1 + np.exp(-(log_compute - 21.5)))  # assumption: smooth improvement
fig, ax = plt.subplots(figsize=(7.5, 4))
ax.plot(log_compute, per_token, label="per-token accuracy p (assumed, smooth)")
for length in (5, 20):
    ax.plot(log_compute, per_token**length, label=f"exact match on {length} tokens: p^{length}")
ax.set(xlabel="log10 training compute (illustrative)", ylabel="accuracy",
       title="The same smooth improvement, scored two ways")
ax.legend(loc="upper left", fontsize=8)
plt.tight_layout()
plt.show()
for length in (5, 20):
    above = log_compute[per_token**length > 0.5][0]
    print(f"exact match on {length:2d} tokens passes 50% at log10 C = {above:.2f} "
          f"(per-token accuracy there: {1 / (1 + np.exp(-(above - 21.5))):.3f})")

# %% [markdown]
# The longer the answer, the later and the sharper the exact-match curve turns up, although
# nothing sudden happened underneath. This does not show that no ability is ever emergent;
# Schaeffer et al. argue that many reported cases are explained by the metric, and the debate
# continues. The practical lesson is to look at continuous metrics (log-probabilities,
# per-token accuracy) before concluding that something appears abruptly with scale.
#
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Nearest centroid with normalised centroids
#
# The `nearest_centroid` above compares sentences with raw class averages. Write
# `cosine_centroid(train_x, train_y, test_x)` that first scales each class centroid to unit
# length, then predicts the class with the larger cosine similarity (0 or 1 for each row of
# `test_x`). The check compares it with a direct computation on random data and on the
# embeddings.

# %% tags=["solution"]
def cosine_centroid(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Predict the class whose unit-length centroid has the largest cosine with each row."""
    # BEGIN SOLUTION
    centroids = np.stack([train_x[train_y == c].mean(axis=0) for c in (0, 1)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    norms = np.linalg.norm(test_x, axis=1, keepdims=True)
    return (test_x / norms @ centroids.T).argmax(axis=1)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_equal, check_shape, passed

check_rng = np.random.default_rng(1)
tx = check_rng.normal(size=(40, 5)) + np.repeat([[3, 0, 0, 0, 0], [0, 0.2, 0, 0, 0]], 20, axis=0)
ty = np.repeat([0, 1], 20)
qx = check_rng.normal(size=(30, 5)) * 2
c0, c1 = tx[ty == 0].mean(0), tx[ty == 1].mean(0)
expected = np.array([int(q @ c1 / np.linalg.norm(c1) > q @ c0 / np.linalg.norm(c0)) for q in qx])
got = cosine_centroid(tx, ty, qx)
check_shape(got, (30,), "cosine_centroid")
check_equal(np.asarray(got), expected, "cosine_centroid (random data)")
check(not np.array_equal(expected, nearest_centroid(tx, ty, qx)), "the random test case",
      "unnormalised and normalised centroids to disagree somewhere (a meaningful test)")
check_equal(np.asarray(cosine_centroid(emb_pool, y_pool, emb_test[:50])),
            (emb_test[:50] @ np.stack([emb_pool[y_pool == c].mean(0) / np.linalg.norm(emb_pool[y_pool == c].mean(0))
                                       for c in (0, 1)]).T).argmax(1),
            "cosine_centroid (embeddings)")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Label descriptions of your own
#
# Write two lists of phrasings, `my_negative` and `my_positive` (at least two phrasings each),
# for zero-shot classification with `zero_shot_accuracy`. The check measures their accuracy on
# the **pool** (not the test set, so that you do not tune on the test set) and asks for at
# least 72%. Try phrasings that mention what the sentences are (reviews, opinions, tweets).

# %% tags=["solution"]
my_negative = None
my_positive = None
# BEGIN SOLUTION
my_negative = ["This is a negative review.", "A negative opinion: I did not like it.",
               "This text expresses a negative sentiment."]
my_positive = ["This is a positive review.", "A positive opinion: I liked it.",
               "This text expresses a positive sentiment."]
# END SOLUTION

# %% tags=["check"]
from shared.exercises import check_in_range, check_type

check_type(my_negative, list, "my_negative")
check_type(my_positive, list, "my_positive")
check(len(my_negative) >= 2 and len(my_positive) >= 2, "label descriptions",
      "at least two phrasings per class")
my_accuracy = zero_shot_accuracy([my_negative, my_positive], emb_pool, y_pool)
print(f"your descriptions on the pool: {my_accuracy:.1%}")
check_in_range(my_accuracy, 0.72, 1.0, "zero-shot accuracy of your descriptions on the pool")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: When does exact match pass 50%?
#
# Under the independence assumption of the emergence section, exact-match accuracy on an
# $L$-token answer is $p^L$. Write `token_accuracy_needed(target, length)`: the per-token
# accuracy $p$ for which exact match equals `target`. Then set `p_needed_10` to the per-token
# accuracy at which a 10-token answer is exactly right half of the time.

# %% tags=["solution"]
def token_accuracy_needed(target: float, length: int) -> float:
    """Per-token accuracy p with p ** length == target."""
    # BEGIN SOLUTION
    return target ** (1 / length)
    # END SOLUTION


p_needed_10 = None
# BEGIN SOLUTION
p_needed_10 = token_accuracy_needed(0.5, 10)
# END SOLUTION

# %% tags=["check"]
from shared.exercises import check_close, check_function

check_function(token_accuracy_needed, [((0.25, 2), 0.5), ((0.5, 1), 0.5), ((0.9**7, 7), 0.9)],
               "token_accuracy_needed")
check_close(p_needed_10, 0.5 ** 0.1, "p_needed_10")
check_close(p_needed_10**10, 0.5, "p_needed_10 ** 10")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - Zero-shot classification with a sentence encoder needs only a description of each label;
#   on clear-cut sentiment it reached 72%, well above chance, and the wording of the
#   descriptions moved it by about 14 points.
# - Few-shot classifiers on embeddings start near chance with one or two examples per class and
#   vary from draw to draw; here a zero-shot description was worth a few dozen labelled examples
#   per class, and a head trained on all 800 labels did best.
# - A 135M chat model prompted zero-shot often ignored the requested format and was near
#   chance; four in-context examples fixed the format and raised accuracy, with a bias towards
#   one label. Always read the raw replies and state the scoring rule.
# - "Emergent" jumps in accuracy with scale can come from all-or-nothing metrics: $p^L$ turns a
#   smooth per-token improvement into a sudden one. Check continuous metrics first.
#
# Next: [limitations](04-limitations), measured: hallucination, knowledge cutoff and bias.
#
# ## References
#
# - T. Brown et al., "Language models are few-shot learners", NeurIPS 2020.
#   https://arxiv.org/abs/2005.14165
# - A. Radford et al., "Language models are unsupervised multitask learners", 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - C. Raffel et al., "Exploring the limits of transfer learning with a unified text-to-text
#   transformer" (T5), JMLR 2020. https://arxiv.org/abs/1910.10683
# - J. Wei et al., "Emergent abilities of large language models", TMLR 2022.
#   https://arxiv.org/abs/2206.07682
# - R. Schaeffer, B. Miranda, S. Koyejo, "Are emergent abilities of large language models a
#   mirage?", NeurIPS 2023. https://arxiv.org/abs/2304.15004
# - A. Srivastava et al., "Beyond the imitation game: quantifying and extrapolating the
#   capabilities of language models" (BIG-bench), 2022. https://arxiv.org/abs/2206.04615
# - T. Z. Zhao et al., "Calibrate before use: improving few-shot performance of language
#   models", ICML 2021. https://arxiv.org/abs/2102.09690
# - W. Yin, J. Hay, D. Roth, "Benchmarking zero-shot text classification: datasets, evaluation
#   and entailment approach", EMNLP 2019. https://arxiv.org/abs/1909.00161
# - N. Reimers, I. Gurevych, "Sentence-BERT: sentence embeddings using Siamese BERT-networks",
#   EMNLP 2019. https://arxiv.org/abs/1908.10084 ; model card of all-MiniLM-L6-v2:
#   https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2
# - W. Wang et al., "MiniLM: deep self-attention distillation for task-agnostic compression of
#   pre-trained transformers", NeurIPS 2020. https://arxiv.org/abs/2002.10957
# - L. Ben Allal et al., "SmolLM2: when smol goes big", 2025. https://arxiv.org/abs/2502.02737
# - C. J. Hutto, E. Gilbert, "VADER: a parsimonious rule-based model for sentiment analysis of
#   social media text", ICWSM 2014 (the rated sentences). https://github.com/cjhutto/vaderSentiment
# - Hugging Face, "Task guides" (transformers documentation).
#   https://huggingface.co/docs/transformers/tasks/sequence_classification
