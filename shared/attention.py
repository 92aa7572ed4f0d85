"""Attention for long contexts: vanilla, sliding-window, dilated, blockwise and ring attention.

Every function takes queries, keys and values laid out as ``(..., seq, head_dim)``: usually
``(batch, heads, seq, head_dim)``, as in `torch.nn.functional.scaled_dot_product_attention`.
Any number of leading dimensions is accepted, none included (``(seq, head_dim)``), and they must
be equal for q, k and v (no broadcasting). Keys and values share their sequence length; values may
have their own feature size. The scale is ``1 / sqrt(head_dim)`` unless given. Supported dtypes are
float16, bfloat16, float32 and float64; half-precision inputs are computed in float32 and returned
in their own dtype. Masks follow SDPA's boolean convention: ``True`` means "may attend".

Causal attention means query ``i`` sees keys ``j <= i`` and needs equal query and key lengths. A
query that may see no key at all (possible only with a user mask in `vanilla_attention`, or with
offsets in `partial_attention`) gets an output of zeros and a log-sum-exp of ``-inf``, which is
what SDPA returns for such rows too.

What is here, and what each costs for a sequence of ``n`` tokens:

- `vanilla_attention`: ``softmax(q k^T * scale) v`` with the ``n x n`` score matrix materialised,
  for teaching; it can return the weights. Memory O(n^2).
- `sliding_window_attention`, `dilated_attention`: sparse patterns (Child et al. 2019; Beltagy et
  al. 2020; Ding et al. 2023). `sliding_window_mask` and `dilated_mask` return the patterns as
  boolean matrices, for plots and for checking against SDPA. Only the tiles that overlap the
  pattern are computed: time O(n * (window + block)), memory one tile.
- `blockwise_attention`: exact attention computed block by block with an online softmax (a
  running maximum and sum per query, Milakov & Gimelshein 2018; Rabe & Staats 2021; Dao et al.
  2022). The full score matrix never exists: the forward pass holds one ``block x block`` tile of
  scores per (batch, head) at a time, plus the O(n) output and statistics. Its backward pass is a
  custom `torch.autograd.Function` that recomputes the tiles from the saved log-sum-exp, so
  training memory is O(n) as well.
- `partial_attention` and `merge_partials`: attention of some queries over a subset of the keys,
  returned as ``(output, log-sum-exp)``, and the exact merge of two such partial results. These
  are the two steps of every ring-attention device.
- `ring_attention_simulated`: Ring Attention (Liu, Zaharia & Abbeel 2023) on N virtual devices in
  one process. Device ``i`` holds query chunk ``i``; the key/value chunks travel around the ring
  ``N - 1`` times; each device merges what it computes through the log-sum-exp. The backward pass
  follows the same ring and carries dK and dV with their chunks.
- `ring_attention_on_rank`, `ring_attention_worker`, `ring_attention_distributed`: the same ring
  across real processes with `torch.distributed` (gloo on CPU, NCCL on GPU), key/value chunks sent
  with non-blocking send/recv that overlaps the transfer with the computation of the current
  chunk, forward and backward.
- `chunk_sequence`: how a sequence is split over N devices (even or uneven chunks).
- `peak_memory_bytes`: the peak extra memory of a call, measured with PyTorch's memory profiler on
  CPU or with the CUDA allocator's statistics on GPU.

References:
- Vaswani et al. 2017, Attention Is All You Need. https://arxiv.org/abs/1706.03762
- Child, Gray, Radford & Sutskever 2019, Generating Long Sequences with Sparse Transformers.
  https://arxiv.org/abs/1904.10509
- Beltagy, Peters & Cohan 2020, Longformer: The Long-Document Transformer (sliding window and
  dilated sliding window). https://arxiv.org/abs/2004.05150
- Ding et al. 2023, LongNet: Scaling Transformers to 1,000,000,000 Tokens (dilated attention).
  https://arxiv.org/abs/2307.02486
- Milakov & Gimelshein 2018, Online normalizer calculation for softmax.
  https://arxiv.org/abs/1805.02867
- Rabe & Staats 2021, Self-attention Does Not Need O(n^2) Memory. https://arxiv.org/abs/2112.05682
- Dao, Fu, Ermon, Rudra & Re 2022, FlashAttention: Fast and Memory-Efficient Exact Attention with
  IO-Awareness. https://arxiv.org/abs/2205.14135
- Liu, Zaharia & Abbeel 2023, Ring Attention with Blockwise Transformers for Near-Infinite
  Context. https://arxiv.org/abs/2310.01889

Used in: modules/20-advanced-topics/02-long-context-ring-attention,
labs/long-context-rag-vs-ring-attention, modules/02-transformer-architecture/03-self-attention.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "blockwise_attention",
    "chunk_sequence",
    "dilated_attention",
    "dilated_mask",
    "merge_partials",
    "partial_attention",
    "peak_memory_bytes",
    "ring_attention_distributed",
    "ring_attention_on_rank",
    "ring_attention_simulated",
    "ring_attention_worker",
    "sliding_window_attention",
    "sliding_window_mask",
    "vanilla_attention",
]

DEFAULT_BLOCK_SIZE = 512
"""Tile size of the blockwise kernels: a 512 x 512 float32 tile (1 MiB) stays in cache on CPUs."""

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_KV_TAG, _DKV_TAG = 0, 1  # message tags of the ring: key/value chunks, and their gradients
# The kernels exponentiate in base 2, exp(x) = 2^(x * log2(e)), with log2(e) folded into the score
# scale as FlashAttention does: torch.exp2 is about 4x faster than torch.exp on CPU, for the same
# result up to rounding. Log-sum-exps are converted back to natural units at the boundary.
_LOG2E = math.log2(math.e)
_LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_qkv(q: Any, k: Any, v: Any, *, self_attention: bool = False) -> None:
    """Raise a clear error unless q, k, v are usable attention inputs of matching shapes."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(
                f"{name} must have shape (..., seq, head_dim), e.g. (batch, heads, seq, head_dim); "
                f"got shape {tuple(t.shape)}"
            )
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name} must have a floating dtype in {_DTYPES}, got {t.dtype}")
        if t.shape[-2] == 0 or t.shape[-1] == 0:
            raise ValueError(
                f"{name} must have seq >= 1 and head_dim >= 1, got shape {tuple(t.shape)}"
            )
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(
            f"q, k and v must be on one device, got {q.device}, {k.device}, {v.device}"
        )
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise ValueError(
            "q, k and v must have the same leading (batch, heads) dimensions, got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same sequence length, got {k.shape[-2]} and {v.shape[-2]}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same head_dim, got {q.shape[-1]} and {k.shape[-1]}"
        )
    if self_attention and q.shape[-2] != k.shape[-2]:
        raise ValueError(
            "causal, windowed and ring attention need queries and keys of one sequence (equal "
            f"lengths), got {q.shape[-2]} queries and {k.shape[-2]} keys"
        )


def _resolve_scale(scale: float | None, head_dim: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(head_dim)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a float or None, got {type(scale).__name__}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale}")
    return float(scale)


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute in: float32 for half-precision inputs, else the input's."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _flatten(t: torch.Tensor) -> torch.Tensor:
    """(..., seq, dim) -> (batch, seq, dim): the kernels see one batch dimension."""
    return t.reshape(-1, t.shape[-2], t.shape[-1])


# --------------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------------


def sliding_window_mask(
    seq_len: int, window: int, *, causal: bool = False, device: torch.device | str | None = None
) -> torch.Tensor:
    """The sliding-window pattern as a ``(seq_len, seq_len)`` boolean mask, True = may attend.

    Query ``i`` may attend key ``j`` when ``|i - j| < window`` (and ``j <= i`` if ``causal``):
    causally, the ``window`` most recent tokens including itself (Child et al. 2019; Beltagy et
    al. 2020). ``window=1`` keeps only the diagonal; ``window >= seq_len`` is full attention.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention (pattern plots, and the
    SDPA mask that checks `sliding_window_attention`).
    """
    _check_positive_int(seq_len, "seq_len")
    _check_positive_int(window, "window")
    pos = torch.arange(seq_len, device=device)
    distance = pos[:, None] - pos[None, :]  # i - j
    allowed = distance.abs() < window
    if causal:
        allowed &= distance >= 0
    return allowed


def dilated_mask(
    seq_len: int,
    window: int,
    dilation: int,
    *,
    causal: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The dilated sliding-window pattern as a ``(seq_len, seq_len)`` boolean mask (True = attend).

    Query ``i`` may attend key ``j`` when ``i - j`` is a multiple of ``dilation`` and
    ``|i - j| < window * dilation`` (and ``j <= i`` if ``causal``). Causally, each query sees
    itself and the ``window - 1`` keys at distances ``dilation, 2*dilation, ...``: the same number
    of keys as a sliding window of ``window``, spread over a span ``dilation`` times wider (the
    dilated sliding window of Beltagy et al. 2020). ``dilation=1`` is `sliding_window_mask`.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention (pattern plots, and the
    SDPA mask that checks `dilated_attention`).
    """
    _check_positive_int(seq_len, "seq_len")
    _check_positive_int(window, "window")
    _check_positive_int(dilation, "dilation")
    pos = torch.arange(seq_len, device=device)
    distance = pos[:, None] - pos[None, :]
    allowed = (distance.remainder(dilation) == 0) & (distance.abs() < window * dilation)
    if causal:
        allowed &= distance >= 0
    return allowed


# --------------------------------------------------------------------------------------------
# Vanilla attention
# --------------------------------------------------------------------------------------------


def vanilla_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention with the full score matrix materialised (Vaswani et al. 2017).

    ``softmax(q k^T * scale + mask) v``. ``mask`` is boolean and broadcastable to
    ``(..., q_len, k_len)``, True = may attend; ``causal`` adds the causal mask. A query with no
    allowed key gets zero weights and a zero output, as in SDPA. With ``return_weights`` the
    ``(..., q_len, k_len)`` attention weights are returned as well: that matrix is the O(n^2)
    memory that the blockwise and ring variants avoid. Differentiable through autograd.

    Used in: modules/02-transformer-architecture/03-self-attention,
    modules/20-advanced-topics/02-long-context-ring-attention,
    labs/long-context-rag-vs-ring-attention.
    """
    _check_qkv(q, k, v, self_attention=causal)
    scale = _resolve_scale(scale, q.shape[-1])
    q_len, k_len = q.shape[-2], k.shape[-2]
    allowed = None
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(
                "mask must be a boolean tensor (True = may attend), got "
                f"{getattr(mask, 'dtype', type(mask).__name__)}"
            )
        scores_shape = (*q.shape[:-1], k_len)
        try:
            broadcasts = torch.broadcast_shapes(mask.shape, scores_shape) == scores_shape
        except RuntimeError:
            broadcasts = False
        if not broadcasts:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                f"{scores_shape}"
            )
        allowed = mask.to(q.device)
    if causal:
        causal_allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=q.device).tril()
        allowed = causal_allowed if allowed is None else allowed & causal_allowed

    scores = (q @ k.transpose(-2, -1)) * scale  # (..., q_len, k_len): the quadratic part
    if allowed is not None:
        scores.masked_fill_(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if allowed is not None:
        # softmax over a row of -inf is nan; a query that may see nothing gets zero weights.
        weights = weights.masked_fill(~allowed.any(dim=-1, keepdim=True), 0.0)
    out = weights @ v
    return (out, weights) if return_weights else out


# --------------------------------------------------------------------------------------------
# The blockwise kernels: online-softmax forward, recomputing backward
# --------------------------------------------------------------------------------------------


def _visible_keys(
    q_lo: int, q_hi: int, k_offset: int, k_len: int, causal: bool, window: int | None
) -> tuple[int, int]:
    """The local key range ``[lo, hi)`` that queries at global positions [q_lo, q_hi) may see."""
    lo, hi = k_offset, k_offset + k_len
    if window is not None:
        lo = max(lo, q_lo - (window - 1))
        hi = min(hi, q_hi - 1 + window)
    if causal:
        hi = min(hi, q_hi)
    lo, hi = lo - k_offset, hi - k_offset
    return lo, max(lo, hi)


def _blocked_tile(
    q_lo: int,
    q_hi: int,
    k_lo: int,
    k_hi: int,
    causal: bool,
    window: int | None,
    device: torch.device,
    cache: dict[tuple[int, int, int], torch.Tensor | None],
) -> torch.Tensor | None:
    """Boolean ``(q_hi - q_lo, k_hi - k_lo)`` tile, True = blocked, or None if nothing is blocked.

    Arguments are global positions. Tiles with the same geometry share one mask via ``cache``.
    """
    nothing_blocked = not (causal and k_hi - 1 > q_lo) and not (
        window is not None and max(q_hi - 1 - k_lo, k_hi - 1 - q_lo) >= window
    )
    if nothing_blocked:
        return None
    key = (q_lo - k_lo, q_hi - q_lo, k_hi - k_lo)
    if key not in cache:
        distance = (torch.arange(q_lo, q_hi, device=device)[:, None]
                    - torch.arange(k_lo, k_hi, device=device)[None, :])  # i - j
        blocked = torch.zeros(distance.shape, dtype=torch.bool, device=device)
        if causal:
            blocked |= distance < 0
        if window is not None:
            blocked |= distance.abs() >= window
        cache[key] = blocked
    return cache[key]


def _online_softmax_step(
    scores: torch.Tensor,
    v_tile: torch.Tensor,
    acc: torch.Tensor,
    row_max: torch.Tensor,
    row_sum: torch.Tensor,
) -> torch.Tensor:
    """Fold a tile of (base-2) scores into a query block's running statistics; return the new max.

    Invariant, for the keys seen so far: ``row_max = max_j s_j``,
    ``row_sum = sum_j 2^(s_j - row_max)`` and ``acc = sum_j 2^(s_j - row_max) v_j``. A new
    maximum rescales the old sum and accumulator by ``2^(old_max - new_max)``. ``acc`` and
    ``row_sum`` are updated in place; ``scores`` is overwritten with the tile's unnormalised
    probabilities.
    """
    new_max = torch.maximum(row_max, scores.amax(dim=-1, keepdim=True))
    correction = torch.exp2(row_max - new_max)
    probs = scores.sub_(new_max).exp2_()
    row_sum.mul_(correction).add_(probs.sum(dim=-1, keepdim=True))
    acc.mul_(correction).baddbmm_(probs, v_tile)
    return new_max


def _attention_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    causal: bool,
    window: int | None,
    q_offset: int,
    k_offset: int,
    block_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact attention of q (B, Lq, E) over k (B, Lk, E), v (B, Lk, Ev), one tile at a time.

    Queries sit at global positions ``q_offset + i`` and keys at ``k_offset + j``; ``causal`` and
    ``window`` are applied to those positions, and tiles that they block entirely are skipped.
    Returns the output (B, Lq, Ev) and the log-sum-exp of the scaled scores (B, Lq), both in the
    work dtype. Peak extra memory: one ``block_size x block_size`` tile per batch row, plus the
    output and three O(block_size) statistics.
    """
    work = _work_dtype(q.dtype)
    batch, q_len, _ = q.shape
    k_len, v_dim = k.shape[1], v.shape[2]
    out = torch.empty(batch, q_len, v_dim, dtype=work, device=q.device)
    lse = torch.empty(batch, q_len, dtype=work, device=q.device)
    masks: dict[tuple[int, int, int], torch.Tensor | None] = {}
    for qa in range(0, q_len, block_size):
        qb = min(qa + block_size, q_len)
        q_tile = q[:, qa:qb].to(work) * (scale * _LOG2E)  # scale q once, not every tile
        acc = torch.zeros(batch, qb - qa, v_dim, dtype=work, device=q.device)
        # The running max starts at the lowest finite float, not -inf, so that a row whose keys
        # so far were all blocked gets 2^(min - min) = 1 and 2^(-inf - min) = 0 above, never nan.
        row_max = torch.full((batch, qb - qa, 1), torch.finfo(work).min, dtype=work,
                             device=q.device)
        row_sum = torch.zeros(batch, qb - qa, 1, dtype=work, device=q.device)
        k_lo, k_hi = _visible_keys(q_offset + qa, q_offset + qb, k_offset, k_len, causal, window)
        for ka in range(k_lo, k_hi, block_size):
            kb = min(ka + block_size, k_hi)
            scores = torch.bmm(q_tile, k[:, ka:kb].to(work).transpose(1, 2))
            blocked = _blocked_tile(q_offset + qa, q_offset + qb, k_offset + ka, k_offset + kb,
                                    causal, window, q.device, masks)
            if blocked is not None:
                scores.masked_fill_(blocked, float("-inf"))
            row_max = _online_softmax_step(scores, v[:, ka:kb].to(work), acc, row_max, row_sum)
        # row_sum >= 1 for every row that saw a key (its maximum contributes 2^0 = 1). A row that
        # saw none has acc = 0 and row_sum = 0: clamping at 1 gives it a zero output, and
        # log2(0) = -inf gives it lse = -inf.
        out[:, qa:qb] = acc.div_(row_sum.clamp_min(1.0))
        lse[:, qa:qb] = ((row_max + row_sum.log2()) * _LN2).squeeze(-1)
    return out, lse


def _attention_backward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    grad_out: torch.Tensor,
    lse: torch.Tensor,
    delta: torch.Tensor,
    scale: float,
    causal: bool,
    window: int | None,
    q_offset: int,
    k_offset: int,
    block_size: int,
    dq: torch.Tensor,
    dk: torch.Tensor,
    dv: torch.Tensor,
) -> None:
    """Accumulate the gradients of `_attention_forward` into dq, dk, dv, recomputing each tile.

    With ``P = exp(S - lse)`` rebuilt from the saved log-sum-exp (FlashAttention's
    recomputation), the gradients of ``O = P V`` are ``dV = P^T dO``, ``dP = dO V^T``,
    ``dS = P * (dP - delta)`` with ``delta = rowsum(dO * O) - d(lse)``, ``dQ = scale dS K`` and
    ``dK = scale dS^T Q``. ``delta`` is given by the caller, since the ring computes it once for
    all the key chunks it visits. All tensors are 3-D and in the work dtype.
    """
    work = dq.dtype
    q_len, k_len = q.shape[1], k.shape[1]
    # A query that saw no key has lse = -inf; +inf makes exp(S - lse) = 0 there instead of nan.
    lse2 = lse.masked_fill(lse == float("-inf"), float("inf")).unsqueeze(-1) * _LOG2E
    delta = delta.unsqueeze(-1)
    masks: dict[tuple[int, int, int], torch.Tensor | None] = {}
    for qa in range(0, q_len, block_size):
        qb = min(qa + block_size, q_len)
        q_tile = q[:, qa:qb].to(work)
        q_tile2 = q_tile * (scale * _LOG2E)  # base-2 scores, as in the forward pass
        grad_tile = grad_out[:, qa:qb].to(work)
        dq_tile = dq[:, qa:qb]
        k_lo, k_hi = _visible_keys(q_offset + qa, q_offset + qb, k_offset, k_len, causal, window)
        for ka in range(k_lo, k_hi, block_size):
            kb = min(ka + block_size, k_hi)
            k_tile, v_tile = k[:, ka:kb].to(work), v[:, ka:kb].to(work)
            scores = torch.bmm(q_tile2, k_tile.transpose(1, 2))
            blocked = _blocked_tile(q_offset + qa, q_offset + qb, k_offset + ka, k_offset + kb,
                                    causal, window, q.device, masks)
            if blocked is not None:
                scores.masked_fill_(blocked, float("-inf"))
            probs = scores.sub_(lse2[:, qa:qb]).exp2_()
            dv[:, ka:kb].baddbmm_(probs.transpose(1, 2), grad_tile)
            grad_probs = torch.bmm(grad_tile, v_tile.transpose(1, 2))
            grad_scores = probs.mul_(grad_probs.sub_(delta[:, qa:qb]))
            dq_tile.baddbmm_(grad_scores, k_tile, alpha=scale)
            dk[:, ka:kb].baddbmm_(grad_scores.transpose(1, 2), q_tile, alpha=scale)


class _BlockwiseAttentionFunction(torch.autograd.Function):
    """Blockwise attention with a recomputing backward: saves q, k, v, the output and the lse."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                causal: bool, window: int | None, q_offset: int, k_offset: int,
                block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        out, lse = _attention_forward(q, k, v, scale, causal, window, q_offset, k_offset,
                                      block_size)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.config = (scale, causal, window, q_offset, k_offset, block_size)
        return out.to(q.dtype), lse

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor, grad_lse: torch.Tensor) -> tuple[Any, ...]:
        q, k, v, out, lse = ctx.saved_tensors
        work = out.dtype
        delta = (grad_out.to(work) * out).sum(dim=-1) - grad_lse.to(work)
        dq = torch.zeros(q.shape, dtype=work, device=q.device)
        dk = torch.zeros(k.shape, dtype=work, device=k.device)
        dv = torch.zeros(v.shape, dtype=work, device=v.device)
        _attention_backward(q, k, v, grad_out, lse, delta, *ctx.config, dq, dk, dv)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None, None, None, None


def _blockwise(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    causal: bool,
    window: int | None,
    q_offset: int,
    k_offset: int,
    block_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the blockwise Function on (..., seq, dim) tensors; returns (out, lse) in that layout."""
    out, lse = _BlockwiseAttentionFunction.apply(
        _flatten(q), _flatten(k), _flatten(v), scale, causal, window, q_offset, k_offset,
        block_size,
    )
    return out.reshape(*q.shape[:-1], v.shape[-1]), lse.reshape(q.shape[:-1])


def blockwise_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_size: int = DEFAULT_BLOCK_SIZE,
    *,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """Exact attention computed tile by tile with an online softmax; never builds the n x n scores.

    Queries are taken ``block_size`` at a time; for each query block the key/value blocks are
    visited in order while three running quantities per query are updated (Milakov & Gimelshein
    2018; Rabe & Staats 2021; Dao et al. 2022)::

        m   = max of the scores seen so far
        l   = sum of exp(score - m) over the keys seen so far
        acc = sum of exp(score - m) * v over the keys seen so far

    A tile with a larger maximum rescales ``l`` and ``acc`` by ``exp(m_old - m_new)``; at the end
    ``out = acc / l``. With ``causal``, tiles above the diagonal are skipped and only diagonal
    tiles are masked. Sequence lengths need not be multiples of ``block_size``: the last block is
    shorter. (The code computes ``2^(x log2 e)`` instead of ``exp(x)``, with ``log2 e`` folded into
    the scale as FlashAttention does, because `torch.exp2` is several times faster on CPU.)

    Memory: one ``block_size x block_size`` score tile per (batch, head) at a time plus the output,
    i.e. O(n * d + block_size^2) instead of O(n^2). Gradients come from a custom
    `torch.autograd.Function` that saves only q, k, v, the output and the log-sum-exp and
    recomputes each tile in the backward pass, so training memory is O(n) too.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention,
    labs/long-context-rag-vs-ring-attention.
    """
    _check_qkv(q, k, v, self_attention=causal)
    _check_positive_int(block_size, "block_size")
    scale = _resolve_scale(scale, q.shape[-1])
    out, _ = _blockwise(q, k, v, scale, causal, None, 0, 0, block_size)
    return out


def sliding_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> torch.Tensor:
    """Attention restricted to a sliding window: query ``i`` sees keys with ``|i - j| < window``.

    The pattern is `sliding_window_mask` (with ``causal``, the ``window`` most recent tokens,
    itself included; Child et al. 2019, Beltagy et al. 2020). It is computed blockwise, visiting
    only the key tiles that overlap the band, so time grows as O(n * (window + block_size)) and
    memory holds one tile, instead of O(n^2). Equal to SDPA with
    ``attn_mask=sliding_window_mask(...)``. Differentiable, with the recomputing backward of
    `blockwise_attention`.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention,
    labs/long-context-rag-vs-ring-attention.
    """
    _check_qkv(q, k, v, self_attention=True)
    _check_positive_int(window, "window")
    _check_positive_int(block_size, "block_size")
    scale = _resolve_scale(scale, q.shape[-1])
    out, _ = _blockwise(q, k, v, scale, causal, window, 0, 0, block_size)
    return out


def dilated_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    dilation: int,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> torch.Tensor:
    """Dilated sliding-window attention: the pattern of `dilated_mask`.

    Query ``i`` sees key ``j`` when ``i - j`` is a multiple of ``dilation`` and
    ``|i - j| < window * dilation`` (and ``j <= i`` with ``causal``): Longformer's dilated sliding
    window (Beltagy et al. 2020, section 3.1). The pattern splits the sequence into ``dilation``
    interleaved subsequences (positions ``r, r + dilation, r + 2 * dilation, ...``) that never
    attend to each other; within each one it is an ordinary sliding window of ``window``. So the
    computation gathers every ``dilation``-th token and runs `sliding_window_attention` on it, the
    same gather-then-attend step that LongNet (Ding et al. 2023) applies within fixed segments
    (LongNet also mixes several segment/dilation pairs and shifts them across heads; this function
    is one such pattern without segments). Lengths need not be multiples of ``dilation``.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention,
    labs/long-context-rag-vs-ring-attention.
    """
    _check_qkv(q, k, v, self_attention=True)
    _check_positive_int(window, "window")
    _check_positive_int(dilation, "dilation")
    _check_positive_int(block_size, "block_size")
    scale = _resolve_scale(scale, q.shape[-1])
    out = q.new_empty(*q.shape[:-1], v.shape[-1])
    for residue in range(min(dilation, q.shape[-2])):
        every = slice(residue, None, dilation)  # positions residue, residue + dilation, ...
        part, _ = _blockwise(q[..., every, :], k[..., every, :], v[..., every, :], scale, causal,
                             window, 0, 0, block_size)
        out[..., every, :] = part
    return out


# --------------------------------------------------------------------------------------------
# Partial results and their merge: the two steps of a ring-attention device
# --------------------------------------------------------------------------------------------


def partial_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    q_offset: int = 0,
    k_offset: int = 0,
    scale: float | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of ``q`` over one chunk of keys: returns ``(out, lse)``.

    ``out`` (..., q_len, v_dim) is the attention output as if these were the only keys, and
    ``lse`` (..., q_len) is ``log(sum_j exp(score_j))`` of the scaled scores. Together they are
    everything needed to combine this chunk with other chunks exactly (`merge_partials`). The
    queries sit at global positions ``q_offset + i`` and the keys at ``k_offset + j``, which is
    what ``causal`` compares: a ring device calls this with its own query chunk and a visiting
    key/value chunk from elsewhere in the sequence. A query that sees no key in this chunk gets
    ``out = 0`` and ``lse = -inf``. Computed blockwise; differentiable in both outputs.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention, and by the ring-attention
    functions of this module.
    """
    _check_qkv(q, k, v)
    for name, value in (("q_offset", q_offset), ("k_offset", k_offset)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    _check_positive_int(block_size, "block_size")
    scale = _resolve_scale(scale, q.shape[-1])
    return _blockwise(q, k, v, scale, causal, None, q_offset, k_offset, block_size)


def merge_partials(
    out_a: torch.Tensor, lse_a: torch.Tensor, out_b: torch.Tensor, lse_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two partial attention results over disjoint key sets into the result over their union.

    With ``lse = logaddexp(lse_a, lse_b)``, the merged output is
    ``out_a * exp(lse_a - lse) + out_b * exp(lse_b - lse)``: each part is weighted by its share of
    the softmax denominator. The merge is exact, commutative and associative, so a ring device can
    fold in key chunks in whatever order they arrive. Rows with ``lse = -inf`` (no key seen)
    contribute nothing. Shapes: out (..., L, D), lse (..., L). Differentiable.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention, and by the ring-attention
    functions of this module.
    """
    for name, t in (("out_a", out_a), ("lse_a", lse_a), ("out_b", out_b), ("lse_b", lse_b)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if out_a.shape != out_b.shape or lse_a.shape != lse_b.shape or out_a.shape[:-1] != lse_a.shape:
        raise ValueError(
            "expected out_a, out_b of one shape (..., L, D) and lse_a, lse_b of shape (..., L); "
            f"got {tuple(out_a.shape)}, {tuple(out_b.shape)}, {tuple(lse_a.shape)}, "
            f"{tuple(lse_b.shape)}"
        )
    lse = torch.logaddexp(lse_a, lse_b)
    # Where both parts saw no key, lse is -inf; subtracting 0 instead keeps both weights at 0.
    finite_lse = lse.masked_fill(lse == float("-inf"), 0.0)
    weight_a = torch.exp(lse_a - finite_lse).unsqueeze(-1)
    weight_b = torch.exp(lse_b - finite_lse).unsqueeze(-1)
    return out_a * weight_a + out_b * weight_b, lse


# --------------------------------------------------------------------------------------------
# Ring attention, simulated in one process
# --------------------------------------------------------------------------------------------


def chunk_sequence(seq_len: int, world_size: int, *, strict: bool = False) -> list[tuple[int, int]]:
    """Split ``range(seq_len)`` into ``world_size`` contiguous chunks: ``[(start, end), ...]``.

    With ``strict``, ``world_size`` must divide ``seq_len`` (equal chunks, as in Liu et al. 2023
    and most implementations). Otherwise the first ``seq_len % world_size`` chunks get one token
    more, like `torch.tensor_split`. Every chunk must hold at least one token.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention, and by the ring-attention
    functions of this module.
    """
    _check_positive_int(seq_len, "seq_len")
    _check_positive_int(world_size, "world_size")
    if world_size > seq_len:
        raise ValueError(
            f"world_size={world_size} is larger than seq_len={seq_len}: every device needs at "
            "least one token"
        )
    if strict and seq_len % world_size:
        raise ValueError(
            f"strict mode needs world_size to divide seq_len, got seq_len={seq_len}, "
            f"world_size={world_size} (remainder {seq_len % world_size}); pass strict=False for "
            "uneven chunks"
        )
    base, extra = divmod(seq_len, world_size)
    bounds, start = [], 0
    for rank in range(world_size):
        end = start + base + (1 if rank < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


class _SimulatedRingFunction(torch.autograd.Function):
    """Ring attention over virtual devices, forward and backward following the ring schedule."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                bounds: list[tuple[int, int]], scale: float, causal: bool,
                block_size: int) -> torch.Tensor:
        world_size = len(bounds)
        q_chunks = [q[:, a:b] for a, b in bounds]
        outs: list[torch.Tensor | None] = [None] * world_size
        lses: list[torch.Tensor | None] = [None] * world_size
        # held[i] is the key/value chunk that device i holds now: (source device, k, v).
        held = [(i, k[:, a:b], v[:, a:b]) for i, (a, b) in enumerate(bounds)]
        for step in range(world_size):
            for device, (source, k_chunk, v_chunk) in enumerate(held):
                if causal and source > device:
                    continue  # these keys all lie after this device's queries
                part = _attention_forward(q_chunks[device], k_chunk, v_chunk, scale, causal, None,
                                          bounds[device][0], bounds[source][0], block_size)
                if outs[device] is None:  # step 0: the device's own chunk
                    outs[device], lses[device] = part
                else:
                    outs[device], lses[device] = merge_partials(outs[device], lses[device], *part)
            if step < world_size - 1:
                held = held[-1:] + held[:-1]  # every device passes its chunk to the next one
        out, lse = torch.cat(outs, dim=1), torch.cat(lses, dim=1)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.config = (bounds, scale, causal, block_size)
        return out.to(q.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        q, k, v, out, lse = ctx.saved_tensors
        bounds, scale, causal, block_size = ctx.config
        work = out.dtype
        delta = (grad_out.to(work) * out).sum(dim=-1)
        dq = torch.zeros(q.shape, dtype=work, device=q.device)
        dk = torch.zeros(k.shape, dtype=work, device=k.device)
        dv = torch.zeros(v.shape, dtype=work, device=v.device)
        # Each key/value chunk travels with its gradient accumulators (views into dk and dv).
        held = [(i, k[:, a:b], v[:, a:b], dk[:, a:b], dv[:, a:b])
                for i, (a, b) in enumerate(bounds)]
        for _ in range(len(bounds)):
            for device, (source, k_chunk, v_chunk, dk_chunk, dv_chunk) in enumerate(held):
                if causal and source > device:
                    continue
                a, b = bounds[device]
                _attention_backward(q[:, a:b], k_chunk, v_chunk, grad_out[:, a:b], lse[:, a:b],
                                    delta[:, a:b], scale, causal, None, a, bounds[source][0],
                                    block_size, dq[:, a:b], dk_chunk, dv_chunk)
            # N rotations, not N - 1: the last one brings each dK/dV back to its chunk's owner.
            held = held[-1:] + held[:-1]
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None, None


def ring_attention_simulated(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    world_size: int,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    strict: bool = False,
) -> torch.Tensor:
    """Ring Attention (Liu, Zaharia & Abbeel 2023) on ``world_size`` virtual devices in one process.

    The sequence is cut into ``world_size`` contiguous chunks (`chunk_sequence`; uneven unless
    ``strict``). Device ``i`` keeps query chunk ``i``. At each of ``world_size`` steps every device
    computes `partial_attention` of its queries over the key/value chunk it holds, merges it into
    its running ``(out, lse)`` with `merge_partials`, and passes the chunk to the next device, so
    the chunks travel ``world_size - 1`` hops and every device sees every chunk once. With
    ``causal``, a device skips the compute for chunks that lie entirely after its queries (a real
    ring still forwards them), so the first devices idle through most steps; Striped Attention
    (Brandon et al. 2023) balances that by dealing tokens round-robin instead. Inside a device the computation is blockwise with ``block_size``
    tiles, as in the paper's blockwise parallel transformer, so memory stays flat as chunks grow.

    The backward pass walks the same ring: key/value chunks travel with their dK/dV accumulators,
    each device adds its contribution, and one extra hop brings the gradients home. The devices
    run one after the other here; `ring_attention_distributed` runs them as real processes.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention,
    labs/long-context-rag-vs-ring-attention.
    """
    _check_qkv(q, k, v, self_attention=True)
    _check_positive_int(block_size, "block_size")
    bounds = chunk_sequence(q.shape[-2], world_size, strict=strict)
    scale = _resolve_scale(scale, q.shape[-1])
    out = _SimulatedRingFunction.apply(_flatten(q), _flatten(k), _flatten(v), bounds, scale,
                                       causal, block_size)
    return out.reshape(*q.shape[:-1], v.shape[-1])


# --------------------------------------------------------------------------------------------
# Ring attention across processes (torch.distributed)
# --------------------------------------------------------------------------------------------


def _pass_along(send: torch.Tensor, receive: torch.Tensor, group: Any, tag: int) -> list[Any]:
    """Post a non-blocking send to the next rank and receive from the previous one.

    Both are posted as one batch: NCCL needs that to avoid a deadlock when every rank sends
    first; gloo runs them on its own I/O threads. Returns the requests to wait on.
    """
    import torch.distributed as dist

    rank, world_size = dist.get_rank(group), dist.get_world_size(group)
    following, preceding = (rank + 1) % world_size, (rank - 1) % world_size
    if group is not None:  # P2POp wants global ranks
        following = dist.get_global_rank(group, following)
        preceding = dist.get_global_rank(group, preceding)
    return dist.batch_isend_irecv([
        dist.P2POp(dist.isend, send, following, group, tag),
        dist.P2POp(dist.irecv, receive, preceding, group, tag),
    ])


def _wait(requests: list[Any]) -> None:
    for request in requests:
        request.wait()


def _chunk_offsets(q: torch.Tensor, v: torch.Tensor, group: Any) -> list[int]:
    """``offsets[r]`` = where rank r's chunk starts (``offsets[-1]`` = the sequence length).

    Found with one all-gather of the chunk shapes, whose other dimensions must agree.
    """
    import torch.distributed as dist

    batch, length, head_dim = q.shape
    shape = torch.tensor([batch, length, head_dim, v.shape[-1]], device=q.device)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size(group))]
    dist.all_gather(shapes, shape, group=group)
    for rank, other in enumerate(shapes):
        if other[0] != batch or other[2] != head_dim or other[3] != v.shape[-1]:
            raise ValueError(
                f"rank {rank} holds chunks with batch={int(other[0])}, "
                f"head_dim={int(other[2])}, v_dim={int(other[3])}; this rank batch={batch}, "
                f"head_dim={head_dim}, v_dim={v.shape[-1]}: every rank must share them"
            )
    lengths = [int(other[1]) for other in shapes]
    return [sum(lengths[:rank]) for rank in range(len(lengths) + 1)]


class _RingOnRankFunction(torch.autograd.Function):
    """One rank's share of distributed ring attention, forward and backward."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                causal: bool, block_size: int, group: Any) -> torch.Tensor:
        import torch.distributed as dist

        rank, world_size = dist.get_rank(group), dist.get_world_size(group)
        offsets = _chunk_offsets(q, v, group)
        head_dim = k.shape[-1]
        work = _work_dtype(q.dtype)
        kv = torch.cat([k, v], dim=-1).to(work)  # one message per hop instead of two
        out = lse = None
        for step in range(world_size):
            source = (rank - step) % world_size  # whose chunk this rank holds at this step
            if step < world_size - 1:
                # Post the next hop first, so the transfer overlaps the compute below.
                upcoming = (source - 1) % world_size
                incoming = kv.new_empty(kv.shape[0], offsets[upcoming + 1] - offsets[upcoming],
                                        kv.shape[2])
                requests = _pass_along(kv, incoming, group, _KV_TAG)
            if not (causal and source > rank):
                part = _attention_forward(q, kv[..., :head_dim], kv[..., head_dim:], scale, causal,
                                          None, offsets[rank], offsets[source], block_size)
                out, lse = part if out is None else merge_partials(out, lse, *part)
            if step < world_size - 1:
                _wait(requests)
                kv = incoming
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.config = (scale, causal, block_size, group, offsets)
        return out.to(q.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        import torch.distributed as dist

        q, k, v, out, lse = ctx.saved_tensors
        scale, causal, block_size, group, offsets = ctx.config
        rank, world_size = dist.get_rank(group), dist.get_world_size(group)
        head_dim = k.shape[-1]
        work = out.dtype
        delta = (grad_out.to(work) * out).sum(dim=-1)
        dq = torch.zeros(q.shape, dtype=work, device=q.device)
        kv = torch.cat([k, v], dim=-1).to(work)
        grad_kv = None  # the dK/dV accumulator of the chunk held now, once received
        grad_requests: list[Any] = []
        for step in range(world_size):
            source = (rank - step) % world_size
            upcoming = (source - 1) % world_size
            upcoming_len = offsets[upcoming + 1] - offsets[upcoming]
            if step < world_size - 1:
                incoming = kv.new_empty(kv.shape[0], upcoming_len, kv.shape[2])
                requests = _pass_along(kv, incoming, group, _KV_TAG)
            contribution = torch.zeros_like(kv)
            if not (causal and source > rank):
                _attention_backward(q, kv[..., :head_dim], kv[..., head_dim:], grad_out, lse,
                                    delta, scale, causal, None, offsets[rank], offsets[source],
                                    block_size, dq, contribution[..., :head_dim],
                                    contribution[..., head_dim:])
            # The accumulator of this chunk arrives from the previous rank while we compute.
            _wait(grad_requests)
            grad_kv = contribution if grad_kv is None else grad_kv.add_(contribution)
            if world_size > 1:
                # Pass it on; after the last step this hop delivers each chunk's gradient home.
                grad_incoming = kv.new_empty(kv.shape[0], upcoming_len, kv.shape[2])
                grad_requests = _pass_along(grad_kv, grad_incoming, group, _DKV_TAG)
                grad_kv = grad_incoming
            if step < world_size - 1:
                _wait(requests)
                kv = incoming
        _wait(grad_requests)
        dk, dv = grad_kv[..., :head_dim], grad_kv[..., head_dim:]
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None, None


def ring_attention_on_rank(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    group: Any = None,
) -> torch.Tensor:
    """This rank's share of ring attention; every rank of the process group calls it together.

    ``q``, ``k``, ``v`` are this rank's chunk of the sequence, ``(..., chunk_len, head_dim)``;
    rank ``r`` holds the ``r``-th contiguous chunk. Chunk lengths may differ between ranks (they
    are exchanged once with an all-gather); the other dimensions must agree. Returns this rank's
    output chunk. Differentiable: the backward pass sends the key/value chunks around the ring
    again, together with their dK/dV accumulators, which end up back on the rank that owns them.

    Each hop is posted with non-blocking ``isend``/``irecv`` (`torch.distributed.batch_isend_irecv`)
    before the current chunk is computed and waited on after, so communication overlaps compute.
    With gloo the posts return at once and the TCP transfer runs on gloo's own I/O threads while
    this rank computes; ``wait()`` then blocks only for whatever has not arrived. With NCCL the
    transfers run on a separate CUDA stream.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention, and by
    `ring_attention_worker`.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "ring_attention_on_rank needs an initialised torch.distributed process group (call it "
            "inside a worker started by shared.distributed.run_distributed or torchrun)"
        )
    _check_qkv(q, k, v, self_attention=True)
    _check_positive_int(block_size, "block_size")
    scale = _resolve_scale(scale, q.shape[-1])
    out = _RingOnRankFunction.apply(_flatten(q), _flatten(k), _flatten(v), scale, causal,
                                    block_size, group)
    return out.reshape(*q.shape[:-1], v.shape[-1])


def ring_attention_worker(
    rank: int,
    world_size: int,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    grad_out: torch.Tensor | None = None,
    scale: float | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    strict: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The per-process body of `ring_attention_distributed`, run as ``fn(rank, world_size, ...)``.

    Takes the full q, k, v (shipped to every worker for simplicity; a real job would load only
    its chunk), keeps chunk ``rank`` of `chunk_sequence`, and runs `ring_attention_on_rank`. With
    ``grad_out`` (the gradient of a loss with respect to the full output) it also runs the
    backward pass. Returns the output chunk, or ``(out, dq, dk, dv)`` chunks, on the CPU. Under
    NCCL, rank ``r`` computes on ``cuda:r``. Defined at module level so spawned processes can
    import it.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention, and by
    `ring_attention_distributed`.
    """
    import torch.distributed as dist

    start, end = chunk_sequence(q.shape[-2], world_size, strict=strict)[rank]
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    needs_grad = grad_out is not None
    chunks = [t[..., start:end, :].to(device).detach().requires_grad_(needs_grad)
              for t in (q, k, v)]
    out = ring_attention_on_rank(*chunks, causal=causal, scale=scale, block_size=block_size)
    if not needs_grad:
        return out.cpu()
    out.backward(grad_out[..., start:end, :].to(device))
    return out.detach().cpu(), *(t.grad.cpu() for t in chunks)


def ring_attention_distributed(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    world_size: int,
    causal: bool = False,
    *,
    grad_out: torch.Tensor | None = None,
    scale: float | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    strict: bool = False,
    backend: str = "gloo",
    timeout_s: float = 300.0,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ring attention across ``world_size`` real processes on this machine; returns the full output.

    Starts the workers with `shared.distributed.run_distributed` (gloo on CPU by default; NCCL
    needs one GPU per rank), runs `ring_attention_worker` on each and concatenates their output
    chunks. With ``grad_out`` the workers also run the ring backward pass and this returns
    ``(out, dq, dk, dv)``. Inputs are checked here, before any process starts. Starting processes
    costs a few seconds, so this is for demonstration and tests, not speed.

    Used in: modules/20-advanced-topics/02-long-context-ring-attention, tests/test_attention.py.
    """
    from shared.distributed import run_distributed

    _check_qkv(q, k, v, self_attention=True)
    _check_positive_int(block_size, "block_size")
    chunk_sequence(q.shape[-2], world_size, strict=strict)
    _resolve_scale(scale, q.shape[-1])
    if grad_out is not None and (
        not isinstance(grad_out, torch.Tensor) or grad_out.shape != (*q.shape[:-1], v.shape[-1])
    ):
        raise ValueError(
            f"grad_out must be a tensor of the output's shape {(*q.shape[:-1], v.shape[-1])}, got "
            f"{getattr(grad_out, 'shape', type(grad_out).__name__)}"
        )
    cpu = [t.detach().cpu() for t in (q, k, v)]
    grad_cpu = None if grad_out is None else grad_out.detach().cpu()
    results = run_distributed(ring_attention_worker, world_size, *cpu, causal, grad_cpu, scale,
                              block_size, strict, backend=backend, timeout_s=timeout_s)
    if grad_out is None:
        return torch.cat(results, dim=-2)
    out, dq, dk, dv = (torch.cat(parts, dim=-2) for parts in zip(*results))
    return out, dq, dk, dv


# --------------------------------------------------------------------------------------------
# Measuring memory
# --------------------------------------------------------------------------------------------


def peak_memory_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Peak extra memory, in bytes, that ``fn(*args, **kwargs)`` allocates while it runs.

    "Extra" means above what was allocated when the call started: the peak of (bytes allocated
    minus bytes freed) over the call, the call's own result included.

    - CPU: `torch.profiler` with ``profile_memory=True`` records every allocation and free of
      PyTorch's CPU allocator with a timestamp; the peak of their running sum is the answer.
      `tracemalloc` would not work: it sees only Python's allocator, not torch's. What the
      profiler does not see is memory that libraries such as oneDNN or BLAS allocate outside
      PyTorch; plain matmuls, softmax and the attention kernels allocate through PyTorch.
    - CUDA (when any tensor argument is on a GPU): `torch.cuda.max_memory_allocated` after
      `torch.cuda.reset_peak_memory_stats`, minus what was allocated before.

    A 256 MiB ``torch.ones`` reads 268,435,456 bytes (tests/test_attention.py checks this).

    Used in: modules/20-advanced-topics/02-long-context-ring-attention,
    labs/long-context-rag-vs-ring-attention, benchmarks/bench_attention.py.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    cuda = next((t.device for t in tensors if t.device.type == "cuda"), None)
    if cuda is not None:
        torch.cuda.synchronize(cuda)
        before = torch.cuda.memory_allocated(cuda)
        torch.cuda.reset_peak_memory_stats(cuda)
        fn(*args, **kwargs)
        torch.cuda.synchronize(cuda)
        return max(0, torch.cuda.max_memory_allocated(cuda) - before)

    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*args, **kwargs)
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
    peak = current = 0
    for event in sorted(events, key=lambda e: e.start_ns()):  # stable: ties keep their order
        current += event.nbytes()  # > 0 for an allocation, < 0 for a free
        peak = max(peak, current)
    return peak
