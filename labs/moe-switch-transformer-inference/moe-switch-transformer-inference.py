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
# # Lab: Switch Transformer inference: routing, capacity overflow and throughput
#
# A trained mixture-of-experts model makes thousands of small decisions per forward pass: every
# token, in every MoE layer, is sent to one expert. Serving such a model well means knowing what
# those decisions look like (which tokens go where, and how evenly), what happens when an
# expert receives more tokens than its buffer holds (they are dropped, and quality suffers), and
# what the sparsity buys in speed against dense models. In this lab you train a small
# Switch-style model (top-1 routing, 8 experts per layer), then write the pieces that inspect it:
# the top-1 router, a per-character routing table, the capacity and drop computation, and dense
# baselines with the same active and the same total parameters. The last part measures tokens
# per second of all three, back to back.
#
# **Learning objectives**
# - Compute Switch top-1 routing decisions from a trained model's hidden states and visualise
#   them per character and per layer.
# - Measure how far routing specialises by input character, and how evenly experts are loaded.
# - Compute expert capacity and count dropped tokens; sweep the capacity factor and measure its
#   effect on drop rate and loss.
# - Build dense models with equal active and equal total parameters, and compare prefill and
#   decoding throughput with the MoE model, explaining the result from FLOPs and overheads.
#
# **Prerequisites:** [mixture of experts](../../modules/20-advanced-topics/01-mixture-of-experts)
# (routers, capacity, the balance loss, `shared.moe`) and
# [the training loop](../../modules/05-pretraining/04-training-loop) (`shared.training`).
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
import statistics
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import shared
from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.generation import generate
from shared.layers import FeedForward
from shared.models import GPT, GPTConfig
from shared.moe import expert_capacity
from shared.training import TrainConfig, Trainer, evaluate_loss

# These models are tiny: one thread is faster than two (the second mostly waits).
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("numpy", "matplotlib"))

# %% [markdown]
# ## Part 0: a small Switch Transformer to study
#
# No pretrained MoE model ships with the course, so we train one here with the recipe of the
# [MoE notebook](../../modules/20-advanced-topics/01-mixture-of-experts): a character-level GPT
# on tiny Shakespeare with 2 layers, 4 heads, $d = 64$ and a context of 64 characters, whose
# feed-forward networks are both Switch layers (`shared.moe.MoEFeedForward`): 8 experts of
# width 256, top-1 routing, capacity factor 1.25, balance-loss coefficient 0.01, z-loss 0.001.
# It trains for a few hundred steps (seconds); it will write poor Shakespeare, but its routing
# is real.

# %%
BLOCK, BATCH, D_MODEL, D_FF, N_EXPERTS = 64, 16, 64, 256, 8
MAX_STEPS = 300  # 2000 gives a much better model in about 7x the time
data = shakespeare_char_data(BLOCK)
tokenizer = data.tokenizer

switch_config = GPTConfig(
    vocab_size=tokenizer.vocab_size, block_size=BLOCK, n_layer=2, n_head=4, d_model=D_MODEL,
    d_ff=D_FF, moe_layers=(0, 1),
    moe=dict(num_experts=N_EXPERTS, top_k=1, capacity_factor=1.25, balance_coef=0.01,
             z_loss_coef=0.001),
)
torch.manual_seed(0)
switch_model = GPT(switch_config)
train_config = TrainConfig(max_steps=MAX_STEPS, batch_size=BATCH, block_size=BLOCK, lr=3e-3,
                           min_lr=3e-4, warmup_steps=MAX_STEPS // 10, progress=False)
Trainer(switch_model, data.train, None, train_config).fit()
switch_model.eval()

val_sampler = RandomBlockSampler(data.val, BLOCK, BATCH, seed=1)
val_batches = [val_sampler.next_batch() for _ in range(8)]  # 8 x 16 x 64 = 8,192 characters


def cross_entropy(model: GPT, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-character cross-entropy without the MoE auxiliary losses."""
    inputs, targets = batch
    return F.cross_entropy(model(inputs).logits.flatten(0, 1), targets.flatten())


moe_layers = [block.ffn for block in switch_model.blocks]  # both blocks are MoE here
print(f"{switch_model.num_parameters():,} parameters; validation cross-entropy "
      f"{evaluate_loss(switch_model, val_batches, cross_entropy):.3f} nats/char")

# %% [markdown]
# To study routing we need what each router sees: the hidden state entering each MoE layer
# (after the block's layer norm). A forward hook on each MoE layer captures it.

# %%
def router_inputs(model: GPT, idx: torch.Tensor) -> dict[int, torch.Tensor]:
    """Layer index -> the (B*T, d_model) hidden states entering that MoE layer for ids idx."""
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        block.ffn.register_forward_hook(
            lambda module, args, output, i=i: captured.__setitem__(
                i, args[0].reshape(-1, args[0].shape[-1]).detach()))
        for i, block in enumerate(model.blocks) if block.is_moe
    ]
    try:
        with torch.no_grad():
            model(idx)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


val_ids = torch.cat([inputs for inputs, _ in val_batches])  # (128, 64)
hidden = router_inputs(switch_model, val_ids)
print({layer: tuple(h.shape) for layer, h in hidden.items()})

# %% [markdown]
# ## Part 1: routing decisions
#
# A Switch router scores each token $x$ against every expert with one linear map, takes the
# softmax $p = \mathrm{softmax}(x W_g^\top)$ and sends the token to the single most probable
# expert $i^* = \arg\max_i p_i$. The expert's output is multiplied by the gate $p_{i^*}$.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Top-1 routing
#
# Write `switch_route(x, router_weight)` for hidden states `x` of shape `(T, d)` and a router
# weight of shape `(N, d)` (as stored in `nn.Linear`, here `layer.router.gate.weight`). Return
# `(expert_ids, gates)`, both of shape `(T,)`: the chosen expert of each token and the router
# probability of that expert. The check compares your decisions with each trained layer's own
# router on the validation characters.

# %% tags=["solution"]
def switch_route(x: torch.Tensor, router_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Switch top-1 routing: (expert_ids (T,), gates (T,))."""
    # BEGIN SOLUTION
    probs = torch.softmax(x @ router_weight.T, dim=-1)
    gates, expert_ids = probs.max(dim=-1)
    return expert_ids, gates
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_shape, passed

for layer_index, layer in enumerate(moe_layers):
    with torch.no_grad():
        expected = layer.router(hidden[layer_index])
        ids_mine, gates_mine = switch_route(hidden[layer_index], layer.router.gate.weight)
    check_shape(ids_mine, (hidden[layer_index].shape[0],), f"expert_ids of layer {layer_index}")
    check_equal(ids_mine, expected.expert_ids[:, 0], f"expert_ids of layer {layer_index}")
    check_close(gates_mine, expected.gates[:, 0], f"gates of layer {layer_index}", atol=1e-6)
passed("Exercise 1")

# %% [markdown]
# Now look at the decisions for one passage of validation text: each character, in each layer,
# coloured by the expert it goes to (spaces shown as `·`, line breaks as `¶`).

# %%
start = int(torch.nonzero(data.val == tokenizer.encode("\n")[0])[40])  # a line start
passage = data.val[start + 1 : start + 1 + BLOCK][None]  # (1, 64)
passage_hidden = router_inputs(switch_model, passage)
with torch.no_grad():
    passage_routes = np.stack([
        switch_route(passage_hidden[i], layer.router.gate.weight)[0].numpy()
        for i, layer in enumerate(moe_layers)
    ])  # (layers, 64)
characters = [{" ": "·", "\n": "¶"}.get(c, c) for c in tokenizer.decode(passage[0].tolist())]

colours = plt.get_cmap("tab10").colors
fig, ax = plt.subplots(figsize=(15, 2.6))
for layer_index, routes in enumerate(passage_routes):
    for position, (char, expert) in enumerate(zip(characters, routes)):
        ax.text(position, layer_index, char, ha="center", va="center", family="monospace",
                fontsize=11, bbox=dict(boxstyle="square,pad=0.25", fc=colours[expert], alpha=0.6,
                                       ec="none"))
for expert in range(N_EXPERTS):
    ax.scatter([], [], marker="s", s=80, color=colours[expert], alpha=0.6, label=f"expert {expert}")
ax.set(xlim=(-1, BLOCK), ylim=(len(moe_layers) - 0.5, -0.5), yticks=range(len(moe_layers)),
       yticklabels=[f"layer {i}" for i in range(len(moe_layers))], xlabel="position in the passage",
       title="Switch routing decisions: the expert each character goes to, per MoE layer")
ax.legend(ncol=N_EXPERTS, loc="upper center", bbox_to_anchor=(0.5, -0.35), fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# In the first layer the same character tends to get the same colour wherever it occurs: the
# router sees little more than the character's embedding and its position. Whether that holds
# over many characters is a counting question.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Which characters does each expert get?
#
# Write `routing_counts(char_ids, expert_ids, vocab_size, num_experts)` for two 1-D tensors of
# the same length (the character at each position and the expert it was routed to). Return an
# integer tensor of shape `(vocab_size, num_experts)` whose entry `[c, e]` counts how often
# character `c` went to expert `e`. Avoid a Python loop over positions (one `bincount` of a
# combined index does it). The check compares with a direct count.

# %% tags=["solution"]
def routing_counts(char_ids: torch.Tensor, expert_ids: torch.Tensor, vocab_size: int,
                   num_experts: int) -> torch.Tensor:
    """(vocab_size, num_experts) counts of (character, expert) pairs."""
    # BEGIN SOLUTION
    combined = char_ids * num_experts + expert_ids
    return torch.bincount(combined, minlength=vocab_size * num_experts).view(vocab_size,
                                                                             num_experts)
    # END SOLUTION


# %% tags=["check"]
torch.manual_seed(3)
chars_check = torch.randint(0, 5, (200,))
experts_check = torch.randint(0, 3, (200,))
reference_counts = torch.zeros(5, 3, dtype=torch.long)
for c, e in zip(chars_check.tolist(), experts_check.tolist()):
    reference_counts[c, e] += 1
result_counts = routing_counts(chars_check, experts_check, 5, 3)
check_shape(result_counts, (5, 3), "routing_counts")
check_equal(result_counts, reference_counts, "routing_counts")
check_equal(routing_counts(torch.tensor([4]), torch.tensor([2]), 6, 3).sum().item(), 1,
            "routing_counts with characters absent from the input")
passed("Exercise 2")

# %% [markdown]
# Over all 8,192 validation characters: the characters each expert receives most often, and the
# *purity* of the routing, the fraction of characters that go to the expert their character
# type is most often sent to. Purity 1 means the router is a lookup table on the character;
# with 8 experts, random routing would give about 1/8.

# %%
flat_chars = val_ids.reshape(-1)
for layer_index, layer in enumerate(moe_layers):
    with torch.no_grad():
        experts_all, _ = switch_route(hidden[layer_index], layer.router.gate.weight)
    counts = routing_counts(flat_chars, experts_all, tokenizer.vocab_size, N_EXPERTS)
    purity = counts.max(dim=1).values.sum().item() / counts.sum().item()
    load = counts.sum(dim=0) / counts.sum()
    print(f"layer {layer_index}: purity {purity:.2f}; load per expert "
          f"{[round(v, 3) for v in load.tolist()]}")
    for expert in range(N_EXPERTS):
        top = torch.argsort(counts[:, expert], descending=True)[:8]
        shown = " ".join(repr(tokenizer.decode([c]))[1:-1] for c in top.tolist()
                         if counts[c, expert] > 0)
        print(f"   expert {expert} ({int(counts[:, expert].sum()):5d} chars): {shown}")

# %% [markdown]
# The table answers the question from the figure with numbers: how strongly each layer's
# routing follows the character identity (the purity) and what each expert's "speciality" is.
# Layer 0's experts split the alphabet (vowels, frequent consonants, spaces and punctuation
# tend to go to different experts); layer 1's router sees context mixed in by two attention
# layers, so its purity is lower. (Read the printed lists; with other seeds the split differs.)
# Large models show the same effect: tracing tokens through a trained ST-MoE model, Zoph et al.
# (2022) find encoder experts that specialise in groups such as punctuation or proper names.

# %% [markdown]
# ## Part 2: capacity overflow
#
# Each expert accepts at most $C = \lceil c \cdot T / N \rceil$ tokens per forward call (top-1,
# capacity factor $c$, $T$ tokens in the call). Tokens beyond the first $C$ routed to an expert
# (in order of position) are dropped: they skip the FFN and continue on the residual stream.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Capacity and dropped tokens
#
# Write `capacity_and_drops(expert_ids, num_experts, capacity_factor)` for the top-1 decisions
# `expert_ids` of shape `(T,)` of one forward call. Return `(capacity, dropped)`: the capacity
# $C$ (an int; `None` when `capacity_factor` is `None`, the dropless mode) and an integer tensor
# of shape `(num_experts,)` counting the tokens each expert drops. The check compares with
# `shared.moe.expert_capacity` and with the statistics the trained layers record
# (`layer.stats.dropped`) on one validation batch, for several capacity factors.

# %% tags=["solution"]
def capacity_and_drops(expert_ids: torch.Tensor, num_experts: int,
                       capacity_factor: float | None) -> tuple[int | None, torch.Tensor]:
    """Top-1 expert capacity and the number of tokens each expert drops."""
    # BEGIN SOLUTION
    load = torch.bincount(expert_ids, minlength=num_experts)
    if capacity_factor is None:
        return None, torch.zeros(num_experts, dtype=torch.long)
    capacity = int(np.ceil(capacity_factor * expert_ids.numel() / num_experts))
    return capacity, (load - capacity).clamp(min=0)
    # END SOLUTION


# %% tags=["check"]
one_batch = val_batches[0][0]
batch_hidden = router_inputs(switch_model, one_batch)  # layer 0's input does not depend on c
for factor in (0.5, 1.0, 1.25, 2.0, None):
    for layer in moe_layers:
        layer.capacity_factor = factor
    with torch.no_grad():
        switch_model(one_batch)
    stats = moe_layers[0].stats
    with torch.no_grad():
        routed = moe_layers[0].router(batch_hidden[0]).expert_ids[:, 0]
    capacity_mine, dropped_mine = capacity_and_drops(routed, N_EXPERTS, factor)
    if factor is None:
        check(capacity_mine is None, "capacity for capacity_factor=None", "None (dropless)")
    else:
        check_equal(capacity_mine, expert_capacity(routed.numel(), N_EXPERTS, 1, factor),
                    f"capacity for capacity_factor={factor}")
    check_shape(dropped_mine, (N_EXPERTS,), f"dropped for capacity_factor={factor}")
    check_equal(dropped_mine, torch.tensor(stats.dropped), f"dropped for capacity_factor={factor}")
passed("Exercise 3")

# %% [markdown]
# Now the sweep. For each capacity factor from 0.5 to 2.0 (and dropless), every MoE layer gets
# that factor; we measure the validation cross-entropy and the fraction of tokens dropped per
# layer over the 8 validation batches, and compare layer 0's measured drop rate with the one
# your `capacity_and_drops` predicts from the routing decisions alone.

# %%
FACTORS = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, None]
sweep = {"ce": [], "drop": [], "predicted_drop_layer0": []}
for factor in FACTORS:
    for layer in moe_layers:
        layer.capacity_factor = factor
    drops, predicted = [], []
    for inputs, _ in val_batches:
        with torch.no_grad():
            switch_model(inputs)
        drops.append([layer.stats.drop_rate for layer in moe_layers])
        with torch.no_grad():  # layer 0's decisions for this batch, from your router
            layer0_hidden = router_inputs(switch_model, inputs)[0]
            routed, _ = switch_route(layer0_hidden, moe_layers[0].router.gate.weight)
        predicted.append(capacity_and_drops(routed, N_EXPERTS, factor)[1].sum().item()
                         / routed.numel())
    sweep["ce"].append(evaluate_loss(switch_model, val_batches, cross_entropy))
    sweep["drop"].append(np.mean(drops, axis=0))
    sweep["predicted_drop_layer0"].append(float(np.mean(predicted)))

print(f"{'capacity factor':>15s} {'val CE':>7s} {'drop L0':>8s} {'drop L1':>8s} "
      f"{'predicted L0':>12s}")
for factor, ce, drop, pred in zip(FACTORS, sweep["ce"], sweep["drop"],
                                  sweep["predicted_drop_layer0"]):
    print(f"{str(factor):>15s} {ce:7.3f} {drop[0]:8.3f} {drop[1]:8.3f} {pred:12.3f}")

finite = FACTORS[:-1]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for layer_index in range(len(moe_layers)):
    axes[0].plot(finite, [d[layer_index] for d in sweep["drop"][:-1]], marker="o",
                 label=f"layer {layer_index}, measured")
axes[0].plot(finite, sweep["predicted_drop_layer0"][:-1], ls="--", marker="x", color="black",
             label="layer 0, from capacity_and_drops")
axes[0].plot(finite, [max(0.0, 1 - c) for c in finite], ls=":", color="gray",
             label="1 - c (the floor for c < 1)")
axes[0].set(xlabel="capacity factor c", ylabel="fraction of tokens dropped",
            title="Capacity overflow: drop rate vs capacity factor")
axes[0].legend()
axes[1].plot(finite, sweep["ce"][:-1], marker="o", label="with capacity c")
axes[1].axhline(sweep["ce"][-1], color="black", ls="--", label="dropless (no capacity)")
axes[1].set(xlabel="capacity factor c", ylabel="validation cross-entropy (nats/char)",
            title="What dropped tokens cost")
axes[1].legend()
plt.tight_layout()
plt.show()

for layer in moe_layers:
    layer.capacity_factor = None  # dropless from here on (inference)

# %% [markdown]
# Below $c = 1$ the experts together have fewer slots than there are tokens, so at least a
# fraction $1 - c$ must be dropped (the dotted floor); uneven routing drops more on top. As $c$
# grows the drop rate falls towards zero and the loss towards the dropless value. The
# prediction from routing decisions alone matches layer 0's measured rate exactly, because the
# drop rule is deterministic. Layer 1 differs because its input depends on what layer 0 dropped.
#
# For inference the choice is a trade: a larger $c$ (DeepSpeed's `eval_capacity_factor`) or
# the dropless mode costs padding or uneven expert batches, a smaller one costs quality.
# Dropless also makes the output of a token independent of which other tokens share its batch,
# which a server that batches requests from different users needs (and cached generation too,
# as the MoE notebook shows).

# %% [markdown]
# ## Part 3: tokens per second against dense models
#
# Two dense models are fair comparisons for an MoE, and they answer different questions:
#
# - **equal active parameters**: the same FLOPs per token (a dense FFN of width 256, as one
#   expert): does sparsity cost speed?
# - **equal total parameters**: the same memory (a dense FFN as wide as all experts together):
#   what would the MoE's parameter count cost if every parameter were used for every token?

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Dense baselines with equal active and equal total parameters
#
# Write `matched_dense_config(config, match)` for an MoE `GPTConfig` (every layer MoE, experts
# of width `config.d_ff`, `top_k` and `num_experts` in `config.moe`). Return a dense `GPTConfig`
# that is identical except for the FFN width (and no MoE):
#
# - `match="active"`: the width of the `top_k` experts a token visits, `top_k * d_ff`;
# - `match="total"`: the width whose dense FFN has as many parameters as the MoE layer (all
#   experts plus the router), rounded to the nearest integer. A `FeedForward`'s parameter count
#   is linear in its width: measure it at two widths to find the slope.
#
# Any other `match` raises `ValueError`. The check compares parameter counts.

# %% tags=["solution"]
def matched_dense_config(config: GPTConfig, match: str) -> GPTConfig:
    """A dense GPTConfig matching the MoE config's active or total parameters."""
    # BEGIN SOLUTION
    num_experts, top_k = config.moe["num_experts"], config.moe["top_k"]
    if match == "active":
        d_ff = top_k * config.d_ff
    elif match == "total":
        def ffn_params(width: int) -> int:
            ffn = FeedForward(config.d_model, width, config.activation, config.bias)
            return sum(p.numel() for p in ffn.parameters())

        slope = ffn_params(2) - ffn_params(1)
        intercept = ffn_params(1) - slope
        target = num_experts * ffn_params(config.d_ff) + config.d_model * num_experts
        d_ff = round((target - intercept) / slope)
    else:
        raise ValueError(f"match must be 'active' or 'total', got {match!r}")
    return GPTConfig(**{**config.to_dict(), "d_ff": d_ff, "moe_layers": [], "moe": None})
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_in_range

active_config = matched_dense_config(switch_config, "active")
total_config = matched_dense_config(switch_config, "total")
check(isinstance(active_config, GPTConfig) and not active_config.moe_layers, "active config",
      "a dense GPTConfig (no moe_layers)")
expert_params = sum(p.numel() for p in moe_layers[0].experts[0].parameters())
router_params = D_MODEL * N_EXPERTS
active_count = switch_model.num_parameters() - 2 * (N_EXPERTS - 1) * expert_params
check_equal(GPT(active_config).num_parameters(), active_count - 2 * router_params,
            "parameters of the equal-active dense model (the MoE's active ones, minus routers)")
check_in_range(GPT(total_config).num_parameters() / switch_model.num_parameters(), 0.999, 1.001,
               "total parameters of the equal-total dense model / MoE total")
top2 = GPTConfig(**{**switch_config.to_dict(), "moe": {**switch_config.moe, "top_k": 2}})
check_equal(matched_dense_config(top2, "active").d_ff, 2 * D_FF, "active width for top-2")
try:
    matched_dense_config(switch_config, "flops")
except ValueError:
    pass
else:
    check(False, "matched_dense_config", "a ValueError for match='flops'")
passed("Exercise 4")

# %% [markdown]
# The measurement. The MoE runs dropless (inference). The two dense models get random weights:
# speed does not depend on what the weights are, while the MoE keeps its trained router, because
# how evenly it spreads tokens changes its speed. Two workloads:
#
# - **prefill**: one forward pass over 16 sequences of 64 characters (1,024 tokens), the
#   throughput-bound regime of prompt processing and batched scoring;
# - **decode**: greedy generation of 48 characters for one sequence with the KV cache, one
#   token per forward call, the latency-bound regime of a single user.
#
# The three models are timed back to back in each of several rounds and the medians are
# compared, since the machine may be busy with other work. The numbers are measurements: they
# differ from run to run, and only their ratios are meaningful.

# %%
dense_models = {}
for name, config in (("dense, equal active", active_config), ("dense, equal total", total_config)):
    torch.manual_seed(0)
    dense_models[name] = GPT(config).eval()
contenders = {"Switch MoE (8 experts)": switch_model, **dense_models}

prefill_batch = val_batches[0][0]
prompt = passage[:, :16]
N_NEW, ROUNDS = 48, 5


def time_prefill(model: GPT) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        model(prefill_batch)
        return time.perf_counter() - start


def time_decode(model: GPT) -> float:
    start = time.perf_counter()
    generate(model, prompt, N_NEW, use_cache=True)
    return time.perf_counter() - start


for model in contenders.values():  # warm-up: first calls allocate
    time_prefill(model)
    time_decode(model)
samples = {name: {"prefill": [], "decode": []} for name in contenders}
for round_index in range(ROUNDS):
    order = list(contenders)[round_index % 3:] + list(contenders)[:round_index % 3]
    for name in order:
        samples[name]["prefill"].append(time_prefill(contenders[name]))
        samples[name]["decode"].append(time_decode(contenders[name]))

throughput = {
    name: {"prefill": prefill_batch.numel() / statistics.median(s["prefill"]),
           "decode": N_NEW / statistics.median(s["decode"])}
    for name, s in samples.items()
}
moe_name = "Switch MoE (8 experts)"
print(f"{'model':24s} {'params':>8s} {'FLOPs/token':>11s} {'prefill tok/s':>13s} "
      f"{'decode tok/s':>12s}")
for name, model in contenders.items():
    print(f"{name:24s} {model.num_parameters():8,d} {model.flops_per_token(BLOCK):11,d} "
          f"{throughput[name]['prefill']:13,.0f} {throughput[name]['decode']:12,.0f}")
for name in dense_models:
    print(f"MoE / {name}: prefill {throughput[moe_name]['prefill'] / throughput[name]['prefill']:.2f}x, "
          f"decode {throughput[moe_name]['decode'] / throughput[name]['decode']:.2f}x (measured)")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, workload in zip(axes, ("prefill", "decode")):
    values = [throughput[name][workload] for name in contenders]
    bars = ax.bar(range(3), values, color=["tab:green", "tab:blue", "tab:orange"])
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    ax.set_xticks(range(3), [name.replace(", ", ",\n") for name in contenders])
    ax.set(ylabel="tokens per second (median)",
           title=f"{workload}: " + ("16 x 64 tokens in one pass" if workload == "prefill"
                                    else f"{N_NEW} greedy tokens, batch 1, KV cache"))
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the ratios printed above. The FLOPs column makes the design plain: the MoE costs the
# FLOPs of the equal-active dense model and holds the parameters of the equal-total one. How
# that turns into speed depends on the regime.
#
# - **Prefill** (many tokens per call): the dense model with equal total parameters does about
#   five times the arithmetic per token of the others (eight times in its FFNs) and is the
#   slowest. The MoE is faster than it, but slower than the equal-active dense model with the
#   same FLOPs: routing, sorting and eight small matrix products per layer cost more than one
#   large one at this size.
# - **Decode** (one token per call): every call now pays the MoE's fixed costs for a single
#   token: the router, an argsort, a call per expert (empty ones included) and the routing
#   statistics that `MoEFeedForward` records on every forward pass. A tiny model's decoding step
#   on a CPU is dominated by such per-call costs rather than by arithmetic, so the MoE decodes
#   slowest of the three, and the two dense models, which differ only in arithmetic, are much
#   closer to each other than in prefill.
#
# The MoE wins on speed when the experts are large enough that their matrix products dominate
# the overheads and, for small batches, when reading the weights from memory is the bottleneck:
# a decoding step then reads only the active experts' weights. That is the regime of billion-
# parameter models on GPUs, where DeepSpeed-MoE reports up to 4.5x faster and 9x cheaper
# inference than quality-equivalent dense models, with expert-parallel all-to-all exchanges and
# fused routing kernels doing the work that the Python loop does here (Rajbhandari et al., 2022).
# With large batches every expert is read anyway, and the MoE needs the memory of its total
# size, on as many devices as that takes.

# %% [markdown]
# ## Summary
#
# - A Switch layer's routing decision is an argmax over a softmax of one linear map; the trained
#   layers' decisions were reproduced from their hidden states and router weights.
# - In the first layer, routing follows the character identity closely (high purity); deeper,
#   context matters more. Expert load stays near uniform thanks to the balance loss.
# - Capacity $C = \lceil cT/N\rceil$ per call: below $c = 1$ at least $1 - c$ of the tokens are
#   dropped, uneven routing drops more, and the loss rises with the drop rate. Inference should
#   run dropless or with a generous capacity.
# - At equal FLOPs the MoE was slower than the dense model on this CPU (overheads of routing and
#   many small matmuls); in prefill it was faster than the dense model of equal total
#   parameters, and in batch-1 decoding, where per-call costs dominate, slower than both.
#   The MoE's speed advantage needs large experts and memory-bound decoding, the GPU regime
#   that DeepSpeed-MoE and its successors target.
#
# ## References
#
# - W. Fedus, B. Zoph, N. Shazeer, "Switch Transformers: scaling to trillion parameter models
#   with simple and efficient sparsity", JMLR 2022 (arXiv 2021). https://arxiv.org/abs/2101.03961
# - D. Lepikhin et al., "GShard: scaling giant models with conditional computation and automatic
#   sharding", 2020. https://arxiv.org/abs/2006.16668
# - N. Shazeer et al., "Outrageously large neural networks: the sparsely-gated
#   mixture-of-experts layer", ICLR 2017. https://arxiv.org/abs/1701.06538
# - S. Rajbhandari et al., "DeepSpeed-MoE: advancing mixture-of-experts inference and training to
#   power next-generation AI scale", ICML 2022. https://arxiv.org/abs/2201.05596
# - B. Zoph et al., "ST-MoE: designing stable and transferable sparse expert models", 2022.
#   https://arxiv.org/abs/2202.08906
# - A. Q. Jiang et al., "Mixtral of experts", 2024. https://arxiv.org/abs/2401.04088
# - DeepSpeed, "Mixture of Experts" tutorial (capacity factors, `drop_tokens`, expert
#   parallelism). https://www.deepspeed.ai/tutorials/mixture-of-experts/
