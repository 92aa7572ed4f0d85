"""`shared.attention`: every variant against `torch.nn.functional.scaled_dot_product_attention`.

Forward outputs must agree to 1e-5 and gradients to 1e-4 in float32, on random shapes with odd
lengths (hypothesis, derandomised so that every run draws the same examples), causal and not. The
windowed and dilated variants are compared with SDPA under the boolean mask of their pattern. The
distributed ring runs on 2 and 4 real gloo processes, forward and backward. Bad inputs raise.
"""

from __future__ import annotations

import math
import tracemalloc

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import attention as A
from shared.distributed import run_distributed

FORWARD_TOL = 1e-5
GRAD_TOL = 1e-4
PROPERTY = settings(max_examples=20, deadline=None, derandomize=True)


def _qkv(shape: tuple[int, ...], v_dim: int | None = None, seed: int = 0,
         dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    """Random q, k, v and an output gradient; v (and the output) may have their own width."""
    gen = torch.Generator().manual_seed(seed)
    v_shape = (*shape[:-1], v_dim or shape[-1])
    q, k = (torch.randn(shape, generator=gen, dtype=dtype) for _ in range(2))
    v, grad = (torch.randn(v_shape, generator=gen, dtype=dtype) for _ in range(2))
    return q, k, v, grad


def _run(fn, q, k, v, grad) -> tuple[torch.Tensor, ...]:
    """fn's output and the gradients of <output, grad> with respect to q, k, v."""
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    out = fn(*leaves)
    out.backward(grad)
    return (out.detach(), *(t.grad for t in leaves))


def _sdpa(mask: torch.Tensor | None = None, causal: bool = False, scale: float | None = None):
    return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                          is_causal=causal, scale=scale)


def _assert_matches(got: tuple[torch.Tensor, ...], want: tuple[torch.Tensor, ...]) -> None:
    names = ("output", "dq", "dk", "dv")
    for name, a, b, tol in zip(names, got, want, (FORWARD_TOL, GRAD_TOL, GRAD_TOL, GRAD_TOL)):
        assert a.shape == b.shape, f"{name}: shape {tuple(a.shape)} != {tuple(b.shape)}"
        error = (a - b).abs().max().item()
        assert error <= tol, f"{name}: max error {error:.2e} > {tol:.0e}"


def _check(fn, q, k, v, grad, **sdpa_options) -> None:
    """fn(q, k, v) and its gradients agree with SDPA called with ``sdpa_options``."""
    _assert_matches(_run(fn, q, k, v, grad), _run(_sdpa(**sdpa_options), q, k, v, grad))


shapes = st.tuples(
    st.integers(1, 2),  # batch
    st.integers(1, 3),  # heads
    st.integers(1, 67),  # seq: odd and tiny lengths included
    st.sampled_from([1, 8, 13, 32]),  # head_dim
)


# ----------------------------------------------------------------------------------------------
# Patterns
# ----------------------------------------------------------------------------------------------


def test_masks_match_their_definitions() -> None:
    n = 23
    for causal in (False, True):
        for window in (1, 3, 30):
            got = A.sliding_window_mask(n, window, causal=causal)
            want = torch.tensor([[abs(i - j) < window and (j <= i or not causal) for j in range(n)]
                                 for i in range(n)])
            assert torch.equal(got, want)
        for window, dilation in ((1, 4), (3, 2), (4, 5)):
            got = A.dilated_mask(n, window, dilation, causal=causal)
            want = torch.tensor([[(i - j) % dilation == 0 and abs(i - j) < window * dilation
                                  and (j <= i or not causal) for j in range(n)] for i in range(n)])
            assert torch.equal(got, want)
            # every query sees itself and exactly `window` keys causally (fewer near the start)
            assert got.diagonal().all()
    assert torch.equal(A.dilated_mask(n, 5, 1), A.sliding_window_mask(n, 5))
    causal_counts = A.dilated_mask(n, 3, 4, causal=True).sum(-1)
    assert causal_counts.max() == 3 and causal_counts[0] == 1


# ----------------------------------------------------------------------------------------------
# Vanilla attention
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_vanilla_matches_sdpa(causal: bool) -> None:
    q, k, v, grad = _qkv((2, 3, 29, 16), v_dim=12)
    _check(lambda *t: A.vanilla_attention(*t, causal=causal), q, k, v, grad, causal=causal)


def test_vanilla_mask_weights_and_empty_rows() -> None:
    q, k, v, grad = _qkv((1, 2, 9, 8), seed=1)
    mask = torch.rand(9, 9, generator=torch.Generator().manual_seed(2)) < 0.5
    mask[4] = False  # query 4 may see nothing: zero weights and output, as SDPA
    out, weights = A.vanilla_attention(q, k, v, mask=mask, return_weights=True)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (out - want).abs().max() <= FORWARD_TOL
    assert weights.shape == (1, 2, 9, 9)
    row_sums = weights.sum(-1)
    assert torch.allclose(row_sums[..., mask.any(-1)], torch.ones(()), atol=1e-6)
    assert torch.all(weights[..., 4, :] == 0) and torch.all(out[..., 4, :] == 0)
    assert torch.all(weights[..., ~mask] == 0)
    causal_mask = mask & torch.ones(9, 9, dtype=torch.bool).tril()
    _check(lambda *t: A.vanilla_attention(*t, mask=mask, causal=True), q, k, v, grad,
           mask=causal_mask)


def test_vanilla_by_hand() -> None:
    """One query, two keys: the softmax weights written out."""
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[10.0], [20.0]])
    out, weights = A.vanilla_attention(q, k, v, return_weights=True)
    w0 = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)
    assert torch.allclose(weights, torch.tensor([[w0, 1 - w0]]))
    assert torch.allclose(out, torch.tensor([[10 * w0 + 20 * (1 - w0)]]))


# ----------------------------------------------------------------------------------------------
# Blockwise, sliding-window and dilated attention (property tests against SDPA)
# ----------------------------------------------------------------------------------------------


@PROPERTY
@given(shape=shapes, block_size=st.integers(2, 40), causal=st.booleans(), v_dim=st.integers(1, 9))
def test_blockwise_matches_sdpa(shape, block_size, causal, v_dim) -> None:
    q, k, v, grad = _qkv(shape, v_dim=v_dim)
    _check(lambda *t: A.blockwise_attention(*t, block_size, causal=causal), q, k, v, grad,
           causal=causal)


@pytest.mark.parametrize("causal", [False, True])
def test_blockwise_with_one_token_blocks(causal: bool) -> None:
    q, k, v, grad = _qkv((2, 1, 9, 4))
    _check(lambda *t: A.blockwise_attention(*t, 1, causal=causal), q, k, v, grad, causal=causal)


@PROPERTY
@given(shape=shapes, k_len=st.integers(1, 50), block_size=st.integers(1, 20))
def test_blockwise_cross_attention_lengths(shape, k_len, block_size) -> None:
    """Non-causal attention needs no equal lengths: queries and keys of two sequences."""
    q, _, _, grad = _qkv(shape)
    _, k, v, _ = _qkv((*shape[:-2], k_len, shape[-1]), seed=1)
    _check(lambda *t: A.blockwise_attention(*t, block_size), q, k, v, grad)


@PROPERTY
@given(shape=shapes, window=st.integers(1, 70), block_size=st.integers(1, 30), causal=st.booleans())
def test_sliding_window_matches_masked_sdpa(shape, window, block_size, causal) -> None:
    q, k, v, grad = _qkv(shape)
    mask = A.sliding_window_mask(shape[-2], window, causal=causal)
    _check(lambda *t: A.sliding_window_attention(*t, window, causal=causal, block_size=block_size),
           q, k, v, grad, mask=mask)


@PROPERTY
@given(shape=shapes, window=st.integers(1, 9), dilation=st.integers(1, 9),
       block_size=st.integers(1, 16), causal=st.booleans())
def test_dilated_matches_masked_sdpa(shape, window, dilation, block_size, causal) -> None:
    q, k, v, grad = _qkv(shape)
    mask = A.dilated_mask(shape[-2], window, dilation, causal=causal)
    _check(lambda *t: A.dilated_attention(*t, window, dilation, causal=causal,
                                          block_size=block_size), q, k, v, grad, mask=mask)


@pytest.mark.parametrize("shape", [(37, 16), (3, 37, 16), (2, 2, 3, 37, 16)])
def test_other_layouts(shape: tuple[int, ...]) -> None:
    """(seq, dim), (heads, seq, dim) and extra leading dimensions work like (batch, heads, ...)."""
    q, k, v, grad = _qkv(shape)
    want = _run(_sdpa(causal=True), q, k, v, grad)
    _assert_matches(_run(lambda *t: A.blockwise_attention(*t, 8, causal=True), q, k, v, grad), want)
    _assert_matches(_run(lambda *t: A.ring_attention_simulated(*t, 3, causal=True), q, k, v, grad),
                    want)


def test_non_contiguous_inputs() -> None:
    q, k, v, grad = _qkv((2, 21, 3, 8))  # (batch, seq, heads, dim), transposed to SDPA's layout
    q, k, v, grad = (t.transpose(1, 2) for t in (q, k, v, grad))
    assert not q.is_contiguous()
    _check(lambda *t: A.blockwise_attention(*t, 5, causal=True), q, k, v, grad, causal=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_other_dtypes(dtype: torch.dtype) -> None:
    q, k, v, grad = _qkv((1, 2, 45, 16), dtype=dtype)
    q64, k64, v64, grad64 = (t.double() for t in (q, k, v, grad))
    want = _run(_sdpa(causal=True), q64, k64, v64, grad64)
    tol = 1e-12 if dtype == torch.float64 else 2e-2
    for fn in (lambda *t: A.blockwise_attention(*t, 16, causal=True),
               lambda *t: A.ring_attention_simulated(*t, 4, causal=True)):
        got = _run(fn, q, k, v, grad)
        assert all(g.dtype == dtype for g in got)
        for a, b in zip(got, want):
            assert (a.double() - b).abs().max() <= tol


def test_large_scores_are_stable() -> None:
    """Scores around 1e4 overflow a naive exp; the running maximum keeps them finite."""
    q, k, v, grad = _qkv((1, 1, 50, 8))
    q = q * 300
    got = _run(lambda *t: A.blockwise_attention(*t, 7, causal=True), q, k, v, grad)
    want = _run(_sdpa(causal=True), q, k, v, grad)
    assert all(torch.isfinite(t).all() for t in got)
    assert (got[0] - want[0]).abs().max() <= FORWARD_TOL
    for a, b in zip(got[1:], want[1:]):  # gradients scale with q: compare relative to their size
        assert (a - b).abs().max() <= GRAD_TOL * b.abs().max()


def test_custom_scale() -> None:
    q, k, v, grad = _qkv((1, 2, 19, 8))
    _check(lambda *t: A.blockwise_attention(*t, 4, causal=True, scale=0.7), q, k, v, grad,
           causal=True, scale=0.7)
    _check(lambda *t: A.ring_attention_simulated(*t, 3, causal=True, scale=0.7), q, k, v, grad,
           causal=True, scale=0.7)


# ----------------------------------------------------------------------------------------------
# Partial results and the log-sum-exp merge
# ----------------------------------------------------------------------------------------------


def test_partial_attention_returns_output_and_logsumexp() -> None:
    q, k, v, _ = _qkv((2, 3, 11, 8))
    out, lse = A.partial_attention(q, k, v, block_size=4)
    scores = q @ k.transpose(-1, -2) / math.sqrt(8)
    assert (lse - torch.logsumexp(scores, -1)).abs().max() <= FORWARD_TOL
    assert (out - F.scaled_dot_product_attention(q, k, v)).abs().max() <= FORWARD_TOL


def test_merging_key_chunks_equals_full_attention() -> None:
    """Split the keys into three chunks, attend to each, merge: the result is exact attention."""
    q, k, v, _ = _qkv((1, 2, 30, 8))
    bounds = [(0, 7), (7, 20), (20, 30)]
    parts = [A.partial_attention(q, k[..., a:b, :], v[..., a:b, :], causal=True, k_offset=a)
             for a, b in bounds]
    out, lse = parts[2]
    for part in (parts[0], parts[1]):  # any order: the merge is commutative and associative
        out, lse = A.merge_partials(out, lse, *part)
    assert (out - _sdpa(causal=True)(q, k, v)).abs().max() <= FORWARD_TOL
    scores = (q @ k.transpose(-1, -2) / math.sqrt(8)).masked_fill(
        ~torch.ones(30, 30, dtype=torch.bool).tril(), float("-inf"))
    assert (lse - torch.logsumexp(scores, -1)).abs().max() <= FORWARD_TOL


def test_queries_that_see_nothing() -> None:
    """Keys entirely in the future of the queries: zero output and lse = -inf, no nan."""
    q, k, v, _ = _qkv((1, 1, 4, 8))
    out, lse = A.partial_attention(q, k, v, causal=True, q_offset=0, k_offset=10)
    assert torch.all(out == 0) and torch.all(lse == float("-inf"))
    # keys 2..5 for queries 0..3: queries 0 and 1 see nothing, 2 and 3 see some keys
    out, lse = A.partial_attention(q, k, v, causal=True, q_offset=0, k_offset=2, block_size=2)
    assert torch.all(out[..., :2, :] == 0) and torch.all(lse[..., :2] == float("-inf"))
    assert torch.isfinite(out).all() and torch.isfinite(lse[..., 2:]).all()
    nothing = (torch.zeros_like(out), torch.full_like(lse, -math.inf))
    merged, merged_lse = A.merge_partials(out, lse, *nothing)
    assert torch.equal(merged, out) and torch.equal(merged_lse, lse)


def test_partial_attention_gradients_include_the_logsumexp() -> None:
    """d(loss)/d(q,k,v) through both outputs matches autograd through a materialised reference."""
    q, k, v, grad = _qkv((1, 2, 13, 8))
    weights = torch.randn(1, 2, 13, generator=torch.Generator().manual_seed(5))

    def loss_blockwise(q, k, v):
        out, lse = A.partial_attention(q, k, v, causal=True, q_offset=3, k_offset=0, block_size=4)
        return (out * grad).sum() + (lse * weights).sum()

    def loss_reference(q, k, v):
        allowed = torch.arange(13)[None, :] <= torch.arange(3, 16)[:, None]
        scores = (q @ k.transpose(-1, -2) / math.sqrt(8)).masked_fill(~allowed, float("-inf"))
        out = torch.softmax(scores, -1) @ v
        return (out * grad).sum() + (torch.logsumexp(scores, -1) * weights).sum()

    grads = []
    for loss_fn in (loss_blockwise, loss_reference):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        loss_fn(*leaves).backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        assert (a - b).abs().max() <= GRAD_TOL


# ----------------------------------------------------------------------------------------------
# Ring attention, simulated
# ----------------------------------------------------------------------------------------------


@PROPERTY
@given(shape=shapes, world_size=st.integers(1, 8), block_size=st.integers(1, 20),
       causal=st.booleans())
def test_simulated_ring_matches_sdpa(shape, world_size, block_size, causal) -> None:
    world_size = min(world_size, shape[-2])  # every device holds at least one token
    q, k, v, grad = _qkv(shape, v_dim=5)
    _check(lambda *t: A.ring_attention_simulated(*t, world_size, causal=causal,
                                                 block_size=block_size), q, k, v, grad,
           causal=causal)


def test_chunk_sequence() -> None:
    assert A.chunk_sequence(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert A.chunk_sequence(12, 4, strict=True) == [(0, 3), (3, 6), (6, 9), (9, 12)]
    assert A.chunk_sequence(5, 5) == [(i, i + 1) for i in range(5)]
    for n in range(1, 30):
        for parts in range(1, n + 1):
            bounds = A.chunk_sequence(n, parts)
            sizes = [b - a for a, b in bounds]
            assert bounds[0][0] == 0 and bounds[-1][1] == n and min(sizes) >= 1
            assert max(sizes) - min(sizes) <= 1
            assert all(bounds[i][1] == bounds[i + 1][0] for i in range(parts - 1))


# ----------------------------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------------------------


def test_peak_memory_reads_a_known_allocation() -> None:
    mib = 2**20
    assert A.peak_memory_bytes(torch.ones, 64 * mib) == 256 * mib  # 64 Mi float32 = 256 MiB
    x = torch.ones(8 * mib)  # 32 MiB that exist before the call do not count
    peak = A.peak_memory_bytes(lambda: (x * 2).sum())
    assert 32 * mib <= peak <= 33 * mib  # the temporary x * 2, freed before the call returns
    with pytest.raises(TypeError, match="callable"):
        A.peak_memory_bytes(42)


def test_tracemalloc_does_not_see_torch_tensors() -> None:
    """Why peak_memory_bytes uses the profiler: Python's tracemalloc misses torch's allocator."""
    tracemalloc.start()
    try:
        torch.ones(16 * 2**20)  # 64 MiB
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert traced_peak < 2**20


@pytest.mark.slow
def test_blockwise_never_materialises_the_score_matrix() -> None:
    """Forward peak memory stays far below one n x n matrix, with and without autograd."""
    n, block = 1024, 64
    q, k, v, _ = _qkv((1, 1, n, 16))
    score_matrix = n * n * 4
    with torch.no_grad():
        naive = A.peak_memory_bytes(A.vanilla_attention, q, k, v, causal=True)
        blockwise = A.peak_memory_bytes(A.blockwise_attention, q, k, v, block, causal=True)
        ring = A.peak_memory_bytes(A.ring_attention_simulated, q, k, v, 4, causal=True,
                                   block_size=block)
    assert naive >= score_matrix
    assert blockwise < score_matrix / 20 and ring < score_matrix / 20
    leaves = [t.requires_grad_() for t in (q, k, v)]
    training = A.peak_memory_bytes(lambda: A.blockwise_attention(*leaves, block, causal=True).sum())
    assert training < score_matrix / 20


# ----------------------------------------------------------------------------------------------
# Ring attention across processes
# ----------------------------------------------------------------------------------------------


def _ring_both_modes(rank: int, world_size: int, q, k, v, grad) -> dict:
    """Run the ring worker causal and non-causal, forward only, and with mismatched chunks."""
    result = {causal: A.ring_attention_worker(rank, world_size, q, k, v, causal, grad)
              for causal in (False, True)}
    result["forward_only"] = A.ring_attention_worker(rank, world_size, q, k, v, True)
    head_dim = 8 if rank == 1 else q.shape[-1]  # rank 1 holds chunks of another head_dim
    bad = torch.zeros(1, 1, 3, head_dim)
    try:
        A.ring_attention_on_rank(bad, bad, bad)
    except ValueError as exc:
        result["mismatch"] = str(exc)
    return result


@pytest.mark.slow
@pytest.mark.distributed
def test_distributed_ring_on_four_processes() -> None:
    """4 gloo processes, uneven chunks (30 tokens: 8, 8, 7, 7), both modes, forward and backward."""
    q, k, v, grad = _qkv((2, 2, 30, 16), v_dim=12)
    results = run_distributed(_ring_both_modes, 4, q, k, v, grad, timeout_s=240)
    for causal in (False, True):
        chunks = [r[causal] for r in results]
        got = tuple(torch.cat(parts, dim=-2) for parts in zip(*chunks))
        _assert_matches(got, _run(_sdpa(causal=causal), q, k, v, grad))
    for rank, result in enumerate(results):
        assert torch.equal(result["forward_only"], result[True][0]), f"rank {rank}"
        assert "every rank must share them" in result["mismatch"], f"rank {rank}"


@pytest.mark.slow
@pytest.mark.distributed
def test_distributed_ring_on_two_processes() -> None:
    """The launcher on 2 gloo processes: causal, odd length, forward and backward."""
    q, k, v, grad = _qkv((1, 2, 13, 8))
    got = A.ring_attention_distributed(q, k, v, 2, True, grad_out=grad, block_size=4)
    _assert_matches(got, _run(_sdpa(causal=True), q, k, v, grad))


def test_ring_on_rank_needs_a_process_group() -> None:
    q, k, v, _ = _qkv((1, 1, 4, 8))
    with pytest.raises(RuntimeError, match="process group"):
        A.ring_attention_on_rank(q, k, v)


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------


def _all_variants():
    """Each public attention function as fn(q, k, v), with valid extra arguments."""
    return {
        "vanilla": lambda q, k, v: A.vanilla_attention(q, k, v),
        "blockwise": lambda q, k, v: A.blockwise_attention(q, k, v, 4),
        "sliding": lambda q, k, v: A.sliding_window_attention(q, k, v, 3),
        "dilated": lambda q, k, v: A.dilated_attention(q, k, v, 2, 2),
        "partial": lambda q, k, v: A.partial_attention(q, k, v),
        "ring": lambda q, k, v: A.ring_attention_simulated(q, k, v, 2),
        "distributed": lambda q, k, v: A.ring_attention_distributed(q, k, v, 2),
    }


@pytest.mark.parametrize("variant", sorted(_all_variants()))
def test_bad_tensors_are_refused(variant: str) -> None:
    fn = _all_variants()[variant]
    q = torch.randn(1, 2, 6, 8)
    cases = [
        ((q, q, q.numpy()), TypeError, "v must be a torch.Tensor"),
        ((q, q[0, 0, 0], q), ValueError, r"k must have shape \(\.\.\., seq, head_dim\)"),
        ((q, q.double(), q), TypeError, "share one dtype"),
        ((q.int(), q.int(), q.int()), TypeError, "floating dtype"),
        ((q, q.to("meta"), q), ValueError, "one device"),
        ((q, torch.randn(2, 2, 6, 8), q), ValueError, "leading"),
        ((q, q, torch.randn(1, 2, 5, 8)), ValueError, "k and v must have the same sequence length"),
        ((q, torch.randn(1, 2, 6, 4), torch.randn(1, 2, 6, 4)), ValueError, "head_dim"),
        ((q[..., :0, :], q, q), ValueError, "seq >= 1"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            fn(*args)


def test_bad_arguments_are_refused() -> None:
    q = torch.randn(1, 2, 6, 8)
    short = torch.randn(1, 2, 5, 8)
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        A.blockwise_attention(q, q, q, 0)
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        A.ring_attention_simulated(q, q, q, 2, block_size=-3)
    with pytest.raises(TypeError, match="block_size must be an int"):
        A.blockwise_attention(q, q, q, 2.5)
    with pytest.raises(ValueError, match="window must be >= 1"):
        A.sliding_window_attention(q, q, q, 0)
    with pytest.raises(ValueError, match="window must be >= 1"):
        A.sliding_window_mask(6, 0)
    with pytest.raises(ValueError, match="window must be >= 1"):
        A.dilated_attention(q, q, q, 0, 2)
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        A.dilated_attention(q, q, q, 2, 0)
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        A.dilated_mask(6, 2, -1)
    with pytest.raises(ValueError, match="equal lengths"):
        A.blockwise_attention(q, short, short, 4, causal=True)
    with pytest.raises(ValueError, match="equal lengths"):
        A.vanilla_attention(q, short, short, causal=True)
    with pytest.raises(ValueError, match="equal lengths"):
        A.sliding_window_attention(q, short, short, 2)
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        A.blockwise_attention(q, q, q, 4, scale=0.0)
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        A.vanilla_attention(q, q, q, scale=float("nan"))
    with pytest.raises(TypeError, match="scale must be a float"):
        A.vanilla_attention(q, q, q, scale="0.5")
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        A.vanilla_attention(q, q, q, mask=torch.ones(6, 6))
    with pytest.raises(ValueError, match="does not broadcast"):
        A.vanilla_attention(q, q, q, mask=torch.ones(5, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):  # would enlarge the scores
        A.vanilla_attention(q, q, q, mask=torch.ones(3, 1, 6, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="k_offset must be >= 0"):
        A.partial_attention(q, q, q, k_offset=-1)
    with pytest.raises(TypeError, match="q_offset must be an int"):
        A.partial_attention(q, q, q, q_offset=1.0)
    with pytest.raises(ValueError, match="expected out_a, out_b of one shape"):
        A.merge_partials(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(TypeError, match="lse_b must be a torch.Tensor"):
        A.merge_partials(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2, 3), None)


def test_world_size_errors() -> None:
    q = torch.randn(1, 1, 10, 8)
    with pytest.raises(ValueError, match="strict mode needs world_size to divide seq_len"):
        A.chunk_sequence(10, 4, strict=True)
    with pytest.raises(ValueError, match="strict mode needs world_size to divide seq_len"):
        A.ring_attention_simulated(q, q, q, 4, strict=True)
    with pytest.raises(ValueError, match="strict mode needs world_size to divide seq_len"):
        A.ring_attention_distributed(q, q, q, 3, strict=True)  # refused before any process starts
    with pytest.raises(ValueError, match="larger than seq_len"):
        A.ring_attention_simulated(q, q, q, 11)
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        A.ring_attention_simulated(q, q, q, 0)
    with pytest.raises(TypeError, match="world_size must be an int"):
        A.chunk_sequence(10, 2.0)
    with pytest.raises(ValueError, match="grad_out must be a tensor of the output's shape"):
        A.ring_attention_distributed(q, q, q, 2, grad_out=torch.zeros(3))
