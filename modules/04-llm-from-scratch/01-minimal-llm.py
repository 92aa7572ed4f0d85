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
# # A minimal GPT in one screen of PyTorch
#
# Every large language model of the GPT family is the same short program: look up a vector for
# each token, add a vector for its position, pass the sequence through a stack of identical
# blocks (causal self-attention, then a small MLP, each on a residual connection), normalise, and
# multiply by the embedding matrix again to score every token of the vocabulary. GPT-2 and
# nanoGPT fit in a few hundred lines; the core fits on one screen. This notebook writes that
# screen, runs it, counts its parameters, initialises it the way GPT-2 does and shows by
# measurement why, profiles the memory each layer needs, and finally loads the same weights
# into the course library's `shared.models.GPT` to show that both produce the same numbers.
# Every later module uses the library version; after this notebook it holds no secrets.
#
# **Learning objectives**
# - Write a GPT-2-style decoder (token and position embeddings, causal multi-head attention,
#   MLP, pre-norm residual blocks, final norm, tied output head) and trace a forward pass
#   shape by shape.
# - Count its parameters with the formula $12 L d^2 + 13 L d + (V + T_{max}) d + 2d$ and check it
#   against the model, up to GPT-2 XL.
# - Explain GPT-2's initialisation (normal with std 0.02, residual projections scaled by
#   $1/\sqrt{2L}$) and verify it: the loss at initialisation is close to $\ln V$, and the residual
#   stream stops growing with depth.
# - Measure the memory of every layer (parameters, and the activations autograd keeps for the
#   backward pass) and match the measurement with a formula.
# - Load the same weights into `shared.models.GPT` and obtain the same logits and the same
#   generated tokens.
#
# **Prerequisites:** [PyTorch and autograd](../00-foundations/04-pytorch-and-autograd) (modules,
# training loops), [linear algebra](../00-foundations/01-linear-algebra) (attention as matrix
# products), [probability](../00-foundations/02-probability) (cross-entropy), and
# [decoder-only transformers](../02-transformer-architecture/02-decoder-only) for the ideas this
# notebook turns into code.
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
import tempfile

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import shared
from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.generation import generate
from shared.models import GPT, GPTConfig

shared.seed_everything(0)
print(shared.environment_summary("matplotlib"))

# %% [markdown]
# ## The data: characters of Shakespeare
#
# To keep everything small we model tiny Shakespeare one character at a time (the task of
# nanoGPT's `shakespeare_char`): 65 distinct characters, so the vocabulary size is $V = 65$.
# A batch is `B` windows of `T` consecutive characters; the target of each position is the
# character that follows it.

# %%
BLOCK_SIZE = 64  # the longest context the model accepts (T_max)
BATCH_SIZE = 16
data = shakespeare_char_data(BLOCK_SIZE)
tokenizer, VOCAB_SIZE = data.tokenizer, data.tokenizer.vocab_size
sampler = RandomBlockSampler(data.train, BLOCK_SIZE, BATCH_SIZE, seed=0)
x, y = sampler.next_batch()
print(f"vocabulary: {VOCAB_SIZE} characters; training stream: {len(data.train):,} tokens")
print(f"batch: inputs {tuple(x.shape)}, targets {tuple(y.shape)}")
print("input :", repr(tokenizer.decode(x[0, :40])))
print("target:", repr(tokenizer.decode(y[0, :40])))

# %% [markdown]
# ## The model in one screen
#
# Four small modules make a GPT (Radford et al., 2019; the layout follows Karpathy's nanoGPT):
#
# - **`SelfAttention`**: one linear layer produces queries, keys and values for all heads at
#   once; each head computes $\mathrm{softmax}(QK^\top/\sqrt{d_{head}} + M)V$, where the causal
#   mask $M$ is $-\infty$ above the diagonal so that a position never sees the future; a second
#   linear layer (`proj`) mixes the heads back into the model width $d$.
# - **`MLP`**: $d \to 4d$, GELU, $4d \to d$, applied to every position separately.
# - **`Block`**: $x \leftarrow x + \mathrm{attn}(\mathrm{LN}(x))$, then
#   $x \leftarrow x + \mathrm{MLP}(\mathrm{LN}(x))$. The vector $x$ that flows from block to block
#   is the *residual stream*; each block reads a normalised copy of it and adds its result back
#   (pre-norm, as in GPT-2; [notebook 03](03-norms-and-gradients) compares it with post-norm).
# - **`MiniGPT`**: token embedding plus learned position embedding, the blocks, a final
#   LayerNorm, and an output head that reuses the token embedding matrix (*weight tying*), so
#   that the logit of token $v$ is the dot product of the final vector with $v$'s embedding.
#
# The attribute names (`tok_emb`, `blocks.0.attn.qkv`, `ffn.up`, `norm_f`, ...) are those of
# `shared.models.GPT`, which lets us load one model's weights into the other at the end.

# %%
class SelfAttention(nn.Module):
    """Causal multi-head self-attention, written out with an explicit mask."""

    def __init__(self, d_model: int, n_head: int, block_size: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)  # queries, keys, values of every head at once
        self.proj = nn.Linear(d_model, d_model)  # mixes the heads back into the residual stream
        causal = torch.ones(block_size, block_size, dtype=torch.bool).tril()
        self.register_buffer("causal", causal, persistent=False)  # not a weight: not saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        # (B, T, d) -> (B, n_head, T, d_head): every head attends independently
        q, k, v = (t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.n_head)  # (B, n_head, T, T)
        scores = scores.masked_fill(~self.causal[:T, :T], float("-inf"))  # no peeking ahead
        y = scores.softmax(dim=-1) @ v  # (B, n_head, T, d_head)
        return self.proj(y.transpose(1, 2).reshape(B, T, d))


class MLP(nn.Module):
    """The position-wise feed-forward network: d -> 4d -> d with a GELU in between."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """A pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_head: int, block_size: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d_model), SelfAttention(d_model, n_head, block_size)
        self.norm2, self.ffn = nn.LayerNorm(d_model), MLP(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class MiniGPT(nn.Module):
    """Token + position embeddings, n_layer blocks, final LayerNorm, tied output head."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int,
                 d_model: int) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_head, block_size) for _ in range(n_layer))
        self.norm_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying: one matrix, two uses

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(positions)  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm_f(x))  # (B, T, vocab_size) logits


# %% [markdown]
# Initialisation is a separate step, because it is its own topic below. GPT-2 draws every
# weight matrix and embedding from $\mathcal{N}(0, 0.02^2)$, sets biases to zero, keeps
# LayerNorm at gain 1 and shift 0, and draws the two matrices that write into the residual
# stream (`attn.proj` and `ffn.down`) with a smaller std, $0.02/\sqrt{2L}$.

# %%
def init_gpt2_(model: MiniGPT, n_layer: int) -> MiniGPT:
    """GPT-2 initialisation, in place: N(0, 0.02) weights, zero biases, scaled residual outputs."""
    for name, param in model.named_parameters():
        if name.endswith(("attn.proj.weight", "ffn.down.weight")):
            nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
        elif name.endswith("bias") and "norm" not in name:
            nn.init.zeros_(param)
        elif param.dim() == 2:  # linear weights and embedding tables
            nn.init.normal_(param, mean=0.0, std=0.02)
    return model


N_LAYER, N_HEAD, D_MODEL = 4, 4, 128
torch.manual_seed(0)
model = init_gpt2_(MiniGPT(VOCAB_SIZE, BLOCK_SIZE, N_LAYER, N_HEAD, D_MODEL), N_LAYER)
print(model)

# %% [markdown]
# ## A forward pass, shape by shape
#
# We run the batch through the model one stage at a time and print the shape after each
# stage. The width stays $d = 128$ from the embedding to the final norm; only attention scores
# have a $T \times T$ shape, and only the head widens to the vocabulary.

# %%
with torch.no_grad():
    h = model.tok_emb(x)
    print(f"{'token embedding':<28}{tuple(h.shape)}")
    h = h + model.pos_emb(torch.arange(x.shape[1]))
    print(f"{'+ position embedding':<28}{tuple(h.shape)}")
    qkv = model.blocks[0].attn.qkv(model.blocks[0].norm1(h))
    print(f"{'block 0: q, k, v together':<28}{tuple(qkv.shape)}")
    q, k, _ = (t.view(BATCH_SIZE, BLOCK_SIZE, N_HEAD, -1).transpose(1, 2)
               for t in qkv.split(D_MODEL, dim=-1))
    print(f"{'block 0: q of each head':<28}{tuple(q.shape)}")
    print(f"{'block 0: attention scores':<28}{tuple((q @ k.transpose(-2, -1)).shape)}")
    for i, block in enumerate(model.blocks):
        h = block(h)
        print(f"{f'after block {i}':<28}{tuple(h.shape)}")
    logits = model.lm_head(model.norm_f(h))
    print(f"{'logits':<28}{tuple(logits.shape)}")
    print("same as model(x):", torch.equal(logits, model(x)))

# %% [markdown]
# The last position's logits are a score for every character; softmax turns them into a
# next-character distribution. The model is untrained, so the distribution is nearly flat:

# %%
probs = logits[0, -1].softmax(-1)
top = probs.topk(5)
print("context:", repr(tokenizer.decode(x[0, -20:])))
print("top 5 next characters:",
      [(tokenizer.decode([int(i)]), round(float(p), 4)) for p, i in zip(top.values, top.indices)])
print(f"uniform probability 1/V = {1 / VOCAB_SIZE:.4f}")

# %% [markdown]
# ## Counting parameters
#
# Per block, with model width $d$:
#
# | part | weights | biases |
# |---|---|---|
# | `attn.qkv` | $3d^2$ | $3d$ |
# | `attn.proj` | $d^2$ | $d$ |
# | `ffn.up` | $4d^2$ | $4d$ |
# | `ffn.down` | $4d^2$ | $d$ |
# | two LayerNorms | $2d$ | $2d$ |
#
# that is $12d^2 + 13d$ per block. Add the token table $Vd$, the position table $T_{max} d$ and
# the final LayerNorm $2d$; the tied head adds nothing. In total
# $N = L(12d^2 + 13d) + (V + T_{max})d + 2d$. The $12Ld^2$ term dominates large models: it is
# the "non-embedding" count that Kaplan et al. (2020) use in their scaling laws.

# %%
def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())  # .parameters() lists a tied weight once


per_block = 12 * D_MODEL**2 + 13 * D_MODEL
formula = N_LAYER * per_block + (VOCAB_SIZE + BLOCK_SIZE) * D_MODEL + 2 * D_MODEL
rows = [("token embedding (and tied head)", count(model.tok_emb)),
        ("position embedding", count(model.pos_emb))]
rows += [(f"block {i}", count(block)) for i, block in enumerate(model.blocks)]
rows += [("final LayerNorm", count(model.norm_f))]
for name, n in rows:
    print(f"{name:<34}{n:>10,}")
print(f"{'total (measured)':<34}{count(model):>10,}")
print(f"{'total (formula)':<34}{formula:>10,}")
print(f"per block: measured {count(model.blocks[0]):,}, formula 12d^2 + 13d = {per_block:,}")

# %% [markdown]
# The same formula gives the sizes of the four GPT-2 models. We build each one with
# `shared.models.GPT` on PyTorch's `meta` device, which creates tensors with shapes but no
# storage: a 1.5-billion-parameter model costs no memory and builds in a moment.

# %%
gpt2_family = {"GPT-2 small": (12, 768, 12), "GPT-2 medium": (24, 1024, 16),
               "GPT-2 large": (36, 1280, 20), "GPT-2 XL": (48, 1600, 25)}
V_GPT2, T_GPT2 = 50257, 1024
for name, (L, d, heads) in gpt2_family.items():
    with torch.device("meta"):
        big = GPT(GPTConfig(vocab_size=V_GPT2, block_size=T_GPT2, n_layer=L, n_head=heads,
                            d_model=d))
    by_formula = L * (12 * d**2 + 13 * d) + (V_GPT2 + T_GPT2) * d + 2 * d
    embedding_share = 1 - big.num_parameters(non_embedding=True) / big.num_parameters()
    print(f"{name:<13} L={L:2d} d={d:4d}: {big.num_parameters():>13,} parameters "
          f"(formula {by_formula:,}), embeddings {embedding_share:.0%}")

# %% [markdown]
# The GPT-2 paper's table lists 117M, 345M, 762M and 1542M; the released checkpoints have the
# counts printed above (124M, 355M, 774M, 1.56B). The embedding tables are a third of GPT-2
# small but a twentieth of GPT-2 XL: the $12Ld^2$ term grows faster than the $Vd$ term.

# %% [markdown]
# ## Initialisation
#
# ### The loss at initialisation should be $\ln V$
#
# Before training, a model knows nothing, and the honest prediction is the uniform distribution
# over the $V$ tokens, whose cross-entropy is $\ln V$. A good initialisation starts there. A bad
# one starts *confidently wrong*: large random logits put most of the probability on a few
# arbitrary tokens, and the first hundreds of steps are spent undoing that.
#
# PyTorch's default initialisation draws embeddings from $\mathcal{N}(0, 1)$. With the tied head,
# every logit is then a dot product of a unit-variance vector (the LayerNorm output) with a
# unit-variance embedding, so logits have std $\approx\sqrt{d} \approx 11$. With GPT-2's std of
# 0.02 they have std $\approx 0.02\sqrt{d} \approx 0.23$. We measure both on 8 batches.

# %%
def loss_and_logit_std(net: nn.Module, n_batches: int = 8) -> tuple[float, float]:
    batches = RandomBlockSampler(data.train, BLOCK_SIZE, BATCH_SIZE, seed=1)
    losses, stds = [], []
    with torch.no_grad():
        for _ in range(n_batches):
            inputs, targets = batches.next_batch()
            out = net(inputs)
            losses.append(F.cross_entropy(out.flatten(0, 1), targets.flatten()).item())
            stds.append(out.std().item())
    return sum(losses) / n_batches, sum(stds) / n_batches


torch.manual_seed(0)
default_init = MiniGPT(VOCAB_SIZE, BLOCK_SIZE, N_LAYER, N_HEAD, D_MODEL)  # PyTorch defaults
for label, net in [("PyTorch default init", default_init), ("GPT-2 init", model)]:
    loss, logit_std = loss_and_logit_std(net)
    print(f"{label:<22} loss at init {loss:7.3f}   logit std {logit_std:6.3f}")
print(f"{'uniform prediction':<22} ln V = ln {VOCAB_SIZE} = {math.log(VOCAB_SIZE):.3f}")

# %% [markdown]
# The GPT-2 initialisation starts within a tenth of $\ln 65 = 4.174$; PyTorch's defaults start
# about twenty times higher, with logits more than fifty times larger. (What remains above $\ln V$ is the small spread of the
# logits: a perfectly flat prediction would give exactly $\ln V$.)
#
# ### Why the residual projections are scaled by $1/\sqrt{2L}$
#
# The residual stream after $L$ blocks is the embedding plus $2L$ added terms, one per
# attention and one per MLP: $x_L = x_0 + \sum_{i=1}^{2L} f_i$. If the terms are roughly
# independent, their variances add, so the stream's variance grows linearly with depth and its
# std like $\sqrt{2L}$. GPT-2 scales the weights of the two matrices that write into the stream
# by $1/\sqrt{2L}$, which divides each term's variance by $2L$ and makes the total added
# variance independent of depth. We measure the std of the residual stream after every block of
# a 48-block model, with and without the scaling.

# %%
def residual_stds(net: MiniGPT, inputs: torch.Tensor) -> list[float]:
    """Std of the residual stream after the embeddings and after each block."""
    with torch.no_grad():
        h = net.tok_emb(inputs) + net.pos_emb(torch.arange(inputs.shape[1]))
        stds = [h.std().item()]
        for block in net.blocks:
            h = block(h)
            stds.append(h.std().item())
    return stds


DEEP = 48
torch.manual_seed(0)
deep_scaled = init_gpt2_(MiniGPT(VOCAB_SIZE, BLOCK_SIZE, DEEP, N_HEAD, D_MODEL), DEEP)
torch.manual_seed(0)
deep_unscaled = init_gpt2_(MiniGPT(VOCAB_SIZE, BLOCK_SIZE, DEEP, N_HEAD, D_MODEL), n_layer=1)
# n_layer=1 gives std 0.02/sqrt(2): the same value a shallow model would use, no depth correction
x_small = x[:4]
std_scaled, std_unscaled = residual_stds(deep_scaled, x_small), residual_stds(deep_unscaled, x_small)

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(std_unscaled, label="std 0.02/sqrt(2): no depth correction")
ax.plot(std_scaled, label=f"std 0.02/sqrt(2L), L = {DEEP}: GPT-2")
ax.set(xlabel="number of blocks applied", ylabel="std of the residual stream",
       title="Residual stream growth with depth at initialisation")
ax.legend(title="residual projections", loc="center right", bbox_to_anchor=(1.0, 0.4))
plt.show()
print(f"after {DEEP} blocks: std {std_unscaled[-1]:.3f} without the depth correction, "
      f"{std_scaled[-1]:.3f} with it (embeddings: {std_scaled[0]:.3f})")
print(f"growth without correction: x{std_unscaled[-1] / std_unscaled[0]:.1f}; "
      f"with: x{std_scaled[-1] / std_scaled[0]:.1f}")

# %% [markdown]
# Without the correction the stream grows steadily with depth, close to the $\sqrt{\text{depth}}$
# law of independent additions; with it, the 96 additions together add about as much variance
# as one uncorrected block does, and after 48 blocks the stream is under twice the embedding
# scale. A bounded stream matters because every block's LayerNorm divides by the
# stream's scale: if the stream grows, the contribution of each later block shrinks in relative
# terms, and the gradients through the norms shrink with it ([notebook
# 03](03-norms-and-gradients) studies gradient norms in deep stacks).

# %% [markdown]
# ## Per-layer memory profile
#
# Training memory has two parts. The **parameters** are fixed by the architecture (with their
# gradients and optimizer states, the subject of [notebook 04](04-parameters-and-memory)). The
# **activations** are the intermediate tensors that autograd must keep from the forward pass
# to compute the backward pass; they grow with batch size and sequence length.
#
# **Method.** `torch.autograd.graph.saved_tensors_hooks` calls a function for every tensor that
# autograd saves for the backward pass. We record each one's storage size, count every storage
# once (the queries, keys and values are views of one `qkv` output), skip the parameters (they
# are not activations), and attribute each tensor to the layer that is running, which a forward
# pre-hook on every block announces. This is an exact byte count of what the backward pass will
# read, independent of the allocator; it does not include short-lived temporaries that are
# freed during the forward pass.

# %%
def saved_activation_bytes(net: MiniGPT, inputs: torch.Tensor,
                           targets: torch.Tensor) -> dict[str, int]:
    """Bytes of the tensors autograd saves for backward, grouped by the layer that saved them."""
    param_storages = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen: set[int] = set()
    saved: dict[str, int] = {}
    current = ["embeddings"]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in param_storages and storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            saved[current[0]] = saved.get(current[0], 0) + storage.nbytes()
        return tensor

    def announce(label: str):
        return lambda module, args: current.__setitem__(0, label)

    hooks = [block.register_forward_pre_hook(announce(f"block {i}"))
             for i, block in enumerate(net.blocks)]
    hooks.append(net.norm_f.register_forward_pre_hook(announce("head + loss")))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            F.cross_entropy(net(inputs).flatten(0, 1), targets.flatten())
    finally:
        for hook in hooks:
            hook.remove()
    return saved


activations = saved_activation_bytes(model, x, y)
param_bytes = {"embeddings": 4 * (count(model.tok_emb) + count(model.pos_emb))}
param_bytes |= {f"block {i}": 4 * count(b) for i, b in enumerate(model.blocks)}
param_bytes["head + loss"] = 4 * count(model.norm_f)  # the tied head's matrix is the embedding
print(f"B={BATCH_SIZE}, T={BLOCK_SIZE}, d={D_MODEL}, heads={N_HEAD}, fp32")
print(f"{'layer':<13}{'parameters':>14}{'saved activations':>20}")
for layer in activations:
    print(f"{layer:<13}{param_bytes[layer] / 2**20:>11.3f} MiB{activations[layer] / 2**20:>16.3f} MiB")

# %% [markdown]
# ### The activation formula
#
# Reading the block's code line by line gives what autograd keeps, in floats, for a batch of
# $B$ sequences of $T$ tokens, width $d$ and $h$ heads:
#
# | saved by | what | floats |
# |---|---|---|
# | LayerNorm 1 | its input, the residual stream | $BTd$ |
# | `qkv` | its input (LayerNorm output) | $BTd$ |
# | $QK^\top$ and $\cdot V$ | $q, k, v$ (one `qkv` output) | $3BTd$ |
# | softmax and $\cdot V$ | the attention weights | $hBT^2$ |
# | `proj` | the re-assembled heads | $BTd$ |
# | LayerNorm 2, `ffn.up` | input and output of the norm | $2BTd$ |
# | GELU, `ffn.down` | input and output of the GELU | $8BTd$ |
#
# That is $16BTd + hBT^2$ floats, plus each LayerNorm's mean and inverse std ($2BT$ each) and
# the boolean causal mask ($T^2$ bytes). The $hBT^2$ term is the reason long contexts are
# expensive: it is quadratic in $T$. This is the count of Korthikanti et al. (2022) for a model
# without dropout; their $sbh(34 + 5as/h)$ bytes (with $s = T$, $b = B$, their $h$ our $d$, $a$
# heads) assumes 16-bit activations and adds dropout masks.

# %%
def block_activation_bytes(B: int, T: int, d: int, heads: int) -> int:
    """Bytes saved for backward by one MiniGPT block in fp32 (see the table above)."""
    floats = 16 * B * T * d + heads * B * T * T + 2 * (2 * B * T)
    return 4 * floats + T * T  # + the boolean mask, one byte per entry


predicted = block_activation_bytes(BATCH_SIZE, BLOCK_SIZE, D_MODEL, N_HEAD)
print(f"per block: measured {activations['block 0']:,} bytes, formula {predicted:,} bytes")
for i in range(N_LAYER):
    assert activations[f"block {i}"] == predicted

fig, ax = plt.subplots(figsize=(7, 3.8))
layers = list(activations)
positions = torch.arange(len(layers)).float()
ax.bar(positions - 0.2, [param_bytes[n] / 2**20 for n in layers], width=0.4, label="parameters")
ax.bar(positions + 0.2, [activations[n] / 2**20 for n in layers], width=0.4,
       label="saved activations")
ax.set_xticks(positions.tolist(), layers)
ax.set(ylabel="MiB (fp32)", xlabel="layer",
       title=f"Memory per layer, B={BATCH_SIZE}, T={BLOCK_SIZE}, d={D_MODEL} (measured)")
ax.legend(loc="upper left")
ax.set_ylim(0, 1.25 * max(activations.values()) / 2**20)
plt.tight_layout()
plt.show()

# %% [markdown]
# Even for this small batch, each block keeps about 12 times more activation bytes than it has
# parameter bytes. The head keeps the log-probabilities of all $V$ tokens at every position, so
# its share grows with the vocabulary.
#
# The formula scales the profile to real sizes. For GPT-2 small trained on batches of 8
# sequences of 1,024 tokens:

# %%
L, d, heads, B, T = 12, 768, 12, 8, 1024
block_params_mib = 4 * (12 * d**2 + 13 * d) / 2**20
ours_mib = block_activation_bytes(B, T, d, heads) / 2**20
korthikanti_mib = T * B * d * (34 + 5 * heads * T / d) / 2**20  # 16-bit, with dropout
recompute_mib = 2 * T * B * d / 2**20  # full recomputation keeps only each block's input
print(f"GPT-2 small, B={B}, T={T}, per block:")
print(f"  parameters (fp32)                          {block_params_mib:8.1f} MiB")
print(f"  activations, fp32, no dropout (our formula) {ours_mib:8.1f} MiB")
print(f"  activations, 16-bit with dropout (Korthikanti et al.) {korthikanti_mib:8.1f} MiB")
print(f"  activations with full recomputation (16-bit) {recompute_mib:8.1f} MiB")
print(f"all {L} blocks: {L * ours_mib / 1024:.1f} GiB of activations vs "
      f"{L * block_params_mib / 1024:.2f} GiB of block parameters")

# %% [markdown]
# At this size the activations of a training step outweigh the block parameters about 28
# times. This is why long-context training recomputes activations in the backward pass
# instead of storing them (Korthikanti et al., 2022), and why memory-efficient attention
# kernels avoid storing the $T \times T$ weights.

# %% [markdown]
# ## The same weights in `shared.models.GPT`
#
# The course library's `GPT` is this model with more switches (norm type and placement,
# position encodings, grouped-query attention, SwiGLU, mixture of experts, a KV cache, saving
# in the Hugging Face layout). With its default settings it is exactly the architecture above:
# LayerNorm before each sub-layer, learned positions, exact GELU, biases, tied embeddings. Its
# state-dict keys match ours, so our weights load into it directly.

# %%
config = GPTConfig(vocab_size=VOCAB_SIZE, block_size=BLOCK_SIZE, n_layer=N_LAYER,
                   n_head=N_HEAD, d_model=D_MODEL)
library_model = GPT(config).eval()
ours_keys, library_keys = set(model.state_dict()), set(library_model.state_dict())
print("same state-dict keys:", ours_keys == library_keys, f"({len(ours_keys)} tensors)")
library_model.load_state_dict(model.state_dict())

with torch.no_grad():
    ours = model(x)
    theirs = library_model(x).logits
print(f"logits {tuple(ours.shape)}: max |ours - shared.models.GPT| = "
      f"{(ours - theirs).abs().max():.2e}")
assert torch.allclose(ours, theirs, atol=1e-5)

# %% [markdown]
# The difference is float rounding: the library calls PyTorch's fused
# `scaled_dot_product_attention`, which computes the same function in a different order of
# operations than our explicit softmax. Switching the library to its explicit attention path
# (`attention_impl="manual"`, the same operations as ours in the same order) removes even that
# difference. Saving with `save_pretrained` (a `config.json` and a `model.safetensors` file, the
# Hugging Face layout) and loading with `from_pretrained` also reproduces the model exactly.

# %%
manual = GPT(GPTConfig(**{**config.to_dict(), "attention_impl": "manual"})).eval()
manual.load_state_dict(model.state_dict())
with tempfile.TemporaryDirectory() as folder:
    library_model.save_pretrained(folder)
    reloaded = GPT.from_pretrained(folder)
with torch.no_grad():
    print(f"max |ours - library, manual attention| = {(ours - manual(x).logits).abs().max():.2e}")
    print(f"max |library - reloaded from safetensors| = "
          f"{(theirs - reloaded(x).logits).abs().max():.2e}")
    print(f"loss: ours {F.cross_entropy(ours.flatten(0, 1), y.flatten()):.6f}, "
          f"library {library_model(x, targets=y).loss:.6f}")

# %% [markdown]
# From here on the course uses `shared.models.GPT`. It also generates text (`shared.generation`)
# with a KV cache; exercise 3 below checks that it chooses the same tokens as a plain loop over
# our model. The weights are untrained, so the text is noise; module 05 (pretraining) trains
# them.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The parameter formula
#
# Write `gpt_parameter_count(vocab_size, block_size, n_layer, d_model)` returning the number of
# parameters of a GPT-2-style model with tied embeddings, learned positions and biases (the
# formula of the "Counting parameters" section). The check compares it with
# `shared.models.GPT` built on the meta device for several shapes, including one where
# $d$ is not a multiple of 64.

# %% tags=["solution"]
def gpt_parameter_count(vocab_size: int, block_size: int, n_layer: int, d_model: int) -> int:
    """Parameters of a GPT-2-style decoder with tied embeddings."""
    # BEGIN SOLUTION
    per_block = 12 * d_model**2 + 13 * d_model
    return n_layer * per_block + (vocab_size + block_size) * d_model + 2 * d_model
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_function, passed


def meta_count(vocab_size: int, block_size: int, n_layer: int, d_model: int) -> int:
    with torch.device("meta"):
        net = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer,
                            n_head=2, d_model=d_model))
    return net.num_parameters()


shapes = [(65, 64, 4, 128), (50257, 1024, 12, 768), (1000, 256, 3, 50), (32000, 2048, 2, 130)]
check_function(gpt_parameter_count, [(s, meta_count(*s)) for s in shapes],
               "gpt_parameter_count", exact=True)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Predict the activation memory
#
# Measure, then predict. Set `measured_bytes` to the bytes saved by **block 1** of `model` for a
# batch of 4 sequences of 48 tokens (the first 4 rows and 48 columns of `x` and `y`), using
# `saved_activation_bytes`. Then set `predicted_bytes` to what `block_activation_bytes` predicts
# for that batch, and `attention_share` to the fraction of the predicted bytes taken by the
# attention weights ($4hBT^2$ bytes). The check also asks the formula about a context 4 times
# longer: the attention share must grow.

# %% tags=["solution"]
measured_bytes = None
predicted_bytes = None
attention_share = None
# BEGIN SOLUTION
measured_bytes = saved_activation_bytes(model, x[:4, :48], y[:4, :48])["block 1"]
predicted_bytes = block_activation_bytes(4, 48, D_MODEL, N_HEAD)
attention_share = 4 * N_HEAD * 4 * 48**2 / predicted_bytes
# END SOLUTION
print(f"measured {measured_bytes}, predicted {predicted_bytes}, attention share {attention_share}")

# %% tags=["check"]
check_equal(measured_bytes, saved_activation_bytes(model, x[:4, :48], y[:4, :48])["block 1"],
            "measured_bytes")
check_equal(predicted_bytes, measured_bytes, "predicted_bytes")
check_close(attention_share, 4 * N_HEAD * 4 * 48**2 / block_activation_bytes(4, 48, 128, 4),
            "attention_share", rtol=1e-6)
long_share = 4 * N_HEAD * 4 * 192**2 / block_activation_bytes(4, 192, 128, 4)
check(long_share > attention_share, "attention_share",
      "the share of the attention weights to grow with the context length")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Greedy decoding with our model
#
# Write `greedy(net, idx, n_new)` that extends the prompt `idx` (shape `(1, T)`) by `n_new`
# tokens, each time appending the most likely next token under `net` (our `MiniGPT`, which
# returns logits). Feed the whole sequence each step (no cache). The check compares the tokens
# with `shared.generation.generate` on the library model holding the same weights (greedy, with
# a KV cache).

# %% tags=["solution"]
def greedy(net: MiniGPT, idx: torch.Tensor, n_new: int) -> torch.Tensor:
    """Append n_new most-likely tokens to idx (1, T); return (1, T + n_new)."""
    # BEGIN SOLUTION
    with torch.no_grad():
        for _ in range(n_new):
            next_id = net(idx)[:, -1].argmax(dim=-1, keepdim=True)
            idx = torch.cat([idx, next_id], dim=1)
    return idx
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_shape

prompt = torch.tensor([tokenizer.encode("ROMEO:")])
ours_tokens = greedy(model, prompt, 30)
check_shape(ours_tokens, (1, 36), "greedy")
library_tokens = generate(library_model, prompt, 30)
check_equal(ours_tokens, library_tokens, "greedy")
print("generated (untrained weights):", repr(tokenizer.decode(ours_tokens[0])))
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - A GPT is embeddings, a stack of pre-norm blocks (causal attention, then an MLP, each added to
#   the residual stream), a final norm and a head tied to the embedding: about 50 lines.
# - Parameters: $L(12d^2 + 13d) + (V + T_{max})d + 2d$, checked against the model and the four
#   GPT-2 sizes; the $12Ld^2$ term dominates large models.
# - GPT-2's initialisation (std 0.02, residual projections $0.02/\sqrt{2L}$) starts the loss at
#   $\ln V$ (measured 4.25 against 4.17; PyTorch's defaults start about 20 times higher) and
#   keeps the residual stream from growing with depth (measured over 48 blocks).
# - Activation memory per block is $16BTd + hBT^2$ floats for this model, which the saved-tensor
#   hooks confirm to the byte; it outweighs the parameters by an order of magnitude already at
#   small sizes, and its $T^2$ term dominates long contexts.
# - `shared.models.GPT` with the same weights gives the same logits (to float rounding), the same
#   loss and the same greedy tokens; the rest of the course builds on it.
#
# Next: [the transformer's layers](02-transformer-layers), each checked against PyTorch's own.
#
# ## References
#
# - A. Radford, J. Wu, R. Child, D. Luan, D. Amodei, I. Sutskever, "Language models are
#   unsupervised multitask learners" (GPT-2), 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - A. Karpathy, nanoGPT (code reference for the layout and the initialisation).
#   https://github.com/karpathy/nanoGPT
# - J. Mody, "GPT in 60 lines of NumPy", 2023. https://jaykmody.com/blog/gpt-from-scratch/
# - J. Kaplan et al., "Scaling laws for neural language models", 2020.
#   https://arxiv.org/abs/2001.08361
# - V. Korthikanti et al., "Reducing activation recomputation in large transformer models",
#   2022. https://arxiv.org/abs/2205.05198
# - M. Shoeybi et al., "Megatron-LM: Training multi-billion parameter language models using
#   model parallelism", 2019. https://arxiv.org/abs/1909.08053
# - O. Press, L. Wolf, "Using the output embedding to improve language models" (weight tying),
#   EACL 2017. https://arxiv.org/abs/1608.05859
# - PyTorch, "Language modeling with nn.Transformer" tutorial.
#   https://pytorch.org/tutorials/beginner/transformer_tutorial.html
# - Model memory footprint calculator. https://modelmemory.com/
