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
# # Layer normalization: LayerNorm, RMSNorm, pre-norm and post-norm
#
# Every transformer block contains normalization layers, and where they sit decides whether a
# deep stack trains at all. The original transformer normalized *after* each residual addition
# (post-norm); GPT-2 and nearly every model since normalize *before* each sub-layer (pre-norm),
# and Llama-style models also replaced LayerNorm by the cheaper RMSNorm. This notebook writes
# both normalizations by hand and checks them against PyTorch and the course library, then
# trains 12-layer models that differ only in where the norm goes and watches the gradients
# reach, or fail to reach, the bottom of the stack.
#
# **Learning objectives**
# - Write LayerNorm and RMSNorm from their definitions and match `torch.nn.LayerNorm`,
#   `torch.nn.RMSNorm` and `shared.layers.RMSNorm`.
# - State what each normalization is invariant to, and why LayerNorm normalizes over features
#   rather than over the batch.
# - Write the pre-norm and post-norm block equations and explain the difference in the gradient
#   path from the loss to the lower layers.
# - Measure training stability and per-layer gradient norms of pre-norm and post-norm stacks,
#   and connect them to warmup, Pre-LN (Xiong et al., 2020) and DeepNet (Wang et al., 2022).
#
# **Prerequisites:** [PyTorch and autograd](../00-foundations/04-pytorch-and-autograd) for
# gradients and training loops; [multi-head attention](04-multi-head-attention) and
# [the feed-forward network](06-feed-forward) for what goes inside a block.
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
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import shared
from shared.data import shakespeare_char_data
from shared.layers import RMSNorm, make_norm
from shared.models import GPT, GPTConfig, TransformerBlock
from shared.plotting import heatmap
from shared.training import TrainConfig, Trainer

# The models here are tiny: one thread avoids the cost of coordinating several.
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("torch", "matplotlib"))

# %% [markdown]
# ## LayerNorm (Ba et al., 2016)
#
# LayerNorm normalizes each token's feature vector on its own: subtract the mean of its $d$
# features, divide by their standard deviation, then apply a learned gain $\gamma$ and bias
# $\beta$:
#
# $$\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad
# \mu = \frac{1}{d}\sum_i x_i, \quad \sigma^2 = \frac{1}{d}\sum_i (x_i - \mu)^2 .$$
#
# The statistics come from one token, never from the batch, so the layer behaves the same for a
# batch of one or of a thousand, at training and at inference, whatever the sequence lengths.
# (BatchNorm, which averages over the batch, has none of these properties; Exercise 3 shows the
# difference.) Note the *biased* variance, divided by $d$.

# %%
def layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
               eps: float = 1e-5) -> torch.Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


torch.manual_seed(0)
x = 3.0 + 2.0 * torch.randn(4, 10, 64)  # (batch, tokens, features), deliberately off-centre
reference = nn.LayerNorm(64, eps=1e-5)
with torch.no_grad():  # random gain and bias, so that the affine part is tested too
    reference.weight.normal_()
    reference.bias.normal_()
ours = layer_norm(x, reference.weight, reference.bias)
print(f"max |ours - torch.nn.LayerNorm|   = {(ours - reference(x)).abs().max():.1e}")
print(f"max |ours - F.layer_norm|         = "
      f"{(ours - F.layer_norm(x, (64,), reference.weight, reference.bias, 1e-5)).abs().max():.1e}")
plain = layer_norm(x, torch.ones(64), torch.zeros(64))
print(f"without gain and bias: feature mean {plain.mean(-1).abs().max():.1e}, "
      f"feature std {plain.std(-1, unbiased=False).mean():.4f}")

# %% [markdown]
# ## RMSNorm (Zhang and Sennrich, 2019)
#
# RMSNorm drops the mean subtraction and the bias, and divides by the root mean square instead:
#
# $$\mathrm{RMSNorm}(x) = \gamma \odot \frac{x}{\sqrt{\frac{1}{d}\sum_i x_i^2 + \epsilon}} .$$
#
# Zhang and Sennrich found that re-centring contributes little to what LayerNorm does for
# training, while computing one statistic instead of two saves time. Llama, Mistral and most
# recent models use it. We compare our version with PyTorch's and the course library's.

# %%
def rms_norm(x: torch.Tensor, gamma: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return gamma * x / torch.sqrt((x**2).mean(dim=-1, keepdim=True) + eps)


torch_rms = nn.RMSNorm(64, eps=1e-6)
course_rms = RMSNorm(64, eps=1e-6)
with torch.no_grad():
    torch_rms.weight.normal_()
    course_rms.weight.copy_(torch_rms.weight)
ours = rms_norm(x, torch_rms.weight)
print(f"max |ours - torch.nn.RMSNorm|       = {(ours - torch_rms(x)).abs().max():.1e}")
print(f"max |ours - shared.layers.RMSNorm|  = {(ours - course_rms(x)).abs().max():.1e}")
print("make_norm builds:", type(make_norm('layernorm', 64)).__name__, "and",
      type(make_norm('rmsnorm', 64)).__name__)

# %% [markdown]
# ## What each one removes
#
# Both layers forget the overall *scale* of their input: $\mathrm{LN}(a x) = \mathrm{LN}(x)$ and
# $\mathrm{RMSNorm}(a x) = \mathrm{RMSNorm}(x)$ for any $a > 0$ (up to $\epsilon$). LayerNorm also
# forgets a constant *shift* added to every feature; RMSNorm does not. Geometrically, without the
# affine part, LayerNorm projects $x$ onto the hyperplane of zero-mean vectors and then onto the
# sphere of radius $\sqrt{d}$ in it; RMSNorm only does the second step.

# %%
ones, zeros = torch.ones(64), torch.zeros(64)
v = torch.randn(64)


def gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


ln_v, rms_v = layer_norm(v, ones, zeros), rms_norm(v, ones)
print(f"scale x by 7:     LayerNorm changes by {gap(layer_norm(7 * v, ones, zeros), ln_v):.1e}, "
      f"RMSNorm by {gap(rms_norm(7 * v, ones), rms_v):.1e}")
print(f"shift x by +3:    LayerNorm changes by {gap(layer_norm(v + 3, ones, zeros), ln_v):.1e}, "
      f"RMSNorm by {gap(rms_norm(v + 3, ones), rms_v):.2f}")
print(f"output norm / sqrt(d): LayerNorm {layer_norm(v, ones, zeros).norm() / 8:.4f}, "
      f"RMSNorm {rms_norm(v, ones).norm() / 8:.4f}")

# %% [markdown]
# Scale invariance has a consequence for gradients that matters below. If the input is $a$ times
# larger, the output is the same, so the gradient flowing back through the norm is $a$ times
# *smaller*: $\partial\,\mathrm{LN}(x)/\partial x$ scales like $1/\sigma(x)$ (Exercise 1 derives
# the Jacobian).

# %% [markdown]
# ## Pre-norm and post-norm
#
# A block has two sub-layers $F$ (attention, then the feed-forward network), each wrapped in a
# residual connection. The two placements of the norm are
#
# $$\text{post-norm:}\quad x_{l+1} = \mathrm{LN}\big(x_l + F_l(x_l)\big), \qquad
# \text{pre-norm:}\quad x_{l+1} = x_l + F_l\big(\mathrm{LN}(x_l)\big),$$
#
# with one more LayerNorm after the last pre-norm block. In pre-norm the *residual stream* $x$ is
# never normalized: the sum $x_L = x_0 + \sum_l F_l(\cdot)$ gives the loss a direct, identity path
# to every layer, and $\partial x_L / \partial x_l = I + \dots$. In post-norm every path from the
# loss to layer $l$ crosses $L - l$ LayerNorms, each of which rescales the gradient by the
# inverse size of its input. Xiong et al. (2020) analysed the consequence at initialization (with
# the original transformer's initialization, post-norm's top layers get large gradients) and
# showed why post-norm needs a learning-rate warmup and pre-norm does not.
# `shared.models.TransformerBlock` implements both placements:

# %%
block_config = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=4, d_model=32)
h_in = torch.randn(2, 16, 32)
for position in ("pre", "post"):
    shared.seed_everything(0)
    block = TransformerBlock(GPTConfig(**{**block_config.to_dict(), "norm_position": position}))
    with torch.no_grad():
        out = block(h_in)
        if position == "pre":
            mid = h_in + block.attn(block.norm1(h_in))
            by_hand = mid + block.ffn(block.norm2(mid))
        else:
            mid = block.norm1(h_in + block.attn(h_in))
            by_hand = block.norm2(mid + block.ffn(mid))
    print(f"{position}-norm block: max |library - equation| = {(out - by_hand).abs().max():.1e}; "
          f"output feature std {out.std(-1).mean():.3f} (input {h_in.std(-1).mean():.3f})")

# %% [markdown]
# The post-norm block's output always has unit-size features; the pre-norm block passes its
# input through almost unchanged (the GPT-2 initialization makes each $F$ small) and adds to it.
#
# ## The experiment: a 12-layer stack without warmup
#
# We train three 12-layer character-level GPTs on tiny Shakespeare ($d_{model} = 32$, 4 heads,
# context 64, batch 16): pre-norm with LayerNorm, post-norm with LayerNorm, and pre-norm with
# RMSNorm. The settings are chosen to be unforgiving but ordinary: a constant learning rate of
# $2\times10^{-3}$ from the first step (no warmup) and no gradient clipping. Everything else,
# including the seed and the batches, is identical. A hook on every weight matrix records, at
# every step, the gradient norm of each block's matrices (its attention and feed-forward
# projections, where the features are learned; the norms' gains and the biases are left out).

# %%
L_CTX, N_LAYER = 64, 12
MAX_STEPS = 100  # 1000+ on a GPU shows the same split, with pre-norm much further down
data = shakespeare_char_data(L_CTX)
VARIANTS = {"pre-norm LayerNorm": ("pre", "layernorm"),
            "post-norm LayerNorm": ("post", "layernorm"),
            "pre-norm RMSNorm": ("pre", "rmsnorm")}


def record_block_gradients(model: GPT) -> list[list[float]]:
    """After every backward pass, append the gradient norm of each block's weight matrices to
    the returned list (one row per step, one entry per block)."""
    matrices = [[p for p in block.parameters() if p.dim() >= 2] for block in model.blocks]
    n_matrices = sum(len(m) for m in matrices)
    squares = torch.zeros(len(model.blocks))
    seen = [0]
    log: list[list[float]] = []

    def hook_for(layer: int):
        def hook(param: torch.Tensor) -> None:
            squares[layer] += param.grad.detach().pow(2).sum()
            seen[0] += 1
            if seen[0] == n_matrices:  # the last gradient of this backward pass
                log.append(squares.sqrt().tolist())
                squares.zero_()
                seen[0] = 0
        return hook

    for layer, block_matrices in enumerate(matrices):
        for param in block_matrices:
            param.register_post_accumulate_grad_hook(hook_for(layer))
    return log


runs = {}
for name, (position, norm) in VARIANTS.items():
    shared.seed_everything(0)
    model = GPT(GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=L_CTX, n_layer=N_LAYER,
                          n_head=4, d_model=32, norm=norm, norm_position=position))
    grad_log = record_block_gradients(model)
    config = TrainConfig(max_steps=MAX_STEPS, batch_size=16, block_size=L_CTX, lr=2e-3, min_lr=2e-3,
                         warmup_steps=0, grad_clip=0.0, eval_interval=25, eval_batches=10,
                         progress=False, log_interval=1)
    trainer = Trainer(model, data.train, data.val, config)
    history = trainer.fit()
    runs[name] = {"history": history, "grads": torch.tensor(grad_log)}
    print(f"{name:>20}: validation loss {history.val_loss[0]:.3f} -> {history.final_val_loss:.3f}")

# %% [markdown]
# What loss does a model reach that ignores context entirely and predicts character
# frequencies? That is the *unigram* entropy of the training text, a useful floor for "learned
# nothing beyond letter counts".

# %%
counts = torch.bincount(data.train, minlength=data.tokenizer.vocab_size).float()
probs = counts / counts.sum()
unigram = -(probs[probs > 0] * probs[probs > 0].log()).sum().item()
print(f"unigram entropy of the training text: {unigram:.3f} nats/character")

fig, ax = plt.subplots(figsize=(7, 4))
for name, run in runs.items():
    hist = run["history"]
    ax.plot(hist.steps, hist.train_loss, alpha=0.35, lw=0.8)
    ax.plot(hist.val_steps, hist.val_loss, marker="o", color=ax.lines[-1].get_color(), label=name)
ax.axhline(unigram, color="gray", ls="--", label="unigram entropy")
ax.set(xlabel="optimizer step", ylabel="loss (nats/token)", ylim=(2.4, 4.4),
       title="12-layer stacks, lr 2e-3 from step 0, no clipping")
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# Both pre-norm models move steadily below the unigram line, and their curves lie almost on top
# of each other: RMSNorm loses nothing against LayerNorm here. The post-norm model falls as fast
# as the others for the first steps, then stalls just above the unigram line: it has learned
# letter frequencies and nothing that depends on context. The gradient norms show why.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
layers = range(1, N_LAYER + 1)
for name, run in runs.items():
    grads = run["grads"]
    axes[0].plot(layers, grads[0], marker="o", label=name)
    axes[1].plot(layers, grads[-10:].mean(dim=0), marker="o", label=name)
axes[0].set(title="Gradient norm per block at step 1", xlabel="block (1 = nearest the input)",
            ylabel="gradient norm of the block's matrices", yscale="log")
axes[1].set(title=f"... averaged over steps {MAX_STEPS - 9}-{MAX_STEPS}",
            xlabel="block (1 = nearest the input)", ylabel="gradient norm of the block's matrices",
            yscale="log")
for ax in axes:
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

for name, run in runs.items():
    first, last = run["grads"][0], run["grads"][-10:].mean(dim=0)
    print(f"{name:>20}: step 1: blocks within {first.max() / first.min():.2f}x of each other | "
          f"last 10 steps: top block {last[-1]:.1e}, weakest block {last.min():.1e} "
          f"(block {last.argmin() + 1}), bottom block {last[0]:.1e}")
post = runs["post-norm LayerNorm"]["grads"]
print(f"post-norm, blocks 1-6: largest single-step gradient {post[20:, :6].max():.1e}, "
      f"median {post[20:, :6].median():.1e} (steps 21-{MAX_STEPS})")

# %%
fig, ax = plt.subplots(figsize=(9, 3.5))
heatmap(post.T.log10(), None, [str(i) for i in layers],
        "Post-norm: log10 gradient norm per block during training", xlabel="optimizer step",
        ylabel="block (1 = nearest the input)", colorbar_label="log10 gradient norm", ax=ax)
ax.invert_yaxis()
plt.show()

# %% [markdown]
# At step 1 every stack spreads its gradient evenly over its blocks. (Post-norm's is about 40
# times smaller throughout: its stream has unit-size features from the first block on, while
# pre-norm's stream keeps the small size of the embeddings and its final norm scales the
# gradient up by the inverse, the $1/\sigma$ effect above.) During training the post-norm stack
# changes character. The gradient reaching its middle and lower blocks falls tens of times
# below that of its top block, and now and then a burst arrives instead (the bright stripes of
# the heatmap): the lower half of the network receives either almost nothing or a sudden kick.
# The pre-norm stacks keep a steady gradient at every depth, largest near the input, where the
# identity path delivers it undiminished. This is the instability that warmup was invented to
# manage: early large updates push a post-norm stack into a state where the LayerNorms shrink
# the backward signal, and the shrinkage compounds over the layers.
#
# Three remedies are standard, and the course library's default uses the second:
#
# - **Warmup** (Vaswani et al., 2017; analysed by Xiong et al., 2020): start with a tiny learning
#   rate so the first updates cannot derail the stack.
# - **Pre-norm** (GPT-2; Xiong et al., 2020): keep an un-normalized residual stream so the
#   identity path carries gradient to every layer; a final norm before the output head.
# - **DeepNorm** (Wang et al., 2022): keep post-norm's normalization but up-weight the residual,
#   $x_{l+1} = \mathrm{LN}(\alpha x_l + F_l(x_l))$ with $\alpha > 1$, and shrink the
#   initialization of $F$; this trained post-norm transformers with 1,000 layers. Exercise 2
#   builds the block.
#
# RMSNorm behaved like LayerNorm here, at less cost per call, which is why it replaced LayerNorm
# in most recent models.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The Jacobian of LayerNorm
#
# For LayerNorm without gain and bias, $y = (x - \mu)/\sigma$ with $\sigma = \sqrt{\mathrm{var}(x)
# + \epsilon}$, the Jacobian is
#
# $$\frac{\partial y}{\partial x} = \frac{1}{\sigma}\Big(I - \frac{1}{d}\mathbf{1}\mathbf{1}^\top
# - \frac{1}{d}\,y\,y^\top\Big)$$
#
# (exact when $\epsilon = 0$). Write `layer_norm_jacobian(x, eps)` for a 1-D `x` returning this
# $d \times d$ matrix, with $\sigma$ computed including `eps`. The check compares it with
# `torch.autograd.functional.jacobian` and verifies the $1/\sigma$ scaling: the Jacobian at
# $10x$ is a tenth of the one at $x$.

# %% tags=["solution"]
def layer_norm_jacobian(x: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """d LN(x) / dx for a 1-D x, LayerNorm without gain and bias."""
    # BEGIN SOLUTION
    d = x.shape[0]
    sigma = torch.sqrt(x.var(unbiased=False) + eps)
    y = (x - x.mean()) / sigma
    return (torch.eye(d) - torch.ones(d, d) / d - torch.outer(y, y) / d) / sigma
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_shape, passed

x_test = torch.randn(16, dtype=torch.float64)
auto = torch.autograd.functional.jacobian(lambda t: F.layer_norm(t, (16,), eps=0.0), x_test)
J = layer_norm_jacobian(x_test)
check_shape(J, (16, 16), "layer_norm_jacobian")
check_close(J, auto, "layer_norm_jacobian vs autograd", atol=1e-8)
check_close(layer_norm_jacobian(10 * x_test), J / 10, "Jacobian at 10x vs Jacobian at x / 10",
            atol=1e-8)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A DeepNorm block
#
# DeepNorm (Wang et al., 2022) changes post-norm's residual to $\mathrm{LN}(\alpha x + F(x))$.
# For a decoder-only model with $N$ layers the paper sets $\alpha = (2N)^{1/4}$ and scales the
# initialization of the value, output and feed-forward weights by $\beta = (8N)^{-1/4}$.
# Write `deepnorm_constants(n_layer)` returning `(alpha, beta)`, and complete the `forward` of
# `DeepNormBlock`, a post-norm `TransformerBlock` whose two residual additions use `self.alpha`.
# The check compares your block with the equations on a random input, and with alpha = 1 with
# the library's post-norm block.

# %% tags=["solution"]
def deepnorm_constants(n_layer: int) -> tuple[float, float]:
    """(alpha, beta) of DeepNorm for a decoder-only stack of n_layer blocks."""
    # BEGIN SOLUTION
    return (2 * n_layer) ** 0.25, (8 * n_layer) ** -0.25
    # END SOLUTION


class DeepNormBlock(TransformerBlock):
    """Post-norm block with an up-weighted residual: x <- LN(alpha * x + F(x))."""

    def __init__(self, config: GPTConfig, alpha: float) -> None:
        super().__init__(config)
        self.alpha = alpha

    def forward(self, x: torch.Tensor, **attn_kwargs) -> torch.Tensor:
        # BEGIN SOLUTION
        x = self.norm1(self.alpha * x + self.attn(x, **attn_kwargs))
        return self.norm2(self.alpha * x + self.ffn(x))
        # END SOLUTION


# %% tags=["check"]
alpha_12, beta_12 = deepnorm_constants(12)
check_close(alpha_12, 24**0.25, "alpha for 12 layers")
check_close(beta_12, 96**-0.25, "beta for 12 layers")
post_config = GPTConfig(**{**block_config.to_dict(), "norm_position": "post"})
shared.seed_everything(1)
deep_block = DeepNormBlock(post_config, alpha=2.5)
with torch.no_grad():
    mid = deep_block.norm1(2.5 * h_in + deep_block.attn(h_in))
    expected = deep_block.norm2(2.5 * mid + deep_block.ffn(mid))
    check_close(deep_block(h_in), expected, "DeepNormBlock(alpha=2.5)", atol=1e-5)
    deep_block.alpha = 1.0
    library_block = TransformerBlock(post_config)
    library_block.load_state_dict(deep_block.state_dict())
    check_close(deep_block(h_in), library_block(h_in), "DeepNormBlock(alpha=1) vs post-norm block",
                atol=1e-5)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Normalizing over the batch instead
#
# BatchNorm computes the mean and variance of each feature over all tokens of the batch, not over
# the features of one token. Write `batch_norm_statistics(x, eps)` for `x` of shape
# `(batch, tokens, features)`, normalizing every feature with the mean and (biased) variance over
# the first two axes, no gain or bias. The check compares it with `torch.nn.BatchNorm1d` in
# training mode, then shows the property that rules it out for language models: the output for
# one sequence changes when a *different* sequence in the batch changes, which LayerNorm's does
# not. Set `bn_changes` and `ln_changes` to the largest change in sequence 0's output when
# sequence 1 is replaced by random numbers, under your batch norm and under `F.layer_norm`.

# %% tags=["solution"]
def batch_norm_statistics(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalize each feature of x (batch, tokens, features) over batch and tokens."""
    # BEGIN SOLUTION
    mean = x.mean(dim=(0, 1), keepdim=True)
    var = x.var(dim=(0, 1), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)
    # END SOLUTION


batch = torch.randn(4, 10, 8)
changed = batch.clone()
changed[1] = 5 * torch.randn(10, 8)
bn_changes = None
ln_changes = None
# BEGIN SOLUTION
bn_changes = (batch_norm_statistics(batch)[0]
              - batch_norm_statistics(changed)[0]).abs().max().item()
ln_changes = (F.layer_norm(batch, (8,))[0] - F.layer_norm(changed, (8,))[0]).abs().max().item()
# END SOLUTION
print("largest change of sequence 0:", bn_changes, "(batch norm),", ln_changes, "(layer norm)")

# %% tags=["check"]
bn = nn.BatchNorm1d(8, affine=False, eps=1e-5).train()
torch_out = bn(batch.reshape(-1, 8)).reshape(4, 10, 8)
check_close(batch_norm_statistics(batch), torch_out, "batch_norm_statistics vs BatchNorm1d",
            atol=1e-5)
check(bn_changes is not None and bn_changes > 0.1, "bn_changes",
      "a visible change (> 0.1) in sequence 0 under batch norm")
check(ln_changes is not None and ln_changes < 1e-6, "ln_changes",
      "no change (< 1e-6) in sequence 0 under layer norm")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - LayerNorm subtracts each token's feature mean and divides by its standard deviation, then
#   applies a gain and a bias; RMSNorm divides by the root mean square only. Both match
#   PyTorch's and the library's layers to float precision.
# - Both are invariant to the scale of their input, so the gradient through them shrinks as the
#   input grows ($\propto 1/\sigma$); LayerNorm is also invariant to a shift.
# - Post-norm normalizes the residual stream after every sub-layer; pre-norm leaves the stream
#   alone and normalizes each sub-layer's input, keeping an identity path for the gradient.
# - In a 12-layer stack trained without warmup, post-norm stalled at the unigram loss while its
#   lower blocks' gradients collapsed by orders of magnitude; both pre-norm stacks trained.
#   Warmup, pre-norm and DeepNorm are the three standard remedies.
#
# Next: [residual connections](08-residual-connections), the other half of that identity path.
#
# ## References
#
# - J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer normalization", 2016.
#   https://arxiv.org/abs/1607.06450
# - B. Zhang, R. Sennrich, "Root mean square layer normalization", NeurIPS 2019.
#   https://arxiv.org/abs/1910.07467
# - R. Xiong et al., "On layer normalization in the transformer architecture", ICML 2020.
#   https://arxiv.org/abs/2002.04745
# - H. Wang et al., "DeepNet: Scaling transformers to 1,000 layers", 2022.
#   https://arxiv.org/abs/2203.00555
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - L. Liu et al., "Understanding the difficulty of training transformers", EMNLP 2020.
#   https://arxiv.org/abs/2004.08249
# - L. Mao, "Layer normalization" (blog post, derivations).
#   https://leimao.github.io/blog/Layer-Normalization/
