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
# # GPU essentials: FLOPs, bytes and the roofline
#
# How fast a language model trains or answers is set by two numbers of the hardware: how many
# floating-point operations per second it can execute, and how many bytes per second it can move
# between memory and the arithmetic units. Which of the two limits a computation depends on its
# *arithmetic intensity*, the FLOPs it performs per byte it moves. A large matrix product is
# limited by arithmetic; generating one token at a time is limited by memory. This notebook
# measures both numbers on the machine it runs on (a CPU core here; the method is the same on a
# GPU, and a GPU section runs when one is present), draws the roofline model from them, and
# does the memory arithmetic of data types and of 7B and 70B models that later modules rely on.
#
# **Learning objectives**
# - Count the FLOPs and bytes of a matrix product and of elementwise operations, and compute
#   their arithmetic intensity.
# - Measure matmul throughput and memory bandwidth on this machine, and place the measurements
#   on a roofline plot.
# - Explain, from a measurement, why batching turns memory-bound matrix-vector products into
#   compute-bound matrix products, and what that means for serving a model.
# - Compare fp32, fp16, bf16, int8 and int4 in range, precision and size, and compute the memory
#   a 7B or 70B model needs for inference and for training with Adam.
# - Describe the GPU memory hierarchy (registers, shared memory, L2, HBM, host memory) with the
#   figures of an NVIDIA H100.
#
# **Prerequisites:** [Linear algebra for language models](01-linear-algebra), for the $2mkn$
# FLOP count of a matrix product. [Probability for language models](02-probability) is useful
# but not required.
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
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch.utils.flop_counter import FlopCounterMode

import shared

shared.seed_everything(0)
device = shared.get_device()
print(shared.environment_summary("numpy", "matplotlib"))

# %% [markdown]
# ## Devices
#
# A CPU has a few cores, each fast and general. A GPU has many simpler cores grouped into
# *streaming multiprocessors* (SMs; an H100 SXM has 132), which together run tens of thousands
# of threads, and a separate memory of its own. In PyTorch every tensor lives on a *device*
# (`cpu`, `cuda`, `cuda:1`, ...), an operation runs on the device of its inputs, and moving data
# is explicit: `tensor.to(device)`. Mixing devices in one operation is an error, not a silent
# copy. `shared.get_device()` returns `cuda` when PyTorch sees a GPU and `cpu` otherwise.
#
# One difference matters for measuring speed: CUDA operations are *asynchronous*. The Python
# call queues the kernel and returns at once, so a timer must wait with
# `torch.cuda.synchronize()` before reading the clock. The GPU section at the end does this.

# %%
x = torch.randn(4, 4, device=device)
print(f"device chosen: {device}; x lives on {x.device}; "
      f"CUDA available: {torch.cuda.is_available()}")
print(f"this machine: {os.cpu_count()} CPU cores, torch uses {torch.get_num_threads()} threads")
y = x.to("cpu")  # a copy on the CPU (no copy at all when x is already there)
print(f"y on {y.device}, same values: {torch.equal(x.cpu(), y)}")

# %% [markdown]
# ## FLOPs, bytes and arithmetic intensity
#
# A product of an $m \times k$ by a $k \times n$ matrix performs $mkn$ multiplications and as
# many additions: $2mkn$ FLOPs. At the very least it must read both inputs and write the output,
# $(mk + kn + mn)$ numbers of $s$ bytes each. The ratio is its *arithmetic intensity*:
#
# $$I_{\text{matmul}} = \frac{2mkn}{s\,(mk + kn + mn)} \;\xrightarrow{\;m = k = n\;}\; \frac{2n}{3s}
# \quad \text{FLOP/byte}.$$
#
# It grows with $n$: every number read is reused $n$ times. An elementwise addition $c = a + b$
# of $n$ numbers does $n$ FLOPs for $3n$ numbers moved, $I = 1/(3s)$, whatever $n$ is: every
# number is used once. PyTorch's `FlopCounterMode` counts FLOPs of real operations; it agrees
# with the formula.

# %%
def matmul_flops(m: int, k: int, n: int) -> int:
    return 2 * m * k * n


def matmul_bytes(m: int, k: int, n: int, bytes_per_element: int) -> int:
    """Minimum traffic: read both inputs once, write the output once."""
    return (m * k + k * n + m * n) * bytes_per_element


a, b = torch.randn(128, 256), torch.randn(256, 64)
with FlopCounterMode(display=False) as counter:
    a @ b
print(f"FlopCounterMode: {counter.get_total_flops():,} FLOPs; "
      f"formula 2mkn: {matmul_flops(128, 256, 64):,}")

print(f"\n{'operation':34s} {'FLOPs':>14s} {'bytes (fp32)':>14s} {'FLOP/byte':>10s}")
for n in [64, 512, 4096]:
    f, by = matmul_flops(n, n, n), matmul_bytes(n, n, n, 4)
    print(f"{f'matmul {n} x {n} x {n}':34s} {f:14,d} {by:14,d} {f / by:10.2f}")
f, by = matmul_flops(4096, 4096, 1), matmul_bytes(4096, 4096, 1, 4)
print(f"{'matrix-vector 4096 x 4096 x 1':34s} {f:14,d} {by:14,d} {f / by:10.2f}")
n_el = 4096 * 4096
print(f"{'elementwise add, 4096^2 numbers':34s} {n_el:14,d} {3 * n_el * 4:14,d} {1 / 12:10.2f}")

# %% [markdown]
# ## Measuring on this machine
#
# To measure a rate we time an operation and divide. Three precautions make the number mean
# something:
# - The first call pays one-time costs (memory allocation, choosing a kernel), so we run it once
#   before timing.
# - We measure **one CPU core** (`torch.set_num_threads(1)`): a clean unit (a whole chip is
#   roughly that many cores' worth), and one thread runs the operation from start to end.
# - Other programs share this machine, and the operating system pauses our thread to run them.
#   A wall clock (`time.perf_counter`) counts those pauses; the CPU time of our own thread
#   (`time.thread_time`) does not, so we time with the latter, repeat the call, and keep the
#   fastest run, the one closest to what the hardware can do. (On a GPU the work happens
#   outside the CPU, and the wall clock is the right tool; see the GPU section.)
#
# All timings in this notebook are measurements: they vary from run to run and machine to
# machine, and the text below only relies on their orders of magnitude and ratios.

# %%
def seconds_per_call(fn: Callable[[], object], budget_s: float = 0.15,
                     max_reps: int = 100) -> float:
    """Fastest of several calls of fn, in CPU time of this thread, after one warm-up call."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (len(times) < max_reps and time.perf_counter() - start < budget_s):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return min(times)


def cpu_flags() -> set[str]:
    """Instruction-set flags of this CPU (Linux only; empty elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return set()
    flag_lines = [line for line in lines if line.startswith("flags")]
    return set(flag_lines[0].split(":", 1)[1].split()) if flag_lines else set()


threads_before = torch.get_num_threads()
torch.set_num_threads(1)
bf16_native = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
print(f"measuring with {torch.get_num_threads()} thread; CPU has native bf16 instructions "
      f"(avx512_bf16 or amx_bf16): {bf16_native}")

# %% [markdown]
# ### Matmul throughput against size
#
# We time square matrix products from $16 \times 16$ to $1024 \times 1024$, in fp32 and in
# bf16, and report GFLOP/s ($10^9$ FLOP per second). Small products cannot keep the arithmetic
# units busy: the fixed cost of a call and of setting up the loops dominates. The largest
# throughput we observe is our estimate of the core's peak. It is only an estimate: the
# vendor's figure is usually somewhat higher.

# %%
sizes = [16, 32, 64, 128, 256, 512, 1024]
matmul_gflops: dict[torch.dtype, list[float]] = {}
for dtype in (torch.float32, torch.bfloat16):
    matmul_gflops[dtype] = []
    for n in sizes:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        matmul_gflops[dtype].append(matmul_flops(n, n, n) / seconds_per_call(lambda: a @ b) / 1e9)

peak_fp32, peak_bf16 = max(matmul_gflops[torch.float32]), max(matmul_gflops[torch.bfloat16])
fp32_gflops, bf16_gflops = matmul_gflops[torch.float32], matmul_gflops[torch.bfloat16]
print(f"{'n':>5s} {'fp32 GFLOP/s':>13s} {'bf16 GFLOP/s':>13s}")
for n, fp32, bf16 in zip(sizes, fp32_gflops, bf16_gflops):
    print(f"{n:5d} {fp32:13.1f} {bf16:13.1f}")
print(f"estimated peak of one core: fp32 {peak_fp32:.0f} GFLOP/s, bf16 {peak_bf16:.0f} GFLOP/s")
print(f"bf16 / fp32 throughput: {bf16_gflops[0] / fp32_gflops[0]:.1f} at n = {sizes[0]}, "
      f"{bf16_gflops[-1] / fp32_gflops[-1]:.1f} at n = {sizes[-1]}")

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(sizes, fp32_gflops, "o-", label="fp32")
ax.plot(sizes, bf16_gflops, "s-", label="bf16")
ax.set(xscale="log", yscale="log", xlabel="matrix size n (n x n times n x n)",
       ylabel="GFLOP/s (one core, measured)", title="Matmul throughput on this machine")
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.legend()
plt.show()

# %% [markdown]
# Throughput rises by more than an order of magnitude from the smallest size to the largest,
# then levels off at the core's peak. Whether bf16 beats fp32 on a CPU depends on the
# instruction set: with native bf16 dot-product instructions (AVX512-BF16 or AMX, printed above)
# one instruction handles more bf16 numbers than fp32 numbers and large bf16 products can be
# faster; without them PyTorch converts to fp32 internally and bf16 is slower. At small sizes
# the conversions and set-up cost more than they save. The two ratios printed above say which
# case applies on this machine. On a GPU, bf16 runs on tensor cores and is many times faster
# than fp32 (see the H100 figures below).

# %% [markdown]
# ## The memory hierarchy
#
# Arithmetic units can only work on numbers that have reached them, and memory comes in levels:
# the closer to the arithmetic, the faster and the smaller. On an NVIDIA H100 SXM
# (datasheet and Hopper architecture whitepaper):
#
# | level | size | speed | where |
# |---|---|---|---|
# | registers | 256 KB per SM (33 MB over 132 SMs) | fastest | inside each SM |
# | L1 cache / shared memory (SRAM) | 256 KB per SM (up to 228 KB shared) | next fastest | inside each SM |
# | L2 cache | 50 MB | slower than L1, faster than HBM | on the chip, shared by all SMs |
# | HBM3 (GPU memory) | 80 GB | 3.35 TB/s | on the package, beside the chip |
# | host memory (CPU RAM) | hundreds of GB | 64 GB/s each way (PCIe Gen5 x16) | across the PCIe bus |
#
# and the same chip computes 67 TFLOP/s in fp32 and 989 TFLOP/s in bf16 on its tensor cores
# (dense; the datasheet's 1,979 assumes 2:4 sparsity). Dividing, it can do about 295 bf16 FLOPs
# in the time it takes to read one byte from HBM. Fast kernels such as FlashAttention are
# fast because they keep data in SRAM and registers and touch HBM as little as possible.
#
# A CPU has the same structure with other numbers: registers, L1, L2 and L3 caches, then DRAM.
# This machine's caches, as the operating system reports them:

# %%
def cache_sizes() -> dict[str, int]:
    """Data cache sizes in bytes, per level, of CPU 0 (Linux only; empty elsewhere)."""
    sizes_by_level: dict[str, int] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = (index / "level").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind != "Instruction" and size[-1] in "KM":
            sizes_by_level[f"L{level}"] = int(size[:-1]) * {"K": 2**10, "M": 2**20}[size[-1]]
    return sizes_by_level


caches = cache_sizes()
print(", ".join(f"{level} {size / 2**20:g} MiB" for level, size in caches.items())
      or "cache sizes unknown on this system")

# %% [markdown]
# We can see the hierarchy by copying arrays of increasing size and measuring the bandwidth,
# counting the bytes read plus the bytes written. While both arrays fit in a cache, the copy
# runs at cache speed; once they exceed the last level, it runs at DRAM speed. The bandwidth
# measured at the largest size is our estimate of this core's memory bandwidth. (At the
# smallest size the fixed cost of a call, a microsecond or so, holds the figure back.)

# %%
working_sets = [2**k for k in range(17, 30, 2)]  # 128 KiB ... 512 MiB, source plus destination
copy_gbs = []
for total_bytes in working_sets:
    src = torch.empty(total_bytes // 8).fill_(1.0)  # two float32 arrays of total_bytes / 2 each
    dst = torch.empty_like(src)
    copy_gbs.append(total_bytes / seconds_per_call(lambda: dst.copy_(src)) / 1e9)
    print(f"working set {total_bytes / 2**20:8.3f} MiB: {copy_gbs[-1]:6.1f} GB/s")
del src, dst
dram_gbs = copy_gbs[-1]
print(f"estimated DRAM bandwidth of one core: {dram_gbs:.1f} GB/s, "
      f"{max(copy_gbs) / dram_gbs:.1f} times slower than the fastest cache-sized copy")

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot([w / 2**20 for w in working_sets], copy_gbs, "o-", label="measured copy")
for (level, size), color in zip(caches.items(), ["tab:green", "tab:orange", "tab:red"]):
    ax.axvline(size / 2**20, color=color, ls="--", label=f"{level} size")
ax.set(xscale="log", xlabel="working set (MiB, source + destination)",
       ylabel="GB/s (one core, measured)", title="Copy bandwidth against working-set size")
ax.legend()
plt.show()

# %% [markdown]
# ## The roofline model
#
# Williams, Waterman and Patterson (2009) combined the two measurements into one bound. A
# computation of intensity $I$ (FLOP/byte) on a machine with peak $P$ (FLOP/s) and memory
# bandwidth $B$ (byte/s) runs at most at
#
# $$\text{attainable FLOP/s} = \min(P,\; B \cdot I).$$
#
# On a log-log plot this is a sloped line (memory-bound) that meets a flat one (compute-bound)
# at the *ridge point* $I^* = P / B$. We place our measurements on it: the matmuls at their
# intensity $2n/(3s)$, and two elementwise operations measured on arrays far larger than the
# caches, `torch.add` ($a + b$: 1 FLOP per 12 bytes) and `torch.addcmul` ($a + b \cdot c$:
# 2 FLOPs per 16 bytes).

# %%
n_elem = 32 * 2**20  # 128 MiB per fp32 array: far beyond the caches
u, v, w, out = (torch.empty(n_elem).fill_(x) for x in (1.0, 2.0, 3.0, 0.0))
elementwise = {  # name: (FLOP/byte, measured GFLOP/s)
    "add": (1 / 12, n_elem / seconds_per_call(lambda: torch.add(u, v, out=out)) / 1e9),
    "addcmul": (2 / 16,
                2 * n_elem / seconds_per_call(lambda: torch.addcmul(u, v, w, out=out)) / 1e9),
}
del u, v, w, out
for name, (intensity, gflops) in elementwise.items():
    print(f"{name:8s}: {intensity:.3f} FLOP/byte, {gflops:5.2f} GFLOP/s measured, "
          f"roofline bound {min(peak_fp32, dram_gbs * intensity):5.2f}")

ridge = peak_fp32 / dram_gbs
print(f"ridge point of this core (fp32): {ridge:.1f} FLOP/byte")

intensities = torch.logspace(-2, 3, 200)
fig, ax = plt.subplots(figsize=(8, 5))
ax.plot(intensities, torch.clamp(dram_gbs * intensities, max=peak_fp32), "k-",
        label="roofline, fp32")
ax.plot(intensities, torch.clamp(dram_gbs * intensities, max=peak_bf16), "k:",
        label="roofline, bf16 peak")
ax.plot([2 * n / 12 for n in sizes], fp32_gflops, "o", label="matmul fp32 (n = 16 ... 1024)")
ax.plot([2 * n / 6 for n in sizes], bf16_gflops, "s", label="matmul bf16")
for name, (intensity, gflops) in elementwise.items():
    ax.plot(intensity, gflops, "^", ms=9, label=f"elementwise {name}")
ax.axvline(ridge, color="gray", ls="--", lw=1, label=f"ridge point {ridge:.1f} FLOP/byte")
ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)",
       ylabel="GFLOP/s (one core, measured)",
       title="Roofline of this machine, with measured operations")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# The elementwise operations sit on the sloped part, close to the bandwidth roof: nothing can
# make them faster except moving fewer bytes, which is why frameworks *fuse* chains of
# elementwise operations into one kernel. The matmuls move right as they grow and climb to the
# flat part. The smallest ones fall well below the roof: the model bounds what is possible, and
# fixed per-call overheads are not in it. The intensity we used for matmuls is the minimum
# traffic; a real implementation moves more, and small matrices come from cache rather than
# DRAM, which is why a *hierarchical* roofline draws one sloped line per memory level.
#
# ## Why batching helps
#
# When a language model generates text, each new token passes through every weight matrix as a
# single vector: a matrix-vector product. For an $n \times n$ fp32 weight it does $2n^2$ FLOPs
# and reads $4n^2$ bytes, an intensity of about $0.5$, well left of the ridge. Processing $B$
# tokens at once (several users' requests, or all positions of a prompt) reuses every weight
# $B$ times:
#
# $$I(B) = \frac{2n^2B}{4(n^2 + 2nB)} \approx \frac{B}{2} \quad (B \ll n).$$
#
# We measure a $4096 \times 4096$ fp32 weight (64 MiB, larger than the last cache, so it
# comes from DRAM on every call) multiplied by $B$ vectors.

# %%
n_w = 4096
weight = torch.randn(n_w, n_w)
batches = [1, 2, 4, 8, 16, 32, 64, 128, 256]
batch_gflops = []
for B in batches:
    tokens = torch.randn(B, n_w)
    seconds = seconds_per_call(lambda: tokens @ weight.T)  # (B, n) @ (n, n), as nn.Linear does
    batch_gflops.append(matmul_flops(B, n_w, n_w) / seconds / 1e9)
batch_intensity = [matmul_flops(B, n_w, n_w) / matmul_bytes(B, n_w, n_w, 4) for B in batches]
predicted = [min(peak_fp32, dram_gbs * i) for i in batch_intensity]
del weight

for B, g, p in zip(batches, batch_gflops, predicted):
    call_ms = 1e3 * matmul_flops(B, n_w, n_w) / (g * 1e9)
    print(f"B = {B:3d}: {g:6.1f} GFLOP/s measured, roofline {p:6.1f}; "
          f"{call_ms:7.2f} ms per call, {1e3 * call_ms / B:7.1f} us per token")
print(f"throughput (and time per token) at B = {batches[-1]} is "
      f"{batch_gflops[-1] / batch_gflops[0]:.1f} times better than at B = 1")

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(batches, batch_gflops, "o-", label="measured")
ax.plot(batches, predicted, "k--", label="roofline min(P, B_mem * I(B))")
ax.set(xscale="log", yscale="log", xlabel="batch size B (vectors per weight read)",
       ylabel="GFLOP/s (one core, measured)", title="Batching a 4096 x 4096 fp32 layer")
ax.set_xticks(batches, [str(b) for b in batches])
ax.legend()
plt.show()

torch.set_num_threads(threads_before)  # measurements done: give back every thread

# %% [markdown]
# At batch 1 the core spends its time waiting for the weight to arrive from memory. As $B$
# grows, each weight read serves more tokens, so the time per token falls and throughput climbs
# towards the compute roof. The measurement stays below the model's line, which is an upper
# bound: real kernels move more than the minimum traffic, and the library picks different code
# for very thin matrices, so the smallest batches can be irregular. The trend is the one the
# roofline predicts. This is why inference servers batch requests, and why a 7B model
# generating one token at a time on an H100 uses a small fraction of the chip's arithmetic:
# with 2-byte weights its intensity is about 1 FLOP/byte, against a ridge point near 295.

# %% [markdown]
# ## Data types: range, precision and size
#
# A floating-point number stores a sign, an exponent (which sets the *range*) and a mantissa
# (which sets the *precision*). fp16 and bf16 both use 16 bits, but split them differently:
# fp16 keeps 10 mantissa bits and a narrow range, bf16 keeps fp32's 8 exponent bits, hence its
# range, and only 7 mantissa bits. Integers have a fixed step of 1 and are used with a scale
# factor (quantization). `torch.finfo` and `torch.iinfo` describe each type; int4 has no
# arithmetic in PyTorch (it is stored packed, two numbers per byte), so its range is computed.

# %%
print(f"{'dtype':9s} {'bits':>4s} {'max':>12s} {'smallest normal':>16s} {'eps (step at 1)':>16s}")
for dtype in (torch.float32, torch.float16, torch.bfloat16):
    fi = torch.finfo(dtype)
    name = str(dtype).replace("torch.", "")
    print(f"{name:9s} {fi.bits:4d} {fi.max:12.4g} {fi.smallest_normal:16.4g} {fi.eps:16.4g}")
ii = torch.iinfo(torch.int8)
print(f"{'int8':9s} {ii.bits:4d} {ii.max:12d} {'range':>16s} {f'[{ii.min}, {ii.max}]':>16s}")
print(f"{'int4':9s} {4:4d} {2**3 - 1:12d} {'range':>16s} {f'[{-(2**3)}, {2**3 - 1}]':>16s}")

# %% [markdown]
# The relative rounding error of storing a number $x$ in each type shows both properties at
# once. Inside the range, the worst error is flat at the precision, $\varepsilon/2$. Below the
# smallest normal number fp16 loses precision gradually (subnormal numbers), and where a curve
# reaches 100% the number has left the range: it rounds to 0 or to infinity.

# %%
values = torch.logspace(-12, 6, 6000, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(8, 4))
for dtype in (torch.float16, torch.bfloat16, torch.float32):
    stored = values.to(dtype).to(torch.float64)
    rel = ((stored - values).abs() / values).clamp(max=1.0)
    worst = rel.view(-1, 40).amax(dim=1)  # the largest error in each of 150 narrow bins
    ax.plot(values.view(-1, 40)[:, 0], worst, lw=1.5, label=str(dtype).replace("torch.", ""))
ax.set(xscale="log", yscale="log", xlabel="value x", ylabel="worst relative rounding error",
       title="Range and precision of fp16, bf16 and fp32")
ax.legend()
plt.show()

# %% [markdown]
# Three consequences that matter in training, each one line of code:
# - fp16 overflows at 65,504, so activations or losses larger than that become `inf`; bf16
#   does not.
# - fp16 flushes values below about $6 \times 10^{-8}$ to zero, so small gradients vanish.
#   Mixed-precision training in fp16 therefore multiplies the loss by a large *loss scale*
#   before the backward pass (Micikevicius et al., 2018); bf16, with fp32's range, does not need
#   it (Kalamkar et al., 2019).
# - bf16 has only 2 to 3 significant decimal digits: adding $10^{-4}$ to 1 changes nothing,
#   because the step between bf16 numbers near 1 is $2^{-7} \approx 0.008$. A weight updated by
#   small steps in bf16 would never move, which is why mixed-precision training keeps an fp32
#   *master copy* of the weights.

# %%
big, small = torch.tensor(70000.0), torch.tensor(1e-8)
print(f"70,000 in fp16: {big.half().item()} | in bf16: {big.bfloat16().item()}")
print(f"1e-8 in fp16: {small.half().item()} | in bf16: {small.bfloat16().item():.3e}")
for dtype in (torch.bfloat16, torch.float32):
    weight_value = torch.tensor(1.0, dtype=dtype)
    for _ in range(1000):
        weight_value = weight_value + torch.tensor(1e-4, dtype=dtype)
    name = str(dtype).replace("torch.", "")
    print(f"1 + 1000 updates of 1e-4 in {name:8s} = {weight_value.item():.4f} (exact: 1.1)")

# %% [markdown]
# Quantization stores weights as small integers $q$ with a scale $s$, $w \approx s\,q$. The
# simplest scheme, *absmax*, takes $s = \max|w| / q_{\max}$ over a group of weights
# ($q_{\max} = 127$ for int8, 7 for int4). One scale for the whole tensor is cheap; one scale per
# group of 64 weights adapts to local magnitudes at the price of storing more scales. As a
# stand-in for a trained weight (no pretrained model is needed for this point) we use a Gaussian
# matrix with GPT-2's initial standard deviation of 0.02. Real weights have outliers, which
# make a single per-tensor scale worse still (Dettmers et al., 2022).

# %%
def absmax_quantize(w: torch.Tensor, bits: int, group_size: int | None = None) -> torch.Tensor:
    """Quantize to signed `bits`-bit integers with one absmax scale per group, then dequantize."""
    q_max = 2 ** (bits - 1) - 1
    groups = w.reshape(-1, group_size) if group_size else w.reshape(1, -1)
    scale = groups.abs().amax(dim=1, keepdim=True) / q_max
    q = torch.clamp(torch.round(groups / scale), -q_max - 1, q_max)
    return (q * scale).reshape(w.shape)


w_demo = 0.02 * torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
print(f"{'format':22s} {'bits per weight':>15s} {'relative error':>15s}")
schemes = [("int8, one scale", 8, None), ("int4, one scale", 4, None),
           ("int4, groups of 64", 4, 64)]
for label, bits, group in schemes:
    error = (absmax_quantize(w_demo, bits, group) - w_demo).norm() / w_demo.norm()
    stored_bits = bits + (16 / group if group else 0)  # an fp16 scale per group
    print(f"{label:22s} {stored_bits:15.2f} {error:15.4f}")
bf16_error = (w_demo.bfloat16().float() - w_demo).norm() / w_demo.norm()
print(f"{'bf16 (for comparison)':22s} {16:15.2f} {bf16_error:15.4f}")

# %% [markdown]
# int8 with a single scale keeps the error near 1%. int4 with a single scale loses a large
# fraction of the weight (the relative error printed above), and one scale per group of 64
# weights roughly halves that for a quarter of a bit more per weight. This is why practical
# 4-bit formats, such as GPTQ's (Frantar et al., 2023) and QLoRA's NF4 (Dettmers et al., 2023),
# quantize in small groups.

# %% [markdown]
# ## Memory of 7B and 70B models
#
# A model's weights take (number of parameters) $\times$ (bytes per parameter). Training takes
# much more: the gradients, and Adam's two running averages per parameter. With fp32 throughout
# that is $4 + 4 + 4 + 4 = 16$ bytes per parameter. Mixed precision does not reduce it: bf16
# weights and gradients (2 + 2) plus an fp32 master copy and fp32 Adam moments (4 + 4 + 4) are
# again 16 bytes (Rajbhandari et al., 2020). Activations come on top and depend on batch size
# and sequence length; we leave them out. We first check the count on a real layer and a real
# optimizer step, then scale it up. (GB here means $10^9$ bytes.)

# %%
layer = torch.nn.Linear(1024, 1024)
optimizer = torch.optim.Adam(layer.parameters())
layer(torch.randn(8, 1024)).sum().backward()
optimizer.step()
n_params = sum(p.numel() for p in layer.parameters())
weights_bytes = sum(p.numel() * p.element_size() for p in layer.parameters())
grads_bytes = sum(p.grad.numel() * p.grad.element_size() for p in layer.parameters())
adam_bytes = sum(t.numel() * t.element_size() for state in optimizer.state.values()
                 for name, t in state.items() if name in ("exp_avg", "exp_avg_sq"))
total_bytes = weights_bytes + grads_bytes + adam_bytes
print(f"{n_params:,} parameters: weights {weights_bytes:,} B, gradients {grads_bytes:,} B, "
      f"Adam moments {adam_bytes:,} B -> {total_bytes / n_params:.0f} bytes per parameter")

# %%
bytes_per_param = {"fp32": 4, "bf16": 2, "int8": 1, "int4": 0.5}
TRAIN_BYTES_PER_PARAM = 16  # weights, gradients, Adam moments (and an fp32 master copy in bf16)
H100_GB = 80
models = {"7B": 7e9, "70B": 70e9}
memory_gb = {name: {fmt: n * b / 1e9 for fmt, b in bytes_per_param.items()}
             for name, n in models.items()}
for name, n in models.items():
    memory_gb[name]["train (Adam)"] = n * TRAIN_BYTES_PER_PARAM / 1e9

columns = list(memory_gb["7B"])
print(f"{'model':6s}" + "".join(f"{c:>14s}" for c in columns))
for name in models:
    print(f"{name:6s}" + "".join(f"{memory_gb[name][c]:11,.1f} GB" for c in columns))
print(f"{'H100s':6s}" + "".join(f"{math.ceil(memory_gb['70B'][c] / H100_GB):>14d}" for c in columns)
      + "   <- 80 GB GPUs needed for the 70B model")

fig, ax = plt.subplots(figsize=(9, 4))
width = 0.38
for k, name in enumerate(models):
    positions = [i + (k - 0.5) * width for i in range(len(columns))]
    ax.bar(positions, [memory_gb[name][c] for c in columns], width, label=name)
ax.axhline(H100_GB, color="k", ls="--", label="one H100 (80 GB)")
ax.set_xticks(range(len(columns)), ["weights " + c if c in bytes_per_param else c for c in columns])
ax.set(yscale="log", xlabel="what is stored", ylabel="memory (GB, log scale)",
       title="Memory of 7B and 70B models (weights only, and training with Adam)")
ax.legend()
plt.show()

# %% [markdown]
# A 7B model fits on one 80 GB GPU for inference in any of these formats, and on a 24 GB
# consumer card from bf16 down. Training it with Adam needs 112 GB before activations: more than
# one GPU, or memory-saving techniques (sharding the optimizer state with ZeRO, or fine-tuning
# only small adapters with LoRA, in modules 08 and 10). A 70B model needs two H100s to hold its bf16
# weights, and 14 to train with plain Adam, which is why int4 quantization, at 35 GB, is what
# puts such a model on a single GPU.

# %% [markdown]
# ## On a GPU (runs only when CUDA is present)
#
# The cell below repeats the essential measurements on a CUDA device when there is one: matmul
# TFLOP/s in fp32, in TF32 (fp32 inputs on tensor cores with a 10-bit mantissa) and in bf16; the
# bandwidth of GPU memory (a device-to-device copy); and host-to-device bandwidth, from ordinary
# (pageable) and from *pinned* host memory, which the GPU can read directly. Timing waits for
# the GPU with `torch.cuda.synchronize()`. Without a GPU it says so and does nothing.

# %%
def gpu_seconds_per_call(fn: Callable[[], object], reps: int = 10) -> float:
    """Average time of fn on the GPU, waiting for all queued work before reading the clock."""
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps


if device.type == "cuda":
    props = torch.cuda.get_device_properties(device)
    print(f"{props.name}: {props.total_memory / 1e9:.1f} GB, {props.multi_processor_count} SMs, "
          f"compute capability {props.major}.{props.minor}")
    tf32_before = torch.backends.cuda.matmul.allow_tf32
    gpu_sizes = [1024, 2048, 4096, 8192]
    gpu_tflops: dict[str, list[float]] = {}
    for label, dtype, allow_tf32 in [("fp32", torch.float32, False), ("tf32", torch.float32, True),
                                     ("bf16", torch.bfloat16, False)]:
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        gpu_tflops[label] = []
        for n in gpu_sizes:
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            seconds = gpu_seconds_per_call(lambda: a @ b)
            gpu_tflops[label].append(matmul_flops(n, n, n) / seconds / 1e12)
        print(f"{label}: " + ", ".join(f"n={n}: {t:.1f} TFLOP/s"
                                       for n, t in zip(gpu_sizes, gpu_tflops[label])))
    torch.backends.cuda.matmul.allow_tf32 = tf32_before
    del a, b

    n_bytes = 512 * 2**20
    pageable = torch.empty(n_bytes // 4)
    pinned = pageable.pin_memory()
    on_gpu = torch.empty(n_bytes // 4, device=device)
    gpu_copy = torch.empty_like(on_gpu)
    h2d_pageable = n_bytes / gpu_seconds_per_call(lambda: on_gpu.copy_(pageable), reps=5) / 1e9
    h2d_pinned = n_bytes / gpu_seconds_per_call(
        lambda: on_gpu.copy_(pinned, non_blocking=True), reps=5) / 1e9
    hbm = 2 * n_bytes / gpu_seconds_per_call(lambda: gpu_copy.copy_(on_gpu), reps=20) / 1e9
    del pageable, pinned, on_gpu, gpu_copy
    print(f"host -> device: {h2d_pageable:.1f} GB/s from pageable memory, "
          f"{h2d_pinned:.1f} GB/s from pinned")
    print(f"device memory copy (read + write): {hbm:.0f} GB/s")
    ridge_gpu = max(gpu_tflops["bf16"]) * 1e12 / (hbm * 1e9)
    print(f"measured ridge point in bf16: {ridge_gpu:.0f} FLOP/byte")

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values_tflops in gpu_tflops.items():
        ax.plot(gpu_sizes, values_tflops, "o-", label=label)
    ax.set(xscale="log", yscale="log", xlabel="matrix size n", ylabel="TFLOP/s (measured)",
           title=f"Matmul throughput on {props.name}")
    ax.set_xticks(gpu_sizes, [str(n) for n in gpu_sizes])
    ax.legend()
    plt.show()
else:
    print("skipped: no CUDA device (torch.cuda.is_available() is False). On a GPU machine this "
          "cell measures matmul TFLOP/s and host-to-device bandwidth.")

# %% [markdown]
# On a GPU, expect the bf16 curve far above fp32 (tensor cores), TF32 in between, and pinned
# host memory clearly faster than pageable memory, yet one to two orders of magnitude slower
# than the GPU's own memory. That last gap is why data and weights are moved to the GPU once and
# kept there.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Arithmetic intensity of a matrix product
#
# Write `matmul_intensity(m, k, n, bytes_per_element)` returning the arithmetic intensity in
# FLOP/byte of an $(m \times k)$ by $(k \times n)$ product, counting $2mkn$ FLOPs and the
# minimum traffic (each input read once, the output written once). The check includes a
# square fp32 product and the bf16 matrix-vector product of token-by-token generation.

# %% tags=["solution"]
def matmul_intensity(m: int, k: int, n: int, bytes_per_element: float) -> float:
    """FLOP per byte of an (m x k) @ (k x n) product with minimum memory traffic."""
    # BEGIN SOLUTION
    return 2 * m * k * n / ((m * k + k * n + m * n) * bytes_per_element)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close, check_equal, check_function, passed

check_function(
    matmul_intensity,
    [((1024, 1024, 1024, 4), 2 * 1024 / 12),
     ((1, 4096, 4096, 2), 2 * 4096**2 / ((4096 + 4096**2 + 4096) * 2)),
     ((64, 128, 32, 4), 2 * 64 * 128 * 32 / ((64 * 128 + 128 * 32 + 64 * 32) * 4))],
    "matmul_intensity",
)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: How many GPUs?
#
# Write `memory_gb(n_params, bytes_per_param)` returning the memory in GB ($10^9$ bytes). Then,
# for 80 GB GPUs and ignoring activations, set `gpus_serve_13b_bf16` to the number of GPUs
# needed to hold a 13B-parameter model's bf16 weights and `gpus_train_13b_adam` to the number
# needed to train it with Adam at 16 bytes per parameter.

# %% tags=["solution"]
def memory_gb(n_params: float, bytes_per_param: float) -> float:
    """Memory in GB (1e9 bytes) of n_params numbers of bytes_per_param bytes each."""
    # BEGIN SOLUTION
    return n_params * bytes_per_param / 1e9
    # END SOLUTION


gpus_serve_13b_bf16 = None
gpus_train_13b_adam = None
# BEGIN SOLUTION
gpus_serve_13b_bf16 = math.ceil(memory_gb(13e9, 2) / 80)
gpus_train_13b_adam = math.ceil(memory_gb(13e9, 16) / 80)
# END SOLUTION

# %% tags=["check"]
check_function(memory_gb, [((7e9, 2), 14.0), ((70e9, 0.5), 35.0), ((1.5e9, 4), 6.0)], "memory_gb")
check_equal(gpus_serve_13b_bf16, 1, "gpus_serve_13b_bf16")
check_equal(gpus_train_13b_adam, 3, "gpus_train_13b_adam")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: The roofline, and the batch that reaches the ridge
#
# Write `attainable_flops(intensity, peak_flops, bandwidth)` implementing the roofline bound
# $\min(P, B \cdot I)$ (all in base units: FLOP/s, byte/s). Then consider an $8192 \times 8192$
# bf16 weight applied to a batch of $B$ tokens (an $(B \times 8192)$ by $(8192 \times 8192)$
# product) on an H100 with $P = 989 \times 10^{12}$ FLOP/s and $3.35 \times 10^{12}$ byte/s.
# Set `ridge_batch` to the smallest integer $B$ for which the product is compute-bound, that is,
# for which its intensity reaches $P / B_{\text{mem}}$. (Exercise 1's function helps.)

# %% tags=["solution"]
def attainable_flops(intensity: float, peak_flops: float, bandwidth: float) -> float:
    """Roofline bound on FLOP/s for a computation of the given intensity (FLOP/byte)."""
    # BEGIN SOLUTION
    return min(peak_flops, bandwidth * intensity)
    # END SOLUTION


ridge_batch = None
# BEGIN SOLUTION
H100_PEAK, H100_BANDWIDTH = 989e12, 3.35e12
ridge_batch = next(B for B in range(1, 10_000)
                   if matmul_intensity(B, 8192, 8192, 2) >= H100_PEAK / H100_BANDWIDTH)
print(f"ridge batch: {ridge_batch}")
# END SOLUTION

# %% tags=["check"]
check_function(attainable_flops, [((0.5, 100e9, 20e9), 10e9), ((1000.0, 100e9, 20e9), 100e9),
                                  ((5.0, 100e9, 20e9), 100e9)], "attainable_flops")
ridge_intensity = 989e12 / 3.35e12
expected_batch = next(B for B in range(1, 10_000)
                      if 2 * B * 8192**2 / ((B * 8192 + 8192**2 + B * 8192) * 2) >= ridge_intensity)
check_equal(ridge_batch, expected_batch, "ridge_batch")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: The speed limit of token-by-token generation
#
# Generating one token at batch size 1 reads every weight once, so memory bandwidth caps the
# speed: at most (bandwidth) / (bytes of weights) tokens per second, whatever the arithmetic.
# Write `max_tokens_per_second(n_params, bytes_per_param, bandwidth)` (bandwidth in byte/s).
# Then set `h100_7b_bf16` and `h100_7b_int4` to this limit for a 7B model on an H100
# (3.35 TB/s) in bf16 and in int4.

# %% tags=["solution"]
def max_tokens_per_second(n_params: float, bytes_per_param: float, bandwidth: float) -> float:
    """Upper bound on batch-1 decoding speed: one full read of the weights per token."""
    # BEGIN SOLUTION
    return bandwidth / (n_params * bytes_per_param)
    # END SOLUTION


h100_7b_bf16 = None
h100_7b_int4 = None
# BEGIN SOLUTION
h100_7b_bf16 = max_tokens_per_second(7e9, 2, 3.35e12)
h100_7b_int4 = max_tokens_per_second(7e9, 0.5, 3.35e12)
print(f"7B on an H100: at most {h100_7b_bf16:.0f} tokens/s in bf16, {h100_7b_int4:.0f} in int4")
# END SOLUTION

# %% tags=["check"]
check_function(max_tokens_per_second,
               [((1e9, 2, 1e12), 500.0), ((70e9, 0.5, 3.35e12), 3.35e12 / 35e9)],
               "max_tokens_per_second")
check_close(h100_7b_bf16, 3.35e12 / 14e9, "h100_7b_bf16")
check_close(h100_7b_int4, 3.35e12 / 3.5e9, "h100_7b_int4")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - A matrix product does $2mkn$ FLOPs on $(mk + kn + mn)$ numbers; its arithmetic intensity
#   grows with size. Elementwise operations have a small, fixed intensity.
# - Measured here: matmul throughput rises by more than an order of magnitude with size; copying
#   from DRAM is several times slower than copying within the caches; elementwise operations run
#   at the bandwidth roof.
#   All such figures are measurements on this machine and vary between runs.
# - The roofline $\min(P, B \cdot I)$ says whether a computation is limited by arithmetic or by
#   memory. The ridge point of an H100 in bf16 is about 295 FLOP/byte.
# - Token-by-token generation is a matrix-vector product, deep in the memory-bound region;
#   batching reuses each weight read and moves it towards the compute roof (measured above).
# - fp16 has precision but little range; bf16 has fp32's range with less precision; int8 and
#   int4 need scales. Weights take 4, 2, 1 or 0.5 bytes per parameter; training with Adam takes
#   about 16 bytes per parameter before activations: 112 GB for a 7B model, 1.12 TB for 70B.
#
# Next in this module: [PyTorch and autograd](04-pytorch-and-autograd), tensors, gradients and
# a training loop written by hand.
#
# ## References
#
# - S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model
#   for multicore architectures", *Communications of the ACM* 52(4), 2009.
#   https://doi.org/10.1145/1498765.1498785
# - NVIDIA, *H100 Tensor Core GPU datasheet*.
#   https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet
# - NVIDIA, *H100 Tensor Core GPU architecture* (Hopper whitepaper), 2022.
#   https://resources.nvidia.com/en-us-tensor-core/gtc22-whitepaper-hopper
# - NVIDIA, *Hopper tuning guide* (L1/shared memory per SM).
#   https://docs.nvidia.com/cuda/hopper-tuning-guide/
# - NVIDIA, *GPU performance background user's guide* (arithmetic intensity, math- and
#   memory-bound operations).
#   https://docs.nvidia.com/deeplearning/performance/dl-performance-gpu-background/
# - PyTorch documentation, *CUDA semantics* (asynchronous execution, pinned memory, TF32).
#   https://pytorch.org/docs/stable/notes/cuda.html
# - P. Micikevicius et al., "Mixed precision training", ICLR 2018. https://arxiv.org/abs/1710.03740
# - D. Kalamkar et al., "A study of BFLOAT16 for deep learning training", 2019.
#   https://arxiv.org/abs/1905.12322
# - S. Rajbhandari et al., "ZeRO: memory optimizations toward training trillion parameter
#   models", SC 2020. https://arxiv.org/abs/1910.02054
# - T. Dettmers et al., "LLM.int8(): 8-bit matrix multiplication for transformers at scale",
#   NeurIPS 2022. https://arxiv.org/abs/2208.07339
# - E. Frantar et al., "GPTQ: accurate post-training quantization for generative pre-trained
#   transformers", ICLR 2023. https://arxiv.org/abs/2210.17323
# - T. Dettmers et al., "QLoRA: efficient finetuning of quantized LLMs", NeurIPS 2023.
#   https://arxiv.org/abs/2305.14314
# - T. Dao et al., "FlashAttention: fast and memory-efficient exact attention with IO-awareness",
#   NeurIPS 2022. https://arxiv.org/abs/2205.14135
# - H. He, "Making deep learning go brrrr from first principles", 2022.
#   https://horace.io/brrr_intro.html
# - Spheron Network, "Ultimate guide to the best NVIDIA GPUs for running large language models".
#   https://blog.spheron.network/ultimate-guide-to-the-best-nvidia-gpus-for-running-large-language-models
