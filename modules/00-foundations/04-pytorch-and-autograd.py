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
# # PyTorch and autograd
#
# Every model in this course is written in PyTorch, and all of them are trained the same way:
# tensors hold the data and the weights, a loss is computed from them with ordinary tensor
# operations, automatic differentiation (autograd) returns the gradient of that loss with
# respect to every weight, and an optimizer nudges the weights downhill, batch after batch.
# This notebook builds each of those pieces and checks it against what can be derived by hand:
# a gradient worked out on paper, a gradient checked numerically, an optimizer step written
# out, and finally a training loop, written line by line, that teaches a small neural network
# to predict the next character of Shakespeare.
#
# **Learning objectives**
# - Create and reshape tensors, tell views from copies, and predict the result of broadcasting
#   (including the silent bug it can cause).
# - Explain what reverse-mode automatic differentiation computes, and verify a hand-derived
#   gradient against `.backward()`, finite differences and `torch.autograd.gradcheck`.
# - Write a model as an `nn.Module` and count its parameters.
# - Compare SGD, SGD with momentum and Adam on the same problem.
# - Write a complete training loop by hand (mini-batches, loss, backward, step, validation) and
#   read its training and validation loss curves.
#
# **Prerequisites:** [Linear algebra for language models](01-linear-algebra) (matrix products)
# and [Probability for language models](02-probability) (cross-entropy, and the bigram model
# used here as a baseline). [GPU essentials](03-gpu-essentials) is useful background.
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
import copy
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import shared
from shared.paths import data_file

shared.seed_everything(0)
print(shared.environment_summary("numpy", "matplotlib"))
# The models here are tiny: splitting each small operation over several threads costs more in
# coordination than it saves, so we use one.
torch.set_num_threads(1)

# %% [markdown]
# ## Tensors
#
# A tensor is an $n$-dimensional array with a `shape`, a `dtype` and a `device`. Many operations
# (`view`, `reshape` of a contiguous tensor, slicing, `.T`) return a *view*: a new shape over the
# same memory, made by changing the *strides* (how many elements to skip to move one step along
# each axis). Writing into a view writes into the original. `torch.from_numpy` shares memory with
# the NumPy array in the same way.

# %%
x = torch.arange(12, dtype=torch.float32)
grid = x.view(3, 4)  # a view: same memory, shape (3, 4)
print("grid:\n", grid)
print(f"shape {tuple(grid.shape)}, dtype {grid.dtype}, device {grid.device}, "
      f"strides {grid.stride()}")
print(f"grid.T strides {grid.T.stride()}, contiguous: {grid.T.is_contiguous()}")

grid[0, 0] = 100.0
print("after writing grid[0, 0] = 100, x[0] =", x[0].item(), "(a view shares memory)")
copied = grid.clone()
copied[0, 0] = -1.0
print("after writing into a clone, grid[0, 0] =", grid[0, 0].item())

array = np.ones(3)
shared_tensor = torch.from_numpy(array)
array[0] = 7.0
print("torch.from_numpy shares memory:", shared_tensor.tolist())

# %% [markdown]
# ## Broadcasting
#
# An elementwise operation on tensors of different shapes *broadcasts*: shapes are aligned from
# the right, a missing axis counts as size 1, and an axis of size 1 is stretched to match the
# other tensor. No data is copied. This is how a bias of shape `(d,)` is added to activations of
# shape `(batch, seq, d)`, and how rows are centred with `keepdim=True`.

# %%
activations = torch.randn(2, 5, 8)  # (batch, seq, d)
bias = torch.randn(8)  # (d,) -> treated as (1, 1, d)
print("(2, 5, 8) + (8,)       ->", tuple((activations + bias).shape))
centred = activations - activations.mean(dim=-1, keepdim=True)  # (2, 5, 8) - (2, 5, 1)
print("(2, 5, 8) - (2, 5, 1)  ->", tuple(centred.shape),
      f"| largest row mean now {centred.mean(-1).abs().max():.1e}")
outer = torch.arange(3.0).view(3, 1) * torch.arange(4.0).view(1, 4)
print("(3, 1) * (1, 4)        ->", tuple(outer.shape), "(an outer product)")

# %% [markdown]
# The same rules make a classic bug silent. A model that outputs predictions of shape `(n, 1)`
# compared with targets of shape `(n,)` broadcasts to an $(n, n)$ matrix of every prediction
# against every target, and the "mean squared error" is a different number, with no error
# raised:

# %%
predictions = torch.tensor([[1.0], [2.0], [3.0]])  # (3, 1), as nn.Linear(..., 1) returns
targets = torch.tensor([1.0, 2.0, 3.0])  # (3,)
wrong = ((predictions - targets) ** 2).mean()
right = ((predictions.squeeze(1) - targets) ** 2).mean()
print(f"shape of predictions - targets: {tuple((predictions - targets).shape)}")
print(f"MSE with the shape bug: {wrong:.4f}; correct MSE: {right:.4f}")
print("F.mse_loss warns about exactly this:", end=" ")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    F.mse_loss(predictions, targets)
print(caught[0].message if caught else "no warning")

# %% [markdown]
# ## Autograd
#
# When a tensor has `requires_grad=True`, PyTorch records every operation applied to it in a
# graph; each result's `grad_fn` points to the operation that made it. Calling `.backward()` on
# a scalar walks the graph from the output back to the inputs, applying the chain rule at each
# node, and stores $\partial\,\text{output} / \partial\,\text{input}$ in each input's `.grad`.
# This is *reverse-mode* automatic differentiation: one backward pass yields the derivative
# with respect to all inputs at once, at a cost of a small multiple of the forward pass, which
# is what makes training networks with billions of weights possible (Baydin et al., 2018).
#
# A first example, with the derivative worked out by hand:
# $f(x) = x^2 \sin x$, $f'(x) = 2x\sin x + x^2 \cos x$.

# %%
x = torch.tensor(1.3, requires_grad=True)
f = x**2 * torch.sin(x)
print("the graph, from the output back:", f.grad_fn.name(), "<-",
      [type(fn).__name__ for fn, _ in f.grad_fn.next_functions])
f.backward()
by_hand = 2 * 1.3 * math.sin(1.3) + 1.3**2 * math.cos(1.3)
print(f"autograd f'(1.3) = {x.grad.item():.6f}, by hand {by_hand:.6f}")

# %% [markdown]
# ### A gradient derived by hand: a linear classifier
#
# A more useful case. A linear classifier maps inputs $X \in \mathbb{R}^{N \times d}$ to logits
# $Z = XW$ with $W \in \mathbb{R}^{d \times C}$, and its loss is the mean cross-entropy against
# one-hot targets $Y$:
#
# $$L(W) = -\frac{1}{N} \sum_{n} \sum_c Y_{nc} \log \mathrm{softmax}(Z_n)_c .$$
#
# The previous notebook showed that the gradient of the cross-entropy with respect to the logits
# is "predicted minus observed", $\mathrm{softmax}(Z_n) - Y_n$. The chain rule through $Z = XW$
# multiplies by $X^\top$, so
#
# $$\frac{\partial L}{\partial W} = \frac{1}{N} X^\top \big(\mathrm{softmax}(XW) - Y\big).$$

# %%
N, d, C = 32, 5, 4
g = torch.Generator().manual_seed(1)
X = torch.randn(N, d, generator=g, dtype=torch.float64)
labels = torch.randint(C, (N,), generator=g)
W = torch.randn(d, C, generator=g, dtype=torch.float64, requires_grad=True)

loss = F.cross_entropy(X @ W, labels)
loss.backward()
Y = F.one_hot(labels, C).double()
grad_by_hand = X.T @ (torch.softmax(X @ W.detach(), dim=1) - Y) / N
print(f"max |autograd - hand-derived| = {(W.grad - grad_by_hand).abs().max():.2e}")

# %% [markdown]
# ### Checking gradients numerically
#
# A derivative is a limit of finite differences, so any gradient can be checked numerically:
# $\partial L / \partial w \approx \big(L(w + h) - L(w - h)\big) / 2h$. The central difference
# has an error of order $h^2$; too small an $h$ drowns the difference in rounding error, which
# is why such checks use float64.

# %%
def numerical_gradient(fn, w: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central-difference estimate of the gradient of the scalar fn(w), entry by entry."""
    flat = w.reshape(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = h
        grad[i] = (fn((flat + step).view_as(w)) - fn((flat - step).view_as(w))) / (2 * h)
    return grad.view_as(w)


with torch.no_grad():
    numeric = numerical_gradient(lambda w: F.cross_entropy(X @ w, labels), W.detach())
print(f"max |autograd - central differences| = {(W.grad - numeric).abs().max():.2e}")

# %% [markdown]
# `torch.autograd.gradcheck` automates this comparison. It is most useful when you write your
# own backward pass, as custom kernels do. Here is log-sum-exp,
# $\mathrm{lse}(z) = \log \sum_i e^{z_i}$, whose derivative is the softmax, written as a
# `torch.autograd.Function` with a hand-written backward. `gradcheck` passes on it, and
# fails on a version whose backward forgets to multiply by the incoming gradient, a typical
# mistake.

# %%
class LogSumExp(torch.autograd.Function):
    """log(sum(exp(z))) over the last axis, with the backward pass written by hand."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        m = z.max(dim=-1, keepdim=True).values
        out = m.squeeze(-1) + (z - m).exp().sum(dim=-1).log()
        ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:
        z, out = ctx.saved_tensors
        softmax = (z - out.unsqueeze(-1)).exp()  # d lse / d z_i = softmax(z)_i
        return grad_out.unsqueeze(-1) * softmax  # chain rule: times the incoming gradient


class BuggyLogSumExp(LogSumExp):
    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:
        z, out = ctx.saved_tensors
        return (z - out.unsqueeze(-1)).exp()  # forgot grad_out


z = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
forward_error = (LogSumExp.apply(z) - torch.logsumexp(z, -1)).abs().max()
print(f"forward: max |ours - torch.logsumexp| = {forward_error:.1e}")
print("gradcheck(LogSumExp):     ", torch.autograd.gradcheck(LogSumExp.apply, (z,)))
print("gradcheck(BuggyLogSumExp):",
      torch.autograd.gradcheck(BuggyLogSumExp.apply, (z,), raise_exception=False))

# %% [markdown]
# ### Gradients accumulate
#
# `.backward()` *adds* to `.grad`; it does not overwrite it. That is deliberate (it lets several
# small batches add up to one large one, *gradient accumulation*), and it is why every training
# step starts by zeroing the gradients. Under `torch.no_grad()` nothing is recorded, which is
# how evaluation avoids the memory cost of the graph.

# %%
w = torch.tensor([1.0, 2.0], requires_grad=True)
(w**2).sum().backward()
print("after one backward: ", w.grad.tolist())
(w**2).sum().backward()
print("after two backwards:", w.grad.tolist(), "(accumulated)")
w.grad = None  # what optimizer.zero_grad() does
with torch.no_grad():
    evaluated = (w**2).sum()
print("under no_grad, requires_grad of the result:", evaluated.requires_grad)

# %% [markdown]
# ## Modules
#
# `nn.Module` is how PyTorch organises a model: layers assigned as attributes in `__init__` are
# registered, their weights become *parameters* (tensors that require gradients), and
# `forward` says how the input flows through them. `nn.Linear(d_in, d_out)` stores a weight of
# shape `(d_out, d_in)` and a bias, and computes $x W^\top + b$:

# %%
linear = nn.Linear(3, 2)
inp = torch.randn(4, 3)
linear_by_hand = inp @ linear.weight.T + linear.bias
print(f"max |nn.Linear - (x W^T + b)| = {(linear(inp) - linear_by_hand).abs().max():.1e}")


class MLP(nn.Module):
    """A multilayer perceptron: Linear -> tanh -> Linear -> tanh -> Linear."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(d_in, d_hidden)
        self.hidden2 = nn.Linear(d_hidden, d_hidden)
        self.out = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden2(torch.tanh(self.hidden1(x)))))


mlp = MLP(1, 64, 1)
for name, p in mlp.named_parameters():
    print(f"{name:15s} {tuple(p.shape)}")
n_params = sum(p.numel() for p in mlp.parameters())
by_formula = (1 * 64 + 64) + (64 * 64 + 64) + (64 * 1 + 1)  # weights + biases, layer by layer
print(f"{n_params:,} parameters; by formula (1*64 + 64) + (64*64 + 64) + (64*1 + 1) = "
      f"{by_formula:,}")

# %% [markdown]
# ## Optimizers
#
# An optimizer turns gradients into weight updates. With learning rate $\eta$ and gradient $g_t$:
# - **SGD**: $\theta \leftarrow \theta - \eta\, g_t$.
# - **SGD with momentum** $\mu$: $v \leftarrow \mu v + g_t$, $\theta \leftarrow \theta - \eta v$,
#   a running sum that speeds up consistent directions and damps oscillating ones.
# - **Adam** (Kingma and Ba, 2015): running averages of the gradient and of its square,
#   $m \leftarrow \beta_1 m + (1-\beta_1) g_t$ and $v \leftarrow \beta_2 v + (1-\beta_2) g_t^2$,
#   corrected for their zero start, $\hat m = m / (1-\beta_1^t)$, $\hat v = v / (1-\beta_2^t)$,
#   and $\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$. Each weight gets
#   its own step size, scaled by the typical size of its gradient.
#
# First, `torch.optim.SGD` does exactly what the formula says:

# %%
theta = torch.tensor([0.5, -1.0], requires_grad=True)
sgd = torch.optim.SGD([theta], lr=0.1)
(theta**2).sum().backward()  # gradient 2 * theta
expected = (theta - 0.1 * 2 * theta).detach()
sgd.step()
print(f"torch SGD step {theta.tolist()}, by the formula {expected.tolist()}")

# %% [markdown]
# Now the three on one problem: fit the MLP above to noisy samples of a known function,
# $y = \sin(3x) + \varepsilon$ with $x$ uniform in $[-2, 2]$ and noise
# $\varepsilon \sim \mathcal{N}(0, 0.1^2)$: 256 training points, mean squared error, full-batch
# steps, the same initial weights for every optimizer. Since the noise has variance 0.01, a
# perfect fit has a training loss of about 0.01, and its error against the noise-free curve
# tends to 0.

# %%
g = torch.Generator().manual_seed(0)
x_train = torch.rand(256, 1, generator=g) * 4 - 2
y_train = torch.sin(3 * x_train) + 0.1 * torch.randn(256, 1, generator=g)
x_grid = torch.linspace(-2, 2, 200).unsqueeze(1)
y_true = torch.sin(3 * x_grid)

torch.manual_seed(0)
initial = MLP(1, 64, 1)
OPT_STEPS = 600
optimizers = {
    "SGD (lr 0.1)": lambda params: torch.optim.SGD(params, lr=0.1),
    "SGD + momentum 0.9 (lr 0.1)": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    "Adam (lr 0.01)": lambda params: torch.optim.Adam(params, lr=0.01),
}
curves, fits = {}, {}
for name, make_optimizer in optimizers.items():
    model = copy.deepcopy(initial)  # the same starting point for every optimizer
    optimizer = make_optimizer(model.parameters())
    curves[name] = []
    for step in range(OPT_STEPS):
        loss = F.mse_loss(model(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        curves[name].append(loss.item())
    with torch.no_grad():
        fits[name] = model(x_grid)
    print(f"{name:28s}: training MSE {curves[name][-1]:.4f}, "
          f"MSE against the noise-free curve {F.mse_loss(fits[name], y_true):.4f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, curve in curves.items():
    axes[0].plot(curve, label=name)
axes[0].axhline(0.01, color="gray", ls=":", label="noise variance (best possible)")
axes[0].set(yscale="log", xlabel="step", ylabel="training MSE",
            title="Same model, same start, three optimizers")
axes[0].legend(fontsize=8)
axes[1].plot(x_train, y_train, ".", color="lightgray", label="training data")
axes[1].plot(x_grid, y_true, "k--", label="sin(3x)")
for name, fit in fits.items():
    axes[1].plot(x_grid, fit, label=name)
axes[1].set(xlabel="x", ylabel="y", title=f"Fitted functions after {OPT_STEPS} steps")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# With these learning rates, Adam reaches the noise floor first, momentum follows, and plain
# SGD is still well above it after 600 steps, with the ends of its curve visibly off. Both SGD
# variants also show loss *spikes*, steps that overshoot in a steep direction and take many
# steps to recover from; Adam's are small. Learning rates matter as much as the choice of
# optimizer (each has its own stable range), and Adam's per-weight scaling makes it forgiving,
# which is why it and its variant AdamW (Loshchilov and Hutter, 2019) train nearly every
# language model.

# %% [markdown]
# ## A training loop, written by hand: a character-level MLP language model
#
# Now all the pieces together on real data. The model is the neural language model of Bengio
# et al. (2003) at toy scale: it reads the previous 3 characters, looks up a learned
# 16-dimensional embedding for each, concatenates them, passes them through a tanh hidden
# layer of 128 units, and outputs logits over the 65 characters. It is trained with the
# cross-entropy of the true next character, on the same 90/10 split of tiny Shakespeare as the
# bigram model of [the previous notebook](02-probability), whose validation loss is the
# baseline to beat.

# %%
text = data_file("tinyshakespeare.txt").read_text(encoding="utf-8")
chars = sorted(set(text))
V = len(chars)
stoi = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([stoi[c] for c in text])
n_train = int(0.9 * len(ids))
train_ids, val_ids = ids[:n_train], ids[n_train:]

CONTEXT = 3


def make_examples(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of CONTEXT characters (inputs) and the character after it (target)."""
    windows = ids.unfold(0, CONTEXT + 1, 1)  # (len - CONTEXT, CONTEXT + 1), a view
    return windows[:, :CONTEXT], windows[:, CONTEXT]


X_train, Y_train = make_examples(train_ids)
X_val, Y_val = make_examples(val_ids)
print(f"{len(X_train):,} training and {len(X_val):,} validation examples; "
      f"first: {''.join(chars[i] for i in X_train[0])!r} -> {chars[Y_train[0]]!r}")

# The baseline: the bigram model's validation cross-entropy (add-one smoothing, as in 02).
bigram = torch.bincount(train_ids[:-1] * V + train_ids[1:], minlength=V * V).view(V, V)
bigram = bigram.double() + 1.0
bigram_log_probs = (bigram / bigram.sum(1, keepdim=True)).log()
bigram_val_loss = -bigram_log_probs[val_ids[:-1], val_ids[1:]].mean().item()
print(f"baselines: uniform {math.log(V):.3f} nats, bigram {bigram_val_loss:.3f} nats")

# %%
class CharMLP(nn.Module):
    """Next-character model: embeddings of the last CONTEXT characters -> tanh layer -> logits."""

    def __init__(self, vocab_size: int, context: int, d_embed: int = 16,
                 d_hidden: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_embed)
        self.hidden = nn.Linear(context * d_embed, d_hidden)
        self.out = nn.Linear(d_hidden, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # (batch, context) -> (batch, context, d_embed) -> (batch, context * d_embed)
        e = self.embed(idx).flatten(start_dim=1)
        return self.out(torch.tanh(self.hidden(e)))


torch.manual_seed(0)
char_model = CharMLP(V, CONTEXT)
print(char_model)
print(f"{sum(p.numel() for p in char_model.parameters()):,} parameters")

# %% [markdown]
# The loop below is the whole of training. Each step draws a random mini-batch, computes the
# loss, zeroes the old gradients, backpropagates, and lets the optimizer update the weights.
# Every `EVAL_EVERY` steps it measures the loss on fixed samples of 20,000 training and 20,000
# validation examples, with the model in evaluation mode and without recording a graph; at the
# end, on the whole validation split.
# Later modules use the course's shared training loop (`shared.training`), which adds learning
# rate schedules, gradient clipping, mixed precision and checkpoints around these same five
# lines.

# %%
MAX_STEPS = 2000  # 20,000 and a wider model (d_hidden=512) on a GPU
BATCH_SIZE = 256
EVAL_EVERY = 100
LEARNING_RATE = 3e-3

optimizer = torch.optim.AdamW(char_model.parameters(), lr=LEARNING_RATE)
batch_generator = torch.Generator().manual_seed(0)
eval_generator = torch.Generator().manual_seed(1)
train_eval_idx = torch.randint(len(X_train), (20_000,), generator=eval_generator)
val_eval_idx = torch.randint(len(X_val), (20_000,), generator=eval_generator)


@torch.no_grad()
def mean_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean cross-entropy of the model on the given examples, in evaluation mode."""
    model.eval()
    loss = F.cross_entropy(model(inputs), targets).item()
    model.train()
    return loss


history = {"step": [], "train": [], "val": []}
for step in range(MAX_STEPS + 1):
    if step % EVAL_EVERY == 0:
        train_loss = mean_loss(char_model, X_train[train_eval_idx], Y_train[train_eval_idx])
        val_loss = mean_loss(char_model, X_val[val_eval_idx], Y_val[val_eval_idx])
        history["step"].append(step)
        history["train"].append(train_loss)
        history["val"].append(val_loss)
        if step % 500 == 0:
            print(f"step {step:5d}: train loss {train_loss:.4f}, validation loss {val_loss:.4f}")
    if step == MAX_STEPS:
        break
    batch = torch.randint(len(X_train), (BATCH_SIZE,), generator=batch_generator)
    logits = char_model(X_train[batch])  # 1. forward
    loss = F.cross_entropy(logits, Y_train[batch])  # 2. loss
    optimizer.zero_grad()  # 3. forget the previous step's gradients
    loss.backward()  # 4. backward: gradients of the loss for every parameter
    optimizer.step()  # 5. update

final_val = mean_loss(char_model, X_val, Y_val)  # the whole validation split
print(f"\nvalidation: MLP {final_val:.3f} nats (perplexity {math.exp(final_val):.2f}), "
      f"bigram {bigram_val_loss:.3f} nats (perplexity {math.exp(bigram_val_loss):.2f})")

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(history["step"], history["train"], label="training loss (20,000-example sample)")
ax.plot(history["step"], history["val"], label="validation loss (20,000-example sample)")
ax.axhline(bigram_val_loss, color="gray", ls="--", label="bigram model, validation")
ax.set(xlabel="step", ylabel="cross-entropy (nats per character)", ylim=(1.8, 3.0),
       title="Character MLP on tiny Shakespeare (context of 3 characters)")
ax.legend()
plt.show()

# %% [markdown]
# The loss falls below the bigram baseline within the first few hundred steps, then more slowly. The
# validation loss stays about 0.1 nats above the training loss, and both are still falling when
# training stops: a model that memorised its training data would see its validation loss turn
# upwards. With about 16,000 parameters and a million training examples, what limits this model is
# its size and its 3-character context. (The first evaluation, at step 0, sits near
# $\ln 65 \approx 4.17$, the loss of a uniform guess, above the plotted range.) Three characters
# of context buy a clear drop in perplexity over one. Samples from it, drawn character by
# character as in the previous notebook:

# %%
@torch.no_grad()
def generate(model: nn.Module, prompt: str, length: int, seed: int = 0) -> str:
    """Sample `length` characters after `prompt` (at least CONTEXT characters long)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out = [stoi[c] for c in prompt]
    for _ in range(length):
        logits = model(torch.tensor([out[-CONTEXT:]]))
        out.append(int(torch.multinomial(torch.softmax(logits[0], dim=0), 1, generator=generator)))
    return "".join(chars[i] for i in out)


print(generate(char_model, "ROMEO:\n", 300))

# %% [markdown]
# Still not English, but closer than the bigram's samples: more real short words, more
# plausible spelling. The transformer models later in the course read hundreds of characters
# of context instead of 3, and are trained by this same loop.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Pairwise distances by broadcasting
#
# Write `pairwise_sq_distances(A, B)` returning the matrix of squared Euclidean distances
# between every row of `A` (shape `(n, d)`) and every row of `B` (shape `(m, d)`), of shape
# `(n, m)`, using broadcasting: no Python loops and no `torch.cdist`. The check compares it with
# `torch.cdist`.

# %% tags=["solution"]
def pairwise_sq_distances(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """out[i, j] = ||A[i] - B[j]||^2."""
    # BEGIN SOLUTION
    return ((A[:, None, :] - B[None, :, :]) ** 2).sum(dim=-1)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_shape, passed

g = torch.Generator().manual_seed(5)
A_test = torch.randn(6, 3, generator=g, dtype=torch.float64)
B_test = torch.randn(4, 3, generator=g, dtype=torch.float64)
result = pairwise_sq_distances(A_test, B_test)
check_shape(result, (6, 4), "pairwise_sq_distances")
check_close(result, torch.cdist(A_test, B_test) ** 2, "pairwise_sq_distances", atol=1e-10)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A gradient by hand
#
# For linear regression with loss $L(w) = \frac{1}{N}\lVert Xw - y \rVert^2$, derive
# $\partial L / \partial w$ on paper and write `mse_gradient(X, w, y)` that returns it, without
# autograd. The check compares it with `.backward()` on random problems.

# %% tags=["solution"]
def mse_gradient(X: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of mean((X @ w - y) ** 2) with respect to w."""
    # BEGIN SOLUTION
    return 2 * X.T @ (X @ w - y) / X.shape[0]
    # END SOLUTION


# %% tags=["check"]
g = torch.Generator().manual_seed(6)
for n_rows, n_cols in [(10, 3), (50, 7)]:
    X_test = torch.randn(n_rows, n_cols, generator=g, dtype=torch.float64)
    y_test = torch.randn(n_rows, generator=g, dtype=torch.float64)
    w_test = torch.randn(n_cols, generator=g, dtype=torch.float64, requires_grad=True)
    ((X_test @ w_test - y_test) ** 2).mean().backward()
    check_close(mse_gradient(X_test, w_test.detach(), y_test), w_test.grad,
                f"mse_gradient on a {n_rows}x{n_cols} problem", atol=1e-10)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: One Adam step
#
# Write `adam_step(param, grad, m, v, t, lr, beta1, beta2, eps)` implementing one Adam update
# from the Optimizers section (with bias correction; `t` counts steps from 1). It returns the
# new `(param, m, v)` and must not modify its inputs in place. The check runs three steps and
# compares with `torch.optim.Adam`.

# %% tags=["solution"]
def adam_step(param: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int,
              lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Adam update; returns (new_param, new_m, new_v)."""
    # BEGIN SOLUTION
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v
    # END SOLUTION


# %% tags=["check"]
inputs_before = [torch.full((3,), 0.5, dtype=torch.float64) for _ in range(4)]
inputs_after = [t.clone() for t in inputs_before]
adam_step(*inputs_after, 1)
check(all(torch.equal(a, b) for a, b in zip(inputs_before, inputs_after)), "adam_step",
      "its inputs to be left unchanged (return new tensors instead of updating in place)")
g = torch.Generator().manual_seed(7)
reference = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
mine = reference.detach().clone()
m_state, v_state = torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
torch_adam = torch.optim.Adam([reference], lr=0.05, betas=(0.8, 0.95), eps=1e-6)
for t in range(1, 4):
    grads = torch.randn(5, generator=g, dtype=torch.float64)
    reference.grad = grads.clone()
    torch_adam.step()
    mine, m_state, v_state = adam_step(mine, grads, m_state, v_state, t,
                                       lr=0.05, beta1=0.8, beta2=0.95, eps=1e-6)
    check_close(mine, reference.detach(), f"adam_step, step {t}", atol=1e-12)
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: One training step
#
# Write `train_step(model, optimizer, inputs, targets)` that performs one step of the training
# loop above with the cross-entropy loss (forward, loss, zero the gradients, backward, update)
# and returns the loss *before* the update as a Python float. The check runs two steps on a copy
# of a small `CharMLP` and compares the weights with a reference implementation, which also
# catches a forgotten `zero_grad`.

# %% tags=["solution"]
def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               targets: torch.Tensor) -> float:
    """One optimisation step on one batch; returns the batch loss before the update."""
    # BEGIN SOLUTION
    loss = F.cross_entropy(model(inputs), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    # END SOLUTION


# %% tags=["check"]
torch.manual_seed(8)
student_model = CharMLP(V, CONTEXT, d_embed=4, d_hidden=8)
reference_model = copy.deepcopy(student_model)
student_opt = torch.optim.SGD(student_model.parameters(), lr=0.5)
reference_opt = torch.optim.SGD(reference_model.parameters(), lr=0.5)
for rows in (slice(0, 64), slice(64, 128)):
    batch, targets_batch = X_train[rows], Y_train[rows]
    reference_loss = F.cross_entropy(reference_model(batch), targets_batch)
    reference_opt.zero_grad()
    reference_loss.backward()
    reference_opt.step()
    student_loss = train_step(student_model, student_opt, batch, targets_batch)
    check(isinstance(student_loss, float), "train_step",
          "the loss as a Python float (use loss.item())")
    check_close(student_loss, reference_loss.item(), "train_step's returned loss", atol=1e-6)
reference_params = dict(reference_model.named_parameters())
for name, p_student in student_model.named_parameters():
    check_close(p_student, reference_params[name], f"train_step: parameter {name} after two steps",
                atol=1e-6)
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Tensors have a shape, a dtype and a device; views share memory with the tensor they come
#   from. Broadcasting aligns shapes from the right and stretches size-1 axes, and a `(n, 1)`
#   against `(n,)` mismatch silently produces an `(n, n)` result.
# - Autograd records the operations on tensors that require gradients and applies the chain rule
#   backwards. A hand-derived gradient, central differences, `.backward()` and `gradcheck`
#   agree, and `gradcheck` catches a wrong backward pass.
# - `.backward()` accumulates into `.grad`; training steps zero the gradients first, and
#   evaluation runs under `torch.no_grad()`.
# - `nn.Module` registers parameters; `nn.Linear` computes $xW^\top + b$.
# - On the same regression problem and the same start, Adam reached the noise floor first,
#   momentum next, plain SGD last.
# - The training loop is five lines (forward, loss, zero_grad, backward, step) plus evaluation.
#   A 3-character MLP language model trained with it in seconds beats the bigram model's
#   validation loss.
#
# Next: module 01 begins the study of large language models themselves; the models there are
# built from exactly these pieces.
#
# ## References
#
# - A. Paszke et al., "PyTorch: an imperative style, high-performance deep learning library",
#   NeurIPS 2019. https://arxiv.org/abs/1912.01703
# - A. G. Baydin, B. A. Pearlmutter, A. A. Radul, J. M. Siskind, "Automatic differentiation in
#   machine learning: a survey", *JMLR* 18(153), 2018. https://www.jmlr.org/papers/v18/17-468.html
# - D. E. Rumelhart, G. E. Hinton, R. J. Williams, "Learning representations by back-propagating
#   errors", *Nature* 323, 1986. https://doi.org/10.1038/323533a0
# - D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
#   https://arxiv.org/abs/1412.6980
# - I. Loshchilov, F. Hutter, "Decoupled weight decay regularization" (AdamW), ICLR 2019.
#   https://arxiv.org/abs/1711.05101
# - Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin, "A neural probabilistic language model",
#   *JMLR* 3, 2003. https://www.jmlr.org/papers/v3/bengio03a.html
# - PyTorch documentation: *Autograd mechanics*.
#   https://pytorch.org/docs/stable/notes/autograd.html
# - PyTorch documentation: *Broadcasting semantics*.
#   https://pytorch.org/docs/stable/notes/broadcasting.html
# - PyTorch documentation: *torch.autograd.gradcheck*.
#   https://pytorch.org/docs/stable/generated/torch.autograd.gradcheck.html
# - A. Karpathy, micrograd (a scalar autograd engine in about 100 lines).
#   https://github.com/karpathy/micrograd
