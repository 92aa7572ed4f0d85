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
# # Compute costs: FLOPs, throughput, money and energy
#
# Before a pretraining run starts, someone has to say how long it will take, what it will cost
# and how much energy it will use, and be right to within a few tens of percent, because the
# budget is millions of GPU-hours. All three estimates come from one number, the training
# compute $C \approx 6ND$ for $N$ parameters and $D$ tokens, and one measured ratio, the
# fraction of the hardware's peak that the run achieves (its model FLOPs utilisation, MFU).
# This notebook checks the $6ND$ rule against an exact count of a GPT's operations, measures
# throughput and MFU on this machine, measures (or rather estimates, as we will see) the energy
# and carbon of a short run, and scales the same arithmetic up to published training runs.
#
# **Learning objectives**
# - Derive $C \approx 6ND$ plus the attention term, and check it against an exact FLOP count of a
#   forward and backward pass.
# - Measure training throughput and compute achieved FLOP/s and MFU against a measured peak.
# - Estimate the time, cost and energy of a training run from $N$, $D$, a GPU's peak, an MFU and
#   a price, and allocate a compute budget between $N$ and $D$ the Chinchilla way.
# - Measure energy and CO2 of a run with codecarbon, read what the figure does and does not
#   measure, and compare with the published footprints of real trainings.
#
# **Prerequisites:** [GPU essentials](../00-foundations/03-gpu-essentials) (FLOPs, peak
# throughput, roofline), [the scale of LLMs](../01-introduction/02-scale) (parameter counts and
# $6ND$ on published models) and [the training loop](04-training-loop).
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
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import shared
from shared.checkpoints import course_model_info
from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.energy import count_flops, grid_carbon_intensity, track_energy
from shared.models import GPT, GPTConfig
from shared.training import make_optimizer

# One thread: the peak and the training throughput below are measured with the same setting,
# and small models run faster on one thread than on two on this shared machine.
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("codecarbon", "matplotlib"))

# %% [markdown]
# ## Where $6ND$ comes from
#
# Almost all the arithmetic of a transformer is matrix products $y = xW$. For one token, a
# weight matrix with $n$ entries costs $2n$ FLOPs in the forward pass (a multiply and an add
# per entry). The backward pass computes two products of the same size, the gradient with
# respect to the input ($\partial L/\partial x = \partial L/\partial y \, W^\top$) and with
# respect to the weight ($\partial L/\partial W = x^\top \partial L/\partial y$): $4n$ FLOPs.
# Training therefore costs $6n$ FLOPs per token per weight, and $6N$ per token for a model of $N$
# matrix weights: $C \approx 6ND$ for $D$ tokens (Kaplan et al. 2020).
#
# Attention adds products whose size depends on the context length $T$ rather than on weights:
# $QK^\top$ and the weighted sum of $V$, $2 \cdot 2Td$ FLOPs per token per layer forward. Per
# token, for $L$ layers of width $d$ with a $4d$ feed-forward network and vocabulary $V$
# (tied or not, the output head is a $d \times V$ product):
#
# $$C_{\text{token}} = 6\,\underbrace{\left(12Ld^2 + Vd\right)}_{N_{\text{matmul}}}
# \;+\; 3 \cdot 4LTd .$$
#
# Embedding lookups cost no FLOPs, and norms, softmax and activations are small element-wise
# terms that the count leaves out. The attention share is $\frac{12LTd}{72Ld^2} =
# \frac{T}{6d}$: small for wide models, not for small ones. We check this against an exact
# count: `shared.energy.count_flops` runs a forward and backward pass under PyTorch's
# `FlopCounterMode`, which adds up the FLOPs of every matrix product actually executed.

# %%
def training_flops_per_token(n_layer: int, d_model: int, seq_len: int, vocab_size: int) -> int:
    """6 x matmul weights + 3 x forward attention FLOPs, for a GPT with a 4d feed-forward."""
    matmul_weights = n_layer * 12 * d_model**2 + vocab_size * d_model
    attention_forward = 4 * n_layer * seq_len * d_model
    return 6 * matmul_weights + 3 * attention_forward


BLOCK, BATCH = 128, 8
data = shakespeare_char_data(BLOCK)
config = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=BLOCK, n_layer=4, n_head=4,
                   d_model=128)
model = GPT(config)
x, y = RandomBlockSampler(data.train, BLOCK, BATCH, seed=0).next_batch()
tokens = x.numel()


def forward_backward() -> None:
    model(x, targets=y).loss.backward()


def forward_only() -> None:
    with torch.no_grad():
        model(x, targets=y)


counted_train = count_flops(forward_backward)
counted_forward = count_flops(forward_only)
model.zero_grad(set_to_none=True)
formula = training_flops_per_token(4, 128, BLOCK, config.vocab_size) * tokens
n_all = model.num_parameters()

print(f"model: {n_all:,} parameters; batch of {BATCH} x {BLOCK} = {tokens:,} tokens")
print(f"counted forward + backward          {counted_train:>16,} FLOPs")
print(f"counted forward only                {counted_forward:>16,} "
      f"(training / forward = {counted_train / counted_forward:.3f})")
print(f"formula 6 N_matmul + 12 L T d       {formula:>16,} "
      f"(ratio to count {formula / counted_train:.4f})")
print(f"3 x GPT.flops_per_token x tokens    {3 * model.flops_per_token(BLOCK) * tokens:>16,}")
print(f"6 N D with N = all parameters       {6 * n_all * tokens:>16,} "
      f"(ratio to count {6 * n_all * tokens / counted_train:.4f})")

# %% [markdown]
# The formula is within about 2% of the exact count, and matches the model's own
# `GPT.flops_per_token` (times 3). The remaining gap is attention's backward pass: PyTorch
# counts it as 2.5 times the forward, not 2 times, because fused attention kernels recompute
# the $T \times T$ score matrix in the backward pass instead of storing it (FlashAttention, Dao
# et al. 2022), which adds a fifth product to the four gradient products. That is also why the
# training/forward ratio is a little above 3. The bare $6ND$ with all parameters is off by more,
# because it counts the position embedding (no FLOPs) and omits attention.
#
# The attention share $T/(6d)$ decides when $6ND$ alone is good enough:

# %%
shapes = {  # name: (layers, width, vocabulary)
    "this model (d=128)": (4, 128, 65), "the course model (d=192)": (6, 192, 65),
    "GPT-2 small (d=768)": (12, 768, 50257), "GPT-3 175B (d=12,288)": (96, 12288, 50257)}
contexts = np.array([128, 256, 512, 1024, 2048, 4096, 8192, 32768])
fig, ax = plt.subplots(figsize=(7, 4))
for name, (n_layer, d_model, vocab) in shapes.items():
    share = [12 * n_layer * t * d_model / training_flops_per_token(n_layer, d_model, t, vocab)
             for t in contexts]
    ax.plot(contexts, share, "o-", label=name)
ax.set(xscale="log", xlabel="context length T (tokens)", ylabel="attention share of training FLOPs",
       title="The attention term grows with T/d")
ax.set_xticks(contexts, [f"{t:,}" for t in contexts], rotation=30)
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# For GPT-3 at its 2,048-token context the attention term is under 3%, and $6ND$ is accurate;
# for small models, or for any model at 32k tokens, it is not. (Kaplan et al.'s Table 1 has
# half this attention term, $2LTd$ per token forward; papers differ on whether the masked half
# of the causal score matrix is counted, so state your convention.)
#
# ## Throughput and utilisation on this machine
#
# A FLOP count becomes a time through throughput. We measure two things with the same single
# thread: the peak, as the FLOP/s of a large matrix product (the best case for a CPU), and the
# training throughput of GPTs of several widths, as tokens per second of full optimizer steps.
# Other jobs share this machine, so wall-clock time would measure them too: we time with
# `time.process_time()`, the CPU time this process actually ran, and keep the best of several
# repeats. Absolute numbers vary between machines; the ratio of the two (the MFU) much less.

# %%
def best_time(fn, repeats: int) -> float:
    """The shortest of `repeats` CPU-time measurements of fn(), in seconds."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


peak_flops = 0.0
for size, repeats in ((512, 40), (1024, 25)):  # many repeats: the peak is a best case
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # the first call pays one-off costs
    peak_flops = max(peak_flops, 2 * size**3 / best_time(lambda: a @ b, repeats=repeats))
print(f"measured matmul peak (square fp32 products of 512 and 1024, 1 thread): "
      f"{peak_flops / 1e9:.1f} GFLOP/s")

source = torch.randn(16 * 2**20)  # 64 MiB of float32: far larger than the CPU's caches
target = torch.empty_like(source)
target.copy_(source)
bandwidth = 2 * source.numel() * 4 / best_time(lambda: target.copy_(source), repeats=5)
print(f"measured memory bandwidth (copy, read + write): {bandwidth / 1e9:.1f} GB/s; "
      f"balance: {peak_flops / bandwidth:.0f} FLOPs per byte moved")


def training_throughput(n_layer: int, d_model: int, steps: int = 4) -> dict[str, float]:
    """Tokens and model FLOPs per CPU-second of full AdamW steps for a GPT of the given shape."""
    cfg = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=BLOCK, n_layer=n_layer,
                    n_head=4, d_model=d_model)
    net = GPT(cfg)
    optimizer = make_optimizer(net, lr=1e-3, weight_decay=0.1)

    def step() -> None:
        net(x, targets=y).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # the first step allocates the optimizer state
    seconds = best_time(step, repeats=steps)
    model_flops = training_flops_per_token(n_layer, d_model, BLOCK, cfg.vocab_size) * tokens
    return {"d_model": d_model, "params": net.num_parameters(), "tokens_per_s": tokens / seconds,
            "flops_per_s": model_flops / seconds, "mfu": model_flops / seconds / peak_flops}


throughput = [training_throughput(2, d) for d in (32, 64, 128, 256)]
print(f"{'d_model':>8} {'params':>10} {'tokens/s':>10} {'GFLOP/s':>9} {'MFU':>6}")
for row in throughput:
    print(f"{row['d_model']:>8} {row['params']:>10,} {row['tokens_per_s']:>10,.0f} "
          f"{row['flops_per_s'] / 1e9:>9.1f} {row['mfu']:>6.1%}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot([r["d_model"] for r in throughput], [100 * r["mfu"] for r in throughput], "o-",
        label="2-layer GPT, batch 8 x 128, fp32, 1 thread")
ax.axhline(46.2, color="gray", ls="--", label="PaLM 540B on TPU v4 (Chowdhery et al. 2022)")
ax.set(xscale="log", xlabel="model width d_model", ylabel="MFU (% of measured matmul peak)",
       title="Model FLOPs utilisation grows with model width", ylim=(0, 100))
ax.set_xticks([32, 64, 128, 256], ["32", "64", "128", "256"])
ax.minorticks_off()
ax.legend(loc="upper left", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# Model FLOPs utilisation, $\text{MFU} = \frac{\text{model FLOPs per step}}{\text{step time}
# \times \text{peak FLOP/s}}$, is the measure Chowdhery et al. (2022) introduced for PaLM: it
# counts only the FLOPs the model needs ($6N$ plus attention per token), not recomputation,
# so it compares fairly across implementations. Their 540B model reached 46.2% on TPU v4; they
# report 21.3% for GPT-3 and about 30% for Gopher and Megatron-Turing NLG.
#
# On this CPU, utilisation rises with width, from roughly a quarter of the matmul peak at
# width 32 to most of it at width 256. The narrow model loses its time to work that is not a
# large matrix product: products too small to run at full speed, and element-wise work (the
# AdamW update, layer norms, softmax, GELU) plus a fixed Python and dispatch cost per
# operation. As the width grows, the matrix products grow as $d^2$ and the rest as $d$.
#
# Why, then, do large runs on GPUs report only 20-50%? The balance printed above is the
# answer. This CPU core does a few FLOPs per byte it can move to or from memory, so
# element-wise work, which moves bytes and does almost no FLOPs, is cheap next to the matrix
# products. An H100 does 989 TFLOP/s against 3.35 TB/s of memory bandwidth, about 295 FLOPs
# per byte: on it every byte that is moved without being multiplied is expensive, and so are
# communication between GPUs and pipeline bubbles. A high MFU on a slow chip is easy; on a
# fast chip it takes fused kernels, large batches and overlapped communication.
#
# ## From FLOPs to time and money
#
# With an MFU, a peak and a price, the cost of a run is arithmetic:
#
# $$\text{GPU-hours} = \frac{6ND}{\text{peak} \times \text{MFU} \times 3600},\qquad
# \text{cost} = \text{GPU-hours} \times \text{price per GPU-hour}.$$
#
# The inputs below are **assumptions**, labelled as such. Peaks are NVIDIA's dense bf16
# datasheet figures (312 TFLOP/s for the A100, 989 for the H100 SXM). Prices per GPU-hour
# vary several-fold between providers, regions, commitments and months (on-demand list prices
# are on the providers' pages: AWS EC2, Google Cloud, Azure, Lambda; see References), so we
# take one round number per GPU and show the cost over a range of prices. The
# [scale notebook](../01-introduction/02-scale) checked the same arithmetic against Llama 2's
# published A100-hours, which imply an MFU of about 40%.

# %%
GPUS = {  # peak dense bf16 FLOP/s (NVIDIA datasheets) and an ASSUMED on-demand price, USD/hour
    "A100 80GB": {"peak": 312e12, "usd_per_hour": 2.00},
    "H100 SXM": {"peak": 989e12, "usd_per_hour": 3.00},
}
ASSUMED_MFU = 0.40  # what well-tuned large runs report; small or badly tuned runs get less


def training_cost(n_params: float, n_tokens: float, gpu: str, mfu: float = ASSUMED_MFU,
                  usd_per_hour: float | None = None) -> dict[str, float]:
    """Compute, GPU-hours and cost of training n_params on n_tokens with C = 6ND."""
    spec = GPUS[gpu]
    price = spec["usd_per_hour"] if usd_per_hour is None else usd_per_hour
    flops = 6 * n_params * n_tokens
    gpu_hours = flops / (spec["peak"] * mfu) / 3600
    return {"flops": flops, "gpu_hours": gpu_hours, "usd": gpu_hours * price}


course = course_model_info("shakespeare-char")
runs = {  # name: (parameters, training tokens)
    "the course model": (course["parameters"], course["tokens_seen"]),
    "GPT-2 small, 10B tokens": (124e6, 10e9),
    "Llama 2 7B, 2T tokens": (6.7e9, 2e12),
    "Chinchilla 70B, 1.4T tokens": (70e9, 1.4e12),
    "GPT-3 175B, 300B tokens": (175e9, 300e9),
}
print(f"{'run':<28} {'C (FLOPs)':>10} {'H100-hours':>11} {'days on 1,024':>14} {'cost (USD)':>11}")
for name, (n, d) in runs.items():
    est = training_cost(n, d, "H100 SXM")
    print(f"{name:<28} {est['flops']:>10.2e} {est['gpu_hours']:>11.3g} "
          f"{est['gpu_hours'] / 1024 / 24:>14.3g} {est['usd']:>11.3g}")
print(f"(assumed: MFU {ASSUMED_MFU:.0%}, ${GPUS['H100 SXM']['usd_per_hour']:.2f} per H100-hour)")

# %% [markdown]
# The course model, which took 38 minutes on this machine's CPU, would take a quarter of a
# second of one H100 at 40% MFU; GPT-3 would take over 200,000 H100-hours. Because the price is
# a multiplier, the honest way to quote a cost is as a range:

# %%
prices = np.linspace(1.0, 10.0, 50)
fig, ax = plt.subplots(figsize=(7, 4))
for name, color in (("Llama 2 7B, 2T tokens", "tab:blue"),
                    ("Chinchilla 70B, 1.4T tokens", "tab:green"),
                    ("GPT-3 175B, 300B tokens", "tab:red")):
    n, d = runs[name]
    for gpu, style in (("H100 SXM", "-"), ("A100 80GB", ":")):
        usd = [training_cost(n, d, gpu, usd_per_hour=p)["usd"] / 1e6 for p in prices]
        ax.plot(prices, usd, style, color=color, label=f"{name}, {gpu}")
ax.set(yscale="log", xlabel="assumed price per GPU-hour (USD)",
       ylabel="training cost (million USD, at 40% MFU)",
       title="Cost of a training run against the price of a GPU-hour")
ax.legend(fontsize=7, ncol=2, loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# The A100 curves sit about 2.1 times above the H100 ones at the same price per hour: the
# H100's peak is 3.2 times higher and its assumed price 1.5 times higher. Which GPU is cheaper
# therefore depends on the two prices you are actually quoted, and on whether your run reaches
# the same MFU on both.
#
# ## Spending a budget: the Chinchilla allocation
#
# A fixed compute budget $C = 6ND$ can buy a large model trained briefly or a small one
# trained long. Hoffmann et al. (2022) fitted the final loss of 400 training runs with
#
# $$L(N, D) = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}},\qquad E = 1.69,\ A = 406.4,\
# B = 410.7,\ \alpha = 0.34,\ \beta = 0.28,$$
#
# and minimised it along $C = 6ND$. Their other two methods (fitting the minima of training
# curves and of iso-FLOP profiles) gave about 20 tokens per parameter, the rule of thumb
# $D \approx 20N$, hence $N = \sqrt{C/120}$. We draw the loss along lines of constant compute
# and mark both answers.

# %%
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def chinchilla_loss(n_params: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    return E + A / n_params**ALPHA + B / n_tokens**BETA


def parametric_optimum(compute: float) -> tuple[float, float]:
    """N and D minimising the fitted loss under C = 6ND (closed form of Hoffmann et al.)."""
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    n_opt = g * (compute / 6) ** (BETA / (ALPHA + BETA))
    return n_opt, compute / (6 * n_opt)


budgets = [1e19, 1e20, 1e21, 1e22, 1e23, 5.76e23]
sizes = np.logspace(7, 12, 400)
fig, ax = plt.subplots(figsize=(8, 4.5))
for c in budgets:
    line, = ax.plot(sizes, chinchilla_loss(sizes, c / (6 * sizes)), label=f"C = {c:.2g} FLOPs")
    n_fit, d_fit = parametric_optimum(c)
    ax.plot(n_fit, chinchilla_loss(n_fit, d_fit), "o", color=line.get_color())
    n_20 = np.sqrt(c / 120)
    ax.plot(n_20, chinchilla_loss(n_20, 20 * n_20), "x", ms=9, color=line.get_color())
ax.set(xscale="log", ylim=(1.9, 3.6), xlabel="parameters N (tokens D = C / 6N)",
       ylabel="fitted final loss L(N, D)",
       title="Iso-FLOP curves of the Chinchilla fit (o: its minimum, x: D = 20N)")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

print(f"{'C (FLOPs)':>10} {'N (fit)':>10} {'D/N (fit)':>10} {'N (D=20N)':>10} "
      f"{'loss gap of D=20N':>18}")
for c in budgets:
    n_fit, d_fit = parametric_optimum(c)
    n_20 = np.sqrt(c / 120)
    gap = chinchilla_loss(n_20, 20 * n_20) - chinchilla_loss(n_fit, d_fit)
    print(f"{c:>10.2g} {n_fit:>10.3g} {d_fit / n_fit:>10.1f} {n_20:>10.3g} {gap:>18.4f}")

# %% [markdown]
# Each curve is U-shaped: too small a model underfits, too large a model sees too few tokens.
# The fitted formula puts the minimum at smaller models and more tokens per parameter than 20,
# increasingly so with budget, yet the loss at $D = 20N$ is within about 0.01 of it: the
# bottom of each U is flat, which is why a rule of thumb works. At Chinchilla's own budget
# ($5.76 \times 10^{23}$) the rule gives 69B parameters and 1.4T tokens, the model they
# trained. (Besiroglu et al. 2024 refitted the published data and found that this parametric
# fit is not consistent with Hoffmann et al.'s other two methods; their refit agrees with about
# 20 tokens per parameter.) Inference cost shifts the choice further: a model that will serve
# billions of tokens is worth over-training, which is why Llama 2 7B saw about 300 tokens per
# parameter.
#
# ## Energy and carbon of a run
#
# Energy is power integrated over time. `shared.energy.track_energy` wraps codecarbon's
# offline tracker, which samples the machine's power every half second and multiplies the
# energy by the carbon intensity of a country's electricity grid (codecarbon's bundled yearly
# figures; no network). On a physical Linux machine it reads the CPU's RAPL energy counters. On
# a virtual machine like this one there are none, so the CPU figure is an **estimate** from the
# CPU load and a thermal design power (TDP), and RAM is modelled from the installed memory. The
# report's `method` says which case applies; we print it.

# %%
energy_config = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=BLOCK, n_layer=2,
                          n_head=4, d_model=128)
energy_model = GPT(energy_config)
energy_optimizer = make_optimizer(energy_model, lr=1e-3, weight_decay=0.1)
sampler = RandomBlockSampler(data.train, BLOCK, BATCH, seed=1)
ENERGY_STEPS = 25  # a few seconds; any real run is millions of times longer

# The country sets the grid's carbon intensity; "process" mode counts this process's share of
# the CPU load, not the other jobs that share this machine.
with track_energy("USA", tracking_mode="process") as report:
    for _ in range(ENERGY_STEPS):
        xb, yb = sampler.next_batch()
        energy_model(xb, targets=yb).loss.backward()
        energy_optimizer.step()
        energy_optimizer.zero_grad(set_to_none=True)

trained_tokens = ENERGY_STEPS * BATCH * BLOCK
run_flops = training_flops_per_token(2, 128, BLOCK, energy_config.vocab_size) * trained_tokens
print(report.summary())
print("method:", report.method)
print(f"is an estimate: {report.is_estimate}; CPU {report.cpu_power_w:.1f} W, "
      f"RAM {report.ram_power_w:.1f} W (modelled)")
print(f"{trained_tokens:,} tokens: {report.joules / trained_tokens * 1e3:.2f} mJ per token, "
      f"{run_flops / report.joules / 1e9:.2f} GFLOP per joule")
print(f"for comparison, an H100 at 40% MFU and 700 W: {989e12 * 0.4 / 700 / 1e9:.0f} GFLOP "
      "per joule")

# %% [markdown]
# Read these numbers for what they are: the power is codecarbon's model of this virtual
# machine, not a measurement. The CPU figure is this process's share of a default 8 W TDP, and
# the modelled RAM power outweighs it, a sign of how rough the model is. Take the joules as an
# order of magnitude, not a figure to publish. Even so, the comparison is telling: per joule,
# an H100 running a large model does about two orders of magnitude more training FLOPs than this
# estimate gives for the CPU. The method stays the same on a machine with real counters (RAPL,
# or NVIDIA's NVML on a GPU, which codecarbon reads when one is present), and then the
# numbers are measured.
#
# The carbon part is a separate multiplication, and the grid dominates it. The same energy
# in different countries, using codecarbon's figures:

# %%
countries = ["NOR", "SWE", "FRA", "BRA", "CAN", "GBR", "USA", "DEU", "JPN", "CHN", "POL", "IND"]
intensity = {c: grid_carbon_intensity(c) for c in countries}
fig, ax = plt.subplots(figsize=(8, 3.8))
ax.bar(countries, [intensity[c] for c in countries], color="tab:gray")
ax.set(xlabel="country (ISO 3166-1 alpha-3)", ylabel="g CO2eq per kWh",
       title="Grid carbon intensity used by codecarbon (one yearly figure per country)")
plt.tight_layout()
plt.show()
print(f"this run's energy ({report.kwh:.2e} kWh) would emit "
      + ", ".join(f"{c} {report.kwh * intensity[c]:.3f} g" for c in ("NOR", "FRA", "USA", "IND")))

# %% [markdown]
# A factor of more than 20 separates the cleanest grid from the dirtiest: where a run happens
# matters as much as how efficient it is, which is one of Patterson et al.'s (2021) main
# findings. For a GPU cluster the same arithmetic reads
#
# $$E = \text{GPU-hours} \times \text{power per GPU} \times \text{PUE},\qquad
# \text{CO}_2 = E \times \text{grid intensity},$$
#
# where PUE (power usage effectiveness, about 1.1 to 1.6) adds cooling and power conversion.
# BLOOM's report (Luccioni et al. 2023) is an example we can reproduce: 1,082,990 A100-hours at
# 400 W is 433 MWh, and at the French grid's 57 g/kWh that is 24.7 tonnes, the dynamic-power
# figure they publish.

# %%
bloom_kwh = 1_082_990 * 0.400  # GPU-hours x kW per GPU (the A100's TDP, as in the paper)
print(f"BLOOM: {bloom_kwh / 1e3:,.0f} MWh; at 57 g/kWh: {bloom_kwh * 57 / 1e6:.1f} t CO2eq")
course_estimate_kwh = report.kwh / report.duration_s * course["wall_time_s"]
print(f"the course model's {course['wall_time_s'] / 60:.0f}-minute CPU training, at this run's "
      f"mean power ({report.mean_power_w:.0f} W): about {course_estimate_kwh * 1e3:.0f} Wh")

# %% [markdown]
# ## Published footprints of real trainings
#
# | training | hardware and time | energy | CO2eq | source |
# |---|---|---|---|---|
# | BERT base (110M) | 64 V100, 79 h | 1.5 MWh | 0.65 t (1,438 lbs) | [Strubell et al. 2019](https://arxiv.org/abs/1906.02243) |
# | Transformer big + neural architecture search | 8 P100 (one machine), 274,120 h | 656 MWh | 284 t (626,155 lbs) | [Strubell et al. 2019](https://arxiv.org/abs/1906.02243) |
# | T5 11B | TPU v3 | 86 MWh | 47 t | [Patterson et al. 2021](https://arxiv.org/abs/2104.10350) |
# | GPT-3 175B | V100s | 1,287 MWh | 552 t | [Patterson et al. 2021](https://arxiv.org/abs/2104.10350) |
# | BLOOM 176B | 384 A100, 1.08M GPU-h | 433 MWh | 24.7 t (50.5 t with idle power and manufacturing) | [Luccioni et al. 2023](https://arxiv.org/abs/2211.02001) |
# | Llama 2, all four sizes | A100s, 3.3M GPU-h | - | 539 t | [Touvron et al. 2023](https://arxiv.org/abs/2307.09288) |
#
# Strubell et al. estimated their figures from the measured power of short runs, a PUE of 1.58
# and the US-average grid; for the architecture search, Patterson et al. (2021) recomputed the
# footprint with the hardware and datacentre actually used and found it far smaller, a warning
# about estimates made from the outside. GPT-3 and BLOOM have similar sizes, yet a 22-fold
# difference in CO2: BLOOM used 3 times less energy (newer GPUs) on a grid about 7.5 times
# cleaner (France, mostly nuclear: 57 g/kWh against the 429 g/kWh implied by GPT-3's figures).

# %%
footprints = {"BERT base": 0.65, "BLOOM 176B": 24.7, "T5 11B": 47, "NAS (Strubell)": 284,
              "Llama 2 (all)": 539, "GPT-3 175B": 552}
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(list(footprints), list(footprints.values()), color="tab:brown")
ax.set(xscale="log", xlabel="tonnes CO2eq (log scale)", ylabel="training run",
       title="Published training footprints (sources in the table above)")
for name, tonnes in footprints.items():
    ax.text(tonnes * 1.1, name, f"{tonnes:g} t", va="center", fontsize=8)
ax.set_xlim(0.3, 3000)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The 20-tokens-per-parameter allocation
#
# Write `chinchilla_rule(compute)` returning the pair `(n_params, n_tokens)` that spends
# `compute` FLOPs with $C = 6ND$ and $D = 20N$. The check uses Chinchilla's own budget and two
# others.

# %% tags=["solution"]
def chinchilla_rule(compute: float) -> tuple[float, float]:
    """N and D with C = 6ND and D = 20N."""
    # BEGIN SOLUTION
    n_params = (compute / 120) ** 0.5
    return n_params, 20 * n_params
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_function, passed

check_function(chinchilla_rule,
               [((1.2e21,), np.array([3.1622776601683795e9, 6.324555320336759e10])),
                ((120.0,), np.array([1.0, 20.0]))], "chinchilla_rule")
n_check, d_check = chinchilla_rule(5.76e23)
check_close(6 * n_check * d_check, 5.76e23, "6 N D for Chinchilla's budget", rtol=1e-9)
check(68e9 < n_check < 70e9, "chinchilla_rule(5.76e23)", "about 69 billion parameters")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: MFU from a published run
#
# Llama 2 70B was trained on 2 trillion tokens in 1,720,320 A100-hours (Touvron et al. 2023).
# Write `implied_mfu(n_params, n_tokens, gpu_hours, peak_flops)`: the fraction of peak that
# $6ND$ FLOPs in that many GPU-hours implies. Then set `llama2_70b_mfu` using 70e9 parameters
# and the A100's 312 TFLOP/s.

# %% tags=["solution"]
def implied_mfu(n_params: float, n_tokens: float, gpu_hours: float, peak_flops: float) -> float:
    """6ND divided by what the GPUs could have done at peak in gpu_hours."""
    # BEGIN SOLUTION
    return 6 * n_params * n_tokens / (gpu_hours * 3600 * peak_flops)
    # END SOLUTION


llama2_70b_mfu = None
# BEGIN SOLUTION
llama2_70b_mfu = implied_mfu(70e9, 2e12, 1_720_320, 312e12)
# END SOLUTION
print(f"Llama 2 70B: MFU about {llama2_70b_mfu:.1%}" if llama2_70b_mfu else "no answer yet")

# %% tags=["check"]
check_function(implied_mfu, [((1e9, 1e9, 1.0, 6e18 / 3600), 1.0),
                             ((2e9, 1e9, 2.0, 6e18 / 3600), 1.0)], "implied_mfu")
check_close(llama2_70b_mfu, 6 * 70e9 * 2e12 / (1_720_320 * 3600 * 312e12), "llama2_70b_mfu")
check(0.4 < llama2_70b_mfu < 0.47, "llama2_70b_mfu", "an MFU between 40% and 47%")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: The carbon of a GPU run
#
# Write `training_co2_tonnes(gpu_hours, watts_per_gpu, pue, grid_g_per_kwh)` returning tonnes of
# CO2eq: energy is GPU-hours times power times PUE, emissions are energy times the grid's
# intensity. The check reproduces BLOOM's dynamic-power figure (PUE 1, 400 W, 57 g/kWh) and
# asks for `gpt3_on_french_grid`: GPT-3's published 1,287 MWh (which already includes the
# datacentre's PUE) at France's intensity as codecarbon gives it (`grid_carbon_intensity`).

# %% tags=["solution"]
def training_co2_tonnes(gpu_hours: float, watts_per_gpu: float, pue: float,
                        grid_g_per_kwh: float) -> float:
    """Tonnes of CO2eq of a GPU run."""
    # BEGIN SOLUTION
    kwh = gpu_hours * watts_per_gpu / 1000 * pue
    return kwh * grid_g_per_kwh / 1e6
    # END SOLUTION


gpt3_on_french_grid = None
# BEGIN SOLUTION
gpt3_on_french_grid = 1_287_000 * grid_carbon_intensity("FRA") / 1e6
# END SOLUTION

# %% tags=["check"]
check_close(training_co2_tonnes(1_082_990, 400, 1.0, 57), 24.69, "BLOOM", rtol=2e-3)
check_close(training_co2_tonnes(1000, 500, 1.5, 400), 0.3, "1000 GPU-h at 500 W, PUE 1.5")
check_close(gpt3_on_french_grid, 1_287_000 * grid_carbon_intensity("FRA") / 1e6,
            "gpt3_on_french_grid")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Predict a throughput, then measure it
#
# FLOP counts turn into time estimates. Assume a 2-layer model of width 384 runs at the same
# model FLOP/s as the width-256 model measured above. Set `predicted_384` to the tokens per
# second that this predicts (use `training_flops_per_token` with this notebook's `BLOCK` and
# vocabulary). Then set `measured_384` to the tokens per second that `training_throughput`
# measures for that model. The check wants the prediction computed exactly and the measurement
# within a factor of 2 of it.

# %% tags=["solution"]
predicted_384 = None
measured_384 = None
# BEGIN SOLUTION
flops_per_token_384 = training_flops_per_token(2, 384, BLOCK, data.tokenizer.vocab_size)
predicted_384 = throughput[-1]["flops_per_s"] / flops_per_token_384
measured_384 = training_throughput(2, 384, steps=2)["tokens_per_s"]
# END SOLUTION
if predicted_384 and measured_384:
    print(f"width 384: predicted {predicted_384:,.0f} tokens/s, measured {measured_384:,.0f} "
          f"(ratio {measured_384 / predicted_384:.2f})")

# %% tags=["check"]
expected_prediction = (throughput[-1]["flops_per_s"]
                       / training_flops_per_token(2, 384, BLOCK, data.tokenizer.vocab_size))
check_close(predicted_384, expected_prediction, "predicted_384", rtol=1e-9)
check(measured_384 is not None and 0.5 < measured_384 / predicted_384 < 2.0, "measured_384",
      "a measured throughput within a factor of 2 of the prediction")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Training a transformer costs $6N$ FLOPs per token for $N$ matrix weights plus an attention
#   term $12LTd$; the formula matched PyTorch's exact count to about 2%, the gap being
#   attention's recomputation in the backward pass. The attention share is $T/(6d)$.
# - MFU = model FLOPs / (time x peak). Measured here on one CPU thread it grew with model
#   width, from about a quarter to most of the matmul peak; a CPU's low FLOPs-per-byte balance
#   makes that easy. Large GPU runs report 20-50% (PaLM: 46.2%).
# - Time and cost follow from $6ND$, a peak, an MFU and a price per GPU-hour, and the price is
#   the least certain input: quote costs as ranges with the assumptions stated.
# - At fixed compute the Chinchilla fit has a flat minimum; $D \approx 20N$ lands within about
#   0.01 of its loss. Expected inference volume pushes towards smaller models trained longer.
# - codecarbon multiplies power by time by grid intensity. On this VM the power is a TDP-based
#   estimate (the report says so); the grid intensity varies more than 20-fold by country and
#   dominates the CO2 of real trainings (GPT-3 552 t, BLOOM 24.7 t).
#
# Next: [saving and sharing](06-saving-and-sharing) the model such a run produces.
#
# ## References
#
# - J. Kaplan et al., "Scaling laws for neural language models", 2020.
#   https://arxiv.org/abs/2001.08361
# - J. Hoffmann et al., "Training compute-optimal large language models" (Chinchilla), 2022.
#   https://arxiv.org/abs/2203.15556
# - T. Besiroglu et al., "Chinchilla scaling: A replication attempt", 2024.
#   https://arxiv.org/abs/2404.10102
# - A. Chowdhery et al., "PaLM: Scaling language modeling with pathways" (MFU, Appendix B),
#   2022. https://arxiv.org/abs/2204.02311
# - T. Dao et al., "FlashAttention: Fast and memory-efficient exact attention with IO-awareness",
#   NeurIPS 2022. https://arxiv.org/abs/2205.14135
# - E. Strubell, A. Ganesh, A. McCallum, "Energy and policy considerations for deep learning in
#   NLP", ACL 2019. https://arxiv.org/abs/1906.02243
# - D. Patterson et al., "Carbon emissions and large neural network training", 2021.
#   https://arxiv.org/abs/2104.10350
# - A. S. Luccioni, S. Viguier, A.-L. Ligozat, "Estimating the carbon footprint of BLOOM, a 176B
#   parameter language model", JMLR 2023. https://arxiv.org/abs/2211.02001
# - H. Touvron et al., "Llama 2: Open foundation and fine-tuned chat models", 2023.
#   https://arxiv.org/abs/2307.09288
# - R. Schwartz, J. Dodge, N. A. Smith, O. Etzioni, "Green AI", 2019.
#   https://arxiv.org/abs/1907.10597
# - N. C. Thompson et al., "The computational limits of deep learning", 2020.
#   https://arxiv.org/abs/2007.05558
# - codecarbon documentation. https://mlco2.github.io/codecarbon/ ; the ML CO2 impact calculator.
#   https://mlco2.github.io/impact/
# - PyTorch, `torch.utils.flop_counter.FlopCounterMode`.
#   https://github.com/pytorch/pytorch/blob/main/torch/utils/flop_counter.py
# - NVIDIA A100 and H100 datasheets (peak throughput).
#   https://www.nvidia.com/en-us/data-center/a100/ ,
#   https://www.nvidia.com/en-us/data-center/h100/
# - On-demand GPU prices (check the date: they change): AWS EC2
#   https://aws.amazon.com/ec2/pricing/on-demand/ , Google Cloud
#   https://cloud.google.com/compute/gpus-pricing , Microsoft Azure
#   https://azure.microsoft.com/en-us/pricing/details/virtual-machines/linux/ , Lambda
#   https://lambda.ai/pricing
# - Efficient Machine Learning (MIT course). https://efficientml.ai/
