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
# # Compression: sparsity, pruning and distillation
#
# Trained networks are larger than they need to be. Han et al. (2015) removed about 90% of the
# weights of AlexNet and VGG-16 without losing accuracy; Frankle and Carbin (2019) found small
# subnetworks that train as well as the whole; Michel et al. (2019) removed a large share of
# the attention heads of a trained BERT at little cost; DistilBERT (Sanh et al., 2019) kept 97% of BERT's
# language understanding with 40% fewer parameters. Compression matters wherever memory,
# latency or energy is short: on phones, on CPUs, and in every data centre that serves a model
# millions of times. But "removing weights" means two very different things for the hardware,
# and the difference is the point of this notebook. We fine-tune a real pretrained encoder for
# sentiment, prune half of its weights in two ways, measure accuracy, speed and size, and win
# back accuracy with knowledge distillation.
#
# **Learning objectives**
# - Prune a transformer to 50% sparsity by weight magnitude (unstructured) and by removing
#   attention heads and feed-forward neurons (structured), and measure the accuracy of each.
# - Explain, with measurements, why unstructured sparsity does not speed up dense CPU kernels
#   while structured pruning does, and what sparse storage formats save on disk.
# - Recover accuracy with knowledge distillation from the dense model, and write the
#   distillation loss.
# - Tell static (weight) sparsity from dynamic (input-dependent) sparsity.
#
# **Prerequisites:** [embeddings](../03-data-and-tokenization/05-embeddings) (the MiniLM
# sentence encoder), [parameters and memory](../04-llm-from-scratch/04-parameters-and-memory),
# and the quantisation section of [GPU essentials](../00-foundations/03-gpu-essentials).
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
import random
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import prune

import shared
from shared.assets import corpus, sentence_encoder

# One thread: the timings below compare kernels, and on a shared 2-core machine a second
# thread adds more noise than speed for matrices this small.
torch.set_num_threads(1)
shared.seed_everything(0)
print(shared.environment_summary("transformers", "sentence_transformers", "safetensors"))

# %% [markdown]
# ## The model and the task
#
# The encoder is all-MiniLM-L6-v2 from `shared.assets`: a 6-layer BERT (width 384, 12
# attention heads, feed-forward width 1,536, 22.7M parameters, half of them in the token
# embedding table), distilled by its authors from a larger model and trained to embed
# sentences. Underneath the `SentenceTransformer` wrapper it is a transformers `BertModel`.
#
# The task is binary sentiment on the 23,703 human-rated sentences of the VADER study (Hutto
# and Gilbert, 2014): tweets, New York Times editorial sentences, movie and Amazon reviews,
# each rated by about 20 people on a scale from -4 to 4. We keep clearly rated sentences
# (mean rating at least 1 away from neutral) of at most 16 words and 24 word-piece tokens, and
# draw a seeded sample.
#
# **Budget.** Fine-tuning MiniLM on this CPU costs about 0.25 ms per token for a forward and
# backward pass through two layers (one thread). To stay within a minute for the whole notebook we
# (1) train on 800 short sentences for one epoch, (2) fine-tune only the top two layers and
# the classification head, so that the frozen bottom four layers run once per sentence and
# their outputs are cached, and (3) test on 320 sentences. A full run would fine-tune all six
# layers on the whole set for 2-3 epochs (minutes on a GPU) and reach higher accuracy; the
# knobs are in the next cell.

# %%
N_TRAIN, N_TEST = 800, 320  # 18,000 / 5,000 on a GPU
FROZEN_LAYERS = 4  # bottom layers kept frozen; 0 fine-tunes all six (slower)
EPOCHS = 1  # 3 on a GPU
MAX_TOKENS, BATCH = 24, 32

encoder = sentence_encoder()
bert = encoder[0].auto_model.eval()
tokenizer = encoder.tokenizer
print(type(bert).__name__, f"{sum(p.numel() for p in bert.parameters()):,} parameters,",
      f"{bert.config.num_hidden_layers} layers, {bert.config.num_attention_heads} heads")

records = corpus("sentiment")
candidates = [r for r in records if abs(r["rating"]) >= 1.0 and len(r["text"].split()) <= 16]
lengths = [len(ids) for ids in tokenizer([r["text"] for r in candidates])["input_ids"]]
candidates = [r for r, n in zip(candidates, lengths) if n <= MAX_TOKENS]
random.Random(0).shuffle(candidates)
train_set, test_set = candidates[:N_TRAIN], candidates[N_TRAIN : N_TRAIN + N_TEST]
print(f"{len(records):,} sentences, {len(candidates):,} clear and short; train {len(train_set)},"
      f" test {len(test_set)}; positive share: train {np.mean([r['label'] for r in train_set]):.2f},"
      f" test {np.mean([r['label'] for r in test_set]):.2f}")
for r in test_set[:3]:
    print(f"  {r['rating']:+.1f} {r['source']:15s} {r['text']}")


# %% [markdown]
# The classifier is the encoder, mean pooling over the tokens (as the sentence encoder does)
# and a linear head. To reuse the frozen layers' work, the forward pass is split in two:
# `bottom` runs the embeddings and the first layers once, `top` runs the remaining layers,
# the pooling and the head. Sentences are batched by length so that padding stays small.

# %%
def make_batches(rows: list[dict], batch_size: int) -> list[tuple[torch.Tensor, ...]]:
    """Tokenised (input_ids, attention_mask, labels) batches, sentences sorted by length."""
    rows = sorted(rows, key=lambda r: len(r["text"]))
    batches = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        enc = tokenizer([r["text"] for r in chunk], padding=True, return_tensors="pt")
        batches.append((enc["input_ids"], enc["attention_mask"],
                        torch.tensor([r["label"] for r in chunk])))
    return batches


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) 1/0 mask -> (B, 1, 1, T) additive mask that a BertLayer adds to its scores."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def bottom(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Hidden states after the embeddings and the first n_layers layers."""
    h = model.embeddings(input_ids=ids)
    for layer in model.encoder.layer[:n_layers]:
        h = layer(h, attention_mask=additive_mask(mask))
    return h


def top(model: nn.Module, head: nn.Module, h: torch.Tensor, mask: torch.Tensor,
        n_layers: int) -> torch.Tensor:
    """Logits from hidden states after n_layers layers: the rest of the layers, pooling, head."""
    for layer in model.encoder.layer[n_layers:]:
        h = layer(h, attention_mask=additive_mask(mask))
    weights = mask[..., None].float()
    return head((h * weights).sum(1) / weights.sum(1))


def cache_bottom(model: nn.Module, batches: list, n_layers: int) -> list:
    """(hidden states, mask, labels) per batch: the frozen part's output, computed once."""
    with torch.no_grad():
        return [(bottom(model, ids, mask, n_layers), mask, y) for ids, mask, y in batches]


def accuracy(model: nn.Module, head: nn.Module, cached: list, n_layers: int) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(int((top(model, head, h, m, n_layers).argmax(-1) == y).sum())
                   for h, m, y in cached)
    return hits / sum(len(y) for _, _, y in cached)


train_batches, test_batches = make_batches(train_set, BATCH), make_batches(test_set, 64)
print(f"tokens: train {sum(b[0].numel() for b in train_batches):,}, "
      f"test {sum(b[0].numel() for b in test_batches):,}")

# The split forward equals the model's own forward pass.
ids, mask, _ = test_batches[0]
with torch.no_grad():
    reference = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    ours = top(bert, nn.Identity(), bottom(bert, ids, mask, 2), mask, 2)
    pooled = (reference * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
print(f"max |split forward - BertModel forward| after pooling: {(ours - pooled).abs().max():.1e}")

# %% [markdown]
# ## Fine-tuning the dense model
#
# One epoch of AdamW over the top two layers (learning rate $10^{-4}$) and a fresh linear head
# ($2 \cdot 10^{-3}$), on the cached outputs of the frozen layers.

# %%
def train_top(model: nn.Module, head: nn.Module, cached: list, loss_fn, epochs: int,
              lr: float = 1e-4, seed: int = 0) -> list[float]:
    """Train the layers above FROZEN_LAYERS and the head on cached hidden states."""
    params = [p for layer in model.encoder.layer[FROZEN_LAYERS:] for p in layer.parameters()]
    optimizer = torch.optim.AdamW([{"params": params, "lr": lr},
                                   {"params": head.parameters(), "lr": 20 * lr}],
                                  weight_decay=0.01)
    losses = []
    for epoch in range(epochs):
        order = list(range(len(cached)))
        random.Random(seed + epoch).shuffle(order)
        model.train()
        for i in order:
            h, m, y = cached[i]
            loss = loss_fn(top(model, head, h, m, FROZEN_LAYERS), y, i)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    return losses


start = time.perf_counter()
dense_train = cache_bottom(bert, train_batches, FROZEN_LAYERS)
dense_test = cache_bottom(bert, test_batches, FROZEN_LAYERS)
torch.manual_seed(0)
head = nn.Linear(bert.config.hidden_size, 2)
print(f"accuracy before fine-tuning (random head): "
      f"{accuracy(bert, head, dense_test, FROZEN_LAYERS):.1%}")
losses = train_top(bert, head, dense_train, lambda logits, y, i: F.cross_entropy(logits, y),
                   EPOCHS)
dense_acc = accuracy(bert, head, dense_test, FROZEN_LAYERS)
print(f"dense fine-tuned: test accuracy {dense_acc:.1%} "
      f"({time.perf_counter() - start:.1f} s for caching and training, measured)")

# %% [markdown]
# This dense model is the reference for everything below, and the teacher for distillation.
# We keep its logits on the training sentences (the teacher's "soft labels") now.

# %%
with torch.no_grad():
    teacher_logits = [top(bert, head, h, m, FROZEN_LAYERS) for h, m, _ in dense_train]
teacher_train_acc = float(torch.cat([t.argmax(-1) == y for t, (_, _, y) in
                                     zip(teacher_logits, dense_train)]).float().mean())
print(f"the teacher agrees with the training labels on {teacher_train_acc:.1%} of the sentences")
LINEAR_NAMES = ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense")


def encoder_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The 36 weight matrices of the 6 layers (embeddings and head are not pruned)."""
    return [(f"{i}.{name}", layer.get_submodule(name))
            for i, layer in enumerate(model.encoder.layer) for name in LINEAR_NAMES]


n_prunable = sum(lin.weight.numel() for _, lin in encoder_linears(bert))
print(f"prunable weights (the linear layers of the 6 blocks): {n_prunable:,} of "
      f"{sum(p.numel() for p in bert.parameters()):,}")

# %% [markdown]
# ## Unstructured pruning: the smallest weights go
#
# Magnitude pruning removes the weights closest to zero, on the bet that they matter least.
# *Global* magnitude pruning ranks all prunable weights together, so layers whose weights are
# small lose more of them. `torch.nn.utils.prune` implements it as a re-parametrisation: each
# pruned module keeps `weight_orig` and a 0/1 `weight_mask`, and recomputes
# `weight = weight_orig * weight_mask` before every forward pass, so that training later
# cannot revive a pruned weight. We prune 50% of the 10.6M weights of the six blocks' linear
# layers; the token embeddings and the head stay dense.

# %%
SPARSITY = 0.5
unstructured = copy.deepcopy(bert)
prune.global_unstructured([(lin, "weight") for _, lin in encoder_linears(unstructured)],
                          pruning_method=prune.L1Unstructured, amount=SPARSITY)
zeros = sum(int((lin.weight == 0).sum()) for _, lin in encoder_linears(unstructured))
print(f"sparsity of the prunable weights: {zeros / n_prunable:.1%}")

all_weights = torch.cat([lin.weight_orig.detach().abs().flatten()
                         for _, lin in encoder_linears(unstructured)])
threshold = float(all_weights.kthvalue(int(SPARSITY * all_weights.numel())).values)
per_matrix = {name: float((lin.weight == 0).float().mean())
              for name, lin in encoder_linears(unstructured)}

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].hist(all_weights.numpy(), bins=200, range=(0, 0.3), color="tab:blue")
axes[0].axvline(threshold, color="tab:red", label=f"50% threshold |w| = {threshold:.4f}")
axes[0].set(xlabel="|weight|", ylabel="count", title="Magnitudes of the 10.6M prunable weights")
axes[0].legend()
kinds = ["query", "key", "value", "attn out", "ffn in", "ffn out"]
matrix = np.array(list(per_matrix.values())).reshape(6, 6)
im = axes[1].imshow(matrix, cmap="viridis", vmin=0, vmax=1)
for i in range(6):
    for j in range(6):
        axes[1].text(j, i, f"{matrix[i, j]:.0%}", ha="center", va="center", color="w", fontsize=8)
axes[1].set_xticks(range(6), kinds, rotation=30)
axes[1].set(xlabel="matrix", ylabel="layer", title="Share pruned per matrix (global magnitude)")
fig.colorbar(im, ax=axes[1])
plt.tight_layout()
plt.show()

# %% [markdown]
# The global ranking prunes the matrices unevenly (the heatmap): the query and key
# projections, whose weights are larger, lose about a third; the output projections of
# attention and of the FFN lose 55-69%. Now the accuracy. The bottom layers are pruned too,
# so the cached states of the dense model no longer apply; the test set runs through the
# whole pruned encoder.

# %%
unstructured_test = cache_bottom(unstructured, test_batches, FROZEN_LAYERS)
unstructured_acc = accuracy(unstructured, head, unstructured_test, FROZEN_LAYERS)
print(f"test accuracy: dense {dense_acc:.1%}, 50% unstructured (no retraining) "
      f"{unstructured_acc:.1%}")

# %% [markdown]
# ## Structured pruning: heads and neurons go
#
# Structured pruning removes whole rows and columns, so that the matrices become smaller
# dense matrices. Two structures in a BERT layer are natural units:
#
# - an **attention head** is 32 rows of each of the query, key and value matrices and 32
#   columns of the output projection; Michel et al. (2019) showed that many heads can go;
# - a **feed-forward neuron** is one row of the first FFN matrix and one column of the second.
#
# Removing 6 of 12 heads and 768 of 1,536 neurons in every layer removes exactly half of the
# prunable weights. Which ones? We score each unit by how much it contributes on real inputs:
# run 128 training sentences through the dense fine-tuned model and record, for each head, the
# mean norm of its contribution to the attention output ($\lVert W_O^{(h)} c_h \rVert$ for the
# head's context vector $c_h$) and, for each neuron, its mean absolute activation times the
# norm of its output column. Michel et al. used gradients for the same purpose; activations
# are cheaper and work well.

# %%
def unit_importance(model: nn.Module, batches: list) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Per layer: head scores (L, n_head), neuron scores (L, d_ff), and FFN activations."""
    n_head = model.config.num_attention_heads
    d_head = model.config.hidden_size // n_head
    heads, neurons, activations, hooks = [], [], [], []
    for i, layer in enumerate(model.encoder.layer):
        heads.append(torch.zeros(n_head))
        neurons.append(torch.zeros(model.config.intermediate_size))
        activations.append([])

        def on_context(module, args, i=i):  # input of attention.output.dense: (B, T, 384)
            c = args[0][current_mask]  # real tokens only: (N, n_head * d_head)
            w = module.weight.view(-1, n_head, d_head)  # (out, head, d_head)
            contribution = torch.einsum("nhd,ohd->nho", c.view(-1, n_head, d_head), w)
            heads[i] += contribution.norm(dim=-1).mean(0)

        def on_ffn(module, args, i=i):  # input of output.dense: the FFN activations
            a = args[0][current_mask]
            neurons[i] += a.abs().mean(0) * module.weight.norm(dim=0)
            activations[i].append(a)

        hooks.append(layer.attention.output.dense.register_forward_pre_hook(on_context))
        hooks.append(layer.output.dense.register_forward_pre_hook(on_ffn))
    try:
        with torch.no_grad():
            for ids, mask, _ in batches:
                current_mask = mask.bool()
                model(input_ids=ids, attention_mask=mask)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(heads), torch.stack(neurons), [torch.cat(a) for a in activations]


calibration = train_batches[::3][:4]  # 4 batches of 32 sentences
head_scores, neuron_scores, ffn_activations = unit_importance(bert, calibration)


def keep_top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Per layer, the indices of the k highest-scoring units, in increasing order."""
    return scores.topk(k, dim=1).indices.sort(dim=1).values


keep_heads, keep_neurons = keep_top(head_scores, 6), keep_top(neuron_scores, 768)
print("heads kept per layer:", keep_heads.tolist())

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
kept = torch.zeros_like(head_scores, dtype=torch.bool)
kept.scatter_(1, keep_heads, True)
im = ax.imshow(head_scores / head_scores.sum(1, keepdim=True), cmap="magma")
for layer, h in zip(*torch.nonzero(~kept, as_tuple=True)):
    ax.text(int(h), int(layer), "x", ha="center", va="center", color="cyan")
ax.set(xlabel="head", ylabel="layer", title="Head importance (share of the layer), x = pruned")
fig.colorbar(im, ax=ax, label="share of layer's importance")
plt.tight_layout()
plt.show()

# %% [markdown]
# Pruning a unit means building smaller `nn.Linear` layers from the kept rows and columns,
# and telling the attention module how many heads it has left.

# %%
def sliced_linear(linear: nn.Linear, rows: torch.Tensor | None = None,
                  cols: torch.Tensor | None = None) -> nn.Linear:
    """A new, smaller Linear with only the given output rows and/or input columns."""
    weight = linear.weight.detach()
    bias = linear.bias.detach()
    if rows is not None:
        weight, bias = weight[rows], bias[rows]
    if cols is not None:
        weight = weight[:, cols]
    new = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        new.weight.copy_(weight)
        new.bias.copy_(bias)
    return new


def prune_structured(model: nn.Module, keep_heads: torch.Tensor,
                     keep_neurons: torch.Tensor) -> nn.Module:
    """A copy of the BERT encoder with only the given heads and FFN neurons in each layer."""
    model = copy.deepcopy(model)
    d_head = model.config.hidden_size // model.config.num_attention_heads
    for layer, heads, neurons in zip(model.encoder.layer, keep_heads, keep_neurons):
        attention = layer.attention.self
        rows = torch.cat([torch.arange(h * d_head, (h + 1) * d_head) for h in heads.tolist()])
        for name in ("query", "key", "value"):
            setattr(attention, name, sliced_linear(getattr(attention, name), rows=rows))
        attention.num_attention_heads, attention.all_head_size = len(heads), len(rows)
        layer.attention.output.dense = sliced_linear(layer.attention.output.dense, cols=rows)
        layer.intermediate.dense = sliced_linear(layer.intermediate.dense, rows=neurons)
        layer.output.dense = sliced_linear(layer.output.dense, cols=neurons)
    return model.eval()


structured = prune_structured(bert, keep_heads, keep_neurons)
n_left = sum(lin.weight.numel() for _, lin in encoder_linears(structured))
shapes = structured.encoder.layer[0]
print(f"layer 0 after pruning: query {tuple(shapes.attention.self.query.weight.shape)}, "
      f"FFN in {tuple(shapes.intermediate.dense.weight.shape)}")
print(f"prunable weights left: {n_left:,} ({1 - n_left / n_prunable:.1%} removed); total "
      f"parameters {sum(p.numel() for p in structured.parameters()):,}")
structured_test = cache_bottom(structured, test_batches, FROZEN_LAYERS)
structured_acc = accuracy(structured, head, structured_test, FROZEN_LAYERS)
print(f"test accuracy: dense {dense_acc:.1%}, 50% unstructured {unstructured_acc:.1%}, "
      f"50% structured {structured_acc:.1%} (no retraining)")

# %% [markdown]
# At 50%, both kinds of pruning cost little: "pruning BERT to 50% sparsity without major loss
# in accuracy" holds for this encoder and task. How far can structured pruning go, and how
# much does the choice of units matter? We prune further, keeping 3, 2 and 1 heads per layer
# (and 384, 256, 128 neurons), once by importance and once at random. The smaller models are
# cheap to evaluate.

# %%
SWEEP = [(6, 768), (3, 384), (2, 256), (1, 128)]  # heads and FFN neurons kept per layer
generator = torch.Generator().manual_seed(0)
criteria = {"importance": (head_scores, neuron_scores),
            "random": (torch.rand(head_scores.shape, generator=generator),
                       torch.rand(neuron_scores.shape, generator=generator))}
sweep_acc = {name: [] for name in criteria}
pruned = {}  # importance-pruned models and their test caches, by heads kept
for heads_kept, neurons_kept in SWEEP:
    for name, (h_scores, n_scores) in criteria.items():
        if name == "importance" and heads_kept == 6:
            model, test_cache = structured, structured_test
        else:
            model = prune_structured(bert, keep_top(h_scores, heads_kept),
                                     keep_top(n_scores, neurons_kept))
            test_cache = cache_bottom(model, test_batches, FROZEN_LAYERS)
        sweep_acc[name].append(accuracy(model, head, test_cache, FROZEN_LAYERS))
        if name == "importance":
            pruned[heads_kept] = (model, test_cache)
removed = [1 - h / 12 for h, _ in SWEEP]  # heads and neurons: the same share of weights
for share, imp, rnd in zip(removed, sweep_acc["importance"], sweep_acc["random"]):
    print(f"{share:4.0%} of prunable weights removed: by importance {imp:.1%}, at random {rnd:.1%}")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
for name, accs in sweep_acc.items():
    label = "by importance" if name == "importance" else "at random"
    ax.plot([0] + [100 * r for r in removed], [dense_acc] + accs, "o-", label=label)
ax.axhline(0.5, color="k", ls=":", label="chance")
ax.set(xlabel="prunable weights removed (%)", ylabel="test accuracy",
       title="Structured pruning without retraining", ylim=(0.4, 1.0))
ax.legend()
plt.tight_layout()
plt.show()
structured75 = pruned[3][0]

# %% [markdown]
# Guided by importance, structured pruning keeps its accuracy up to 75% and then degrades;
# random choices lose accuracy from the start (and vary from draw to draw), which is the case
# for measuring importance at all. Before repairing the damage, what do these models buy?
#
# ## Speed: zeros are not free
#
# A dense matrix kernel multiplies every entry, zero or not; the 50% unstructured model does
# exactly the work of the dense one. Sparse kernels skip zeros but pay for reading an index
# per non-zero and for irregular memory access. Two measurements: the forward pass of the
# models on a batch of 32 test sentences (interleaved repeats, median), and one FFN-sized
# product, $1536 \times 384$ weights times 1,024 tokens, with the weight stored dense or in
# compressed sparse row (CSR) format at increasing sparsity.

# %%
for _, lin in encoder_linears(unstructured):
    prune.remove(lin, "weight")  # bake the zeros into a plain weight tensor
models = {"dense": bert, "50% unstructured": unstructured, "50% structured": structured,
          "75% structured": structured75}
ids, mask, _ = test_batches[-1]
ids, mask = ids[:32], mask[:32]  # 32 of the longest test sentences


def forward_time(model: nn.Module) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        model(input_ids=ids, attention_mask=mask)
        return time.perf_counter() - start


for model in models.values():
    forward_time(model)  # warm-up
times = {name: [] for name in models}
for _ in range(3):
    for name, model in models.items():
        times[name].append(forward_time(model))
median = {name: float(np.median(t)) for name, t in times.items()}
for name in models:
    print(f"{name:17s} forward of {tuple(ids.shape)} tokens: {median[name] * 1e3:6.1f} ms, "
          f"{median['dense'] / median[name]:.2f}x the speed of dense (measured)")

# %%
weight_dense = torch.randn(1536, 384)
x = torch.randn(384, 1024)
sparsities = [0.5, 0.7, 0.9, 0.95, 0.99]
csr_ratio = []
for s in sparsities:
    w = weight_dense * (torch.rand_like(weight_dense) >= s)
    w_csr = w.to_sparse_csr()
    dense_t, sparse_t = [], []
    for _ in range(5):
        start = time.perf_counter()
        w @ x
        dense_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        w_csr @ x
        sparse_t.append(time.perf_counter() - start)
    csr_ratio.append(np.median(dense_t) / np.median(sparse_t))
    print(f"sparsity {s:4.0%}: CSR product {csr_ratio[-1]:5.2f}x the speed of the dense product")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].bar(list(median), [median["dense"] / t for t in median.values()],
            color=["tab:gray", "tab:blue", "tab:green", "tab:olive"])
axes[0].axhline(1, color="k", lw=0.8)
axes[0].set(xlabel="model", ylabel="speed vs dense (x)",
            title="Encoder forward pass, 1 thread (measured)")
axes[0].tick_params(axis="x", labelsize=8)
axes[1].plot([100 * s for s in sparsities], csr_ratio, "o-")
axes[1].axhline(1, color="k", lw=0.8, label="dense speed")
axes[1].set(xlabel="sparsity (%)", ylabel="speed vs dense (x)", yscale="log",
            title="CSR sparse x dense product, 1536x384 weight")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The unstructured model runs at the dense model's speed, give or take timing noise: the zeros
# are multiplied like any other number. The structured models are genuinely faster, though by
# less than their size ratio, because the embeddings, attention scores, norms and other
# element-wise work were not pruned. A CSR product at 50% sparsity is *slower* than the dense
# one; on a CPU, sparse kernels break even only at high sparsity (the right panel), which is
# why unstructured sparsity is mostly a storage technique. GPUs are similar with one exception:
# NVIDIA's 2:4 pattern (two zeros in every four weights) is structured enough for sparse
# tensor cores to run about 2x faster (Hoefler et al., 2021 review the hardware).
#
# ## Size on disk
#
# safetensors stores dense tensors, so the unstructured model's file is as large as the dense
# one. A sparse format stores only the non-zeros and where they are: CSR keeps each value,
# its column index and one offset per row; a bitmask keeps one bit per weight plus the
# values. We save the prunable weights in each form (the embeddings and biases are the same
# for all and left out) and compare.

# %%
def csr_tensors(name: str, weight: torch.Tensor, index_dtype: torch.dtype) -> dict:
    csr = weight.to_sparse_csr()
    return {f"{name}.values": csr.values(), f"{name}.col": csr.col_indices().to(index_dtype),
            f"{name}.row": csr.crow_indices().to(torch.int32)}


def bitmask_tensors(name: str, weight: torch.Tensor) -> dict:
    bits = np.packbits((weight != 0).numpy().reshape(-1))
    return {f"{name}.values": weight[weight != 0], f"{name}.mask": torch.from_numpy(bits)}


def weights_as(model: nn.Module, fmt: str) -> dict[str, torch.Tensor]:
    """The prunable weights of a model as a dict of tensors in one storage format."""
    out = {}
    for name, lin in encoder_linears(model):
        w = lin.weight.detach()
        if fmt == "dense":
            out[name] = w
        elif fmt == "bitmask":
            out.update(bitmask_tensors(name, w))
        else:
            out.update(csr_tensors(name, w, torch.int32 if fmt == "csr32" else torch.int16))
    return out


sizes = {}
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "weights.safetensors"
    for label, model, fmt in [("dense model", bert, "dense"),
                              ("50% unstructured, dense", unstructured, "dense"),
                              ("50% unstructured, CSR int32", unstructured, "csr32"),
                              ("50% unstructured, CSR int16", unstructured, "csr16"),
                              ("50% unstructured, bitmask", unstructured, "bitmask"),
                              ("50% structured, dense", structured, "dense"),
                              ("75% structured, dense", structured75, "dense")]:
        save_file(weights_as(model, fmt), str(path))
        sizes[label] = path.stat().st_size / 1e6
for label, mb in sizes.items():
    print(f"{label:30s} {mb:6.1f} MB  ({mb / sizes['dense model']:.0%} of dense)")

# %% [markdown]
# At 50% sparsity, CSR with 32-bit indices saves nothing: each surviving 4-byte value brings
# a 4-byte index. 16-bit column indices (enough for rows of 384 or 1,536 entries) bring it to
# 75%, and a bitmask to about 53%, close to the structured model's 50%, which needs no index
# at all. Deep compression (Han et al., 2015) went further by quantising the surviving weights
# and Huffman-coding the result, reaching 35-49x on convolutional networks.
#
# ## Recovering accuracy: fine-tuning and distillation
#
# Pruning damages the model; a little training repairs much of it. The simplest repair is to
# fine-tune the pruned model on the labels again. Knowledge distillation (Hinton et al., 2015)
# trains the pruned *student* to match the dense *teacher*'s output distribution as well as
# the labels:
#
# $$\mathcal{L} = \alpha \, \mathrm{CE}(z_s, y) + (1 - \alpha)\, T^2\,
# \mathrm{KL}\!\left(\mathrm{softmax}(z_t / T) \,\Vert\, \mathrm{softmax}(z_s / T)\right),$$
#
# with student logits $z_s$, teacher logits $z_t$ and a temperature $T > 1$ that softens both
# distributions, so that the student learns how confident the teacher is and not only its
# top choice; the $T^2$ keeps the gradient scale independent of $T$. DistilBERT (Sanh et al.,
# 2019) trained a half-depth BERT this way. We repair the two most damaged structured models
# both ways. Each repair is one epoch over the 800 training sentences, again only in the top
# two layers and the head, with $T = 2$ and $\alpha = 0.5$ for distillation; these models are
# small, so their training is cheap.

# %%
def kd_loss_fn(temperature: float = 2.0, alpha: float = 0.5):
    def loss_fn(logits: torch.Tensor, y: torch.Tensor, batch_index: int) -> torch.Tensor:
        soft_teacher = F.softmax(teacher_logits[batch_index] / temperature, dim=-1)
        kl = F.kl_div(F.log_softmax(logits / temperature, dim=-1), soft_teacher,
                      reduction="batchmean")
        return alpha * F.cross_entropy(logits, y) + (1 - alpha) * temperature**2 * kl
    return loss_fn


def cross_entropy_fn(logits: torch.Tensor, y: torch.Tensor, batch_index: int) -> torch.Tensor:
    return F.cross_entropy(logits, y)


start = time.perf_counter()
repairs = {}
for heads_kept in (2, 1):
    model, test_cache = pruned[heads_kept]
    train_cache = cache_bottom(model, train_batches, FROZEN_LAYERS)  # bottom layers: frozen
    for loss_name, loss_fn in (("fine-tuning", cross_entropy_fn), ("distillation", kd_loss_fn())):
        student, student_head = copy.deepcopy(model), copy.deepcopy(head)
        train_top(student, student_head, train_cache, loss_fn, EPOCHS)
        repairs[(heads_kept, loss_name)] = accuracy(student, student_head, test_cache,
                                                    FROZEN_LAYERS)
for heads_kept in (2, 1):
    before = sweep_acc["importance"][[h for h, _ in SWEEP].index(heads_kept)]
    print(f"{1 - heads_kept / 12:.0%} structured: pruned {before:.1%}, + fine-tuning "
          f"{repairs[(heads_kept, 'fine-tuning')]:.1%}, + distillation "
          f"{repairs[(heads_kept, 'distillation')]:.1%}")
print(f"four repairs: {time.perf_counter() - start:.1f} s (measured)")

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
x_pos = np.arange(2)
before = [sweep_acc["importance"][2], sweep_acc["importance"][3]]
for offset, (label, values, color) in zip(
    (-0.27, 0.0, 0.27),
    [("after pruning", before, "tab:gray"),
     ("+ fine-tuning", [repairs[(h, "fine-tuning")] for h in (2, 1)], "tab:orange"),
     ("+ distillation", [repairs[(h, "distillation")] for h in (2, 1)], "tab:green")],
):
    ax.bar(x_pos + offset, values, 0.27, label=label, color=color)
ax.axhline(dense_acc, color="tab:blue", ls="--", label="dense teacher")
ax.axhline(0.5, color="k", ls=":", label="chance")
ax.set_xticks(x_pos, ["83% structured\n(2 heads, 256 neurons)",
                     "92% structured\n(1 head, 128 neurons)"])
ax.set(ylim=(0.4, 1.0), xlabel="model", ylabel="test accuracy",
       title=f"Repairing pruned models, {N_TEST} test sentences")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# With 320 test sentences, one standard error of an accuracy near 80% is about 2 points, so
# differences of a point or two are noise. What is not noise: one epoch of training the top
# two layers wins back a large part of what pruning lost. Training only the top layers limits
# the repair (the damaged bottom layers stay as they are); retraining all layers, or pruning
# gradually during fine-tuning (Zhu and Gupta, 2017) or by movement scores (Sanh et al., 2020),
# recovers more.
#
# Distillation did not beat plain fine-tuning here, and there is a reason. Our teacher is
# itself wrong on some of the training sentences (see its agreement with the labels above),
# and on a small labelled set its soft labels add those mistakes to the true labels. What
# distillation offers is elsewhere: the teacher can label sentences nobody has labelled, so
# the student can train on far more data than the labelled set (DistilBERT distilled on the
# whole pretraining corpus), and a student can also be made to match the teacher's hidden
# states, not only its outputs.
#
# ## Dynamic sparsity
#
# Everything above is *static* sparsity: the same weights are removed for every input.
# *Dynamic* sparsity depends on the input. The FFN activations we recorded for the importance
# scores show it: for each token, GELU leaves a good share of the neurons near zero, and which
# neurons matter most changes from token to token.

# %%
activations = ffn_activations[3]  # layer 3: (tokens, 1536)
quiet = (activations.abs() < 0.05).float().mean(1)
top_k = activations.abs().topk(154, dim=1).indices  # each token's 10% most active neurons
sets = [set(row.tolist()) for row in top_k[:200]]
overlaps = [len(a & b) / len(a | b) for a, b in zip(sets[::2], sets[1::2])]
print(f"layer 3: per token, {quiet.mean():.0%} of the 1,536 FFN neurons have |activation| "
      f"< 0.05; two tokens share {np.mean(overlaps):.0%} of their top-10% neurons (Jaccard)")
print(f"neurons that are among some token's top 10%: {len(set().union(*sets))} of 1,536 "
      f"(over 200 tokens)")

# %% [markdown]
# A kernel that knew in advance which neurons a token needs could skip the rest: that is the
# idea behind mixture-of-experts layers (a router picks a few experts per token) and behind
# contextual-sparsity predictors for large models. Dynamic sparsity also exists in training:
# RigL and SET drop small weights and regrow others during training, keeping the sparsity
# fixed while the mask moves.
#
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: A magnitude mask
#
# Write `magnitude_mask(weight, sparsity)` returning a boolean mask of the shape of `weight`
# that is False for the `round(sparsity * weight.numel())` entries of smallest absolute value
# and True elsewhere. The check compares it with the mask of `prune.l1_unstructured`.

# %% tags=["solution"]
def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """True for the weights to keep: all but the round(sparsity * n) smallest |w|."""
    # BEGIN SOLUTION
    n_prune = round(sparsity * weight.numel())
    mask = torch.ones(weight.numel(), dtype=torch.bool)
    mask[weight.abs().flatten().argsort()[:n_prune]] = False
    return mask.view_as(weight)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close, check_equal, passed

torch.manual_seed(1)
for shape, s in [((48, 32), 0.5), ((10,), 0.3), ((7, 9), 0.9)]:
    w = torch.randn(shape)
    layer = nn.Linear(1, 1)
    layer.weight = nn.Parameter(w.clone())
    prune.l1_unstructured(layer, "weight", amount=s)
    mine = magnitude_mask(w, s)
    check_equal(mine.tolist(), layer.weight_mask.bool().tolist(), f"magnitude_mask(shape {shape})")
check_equal(int((~magnitude_mask(torch.randn(100), 0.25)).sum()), 25, "number pruned")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The distillation loss
#
# Write `distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)` for
# the loss in the distillation section, averaged over the batch, without calling
# `F.kl_div` (use log-softmax and the definition of KL divergence). The check compares it with
# a reference and with two special cases: a student equal to its teacher pays only the
# cross-entropy part, and $\alpha = 1$ is plain cross-entropy.

# %% tags=["solution"]
def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, temperature: float, alpha: float) -> torch.Tensor:
    """alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T)."""
    # BEGIN SOLUTION
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1).mean()
    ce = F.cross_entropy(student_logits, labels)
    return alpha * ce + (1 - alpha) * temperature**2 * kl
    # END SOLUTION


# %% tags=["check"]
torch.manual_seed(2)
s_logits, t_logits, y = torch.randn(16, 5), torch.randn(16, 5), torch.randint(0, 5, (16,))
expected = 0.3 * F.cross_entropy(s_logits, y) + 0.7 * 9 * F.kl_div(
    F.log_softmax(s_logits / 3, -1), F.softmax(t_logits / 3, -1), reduction="batchmean")
check_close(distillation_loss(s_logits, t_logits, y, 3.0, 0.3), expected, "distillation_loss",
            atol=1e-5)
check_close(distillation_loss(s_logits, s_logits, y, 2.0, 0.5), 0.5 * F.cross_entropy(s_logits, y),
            "distillation_loss(student == teacher)", atol=1e-6)
check_close(distillation_loss(s_logits, t_logits, y, 2.0, 1.0), F.cross_entropy(s_logits, y),
            "distillation_loss(alpha=1)", atol=1e-6)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: When does CSR pay on disk?
#
# A matrix of `n_rows` rows with `nnz` non-zeros stored in CSR takes `nnz * (value_bytes +
# index_bytes)` bytes for the values and column indices plus `(n_rows + 1) * 4` for the row
# offsets (32-bit). Write `csr_bytes(n_rows, nnz, value_bytes, index_bytes)`, then set
# `break_even_int32` and `break_even_int16`: the smallest sparsity, in whole percent, at which
# a $1536 \times 384$ fp32 matrix in CSR takes fewer bytes than dense, with 32-bit and with
# 16-bit column indices. The check measures the tensors of real CSR matrices.

# %% tags=["solution"]
def csr_bytes(n_rows: int, nnz: int, value_bytes: int, index_bytes: int) -> int:
    """Bytes of a CSR matrix: values, column indices and n_rows + 1 int32 row offsets."""
    # BEGIN SOLUTION
    return nnz * (value_bytes + index_bytes) + (n_rows + 1) * 4
    # END SOLUTION


break_even_int32 = None
break_even_int16 = None
# BEGIN SOLUTION
n_weights = 1536 * 384
break_even_int32 = next(p for p in range(101)
                        if csr_bytes(1536, round(n_weights * (1 - p / 100)), 4, 4) < 4 * n_weights)
break_even_int16 = next(p for p in range(101)
                        if csr_bytes(1536, round(n_weights * (1 - p / 100)), 4, 2) < 4 * n_weights)
# END SOLUTION
print(f"CSR beats dense from {break_even_int32}% sparsity with int32 indices, "
      f"{break_even_int16}% with int16")

# %% tags=["check"]
for s in (0.5, 0.8):
    w = weight_dense * (torch.rand_like(weight_dense) >= s)
    measured = sum(t.numel() * t.element_size()
                   for t in csr_tensors("w", w, torch.int16).values())
    check_equal(csr_bytes(1536, int((w != 0).sum()), 4, 2), measured, f"csr_bytes at {s:.0%}")
check_equal(break_even_int32, 51, "break_even_int32")
check_equal(break_even_int16, 34, "break_even_int16")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Prune FFN neurons by slicing
#
# Write `prune_ffn(ffn_in, ffn_out, keep)` that returns two smaller `nn.Linear` layers holding
# only the neurons in `keep` (rows of `ffn_in`, columns of `ffn_out`). Pruning a neuron must
# equal zeroing its activation: the check compares the small FFN's output with the full FFN
# whose other activations are multiplied by zero, on real layer 5 of the fine-tuned encoder.

# %% tags=["solution"]
def prune_ffn(ffn_in: nn.Linear, ffn_out: nn.Linear,
              keep: torch.Tensor) -> tuple[nn.Linear, nn.Linear]:
    """The FFN restricted to the neurons in keep: (smaller ffn_in, smaller ffn_out)."""
    # BEGIN SOLUTION
    return sliced_linear(ffn_in, rows=keep), sliced_linear(ffn_out, cols=keep)
    # END SOLUTION


# %% tags=["check"]
layer5 = bert.encoder.layer[5]
keep_check = keep_neurons[5]
small_in, small_out = prune_ffn(layer5.intermediate.dense, layer5.output.dense, keep_check)
check_equal((tuple(small_in.weight.shape), tuple(small_out.weight.shape)),
            ((768, 384), (384, 768)), "shapes of the pruned FFN")
h_check = torch.randn(10, 384)
gate = torch.zeros(1536)
gate[keep_check] = 1.0
with torch.no_grad():
    full = layer5.output.dense(F.gelu(layer5.intermediate.dense(h_check)) * gate)
    small = small_out(F.gelu(small_in(h_check)))
check_close(small, full, "prune_ffn output", atol=1e-5)
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - Unstructured magnitude pruning removed 50% of the encoder's layer weights; structured
#   pruning removed the same share as 6 of 12 heads and half the FFN neurons of every layer.
#   Without retraining, each cost only a point or two of accuracy on this sentiment task.
# - Which units go matters: heads and neurons chosen by their measured contribution kept the
#   accuracy up to 75% pruning, random ones lost it from the start.
# - Zeros are not free: the unstructured model ran at the dense model's speed, a CSR product at
#   50% sparsity was slower than dense, and only the structured models, with genuinely smaller
#   matrices, ran faster (here about 2x at 50% and 3-4x at 75%; the table above has this run's
#   measurement).
# - On disk, a 50%-sparse matrix needs a compact index to save anything: CSR with 32-bit
#   indices saved nothing, 16-bit indices 25%, a bitmask almost half.
# - One epoch of training two layers, by fine-tuning or by distillation from the dense
#   teacher, won back much of what aggressive pruning lost; on a small labelled set, plain
#   fine-tuning did at least as well as distillation.
# - Static sparsity removes the same weights for every input; dynamic sparsity (FFN
#   activations, mixture of experts, RigL-style training) changes with the input or over
#   training.
#
# ## References
#
# - S. Han, H. Mao, W. J. Dally, "Deep compression: compressing deep neural networks with
#   pruning, trained quantization and Huffman coding", ICLR 2016 (arXiv 2015).
#   https://arxiv.org/abs/1510.00149
# - J. Frankle, M. Carbin, "The lottery ticket hypothesis: finding sparse, trainable neural
#   networks", ICLR 2019. https://arxiv.org/abs/1803.03635
# - P. Michel, O. Levy, G. Neubig, "Are sixteen heads really better than one?", NeurIPS 2019.
#   https://arxiv.org/abs/1905.10650
# - G. Hinton, O. Vinyals, J. Dean, "Distilling the knowledge in a neural network", 2015.
#   https://arxiv.org/abs/1503.02531
# - V. Sanh, L. Debut, J. Chaumond, T. Wolf, "DistilBERT, a distilled version of BERT: smaller,
#   faster, cheaper and lighter", 2019. https://arxiv.org/abs/1910.01108
# - V. Sanh, T. Wolf, A. Rush, "Movement pruning: adaptive sparsity by fine-tuning",
#   NeurIPS 2020. https://arxiv.org/abs/2005.07683
# - T. Hoefler, D. Alistarh, T. Ben-Nun, N. Dryden, A. Peste, "Sparsity in deep learning:
#   pruning and growth for efficient inference and training in neural networks", JMLR 2021.
#   https://arxiv.org/abs/2102.00554
# - M. Zhu, S. Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model
#   compression", 2017. https://arxiv.org/abs/1710.01878
# - U. Evci et al., "Rigging the lottery: making all tickets winners" (RigL), ICML 2020.
#   https://arxiv.org/abs/1911.11134
# - W. Wang et al., "MiniLM: deep self-attention distillation for task-agnostic compression of
#   pre-trained transformers", NeurIPS 2020. https://arxiv.org/abs/2002.10957
# - C. J. Hutto, E. Gilbert, "VADER: a parsimonious rule-based model for sentiment analysis of
#   social media text", ICWSM 2014. https://github.com/cjhutto/vaderSentiment
# - PyTorch pruning tutorial. https://pytorch.org/tutorials/intermediate/pruning_tutorial.html
