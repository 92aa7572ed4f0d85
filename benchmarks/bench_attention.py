"""Long-context attention: peak extra memory against length, and the simulated ring's speed.

    python -m benchmarks.run attention

One head, head_dim 64, float32, causal, batch 1, at 2k, 8k, 16k and 32k tokens, forward pass in
inference mode (`torch.no_grad`):

- Peak extra memory of naive attention (`vanilla_attention`: the n x n scores materialised),
  `blockwise_attention`, `ring_attention_simulated` and `scaled_dot_product_attention`, measured
  with `shared.attention.peak_memory_bytes`: PyTorch's memory profiler, which records every
  allocation and free of the CPU allocator (checked here on a known 256 MiB tensor first).
  Naive attention at 32k is not run: it would need 4 x its 16k peak, over 10 GiB, on a shared
  24 GiB machine; its figure is extrapolated from 16k (quadratic) and marked as such.
- Time at 8k: SDPA against the simulated ring, measured back to back in alternating rounds; the
  ratio is ``time_sdpa / time_ring`` (>= 0.9 is the target). The unoptimised ring that this
  module started from (every chunk pair computed with a materialised, masked score matrix and
  `torch.exp`) is timed too, as the "before" of the optimisation.
- Max abs error of blockwise and ring attention against SDPA at every length (target <= 1e-5).

Used by: `make bench`; modules/20-advanced-topics/02-long-context-ring-attention quotes it.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from shared import attention as A

LENGTHS = (2048, 8192, 16384, 32768)
HEAD_DIM = 64
BLOCK_SIZE = A.DEFAULT_BLOCK_SIZE
RING_DEVICES = 4
TIMING_LENGTH = 8192
TIMING_ROUNDS = 5
NAIVE_MAX_LENGTH = 16384  # above this, naive attention is extrapolated instead of run
MIB = 2**20

TARGETS = {
    "flat_memory_mib_at_32k": 64.0,  # blockwise and ring peak extra memory at 32k, each below
    "ring_speed_vs_sdpa_at_8k": 0.9,  # time_sdpa / time_ring, at least
    "max_abs_error_vs_sdpa": 1e-5,
}


def _unoptimised_ring(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, world_size: int
) -> torch.Tensor:
    """The ring before optimisation: the same schedule and merge, none of the shortcuts.

    Every device computes every chunk pair, also those entirely in its future; each pair's full
    chunk x chunk score matrix is materialised with a mask and exponentiated with `torch.exp`.
    """
    bounds = A.chunk_sequence(q.shape[-2], world_size)
    scale = 1.0 / math.sqrt(q.shape[-1])
    outs = []
    for device, (qa, qb) in enumerate(bounds):
        out = lse = None
        for step in range(world_size):
            ka, kb = bounds[(device - step) % world_size]
            scores = (q[..., qa:qb, :] @ k[..., ka:kb, :].transpose(-1, -2)) * scale
            future = torch.arange(ka, kb)[None, :] > torch.arange(qa, qb)[:, None]
            scores = scores.masked_fill(future, float("-inf"))
            part_lse = torch.logsumexp(scores, dim=-1)
            # Rows with no visible key have lse = -inf; clamping keeps exp() at 0 instead of nan.
            probs = torch.exp(scores - part_lse.clamp_min(torch.finfo(q.dtype).min).unsqueeze(-1))
            part = (probs @ v[..., ka:kb, :], part_lse)
            out, lse = part if out is None else A.merge_partials(out, lse, *part)
        outs.append(out)
    return torch.cat(outs, dim=-2)


def _methods() -> dict[str, Callable[..., torch.Tensor]]:
    return {
        "naive": lambda q, k, v: A.vanilla_attention(q, k, v, causal=True),
        "blockwise": lambda q, k, v: A.blockwise_attention(q, k, v, BLOCK_SIZE, causal=True),
        "ring": lambda q, k, v: A.ring_attention_simulated(q, k, v, RING_DEVICES, causal=True,
                                                          block_size=BLOCK_SIZE),
        "sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    }


def _inputs(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(n)
    return tuple(torch.randn(1, 1, n, HEAD_DIM, generator=gen) for _ in range(3))


def _memory_and_error() -> tuple[dict, dict, list[str]]:
    methods = _methods()
    memory: dict[str, dict] = {name: {} for name in methods}
    errors: dict[str, dict[str, float]] = {"blockwise": {}, "ring": {}, "naive": {}}
    notes = []
    for n in LENGTHS:
        q, k, v = _inputs(n)
        reference = methods["sdpa"](q, k, v)
        for name, fn in methods.items():
            if name == "naive" and n > NAIVE_MAX_LENGTH:
                continue
            memory[name][str(n)] = round(A.peak_memory_bytes(fn, q, k, v) / MIB, 2)
            if name in errors:
                errors[name][str(n)] = float((fn(q, k, v) - reference).abs().max())
        del q, k, v, reference
    # The output itself (n x 64 float32) is part of every method's peak; what is left is the
    # working memory, which is what "flat" is about.
    output_mib = {str(n): n * HEAD_DIM * 4 / MIB for n in LENGTHS}
    memory["working_memory_beyond_output"] = {
        name: {n: round(memory[name][n] - output_mib[n], 2) for n in memory[name]}
        for name in ("blockwise", "ring", "sdpa")
    }
    for n in LENGTHS:
        if n > NAIVE_MAX_LENGTH:
            scale = (n / NAIVE_MAX_LENGTH) ** 2
            estimate = memory["naive"][str(NAIVE_MAX_LENGTH)] * scale
            memory["naive"][f"{n} (extrapolated)"] = round(estimate, 2)
            notes.append(
                f"naive attention at {n} tokens was not run: it would need about "
                f"{estimate / 1024:.1f} GiB on a shared 24 GiB machine; the figure is its "
                f"{NAIVE_MAX_LENGTH}-token peak times {scale:.0f} (memory grows as n^2)"
            )
    return memory, errors, notes


def _timing(threads: int) -> dict[str, float]:
    """Median over alternating rounds of time_sdpa / time_x at TIMING_LENGTH, with `threads`."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        q, k, v = _inputs(TIMING_LENGTH)
        contenders = {
            "ring": _methods()["ring"],
            "blockwise": _methods()["blockwise"],
            "ring_unoptimised": lambda q, k, v: _unoptimised_ring(q, k, v, RING_DEVICES),
        }
        sdpa = _methods()["sdpa"]
        ratios: dict[str, list[float]] = {name: [] for name in contenders}
        sdpa_times = []
        for fn in (sdpa, *contenders.values()):  # warm-up
            fn(q, k, v)
        for _ in range(TIMING_ROUNDS):
            for name, fn in contenders.items():
                start = time.perf_counter()
                sdpa(q, k, v)
                middle = time.perf_counter()
                fn(q, k, v)
                end = time.perf_counter()
                ratios[name].append((middle - start) / (end - middle))
                sdpa_times.append(middle - start)
        result = {f"sdpa_over_{name}": round(statistics.median(r), 3) for name, r in ratios.items()}
        result["sdpa_ms"] = round(1000 * statistics.median(sdpa_times), 1)
        return result
    finally:
        torch.set_num_threads(previous)


def run() -> dict:
    with torch.no_grad():
        mib = A.peak_memory_bytes(torch.ones, 64 * MIB) / MIB  # must read 256.0
        memory, errors, notes = _memory_and_error()
        load_before = os.getloadavg()[0]
        timing = {f"{torch.get_num_threads()}_threads": _timing(torch.get_num_threads())}
        if torch.get_num_threads() > 1:
            timing["1_thread"] = _timing(1)
        load_after = os.getloadavg()[0]

    default = timing[f"{torch.get_num_threads()}_threads"]
    at_32k = str(LENGTHS[-1])
    flat = max(memory["blockwise"][at_32k], memory["ring"][at_32k])
    worst_error = max(e for per_length in (errors["blockwise"], errors["ring"])
                      for e in per_length.values())
    speed = default["sdpa_over_ring"]
    met = {
        "flat_memory_mib_at_32k": flat < TARGETS["flat_memory_mib_at_32k"],
        "ring_speed_vs_sdpa_at_8k": speed >= TARGETS["ring_speed_vs_sdpa_at_8k"],
        "max_abs_error_vs_sdpa": worst_error <= TARGETS["max_abs_error_vs_sdpa"],
    }
    notes.append(
        f"memory method: torch.profiler with profile_memory=True (PyTorch CPU allocator); a "
        f"256 MiB torch.ones read {mib:.1f} MiB"
    )
    notes.append(
        f"ring: {RING_DEVICES} virtual devices, each computing its chunk pairs in "
        f"{BLOCK_SIZE}x{BLOCK_SIZE} tiles; blockwise: {BLOCK_SIZE}x{BLOCK_SIZE} tiles. Beyond the "
        "output, blockwise working memory is constant (one tile and its statistics); the ring's "
        "grows with the chunk, n / devices x head_dim, for each device's partial output and the "
        "log-sum-exp merge, while its score tiles stay constant"
    )
    notes.append(
        "optimisations of the ring over its unoptimised form (ring_unoptimised, timed alongside): "
        "chunk pairs entirely in a device's future are skipped, scores stay in cache-sized tiles "
        "instead of a materialised chunk x chunk matrix, exponentials use exp2 with log2(e) "
        "folded into the scale (torch.exp2 is ~4x faster than torch.exp on CPU), and the tile "
        "updates run in place with fused baddbmm_ accumulation"
    )
    notes.append(f"1-minute load average {load_before:.1f} before timing, {load_after:.1f} after, "
                 f"on {os.cpu_count()} cores")
    if not met["ring_speed_vs_sdpa_at_8k"]:
        notes.append(
            "ring speed target missed. SDPA's CPU kernel is one fused parallel loop; the ring is "
            "about 7 tensor ops per 512x512 tile, each a separate parallel region. When other "
            "processes share the cores (load average above the core count), every region waits "
            "for a descheduled thread, which costs the many-op ring far more than the one-op "
            "SDPA call; the single-thread ratio (1_thread) shows the per-op efficiency without "
            "that effect"
        )
    return {
        "config": {"lengths": list(LENGTHS), "heads": 1, "head_dim": HEAD_DIM, "dtype": "float32",
                   "causal": True, "block_size": BLOCK_SIZE, "ring_devices": RING_DEVICES,
                   "timing_length": TIMING_LENGTH, "timing_rounds": TIMING_ROUNDS},
        "peak_extra_memory_mib": memory,
        "max_abs_error_vs_sdpa": errors,
        "time_ratio_sdpa_over_x_at_8k": timing,
        "targets": TARGETS,
        "targets_detail": met,
        "targets_met": all(met.values()),
        "notes": notes,
    }
