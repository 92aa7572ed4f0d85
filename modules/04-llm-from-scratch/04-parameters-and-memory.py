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
# # Parameters and memory: where the bytes of training go
#
# A 7-billion-parameter model fits in 14 GB in bf16, yet training it with Adam needs more than
# 100 GB before a single activation is stored. The difference is the training state: a gradient
# for every parameter, two Adam moments, and in mixed precision a float32 master copy of the
# weights. Knowing this accounting exactly is what lets you choose a precision, a batch size, an
# activation-recomputation policy and a sharding strategy such as ZeRO for the hardware you
# have. This notebook derives the formula, measures every term on a small GPT on this machine
# (they agree to the byte), measures what bf16 autocast and activation recomputation change,
# and computes what ZeRO's three stages save per device, with stage 1 carried out for real
# across simulated devices.
#
# **Learning objectives**
# - Account for training memory: parameters, gradients, optimizer states, activations; derive
#   16 bytes per parameter for Adam in fp32 and in mixed precision.
# - Measure each term on a GPT by counting tensor bytes, and match the formula.
# - Build a mixed-precision step with bf16 weights and fp32 master weights, and explain why the
#   master copy (and, in fp16, loss scaling) is needed; measure what bf16 autocast changes.
# - Trade compute for memory with activation recomputation, measured.
# - Compute per-device memory for ZeRO stages 1, 2 and 3, and shard Adam's state across
#   devices with the same result as unsharded training.
#
# **Prerequisites:** [a minimal GPT](01-minimal-llm) (parameter count, activation memory);
# [GPU essentials](../00-foundations/03-gpu-essentials) (dtypes and bytes).
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
import copy
import time
from collections.abc import Iterable

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

import shared
from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.models import GPT, GPTConfig
from shared.training import make_optimizer

shared.seed_everything(0)
print(shared.environment_summary("matplotlib"))

# %% [markdown]
# ## The formula
#
# Call the number of parameters $\Psi$, as Rajbhandari et al. (2020) do. Training with Adam
# keeps, per parameter:
#
# | | fp32 training | mixed precision (bf16/fp16 + fp32 master) |
# |---|---|---|
# | weights used in forward and backward | 4 (fp32) | 2 (16-bit) |
# | gradients | 4 (fp32) | 2 (16-bit) |
# | fp32 master copy of the weights | - | 4 |
# | Adam first moment $m$ | 4 | 4 |
# | Adam second moment $v$ | 4 | 4 |
# | **total** | **16** | **16** |
#
# Mixed precision does not shrink this state: it makes the arithmetic faster and the
# activations smaller, and it adds the master copy that the table's third row explains below.
# The ZeRO paper writes the mixed-precision total as $2\Psi + 2\Psi + K\Psi$ with $K = 12$
# bytes of optimizer state (master weights and both moments). Activations come on top and
# depend on the batch, not on $\Psi$ ([notebook 01](01-minimal-llm) measured them).
#
# We measure each term on a small GPT trained on Shakespeare characters, counting the bytes of
# the tensors themselves (`numel * element_size`, each storage once). On a GPU,
# `torch.cuda.memory_allocated()` would report the same numbers plus allocator rounding.

# %%
def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the given tensors, each underlying storage counted once (tied weights once)."""
    seen: set[int] = set()
    total = 0
    for tensor in tensors:
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in seen:
            seen.add(pointer)
            total += tensor.numel() * tensor.element_size()
    return total


def optimizer_state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [value for state in optimizer.state.values() for value in state.values()
            if isinstance(value, torch.Tensor)]


BLOCK_SIZE, BATCH_SIZE = 64, 16
data = shakespeare_char_data(BLOCK_SIZE)
x, y = RandomBlockSampler(data.train, BLOCK_SIZE, BATCH_SIZE, seed=0).next_batch()
config = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=BLOCK_SIZE, n_layer=4,
                   n_head=4, d_model=128)

shared.seed_everything(0)
model = GPT(config)
psi = model.num_parameters()
optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.1)  # the AdamW of shared.training
measured = {"parameters": tensor_bytes(model.parameters())}
model(x, targets=y).loss.backward()
measured["gradients"] = tensor_bytes(p.grad for p in model.parameters())
optimizer.step()
state = optimizer_state_tensors(optimizer)
measured["Adam m and v"] = tensor_bytes(t for t in state if t.dim() > 0)
measured["Adam step counters"] = tensor_bytes(t for t in state if t.dim() == 0)

formula = {"parameters": 4 * psi, "gradients": 4 * psi, "Adam m and v": 8 * psi,
           "Adam step counters": 0}
print(f"Psi = {psi:,} parameters, fp32 AdamW")
print(f"{'':<20}{'measured':>14}{'formula':>14}")
for term in measured:
    print(f"{term:<20}{measured[term]:>14,}{formula[term]:>14,}")
total = sum(measured.values())
print(f"{'total':<20}{total:>14,}{16 * psi:>14,}   -> {total / psi:.4f} bytes per parameter")
print(f"step counters: {len(list(model.parameters()))} parameter tensors x 4 bytes")

# %% [markdown]
# Every term matches $4\Psi$, $4\Psi$ and $8\Psi$ exactly. The only extra bytes are PyTorch's
# step counters: one 4-byte scalar tensor per parameter tensor, negligible at any scale.

# %% [markdown]
# ## Mixed precision
#
# Micikevicius et al. (2018) train with 16-bit weights, activations and gradients, which halves
# their memory and runs on the fast 16-bit units of GPUs, while keeping a float32 *master copy*
# of the weights that the optimizer updates. Two properties of 16-bit formats explain the recipe:
#
# - **Small updates vanish in 16-bit weights.** bf16 keeps 8 bits of mantissa: next to 1.0, the
#   nearest representable numbers are $1 \pm 2^{-8}$ and $1 + 2^{-7}$. An update of $10^{-3}$ to a
#   weight of 1.0 (a LayerNorm gain) rounds away; in the fp32 master copy it accumulates.
# - **Small gradients underflow in fp16.** fp16 has 5 exponent bits and flushes values below
#   about $6 \times 10^{-8}$ to zero; fp16 training therefore multiplies the loss by a large
#   *loss scale* before the backward pass and divides the gradients by it afterwards. bf16 has
#   float32's 8 exponent bits and needs no loss scaling.

# %%
one = torch.tensor(1.0)
print(f"1 + 1e-3 in bf16: {(one.bfloat16() + 1e-3).item()}   in fp32: {(one + 1e-3).item()}")
tiny = torch.tensor(1e-8)
print(f"1e-8 as fp16: {tiny.half().item()}   as bf16: {tiny.bfloat16().item():.3e}")
for dtype in (torch.float16, torch.bfloat16, torch.float32):
    info = torch.finfo(dtype)
    print(f"{str(dtype):<15} eps {info.eps:.1e}  smallest normal {info.tiny:.1e}  "
          f"max {info.max:.1e}")

# %% [markdown]
# A mixed-precision step, written out: the forward and backward passes run on a bf16 copy of the
# model, its bf16 gradients are converted to fp32 and handed to an AdamW that owns the fp32
# master weights, and the updated master weights are copied back into the bf16 model. We
# measure the state that persists between steps.

# %%
shared.seed_everything(0)
master = GPT(config)  # fp32 master weights: the optimizer updates these
model_bf16 = copy.deepcopy(master).to(torch.bfloat16)  # used for forward and backward
master_optimizer = make_optimizer(master, lr=1e-3, weight_decay=0.1)


def mixed_precision_step() -> float:
    loss = model_bf16(x, targets=y).loss
    loss.backward()  # bf16 gradients, in model_bf16's .grad
    for p32, p16 in zip(master.parameters(), model_bf16.parameters()):
        p32.grad = p16.grad.float()  # a transient fp32 copy, freed after the step
    master_optimizer.step()
    master_optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        for p32, p16 in zip(master.parameters(), model_bf16.parameters()):
            p16.copy_(p32)  # round the updated master weights to bf16
    return loss.item()


losses = [mixed_precision_step() for _ in range(5)]
print("losses of 5 mixed-precision steps on one batch:", [round(v, 3) for v in losses])

mixed = {
    "bf16 weights": tensor_bytes(model_bf16.parameters()),
    "bf16 gradients": tensor_bytes(p.grad for p in model_bf16.parameters()),
    "fp32 master weights": tensor_bytes(master.parameters()),
    "Adam m and v": tensor_bytes(t for t in optimizer_state_tensors(master_optimizer)
                                 if t.dim() > 0),
}
mixed_formula = {"bf16 weights": 2 * psi, "bf16 gradients": 2 * psi,
                 "fp32 master weights": 4 * psi, "Adam m and v": 8 * psi}
print(f"{'':<22}{'measured':>12}{'formula':>12}")
for term in mixed:
    print(f"{term:<22}{mixed[term]:>12,}{mixed_formula[term]:>12,}")
print(f"{'total':<22}{sum(mixed.values()):>12,}{16 * psi:>12,}"
      f"   -> {sum(mixed.values()) / psi:.1f} bytes per parameter")

# %% [markdown]
# Again $16\Psi$, now split as $2 + 2 + 12$. (The bf16 gradients persist because the backward
# pass accumulates into them; the fp32 gradient copies exist only during the update.)
#
# ### What autocast changes
#
# PyTorch's `torch.autocast(dtype=torch.bfloat16)`, which `shared.training` enables with
# `TrainConfig(bf16=True)`, takes a different route: the parameters stay fp32, and inside the
# autocast region each matrix multiplication casts its inputs to bf16. So the parameter,
# gradient and optimizer bytes stay at $16\Psi$, and what changes is the activations: tensors
# saved for the backward pass by matrix multiplications are bf16, while softmax, LayerNorm and
# the loss stay in fp32. We measure the saved activations by dtype with the saved-tensor hooks
# of notebook 01, and check that the gradients are still fp32.

# %%
def saved_bytes_by_dtype(net: GPT, bf16: bool) -> dict[str, int]:
    """Bytes that autograd saves for backward in one forward pass, by dtype (parameters
    excluded); bf16 tensors shaped like a linear layer's weight are counted separately."""
    param_storages = {p.untyped_storage().data_ptr() for p in net.parameters()}
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    # matmuls may save a weight transposed, so both orientations count as weight copies
    weight_shapes = {s for m in linears for s in (tuple(m.weight.shape), tuple(m.weight.shape)[::-1])}
    seen: set[int] = set()
    by_dtype: dict[str, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in param_storages and storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            key = str(tensor.dtype).replace("torch.", "")
            if tensor.dtype == torch.bfloat16 and tuple(tensor.shape) in weight_shapes:
                key = "bf16 weight copies"
            by_dtype[key] = by_dtype.get(key, 0) + storage.nbytes()
        return tensor

    net.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = net(x, targets=y).loss
    loss.backward()
    return by_dtype


saved_totals = {}
for bf16 in (False, True):
    by_dtype = saved_bytes_by_dtype(model, bf16)
    saved_totals[bf16] = sum(by_dtype.values())
    grad_dtypes = {str(p.grad.dtype).replace("torch.", "") for p in model.parameters()}
    print(f"{'bf16 autocast' if bf16 else 'fp32'}: saved {saved_totals[bf16] / 2**20:.2f} MiB, "
          f"gradients {grad_dtypes}")
    for kind, size in sorted(by_dtype.items()):
        print(f"    {kind:<20}{size / 2**20:8.2f} MiB")
print(f"autocast saves {1 - saved_totals[True] / saved_totals[False]:.0%} of the activation bytes")

# %% [markdown]
# Autocast cuts this model's saved activations by more than a third, and leaves the gradients
# in fp32 and the 16 bytes per parameter untouched. Part of what it keeps for the backward pass
# is a bf16 copy of every weight matrix (2 bytes per entry), made once per forward pass. A pure
# bf16 model (the previous section) halves every activation and the weights used in compute, at
# the price of managing the master copy.

# %% [markdown]
# ## Trading compute for memory: activation recomputation
#
# Activations usually dominate: notebook 01 computed 9 GiB for GPT-2 small at batch 8 and
# context 1,024, against 2 GB for its whole $16\Psi$ training state. *Activation checkpointing*
# (Chen et al., 2016) keeps only each block's input during the forward pass and recomputes the
# block's internals during the backward pass; Korthikanti et al. (2022) refine it to recompute
# only the cheap, memory-hungry parts (the attention weights). With
# `torch.utils.checkpoint` around every block:

# %%
def loss_with_checkpointing(net: GPT) -> torch.Tensor:
    """GPT.forward for the default config (learned positions), each block checkpointed."""
    h = net.tok_emb(x) + net.pos_emb(torch.arange(BLOCK_SIZE))
    for block in net.blocks:
        h = checkpoint(block, h, use_reentrant=False)  # keep only h; recompute inside backward
    return F.cross_entropy(net.lm_head(net.norm_f(h)).flatten(0, 1), y.flatten())


def saved_and_grads(loss_fn) -> tuple[int, list[torch.Tensor], float]:
    """Saved-activation bytes, parameter gradients and forward + backward time of loss_fn()."""
    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    sizes: dict[int, int] = {}  # storage address -> bytes, so each storage counts once

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in param_storages:
            sizes[storage.data_ptr()] = storage.nbytes()
        return tensor

    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return sum(sizes.values()), grads, time.perf_counter() - start


plain_bytes, plain_grads, _ = saved_and_grads(lambda: model(x, targets=y).loss)
ckpt_bytes, ckpt_grads, _ = saved_and_grads(lambda: loss_with_checkpointing(model))
print(f"saved activations: {plain_bytes / 2**20:.2f} MiB without, "
      f"{ckpt_bytes / 2**20:.2f} MiB with checkpointing ({plain_bytes / ckpt_bytes:.0f}x less)")
print(f"max gradient difference: "
      f"{max((a - b).abs().max().item() for a, b in zip(plain_grads, ckpt_grads)):.1e}")
plain_time = min(saved_and_grads(lambda: model(x, targets=y).loss)[2] for _ in range(5))
ckpt_time = min(saved_and_grads(lambda: loss_with_checkpointing(model))[2] for _ in range(5))
print(f"forward + backward time with / without checkpointing: {ckpt_time / plain_time:.2f}x "
      "(measured)")

# %% [markdown]
# The gradients are identical and the saved activations shrink tenfold. The price is one extra
# forward pass of every block during the backward pass. Forward plus backward costs about three
# forward passes, so full recomputation adds roughly a third to the compute (Korthikanti et al.
# report 30-40% in large runs); the ratio printed above is one timing on this machine.

# %% [markdown]
# ## ZeRO: sharding the training state across devices
#
# In plain data parallelism each of $N_d$ devices holds a full replica of the $16\Psi$ state
# and processes its own slice of the batch; the gradients are averaged with an all-reduce.
# Every device stores the same optimizer state, which is pure redundancy. ZeRO (Rajbhandari et
# al., 2020) removes it in three stages:
#
# | stage | sharded across the $N_d$ devices | bytes per device |
# |---|---|---|
# | data parallel | nothing | $(2 + 2 + K)\Psi$ |
# | 1: $P_{os}$ | optimizer states | $2\Psi + 2\Psi + K\Psi / N_d$ |
# | 2: $P_{os+g}$ | + gradients | $2\Psi + (2 + K)\Psi / N_d$ |
# | 3: $P_{os+g+p}$ | + parameters | $(2 + 2 + K)\Psi / N_d$ |
#
# Stages 1 and 2 communicate as much as data parallelism (an all-reduce is a reduce-scatter
# plus an all-gather, which is exactly what they do); stage 3 gathers each layer's parameters
# when it is needed, about 1.5 times the traffic. PyTorch's FSDP implements stage 3. The paper's
# own example is a 7.5B-parameter model on 64 devices:

# %%
def zero_bytes(n_params: float, n_devices: int, stage: int, k: int = 12) -> float:
    """Training-state bytes per device under ZeRO stage 0 (plain data parallel), 1, 2 or 3."""
    if stage == 0:
        return (2 + 2 + k) * n_params
    if stage == 1:
        return 4 * n_params + k * n_params / n_devices
    if stage == 2:
        return 2 * n_params + (2 + k) * n_params / n_devices
    if stage == 3:
        return (2 + 2 + k) * n_params / n_devices
    raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage}")


STAGES = {0: "data parallel", 1: "ZeRO-1 (optimizer states)", 2: "ZeRO-2 (+ gradients)",
          3: "ZeRO-3 (+ parameters)"}
for stage, label in STAGES.items():
    print(f"7.5B parameters, 64 devices, {label:<28}: {zero_bytes(7.5e9, 64, stage) / 1e9:6.1f} GB")

devices = [2**i for i in range(11)]
fig, ax = plt.subplots(figsize=(7, 4.2))
for stage, label in STAGES.items():
    ax.plot(devices, [zero_bytes(7.5e9, n, stage) / 1e9 for n in devices], marker="o", label=label)
ax.axhline(80, color="gray", ls="--", label="80 GB accelerator")
ax.set(xscale="log", yscale="log", xlabel="number of devices N_d",
       ylabel="training state per device (GB)",
       title="ZeRO: memory per device for a 7.5B-parameter model (K = 12)")
ax.set_xticks(devices, [str(n) for n in devices])
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The printed values are the paper's Figure 1: 120 GB, 31.4 GB, 16.6 GB and 1.9 GB. Stage 1
# alone divides the memory by almost 4 at 64 devices, because the optimizer states are 12 of
# the 16 bytes; only stage 3 keeps falling as devices are added, since the other stages keep a
# full copy of the 16-bit weights (and gradients) on every device.
#
# ### ZeRO stage 1, carried out
#
# Sharding the optimizer state changes nothing in the mathematics, because Adam is elementwise:
# each parameter's update needs only its own gradient and moments. We check that by running it.
# The parameters are laid out as one flat vector and split into $N_d = 2$ contiguous shards;
# each "device" owns an AdamW for its shard only. One step of data parallelism with ZeRO-1:
#
# 1. every device computes gradients on its own micro-batch (here, one after the other);
# 2. *reduce-scatter*: the gradients are averaged, and each device receives only the average
#    for its shard;
# 3. each device updates its shard with its own AdamW;
# 4. *all-gather*: the updated shards are concatenated into every device's full copy of the
#    weights.
#
# The devices are simulated in one process (the collectives become `torch.cat` and slicing);
# across real processes the same steps map onto `torch.distributed.reduce_scatter_tensor` and
# `all_gather_into_tensor`. The reference is ordinary AdamW over the whole model, on the same
# micro-batches. For simplicity both use one parameter group.

# %%
N_DEVICES, STEPS = 2, 3


def flat_grad(net: GPT, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    net.zero_grad(set_to_none=True)
    net(inputs, targets=targets).loss.backward()
    return torch.cat([p.grad.flatten() for p in net.parameters()])


def write_flat(net: GPT, flat: torch.Tensor, into_grad: bool) -> None:
    offset = 0
    with torch.no_grad():
        for p in net.parameters():
            chunk = flat[offset: offset + p.numel()].view_as(p)
            if into_grad:
                p.grad = chunk.clone()
            else:
                p.copy_(chunk)
            offset += p.numel()


shared.seed_everything(0)
reference = GPT(config)
sharded = copy.deepcopy(reference)
reference_optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3, weight_decay=0.1)

flat_weights = torch.cat([p.detach().flatten() for p in sharded.parameters()])
owned = torch.tensor_split(torch.arange(flat_weights.numel()), N_DEVICES)  # indices per device
shards = [torch.nn.Parameter(flat_weights[idx].clone()) for idx in owned]
shard_optimizers = [torch.optim.AdamW([s], lr=1e-3, weight_decay=0.1) for s in shards]

sampler = RandomBlockSampler(data.train, BLOCK_SIZE, BATCH_SIZE, seed=1)
for step in range(STEPS):
    inputs, targets = sampler.next_batch()
    micro_batches = list(zip(inputs.chunk(N_DEVICES), targets.chunk(N_DEVICES)))
    # reference: plain AdamW on the average gradient of the micro-batches
    write_flat(reference, sum(flat_grad(reference, *mb) for mb in micro_batches) / N_DEVICES,
               into_grad=True)
    reference_optimizer.step()
    # ZeRO-1: 1. local gradients, 2. reduce-scatter, 3. local update, 4. all-gather
    averaged = sum(flat_grad(sharded, *mb) for mb in micro_batches) / N_DEVICES
    for shard, idx, opt in zip(shards, owned, shard_optimizers):
        shard.grad = averaged[idx]
        opt.step()
    write_flat(sharded, torch.cat([s.detach() for s in shards]), into_grad=False)
    difference = max((a - b).abs().max().item()
                     for a, b in zip(reference.parameters(), sharded.parameters()))
    print(f"step {step + 1}: max |reference - ZeRO-1| over all weights = {difference:.1e}")

full_state = tensor_bytes(optimizer_state_tensors(reference_optimizer))
for device, opt in enumerate(shard_optimizers):
    print(f"device {device}: optimizer state {tensor_bytes(optimizer_state_tensors(opt)):,} bytes "
          f"(the unsharded AdamW holds {full_state:,})")

# %% [markdown]
# The sharded run produces bit-for-bit the same weights as plain AdamW, while each device holds
# half of the moments (plus its one step counter). With fp32 everywhere, as here, $K = 8$ and
# stage 1 saves $8\Psi (1 - 1/N_d)$ per device.

# %% [markdown]
# ## Putting it together
#
# What training a 7B model takes, per device, in mixed precision with Adam on 8 devices of
# 80 GB, before activations (which recomputation and the batch size then have to fit into what
# is left):

# %%
n_params = 7e9
print(f"weights alone in bf16: {2 * n_params / 1e9:.0f} GB; full training state "
      f"(16 bytes/param): {16 * n_params / 1e9:.0f} GB")
for stage, label in STAGES.items():
    per_device = zero_bytes(n_params, 8, stage) / 1e9
    print(f"  8 devices, {label:<28}: {per_device:6.1f} GB per device, "
          f"{80 - per_device:6.1f} GB left for activations")

# %% [markdown]
# Data parallelism alone cannot train it on 80 GB devices; ZeRO-1 already can, and ZeRO-3
# leaves most of each device for activations. Compute is the other half of the budget: training
# costs about $6\Psi$ FLOPs per token (Kaplan et al., 2020), so memory says what fits and
# compute says how long it takes.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Measure SGD's state
#
# SGD with momentum keeps one buffer per parameter. Build a fresh `GPT(config)`, an
# `torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)`, run one backward pass and one
# step on `(x, y)`, and set `sgd_state_bytes` to the bytes of its optimizer state (use
# `tensor_bytes` and `optimizer_state_tensors`). Then set `sgd_bytes_per_param` to the total
# bytes per parameter of fp32 training with it (weights, gradients and state).

# %% tags=["solution"]
sgd_state_bytes = None
sgd_bytes_per_param = None
# BEGIN SOLUTION
shared.seed_everything(0)
sgd_model = GPT(config)
sgd = torch.optim.SGD(sgd_model.parameters(), lr=0.1, momentum=0.9)
sgd_model(x, targets=y).loss.backward()
sgd.step()
sgd_state_bytes = tensor_bytes(optimizer_state_tensors(sgd))
sgd_bytes_per_param = 4 + 4 + sgd_state_bytes / psi
# END SOLUTION
print(f"SGD state: {sgd_state_bytes} bytes; {sgd_bytes_per_param} bytes per parameter")

# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_function, passed

check_equal(sgd_state_bytes, 4 * psi, "sgd_state_bytes")
check_close(sgd_bytes_per_param, 12.0, "sgd_bytes_per_param")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The smallest cluster for ZeRO-3
#
# Write `min_devices_zero3(n_params, device_bytes, k=12)` returning the smallest number of
# devices on which ZeRO-3's training state, $(4 + K)\Psi / N_d$, fits in `device_bytes`
# (ignore activations). Then set `devices_70b` to the answer for a 70B-parameter model on
# 80 GB (80e9 bytes) devices, and `devices_70b_8bit` to the answer with 8-bit Adam moments
# (Dettmers et al., 2022: $m$ and $v$ take 1 byte each, so $K = 4 + 1 + 1 = 6$).

# %% tags=["solution"]
def min_devices_zero3(n_params: float, device_bytes: float, k: int = 12) -> int:
    # BEGIN SOLUTION
    devices = 1
    while zero_bytes(n_params, devices, 3, k) > device_bytes:
        devices += 1
    return devices
    # END SOLUTION


devices_70b = None
devices_70b_8bit = None
# BEGIN SOLUTION
devices_70b = min_devices_zero3(70e9, 80e9)
devices_70b_8bit = min_devices_zero3(70e9, 80e9, k=6)
# END SOLUTION
print(f"70B on 80 GB devices: {devices_70b} devices; with 8-bit Adam: {devices_70b_8bit}")

# %% tags=["check"]
check_function(min_devices_zero3, [((7.5e9, 2e9), 60), ((1e9, 16e9), 1), ((1e9, 15.9e9), 2)],
               "min_devices_zero3", exact=True)
check_equal(devices_70b, 14, "devices_70b")
check_equal(devices_70b_8bit, 9, "devices_70b_8bit")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Four devices
#
# Repeat the ZeRO-1 run with 4 simulated devices: write `zero1_state_bytes(n_devices)` that
# splits the flat parameters of a fresh `GPT(config)` into `n_devices` shards, gives each an
# AdamW, performs one step from the gradient on `(x, y)`, and returns a list of the optimizer
# state bytes of every device. The check verifies that the shards together hold exactly the
# unsharded AdamW's state ($8\Psi$ bytes plus one 4-byte step counter per device).

# %% tags=["solution"]
def zero1_state_bytes(n_devices: int) -> list[int]:
    # BEGIN SOLUTION
    shared.seed_everything(0)
    net = GPT(config)
    weights = torch.cat([p.detach().flatten() for p in net.parameters()])
    parts = torch.tensor_split(torch.arange(weights.numel()), n_devices)
    gradient = flat_grad(net, x, y)
    sizes = []
    for idx in parts:
        shard = torch.nn.Parameter(weights[idx].clone())
        opt = torch.optim.AdamW([shard], lr=1e-3)
        shard.grad = gradient[idx]
        opt.step()
        sizes.append(tensor_bytes(optimizer_state_tensors(opt)))
    return sizes
    # END SOLUTION


# %% tags=["check"]
per_device = zero1_state_bytes(4)
check_equal(len(per_device), 4, "len(zero1_state_bytes(4))")
check_equal(sum(per_device), 8 * psi + 4 * 4, "sum of the shards' state bytes")
check(max(per_device) - min(per_device) <= 8, "zero1_state_bytes(4)",
      "shards whose sizes differ by at most one parameter (8 bytes of moments)")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - Training with Adam keeps 16 bytes per parameter, in fp32 ($4 + 4 + 8$) and in mixed precision
#   ($2 + 2 + 12$); the measurement on a GPT matched the formula exactly, plus one 4-byte step
#   counter per tensor.
# - Mixed precision keeps an fp32 master copy because small updates round away in 16-bit weights,
#   and fp16 needs loss scaling because small gradients underflow; bf16 does not.
# - bf16 autocast leaves the 16 bytes per parameter unchanged and shrinks the saved activations
#   (by more than a third here); recomputation shrank them tenfold for one extra forward pass.
# - ZeRO shards optimizer states (stage 1), gradients (2) and parameters (3) across data-parallel
#   devices: 120 / 31.4 / 16.6 / 1.9 GB per device for 7.5B parameters on 64 devices. Sharding
#   Adam's state gives the same weights as unsharded training, because Adam is elementwise.
#
# ## References
#
# - S. Rajbhandari, J. Rasley, O. Ruwase, Y. He, "ZeRO: Memory optimizations toward training
#   trillion parameter models", SC 2020. https://arxiv.org/abs/1910.02054
# - P. Micikevicius et al., "Mixed precision training", ICLR 2018.
#   https://arxiv.org/abs/1710.03740
# - V. Korthikanti et al., "Reducing activation recomputation in large transformer models",
#   2022. https://arxiv.org/abs/2205.05198
# - T. Chen, B. Xu, C. Zhang, C. Guestrin, "Training deep nets with sublinear memory cost", 2016.
#   https://arxiv.org/abs/1604.06174
# - J. Kaplan et al., "Scaling laws for neural language models", 2020.
#   https://arxiv.org/abs/2001.08361
# - T. Dettmers, M. Lewis, S. Shleifer, L. Zettlemoyer, "8-bit optimizers via block-wise
#   quantization", ICLR 2022. https://arxiv.org/abs/2110.02861
# - I. Loshchilov, F. Hutter, "Decoupled weight decay regularization" (AdamW), ICLR 2019.
#   https://arxiv.org/abs/1711.05101
# - Y. Zhao et al., "PyTorch FSDP: Experiences on scaling fully sharded data parallel", VLDB 2023.
#   https://arxiv.org/abs/2304.11277
# - Hugging Face, "Model parallelism" guide. https://huggingface.co/docs/transformers/parallelism
# - PyTorch, "CUDA semantics: memory management". https://pytorch.org/docs/stable/notes/cuda.html
