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
# # Long context: sparse, blockwise and ring attention
#
# Every token of a transformer compares itself with every earlier token, so the attention scores
# of an $n$-token input form an $n \times n$ matrix: at 32,768 tokens that is a billion numbers,
# 4 GiB in float32, for one head of one layer. Long-context models do not get around the
# quadratic *work* (exact attention still looks at every pair), but they never hold that matrix:
# they compute attention in tiles with an online softmax, and when one device is not enough they
# spread the sequence over several devices that pass keys and values around a ring. Others give up
# exactness and attend to a window, a dilated pattern, a memory of past segments, or a few
# retrieved chunks. This notebook measures what each of these costs and checks that the exact
# ones give the same answer.
#
# **Learning objectives**
# - Compute the time and memory of vanilla attention from $n$ and measure them, and explain why
#   memory, not arithmetic, is the first wall.
# - Draw sliding-window, dilated and segment-recurrence patterns and reason about their
#   receptive field over several layers.
# - Derive the online softmax and the log-sum-exp merge that make blockwise and ring attention
#   exact, and verify them against PyTorch.
# - Run vanilla and ring attention on a 32k-token input: show that the outputs agree, and measure
#   peak memory and time against length.
# - Run ring attention across real processes with `torch.distributed`, forward and backward, and
#   relate chunk memory (Transformer-XL, Memorizing Transformers, RMT) and retrieval to it.
#
# **Prerequisites:** [self-attention](../02-transformer-architecture/03-self-attention) (scaled
# dot-product attention, causal masks and the sliding window) and
# [multi-head attention](../02-transformer-architecture/04-multi-head-attention).
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
import os
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

shared.seed_everything(0)
# One thread for every timing below: the measurements compare algorithms, and on a machine whose
# cores are shared with other jobs a second thread mostly measures the scheduler.
torch.set_num_threads(1)
print(shared.environment_summary("numpy", "matplotlib", "sentence-transformers"))
transformers.logging.disable_progress_bar()  # no weight-loading progress bar in the output
MIB, GIB = 2**20, 2**30
HEAD_DIM = 64


def random_qkv(n: int, seed: int, heads: int = 1) -> tuple[torch.Tensor, ...]:
    """Queries, keys and values of shape (1, heads, n, HEAD_DIM), standard normal."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(1, heads, n, HEAD_DIM, generator=gen) for _ in range(3))


# %% [markdown]
# ## Why long context is expensive
#
# For one head with queries, keys and values $Q, K, V \in \mathbb{R}^{n \times d}$, attention is
#
# $$O = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d}}\right) V .$$
#
# $QK^\top$ has $n^2$ entries and costs $2n^2d$ floating-point operations; multiplying the
# weights by $V$ costs another $2n^2d$. Written this way, the $n \times n$ matrix sits in memory:
# $4n^2$ bytes in float32. Both grow with the square of the length, but they bite differently:
# the arithmetic at 32k tokens is a few hundred GFLOP, seconds on a CPU core, while the memory is
# 4 GiB *per head and layer*, and a model has dozens of each.

# %%
print(f"{'tokens':>9} | {'scores, 1 head (fp32)':>22} | {'FLOPs, 1 head (d=64)':>21}")
for n in [1_024, 8_192, 32_768, 131_072, 1_048_576]:
    print(f"{n:>9,} | {4 * n * n / GIB:>18,.3f} GiB | {4 * n * n * HEAD_DIM / 1e9:>15,.1f} GFLOP")

# %% [markdown]
# **How memory is measured.** PyTorch has no peak-memory counter on the CPU, so
# `shared.attention.peak_memory_bytes(fn, ...)` runs `fn` under `torch.profiler` with
# `profile_memory=True`, which records every allocation and free of PyTorch's CPU allocator, and
# returns the peak of their running sum: the extra memory the call needed, its result included
# (on a GPU it reads `torch.cuda.max_memory_allocated` instead). A tensor of known size checks it:

# %%
print(f"torch.ones(64 Mi floats) reads {A.peak_memory_bytes(torch.ones, 64 * MIB) / MIB:.1f} MiB "
      "(expected 256.0)")

# %% [markdown]
# ## Sparse patterns: sliding window, dilation, segments
#
# The cheapest way out is to let each query see only some keys. Three patterns recur:
#
# - **Sliding window** (Child et al. 2019; Beltagy et al. 2020, Longformer; Mistral 7B): query $i$
#   sees the $w$ most recent tokens, $i - w < j \le i$. Cost $O(nw)$.
# - **Dilated window** (Longformer; LongNet, Ding et al. 2023): the same number of keys, spaced
#   $r$ apart, $i - j \in \{0, r, 2r, \dots\}$, so one layer spans $r$ times further.
# - **Segment recurrence** (Transformer-XL, Dai et al. 2019): the text is processed in segments,
#   and each segment also attends to the cached states of the previous one. We come back to it
#   under chunk memory below.
#
# `shared.attention` returns the first two as boolean masks (True = may attend); the third is one
# line of index arithmetic.

# %%
n_show, window, dilation, segment = 24, 4, 3, 6
pos = torch.arange(n_show)
causal = pos[:, None] >= pos[None, :]
patterns = {
    "full causal": causal,
    f"sliding window (w={window})": A.sliding_window_mask(n_show, window, causal=True),
    f"dilated (w={window}, r={dilation})": A.dilated_mask(n_show, window, dilation, causal=True),
    f"segments of {segment} + 1 cached": causal & (pos[:, None] // segment
                                                   - pos[None, :] // segment <= 1),
}
fig, axes = plt.subplots(1, 4, figsize=(15, 4))
for ax, (name, mask) in zip(axes, patterns.items()):
    ax.imshow(mask.numpy(), cmap="Blues", vmin=0, vmax=1.3)
    ax.set(title=f"{name}\n{int(mask.sum())} of {n_show * n_show} pairs", xlabel="key position j",
           ylabel="query position i")
fig.suptitle("Which keys each query may attend to (blue = allowed)")
plt.tight_layout(rect=(0, 0, 1, 0.92))
plt.show()

# %% [markdown]
# The library computes the window and dilated patterns without the mask: it visits only the
# key tiles that overlap the band, and the dilated pattern becomes $r$ interleaved ordinary
# windows (every $r$-th token gathered, then a sliding window over them). Both must equal SDPA
# given the same pattern as a mask:

# %%
n_sparse, window, dilation = 4096, 256, 4
q, k, v = random_qkv(n_sparse, seed=1)
checks = {
    "sliding window": (A.sliding_window_attention(q, k, v, window, causal=True),
                       A.sliding_window_mask(n_sparse, window, causal=True)),
    "dilated": (A.dilated_attention(q, k, v, window, dilation, causal=True),
                A.dilated_mask(n_sparse, window, dilation, causal=True)),
}
causal_pairs = n_sparse * (n_sparse + 1) // 2
for name, (out, mask) in checks.items():
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    print(f"{name:>14}: max |ours - SDPA with the mask| = {(out - reference).abs().max():.1e}; "
          f"{int(mask.sum()) / causal_pairs:.1%} of the causal pairs scored")

# %% [markdown]
# The price is reach. One layer of a window $w$ moves information at most $w - 1$ positions; a
# stack of $L$ layers, $L(w - 1)$. Dilation multiplies the span but a dilated head only ever mixes
# tokens of one residue class modulo $r$, which is why Longformer gives different heads
# different dilations and LongNet mixes several segment lengths and dilation rates. Exercise 1
# measures receptive fields from the masks. What none of these patterns can do is find a fact
# 20,000 tokens back in one step: for that, attention must be exact over the whole context.

# %% [markdown]
# ## Blockwise attention: the online softmax
#
# Exact attention does not need the $n \times n$ matrix either, only a different order of
# summation (Milakov & Gimelshein 2018; Rabe & Staats 2021; Dao et al. 2022, FlashAttention).
# Visit the keys in blocks. For each query keep three running quantities over the keys seen so
# far: the largest score $m$, the sum $\ell = \sum_j e^{s_j - m}$ and the unnormalised output
# $a = \sum_j e^{s_j - m} v_j$. A new block with scores $s'$ updates them as
#
# $$m' = \max(m, \max_j s'_j), \quad \ell' = e^{m - m'}\ell + \sum_j e^{s'_j - m'}, \quad
# a' = e^{m - m'}a + \sum_j e^{s'_j - m'} v_j ,$$
#
# and at the end $O = a / \ell$. The factor $e^{m - m'}$ rescales what was accumulated under the
# old maximum; subtracting the maximum keeps every exponential $\le 1$, so nothing overflows.
# Only one block of scores exists at a time. Here it is by hand, for a set of queries over a long
# run of keys, checked against vanilla attention and the library's `blockwise_attention`:

# %%
def online_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             block: int) -> torch.Tensor:
    """Exact softmax(q k^T / sqrt(d)) v for q (m, d), k and v (n, d), `block` keys at a time."""
    scale = q.shape[-1] ** -0.5
    running_max = torch.full((q.shape[0], 1), float("-inf"))
    running_sum = torch.zeros(q.shape[0], 1)
    acc = torch.zeros(q.shape[0], v.shape[1])
    for start in range(0, k.shape[0], block):
        scores = q @ k[start:start + block].T * scale  # (m, block): the only scores held
        new_max = torch.maximum(running_max, scores.amax(dim=1, keepdim=True))
        correction = torch.exp(running_max - new_max)  # rescales the old sums to the new maximum
        probs = torch.exp(scores - new_max)
        running_sum = running_sum * correction + probs.sum(dim=1, keepdim=True)
        acc = acc * correction + probs @ v[start:start + block]
        running_max = new_max
    return acc / running_sum


q, k, v = (t[0, 0] for t in random_qkv(8192, seed=2))
queries = q[:256]
ours = online_softmax_attention(queries, k, v, block=512)
print(f"max |online softmax - vanilla|             = "
      f"{(ours - A.vanilla_attention(queries, k, v)).abs().max():.1e}")
print(f"max |online softmax - blockwise_attention| = "
      f"{(ours - A.blockwise_attention(queries, k, v, 512)).abs().max():.1e}")
print(f"scores held at once: {256 * 512:,} (one block) instead of {256 * 8192:,}")

# %% [markdown]
# The same bookkeeping merges *any* two partial results. If $(O_A, \mathrm{lse}_A)$ is attention
# over key set $A$ alone, with $\mathrm{lse}_A = \log \sum_{j \in A} e^{s_j}$, and likewise for a
# disjoint set $B$, then attention over $A \cup B$ is
#
# $$\mathrm{lse} = \log\left(e^{\mathrm{lse}_A} + e^{\mathrm{lse}_B}\right), \qquad
# O = e^{\mathrm{lse}_A - \mathrm{lse}}\, O_A + e^{\mathrm{lse}_B - \mathrm{lse}}\, O_B :$$
#
# each part weighted by its share of the softmax denominator. The merge is exact, commutative and
# associative, so partial results can be combined in any order as they arrive. That is the whole
# trick of ring attention. `partial_attention` returns `(out, lse)` for one key chunk and
# `merge_partials` combines two (Exercise 3 writes it):

# %%
half = k.shape[0] // 2
part_a = A.partial_attention(queries, k[:half], v[:half])
part_b = A.partial_attention(queries, k[half:], v[half:], k_offset=half)
merged, _ = A.merge_partials(*part_a, *part_b)
print(f"max |merge(first half, second half) - full attention| = "
      f"{(merged - A.vanilla_attention(queries, k, v)).abs().max():.1e}")

# %% [markdown]
# ## Ring attention
#
# Blockwise attention removes the $n^2$ memory, but one device still holds all of $Q, K, V$ and
# does all the work. Ring Attention (Liu, Zaharia & Abbeel 2023) splits the sequence into $N$
# contiguous chunks over $N$ devices arranged in a ring. Device $i$ keeps query chunk $i$ for the
# whole computation and starts with key/value chunk $i$. Then, $N$ times:
#
# 1. compute `partial_attention` of its queries over the key/value chunk it holds (blockwise, so
#    memory stays one tile), and merge it into its running `(out, lse)`;
# 2. send that key/value chunk to device $i + 1$ and receive one from device $i - 1$.
#
# After $N - 1$ hops every device has seen every chunk, in a different order, and the merge makes
# the order irrelevant. Each device holds $O(n/N)$ of the sequence, so the context grows with the
# number of devices. The transfer of the next chunk is started before computing on the current
# one: if computing on a chunk takes longer than sending it, communication is hidden. Computing
# costs $\propto (n/N)^2 d$ and sending $\propto (n/N) d$, so large enough chunks always hide it.
#
# With a causal mask, a chunk that lies entirely after a device's queries contributes nothing,
# and the device skips the compute (the chunk still travels on). The figure shows which chunk
# each of 4 devices holds at each step:

# %%
world = 4
held = np.array([[(device - step) % world for device in range(world)] for step in range(world)])
skipped = held > np.arange(world)[None, :]  # keys entirely in the device's future
fig, ax = plt.subplots(figsize=(5.5, 4))
ax.imshow(np.where(skipped, 0.2, 1.0), cmap="Greens", vmin=0, vmax=1.4)
for step in range(world):
    for device in range(world):
        label = f"K/V {held[step, device]}" + ("\nskip" if skipped[step, device] else "")
        ax.text(device, step, label, ha="center", va="center", fontsize=9)
ax.set(xticks=range(world), yticks=range(world), xlabel="device (holds query chunk i)",
       ylabel="step", title="Ring schedule, causal: which K/V chunk each device holds")
plt.tight_layout()
plt.show()
print(f"chunk pairs computed: {int((~skipped).sum())} of {world * world}; "
      f"device 0 works in 1 step, device {world - 1} in all {world}")

# %% [markdown]
# Device 0 idles for most of the steps while the last device never does: the causal ring is
# load-imbalanced (Exercise 4 counts it). Striped Attention (Brandon et al. 2023) fixes this by
# dealing tokens to devices round-robin instead of in contiguous chunks.
# `ring_attention_simulated` runs the devices one after another in one process, with the same
# schedule, merges and a ring backward pass:

# %%
q, k, v = random_qkv(2048, seed=3)
ring = A.ring_attention_simulated(q, k, v, world_size=4, causal=True)
print(f"max |simulated ring (4 devices) - vanilla| = "
      f"{(ring - A.vanilla_attention(q, k, v, causal=True)).abs().max():.1e}")

# %% [markdown]
# ## Vanilla vs ring attention at 32k tokens
#
# Now the real comparison: one head, $d = 64$, float32, causal, on 32,768 tokens. The vanilla
# version below is the textbook formula written so that exactly one $n \times n$ tensor exists:
# the scores are exponentiated and normalised in place, and the causal mask is applied a band of
# rows at a time. (`shared.attention.vanilla_attention` also keeps the weights and a full mask,
# about three $n \times n$ tensors, too much at 32k on this machine.) It uses the same `exp2`
# with $\log_2 e$ folded into the scale as the library's kernels, so that the comparison is
# between algorithms, not between exponential functions.

# %%
LOG2E = math.log2(math.e)


def materialised_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention with the full n x n score matrix in memory (once), softmax in place."""
    n = q.shape[-2]
    scores = (q * (LOG2E / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)  # (..., n, n)
    for start in range(0, n, 4096):  # the causal mask, one band of rows at a time
        rows = torch.arange(start, min(start + 4096, n))
        scores[..., start:start + 4096, :].masked_fill_(torch.arange(n) > rows[:, None], -math.inf)
    scores.sub_(scores.amax(dim=-1, keepdim=True)).exp2_()  # 2^(s - max): weights up to a factor
    return (scores @ v).div_(scores.sum(dim=-1, keepdim=True))


q, k, v = random_qkv(2048, seed=4)
difference = materialised_attention(q, k, v) - A.vanilla_attention(q, k, v, causal=True)
print(f"max |materialised_attention - shared vanilla_attention| = {difference.abs().max():.1e}")

# %% [markdown]
# **How the timings are taken.** Each method runs once per length, timed with
# `time.perf_counter`, on one thread; the load average of the machine is printed with the 32k
# results, since other jobs may share it. The profiler adds a cost to every operation it records,
# and the blockwise and ring kernels issue thousands of small ones, so they are timed in a
# separate run without it. Vanilla attention (about ten large operations) and SDPA (one fused
# kernel) are timed inside their profiled run, which saves running the 32k vanilla twice; the
# cell after the table measures what the profiler adds to them at 8k. The ring uses 4 virtual
# devices; its memory is that of all four together, since they run in one process.

# %%
METHODS = {
    "vanilla (n x n scores)": materialised_attention,
    "blockwise": lambda q, k, v: A.blockwise_attention(q, k, v, causal=True),
    "ring, 4 devices": lambda q, k, v: A.ring_attention_simulated(q, k, v, 4, causal=True),
    "SDPA": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
}


def measure(fn, q, k, v, *, timed_run: bool = True) -> tuple[torch.Tensor, float, float]:
    """Run fn(q, k, v): return its output, its peak extra memory in MiB and its time in seconds.

    With timed_run=False the profiled run is also the timed one (for methods with few operations).
    """
    box = {}
    start = time.perf_counter()
    peak = A.peak_memory_bytes(lambda: box.setdefault("out", fn(q, k, v)))
    seconds = time.perf_counter() - start
    if timed_run:
        start = time.perf_counter()
        fn(q, k, v)
        seconds = time.perf_counter() - start
    return box["out"], peak / MIB, seconds


FEW_OPS = ("vanilla (n x n scores)", "SDPA")  # timed inside their profiled run
LENGTHS = [1024, 2048, 4096, 8192]
memory = {name: {} for name in METHODS}
seconds = {name: {} for name in METHODS}
with torch.no_grad():
    for fn in METHODS.values():  # warm-up: first calls pay one-off initialisation
        fn(*random_qkv(512, seed=5))
    for n in LENGTHS:
        q, k, v = random_qkv(n, seed=n)
        for name, fn in METHODS.items():
            _, memory[name][n], seconds[name][n] = measure(fn, q, k, v,
                                                           timed_run=name not in FEW_OPS)
print(f"{'tokens':>6} | " + " | ".join(f"{name:>22}" for name in METHODS))
for n in LENGTHS:
    print(f"{n:>6} | " + " | ".join(f"{memory[m][n]:>8.1f} MiB {seconds[m][n]:>7.3f} s"
                                    for m in METHODS))

# %%
q, k, v = random_qkv(8192, seed=8192)
for name in FEW_OPS:
    with torch.no_grad():
        start = time.perf_counter()
        METHODS[name](q, k, v)
        plain = time.perf_counter() - start
    print(f"{name} at 8k: {seconds[name][8192]:.3f} s inside the profiler, {plain:.3f} s "
          f"without it (ratio {seconds[name][8192] / plain:.2f})")

# %% [markdown]
# The profiler's ratios are close to 1 (a shared machine adds its own noise either way), so
# timing these two inside their profiled run is fair. Now 32k. The vanilla run allocates its
# 4 GiB score matrix; the ring and SDPA never hold more than a tile of scores. All three compute
# the same causal attention of the same inputs.

# %%
N_LONG = 32_768
q, k, v = random_qkv(N_LONG, seed=N_LONG)
load_before = os.getloadavg()[0]
with torch.no_grad():
    long_outputs = {}
    for name in ["vanilla (n x n scores)", "ring, 4 devices", "SDPA"]:
        long_outputs[name], memory[name][N_LONG], seconds[name][N_LONG] = measure(
            METHODS[name], q, k, v, timed_run=name not in FEW_OPS)
load_after = os.getloadavg()[0]

vanilla_out, ring_out, sdpa_out = long_outputs.values()
print(f"{N_LONG:,} tokens, 1 head, d={HEAD_DIM}, causal, float32")
print(f"  max |vanilla - ring| = {(vanilla_out - ring_out).abs().max():.1e}")
print(f"  max |vanilla - SDPA| = {(vanilla_out - sdpa_out).abs().max():.1e}")
print(f"  max |ring    - SDPA| = {(ring_out - sdpa_out).abs().max():.1e}")
for name in long_outputs:
    print(f"  {name:>22}: peak {memory[name][N_LONG]:>8.1f} MiB, {seconds[name][N_LONG]:6.2f} s")
VANILLA, RING = "vanilla (n x n scores)", "ring, 4 devices"
print(f"  vanilla needs {memory[VANILLA][N_LONG] / memory[RING][N_LONG]:.0f}x the ring's memory "
      f"and takes {seconds[VANILLA][N_LONG] / seconds[RING][N_LONG]:.1f}x its time "
      f"(load average {load_before:.1f} before, {load_after:.1f} after, {os.cpu_count()} cores)")
del vanilla_out, long_outputs  # frees the 32k outputs

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
for name in METHODS:
    ns = sorted(memory[name])
    axes[0].plot(ns, [memory[name][n] for n in ns], "o-", label=name)
    axes[1].plot(ns, [seconds[name][n] for n in ns], "o-", label=name)
ns = np.array(sorted(memory[VANILLA]))
axes[0].plot(ns, 4 * ns.astype(float) ** 2 / MIB, "k:", label="4 n^2 bytes (one n x n matrix)")
axes[0].set(xscale="log", yscale="log", xlabel="sequence length n (tokens)",
            ylabel="peak extra memory (MiB)", title="Peak memory vs length (1 head, d=64, causal)")
axes[1].set(xscale="log", yscale="log", xlabel="sequence length n (tokens)",
            ylabel="time (s, one thread)", title="Time vs length (measured once per point)")
for ax in axes:
    ticks = sorted(memory[RING])
    ax.set_xticks(ticks, [f"{n // 1024}k" for n in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The outputs agree to within $10^{-6}$, float32 rounding: the ring is exact attention, not an
# approximation. Vanilla attention's memory follows the $4n^2$ line (the score matrix is nearly
# all of it; the rest is one band of the mask), while the ring, the blockwise kernel and SDPA
# grow only with the $O(nd)$ output and per-device statistics: at 32k the output alone is 8 MiB.
# (The blockwise line stops at 8k: at 32k it would repeat the ring's per-device kernel on one
# device.) The time of every method grows roughly as $n^2$, a factor of about 4 per doubling:
# exact attention does the same arithmetic however it is ordered. The ring and the blockwise
# kernel skip the tiles above the causal diagonal, which the vanilla version computes and then
# masks, and they never write a 4 GiB matrix to memory and read it back three times. The
# per-point times are single measurements on a shared machine, so compare slopes and ratios, not
# the third digit; `benchmarks/bench_attention.py` (`make bench`) repeats the measurement at 2k
# to 32k tokens with alternating rounds.

# %% [markdown]
# ## Ring attention across real processes
#
# The simulation runs the devices in turn. `ring_attention_distributed` starts real processes,
# one per rank, with `torch.distributed` over the gloo backend (TCP on the loopback interface;
# NCCL would do the same between GPUs). Each rank keeps its own chunk; the key/value chunks move
# with point-to-point messages. One step of a rank, in outline:
#
# ```python
# requests = dist.batch_isend_irecv([P2POp(dist.isend, kv, next_rank),
#                                    P2POp(dist.irecv, incoming, previous_rank)])
# out, lse = merge_partials(out, lse, *partial_attention(q, kv_keys, kv_values, ...))
# for request in requests: request.wait()   # the transfer ran while we computed
# kv = incoming
# ```
#
# `isend`/`irecv` return at once and gloo moves the bytes on its own threads, so the transfer of
# the next chunk overlaps the computation on the current one. The backward pass walks the ring
# again, and each key/value chunk travels together with its gradient accumulators $dK, dV$, to
# which every rank adds its contribution; one last hop brings them home. Below, 2 processes
# compute the forward and backward pass of causal attention (2 heads, 4,096 tokens), compared with
# SDPA's forward and autograd backward. Starting processes takes seconds (each one imports torch),
# so this demonstrates the protocol, not speed.

# %%
WORLD_SIZES = (2,)  # (2, 4, 8) with more cores: each process costs seconds of start-up
q, k, v = random_qkv(4096, seed=6, heads=2)
grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(7))
leaves = [t.clone().requires_grad_() for t in (q, k, v)]
reference = F.scaled_dot_product_attention(*leaves, is_causal=True)
reference.backward(grad_out)
for world_size in WORLD_SIZES:
    start = time.perf_counter()
    out, dq, dk, dv = A.ring_attention_distributed(q, k, v, world_size, causal=True,
                                                   grad_out=grad_out)
    elapsed = time.perf_counter() - start
    errors = [(out - reference).abs().max()] + [(g - leaf.grad).abs().max()
                                                 for g, leaf in zip((dq, dk, dv), leaves)]
    print(f"{world_size} processes ({elapsed:.1f} s with start-up): max error vs SDPA  "
          + "  ".join(f"{name} {e:.1e}" for name, e in zip(("out", "dq", "dk", "dv"), errors)))

# %% [markdown]
# Forward and backward agree with SDPA to float32 rounding. Each process held half of the
# sequence and never the other half's queries; with $N$ machines, the context that fits grows
# $N$-fold while the result stays exact.

# %% [markdown]
# ## Chunk memory and retrieval
#
# Ring attention keeps attention exact and pays for it with devices. A second family keeps the
# cost fixed and gives up exactness, by remembering the past in compressed or searchable form:
#
# - **Segment recurrence.** Transformer-XL (Dai et al. 2019) processes a long text in segments
#   and lets each segment attend to the cached hidden states of the previous one (the fourth
#   pattern above). Gradients stop at the cache, but information moves one segment further per
#   layer, so an $L$-layer model reaches $L$ segments back.
# - **A searchable memory.** Memorizing Transformers (Wu et al. 2022) store the keys and values
#   of past segments in a large external memory and let one layer attend to the top-$k$ nearest
#   keys of each query, found by approximate nearest-neighbour search. This is exact attention
#   restricted to the keys that would have received most of the weight.
# - **Memory tokens.** The Recurrent Memory Transformer (Bulatov et al. 2022) adds a few memory
#   tokens to each segment; their outputs become the next segment's memory inputs, so the model
#   learns what to carry forward in a fixed-size state.
# - **Retrieval.** Retrieval-augmented generation (Lewis et al. 2020) moves the memory out of the
#   model: the document is cut into chunks, each chunk is embedded once, and only the chunks
#   closest to the question are placed in the (short) context.
#
# Here is retrieval in miniature, with the course's sentence encoder (all-MiniLM-L6-v2): 32 chunks
# of *Macbeth*, 80 words each, one of which has a fact planted in it, and a question.

# %%
encoder = shared.assets.sentence_encoder()
words = shared.assets.corpus("shakespeare")["Macbeth"].split()
CHUNK_WORDS, N_CHUNKS, NEEDLE_CHUNK = 80, 32, 19
chunks = [" ".join(words[i:i + CHUNK_WORDS]) for i in range(0, CHUNK_WORDS * N_CHUNKS, CHUNK_WORDS)]
middle = chunks[NEEDLE_CHUNK].split(" ")
needle = "The secret code of the blue door is 1847."
chunks[NEEDLE_CHUNK] = " ".join(middle[:40] + [needle] + middle[40:])
chunk_vectors = encoder.encode(chunks)  # (32, 384), unit rows
question = "What is the secret code of the blue door?"
similarity = chunk_vectors @ encoder.encode([question])[0]  # cosine similarity
top3 = np.argsort(-similarity)[:3]
print(f"question: {question!r}")
for rank, i in enumerate(top3, 1):
    print(f"  top {rank}: chunk {i:2d}, cosine {similarity[i]:.3f}"
          + ("  <- holds the fact" if i == NEEDLE_CHUNK else ""))
tokens = sum(len(encoder.tokenizer(c)["input_ids"]) for c in chunks)
print(f"the index: {chunk_vectors.size:,} floats for {tokens:,} tokens; one head's attention "
      f"matrix over them: {tokens * tokens:,} floats")

fig, ax = plt.subplots(figsize=(9, 3))
ax.bar(range(N_CHUNKS), similarity, color=["tab:red" if i == NEEDLE_CHUNK else "tab:blue"
                                           for i in range(N_CHUNKS)])
ax.set(xlabel="chunk of Macbeth (80 words each)", ylabel="cosine similarity to the question",
       title="Retrieval: the chunk holding the fact (red) stands out")
plt.tight_layout()
plt.show()

# %% [markdown]
# The chunk with the planted sentence ranks first, although 80 of its 88 words are Macbeth.
# Retrieval is cheap and scales linearly, but it is only as good as the embedding: a question
# whose answer is spread over many chunks, or phrased unlike the text, defeats it, while exact
# attention over the whole context would still see everything. The lab
# [RAG vs long-context attention](../../labs/long-context-rag-vs-ring-attention/long-context-rag-vs-ring-attention)
# measures this trade-off on a needle-in-a-haystack test (Kamradt 2023), where long-context models
# are known to miss facts placed in the middle of their input (Liu et al. 2023, "Lost in the
# Middle").

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Receptive field of stacked sparse layers
#
# Information moves from key $j$ to query $i$ where `mask[i, j]` is True. Write
# `receptive_field(mask, layers)` that returns how many positions can reach the **last** position
# after `layers` layers that all use this mask (a layer lets position $i$ collect from every $j$
# its mask row allows; the position itself counts as reached when the mask allows it). Hint: start
# from a one-hot vector of the last position and multiply by the mask `layers` times, keeping it
# boolean. The check compares with $\min(n, L(w-1)+1)$ for sliding windows and asks for
# `dilated_reach`, the receptive field of 3 dilated layers ($n = 64$, $w = 4$, $r = 3$).

# %% tags=["solution"]
def receptive_field(mask: torch.Tensor, layers: int) -> int:
    """How many positions the last query draws information from after `layers` masked layers."""
    # BEGIN SOLUTION
    reached = torch.zeros(mask.shape[0], dtype=torch.bool)
    reached[-1] = True
    for _ in range(layers):
        reached = (reached.float() @ mask.float()) > 0
    return int(reached.sum())
    # END SOLUTION


dilated_reach = None
# BEGIN SOLUTION
dilated_reach = receptive_field(A.dilated_mask(64, 4, 3, causal=True), layers=3)
# END SOLUTION
print(f"3 dilated layers (w=4, r=3) reach {dilated_reach} of 64 positions")

# %% tags=["check"]
from shared.exercises import check, check_equal, passed

for w, layers in [(4, 1), (4, 3), (8, 5), (16, 6)]:
    check_equal(receptive_field(A.sliding_window_mask(64, w, causal=True), layers),
                min(64, layers * (w - 1) + 1),
                f"receptive_field(sliding window w={w}, {layers} layers)")
check_equal(receptive_field(torch.ones(64, 64, dtype=torch.bool).tril(), 1), 64,
            "receptive_field(full causal, 1 layer)")
check_equal(dilated_reach, 10, "dilated_reach")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A streaming log-sum-exp
#
# The online softmax rests on one statistic: $\log \sum_j e^{x_j}$, computed one block at a time.
# Write `streaming_logsumexp(blocks)` that visits a list of 1-D tensors once, in order, keeping
# only a running maximum $m$ and a running sum $\ell = \sum_j e^{x_j - m}$, and returns
# $m + \log \ell$. It must not overflow: the check includes scores around 1,000, where
# $e^{1000}$ is infinite in float32, and compares with `torch.logsumexp`.

# %% tags=["solution"]
def streaming_logsumexp(blocks: list[torch.Tensor]) -> torch.Tensor:
    """log(sum(exp(x))) over the concatenated blocks, one block at a time."""
    # BEGIN SOLUTION
    running_max = torch.tensor(float("-inf"))
    running_sum = torch.tensor(0.0)
    for block in blocks:
        new_max = torch.maximum(running_max, block.max())
        running_sum = (running_sum * torch.exp(running_max - new_max)
                       + torch.exp(block - new_max).sum())
        running_max = new_max
    return running_max + torch.log(running_sum)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close

gen = torch.Generator().manual_seed(8)
for scale_, sizes in [(1.0, [5, 7, 3]), (30.0, [1, 100, 2]), (1000.0, [4, 4, 4, 4])]:
    blocks = [torch.randn(s, generator=gen) * scale_ for s in sizes]
    check_close(streaming_logsumexp(blocks), torch.logsumexp(torch.cat(blocks), dim=0),
                f"streaming_logsumexp(scores of scale {scale_:g})", rtol=1e-5, atol=1e-4)
blocks = [torch.tensor([1000.0, 999.0]), torch.tensor([1001.0])]
check_close(streaming_logsumexp(blocks), 1001.0 + math.log(1 + math.exp(-1) + math.exp(-2)),
            "streaming_logsumexp([1000, 999], [1001])", rtol=1e-6)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Merge two partial attentions
#
# Write `merge_two(out_a, lse_a, out_b, lse_b)` that combines attention over two disjoint key
# sets into attention over their union, with the formula of the blockwise section: returns
# `(out, lse)`. Shapes: `out_*` is `(queries, d)`, `lse_*` is `(queries,)`. Use
# `torch.logaddexp` for the new log-sum-exp. The check splits keys at an uneven point, computes
# each part with `partial_attention`, and compares your merge with attention over all the keys.

# %% tags=["solution"]
def merge_two(out_a: torch.Tensor, lse_a: torch.Tensor, out_b: torch.Tensor,
              lse_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention over keys A and B from attention over A alone and over B alone."""
    # BEGIN SOLUTION
    lse = torch.logaddexp(lse_a, lse_b)
    out = out_a * torch.exp(lse_a - lse)[:, None] + out_b * torch.exp(lse_b - lse)[:, None]
    return out, lse
    # END SOLUTION


# %% tags=["check"]
q_t, k_t, v_t = (t[0, 0] for t in random_qkv(300, seed=9))
split = 113
full_out = A.vanilla_attention(q_t[:50], k_t, v_t)
full_lse = torch.logsumexp(q_t[:50] @ k_t.T / math.sqrt(HEAD_DIM), dim=-1)
merged_out, merged_lse = merge_two(*A.partial_attention(q_t[:50], k_t[:split], v_t[:split]),
                                   *A.partial_attention(q_t[:50], k_t[split:], v_t[split:]))
check_close(merged_out, full_out, "merge_two: output", atol=1e-5)
check_close(merged_lse, full_lse, "merge_two: log-sum-exp", atol=1e-5)
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: The causal ring's idle time
#
# Write `ring_busy(world_size)` returning a boolean array of shape `(world_size, world_size)`,
# indexed `[step, device]`, that is True when the device computes at that step: at step $s$
# device $i$ holds key/value chunk $(i - s) \bmod N$ and, with a causal mask, computes only if
# that chunk does not lie after its own queries (chunk index $\le i$). Then set
# `idle_fraction_8` to the fraction of (step, device) slots that are idle on a ring of 8 devices.
# Since a step lasts as long as its slowest device, this is the share of the ring's time a
# causal ring wastes, which Striped Attention recovers.

# %% tags=["solution"]
def ring_busy(world_size: int) -> np.ndarray:
    """busy[step, device]: does the device compute at this step of a causal ring?"""
    # BEGIN SOLUTION
    steps = np.arange(world_size)[:, None]
    devices = np.arange(world_size)[None, :]
    return (devices - steps) % world_size <= devices
    # END SOLUTION


idle_fraction_8 = None
# BEGIN SOLUTION
idle_fraction_8 = 1 - ring_busy(8).mean()
# END SOLUTION
print("idle share of a causal ring of 8 devices:", idle_fraction_8)

# %% tags=["check"]
check_equal(ring_busy(4), ~skipped, "ring_busy(4) (compare with the schedule figure)")
for n_dev in (1, 2, 5, 8):
    busy = ring_busy(n_dev)
    check_equal(busy.shape, (n_dev, n_dev), f"ring_busy({n_dev}).shape")
    check_equal(int(busy.sum()), n_dev * (n_dev + 1) // 2, f"busy slots of ring_busy({n_dev})")
    check(bool(busy[0].all()), f"ring_busy({n_dev})",
          "every device to compute at step 0 (on its own chunk)")
check_close(idle_fraction_8, 28 / 64, "idle_fraction_8")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Vanilla attention materialises an $n \times n$ score matrix per head and layer: $4n^2$ bytes
#   in float32, 4 GiB at 32k tokens, measured above with the profiler.
# - Sliding-window and dilated attention cost $O(nw)$ but see only part of the context per
#   layer; their reach grows with depth (Exercise 1), and dilation needs mixing across heads.
# - The online softmax (running maximum and sum) computes exact attention one tile at a time;
#   the log-sum-exp merge combines partial results over disjoint keys exactly, in any order.
# - Ring attention splits the sequence over devices, keeps each device's queries in place and
#   passes key/value chunks around the ring, overlapping sends with compute. At 32k tokens its
#   output matched vanilla attention to float32 rounding, with a flat memory curve where vanilla's
#   grows as $n^2$; across real gloo processes its forward and backward passes matched SDPA.
# - Time stays quadratic for every exact method; a causal ring also idles devices unless tokens
#   are striped (Exercise 4).
# - Chunk memory (Transformer-XL, Memorizing Transformers, RMT) and retrieval trade exactness for
#   fixed cost; the lab measures that trade on a needle-in-a-haystack test.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - R. Child, S. Gray, A. Radford, I. Sutskever, "Generating long sequences with sparse
#   transformers", 2019. https://arxiv.org/abs/1904.10509
# - I. Beltagy, M. E. Peters, A. Cohan, "Longformer: the long-document transformer", 2020.
#   https://arxiv.org/abs/2004.05150
# - J. Ding et al., "LongNet: scaling transformers to 1,000,000,000 tokens", 2023.
#   https://arxiv.org/abs/2307.02486
# - M. Milakov, N. Gimelshein, "Online normalizer calculation for softmax", 2018.
#   https://arxiv.org/abs/1805.02867
# - M. N. Rabe, C. Staats, "Self-attention does not need O(n^2) memory", 2021.
#   https://arxiv.org/abs/2112.05682
# - T. Dao, D. Y. Fu, S. Ermon, A. Rudra, C. Re, "FlashAttention: fast and memory-efficient exact
#   attention with IO-awareness", NeurIPS 2022. https://arxiv.org/abs/2205.14135
# - H. Liu, M. Zaharia, P. Abbeel, "Ring attention with blockwise transformers for near-infinite
#   context", 2023. https://arxiv.org/abs/2310.01889
# - W. Brandon et al., "Striped attention: faster ring attention for causal transformers", 2023.
#   https://arxiv.org/abs/2311.09431
# - Z. Dai et al., "Transformer-XL: attentive language models beyond a fixed-length context",
#   ACL 2019. https://arxiv.org/abs/1901.02860
# - Y. Wu, M. N. Rabe, D. Hutchins, C. Szegedy, "Memorizing transformers", ICLR 2022.
#   https://arxiv.org/abs/2203.08913
# - A. Bulatov, Y. Kuratov, M. S. Burtsev, "Recurrent memory transformer", NeurIPS 2022.
#   https://arxiv.org/abs/2207.06881
# - P. Lewis et al., "Retrieval-augmented generation for knowledge-intensive NLP tasks",
#   NeurIPS 2020. https://arxiv.org/abs/2005.11401
# - G. Kamradt, "Needle in a haystack: pressure testing LLMs", 2023.
#   https://github.com/gkamradt/LLMTest_NeedleInAHaystack
# - N. F. Liu et al., "Lost in the middle: how language models use long contexts", TACL 2024
#   (arXiv 2023). https://arxiv.org/abs/2307.03172
# - PyTorch, "Distributed communication package: torch.distributed" (point-to-point operations).
#   https://pytorch.org/docs/stable/distributed.html
