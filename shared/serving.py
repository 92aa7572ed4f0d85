"""`shared.serving`: the memory manager and the scheduler of an LLM inference engine, in miniature.

An inference server such as vLLM spends its effort on two problems that a single `generate` call
does not have: keeping the key/value caches of many concurrent requests in a fixed amount of
memory, and deciding which requests run in each forward pass. This module implements both for
`shared.models.GPT`, small enough to read in one sitting:

- `BlockAllocator` and `PagedKVCache`: the key/value cache of every sequence lives in fixed-size
  *blocks* of a shared pool, found through a per-sequence *block table* (PagedAttention, Kwon et
  al., 2023). A sequence holds only the blocks it has filled, so memory is not reserved for
  tokens that may never be generated, and the only waste is the unfilled end of its last block.
- `paged_forward`: one forward pass of a GPT over a *ragged* batch. Each sequence brings its new
  tokens (a whole prompt to prefill, or one token to decode); all tokens are flattened into one
  batch for the linear layers, and attention reads each sequence's keys and values through its
  block table (Orca's selective batching, Yu et al., 2022). Its logits equal those of the GPT
  with a contiguous `shared.models.KVCache` (the tests check it).
- `serve`: a request loop with two policies. ``"continuous"`` is iteration-level scheduling
  (Orca, vLLM): after every step, finished sequences leave and waiting ones join, and when the
  block pool runs out the most recently admitted sequence is preempted and later recomputed.
  ``"static"`` forms a batch from the requests that are waiting, reserves memory for their
  longest possible outputs, and admits nobody else until the whole batch is done. Decoding is
  greedy, so each request's tokens equal `shared.generation.generate` on its prompt alone.
- `Request` and `poisson_requests`: a simulated request stream (Poisson arrivals, prompt and
  output lengths from stated distributions, prompts cut from a token corpus).

Time. `serve` runs on a simulated clock that is advanced by the *measured* duration of each
step (``timer``, `time.perf_counter` by default); when the server is idle the clock jumps to
the next arrival instead of sleeping. Latencies and throughput are therefore measured compute
times laid out on the arrival timeline, which lets a notebook replay a minute of traffic in a
few seconds. Pass a fake ``timer`` for deterministic tests.

References: Kwon et al. 2023, "Efficient Memory Management for Large Language Model Serving with
PagedAttention", https://arxiv.org/abs/2309.06180 ; Yu et al. 2022, "Orca: A Distributed Serving
System for Transformer-Based Generative Models", OSDI 22,
https://www.usenix.org/conference/osdi22/presentation/yu ; vLLM, https://docs.vllm.ai .

Used in: modules/20-advanced-topics/07-inference-engines.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from shared.layers import apply_rope
from shared.models import GPT

__all__ = [
    "POLICIES",
    "BlockAllocator",
    "OutOfBlocksError",
    "PagedKVCache",
    "Request",
    "RequestRecord",
    "ServingResult",
    "StepRecord",
    "paged_forward",
    "poisson_requests",
    "serve",
]

POLICIES = ("continuous", "static")


class OutOfBlocksError(RuntimeError):
    """The block pool has too few free blocks for the request; nothing was allocated.

    Used in: `BlockAllocator`, `PagedKVCache`, `paged_forward`.
    """


def _check_positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


# --- memory: blocks, block tables --------------------------------------------------------------


class BlockAllocator:
    """A fixed pool of ``num_blocks`` physical blocks, numbered ``0 .. num_blocks - 1``.

    Free blocks wait in a first-in first-out free list; `allocate` takes the oldest one and
    `free` returns a block to the end. Freeing a block that is not allocated raises ValueError
    (a double free would hand one block to two sequences).

    Used in: modules/20-advanced-topics/07-inference-engines, and `PagedKVCache`.
    """

    def __init__(self, num_blocks: int) -> None:
        _check_positive_int(num_blocks, "num_blocks")
        self.num_blocks = num_blocks
        self._free: deque[int] = deque(range(num_blocks))
        self._allocated: set[int] = set()

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_used(self) -> int:
        return len(self._allocated)

    def allocate(self) -> int:
        """Take a free block and return its number; raise `OutOfBlocksError` if there is none."""
        if not self._free:
            raise OutOfBlocksError(f"all {self.num_blocks} blocks are in use")
        block = self._free.popleft()
        self._allocated.add(block)
        return block

    def free(self, block: int) -> None:
        """Return an allocated block to the free list."""
        if block not in self._allocated:
            raise ValueError(
                f"block {block!r} is not allocated (blocks are ints in [0, {self.num_blocks}); "
                "a block can be freed once per allocation)"
            )
        self._allocated.remove(block)
        self._free.append(block)


class PagedKVCache:
    """Keys and values of many sequences in fixed-size blocks of one shared pool (PagedAttention).

    Storage: ``keys`` and ``values`` of shape ``(n_layer, num_blocks * block_size, n_kv_head,
    head_dim)``, allocated once. Token position ``p`` of a sequence lives in *slot*
    ``block_table[p // block_size] * block_size + p % block_size``: the block table maps the
    sequence's logical blocks to physical blocks, which need not be contiguous or in order.

    A sequence is registered with `add_sequence`; `append` reserves slots for its next tokens
    (taking a new block from the `BlockAllocator` whenever the last one is full) and returns
    them; `write` stores a layer's keys and values there and `gather` reads them back;
    `free_sequence` returns all its blocks. Memory accounting: `num_cached_tokens` (slots holding
    a token) against `num_reserved_slots` (slots in allocated blocks); the difference is the
    internal fragmentation, under one block per sequence.

    Used in: modules/20-advanced-topics/07-inference-engines, and `paged_forward`, `serve`.
    """

    def __init__(
        self,
        n_layer: int,
        n_kv_head: int,
        head_dim: int,
        num_blocks: int,
        block_size: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        for name, value in (("n_layer", n_layer), ("n_kv_head", n_kv_head),
                            ("head_dim", head_dim), ("num_blocks", num_blocks),
                            ("block_size", block_size)):
            _check_positive_int(value, name)
        self.block_size = block_size
        self.allocator = BlockAllocator(num_blocks)
        shape = (n_layer, num_blocks * block_size, n_kv_head, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self._tables: dict[Hashable, list[int]] = {}
        self._lengths: dict[Hashable, int] = {}

    @classmethod
    def for_model(cls, model: GPT, num_blocks: int, block_size: int) -> PagedKVCache:
        """A cache shaped for ``model`` (its layers, key/value heads, head size, dtype, device)."""
        if not isinstance(model, GPT):
            raise TypeError(f"model must be a shared.models.GPT, got {type(model).__name__}")
        c, weight = model.config, model.tok_emb.weight
        return cls(c.n_layer, c.n_kv_head, c.head_dim, num_blocks, block_size,
                   dtype=weight.dtype, device=weight.device)

    # --- bookkeeping ---------------------------------------------------------------------------

    @property
    def num_blocks(self) -> int:
        return self.allocator.num_blocks

    @property
    def num_free_blocks(self) -> int:
        return self.allocator.num_free

    @property
    def sequences(self) -> list[Hashable]:
        """The registered sequence ids, in the order they were added."""
        return list(self._tables)

    @property
    def num_cached_tokens(self) -> int:
        """Slots that hold a token, over all sequences."""
        return sum(self._lengths.values())

    @property
    def num_reserved_slots(self) -> int:
        """Slots in allocated blocks: ``blocks in use * block_size``."""
        return self.allocator.num_used * self.block_size

    def bytes_per_slot(self) -> int:
        """Bytes of one token's keys and values over all layers."""
        per_layer = self.keys[0, 0].numel() * self.keys.element_size()
        return 2 * self.keys.shape[0] * per_layer

    def _check_sequence(self, seq_id: Hashable) -> None:
        if seq_id not in self._tables:
            raise ValueError(f"unknown sequence {seq_id!r}; add it with add_sequence first")

    def add_sequence(self, seq_id: Hashable) -> None:
        """Register an empty sequence (no blocks yet)."""
        if seq_id in self._tables:
            raise ValueError(f"sequence {seq_id!r} is already in the cache")
        self._tables[seq_id] = []
        self._lengths[seq_id] = 0

    def length(self, seq_id: Hashable) -> int:
        """Number of tokens cached for the sequence."""
        self._check_sequence(seq_id)
        return self._lengths[seq_id]

    def block_table(self, seq_id: Hashable) -> list[int]:
        """The physical blocks of the sequence, in logical order (a copy)."""
        self._check_sequence(seq_id)
        return list(self._tables[seq_id])

    def blocks_needed(self, seq_id: Hashable, n_tokens: int) -> int:
        """How many new blocks appending ``n_tokens`` tokens to the sequence would take."""
        self._check_sequence(seq_id)
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
            raise ValueError(f"n_tokens must be an int >= 0, got {n_tokens!r}")
        total = self._lengths[seq_id] + n_tokens
        return max(0, math.ceil(total / self.block_size) - len(self._tables[seq_id]))

    def append(self, seq_id: Hashable, n_tokens: int) -> torch.Tensor:
        """Reserve slots for the sequence's next ``n_tokens`` tokens; return them ``(n_tokens,)``.

        New blocks are taken from the allocator as needed. If there are too few free blocks,
        `OutOfBlocksError` is raised and nothing changes.
        """
        needed = self.blocks_needed(seq_id, n_tokens)
        if needed > self.allocator.num_free:
            raise OutOfBlocksError(
                f"sequence {seq_id!r} needs {needed} more blocks for {n_tokens} tokens, "
                f"{self.allocator.num_free} of {self.num_blocks} are free"
            )
        table = self._tables[seq_id]
        table.extend(self.allocator.allocate() for _ in range(needed))
        start = self._lengths[seq_id]
        self._lengths[seq_id] = start + n_tokens
        return self._slots(table, start, start + n_tokens)

    def slots(self, seq_id: Hashable) -> torch.Tensor:
        """The slots of the sequence's cached tokens, positions ``0 .. length - 1``."""
        self._check_sequence(seq_id)
        return self._slots(self._tables[seq_id], 0, self._lengths[seq_id])

    def _slots(self, table: list[int], start: int, end: int) -> torch.Tensor:
        positions = torch.arange(start, end)
        blocks = torch.tensor(table, dtype=torch.long)[positions // self.block_size]
        return (blocks * self.block_size + positions % self.block_size).to(self.keys.device)

    def free_sequence(self, seq_id: Hashable) -> None:
        """Forget the sequence and return all its blocks to the pool."""
        self._check_sequence(seq_id)
        for block in self._tables.pop(seq_id):
            self.allocator.free(block)
        del self._lengths[seq_id]

    # --- data ----------------------------------------------------------------------------------

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store keys and values ``(N, n_kv_head, head_dim)`` of one layer in ``slots`` ``(N,)``."""
        expected = (slots.shape[0], *self.keys.shape[2:])
        if slots.ndim != 1 or k.shape != expected or v.shape != expected:
            raise ValueError(
                f"expected slots (N,) and k, v of shape {expected}, got slots "
                f"{tuple(slots.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
            )
        self.keys[layer, slots] = k
        self.values[layer, slots] = v

    def gather(self, layer: int, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of one layer at ``slots`` (any shape ``S``): ``S + (n_kv_head, head_dim)``."""
        return self.keys[layer, slots], self.values[layer, slots]


# --- the model runner ---------------------------------------------------------------------------


def _check_runnable(model: object) -> GPT:
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a shared.models.GPT, got {type(model).__name__}")
    if model.config.moe_layers:
        raise ValueError(
            "paged_forward runs dense GPTs only: an MoE layer with a capacity factor routes each "
            "token depending on the rest of the batch, so batched outputs would differ"
        )
    return model


@dataclass(frozen=True)
class _AttentionPlan:
    """Padded index tensors for one attention call over a group of G sequences: queries
    ``(G, Q)`` index the flat new tokens, keys ``(G, L)`` the cache slots; ``mask`` is boolean
    ``(G, 1, Q, L)`` (additive ``(G, n_head, Q, L)`` with ALiBi). Padding points at index 0."""

    query_index: torch.Tensor
    query_valid: torch.Tensor
    key_slots: torch.Tensor
    mask: torch.Tensor


def _attention_plan(
    model: GPT,
    cache: PagedKVCache,
    seq_ids: list[Hashable],
    starts: list[int],
    offsets: list[int],
    counts: list[int],
) -> _AttentionPlan:
    device = cache.keys.device
    group, q_max = len(seq_ids), max(counts)
    l_max = max(s + n for s, n in zip(starts, counts, strict=True))
    query_index = torch.zeros(group, q_max, dtype=torch.long, device=device)
    key_slots = torch.zeros(group, l_max, dtype=torch.long, device=device)
    for g, (seq_id, start, offset, n) in enumerate(
        zip(seq_ids, starts, offsets, counts, strict=True)
    ):
        query_index[g, :n] = torch.arange(offset, offset + n, device=device)
        key_slots[g, : start + n] = cache.slots(seq_id)
    count_t = torch.tensor(counts, device=device)
    query_valid = torch.arange(q_max, device=device)[None, :] < count_t[:, None]  # (G, Q)
    query_pos = torch.tensor(starts, device=device)[:, None] + torch.arange(q_max, device=device)
    key_pos = torch.arange(l_max, device=device)
    # A key is visible when it is at or before the query (causality); positions past a
    # sequence's end are never at or before one of its real queries. Padded query rows see
    # key 0 only, so that their softmax is defined; their outputs are dropped.
    valid = query_valid[:, :, None]
    visible = (key_pos[None, None, :] <= query_pos[:, :, None]) & valid | ~valid & (key_pos == 0)
    mask: torch.Tensor = visible[:, None]  # (G, 1, Q, L), broadcast over heads
    if model.config.pos_encoding == "alibi":
        distance = (key_pos[None, None, :] - query_pos[:, :, None]).float()  # (G, Q, L)
        bias = model.alibi_slopes[None, :, None, None] * distance[:, None]
        mask = bias.masked_fill(~mask, float("-inf")).to(cache.keys.dtype)
    return _AttentionPlan(query_index, query_valid, key_slots, mask)


def paged_forward(
    model: GPT,
    cache: PagedKVCache,
    seq_ids: Sequence[Hashable],
    new_tokens: Sequence[Sequence[int]],
) -> torch.Tensor:
    """Feed each sequence its new tokens in one forward pass; return the next-token logits.

    ``seq_ids[i]`` is a sequence registered in ``cache`` and ``new_tokens[i]`` the tokens that
    follow its cached ones (a prompt to prefill, one token to decode, or anything in between).
    The tokens of all sequences are flattened into one batch for the embeddings, linear layers
    and norms; attention reads each sequence's cached keys and values through its block table,
    with a causal mask: one call for all single-token (decoding) sequences, one per prefilling
    sequence. The new tokens' keys and values are written to the cache. Returns the logits of each sequence's last new token, ``(len(seq_ids), vocab_size)``.

    Blocks for all new tokens are reserved first; if the pool is too small, `OutOfBlocksError`
    is raised before anything changes. Runs under ``torch.no_grad()`` in eval mode (restored
    afterwards). Dense models only (no MoE layers).

    Used in: modules/20-advanced-topics/07-inference-engines, and `serve`.
    """
    model = _check_runnable(model)
    if not isinstance(cache, PagedKVCache):
        raise TypeError(f"cache must be a PagedKVCache, got {type(cache).__name__}")
    c = model.config
    if cache.keys.shape[0] != c.n_layer or cache.keys.shape[2:] != (c.n_kv_head, c.head_dim):
        raise ValueError(
            f"cache holds {cache.keys.shape[0]} layers x {tuple(cache.keys.shape[2:])} "
            f"(n_kv_head, head_dim); the model needs {c.n_layer} x {(c.n_kv_head, c.head_dim)}: "
            "make it with PagedKVCache.for_model(model, ...)"
        )
    if len(seq_ids) != len(new_tokens) or not seq_ids:
        raise ValueError(
            f"need one list of new tokens per sequence and at least one sequence, got "
            f"{len(seq_ids)} sequence ids and {len(new_tokens)} token lists"
        )
    if len(set(seq_ids)) != len(seq_ids):
        raise ValueError(f"seq_ids must be distinct, got {list(seq_ids)}")
    for seq_id, tokens in zip(seq_ids, new_tokens, strict=True):
        start = cache.length(seq_id)
        if len(tokens) == 0:
            raise ValueError(f"sequence {seq_id!r} has no new tokens; each needs at least one")
        if not all(isinstance(t, int) and 0 <= t < c.vocab_size for t in tokens):
            raise ValueError(
                f"new tokens of sequence {seq_id!r} must be ints in [0, vocab_size={c.vocab_size})"
            )
        if start + len(tokens) > c.block_size:
            raise ValueError(
                f"sequence {seq_id!r} would reach {start + len(tokens)} positions, more than "
                f"the model's block_size={c.block_size}"
            )
    needed = sum(cache.blocks_needed(s, len(t)) for s, t in zip(seq_ids, new_tokens, strict=True))
    if needed > cache.num_free_blocks:
        raise OutOfBlocksError(
            f"this step needs {needed} new blocks, {cache.num_free_blocks} are free"
        )

    device = cache.keys.device
    starts = [cache.length(s) for s in seq_ids]
    counts = [len(t) for t in new_tokens]
    new_slots = torch.cat([cache.append(s, n) for s, n in zip(seq_ids, counts, strict=True)])
    tokens = torch.tensor([t for seq in new_tokens for t in seq], dtype=torch.long, device=device)
    positions = torch.cat([torch.arange(s, s + n) for s, n in zip(starts, counts, strict=True)])
    positions = positions.to(device)
    offsets = [0, *itertools.accumulate(counts)]  # sequence b: flat [offsets[b], offsets[b + 1])

    # Attention groups: all decoding sequences (one query each) attend in one padded call; each
    # prefilling sequence gets a call of its own, so that no query is padded to a prompt length.
    decoding = [b for b, n in enumerate(counts) if n == 1]
    groups = [decoding] if decoding else []
    groups += [[b] for b, n in enumerate(counts) if n > 1]
    plans = [
        _attention_plan(model, cache, [seq_ids[b] for b in group], [starts[b] for b in group],
                        [offsets[b] for b in group], [counts[b] for b in group])
        for group in groups
    ]

    rope = None
    if c.pos_encoding == "rope":
        rope = (model.rope_cos[positions], model.rope_sin[positions])

    def attend(layer: int, block: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
        attn = block.attn
        q, k, v = attn.qkv(h).split([attn.q_size, attn.kv_size, attn.kv_size], dim=-1)
        q = q.view(-1, c.n_head, c.head_dim)
        k = k.view(-1, c.n_kv_head, c.head_dim)
        v = v.view(-1, c.n_kv_head, c.head_dim)
        if rope is not None:  # apply_rope rotates (..., T, head_dim) by (T, head_dim) tables
            q = apply_rope(q.transpose(0, 1), *rope).transpose(0, 1)
            k = apply_rope(k.transpose(0, 1), *rope).transpose(0, 1)
        cache.write(layer, new_slots, k, v)
        y = torch.empty_like(q)  # (N, n_head, head_dim)
        for plan in plans:
            keys, values = cache.gather(layer, plan.key_slots)  # (G, L, n_kv_head, head_dim)
            out = F.scaled_dot_product_attention(
                q[plan.query_index].transpose(1, 2),  # (G, n_head, Q, head_dim)
                keys.transpose(1, 2),
                values.transpose(1, 2),
                attn_mask=plan.mask,
                enable_gqa=c.n_kv_head != c.n_head,
            )
            y[plan.query_index[plan.query_valid]] = out.transpose(1, 2)[plan.query_valid]
        return attn.proj(y.reshape(-1, attn.q_size))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = model.tok_emb(tokens)
            if c.pos_encoding == "learned":
                x = x + model.pos_emb(positions)
            elif c.pos_encoding == "sinusoidal":
                x = x + model.sinusoidal[positions]
            for layer, block in enumerate(model.blocks):
                if block.pre_norm:
                    x = x + attend(layer, block, block.norm1(x))
                    x = x + block.ffn(block.norm2(x))
                else:
                    x = block.norm1(x + attend(layer, block, x))
                    x = block.norm2(x + block.ffn(x))
            last = torch.tensor(offsets[1:], device=device) - 1  # each sequence's last token
            return model.lm_head(model.norm_f(x[last]))
    finally:
        model.train(was_training)


# --- requests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One generation request: a prompt of token ids, how many tokens to generate, and when it
    arrives (seconds on the simulated clock).

    Used in: modules/20-advanced-topics/07-inference-engines, and `serve`, `poisson_requests`.
    """

    request_id: int
    prompt: tuple[int, ...]
    max_new_tokens: int
    arrival_time: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.request_id, bool) or not isinstance(self.request_id, int):
            raise TypeError(f"request_id must be an int, got {type(self.request_id).__name__}")
        if not isinstance(self.prompt, tuple) or not self.prompt:
            raise ValueError(f"prompt must be a non-empty tuple of token ids, got {self.prompt!r}")
        _check_positive_int(self.max_new_tokens, "max_new_tokens")
        if not math.isfinite(self.arrival_time) or self.arrival_time < 0:
            raise ValueError(f"arrival_time must be a finite number >= 0, got {self.arrival_time}")


def poisson_requests(
    corpus_ids: Sequence[int] | torch.Tensor,
    n_requests: int,
    rate_per_s: float,
    *,
    prompt_len: tuple[int, int],
    output_len: tuple[int, int],
    seed: int = 0,
) -> list[Request]:
    """A simulated request stream, the same for the same arguments.

    - Arrivals: a Poisson process of ``rate_per_s`` requests per second (independent
      exponential gaps of mean ``1 / rate_per_s``), the first one at its first gap.
    - Prompt lengths: uniform integers in ``prompt_len = (low, high)``; each prompt is a window
      of ``corpus_ids`` at a uniform random offset.
    - Output lengths (``max_new_tokens``): log-uniform in ``output_len = (low, high)``, i.e.
      ``round(exp(u))`` for ``u`` uniform in ``[log low, log high]``: short outputs are common,
      long ones rare, as in chat traffic.

    Used in: modules/20-advanced-topics/07-inference-engines.
    """
    _check_positive_int(n_requests, "n_requests")
    if not isinstance(rate_per_s, (int, float)) or not 0 < rate_per_s < math.inf:
        raise ValueError(f"rate_per_s must be a finite number > 0, got {rate_per_s!r}")
    for name, (low, high) in (("prompt_len", prompt_len), ("output_len", output_len)):
        if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
            raise ValueError(f"{name} must be a pair of ints 1 <= low <= high, got {(low, high)}")
    ids = torch.as_tensor(corpus_ids, dtype=torch.long).flatten()
    if ids.numel() <= prompt_len[1]:
        raise ValueError(
            f"corpus_ids holds {ids.numel()} tokens; need more than the longest prompt "
            f"({prompt_len[1]})"
        )
    gen = torch.Generator().manual_seed(seed)
    gaps = torch.empty(n_requests, dtype=torch.float64).exponential_(rate_per_s, generator=gen)
    arrivals = torch.cumsum(gaps, dim=0).tolist()
    prompt_lens = torch.randint(prompt_len[0], prompt_len[1] + 1, (n_requests,), generator=gen)
    log_low, log_high = math.log(output_len[0]), math.log(output_len[1])
    u = torch.rand(n_requests, dtype=torch.float64, generator=gen)
    output_lens = torch.exp(log_low + u * (log_high - log_low)).round().long()
    output_lens = output_lens.clamp(output_len[0], output_len[1])
    requests = []
    for i in range(n_requests):
        n = int(prompt_lens[i])
        start = int(torch.randint(0, ids.numel() - n, (1,), generator=gen))
        requests.append(
            Request(
                request_id=i,
                prompt=tuple(ids[start : start + n].tolist()),
                max_new_tokens=int(output_lens[i]),
                arrival_time=arrivals[i],
            )
        )
    return requests


# --- the scheduler ------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """What happened to one request: its tokens and its times on the simulated clock.

    ``first_token_time`` is the end of the step that produced its first token; ``finish_time``
    the end of the step that produced its last. ``preemptions`` counts how often its cache was
    freed to make room (it was then recomputed).

    Used in: modules/20-advanced-topics/07-inference-engines, and `ServingResult`.
    """

    request_id: int
    arrival_time: float
    prompt_len: int
    tokens: list[int]
    first_token_time: float
    finish_time: float
    preemptions: int = 0

    @property
    def ttft(self) -> float:
        """Time to first token: from arrival to the first generated token."""
        return self.first_token_time - self.arrival_time

    @property
    def e2e(self) -> float:
        """End-to-end latency: from arrival to the last generated token."""
        return self.finish_time - self.arrival_time


@dataclass(frozen=True)
class StepRecord:
    """One forward pass of the server: when it ended, how long it took, what it held.

    ``n_running`` sequences took part, with ``n_prefill_tokens`` prompt (or recomputed) tokens
    and ``n_decode_tokens`` single decode tokens; ``n_waiting`` requests had arrived and were
    waiting. ``cached_tokens`` and ``reserved_slots`` are `PagedKVCache.num_cached_tokens` and
    `PagedKVCache.num_reserved_slots` after the step; ``running_ids`` the sequences it ran.

    Used in: modules/20-advanced-topics/07-inference-engines, and `ServingResult`.
    """

    end_time: float
    duration: float
    n_running: int
    n_prefill_tokens: int
    n_decode_tokens: int
    n_waiting: int
    cached_tokens: int
    reserved_slots: int
    running_ids: tuple[int, ...]


@dataclass
class ServingResult:
    """The outcome of `serve`: one `RequestRecord` per request (by id) and one `StepRecord` per
    step, with the figures a serving benchmark reports.

    Used in: modules/20-advanced-topics/07-inference-engines.
    """

    policy: str
    requests: list[RequestRecord]
    steps: list[StepRecord]
    block_size: int
    num_blocks: int
    max_batch_size: int

    @property
    def generated_tokens(self) -> int:
        return sum(len(r.tokens) for r in self.requests)

    @property
    def makespan(self) -> float:
        """Seconds from the first arrival to the last finished token."""
        first = min(r.arrival_time for r in self.requests)
        return max(r.finish_time for r in self.requests) - first

    @property
    def throughput(self) -> float:
        """Generated tokens per second over the makespan."""
        return self.generated_tokens / self.makespan

    @property
    def busy_time(self) -> float:
        """Seconds spent in forward passes (the makespan minus idle gaps)."""
        return sum(s.duration for s in self.steps)

    @property
    def preemptions(self) -> int:
        return sum(r.preemptions for r in self.requests)

    def percentiles(self, metric: str, qs: Sequence[float] = (50, 90, 99)) -> dict[float, float]:
        """Percentiles (linear interpolation) of ``"ttft"`` or ``"e2e"`` latency, in seconds."""
        if metric not in ("ttft", "e2e"):
            raise ValueError(f"metric must be 'ttft' or 'e2e', got {metric!r}")
        values = torch.tensor([getattr(r, metric) for r in self.requests], dtype=torch.float64)
        if not all(0 <= q <= 100 for q in qs):
            raise ValueError(f"percentiles must lie in [0, 100], got {list(qs)}")
        return {q: float(torch.quantile(values, q / 100)) for q in qs}

    def summary(self) -> dict[str, float]:
        """Throughput, mean batch size and p50/p90/p99 of TTFT and end-to-end latency."""
        out = {
            "throughput_tok_s": self.throughput,
            "makespan_s": self.makespan,
            "steps": float(len(self.steps)),
            "mean_batch": sum(s.n_running for s in self.steps) / len(self.steps),
            "preemptions": float(self.preemptions),
        }
        for metric in ("ttft", "e2e"):
            for q, value in self.percentiles(metric).items():
                out[f"{metric}_p{q:g}_s"] = value
        return out


@dataclass
class _Sequence:
    request: Request
    generated: list[int] = field(default_factory=list)
    first_token_time: float | None = None
    preemptions: int = 0

    @property
    def tokens(self) -> list[int]:
        return [*self.request.prompt, *self.generated]

    @property
    def done(self) -> bool:
        return len(self.generated) >= self.request.max_new_tokens


def serve(
    model: GPT,
    requests: Sequence[Request],
    *,
    policy: str = "continuous",
    max_batch_size: int = 8,
    num_blocks: int = 256,
    block_size: int = 16,
    timer: Callable[[], float] = time.perf_counter,
) -> ServingResult:
    """Serve ``requests`` with greedy decoding under a scheduling ``policy``; return the record.

    Both policies run the same `paged_forward` on a `PagedKVCache` of ``num_blocks`` blocks of
    ``block_size`` tokens, with at most ``max_batch_size`` sequences per step, and admit
    arrived requests first come, first served:

    - ``"continuous"``: before every step, waiting requests join while there is a batch slot
      and free blocks for their prompts (plus one block per running sequence that will need
      one this step). If running sequences need more blocks than are free, the most recently
      admitted ones are preempted: their blocks are freed, they go back to the front of the
      queue, and later their prompt and generated tokens are prefilled again (recomputation,
      as in vLLM). A step mixes prefills and decodes.
    - ``"static"``: when no batch is running, up to ``max_batch_size`` waiting requests form a
      batch, as many as fit when each reserves blocks for its prompt plus ``max_new_tokens``;
      nobody joins until every sequence of the batch has finished.

    Time runs on a simulated clock: each step adds its measured duration (``timer`` before and
    after, scheduling included); an idle server jumps to the next arrival. Every request must
    fit the model (prompt plus ``max_new_tokens`` within ``block_size``) and the block pool.

    Used in: modules/20-advanced-topics/07-inference-engines.
    """
    model = _check_runnable(model)
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    _check_positive_int(max_batch_size, "max_batch_size")
    if not callable(timer):
        raise TypeError(f"timer must be callable, got {type(timer).__name__}")
    if not requests:
        raise ValueError("requests must not be empty")
    for r in requests:
        if not isinstance(r, Request):
            raise TypeError(f"requests must be Request objects, got {type(r).__name__}")
    if len({r.request_id for r in requests}) != len(requests):
        raise ValueError("request ids must be distinct")
    cache = PagedKVCache.for_model(model, num_blocks, block_size)
    for r in requests:
        total = len(r.prompt) + r.max_new_tokens
        if total > model.config.block_size:
            raise ValueError(
                f"request {r.request_id}: prompt ({len(r.prompt)}) + max_new_tokens "
                f"({r.max_new_tokens}) exceeds the model's block_size={model.config.block_size}"
            )
        if math.ceil(total / block_size) > num_blocks:
            raise ValueError(
                f"request {r.request_id} needs up to {math.ceil(total / block_size)} blocks; "
                f"the pool has {num_blocks}"
            )
        if not all(isinstance(t, int) and 0 <= t < model.config.vocab_size for t in r.prompt):
            raise ValueError(
                f"request {r.request_id}: prompt tokens must be ints in "
                f"[0, vocab_size={model.config.vocab_size})"
            )

    def blocks_for(n_tokens: int) -> int:
        return math.ceil(n_tokens / block_size)

    pending = deque(sorted(requests, key=lambda r: (r.arrival_time, r.request_id)))
    waiting: deque[_Sequence] = deque()
    running: list[_Sequence] = []  # in order of admission
    records: dict[int, RequestRecord] = {}
    steps: list[StepRecord] = []
    now = 0.0

    def admit_continuous() -> None:
        # Blocks that the running sequences will take in this step come first.
        reserve = sum(cache.blocks_needed(s.request.request_id, 1) for s in running)
        while waiting and len(running) < max_batch_size:
            seq = waiting[0]
            need = blocks_for(len(seq.tokens))
            if need + reserve > cache.num_free_blocks:
                break
            waiting.popleft()
            cache.add_sequence(seq.request.request_id)
            running.append(seq)
            reserve += need

    def preempt_for_decodes() -> None:
        while True:
            needed = sum(
                cache.blocks_needed(s.request.request_id, len(s.tokens) - cache.length(
                    s.request.request_id)) for s in running
            )
            if needed <= cache.num_free_blocks:
                return
            victim = running.pop()  # the most recently admitted
            cache.free_sequence(victim.request.request_id)
            victim.preemptions += 1
            waiting.appendleft(victim)

    def admit_static() -> None:
        if running:
            return
        budget = cache.num_free_blocks
        while waiting and len(running) < max_batch_size:
            seq = waiting[0]
            need = blocks_for(len(seq.request.prompt) + seq.request.max_new_tokens)
            if need > budget:
                break
            waiting.popleft()
            cache.add_sequence(seq.request.request_id)
            running.append(seq)
            budget -= need

    while pending or waiting or running:
        while pending and pending[0].arrival_time <= now:
            waiting.append(_Sequence(pending.popleft()))
        if not running and not waiting:
            now = pending[0].arrival_time
            continue
        start = timer()
        if policy == "continuous":
            preempt_for_decodes()
            admit_continuous()
        else:
            admit_static()
        cached = [cache.length(s.request.request_id) for s in running]
        feeds = [s.tokens[n:] for s, n in zip(running, cached, strict=True)]
        logits = paged_forward(model, cache, [s.request.request_id for s in running], feeds)
        next_tokens = logits.argmax(dim=-1).tolist()
        duration = timer() - start
        now += duration
        finished = []
        for seq, token in zip(running, next_tokens, strict=True):
            seq.generated.append(token)
            if seq.first_token_time is None:
                seq.first_token_time = now
            if seq.done:
                finished.append(seq)
        steps.append(
            StepRecord(
                end_time=now,
                duration=duration,
                n_running=len(running),
                n_prefill_tokens=sum(len(f) for f, n in zip(feeds, cached, strict=True) if n == 0),
                n_decode_tokens=sum(len(f) for f, n in zip(feeds, cached, strict=True) if n > 0),
                n_waiting=len(waiting),
                cached_tokens=cache.num_cached_tokens,
                reserved_slots=cache.num_reserved_slots,
                running_ids=tuple(s.request.request_id for s in running),
            )
        )
        for seq in finished:
            running.remove(seq)
            cache.free_sequence(seq.request.request_id)
            r = seq.request
            assert seq.first_token_time is not None  # set in the step that produced it
            records[r.request_id] = RequestRecord(
                request_id=r.request_id,
                arrival_time=r.arrival_time,
                prompt_len=len(r.prompt),
                tokens=list(seq.generated),
                first_token_time=seq.first_token_time,
                finish_time=now,
                preemptions=seq.preemptions,
            )
    return ServingResult(
        policy=policy,
        requests=[records[i] for i in sorted(records)],
        steps=steps,
        block_size=block_size,
        num_blocks=num_blocks,
        max_batch_size=max_batch_size,
    )
