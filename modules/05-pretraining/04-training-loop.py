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
# # The training loop: accumulation, schedules and checkpoints that resume exactly
#
# Pretraining runs for weeks on hardware that fails. The loop that drives it has three jobs
# beyond "forward, backward, step": it must reach the batch size the recipe asks for on
# devices that cannot hold it (gradient accumulation), it must move the learning rate along a
# schedule that keeps the early steps stable and the late steps precise (warmup and cosine
# decay), and it must survive a crash without changing the result (checkpointing). The last
# one is stricter than it sounds: a run that stops and resumes should end with *bitwise* the
# same weights as a run that never stopped, or you can no longer tell a bug from an
# interruption. This notebook builds each piece, measures it on a small GPT trained on
# Shakespeare, and shows what breaks when a piece is missing.
#
# **Learning objectives**
# - Write a training step with gradient accumulation and show that $k$ micro-batches give the
#   gradient of one $k$-times larger batch, with the right loss scaling (also when micro-batches
#   hold different numbers of tokens).
# - Implement linear warmup followed by cosine decay, check it against PyTorch's schedulers, and
#   measure its effect on a short run.
# - Save a checkpoint that holds everything a run depends on (weights, optimizer moments, random
#   states, data position, step) and resume from it with bitwise-identical results.
# - Explain, from measurements, what goes wrong when a resume leaves out the optimizer state,
#   the random state or the data position.
#
# **Prerequisites:** [PyTorch and autograd](../00-foundations/04-pytorch-and-autograd) (a
# training loop), [next-token prediction](02-next-token-prediction) (the loss being minimised),
# [norms and gradients](../04-llm-from-scratch/03-norms-and-gradients)
# (gradient clipping) and [parameters and memory](../04-llm-from-scratch/04-parameters-and-memory)
# (what AdamW stores).
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
import io
import json
import math
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from safetensors import safe_open

import shared
from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.models import GPT, GPTConfig
from shared.training import History, TrainConfig, Trainer, default_loss, lr_at, make_optimizer

# Models this small gain little from a second thread, and on a shared machine one thread is
# faster and more predictable.
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("safetensors", "matplotlib"))

# %% [markdown]
# The data is tiny Shakespeare at the character level (65 symbols, 1.0 million training
# characters). The model is a small GPT from `shared.models`: 2 layers, 4 heads, 64-dimensional,
# a context of 64 characters, so that every run below takes a few seconds on a CPU. The
# lessons do not depend on the size; the numbers do, and the larger runs are knobs.

# %%
BLOCK_SIZE, BATCH_SIZE = 64, 16
data = shakespeare_char_data(BLOCK_SIZE)


def small_gpt(seed: int = 0, dropout: float = 0.0, d_model: int = 64) -> GPT:
    """A fresh 2-layer GPT; the same seed gives the same initial weights."""
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=BLOCK_SIZE, n_layer=2,
                       n_head=4, d_model=d_model, dropout=dropout)
    return GPT(config)


print(f"{len(data.train):,} training and {len(data.val):,} validation characters; "
      f"model: {small_gpt().num_parameters():,} parameters")

# %% [markdown]
# ## The loop, written out
#
# One optimizer update in a modern pretraining loop does this:
#
# 1. set the learning rate of this step from the schedule;
# 2. for each of $k$ micro-batches: forward, loss divided by $k$, backward (gradients add up in
#    `.grad`);
# 3. clip the global gradient norm;
# 4. `optimizer.step()`, then clear the gradients.
#
# Here it is in twenty lines, with AdamW from `shared.training.make_optimizer` (weight decay on
# matrices only) and the schedule `shared.training.lr_at`, explained in the next sections.
# `shared.training.Trainer` runs the same loop with evaluation, logging and checkpoints around
# it; the two agree bit for bit.

# %%
def train_by_hand(model: GPT, config: TrainConfig) -> list[float]:
    """The training loop with nothing hidden; returns the mean loss of every update."""
    shared.seed_everything(config.seed)  # what Trainer does when it is built
    sampler = RandomBlockSampler(data.train, config.block_size, config.batch_size, seed=config.seed)
    optimizer = make_optimizer(model, config.lr, config.weight_decay, config.betas, config.eps)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    losses = []
    for step in range(config.max_steps):
        lr = lr_at(step, lr=config.lr, min_lr=config.min_lr, warmup_steps=config.warmup_steps,
                   decay_steps=config.max_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros(())
        for _ in range(config.grad_accum_steps):
            x, y = sampler.next_batch()
            loss = model(x, targets=y).loss
            (loss / config.grad_accum_steps).backward()  # the sum of these is the mean gradient
            total += loss.detach()
        # Clip over the parameters in the optimizer's order: the norm is summed in that order.
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append((total / config.grad_accum_steps).item())
    return losses


loop_config = TrainConfig(max_steps=6, batch_size=8, block_size=BLOCK_SIZE, grad_accum_steps=2,
                          lr=3e-3, min_lr=3e-4, warmup_steps=5, progress=False)
by_hand_model, trainer_model = small_gpt(), small_gpt()
by_hand_losses = train_by_hand(by_hand_model, loop_config)
trainer_history = Trainer(trainer_model, data.train, None, loop_config).fit()

same_weights = all(torch.equal(a, b) for a, b in
                   zip(by_hand_model.parameters(), trainer_model.parameters(), strict=True))
print(f"loss of update 1 and 6: {by_hand_losses[0]:.4f} -> {by_hand_losses[-1]:.4f}")
print(f"by hand vs Trainer: identical weights: {same_weights}, "
      f"identical losses: {by_hand_losses == trainer_history.train_loss}")

# %% [markdown]
# ## Gradient accumulation
#
# The loss of a batch is the mean over its tokens, $L = \frac{1}{|B|}\sum_{i \in B} \ell_i$.
# Split $B$ into $k$ micro-batches $B_1, \dots, B_k$ of equal size and
#
# $$L = \frac{1}{k}\sum_{j=1}^{k} L_j, \qquad \nabla L = \sum_{j=1}^{k} \nabla \frac{L_j}{k},$$
#
# where $L_j$ is the mean loss of micro-batch $j$. Calling `(L_j / k).backward()` for each $j$
# adds exactly these terms into `.grad`, so after $k$ micro-batches the gradient is that of
# the whole batch, while only one micro-batch's activations were ever in memory. Forgetting
# the $1/k$ gives $k$ times the gradient.
#
# There is a subtler trap. When targets are partly ignored (padding, or prompt tokens in
# fine-tuning, marked `-100`), micro-batches hold different numbers of counted tokens, and the
# mean of the micro-batch means is no longer the mean over all tokens. The right scaling divides
# each micro-batch's *summed* loss by the total number of counted tokens in the whole batch.
#
# We check all of this on one batch of 32 sequences, with dropout off so that both ways of
# computing see the same network.

# %%
def gradients(model: GPT) -> torch.Tensor:
    """All parameter gradients flattened into one vector, then cleared."""
    flat = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    return flat


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


K = 4
accum_model = small_gpt()
x_big, y_big = RandomBlockSampler(data.train, BLOCK_SIZE, 32, seed=1).next_batch()
micro = list(zip(x_big.chunk(K), y_big.chunk(K), strict=True))

accum_model(x_big, targets=y_big).loss.backward()
g_big = gradients(accum_model)

for x, y in micro:
    (accum_model(x, targets=y).loss / K).backward()
g_accumulated = gradients(accum_model)

for x, y in micro:
    accum_model(x, targets=y).loss.backward()  # the 1/k forgotten
g_unscaled = gradients(accum_model)

# Padding: sequence i keeps only its first 8 + 7*i targets; the rest are ignored (-100).
y_padded = y_big.clone()
kept = 8 + 7 * torch.arange(32)
y_padded[torch.arange(BLOCK_SIZE)[None, :] >= kept[:, None]] = -100
micro_padded = list(zip(x_big.chunk(K), y_padded.chunk(K), strict=True))
counted = (y_padded != -100).sum()
print(f"counted targets per micro-batch: {[int((y != -100).sum()) for _, y in micro_padded]}")

accum_model(x_big, targets=y_padded).loss.backward()
g_big_padded = gradients(accum_model)
for x, y in micro_padded:
    (accum_model(x, targets=y).loss / K).backward()  # mean of means: wrong with padding
g_mean_of_means = gradients(accum_model)
for x, y in micro_padded:
    logits = accum_model(x).logits
    token_sum = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                                  ignore_index=-100, reduction="sum")
    (token_sum / counted).backward()  # each token weighs 1/(all counted tokens)
g_token_weighted = gradients(accum_model)

accumulation_errors = {
    "loss / k": relative_error(g_accumulated, g_big),
    "loss (no 1/k)": relative_error(g_unscaled, g_big),
    "padded: mean of means": relative_error(g_mean_of_means, g_big_padded),
    "padded: sum / all tokens": relative_error(g_token_weighted, g_big_padded),
}
for name, error in accumulation_errors.items():
    print(f"{name:<26} relative error of the gradient vs one big batch: {error:.2e}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
names = list(accumulation_errors)
ax.barh(names, list(accumulation_errors.values()),
        color=["tab:green", "tab:red", "tab:red", "tab:green"])
ax.set(xscale="log", xlabel="||g_accumulated - g_big|| / ||g_big||", ylabel="scaling used",
       title=f"Accumulating {K} micro-batches vs one batch of 32")
ax.invert_yaxis()
plt.tight_layout()
plt.show()

# %% [markdown]
# The correct scalings agree with the big batch to float32 rounding (about $10^{-7}$); the
# differences come only from adding the same numbers in a different order. Forgetting $1/k$
# gives a relative error of exactly $k - 1 = 3$. With padding, the mean of micro-batch means
# over-weights the tokens of short micro-batches: an error of several percent that no crash
# would ever reveal.
#
# How much does the $k$-fold gradient hurt? Adam divides the first moment by the square root of
# the second, so scaling every gradient by $k$ cancels, except against the small constant
# $\epsilon = 10^{-8}$ in the denominator. Gradient clipping does not cancel: it sees a $k$
# times larger norm, so it clips at other steps and by other factors. We train twice for 12
# updates, once correctly and once with every micro-batch loss multiplied by $k$ (which is what
# forgetting the division amounts to), with clipping off and on.

# %%
def accumulation_run(loss_scale: float, grad_clip: float) -> tuple[GPT, History]:
    model = small_gpt()
    config = TrainConfig(max_steps=12, batch_size=4, block_size=BLOCK_SIZE, grad_accum_steps=K,
                         lr=3e-3, min_lr=3e-4, warmup_steps=5, grad_clip=grad_clip,
                         progress=False)
    history = Trainer(model, data.train, None, config,
                      loss_fn=lambda net, batch: loss_scale * default_loss(net, batch)).fit()
    return model, history


def max_weight_gap(a: GPT, b: GPT) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters(),
                                                          strict=True))


for clip in (0.0, 1.0):
    (right, right_history), (wrong, wrong_history) = (accumulation_run(1.0, clip),
                                                      accumulation_run(float(K), clip))
    weight_gaps = torch.cat([(p - q).abs().flatten() for p, q in
                             zip(right.parameters(), wrong.parameters(), strict=True)])
    loss_gap = max(abs(a - b / K) for a, b in zip(right_history.train_loss,
                                                  wrong_history.train_loss, strict=True))
    print(f"grad_clip={clip}: after 12 updates, correct vs {K}x gradient: median weight "
          f"difference {weight_gaps.median():.1e}, largest loss difference {loss_gap:.1e}")

# %% [markdown]
# Without clipping, AdamW hides the mistake: the typical weight differs by less than
# $10^{-6}$ (the weights themselves are of order $0.02$) and the losses agree to about
# $10^{-5}$. With clipping at 1.0 the two runs part ways within a dozen updates: the wrong one
# is clipped much harder at every step. With plain SGD the mistake would multiply the learning
# rate by $k$. Either way, the rule is the same: divide by $k$, or better, by the number of
# counted tokens.
#
# Does `Trainer` with `batch_size=8, grad_accum_steps=4` reproduce `batch_size=32`? Its data
# sampler draws the same 32 windows either way (the generator is consumed in the same order),
# so the runs should agree to rounding.

# %%
def run_with(batch_size: int, accum: int) -> tuple[GPT, list[float]]:
    model = small_gpt()
    config = TrainConfig(max_steps=10, batch_size=batch_size, block_size=BLOCK_SIZE,
                         grad_accum_steps=accum, lr=3e-3, min_lr=3e-4, warmup_steps=5,
                         progress=False)
    return model, Trainer(model, data.train, None, config).fit().train_loss


model_32, loss_32 = run_with(32, 1)
model_8x4, loss_8x4 = run_with(8, 4)
print(f"batch 32 vs 4 x 8 over 10 updates: largest loss difference "
      f"{max(abs(a - b) for a, b in zip(loss_32, loss_8x4, strict=True)):.1e}, "
      f"largest weight difference {max_weight_gap(model_32, model_8x4):.1e}")

# %% [markdown]
# Accumulation changes memory, not arithmetic: the same FLOPs run in $k$ sequential pieces, so
# a step takes as long as before (a little longer, from the smaller matrix products), while
# the peak activation memory falls by about $k$. It is how recipes that specify batch sizes of
# millions of tokens (GPT-3 used 3.2M, Brown et al. 2020) run on whatever number of devices is
# available.

# %% [markdown]
# ## Warmup and cosine decay
#
# The schedule used by GPT-3, Chinchilla, Llama and nanoGPT has two parts:
#
# - **linear warmup** over the first $w$ updates, from $\eta/w$ up to the peak $\eta$. At the
#   start, Adam's second-moment estimate rests on a handful of gradients and the weights are
#   far from anything sensible; full-size steps then can throw the model into a bad region
#   (Goyal et al. 2017 made gradual warmup standard for large-batch SGD; Liu et al. 2020
#   analyse why Adam needs it).
# - **cosine decay** from $\eta$ to a floor $\eta_{\min}$ at step $S$ (Loshchilov & Hutter's
#   SGDR, 2017, without the restarts). Small late steps let the weights settle into the
#   minimum that large steps kept jumping over:
#
# $$\eta_t = \eta_{\min} + \tfrac12(\eta - \eta_{\min})
# \left(1 + \cos\left(\pi\,\frac{t - w}{S - w}\right)\right),\qquad w \le t \le S.$$
#
# `shared.training.lr_at` implements both. It equals PyTorch's `LinearLR` followed by
# `CosineAnnealingLR`, which we run side by side.

# %%
STEPS, WARMUP, PEAK, FLOOR = 1000, 100, 1e-3, 1e-4
ours = [lr_at(s, lr=PEAK, min_lr=FLOOR, warmup_steps=WARMUP, decay_steps=STEPS)
        for s in range(STEPS + 100)]

optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
warm = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / WARMUP, total_iters=WARMUP - 1)
cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=STEPS - WARMUP,
                                                    eta_min=FLOOR)
schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [warm, cosine], milestones=[WARMUP])
torch_lrs = []
for _ in range(STEPS + 1):
    torch_lrs.append(optimizer.param_groups[0]["lr"])
    optimizer.step()
    schedule.step()
print(f"max |lr_at - torch schedulers| over {STEPS + 1} steps: "
      f"{max(abs(a - b) for a, b in zip(ours, torch_lrs, strict=False)):.1e}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(ours, label="lr_at: warmup 100, cosine to 1000, then the floor")
ax.plot(range(0, STEPS + 1, 25), torch_lrs[::25], "o", ms=3,
        label="torch LinearLR + CosineAnnealingLR")
ax.axvline(WARMUP, color="gray", ls=":", lw=1)
ax.set(xlabel="optimizer update", ylabel="learning rate", title="Linear warmup + cosine decay")
ax.legend(loc="upper right", fontsize=8)
plt.show()

# %% [markdown]
# Now the effect. Three runs of 150 updates at a peak learning rate of $10^{-2}$, high for this
# model (made narrower, 48-dimensional, so that the three runs take seconds), differ only in
# the schedule: constant from the first step; 30 warmup updates then
# constant; 30 warmup updates then cosine decay to $10^{-3}$. Validation loss is the mean over
# the same 5 held-out batches (5,120 characters) every 50 updates.

# %%
SCHEDULE_STEPS = 150  # 2000 or more on a GPU


def schedule_run(warmup_steps: int, min_lr: float) -> History:
    config = TrainConfig(max_steps=SCHEDULE_STEPS, batch_size=BATCH_SIZE, block_size=BLOCK_SIZE,
                         lr=1e-2, min_lr=min_lr, warmup_steps=warmup_steps, eval_interval=50,
                         eval_batches=5, progress=False)
    return Trainer(small_gpt(d_model=48), data.train, data.val, config).fit()


counts = torch.bincount(data.train, minlength=data.tokenizer.vocab_size).double()
frequencies = counts / counts.sum()
unigram_loss = -(frequencies[frequencies > 0] * frequencies[frequencies > 0].log()).sum()
print(f"loss of predicting every character from its frequency alone: {unigram_loss:.3f}")
schedules = {
    "constant 1e-2, no warmup": schedule_run(0, 1e-2),
    "warmup 30, then constant": schedule_run(30, 1e-2),
    "warmup 30, then cosine to 1e-3": schedule_run(30, 1e-3),
}
for name, history in schedules.items():
    print(f"{name:<32} validation loss: "
          + " ".join(f"{v:.3f}" for v in history.val_loss))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, history in schedules.items():
    smooth = np.convolve(history.train_loss, np.ones(10) / 10, mode="valid")
    axes[0].plot(history.steps[9:], smooth, label=name)
    axes[1].plot(history.steps, history.lr, label=name)
axes[0].set(xlabel="optimizer update", ylabel="training loss (10-step mean)",
            title="The same model under three schedules")
axes[1].set(xlabel="optimizer update", ylabel="learning rate", title="The schedules")
axes[0].legend()
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Without warmup, the first full-size steps push the model onto a plateau near a loss of 3.2,
# just below the 3.31 of predicting characters from their frequencies alone (printed above):
# it has learned little more than which characters are common, and it stays there for about
# 100 updates before it recovers. With warmup the same peak rate trains steadily from the
# start. The cosine tail adds a further gain in the last third, when its learning rate has
# fallen well below the peak (validation loss 2.51 against 2.56). On a run this short the
# decimals are noisy; the ordering is the evidence.

# %% [markdown]
# ## Checkpoints that resume exactly
#
# A run depends on more than its weights. To continue as if nothing had happened, a
# checkpoint must hold:
#
# | what | why |
# |---|---|
# | weights | obviously |
# | optimizer state (AdamW's $m$, $v$ and step count) | the next update is computed from them |
# | the step | it sets the learning rate and Adam's bias correction |
# | random states (Python, NumPy, torch, CUDA) | dropout masks and any sampling |
# | the data position (the sampler's generator) | which batches come next |
# | the history | so that curves and logs continue |
#
# `Trainer.save_checkpoint` writes all of it: tensors to safetensors files, the rest to JSON,
# nothing pickled (the [saving notebook](06-saving-and-sharing) shows why that matters), into a
# fresh folder that replaces the old one only once it is complete.
#
# We now run the same 30-update training twice. The first run never stops. The second saves a
# checkpoint every 10 updates and crashes in update 27 (a loss function that raises stands in
# for a failed node); a new process (here: a new model with different initial weights and a new
# trainer) then resumes from the last checkpoint, update 20. Dropout is on, so the random state
# matters.

# %%
resume_config = TrainConfig(max_steps=30, batch_size=BATCH_SIZE, block_size=BLOCK_SIZE,
                            lr=3e-3, min_lr=3e-4, warmup_steps=5, eval_interval=15,
                            eval_batches=5, checkpoint_interval=10, progress=False)


class CrashingLoss:
    """The default loss, but raises during the given training update (a simulated failure)."""

    def __init__(self, crash_in_update: int) -> None:
        self.calls_left = crash_in_update - 1  # one training call per update (no accumulation)

    def __call__(self, model: GPT, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if model.training:
            if self.calls_left == 0:
                raise RuntimeError("simulated hardware failure")
            self.calls_left -= 1
        return default_loss(model, batch)


scratch = tempfile.TemporaryDirectory(prefix="training-loop-")  # removed when the kernel exits
workdir = Path(scratch.name)
reference_model = small_gpt(dropout=0.1)
reference = Trainer(reference_model, data.train, data.val, resume_config).fit()

crashing = Trainer(small_gpt(dropout=0.1), data.train, data.val, resume_config,
                   loss_fn=CrashingLoss(crash_in_update=27), checkpoint_dir=workdir / "ckpt")
try:
    crashing.fit()
except RuntimeError as error:
    print(f"the run stopped in update {crashing.step + 1}: {error}")

checkpoint = workdir / "ckpt"
state = json.loads((checkpoint / "trainer_state.json").read_text())
print(f"last checkpoint: update {state['step']}, {state['tokens_seen']:,} tokens seen")
for path in sorted(checkpoint.iterdir()):
    print(f"  {path.name:<28} {path.stat().st_size / 1000:>6.0f} kB")
print("JSON fields:", sorted(state))
with safe_open(checkpoint / "trainer_state.safetensors", framework="pt") as f:
    names = list(f.keys())
print(f"{len(names)} state tensors, e.g.", [n for n in names if n.startswith(("rng", "train"))])

# %% [markdown]
# The optimizer's moments are stored per parameter tensor (`optimizer.state.<i>.exp_avg`,
# `.exp_avg_sq`, `.step`), next to torch's random state (a byte tensor) and the sampler's
# generator state. Now the resumption:

# %%
resumed_model = small_gpt(seed=123, dropout=0.1)  # deliberately different initial weights
torch.manual_seed(999)  # and a disturbed global random state: the checkpoint must restore both
resumed_trainer = Trainer(resumed_model, data.train, data.val, resume_config)
resumed_trainer.load_checkpoint(checkpoint)
print(f"resuming at update {resumed_trainer.step}")
resumed = resumed_trainer.fit()

identical_weights = all(torch.equal(a, b) for a, b in
                        zip(reference_model.state_dict().values(),
                            resumed_model.state_dict().values(), strict=True))
print(f"every weight bitwise equal to the uninterrupted run: {identical_weights}")
for field in ("steps", "train_loss", "lr", "grad_norm", "tokens", "val_steps", "val_loss"):
    same = getattr(resumed, field) == getattr(reference, field)
    print(f"  history.{field:<11} identical: {same}")
print(f"final validation loss: uninterrupted {reference.val_loss[-1]:.6f}, "
      f"resumed {resumed.val_loss[-1]:.6f}")

# %% [markdown]
# Every weight and every logged number is identical; only the wall-clock times differ. (In
# your own scripts, `shared.training.train(..., checkpoint_dir=..., resume=True)` does the
# loading in one call.)
#
# ### What an incomplete resume does
#
# Most hand-written loops save `model.state_dict()` and little else. We resume from the same
# checkpoint three more times, each time leaving one piece out:
#
# - **no optimizer state**: AdamW's moments and step counter restart from zero (what you get
#   from saving only the weights);
# - **no random state**: the process reseeds as at start-up, so dropout draws the masks of
#   updates 1, 2, ... again;
# - **no data position**: the sampler restarts, so updates 21 to 30 see the batches of updates
#   1 to 10 a second time.

# %%
def incomplete_resume(leave_out: str) -> tuple[GPT, History]:
    model = small_gpt(seed=123, dropout=0.1)
    trainer = Trainer(model, data.train, data.val, resume_config)
    trainer.load_checkpoint(checkpoint)
    if leave_out == "optimizer state":
        trainer.optimizer.state.clear()  # fresh AdamW: m = v = 0, step = 0
    elif leave_out == "random state":
        shared.seed_everything(resume_config.seed)  # what a restarted script does first
    elif leave_out == "data position":
        trainer.train_source = RandomBlockSampler(data.train, BLOCK_SIZE, BATCH_SIZE,
                                                  seed=resume_config.seed)
    return model, trainer.fit()


incomplete = {name: incomplete_resume(name)
              for name in ("optimizer state", "random state", "data position")}
print(f"{'resume without':<16} {'max |weight diff|':>18} {'final val loss':>15}")
print(f"{'(complete)':<16} {max_weight_gap(resumed_model, reference_model):>18.2e} "
      f"{resumed.val_loss[-1]:>15.4f}")
for name, (model, history) in incomplete.items():
    print(f"{name:<16} {max_weight_gap(model, reference_model):>18.2e} "
          f"{history.val_loss[-1]:>15.4f}")
print(f"{'uninterrupted':<16} {'':>18} {reference.val_loss[-1]:>15.4f}")

# %%
start = state["step"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
steps = reference.steps[start - 10:]
axes[0].plot(steps, reference.train_loss[start - 10:], "k-", lw=2, label="uninterrupted")
for name, (model, history) in incomplete.items():
    axes[0].plot(steps, history.train_loss[start - 10:], label=f"resumed without {name}")
    gap = np.abs(np.array(history.train_loss[start:]) - np.array(reference.train_loss[start:]))
    axes[1].plot(reference.steps[start:], np.maximum(gap, 1e-4), label=f"without {name}")
axes[0].axvline(start, color="gray", ls=":", lw=1)
axes[0].set(xlabel="optimizer update", ylabel="training loss",
            title=f"Resuming at update {start}")
axes[1].set(yscale="log", ylim=(1e-4, 1), xlabel="optimizer update",
            ylabel="|loss - uninterrupted loss| (0 at the bottom)",
            title="Distance from the uninterrupted run (complete resume: 0)")
axes[0].legend(fontsize=8)
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Each incomplete resume leaves the uninterrupted trajectory with its first update (the loss
# of that update is still the same, because it is computed before the weights change):
#
# - Without the optimizer state, the first update after resuming is the largest of all:
#   Adam's bias correction on empty moments turns it into roughly $\eta \cdot
#   \mathrm{sign}(g)$ for every weight, the spike in the left panel. The run recovers, but it
#   is a different run.
# - Without the random state, the weights still drift apart, because different dropout masks
#   give different gradients. The loss values stay close, which is exactly why this bug
#   survives in practice.
# - Without the data position, the model revisits batches it has already learned from, so its
#   training loss is mostly lower, and less honest.
#
# After 10 more updates the three runs end with validation losses within 0.03 of the
# uninterrupted one: none of these mistakes is visible in a final number. Only the
# bitwise comparison shows the difference, and it is what lets you trust that a resumed
# 3-week run is the run you planned.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Accumulate with token-weighted scaling
#
# Write `accumulate_token_weighted(model, micro_batches)` that runs forward and backward on
# each `(x, y)` micro-batch so that, afterwards, the parameters' `.grad` equal the gradient of
# the mean loss over **all counted tokens** of all micro-batches (targets equal to `-100` are
# not counted). Do not concatenate the micro-batches: process them one at a time. Return the
# total number of counted tokens. The check compares the gradient with one big batch, on
# micro-batches with very different amounts of padding.

# %% tags=["solution"]
def accumulate_token_weighted(model: GPT,
                              micro_batches: list[tuple[torch.Tensor, torch.Tensor]]) -> int:
    """Backward over micro-batches so that .grad is the mean gradient over all counted tokens."""
    # BEGIN SOLUTION
    total = sum(int((y != -100).sum()) for _, y in micro_batches)
    for x, y in micro_batches:
        logits = model(x).logits
        summed = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                                   ignore_index=-100, reduction="sum")
        (summed / total).backward()
    return total
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close, check_equal, passed

exercise_model = small_gpt(seed=7)
x_check, y_check = RandomBlockSampler(data.train, BLOCK_SIZE, 12, seed=5).next_batch()
y_check = y_check.clone()
y_check[:4, 10:] = -100  # the first micro-batch is mostly padding
y_check[4:8, 50:] = -100
exercise_model(x_check, targets=y_check).loss.backward()
expected_grad = gradients(exercise_model)
n_counted = accumulate_token_weighted(
    exercise_model, list(zip(x_check.chunk(3), y_check.chunk(3), strict=True)))
check_equal(n_counted, int((y_check != -100).sum()), "accumulate_token_weighted return value")
check_close(gradients(exercise_model), expected_grad, "accumulated gradient", atol=1e-6)
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A warmup-stable-decay schedule
#
# Some recent recipes (MiniCPM, Hu et al. 2024) replace the cosine by a
# *warmup-stable-decay* (WSD) schedule: the same linear warmup as `lr_at`
# (`lr * (step + 1) / warmup_steps` for `step < warmup_steps`), then the constant peak `lr`
# until `decay_start`, then a straight line from `lr` at `decay_start` down to `min_lr` at
# `total_steps`, and `min_lr` after that. Its appeal: a run can be extended from any point of
# the stable phase, because nothing in it depends on the final length. Write `wsd_lr`.

# %% tags=["solution"]
def wsd_lr(step: int, *, lr: float, min_lr: float, warmup_steps: int, decay_start: int,
           total_steps: int) -> float:
    """Warmup-stable-decay: linear warmup, constant lr, linear decay to min_lr."""
    # BEGIN SOLUTION
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step < decay_start:
        return lr
    if step >= total_steps:
        return min_lr
    progress = (step - decay_start) / (total_steps - decay_start)
    return lr + (min_lr - lr) * progress
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_function

wsd = dict(lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_start=80, total_steps=100)
check_function(
    lambda step: wsd_lr(step, **wsd),
    [((0,), 1e-4), ((9,), 1e-3), ((10,), 1e-3), ((79,), 1e-3), ((80,), 1e-3),
     ((90,), 5.5e-4), ((95,), 3.25e-4), ((100,), 1e-4), ((150,), 1e-4)],
    "wsd_lr",
)
check_close(wsd_lr(4, **wsd), lr_at(4, lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=100),
            "wsd_lr during warmup (same as lr_at)")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: A complete checkpoint for a plain loop
#
# Below is a plain loop: a small model **with dropout**, SGD with momentum, and a data
# generator of its own. Write `save_state(model, optimizer, data_generator, step)` returning a
# dict that holds everything needed to continue exactly, and
# `load_state(state, model, optimizer, data_generator)` that restores it and returns the step.
# The check trains 10 steps straight through, then 5 steps, saves, serialises the dict with
# `torch.save` and reloads it with `torch.load(weights_only=True)` (so store only tensors,
# numbers, strings, lists and dicts), builds a *new* model, optimizer and generator with a
# different seed, restores, trains 5 more steps, and requires bitwise-equal weights.
# Hint: the global torch random state is `torch.get_rng_state()`; a generator has
# `get_state()`/`set_state()`.

# %% tags=["solution"]
def save_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               data_generator: torch.Generator, step: int) -> dict:
    """Everything the plain loop below needs to continue exactly."""
    # BEGIN SOLUTION
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "data_generator": data_generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "step": step,
    }
    # END SOLUTION


def load_state(state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               data_generator: torch.Generator) -> int:
    """Restore what save_state saved; return the step to continue from."""
    # BEGIN SOLUTION
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    data_generator.set_state(state["data_generator"])
    torch.set_rng_state(state["torch_rng"])
    return state["step"]
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check

def plain_setup(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Generator]:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                              torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    return net, opt, torch.Generator().manual_seed(seed + 1)


def plain_steps(net, opt, gen, first: int, last: int) -> None:
    for _ in range(first, last):
        x = torch.randn(16, 8, generator=gen)
        loss = ((net(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


straight = plain_setup(0)
plain_steps(*straight, 0, 10)

first_half = plain_setup(0)
plain_steps(*first_half, 0, 5)
buffer = io.BytesIO()
torch.save(save_state(*first_half, step=5), buffer)
buffer.seek(0)
saved = torch.load(buffer, weights_only=True)
torch.manual_seed(1234)  # a new process starts with another random state
second_half = plain_setup(99)
resume_step = load_state(saved, *second_half)
check_equal(resume_step, 5, "load_state return value")
plain_steps(*second_half, resume_step, 10)
check(all(torch.equal(a, b) for a, b in zip(straight[0].parameters(),
                                            second_half[0].parameters(), strict=True)),
      "resumed weights", "bitwise-equal weights to the uninterrupted 10-step run")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Where does a cosine schedule stand?
#
# A run of 600,000 updates uses 2,000 warmup updates, a peak of $6 \times 10^{-4}$ and a floor of
# $6 \times 10^{-5}$ (nanoGPT's GPT-2 recipe). Using `lr_at`, set `lr_half_way` to the learning rate
# at update 301,000 and `first_update_below_half_peak` to the first update whose learning
# rate is below half the peak. Then check your second answer against the closed form: the
# cosine term equals one half when $\cos(\pi p) = 2 \cdot \frac{\eta/2 - \eta_{\min}}{\eta -
# \eta_{\min}} - 1$.

# %% tags=["solution"]
lr_half_way = None
first_update_below_half_peak = None
# BEGIN SOLUTION
gpt2 = dict(lr=6e-4, min_lr=6e-5, warmup_steps=2000, decay_steps=600_000)
lr_half_way = lr_at(301_000, **gpt2)
first_update_below_half_peak = next(s for s in range(2000, 600_001)
                                    if lr_at(s, **gpt2) < 3e-4)
# END SOLUTION
print(lr_half_way, first_update_below_half_peak)

# %% tags=["check"]
check_close(lr_half_way, 6e-5 + 0.5 * 5.4e-4, "lr_half_way", rtol=1e-9)
p_half = math.acos(2 * (3e-4 - 6e-5) / 5.4e-4 - 1) / math.pi
check_equal(first_update_below_half_peak, math.floor(2000 + p_half * 598_000) + 1,
            "first_update_below_half_peak")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - A training step is: schedule the learning rate, accumulate gradients over micro-batches,
#   clip, step, clear. `shared.training.Trainer` is that loop plus logging, evaluation and
#   checkpoints, and matches the hand-written loop bit for bit.
# - Accumulating $k$ micro-batches with `(loss / k).backward()` reproduces the gradient of one
#   $k$-times larger batch to float rounding (measured: about $10^{-7}$ relative). Forgetting
#   the $1/k$ multiplies the gradient by $k$; AdamW hides that until gradient clipping
#   engages. With padding, divide summed token losses by the total token count, not the mean of
#   micro-batch means.
# - Linear warmup then cosine decay equals PyTorch's `LinearLR` + `CosineAnnealingLR`. At a
#   high peak rate, warmup kept this model off a 100-update plateau that the no-warmup run
#   fell onto.
# - A checkpoint that resumes exactly holds weights, optimizer moments, the step, every random
#   state and the data position. With all of them, a crashed and resumed run ends with
#   bitwise-identical weights and an identical loss history; leaving out any one of them gives
#   a different run whose final loss looks just as plausible.
#
# Next: [what a run costs](05-compute-costs) in FLOPs, time, money and energy.
#
# ## References
#
# - D. P. Kingma, J. Ba, "Adam: A method for stochastic optimization", ICLR 2015.
#   https://arxiv.org/abs/1412.6980
# - I. Loshchilov, F. Hutter, "SGDR: Stochastic gradient descent with warm restarts", ICLR 2017.
#   https://arxiv.org/abs/1608.03983
# - I. Loshchilov, F. Hutter, "Decoupled weight decay regularization" (AdamW), ICLR 2019.
#   https://arxiv.org/abs/1711.05101
# - P. Goyal et al., "Accurate, large minibatch SGD: Training ImageNet in 1 hour", 2017.
#   https://arxiv.org/abs/1706.02677
# - L. Liu et al., "On the variance of the adaptive learning rate and beyond" (RAdam), ICLR 2020.
#   https://arxiv.org/abs/1908.03265
# - N. Shazeer, M. Stern, "Adafactor: Adaptive learning rates with sublinear memory cost", ICML
#   2018. https://arxiv.org/abs/1804.04235
# - T. Brown et al., "Language models are few-shot learners" (GPT-3), NeurIPS 2020.
#   https://arxiv.org/abs/2005.14165
# - S. Hu et al., "MiniCPM: Unveiling the potential of small language models with scalable
#   training strategies" (the WSD schedule), 2024. https://arxiv.org/abs/2404.06395
# - A. Karpathy, nanoGPT (the loop and the schedule this notebook follows).
#   https://github.com/karpathy/nanoGPT
# - PyTorch, learning-rate schedulers. https://docs.pytorch.org/docs/stable/optim.html
# - PyTorch Lightning, optimization and gradient accumulation.
#   https://lightning.ai/docs/pytorch/stable/common/optimization.html
# - Weights & Biases, "How to avoid exploding gradients".
#   https://wandb.ai/site/articles/how-to-avoid-exploding-gradients
