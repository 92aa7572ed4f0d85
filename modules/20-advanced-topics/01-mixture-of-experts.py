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
# # Mixture of experts: routers, capacity, balance and expert parallelism
#
# A dense transformer spends the same compute on every token: each parameter of each
# feed-forward network (FFN) takes part in every forward pass. A mixture-of-experts (MoE) layer
# replaces the FFN by $N$ FFNs (the *experts*) and a small *router* that sends each token to
# $k$ of them, so the model holds $N$ times the FFN parameters but spends only $k$ experts'
# compute per token. This "sparse activation" is how Switch Transformer reached 1.6 trillion
# parameters and how Mixtral 8x7B runs with 12.9B of its 46.7B parameters active per token.
# It comes with problems a dense model does not have: the router can send too many tokens to
# one expert (so experts get a fixed *capacity* and the overflow is dropped), it can collapse
# onto a few experts (so an auxiliary *load-balancing loss* is added), and the experts no longer
# fit on one device (so they are spread over devices and tokens travel to them: *expert
# parallelism*). This notebook builds each piece, checks it against the course library
# `shared.moe`, and trains MoE language models against a dense one on the same data.
#
# **Learning objectives**
# - Count total and active parameters and FLOPs of a sparse MoE layer, and explain sparse
#   activation.
# - Write a top-k router (softmax gating, Switch top-1, GShard top-2), the expert capacity and
#   the drop rule, and GShard's one-hot dispatch, and check them against `shared.moe`.
# - Explain the load-balancing loss and the router z-loss, and show from a training run what
#   happens to expert load without the balance loss.
# - Train a 2-expert and an 8-expert MoE GPT against a dense GPT with the same active parameters,
#   and read loss curves, expert load and drop rates.
# - Run expert parallelism over two processes with all-to-all exchanges, and map the course code
#   onto GShard, Switch Transformer and DeepSpeed-MoE, whose MoE layer runs here against it.
#
# **Prerequisites:** [the feed-forward network](../02-transformer-architecture/06-feed-forward)
# (the layer that MoE replaces), [a minimal GPT](../04-llm-from-scratch/01-minimal-llm) (the
# model used here) and [the training loop](../05-pretraining/04-training-loop)
# (`shared.training`).
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
import os
import statistics
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import shared
from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.distributed import local_process_group, run_distributed
from shared.generation import generate
from shared.layers import FeedForward
from shared.models import GPT, GPTConfig
from shared.moe import (
    MoEFeedForward,
    dispatch_einsum,
    dispatch_loop,
    dispatch_sorted,
    expert_capacity,
    expert_parallel_worker,
    load_balancing_loss,
    router_z_loss,
)
from shared.training import TrainConfig, Trainer, evaluate_loss

# These models are tiny: one thread is faster than two (the second mostly waits).
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("numpy", "matplotlib"))

# %% [markdown]
# ## Sparse activation: parameters are not compute
#
# A dense FFN maps a token $x \in \mathbb{R}^d$ to $\mathrm{FFN}(x)$. An MoE layer with experts
# $E_1, \dots, E_N$ (each an FFN of the same shape) and a router computes
#
# $$y = \sum_{i \in \mathcal{T}_k(x)} g_i(x)\, E_i(x),$$
#
# where $\mathcal{T}_k(x)$ are the $k$ experts the router picks for this token and $g_i(x)$
# their gate weights. The idea is old: Jacobs et al. (1991) trained "adaptive mixtures of local
# experts" with a gating network. Shazeer et al. (2017) made it *sparse* (only the top $k$
# experts run) and put thousands of experts between LSTM layers; GShard (Lepikhin et al., 2020)
# put top-2 MoE layers into the transformer and sharded the experts over 2,048 TPU cores; Switch
# Transformer (Fedus et al., 2021) simplified to top-1; Mixtral (Jiang et al., 2024) uses 8
# experts and top-2 in every layer.
#
# The cell below builds a dense FFN and several MoE layers of the course library
# (`shared.moe.MoEFeedForward`) at the size used in this notebook ($d = 64$, hidden width
# $d_{ff} = 256$) and counts what each holds and what one token uses.

# %%
D_MODEL, D_FF = 64, 256


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


layers = {
    "dense FFN": FeedForward(D_MODEL, D_FF),
    "2 experts, top-1": MoEFeedForward(D_MODEL, D_FF, num_experts=2, top_k=1),
    "8 experts, top-1 (Switch)": MoEFeedForward(D_MODEL, D_FF, num_experts=8, top_k=1),
    "8 experts, top-2 (GShard, Mixtral)": MoEFeedForward(D_MODEL, D_FF, num_experts=8, top_k=2),
    "8 experts of width 128, top-2": MoEFeedForward(D_MODEL, D_FF // 2, num_experts=8, top_k=2),
}
print(f"{'layer':36s} {'total params':>12s} {'active params':>13s} {'FLOPs/token':>11s}")
for name, layer in layers.items():
    if isinstance(layer, MoEFeedForward):
        active = n_params(layer.router) + layer.top_k * n_params(layer.experts[0])
        flops = layer.active_flops_per_token()
    else:
        active, flops = n_params(layer), layer.flops_per_token()
    print(f"{name:36s} {n_params(layer):12,d} {active:13,d} {flops:11,d}")

# %% [markdown]
# With top-1, eight experts hold 8x the parameters of the dense FFN for the same compute per
# token (plus the router, $d \times N$ weights). Top-2 doubles the active compute; halving the
# experts' width brings it back (the "fine-grained experts" trade). At Mixtral's size the same
# arithmetic gives 46.7B total and 12.9B active parameters (Jiang et al., 2024): the attention
# layers and embeddings are shared, and each token visits 2 of the 8 experts in every layer.
#
# Memory is the catch: all experts must be stored, and at inference time the speed of a small
# batch is bounded by reading weights, so an MoE needs the memory (and memory bandwidth) of its
# *total* size. The [MoE inference lab](../../labs/moe-switch-transformer-inference/README)
# measures what this means for throughput.

# %% [markdown]
# ## The router: a softmax over experts, then top-k
#
# The router is one linear map $W_g \in \mathbb{R}^{d \times N}$ and a softmax:
# $p(x) = \mathrm{softmax}(x W_g)$. Each token goes to the $k$ experts with the largest
# probabilities. The gate weights follow two conventions, both in `shared.moe.TopKRouter`:
#
# - **Switch, $k = 1$:** $g = p_{i^*}$, the probability of the chosen expert. The output is
#   scaled by it, and that is the only way the router receives a gradient from the language
#   model loss (the choice itself, an argmax, is not differentiable).
# - **GShard / Mixtral, $k > 1$:** the $k$ chosen probabilities renormalised to sum to 1.
#
# Shazeer et al. (2017) also add trainable Gaussian noise to the logits during training
# ("noisy top-k gating", `noisy_gating=True`), which spreads tokens over experts early on.
# The router runs in float32 even under mixed precision: Switch Transformer found the softmax
# over experts to be where bfloat16 hurts ("selective precision").
#
# Here is the top-1 router written out for 64 random tokens, compared with the library's.

# %%
torch.manual_seed(0)
switch = MoEFeedForward(D_MODEL, D_FF, num_experts=8, top_k=1, capacity_factor=1.25)
tokens = torch.randn(64, D_MODEL)

probs_by_hand = torch.softmax(tokens @ switch.router.gate.weight.T, dim=-1)  # (T, N)
gate_by_hand, expert_by_hand = probs_by_hand.max(dim=-1)  # top-1: the largest probability
routing = switch.router(tokens)

print(f"max |probs by hand - router.probs|   = {(probs_by_hand - routing.probs).abs().max():.2e}")
print("same expert for every token:", torch.equal(expert_by_hand, routing.expert_ids[:, 0]))
print(f"max |gates by hand - router.gates|   = {(gate_by_hand - routing.gates[:, 0]).abs().max():.2e}")
for n in (2, 8):
    torch.manual_seed(0)
    fresh_router = MoEFeedForward(D_MODEL, D_FF, num_experts=n, top_k=1).router
    print(f"mean top-1 gate of an untrained router, {n} experts: "
          f"{fresh_router(tokens).gates.mean():.3f} (uniform routing: {1 / n:.3f})")

# %% [markdown]
# The last two lines matter later. An untrained router spreads its probability, so a Switch
# layer multiplies its expert's output by a gate well below 1: with 8 experts by about a
# quarter here, with 2 experts by about two thirds. An 8-expert layer therefore starts out
# contributing much less than a dense FFN would, and has to learn its way out.

# %% [markdown]
# ## Capacity: what an expert accepts, and which tokens are dropped
#
# On accelerators every expert processes a fixed-size buffer, so that shapes are static and the
# experts run in lockstep. GShard and Switch give each expert a capacity of
#
# $$C = \left\lceil c \cdot \frac{T \cdot k}{N} \right\rceil$$
#
# assignments for $T$ tokens, where $c$ is the *capacity factor* ($c = 1$: exactly the balanced
# share; Switch trains with 1.0-1.25). An expert that receives more than $C$ tokens keeps the
# first $C$ and *drops* the rest: a dropped token gets no FFN output, and the block's residual
# connection carries it through unchanged. `shared.moe.expert_capacity` computes $C$;
# `capacity_factor=None` is the dropless mode. The priority rule in `shared.moe` is GShard's:
# all first choices before any second choice, and within a choice, tokens in order.
#
# For top-1, the position of a token in its expert's queue is a running count of the one-hot
# assignment matrix, and the token is kept when its position is below $C$:

# %%
capacity = expert_capacity(num_tokens=64, num_experts=8, top_k=1, capacity_factor=1.25)
one_hot = F.one_hot(routing.expert_ids[:, 0], num_classes=8)  # (T, N)
position = (one_hot.cumsum(dim=0) - 1).gather(1, routing.expert_ids)[:, 0]  # place in queue
kept_by_hand = position < capacity

out_sorted, kept_sorted = dispatch_sorted(tokens, routing, switch.experts, capacity)
print(f"capacity C = ceil(1.25 * 64 / 8) = {capacity}")
print("tokens per expert:", one_hot.sum(dim=0).tolist())
print(f"dropped tokens: {(~kept_by_hand).sum().item()} of 64;",
      "same kept mask as dispatch_sorted:", torch.equal(kept_by_hand, kept_sorted[:, 0]))
print("dropped tokens get a zero FFN output:",
      bool(out_sorted[~kept_by_hand].abs().max() == 0) if (~kept_by_hand).any() else "none dropped")

# %% [markdown]
# ### Two ways to dispatch: GShard's one-hot einsum and sorting
#
# GShard expresses dispatch as dense tensor algebra, which suits TPUs: a binary *dispatch
# tensor* $D \in \{0,1\}^{T \times N \times C}$ with $D_{t,e,c} = 1$ when token $t$ sits in slot
# $c$ of expert $e$, and a *combine tensor* (the same with gate weights). Expert inputs are
# `einsum("tec,td->ecd", D, x)` and the output comes back with
# `einsum("tec,ecd->td", combine, expert_out)`. That is `shared.moe.dispatch_einsum`. Since
# $C \propto T/N$, the tensor has $c\,k\,T^2$ entries: quadratic in the number of tokens.
#
# The library's fast path, `shared.moe.dispatch_sorted`, sorts the $T k$ assignments by expert
# (one `argsort`), applies the capacity to each expert's contiguous run, runs each expert once
# on its slice and scatters the weighted results back with `index_add`: linear in $T$.
# `shared.moe.dispatch_loop` is the obviously-correct reference, one expert call per token.
# All three must compute the same function:

# %%
out_einsum, _ = dispatch_einsum(tokens, routing, switch.experts, capacity)
out_loop, _ = dispatch_loop(tokens, routing, switch.experts, capacity)
print(f"max |sorted - einsum| = {(out_sorted - out_einsum).abs().max():.2e}")
print(f"max |sorted - loop|   = {(out_sorted - out_loop).abs().max():.2e}")

# GShard's dispatch tensor, built from the positions computed above: (T, N, C).
dispatch = torch.zeros(64, 8, capacity)
kept_rows = kept_by_hand.nonzero()[:, 0]
dispatch[kept_rows, routing.expert_ids[kept_rows, 0], position[kept_rows]] = 1.0

fig, ax = plt.subplots(figsize=(9, 4.5))
ax.imshow(dispatch.reshape(64, -1).T, cmap="Greys", aspect="auto", interpolation="nearest")
for e in range(1, 8):
    ax.axhline(e * capacity - 0.5, color="tab:blue", lw=0.8)
for t in (~kept_by_hand).nonzero()[:, 0].tolist():
    ax.axvline(t, color="tab:red", lw=1.5, alpha=0.6)
ax.set(xlabel="token t (red: dropped, over capacity)", ylabel="expert slot (8 experts x C slots)",
       title=f"GShard dispatch tensor D[t, e, c] for 64 tokens, 8 experts, C = {capacity}")
ax.set_yticks([e * capacity + capacity / 2 - 0.5 for e in range(8)],
              [f"expert {e}" for e in range(8)])
plt.tight_layout()
plt.show()

# %% [markdown]
# Each expert's band fills from the top in token order; a token that arrives at a full band
# (red) is dropped. The timing below shows why the library sorts: the einsum path multiplies
# by a mostly-zero tensor, and the loop calls an expert once per token. (Times are measured on
# this machine while other work runs, so only the ratios mean anything; the repository's
# benchmark `benchmarks/bench_moe.py` measures them properly.)

# %%
big_tokens = torch.randn(1024, D_MODEL)
with torch.no_grad():
    big_routing = switch.router(big_tokens)
    big_capacity = expert_capacity(1024, 8, 1, 1.25)
    timings: dict[str, list[float]] = {"sorted": [], "einsum": [], "loop": []}
    implementations = {"sorted": dispatch_sorted, "einsum": dispatch_einsum, "loop": dispatch_loop}
    for _ in range(3):  # interleaved repeats, median below
        for name, fn in implementations.items():
            start = time.perf_counter()
            fn(big_tokens, big_routing, switch.experts, big_capacity)
            timings[name].append(time.perf_counter() - start)
medians = {name: statistics.median(t) for name, t in timings.items()}
for name in ("einsum", "loop"):
    print(f"{name:6s} takes {medians[name] / medians['sorted']:5.1f}x the time of sorted dispatch"
          " (1,024 tokens, 8 experts; measured)")

# %% [markdown]
# ## Keeping experts busy: the load-balancing loss and the router z-loss
#
# Nothing in the language-model loss asks the router to spread tokens. Early in training, an
# expert that receives more tokens improves faster, the router sends it even more, and the
# other experts starve. Switch Transformer adds an auxiliary loss (`load_balancing_loss`):
#
# $$\mathcal{L}_{\text{balance}} = N \sum_{i=1}^{N} f_i \, P_i,$$
#
# with $f_i$ the fraction of tokens routed to expert $i$ (a count, not differentiable) and $P_i$
# the router probability of expert $i$ averaged over tokens (differentiable). Its gradient with
# respect to $P_i$ is $N f_i$: probability is pushed away from the experts that are loaded
# most. It equals 1 for uniform routing and $N$ when everything goes to one expert. It enters
# the training loss times a coefficient ($\alpha = 0.01$ in Switch; `balance_coef`).
#
# ST-MoE (Zoph et al., 2022) adds the router z-loss (`router_z_loss`),
# $\frac{1}{T}\sum_t \big(\log \sum_i e^{z_{t,i}}\big)^2$ for router logits $z$, which keeps the
# logits small so that the exponentials in the softmax stay in a range where float rounding is
# harmless (`z_loss_coef`, $10^{-3}$ in ST-MoE).

# %%
T_TOKENS, N_EXPERTS = 1000, 8
uniform_probs = torch.full((T_TOKENS, N_EXPERTS), 1 / N_EXPERTS)
round_robin = (torch.arange(T_TOKENS) % N_EXPERTS)[:, None]
collapsed_probs = F.one_hot(torch.zeros(T_TOKENS, dtype=torch.long), N_EXPERTS).float()
print(f"uniform routing:            balance loss {load_balancing_loss(uniform_probs, round_robin):.3f}")
print(f"everything to expert 0:     balance loss "
      f"{load_balancing_loss(collapsed_probs, torch.zeros(T_TOKENS, 1, dtype=torch.long)):.3f}")
print(f"the random router above:    balance loss "
      f"{load_balancing_loss(routing.probs, routing.expert_ids):.3f}")

# The gradient on the mean probability P_i is N * f_i: the most loaded expert is pushed hardest.
torch.manual_seed(2)
skewed_logits = torch.randn(T_TOKENS, N_EXPERTS) + torch.linspace(1.0, 0.0, N_EXPERTS)
skewed_logits.requires_grad_(True)
skewed_probs = skewed_logits.softmax(dim=-1)
skewed_ids = skewed_probs.argmax(dim=-1, keepdim=True)
load_balancing_loss(skewed_probs, skewed_ids).backward()
fraction = torch.bincount(skewed_ids[:, 0], minlength=N_EXPERTS) / T_TOKENS
print("token fraction f_i per expert:      ", [round(v, 2) for v in fraction.tolist()])
print("mean gradient on each expert's logit:", [round(v * T_TOKENS, 2) for v in
                                                skewed_logits.grad.mean(dim=0).tolist()])
for scale in (1, 10, 100):
    print(f"router logits x{scale:<3d}: z-loss {router_z_loss(skewed_logits.detach() * scale):10.2f}")

# %% [markdown]
# The router skewed towards expert 0 gets the largest positive gradient on that expert's logit
# (gradient descent lowers it) and negative gradients on the idle experts. The z-loss grows with
# the square of the logits' scale, so a small coefficient is enough to stop them drifting.

# %% [markdown]
# ## Training MoE language models against a dense one
#
# Now the real experiment: small GPTs (2 layers, 4 heads, $d = 64$, a context of 64 characters)
# trained on tiny Shakespeare at the character level with `shared.training`. Three models share
# everything except the FFNs:
#
# - **dense**: one FFN of width 256 per block;
# - **2 experts**: a Switch layer (top-1) with two experts of width 256 in each block;
# - **8 experts**: a Switch layer with eight experts of width 256 in each block.
#
# With top-1 routing every token passes through exactly one expert of the dense FFN's shape, so
# the three models have the same *active* parameters per token (plus $64 \times N$ router
# weights); the MoE models hold 2x and 8x the FFN parameters. `GPTConfig(moe_layers=(0, 1),
# moe={...})` turns the FFNs of both blocks into `MoEFeedForward` layers. The training loss of an
# MoE model includes the auxiliary losses (`GPT.forward` adds `output.aux_loss`); for a fair
# comparison the validation loss below is the plain cross-entropy, computed from the logits.
#
# Every `EVAL_EVERY` steps we record that loss and the routing of one fixed validation batch
# (1,024 tokens): the load of each expert and the fraction of assignments dropped.

# %%
BLOCK, BATCH = 64, 16
MAX_STEPS = 250  # 1200 takes about 5x the time and shows where the curves go next
EVAL_EVERY = 25
data = shakespeare_char_data(BLOCK)
val_sampler = RandomBlockSampler(data.val, BLOCK, BATCH, seed=1)
val_batches = [val_sampler.next_batch() for _ in range(8)]
probe_batch = val_batches[0][0]  # (16, 64) characters whose routing we follow

MOE_DEFAULTS = dict(top_k=1, capacity_factor=1.25, balance_coef=0.01, z_loss_coef=0.001)


def make_gpt(num_experts: int | None = None, **moe_overrides) -> GPT:
    """A 2-layer character GPT; num_experts=None is dense, else both FFNs are Switch layers."""
    torch.manual_seed(0)
    moe = None if num_experts is None else {**MOE_DEFAULTS, "num_experts": num_experts,
                                            **moe_overrides}
    return GPT(GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=BLOCK, n_layer=2,
                         n_head=4, d_model=D_MODEL, d_ff=D_FF, moe_layers=(0, 1) if moe else (),
                         moe=moe))


def cross_entropy(model: GPT, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-character cross-entropy without the MoE auxiliary losses."""
    inputs, targets = batch
    return F.cross_entropy(model(inputs).logits.flatten(0, 1), targets.flatten())


def train_and_record(model: GPT) -> dict:
    """Train with shared.training; every EVAL_EVERY steps record val loss and routing."""
    config = TrainConfig(max_steps=MAX_STEPS, batch_size=BATCH, block_size=BLOCK, lr=3e-3,
                         min_lr=3e-4, warmup_steps=MAX_STEPS // 10, progress=False)
    trainer = Trainer(model, data.train, None, config)
    log = {"step": [], "val_ce": [], "load": [], "drop": []}
    for step in range(0, MAX_STEPS + 1, EVAL_EVERY):
        trainer.fit(until=step)
        log["step"].append(step)
        log["val_ce"].append(evaluate_loss(model, val_batches, cross_entropy))
        if model.config.moe_layers:
            with torch.no_grad():
                model(probe_batch)
            stats = model.moe_stats()  # layer -> MoEStats of this forward pass
            log["load"].append([[n / s.tokens for n in s.load] for s in stats.values()])
            log["drop"].append([s.drop_rate for s in stats.values()])
    log["seconds_per_step"] = trainer.elapsed_s / MAX_STEPS
    log["train_loss"] = trainer.history.final_train_loss
    return log


models, logs = {}, {}
for name, experts in [("dense", None), ("2 experts", 2), ("8 experts", 8)]:
    models[name] = make_gpt(experts)
    logs[name] = train_and_record(models[name])

print(f"{'model':10s} {'total params':>12s} {'val CE':>7s} {'s/step vs dense':>16s}")
for name, model in models.items():
    print(f"{name:10s} {model.num_parameters():12,d} {logs[name]['val_ce'][-1]:7.3f} "
          f"{logs[name]['seconds_per_step'] / logs['dense']['seconds_per_step']:15.2f}x")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for name, log in logs.items():
    axes[0].plot(log["step"], log["val_ce"], marker="o", ms=3, label=name)
axes[0].set(xlabel="optimizer step", ylabel="validation cross-entropy (nats/char)",
            title="Dense vs MoE with equal active parameters", ylim=(2.3, 3.6))
axes[0].legend()
for ax, name in zip(axes[1:], ("2 experts", "8 experts")):
    final_load = np.array(logs[name]["load"][-1])  # (layers, experts)
    n = final_load.shape[1]
    width = 0.4
    for layer in range(final_load.shape[0]):
        ax.bar(np.arange(n) + (layer - 0.5) * width, final_load[layer], width,
               label=f"layer {layer}")
    ax.axhline(1 / n, color="black", ls="--", lw=1, label=f"uniform (1/{n})")
    ax.set(xlabel="expert", ylabel="fraction of the batch's tokens", xticks=range(n),
           title=f"{name}: expert load after {MAX_STEPS} steps")
    ax.legend()
plt.tight_layout()
plt.show()

drop_8 = np.array(logs["8 experts"]["drop"])
print("8 experts, fraction of tokens dropped (layer 0, layer 1) over training:")
for step, rates in zip(logs["8 experts"]["step"], drop_8):
    if step % 50 == 0:
        print(f"  step {step:4d}: {rates[0]:.3f}  {rates[1]:.3f}")

# %% [markdown]
# Read the numbers above, not a slogan. At this budget (250 steps, 256,000 training
# characters) the 2-expert model ends level with the dense model, and the 8-expert model is
# clearly behind. Three reasons are visible in this notebook:
#
# - each of 8 experts sees only about an eighth of the tokens, so each learns from an eighth of
#   the data;
# - early in training the router swings onto one or two experts: the drop rates printed above
#   pass one half around step 50, so most tokens skip the FFN altogether until the balance loss
#   has spread them out again (the next section shows the load over time);
# - the Switch gate scales the expert's output by its probability, about a quarter at
#   initialisation (the router section).
#
# MoE's advantage is a *scaling* result: Switch Transformer reports its speed-ups over dense
# models of equal compute after tens of thousands of steps on hundreds of billions of tokens
# (Fedus et al., 2021, figures 1 and 4). Raise `MAX_STEPS` to 1200 to watch the gap shrink (it
# takes about five times as long).
#
# After training, the load bars are within a small factor of the uniform share and few
# assignments are dropped at capacity factor 1.25. The MoE steps cost more time than the dense
# step on a CPU although their FLOPs are the same: routing, sorting and $N$ small matrix
# products instead of one large one add overhead that a tiny model cannot hide.

# %% [markdown]
# ## What the load-balancing loss buys
#
# The same 8-expert model, trained again with `balance_coef=0` (the z-loss stays), shows what
# the balance loss prevents. The heatmaps show the load of each expert over training, for
# layer 1.

# %%
models["8 experts, no balance loss"] = make_gpt(8, balance_coef=0.0)
logs["8 experts, no balance loss"] = train_and_record(models["8 experts, no balance loss"])

compare = ("8 experts", "8 experts, no balance loss")
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
top_load = max(np.array(logs[name]["load"])[:, 1, :].max() for name in compare)
for ax, name in zip(axes[:2], compare):
    load = np.array(logs[name]["load"])[:, 1, :]  # (evaluations, experts), layer 1
    image = ax.imshow(load.T, aspect="auto", cmap="magma", vmin=0, vmax=top_load,
                      extent=(-EVAL_EVERY / 2, MAX_STEPS + EVAL_EVERY / 2, 7.5, -0.5))
    ax.set(xlabel="optimizer step", ylabel="expert", title=f"{name}: load, layer 1")
    fig.colorbar(image, ax=ax, label="fraction of tokens")
for name in compare:
    axes[2].plot(logs[name]["step"], np.array(logs[name]["drop"]).mean(axis=1), marker="o",
                 ms=3, label=name)
axes[2].set(xlabel="optimizer step", ylabel="fraction of assignments dropped (mean of layers)",
            title="Dropped tokens at capacity factor 1.25")
axes[2].legend()
plt.tight_layout()
plt.show()

print(f"{'':28s} {'val CE':>7s} {'drop rate':>9s} {'max load':>9s} {'idle experts':>12s}")
for name in compare:
    final = np.array(logs[name]["load"][-1])  # (layers, experts)
    print(f"{name:28s} {logs[name]['val_ce'][-1]:7.3f} {np.mean(logs[name]['drop'][-1]):9.3f} "
          f"{final.max():9.3f} {int((final < 0.01).sum()):>6d} of 16")

# %% [markdown]
# Both runs start the same way: within the first 25-75 steps the router piles the tokens onto
# one or two experts, and more than half of the assignments are dropped. With the balance loss
# the load spreads back over all eight experts by about step 100, and the drop rate falls to a
# few percent. Without it, the load hops from one expert to another and stays concentrated: at
# the end the busiest expert takes about 2.5 times its share, some experts are idle (the table
# counts expert-layers with under 1% of the tokens), and several times more assignments are
# dropped at the same capacity factor. Dropped tokens skip the FFN, which is part of why this
# model's loss is worse. A coefficient of 0.01 is enough to keep every expert in use.

# %% [markdown]
# ## Generating from an MoE model: turn the capacity off
#
# Capacity is defined per forward call: $C$ depends on the number of tokens $T$ in the call. A
# KV-cached generator feeds one token per call, so $C = \lceil 1.25 \cdot 1/8 \rceil = 1$ and a
# token is never dropped; re-encoding the whole sequence in one call can drop some. The same
# model can therefore produce different tokens with and without the cache. For inference, set
# the capacity off (`capacity_factor=None`, dropless), as DeepSpeed's `drop_tokens=False` does;
# then cached and uncached decoding agree exactly.

# %%
moe_model = models["8 experts"]
prompt = torch.tensor([data.tokenizer.encode("ROMEO:\nBut soft")])
n_new = BLOCK - prompt.shape[1]
print("capacity of a one-token call:", expert_capacity(1, 8, 1, 1.25))

for setting in (1.25, None):
    for block in moe_model.blocks:
        block.ffn.capacity_factor = setting
    cached = generate(moe_model, prompt, n_new, use_cache=True)
    uncached = generate(moe_model, prompt, n_new, use_cache=False)
    with torch.no_grad():
        moe_model(uncached)  # the generated text in one call
    drops = [round(s.drop_rate, 3) for s in moe_model.moe_stats().values()]
    differ = (cached != uncached).nonzero()
    first = "none" if len(differ) == 0 else int(differ[0, 1]) - prompt.shape[1]
    print(f"capacity_factor={setting}: one-call drop rate per layer {drops}; "
          f"first differing new token: {first}")
print(repr(data.tokenizer.decode(cached[0].tolist())))

# %% [markdown]
# With a capacity, the full-sequence forward drops a sizeable share of the tokens that the
# one-token calls never drop, and the greedy choices part ways after a few characters.
# Dropless, both paths compute the same function and emit the same tokens. (The text itself
# repeats "the": a 250-step model has learnt little more than frequent letters. What matters
# here is that the two decoders agree.)

# %% [markdown]
# ## Expert parallelism: experts on different processes
#
# In a large MoE the experts do not fit on one device. GShard shards them: with $W$ devices,
# each holds $N/W$ experts and a replica of everything else (attention, router). Each device
# routes its own tokens, then an **all-to-all** exchange sends every token's vector to the device
# that owns its expert; the experts run; a second all-to-all brings the results back. The
# backward pass runs the same exchanges in reverse. DeepSpeed-MoE (Rajbhandari et al., 2022)
# calls the number of devices sharing one layer's experts `ep_size`.
#
# `shared.moe.ExpertParallelMoE` implements this with `torch.distributed.all_to_all_single`
# (gloo on CPU, NCCL on GPUs), and `shared.moe.expert_parallel_worker` runs one rank of a
# forward and backward pass. Worker functions must live in an importable module (spawned
# processes re-import them), which is why they are in `shared`. Below, two processes each hold
# 4 of the 8 experts of the trained model's first MoE layer and process their own 4 sequences;
# the result is compared with the single-process layer applied to the same tokens.

# %%
trained_layer = models["8 experts"].blocks[0].ffn
trained_layer.capacity_factor = 1.25
layer_kwargs = dict(d_model=D_MODEL, d_ff=D_FF, num_experts=8, top_k=1, capacity_factor=1.25,
                    balance_coef=0.01, z_loss_coef=0.001)
WORLD = 2
torch.manual_seed(1)
rank_inputs = torch.randn(WORLD, 4, BLOCK, D_MODEL)  # rank r processes rank_inputs[r]
rank_grad_outputs = torch.randn_like(rank_inputs)

results = run_distributed(expert_parallel_worker, WORLD, layer_kwargs,
                          trained_layer.state_dict(), rank_inputs, rank_grad_outputs)

# Single process: the same layer on each rank's tokens; gradients summed over ranks.
reference = MoEFeedForward(**layer_kwargs)
reference.load_state_dict(trained_layer.state_dict())
output_diff, input_grad_diff = 0.0, 0.0
for rank in range(WORLD):
    x = rank_inputs[rank].clone().requires_grad_(True)
    out = reference(x)
    ((out * rank_grad_outputs[rank]).sum() + reference.aux_loss).backward()
    output_diff = max(output_diff, (out - results[rank]["output"]).abs().max().item())
    input_grad_diff = max(input_grad_diff, (x.grad - results[rank]["input_grad"]).abs().max().item())
    print(f"rank {rank}: experts held {sorted({int(k.split('.')[1]) for k in results[rank]['expert_grads']})}, "
          f"drop rate {results[rank]['stats']['drop_rate']:.3f}")

reference_grads = dict(reference.named_parameters())
parallel_grads = {**results[0]["router_grads"], **results[0]["expert_grads"],
                  **results[1]["expert_grads"]}
grad_diff = max((parallel_grads[name] - reference_grads[name].grad).abs().max().item()
                for name in reference_grads)
print(f"max |output difference|          = {output_diff:.2e}")
print(f"max |input-gradient difference|  = {input_grad_diff:.2e}")
print(f"max |parameter-gradient difference| over {len(parallel_grads)} tensors = {grad_diff:.2e}")

# %% [markdown]
# The two processes reproduce the single-process layer to float rounding, forward and backward.
# Each token row crossed between processes twice (there and back) in the forward pass and twice
# in the backward pass: in a real cluster these all-to-alls, not the expert matmuls, are often
# what limits MoE training and inference speed, which is why DeepSpeed-MoE and its successors
# spend so much effort on them. The router's gradient is the sum over ranks (an all-reduce,
# `ExpertParallelMoE.all_reduce_router_grads`), as in data parallelism.

# %% [markdown]
# ## GShard, Switch, ST-MoE, DeepSpeed-MoE and Mixtral, against the code
#
# | Idea | Paper | Where it is in `shared/moe.py` |
# |---|---|---|
# | sparse top-k gating, noisy gating | Shazeer et al., 2017 | `TopKRouter` (`noisy_gating=True`) |
# | top-2 with renormalised gates, capacity, one-hot dispatch/combine, expert sharding with all-to-all | GShard, Lepikhin et al., 2020 | `TopKRouter` (`top_k=2`), `expert_capacity`, `dispatch_einsum`, `ExpertParallelMoE` |
# | top-1 routing with gate $= p_{i^*}$, balance loss $N\sum_i f_i P_i$, float32 router | Switch, Fedus et al., 2021 | `TopKRouter` (`top_k=1`), `load_balancing_loss` |
# | router z-loss | ST-MoE, Zoph et al., 2022 | `router_z_loss` (`z_loss_coef`) |
# | expert parallelism degree, dropless mode, residual MoE | DeepSpeed-MoE, Rajbhandari et al., 2022 | `ExpertParallelMoE` (world size = `ep_size`), `capacity_factor=None`; residual MoE is not in `shared` |
# | 8 SwiGLU experts, top-2, every layer | Mixtral, Jiang et al., 2024 | `MoEFeedForward(activation="swiglu", num_experts=8, top_k=2)` |
# | tokens grouped by expert, no one-hot tensors | dropless MoE systems such as MegaBlocks, Gale et al., 2023 | `dispatch_sorted`, `_sort_by_expert` |
#
# ### The DeepSpeed MoE API
#
# DeepSpeed provides the same layer as `deepspeed.moe.layer.MoE`. The course installs DeepSpeed
# built against its CPU torch, without DeepSpeed's compiled operators, and the MoE layer runs
# on a CPU with the gloo backend. We build one with 4 experts, copy into it the weights of a
# `shared.moe.MoEFeedForward`, and compare the two on the same tokens. DeepSpeed needs a
# `torch.distributed` process group even in one process (it creates an expert-parallel group of
# `ep_size` ranks), so the cell runs inside `shared.distributed.local_process_group()`: one
# gloo rank that talks over the loopback interface, destroyed when the block ends. The capacity
# is large enough that no token is dropped: DeepSpeed's random token selection (`use_rts`) only
# decides *which* tokens an overflowing expert drops.

# %%
os.environ["DS_ACCELERATOR"] = "cpu"  # this comparison runs on the CPU even where a GPU exists
import deepspeed  # noqa: E402
from deepspeed.moe.layer import MoE  # noqa: E402

D_DS, F_DS, E_DS = 64, 256, 4
torch.manual_seed(0)
course_layer = MoEFeedForward(D_DS, F_DS, num_experts=E_DS, top_k=1, capacity_factor=None).eval()
x_ds = torch.randn(2, 32, D_DS)
with local_process_group():  # one gloo rank, loopback only; destroyed when the block ends
    expert = torch.nn.Sequential(torch.nn.Linear(D_DS, F_DS), torch.nn.GELU(),
                                 torch.nn.Linear(F_DS, D_DS))
    ds_layer = MoE(hidden_size=D_DS, expert=expert, num_experts=E_DS, ep_size=1, k=1,
                   capacity_factor=float(E_DS), eval_capacity_factor=float(E_DS), min_capacity=0,
                   drop_tokens=True, use_rts=False, noisy_gate_policy=None).eval()
    with torch.no_grad():  # the same weights in both layers
        ds_layer.deepspeed_moe.gate.wg.weight.copy_(course_layer.router.gate.weight)
        for ours_expert, ds_expert in zip(course_layer.experts,
                                          ds_layer.deepspeed_moe.experts.deepspeed_experts):
            ds_expert[0].weight.copy_(ours_expert.up.weight)
            ds_expert[0].bias.copy_(ours_expert.up.bias)
            ds_expert[2].weight.copy_(ours_expert.down.weight)
            ds_expert[2].bias.copy_(ours_expert.down.bias)
        y_course = course_layer(x_ds)
        y_ds, ds_l_aux, ds_counts = ds_layer(x_ds)
print(f"deepspeed {deepspeed.__version__}: max |DeepSpeed MoE - shared.moe| = "
      f"{(y_ds - y_course).abs().max().item():.1e}")
print(f"tokens per expert: DeepSpeed {ds_counts.tolist()}, shared.moe {course_layer.stats.load}")
print(f"DeepSpeed l_aux {ds_l_aux.item():.6f}; shared.moe balance loss "
      f"{course_layer.stats.balance_loss:.6f} (unweighted)")

# %% [markdown]
# The outputs agree to float32 rounding, the routing is the same token for token, and
# DeepSpeed's `l_aux` is the Switch balance loss $N\sum_i f_i P_i$ before any weighting (the
# training script multiplies it by a coefficient, as `shared.moe` does with `balance_coef`).
# In a training script the layer sits in a block like this, and the script runs under the
# `deepspeed` launcher, with `ep_size` > 1 spreading the experts over GPUs:
#
# ```python
# import deepspeed
# from deepspeed.moe.layer import MoE
# from deepspeed.moe.utils import split_params_into_different_moe_groups_for_optimizer
#
# class Block(torch.nn.Module):
#     def __init__(self, d_model, d_ff, num_experts, ep_size):
#         super().__init__()
#         expert = torch.nn.Sequential(torch.nn.Linear(d_model, d_ff), torch.nn.GELU(),
#                                      torch.nn.Linear(d_ff, d_model))
#         self.moe = MoE(hidden_size=d_model, expert=expert, num_experts=num_experts,
#                        ep_size=ep_size, k=1, capacity_factor=1.25, eval_capacity_factor=2.0,
#                        min_capacity=4, drop_tokens=True, use_rts=True,
#                        noisy_gate_policy=None, use_residual=False)
#
#     def forward(self, x):
#         out, l_aux, exp_counts = self.moe(x)   # l_aux is unweighted
#         return x + out, l_aux
#
# # training step: loss = lm_loss + 0.01 * sum of the blocks' l_aux
# params = split_params_into_different_moe_groups_for_optimizer(
#     {"params": list(model.parameters()), "name": "parameters"})
# engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=params,
#                                                config="ds_config.json")
# ```
#
# | DeepSpeed `MoE(...)` | `shared.moe.MoEFeedForward(...)` |
# |---|---|
# | `hidden_size` | `d_model` |
# | `expert` (any module, copied `num_experts // ep_size` times) | `d_ff`, `activation`, `bias`: the experts are `shared.layers.FeedForward` |
# | `num_experts`, `k` (1 or 2) | `num_experts`, `top_k` (any $k \le N$) |
# | `ep_size` | the world size of `ExpertParallelMoE` |
# | `capacity_factor`, `eval_capacity_factor` | one `capacity_factor`; set the attribute to change it for evaluation |
# | `min_capacity` (at least this many slots) | none: $C = \lceil c\,Tk/N \rceil$ |
# | `drop_tokens=False` | `capacity_factor=None` |
# | `use_rts=True` (random token selection: random priority when an expert overflows) | fixed priority: first choices, then token order |
# | `noisy_gate_policy="RSample"` / `"Jitter"` | `noisy_gating=True` (Shazeer's trainable noise) |
# | returns `(output, l_aux, exp_counts)` | returns `output`; `layer.aux_loss` (already weighted by `balance_coef`, plus the z-loss) and `layer.stats.load` |
# | `use_residual=True` (PR-MoE: a dense MLP added to the experts) | not provided |

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: A top-k router
#
# Write `top_k_route(x, gate_weight, k)` for tokens `x` of shape `(T, d)` and a router weight of
# shape `(N, d)` (as stored in `nn.Linear`). Return `(probs, expert_ids, gates)`: the softmax
# probabilities `(T, N)`, the `k` chosen experts per token, best first `(T, k)`, and their gate
# weights `(T, k)` with the conventions of this notebook (Switch for $k = 1$: the probability
# itself; renormalised to sum to 1 for $k > 1$). The check compares with `TopKRouter` for
# $k = 1, 2, 3$.

# %% tags=["solution"]
def top_k_route(x: torch.Tensor, gate_weight: torch.Tensor, k: int):
    """Softmax router with top-k choice: (probs (T, N), expert_ids (T, k), gates (T, k))."""
    # BEGIN SOLUTION
    probs = torch.softmax(x @ gate_weight.T, dim=-1)
    top_probs, expert_ids = probs.topk(k, dim=-1)
    gates = top_probs if k == 1 else top_probs / top_probs.sum(dim=-1, keepdim=True)
    return probs, expert_ids, gates
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close, check_equal, check_shape, passed

torch.manual_seed(5)
x_check = torch.randn(40, D_MODEL)
for k_check in (1, 2, 3):
    layer_check = MoEFeedForward(D_MODEL, 32, num_experts=6, top_k=k_check)
    expected = layer_check.router(x_check)
    probs_c, ids_c, gates_c = top_k_route(x_check, layer_check.router.gate.weight, k_check)
    check_shape(ids_c, (40, k_check), f"expert_ids for k={k_check}")
    check_close(probs_c, expected.probs, f"probs for k={k_check}", atol=1e-6)
    check_equal(ids_c, expected.expert_ids, f"expert_ids for k={k_check}")
    check_close(gates_c, expected.gates, f"gates for k={k_check}", atol=1e-6)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The load-balancing loss
#
# Write `balance_loss(probs, expert_ids)` for router probabilities `(T, N)` and chosen experts
# `(T, k)`: $N \sum_i f_i P_i$, where $f_i$ is the fraction of the $T k$ assignments that went to
# expert $i$ and $P_i$ the mean probability of expert $i$ over tokens. It must be differentiable
# with respect to `probs`. The check compares values and gradients with
# `shared.moe.load_balancing_loss`, and the two closed forms (1 for uniform routing, $N$ for a
# collapsed router).

# %% tags=["solution"]
def balance_loss(probs: torch.Tensor, expert_ids: torch.Tensor) -> torch.Tensor:
    """Switch Transformer's load-balancing loss N * sum_i f_i * P_i (without coefficient)."""
    # BEGIN SOLUTION
    num_experts = probs.shape[1]
    counts = torch.bincount(expert_ids.reshape(-1), minlength=num_experts)
    fraction = counts.to(probs.dtype) / expert_ids.numel()
    return num_experts * (fraction * probs.mean(dim=0)).sum()
    # END SOLUTION


# %% tags=["check"]
torch.manual_seed(6)
for k_check in (1, 2):
    logits_c = torch.randn(50, 8, requires_grad=True)
    probs_c = logits_c.softmax(dim=-1)
    ids_c = probs_c.topk(k_check, dim=-1).indices
    mine = balance_loss(probs_c, ids_c)
    check_close(mine, load_balancing_loss(probs_c, ids_c), f"balance_loss for k={k_check}",
                rtol=1e-5)
    (grad_mine,) = torch.autograd.grad(mine, logits_c, retain_graph=True)
    (grad_ref,) = torch.autograd.grad(load_balancing_loss(probs_c, ids_c), logits_c)
    check_close(grad_mine, grad_ref, f"gradient of balance_loss for k={k_check}", atol=1e-7)
check_close(balance_loss(uniform_probs, round_robin), 1.0, "balance_loss, uniform routing")
check_close(balance_loss(collapsed_probs, torch.zeros(T_TOKENS, 1, dtype=torch.long)), 8.0,
            "balance_loss, collapsed routing")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Which assignments fit, for top-k
#
# Extend the capacity rule of this notebook to $k > 1$. Write `kept_assignments(expert_ids,
# num_experts, capacity)` for `expert_ids` of shape `(T, k)`: return a boolean tensor `(T, k)`
# that is True where an assignment is kept. Each expert accepts at most `capacity` assignments;
# all first choices are served before any second choice (and so on), and within one choice
# level tokens are served in order. The check compares with the `kept` mask that
# `shared.moe.dispatch_sorted` returns.

# %% tags=["solution"]
def kept_assignments(expert_ids: torch.Tensor, num_experts: int, capacity: int) -> torch.Tensor:
    """(T, k) bool: which assignments fit in their expert's capacity (GShard priority)."""
    # BEGIN SOLUTION
    one_hot = F.one_hot(expert_ids.t(), num_experts).reshape(-1, num_experts)  # choice-major
    position = (one_hot.cumsum(dim=0) - 1).gather(1, expert_ids.t().reshape(-1, 1))[:, 0]
    return (position < capacity).view(expert_ids.shape[1], -1).t()
    # END SOLUTION


# %% tags=["check"]
torch.manual_seed(7)
for k_check, factor in [(1, 0.5), (2, 0.75), (2, 1.0), (3, 1.25)]:
    layer_check = MoEFeedForward(D_MODEL, 32, num_experts=4, top_k=k_check)
    x_check = torch.randn(30, D_MODEL)
    routing_check = layer_check.router(x_check)
    cap = expert_capacity(30, 4, k_check, factor)
    _, expected_kept = dispatch_sorted(x_check, routing_check, layer_check.experts, cap)
    mine = kept_assignments(routing_check.expert_ids, 4, cap)
    check_shape(mine, (30, k_check), f"kept_assignments shape for k={k_check}")
    check_equal(mine, expected_kept, f"kept_assignments for k={k_check}, capacity {cap}")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Active and total parameters of an MoE GPT
#
# Write `parameter_counts(model)` that returns `(total, active)` for a `shared.models.GPT`:
# `total` counts every parameter once (the tied output head is the embedding); `active` counts
# what one token uses: everything except the experts a token does not visit, that is, in each
# MoE block the router plus `top_k` experts instead of all of them. Then set
# `active_ratio_8` to total / active for the trained 8-expert model. The check compares with
# `model.num_parameters()` and with the dense model (whose active count is its total).

# %% tags=["solution"]
def parameter_counts(model: GPT) -> tuple[int, int]:
    """(total, active per token) parameters of a GPT with optional MoE blocks."""
    # BEGIN SOLUTION
    total = model.num_parameters()
    idle = 0
    for block in model.blocks:
        if block.is_moe:
            per_expert = n_params(block.ffn.experts[0])
            idle += (block.ffn.num_experts - block.ffn.top_k) * per_expert
    return total, total - idle
    # END SOLUTION


active_ratio_8 = None
# BEGIN SOLUTION
total_8, active_8 = parameter_counts(models["8 experts"])
active_ratio_8 = total_8 / active_8
# END SOLUTION

# %% tags=["check"]
from shared.exercises import check_in_range

check_equal(parameter_counts(models["dense"]), (models["dense"].num_parameters(),) * 2,
            "parameter_counts(dense)")
for name, experts in (("2 experts", 2), ("8 experts", 8)):
    total_c, active_c = parameter_counts(models[name])
    check_equal(total_c, models[name].num_parameters(), f"total of {name}")
    check_equal(active_c, models["dense"].num_parameters() + 2 * D_MODEL * experts,
                f"active of {name} (dense + the two routers)")
check_close(active_ratio_8, models["8 experts"].num_parameters()
            / (models["dense"].num_parameters() + 2 * 8 * D_MODEL), "active_ratio_8")
check_in_range(active_ratio_8, 2.0, 8.0, "active_ratio_8")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - An MoE layer holds $N$ experts and runs $k$ of them per token: parameters grow with $N$,
#   compute with $k$. With top-1, 8 experts hold 8x the FFN parameters at the FLOPs of one FFN.
# - The router is a linear map and a softmax; Switch keeps the top-1 expert and scales its
#   output by its probability (the router's only gradient), GShard and Mixtral keep the top 2
#   and renormalise.
# - Capacity $C = \lceil c\,Tk/N\rceil$ fixes each expert's buffer; overflow is dropped and rides
#   the residual connection. GShard's one-hot einsum dispatch costs $O(T^2)$; sorting by expert
#   computes the same output in $O(T \log T)$ (checked against each other and a loop above).
# - The balance loss $N\sum_i f_i P_i$ keeps experts in use: without it, the 8-expert model's
#   routing concentrated on a few experts and dropped more tokens. The z-loss keeps router
#   logits small.
# - At this small budget the 2-expert model trained about as well as the dense model with equal
#   active parameters and the 8-expert model lagged; MoE gains are a result at scale, and they
#   cost memory for all experts and a routing overhead per step (both measured above).
# - For generation, use the dropless mode: capacity depends on the call's token count, so cached
#   and uncached decoding can differ when tokens are dropped.
# - Expert parallelism shards experts over devices and moves tokens with two all-to-alls per
#   layer; over two gloo processes it reproduced the single-process layer to float rounding.
# - DeepSpeed's `MoE` layer, given the same weights, routed every token the same way and
#   computed the same output and balance loss as `shared.moe`.
#
# Next: [long-context attention](02-long-context-ring-attention) and the lab
# [Switch-style MoE inference](../../labs/moe-switch-transformer-inference/README).
#
# ## References
#
# - R. A. Jacobs, M. I. Jordan, S. J. Nowlan, G. E. Hinton, "Adaptive mixtures of local
#   experts", *Neural Computation* 3(1), 1991. https://doi.org/10.1162/neco.1991.3.1.79
# - N. Shazeer et al., "Outrageously large neural networks: the sparsely-gated
#   mixture-of-experts layer", ICLR 2017. https://arxiv.org/abs/1701.06538
# - D. Lepikhin et al., "GShard: scaling giant models with conditional computation and automatic
#   sharding", 2020. https://arxiv.org/abs/2006.16668
# - W. Fedus, B. Zoph, N. Shazeer, "Switch Transformers: scaling to trillion parameter models
#   with simple and efficient sparsity", JMLR 2022 (arXiv 2021). https://arxiv.org/abs/2101.03961
# - S. Rajbhandari et al., "DeepSpeed-MoE: advancing mixture-of-experts inference and training to
#   power next-generation AI scale", ICML 2022. https://arxiv.org/abs/2201.05596
# - B. Zoph et al., "ST-MoE: designing stable and transferable sparse expert models", 2022.
#   https://arxiv.org/abs/2202.08906
# - A. Q. Jiang et al., "Mixtral of experts", 2024. https://arxiv.org/abs/2401.04088
# - DeepSpeed, "Mixture of Experts" tutorial. https://www.deepspeed.ai/tutorials/mixture-of-experts/
# - T. Gale, D. Narayanan, C. Young, M. Zaharia, "MegaBlocks: efficient sparse training with
#   mixture-of-experts", MLSys 2023. https://arxiv.org/abs/2211.15841
