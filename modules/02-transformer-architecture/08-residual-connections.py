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
# # Residual connections: the residual stream and deep networks
#
# A transformer block never replaces its input; it adds to it: $x \leftarrow x + F(x)$. This one
# addition, taken from ResNets (He et al., 2016), is what lets gradients reach the first layer of
# a 30-, 80- or 120-layer model, and it changes how one should picture the network: a single
# *residual stream* that every attention head and feed-forward layer reads from and writes
# into (Elhage et al., 2021). This notebook measures both sides. First, gradient magnitudes layer
# by layer in a 32-layer network with and without residual connections, at initialization and
# after training, and what weighting the residual branches (scaled branches, ReZero) changes.
# Second, the residual stream of a real 30-layer language model, SmolLM2-135M: how it grows,
# how its final prediction decomposes into the contributions of individual layers, and at which
# depth the answer appears.
#
# **Learning objectives**
# - Explain, with the chain rule, why a residual connection keeps gradients from vanishing with
#   depth, and measure per-layer gradient norms with and without one.
# - Compare plain networks (default and He initialization), residual networks with unit and
#   scaled branches, and ReZero on the same task.
# - Describe the residual-stream view of a transformer and decompose a real model's output into
#   per-layer contributions that sum to it exactly.
# - Read a logit-lens profile: at which layer a model's prediction forms.
#
# **Prerequisites:** [Layer normalization](07-layer-normalization) (pre-norm blocks and their
# identity path); [PyTorch and autograd](../00-foundations/04-pytorch-and-autograd) for
# gradients and hooks.
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
import transformers
from torch import nn

import shared
from shared.data import shakespeare_char_data
from shared.training import TrainConfig, Trainer

# The models here are small: one thread avoids the cost of coordinating several.
torch.set_num_threads(1)
transformers.logging.disable_progress_bar()  # no weight-loading progress bar in the output
shared.seed_everything(0)
print(shared.environment_summary("torch", "transformers", "matplotlib"))

# %% [markdown]
# ## Why depth needs a shortcut
#
# Stack $L$ layers, $x_{l+1} = F_l(x_l)$. By the chain rule the gradient reaching layer $l$ is a
# product of $L - l$ Jacobians,
#
# $$\frac{\partial \mathcal{L}}{\partial x_l} = \frac{\partial \mathcal{L}}{\partial x_L}
# \prod_{k=l}^{L-1} \frac{\partial F_k}{\partial x_k},$$
#
# and a product of many factors shrinks or grows exponentially unless every factor is tuned
# to size one. A residual connection changes each factor to the identity plus a correction:
#
# $$x_{l+1} = x_l + F_l(x_l) \quad\Longrightarrow\quad
# \frac{\partial x_{l+1}}{\partial x_l} = I + \frac{\partial F_l}{\partial x_l},$$
#
# so expanding the product always leaves a term $I$: a path along which the gradient arrives
# unchanged, however deep the network (Exercise 1 checks this on a linear stack).
#
# ## The experiment: a 32-layer network, five ways
#
# The task is next-character prediction on tiny Shakespeare from the previous 8 characters: each
# character is embedded in 8 dimensions, the 8 embeddings are concatenated into a 64-vector,
# and 32 layers of width 64 (a linear map and a ReLU each) transform it before a linear output
# head. An MLP keeps the experiment fast and the layers simple; a transformer block behaves the
# same way, since it wraps each sub-layer in the same addition. We build five variants:
#
# | variant | layer update | initialization |
# |---|---|---|
# | plain | $x \leftarrow \mathrm{ReLU}(Wx + b)$ | PyTorch default |
# | plain, He init | $x \leftarrow \mathrm{ReLU}(Wx + b)$ | He et al. (2015), variance-preserving for ReLU |
# | residual | $x \leftarrow x + \mathrm{ReLU}(Wx + b)$ | PyTorch default |
# | residual, scaled | $x \leftarrow x + \tfrac{1}{\sqrt{L}}\,\mathrm{ReLU}(Wx + b)$ | PyTorch default |
# | ReZero | $x \leftarrow x + \alpha_l\,\mathrm{ReLU}(Wx + b)$, $\alpha_l$ learned, starts at 0 | PyTorch default |

# %%
CONTEXT, WIDTH, DEPTH = 8, 64, 32
data = shakespeare_char_data(CONTEXT)
VOCAB = data.tokenizer.vocab_size


class DeepMLP(nn.Module):
    """DEPTH layers of width WIDTH on the concatenated embeddings of CONTEXT characters."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant
        self.embed = nn.Embedding(VOCAB, WIDTH // CONTEXT)
        self.layers = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH))
        if variant == "plain, He init":
            for layer in self.layers:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        self.gains = nn.Parameter(torch.zeros(DEPTH)) if variant == "ReZero" else None
        self.head = nn.Linear(WIDTH, VOCAB)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """What the output head receives: the input after all DEPTH layers."""
        x = self.embed(idx).flatten(1)
        for i, layer in enumerate(self.layers):
            branch = F.relu(layer(x))
            if self.variant.startswith("plain"):
                x = branch
            elif self.variant == "residual":
                x = x + branch
            elif self.variant == "residual, scaled":
                x = x + branch / DEPTH**0.5
            else:  # ReZero
                x = x + self.gains[i] * branch
        return x

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(idx))


def next_char_loss(model: nn.Module, batch) -> torch.Tensor:
    """Cross-entropy of predicting the character after each window of CONTEXT characters."""
    inputs, targets = batch
    return F.cross_entropy(model(inputs), targets[:, -1])


def layer_gradient_norms(model: DeepMLP, batch) -> torch.Tensor:
    """Gradient norm of each layer's weight matrix for one batch."""
    model.zero_grad()
    next_char_loss(model, batch).backward()
    norms = torch.stack([layer.weight.grad.norm() for layer in model.layers])
    model.zero_grad()
    return norms


VARIANTS = ["plain", "plain, He init", "residual", "residual, scaled", "ReZero"]
probe_batch = (data.val[: 256 * CONTEXT].view(256, CONTEXT),
               data.val[1 : 256 * CONTEXT + 1].view(256, CONTEXT))

# %% [markdown]
# ### At initialization
#
# Before any training: the gradient norm of each layer's weight matrix on one batch of
# validation text, and the size of the activations the output head receives.

# %%
models, init_grads = {}, {}
for variant in VARIANTS:
    shared.seed_everything(0)
    models[variant] = DeepMLP(variant)
    init_grads[variant] = layer_gradient_norms(models[variant], probe_batch)
    with torch.no_grad():
        features = models[variant].features(probe_batch[0])
    g = init_grads[variant]
    print(f"{variant:>17}: grad norm layer 1 {g[0]:.1e}, layer 16 {g[15]:.1e}, "
          f"layer 32 {g[-1]:.1e}; output features std {features.std():.2e}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for variant in VARIANTS[:-1]:  # ReZero's are exactly zero at initialization (alpha = 0)
    ax.plot(range(1, DEPTH + 1), init_grads[variant], marker="o", markersize=3, label=variant)
ax.set(yscale="log", xlabel="layer (1 = nearest the input)", ylabel="gradient norm of the weights",
       title="Per-layer gradient norms at initialization (32 layers)")
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# Three different failures and one success:
#
# - **plain**, PyTorch's default initialization: each layer shrinks its input (weights of
#   variance $1/(3 \cdot 64)$, and ReLU drops half the signal), so both the activations and the
#   gradients decay geometrically. The first layer's gradient is about twelve orders of magnitude
#   below the last's: it cannot learn.
# - **plain, He init**: weights of variance $2/\text{fan-in}$ exactly compensate ReLU, and the
#   gradients are of one size across layers. Careful initialization fixes the scale, at
#   initialization.
# - **residual** with unit branches: the identity path keeps every layer connected, but each
#   layer *adds* a positive term, so the activations grow with depth and the gradients are in
#   the hundreds and thousands.
# - **residual, scaled** by $1/\sqrt{L}$: the stream's variance grows by a bounded factor over the
#   whole stack (Exercise 2), and the gradients are moderate and even. GPT-2 does the same thing
#   by initializing each block's output projections with standard deviation
#   $0.02/\sqrt{2 n_{layer}}$, as `shared.models` does.
# - **ReZero** (Bachlechner et al., 2020): every layer starts as the identity, so the layers'
#   gradients are exactly zero at first; only the gates $\alpha_l$ (and the embedding and head)
#   receive gradient, and the layers switch on as the gates open (Exercise 3).
#
# ### After training
#
# Now we train all five for 300 AdamW steps of 128 windows with `shared.training` (constant
# learning rate $10^{-3}$, no warmup, no clipping, the same seed and batches), then measure the
# per-layer gradients again.

# %%
MAX_STEPS = 300  # 3000 on a GPU: the ranking stays, the gaps grow
histories, final_grads = {}, {}
for variant in VARIANTS:
    config = TrainConfig(max_steps=MAX_STEPS, batch_size=128, block_size=CONTEXT, lr=1e-3,
                         min_lr=1e-3, warmup_steps=0, grad_clip=0.0, eval_interval=25,
                         eval_batches=10, progress=False)
    trainer = Trainer(models[variant], data.train, data.val, config, loss_fn=next_char_loss)
    histories[variant] = trainer.fit()
    final_grads[variant] = layer_gradient_norms(models[variant], probe_batch)
    print(f"{variant:>17}: validation loss {histories[variant].val_loss[0]:8.3f} -> "
          f"{histories[variant].final_val_loss:.3f}")
gates = models["ReZero"].gains.detach()
print(f"ReZero gates after training: min {gates.min():.3f}, mean {gates.mean():.3f}, "
      f"max {gates.max():.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
for variant in VARIANTS:
    h = histories[variant]
    axes[0].plot(h.val_steps, h.val_loss, marker="o", markersize=3, label=variant)
    axes[1].plot(range(1, DEPTH + 1), final_grads[variant], marker="o", markersize=3, label=variant)
axes[0].set(ylim=(2.6, 4.6), xlabel="optimizer step", ylabel="validation loss (nats/character)",
            title="Training 32-layer networks (residual's first point is off the scale)")
axes[1].set(yscale="log", xlabel="layer (1 = nearest the input)",
            ylabel="gradient norm of the weights",
            title=f"Per-layer gradient norms after {MAX_STEPS} steps")
for ax in axes:
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The plain network with default initialization never leaves the plateau of predicting letter
# frequencies, and its lower layers still receive essentially no gradient. He initialization
# lets the plain network start, but it learns slowly: a correct scale at initialization does not
# make a deep product of Jacobians easy to optimize, the "degradation" He et al. (2016) observed
# in plain networks deeper than about 20 layers. Unit residual branches start with exploding
# activations (the first validation loss is over a thousand) and recover only partly within the
# budget. The scaled residual network and ReZero train best, with gradients of similar size at
# every depth. The recipe of modern transformers is the same: keep the identity path and keep
# the branches small at the start.

# %% [markdown]
# ## The residual stream of a real model
#
# In a pre-norm transformer the identity path is the main road. Unrolled over all blocks,
#
# $$x_L = x_0 + \sum_{l=1}^{L} \big(\mathrm{attn}_l + \mathrm{mlp}_l\big),$$
#
# the final vector is the token embedding plus everything every sub-layer wrote. Elhage et al.
# (2021) call $x$ the residual stream: a shared memory that each sub-layer reads (through its own
# norm and projections) and writes to (by addition). Nothing is ever overwritten, only added.
# We look at it in SmolLM2-135M-Instruct, a real 30-layer Llama-style model (pre-norm, RMSNorm,
# SwiGLU, RoPE) that the course ships offline (`shared.assets`; its weights come from a 4-bit
# GGUF checkpoint, dequantized to fp32), and record what every sub-layer adds with forward
# hooks.

# %%
from shared import assets

chat_model = assets.chat_model().eval()
chat_tokenizer = assets.chat_tokenizer()
decoder = chat_model.model
n_layers = len(decoder.layers)
print(f"SmolLM2-135M-Instruct ({assets.asset_info('SmolLM2-135M-Instruct')['source']}): "
      f"{n_layers} layers, d_model {chat_model.config.hidden_size}, "
      f"{sum(p.numel() for p in chat_model.parameters()):,} parameters")

writes: dict[str, torch.Tensor] = {}
hooks = [decoder.embed_tokens.register_forward_hook(lambda m, i, out: writes.update(embed=out))]
for block_number, layer in enumerate(decoder.layers, start=1):  # blocks numbered from 1
    hooks.append(layer.self_attn.register_forward_hook(
        lambda m, i, out, b=block_number: writes.update({f"attn {b}": out[0]})))
    hooks.append(layer.mlp.register_forward_hook(
        lambda m, i, out, b=block_number: writes.update({f"mlp {b}": out})))

prompt = "The capital of France is"
ids = chat_tokenizer(prompt, return_tensors="pt").input_ids
with torch.no_grad():
    logits = chat_model(ids).logits[0, -1]
for hook in hooks:
    hook.remove()
answer = int(logits.argmax())
print(f"prompt {prompt!r} -> next token {chat_tokenizer.decode([answer])!r} "
      f"(p = {logits.softmax(-1)[answer]:.2f})")

# %% [markdown]
# First the bookkeeping: the embedding plus all 60 writes must add up to the stream that enters
# the final norm, and the final norm and output head applied to that sum must give the model's
# logits.

# %%
blocks = range(1, n_layers + 1)
names = ["embed"] + [f"{kind} {b}" for b in blocks for kind in ("attn", "mlp")]
streams = [writes["embed"]]  # the stream after the embedding and after each block
for b in blocks:
    streams.append(streams[-1] + writes[f"attn {b}"] + writes[f"mlp {b}"])
final_stream = streams[-1]
with torch.no_grad():
    rebuilt = chat_model.lm_head(decoder.norm(final_stream))[0, -1]
stream_size = final_stream[0, -1].norm()
print(f"stream size at the last position: {stream_size:.1f}")
print(f"max |logits from the summed writes - model logits| = {(rebuilt - logits).abs().max():.1e}")

# %% [markdown]
# The stream grows as the layers write into it: on average it ends up hundreds of times larger
# than the token embedding. The first block replaces the tiny embedding almost entirely; after
# that, most blocks only turn the stream slightly (the cosine between the stream before and
# after a block, here at the last position, has a median near 0.97), with a few larger turns
# late in the stack. Position 0 is left out of the averages: as in many models, the first
# token's stream becomes far larger than the others (the "attention sink" effect).

# %%
with torch.no_grad():
    size = torch.stack([s[0, 1:].norm(dim=-1).mean() for s in streams])
    attn_size = torch.stack([writes[f"attn {b}"][0, 1:].norm(dim=-1).mean() for b in blocks])
    mlp_size = torch.stack([writes[f"mlp {b}"][0, 1:].norm(dim=-1).mean() for b in blocks])
    turn = torch.stack([F.cosine_similarity(streams[i][0, -1], streams[i + 1][0, -1], dim=0)
                        for i in range(n_layers)])
print(f"stream size (positions 1-{ids.shape[1] - 1}): embedding {size[0]:.1f}, after block 1 "
      f"{size[1]:.1f}, after block {n_layers} {size[-1]:.1f}; position 0 after block "
      f"{n_layers}: {streams[-1][0, 0].norm():.0f}")
print(f"cosine between the stream before and after a block (last position): median "
      f"{turn.median():.3f}, min {turn.min():.3f} (block {int(turn.argmin()) + 1})")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].plot(range(n_layers + 1), size, marker="o", markersize=3, label="stream")
axes[0].plot(blocks, attn_size, marker="s", markersize=3, label="attention write")
axes[0].plot(blocks, mlp_size, marker="^", markersize=3, label="MLP write")
axes[0].set(yscale="log", xlabel="block (0 = embedding)", ylabel="mean L2 norm",
            title="Residual stream and what each sub-layer adds")
axes[1].plot(blocks, turn, marker="o", markersize=3)
axes[1].set(xlabel="block", ylabel="cosine(stream before, stream after)",
            title="How far each block turns the stream (last position)")
for ax in axes:
    ax.grid(True, alpha=0.3)
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Who wrote the answer?
#
# Because the stream is a sum, the logit of the answer decomposes into one term per write. The
# final RMSNorm divides the whole stream by one number, its root mean square $r$, and multiplies
# by a gain $\gamma$; holding $r$ at its actual value, the logit of token $t$ is exactly
#
# $$\mathrm{logit}_t = \sum_{c \,\in\, \text{writes}} \frac{(\gamma \odot c) \cdot u_t}{r},$$
#
# with $u_t$ the output embedding of $t$ (direct logit attribution, Elhage et al., 2021). The
# terms must add up to the model's logit.

# %%
with torch.no_grad():
    last = final_stream[0, -1]
    rms = torch.sqrt(last.pow(2).mean() + decoder.norm.variance_epsilon)
    direction = decoder.norm.weight * chat_model.lm_head.weight[answer] / rms
    contributions = torch.stack([writes[name][0, -1] @ direction for name in names])
print(f"sum of contributions {contributions.sum():.3f} vs the model's logit {logits[answer]:.3f}")
top = contributions.abs().topk(5).indices.tolist()
print("largest contributions:", ", ".join(f"{names[i]} {contributions[i]:+.2f}" for i in top))

fig, ax = plt.subplots(figsize=(12, 3.8))
layer_index = torch.arange(1, n_layers + 1)
ax.bar(layer_index - 0.2, contributions[1::2], width=0.4, label="attention")
ax.bar(layer_index + 0.2, contributions[2::2], width=0.4, label="MLP")
ax.axhline(0, color="black", lw=0.5)
ax.set(xlabel="block", ylabel=f"contribution to the logit of {chat_tokenizer.decode([answer])!r}",
       title=f"Direct logit attribution for {prompt!r} (embedding: {contributions[0]:+.2f})")
ax.grid(True, axis="y", alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# ### The logit lens: when does the answer appear?
#
# Reading the stream at an intermediate depth through the final norm and output head (the
# "logit lens") shows what the model would predict if it stopped there.

# %%
with torch.no_grad():
    ranks = []
    for stream in streams:
        lens_logits = chat_model.lm_head(decoder.norm(stream[0, -1]))
        ranks.append(int((lens_logits > lens_logits[answer]).sum()))
print("rank of the final answer after each block:", ranks)

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(range(n_layers + 1), [r + 1 for r in ranks], marker="o", markersize=3)
ax.set(yscale="log", xlabel="block (0 = embedding)",
       ylabel=f"rank of {chat_tokenizer.decode([answer])!r} (1 = top)",
       title="Logit lens: the answer forms in the last blocks")
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# The answer sits thousands of ranks down for most of the depth and climbs to the top only in
# the last few blocks, the same blocks whose writes carry the largest contributions above. The
# earlier blocks build the context that those late writes rely on; the stream carries all of it
# forward by addition.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The Jacobian of a linear stack
#
# For linear layers $F_l(x) = A_l x$, a plain stack computes $x_L = A_L \cdots A_1 x_0$ and a
# residual stack $x_L = (I + A_L) \cdots (I + A_1)\, x_0$. Write `stack_jacobian(As, residual)`
# returning $\partial x_L / \partial x_0$ for a list of square matrices `As` (applied in list
# order). The check compares it with `torch.autograd.functional.jacobian` and then looks at 30
# random layers with small weights: the plain stack's Jacobian vanishes, the residual one's
# does not.

# %% tags=["solution"]
def stack_jacobian(As: list[torch.Tensor], residual: bool) -> torch.Tensor:
    """d x_L / d x_0 for x <- A x (plain) or x <- x + A x (residual), layers in list order."""
    # BEGIN SOLUTION
    d = As[0].shape[0]
    jacobian = torch.eye(d, dtype=As[0].dtype)
    for A in As:
        step = torch.eye(d, dtype=A.dtype) + A if residual else A
        jacobian = step @ jacobian
    return jacobian
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, passed

torch.manual_seed(1)
As = [0.3 * torch.randn(6, 6, dtype=torch.float64) for _ in range(4)]
x0 = torch.randn(6, dtype=torch.float64)


def run_stack(x, residual):
    for A in As:
        x = x + A @ x if residual else A @ x
    return x


for residual in (False, True):
    auto = torch.autograd.functional.jacobian(lambda x: run_stack(x, residual), x0)
    check_close(stack_jacobian(As, residual), auto, f"stack_jacobian(residual={residual})",
                atol=1e-10)
deep = [0.05 * torch.randn(16, 16, dtype=torch.float64) for _ in range(30)]
check(stack_jacobian(deep, residual=False).norm() < 1e-6, "plain 30-layer Jacobian",
      "a vanishing Jacobian (norm < 1e-6) for 30 layers of small weights")
check(stack_jacobian(deep, residual=True).norm() > 1.0, "residual 30-layer Jacobian",
      "a Jacobian that keeps its size (norm > 1) thanks to the identity terms")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: How much does the stream grow?
#
# Model each branch output as a fresh random vector with independent unit-variance entries,
# independent of the stream: $x_{l+1} = x_l + \alpha\, \epsilon_l$, starting from unit-variance
# $x_0$. Write `stream_std(n_branches, alpha)`, the standard deviation of the entries of the
# stream after `n_branches` additions, and `alpha_for(n_branches, final_std)`, the branch weight
# that makes it end at `final_std`. The check simulates the stream, and checks the GPT-2 rule:
# with $\alpha = 1/\sqrt{n}$, the final standard deviation is $\sqrt{2}$ for any depth.

# %% tags=["solution"]
def stream_std(n_branches: int, alpha: float) -> float:
    """Std of x_0 + alpha * (sum of n_branches independent unit-variance branches)."""
    # BEGIN SOLUTION
    return (1 + n_branches * alpha**2) ** 0.5
    # END SOLUTION


def alpha_for(n_branches: int, final_std: float) -> float:
    """Branch weight that makes the stream's std equal final_std after n_branches additions."""
    # BEGIN SOLUTION
    return ((final_std**2 - 1) / n_branches) ** 0.5
    # END SOLUTION


# %% tags=["check"]
generator = torch.Generator().manual_seed(0)
for n, alpha in [(10, 1.0), (64, 0.25), (200, 0.1)]:
    simulated = (torch.randn(20000, generator=generator)
                 + alpha * torch.randn(n, 20000, generator=generator).sum(0)).std().item()
    check_close(stream_std(n, alpha), simulated, f"stream_std({n}, {alpha})", rtol=0.03)
for n in (12, 48, 96):
    check_close(stream_std(n, n**-0.5), 2**0.5, f"stream_std({n}, 1/sqrt({n}))")
    check_close(alpha_for(n, 2**0.5), n**-0.5, f"alpha_for({n}, sqrt(2))")
check_close(alpha_for(24, 3.0), (8 / 24) ** 0.5, "alpha_for(24, 3)")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: What ReZero trains first
#
# With all gates at zero, a ReZero network is the identity between its embedding and its head.
# Write `parameters_with_gradient(model, batch)` returning the sorted list of parameter names
# (as in `model.named_parameters()`) whose gradient is not all zeros after one backward pass of
# `next_char_loss`. Then set `rezero_first` to its result for a freshly built ReZero `DeepMLP`,
# on `probe_batch`. The check also runs your function on the other variants.

# %% tags=["solution"]
def parameters_with_gradient(model: nn.Module, batch) -> list[str]:
    """Names of the parameters that receive a non-zero gradient from one batch."""
    # BEGIN SOLUTION
    model.zero_grad()
    next_char_loss(model, batch).backward()
    names = [name for name, p in model.named_parameters()
             if p.grad is not None and bool(p.grad.abs().sum() > 0)]
    model.zero_grad()
    return sorted(names)
    # END SOLUTION


rezero_first = None
# BEGIN SOLUTION
shared.seed_everything(0)
rezero_first = parameters_with_gradient(DeepMLP("ReZero"), probe_batch)
# END SOLUTION
print(rezero_first)

# %% tags=["check"]
check_equal(rezero_first, ["embed.weight", "gains", "head.bias", "head.weight"], "rezero_first")
shared.seed_everything(0)
scaled_names = parameters_with_gradient(DeepMLP("residual, scaled"), probe_batch)
check_equal(len(scaled_names), 2 * DEPTH + 3,
            "number of parameters with gradient (scaled residual)")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - A residual connection turns every factor of the backward product into $I + J_l$, so the
#   gradient always has an undiminished path to every layer.
# - In a 32-layer network the plain stack's first-layer gradient was about twelve orders of
#   magnitude below its last layer's at initialization; He initialization fixed the scale but
#   the plain stack still trained slowly; unit residual branches exploded at first; residual
#   branches scaled by $1/\sqrt{L}$ and ReZero's zero-initialized gates trained best.
# - Transformers follow the same recipe: an identity path (pre-norm) and small branches at
#   initialization (GPT-2's $1/\sqrt{2 n_{layer}}$ output projections, ReZero, DeepNet's scaled
#   residuals).
# - In a real 30-layer model the residual stream is the sum of the embedding and 60 sub-layer
#   writes, exactly; the answer's logit splits into per-layer contributions, and the logit lens
#   shows the answer forming in the last few blocks.
#
# Next: Module 03, [data and tokenization](../03-data-and-tokenization/01-data-collection), the
# other end of the pipeline.
#
# ## References
#
# - K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition", CVPR 2016.
#   https://arxiv.org/abs/1512.03385
# - K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers: Surpassing human-level
#   performance on ImageNet classification", ICCV 2015. https://arxiv.org/abs/1502.01852
# - N. Elhage et al., "A mathematical framework for transformer circuits", Anthropic, 2021.
#   https://transformer-circuits.pub/2021/framework/index.html
# - T. Bachlechner et al., "ReZero is all you need: Fast convergence at large depth", 2020.
#   https://arxiv.org/abs/2003.04887
# - H. Wang et al., "DeepNet: Scaling transformers to 1,000 layers", 2022.
#   https://arxiv.org/abs/2203.00555
# - nostalgebraist, "interpreting GPT: the logit lens", LessWrong, 2020.
#   https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru/interpreting-gpt-the-logit-lens
# - A. Radford et al., "Language models are unsupervised multitask learners" (GPT-2), 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - The AI Summer, "Skip connections in deep learning". https://theaisummer.com/skip-connections/
