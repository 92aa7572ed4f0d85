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
# # Saving and sharing models: state dicts, safetensors, ONNX and recovery
#
# A trained model is a few files, and what is in those files decides who can use it, on what
# software, and at what risk. A PyTorch pickle can run arbitrary code when it is loaded; a
# safetensors file cannot. A Hugging Face folder (`config.json` plus weights) loads with one
# call in any library that knows the layout. An ONNX file runs without PyTorch at all, in
# onnxruntime, on phones or in browsers. And during training, checkpoints are only useful if a
# corrupted one is detected before it is trusted. This notebook takes the course's trained
# Shakespeare model through all of it: inside its state dict, into safetensors and a
# Hugging Face folder and back, out to ONNX with outputs checked against PyTorch, and through a
# checkpoint scheme that detects corruption and recovers.
#
# **Learning objectives**
# - Read a state dict (parameters, buffers, tied weights) and an optimizer state dict.
# - Explain why loading a pickle can execute code, show it safely, and read the safetensors
#   format byte by byte to see why it cannot.
# - Save and reload models with `save_pretrained`/`from_pretrained`, for the course GPT and a
#   `transformers` model, sharded or not, with identical outputs.
# - Export a model to ONNX with dynamic batch and sequence dimensions and check onnxruntime's
#   outputs against PyTorch.
# - Detect corrupted checkpoints with checksums and recover from the newest valid one.
#
# **Prerequisites:** [the training loop](04-training-loop) (what a checkpoint holds) and
# [a minimal GPT](../04-llm-from-scratch/01-minimal-llm) (the model's modules).
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
import contextlib
import hashlib
import io
import json
import logging
import os
import pickle
import pickletools
import struct
import tempfile
import warnings
import zipfile
from collections import Counter
from pathlib import Path

# transformers imports tqdm's notebook bar, which warns when ipywidgets is absent; bars are off.
warnings.filterwarnings("ignore", message="IProgress not found")

import matplotlib.pyplot as plt
import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

import shared
from shared.checkpoints import course_model, course_tokenizer
from shared.data import shakespeare_char_data
from shared.models import GPT, GPTConfig
from shared.training import TrainConfig, Trainer, make_optimizer

torch.set_num_threads(1)
transformers.utils.logging.disable_progress_bar()
shared.seed_everything(0)
print(shared.environment_summary("safetensors", "transformers", "onnx", "onnxruntime"))

scratch = tempfile.TemporaryDirectory(prefix="saving-")  # removed when the kernel exits
workdir = Path(scratch.name)

# %% [markdown]
# ## What is in a state dict
#
# `model.state_dict()` maps names to tensors: every parameter and every *persistent* buffer,
# named by its path in the module tree. It holds no code and no architecture: to use it you need
# the class and its configuration. We look inside the course's character-level Shakespeare GPT
# (trained once by `make models`, loaded from `data/checkpoints/`).

# %%
model = course_model("shakespeare-char")
tokenizer = course_tokenizer("shakespeare-char")
state = model.state_dict()
print(f"{len(state)} entries; the first eight:")
for name, tensor in list(state.items())[:8]:
    print(f"  {name:<32} {str(tuple(tensor.shape)):<12} {tensor.dtype}")
print("tied: lm_head.weight and tok_emb.weight share memory:",
      state["lm_head.weight"].data_ptr() == state["tok_emb.weight"].data_ptr())
unique_bytes = sum(t.numel() * t.element_size()
                   for name, t in state.items() if name != "lm_head.weight")
print(f"{model.num_parameters():,} parameters, {unique_bytes / 2**20:.2f} MiB in float32")
print("the state dict holds references, not copies:",
      state["norm_f.weight"].data_ptr() == model.norm_f.weight.data_ptr())

# %% [markdown]
# Three details matter when saving. The entries are the model's own tensors, so a state dict
# taken now changes when training continues: to keep a snapshot, save it or copy it. The
# output head is *tied* to the token embedding: two names, one tensor. And buffers registered with `persistent=False` (such as RoPE's cos/sin tables,
# which are recomputed from the config) are not in the state dict at all:

# %%
rope_model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=1, n_head=2, d_model=32,
                           pos_encoding="rope"))
print("buffers:", [name for name, _ in rope_model.named_buffers()])
print("buffers in the state dict:",
      [name for name in rope_model.state_dict() if name.startswith("rope")])

# %% [markdown]
# Where do the bytes go? Grouping the course model's parameters by component:

# %%
groups = Counter()
for name, tensor in state.items():
    if name == "lm_head.weight":
        continue  # the same tensor as tok_emb.weight
    part = ("embeddings" if "emb" in name else "attention" if ".attn." in name
            else "feed-forward" if ".ffn." in name else "norms")
    groups[part] += tensor.numel() * tensor.element_size()
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(list(groups), [b / 2**20 for b in groups.values()], color="tab:blue")
for row, size in enumerate(groups.values()):
    ax.text(size / 2**20, row, f" {size / 2**20:.2f}", va="center", fontsize=9)
ax.set(xlabel="MiB (float32)", ylabel="component", xlim=(0, 8),
       title="Bytes of the course model by component")
plt.tight_layout()
plt.show()

# %% [markdown]
# An optimizer has a state dict too. AdamW keeps two moments per parameter plus a step count,
# keyed by the parameter's *index* (not its name), with the hyperparameters in `param_groups`:
# twice the model's bytes, which is why training checkpoints are three times larger than the
# weights alone.

# %%
trainee = course_model("shakespeare-char").train()  # a second copy, so `model` stays as trained
optimizer = make_optimizer(trainee, lr=1e-3, weight_decay=0.1)
x = torch.tensor([tokenizer.encode("ROMEO:\nWhat light through yonder window breaks")])
trainee(x[:, :-1], targets=x[:, 1:]).loss.backward()
optimizer.step()
opt_state = optimizer.state_dict()
first = opt_state["state"][0]
print("optimizer state dict keys:", list(opt_state))
print("per-parameter entries:", {k: tuple(v.shape) for k, v in first.items()})
moment_bytes = sum(v.numel() * v.element_size() for s in opt_state["state"].values()
                   for k, v in s.items() if k != "step")
print(f"AdamW moments: {moment_bytes / 2**20:.2f} MiB "
      f"({moment_bytes / unique_bytes:.1f}x the weights)")
print("param_groups[0]:", {k: v for k, v in opt_state["param_groups"][0].items() if k != "params"})

# %% [markdown]
# ## Why not pickle: `torch.save` can carry code
#
# `torch.save` writes a zip archive whose `data.pkl` is a Python pickle, and a pickle is a small
# program: its opcodes can import any function by name and call it. Whoever made the file
# chooses the function. We build a harmless payload whose "function" creates a directory in our
# scratch folder (a real attack would call `os.system`).

# %%
class Payload:
    """Pickles as an instruction to call os.makedirs(path) when unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (str(self.path),))


marker = workdir / "created-by-unpickling"
trap = workdir / "model.pt"
torch.save({"weights": state["norm_f.weight"], "extra": Payload(marker)}, trap)
honest = workdir / "honest.pt"
torch.save({"weights": state["norm_f.weight"]}, honest)
print("archive members:", zipfile.ZipFile(trap).namelist()[:3], "...")


def imported_names(path: Path) -> set[str]:
    """The functions and classes a torch.save file's pickle imports (its GLOBAL opcodes)."""
    with zipfile.ZipFile(path) as archive:
        pickle_bytes = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(pickle_bytes)
            if op.name == "GLOBAL"}


print("the honest file imports:", sorted(imported_names(honest)))
print("the trap imports:       ", sorted(imported_names(trap)))

# %% [markdown]
# Since PyTorch 2.6, `torch.load` defaults to `weights_only=True`: an unpickler that allows only
# an allowlist of tensor-rebuilding functions. It refuses the trap. Turning it off, as old code
# and many tutorials do, runs the payload:

# %%
try:
    torch.load(trap)
except pickle.UnpicklingError as error:
    print("weights_only=True refused:", [line for line in str(error).splitlines()
                                         if "GLOBAL" in line][0])
print("payload ran:", marker.exists())
torch.load(trap, weights_only=False)
print("after weights_only=False, payload ran:", marker.exists())

# %% [markdown]
# The allowlist is a defence for a format that was never meant to be safe. safetensors (Hugging
# Face, 2022) removes the problem by construction: a file is an 8-byte little-endian header
# length, a JSON header naming each tensor's dtype, shape and byte range, and then the raw bytes.
# Loading parses JSON and copies (or memory-maps) bytes; there is nothing to execute. We read the
# course model's file by hand:

# %%
weights_file = workdir / "course.safetensors"
save_file({k: v for k, v in state.items() if k != "lm_head.weight"}, str(weights_file),
          metadata={"format": "pt"})
raw = weights_file.read_bytes()
(header_length,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8 : 8 + header_length])
print(f"file {len(raw):,} bytes = 8 + header {header_length:,} + data "
      f"{len(raw) - 8 - header_length:,}")
print("metadata:", header["__metadata__"])
print("one entry:", "norm_f.weight", header["norm_f.weight"])
start, end = header["norm_f.weight"]["data_offsets"]
by_hand = np.frombuffer(raw[8 + header_length + start : 8 + header_length + end], dtype="<f4")
print("bytes read by hand equal the tensor:",
      np.array_equal(by_hand, state["norm_f.weight"].numpy()))

# %% [markdown]
# The format also refuses what it cannot represent: any object that is not a tensor, and, as the
# tied weights above showed, two names for one memory (which would be stored twice and come
# back untied). That is why `GPT.save_pretrained` drops `lm_head.weight` and `from_pretrained`
# ties it again.

# %%
for name, attempt in [("a Python object", {"extra": Payload(marker)}),
                      ("tied weights", {"tok_emb.weight": state["tok_emb.weight"],
                                        "lm_head.weight": state["lm_head.weight"]})]:
    try:
        save_file(attempt, str(workdir / "refused.safetensors"))
    except (ValueError, RuntimeError) as error:
        print(f"safetensors refuses {name}: {str(error).strip().splitlines()[0][:90]}")

with safe_open(weights_file, framework="pt") as lazy:  # memory-mapped: loads only what you ask
    rows = lazy.get_slice("tok_emb.weight")[:3]
print("three embedding rows read without loading the rest:", tuple(rows.shape))

# %% [markdown]
# ## `save_pretrained` and `from_pretrained`
#
# The Hugging Face layout is a folder: `config.json` (the architecture's hyperparameters) and
# `model.safetensors` (the weights), optionally split into shards with an index. The course GPT
# writes and reads this layout itself; `transformers` models do the same with more files.
# Loading must give *identical* outputs, not merely close ones.

# %%
prompt = torch.tensor([tokenizer.encode("JULIET:\nO Romeo, Romeo! wherefore art thou")])
with torch.no_grad():
    reference_logits = model(prompt).logits

course_dir = model.save_pretrained(workdir / "course-model")
print("files:", {p.name: p.stat().st_size for p in sorted(course_dir.iterdir())})
reloaded = GPT.from_pretrained(course_dir)
with torch.no_grad():
    print("course GPT reloaded, identical logits:",
          torch.equal(reloaded(prompt).logits, reference_logits))

# %% [markdown]
# The same with a `transformers` model. A GPT-2 configured to the course model's vocabulary and
# context, randomly initialised (this course has no GPT-2 weights offline), is saved whole and
# in shards of at most 300 kB; both reload to identical logits.

# %%
torch.manual_seed(0)
hf_config = GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=256, n_embd=64, n_layer=2,
                       n_head=4, activation_function="gelu", bos_token_id=0, eos_token_id=0)
hf_model = GPT2LMHeadModel(hf_config).eval()
with torch.no_grad():
    hf_logits = hf_model(prompt).logits

hf_model.save_pretrained(workdir / "gpt2-tiny")
hf_model.save_pretrained(workdir / "gpt2-tiny-sharded", max_shard_size="300KB")
for folder in ("gpt2-tiny", "gpt2-tiny-sharded"):
    files = sorted(p.name for p in (workdir / folder).iterdir())
    again = GPT2LMHeadModel.from_pretrained(workdir / folder).eval()
    with torch.no_grad():
        same = torch.equal(again(prompt).logits, hf_logits)
    print(f"{folder}: {files}\n  reloaded, identical logits: {same}")
index = json.loads((workdir / "gpt2-tiny-sharded" / "model.safetensors.index.json").read_text())
print("index maps each tensor to its shard, e.g.:", list(index["weight_map"].items())[:2])

# %% [markdown]
# Because the layout is shared, the course library can also read this model's weights into its
# own GPT (`GPT.from_huggingface` maps GPT-2's tensor names and transposes its `Conv1D`
# weights), and the two implementations agree:

# %%
converted = GPT.from_huggingface(hf_model)
with torch.no_grad():
    gap = (converted(prompt).logits - hf_logits).abs().max().item()
print(f"shared.models.GPT from the transformers GPT-2: max |logit difference| = {gap:.1e}")

# %% [markdown]
# ## Exporting to ONNX
#
# ONNX stores a model as a graph of standard operators (MatMul, Softmax, LayerNormalization,
# ...) with its weights, readable by runtimes that know nothing of PyTorch: onnxruntime on
# servers and phones, TensorRT, browsers. `torch.onnx.export(..., dynamo=True)` captures the
# graph with `torch.export`, which traces tensor operations symbolically. Two things in the
# course GPT's `forward` cannot be captured that way: a Python `if` on tensor *values* (it checks
# that every token id is in the vocabulary before running) and the attention's `is_causal`
# flag, a Python bool computed from the sequence length, which becomes symbolic once the length
# is a dynamic dimension. Both are documented limits of `torch.export` (see References). So we
# export the model's *computation*: a thin wrapper that calls the same modules, with the
# causal mask as an explicit tensor, and check first that it computes what `forward` does.

# %%
class ExportableGPT(torch.nn.Module):
    """The course GPT's forward pass (learned positions) without Python-side checks."""

    def __init__(self, gpt: GPT) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        gpt, length = self.gpt, idx.shape[1]
        x = gpt.drop(gpt.tok_emb(idx) + gpt.pos_emb(torch.arange(length, device=idx.device)))
        causal = torch.full((length, length), float("-inf"), device=idx.device).triu(1)
        for block in gpt.blocks:
            x = block(x, attn_mask=causal)
        return gpt.lm_head(gpt.norm_f(x))


exportable = ExportableGPT(model).eval()
with torch.no_grad():
    wrapper_gap = (exportable(prompt) - reference_logits).abs().max().item()
print(f"wrapper vs GPT.forward: max |logit difference| = {wrapper_gap:.1e}")

# %% [markdown]
# Batch size and sequence length are declared dynamic, so one file serves every shape up to the
# model's context of 256. The exporter prints progress and warnings; we keep them out of the
# notebook.

# %%
onnx_path = workdir / "course-model.onnx"
sample = torch.randint(0, tokenizer.vocab_size, (2, 16))
dynamic = {"idx": {0: torch.export.Dim("batch", max=64),
                   1: torch.export.Dim("sequence", max=model.config.block_size)}}
logging.getLogger("torch.onnx").setLevel(logging.ERROR)
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.onnx.export(exportable, (sample,), onnx_path, dynamo=True, dynamic_shapes=dynamic,
                      input_names=["idx"], output_names=["logits"], external_data=False)

graph = onnx.load(onnx_path)
onnx.checker.check_model(graph)
print(f"{onnx_path.name}: {onnx_path.stat().st_size:,} bytes, opset "
      f"{graph.opset_import[0].version}, {len(graph.graph.node)} nodes")
print("input :", graph.graph.input[0].name,
      [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim])
print("output:", graph.graph.output[0].name,
      [d.dim_param or d.dim_value for d in graph.graph.output[0].type.tensor_type.shape.dim])
print("most common operators:", Counter(n.op_type for n in graph.graph.node).most_common(6))

# %% [markdown]
# Now the same inputs through onnxruntime and through PyTorch, at several shapes. Both compute
# in float32 but with different kernels that add in different orders, so we expect agreement
# to about $10^{-5}$, not bit for bit, and the same predicted token everywhere.

# %%
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
generator = torch.Generator().manual_seed(1)
print(f"{'batch x seq':>12} {'max |ORT - torch|':>18} {'same argmax':>12}")
for batch, length in [(1, 1), (1, 37), (3, 128), (2, 256)]:
    ids = torch.randint(0, tokenizer.vocab_size, (batch, length), generator=generator)
    ort_logits = session.run(None, {"idx": ids.numpy()})[0]
    with torch.no_grad():
        torch_logits = model(ids).logits.numpy()
    print(f"{f'{batch} x {length}':>12} {np.abs(ort_logits - torch_logits).max():>18.2e} "
          f"{str(bool((ort_logits.argmax(-1) == torch_logits.argmax(-1)).all())):>12}")

# %% [markdown]
# The decisive test for a language model is generation: greedy decoding picks the most likely
# next character 100 times, so a single disagreement would change the rest of the text.

# %%
def greedy(next_logits, prompt_text: str, n_new: int) -> str:
    ids = tokenizer.encode(prompt_text)
    for _ in range(n_new):
        context = np.array([ids[-model.config.block_size:]], dtype=np.int64)
        ids.append(int(next_logits(context)[0, -1].argmax()))
    return tokenizer.decode(ids)


def torch_next(context: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(context)).logits.numpy()


def ort_next(context: np.ndarray) -> np.ndarray:
    return session.run(None, {"idx": context})[0]


text_torch = greedy(torch_next, "ROMEO:\n", 100)
text_ort = greedy(ort_next, "ROMEO:\n", 100)
print("identical generated text:", text_torch == text_ort)
print(text_ort)

# %% [markdown]
# ## Recovery: versioned checkpoints with checksums
#
# A checkpoint can be damaged in two ways. A *truncated* file (the job was killed while writing,
# or the disk filled up) usually fails to load, which at least is loud. A *silently corrupted*
# file (a flipped bit on a disk or in a transfer) often loads without error and gives wrong
# weights. A robust scheme therefore:
#
# 1. writes each checkpoint to a new folder and only then makes it visible (`Trainer` writes
#    into `<name>.saving` and renames it, so a crash mid-write never replaces a good checkpoint);
# 2. keeps the last few versions, not just one;
# 3. records a checksum (SHA-256) of every file, and verifies it before trusting the files;
# 4. on restart, resumes from the newest version that verifies.
#
# Here is that scheme in a few functions around `shared.training.Trainer`'s checkpoints.

# %%
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_version(trainer: Trainer, root: Path, keep: int = 3) -> Path:
    """Save a checkpoint as root/step-NNNNNN with a manifest of checksums; keep the newest few."""
    folder = trainer.save_checkpoint(root / f"step-{trainer.step:06d}")
    manifest = {p.name: sha256(p) for p in sorted(folder.iterdir())}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for old in sorted(root.glob("step-*"))[:-keep]:
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    return folder


def problems(folder: Path) -> list[str]:
    """What is wrong with a checkpoint folder: missing manifest or files, checksum mismatches."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return ["no manifest (the save did not finish)"]
    manifest = json.loads(manifest_path.read_text())
    found = []
    for name, expected in manifest.items():
        path = folder / name
        if not path.is_file():
            found.append(f"{name} is missing")
        elif sha256(path) != expected:
            found.append(f"{name}: checksum mismatch")
    return found


def newest_valid(root: Path) -> Path:
    """The newest checkpoint folder whose files match their manifest."""
    for folder in sorted(root.glob("step-*"), reverse=True):
        issues = problems(folder)
        if not issues:
            return folder
        print(f"  skipping {folder.name}: {'; '.join(issues)}")
    raise FileNotFoundError(f"no valid checkpoint under {root}")

# %% [markdown]
# We train a small GPT for 24 updates, saving a version every 6, keeping the last 3. Then we
# damage the two newest: truncate one file of `step-000024` (a write cut short) and flip a
# single bit in the weights of `step-000018`.

# %%
data = shakespeare_char_data(64)
small_config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=2, n_head=4,
                         d_model=64, dropout=0.1)
train_config = TrainConfig(max_steps=24, batch_size=8, block_size=64, lr=3e-3, min_lr=3e-4,
                           warmup_steps=5, eval_interval=0, eval_batches=2, progress=False)


def fresh_trainer(seed: int) -> Trainer:
    torch.manual_seed(seed)
    return Trainer(GPT(small_config), data.train, data.val, train_config)


versions = workdir / "versions"
trainer = fresh_trainer(seed=0)
for until in (6, 12, 18, 24):
    trainer.fit(until=until)
    save_version(trainer, versions, keep=3)
print("versions on disk:", [p.name for p in sorted(versions.iterdir())])

newest = versions / "step-000024" / "trainer_state.safetensors"
newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a write cut short

flipped = versions / "step-000018" / "model.safetensors"
good_weights = {k: v.clone() for k, v in load_file(str(flipped)).items()}  # copies, not a mmap
damaged = bytearray(flipped.read_bytes())
damaged[-1001] ^= 0x40  # one bit (of an exponent) of one float in the data section
_ = flipped.write_bytes(bytes(damaged))

# %% [markdown]
# What happens if we load them without checking?

# %%
try:
    load_file(str(newest))
except Exception as error:  # safetensors raises its own error type for a bad header or size
    print(f"truncated file: {type(error).__name__}: {str(error)[:80]}")
bad_weights = load_file(str(flipped))
changed = {k: (bad_weights[k] - good_weights[k]).abs().max().item()
           for k in good_weights if not torch.equal(bad_weights[k], good_weights[k])}
print(f"bit-flipped file: loads without error; changed tensors and their largest change: "
      f"{changed}")

# %% [markdown]
# The truncated file is caught by safetensors itself (the header promises more bytes than
# there are). The flipped bit is not: the file is well formed, just wrong. The bit belonged to
# the exponent of one float, which jumped to about $6 \times 10^{36}$: the model is ruined, and
# nothing complained. The checksums catch both, and recovery falls back to `step-000012`. We
# resume from it with a brand-new trainer and train on to update 24; because resumption is
# exact (notebook 04), the result must be bitwise identical to a run that was never damaged.

# %%
print("looking for the newest valid checkpoint:")
recovered = newest_valid(versions)
print("recovering from", recovered.name)
resumed_trainer = fresh_trainer(seed=123)
resumed_trainer.load_checkpoint(recovered)
resumed_trainer.fit()

undamaged = fresh_trainer(seed=0)
undamaged.fit()
print("recovered run bitwise equal to an undamaged run:",
      all(torch.equal(a, b) for a, b in zip(resumed_trainer.model.state_dict().values(),
                                            undamaged.model.state_dict().values(), strict=True)))

# %% [markdown]
# ## Formats side by side
#
# The same course model in each format on disk. The pickle and safetensors files hold the same
# float32 bytes; ONNX adds the graph. A bfloat16 copy halves the size; bfloat16 keeps 8 bits of
# mantissa (about 2-3 significant digits), and we measure what that does to the logits.

# %%
torch.save(state, workdir / "course.pt")
half_path = workdir / "course-bf16.safetensors"
save_file({k: v.to(torch.bfloat16) for k, v in state.items() if k != "lm_head.weight"},
          str(half_path))
sizes = {"torch.save (pickle)": (workdir / "course.pt").stat().st_size,
         "safetensors fp32": weights_file.stat().st_size,
         "safetensors bf16": half_path.stat().st_size,
         "ONNX fp32 (graph + weights)": onnx_path.stat().st_size}
fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(list(sizes), [s / 2**20 for s in sizes.values()], color="tab:green")
ax.set(xlabel="MiB on disk", ylabel="format", title="The course model in four files")
ax.invert_yaxis()
plt.tight_layout()
plt.show()
for name, size in sizes.items():
    print(f"{name:<28} {size:>12,} bytes")

half_model = GPT(model.config).eval()
half_state = {k: v.float() for k, v in load_file(str(half_path)).items()}
half_state["lm_head.weight"] = half_state["tok_emb.weight"]
half_model.load_state_dict(half_state)
with torch.no_grad():
    half_logits = half_model(prompt).logits
print(f"bf16 weights: max |logit difference| {(half_logits - reference_logits).abs().max():.3f} "
      f"(logits span {reference_logits.min():.1f} to {reference_logits.max():.1f}); "
      f"same argmax at {(half_logits.argmax(-1) == reference_logits.argmax(-1)).float().mean():.0%}"
      f" of positions")

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Read a safetensors header by hand
#
# Write `safetensors_header(path)` that returns the header of a safetensors file as a dict
# (without the `__metadata__` entry), using only `open`, `struct` and `json`: read the first 8
# bytes as a little-endian unsigned 64-bit integer $n$, then parse the next $n$ bytes as JSON.
# The check compares tensor names, dtypes and shapes with `safe_open` on the course model's
# file.

# %% tags=["solution"]
def safetensors_header(path: Path) -> dict:
    """The tensor entries of a safetensors header: name -> {dtype, shape, data_offsets}."""
    # BEGIN SOLUTION
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_equal, passed

parsed = safetensors_header(weights_file)
check_equal(sorted(parsed), sorted(k for k in state if k != "lm_head.weight"),
            "tensor names in the header")
with safe_open(weights_file, framework="pt") as lazy:
    for name in parsed:
        check_equal(parsed[name]["shape"], list(lazy.get_slice(name).get_shape()),
                    f"shape of {name}")
        check_equal(parsed[name]["dtype"], "F32", f"dtype of {name}")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Export a network with a dynamic batch dimension
#
# Write `export_mlp(module, path)` that exports `module` (it maps a `(batch, 12)` float tensor to
# `(batch, 3)`) to ONNX at `path` with the batch dimension dynamic, input name `"x"` and output
# name `"y"`, all weights inside the one file. The check runs the file in onnxruntime at batch
# sizes 1, 5 and 33 and compares with PyTorch.

# %% tags=["solution"]
def export_mlp(module: torch.nn.Module, path: Path) -> None:
    """Export module to ONNX with a dynamic batch dimension; input "x", output "y"."""
    # BEGIN SOLUTION
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(4, 12),), path, dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("batch")},),
                          input_names=["x"], output_names=["y"], external_data=False)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check_close

torch.manual_seed(3)
mlp = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.GELU(), torch.nn.Linear(32, 3)).eval()
mlp_path = workdir / "mlp.onnx"
export_mlp(mlp, mlp_path)
check(mlp_path.is_file(), "export_mlp", f"an ONNX file at {mlp_path}")
mlp_session = ort.InferenceSession(mlp_path, providers=["CPUExecutionProvider"])
for batch in (1, 5, 33):
    inputs = torch.randn(batch, 12)
    with torch.no_grad():
        expected = mlp(inputs).numpy()
    (result,) = mlp_session.run(["y"], {"x": inputs.numpy()})
    check_close(result, expected, f"onnxruntime output at batch {batch}", atol=1e-5)
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Keep what you can trust
#
# `save_version` keeps the newest `keep` versions, whatever their state. A better policy never
# deletes the newest *valid* checkpoint. Write `prune(root, keep)` that deletes version folders
# (`step-*`) except the newest `keep` ones **and** the newest one for which `problems(folder)`
# is empty (which may be older). It returns the names of the folders it kept, oldest first.
# The check builds versions where the newest three are damaged.

# %% tags=["solution"]
def prune(root: Path, keep: int) -> list[str]:
    """Delete old step-* folders, keeping the newest `keep` and the newest valid one."""
    # BEGIN SOLUTION
    folders = sorted(root.glob("step-*"))
    kept = set(folders[-keep:])
    valid = [f for f in folders if not problems(f)]
    if valid:
        kept.add(valid[-1])
    for folder in folders:
        if folder not in kept:
            for file in folder.iterdir():
                file.unlink()
            folder.rmdir()
    return sorted(f.name for f in kept)
    # END SOLUTION


# %% tags=["check"]
prune_root = workdir / "prune-test"
for step in (10, 20, 30, 40, 50):
    folder = prune_root / f"step-{step:06d}"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(bytes([step]) * 100)
    manifest = {"model.bin": sha256(folder / "model.bin")}
    (folder / "manifest.json").write_text(json.dumps(manifest))
for step in (30, 40, 50):  # damage the three newest
    (prune_root / f"step-{step:06d}" / "model.bin").write_bytes(b"garbage")
kept = prune(prune_root, keep=2)
check_equal(kept, ["step-000020", "step-000040", "step-000050"], "prune(root, keep=2)")
check_equal(sorted(p.name for p in prune_root.iterdir()), kept, "folders left on disk")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - A state dict maps names to tensors (parameters and persistent buffers); it holds no code.
#   Tied weights appear under two names with one storage; the optimizer's state dict is keyed by
#   parameter index and is twice the size of the weights for AdamW.
# - `torch.save` files are pickles, and unpickling can call any function: the demonstration
#   created a directory on load with `weights_only=False`. `weights_only=True` (the default
#   since PyTorch 2.6) refuses it. safetensors files are a JSON header plus raw bytes, read by
#   hand above, with nothing to execute.
# - `save_pretrained`/`from_pretrained` round trips gave bitwise-identical logits, for the
#   course GPT and for a `transformers` GPT-2, whole or sharded.
# - The ONNX export of the course model matched PyTorch to about $10^{-5}$ at every batch size
#   and length tried, and greedy generation produced the same 100 characters. Export captures
#   tensor operations only, so Python checks on values must stay outside the exported graph.
# - Versioned checkpoints with SHA-256 manifests detected a truncated file and a single flipped
#   bit (which loaded without error); resuming from the newest valid version reproduced the
#   undamaged run bit for bit.
#
# Next module: evaluating what such a model has learned.
#
# ## References
#
# - Hugging Face, safetensors documentation and format.
#   https://huggingface.co/docs/safetensors/index
# - Trail of Bits, "Security audit of safetensors" (2023).
#   https://huggingface.co/blog/safetensors-security-audit
# - PyTorch, `torch.load` and `weights_only`.
#   https://docs.pytorch.org/docs/stable/generated/torch.load.html
# - Python, `pickle` documentation (the warning on untrusted data).
#   https://docs.python.org/3/library/pickle.html
# - PyTorch, saving and loading models.
#   https://docs.pytorch.org/tutorials/beginner/saving_loading_models.html
# - Hugging Face Transformers, `save_pretrained`/`from_pretrained` and sharded checkpoints.
#   https://huggingface.co/docs/transformers/main_classes/model
# - ONNX, the open standard for machine learning interoperability. https://onnx.ai/ ;
#   operators: https://onnx.ai/onnx/operators/
# - PyTorch, exporting to ONNX with `torch.onnx.export(dynamo=True)`.
#   https://docs.pytorch.org/docs/stable/onnx_export.html
# - PyTorch, `torch.export` (dynamic shapes and data-dependent control flow).
#   https://docs.pytorch.org/docs/stable/export.html
# - onnxruntime documentation. https://onnxruntime.ai/docs/
# - Y. Huang et al., "GPipe: Efficient training of giant neural networks using pipeline
#   parallelism", NeurIPS 2019. https://arxiv.org/abs/1811.06965
# - J. Ren et al., "ZeRO-Offload: Democratizing billion-scale model training", USENIX ATC 2021.
#   https://arxiv.org/abs/2101.06840
# - PyTorch, activation checkpointing (`torch.utils.checkpoint`).
#   https://docs.pytorch.org/docs/stable/checkpoint.html
