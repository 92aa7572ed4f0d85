"""KV cache: greedy tokens/s with and without the cache, 200 new tokens, identical tokens.

Two models with random weights (speed does not depend on the values; the tokens are still
checked to be identical): the nanoGPT Shakespeare-char shape (6 layers, 6 heads, 384-d, vocab 65,
context 256; about 10.7M parameters) and the GPT-2 small shape (12 layers, 12 heads, 768-d,
vocab 50257, context 1024; about 124M parameters). Cached and uncached runs are timed back to
back under `torch.inference_mode`, after a short warm-up, on ``THREADS`` torch threads (the 2
cores of the reference machine; ``KV_BENCH_THREADS`` overrides it). Uncached decoding re-encodes
the whole sequence at every step, so its run time grows with the prompt; both models use the same
32-token prompt. The load average is recorded before and after: other jobs distort the timings,
and two OpenMP threads on an oversubscribed machine slow down far more than one.

Target (conventions, section 7): cached >= 5x the uncached tokens/s on both models, with
identical tokens.

Used by: `make bench`; modules/11-inference-optimization/kv-cache quotes the figures.
"""

from __future__ import annotations

import os
import time

import torch

from shared.generation import generate
from shared.models import GPT, GPTConfig

THREADS = int(os.environ.get("KV_BENCH_THREADS", "2"))
NEW_TOKENS = 200
PROMPT_TOKENS = 32
TARGET_SPEEDUP = 5.0
MODELS = {
    "nanogpt_10m": GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, d_model=384),
    "gpt2_124m": GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, d_model=768),
}


def _timed_generate(model: GPT, idx: torch.Tensor, use_cache: bool) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    tokens = generate(model, idx, NEW_TOKENS, use_cache=use_cache)
    return tokens, time.perf_counter() - start


def measure(name: str, config: GPTConfig) -> dict:
    """Cached, then uncached greedy decoding of one model; tokens/s, speed-up, identical tokens."""
    torch.manual_seed(0)
    model = GPT(config).eval()
    generator = torch.Generator().manual_seed(1)
    idx = torch.randint(0, config.vocab_size, (1, PROMPT_TOKENS), generator=generator)
    with torch.inference_mode():
        generate(model, idx, 4, use_cache=True)  # warm-up: allocator, kernels
        generate(model, idx, 4, use_cache=False)
        cached, cached_s = _timed_generate(model, idx, use_cache=True)
        uncached, uncached_s = _timed_generate(model, idx, use_cache=False)
    identical = torch.equal(cached, uncached)
    speedup = uncached_s / cached_s
    print(
        f"{name}: cached {NEW_TOKENS / cached_s:.1f} tok/s, "
        f"uncached {NEW_TOKENS / uncached_s:.1f} tok/s, x{speedup:.1f}, "
        f"identical tokens: {identical}",
        flush=True,
    )
    return {
        "parameters": model.num_parameters(),
        "prompt_tokens": PROMPT_TOKENS,
        "new_tokens": NEW_TOKENS,
        "cached_tokens_per_s": round(NEW_TOKENS / cached_s, 1),
        "uncached_tokens_per_s": round(NEW_TOKENS / uncached_s, 1),
        "speedup": round(speedup, 2),
        "identical_tokens": identical,
    }


def run() -> dict:
    default_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    load_before = os.getloadavg()[0]
    try:
        results = {name: measure(name, config) for name, config in MODELS.items()}
    finally:
        torch.set_num_threads(default_threads)
    load_after = os.getloadavg()[0]
    identical = all(r["identical_tokens"] for r in results.values())
    met = identical and all(r["speedup"] >= TARGET_SPEEDUP for r in results.values())
    notes = (
        f"Random weights, greedy decoding, batch 1, fp32, {THREADS} torch thread(s). Both paths "
        "compute logits for the last position only; the uncached path re-encodes prompt + "
        "generated tokens at every step, so its cost grows with the sequence while a cached step "
        "stays one token's work, and the ratio grows with the sequence length."
    )
    if not identical:
        notes += " Cached and uncached tokens differ: the cache is wrong."
    elif not met:
        notes += " Speed-up below target: check load_average_1min (a busy machine skews it)."
    return {
        "models": results,
        "speedup_nanogpt_10m": results["nanogpt_10m"]["speedup"],
        "speedup_gpt2_124m": results["gpt2_124m"]["speedup"],
        "identical_tokens": identical,
        "threads": THREADS,
        "load_average_1min": {"before": round(load_before, 2), "after": round(load_after, 2)},
        "targets": {"min_speedup": TARGET_SPEEDUP, "identical_tokens": True},
        "targets_met": met,
        "notes": notes,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
