"""Train the course's reference models and write them to data/checkpoints/<name>/.

    .venv/bin/python -m scripts.train_course_models                    # what `make models` runs
    .venv/bin/python -m scripts.train_course_models --max-steps 50 --out /tmp/smoke  # a check

Each model is trained with `shared.training` from a fixed seed on a fixed number of threads, so
running the script again on the same machine and library versions reproduces the same weights.
The folder gets ``config.json`` + ``model.safetensors`` (`shared.models.GPT.save_pretrained`),
``tokenizer.json``, ``training.json`` (command, seed, configs, losses, wall time, versions, a
sample) and a README.md generated from the same numbers. `shared.checkpoints` loads them.

The one model so far, ``shakespeare-char``: a 6-layer character-level GPT on tiny Shakespeare
(see ``RECIPE`` for every setting and the folder's README for the measured losses).

Used by: `make models`; `shared.checkpoints`; tests/test_checkpoints.py (a short run).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from shared.checkpoints import CHECKPOINTS_DIR, COURSE_MODELS
from shared.data import shakespeare_char_data
from shared.env import seed_everything
from shared.models import GPT, GPTConfig
from shared.training import TrainConfig, evaluate_loss, train

NAME = "shakespeare-char"
# One thread: floating-point sums then run in one fixed order, so a rerun on the same kind of CPU
# with the same library versions gives bitwise the same weights, however many cores it has (a
# different thread count splits the sums differently and changes the last bits).
THREADS = 1
STORAGE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

# nanoGPT's shakespeare_char shape (6 layers, 6 heads, context 256) at half its width, sized to
# train in about 15 minutes on one CPU thread (about 10 on two) and to stay under 20 MB on disk.
RECIPE = {
    "model": dict(
        vocab_size=65, block_size=256, n_layer=6, n_head=6, d_model=192, dropout=0.0, bias=False
    ),
    "train": dict(
        max_steps=1500,
        batch_size=16,
        block_size=256,
        lr=2e-3,
        min_lr=2e-4,
        warmup_steps=100,
        weight_decay=0.1,
        betas=(0.9, 0.99),
        grad_clip=1.0,
        eval_interval=250,
        eval_batches=20,
        bf16=True,
        seed=1337,
    ),
    "storage_dtype": "fp32",
}
SAMPLE_PROMPT = "ROMEO:\n"
SAMPLE_TOKENS = 400
LIBRARIES = ("torch", "numpy", "safetensors", "tokenizers", "tqdm")


def full_split_loss(model: GPT, ids: torch.Tensor, block_size: int, batch_size: int = 32) -> float:
    """Mean next-token loss over every non-overlapping block of ``ids`` (the whole split, once)."""
    n_blocks = (len(ids) - 1) // block_size
    x = ids[: n_blocks * block_size].view(n_blocks, block_size)
    y = ids[1 : n_blocks * block_size + 1].view(n_blocks, block_size)
    batches = [
        (x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n_blocks, batch_size)
    ]
    # Weight each batch by its size: the last one may be smaller.
    losses = [evaluate_loss(model, [batch]) * len(batch[0]) for batch in batches]
    return sum(losses) / n_blocks


def sample(model: GPT, tokenizer, prompt: str, n_tokens: int, seed: int) -> str:
    """Sampled text (temperature 0.8, top-k 40) from a fixed generator, for the README."""
    from shared.generation import generate

    idx = torch.tensor([tokenizer.encode(prompt)])
    out = generate(
        model,
        idx,
        n_tokens,
        do_sample=True,
        temperature=0.8,
        top_k=40,
        generator=torch.Generator().manual_seed(seed),
    )
    return tokenizer.decode(out[0])


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def train_shakespeare_char(out: Path, max_steps: int | None, threads: int, command: str) -> dict:
    """Train the character-level Shakespeare model, save it to ``out`` and return training.json."""
    torch.set_num_threads(threads)
    model_config = GPTConfig(**RECIPE["model"])
    train_config = TrainConfig(**RECIPE["train"])
    if max_steps is not None:  # a shortened run (checks); everything else stays as in the recipe
        train_config = TrainConfig(
            **{
                **RECIPE["train"],
                "max_steps": max_steps,
                "warmup_steps": min(train_config.warmup_steps, max_steps),
                "eval_interval": min(train_config.eval_interval, max_steps),
            }
        )
    data = shakespeare_char_data(block_size=model_config.block_size)

    seed_everything(train_config.seed)
    model = GPT(model_config)
    start = time.perf_counter()
    history = train(model, data.train, data.val, train_config)
    wall_s = time.perf_counter() - start

    # Store in the chosen dtype, then measure what a user will load: the stored weights.
    storage = RECIPE["storage_dtype"]
    out.mkdir(parents=True, exist_ok=True)
    model.to(STORAGE_DTYPES[storage]).save_pretrained(out)
    data.tokenizer.save(out / "tokenizer.json")
    loaded = GPT.from_pretrained(out)
    val_loss = full_split_loss(loaded, data.val, model_config.block_size)
    info = {
        "name": NAME,
        "description": COURSE_MODELS[NAME],
        "command": command,
        "seed": train_config.seed,
        "threads": threads,
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "storage_dtype": storage,
        "parameters": loaded.num_parameters(),
        "steps": history.steps[-1],
        "tokens_seen": history.tokens[-1],
        "train_split_tokens": len(data.train),
        "wall_time_s": round(wall_s, 1),
        "final_train_loss": round(history.final_train_loss, 4),
        "final_val_loss": round(history.final_val_loss, 4),
        "val_loss_full_split": round(val_loss, 4),
        "val_curve": {"steps": history.val_steps, "loss": [round(v, 4) for v in history.val_loss]},
        "sample": {
            "prompt": SAMPLE_PROMPT,
            "temperature": 0.8,
            "top_k": 40,
            "seed": 0,
            "text": sample(loaded, data.tokenizer, SAMPLE_PROMPT, SAMPLE_TOKENS, seed=0),
        },
        "versions": versions(),
        "cpu": platform.processor() or platform.machine(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "trained_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (out / "training.json").write_text(
        json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "README.md").write_text(readme(info, out), encoding="utf-8")
    return info


def readme(info: dict, out: Path) -> str:
    """The folder's README: what the files are, where they come from, how to regenerate them."""
    m, t, s = info["model_config"], info["train_config"], info["sample"]
    size_mb = (out / "model.safetensors").stat().st_size / 1e6
    passes = info["tokens_seen"] / info["train_split_tokens"]
    threads = f"{info['threads']} CPU thread" + ("s" if info["threads"] > 1 else "")
    return f"""# `{info["name"]}`: the course's character-level Shakespeare GPT

A {info["description"]}.

```python
from shared.checkpoints import course_model, course_tokenizer, course_model_info
model = course_model("{info["name"]}")  # a shared.models.GPT, in eval mode
tokenizer = course_tokenizer("{info["name"]}")  # a shared.data.CharTokenizer
```

| file | what |
|---|---|
| `config.json` | the `shared.models.GPTConfig` |
| `model.safetensors` | {info["parameters"]:,} parameters, {info["storage_dtype"]}, \
{size_mb:.1f} MB |
| `tokenizer.json` | the `shared.data.CharTokenizer` (65 characters) |
| `training.json` | command, seed, configs, losses, wall time, library versions, a sample |

## Provenance

- Command: `{info["command"]}` (what `make models` runs), seed {info["seed"]},
  {threads}. Rerunning it on the same kind of CPU with the same library versions reproduces
  the weights bit for bit.
- Data: `data/tinyshakespeare.txt` only (see data/README.md). The first 90% of the characters
  train, the last 10% validate, as in nanoGPT's `shakespeare_char`.
- Model: {m["n_layer"]} layers, {m["n_head"]} heads, {m["d_model"]}-d, context {m["block_size"]},
  learned positions, pre-LayerNorm, GELU, no bias, tied embeddings, no dropout.
- Training: {info["steps"]:,} steps of {t["batch_size"]} x {t["block_size"]} characters
  ({info["tokens_seen"]:,} tokens, {passes:.1f} passes over the training text). AdamW: lr
  {t["lr"]:g}, betas {tuple(t["betas"])}, weight decay {t["weight_decay"]} on matrices.
  {t["warmup_steps"]} warmup steps, then cosine decay to {t["min_lr"]:g}. Gradient clipping at
  {t["grad_clip"]}. bf16 autocast: {t["bf16"]}. Weights stored as trained, in
  {info["storage_dtype"]}.
- Wall time: {info["wall_time_s"] / 60:.1f} minutes, on a machine shared with other jobs (load
  average {info["load_average_1min_at_end"]} at the end).

## Measured losses (cross-entropy, nats per character)

| | loss |
|---|---|
| train, mean of the last 10 steps | {info["final_train_loss"]:.4f} |
| validation, {t["eval_batches"]} random batches at the last step | {info["final_val_loss"]:.4f} |
| validation, whole split in blocks of {m["block_size"]}, stored weights | \
{info["val_loss_full_split"]:.4f} |

Validation loss during training:

| step | {" | ".join(str(step) for step in info["val_curve"]["steps"])} |
|---|{"---|" * len(info["val_curve"]["steps"])}
| loss | {" | ".join(f"{loss:.3f}" for loss in info["val_curve"]["loss"])} |

For scale: a uniform guess over 65 characters scores ln 65 = 4.17; nanoGPT's CPU "baby" config
(4 layers, 128-d, context 64) reaches 1.88; its GPU config (6 layers, 384-d, context 256,
5,000 steps of 64 x 256) reaches 1.47.

## A sample

Prompt `{s["prompt"]!r}`, temperature {s["temperature"]}, top-k {s["top_k"]}, generator
seed {s["seed"]}:

```
{s["text"]}
```

## Regenerate

```bash
make models     # runs: .venv/bin/python -m scripts.train_course_models
```

`--readme-only` rewrites this file from `training.json` without training.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--name", choices=sorted(COURSE_MODELS), default=NAME, help="which model to train"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: data/checkpoints/<name>)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help=f"torch threads (default {THREADS}, as for the committed model; another count "
        "changes the weights in the last bits)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="train fewer steps than the recipe (for checks; not for the committed model)",
    )
    parser.add_argument(
        "--readme-only",
        action="store_true",
        help="rewrite README.md from the folder's training.json, without training",
    )
    args = parser.parse_args(argv)
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    out = args.out or CHECKPOINTS_DIR / args.name
    if args.readme_only:
        info = json.loads((out / "training.json").read_text(encoding="utf-8"))
        (out / "README.md").write_text(readme(info, out), encoding="utf-8")
        print(f"wrote {out / 'README.md'}")
        return 0
    command = "python -m scripts.train_course_models" + (
        ""
        if argv is None and len(sys.argv) == 1
        else " " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    info = train_shakespeare_char(out, args.max_steps, args.threads, command)
    print(
        json.dumps(
            {
                k: info[k]
                for k in (
                    "name",
                    "steps",
                    "wall_time_s",
                    "final_train_loss",
                    "final_val_loss",
                    "val_loss_full_split",
                )
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
