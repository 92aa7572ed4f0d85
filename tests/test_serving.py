"""`shared.serving` against references.

References: a contiguous `shared.models.KVCache` driven by `GPT.forward` (the paged cache's
logits, prefill and decode, for every positional encoding and for grouped-query attention);
`shared.generation.generate` on each prompt alone (the scheduler's tokens under both policies,
with and without preemption); closed forms for block counts, slots and the request stream.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from shared.generation import generate
from shared.models import GPT, GPTConfig
from shared.serving import (
    BlockAllocator,
    OutOfBlocksError,
    PagedKVCache,
    Request,
    paged_forward,
    poisson_requests,
    serve,
)

VOCAB = 29


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(seed: int = 0, **overrides: object) -> GPT:
    settings: dict = dict(vocab_size=VOCAB, block_size=64, n_layer=2, n_head=4, d_model=32)
    settings.update(overrides)
    torch.manual_seed(seed)
    return GPT(GPTConfig(**settings)).eval()


def fake_timer(step: float = 0.01):
    """A clock that advances by ``step`` seconds per reading: deterministic step durations."""
    ticks = itertools.count()
    return lambda: next(ticks) * step


def random_prompts(lengths: list[int], seed: int = 0) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB, (n,), generator=gen).tolist() for n in lengths]


# --- blocks ---------------------------------------------------------------------------------------


def test_block_allocator_free_list_and_errors() -> None:
    allocator = BlockAllocator(3)
    assert [allocator.allocate() for _ in range(3)] == [0, 1, 2]
    assert allocator.num_free == 0 and allocator.num_used == 3
    with pytest.raises(OutOfBlocksError):
        allocator.allocate()
    allocator.free(1)
    with pytest.raises(ValueError, match="not allocated"):
        allocator.free(1)  # double free
    with pytest.raises(ValueError, match="not allocated"):
        allocator.free(7)
    assert allocator.allocate() == 1
    with pytest.raises(ValueError, match="> 0"):
        BlockAllocator(0)
    with pytest.raises(TypeError):
        BlockAllocator(2.5)  # type: ignore[arg-type]


def test_paged_cache_slots_follow_block_tables() -> None:
    cache = PagedKVCache(1, 1, 2, num_blocks=6, block_size=4)
    cache.add_sequence("a")
    cache.add_sequence("b")
    assert cache.append("a", 3).tolist() == [0, 1, 2]  # block 0
    assert cache.append("b", 5).tolist() == [4, 5, 6, 7, 8]  # blocks 1, 2
    assert cache.append("a", 3).tolist() == [3, 12, 13]  # fills block 0, then block 3
    assert cache.block_table("a") == [0, 3] and cache.block_table("b") == [1, 2]
    # The closed form: slot = table[p // block_size] * block_size + p % block_size.
    for seq in ("a", "b"):
        table = cache.block_table(seq)
        expected = [table[p // 4] * 4 + p % 4 for p in range(cache.length(seq))]
        assert cache.slots(seq).tolist() == expected
    assert cache.num_cached_tokens == 11 and cache.num_reserved_slots == 16
    assert cache.blocks_needed("a", 2) == 0 and cache.blocks_needed("a", 3) == 1
    cache.free_sequence("b")
    assert cache.num_free_blocks == 4 and cache.sequences == ["a"]
    cache.add_sequence("c")
    assert cache.block_table("c") == []
    assert cache.append("c", 1).tolist() == [16]  # FIFO free list: block 4 is older than 1, 2


def test_paged_cache_bad_input_and_atomic_failure() -> None:
    cache = PagedKVCache(1, 1, 2, num_blocks=2, block_size=4)
    cache.add_sequence(0)
    with pytest.raises(ValueError, match="already"):
        cache.add_sequence(0)
    with pytest.raises(ValueError, match="unknown sequence"):
        cache.length(1)
    with pytest.raises(ValueError, match="n_tokens"):
        cache.blocks_needed(0, -1)
    with pytest.raises(OutOfBlocksError):
        cache.append(0, 9)
    assert cache.length(0) == 0 and cache.num_free_blocks == 2  # nothing was taken
    slots = cache.append(0, 2)
    with pytest.raises(ValueError, match="expected slots"):
        cache.write(0, slots, torch.zeros(2, 1, 3), torch.zeros(2, 1, 3))
    k, v = torch.randn(2, 1, 2), torch.randn(2, 1, 2)
    cache.write(0, slots, k, v)
    got_k, got_v = cache.gather(0, cache.slots(0))
    assert torch.equal(got_k, k) and torch.equal(got_v, v)
    with pytest.raises(ValueError, match="block_size"):
        PagedKVCache(1, 1, 2, num_blocks=2, block_size=0)
    with pytest.raises(TypeError, match="GPT"):
        PagedKVCache.for_model(torch.nn.Linear(2, 2), 2, 2)  # type: ignore[arg-type]


def test_bytes_per_slot_matches_the_storage() -> None:
    model = tiny_model(n_kv_head=2)
    cache = PagedKVCache.for_model(model, num_blocks=3, block_size=5)
    total = cache.keys.numel() * 4 + cache.values.numel() * 4
    assert cache.bytes_per_slot() * 15 == total
    assert cache.bytes_per_slot() == 2 * 2 * 2 * 8 * 4  # K and V, layers, kv heads, head_dim, fp32


# --- the model runner against a contiguous KV cache -----------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"pos_encoding": "rope", "norm": "rmsnorm", "activation": "swiglu", "bias": False},
        {"pos_encoding": "alibi"},
        {"pos_encoding": "sinusoidal", "norm_position": "post"},
        {"n_kv_head": 2, "pos_encoding": "rope"},
        {"n_kv_head": 1},
    ],
    ids=["gpt2", "llama", "alibi", "sinusoidal-postnorm", "gqa", "mqa"],
)
def test_paged_forward_equals_contiguous_cache(overrides: dict) -> None:
    """Three sequences prefilled together, then decoded together with ragged chunk sizes, give
    the logits that each sequence gets alone from GPT.forward with a contiguous KVCache."""
    model = tiny_model(**overrides)
    prompts = random_prompts([5, 11, 1], seed=3)
    continuations = random_prompts([7, 7, 7], seed=4)
    chunks = [[1, 1, 1], [3, 1, 2], [1, 2, 1], [2, 3, 3]]  # tokens per sequence per step
    cache = PagedKVCache.for_model(model, num_blocks=12, block_size=4)
    for i in range(3):
        cache.add_sequence(i)
    contiguous = [model.new_cache(1, 40) for _ in range(3)]
    fed = [0, 0, 0]
    with torch.no_grad():
        paged = paged_forward(model, cache, [0, 1, 2], prompts)
        for i in range(3):
            ref = model(torch.tensor([prompts[i]]), cache=contiguous[i]).logits[0, -1]
            torch.testing.assert_close(paged[i], ref, atol=1e-5, rtol=1e-5)
        for step in chunks:
            feeds = [continuations[i][fed[i] : fed[i] + step[i]] for i in range(3)]
            paged = paged_forward(model, cache, [0, 1, 2], feeds)
            for i in range(3):
                ref = model(torch.tensor([feeds[i]]), cache=contiguous[i]).logits[0, -1]
                torch.testing.assert_close(paged[i], ref, atol=1e-5, rtol=1e-5)
                fed[i] += step[i]
    for i in range(3):
        assert cache.length(i) == len(prompts[i]) + fed[i]
        # The cached keys equal the contiguous cache's, position by position.
        k, _ = cache.gather(1, cache.slots(i))
        contiguous_k = contiguous[i].keys[1, 0, :, : contiguous[i].length].transpose(0, 1)
        torch.testing.assert_close(k, contiguous_k, atol=1e-6, rtol=1e-6)


def test_paged_forward_bad_input() -> None:
    model = tiny_model()
    cache = PagedKVCache.for_model(model, num_blocks=2, block_size=4)
    cache.add_sequence(0)
    with pytest.raises(ValueError, match="one list of new tokens"):
        paged_forward(model, cache, [0], [])
    with pytest.raises(ValueError, match="at least one"):
        paged_forward(model, cache, [0], [[]])
    with pytest.raises(ValueError, match="vocab_size"):
        paged_forward(model, cache, [0], [[VOCAB]])
    with pytest.raises(ValueError, match="unknown sequence"):
        paged_forward(model, cache, [5], [[1]])
    with pytest.raises(ValueError, match="distinct"):
        paged_forward(model, cache, [0, 0], [[1], [2]])
    with pytest.raises(OutOfBlocksError):
        paged_forward(model, cache, [0], [[1] * 9])
    assert cache.length(0) == 0 and cache.num_free_blocks == 2
    big = PagedKVCache.for_model(model, num_blocks=40, block_size=4)
    big.add_sequence(0)
    with pytest.raises(ValueError, match="block_size=64"):
        paged_forward(model, big, [0], [[1] * 65])
    other = PagedKVCache.for_model(tiny_model(n_layer=3), num_blocks=2, block_size=4)
    other.add_sequence(0)
    with pytest.raises(ValueError, match="for_model"):
        paged_forward(model, other, [0], [[1]])
    with pytest.raises(TypeError, match="PagedKVCache"):
        paged_forward(model, model.new_cache(1), [0], [[1]])  # type: ignore[arg-type]
    moe = tiny_model(moe_layers=(0,), moe={"num_experts": 2})
    with pytest.raises(ValueError, match="dense"):
        paged_forward(moe, PagedKVCache.for_model(moe, 2, 4), [0], [[1]])


# --- the scheduler against sequential generation ---------------------------------------------------


def sequential_tokens(model: GPT, requests: list[Request]) -> dict[int, list[int]]:
    out = {}
    for r in requests:
        idx = generate(model, torch.tensor([r.prompt]), r.max_new_tokens)
        out[r.request_id] = idx[0, len(r.prompt) :].tolist()
    return out


def small_stream(n: int = 10, rate: float = 20.0, seed: int = 0) -> list[Request]:
    corpus = torch.randint(0, VOCAB, (500,), generator=torch.Generator().manual_seed(seed))
    return poisson_requests(corpus, n, rate, prompt_len=(1, 12), output_len=(1, 20), seed=seed)


@pytest.mark.parametrize("policy", ["continuous", "static"])
def test_serve_tokens_equal_sequential_generation(policy: str) -> None:
    model = tiny_model(seed=1, n_kv_head=2, pos_encoding="rope")
    requests = small_stream()
    result = serve(model, requests, policy=policy, max_batch_size=4, num_blocks=64,
                   block_size=4, timer=fake_timer())
    reference = sequential_tokens(model, requests)
    assert [r.request_id for r in result.requests] == list(range(len(requests)))
    for record in result.requests:
        assert record.tokens == reference[record.request_id]
    assert result.generated_tokens == sum(r.max_new_tokens for r in requests)
    assert max(s.n_running for s in result.steps) <= 4


def test_continuous_batching_preempts_and_still_matches() -> None:
    """A pool far too small for the batch forces preemption and recomputation; tokens are
    unchanged and the pool is never over-committed."""
    model = tiny_model(seed=2)
    requests = [
        Request(i, tuple(p), 24, arrival_time=0.0)
        for i, p in enumerate(random_prompts([6, 9, 3, 12, 5], seed=5))
    ]
    result = serve(model, requests, policy="continuous", max_batch_size=5, num_blocks=12,
                   block_size=4, timer=fake_timer())
    assert result.preemptions > 0
    reference = sequential_tokens(model, requests)
    for record in result.requests:
        assert record.tokens == reference[record.request_id]
    assert all(s.reserved_slots <= 12 * 4 for s in result.steps)
    assert all(s.cached_tokens <= s.reserved_slots for s in result.steps)


def test_continuous_batching_refills_slots_and_static_does_not() -> None:
    """Two short and one long request arrive first, a fourth a little later, batch size 3:
    continuous batching runs the fourth as soon as a short one finishes; static batching makes
    it wait for the long one."""
    model = tiny_model(seed=3)
    prompts = random_prompts([4, 4, 4, 4], seed=6)
    lengths = [2, 2, 30, 2]
    arrivals = [0.0, 0.0, 0.0, 0.005]
    requests = [Request(i, tuple(prompts[i]), lengths[i], arrivals[i]) for i in range(4)]
    kwargs = dict(max_batch_size=3, num_blocks=64, block_size=4)
    cont = serve(model, requests, policy="continuous", timer=fake_timer(), **kwargs)
    stat = serve(model, requests, policy="static", timer=fake_timer(), **kwargs)
    # Each step lasts 0.01 s on the fake clock (one reading before and one after).
    assert cont.requests[3].first_token_time == pytest.approx(0.03)  # joins at step 3
    assert stat.requests[3].first_token_time == pytest.approx(0.31)  # after the 30-token one
    assert stat.requests[3].ttft > cont.requests[3].ttft
    assert cont.makespan < stat.makespan
    assert cont.steps[2].running_ids == (2, 3)
    # Steps record their prefills and decodes.
    assert cont.steps[0].n_prefill_tokens == 12 and cont.steps[0].n_decode_tokens == 0
    assert cont.steps[1].n_prefill_tokens == 0 and cont.steps[1].n_decode_tokens == 3


def test_idle_server_jumps_to_next_arrival() -> None:
    model = tiny_model()
    requests = [Request(0, (1, 2), 2, 0.0), Request(1, (3,), 1, 5.0)]
    result = serve(model, requests, block_size=4, num_blocks=4, timer=fake_timer())
    assert result.requests[0].finish_time == pytest.approx(0.02)
    assert result.requests[1].first_token_time == pytest.approx(5.01)
    assert result.makespan == pytest.approx(5.01)
    assert result.busy_time == pytest.approx(0.03)
    assert result.throughput == pytest.approx(3 / 5.01)


def test_serving_result_percentiles_and_summary() -> None:
    model = tiny_model()
    requests = small_stream(n=6)
    result = serve(model, requests, max_batch_size=2, num_blocks=32, block_size=4,
                   timer=fake_timer())
    ttfts = torch.tensor([r.ttft for r in result.requests], dtype=torch.float64)
    p = result.percentiles("ttft", (0, 50, 100))
    assert p[0] == pytest.approx(float(ttfts.min())) and p[100] == pytest.approx(float(ttfts.max()))
    assert p[50] == pytest.approx(float(ttfts.median()) if len(ttfts) % 2 else
                                  float(ttfts.sort().values[2:4].mean()))
    summary = result.summary()
    assert summary["throughput_tok_s"] == pytest.approx(result.throughput)
    assert summary["e2e_p99_s"] >= summary["e2e_p50_s"] >= summary["ttft_p50_s"] > 0
    with pytest.raises(ValueError, match="metric"):
        result.percentiles("tpot")
    with pytest.raises(ValueError, match="percentiles"):
        result.percentiles("e2e", (101,))


def test_serve_bad_input() -> None:
    model = tiny_model()
    ok = [Request(0, (1, 2), 3)]
    with pytest.raises(ValueError, match="policy"):
        serve(model, ok, policy="fifo")
    with pytest.raises(ValueError, match="empty"):
        serve(model, [])
    with pytest.raises(ValueError, match="distinct"):
        serve(model, ok * 2)
    with pytest.raises(ValueError, match="block_size=64"):
        serve(model, [Request(0, (1,) * 60, 10)])
    with pytest.raises(ValueError, match="blocks"):
        serve(model, [Request(0, (1,) * 20, 10)], num_blocks=2, block_size=4)
    with pytest.raises(ValueError, match="vocab_size"):
        serve(model, [Request(0, (VOCAB,), 1)])
    with pytest.raises(TypeError, match="Request"):
        serve(model, [(0, (1,), 1)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="max_batch_size"):
        serve(model, ok, max_batch_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="GPT"):
        serve(torch.nn.Linear(1, 1), ok)  # type: ignore[arg-type]


# --- the request stream -----------------------------------------------------------------------------


def test_poisson_requests_distributions() -> None:
    corpus = torch.arange(1000) % VOCAB
    requests = poisson_requests(corpus, 4000, 50.0, prompt_len=(3, 9), output_len=(4, 64), seed=1)
    arrivals = torch.tensor([r.arrival_time for r in requests], dtype=torch.float64)
    gaps = torch.diff(arrivals, prepend=torch.zeros(1, dtype=torch.float64))
    assert bool((gaps > 0).all())
    assert float(gaps.mean()) == pytest.approx(1 / 50, rel=0.05)  # exponential gaps, mean 1/rate
    assert float(gaps.std()) == pytest.approx(1 / 50, rel=0.08)  # exponential: std = mean
    prompt_lens = [len(r.prompt) for r in requests]
    assert min(prompt_lens) == 3 and max(prompt_lens) == 9
    outputs = torch.tensor([r.max_new_tokens for r in requests], dtype=torch.float64)
    assert outputs.min() >= 4 and outputs.max() <= 64
    # Log-uniform: the median is the geometric mean of the bounds, sqrt(4 * 64) = 16.
    assert float(outputs.median()) == pytest.approx(16, rel=0.1)
    # Prompts are windows of the corpus.
    for r in requests[:50]:
        start = r.prompt[0]
        assert list(r.prompt) == [(start + j) % VOCAB for j in range(len(r.prompt))]
    again = poisson_requests(corpus, 4000, 50.0, prompt_len=(3, 9), output_len=(4, 64), seed=1)
    assert again == requests


def test_poisson_requests_and_request_bad_input() -> None:
    corpus = list(range(20))
    with pytest.raises(ValueError, match="rate_per_s"):
        poisson_requests(corpus, 3, 0.0, prompt_len=(1, 2), output_len=(1, 2))
    with pytest.raises(ValueError, match="prompt_len"):
        poisson_requests(corpus, 3, 1.0, prompt_len=(3, 2), output_len=(1, 2))
    with pytest.raises(ValueError, match="output_len"):
        poisson_requests(corpus, 3, 1.0, prompt_len=(1, 2), output_len=(0, 2))
    with pytest.raises(ValueError, match="longest prompt"):
        poisson_requests(corpus, 3, 1.0, prompt_len=(1, 20), output_len=(1, 2))
    with pytest.raises(ValueError, match="n_requests"):
        poisson_requests(corpus, 0, 1.0, prompt_len=(1, 2), output_len=(1, 2))
    with pytest.raises(ValueError, match="prompt"):
        Request(0, (), 3)
    with pytest.raises(ValueError, match="arrival_time"):
        Request(0, (1,), 3, arrival_time=math.inf)
    with pytest.raises(ValueError, match="max_new_tokens"):
        Request(0, (1,), 0)
