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
# # Norms and gradients: making a deep stack train
#
# A deep network trains only if gradients reach every layer at a useful size. Multiply the
# signal by a little less than one per layer and it vanishes; by a little more and it explodes.
# Transformers survive depth thanks to three design choices: residual connections, the placement
# of the normalisation layers, and gradient clipping in the training loop. This notebook shows
# each failure and each fix by measurement: gradients vanishing and exploding in a plain deep
# network, the gradient profile of pre-norm and post-norm transformers, and then a deliberately
# unstable training run (the original post-norm placement, a high learning rate, no warmup, no
# clipping) that moving the norm and clipping the gradient repair, with the loss and the
# gradient norm of every step on the same data and seed.
#
# **Learning objectives**
# - Explain vanishing and exploding gradients as a product of per-layer gains, and measure them
#   layer by layer.
# - Write pre-norm and post-norm blocks and compare their per-layer gradient norms at
#   initialisation.
# - Run a deliberately unstable training run, diagnose it from loss and gradient-norm curves and
#   per-layer gradient hooks, and fix it by norm placement and gradient clipping.
# - Implement global-norm gradient clipping and match `torch.nn.utils.clip_grad_norm_`.
#
# **Prerequisites:** [a minimal GPT](01-minimal-llm) (the model and its initialisation),
# [the transformer's layers](02-transformer-layers) (LayerNorm),
# [layer normalization](../02-transformer-architecture/07-layer-normalization) and
# [residual connections](../02-transformer-architecture/08-residual-connections) (the concepts),
# and [PyTorch and autograd](../00-foundations/04-pytorch-and-autograd) (optimizers, training
# loops).
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

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import shared
from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.models import GPT, GPTConfig
from shared.training import TrainConfig, Trainer

shared.seed_everything(0)
print(shared.environment_summary("matplotlib", "numpy"))

# %% [markdown]
# ## Vanishing and exploding gradients
#
# Backpropagation multiplies the gradient by one Jacobian per layer. For a stack of $L$ layers
# $h_{l} = \phi(W_l h_{l-1})$ the gradient that reaches layer $l$ is a product of $L - l$ such
# factors, so if each one scales vectors by about $g$, that gradient scales like $g^{L-l}$:
# $0.8^{31} \approx 10^{-3}$, $1.2^{31} \approx 300$. He et al. (2015) chose the
# initialisation $W \sim \mathcal{N}(0, 2/n_{in})$ so that a ReLU layer has gain 1 on average.
# We scale that standard deviation by 0.8, 1 and 1.2 in a 32-layer ReLU network without residual
# connections or norms, read the output out with a fixed random vector, and measure the norm of
# the gradient that reaches the input of every layer, $\lVert \partial \mathcal{L} /
# \partial h_{l-1} \rVert$.

# %%
def plain_stack(depth: int, width: int, gain: float) -> nn.Sequential:
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width, bias=False)
        nn.init.normal_(linear.weight, std=gain * math.sqrt(2.0 / width))  # He init times gain
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers)


def gradient_reaching_each_layer(net: nn.Sequential, inputs: torch.Tensor,
                                 readout: torch.Tensor) -> list[float]:
    """Norm of d(loss)/d(input of each linear layer), for the loss mean(output @ readout)."""
    layer_inputs = []
    h = inputs.clone().requires_grad_(True)
    for module in net:
        if isinstance(module, nn.Linear):
            h.retain_grad()  # keep the gradient of this intermediate tensor
            layer_inputs.append(h)
        h = module(h)
    (h @ readout).mean().backward()
    return [t.grad.norm().item() for t in layer_inputs]


DEPTH, WIDTH = 32, 256
inputs = torch.randn(512, WIDTH)
readout = torch.randn(WIDTH) / math.sqrt(WIDTH)
fig, ax = plt.subplots(figsize=(6.5, 4))
for gain in (0.8, 1.0, 1.2):
    torch.manual_seed(0)
    norms = gradient_reaching_each_layer(plain_stack(DEPTH, WIDTH, gain), inputs, readout)
    ax.plot(range(1, DEPTH + 1), norms, marker=".", label=f"gain {gain}")
    print(f"gain {gain}: gradient at layer 1 / gradient at layer {DEPTH} = "
          f"{norms[0] / norms[-1]:.2e}")
ax.set(yscale="log", xlabel="layer (1 = closest to the input)",
       ylabel="norm of the gradient reaching it",
       title="32 ReLU layers, no residuals, no norms")
ax.legend(title="init std / He std")
plt.show()

# %% [markdown]
# With gain 0.8 the gradient that reaches the first layer is about a thousand times smaller
# than at the last layer (it vanishes); with 1.2 it is hundreds of times larger (it explodes);
# the forward activations shrink or grow by the same factors. Only the exact gain keeps every
# layer on the same scale, and training moves the weights away from it. Transformers do not rely
# on hitting the gain exactly. A **residual connection** $h_l = h_{l-1} + f(h_{l-1})$ has
# Jacobian $I + J_f$, so the gradient always has a direct path of gain 1 to every layer; a
# **normalisation layer** resets the scale of what each branch sees.

# %% [markdown]
# ## Pre-norm and post-norm
#
# The original transformer (Vaswani et al., 2017) normalises *after* the residual addition,
# GPT-2 and every large model since *before* the branch:
#
# $$\text{post-norm: } x \leftarrow \mathrm{LN}(x + f(x)), \qquad
# \text{pre-norm: } x \leftarrow x + f(\mathrm{LN}(x)).$$
#
# In post-norm every path from the loss back to an early layer passes through all later
# LayerNorms; in pre-norm the residual stream is an identity path from the last block to the
# first, and a final LayerNorm sits before the output head. Xiong et al. (2020) showed that
# post-norm transformers need a learning-rate warmup to train, while pre-norm ones train
# without it. `shared.models.GPT` implements both (`norm_position="post"` or `"pre"`); here are
# the gradient norms of each block's parameters at initialisation in a 16-block model, on one
# batch of Shakespeare characters.

# %%
BLOCK_SIZE, BATCH_SIZE = 64, 8
data = shakespeare_char_data(BLOCK_SIZE)
VOCAB_SIZE = data.tokenizer.vocab_size
x, y = RandomBlockSampler(data.train, BLOCK_SIZE, BATCH_SIZE, seed=0).next_batch()


def model_config(norm_position: str, n_layer: int) -> GPTConfig:
    return GPTConfig(vocab_size=VOCAB_SIZE, block_size=BLOCK_SIZE, n_layer=n_layer, n_head=4,
                     d_model=64, norm_position=norm_position)


def block_grad_norms(model: GPT) -> list[float]:
    """Norm of the gradient of each block's parameters taken together."""
    return [torch.sqrt(sum(p.grad.pow(2).sum() for p in block.parameters())).item()
            for block in model.blocks]


fig, ax = plt.subplots(figsize=(6.5, 4))
for norm_position in ("post", "pre"):
    shared.seed_everything(0)
    model = GPT(model_config(norm_position, n_layer=16))
    model(x, targets=y).loss.backward()
    norms = block_grad_norms(model)
    ax.plot(norms, marker="o", label=f"{norm_position}-norm")
    print(f"{norm_position}-norm: block 0 {norms[0]:.3f}, blocks 1-15 {min(norms[1:]):.3f} .. "
          f"{max(norms[1:]):.3f}")
with torch.no_grad():
    embeddings = model.tok_emb(x) + model.pos_emb(torch.arange(BLOCK_SIZE))
print(f"std of the embeddings that enter block 0: {embeddings.std():.3f}")
ax.set(yscale="log", xlabel="block", ylabel="gradient norm of the block's parameters",
       title="Gradient per block at initialisation, 16 blocks")
ax.legend()
plt.show()

# %% [markdown]
# The two placements start from very different gradient profiles. In the pre-norm model every
# block receives a gradient of similar size, slowly decreasing with depth. In the post-norm
# model, block 0 stands out and every later block gets about 0.07, sixteen times less than
# block 0 and twenty times less than a pre-norm block:
# block 0 operates on the raw embeddings, whose scale is small (std about 0.03), and the
# LayerNorm after it divides by that scale, which amplifies its gradient; every later block sees
# an already normalised stream. Adam rescales each parameter's update by its own gradient history,
# so the magnitudes alone do not decide the outcome. Training does.

# %% [markdown]
# ## A deliberately unstable run, and two fixes
#
# We train three 6-block models with `shared.training` on the same batches from the same seed,
# at a constant learning rate of $3 \times 10^{-3}$ with **no warmup** and no weight decay (to
# isolate the effect of norms and clipping):
#
# 1. **post-norm, no clipping**: the 2017 placement;
# 2. **pre-norm, no clipping**: the norm moved before the branch;
# 3. **pre-norm, clipping at 1.0**: as 2, with the gradient's global norm capped at 1 before
#    each update (`TrainConfig(grad_clip=1.0)`, the default of the course's loop).
#
# The trainer records, per step, the loss and the gradient norm *before* clipping. We add two
# kinds of hooks: one on every parameter that records each block's gradient norm after every
# backward pass (to see later which layers a spike comes from), and one around the optimizer's
# step that records how far the step moved the weights, $\lVert \theta_{t} - \theta_{t-1}
# \rVert$.

# %%
# These matrices are too small to gain from a second thread, and with a single thread the
# runs give the same numbers whatever the machine's core count (summation order depends on it,
# and a run that hits a gradient spike amplifies the smallest difference).
torch.set_num_threads(1)
MAX_STEPS = 150  # raise it to see where each run ends up
RUNS = {"post-norm, no clipping": ("post", 0.0),
        "pre-norm, no clipping": ("pre", 0.0),
        "pre-norm, clipping at 1.0": ("pre", 1.0)}


def record_block_grad_norms(model: GPT) -> list[list[float]]:
    """Register hooks that append, after every backward pass, each block's gradient norm."""
    squares: list[list[float]] = [[] for _ in model.blocks]
    for b, block in enumerate(model.blocks):
        params = list(block.parameters())
        pending: list[torch.Tensor] = []

        def on_grad(param, b=b, params=params, pending=pending):
            pending.append(param.grad.pow(2).sum())
            if len(pending) == len(params):  # the last parameter of this block for this step
                squares[b].append(torch.stack(pending).sum().sqrt().item())
                pending.clear()

        for param in params:
            param.register_post_accumulate_grad_hook(on_grad)
    return squares


def record_update_sizes(optimizer: torch.optim.Optimizer) -> list[float]:
    """Register hooks that append the norm of every optimizer step's change to the weights."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    before: list[torch.Tensor] = []
    sizes: list[float] = []

    def pre_step(opt, args, kwargs):
        before[:] = [p.detach().clone() for p in params]

    def post_step(opt, args, kwargs):
        sizes.append(torch.sqrt(sum((p - b).pow(2).sum() for p, b in zip(params, before))).item())

    optimizer.register_step_pre_hook(pre_step)
    optimizer.register_step_post_hook(post_step)
    return sizes


histories, layer_norms, update_sizes = {}, {}, {}
for name, (norm_position, clip) in RUNS.items():
    shared.seed_everything(0)
    model = GPT(model_config(norm_position, n_layer=6))
    layer_norms[name] = record_block_grad_norms(model)
    config = TrainConfig(max_steps=MAX_STEPS, batch_size=BATCH_SIZE, block_size=BLOCK_SIZE,
                         lr=3e-3, min_lr=3e-3, warmup_steps=0, weight_decay=0.0,
                         grad_clip=clip, eval_interval=50, eval_batches=4, seed=0,
                         progress=False)
    trainer = Trainer(model, data.train, data.val, config)
    update_sizes[name] = record_update_sizes(trainer.optimizer)
    histories[name] = trainer.fit()
    h = histories[name]
    norms = np.array(h.grad_norm)
    print(f"{name:<27} final val loss {h.final_val_loss:.3f} | grad norm: median "
          f"{np.median(norms):.2f}, max {norms.max():6.1f} at step {h.steps[norms.argmax()]}, "
          f"{(norms > 1).sum():3d} steps above 1.0")

# %% [markdown]
# A useful reference line: a model that ignores the context and always predicts the
# frequency of each character has a loss equal to the entropy of the character distribution.
# A run that sits at this value has learned the unigram statistics and nothing else.

# %%
counts = torch.bincount(data.train, minlength=VOCAB_SIZE).float()
unigram = counts / counts.sum()
unigram_entropy = -(unigram[unigram > 0] * unigram[unigram > 0].log()).sum().item()
print(f"unigram entropy of the training text: {unigram_entropy:.3f} nats")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
window = 10
for name, h in histories.items():
    smooth = np.convolve(h.train_loss, np.ones(window) / window, mode="valid")
    line, = axes[0].plot(h.steps[window - 1:], smooth, label=name)
    axes[1].plot(h.steps, h.grad_norm, color=line.get_color(), label=name, lw=1)
    axes[2].plot(h.steps, update_sizes[name], color=line.get_color(), label=name, lw=1)
axes[0].axhline(unigram_entropy, color="gray", ls="--", label="unigram entropy")
axes[0].set(xlabel="step", ylabel=f"train loss ({window}-step mean)",
            title="Loss: same data and seed, lr 3e-3, no warmup")
axes[1].axhline(1.0, color="gray", ls="--", label="clipping threshold")
axes[1].set(yscale="log", xlabel="step", ylabel="global gradient norm (before clipping)",
            title="Gradient norm per step")
axes[2].set(yscale="log", xlabel="step", ylabel="norm of the weight change",
            title="Size of each optimizer step")
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
for name, sizes in update_sizes.items():
    print(f"{name:<27} median step size: steps 1-20 {np.median(sizes[:20]):.3f}, "
          f"last 50 steps {np.median(sizes[-50:]):.3f}")

# %% [markdown]
# Reading the three curves:
#
# - **Post-norm** drops quickly to the unigram entropy and stays there for almost the whole run:
#   the model predicts character frequencies and ignores the context. Its gradient norm stays
#   small, above the threshold on only a handful of steps, so clipping would have almost nothing
#   to cut; its problem is the placement, as Xiong et al. found for post-norm without warmup.
# - **Pre-norm without clipping** has gradient spikes around step 10, tens of times the typical
#   norm. The loss jumps up, the run lands on the unigram plateau, and it leaves the plateau
#   only slowly, with more spikes on the way. Its steps stay about half as large as those of
#   the clipped run (right panel): Adam divides each update by a running average of squared
#   gradients ($\beta_2 = 0.99$ here, a memory of about 100 steps), and every spike inflates
#   that average, which shrinks the updates that follow.
# - **Pre-norm with clipping** still sees raw gradients above the threshold on a few dozen
#   steps, but each update is computed from a gradient of norm at most 1, so the optimizer's
#   statistics are never flooded, and the run keeps learning to the lowest loss of the three.
#
# Whether a given spike sets a run back, and by how much, depends on the seed: change the
# seeds in the training cell (and `MAX_STEPS`) to see other runs. Large training runs use all
# the defences at once: pre-norm, a learning-rate warmup, and clipping at 1.0.
#
# ### Where did the spike come from?
#
# The hooks recorded every block's gradient norm at every step. For the unclipped pre-norm run:

# %%
name = "pre-norm, no clipping"
grid = np.array(layer_norms[name])  # (blocks, steps)
spike_step = int(np.argmax(histories[name].grad_norm))
fig, ax = plt.subplots(figsize=(10, 3.2))
im = ax.imshow(np.log10(grid), aspect="auto", cmap="magma", interpolation="nearest",
               extent=(0.5, grid.shape[1] + 0.5, grid.shape[0] - 0.5, -0.5))  # x = step number
ax.set(xlabel="step", ylabel="block", title=f"log10 gradient norm per block: {name}")
fig.colorbar(im, ax=ax, label="log10 norm")
plt.show()
print(f"at the largest spike (step {spike_step + 1}), gradient norm per block:",
      np.round(grid[:, spike_step], 2))
print("median over the run, per block:", np.round(np.median(grid, axis=1), 2))

# %% [markdown]
# The spike is largest in block 0, next to the embeddings, and shrinks block by block towards
# the output; the later, smaller spikes are again concentrated in the first block.
#
# Per-layer hooks like these are the first tool for debugging a run that diverges: they tell
# whether a spike is global or starts in one layer, whether early layers receive any gradient
# at all (vanishing), and at which step things changed. The same idea catches non-finite
# values: `shared.training` checks every recorded loss and stops with an explanation rather
# than training on NaNs. Here we poison one weight to show the message:

# %%
shared.seed_everything(0)
broken = GPT(model_config("pre", n_layer=2))
with torch.no_grad():
    broken.blocks[0].ffn.up.weight[0, 0] = float("nan")
try:
    Trainer(broken, data.train, None, TrainConfig(max_steps=3, batch_size=BATCH_SIZE,
            block_size=BLOCK_SIZE, warmup_steps=0, log_interval=1, progress=False)).fit()
except FloatingPointError as error:
    print("FloatingPointError:", error)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The global gradient norm
#
# Clipping in `shared.training` and nanoGPT uses the *global* norm: all gradients treated as one
# long vector, $\lVert g \rVert = \sqrt{\sum_{\text{tensors}} \sum_i g_i^2}$. Write
# `global_grad_norm(grads)` for a list of tensors. The check compares it with
# `torch.nn.utils.get_total_norm` on the gradients of a real backward pass.

# %% tags=["solution"]
def global_grad_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """sqrt of the sum of squares of every entry of every tensor."""
    # BEGIN SOLUTION
    return torch.sqrt(sum(g.pow(2).sum() for g in grads))
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, passed

shared.seed_everything(1)
probe = GPT(model_config("pre", n_layer=2))
probe(x, targets=y).loss.backward()
probe_grads = [p.grad for p in probe.parameters()]
check_close(global_grad_norm(probe_grads), torch.nn.utils.get_total_norm(probe_grads),
            "global_grad_norm", rtol=1e-5)
check_close(global_grad_norm([torch.tensor([3.0]), torch.tensor([[4.0, 0.0]])]), 5.0,
            "global_grad_norm([3], [[4, 0]])")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Clip by global norm
#
# Write `clip_grads_(grads, max_norm)` that scales every tensor in `grads` **in place** by
# $\min(1, \text{max\_norm} / (\lVert g \rVert + 10^{-6}))$ and returns the norm before clipping,
# as `torch.nn.utils.clip_grad_norm_` does. Clipping must preserve the direction of the whole
# gradient (every tensor gets the same factor). The check compares with PyTorch on copies of the
# gradients above, for a threshold that clips and one that does not.

# %% tags=["solution"]
def clip_grads_(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale grads in place so that their global norm is at most max_norm; return the old norm."""
    # BEGIN SOLUTION
    norm = global_grad_norm(grads)
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale)
    return norm
    # END SOLUTION


# %% tags=["check"]
for threshold in (0.1, 100.0):
    ours = [g.clone() for g in probe_grads]
    params_ref = [nn.Parameter(torch.zeros_like(g)) for g in probe_grads]
    for param, g in zip(params_ref, probe_grads):
        param.grad = g.clone()
    norm_ref = torch.nn.utils.clip_grad_norm_(params_ref, threshold)
    norm_ours = clip_grads_(ours, threshold)
    check_close(norm_ours, norm_ref, f"clip_grads_ return value (max_norm={threshold})")
    for g_ours, param in zip(ours, params_ref):
        check_close(g_ours, param.grad, f"clipped gradients (max_norm={threshold})", atol=1e-7)
check_close(global_grad_norm(ours), global_grad_norm(probe_grads), "clip_grads_ with a large "
            "threshold (nothing to clip)", rtol=1e-6)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Measure the damage of a spike
#
# From `histories`, set `spike_ratio` to the largest gradient norm of the unclipped pre-norm run
# divided by the median gradient norm of that run, and `clipping_gain` to the final validation
# loss of the unclipped pre-norm run minus that of the clipped one (positive when clipping
# helped). Then set `post_norm_gap` to the final validation loss of the post-norm run minus the
# unigram entropy computed above.

# %% tags=["solution"]
spike_ratio = None
clipping_gain = None
post_norm_gap = None
# BEGIN SOLUTION
unclipped = histories["pre-norm, no clipping"]
spike_ratio = max(unclipped.grad_norm) / float(np.median(unclipped.grad_norm))
clipping_gain = unclipped.final_val_loss - histories["pre-norm, clipping at 1.0"].final_val_loss
post_norm_gap = histories["post-norm, no clipping"].final_val_loss - unigram_entropy
# END SOLUTION
print(f"spike {spike_ratio:.0f}x the median; clipping lowered the final loss by {clipping_gain:.3f}; "
      f"post-norm ends {post_norm_gap:+.3f} from the unigram entropy")

# %% tags=["check"]
reference = histories["pre-norm, no clipping"]
check_close(spike_ratio, max(reference.grad_norm) / float(np.median(reference.grad_norm)),
            "spike_ratio", rtol=1e-6)
check_close(clipping_gain, reference.final_val_loss
            - histories["pre-norm, clipping at 1.0"].final_val_loss, "clipping_gain", rtol=1e-6)
check_close(post_norm_gap, histories["post-norm, no clipping"].final_val_loss - unigram_entropy,
            "post_norm_gap", rtol=1e-6)
check(spike_ratio > 10, "spike_ratio", "a spike at least ten times the median gradient norm")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - Gradients are products of per-layer gains: in a 32-layer plain ReLU network, a gain 20% off
#   makes the first layer's gradient orders of magnitude too small or too large (measured).
# - Residual connections give every layer a gain-1 path; normalisation fixes the scale each
#   branch sees. Where the norm sits matters: pre-norm spreads the gradient evenly over blocks;
#   post-norm concentrates it in the first block at initialisation.
# - Same data, same seed, learning rate $3 \times 10^{-3}$, no warmup: post-norm stays on the
#   unigram plateau; pre-norm learns, but gradient spikes tens of times the median throw it back
#   and shrink its later steps; pre-norm with clipping at 1.0 learns fastest.
# - Clipping by global norm scales the whole gradient by one factor, so it keeps its direction
#   and bounds the size of the update's input; it does not help a run whose gradients are
#   already small.
# - Debug a diverging run with per-step gradient norms (before clipping), per-layer hooks, and a
#   loop that stops on non-finite losses.
#
# Next: [parameters and memory](04-parameters-and-memory), where the bytes of parameters,
# gradients and optimizer states are counted and sharded.
#
# ## References
#
# - R. Xiong et al., "On layer normalization in the transformer architecture", ICML 2020.
#   https://arxiv.org/abs/2002.04745
# - L. Liu et al., "Understanding the difficulty of training transformers", EMNLP 2020.
#   https://arxiv.org/abs/2004.08249
# - R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of training recurrent neural networks"
#   (gradient clipping), ICML 2013. https://arxiv.org/abs/1211.5063
# - K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers" (He initialisation), ICCV
#   2015. https://arxiv.org/abs/1502.01852
# - J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer normalization", 2016.
#   https://arxiv.org/abs/1607.06450
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - C. Zhang, S. Bengio, M. Hardt, B. Recht, O. Vinyals, "Understanding deep learning requires
#   rethinking generalization", ICLR 2017 (on what makes deep networks trainable and
#   generalise). https://arxiv.org/abs/1611.03530
# - L. Mao, "Layer normalization explained". https://leimao.github.io/blog/Layer-Normalization/
# - PyTorch documentation, normalization layers.
#   https://pytorch.org/docs/stable/nn.html#normalization-layers
# - A. Karpathy, nanoGPT (training loop with clipping at 1.0). https://github.com/karpathy/nanoGPT
