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
# # Inference engines: paged KV caches and continuous batching
#
# A model that generates one reply on a laptop and a service that answers thousands of users
# run the same forward pass; what differs is everything around it. A serving engine must keep
# the key/value (KV) caches of many concurrent requests in a fixed amount of accelerator
# memory, and decide at every step which requests share the next forward pass. vLLM's answer
# to the first problem, PagedAttention, stores caches in fixed-size blocks like the pages of
# virtual memory; its answer to the second, continuous batching, lets requests join and leave
# the running batch at every step. Kwon et al. (2023) report 2-4 times the throughput of the
# systems before it at the same latency. This notebook builds both ideas on the course's
# character-level GPT with `shared.serving`, measures them against static batching on a
# simulated stream of requests, and places vLLM, TensorRT-LLM and llama.cpp in the picture.
#
# **Learning objectives**
# - Compute the KV-cache memory of a request and explain where contiguous, max-length
#   preallocation wastes it; measure the waste against a paged cache.
# - Map a token position to its physical slot through a block table, and check that attention
#   read through block tables equals attention over a contiguous cache.
# - Explain iteration-level scheduling (continuous batching) and preemption, and measure its
#   throughput and latency percentiles (time to first token, end-to-end) against static
#   batching on a Poisson request stream.
# - Describe what vLLM, TensorRT-LLM and llama.cpp/GGML each optimise, and where speculative
#   decoding fits.
#
# **Prerequisites:** [multi-head attention and the KV cache](../02-transformer-architecture/04-multi-head-attention),
# [decoder-only models and generation](../02-transformer-architecture/02-decoder-only).
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
import itertools
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import shared
from shared.assets import corpus, verify_asset
from shared.checkpoints import course_model, course_tokenizer
from shared.generation import generate, speculative_generate
from shared.models import GPT, GPTConfig
from shared.paths import CACHE_DIR
from shared.serving import PagedKVCache, Request, paged_forward, poisson_requests, serve

# One thread: a small model decodes fastest on one, and the timings below are then not at the
# mercy of other jobs competing for the second core.
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("numpy", "matplotlib"))

# %% [markdown]
# ## The model and the memory a request costs
#
# The engine will serve `shakespeare-char`, the course's character-level GPT (6 layers,
# 6 heads, width 192, context 256), trained once by `make models` and loaded here from
# safetensors. Every token a request holds in its KV cache costs, in every layer, one key and
# one value vector per key/value head:
#
# $$\text{bytes per token} = 2 \times n_{layer} \times h_{kv} \times d_{head} \times
# \text{bytes per value}.$$
#
# For our model that is small. For the 13B-parameter OPT model of the PagedAttention paper
# (40 layers, width 5,120, fp16) it is 800 KB per token, 1.6 GB for one 2,048-token request:
# the cache, not the weights, decides how many requests fit on a GPU.

# %%
model = course_model("shakespeare-char")
tokenizer = course_tokenizer("shakespeare-char")
cfg = model.config
print(f"shakespeare-char: {model.num_parameters():,} parameters, {cfg.n_layer} layers, "
      f"{cfg.n_kv_head} KV heads of size {cfg.head_dim}, context {cfg.block_size}")


def kv_bytes_per_token(n_layer: int, n_kv_head: int, head_dim: int, bytes_per_value: int) -> int:
    return 2 * n_layer * n_kv_head * head_dim * bytes_per_value


ours = kv_bytes_per_token(cfg.n_layer, cfg.n_kv_head, cfg.head_dim, 4)
opt13b = kv_bytes_per_token(40, 40, 128, 2)
print(f"our model (fp32): {ours:,} bytes per token, {ours * cfg.block_size / 2**20:.2f} MiB "
      f"for a full {cfg.block_size}-token context")
print(f"OPT-13B (fp16):   {opt13b:,} bytes per token = {opt13b / 1024:.0f} KiB, "
      f"{opt13b * 2048 / 1e9:.2f} GB for 2,048 tokens")

# %% [markdown]
# A server that stores each request's cache as one contiguous tensor must size that tensor
# before it knows how long the answer will be, so it reserves the maximum length. A request
# that stops after 40 tokens then leaves the rest of its slab unused (*reservation* waste);
# slabs of different sizes leave gaps between them (*external fragmentation*). Kwon et al.
# measured that existing systems used only 20-38% of their KV memory for actual token states.
#
# ## Blocks, a free list and block tables
#
# PagedAttention borrows the operating system's answer to the same problem. The cache memory is
# cut into *blocks* of a fixed number of token slots. A free list holds the unused blocks; each
# sequence owns a *block table* that maps its logical blocks (tokens 0-15, 16-31, ...) to
# physical blocks anywhere in the pool. A sequence takes a new block only when its last one is
# full, so at most one partly filled block per sequence is wasted, and any free block fits any
# sequence: there is no external fragmentation. `shared.serving.PagedKVCache` implements this;
# here it is with a pool of 12 blocks of 4 slots and three sequences that grow in turns.

# %%
demo = PagedKVCache(n_layer=1, n_kv_head=1, head_dim=2, num_blocks=12, block_size=4)
for name in ("A", "B", "C"):
    demo.add_sequence(name)
for name, n_tokens in [("A", 3), ("B", 6), ("C", 2), ("A", 4), ("C", 5), ("B", 1)]:
    slots = demo.append(name, n_tokens)
    print(f"append {n_tokens} tokens to {name}: slots {slots.tolist()}")
for name in ("A", "B", "C"):
    print(f"sequence {name}: {demo.length(name):2d} tokens, block table {demo.block_table(name)}")
print(f"{demo.num_cached_tokens} tokens in {demo.num_reserved_slots} reserved slots "
      f"({demo.num_reserved_slots - demo.num_cached_tokens} wasted); "
      f"{demo.num_free_blocks} of {demo.num_blocks} blocks free")
demo.free_sequence("B")
demo.add_sequence("D")
demo.append("D", 9)
print(f"after B finishes and D arrives: D's block table {demo.block_table('D')}; "
      f"{demo.num_free_blocks} blocks free, B's among them")


# %%
def block_map(cache: PagedKVCache, owners: list[str]) -> np.ndarray:
    """(num_blocks, block_size) grid: which sequence holds each slot (-1 = free or unused)."""
    grid = np.full((cache.num_blocks, cache.block_size), -1)
    for i, name in enumerate(owners):
        for slot in cache.slots(name).tolist():
            grid[slot // cache.block_size, slot % cache.block_size] = i
    return grid


owners = demo.sequences
grid = block_map(demo, owners)
fig, ax = plt.subplots(figsize=(8, 2.6))
cmap = plt.get_cmap("tab10")
colors = np.ones((*grid.T.shape, 3))
for i in range(len(owners)):
    colors[grid.T == i] = cmap(i)[:3]
ax.imshow(colors, aspect="auto")
for block in range(demo.num_blocks):
    for offset in range(demo.block_size):
        if grid[block, offset] >= 0:
            ax.text(block, offset, owners[grid[block, offset]], ha="center", va="center",
                    fontsize=8, color="white")
ax.set_xticks(range(demo.num_blocks))
ax.set(xlabel="physical block", ylabel="slot in block",
       title="A paged KV cache: blocks of A, C and D interleave in the pool (white = free)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The physical blocks of one sequence are scattered and out of order; only the block table
# knows the sequence. Token position $p$ of a sequence lives in slot
#
# $$\text{slot}(p) = \text{table}[\lfloor p / b \rfloor] \cdot b + (p \bmod b)$$
#
# for block size $b$. The only waste is the unfilled end of each sequence's last block: before
# B finished, three sequences of 7 tokens held 21 tokens in 24 reserved slots, one slot wasted
# each.
#
# ## Attention through a block table
#
# A block table changes where keys and values live, never what attention computes.
# `shared.serving.paged_forward` runs the GPT on a *ragged* batch: each sequence brings its new
# tokens (a whole prompt, or the one token it is decoding); all new tokens of all sequences go
# through the embeddings, linear layers and norms as one flat batch, and attention gathers each
# sequence's keys and values through its block table. We prefill three prompts of different
# lengths in one call, decode a few steps together, and compare every step's logits with the
# same model run on each sequence alone with a contiguous `shared.models.KVCache`.

# %%
text = corpus("tinyshakespeare")
held_out_ids = tokenizer.encode(text[-100_000:])  # prompts from the last 100k characters
prompts = [held_out_ids[0:19], held_out_ids[500:547], held_out_ids[900:905]]
cache = PagedKVCache.for_model(model, num_blocks=32, block_size=16)
contiguous = [model.new_cache(1, 80) for _ in prompts]
for i in range(3):
    cache.add_sequence(i)

max_diff = 0.0
feeds = prompts
with torch.no_grad():
    for step in range(8):
        paged = paged_forward(model, cache, [0, 1, 2], feeds)
        for i in range(3):
            alone = model(torch.tensor([feeds[i]]), cache=contiguous[i]).logits[0, -1]
            max_diff = max(max_diff, float((paged[i] - alone).abs().max()))
        feeds = [[int(t)] for t in paged.argmax(dim=-1)]  # greedy: feed back the chosen token
print(f"8 steps (1 prefill + 7 decodes) of 3 sequences: max |paged - contiguous| logit "
      f"difference = {max_diff:.1e}")
print("block tables:", {i: cache.block_table(i) for i in range(3)},
      f"lengths {[cache.length(i) for i in range(3)]}")

# %% [markdown]
# The two agree to float rounding. Batching the linear layers over all new tokens is what
# Orca (Yu et al., 2022) calls *selective batching*: matrix products do not care which sequence
# a token came from, so they batch; only attention needs per-sequence context. vLLM's
# PagedAttention kernel does the gather of keys and values block by block on the GPU, in the
# same kernel as the attention itself.
#
# ## A stream of requests
#
# To compare schedulers we need traffic. `shared.serving.poisson_requests` draws a stream:
#
# - arrivals form a Poisson process (independent exponential gaps);
# - prompt lengths are uniform on 16-64 characters, each prompt a window of held-out
#   Shakespeare;
# - output lengths are log-uniform on 8-160 tokens (the logarithm is uniform), so short
#   answers are common and long ones rare, as in chat traffic.
#
# The rate is set against this machine's speed, so that the experiment means the same on a
# fast and a slow computer: we time a decode step with 8 sequences and offer 1.5 times the
# traffic that 8 sequences at a time could absorb. (A Poisson stream at another rate is the
# same stream with its times rescaled, so the requests themselves do not change.)

# %%
N_REQUESTS = 40  # 500 or more for stable p99 latencies (a few minutes)
PROMPT_LEN, OUTPUT_LEN = (16, 64), (8, 160)
unit_stream = poisson_requests(held_out_ids, N_REQUESTS, 1.0, prompt_len=PROMPT_LEN,
                               output_len=OUTPUT_LEN, seed=0)
mean_output = np.mean([r.max_new_tokens for r in unit_stream])

calib = PagedKVCache.for_model(model, num_blocks=64, block_size=16)
for i in range(8):
    calib.add_sequence(i)
paged_forward(model, calib, list(range(8)), [held_out_ids[40 * i : 40 * i + 40] for i in range(8)])
start = time.perf_counter()
for _ in range(10):
    paged_forward(model, calib, list(range(8)), [[1]] * 8)
decode_step_s = (time.perf_counter() - start) / 10
rate = 1.5 * (8 / decode_step_s) / mean_output  # requests per second
requests = [Request(r.request_id, r.prompt, r.max_new_tokens, r.arrival_time / rate)
            for r in unit_stream]
total_new = sum(r.max_new_tokens for r in requests)
print(f"decode step with 8 sequences: {decode_step_s * 1e3:.1f} ms (measured) -> "
      f"{8 / decode_step_s:.0f} tokens/s at batch 8")
print(f"{N_REQUESTS} requests, {total_new:,} tokens to generate (mean {mean_output:.1f} per "
      f"request); arrival rate {rate:.1f} requests/s over {requests[-1].arrival_time:.2f} s")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
axes[0].plot([r.arrival_time for r in requests], range(1, N_REQUESTS + 1), drawstyle="steps-post")
axes[0].set(xlabel="time (s)", ylabel="requests arrived", title="Poisson arrivals")
axes[1].hist([len(r.prompt) for r in requests], bins=12, color="tab:orange")
axes[1].set(xlabel="prompt length (characters)", ylabel="requests",
            title="Prompt lengths (uniform 16-64)")
axes[2].hist([r.max_new_tokens for r in requests], bins=np.geomspace(8, 160, 12), color="tab:green")
axes[2].set(xscale="log", xlabel="output length (tokens, log scale)", ylabel="requests",
            title="Output lengths (log-uniform 8-160)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Static and continuous batching
#
# A *static* batcher works the way `model.generate` on a padded batch does: take the requests
# that are waiting (up to the batch size), run them together until the longest one is done,
# then take the next batch. A request that arrives one step after a batch started waits for
# the whole batch, and slots freed by short answers stay empty until the longest answer ends.
#
# *Continuous batching* (iteration-level scheduling, Orca) schedules at every step instead:
# a finished sequence leaves at once and a waiting request takes its place in the very next
# forward pass, where its prompt is prefilled alongside the other sequences' decode tokens.
# `shared.serving.serve` implements both on the same paged cache and the same `paged_forward`,
# so the comparison isolates the scheduling policy. Its clock is advanced by the measured
# duration of each step, and jumps ahead when the server is idle, so a minute of traffic
# replays in seconds; latencies are measured compute times laid out on the arrival timeline.
#
# We give all engines the same KV memory: 128 blocks of 16 slots, 2,048 token slots, enough
# for 8 requests at the model's full 256-token context. Three engines:
#
# 1. **static, batch 8**: each batch reserves blocks for prompt plus maximum output;
# 2. **continuous, batch 8**: what a continuous batcher could run if it reserved a contiguous
#    256-token slab per request (2,048 / 256 = 8 slabs);
# 3. **continuous + paged, batch up to 32**: blocks are taken only as tokens arrive, so the same
#    memory holds as many sequences as their actual lengths allow; when it runs out, the most
#    recently admitted sequence is preempted and recomputed later (vLLM's default policy).
#
# Each engine runs twice, interleaved, so that a slow moment of this shared machine does not
# land on one engine only.

# %%
NUM_BLOCKS, BLOCK_SIZE = 128, 16
ENGINES = {
    "static, batch 8": dict(policy="static", max_batch_size=8),
    "continuous, batch 8": dict(policy="continuous", max_batch_size=8),
    "continuous + paged, batch 32": dict(policy="continuous", max_batch_size=32),
}
REPEATS = 2  # 5 for tighter figures
runs: dict[str, list] = {name: [] for name in ENGINES}
for _ in range(REPEATS):
    for name, options in ENGINES.items():
        runs[name].append(serve(model, requests, num_blocks=NUM_BLOCKS, block_size=BLOCK_SIZE,
                                **options))

header = (f"{'engine':30s} {'tokens/s':>9s} {'batch':>6s} {'TTFT p50':>9s} {'p90':>7s} "
          f"{'p99':>7s} {'E2E p50':>8s} {'p90':>7s} {'p99':>7s} {'preempt':>7s}")
print(header)
summaries = {}
for name, results in runs.items():
    for result in results:
        s = result.summary()
        print(f"{name:30s} {s['throughput_tok_s']:9.0f} {s['mean_batch']:6.1f} "
              f"{s['ttft_p50_s']:9.3f} {s['ttft_p90_s']:7.3f} {s['ttft_p99_s']:7.3f} "
              f"{s['e2e_p50_s']:8.3f} {s['e2e_p90_s']:7.3f} {s['e2e_p99_s']:7.3f} "
              f"{s['preemptions']:7.0f}")
    summaries[name] = {k: float(np.median([r.summary()[k] for r in results]))
                       for k in results[0].summary()}
static, cont8, paged32 = (summaries[name] for name in ENGINES)
print(f"\nthroughput, median of {REPEATS} runs: continuous/static = "
      f"{cont8['throughput_tok_s'] / static['throughput_tok_s']:.2f}x, continuous + paged/static = "
      f"{paged32['throughput_tok_s'] / static['throughput_tok_s']:.2f}x")
print(f"median time to first token: static {static['ttft_p50_s']:.2f} s, continuous "
      f"{cont8['ttft_p50_s']:.2f} s, continuous + paged {paged32['ttft_p50_s']:.2f} s")

# %% [markdown]
# Timings vary from run to run on a shared machine (compare the two rows of each engine); the
# ordering of the engines does not. Continuous batching runs about twice as many sequences per
# step as static batching (the "batch" column: static batches start with whatever has arrived
# and empty out as their short answers finish), so it generates more tokens per second, the
# queue drains sooner, and requests wait less for their first token. The paged engine fits
# several times more sequences into the same memory, and a decode step over 32 sequences costs
# far less than 4 steps over 8, because small matrix products are dominated by fixed costs:
# throughput rises again and the time to first token almost vanishes. Each of its steps takes
# longer, though, so a request that is running generates more slowly: its median end-to-end
# latency is no better than continuous batching at batch 8. Batch size trades per-request
# speed for throughput, which is why engines cap it (vLLM's `max_num_seqs`).
#
# Tokens first: a scheduler that changes the output is broken. Greedy decoding of each request
# alone with `shared.generation.generate` is the reference; every engine must produce exactly
# its tokens. The same loop, timed, is the throughput of a server with no batching at all.

# %%
start = time.perf_counter()
reference = {r.request_id: generate(model, torch.tensor([r.prompt]), r.max_new_tokens)[0,
             len(r.prompt):].tolist() for r in requests}
sequential_s = time.perf_counter() - start
for name, results in runs.items():
    same = all(rec.tokens == reference[rec.request_id] for res in results for rec in res.requests)
    print(f"{name:30s} tokens equal sequential generation: {same}")
    assert same, name
print(f"one request at a time (no batching, arrivals ignored): {total_new / sequential_s:.0f} "
      f"tokens/s (measured)")
print("\nsample:", repr(tokenizer.decode(list(requests[0].prompt))), "->",
      repr(tokenizer.decode(reference[0])))

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
for ax, (name, results) in zip(axes, runs.items()):
    result = results[0]
    for rec in result.requests:
        ax.plot([rec.arrival_time, rec.first_token_time], [rec.request_id] * 2, color="tab:red",
                lw=2)
        ax.plot([rec.first_token_time, rec.finish_time], [rec.request_id] * 2, color="tab:blue",
                lw=2)
    ax.set(xlabel="time (s)", title=f"{name}\n{result.throughput:.0f} tokens/s")
axes[0].set_ylabel("request id (in arrival order)")
axes[0].plot([], [], color="tab:red", label="waiting for first token")
axes[0].plot([], [], color="tab:blue", label="generating")
axes[0].legend(loc="lower right")
fig.suptitle("Each request's life: queueing (red) then generation (blue), first run")
plt.tight_layout()
plt.show()

# %%
fig, ax = plt.subplots(figsize=(7, 4))
quantiles = [50, 90, 99]
width = 0.13
for j, (name, s) in enumerate(summaries.items()):
    ttft = [s[f"ttft_p{q}_s"] for q in quantiles]
    e2e = [s[f"e2e_p{q}_s"] for q in quantiles]
    x = np.arange(3)
    ax.bar(x + (j - 1) * width * 2 - width / 2, ttft, width, color=plt.get_cmap("tab10")(j),
           alpha=0.5, label=f"{name}: TTFT")
    ax.bar(x + (j - 1) * width * 2 + width / 2, e2e, width, color=plt.get_cmap("tab10")(j),
           label=f"{name}: end-to-end")
ax.set_xticks(np.arange(3), [f"p{q}" for q in quantiles])
ax.set(xlabel="percentile", ylabel="latency (s, measured)",
       title=f"Latency percentiles, median of {REPEATS} runs")
ax.legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Where the memory goes
#
# Each step of the paged engine recorded how many tokens its cache held and how many slots its
# allocated blocks reserved. The same running sequences with a contiguous, max-length slab
# each would have reserved 256 slots per sequence. The ratio of tokens held to slots reserved
# is the memory utilisation; one minus it is what fragmentation and reservation waste.

# %%
paged_run = runs["continuous + paged, batch 32"][0]
times = np.array([s.end_time for s in paged_run.steps])
held = np.array([s.cached_tokens for s in paged_run.steps])
reserved_paged = np.array([s.reserved_slots for s in paged_run.steps])
running = np.array([s.n_running for s in paged_run.steps])
reserved_slab = running * cfg.block_size
busy = running > 0
paged_util = held[busy].sum() / reserved_paged[busy].sum()
slab_util = held[busy].sum() / reserved_slab[busy].sum()
print(f"memory utilisation over the run: paged {paged_util:.1%}, contiguous 256-slot slabs "
      f"{slab_util:.1%}")
print(f"largest batch the paged engine ran: {running.max()} sequences in "
      f"{NUM_BLOCKS * BLOCK_SIZE:,} slots (slabs: {NUM_BLOCKS * BLOCK_SIZE // cfg.block_size})")
print(f"mean waste per sequence in the paged cache: "
      f"{(reserved_paged - held)[busy].sum() / running[busy].sum():.1f} slots "
      f"(at most {BLOCK_SIZE - 1}, the unfilled end of the last block)")

fig, ax = plt.subplots(figsize=(8, 3.8))
ax.plot(times, held, label="tokens held (needed)")
ax.plot(times, reserved_paged, label=f"paged: slots in allocated blocks (block size {BLOCK_SIZE})")
ax.plot(times, reserved_slab, label="contiguous: 256-slot slab per running sequence")
ax.axhline(NUM_BLOCKS * BLOCK_SIZE, color="gray", ls="--", label="KV memory of the server")
ax.set(xlabel="time (s)", ylabel="KV cache (token slots)",
       title="KV memory needed vs reserved, continuous + paged engine")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The paged cache reserves only slightly more than it holds, whereas max-length slabs for the
# same sequences would need several times the server's memory: a contiguous server must run
# fewer sequences instead, which is engine 2 above. The block size trades this waste (at most
# $b - 1$ slots per sequence) against the cost of gathering many small blocks; vLLM uses 16
# tokens by default.
#
# Paging brings two more savings that this notebook does not exercise. Sequences can *share*
# blocks: the prompt of a request sampled several times (parallel sampling, beam search) or a
# system prompt common to many requests is stored once, with a reference count and
# copy-on-write when a sequence changes a shared block (vLLM's prefix caching). And a
# preempted sequence's blocks can be swapped to CPU memory instead of recomputed.
#
# ## The engines
#
# **vLLM** (Kwon et al., 2023; docs.vllm.ai) is the open-source engine that introduced
# PagedAttention. Beyond the two mechanisms built here, it offers prefix caching, chunked
# prefill (long prompts split across steps so that they do not stall decodes), speculative
# decoding, quantised weights and KV caches, tensor and pipeline parallelism, and an
# OpenAI-compatible HTTP server (`vllm serve <model>`). Its `LLM` class runs offline batches:
# `LLM(model=...).generate(prompts, SamplingParams(...))`.
#
# **TensorRT-LLM** (NVIDIA) compiles a model into an optimised engine for NVIDIA GPUs: fused
# attention and GEMM kernels, FP8/INT8/INT4 quantisation, a paged KV cache and *in-flight
# batching* (its name for continuous batching), served through the Triton Inference Server.
# It trades portability and build time for the highest throughput on that hardware.
#
# **llama.cpp** and its tensor library **GGML** run models in plain C/C++ on CPUs (and on
# Apple, CUDA, Vulkan and other back ends). Weights live in a single **GGUF** file, quantised
# block-wise to 2-8 bits ("k-quants"), memory-mapped so that loading is instant. Its bottleneck
# is memory bandwidth, not batching: a single user's decode reads every weight once per token,
# so fewer bits per weight means more tokens per second. The course's SmolLM2 model is such a
# file: the GGUF that `shared.assets` ships, with most tensors in the 4-bit `Q4_1` format, next
# to the fp32 safetensors copy that transformers loads.

# %%
gguf_path = verify_asset("SmolLM2-135M-Instruct")
fp32_files = list((CACHE_DIR / "smollm2-135m-instruct").glob("*.safetensors"))
fp32_bytes = sum(p.stat().st_size for p in fp32_files)
print(f"SmolLM2-135M as GGUF (llama.cpp, mostly Q4_1): {gguf_path.stat().st_size / 1e6:6.1f} MB")
if fp32_files:
    print(f"the same weights dequantised to fp32 (safetensors): {fp32_bytes / 1e6:6.1f} MB, "
          f"{fp32_bytes / gguf_path.stat().st_size:.1f}x larger")

# %% [markdown]
# ## Speculative decoding, briefly
#
# A decode step of a large model is limited by reading its weights, not by arithmetic, so
# checking several tokens in one forward pass costs about as much as producing one.
# Speculative decoding (Leviathan et al., 2023; Chen et al., 2023) lets a small *draft* model
# propose $k$ tokens, and the large model verify all of them in a single pass, keeping the
# longest prefix it agrees with plus one token of its own. With greedy decoding the output is
# exactly the large model's; with sampling, an acceptance rule keeps its distribution exactly.
# vLLM and TensorRT-LLM both implement it. `shared.generation.speculative_generate` does it for
# course models; as a draft we take the first 3 of the 6 layers of our model (same vocabulary,
# no training), which is crude, so expect a low acceptance rate.

# %%
def first_layers(full: GPT, n_layer: int) -> GPT:
    """A draft model: the first n_layer blocks of `full`, with its embeddings and head."""
    draft = GPT(GPTConfig.from_dict({**full.config.to_dict(), "n_layer": n_layer}))
    state = {k: v for k, v in full.state_dict().items()
             if not k.startswith("blocks.") or int(k.split(".")[1]) < n_layer}
    draft.load_state_dict(state)
    return draft.eval()


draft = first_layers(model, 3)
prompt = torch.tensor([tokenizer.encode("ROMEO:\nWhat light through yonder window breaks?\n")])
start = time.perf_counter()
spec = speculative_generate(model, draft, prompt, 150, num_draft_tokens=4, temperature=0.0)
spec_s = time.perf_counter() - start
start = time.perf_counter()
plain = generate(model, prompt, 150)
plain_s = time.perf_counter() - start
print(f"identical to greedy decoding with the full model: {torch.equal(spec.tokens, plain)}")
print(f"acceptance rate {spec.acceptance_rate:.0%}, {spec.tokens_per_target_call:.2f} tokens per "
      f"full-model pass ({spec.target_calls} passes for 150 tokens instead of 150)")
print(f"time: speculative {spec_s:.2f} s, plain {plain_s:.2f} s (measured)")

# %% [markdown]
# The output is identical and the full model runs about half as often. On this CPU the saving
# does not pay for the draft's own passes: our "large" model is small and compute-bound, and
# the draft is half its size. The method pays when the target is far larger than the draft
# and memory-bound, as a 70B model on a GPU is.
#
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: From a position to a physical slot
#
# Write `physical_slot(block_table, position, block_size)` that returns the slot in the pool
# where token `position` of a sequence lives, given the sequence's block table (a list of
# physical block numbers). The check compares your function with `PagedKVCache.slots` for
# every cached position of the sequences of the demo cache above.

# %% tags=["solution"]
def physical_slot(block_table: list[int], position: int, block_size: int) -> int:
    """The pool slot of token `position` of a sequence with this block table."""
    # BEGIN SOLUTION
    return block_table[position // block_size] * block_size + position % block_size
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_equal, check_function, passed

for name in demo.sequences:
    table = demo.block_table(name)
    mine = [physical_slot(table, p, demo.block_size) for p in range(demo.length(name))]
    check_equal(mine, demo.slots(name).tolist(), f"physical_slot for sequence {name}")
check_function(physical_slot, [(([7, 2], 5, 4), 9), (([3], 0, 16), 48)], "physical_slot",
               exact=True)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Waste in a paged cache
#
# Write `wasted_slots(lengths, block_size)`: the number of reserved but unused slots when
# sequences of the given lengths are stored in blocks of `block_size` slots (each sequence
# occupies whole blocks). Then, for the final lengths (prompt plus output) of our requests, set
# `waste_at_16` to the waste with blocks of 16, and `largest_block_under_5pct` to the largest
# block size among 1, 2, 4, ..., 256 whose waste stays under 5% of the tokens held. The check
# fills real `PagedKVCache` objects with these sequences.

# %% tags=["solution"]
def wasted_slots(lengths: list[int], block_size: int) -> int:
    """Reserved minus used slots for sequences of these lengths in blocks of block_size."""
    # BEGIN SOLUTION
    return sum(math.ceil(n / block_size) * block_size - n for n in lengths)
    # END SOLUTION


final_lengths = [len(r.prompt) + r.max_new_tokens for r in requests]
waste_at_16 = None
largest_block_under_5pct = None
# BEGIN SOLUTION
waste_at_16 = wasted_slots(final_lengths, 16)
largest_block_under_5pct = max(
    b for b in (2**i for i in range(9)) if wasted_slots(final_lengths, b) < 0.05 * sum(final_lengths)
)
# END SOLUTION
print(f"waste with blocks of 16: {waste_at_16} slots ({waste_at_16 / sum(final_lengths):.1%} of "
      f"the tokens); largest block size under 5%: {largest_block_under_5pct}")

# %% tags=["check"]
measured_waste = {}
for block_size in (2**i for i in range(9)):
    filled = PagedKVCache(1, 1, 1, num_blocks=sum(final_lengths), block_size=block_size)
    for i, n in enumerate(final_lengths):
        filled.add_sequence(i)
        filled.append(i, n)
    measured_waste[block_size] = filled.num_reserved_slots - filled.num_cached_tokens
check_equal(wasted_slots(final_lengths, 16), measured_waste[16], "wasted_slots(final_lengths, 16)")
check_function(wasted_slots, [(([5, 8, 9], 4), 3 + 0 + 3), (([1], 1), 0), (([3, 3], 8), 10)],
               "wasted_slots", exact=True)
check_equal(waste_at_16, measured_waste[16], "waste_at_16")
check_equal(largest_block_under_5pct,
            max(b for b, w in measured_waste.items() if w < 0.05 * sum(final_lengths)),
            "largest_block_under_5pct")
passed("Exercise 2")

# %% [markdown]
# A block of one slot wastes nothing, yet no engine uses it: every block is a separate memory
# read for the attention kernel, and the block table grows with the sequence. Blocks of 16
# waste a few percent and keep the reads large.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: How many steps does static batching take?
#
# All requests arrive at time 0 and a static batcher takes them in order, `batch_size` at a
# time. A batch takes as many steps as its longest output (the first step prefills and
# produces each request's first token). Write `static_steps(output_lengths, batch_size)` and
# `continuous_steps(output_lengths, batch_size)` (a new request joins in the step after a
# slot frees up, and also produces its first token in the step it joins). The check runs
# `shared.serving.serve` on real requests with a fake clock and counts its steps.

# %% tags=["solution"]
def static_steps(output_lengths: list[int], batch_size: int) -> int:
    """Forward passes a static batcher needs for these outputs, all arriving at once."""
    # BEGIN SOLUTION
    return sum(max(output_lengths[i : i + batch_size])
               for i in range(0, len(output_lengths), batch_size))
    # END SOLUTION


def continuous_steps(output_lengths: list[int], batch_size: int) -> int:
    """Forward passes a continuous batcher needs for these outputs, all arriving at once."""
    # BEGIN SOLUTION
    queue, slots, steps = list(output_lengths), [], 0
    while queue or slots:
        while queue and len(slots) < batch_size:
            slots.append(queue.pop(0))
        slots = [n - 1 for n in slots if n > 1]  # one token each; finished ones leave
        steps += 1
    return steps
    # END SOLUTION


# %% tags=["check"]
lengths_check = [5, 1, 9, 3, 7, 2, 2, 8]
burst = [Request(i, tuple(held_out_ids[i : i + 6]), n, 0.0) for i, n in enumerate(lengths_check)]
for policy, mine in (("static", static_steps), ("continuous", continuous_steps)):
    ticks = itertools.count()
    result = serve(model, burst, policy=policy, max_batch_size=3, num_blocks=64, block_size=16,
                   timer=lambda: next(ticks))
    check_equal(mine(lengths_check, 3), len(result.steps), f"{mine.__name__}(lengths, 3)")
check_function(static_steps, [(([4, 4, 4], 2), 8), (([1, 10], 5), 10)], "static_steps",
               exact=True)
check_function(continuous_steps, [(([4, 4, 4], 2), 8), (([10, 1, 1, 1], 2), 10)],
               "continuous_steps", exact=True)
check(continuous_steps(lengths_check, 3) < static_steps(lengths_check, 3), "continuous_steps",
      "fewer steps than static batching for these lengths")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: The KV cache of a real model
#
# SmolLM2-135M has 30 layers, 9 query heads and 3 key/value heads of size 64 (grouped-query
# attention). Using `kv_bytes_per_token` from the start of the notebook, set
# `smollm2_fp16_per_token` to its cache size per token in fp16, and `smollm2_requests_in_1gib`
# to how many 2,048-token requests fit in 1 GiB of fp16 cache with paging (no waste). The check
# compares the formula with a real `PagedKVCache` shaped like SmolLM2.

# %% tags=["solution"]
smollm2_fp16_per_token = None
smollm2_requests_in_1gib = None
# BEGIN SOLUTION
smollm2_fp16_per_token = kv_bytes_per_token(30, 3, 64, 2)
smollm2_requests_in_1gib = 2**30 // (smollm2_fp16_per_token * 2048)
# END SOLUTION
print(f"SmolLM2-135M: {smollm2_fp16_per_token:,} bytes per token (fp16), "
      f"{smollm2_requests_in_1gib} requests of 2,048 tokens per GiB")

# %% tags=["check"]
smol_cache = PagedKVCache(30, 3, 64, num_blocks=1, block_size=1, dtype=torch.float16)
check_equal(smollm2_fp16_per_token, smol_cache.bytes_per_slot(), "smollm2_fp16_per_token")
check_equal(smollm2_requests_in_1gib, 2**30 // (smol_cache.bytes_per_slot() * 2048),
            "smollm2_requests_in_1gib")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - The KV cache decides how many requests a server can run at once: $2 n_{layer} h_{kv}
#   d_{head}$ values per token, 800 KB per token for OPT-13B in fp16.
# - Reserving a contiguous, max-length slab per request wastes most of that memory on tokens
#   that are never generated. A paged cache (PagedAttention) allocates fixed-size blocks on
#   demand through per-sequence block tables; measured here, it held the same tokens in a
#   fraction of the slab memory, wasting under one block per sequence.
# - Reading keys and values through block tables changes where they live, not the result: the
#   paged runner's logits equal a contiguous cache's to float rounding, and every engine's
#   tokens equal sequential greedy generation's.
# - Continuous batching schedules every step: finished sequences leave, waiting ones join.
#   On a Poisson stream it kept its batch full where static batching did not, raising
#   throughput and cutting time to first token and end-to-end latency; paging let the same
#   memory hold a larger batch and raised throughput again.
# - vLLM (PagedAttention, continuous batching, prefix caching), TensorRT-LLM (compiled NVIDIA
#   engines, in-flight batching) and llama.cpp/GGML (quantised GGUF files on CPUs and laptops)
#   optimise different bottlenecks; speculative decoding trades cheap draft passes for fewer
#   passes of the large model and keeps its output exactly.
#
# ## References
#
# - W. Kwon et al., "Efficient memory management for large language model serving with
#   PagedAttention", SOSP 2023. https://arxiv.org/abs/2309.06180
# - G.-I. Yu et al., "Orca: a distributed serving system for transformer-based generative
#   models", OSDI 2022. https://www.usenix.org/conference/osdi22/presentation/yu
# - vLLM documentation. https://docs.vllm.ai ; source: https://github.com/vllm-project/vllm
# - NVIDIA TensorRT-LLM documentation. https://nvidia.github.io/TensorRT-LLM/ ; source:
#   https://github.com/NVIDIA/TensorRT-LLM
# - llama.cpp and GGML. https://github.com/ggml-org/llama.cpp ; https://github.com/ggml-org/ggml ;
#   the GGUF format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
# - Y. Leviathan, M. Kalman, Y. Matias, "Fast inference from transformers via speculative
#   decoding", ICML 2023. https://arxiv.org/abs/2211.17192
# - C. Chen et al., "Accelerating large language model decoding with speculative sampling",
#   2023. https://arxiv.org/abs/2302.01318
# - A. Agrawal et al., "Taming throughput-latency tradeoff in LLM inference with
#   Sarathi-Serve" (chunked prefill), OSDI 2024. https://arxiv.org/abs/2403.02310
