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
# # The "large" in large language models: parameters, data, memory and compute
#
# "Large" has three measurable meanings: the number of parameters, the number of training
# tokens, and the compute spent, which is roughly the product of the two. Each one decides
# something practical: parameters decide the memory a model needs and whether it fits on a GPU;
# tokens and compute decide what training costs; and the ratio of tokens to parameters, which
# Hoffmann et al. (2022) showed was badly chosen for the first generation of large models, decides
# how much quality a fixed budget buys. This notebook builds a small calculator for all three and
# runs it on the published configurations of real models, checking every formula against a number
# that someone else measured.
#
# **Learning objectives**
# - Count the parameters of a transformer from its configuration (layers, width, heads, vocabulary,
#   context) and check the count against a real model and against the published figure.
# - Compute the tokens-per-parameter ratio of real models and place them against the Chinchilla
#   rule of about 20 tokens per parameter.
# - Estimate the memory of a 7B and a 70B model for inference (per dtype, with the KV cache) and
#   for training with Adam.
# - Estimate training compute with $C \approx 6ND$, check it against published figures, and turn
#   it into GPU-hours, cost and an implied hardware utilisation.
#
# **Prerequisites:** [GPU essentials](../00-foundations/03-gpu-essentials) (FLOPs, bytes,
# dtypes) and [linear algebra](../00-foundations/01-linear-algebra) (the cost of a matrix
# product). The transformer's parts are named here and built in module 02; no more is assumed.
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
import math
import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import shared
from shared.assets import chat_model
from shared.models import GPT, GPTConfig

shared.seed_everything(0)
print(shared.environment_summary("numpy", "pandas", "matplotlib", "transformers"))
# transformers imports tqdm, which warns that ipywidgets (progress bars in Jupyter) is absent.
warnings.filterwarnings("ignore", message="IProgress not found")

# %% [markdown]
# ## Real model configurations
#
# Every number below is copied from the paper (or model card) that introduced the model; the
# links are in the References. A *configuration* is the handful of integers that fix a
# transformer's shape: the number of layers $L$, the width $d$ (`d_model`), the number of
# attention heads, the vocabulary size $V$ and the context length $T$. Llama 2 and SmolLM2 add
# the width of the feed-forward network and the number of key/value heads (grouped-query
# attention, GQA). The last columns are what each paper reports: the parameter count, the
# training tokens $D$, and where published, the training compute.
#
# Two notes on the published counts. GPT-2's paper gave 117M and 1,542M; OpenAI's repository
# later corrected them to 124M and 1,558M ("our original parameter counts were wrong due to an
# error"), so we use the corrected figures. The Llama 2 names (7B, 70B) are rounded, so a few
# percent of difference is expected there. SmolLM2-135M is read from the real model that the
# course ships (`shared.assets.chat_model()`); its token count is from its model card.

# %%
@dataclass(frozen=True)
class ModelConfig:
    """A transformer's shape, plus what its authors published about it."""

    name: str
    n_layer: int
    d_model: int
    n_head: int
    vocab_size: int
    context: int
    style: str  # "gpt2": learned positions, LayerNorm, biases, 4d GELU MLP, tied embeddings
    #             "llama": RoPE, RMSNorm, no biases, SwiGLU MLP, untied output head
    #             "gopher": relative positions (Transformer-XL), RMSNorm, 4d MLP
    d_ff: int | None = None  # feed-forward width; None means 4 * d_model
    n_kv_head: int | None = None  # None means n_head (no GQA)
    tied: bool = True  # output head shares the token embedding matrix
    published_params: float = 0.0
    train_tokens: float | None = None  # None: not published
    published_flops: float | None = None
    gpu_hours: float | None = None  # A100-80GB hours, where published


smol = chat_model().config
CONFIGS = [
    ModelConfig("GPT-2 small", 12, 768, 12, 50257, 1024, "gpt2", published_params=124e6),
    ModelConfig("GPT-2 XL", 48, 1600, 25, 50257, 1024, "gpt2", published_params=1558e6),
    ModelConfig("GPT-3 175B", 96, 12288, 96, 50257, 2048, "gpt2", published_params=175.0e9,
                train_tokens=300e9, published_flops=3.14e23),
    ModelConfig("Gopher 280B", 80, 16384, 128, 32000, 2048, "gopher", published_params=280e9,
                train_tokens=300e9),
    ModelConfig("Chinchilla 70B", 80, 8192, 64, 32000, 2048, "gopher", published_params=70e9,
                train_tokens=1.4e12, published_flops=5.76e23),
    ModelConfig("Llama 2 7B", 32, 4096, 32, 32000, 4096, "llama", d_ff=11008, tied=False,
                published_params=7e9, train_tokens=2.0e12, gpu_hours=184_320),
    ModelConfig("Llama 2 70B", 80, 8192, 64, 32000, 4096, "llama", d_ff=28672, n_kv_head=8,
                tied=False, published_params=70e9, train_tokens=2.0e12, gpu_hours=1_720_320),
    ModelConfig("SmolLM2-135M", smol.num_hidden_layers, smol.hidden_size,
                smol.num_attention_heads, smol.vocab_size, smol.max_position_embeddings, "llama",
                d_ff=smol.intermediate_size, n_kv_head=smol.num_key_value_heads,
                tied=smol.tie_word_embeddings, published_params=135e6, train_tokens=2e12),
]
BY_NAME = {c.name: c for c in CONFIGS}

pd.DataFrame(
    [{"model": c.name, "layers": c.n_layer, "d_model": c.d_model, "heads": c.n_head,
      "kv heads": c.n_kv_head or c.n_head, "d_ff": c.d_ff or 4 * c.d_model, "vocab": c.vocab_size,
      "context": c.context, "published params": f"{c.published_params:.4g}",
      "train tokens": "not published" if c.train_tokens is None else f"{c.train_tokens:.3g}"}
     for c in CONFIGS]
).set_index("model")

# %% [markdown]
# ## Counting parameters from a configuration
#
# A decoder-only transformer is an embedding table, $L$ identical blocks and an output head.
# Each block has an attention layer and a feed-forward network (MLP):
#
# - **Attention**: four $d \times d$ projections (queries, keys, values, output): $4d^2$. With
#   GQA, keys and values have only $n_{kv}$ heads of size $d/n_{head}$, so they cost
#   $2 d \cdot n_{kv} d/n_{head}$ instead of $2d^2$.
# - **MLP**: GPT-2 maps $d \to 4d \to d$ with two matrices, $8d^2$. Llama's SwiGLU uses three
#   matrices of $d \times d_{ff}$: $3 d\, d_{ff}$.
# - **Small terms**: biases and norm weights, a few multiples of $d$ per block.
# - **Embeddings**: $Vd$ for the tokens, $Td$ more for GPT-2's learned positions (RoPE has no
#   parameters), and another $Vd$ when the output head is not tied to the input embedding.
#
# So a GPT-2-style model has $P = Vd + Td + L(12d^2 + 13d) + 2d$ parameters, and for large $d$
# the famous approximation is $P \approx 12 L d^2$. Gopher and Chinchilla use Transformer-XL's
# relative positional encoding (Rae et al., 2021; Dai et al., 2019), which adds a $d \times d$
# projection of the position encodings in every layer; we count it as $d^2$ per layer and drop
# their small terms, which are below 0.01% at this size.

# %%
def count_params(c: ModelConfig) -> int:
    """Parameters of a decoder-only transformer with configuration c (see the text)."""
    d, L, V = c.d_model, c.n_layer, c.vocab_size
    head_dim = d // c.n_head
    n_kv = c.n_kv_head or c.n_head
    d_ff = c.d_ff or 4 * d
    attention = 2 * d * d + 2 * d * n_kv * head_dim  # q and output; k and v (smaller with GQA)
    if c.style == "gpt2":
        mlp = 2 * d * d_ff
        small = 2 * d + 2 * n_kv * head_dim + d_ff + d + 4 * d  # q, out, k, v, MLP biases; 2 LayerNorms
        extra, embeddings, final_norm = 0, V * d + c.context * d, 2 * d
    elif c.style == "llama":
        mlp = 3 * d * d_ff
        small = 2 * d  # two RMSNorm weight vectors
        extra, embeddings, final_norm = 0, V * d, d
    elif c.style == "gopher":
        mlp = 2 * d * d_ff
        small = 0  # biases and norms dropped: below 0.01% of the total
        extra, embeddings, final_norm = d * d, V * d, 0  # relative-position projection per layer
    else:
        raise ValueError(f"style must be 'gpt2', 'llama' or 'gopher', got {c.style!r}")
    head = 0 if c.tied else V * d
    return embeddings + L * (attention + mlp + small + extra) + final_norm + head


for c in CONFIGS:
    n = count_params(c)
    print(f"{c.name:15s} formula {n:>17,d}   published {c.published_params:>9.4g}   "
          f"relative error {(n - c.published_params) / c.published_params:+7.2%}")

# %% [markdown]
# The formula lands within 0.4% of the published count for GPT-2, GPT-3, Gopher and Chinchilla
# (the GPT-3 paper's own table lists 174,600M parameters, the formula's figure, and calls it
# 175.0B). For Gopher and Chinchilla the relative-position term matters: without it the formula
# would say $12Ld^2 + Vd$, about 8% short of the published figures. Llama 2's 7B and 70B are
# names, and the exact counts are 3.7% and 1.5% below them; SmolLM2-135M is 0.4% below its name.
#
# A formula is only as good as its assumptions, so we check it against real modules. For the
# GPT-2 and Llama 2 shapes we build the course's own `shared.models.GPT` with the same
# configuration on PyTorch's `meta` device, which creates every parameter tensor with its shape
# but no storage (a 70B-parameter model costs no memory), and count. For SmolLM2 we count the
# weights of the real model.

# %%
def shared_config(c: ModelConfig) -> GPTConfig:
    """The same shape as a `shared.models.GPTConfig` (GPT-2 or Llama style)."""
    if c.style == "gpt2":
        return GPTConfig(vocab_size=c.vocab_size, block_size=c.context, n_layer=c.n_layer,
                         n_head=c.n_head, d_model=c.d_model)
    return GPTConfig(vocab_size=c.vocab_size, block_size=c.context, n_layer=c.n_layer,
                     n_head=c.n_head, n_kv_head=c.n_kv_head, d_model=c.d_model, d_ff=c.d_ff,
                     norm="rmsnorm", pos_encoding="rope", activation="swiglu", bias=False,
                     tie_embeddings=c.tied)


for name in ["GPT-2 small", "GPT-2 XL", "GPT-3 175B", "Llama 2 7B", "Llama 2 70B"]:
    with torch.device("meta"):  # shapes only, no memory
        built = GPT(shared_config(BY_NAME[name])).num_parameters()
    print(f"{name:12s} shared.models.GPT on meta: {built:>16,d}   formula: "
          f"{count_params(BY_NAME[name]):>16,d}   equal: {built == count_params(BY_NAME[name])}")

smol_real = sum(p.numel() for p in chat_model().parameters())
print(f"SmolLM2-135M real weights:          {smol_real:>16,d}   formula: "
      f"{count_params(BY_NAME['SmolLM2-135M']):>16,d}   "
      f"equal: {smol_real == count_params(BY_NAME['SmolLM2-135M'])}")

# %% [markdown]
# Exact agreement, to the parameter. Where do the parameters sit? For a small model the
# embedding table is a large share; for a large one almost everything is in the blocks, and the
# MLP holds about two thirds of each block, more when grouped-query attention shrinks the
# key and value projections.

# %%
def breakdown(c: ModelConfig) -> dict[str, float]:
    """Share of the parameters in embeddings (incl. untied head), attention and MLP."""
    total = count_params(c)
    d, head_dim, n_kv = c.d_model, c.d_model // c.n_head, c.n_kv_head or c.n_head
    attention = c.n_layer * (2 * d * d + 2 * d * n_kv * head_dim)
    mlp = c.n_layer * (3 if c.style == "llama" else 2) * d * (c.d_ff or 4 * d)
    embed = c.vocab_size * d * (1 if c.tied else 2) + (c.context * d if c.style == "gpt2" else 0)
    return {"embeddings": embed / total, "attention": attention / total, "MLP": mlp / total,
            "other": 1 - (embed + attention + mlp) / total}


shares = pd.DataFrame({c.name: breakdown(c) for c in CONFIGS}).T
fig, ax = plt.subplots(figsize=(9, 3.8))
left = np.zeros(len(shares))
for part in shares.columns:
    ax.barh(shares.index, shares[part], left=left, label=part)
    left += shares[part].to_numpy()
ax.invert_yaxis()
ax.set(xlabel="share of parameters", ylabel="model", title="Where the parameters are", xlim=(0, 1))
ax.legend(loc="lower right", ncol=4, fontsize=8)
plt.tight_layout()
plt.show()
print(shares.round(3).to_string())

# %% [markdown]
# ("other" is the biases, norms and, for Gopher and Chinchilla, the relative-position
# projections.) SmolLM2-135M spends 21% of its parameters on its 49,152-token embedding table;
# GPT-3 spends 0.4%. In Llama 2 70B, with 8 key/value heads for 64 query heads, attention is 18%
# of the parameters and the MLP 82%.
#
# ## Parameters against data: the Chinchilla rule
#
# Kaplan et al. (2020) fitted power laws of loss against model size, data and compute and
# concluded that, as compute grows, most of it should go into a bigger model. GPT-3 (175B
# parameters, 300B tokens) and Gopher (280B, 300B) were trained in that spirit. Hoffmann et al.
# (2022) repeated the study over 400 models from 70M to 16B parameters, training each for a
# schedule matched to its token count, and found that parameters $N$ and tokens $D$ should grow
# in equal proportion with compute: about **20 tokens per parameter** at the optimum. Their
# Table 3 lists, for example, 1B parameters with 20.2B tokens and 10B with 205.1B. They tested it
# by training Chinchilla (70B, 1.4T tokens) with Gopher's compute: the smaller model, trained on
# 4.7 times more data, was better on nearly every evaluation.
#
# The tokens-per-parameter ratio of our models:

# %%
ratio_rows = []
for c in CONFIGS:
    if c.train_tokens is not None:
        n = count_params(c)
        ratio_rows.append({"model": c.name, "params": f"{n:.3g}", "tokens": f"{c.train_tokens:.3g}",
                           "tokens per param": round(c.train_tokens / n, 1)})
ratios = pd.DataFrame(ratio_rows).set_index("model")
ratios

# %% [markdown]
# GPT-3 and Gopher saw fewer than 2 tokens per parameter: by the Chinchilla analysis, both were
# too large for their data. Llama 2 7B saw about 300 and SmolLM2-135M about 15,000: far *more*
# than compute-optimal. That is deliberate. The Chinchilla rule minimises the training compute
# for a given loss; a model that will serve billions of requests is cheaper overall if it is
# small and trained for longer, since inference cost scales with parameters and is paid on every
# token served (Touvron et al., 2023, make this argument for Llama).
#
# ### Training compute: $C \approx 6ND$
#
# A forward pass costs about 2 FLOPs per parameter per token (one multiply and one add), and the
# backward pass about twice that, so training costs $C \approx 6ND$ FLOPs (Kaplan et al., 2020;
# attention adds a term proportional to the context length, small for these models). We check it
# against the two papers that publish their compute.

# %%
def train_flops(n_params: float, n_tokens: float) -> float:
    """Training compute C = 6 N D (forward 2ND, backward 4ND)."""
    return 6 * n_params * n_tokens


for name in ["GPT-3 175B", "Chinchilla 70B"]:
    c = BY_NAME[name]
    estimate = train_flops(count_params(c), c.train_tokens)
    print(f"{name:15s} 6ND = {estimate:.3g} FLOPs   published {c.published_flops:.3g}   "
          f"relative error {(estimate - c.published_flops) / c.published_flops:+.1%}")

# %% [markdown]
# With $C = 6ND$ and $D = 20N$, a compute budget fixes both: $C = 120N^2$, so
# $N_{opt} = \sqrt{C/120}$ and $D_{opt} = 20N_{opt}$. Given Gopher's budget, this rule of thumb
# recovers Chinchilla's own size:

# %%
def compute_optimal(flops: float, tokens_per_param: float = 20.0) -> tuple[float, float]:
    """(N, D) that spend `flops` with D = tokens_per_param * N and C = 6 N D."""
    n = math.sqrt(flops / (6 * tokens_per_param))
    return n, tokens_per_param * n


n_opt, d_opt = compute_optimal(5.76e23)
print(f"budget 5.76e23 FLOPs -> N = {n_opt / 1e9:.1f}B parameters, D = {d_opt / 1e12:.2f}T tokens")

# %% [markdown]
# The figure puts every model on the $(N, D)$ plane. Dotted lines are constant compute
# ($C = 6ND$ is a straight line of slope $-1$ on log-log axes); the dashed line is the
# compute-optimal $D = 20N$. A model above the dashed line was trained on more data than
# compute-optimal, one below it on less.

# %%
fig, ax = plt.subplots(figsize=(7.5, 5.5))
n_grid = np.logspace(7.5, 12, 50)
for flops in [1e19, 1e21, 1e23, 1e25]:
    ax.plot(n_grid, flops / (6 * n_grid), ":", color="gray", lw=1)
    x_label = math.sqrt(flops / 6) / 3  # a point of the line inside the axes
    ax.text(x_label, flops / (6 * x_label), f"C = 1e{int(math.log10(flops))}", color="gray",
            fontsize=8, rotation=-33)
ax.plot(n_grid, 20 * n_grid, "--", color="black", label="compute-optimal D = 20 N (Chinchilla)")
label_offsets = {"GPT-3 175B": (-8, -12), "Gopher 280B": (6, 4), "Chinchilla 70B": (6, -10),
                 "Llama 2 70B": (6, 4)}
for c in CONFIGS:
    if c.train_tokens is not None:
        n = count_params(c)
        ax.scatter(n, c.train_tokens, s=40, zorder=3)
        dx, dy = label_offsets.get(c.name, (6, -3))
        ax.annotate(c.name, (n, c.train_tokens), textcoords="offset points", xytext=(dx, dy),
                    fontsize=8, ha="right" if dx < 0 else "left")
ax.set(xscale="log", yscale="log", xlim=(10**7.5, 10**12), ylim=(1e9, 1e14),
       xlabel="parameters N", ylabel="training tokens D",
       title="Parameters against training data (dotted: constant compute)")
ax.legend(loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# Gopher and Chinchilla lie on one line of constant compute (about $5 \times 10^{23}$ FLOPs,
# parallel to the dotted ones), on opposite sides of the compute-optimal line. SmolLM2 and Llama 2 7B are far above it: trained long, to be cheap
# to run.
#
# ## Memory: 7B against 70B
#
# **Inference** needs the weights: parameters times bytes per parameter (4 in fp32, 2 in
# bf16/fp16, 1 in int8, 0.5 in 4-bit formats). It also needs the **KV cache**: every layer keeps
# a key and a value vector per token and per key/value head, so
# $\text{KV bytes} = 2 \cdot L \cdot n_{kv} \cdot d_{head} \cdot T \cdot \text{batch} \cdot \text{bytes}$.
#
# **Training** with Adam in mixed precision keeps, per parameter, bf16 weights (2 bytes) and
# gradients (2), plus fp32 master weights, first and second moments (4 + 4 + 4): 16 bytes per
# parameter before any activations (Rajbhandari et al., 2020). We compare with the memory of
# one 80 GB GPU (A100/H100) and of a 24 GB consumer card.

# %%
BYTES_PER_PARAM = {"fp32": 4, "bf16": 2, "int8": 1, "int4": 0.5}
TRAIN_BYTES_PER_PARAM = 16  # bf16 weights + grads, fp32 master weights + Adam m and v
GB = 1e9


def kv_cache_per_token(c: ModelConfig, bytes_per_value: float = 2) -> float:
    """Bytes of KV cache per token of context, per sequence (keys and values, all layers)."""
    head_dim = c.d_model // c.n_head
    return 2 * c.n_layer * (c.n_kv_head or c.n_head) * head_dim * bytes_per_value


rows = []
for name in ["Llama 2 7B", "Llama 2 70B"]:
    c = BY_NAME[name]
    n = count_params(c)
    row = {"model": name}
    row |= {f"weights {dt} (GB)": n * b / GB for dt, b in BYTES_PER_PARAM.items()}
    row["KV cache, 4096 tokens, bf16 (GB)"] = kv_cache_per_token(c) * c.context / GB
    row["training, Adam (GB)"] = n * TRAIN_BYTES_PER_PARAM / GB
    row["80 GB GPUs for training states"] = math.ceil(n * TRAIN_BYTES_PER_PARAM / (80 * GB))
    rows.append(row)
memory = pd.DataFrame(rows).set_index("model")
print(memory.T.round(2).to_string())
print(f"\nKV cache per token in bf16: 7B {kv_cache_per_token(BY_NAME['Llama 2 7B']) / 2**10:.0f} KiB, "
      f"70B {kv_cache_per_token(BY_NAME['Llama 2 70B']) / 2**10:.0f} KiB")

# %%
fig, ax = plt.subplots(figsize=(8.5, 4.5))
labels = [f"{dt} weights" for dt in BYTES_PER_PARAM] + ["training (Adam)"]
x = np.arange(len(labels))
for i, name in enumerate(memory.index):
    values = [memory.loc[name, f"weights {dt} (GB)"] for dt in BYTES_PER_PARAM]
    values.append(memory.loc[name, "training, Adam (GB)"])
    ax.bar(x + (i - 0.5) * 0.38, values, width=0.38, label=name)
for capacity, text, style in [(80, "one 80 GB GPU", "--"), (24, "24 GB consumer GPU", ":")]:
    ax.axhline(capacity, color="black", ls=style, lw=1, label=text)
ax.set_xticks(x, labels)
ax.set(yscale="log", ylim=(1, 1e4), ylabel="memory (GB, log scale)", xlabel="what is stored",
       title="Memory of Llama 2 7B and 70B")
ax.legend(loc="upper left", ncol=2)
plt.tight_layout()
plt.show()

# %% [markdown]
# In bf16, the 7B model fits on one 24 GB card with room for its KV cache; the 70B model (138 GB)
# needs two 80 GB GPUs, or 4-bit quantisation (34 GB) to fit on one. Training is another matter:
# 16 bytes per parameter puts even the 7B model's training states (108 GB) beyond one GPU, and
# the 70B model's (1.1 TB) needs 14 GPUs' worth of memory before a single activation is stored,
# which is why training is sharded across devices (module 04 returns to this).
#
# The KV cache tells a second story. The 70B model has 2.5 times more layers and twice the
# width, yet its cache per token (320 KiB) is *smaller* than the 7B model's (512 KiB), because
# grouped-query attention stores 8 key/value heads instead of 64 (Ainslie et al., 2023). At long
# contexts and large batches the cache, not the weights, limits how many requests a GPU serves.
#
# ## From FLOPs to GPU-hours and money
#
# Llama 2's paper publishes the GPU-hours of each training run on A100-80GB GPUs, whose peak
# dense bf16 throughput is 312 TFLOP/s. Dividing the work done ($6ND$) by the work the GPUs could
# have done at peak gives the **model FLOPs utilisation** (MFU) of the run. The dollar cost needs
# a price per GPU-hour, which varies by provider, contract and year; the figure below is an
# assumption to change, not a quote.

# %%
A100_PEAK_BF16 = 312e12  # FLOP/s, dense (NVIDIA A100 datasheet)
PRICE_PER_GPU_HOUR = 2.0  # USD, an assumption: on-demand cloud prices vary several-fold

for name in ["Llama 2 7B", "Llama 2 70B"]:
    c = BY_NAME[name]
    flops = train_flops(count_params(c), c.train_tokens)
    mfu = flops / (c.gpu_hours * 3600 * A100_PEAK_BF16)
    print(f"{name:12s} C = {flops:.3g} FLOPs, {c.gpu_hours:>9,.0f} GPU-hours (published) -> "
          f"MFU {mfu:.0%}, cost at ${PRICE_PER_GPU_HOUR:.2f}/h: ${c.gpu_hours * PRICE_PER_GPU_HOUR / 1e6:.2f}M")

# %% [markdown]
# The runs used about 40% of the GPUs' peak: the rest goes to memory traffic, communication
# between GPUs, and the operations that are not large matrix products. With that utilisation
# as an assumption we can estimate the runs that did not publish GPU-hours. (GPT-3, Gopher and
# Chinchilla were trained on other hardware, V100 GPUs and TPUs, so these are "what it would
# take on A100s", not what they took.)

# %%
ASSUMED_MFU = 0.40

cost_rows = []
for c in CONFIGS:
    if c.train_tokens is None:
        continue
    flops = train_flops(count_params(c), c.train_tokens)
    hours = flops / (A100_PEAK_BF16 * ASSUMED_MFU) / 3600
    cost_rows.append({"model": c.name, "C = 6ND (FLOPs)": f"{flops:.3g}",
                      "A100-hours at 40% MFU": f"{hours:,.0f}",
                      "published A100-hours": "-" if c.gpu_hours is None else f"{c.gpu_hours:,.0f}",
                      "days on 1,024 GPUs": round(hours / 1024 / 24, 1),
                      "cost (USD, assumed price)": f"{hours * PRICE_PER_GPU_HOUR:,.0f}"})
costs = pd.DataFrame(cost_rows).set_index("model")
costs

# %% [markdown]
# The range is what "large" means in money: SmolLM2-135M's 2T tokens cost a few thousand
# GPU-hours, while the GPT-3, Gopher, Chinchilla and Llama 2 70B runs cost 0.7 to 1.8 million
# GPU-hours each: one to two and a half months on a thousand GPUs. Compute grows as the product $ND$, which is why the
# tokens-per-parameter choice matters as much as the size.
#
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The attention parameters of a real model
#
# Write `attention_params(d_model, n_head, n_kv_head)`: the number of weights in one attention
# layer without biases (query, key, value and output projections) when the key/value projections
# have `n_kv_head` heads of size `d_model // n_head`. The check compares it with the first
# attention layer of the real SmolLM2-135M and with Llama 2 shapes.

# %% tags=["solution"]
def attention_params(d_model: int, n_head: int, n_kv_head: int) -> int:
    """Weights of q, k, v and output projections (no biases) with grouped key/value heads."""
    # BEGIN SOLUTION
    head_dim = d_model // n_head
    return 2 * d_model * d_model + 2 * d_model * n_kv_head * head_dim
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_equal, check_function, passed

real_layer = chat_model().model.layers[0].self_attn
check_equal(attention_params(smol.hidden_size, smol.num_attention_heads, smol.num_key_value_heads),
            sum(p.numel() for p in real_layer.parameters()), "attention_params (SmolLM2 layer 0)")
check_function(attention_params, [((4096, 32, 32), 4 * 4096**2),
                                  ((8192, 64, 8), 2 * 8192**2 + 2 * 8192 * 1024)],
               "attention_params", exact=True)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: How many long requests fit beside a 70B model?
#
# Write `kv_cache_bytes(c, seq_len, batch, bytes_per_value)` for the KV cache of `batch`
# sequences of `seq_len` tokens (use the formula of the memory section). Then set
# `max_batch_70b` to the largest number of 4,096-token sequences whose bf16 cache fits, together
# with the bf16 weights of Llama 2 70B, in two 80 GB GPUs (160e9 bytes; ignore activations).

# %% tags=["solution"]
def kv_cache_bytes(c: ModelConfig, seq_len: int, batch: int, bytes_per_value: float) -> float:
    """Bytes of keys and values for `batch` sequences of `seq_len` tokens."""
    # BEGIN SOLUTION
    return 2 * c.n_layer * (c.n_kv_head or c.n_head) * (c.d_model // c.n_head) * seq_len * batch * bytes_per_value
    # END SOLUTION


max_batch_70b = None
# BEGIN SOLUTION
free_bytes = 160e9 - 2 * count_params(BY_NAME["Llama 2 70B"])
max_batch_70b = int(free_bytes // kv_cache_bytes(BY_NAME["Llama 2 70B"], 4096, 1, 2))
# END SOLUTION
print("max_batch_70b =", max_batch_70b)

# %% tags=["check"]
check_function(lambda *args: kv_cache_bytes(BY_NAME["Llama 2 7B"], *args),
               [((4096, 1, 2), 2 * 32 * 32 * 128 * 4096 * 2), ((100, 3, 4), 2 * 32 * 4096 * 100 * 3 * 4)],
               "kv_cache_bytes (Llama 2 7B)")
check_equal(kv_cache_bytes(BY_NAME["Llama 2 70B"], 1, 1, 2), 2 * 80 * 8 * 128 * 2.0,
            "kv_cache_bytes (Llama 2 70B, GQA: 8 key/value heads)")
per_sequence = 2 * 80 * 8 * 128 * 4096 * 2
check_equal(max_batch_70b, int((160e9 - 2 * 68_976_648_192) // per_sequence), "max_batch_70b")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Days to train Chinchilla
#
# Write `training_days(flops, n_gpus, peak_flops_per_s, mfu)`: the wall-clock days to perform
# `flops` on `n_gpus` GPUs that each deliver `mfu` of their peak. Then set `chinchilla_days` to
# the days Chinchilla's published budget (5.76e23 FLOPs) takes on 1,024 A100s (peak 312e12 FLOP/s)
# at 40% utilisation, and `chinchilla_days_at_mfu_60` to the same at 60%.

# %% tags=["solution"]
def training_days(flops: float, n_gpus: int, peak_flops_per_s: float, mfu: float) -> float:
    """Days to do `flops` on `n_gpus` devices running at `mfu` of their peak."""
    # BEGIN SOLUTION
    return flops / (n_gpus * peak_flops_per_s * mfu) / 86400
    # END SOLUTION


chinchilla_days = None
chinchilla_days_at_mfu_60 = None
# BEGIN SOLUTION
chinchilla_days = training_days(5.76e23, 1024, A100_PEAK_BF16, 0.40)
chinchilla_days_at_mfu_60 = training_days(5.76e23, 1024, A100_PEAK_BF16, 0.60)
# END SOLUTION
print(f"Chinchilla on 1,024 A100s: {chinchilla_days:.1f} days at 40% MFU, "
      f"{chinchilla_days_at_mfu_60:.1f} days at 60%")

# %% tags=["check"]
from shared.exercises import check_close

check_function(training_days, [((86400 * 1e15, 1, 1e15, 1.0), 1.0), ((1e21, 10, 1e14, 0.5), 1e21 / 5e14 / 86400)],
               "training_days")
check_close(chinchilla_days, 5.76e23 / (1024 * 312e12 * 0.4) / 86400, "chinchilla_days", rtol=1e-6)
check_close(chinchilla_days_at_mfu_60, chinchilla_days * 0.4 / 0.6, "chinchilla_days_at_mfu_60", rtol=1e-6)
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - A transformer's parameter count follows from its configuration: about $12Ld^2$ in the
#   blocks (attention $4d^2$, MLP $8d^2$ per layer), plus $Vd$ for embeddings. The formula
#   matched `shared.models.GPT` and the real SmolLM2 weights exactly, and the published counts
#   of GPT-2, GPT-3, Gopher and Chinchilla within 0.4%.
# - Training compute is $C \approx 6ND$: within 1% of GPT-3's published figure and 2% of
#   Chinchilla's.
# - Chinchilla's rule, about 20 tokens per parameter, minimises training compute for a given
#   loss; with $C = 120N^2$ it recovers Chinchilla's own 70B parameters and 1.4T tokens from
#   Gopher's budget. Models meant to be served widely (Llama 2, SmolLM2) are deliberately trained
#   far beyond it, from about 30 to 15,000 tokens per parameter.
# - Memory: weights are parameters times bytes per parameter (70B in bf16 is 138 GB); training
#   with Adam needs about 16 bytes per parameter before activations; the KV cache grows with
#   context and batch, and grouped-query attention shrinks it.
# - Published GPU-hours imply that Llama 2's runs used about 40% of the A100's peak; cost is
#   GPU-hours times a price that you must assume.
#
# Next: [what these models can do](03-capabilities), measured on a real task.
#
# ## References
#
# - A. Radford et al., "Language models are unsupervised multitask learners" (GPT-2), 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
#   ; corrected parameter counts in the repository README: https://github.com/openai/gpt-2
# - T. Brown et al., "Language models are few-shot learners" (GPT-3), NeurIPS 2020, Table 2.1 and
#   Table D.1. https://arxiv.org/abs/2005.14165
# - J. Kaplan et al., "Scaling laws for neural language models", 2020.
#   https://arxiv.org/abs/2001.08361
# - J. Hoffmann et al., "Training compute-optimal large language models" (Chinchilla), 2022,
#   Tables 3 and 4. https://arxiv.org/abs/2203.15556
# - J. W. Rae et al., "Scaling language models: methods, analysis and insights from training
#   Gopher", 2021. https://arxiv.org/abs/2112.11446
# - Z. Dai et al., "Transformer-XL: attentive language models beyond a fixed-length context",
#   ACL 2019. https://arxiv.org/abs/1901.02860
# - H. Touvron et al., "Llama 2: open foundation and fine-tuned chat models", 2023, Tables 1
#   and 2. https://arxiv.org/abs/2307.09288
# - L. Ben Allal et al., "SmolLM2: when smol goes big", 2025. https://arxiv.org/abs/2502.02737 ;
#   model card: https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct
# - J. Ainslie et al., "GQA: training generalized multi-query transformer models from multi-head
#   checkpoints", EMNLP 2023. https://arxiv.org/abs/2305.13245
# - S. Rajbhandari et al., "ZeRO: memory optimizations toward training trillion parameter
#   models", SC 2020. https://arxiv.org/abs/1910.02054
# - D. Amodei, D. Hernandez, "AI and compute", OpenAI, 2018. https://openai.com/research/ai-and-compute
# - NVIDIA A100 Tensor Core GPU datasheet. https://www.nvidia.com/en-us/data-center/a100/
