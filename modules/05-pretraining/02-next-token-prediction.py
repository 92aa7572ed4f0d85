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
# # Next-token prediction: the loss, perplexity and confidence
#
# Every GPT is pretrained on one task: given the tokens so far, put a probability on every
# possible next token, and pay $-\log p$ of the token that actually came. Everything a base
# model knows is a by-product of getting better at this. This notebook makes that loss concrete
# on a character-level model of Shakespeare: it checks the causal mask that keeps the task
# honest, turns the loss into perplexity, pretrains a small GPT live for a few seconds and
# compares it with the course model trained for 37 minutes by the same code, swaps the
# cross-entropy for the focal loss to see what that does to the model's confidence, and
# measures where a trained model is sure of itself and where it is not.
#
# **Learning objectives**
# - Write the causal language-modelling loss by hand, match it to the model's, and show with a
#   measurement that the causal mask stops a position from seeing its own target.
# - Convert losses to perplexity and bits per character, and place a model between the uniform,
#   unigram and bigram baselines.
# - Pretrain a small GPT with `shared.training` and read its loss curve and samples against a
#   model trained longer.
# - Compare cross-entropy with the focal loss (Lin et al., 2017) on the same model through
#   calibration: reliability diagrams and the expected calibration error.
# - Measure a trained model's confidence by kind of character and by kind of text.
#
# **Prerequisites:** [probability for language models](../00-foundations/02-probability)
# (cross-entropy, perplexity), [a minimal GPT](../04-llm-from-scratch/01-minimal-llm) and
# [pretraining data](01-pretraining-data) (batches of inputs and shifted targets).
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
import random
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import shared
from shared.assets import corpus
from shared.checkpoints import course_model, course_model_info, course_tokenizer
from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.generation import generate
from shared.models import GPT, GPTConfig
from shared.training import TrainConfig, evaluate_loss, train

torch.set_num_threads(1)  # small models: one thread avoids the overhead of two
shared.seed_everything(0)
print(shared.environment_summary("matplotlib"))

# %% [markdown]
# ## The causal language-modelling loss
#
# A causal language model factorises the probability of a sequence left to right,
# $p(x_1, \dots, x_T) = \prod_t p(x_t \mid x_{<t})$, and is trained to maximise it, that is to
# minimise the mean negative log-likelihood of each token given the ones before it:
#
# $$\mathcal{L} = -\frac{1}{T}\sum_{t=1}^{T} \log p_\theta(x_t \mid x_{<t}) .$$
#
# This is the cross-entropy between the one-hot "true next token" and the model's softmax, at
# every position of every sequence at once (Radford et al., 2018). The data is tiny Shakespeare
# at the character level (65 characters; the first 90% trains, the last 10% validates), and the
# model is the course's checkpoint `shakespeare-char`: a 6-layer GPT that
# `scripts/train_course_models.py` trained with `shared.training`.

# %%
data = shakespeare_char_data(block_size=64)
tokenizer, V = data.tokenizer, data.tokenizer.vocab_size
checkpoint = course_model("shakespeare-char")
info = course_model_info("shakespeare-char")
assert course_tokenizer("shakespeare-char").chars == tokenizer.chars  # same 65 characters
print(f"vocabulary: {V} characters; train {len(data.train):,} / validation {len(data.val):,} tokens")
print(f"checkpoint: {info['parameters']:,} parameters, {info['steps']:,} steps "
      f"({info['tokens_seen']:,} tokens), {info['wall_time_s'] / 60:.1f} min; recorded "
      f"validation loss {info['val_loss_full_split']:.4f} (whole split)")

CONTEXT = checkpoint.config.block_size  # 256
val_windows = data.val[: (len(data.val) - 1) // CONTEXT * CONTEXT + 1]
x = val_windows[:-1].view(-1, CONTEXT)[:4]  # four non-overlapping windows of the validation text
y = val_windows[1:].view(-1, CONTEXT)[:4]  # the same windows shifted by one: the next characters
with torch.no_grad():
    out = checkpoint(x, targets=y)
log_probs = F.log_softmax(out.logits, dim=-1)
by_hand = -log_probs.gather(-1, y.unsqueeze(-1)).mean()
print(f"loss by hand {by_hand.item():.6f}, model's loss {out.loss.item():.6f}")

# %% [markdown]
# ### The causal mask keeps the task honest
#
# The target at position $t$ is the input at position $t + 1$. If position $t$ could attend to
# position $t + 1$, it could copy its answer. The attention mask forbids that, and we can check
# it by measurement: change one character in the middle of a window, and the logits before it
# must not move at all, while the logits from there on may.

# %%
t_change = 100
edited = x[:1].clone()
edited[0, t_change] = (edited[0, t_change] + 1) % V
with torch.no_grad():
    original_logits, edited_logits = checkpoint(x[:1]).logits, checkpoint(edited).logits
change = (edited_logits - original_logits).abs().amax(dim=-1)[0]
print(f"max |change| of the logits before position {t_change}: {change[:t_change].max().item():.1e}; "
      f"at and after it: {change[t_change:].max().item():.2f}")


# %% [markdown]
# What the mask prevents is easy to show. Below is the smallest possible transformer language
# model (embeddings, one attention layer, an MLP, a head), trained twice on the same batches for
# the same next-character targets: once with causal attention, once with attention over the
# whole window.

# %%
class OneLayerLM(torch.nn.Module):
    """Token + position embeddings, one single-head attention layer, an MLP and a linear head."""

    def __init__(self, causal: bool, d: int = 64, block_size: int = 64) -> None:
        super().__init__()
        self.causal = causal
        self.tok_emb = torch.nn.Embedding(V, d)
        self.pos_emb = torch.nn.Embedding(block_size, d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.mlp = torch.nn.Sequential(torch.nn.LayerNorm(d), torch.nn.Linear(d, 4 * d),
                                       torch.nn.GELU(), torch.nn.Linear(4 * d, d))
        self.head = torch.nn.Linear(d, V)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        h = h + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=self.causal))
        return self.head(h + self.mlp(h))


def sample_one_layer(model: OneLayerLM, prompt: str = "ROMEO:\n", n_chars: int = 80) -> str:
    idx, generator = torch.tensor([tokenizer.encode(prompt)]), torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(n_chars):
            probs = F.softmax(model(idx[:, -64:])[:, -1] / 0.8, dim=-1)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return tokenizer.decode(idx[0])


for causal in (True, False):
    torch.manual_seed(0)
    model = OneLayerLM(causal)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sampler = RandomBlockSampler(data.train, block_size=64, batch_size=32, seed=0)
    for step in range(150):
        xb, yb = sampler.next_batch()
        loss = F.cross_entropy(model(xb).reshape(-1, V), yb.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"{'causal' if causal else 'no mask':>8}: training loss after 150 steps {loss.item():.3f}; "
          f"sample: {sample_one_layer(model)!r}")

# %% [markdown]
# Without the mask the training loss collapses towards zero: the model learns to read the next
# character from position $t + 1$ and copy it. When it generates, position $t + 1$ does not
# exist yet, and the copy trick produces garbage. The causal model's loss is higher and honest,
# and its samples already have the look of English.

# %% [markdown]
# ## Perplexity
#
# The loss is in nats per token. Two other units are common: **bits per character**,
# $\mathcal{L} / \ln 2$, and **perplexity**, $e^{\mathcal{L}}$, the size of a uniform choice
# that would be as uncertain as the model. A model that knows nothing spreads its mass over all
# $V = 65$ characters: perplexity 65. Counting how often each character occurs (a unigram
# model) already does much better. We measure the checkpoint on 32 windows of 256 characters
# spread evenly over the validation split (8,192 characters).

# %%
def perplexity(loss: float) -> float:
    return math.exp(loss)


N_EVAL_WINDOWS = 32
spread = torch.linspace(0, (len(val_windows) - 1) // CONTEXT - 1, N_EVAL_WINDOWS).long()
eval_x = val_windows[:-1].view(-1, CONTEXT)[spread]  # 32 windows spread over the split
eval_y = val_windows[1:].view(-1, CONTEXT)[spread]
eval_batches = [(eval_x[i : i + 8], eval_y[i : i + 8]) for i in range(0, N_EVAL_WINDOWS, 8)]
checkpoint_loss = evaluate_loss(checkpoint, eval_batches)

unigram = torch.bincount(data.train, minlength=V).float() + 1  # add-one smoothing
unigram_loss = -torch.log(unigram / unigram.sum())[data.val].mean().item()
baselines = {"uniform": math.log(V), "unigram": unigram_loss, "checkpoint": checkpoint_loss}
for name, loss in baselines.items():
    print(f"{name:>10}: loss {loss:.3f} nats = {loss / math.log(2):.2f} bits/char, "
          f"perplexity {perplexity(loss):5.2f}")
print(f"(the checkpoint's recorded loss on the whole validation split: "
      f"{info['val_loss_full_split']:.4f})")

# %% [markdown]
# A perplexity of about 5 means the checkpoint is, on average, as uncertain as a fair choice
# among five characters, against 65 for a uniform guess and about 28 for character frequencies
# alone. Our 8,192-character estimate is about 0.05 nats above the recorded figure for the whole
# split; 32 windows are a sample, and the difficulty of the text varies along the play.

# %% [markdown]
# ## Pretraining a small GPT, live
#
# Now a model of our own, trained from scratch here by the same code that made the checkpoint
# (`shared.models.GPT` and `shared.training.train`: AdamW, warmup and cosine decay, clipping),
# but small and briefly: 2 layers, 64 dimensions, a context of 64 characters, 200 steps of
# 32 sequences. Before training, it samples noise.

# %%
LIVE_STEPS = 200  # 2,000+ (and a wider model) on a GPU: see the checkpoint
live_config = GPTConfig(vocab_size=V, block_size=64, n_layer=2, n_head=4, d_model=64, bias=False)
train_config = TrainConfig(max_steps=LIVE_STEPS, batch_size=32, block_size=64, lr=3e-3,
                           min_lr=3e-4, warmup_steps=20, eval_interval=50, eval_batches=8,
                           seed=0, progress=False)
PROMPT = "ROMEO:\n"


def sample(model: GPT, n_chars: int = 200, seed: int = 0) -> str:
    """Sampled text (temperature 0.8) after PROMPT, from a fixed random generator."""
    idx = torch.tensor([tokenizer.encode(PROMPT)])
    out = generate(model, idx, n_chars, do_sample=True, temperature=0.8,
                   generator=torch.Generator().manual_seed(seed))
    return tokenizer.decode(out[0])


torch.manual_seed(0)
live_model = GPT(live_config)
print(f"live model: {live_model.num_parameters():,} parameters")
print("--- sample before training ---\n" + sample(live_model))

# %%
history = train(live_model, data.train, data.val, train_config)
print(f"validation loss: {history.val_loss[0]:.3f} at step 0 -> {history.final_val_loss:.3f} "
      f"at step {LIVE_STEPS} ({history.tokens[-1]:,} tokens)")
print("--- sample after training ---\n" + sample(live_model))
print("--- sample from the checkpoint ---\n" + sample(checkpoint))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
history.plot(ax=axes[0], title=f"Live run: {LIVE_STEPS} steps of the small GPT")
tokens_per_step = history.tokens[0]  # 32 sequences x 64 characters
axes[1].plot(np.array(history.val_steps) * tokens_per_step / 1e6, history.val_loss, "o-",
             label=f"live run ({live_model.num_parameters() / 1e3:.0f}k parameters)")
checkpoint_tokens = np.array(info["val_curve"]["steps"]) * info["tokens_seen"] / info["steps"]
axes[1].plot(checkpoint_tokens / 1e6, info["val_curve"]["loss"], "s-",
             label=f"checkpoint ({info['parameters'] / 1e6:.1f}M parameters, recorded)")
for name, loss, style in [("uniform", math.log(V), ":"), ("unigram", unigram_loss, "--")]:
    axes[1].axhline(loss, color="gray", ls=style, label=name)
axes[1].set(xlabel="training tokens seen (millions)", ylabel="validation loss (nats/char)",
            title="Validation loss against data seen")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# In a few seconds the small model drops from $\ln 65 = 4.17$ to about 2.4 nats: it has learned
# which characters follow which (the samples have word-like chunks, capitals after newlines and
# speaker-like lines) but not words. The checkpoint, with 25 times the parameters and 15 times
# the tokens, goes on to 1.6, where the samples hold real words and the shape of a play. The
# losses of the two runs are on the same validation text and directly comparable.

# %% [markdown]
# ## Cross-entropy or focal loss
#
# Cross-entropy weighs every token by $-\log p_t$, where $p_t$ is the probability the model gave
# the right token. The **focal loss** (Lin et al., 2017, for object detection, where easy
# background examples swamp the rare hard ones) multiplies it by $(1 - p_t)^\gamma$:
#
# $$\mathrm{FL}(p_t) = -(1 - p_t)^\gamma \log p_t .$$
#
# Tokens the model already predicts well ($p_t \to 1$) contribute almost nothing, so training
# concentrates on the hard ones; $\gamma = 0$ is cross-entropy. What does this do to a language
# model? The loss it minimises is no longer the log-likelihood, so we should expect its
# probabilities to stop meaning what they say. We train the same small model, from the same
# initial weights and on the same batches, with $\gamma = 2$ (the paper's choice).

# %%
def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean focal loss over all positions; gamma = 0 gives cross-entropy."""
    log_p = F.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (-(1 - log_p.exp()) ** gamma * log_p).mean()


check_logits, check_targets = torch.randn(4, 7, V), torch.randint(V, (4, 7))
print(f"gamma=0 vs F.cross_entropy: "
      f"{(focal_loss(check_logits, check_targets, 0.0) - F.cross_entropy(check_logits.view(-1, V), check_targets.view(-1))).abs().item():.1e}")

torch.manual_seed(0)
focal_model = GPT(live_config)  # the same initial weights as live_model had
focal_history = train(focal_model, data.train, data.val, train_config,
                      loss_fn=lambda model, batch: focal_loss(model(batch[0]).logits, batch[1]))
print(f"focal run: final training focal loss {focal_history.final_train_loss:.3f}")

# %% [markdown]
# To compare the two models fairly we evaluate both on the same 16 validation batches
# (32,768 characters) with the same measures: the cross-entropy (negative log-likelihood), the
# accuracy of the most likely character, the mean *confidence* (the probability of the most
# likely character), and the **expected calibration error** (Guo et al., 2017): group
# predictions into 15 bins of confidence, and average |accuracy - confidence| over the bins,
# weighted by how many predictions fall in each. A calibrated model that says 70% is right 70%
# of the time.

# %%
calibration_sampler = RandomBlockSampler(data.val, block_size=64, batch_size=32, seed=7)
calibration_batches = [calibration_sampler.next_batch() for _ in range(16)]


@torch.no_grad()
def predictions(model: GPT, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, V) and targets (N,) over all positions of the batches."""
    model.eval()
    logits = torch.cat([model(xb).logits.reshape(-1, V) for xb, _ in batches])
    return logits, torch.cat([yb.reshape(-1) for _, yb in batches])


def calibration(logits: torch.Tensor, targets: torch.Tensor, n_bins: int = 15) -> dict:
    """NLL, accuracy, mean confidence, ECE and the per-bin reliability of argmax predictions."""
    probs = logits.softmax(-1)
    confidence, predicted = probs.max(-1)
    correct = (predicted == targets).float()
    bins = torch.clamp((confidence * n_bins).long(), max=n_bins - 1)
    count = torch.bincount(bins, minlength=n_bins).float()
    bin_accuracy = torch.bincount(bins, correct, minlength=n_bins) / count.clamp(min=1)
    bin_confidence = torch.bincount(bins, confidence, minlength=n_bins) / count.clamp(min=1)
    ece = (count / count.sum() * (bin_accuracy - bin_confidence).abs()).sum().item()
    return {"nll": F.cross_entropy(logits, targets).item(), "accuracy": correct.mean().item(),
            "confidence": confidence.mean().item(), "max_confidence": confidence.max().item(),
            "ece": ece, "count": count,
            "bin_accuracy": bin_accuracy, "bin_confidence": bin_confidence}


results = {name: calibration(*predictions(model, calibration_batches))
           for name, model in [("cross-entropy", live_model), ("focal, gamma=2", focal_model)]}
print(f"{'trained with':>15} | NLL   | perplexity | accuracy | confidence (mean, max) | ECE")
for name, r in results.items():
    print(f"{name:>15} | {r['nll']:.3f} | {perplexity(r['nll']):10.2f} | {r['accuracy']:8.1%} | "
          f"{r['confidence']:10.1%}, {r['max_confidence']:9.1%} | {r['ece']:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (name, r) in zip(axes, results.items()):
    used = r["count"] > 0
    centres = (torch.arange(15) + 0.5) / 15
    ax.bar(centres[used], r["bin_accuracy"][used], width=1 / 15, edgecolor="black",
           alpha=0.7, label="accuracy in bin")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.plot(r["bin_confidence"][used], r["bin_accuracy"][used], "o", color="tab:red",
            label="(mean confidence, accuracy)")
    ax.set(xlabel="confidence (max probability)", title=f"{name}: ECE {r['ece']:.3f}")
axes[0].set_ylabel("accuracy")
axes[0].legend(fontsize=8, loc="upper left")
fig.suptitle("Reliability diagrams on the same validation characters")
plt.tight_layout()
plt.show()

# %% [markdown]
# The model trained with cross-entropy is close to calibrated: its mean confidence is within a
# fraction of a point of its accuracy and its points sit on the diagonal, as is typical of a
# model trained by maximum likelihood that has not yet fitted its training data. The focal
# model ranks characters about as well (the same accuracy to within half a point, nearly the
# same NLL), but it is *under*-confident, and more so the surer it is: where it says 55% it is
# right about 75% of the time, and it never says more than 82% (the cross-entropy model goes up
# to 95%). Most of its predictions
# have low confidence, where the gap is small, so its mean confidence is only 3 points below
# its accuracy, but its calibration error is three times that of cross-entropy. Down-weighting the tokens it already gets right
# tells it to stop pushing their probability up. Mukhoti et al. (2020) proposed the focal loss
# to *fix* over-confidence in large image classifiers trained until they fit their training
# data; a small language model trained for 200 steps is nowhere near that regime, and the same
# loss pushes it the other way. What changed is not what the model ranks first but what its
# probabilities mean. Exercise 2 repairs the focal model with temperature scaling.

# %% [markdown]
# ## Confidence by kind of character and by kind of text
#
# A trained model's uncertainty is not spread evenly. We take the checkpoint's predictions on
# the 32 validation windows and group them by what the *next* character is: a letter that
# starts a word, a letter inside a word, a space, a newline, or punctuation. For each group we
# report the loss, the mean probability the model gave the right character, and how often the
# right character was its first choice. (Grouping by the true answer is not a calibration
# measurement: confidence must be compared with accuracy over groups chosen from the
# predictions alone, as the reliability diagrams above do.)

# %%
with torch.no_grad():
    eval_logits = checkpoint(eval_x).logits
eval_probs = eval_logits.softmax(-1)
target_chars = [tokenizer.chars[i] for i in eval_y.flatten().tolist()]
previous_chars = [tokenizer.chars[i] for i in eval_x.flatten().tolist()]


def char_class(char: str, previous: str) -> str:
    if char.isalpha():
        return "letter, inside a word" if previous.isalpha() or previous == "'" else "letter, word start"
    if char == " ":
        return "space"
    if char == "\n":
        return "newline"
    return "punctuation"


classes = np.array([char_class(c, p) for c, p in zip(target_chars, previous_chars)])
p_true = eval_probs.view(-1, V).gather(1, eval_y.view(-1, 1)).squeeze(1).numpy()
correct = (eval_probs.view(-1, V).argmax(-1) == eval_y.view(-1)).numpy()
class_names = ["letter, word start", "letter, inside a word", "space", "newline", "punctuation"]
print(f"{'next character':>22} | share | loss  | p(right character) | right one ranked first")
for name in class_names:
    sel = classes == name
    print(f"{name:>22} | {sel.mean():5.1%} | {-np.log(p_true[sel]).mean():.3f} | "
          f"{p_true[sel].mean():18.1%} | {correct[sel].mean():8.1%}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].bar(class_names, [-np.log(p_true[classes == n]).mean() for n in class_names],
            color="tab:purple")
axes[0].set(xlabel="next character", ylabel="mean loss (nats)",
            title="Checkpoint loss by kind of next character")
axes[1].bar(class_names, [p_true[classes == n].mean() for n in class_names], color="tab:green",
            label="mean probability of the right character")
axes[1].plot(class_names, [correct[classes == n].mean() for n in class_names], "ko",
             label="share ranked first")
axes[1].set(xlabel="next character", ylabel="probability / share", ylim=(0, 1),
            title="How sure and how right, by kind of character")
axes[1].legend(fontsize=8)
for ax in axes:
    ax.tick_params(axis="x", rotation=20)
plt.tight_layout()
plt.show()

# %% [markdown]
# The first letter of a word is where the model is least sure: it gives the right letter 8% on
# average, because it is choosing the next word. Once a word has started, the rest of it is far
# easier. Spaces and newlines are the easiest of all (above 70%): where a word ends is usually
# clear from the letters so far. Punctuation is hard, since whether a clause ends with a comma,
# a colon or nothing is the author's choice. An average over a whole text hides this
# structure: most of the loss is spent at the starts of words.
#
# The second split is by kind of text. The checkpoint was trained on the first 90% of tiny
# Shakespeare, which is made of play scripts. We compare four texts, 32 windows of 256
# characters each (keeping only characters in its vocabulary): its own training text, the
# held-out validation plays, the Sonnets (the same author, in verse rather than dialogue, from
# `corpus("shakespeare")`) and modern movie-review sentences (`corpus("sentiment-movies")`,
# joined by newlines).

# %%
def in_vocabulary(text: str) -> str:
    return "".join(c for c in text if c in tokenizer.stoi)


def windows(ids: torch.Tensor, n: int = N_EVAL_WINDOWS) -> tuple[torch.Tensor, torch.Tensor]:
    """n windows of CONTEXT tokens spread evenly over ids, and their next-token targets."""
    starts = torch.linspace(0, len(ids) - CONTEXT - 1, n).long()
    index = starts[:, None] + torch.arange(CONTEXT)
    return ids[index], ids[index + 1]


sonnets = corpus("shakespeare")["Sonnets"]
reviews = "\n".join(r["text"] for r in corpus("sentiment-movies")[:300])
domains = {
    "training text (plays)": windows(data.train),
    "validation (held-out plays)": (eval_x, eval_y),
    "the Sonnets": windows(torch.tensor(tokenizer.encode(in_vocabulary(sonnets)))),
    "movie reviews (modern)": windows(torch.tensor(tokenizer.encode(in_vocabulary(reviews)))),
}
domain_results = {name: calibration(*predictions(checkpoint, [batch]))
                  for name, batch in domains.items()}
print(f"{'text':>28} | loss  | perplexity | accuracy | confidence | ECE")
for name, r in domain_results.items():
    print(f"{name:>28} | {r['nll']:.3f} | {perplexity(r['nll']):10.2f} | {r['accuracy']:8.1%} | "
          f"{r['confidence']:10.1%} | {r['ece']:.3f}")
print("a line of each:", [tokenizer.decode(batch[0][1, :50]) for batch in domains.values()])

fig, ax = plt.subplots(figsize=(8, 3.8))
positions = np.arange(len(domain_results))
ax.bar(positions - 0.2, [r["accuracy"] for r in domain_results.values()], 0.4, label="accuracy")
ax.bar(positions + 0.2, [r["confidence"] for r in domain_results.values()], 0.4,
       label="mean confidence")
ax.set_xticks(positions, list(domain_results), rotation=10)
ax.set(xlabel="text", ylabel="share / probability", ylim=(0, 0.7),
       title="The checkpoint's accuracy and confidence by kind of text")
ax.legend()
plt.show()

# %% [markdown]
# On its own training text the checkpoint is calibrated: confidence and accuracy agree within
# a point. On held-out Shakespeare, plays or sonnets, its loss is higher and it is
# over-confident by a few points: after 6 passes over the training text (training loss 1.38,
# validation 1.59), it has started to fit that text in particular, and its probabilities carry
# that over. On modern prose the vocabulary, spelling and rhythm are new: the loss rises to 2.2
# nats and confidence exceeds accuracy by about 10 points, with an ECE of about 0.1. A model's
# probabilities are trustworthy on the distribution it was fitted to; away from it they claim
# more than they deliver.

# %% [markdown]
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The bigram baseline
#
# A bigram model predicts each character from the one before it, with probabilities
# $p(b \mid a) = (n_{ab} + 1) / (n_a + V)$ from counts on the training split (add-one
# smoothing). Write `bigram_loss(train_ids, val_ids, vocab_size)` returning its mean negative
# log-likelihood (nats) on the validation split (every character of `val_ids` after the first,
# given the one before it), without Python loops over characters. Then set `bigram_perplexity`
# to its perplexity on `data.val`. Where does it sit next to the live model?

# %% tags=["solution"]
def bigram_loss(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int) -> float:
    """Mean NLL of an add-one-smoothed bigram model fitted on train_ids, on val_ids."""
    # BEGIN SOLUTION
    pairs = train_ids[:-1] * vocab_size + train_ids[1:]
    counts = torch.bincount(pairs, minlength=vocab_size**2).view(vocab_size, vocab_size).float()
    probs = (counts + 1) / (counts.sum(1, keepdim=True) + vocab_size)
    return -torch.log(probs[val_ids[:-1], val_ids[1:]]).mean().item()
    # END SOLUTION


bigram_perplexity = None
# BEGIN SOLUTION
bigram_perplexity = perplexity(bigram_loss(data.train, data.val, V))
# END SOLUTION
print(f"bigram perplexity {bigram_perplexity}; live model {perplexity(results['cross-entropy']['nll']):.2f}")

# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_in_range, passed

check_close(bigram_loss(torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1]), 2), -math.log(3 / 4),
            "bigram_loss on train [0, 1, 0, 1], val [0, 1], V=2")
check_close(bigram_loss(torch.tensor([0, 0, 0]), torch.tensor([1, 1, 0]), 3), -math.log(1 / 3),
            "bigram_loss when the context never occurred in training")
train_list, val_list = data.train[:20_000].tolist(), data.val[:5_000].tolist()
pair_counts, first_counts = Counter(zip(train_list[:-1], train_list[1:])), Counter(train_list[:-1])
expected_loss = np.mean([-math.log((pair_counts[(a, b)] + 1) / (first_counts[a] + V))
                         for a, b in zip(val_list[:-1], val_list[1:])])
check_close(bigram_loss(data.train[:20_000], data.val[:5_000], V), expected_loss,
            "bigram_loss on 20,000 training and 5,000 validation characters", rtol=1e-4)
check_in_range(bigram_perplexity, 5.0, 20.0, "bigram_perplexity")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Temperature scaling repairs the focal model
#
# Guo et al. (2017) calibrate a trained model after the fact by dividing its logits by one
# temperature $T$, fitted to minimise the NLL on held-out data. It does not change which
# character is most likely, only how sure the model is. Using the focal model's logits on
# `calibration_batches` (from `predictions`), fit $T$ on the first 8 batches by trying every
# value of `np.linspace(0.2, 2.0, 91)`, and set `best_temperature` to the one with the lowest
# NLL. Then set `ece_before` and `ece_after` to the ECE (from `calibration`) on the last 8
# batches with the logits as they are and divided by `best_temperature`.

# %% tags=["solution"]
best_temperature = None
ece_before = None
ece_after = None
# BEGIN SOLUTION
focal_logits_fit, focal_targets_fit = predictions(focal_model, calibration_batches[:8])
focal_logits_test, focal_targets_test = predictions(focal_model, calibration_batches[8:])
temperatures = np.linspace(0.2, 2.0, 91)
nll_by_temperature = [F.cross_entropy(focal_logits_fit / t, focal_targets_fit).item() for t in temperatures]
best_temperature = float(temperatures[int(np.argmin(nll_by_temperature))])
ece_before = calibration(focal_logits_test, focal_targets_test)["ece"]
ece_after = calibration(focal_logits_test / best_temperature, focal_targets_test)["ece"]
# END SOLUTION
print(f"best temperature {best_temperature}; ECE before {ece_before}, after {ece_after}")

# %% tags=["check"]
logits_fit, targets_fit = predictions(focal_model, calibration_batches[:8])
grid = np.linspace(0.2, 2.0, 91)
losses_on_grid = [F.cross_entropy(logits_fit / t, targets_fit).item() for t in grid]
check_close(best_temperature, grid[int(np.argmin(losses_on_grid))], "best_temperature")
check(best_temperature < 1.0, "best_temperature",
      "a temperature below 1 (sharpening) for a model that is under-confident")
logits_test, targets_test = predictions(focal_model, calibration_batches[8:])
check_close(ece_before, calibration(logits_test, targets_test)["ece"], "ece_before")
check(ece_after is not None and ece_after < ece_before, "ece_after",
      "a lower calibration error after temperature scaling")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: A language model as a judge of text
#
# A language model scores any text: the mean negative log-likelihood of each character given
# the ones before it. Write `text_nll(model, text)` that returns it for a string (encode with
# `tokenizer`, predict characters 2 to n from characters 1 to n-1 in one forward pass; the text
# is shorter than the model's context). Then set `shuffle_gap` to the NLL of a line with its
# words put in a random order minus the NLL of the original line, for the checkpoint and the
# line below (shuffle the list of words with `random.Random(0).shuffle`, join with spaces).

# %% tags=["solution"]
LINE = "Now is the winter of our discontent made glorious summer by this sun of York"


@torch.no_grad()
def text_nll(model: GPT, text: str) -> float:
    """Mean NLL (nats per character) of text[1:] given its prefix."""
    # BEGIN SOLUTION
    ids = torch.tensor([tokenizer.encode(text)])
    return model(ids[:, :-1], targets=ids[:, 1:]).loss.item()
    # END SOLUTION


shuffle_gap = None
# BEGIN SOLUTION
shuffled_words = LINE.split()
random.Random(0).shuffle(shuffled_words)
shuffle_gap = text_nll(checkpoint, " ".join(shuffled_words)) - text_nll(checkpoint, LINE)
# END SOLUTION
print(f"NLL of the line: {text_nll(checkpoint, LINE):.3f}; shuffled minus original: {shuffle_gap}")

# %% tags=["check"]
ids_line = torch.tensor(tokenizer.encode(LINE))
with torch.no_grad():
    manual = F.cross_entropy(checkpoint(ids_line[None, :-1]).logits[0], ids_line[1:]).item()
check_close(text_nll(checkpoint, LINE), manual, "text_nll(checkpoint, LINE)", rtol=1e-5)
check_close(text_nll(live_model, "To be, or not to be"),
            live_model(torch.tensor([tokenizer.encode("To be, or not to be")])[:, :-1],
                       targets=torch.tensor([tokenizer.encode("To be, or not to be")])[:, 1:]).loss.item(),
            "text_nll(live_model, ...)", rtol=1e-5)
words_check = LINE.split()
random.Random(0).shuffle(words_check)
check_close(shuffle_gap, text_nll(checkpoint, " ".join(words_check)) - manual, "shuffle_gap", rtol=1e-4)
check(shuffle_gap > 0, "shuffle_gap", "the shuffled line to be less likely than the real one")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - The causal LM loss is the mean of $-\log p(x_t \mid x_{<t})$ over every position: one
#   cross-entropy over the logits, matched by hand to the model's. The causal mask makes the
#   logits before a position independent of it (measured: no change at all), which keeps the
#   model from reading its own target.
# - Perplexity $e^{\mathcal{L}}$ reads as an effective number of choices: 65 for a uniform
#   guess, about 27 for character frequencies, about 5 for the course checkpoint.
# - A 2-layer GPT trained here for 200 steps reached about 2.4 nats (bigram level, Exercise 1);
#   the checkpoint, larger and trained 15 times longer by the same code, reached 1.6.
# - The focal loss changed what the probabilities mean, not what the model ranks first:
#   trained with $\gamma = 2$, the small model was under-confident (ECE three times that of
#   cross-entropy, which left it near calibrated). Temperature scaling reduces that after the
#   fact.
# - Confidence is uneven: the checkpoint is least sure at the start of a word and most sure
#   at its end. It is calibrated on its training text, a little over-confident on held-out
#   Shakespeare and about 10 points over-confident on modern prose.
#
# Next: [self-supervised objectives](03-self-supervised-objectives) beyond next-token
# prediction.
#
# ## References
#
# - A. Radford, K. Narasimhan, T. Salimans, I. Sutskever, "Improving language understanding by
#   generative pre-training", OpenAI, 2018.
#   https://cdn.openai.com/research-covers/language-unsupervised/language_understanding_paper.pdf
# - A. Radford et al., "Language models are unsupervised multitask learners", OpenAI, 2019.
#   https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
# - J. Kaplan et al., "Scaling laws for neural language models", 2020.
#   https://arxiv.org/abs/2001.08361
# - T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal loss for dense object
#   detection", ICCV 2017. https://arxiv.org/abs/1708.02002
# - C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern neural networks",
#   ICML 2017. https://arxiv.org/abs/1706.04599
# - J. Mukhoti et al., "Calibrating deep neural networks using focal loss", NeurIPS 2020.
#   https://arxiv.org/abs/2002.09437
# - L. Voita, "Language modeling", NLP Course For You.
#   https://lena-voita.github.io/nlp_course/language_modeling.html
# - A. Karpathy, nanoGPT (the `shakespeare_char` recipe). https://github.com/karpathy/nanoGPT
