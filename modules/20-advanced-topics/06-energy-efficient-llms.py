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
# # Energy-efficient LLMs: the energy and carbon of a token
#
# Training a large model is a one-off cost that makes headlines; serving it is paid again for
# every token, for as long as the model is used. Luccioni et al. (2023) measured that
# generating text takes on average about 0.05 kWh per 1,000 queries on data-centre GPUs, and
# a popular model answers millions of queries a day. This notebook measures what a generated
# token costs on this machine, in joules, watt-hours and grams of CO2, for three ways of
# producing text: a 135M-parameter model in fp32, the same model with int8 weights, and a
# 50-times smaller specialised model. It then asks what each saving costs in quality, finds
# out why int8 hurt more than expected (outlier activations, the problem LLM.int8() solved),
# and gathers the figures in a small dashboard.
#
# **Learning objectives**
# - Measure energy per generated token with codecarbon (through `shared.energy`), and say
#   what the figure does and does not measure on a virtual machine.
# - Convert between joules per token, Wh per 1,000 tokens and g CO2 per 1,000 tokens, and
#   relate them to power, speed and the grid.
# - Quantise a model's linear layers to int8 and measure the speed, energy and quality change;
#   explain why activation outliers break naive int8 quantisation.
# - Compare the quality of models with different tokenizers in bits per character.
# - Name the main levers of efficient inference: quantisation, smaller models, efficient
#   attention, batching and where the computation runs.
#
# **Prerequisites:** [compute costs](../05-pretraining/05-compute-costs) (FLOPs, the energy
# tracker, grid carbon intensity), the quantisation section of
# [GPU essentials](../00-foundations/03-gpu-essentials), and
# [compression and pruning](05-compression-and-pruning).
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
import copy
import io
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import shared
from shared.assets import chat_model, chat_tokenizer, corpus
from shared.checkpoints import course_model, course_tokenizer
from shared.energy import count_flops, grid_carbon_intensity, measure_generation_energy
from shared.generation import generate

# One thread: generation of one sequence is latency-bound, and on this shared 2-core machine a
# second thread makes timings (and so the energy estimates) noisier without making them faster.
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("transformers", "codecarbon", "matplotlib"))

# %% [markdown]
# ## Training and inference: the published numbers
#
# Energy is power times time, and carbon is energy times the carbon intensity of the grid that
# supplied it ([compute costs](../05-pretraining/05-compute-costs) works through the
# arithmetic for training). A few published figures set the scale:
#
# | what | energy | CO2eq | source |
# |---|---|---|---|
# | training BERT-base (64 V100 GPUs, 79 h) | 1.5 MWh | 0.65 t | Strubell et al. 2019 |
# | a neural architecture search for a big Transformer | 656 MWh | 284 t | Strubell et al. 2019 |
# | training GPT-3 (175B) | 1,287 MWh | 552 t | Patterson et al. 2021 |
# | 1,000 text classifications (mean over models) | 0.002 kWh | | Luccioni et al. 2023 |
# | 1,000 text generations (mean over models) | 0.047 kWh | | Luccioni et al. 2023 |
# | 1,000 image generations (mean over models) | 2.9 kWh | | Luccioni et al. 2023 |
#
# Strubell et al. made the cost of NLP research visible; Patterson et al. showed that the
# choice of model, processor, data centre and grid changes the footprint of the same training
# by up to 100-1000 times; Luccioni et al. measured inference across tasks and found that
# generative tasks cost one to three orders of magnitude more per query than classification.
# At 0.047 kWh per 1,000 generations, GPT-3's training energy equals about 27 billion
# generated answers (fewer for a model of GPT-3's size: the models Luccioni et al. measured
# are far smaller). Training is paid once; inference is paid per query, and at scale it
# overtakes training.

# %%
print(f"GPT-3 training = {1_287_000 / 0.047e-3 / 1e9:.0f} billion generations at 0.047 Wh each")

# %% [markdown]
# ## Three ways to produce a token
#
# The models we compare, all from the course's offline assets:
#
# 1. **SmolLM2-135M-Instruct, fp32**: a Llama-style decoder (30 layers, width 576,
#    grouped-query attention with 3 key/value heads), loaded by `shared.assets.chat_model()`.
# 2. **The same model, int8**: `torch.ao.quantization.quantize_dynamic` replaces every
#    `nn.Linear` by a version that stores its weights as 8-bit integers (one scale per
#    matrix) and, at run time, quantises each input to 8 bits too, multiplies in integer
#    arithmetic and rescales. PyTorch now points to the torchao library for new work, and warns
#    about it; the eager API still runs and is the simplest to read.
# 3. **A smaller, specialised model**: the course's character-level GPT
#    (`shared.checkpoints.course_model("shakespeare-char")`, 2.7M parameters), trained on
#    Shakespeare only. It has a different tokenizer (one token is one character), so we will
#    compare it per character as well as per token.

# %%
smol = chat_model()  # cached per process: the quantised copy below leaves it untouched
smol_tokenizer = chat_tokenizer()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
    smol_int8 = torch.ao.quantization.quantize_dynamic(smol, {nn.Linear}, dtype=torch.qint8)
char_gpt = course_model("shakespeare-char")
char_tokenizer = course_tokenizer("shakespeare-char")


def serialized_mb(model: nn.Module) -> float:
    """Size of the model's state dict when saved, in MB (int8 weights are stored packed)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


n_smol = sum(p.numel() for p in smol.parameters())
n_char = char_gpt.num_parameters()
sizes = {"SmolLM2 fp32": serialized_mb(smol), "SmolLM2 int8": serialized_mb(smol_int8),
         "char GPT fp32": serialized_mb(char_gpt)}
print(f"SmolLM2: {n_smol:,} parameters; char GPT: {n_char:,} ({n_smol / n_char:.0f}x fewer)")
for name, mb in sizes.items():
    print(f"{name:14s} {mb:7.1f} MB on disk")

# %% [markdown]
# The int8 file is less than half of the fp32 one, not a quarter: the linear layers' weights
# take 1 byte instead of 4, but the token embedding table (28M of the 135M parameters) stays
# in fp32 for the lookup, even though the output head that shares it is quantised.
#
# FLOPs per token are the same for both SmolLM2 versions (int8 changes the number format, not
# the number of multiply-adds). `shared.energy.count_flops` counts them for a forward pass;
# the rule of thumb is $2N$ per token for $N$ parameters.

# %%
prompt_ids = smol_tokenizer("The weather today is", return_tensors="pt")["input_ids"]
flops_smol = count_flops(lambda: smol(prompt_ids)) / prompt_ids.shape[1]
char_prompt = torch.tensor([char_tokenizer.encode("ROMEO:\n")])
flops_char = count_flops(lambda: char_gpt(char_prompt)) / char_prompt.shape[1]
print(f"SmolLM2: {flops_smol / 1e6:.0f} MFLOP per token (2N = {2 * n_smol / 1e6:.0f} M)")
print(f"char GPT: {flops_char / 1e6:.1f} MFLOP per token (2N = {2 * n_char / 1e6:.1f} M), "
      f"{flops_smol / flops_char:.0f}x fewer")

# %% [markdown]
# ## Measuring the energy of generation
#
# `shared.energy.measure_generation_energy(fn, n_tokens, ...)` runs `fn` under codecarbon's
# offline tracker and divides by the number of tokens. We generate a fixed number of tokens
# greedily from a fixed prompt with each model (a chat question for SmolLM2, a speaker's name
# for the Shakespeare model), once untimed to warm up, then twice each in interleaved order.
# `tracking_mode="process"` attributes to this notebook its share of the CPU load rather than
# the whole machine's, since other jobs share it. The country sets the grid's carbon
# intensity; we use the USA (codecarbon's yearly figure); change `COUNTRY` to yours.

# %%
COUNTRY = "USA"
N_SMOL_TOKENS = 32  # 256 or more for steadier figures
N_CHAR_TOKENS = 256  # a character is about a third of a SmolLM2 token
chat_inputs = smol_tokenizer.apply_chat_template(
    [{"role": "user", "content": "Explain in a few sentences why the sky is blue."}],
    add_generation_prompt=True, return_tensors="pt", return_dict=True)


def smol_generate(model: nn.Module, n_tokens: int) -> torch.Tensor:
    with torch.no_grad():
        out = model.generate(**chat_inputs, max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                             do_sample=False, pad_token_id=smol_tokenizer.pad_token_id)
    return out[0, chat_inputs["input_ids"].shape[1] :]


generators = {
    "SmolLM2 fp32": (lambda: smol_generate(smol, N_SMOL_TOKENS), N_SMOL_TOKENS),
    "SmolLM2 int8": (lambda: smol_generate(smol_int8, N_SMOL_TOKENS), N_SMOL_TOKENS),
    "char GPT fp32": (lambda: generate(char_gpt, char_prompt, N_CHAR_TOKENS)[0, char_prompt.shape[1] :],
                      N_CHAR_TOKENS),
}
smol_generate(smol, 2)  # warm-up: the first calls pay one-off costs we do not want to count
smol_generate(smol_int8, 2)
generate(char_gpt, char_prompt, 2)
measurements = {name: [] for name in generators}
for _ in range(2):
    for name, (fn, n_tokens) in generators.items():
        measurements[name].append(
            measure_generation_energy(fn, n_tokens, country_iso_code=COUNTRY,
                                      tracking_mode="process"))
report = measurements["SmolLM2 fp32"][0].energy
print("how the CPU figure was obtained:", report.method)
print("one run:", report.summary())

# %% [markdown]
# The method line matters more than any number below. This virtual machine has no readable
# energy counters, so codecarbon *estimated* the CPU power from the load and a thermal design
# power (TDP) for the processor, and it always *models* RAM power from the installed memory.
# Here the modelled RAM power is larger than the CPU's share, so the estimate is close to
# (modelled power) x (time): the ranking of the models follows their speed. On a machine with
# RAPL counters (bare-metal Linux) or an NVIDIA GPU (read through NVML), the same code reports
# measured energy. Treat the joules as an order of magnitude and the ratios as the result.

# %%
def per_token(name: str) -> dict[str, float]:
    """Mean over the runs of one model; per token and per 1,000 tokens."""
    runs = measurements[name]
    joules = float(np.mean([r.joules_per_token for r in runs]))
    return {
        "tokens_per_s": float(np.mean([r.tokens_per_s for r in runs])),
        "j_per_token": joules,
        "wh_per_1k": joules * 1000 / 3600,
        "g_co2_per_1k": float(np.mean([r.g_co2eq_per_1k_tokens for r in runs])),
        "watts": float(np.mean([r.energy.mean_power_w for r in runs])),
    }


figures = {name: per_token(name) for name in generators}
outputs = {name: measurements[name][0].output for name in generators}
chars_per_token = {name: len(smol_tokenizer.decode(outputs[name])) / N_SMOL_TOKENS
                   for name in ("SmolLM2 fp32", "SmolLM2 int8")}
chars_per_token["char GPT fp32"] = 1.0
print(f"{'model':14s} {'tokens/s':>9s} {'W (est.)':>9s} {'J/token':>9s} {'Wh/1k tok':>10s} "
      f"{'g CO2/1k tok':>13s} {'J/1k chars':>11s}")
for name, f in figures.items():
    print(f"{name:14s} {f['tokens_per_s']:9.1f} {f['watts']:9.1f} {f['j_per_token']:9.3f} "
          f"{f['wh_per_1k']:10.4f} {f['g_co2_per_1k']:13.5f} "
          f"{f['j_per_token'] * 1000 / chars_per_token[name]:11.1f}")
fp32, int8 = figures["SmolLM2 fp32"], figures["SmolLM2 int8"]
print(f"\nint8 vs fp32: {int8['tokens_per_s'] / fp32['tokens_per_s']:.2f}x the speed, "
      f"{fp32['j_per_token'] / int8['j_per_token']:.2f}x less energy per token (estimates, "
      f"{COUNTRY} grid at {grid_carbon_intensity(COUNTRY):.0f} g/kWh)")

# %% [markdown]
# The int8 model generates two to three times as fast on this CPU (the table gives this run's
# ratio; it varies a little from run to run) and so, by the
# estimate, uses less than half the energy per token: a decoder generating one sequence spends
# its time reading weights, and int8 weights are a quarter of the bytes. The small model is
# cheaper by another order of magnitude per token, and still several times cheaper than fp32
# SmolLM2 per character of text. Does the text stay as good?
#
# ## What the savings cost in quality
#
# Two measurements. First, agreement: does int8 greedy decoding produce the fp32 model's
# tokens? Second, a quality score that works across tokenizers: **bits per character** (BPC)
# on a held-out passage of Shakespeare (the last 10% of tiny Shakespeare, which the course
# model did not train on), scored in 256-character chunks so that both models see the same
# context. BPC is the total negative log-likelihood of the text in bits divided by the number
# of characters scored; lower is better, and one bit less means the model finds the text
# twice as likely per character.

# %%
fp32_tokens, int8_tokens = outputs["SmolLM2 fp32"], outputs["SmolLM2 int8"]
first_diff = next((i for i, (a, b) in enumerate(zip(fp32_tokens, int8_tokens)) if a != b),
                  N_SMOL_TOKENS)
print(f"int8 follows fp32 for {first_diff} of {N_SMOL_TOKENS} tokens")
print("fp32:", repr(smol_tokenizer.decode(fp32_tokens)))
print("int8:", repr(smol_tokenizer.decode(int8_tokens)))
print("char GPT:", repr(char_tokenizer.decode(outputs["char GPT fp32"].tolist())[:160]))

# %%
held_out = corpus("tinyshakespeare")[-100_000:]
passage = held_out[held_out.index("\n\n") + 2 :][:1024]
chunks = [passage[i : i + 256] for i in range(0, len(passage), 256)]


def smol_bpc(model: nn.Module) -> float:
    """Bits per character of the passage, each chunk scored from its own start."""
    bits = chars = 0
    for chunk in chunks:
        ids = smol_tokenizer(chunk, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(ids).logits[0, :-1]
        bits += F.cross_entropy(logits, ids[0, 1:], reduction="sum").item() / math.log(2)
        chars += len(smol_tokenizer.decode(ids[0, 1:]))  # the first token is not predicted
    return bits / chars


def char_bpc(model: nn.Module) -> float:
    bits = chars = 0
    for chunk in chunks:
        ids = torch.tensor([char_tokenizer.encode(chunk)])
        with torch.no_grad():
            logits = model(ids[:, :-1]).logits[0]
        bits += F.cross_entropy(logits, ids[0, 1:], reduction="sum").item() / math.log(2)
        chars += ids.shape[1] - 1
    return bits / chars


bpc = {"SmolLM2 fp32": smol_bpc(smol), "SmolLM2 int8": smol_bpc(smol_int8),
       "char GPT fp32": char_bpc(char_gpt)}
for name, value in bpc.items():
    print(f"{name:14s} {value:.3f} bits per character")

# %% [markdown]
# The 2.7M-parameter specialist comes within a tenth of a bit per character of the 135M
# generalist on its own domain (it writes repetitive pseudo-Shakespeare, and it can do nothing
# else). int8 costs SmolLM2 half a bit per character, more than the gap to the tiny model,
# and changes its answer from the very first token. That is more damage than 8-bit weights
# should do. Where does it come from?
#
# ## Why int8 hurt: outlier activations
#
# Dynamic quantisation rounds two things to 8 bits: the weights, and each layer's input
# activations, with one scale for the whole tensor. A single scale for a tensor works when its
# values have similar magnitudes. Dettmers et al. (2022) found that transformer activations do
# not: a small set of hidden dimensions carry values tens to hundreds of times larger than the
# rest, and a scale set by them rounds every other dimension to a handful of levels. We look at the inputs of
# the last layer's down projection, and then quantise weights and activations separately
# (simulated: quantise, dequantise, compute in fp32) to see which one does the damage.

# %%
captured = {}
target = smol.model.layers[-1].mlp.down_proj
hook = target.register_forward_pre_hook(lambda module, args: captured.update(x=args[0][0]))
with torch.no_grad():
    smol(smol_tokenizer(chunks[0], return_tensors="pt")["input_ids"])
hook.remove()
per_dim_max = captured["x"].abs().amax(dim=0)
print(f"last layer's FFN input: largest |activation| {per_dim_max.max():.1f}, median over the "
      f"{per_dim_max.numel()} dimensions of their largest {per_dim_max.median():.2f}; "
      f"{int((per_dim_max > 10 * per_dim_max.median()).sum())} dimensions above 10x the median")


def fake_quantize_weights(model: nn.Module) -> nn.Module:
    """int8 weights with one absmax scale per output row, dequantised back to fp32."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                scale = module.weight.abs().amax(dim=1, keepdim=True) / 127
                module.weight.copy_((module.weight / scale).round() * scale)
    return model


def fake_quantize_activations(model: nn.Module) -> nn.Module:
    """Every Linear's input rounded to 256 levels over its own min-max range (one scale per
    tensor, as dynamic quantisation does), then computed in fp32."""
    model = copy.deepcopy(model)

    def quantize_input(module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        scale = (x.max() - x.min()).clamp(min=1e-8) / 255
        zero = (-x.min() / scale).round()
        return (((x / scale + zero).round().clamp(0, 255) - zero) * scale,)

    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.register_forward_pre_hook(quantize_input)
    return model


bpc["weights int8 only"] = smol_bpc(fake_quantize_weights(smol))
bpc["activations int8 only"] = smol_bpc(fake_quantize_activations(smol))
for name in ("SmolLM2 fp32", "weights int8 only", "activations int8 only", "SmolLM2 int8"):
    print(f"{name:22s} {bpc[name]:.3f} bits per character")

# %%
fig, ax = plt.subplots(figsize=(8, 3.4))
ax.bar(range(per_dim_max.numel()), per_dim_max.numpy(), width=1.0, color="tab:purple")
ax.set(yscale="log", xlabel="hidden dimension (input of the last layer's down projection)",
       ylabel="max |activation| over tokens", title="A few dozen dimensions dwarf the rest")
plt.tight_layout()
plt.show()

# %% [markdown]
# Weights alone survive 8 bits untouched (one scale per row suffices: weights have no such
# outliers); the activations carry the damage, and quantising both compounds it. This is the problem the quantisation
# literature for LLMs is built around:
#
# - **LLM.int8()** (Dettmers et al., 2022) finds the outlier dimensions at run time and
#   multiplies them in 16-bit, everything else in int8: 8-bit inference without loss up to
#   175B parameters.
# - **GPTQ** (Frantar et al., 2023) avoids the activations altogether: weights only, to 3-4 bits,
#   rounding one column at a time and correcting the remaining columns for the error, using
#   second-order information from a little calibration data. Memory-bound decoding gains
#   almost as much from 4-bit weights as from anything else.
# - SmoothQuant (Xiao et al., 2023) moves the outliers' scale from activations into weights
#   before quantising both.
#
# The llama.cpp file that `shared.assets` loads SmolLM2 from is itself weight-only 4-bit
# (`Q4_1`, block-wise scales): weight quantisation is what local inference runs on.
#
# ## Other levers
#
# - **Efficient attention.** SmolLM2 shares 3 key/value heads among its 9 query heads
#   (grouped-query attention): its KV cache is 3 times smaller than with full multi-head
#   attention, and decoding reads 3 times fewer cache bytes per token. FlashAttention computes
#   exact attention without writing the score matrix to memory, which cuts memory traffic,
#   the dominant energy cost of moving data.
# - **Batching.** The energy of reading the weights is shared by every sequence in a batch;
#   [inference engines](07-inference-engines) measures how continuous batching raises tokens
#   per second on the same hardware.
# - **Where and when.** The same kWh emits very different CO2 depending on the grid, as the
#   dashboard's last panel shows with codecarbon's yearly figures.

# %%
kv_bytes_gqa = 2 * smol.config.num_hidden_layers * smol.config.num_key_value_heads * 64 * 2
kv_bytes_mha = 2 * smol.config.num_hidden_layers * smol.config.num_attention_heads * 64 * 2
print(f"SmolLM2 KV cache per token (fp16): {kv_bytes_gqa / 1024:.1f} KiB with 3 KV heads, "
      f"{kv_bytes_mha / 1024:.1f} KiB if all 9 heads had their own")

# %% [markdown]
# ## A dashboard
#
# Six panels that a team tracking the efficiency of a model in production would want on one
# page: speed, energy, carbon, quality, size, and the grid.

# %%
names = list(generators)
colors = ["tab:blue", "tab:orange", "tab:green"]
countries = ["NOR", "FRA", "GBR", "USA", "DEU", "CHN", "IND"]
fig, axes = plt.subplots(2, 3, figsize=(13, 7))
panels = [
    (axes[0, 0], [figures[n]["tokens_per_s"] for n in names], "tokens per second",
     "Speed (measured, 1 thread)"),
    (axes[0, 1], [figures[n]["wh_per_1k"] for n in names], "Wh per 1,000 tokens",
     "Energy (codecarbon estimate)"),
    (axes[0, 2], [figures[n]["g_co2_per_1k"] for n in names], "g CO2eq per 1,000 tokens",
     f"Carbon ({COUNTRY} grid, estimate)"),
    (axes[1, 0], [bpc[n] for n in names], "bits per character (lower is better)",
     "Quality on held-out Shakespeare"),
    (axes[1, 1], [sizes[n] for n in names], "MB", "Size on disk"),
]
for ax, values, ylabel, title in panels:
    ax.bar(range(3), values, color=colors)
    ax.set_xticks(range(3), [n.replace(" ", "\n", 1) for n in names])
    ax.set(xlabel="model", ylabel=ylabel, title=title)
axes[0, 1].set_yscale("log")
axes[0, 2].set_yscale("log")
grid_g = [fp32["wh_per_1k"] / 1000 * grid_carbon_intensity(c) for c in countries]
axes[1, 2].bar(countries, grid_g, color="tab:gray")
axes[1, 2].set(xlabel="country (ISO 3166-1 alpha-3)", ylabel="g CO2eq per 1,000 tokens",
               title="SmolLM2 fp32 on different grids")
fig.suptitle("Inference efficiency dashboard (energy and carbon are estimates on a VM)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: From watts and speed to energy per token
#
# When the power draw is steady, energy per token is power divided by speed. Write
# `joules_per_token(mean_power_w, tokens_per_s)` and `wh_per_1k_tokens(joules_per_token)`,
# and `g_co2_per_1k_tokens(joules_per_token, grid_g_per_kwh)`. The check applies them to the
# measured reports and compares with the figures `shared.energy` computed.

# %% tags=["solution"]
def joules_per_token(mean_power_w: float, tokens_per_s: float) -> float:
    # BEGIN SOLUTION
    return mean_power_w / tokens_per_s
    # END SOLUTION


def wh_per_1k_tokens(j_per_token: float) -> float:
    # BEGIN SOLUTION
    return j_per_token * 1000 / 3600
    # END SOLUTION


def g_co2_per_1k_tokens(j_per_token: float, grid_g_per_kwh: float) -> float:
    # BEGIN SOLUTION
    return j_per_token * 1000 / 3.6e6 * grid_g_per_kwh
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_shape, passed

for name, runs in measurements.items():
    for run in runs:
        mine = joules_per_token(run.energy.mean_power_w, run.tokens_per_s)
        check_close(mine, run.joules_per_token, f"joules_per_token ({name})", rtol=1e-6)
        check_close(wh_per_1k_tokens(mine), run.kwh_per_1k_tokens * 1000,
                    f"wh_per_1k_tokens ({name})", rtol=1e-6)
        check_close(g_co2_per_1k_tokens(mine, run.energy.carbon_intensity_g_per_kwh),
                    run.g_co2eq_per_1k_tokens, f"g_co2_per_1k_tokens ({name})", rtol=1e-6)
check_close(wh_per_1k_tokens(3.6), 1.0, "wh_per_1k_tokens(3.6)")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Absmax int8 quantisation, per tensor and per row
#
# Write `quantize_absmax(w, per_row)` that returns `(q, scale)`: int8 values `q` in
# [-127, 127] and the scale (one number, or one per row of `w` with shape `(rows, 1)`), such
# that `q * scale` approximates `w`, with `scale = max|w| / 127` over the tensor or over each
# row. Then set `error_ratio` to the relative error (Frobenius norm of `q * scale - w` over
# that of `w`) of per-tensor over per-row quantisation for SmolLM2's first attention query
# matrix. The check compares your dequantised weights with `torch.quantize_per_channel`.

# %% tags=["solution"]
def quantize_absmax(w: torch.Tensor, per_row: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantisation: w ~ q * scale, q in [-127, 127]."""
    # BEGIN SOLUTION
    peak = w.abs().amax(dim=1, keepdim=True) if per_row else w.abs().max()
    scale = peak / 127
    q = (w / scale).round().clamp(-127, 127).to(torch.int8)
    return q, scale
    # END SOLUTION


query = smol.model.layers[0].self_attn.q_proj.weight.detach()
error_ratio = None
# BEGIN SOLUTION
errors = {}
for per_row in (False, True):
    q, scale = quantize_absmax(query, per_row)
    errors[per_row] = float((q.float() * scale - query).norm() / query.norm())
error_ratio = errors[False] / errors[True]
# END SOLUTION
print(f"per-tensor error / per-row error = {error_ratio:.2f}")

# %% tags=["check"]
q, scale = quantize_absmax(query, per_row=True)
check_equal(q.dtype, torch.int8, "q.dtype")
check_shape(scale, (query.shape[0], 1), "per-row scale")
check(bool(((q.float() * scale - query).abs() <= scale / 2 + 1e-7).all()), "quantize_absmax",
      "every weight within half a step (scale / 2) of its quantised value")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # quantized tensors are deprecated in favour of torchao
    reference = torch.quantize_per_channel(query, scale.flatten().double(),
                                           torch.zeros(query.shape[0], dtype=torch.long), 0,
                                           torch.qint8).int_repr()
# torch multiplies by 1/scale where we divide by scale: a value exactly between two levels may
# round the other way, so allow a few such entries.
check(float((q == reference).float().mean()) > 0.999, "quantize_absmax",
      "the same integers as torch.quantize_per_channel for at least 99.9% of the weights")
q_t, scale_t = quantize_absmax(query, per_row=False)
check_close(float(scale_t), float(query.abs().max() / 127), "per-tensor scale")
per_tensor_err = (q_t.float() * scale_t - query).norm() / query.norm()
per_row_err = (q.float() * scale - query).norm() / query.norm()
check_close(error_ratio, float(per_tensor_err / per_row_err), "error_ratio", rtol=1e-4)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: The same training on different grids
#
# Write `training_emissions_t(mwh, country_iso_code)` returning the tonnes of CO2eq that
# `mwh` megawatt-hours emit at a country's grid intensity, using
# `shared.energy.grid_carbon_intensity`. Then set `gpt3_ratio_ind_fra` to how many times more
# CO2 GPT-3's 1,287 MWh would emit on India's grid than on France's. The check recomputes both
# from codecarbon's data.

# %% tags=["solution"]
def training_emissions_t(mwh: float, country_iso_code: str) -> float:
    """Tonnes of CO2eq for mwh megawatt-hours at the country's grid intensity."""
    # BEGIN SOLUTION
    return mwh * 1000 * grid_carbon_intensity(country_iso_code) / 1e6
    # END SOLUTION


gpt3_ratio_ind_fra = None
# BEGIN SOLUTION
gpt3_ratio_ind_fra = training_emissions_t(1287, "IND") / training_emissions_t(1287, "FRA")
# END SOLUTION
print(f"GPT-3's training energy: {training_emissions_t(1287, 'FRA'):.0f} t in France, "
      f"{training_emissions_t(1287, 'IND'):.0f} t in India ({gpt3_ratio_ind_fra:.0f}x)")

# %% tags=["check"]
check_close(training_emissions_t(1000, "USA"), grid_carbon_intensity("USA"),
            "training_emissions_t(1000 MWh, USA)", rtol=1e-9)
check_close(gpt3_ratio_ind_fra, grid_carbon_intensity("IND") / grid_carbon_intensity("FRA"),
            "gpt3_ratio_ind_fra", rtol=1e-9)
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - Energy per token is power divided by speed; carbon per token multiplies by the grid's
#   intensity. On this virtual machine codecarbon estimates the power (a TDP-based CPU share
#   and modelled RAM), so the figures are estimates whose ratios, not absolute values, are
#   the result. On hardware with RAPL counters or an NVIDIA GPU the same code measures.
# - Dynamic int8 quantisation made SmolLM2 two to three times as fast and, by the
#   estimate, less than half as costly per token, with less than half the bytes on disk; but it changed the greedy
#   output from the first token and cost half a bit per character.
# - The damage came from quantising activations with one scale per tensor: a few hidden
#   dimensions hold outliers tens of times larger than the rest. Weight-only int8 was almost
#   lossless. LLM.int8() handles the outliers in 16-bit; GPTQ quantises weights only, to 3-4
#   bits.
# - A 50-times smaller specialised model was an order of magnitude cheaper per token and
#   several times cheaper per character, at a quality close to the large model's on its own
#   domain (and useless outside it). Bits per character compare models with different
#   tokenizers.
# - Training is a one-off cost (GPT-3: 1,287 MWh); inference is paid per query, and at scale
#   it overtakes training.
#
# ## References
#
# - E. Strubell, A. Ganesh, A. McCallum, "Energy and policy considerations for deep learning
#   in NLP", ACL 2019. https://arxiv.org/abs/1906.02243
# - D. Patterson et al., "Carbon emissions and large neural network training", 2021.
#   https://arxiv.org/abs/2104.10350
# - A. S. Luccioni, Y. Jernite, E. Strubell, "Power hungry processing: watts driving the cost
#   of AI deployment?", ACM FAccT 2024 (arXiv 2023). https://arxiv.org/abs/2311.16863
# - T. Dettmers, M. Lewis, Y. Belkada, L. Zettlemoyer, "LLM.int8(): 8-bit matrix
#   multiplication for transformers at scale", NeurIPS 2022. https://arxiv.org/abs/2208.07339
# - E. Frantar, S. Ashkboos, T. Hoefler, D. Alistarh, "GPTQ: accurate post-training
#   quantization for generative pre-trained transformers", ICLR 2023.
#   https://arxiv.org/abs/2210.17323
# - G. Xiao et al., "SmoothQuant: accurate and efficient post-training quantization for large
#   language models", ICML 2023. https://arxiv.org/abs/2211.10438
# - T. Dao et al., "FlashAttention: fast and memory-efficient exact attention with
#   IO-awareness", NeurIPS 2022. https://arxiv.org/abs/2205.14135
# - J. Ainslie et al., "GQA: training generalized multi-query transformer models from
#   multi-head checkpoints", EMNLP 2023. https://arxiv.org/abs/2305.13245
# - CodeCarbon documentation (methodology: RAPL, TDP-based estimates, RAM model, grid
#   intensities). https://mlco2.github.io/codecarbon/
# - PyTorch dynamic quantisation (`torch.ao.quantization.quantize_dynamic`) and its successor
#   torchao. https://docs.pytorch.org/docs/stable/quantization.html ;
#   https://github.com/pytorch/ao
