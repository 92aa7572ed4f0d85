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
# # Kernels and hardware: from a Python loop to PTX
#
# A model is a graph of operations, and each operation runs as a *kernel*: a compiled loop that
# reads tensors from memory, computes, and writes the result back. Outside the large matrix
# products, almost every kernel of a transformer (additions, normalisations, activations,
# softmax) is limited by the bytes it moves, not by its arithmetic, so the most common
# optimisation in practice is *fusion*: doing several operations in one pass over memory.
# FlashAttention, fused RMSNorm and `torch.compile` all rest on it. How a kernel is written then
# decides whether the vector units of the chip are kept busy, and every accelerator (NVIDIA and
# AMD GPUs, TPUs, Gaudi, custom ASICs, FPGAs) offers its own answer to the same two questions:
# how to feed the matrix units, and how to hide the time spent waiting for memory. This notebook
# measures fusion on the CPU in front of you, reads the machine code a compiler produces for it,
# generates real GPU assembly (PTX) offline, explains the ideas of the Mojo language with Python
# analogues, and surveys the hardware and the kernel libraries built for it.
#
# **Learning objectives**
# - Predict the time of a memory-bound operation from the bytes it moves and the measured
#   bandwidth, and explain why fusion and avoiding temporary allocations speed it up.
# - Write a fused add + RMSNorm kernel with numba, check it against PyTorch, and measure it
#   against unfused NumPy and PyTorch operations.
# - Find the SIMD instructions in the LLVM IR and assembly a JIT compiler generates, and read a
#   PTX listing (and its AMD counterpart) generated from LLVM IR.
# - Explain Mojo's ownership conventions, SIMD type and compile-time parameters, each through a
#   Python or NumPy analogue that runs here.
# - Compare GPUs, TPUs, Gaudi, ASICs and FPGAs, and describe what CUTLASS/CuTe, Hopper's TMA and
#   warp specialisation contribute to kernels such as FlashAttention-3.
#
# **Prerequisites:** [GPU essentials](../00-foundations/03-gpu-essentials) (FLOPs, bytes, the
# roofline and the memory hierarchy) and
# [layer normalization](../02-transformer-architecture/07-layer-normalization) (RMSNorm).
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
import importlib.util
import math
import re
import time
from collections.abc import Callable

import llvmlite.binding as llvm
import matplotlib.pyplot as plt
import numba
import numpy as np
import torch
import torch.nn.functional as F
from numba import njit, prange

import shared

shared.seed_everything(0)
# One thread for PyTorch and numba in every timing: the comparisons below are between kernels,
# and on a machine whose two cores are shared with other jobs a second thread mostly measures
# the scheduler. One section measures the second thread on its own.
torch.set_num_threads(1)
numba.set_num_threads(1)
print(shared.environment_summary("numpy", "numba", "llvmlite", "matplotlib"))
print(f"host CPU as LLVM sees it: {llvm.get_host_cpu_name()}")


def best_time(fn: Callable[[], object], repeats: int = 7) -> float:
    """Fastest of `repeats` runs of fn in CPU seconds of this process, after a warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


# %% [markdown]
# All timings in this notebook are measurements on a shared machine: they change from run to
# run, so the text relies only on ratios measured back to back and on orders of magnitude.
# `best_time` counts the CPU time of this process (`time.process_time`), which leaves out the
# time the operating system gives to other programs, and keeps the fastest of several runs
# after a warm-up call.
#
# ## Bytes, not FLOPs
#
# [GPU essentials](../00-foundations/03-gpu-essentials) drew the roofline: a kernel that performs
# $F$ floating-point operations and moves $B$ bytes takes at least
# $\max(F / \text{peak FLOP/s},\; B / \text{bandwidth})$. Take the operation that opens every
# block of a Llama-style model, a residual addition followed by RMSNorm
# (Zhang and Sennrich, 2019):
#
# $$h = x + r, \qquad y_{ij} = \frac{h_{ij}}{\sqrt{\frac{1}{d}\sum_k h_{ik}^2 + \epsilon}}\; w_j .$$
#
# Per element it does about five FLOPs (add, square, accumulate, two multiplies) and must read
# two fp32 numbers and write one: 12 bytes, an arithmetic intensity near 0.4 FLOP/byte. An
# H100 needs about 300 FLOP/byte to be compute-bound (989 TFLOP/s of dense bf16 over 3.35 TB/s,
# from NVIDIA's datasheet), a CPU core a few FLOP/byte. This kernel is memory-bound on every
# machine ever built, so its time is its bytes divided by the bandwidth. We measure the
# bandwidth of this machine with a large copy, which reads and writes every byte once.

# %%
copy_src = np.ones(64 * 2**20 // 4, dtype=np.float32)  # 64 MiB, far larger than any cache
copy_dst = np.empty_like(copy_src)
copy_seconds = best_time(lambda: np.copyto(copy_dst, copy_src))
bandwidth = 2 * copy_src.nbytes / copy_seconds  # bytes read + bytes written, per second
print(f"measured memory bandwidth (one core, 64 MiB copy): {bandwidth / 1e9:.1f} GB/s")
del copy_src, copy_dst

# %% [markdown]
# ## Fusion: one pass over memory instead of ten
#
# Written with array operations, add + RMSNorm becomes a chain: `h = x + r`, `h * h`, a mean
# over each row, a division and a multiplication by the weight. Every operation reads its
# inputs from main memory and writes a full-size result back, so the chain makes about ten
# passes over an array of the tensor's size (the reads and writes are counted in the table
# below). A *fused* kernel makes one loop over the rows: it reads $x$ and $r$, keeps the row in
# cache while it computes the sum of squares, and writes $y$ once: three passes.
#
# Below is that kernel with numba, a JIT compiler that turns a Python function over NumPy arrays
# into machine code through LLVM. `prange` marks the row loop as parallel, so with more threads
# numba splits the rows between them. `fastmath=True` lets the compiler reorder the sum of
# squares, which it must do to use SIMD instructions (shown further down).

# %%
@njit(parallel=True, fastmath=True)
def fused_add_rmsnorm(x: np.ndarray, residual: np.ndarray, weight: np.ndarray, eps: float,
                      out: np.ndarray) -> None:
    """out = RMSNorm(x + residual) * weight, one pass over each row."""
    rows, cols = x.shape
    for i in prange(rows):
        sum_squares = np.float32(0.0)
        for j in range(cols):
            h = x[i, j] + residual[i, j]
            out[i, j] = h
            sum_squares += h * h
        scale = np.float32(1.0) / np.sqrt(sum_squares / cols + eps)
        for j in range(cols):  # the row is still in cache: this pass costs no memory traffic
            out[i, j] = out[i, j] * scale * weight[j]


ROWS, COLS, EPS = 4096, 1024, np.float32(1e-6)  # 4,096 tokens of width 1,024: 16 MiB a tensor
rng = np.random.default_rng(0)
x_np = rng.standard_normal((ROWS, COLS), dtype=np.float32)
residual_np = rng.standard_normal((ROWS, COLS), dtype=np.float32)
weight_np = rng.standard_normal(COLS, dtype=np.float32)
out_np = np.empty_like(x_np)

start = time.perf_counter()
fused_add_rmsnorm(x_np, residual_np, weight_np, EPS, out_np)  # the first call compiles
compile_seconds = time.perf_counter() - start
print(f"numba compiled the fused kernel in {compile_seconds:.1f} s (excluded from the timings)")

# %% [markdown]
# The contenders, all computing the same function:
#
# 1. **PyTorch eager**: five operations, each a separate kernel that writes a full-size result.
# 2. **NumPy**: the same five operations.
# 3. **PyTorch add, then `F.rms_norm`**: the library's normalisation function.
# 4. **The fused numba kernel**, writing into a preallocated buffer.
#
# First, that they agree with each other.

# %%
x_t, residual_t, weight_t = (torch.from_numpy(a) for a in (x_np, residual_np, weight_np))


def torch_eager() -> torch.Tensor:
    h = x_t + residual_t
    return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + EPS) * weight_t


def numpy_ops() -> np.ndarray:
    h = x_np + residual_np
    return h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + EPS) * weight_np


def torch_rms_norm() -> torch.Tensor:
    return F.rms_norm(x_t + residual_t, (COLS,), weight_t, float(EPS))


def numba_fused() -> np.ndarray:
    fused_add_rmsnorm(x_np, residual_np, weight_np, EPS, out_np)
    return out_np


reference = torch_eager().numpy()
for name, fn in [("NumPy", numpy_ops), ("PyTorch add + F.rms_norm", torch_rms_norm),
                 ("numba fused kernel", numba_fused)]:
    result = fn()
    result = result.numpy() if isinstance(result, torch.Tensor) else result
    print(f"{name:25s} max |difference from PyTorch eager| = {np.abs(result - reference).max():.1e}")

# %% [markdown]
# Is `F.rms_norm` a fused kernel? The profiler answers by listing the operations a call runs:

# %%
with torch.profiler.profile() as profiler:
    F.rms_norm(x_t[:8], (COLS,), weight_t, float(EPS))
print("operations inside F.rms_norm on the CPU:",
      [event.name for event in profiler.events() if event.name in
       ("aten::pow", "aten::mean", "aten::add_", "aten::rsqrt", "aten::mul")])

# %% [markdown]
# On the CPU, PyTorch decomposes it into the same chain (its fused kernel is CUDA-only in this
# version), so it makes the same passes as the eager code. The passes, counted: the chain reads
# $x$ and $r$ and writes $h$ (3); squares $h$ (read 1, write 1); averages the squares (read 1;
# the row means are tiny); multiplies $h$ by the inverse root (read 1, write 1); multiplies by
# $w$ (read 1, write 1). Ten passes of 16 MiB each. The fused kernel: 3. Dividing by the
# measured bandwidth predicts a time for each; now the measurement.

# %%
array_bytes = x_np.nbytes
variants = {  # name: (function, passes over a full-size array, as counted above)
    "PyTorch eager (5 ops)": (torch_eager, 10),
    "NumPy (5 ops)": (numpy_ops, 10),
    "PyTorch add + F.rms_norm": (torch_rms_norm, 10),
    "numba fused kernel": (numba_fused, 3),
}
timings = {name: best_time(fn) for name, (fn, _) in variants.items()}
fused_time = timings["numba fused kernel"]
print(f"{'variant':25s} {'passes':>6s} {'predicted':>10s} {'measured':>9s} {'vs fused':>9s}")
for name, (_, passes) in variants.items():
    predicted = passes * array_bytes / bandwidth
    print(f"{name:25s} {passes:6d} {predicted * 1e3:7.2f} ms {timings[name] * 1e3:6.2f} ms "
          f"{timings[name] / fused_time:8.1f}x")

fig, ax = plt.subplots(figsize=(8, 3.4))
names = list(variants)
positions = np.arange(len(names))
ax.barh(positions + 0.2, [timings[n] * 1e3 for n in names], height=0.4, label="measured")
ax.barh(positions - 0.2, [variants[n][1] * array_bytes / bandwidth * 1e3 for n in names],
        height=0.4, label="predicted: passes x bytes / bandwidth")
ax.set_yticks(positions, names)
ax.invert_yaxis()
ax.set(xlabel="time per call (ms), one core", title="Add + RMSNorm on a 4096 x 1024 fp32 tensor")
ax.legend(loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# The unfused chains take about as long as ten passes over memory predict, and the fused kernel
# about as long as three: it runs close to the memory bandwidth, and its lead over the others
# comes from the bytes it does not move, not from faster arithmetic. (The measured ratios move
# from run to run; the ordering does not.) The same reasoning, applied on a GPU, gives kernels
# such as vLLM's `fused_add_rms_norm`, and FlashAttention for the much longer chain of
# attention.
#
# `prange` would spread the rows over threads (`numba.set_num_threads(2)`); we keep one thread
# throughout, so that every contender uses one core.

# %% [markdown]
# ### Letting a compiler fuse: `torch.compile`
#
# PyTorch 2's compiler (Ansel et al., 2024) captures the eager function as a graph, and its
# Inductor backend generates one fused loop for such chains: C++ with vector intrinsics on a
# CPU, Triton on a GPU. On a CPU the first call runs a C++ compiler, which takes 15 to 20 s on
# this 2-core machine, so it is a knob, off by default.

# %%
RUN_TORCH_COMPILE = False  # True: about 15-20 s of C++ compilation on a 2-core CPU

if RUN_TORCH_COMPILE:
    compiled = torch.compile(torch_eager)
    start = time.perf_counter()
    compiled()
    print(f"torch.compile: first call (compilation) {time.perf_counter() - start:.1f} s")
    compiled_time = best_time(compiled)
    print(f"max |difference| = {(compiled() - torch.from_numpy(reference)).abs().max():.1e}; "
          f"{compiled_time * 1e3:.2f} ms per call, {timings['PyTorch eager (5 ops)'] / compiled_time:.1f}x "
          f"faster than eager, {compiled_time / fused_time:.2f}x the time of the numba kernel")
else:
    print("torch.compile skipped: set RUN_TORCH_COMPILE = True to compile and time it")

# %% [markdown]
# ## What the compiler made of it: SIMD in LLVM IR and assembly
#
# A modern core executes one instruction on a whole vector register: 4 floats with SSE, 8 with
# AVX2, 16 with AVX-512. A loop that handles one element per instruction leaves most of the
# core idle. numba hands our function to LLVM, and LLVM's *loop vectoriser* rewrites loops to
# work on vectors when it can prove that is safe. Both stages can be inspected: `inspect_llvm`
# returns the LLVM intermediate representation (IR), `inspect_asm` the machine code. A small
# kernel keeps the listing short: $y \leftarrow a x + y$ (axpy).

# %%
@njit(fastmath=True)
def axpy(a: float, x: np.ndarray, y: np.ndarray) -> None:
    for i in range(x.shape[0]):
        y[i] = a * x[i] + y[i]


axpy(np.float32(2.0), np.ones(8, np.float32), np.ones(8, np.float32))
signature = axpy.signatures[0]
llvm_ir, assembly = axpy.inspect_llvm(signature), axpy.inspect_asm(signature)
vector_ir = [line.strip() for line in llvm_ir.splitlines() if re.search(r"<\d+ x float>", line)]
widths = sorted({int(w) for w in re.findall(r"<(\d+) x float>", llvm_ir)})
print(f"compiled for: a {signature[0]}, x and y arrays of {signature[1].dtype}")
print(f"LLVM IR: {len(llvm_ir.splitlines())} lines, {len(vector_ir)} on vectors of "
      f"{widths} floats. A few of them:")
for line in [line for line in vector_ir if "load" in line or "fmul" in line or "fadd" in line][:6]:
    print("   ", line[:110])

vector_asm = [line.strip() for line in assembly.splitlines()
              if re.search(r"\bv(fmadd\w*|mul|add|movu)ps\b", line)]
print(f"\nassembly: {len(vector_asm)} packed-single (ps) vector instructions, for example:")
for line in vector_asm[:6]:
    print("   ", line)

# %% [markdown]
# `<N x float>` is an LLVM vector type: the loop body loads, multiplies and adds N floats at a
# time (N is 16 on a CPU with AVX-512, 8 with AVX2). In the assembly, `vfmadd...ps` is a fused
# multiply-add on packed single-precision floats, and the register names say the width: `xmm`
# is 128 bits, `ymm` 256, `zmm` 512. LLVM also unrolls the loop so that several independent
# vectors are in flight at once, and handles the elements left over at the end of the array
# with narrower vectors (the second width in the list).
#
# Vectorising a *reduction* changes the order of the additions, and floating-point addition is
# not associative, so the compiler may only do it when allowed. `fastmath=True` allows it.
# The same sum of squares, compiled both ways:

# %%
def sum_of_squares(x: np.ndarray) -> float:
    total = np.float32(0.0)
    for i in range(x.shape[0]):
        total += x[i] * x[i]
    return total


strict_sum = njit(fastmath=False)(sum_of_squares)
fast_sum = njit(fastmath=True)(sum_of_squares)
values = rng.standard_normal(2**16, dtype=np.float32)  # 256 KiB: stays in the L2 cache
exact = float(np.sum(values.astype(np.float64) ** 2))  # float64 reference
for name, fn in [("fastmath=False", strict_sum), ("fastmath=True", fast_sum)]:
    error = abs(fn(values) - exact) / exact  # the first call compiles
    ir = fn.inspect_llvm(fn.signatures[0])
    print(f"{name:15s} vector types in the IR: {sorted(set(re.findall(r'<[0-9]+ x float>', ir)))}; "
          f"relative error of the float32 sum: {error:.1e}")
strict_time = best_time(lambda: strict_sum(values), repeats=20)
fast_time = best_time(lambda: fast_sum(values), repeats=20)
print(f"time: strict {strict_time * 1e6:.1f} us, fastmath {fast_time * 1e6:.1f} us: "
      f"{strict_time / fast_time:.0f}x faster with SIMD (measured)")

# %% [markdown]
# The strict loop is scalar: each addition waits for the previous one to finish. The fast one
# keeps several vector accumulators (here four of 16 lanes: 64 partial sums) and combines them
# at the end, so the additions no longer wait on each other. The result changes in the last
# digits; here it is even *more* accurate, because 64 short partial sums accumulate less
# rounding error than one long one. Either way the answer depends on the order of the
# additions, which is why numerical libraries document their reduction order, and why GPU
# reductions are not bitwise reproducible across block sizes.

# %% [markdown]
# ## Mojo's ideas, with Python analogues
#
# Mojo (Modular, 2023 onwards) is a language with Python's syntax that compiles through MLIR to
# CPUs and GPUs. It is not installed here, so the Mojo code below is shown as listings, not run;
# each is followed by a Python or NumPy analogue that runs. Mojo's syntax is still moving:
# release 24.6 renamed the `borrowed` and `inout` argument conventions to `read` and `mut`, and
# a later release renamed `owned` to `var`. The listings follow the current
# [Mojo manual](https://docs.modular.com/mojo/manual/); check it for the version you install.
#
# ### Ownership and argument conventions
#
# Every Mojo value has exactly one owner, and a function's signature says how it may use each
# argument:
#
# ```mojo
# def mean(read values: List[Float32]) -> Float32:   # read: an immutable reference (the default)
#     ...
#
# def normalize(mut values: List[Float32]):          # mut: a mutable reference; the caller sees the change
#     ...
#
# def consume(var values: List[Float32]):            # var: the callee owns a value of its own
#     ...
#
# def main():
#     var data = List[Float32](1.0, 2.0, 3.0)
#     print(mean(data))    # no copy, no mutation possible
#     normalize(data)      # modified in place
#     consume(data^)       # ^ transfers ownership: data may not be used after this line
# ```
#
# The compiler checks these rules, so that a kernel can take a reference without a copy and
# still be sure nobody else writes to the buffer meanwhile. Python has no such checks: NumPy
# arrays are references, and slicing makes *views* that share memory. The analogues are a
# read-only view (`read`), an in-place function (`mut`) and an explicit copy (a value of its
# own, like `var` without `^`).

# %%
data = np.arange(6, dtype=np.float32)
window = data[1:4]  # a view: no copy
print(f"slice shares memory with data: {np.shares_memory(data, window)}")
window *= 10  # writes through the view
print(f"data after writing through the view: {data}")

read_only = data.view()
read_only.flags.writeable = False  # like `read`: the callee cannot modify it
try:
    read_only[0] = -1.0
except ValueError as error:
    print(f"writing to a read-only view fails: {error}")

own_copy = data.copy()  # a value of its own: changes stay local
own_copy[:] = 0.0
print(f"after zeroing a copy, data is unchanged: {data}")

big = np.ones(16 * 2**20, dtype=np.float32)  # 64 MiB
view_time, copy_time = best_time(lambda: big[:]), best_time(lambda: big.copy())
print(f"a view costs {view_time * 1e6:.1f} us, a 64 MiB copy {copy_time * 1e3:.1f} ms (measured)")

# %% [markdown]
# The measured gap is why conventions matter for performance: passing by reference costs
# nothing, copying costs a pass over memory. Mojo makes the cheap path the default *and* safe;
# in NumPy, the cheap path is the default and safety is the programmer's job (a view written by
# two functions at once is a bug no tool reports).
#
# ### SIMD as a type
#
# In Mojo a vector register is an ordinary type, `SIMD[dtype, width]`, and arithmetic on it
# compiles to vector instructions. The width is a compile-time parameter (next section):
#
# ```mojo
# def axpy_simd(a: Float32, x: SIMD[DType.float32, 16], y: SIMD[DType.float32, 16]) -> SIMD[DType.float32, 16]:
#     return a * x + y      # one vector fused multiply-add on 16 lanes
# ```
#
# We saw LLVM find that width for numba on its own; Mojo lets the programmer state it, which
# does not depend on the vectoriser succeeding. The analogue in Python is the gap between
# one-element-at-a-time code and whole-array code:

# %%
x_small, y_small = rng.standard_normal(100_000, dtype=np.float32), np.zeros(100_000, np.float32)


def axpy_python_loop() -> None:
    for i in range(len(x_small)):
        y_small[i] = 2.0 * x_small[i] + y_small[i]


loop_time = best_time(axpy_python_loop, repeats=3)
numpy_time = best_time(lambda: np.add(2.0 * x_small, y_small, out=y_small))
numba_time = best_time(lambda: axpy(np.float32(2.0), x_small, y_small))
print(f"axpy on 100,000 floats: Python loop {loop_time * 1e3:.1f} ms, NumPy {numpy_time * 1e6:.0f} us, "
      f"numba SIMD loop {numba_time * 1e6:.0f} us")
print(f"the Python loop is {loop_time / numba_time:,.0f}x slower than the compiled SIMD loop (measured)")

# %% [markdown]
# Most of that factor is the interpreter (each element is a boxed Python object), not SIMD: the
# vectorisation itself is worth the factor measured on the sum of squares above. Mojo's claim
# is to remove both costs while keeping Python's syntax.
#
# ### Compile-time parameters
#
# Mojo separates *parameters*, in square brackets and known at compile time, from *arguments*,
# known at run time. The compiler generates one specialised version per parameter value:
#
# ```mojo
# def power[n: Int](x: Float32) -> Float32:
#     var result: Float32 = 1.0
#     comptime for _ in range(n):    # unrolled at compile time (older releases: @parameter for)
#         result *= x
#     return result
#
# def main():
#     print(power[4](1.5))           # compiles a version for n = 4: three multiplications, no loop
# ```
#
# numba specialises in two comparable ways. It compiles one version per combination of
# argument *types* (float32 and float64 arrays get separate machine code, with different
# vector widths), and it treats values captured from an enclosing function as constants, so a
# factory function plays the role of a parameter:

# %%
def make_power(n: int) -> Callable[[float], float]:
    """A function specialised for the exponent n, which numba sees as a constant."""

    @njit
    def power(x: float) -> float:
        result = 1.0
        for _ in range(n):
            result *= x
        return result

    return power


@njit
def power_runtime(x: float, n: int) -> float:
    result = 1.0
    for _ in range(n):
        result *= x
    return result


power_4 = make_power(4)
print(f"power_4(1.5) = {power_4(1.5)}, power_runtime(1.5, 4) = {power_runtime(1.5, 4)}")


def function_body(ir: str, name: str) -> str:
    """The LLVM IR of the compiled function whose mangled name contains `name`."""
    match = re.search(r"define [^\n]*" + name + r"[^\n]*\{.*?\n\}", ir, flags=re.DOTALL)
    return match.group(0) if match else ""


for fn, name in [(power_runtime, "power_runtime"), (power_4, "power")]:
    body = function_body(fn.inspect_llvm(fn.signatures[0]), name)
    print(f"{name:14s}: {len(re.findall(r'= fmul', body))} multiplications in the IR, "
          f"{len(re.findall(r'= phi', body))} loop variables (phi nodes)")

axpy(np.float64(2.0), np.ones(8), np.ones(8))  # a float64 call compiles a second version
for sig in axpy.signatures:
    widths = sorted(set(re.findall(r"<\d+ x (?:float|double)>", axpy.inspect_llvm(sig))))
    print(f"axpy for {sig[1].dtype} arrays: vector types {widths}")

# %% [markdown]
# With the exponent known at compile time the loop is gone: what is left is a fixed sequence of
# multiplications. With the exponent at run time the IR keeps a loop (the `phi` nodes carry its
# variables). And each element type gets its own vector width: 512-bit registers hold 16 floats
# or 8 doubles. A Mojo parameter, a C++ template argument in CUTLASS and a `tl.constexpr` in
# Triton all do the same job: they let the compiler specialise a kernel for a tile size or a
# data type it knows in advance.

# %% [markdown]
# ## GPU assembly without a GPU: PTX and AMD GCN from LLVM IR
#
# GPU compilers use the same LLVM pipeline with a different back end. NVIDIA's `nvcc`, Triton
# and numba's CUDA target all produce **PTX**, a virtual instruction set that the driver's
# `ptxas` assembler turns into the machine code of a specific GPU (SASS). AMD's ROCm compilers
# (HIP, Triton on ROCm) go through LLVM's AMDGPU back end to GCN/CDNA machine code. `llvmlite`
# (the library under numba) ships both back ends, so we can write a tiny kernel in LLVM IR and
# compile it for both without a GPU.
#
# The kernel is axpy again, one thread per element: thread `threadIdx.x` of block `blockIdx.x`
# handles element `i = blockIdx.x * BLOCK + threadIdx.x`, and threads past the end do nothing.
# `BLOCK`, the number of threads per block, is a compile-time constant, as in real kernels.

# %%
KERNEL_IR = """
target triple = "{triple}"
declare i32 @{thread_index}()
declare i32 @{block_index}()
declare float @llvm.fma.f32(float, float, float)

define {calling_convention} void @axpy(float %a, ptr addrspace(1) %x, ptr addrspace(1) %y, i32 %n) {{
entry:
  %thread = call i32 @{thread_index}()
  %block = call i32 @{block_index}()
  %first = mul i32 %block, {block_size}
  %i = add i32 %first, %thread
  %inside = icmp slt i32 %i, %n
  br i1 %inside, label %body, label %done
body:
  %index = sext i32 %i to i64
  %x_address = getelementptr float, ptr addrspace(1) %x, i64 %index
  %y_address = getelementptr float, ptr addrspace(1) %y, i64 %index
  %x_value = load float, ptr addrspace(1) %x_address
  %y_value = load float, ptr addrspace(1) %y_address
  %result = call float @llvm.fma.f32(float %a, float %x_value, float %y_value)
  store float %result, ptr addrspace(1) %y_address
  br label %done
done:
  ret void
}}
"""
GPU_TARGETS = {
    "NVIDIA (PTX, sm_90 = Hopper)": dict(
        triple="nvptx64-nvidia-cuda", calling_convention="ptx_kernel", cpu="sm_90",
        features="+ptx80", thread_index="llvm.nvvm.read.ptx.sreg.tid.x",
        block_index="llvm.nvvm.read.ptx.sreg.ctaid.x"),
    "AMD (GCN, gfx942 = MI300X)": dict(
        triple="amdgcn-amd-amdhsa", calling_convention="amdgpu_kernel", cpu="gfx942",
        features="", thread_index="llvm.amdgcn.workitem.id.x",
        block_index="llvm.amdgcn.workgroup.id.x"),
}

llvm.initialize_all_targets()
llvm.initialize_all_asmprinters()


def compile_for_gpu(target: dict[str, str], block_size: int = 256) -> str:
    """Assembly text for the axpy kernel, compiled by LLVM for one GPU target."""
    ir_fields = {k: v for k, v in target.items() if k not in ("cpu", "features")}
    module = llvm.parse_assembly(KERNEL_IR.format(block_size=block_size, **ir_fields))
    module.verify()
    machine = llvm.Target.from_triple(target["triple"]).create_target_machine(
        cpu=target["cpu"], features=target["features"], opt=3)
    return machine.emit_assembly(module)


gpu_assembly = {name: compile_for_gpu(target) for name, target in GPU_TARGETS.items()}
ptx = gpu_assembly["NVIDIA (PTX, sm_90 = Hopper)"]
print(ptx)

# %% [markdown]
# Reading the PTX (the [PTX ISA](https://docs.nvidia.com/cuda/parallel-thread-execution/)
# documents every instruction):
#
# - `.version`, `.target sm_90`: the PTX version and the GPU generation it targets.
# - `.visible .entry axpy(...)`: a kernel entry point; its arguments live in the `.param` state
#   space and are read with `ld.param`.
# - `.reg .b32 %r<10>`: PTX has unlimited *virtual* registers; `ptxas` allocates real ones.
# - `mov.u32 %r, %tid.x` and `%ctaid.x`: the special registers holding the thread's index in
#   its block and the block's index in the grid.
# - `shl.b32 ..., 8`: the multiplication by `BLOCK = 256` became a shift by 8, because the block
#   size was a compile-time constant.
# - `setp.ge.s32 %p1, ...` then `@%p1 bra`: a *predicate* register and a predicated branch, the
#   bounds check. Threads of a warp that take different sides of a branch are executed one side
#   after the other (divergence).
# - `ld.global`, `fma.rn.f32`, `st.global`: load from global memory (HBM), a fused multiply-add
#   rounded to nearest, store. One thread does one element; the 32 threads of a warp together
#   make the SIMD instruction that a CPU would issue for a vector.
#
# The AMD listing for the same IR shows the other model, scalar plus vector instructions:

# %%
amd_lines = [line.strip() for line in gpu_assembly["AMD (GCN, gfx942 = MI300X)"].splitlines()
             if line.startswith("\t") and not line.strip().startswith((".", ";"))]
print("\n".join(amd_lines))

# %% [markdown]
# An AMD compute unit runs *wavefronts* of 64 threads (on CDNA). Instructions prefixed `s_` run
# once per wavefront on the scalar unit (kernel arguments, the block index, branching);
# instructions prefixed `v_` run on all 64 lanes of the vector unit (`global_load_dword`,
# `v_fmac_f32`, `global_store_dword`). The bounds check is not a jump per thread: it sets the
# `exec` mask (`s_and_saveexec_b64`) that switches lanes off. This is the same kernel as the
# PTX one, and the same SIMT idea: many threads, each one lane of a wide vector machine.

# %% [markdown]
# ## Kernel libraries and Hopper: CUTLASS, CuTe, TMA and warp specialisation
#
# A fast matrix product on a GPU is a hierarchy of tiles: each thread block computes a tile of
# the output, staging tiles of the inputs from HBM into shared memory, and each warp multiplies
# sub-tiles held in registers on the tensor cores. Writing this by hand for every data type,
# tile shape and GPU generation is what
# [CUTLASS](https://github.com/NVIDIA/cutlass) avoids: a C++ template library whose tile sizes,
# data types and pipeline depths are template (compile-time) parameters. Since CUTLASS 3,
# its core is **CuTe**, an algebra of *layouts*: a layout is a shape and a stride, and maps a
# logical coordinate to a memory offset, $\text{offset} = \sum_i c_i s_i$. Shapes can be nested,
# which describes tiled data with one object. NumPy's strides are the flat case; the function
# below handles nested shapes too.

# %%
def layout_offsets(shape: tuple, stride: tuple) -> np.ndarray:
    """The offset of every element of a rank-2 CuTe-style layout, as a (rows, cols) table.

    Each mode is an int or a nested tuple; a 1-D index into a nested mode is split into
    sub-coordinates with the first sub-mode varying fastest (CuTe's colexicographic order).
    """

    def offset(index: int, mode_shape, mode_stride) -> int:
        if isinstance(mode_shape, int):
            return index * mode_stride
        total = 0
        for sub_shape, sub_stride in zip(mode_shape, mode_stride):
            size = math.prod(sub_shape) if isinstance(sub_shape, tuple) else sub_shape
            total += offset(index % size, sub_shape, sub_stride)
            index //= size
        return total

    def size(mode) -> int:
        return mode if isinstance(mode, int) else math.prod(size(m) for m in mode)

    rows, cols = size(shape[0]), size(shape[1])
    return np.array([[offset(r, shape[0], stride[0]) + offset(c, shape[1], stride[1])
                      for c in range(cols)] for r in range(rows)])


row_major = layout_offsets((4, 8), (8, 1))
column_major = layout_offsets((4, 8), (1, 4))
# 2x2 tiles, each stored column-major, tiles in column-major order:
tiled = layout_offsets(((2, 2), (2, 4)), ((1, 4), (2, 8)))
numpy_strides = np.array(np.arange(32).reshape(4, 8).strides) // 8
print(f"row-major (4,8):(8,1); NumPy's strides for a C-ordered 4x8 array, in elements: "
      f"{tuple(numpy_strides)}")
print(row_major)
print("column-major (4,8):(1,4):")
print(column_major)
print("tiled ((2,2),(2,4)):((1,4),(2,8)): each 2x2 tile holds 4 consecutive offsets")
print(tiled)

# %% [markdown]
# The same 4 x 8 matrix, three placements in memory, each one line of layout. CuTe composes and
# divides such layouts to express "split this tile among these threads" or "this is the
# swizzled shared-memory layout the tensor cores want" (the `cute` documentation in the CUTLASS
# repository works through the algebra).
#
# **Hopper** (NVIDIA H100, described in the Hopper architecture whitepaper) added hardware for
# exactly this staging:
#
# - the **Tensor Memory Accelerator (TMA)** copies a whole multi-dimensional tile between global
#   and shared memory from one instruction, generating the addresses and handling the
#   boundaries in hardware, asynchronously; threads no longer spend instructions on addresses;
# - **`wgmma`**, warpgroup matrix multiply-accumulate: four warps (128 threads) issue one
#   asynchronous tensor-core operation that reads its operands from shared memory;
# - **thread block clusters** with *distributed shared memory*, and asynchronous transaction
#   barriers that say when a TMA copy has landed.
#
# With copies and matrix products both asynchronous, the natural kernel design is
# **warp specialisation**: *producer* warps only issue TMA loads into a ring of shared-memory
# buffers; *consumer* warpgroups only run `wgmma` on buffers that are ready and release them.
# Loading tile $i+1$ then overlaps computing tile $i$. A model of the schedule shows the gain:

# %%
def simulate_pipeline(n_tiles: int, t_load: float, t_compute: float, stages: int
                      ) -> list[tuple[str, int, float, float]]:
    """(unit, tile, start, end) for each load and compute, with `stages` shared-memory buffers.

    One producer loads tiles in order, one consumer computes them in order; tile i can be loaded
    only once a buffer is free (tile i - stages has been computed) and computed once loaded and
    once the previous tile is done. stages=1 leaves nothing to overlap.
    """
    events, load_end, compute_end = [], [], []
    for i in range(n_tiles):
        buffer_free = compute_end[i - stages] if i >= stages else 0.0
        start = max(load_end[-1] if load_end else 0.0, buffer_free)
        load_end.append(start + t_load)
        events.append(("load (producer)", i, start, load_end[-1]))
        start = max(load_end[i], compute_end[-1] if compute_end else 0.0)
        compute_end.append(start + t_compute)
        events.append(("compute (consumer)", i, start, compute_end[-1]))
    return events


N_TILES, T_LOAD, T_COMPUTE = 6, 1.0, 1.5
fig, axes = plt.subplots(2, 1, figsize=(9, 3.8), sharex=True)
for ax, stages in zip(axes, (1, 2)):
    events = simulate_pipeline(N_TILES, T_LOAD, T_COMPUTE, stages)
    for unit, tile, start, end in events:
        row = 1 if unit.startswith("load") else 0
        ax.barh(row, end - start, left=start, color=f"C{tile}", edgecolor="black")
        ax.text((start + end) / 2, row, str(tile), ha="center", va="center")
    total = max(end for *_, end in events)
    ax.set_yticks([0, 1], ["compute (consumer)", "load (producer)"])
    ax.set_title(f"{stages} buffer{'s' if stages > 1 else ''}: {total:.1f} time units")
axes[1].set_xlabel("time (units of one tile load)")
fig.suptitle("Model of a tiled kernel: loads and tensor-core work, tiles numbered")
plt.tight_layout()
plt.show()

# %% [markdown]
# With one buffer the loads and the matrix work take turns; with two, the producer runs ahead
# and the kernel's time approaches that of the slower of the two streams. Real kernels use 2 to
# 4 stages. This is a model (fixed costs, no contention), but it is the reasoning behind the
# kernels that made attention fast:
#
# - **FlashAttention** (Dao et al., 2022) tiles attention so that the $n \times n$ score matrix
#   never reaches HBM, with an online softmax; **FlashAttention-2** (Dao, 2023) reorganised the
#   work between warps and reached 50-73% of the A100's peak, but only about 35% on H100
#   (figure from the FlashAttention-3 paper), because it used none of Hopper's new units.
# - **FlashAttention-3** (Shah et al., 2024) is built on them: TMA loads from a producer
#   warpgroup, `wgmma` in consumer warpgroups (warp specialisation), "ping-pong" scheduling so
#   that one warpgroup's softmax overlaps the other's matrix products, and FP8 with block
#   scaling. It reports up to 740 TFLOP/s in FP16 on H100 (75% of peak) and close to
#   1.2 PFLOP/s in FP8.

# %% [markdown]
# ## The hardware landscape
#
# Every accelerator for deep learning pairs a dense matrix unit with high-bandwidth memory and
# a fast interconnect; they differ in how the matrix unit is programmed and fed.
#
# | | NVIDIA H100 (SXM) | AMD Instinct MI300X | Google TPU v4 | Intel Gaudi 3 |
# |---|---|---|---|---|
# | matrix unit | tensor cores in 132 SMs, driven by warps (`wgmma`) | matrix cores in 304 compute units, wavefronts of 64 | 128 x 128 systolic arrays (MXUs), 2 TensorCores per chip | 8 matrix engines (MME) + 64 programmable tensor cores (TPC) |
# | memory | 80 GB HBM3, 3.35 TB/s | 192 GB HBM3, 5.3 TB/s | 32 GiB HBM2, 1.2 TB/s | 128 GB HBM2e, 3.7 TB/s |
# | dense bf16 peak (vendor) | about 990 TFLOP/s | about 1,300 TFLOP/s | 275 TFLOP/s | about 1,835 TFLOP/s |
# | scale-out | NVLink 4 + NVSwitch, InfiniBand | Infinity Fabric, Ethernet/InfiniBand | 4,096-chip pods, optical circuit switches, 3-D torus | 24 x 200 GbE RoCE on chip |
# | software | CUDA, PTX, cuBLAS, CUTLASS, Triton | ROCm: HIP (CUDA-like C++), rocBLAS, Composable Kernel, Triton | XLA compiler (JAX, PyTorch/XLA), Pallas | SynapseAI graph compiler, PyTorch bridge, TPC-C kernels |
#
# Vendor figures, dense (no sparsity), from the sources in the References; measured speed on a
# real model is usually well below them.
#
# - **GPUs** (NVIDIA, AMD) are programmed per thread (SIMT) and are the most general: any kernel
#   a researcher writes in CUDA, HIP or Triton runs. AMD's ROCm stack mirrors CUDA's (HIP is
#   close to source-compatible with CUDA, and PyTorch's ROCm build exposes the same `torch.cuda`
#   API), so most of the work of a port is in the hand-tuned kernels.
# - **TPUs** are built around systolic arrays (Kung, 1982): a grid of multiply-accumulate cells
#   that pass operands to their neighbours, so each value read from memory is used many times
#   without register-file traffic. The first TPU (Jouppi et al., 2017) was an inference chip
#   with one 256 x 256 array of 8-bit MACs (92 TOPS) and 8 GiB of DDR3 at 34 GB/s; the paper
#   found most of its workloads memory-bound. TPU v4 (Jouppi et al., 2023) connects 4,096 chips
#   through reconfigurable optical switches. TPUs are programmed through the XLA compiler,
#   which fuses whole graphs, not through user-written kernels (Pallas is the exception).
# - **Gaudi** (Intel, from Habana Labs) splits the work between fixed-function matrix engines
#   and programmable vector cores, and builds Ethernet (RoCE) into the chip so that clusters
#   need no separate network cards.
# - **Other ASICs** push specialisation further: AWS Trainium and Inferentia (Neuron SDK),
#   Groq's tensor streaming processor, a deterministic chip whose compiler schedules every cycle
#   (Abts et al., 2020), Cerebras' wafer-scale engine. Each gains efficiency on the operations
#   it was built for, and depends on a compiler to map models onto it.
# - **FPGAs** are reconfigurable logic: the circuit itself is the program. They trade peak
#   throughput for latency and flexibility in data types; Microsoft's Brainwave served models
#   on FPGAs at batch size 1 (Fowers et al., 2018).
#
# Whatever the chip, the arithmetic of the first sections holds: an operation is limited by
# its FLOPs or its bytes, fusion removes bytes, and the compiler or the kernel author must keep
# the matrix unit fed.

# %% [markdown]
# ## A Triton kernel (runs only with CUDA)
#
# Triton (Tillet et al., 2019; [triton-lang.org](https://triton-lang.org)) is a Python-embedded
# language for GPU kernels. A Triton program works on *blocks* (here, one row of the tensor)
# rather than on single threads; the compiler decides how the block is split among threads,
# vectorises loads, and places data in shared memory. `BLOCK: tl.constexpr` is a compile-time
# parameter. Below is the fused add + RMSNorm of this notebook in Triton. Triton is not
# installed in this course's environment and needs a GPU, so the cell runs the kernel only when
# both CUDA and Triton are present, and otherwise says why it skips.

# %%
HAS_CUDA = torch.cuda.is_available()
HAS_TRITON = importlib.util.find_spec("triton") is not None

if HAS_CUDA and HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def add_rmsnorm_kernel(x_ptr, residual_ptr, weight_ptr, out_ptr, n_cols, eps,
                           BLOCK: tl.constexpr):
        row = tl.program_id(0)  # one program instance per row
        cols = tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
        r = tl.load(residual_ptr + row * n_cols + cols, mask=mask, other=0.0)
        h = x + r
        scale = 1.0 / tl.sqrt(tl.sum(h * h, axis=0) / n_cols + eps)
        w = tl.load(weight_ptr + cols, mask=mask, other=0.0)
        tl.store(out_ptr + row * n_cols + cols, h * scale * w, mask=mask)

    def add_rmsnorm_triton(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                           eps: float) -> torch.Tensor:
        out = torch.empty_like(x)
        block = triton.next_power_of_2(x.shape[1])
        add_rmsnorm_kernel[(x.shape[0],)](x, residual, weight, out, x.shape[1], eps, BLOCK=block)
        return out

    def cuda_time(fn: Callable[[], object]) -> float:
        """Fastest of several runs of fn on the GPU, in seconds (CUDA events)."""
        fn()
        times = []
        for _ in range(20):
            start_event = torch.cuda.Event(enable_timing=True)
            end_event = torch.cuda.Event(enable_timing=True)
            start_event.record()
            fn()
            end_event.record()
            torch.cuda.synchronize()
            times.append(start_event.elapsed_time(end_event) / 1e3)
        return min(times)

    x_gpu, residual_gpu, weight_gpu = (t.cuda() for t in (x_t, residual_t, weight_t))

    def eager_gpu() -> torch.Tensor:
        h = x_gpu + residual_gpu
        return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + float(EPS)) * weight_gpu

    triton_result = add_rmsnorm_triton(x_gpu, residual_gpu, weight_gpu, float(EPS))
    print(f"Triton vs eager: max |difference| = {(triton_result - eager_gpu()).abs().max():.1e}")
    eager_seconds = cuda_time(eager_gpu)
    triton_seconds = cuda_time(lambda: add_rmsnorm_triton(x_gpu, residual_gpu, weight_gpu,
                                                           float(EPS)))
    print(f"{torch.cuda.get_device_name(0)}: eager {eager_seconds * 1e6:.0f} us, "
          f"Triton fused {triton_seconds * 1e6:.0f} us ({eager_seconds / triton_seconds:.1f}x); "
          f"the fused kernel moves {3 * x_gpu.numel() * 4 / triton_seconds / 1e9:.0f} GB/s")
else:
    reasons = [] if HAS_CUDA else ["no CUDA device"]
    reasons += [] if HAS_TRITON else ["Triton is not installed"]
    print(f"Triton section skipped: {' and '.join(reasons)}. On a machine with a GPU, "
          "`pip install triton` and rerun this cell.")

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: A read convention and a mut convention
#
# Write two NumPy functions that scale each row of a 2-D array to unit Euclidean norm:
#
# - `normalized_rows(x)` behaves like a Mojo function taking `read x`: it returns a **new**
#   array and must not write to `x` (the check passes a read-only array);
# - `normalize_rows_(x)` behaves like one taking `mut x`: it modifies `x` **in place** (use
#   `out=` arguments or in-place operators) and returns `None`.

# %% tags=["solution"]
def normalized_rows(x: np.ndarray) -> np.ndarray:
    """A new array whose rows are those of x scaled to unit L2 norm."""
    # BEGIN SOLUTION
    return x / np.linalg.norm(x, axis=1, keepdims=True)
    # END SOLUTION


def normalize_rows_(x: np.ndarray) -> None:
    """Scale the rows of x to unit L2 norm, in place."""
    # BEGIN SOLUTION
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, passed

matrix = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]])
expected_rows = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]])
frozen = matrix.copy()
frozen.flags.writeable = False
check_close(normalized_rows(frozen), expected_rows, "normalized_rows")
check(np.array_equal(frozen, matrix), "normalized_rows", "the input to be left unchanged")
buffer = matrix.copy()
address = buffer.__array_interface__["data"][0]
returned = normalize_rows_(buffer)
check(returned is None, "normalize_rows_", "to return None (it works in place)")
check_close(buffer, expected_rows, "normalize_rows_")
check(buffer.__array_interface__["data"][0] == address, "normalize_rows_",
      "the same buffer to be modified, not replaced")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A fused softmax kernel
#
# Softmax over the last axis is another memory-bound chain (max, subtract, exp, sum, divide).
# Write `fused_softmax(x, out)` as a numba kernel that makes one loop over the rows and, for
# each row, computes the maximum, the exponentials and their sum, and writes the normalised
# values into `out`. Subtract the row maximum before `np.exp`: the check includes rows with
# values around 1000, where a naive softmax overflows. It compares with `torch.softmax`.

# %% tags=["solution"]
@njit(fastmath=True)
def fused_softmax(x: np.ndarray, out: np.ndarray) -> None:
    """out[i] = softmax(x[i]) for every row i, in one pass over each row."""
    # BEGIN SOLUTION
    rows, cols = x.shape
    for i in range(rows):
        row_max = x[i, 0]
        for j in range(1, cols):
            row_max = max(row_max, x[i, j])
        total = 0.0
        for j in range(cols):
            out[i, j] = np.exp(x[i, j] - row_max)
            total += out[i, j]
        for j in range(cols):
            out[i, j] /= total
    # END SOLUTION


# %% tags=["check"]
softmax_input = rng.standard_normal((64, 300)).astype(np.float32)
softmax_input[0] += 1000.0  # a row that overflows without the max subtraction
softmax_input[1] = -softmax_input[1] * 50.0
softmax_out = np.zeros_like(softmax_input)
fused_softmax(softmax_input, softmax_out)
check_close(softmax_out, torch.softmax(torch.from_numpy(softmax_input), dim=-1).numpy(),
            "fused_softmax", atol=1e-6)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: The stride of a tiled layout
#
# A 4 x 8 matrix is stored in 2 x 4 tiles: each tile's 8 elements are contiguous and row-major
# inside the tile, and the tiles are stored row-major (tile (0,0), tile (0,1), tile (1,0),
# tile (1,1)). As a CuTe layout, the rows split into (row within tile: 2, tile row: 2) and the
# columns into (column within tile: 4, tile column: 2), so the shape is `((2, 2), (4, 2))`.
# Set `tiled_stride` to the matching nested stride, in the same `((., .), (., .))` form, so that
# `layout_offsets(((2, 2), (4, 2)), tiled_stride)` gives each element's offset.

# %% tags=["solution"]
tiled_stride = None
# BEGIN SOLUTION
tiled_stride = ((4, 16), (1, 8))
# END SOLUTION

# %% tags=["check"]
from shared.exercises import check_equal

check(tiled_stride is not None, "tiled_stride", "a nested tuple ((a, b), (c, d))")
# The reference: number the elements tile by tile, then put every element back at its
# (row, column) position in the matrix.
by_tiles = np.arange(32).reshape(2, 2, 2, 4)  # (tile row, tile column, row in tile, col in tile)
expected_layout = by_tiles.transpose(0, 2, 1, 3).reshape(4, 8)
check_equal(layout_offsets(((2, 2), (4, 2)), tiled_stride).tolist(), expected_layout.tolist(),
            "layout_offsets(((2, 2), (4, 2)), tiled_stride)")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: The time of a pipelined kernel
#
# In the model of the warp-specialised kernel, a producer loads `n_tiles` tiles one after the
# other (`t_load` each) and a consumer computes them in order (`t_compute` each). Write
# `pipeline_time(n_tiles, t_load, t_compute, stages)` returning the total time in closed form:
# with one buffer nothing overlaps; with two or more, the first load and the last computation
# cannot be hidden, and in between the slower of the two streams sets the pace. The check
# compares with `simulate_pipeline` on many cases.

# %% tags=["solution"]
def pipeline_time(n_tiles: int, t_load: float, t_compute: float, stages: int) -> float:
    """Total time of the load/compute pipeline of simulate_pipeline, in closed form."""
    # BEGIN SOLUTION
    if stages == 1:
        return n_tiles * (t_load + t_compute)
    return t_load + (n_tiles - 1) * max(t_load, t_compute) + t_compute
    # END SOLUTION


# %% tags=["check"]
cases = [(n, t_load, t_compute, stages) for n in (1, 2, 7) for t_load in (0.5, 1.0, 2.0)
         for t_compute in (0.7, 1.5) for stages in (1, 2, 3)]
for n, t_load, t_compute, stages in cases:
    simulated = max(end for *_, end in simulate_pipeline(n, t_load, t_compute, stages))
    check_close(pipeline_time(n, t_load, t_compute, stages), simulated,
                f"pipeline_time({n}, {t_load}, {t_compute}, {stages})")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Outside large matrix products, transformer kernels are memory-bound: their time is the
#   bytes they move over the bandwidth. Add + RMSNorm moves about ten tensor-sized passes when
#   written as separate operations and three when fused; the measured times follow, and fresh
#   allocations add a cost of their own.
# - A JIT compiler (numba, through LLVM) vectorises loops into SIMD instructions, visible as
#   `<16 x float>` in the IR and `zmm` registers in the assembly on an AVX-512 CPU; reductions
#   vectorise only when reordering is allowed (`fastmath`).
# - Mojo's ideas have NumPy analogues: `read`/`mut`/`var` are read-only views, in-place
#   updates and owned copies; `SIMD[dtype, width]` makes the vector width a type; compile-time
#   parameters are the specialisation numba does per type and per captured constant.
# - LLVM compiles the same IR to PTX (NVIDIA) and to GCN (AMD): per-thread code with special
#   registers and predicates in PTX, scalar `s_` plus 64-lane `v_` instructions and an exec
#   mask on AMD.
# - CUTLASS/CuTe describe tiles as layouts (shape and stride); Hopper's TMA and `wgmma` make
#   copies and matrix products asynchronous, and warp-specialised kernels such as
#   FlashAttention-3 overlap them. TPUs, Gaudi, other ASICs and FPGAs answer the same questions
#   with systolic arrays, matrix engines, compilers and reconfigurable logic.
#
# Next: [efficient architectures](09-efficient-architectures), where the model itself is
# changed so that its cost grows linearly with the sequence.
#
# ## References
#
# - Modular, *The Mojo manual*: ownership, SIMD and parameters. https://docs.modular.com/mojo/manual/
#   (ownership: https://docs.modular.com/mojo/manual/values/ownership; changelog:
#   https://docs.modular.com/mojo/changelog)
# - P. Tillet, H. T. Kung, D. Cox, "Triton: an intermediate language and compiler for tiled
#   neural network computations", MAPL 2019. https://doi.org/10.1145/3315508.3329973 and
#   https://triton-lang.org
# - NVIDIA, CUTLASS and CuTe. https://github.com/NVIDIA/cutlass
# - NVIDIA, *NVIDIA H100 Tensor Core GPU Architecture* (Hopper whitepaper), 2022.
#   https://resources.nvidia.com/en-us-tensor-core/gtc22-whitepaper-hopper
# - NVIDIA, *Parallel Thread Execution ISA* (PTX). https://docs.nvidia.com/cuda/parallel-thread-execution/
# - NVIDIA, H100 Tensor Core GPU datasheet. https://www.nvidia.com/en-us/data-center/h100/
# - AMD, ROCm documentation. https://rocm.docs.amd.com/ ; AMD CDNA 3 architecture white paper.
#   https://www.amd.com/content/dam/amd/en/documents/instinct-tech-docs/white-papers/amd-cdna-3-white-paper.pdf
# - Intel, Intel Gaudi documentation. https://docs.habana.ai/
# - N. P. Jouppi et al., "In-datacenter performance analysis of a tensor processing unit",
#   ISCA 2017. https://arxiv.org/abs/1704.04760
# - N. P. Jouppi et al., "TPU v4: an optically reconfigurable supercomputer for machine learning
#   with hardware support for embeddings", ISCA 2023. https://arxiv.org/abs/2304.01433
# - H. T. Kung, "Why systolic architectures?", *IEEE Computer* 15(1), 1982.
#   https://doi.org/10.1109/MC.1982.1653825
# - D. Abts et al., "Think fast: a tensor streaming processor (TSP) for accelerating deep
#   learning workloads", ISCA 2020. https://doi.org/10.1109/ISCA45697.2020.00023
# - J. Fowers et al., "A configurable cloud-scale DNN processor for real-time AI", ISCA 2018.
#   https://doi.org/10.1109/ISCA.2018.00012
# - AWS, Neuron SDK documentation (Trainium, Inferentia). https://awsdocs-neuron.readthedocs-hosted.com/
# - T. Dao, D. Y. Fu, S. Ermon, A. Rudra, C. Ré, "FlashAttention: fast and memory-efficient
#   exact attention with IO-awareness", NeurIPS 2022. https://arxiv.org/abs/2205.14135
# - T. Dao, "FlashAttention-2: faster attention with better parallelism and work partitioning",
#   2023. https://arxiv.org/abs/2307.08691
# - J. Shah, G. Bikshandi, Y. Zhang, V. Thakkar, P. Ramani, T. Dao, "FlashAttention-3: fast and
#   accurate attention with asynchrony and low-precision", 2024. https://arxiv.org/abs/2407.08608
# - J. Ansel et al., "PyTorch 2: faster machine learning through dynamic Python bytecode
#   transformation and graph compilation", ASPLOS 2024. https://doi.org/10.1145/3620665.3640366
# - S. K. Lam, A. Pitrou, S. Seibert, "Numba: a LLVM-based Python JIT compiler", LLVM-HPC 2015.
#   https://doi.org/10.1145/2833157.2833162
# - LLVM, *User guide for NVPTX back-end* and *User guide for AMDGPU back-end*.
#   https://llvm.org/docs/NVPTXUsage.html and https://llvm.org/docs/AMDGPUUsage.html
# - S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model for
#   multicore architectures", *Communications of the ACM* 52(4), 2009.
#   https://doi.org/10.1145/1498765.1498785
# - B. Zhang, R. Sennrich, "Root mean square layer normalization", NeurIPS 2019.
#   https://arxiv.org/abs/1910.07467
