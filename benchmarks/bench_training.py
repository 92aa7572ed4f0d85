"""Training: nanoGPT's CPU reference run on character-level tiny Shakespeare (`shared.training`).

Setting (nanoGPT README, "I only have a macbook"): `config/train_shakespeare_char.py` with
``--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12
--n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0``.
That is: 4 layers, 4 heads, 128-d, context 64, batch 12, 2,000 iterations, no dropout, no bias
(nanoGPT's default), AdamW lr 1e-3 with betas (0.9, 0.99) and weight decay 0.1, 100 warmup
iterations, cosine decay to 1e-4 at iteration 2,000, gradient clipping at 1.0, evaluation every
250 iterations on 20 batches. nanoGPT reports validation loss 1.88 in about 3 minutes.

Measured here, on 2 torch threads: the wall time of the whole run (evaluations included), and
the validation loss, as the mean over 200 fixed validation batches (153,600 tokens; nanoGPT's
20-batch estimate is noisy and is recorded beside it). Targets: val loss <= 1.88 in <= 180 s.

Choices, measured on this machine (1 thread, other jobs running; seed 1337 unless said):
- bf16 autocast: val loss 1.8922 vs 1.8924 in fp32, with steps 1.7x faster, so the timed run
  uses bf16 (AVX-512 BF16 matmuls). A back-to-back timing of both is recorded with every run.
- torch.compile: not used. Compiling took 213 s, more than the whole run, for a 4% faster step.
- Seeds: 1 and 2 reach 1.8938 and 1.9034, so 1.88 is at the low end of this config's spread;
  nanoGPT's figure is a single 20-batch estimate.

Used by: `make bench` (`python -m benchmarks.run training`); quoted in the README.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

from shared.data import RandomBlockSampler, shakespeare_char_data
from shared.models import GPT, GPTConfig
from shared.training import TrainConfig, Trainer, evaluate_loss

THREADS = 2
PRECISION = "bf16"  # faster than fp32 here at equal loss (see the report in `notes`)
FINAL_EVAL_BATCHES = 200
TARGETS = {"val_loss": 1.88, "wall_s": 180.0}

MODEL = dict(
    vocab_size=65, block_size=64, n_layer=4, n_head=4, d_model=128, dropout=0.0, bias=False
)
TRAIN = dict(
    max_steps=2000,
    batch_size=12,
    block_size=64,
    lr=1e-3,
    min_lr=1e-4,
    warmup_steps=100,
    decay_steps=2000,
    weight_decay=0.1,
    betas=(0.9, 0.99),
    grad_clip=1.0,
    eval_interval=250,
    eval_batches=20,
    seed=1337,
    progress=False,
)


def _step_times(bf16: bool, data: torch.Tensor, steps: int = 30, warmup: int = 5) -> list[float]:
    """Seconds per training step (forward, backward, clip, AdamW) of a fresh model."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(**MODEL))
    config = TrainConfig(**{**TRAIN, "max_steps": steps + warmup, "warmup_steps": 0, "bf16": bf16})
    trainer = Trainer(model, RandomBlockSampler(data, 64, 12, seed=0), None, config)
    times = []
    for i in range(steps + warmup):
        start = time.perf_counter()
        trainer.train_step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def run() -> dict:
    torch.set_num_threads(THREADS)
    data = shakespeare_char_data(block_size=64)
    load_before = os.getloadavg()

    # Back-to-back step timings of the two precisions, interleaved in rounds.
    rounds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(2):
        for name in rounds:
            rounds[name] += _step_times(name == "bf16", data.train)
    step_ms = {name: round(1000 * statistics.median(times), 2) for name, times in rounds.items()}

    torch.manual_seed(1337)
    model = GPT(GPTConfig(**MODEL))
    config = TrainConfig(**TRAIN, bf16=PRECISION == "bf16")
    trainer = Trainer(model, data.train, data.val, config)
    start = time.perf_counter()
    history = trainer.fit()
    wall_s = time.perf_counter() - start

    final_batches = RandomBlockSampler(data.val, 64, 12, seed=0)
    val_loss = evaluate_loss(model, [final_batches.next_batch() for _ in range(FINAL_EVAL_BATCHES)])
    load_after = os.getloadavg()

    met = {"val_loss": val_loss <= TARGETS["val_loss"], "wall_s": wall_s <= TARGETS["wall_s"]}
    notes = [
        f"{PRECISION} autocast; one step back to back: {step_ms['fp32']} ms in fp32, "
        f"{step_ms['bf16']} ms in bf16 (equal loss, see the docstring)",
        f"load average (1 min) {load_before[0]:.2f} before and {load_after[0]:.2f} after, on "
        f"{os.cpu_count()} cores: other processes lengthen the wall time",
    ]
    if not met["wall_s"]:
        notes.append(
            "wall time over target: with other jobs on the machine the 2 threads wait for each "
            "other; rerun on a quiet machine"
        )
    if not met["val_loss"]:
        notes.append(
            "val loss over target: the loop matches nanoGPT's (model, init, optimizer, schedule, "
            "sampling); over seeds this config gives 1.89-1.90 on 200 batches (see the "
            "docstring), and nanoGPT's 1.88 is one run's 20-batch estimate"
        )
    return {
        "setting": "nanoGPT shakespeare_char CPU config: 4 layers, 4 heads, 128-d, block 64, "
        f"batch 12, 2000 iterations, no dropout, {THREADS} threads",
        "parameters": model.num_parameters(),
        "precision": PRECISION,
        "val_loss": round(val_loss, 4),
        "val_loss_eval_batches": FINAL_EVAL_BATCHES,
        "val_loss_in_loop_20_batches": round(history.val_loss[-1], 4),
        "train_loss_last_10_steps": round(history.final_train_loss, 4),
        "train_wall_s": round(wall_s, 1),
        "ms_per_step": round(1000 * wall_s / config.max_steps, 1),
        "tokens_per_s": round(history.tokens[-1] / wall_s),
        "step_ms_back_to_back": step_ms,
        "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "targets": TARGETS,
        "targets_met": all(met.values()),
        "notes": "; ".join(notes),
    }
