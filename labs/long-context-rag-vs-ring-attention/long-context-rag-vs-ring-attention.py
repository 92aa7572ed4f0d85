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
# # Lab: needle in a haystack, retrieval vs full long-context attention
#
# A model that "supports 128k tokens" may still fail to use them: facts buried in the middle of
# a long input are often missed (Liu et al. 2023), and the needle-in-a-haystack test (Kamradt
# 2023) became the standard way to check. There are two ways to answer a question about a long
# document. **Retrieval** cuts it into chunks, embeds each chunk once, and reads only the few
# chunks closest to the question (Lewis et al. 2020). **Full long-context attention** puts the
# whole document in the context and lets attention find the answer, at a cost quadratic in the
# length, which blockwise and ring attention make fit in memory. In this lab you build both,
# plant facts at controlled depths in long stretches of Shakespeare, and measure accuracy, time
# and peak memory side by side.
#
# **Learning objectives**
# - Build a retrieval pipeline: a chunker, an embedding index with the MiniLM sentence encoder,
#   top-$k$ cosine search and a reader.
# - Build an exact full-context reader: one attention head over every token of the document,
#   computed with ring attention, that finds a fact by matching its context.
# - Run a needle-in-a-haystack test over document length and needle depth, and compute
#   recall@$k$.
# - Compare accuracy, time and peak memory of the two systems, and say what each number does and
#   does not show.
#
# **Prerequisites:** [Long context: sparse, blockwise and ring attention](../../modules/20-advanced-topics/02-long-context-ring-attention)
# (blockwise and ring attention, `peak_memory_bytes`) and
# [embeddings](../../modules/03-data-and-tokenization/05-embeddings) (sentence embeddings and
# cosine similarity).
#
# **Estimated time:** 90 minutes.

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
import re
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

# transformers imports tqdm, which warns that ipywidgets (progress bars in Jupyter) is absent.
warnings.filterwarnings("ignore", message="IProgress not found")
import transformers  # noqa: E402

import shared
from shared import attention as A
from shared.exercises import check, check_close, check_equal, check_function, passed

shared.seed_everything(0)
# One thread: the timings compare two systems, and a second thread on a shared machine mostly
# measures the scheduler.
torch.set_num_threads(1)
print(shared.environment_summary("numpy", "sentence-transformers", "transformers"))
transformers.logging.disable_progress_bar()  # no weight-loading progress bar in the output
MIB = 2**20

# %% [markdown]
# ## The haystack
#
# The haystack is five tragedies from the course's Shakespeare corpus (Globe edition), one line
# of verse or prose per line. Documents of different lengths are prefixes of it, so that a
# longer document contains the shorter ones.

# %%
works = shared.assets.corpus("shakespeare")
PLAYS = ["Hamlet", "Macbeth", "King Lear", "Othello", "Julius Caesar"]
haystack_lines = [line.strip() for play in PLAYS for line in works[play].splitlines()
                  if line.strip()]
print(f"{len(haystack_lines):,} lines, {sum(len(l.split()) for l in haystack_lines):,} words")
print("\n".join(haystack_lines[200:204]))

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The chunker
#
# Retrieval needs the document cut into chunks small enough to embed (MiniLM reads at most 256
# tokens) and large enough to hold a fact with its context. Write `chunk_lines(lines, max_words)`
# that packs consecutive lines greedily: add lines to the current chunk while its word count
# stays at most `max_words`; when the next line would exceed it, close the chunk and start a new
# one with that line. A single line longer than `max_words` becomes a chunk of its own. Lines
# inside a chunk are joined with `"\n"`; no line is split, dropped or reordered.

# %% tags=["solution"]
def chunk_lines(lines: list[str], max_words: int) -> list[str]:
    """Pack consecutive lines into chunks of at most `max_words` words (greedy)."""
    # BEGIN SOLUTION
    chunks, current, count = [], [], 0
    for line in lines:
        words = len(line.split())
        if current and count + words > max_words:
            chunks.append("\n".join(current))
            current, count = [], 0
        current.append(line)
        count += words
    if current:
        chunks.append("\n".join(current))
    return chunks
    # END SOLUTION


# %% tags=["check"]
check_function(chunk_lines, [
    ((["a b", "c d e", "f", "g h i j"], 5), ["a b\nc d e", "f\ng h i j"]),
    ((["a b c d e f g", "h"], 3), ["a b c d e f g", "h"]),
    ((["one", "two", "three"], 10), ["one\ntwo\nthree"]),
    (([], 4), []),
], "chunk_lines")
sample = chunk_lines(haystack_lines[:2000], 64)
check_equal("\n".join(sample).split("\n"), haystack_lines[:2000],
            "chunk_lines: lines kept in order")
sizes = [len(c.split()) for c in sample]
check(all(s <= 64 or "\n" not in c for s, c in zip(sizes, sample)), "chunk_lines",
      "every chunk of several lines to have at most 64 words")
next_line_words = [len(c.split("\n")[0].split()) for c in sample[1:]]
check(all(size + more > 64 for size, more in zip(sizes, next_line_words)), "chunk_lines",
      "each chunk to be closed only when the next line would not fit (greedy)")
passed("Exercise 1")

# %% [markdown]
# ## Needles
#
# A needle is one sentence, "The secret code of the blue door is 1847.", inserted between two
# lines in the middle of a chunk; the question is "What is the secret code of the blue door?".
# Each document gets one needle at each of six depths, 0% (first chunk) to 100% (last chunk),
# each with a different colour and object, so the other needles are distractors. Codes are four-
# digit numbers that the MiniLM tokenizer keeps as a single token; that lets the attention
# reader below output a code as one token. Two trials with different needles per length average
# out luck. The chunk boundaries are fixed before planting, so that the chunks without a needle
# are the same in every document and their embeddings are computed once.

# %%
CHUNK_WORDS = 64
DOC_CHUNKS = [12, 24, 48, 96]  # about 1k to 9k tokens; [12, ..., 192, 384] goes to 37k tokens
DEPTHS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
TRIALS = 2  # more trials give smoother accuracy curves, at the cost of more needle chunks
COLOURS = ["blue", "red", "green", "golden", "silver", "black"]
OBJECTS = ["door", "box", "key", "ring", "lamp", "gate"]

base_chunks = chunk_lines(haystack_lines, CHUNK_WORDS)[:max(DOC_CHUNKS)]
encoder = shared.assets.sentence_encoder()
tokenizer = encoder.tokenizer
vocabulary = tokenizer.get_vocab()
single_token_codes = [n for n in range(1600, 2000) if str(n) in vocabulary]


def plant_needles(n_chunks: int, depths: list[float], seed: int) -> tuple[list[str], list[dict]]:
    """The first n_chunks base chunks with one needle per depth; returns (chunks, needles)."""
    rng = random.Random(seed)
    chunks = list(base_chunks[:n_chunks])
    pairs = rng.sample([(c, o) for c in COLOURS for o in OBJECTS], len(depths))
    needles = []
    for depth, (colour, thing) in zip(depths, pairs):
        code = str(rng.choice(single_token_codes))
        where = round(depth * (n_chunks - 1))
        lines = chunks[where].split("\n")
        lines.insert(len(lines) // 2, f"The secret code of the {colour} {thing} is {code}.")
        chunks[where] = "\n".join(lines)
        needles.append({"depth": depth, "chunk": where, "code": code,
                        "question": f"What is the secret code of the {colour} {thing}?",
                        "answer_prefix": f"The secret code of the {colour} {thing} is"})
    return chunks, needles


documents = {(n, trial): plant_needles(n, DEPTHS, seed=1000 * trial + n)
             for n in DOC_CHUNKS for trial in range(TRIALS)}
doc_tokens = {n: len(tokenizer("\n".join(documents[n, 0][0]), add_special_tokens=False,
                               verbose=False)["input_ids"]) for n in DOC_CHUNKS}
print(f"{len(single_token_codes)} single-token codes; documents of "
      + ", ".join(f"{n} chunks = {doc_tokens[n]:,} tokens" for n in DOC_CHUNKS))
example_chunks, example_needles = documents[DOC_CHUNKS[0], 0]
print(f"\nchunk {example_needles[2]['chunk']} of the shortest document, with its needle:\n"
      + example_chunks[example_needles[2]["chunk"]])

# %% [markdown]
# ## System A: retrieval
#
# The index holds one 384-dimensional unit vector per chunk (all-MiniLM-L6-v2; Reimers &
# Gurevych 2019). Because every document is a prefix of the longest, indexing proceeds in
# increments: the first 12 chunks, then chunks 12 to 24, and so on; the time to index a document
# of $n$ chunks is the sum of the increments up to $n$, as if it were indexed from scratch.
# Each increment runs under the memory profiler (`peak_memory_bytes`); the encoder's few hundred
# large operations make the profiler's own cost negligible, so the same run gives the time. The
# chunks that hold needles are embedded separately and replace their plain versions.

# %%
def encode(texts: list[str]) -> torch.Tensor:
    return encoder.encode(texts, batch_size=32, convert_to_tensor=True)


base_index = torch.empty(0, 384)
index_seconds, index_peak_mib, elapsed, peak = {}, {}, 0.0, 0.0
for n in DOC_CHUNKS:
    box = {}
    start = time.perf_counter()
    new_chunks = base_chunks[len(base_index):n]
    increment_peak = A.peak_memory_bytes(lambda: box.setdefault("v", encode(new_chunks)))
    elapsed += time.perf_counter() - start
    peak = max(peak, increment_peak / MIB)
    base_index = torch.cat([base_index, box["v"]])
    index_seconds[n], index_peak_mib[n] = elapsed, peak


def document_index(n_chunks: int, trial: int) -> torch.Tensor:
    """The index of one document: base embeddings, with the needle chunks re-embedded."""
    chunks, needles = documents[n_chunks, trial]
    where = sorted({needle["chunk"] for needle in needles})
    index = base_index[:n_chunks].clone()
    index[where] = encode([chunks[i] for i in where])
    return index


indexes = {key: document_index(*key) for key in documents}
print("indexing time (s):", {n: round(s, 2) for n, s in index_seconds.items()})
print("peak memory while indexing (MiB):", {n: round(m, 1) for n, m in index_peak_mib.items()})

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Top-$k$ cosine retrieval
#
# Write `top_k_cosine(query, matrix, k)`: the indices of the `k` rows of `matrix` (shape
# `(rows, d)`) with the highest cosine similarity to `query` (shape `(d,)`), best first, as a
# 1-D `torch.long` tensor. Do not assume the rows have unit length (the check uses rows that do
# not), and use no index library: a matrix-vector product and `torch.topk` are all it takes.
# This is exact nearest-neighbour search; at millions of chunks, approximate indexes such as
# FAISS or HNSW take its place.

# %% tags=["solution"]
def top_k_cosine(query: torch.Tensor, matrix: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k rows most cosine-similar to query, best first."""
    # BEGIN SOLUTION
    similarity = F.normalize(matrix, dim=1) @ F.normalize(query, dim=0)
    return similarity.topk(min(k, matrix.shape[0])).indices
    # END SOLUTION


# %% tags=["check"]
gen = torch.Generator().manual_seed(3)
rows = torch.randn(50, 16, generator=gen) * torch.rand(50, 1, generator=gen) * 10
probe = torch.randn(16, generator=gen)
cosines = [float(F.cosine_similarity(row, probe, dim=0)) for row in rows]
expected = torch.tensor(sorted(range(50), key=lambda i: -cosines[i])[:5])
check_equal(top_k_cosine(probe, rows, 5), expected, "top_k_cosine(probe, rows, 5)")
check_equal(top_k_cosine(rows[7], rows, 1), torch.tensor([7]), "top_k_cosine(a row itself, k=1)")
check_equal(top_k_cosine(probe, rows[:3], 3).shape, (3,), "top_k_cosine with k = number of rows")
passed("Exercise 2")

# %% [markdown]
# The reader is deterministic: a regular expression built from the question looks for
# "secret code of the *colour* *object* is *number*" in the retrieved chunks, in rank order.
# So System A answers correctly exactly when the needle's chunk is among the top $k$ = 3. This
# isolates retrieval; a language model as the reader adds its own errors, as shown after.

# %%
TOP_K = 3


def read_code(question: str, texts: list[str]) -> str | None:
    """The code stated for the question's colour and object in texts, or None."""
    subject = re.search(r"secret code of the (\w+ \w+)\?", question).group(1)
    for text in texts:
        found = re.search(rf"secret code of the {subject} is (\d+)", text)
        if found:
            return found.group(1)
    return None


rag_rows = []  # one row per question: length, depth, rank of the needle's chunk, answer, correct
query_seconds = {n: 0.0 for n in DOC_CHUNKS}
for (n, trial), (chunks, needles) in documents.items():
    start = time.perf_counter()
    question_vectors = encode([needle["question"] for needle in needles])
    for needle, vector in zip(needles, question_vectors):
        ranking = top_k_cosine(vector, indexes[n, trial], n).tolist()
        answer = read_code(needle["question"], [chunks[i] for i in ranking[:TOP_K]])
        rag_rows.append({"chunks": n, "depth": needle["depth"],
                         "rank": ranking.index(needle["chunk"]),
                         "answer": answer, "correct": answer == needle["code"]})
    query_seconds[n] += (time.perf_counter() - start) / (TRIALS * len(DEPTHS))
rag_accuracy = {n: np.mean([r["correct"] for r in rag_rows if r["chunks"] == n])
                for n in DOC_CHUNKS}
print(f"retrieval + regex reader, top {TOP_K}: accuracy by document length",
      {doc_tokens[n]: round(float(a), 2) for n, a in rag_accuracy.items()})

# %% [markdown]
# A small language model can be the reader instead. Here SmolLM2-135M-Instruct (the course's
# chat model) reads the top-ranked chunk and answers two questions about the longest document;
# these are its actual outputs:

# %%
chunks, needles = documents[max(DOC_CHUNKS), 0]
for needle in needles[1:3]:
    best = top_k_cosine(encode([needle["question"]])[0], indexes[max(DOC_CHUNKS), 0], 1).item()
    prompt = (f"Read the text and answer the question.\n\nText:\n{chunks[best]}\n\n"
              f"Question: {needle['question']} Answer with the number only.")
    reply = shared.assets.chat(prompt, max_new_tokens=24)
    print(f"{needle['question']} (true code {needle['code']})\n"
          f"  retrieved chunk {best}, {'the' if best == needle['chunk'] else 'not the'} needle's "
          f"chunk, which states: {re.findall(r'The secret code of the [^.]*', chunks[best])}\n"
          f"  SmolLM2: {reply!r}")

# %% [markdown]
# For the first question the top-ranked chunk holds the needle and SmolLM2 reads the code off
# it. For the second, the top-ranked chunk holds a *different* needle, one that shares the
# colour: retrieval matched the question on the wrong word, and SmolLM2 copied that needle's code
# into an answer worded like the question. A retrieval miss turns into a confident wrong answer,
# not an "I don't know". (The regex reader, which insists on the colour *and* the object, would
# have read nothing from that chunk and moved on to the next one.)

# %% [markdown]
# ## System B: full long-context attention
#
# Without a long-context language model that runs on a CPU, System B is one attention head,
# designed rather than trained, that reads the whole document plus the questions as one token
# sequence with exact causal attention. It does what the "induction heads" of trained
# transformers do (Olsson et al. 2022): find the earlier place where the current context
# occurred and copy the token that followed it.
#
# - **Tokens and embeddings.** The document and, after it, each question followed by its answer
#   prefix ("What is the secret code of the blue door? The secret code of the blue door is") are
#   tokenised with MiniLM's WordPiece tokenizer; each token gets MiniLM's static input embedding
#   (384 numbers, centred by subtracting the vocabulary mean).
# - **Context vectors.** $c_j$ is the sum of the embeddings of the `WINDOW` tokens ending at
#   position $j$ (Exercise 3). The head's query at $j$ is $c_j$; its key at $j$ is $c_{j-1}$, the
#   context just *before* token $j$. Both are projected to 128 dimensions by one fixed random
#   matrix (a head's $W_Q = W_K$) and normalised, so a score is a cosine similarity times the
#   scale $\beta$.
# - **Values and the answer.** The value at $j$ is a random $\pm 1$ code of token $j$'s identity
#   (64 numbers, a stand-in for a learned value and unembedding). The output at the last token of
#   an answer prefix is decoded as the vocabulary token whose code it matches best.
#
# At the end of an answer prefix the query is the context "...of the blue door is"; the key that
# matches it exactly sits on the token right after the needle's own "...of the blue door is",
# which is the code. Every position attends to every earlier one, as in a language model's
# prefill, so the cost is that of full causal attention over the document; only the question
# rows are decoded (the document rows are what a deeper model would pass to its next layer).
# The computation is `ring_attention_simulated` with 4 virtual devices: exact attention in
# memory that grows linearly with the length.

# %%
WINDOW, HEAD_DIM, VALUE_DIM = 6, 128, 64
BETA = 30.0  # the attention scale; the sweep further down shows what smaller values do
embeddings = encoder[0].auto_model.embeddings.word_embeddings.weight.detach()
embeddings = embeddings - embeddings.mean(dim=0)
gen = torch.Generator().manual_seed(0)
projection = torch.randn(embeddings.shape[1], HEAD_DIM, generator=gen) / math.sqrt(HEAD_DIM)
token_codes = torch.randn(embeddings.shape[0], VALUE_DIM, generator=gen).sign()


# %% [markdown] tags=["exercise"]
# ### Exercise 3: Context vectors
#
# Write `context_vectors(x, window)`: for `x` of shape `(n, d)`, return the `(n, d)` tensor whose
# row $j$ is the sum of rows $\max(0, j - \text{window} + 1)$ to $j$ of `x` (fewer rows at the
# start). Use one cumulative sum (`torch.cumsum`), not a Python loop over positions: the document
# has thousands of tokens. The check compares with a loop on random data.

# %% tags=["solution"]
def context_vectors(x: torch.Tensor, window: int) -> torch.Tensor:
    """Row j: the sum of x over the window of `window` positions ending at j."""
    # BEGIN SOLUTION
    totals = torch.cat([x.new_zeros(1, x.shape[1]), x.cumsum(dim=0)])  # totals[i] = sum of x[:i]
    ends = torch.arange(1, x.shape[0] + 1)
    return totals[ends] - totals[(ends - window).clamp(min=0)]
    # END SOLUTION


# %% tags=["check"]
x_test = torch.randn(40, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
for w in (1, 3, 7, 50):
    by_loop = torch.stack([x_test[max(0, j - w + 1):j + 1].sum(dim=0) for j in range(40)])
    check_close(context_vectors(x_test, w), by_loop, f"context_vectors(x, window={w})", atol=1e-10)
passed("Exercise 3")

# %% [markdown]
# With the context vectors, the head's inputs are a few lines. The check below runs the head on
# the shortest document twice, with `ring_attention_simulated` and with `vanilla_attention`
# (which materialises the score matrix), and compares the outputs.

# %%
def head_inputs(chunks: list[str], needles: list[dict]) -> tuple[torch.Tensor, ...]:
    """q, k, v of the attention head over [document; questions], and the answer positions."""
    ids = tokenizer("\n".join(chunks), add_special_tokens=False, verbose=False)["input_ids"]
    answer_positions = []
    for needle in needles:
        ids = ids + tokenizer(f"{needle['question']} {needle['answer_prefix']}",
                              add_special_tokens=False)["input_ids"]
        answer_positions.append(len(ids) - 1)
    tokens = torch.tensor(ids)
    contexts = F.normalize(context_vectors(embeddings[tokens], WINDOW) @ projection, dim=-1)
    keys = torch.cat([torch.zeros(1, HEAD_DIM), contexts[:-1]])  # key j = context before token j
    return contexts, keys, token_codes[tokens], torch.tensor(answer_positions)


def decode(outputs: torch.Tensor) -> list[str]:
    """The vocabulary tokens whose value codes best match the head's outputs."""
    return tokenizer.convert_ids_to_tokens((outputs @ token_codes.T).argmax(dim=-1).tolist())


q, k, v, answer_at = head_inputs(*documents[DOC_CHUNKS[0], 0])
with torch.no_grad():
    ring_out = A.ring_attention_simulated(q, k, v, 4, causal=True, scale=BETA)
    vanilla_out = A.vanilla_attention(q, k, v, causal=True, scale=BETA)
print(f"{q.shape[0]:,} tokens: max |ring - vanilla| = {(ring_out - vanilla_out).abs().max():.1e}")
print("answers:", decode(ring_out[answer_at]), " true:",
      [needle["code"] for needle in documents[DOC_CHUNKS[0], 0][1]])

# %% [markdown]
# Now every document, with time and peak memory. The ring is timed in one run and profiled in
# another (its thousands of small operations would make a profiled time meaningless). Vanilla
# attention, whose score matrix alone is $4n^2$ bytes, is measured up to 48 chunks.

# %%
VANILLA_MAX_CHUNKS = 48  # above this the n x n matrices take gigabytes
attention_rows, attention_seconds, attention_peak_mib, vanilla_peak_mib = [], {}, {}, {}
head_rows = {}  # the question rows of each document, kept for the analysis of BETA below
with torch.no_grad():
    for (n, trial), (chunks, needles) in documents.items():
        q, k, v, answer_at = head_inputs(chunks, needles)
        start = time.perf_counter()
        out = A.ring_attention_simulated(q, k, v, 4, causal=True, scale=BETA)
        if trial == 0:
            attention_seconds[n] = time.perf_counter() - start
            attention_peak_mib[n] = A.peak_memory_bytes(
                A.ring_attention_simulated, q, k, v, 4, causal=True, scale=BETA) / MIB
            if n <= VANILLA_MAX_CHUNKS:
                vanilla_peak_mib[n] = A.peak_memory_bytes(
                    A.vanilla_attention, q, k, v, causal=True, scale=BETA) / MIB
        for needle, answer in zip(needles, decode(out[answer_at])):
            attention_rows.append({"chunks": n, "depth": needle["depth"], "answer": answer,
                                   "correct": answer == needle["code"]})
        head_rows[n, trial] = (q[answer_at], k, v, answer_at, needles)
attention_accuracy = {n: np.mean([r["correct"] for r in attention_rows if r["chunks"] == n])
                      for n in DOC_CHUNKS}
print(f"full attention, beta={BETA:g}: accuracy by document length",
      {doc_tokens[n]: round(float(a), 2) for n, a in attention_accuracy.items()})

# %% [markdown]
# ### How sharp must the attention be?
#
# The scale $\beta$ decides how much of the softmax goes to the best-matching key. The needle's
# share is $e^{\beta s^*} / \sum_j e^{\beta s_j}$: every other token adds to the denominator,
# so at a fixed $\beta$ the share shrinks as the document grows. This is attention
# *dilution*. Chiang & Cholak (2022) proposed multiplying attention logits by the logarithm of
# the length to counter it, and context-extension methods such as YaRN (Peng et al. 2023) raise
# the attention temperature when they stretch a model's context. The question rows alone give
# the answer for any $\beta$ (each is attention of one query over the keys before it), which
# makes the sweep cheap; the first line below checks that they equal the ring's rows.

# %%
BETAS = [10.0, 15.0, 20.0, 30.0, 40.0]
tokens_axis = [doc_tokens[n] for n in DOC_CHUNKS]
length_ticks = (tokens_axis, [f"{t / 1000:.1f}k" for t in tokens_axis])


def question_attention(rows: tuple, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and weights of the question rows: each attends to every key before it."""
    queries, keys, values, answer_at, _ = rows
    visible = torch.arange(keys.shape[0])[None, :] <= answer_at[:, None]
    return A.vanilla_attention(queries, keys, values, mask=visible, scale=beta, return_weights=True)


out_check, _ = question_attention(head_rows[DOC_CHUNKS[0], 0], BETA)
print(f"question rows alone vs the ring's rows: max difference "
      f"{(out_check - ring_out[head_rows[DOC_CHUNKS[0], 0][3]]).abs().max():.1e}")

sweep_accuracy = {beta: {} for beta in BETAS}
needle_share = {beta: {} for beta in BETAS}
for beta in BETAS:
    for n in DOC_CHUNKS:
        correct, shares = [], []
        for trial in range(TRIALS):
            rows = head_rows[n, trial]
            outputs, weights = question_attention(rows, beta)
            for needle, answer, row in zip(rows[4], decode(outputs), weights):
                correct.append(answer == needle["code"])
                shares.append(float(row.max()))
        sweep_accuracy[beta][n], needle_share[beta][n] = np.mean(correct), np.mean(shares)

for beta in BETAS:
    shares = [needle_share[beta][n] for n in DOC_CHUNKS]
    accuracies = [sweep_accuracy[beta][n] for n in DOC_CHUNKS]
    print(f"beta {beta:4.0f}: largest weight " + ", ".join(f"{x:.2f}" for x in shares)
          + "; accuracy " + ", ".join(f"{x:.2f}" for x in accuracies))
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for beta in BETAS:
    axes[0].plot(tokens_axis, [needle_share[beta][n] for n in DOC_CHUNKS], "o-",
                 label=f"beta = {beta:g}")
    axes[1].plot(tokens_axis, [sweep_accuracy[beta][n] for n in DOC_CHUNKS], "o-",
                 label=f"beta = {beta:g}")
axes[0].set(xscale="log", xlabel="document length (tokens)", ylabel="largest attention weight",
            title="Attention dilution: the top key's share of the softmax")
axes[1].set(xscale="log", xlabel="document length (tokens)", ylabel="accuracy",
            title="Full-attention reader: accuracy vs length", ylim=(-0.05, 1.05))
for ax in axes:
    ax.set_xticks(*length_ticks)
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The largest attention weight shrinks with length at small $\beta$: at $\beta = 10$ it falls
# from 0.07 to 0.02 over this 7-fold range of lengths, and the head answers nothing right,
# because the rest of the softmax, spread over thousands of tokens, outweighs the needle in the
# output. At $\beta = 15$ it answers 5 of 12 questions per length, at $\beta = 20$ all but one
# (the golden-box question, where the question's own words, "...of the golden box?", also take a
# share of the attention), and from $\beta = 30$ all of them, with the largest weight steady
# near 0.64. Over lengths from 1k to 9k
# tokens accuracy is set by $\beta$ more than by length; the falling weights at small $\beta$
# show the dilution that, over a longer range, pushes a fixed scale below what the task needs.

# %% [markdown]
# ## Side by side
#
# Accuracy, time and peak memory of the two systems for each document length. Times are single
# runs on one thread on a possibly shared machine; memory is the profiler's peak of PyTorch's
# allocations (the encoder's activations for retrieval, the attention computation for the
# head). Retrieval's time is the indexing of the whole document, which is paid once and shared
# by all questions; the head's time is one pass over the document and the questions.

# %%
print(f"{'tokens':>7} | {'acc. retrieval':>14} | {'acc. attention':>14} | {'index s':>8} | "
      f"{'query s':>8} | {'ring s':>7} | {'index MiB':>9} | {'ring MiB':>8} | {'vanilla MiB':>11}")
for n in DOC_CHUNKS:
    vanilla = f"{vanilla_peak_mib[n]:11.1f}" if n in vanilla_peak_mib else f"{'not run':>11}"
    print(f"{doc_tokens[n]:>7,} | {rag_accuracy[n]:>14.2f} | {attention_accuracy[n]:>14.2f} | "
          f"{index_seconds[n]:>8.2f} | {query_seconds[n]:>8.3f} | {attention_seconds[n]:>7.2f} | "
          f"{index_peak_mib[n]:>9.1f} | {attention_peak_mib[n]:>8.1f} | {vanilla}")
longest = max(DOC_CHUNKS)
crossover = doc_tokens[longest] * index_seconds[longest] / attention_seconds[longest]
print(f"if indexing stays linear and attention quadratic, one attention layer would cost as much "
      f"as indexing at about {crossover / 1000:,.0f}k tokens")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Recall@$k$ against depth
#
# `rag_rows` holds, for every question, the depth of its needle and the `rank` of the needle's
# chunk in the retrieval ranking (0 = first). Recall@$k$ is the fraction of questions whose
# needle chunk is among the top $k$. Write `recall_at_k(rows, k, depth)` for the questions at
# one depth, then fill `recall_table`, a NumPy array of shape `(3, len(DEPTHS))` whose row `i`
# holds recall@$k$ for $k$ = 1, 3, 5 (in that order) at each depth of `DEPTHS`.

# %% tags=["solution"]
def recall_at_k(rows: list[dict], k: int, depth: float) -> float:
    """Fraction of the questions at this depth whose needle chunk ranks in the top k."""
    # BEGIN SOLUTION
    at_depth = [row for row in rows if row["depth"] == depth]
    return float(np.mean([row["rank"] < k for row in at_depth]))
    # END SOLUTION


recall_table = None
# BEGIN SOLUTION
recall_table = np.array([[recall_at_k(rag_rows, k, depth) for depth in DEPTHS] for k in (1, 3, 5)])
# END SOLUTION
print(recall_table)

# %% tags=["check"]
toy = [{"depth": 0.5, "rank": r} for r in (0, 2, 4, 9)] + [{"depth": 0.0, "rank": 1}]
check_function(recall_at_k, [((toy, 1, 0.5), 0.25), ((toy, 3, 0.5), 0.5), ((toy, 10, 0.5), 1.0),
                             ((toy, 1, 0.0), 0.0), ((toy, 2, 0.0), 1.0)], "recall_at_k")
check_equal(np.asarray(recall_table).shape, (3, len(DEPTHS)), "recall_table.shape")
ranks = np.array([[row["rank"] for row in rag_rows if row["depth"] == d] for d in DEPTHS])
check_close(recall_table, np.stack([(ranks < k).mean(axis=1) for k in (1, 3, 5)]), "recall_table")
check_close(recall_table[1].mean(), np.mean([row["correct"] for row in rag_rows]),
            "recall@3 averaged over depths (it must equal the retrieval accuracy with TOP_K = 3)")
passed("Exercise 4")

# %% [markdown]
# ## The comparison
#
# The figure puts the two systems side by side: accuracy against depth (averaged over lengths)
# and against length, then time and memory against length.

# %%
def per_length(values: dict) -> list[float]:
    return [values[n] for n in DOC_CHUNKS]


attention_by_depth = [np.mean([r["correct"] for r in attention_rows if r["depth"] == d])
                      for d in DEPTHS]
print(f"{len(rag_rows)} questions. Retrieval: recall@1 {recall_table[0].mean():.2f}, recall@3 "
      f"{recall_table[1].mean():.2f}, recall@5 {recall_table[2].mean():.2f}. Full attention "
      f"(beta={BETA:g}): accuracy {np.mean([r['correct'] for r in attention_rows]):.2f}")
fig, axes = plt.subplots(1, 4, figsize=(19, 4))
for k_index, k in enumerate((1, 3, 5)):
    axes[0].plot(DEPTHS, recall_table[k_index], "o-", label=f"retrieval, recall@{k}")
axes[0].plot(DEPTHS, attention_by_depth, "ks--", label=f"full attention (beta={BETA:g})")
axes[0].set(xlabel="needle depth (0 = start, 1 = end)", ylabel="accuracy / recall",
            title="Accuracy vs needle depth", ylim=(-0.05, 1.05))
axes[1].plot(tokens_axis, per_length(rag_accuracy), "o-", label=f"retrieval (top {TOP_K})")
axes[1].plot(tokens_axis, per_length(attention_accuracy), "ks--", label="full attention")
axes[1].set(xscale="log", xlabel="document length (tokens)", ylabel="accuracy",
            title="Accuracy vs document length", ylim=(-0.05, 1.05))
axes[2].plot(tokens_axis, per_length(index_seconds), "o-", label="retrieval: indexing")
axes[2].plot(tokens_axis, per_length(attention_seconds), "ks--", label="full attention: ring")
axes[2].set(xscale="log", yscale="log", xlabel="document length (tokens)", ylabel="time (s)",
            title="Time vs length")
axes[3].plot(tokens_axis, per_length(index_peak_mib), "o-", label="retrieval: indexing")
axes[3].plot(tokens_axis, per_length(attention_peak_mib), "ks--", label="full attention: ring")
axes[3].plot([doc_tokens[n] for n in vanilla_peak_mib], list(vanilla_peak_mib.values()), "r^:",
             label="full attention: vanilla")
axes[3].set(xscale="log", yscale="log", xlabel="document length (tokens)",
            ylabel="peak memory (MiB)", title="Peak memory vs length")
for ax in axes[1:]:
    ax.set_xticks(*length_ticks)
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# What the measurements show, and what they do not:
#
# - **Accuracy.** At $\beta = 30$ the full-attention head found all 48 needles, at every length
#   and depth: exact attention over the whole context does not lose facts in the middle by
#   itself. Retrieval with the top 3 chunks found 47 of 48, but its top-ranked chunk was the
#   right one for only about three questions in four (recall@1): a 64-word chunk is mostly
#   Shakespeare, one planted sentence does not always pull its embedding close enough to the
#   question, and a needle that shares a word with the question can outrank the right one, as
#   the SmolLM2 example showed. With 8 questions per depth one miss moves recall by 0.125, and the
#   misses show no U shape over depth: neither system has a positional bias, so the "lost in
#   the middle" effect of real language models (Liu et al. 2023), which comes from how they were
#   trained and how they encode positions, cannot appear here.
# - **Sharpness.** The head's accuracy depends on $\beta$, and at small $\beta$ the top key's
#   share of attention falls as the document grows: a trained model must learn, and keep at long
#   lengths, attention sharp enough to single out one position among thousands.
# - **Time.** Indexing time grows in proportion to the length; the attention head's time grows
#   faster, towards $n^2$. At these lengths MiniLM's six layers per token cost more than one
#   attention layer over the document (the printed crossover estimate says where that changes),
#   and a real long-context model pays the quadratic term in every head of every layer, for
#   every new document, while a retrieval index is built once and serves every question.
# - **Memory.** Ring attention keeps the head's memory nearly flat, where vanilla attention's
#   $n \times n$ matrices grow as $n^2$ (255 MiB already at 4.4k tokens). Retrieval's memory is
#   that of one encoder batch, which stops growing once the increments fill a batch of 32 chunks.
# - **Honesty about System B.** It is one designed head on static embeddings, with $\beta$ picked
#   from the sweep, and its answer prefix repeats the needle's wording, which is what makes an
#   exact match possible; a trained model has to learn to turn a question into such a query.
#   Its point is the mechanism and its costs, not a claim about any particular long-context
#   model. The lab's documents stop at 9k tokens to fit the time budget; `DOC_CHUNKS` takes
#   longer ones.

# %% [markdown]
# ## Summary
#
# - A needle-in-a-haystack test plants facts at controlled depths and asks for them; it measures
#   whether a system can *use* its context, not only whether the context fits.
# - Retrieval (chunk, embed once, top-$k$ cosine, read) is linear in the document length and
#   needs only one encoder batch of memory; its accuracy is the recall of the retriever, which a
#   single sentence in a large chunk can defeat.
# - Exact full-context attention sees every token; with blockwise or ring attention its memory
#   stays nearly flat, but its time is quadratic, and it works only if the attention is sharp
#   enough to pick one position out of many (attention dilution).
# - Practical systems combine both: retrieval to bring the right chunks into a context, and long-
#   context attention to reason over what was retrieved.
#
# ## References
#
# - G. Kamradt, "Needle in a haystack: pressure testing LLMs", 2023.
#   https://github.com/gkamradt/LLMTest_NeedleInAHaystack
# - N. F. Liu et al., "Lost in the middle: how language models use long contexts", TACL 2024
#   (arXiv 2023). https://arxiv.org/abs/2307.03172
# - P. Lewis et al., "Retrieval-augmented generation for knowledge-intensive NLP tasks",
#   NeurIPS 2020. https://arxiv.org/abs/2005.11401
# - N. Reimers, I. Gurevych, "Sentence-BERT: sentence embeddings using siamese BERT-networks",
#   EMNLP 2019. https://arxiv.org/abs/1908.10084
# - H. Liu, M. Zaharia, P. Abbeel, "Ring attention with blockwise transformers for near-infinite
#   context", 2023. https://arxiv.org/abs/2310.01889
# - M. N. Rabe, C. Staats, "Self-attention does not need O(n^2) memory", 2021.
#   https://arxiv.org/abs/2112.05682
# - T. Dao et al., "FlashAttention: fast and memory-efficient exact attention with IO-awareness",
#   NeurIPS 2022. https://arxiv.org/abs/2205.14135
# - C. Olsson et al., "In-context learning and induction heads", 2022.
#   https://arxiv.org/abs/2209.11895
# - D. Chiang, P. Cholak, "Overcoming a theoretical limitation of self-attention", ACL 2022.
#   https://aclanthology.org/2022.acl-long.527
# - B. Peng, J. Quesnelle, H. Fan, E. Shippole, "YaRN: efficient context window extension of
#   large language models", 2023. https://arxiv.org/abs/2309.00071
# - Y. Wu, M. N. Rabe, D. Hutchins, C. Szegedy, "Memorizing transformers", ICLR 2022.
#   https://arxiv.org/abs/2203.08913
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
