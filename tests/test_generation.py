"""`shared.generation`: decoding against references.

References: a plain argmax loop over full forward passes (greedy), sorting-based top-k/top-p,
exhaustive search over every continuation (beam search), the target model's greedy tokens and
its exact sampling distribution (speculative decoding, with a chi-square test that rejects a
broken "always accept" variant).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chi2

from shared import generation
from shared.generation import (
    beam_search,
    generate,
    generate_with_trace,
    next_token_probs,
    speculative_accept,
    speculative_generate,
)
from shared.models import GPT, GPTConfig

VOCAB = 37


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and then do not fight other jobs for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0, **overrides: object) -> GPT:
    settings: dict = dict(vocab_size=VOCAB, block_size=48, n_layer=2, n_head=4, d_model=32)
    settings.update(overrides)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**settings)).eval()
    if not model.config.tie_embeddings:
        with torch.no_grad():  # sharper distributions than the near-uniform initial ones
            model.lm_head.weight.mul_(8.0)
    return model


def prompt(batch: int = 1, length: int = 5, seed: int = 1, vocab: int = VOCAB) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def greedy_reference(model: GPT, idx: torch.Tensor, n: int) -> torch.Tensor:
    """Full forward pass each step, argmax of the last position: the definition of greedy."""
    with torch.no_grad():
        for _ in range(n):
            logits = model(idx[:, -model.config.block_size :]).logits[:, -1]
            idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
    return idx


# --- the sampling distribution -------------------------------------------------------------------


def test_next_token_probs_against_references() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 9) * 2
    torch.testing.assert_close(next_token_probs(logits), torch.softmax(logits, -1))
    torch.testing.assert_close(
        next_token_probs(logits, temperature=0.5), torch.softmax(logits / 0.5, -1)
    )
    greedy = next_token_probs(logits, temperature=0)
    assert torch.equal(greedy, F.one_hot(logits.argmax(-1), 9).float())
    for row, probs in zip(logits, next_token_probs(logits, top_k=3, temperature=0.7), strict=True):
        keep = row.argsort(descending=True)[:3]
        expected = torch.zeros(9)
        expected[keep] = torch.softmax(row[keep] / 0.7, -1)
        torch.testing.assert_close(probs, expected)
    for top_p in (0.05, 0.5, 0.9, 1.0):
        for row, probs in zip(logits, next_token_probs(logits, top_p=top_p), strict=True):
            full = torch.softmax(row, -1)
            order = full.argsort(descending=True)
            kept, mass = [], 0.0
            for token in order.tolist():  # add tokens until their mass reaches top_p
                kept.append(token)
                mass += full[token].item()
                if mass >= top_p:
                    break
            expected = torch.zeros(9)
            expected[kept] = full[kept] / full[kept].sum()
            torch.testing.assert_close(probs, expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(top_p=0.0), "top_p must be None or in \\(0, 1\\]"),
        (dict(top_p=1.5), "top_p must be"),
        (dict(temperature=-0.1), "temperature must be a finite number >= 0"),
        (dict(temperature=float("nan")), "temperature must be"),
        (dict(top_k=0), "top_k must be None or an int in \\[1, vocab_size=9\\]"),
        (dict(top_k=10), "top_k must be"),
    ],
)
def test_next_token_probs_rejects_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_token_probs(torch.zeros(9), **kwargs)


# --- greedy, sampling and the KV cache -----------------------------------------------------------


CACHE_CONFIGS = {
    "learned": dict(),
    "sinusoidal": dict(pos_encoding="sinusoidal"),
    "rope-gqa": dict(
        pos_encoding="rope", n_kv_head=2, norm="rmsnorm", activation="swiglu", bias=False
    ),
    "alibi-mqa": dict(pos_encoding="alibi", n_kv_head=1),
    "post-norm-manual": dict(norm_position="post", attention_impl="manual", tie_embeddings=False),
}


@pytest.mark.parametrize("name", list(CACHE_CONFIGS))
def test_cached_and_uncached_greedy_are_identical(name: str) -> None:
    model = tiny_model(**CACHE_CONFIGS[name])
    idx = prompt(batch=2, length=6)
    expected = greedy_reference(model, idx, 30)
    cached = generate(model, idx, 30, use_cache=True)
    uncached = generate(model, idx, 30, use_cache=False)
    assert torch.equal(cached, expected) and torch.equal(uncached, expected)
    # Logits: feeding one token at a time through the cache matches one full forward pass.
    with torch.no_grad():
        cache = model.new_cache(2)
        steps = [model(cached[:, :6], cache=cache).logits]
        steps += [model(cached[:, t : t + 1], cache=cache).logits for t in range(6, 36)]
        torch.testing.assert_close(torch.cat(steps, 1), model(cached).logits, rtol=0, atol=1e-5)


def test_generation_past_block_size_crops_the_context() -> None:
    model = tiny_model(block_size=16)
    idx = prompt(length=10)
    expected = greedy_reference(model, idx, 20)  # 30 tokens > block_size 16
    assert torch.equal(generate(model, idx, 20), expected)
    assert torch.equal(generate(model, idx, 20, use_cache=False), expected)
    long_prompt = prompt(length=20)
    assert torch.equal(generate(model, long_prompt, 3), greedy_reference(model, long_prompt, 3))


def test_sampling_is_seeded_and_respects_top_k() -> None:
    model = tiny_model()
    idx = prompt(batch=3)

    def sample(seed: int, **kwargs: object) -> torch.Tensor:
        return generate(
            model, idx, 20, do_sample=True, generator=torch.Generator().manual_seed(seed), **kwargs
        )

    assert torch.equal(sample(0), sample(0))
    assert not torch.equal(sample(0), sample(1))
    assert torch.equal(sample(0, top_k=1), generate(model, idx, 20))
    assert torch.equal(sample(0, temperature=0.0), generate(model, idx, 20))
    assert torch.equal(sample(0, top_p=1e-6), generate(model, idx, 20))
    # Cached and uncached sampling draw the same tokens from the same generator state.
    assert torch.equal(
        sample(3, temperature=0.8, top_p=0.9),
        sample(3, temperature=0.8, top_p=0.9, use_cache=False),
    )


def test_sampling_frequencies_follow_the_distribution() -> None:
    model = tiny_model(vocab_size=5)
    idx = prompt(length=3, vocab=5).expand(4000, 3)
    with torch.no_grad():
        probs = next_token_probs(model(idx[:1]).logits[0, -1], temperature=1.5, top_k=4)
    first = generate(
        model,
        idx,
        1,
        do_sample=True,
        temperature=1.5,
        top_k=4,
        generator=torch.Generator().manual_seed(0),
    )
    counts = torch.bincount(first[:, -1], minlength=5).float()
    assert counts[probs == 0].sum() == 0  # the token outside the top 4 never appears
    kept = probs > 0
    statistic = ((counts[kept] - 4000 * probs[kept]) ** 2 / (4000 * probs[kept])).sum().item()
    assert statistic < chi2.ppf(1 - 1e-4, df=int(kept.sum()) - 1)


def test_eos_stops_and_pads() -> None:
    model = tiny_model(tie_embeddings=False)
    idx = prompt(batch=2)
    free = generate(model, idx, 12)
    eos = int(free[0, 8])  # a token the first row emits at its 4th step
    out = generate(model, idx, 12, eos_token_id=eos)
    for row, free_row in zip(out, free, strict=True):
        new, free_new = row[5:], free_row[5:]
        hits = (free_new == eos).nonzero()
        if len(hits):
            stop = int(hits[0]) + 1
            assert torch.equal(new[:stop], free_new[:stop]) and bool((new[stop:] == eos).all())
        else:
            assert torch.equal(new, free_new[: len(new)])
    if not bool((free[:, 5:] == eos).any(dim=1).all()):
        assert out.shape[1] == 17
    single = generate(model, idx[:1], 12, eos_token_id=eos)
    first = int((free[0, 5:] == eos).nonzero()[0]) + 6
    assert torch.equal(single, free[:1, :first])  # stops as soon as every row is done


def test_generate_rejects_bad_input() -> None:
    model = tiny_model()
    idx = prompt()
    with pytest.raises(ValueError, match="only apply when do_sample=True"):
        generate(model, idx, 5, temperature=0.7)
    with pytest.raises(ValueError, match="top_p must be None or in \\(0, 1\\]"):
        generate(model, idx, 5, do_sample=True, top_p=0)
    with pytest.raises(ValueError, match="top_k must be None or an int in \\[1, vocab_size=37\\]"):
        generate(model, idx, 5, do_sample=True, top_k=38)
    with pytest.raises(ValueError, match="temperature must be"):
        generate(model, idx, 5, do_sample=True, temperature=-1)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 0"):
        generate(model, idx, -1)
    with pytest.raises(ValueError, match="integer tensor of shape \\(B, T\\)"):
        generate(model, idx.float(), 5)
    with pytest.raises(ValueError, match="token ids in \\[0, vocab_size=37\\)"):
        generate(model, idx + VOCAB, 5)
    with pytest.raises(ValueError, match="eos_token_id must be None or an int in \\[0, 37\\)"):
        generate(model, idx, 5, eos_token_id=37)
    with pytest.raises(TypeError, match="model must be a shared.models.GPT"):
        generate(torch.nn.Linear(2, 2), idx, 5)
    assert torch.equal(generate(model, idx, 0), idx)


def test_generate_restores_training_mode() -> None:
    model = tiny_model(dropout=0.5).train()
    out = generate(model, prompt(), 10)
    assert model.training
    assert torch.equal(out, greedy_reference(model.eval(), prompt(), 10))  # dropout was off


def test_generate_with_trace() -> None:
    model = tiny_model()
    idx = prompt()
    trace = generate_with_trace(model, idx, 6, top=4)
    assert torch.equal(trace.tokens, generate(model, idx, 6))
    assert len(trace.steps) == 6
    with torch.no_grad():
        all_probs = torch.softmax(model(trace.tokens).logits[0], -1)
    for step in trace.steps:
        probs = all_probs[step.position - 1]
        assert step.token == int(trace.tokens[0, step.position])
        assert (
            step.top_tokens == probs.topk(4).indices.tolist() and step.top_tokens[0] == step.token
        )
        assert step.top_probs == pytest.approx(probs.topk(4).values.tolist(), abs=1e-5)
        assert step.prob == pytest.approx(probs[step.token].item(), abs=1e-5)
    sampled = generate_with_trace(
        model, idx, 6, do_sample=True, top_k=3, generator=torch.Generator().manual_seed(0)
    )
    assert all(len([p for p in s.top_probs if p > 0]) <= 3 for s in sampled.steps)
    assert all(sum(s.top_probs) == pytest.approx(1.0, abs=1e-5) for s in sampled.steps)
    with pytest.raises(ValueError, match="idx must have shape \\(1, T\\)"):
        generate_with_trace(model, prompt(batch=2), 3)


# --- beam search ---------------------------------------------------------------------------------


def exhaustive_best(
    model: GPT, idx: torch.Tensor, depth: int, length_penalty: float, eos: int | None
) -> tuple[float, list[int]]:
    """Score every possible continuation of up to ``depth`` tokens and return the best."""
    vocab = model.config.vocab_size
    best: tuple[float, list[int]] = (float("-inf"), [])
    with torch.no_grad():
        for n in range(1, depth + 1):
            for continuation in itertools.product(range(vocab), repeat=n):
                ends_early = n < depth
                if eos is not None and (
                    eos in continuation[:-1] or (ends_early and continuation[-1] != eos)
                ):
                    continue
                if eos is None and ends_early:
                    continue
                seq = torch.cat([idx[0], torch.tensor(continuation)])
                logp = F.log_softmax(model(seq[None]).logits[0, -n - 1 : -1], -1)
                total = logp[torch.arange(n), torch.tensor(continuation)].sum().item()
                score = total / n**length_penalty
                if score > best[0]:
                    best = (score, seq.tolist())
    return best


@pytest.mark.parametrize(("length_penalty", "eos"), [(1.0, None), (0.0, 1), (1.0, 1), (2.0, 2)])
def test_beam_search_is_exact_when_exhaustive(length_penalty: float, eos: int | None) -> None:
    model = tiny_model(vocab_size=3, n_layer=1)
    idx = prompt(length=2, vocab=3)
    score, best = exhaustive_best(model, idx, 3, length_penalty, eos)
    result = beam_search(
        model, idx, 3, num_beams=27, length_penalty=length_penalty, eos_token_id=eos
    )
    assert result.tokens[0].tolist() == best
    assert result.score == pytest.approx(score, abs=1e-5)
    assert [h[0] for h in result.hypotheses] == sorted(
        (h[0] for h in result.hypotheses), reverse=True
    )
    uncached = beam_search(
        model,
        idx,
        3,
        num_beams=27,
        length_penalty=length_penalty,
        eos_token_id=eos,
        use_cache=False,
    )
    assert torch.equal(uncached.tokens, result.tokens)


def test_beam_search_with_one_beam_is_greedy_and_wider_beams_score_higher() -> None:
    model = tiny_model()
    idx = prompt()
    one = beam_search(model, idx, 8, num_beams=1)
    assert torch.equal(one.tokens, generate(model, idx, 8))
    assert beam_search(model, idx, 8, num_beams=6).score >= one.score - 1e-6
    with pytest.raises(ValueError, match="num_beams must be an int >= 1"):
        beam_search(model, idx, 8, num_beams=0)
    with pytest.raises(ValueError, match="exceeds block_size=48"):
        beam_search(model, idx, 44, num_beams=2)
    with pytest.raises(ValueError, match="length_penalty must be a finite number"):
        beam_search(model, idx, 4, num_beams=2, length_penalty=float("inf"))
    with pytest.raises(ValueError, match="shape \\(1, T\\)"):
        beam_search(model, prompt(batch=2), 4, num_beams=2)


# --- speculative decoding ------------------------------------------------------------------------


@pytest.mark.parametrize("num_draft_tokens", [1, 3, 6])
def test_speculative_greedy_equals_target_greedy(num_draft_tokens: int) -> None:
    target = tiny_model(seed=0, pos_encoding="rope", n_kv_head=2)
    draft = tiny_model(seed=1, n_layer=1, n_head=2, d_model=16)
    idx = prompt()
    result = speculative_generate(
        target, draft, idx, 25, num_draft_tokens=num_draft_tokens, temperature=0
    )
    assert torch.equal(result.tokens, generate(target, idx, 25))
    assert result.new_tokens == 25 and 0 <= result.accepted <= result.proposed
    # Every round adds the accepted drafts plus one target token.
    assert result.new_tokens == result.accepted + result.target_calls
    self_draft = speculative_generate(
        target, target, idx, 25, num_draft_tokens=num_draft_tokens, temperature=0
    )
    assert self_draft.acceptance_rate == 1.0 and torch.equal(self_draft.tokens, result.tokens)
    assert self_draft.target_calls == -(
        -25 // (num_draft_tokens + 1)
    )  # ceil: k + 1 tokens per call


def always_accept(target_probs, draft_probs, draft_tokens, generator=None):
    """A broken acceptance rule: keep every draft token, then draw the bonus token."""
    k = draft_tokens.shape[0]
    return k, int(torch.multinomial(target_probs[k], 1, generator=generator))


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    """Pearson's statistic, with cells expected below 5 pooled; returns (statistic, dof)."""
    expected = counts.sum() * probs
    small = expected < 5
    observed = torch.cat([counts[~small], counts[small].sum()[None]])
    expected = torch.cat([expected[~small], expected[small].sum()[None]])
    keep = expected > 0
    return ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum().item(), int(
        keep.sum()
    ) - 1


def test_speculative_accept_gives_the_target_distribution() -> None:
    """One position (k=1): the output token must be distributed as p, whatever q is."""
    gen = torch.Generator().manual_seed(0)
    p = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]])
    q = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    n = 6000
    for rule, should_pass in ((speculative_accept, True), (always_accept, False)):
        counts = torch.zeros(4)
        for _ in range(n):
            draft_token = torch.multinomial(q[0], 1, generator=gen)
            accepted, token = rule(p, q, draft_token, gen)
            counts[int(draft_token) if accepted else token] += 1
        statistic, dof = chi_square(counts, p[0])
        assert (statistic < chi2.ppf(1 - 1e-4, dof)) == should_pass, (rule.__name__, statistic)
    with pytest.raises(ValueError, match="expected target_probs \\(k\\+1, V\\)"):
        speculative_accept(p, q, torch.tensor([0, 1]))


def test_speculative_sampling_matches_target_distribution(monkeypatch) -> None:
    """End to end: the joint distribution of the first 3 tokens equals the target's; the same
    test rejects the "always accept" rule, which samples mostly from the draft."""
    target = tiny_model(seed=0, vocab_size=3, n_layer=1, tie_embeddings=False)
    draft = tiny_model(seed=5, vocab_size=3, n_layer=1, n_head=2, d_model=16, tie_embeddings=False)
    idx = prompt(length=2, vocab=3)
    sequences = list(itertools.product(range(3), repeat=3))
    with torch.no_grad():
        exact = []
        for seq in sequences:
            full = torch.cat([idx[0], torch.tensor(seq)])[None]
            probs = torch.softmax(target(full).logits[0, 1:4] / 0.9, -1)
            exact.append(probs[torch.arange(3), torch.tensor(seq)].prod())
        exact = torch.stack(exact)
    assert exact.sum().item() == pytest.approx(1.0, abs=1e-5)

    def empirical(n: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(0)
        counts = torch.zeros(len(sequences))
        for _ in range(n):
            out = speculative_generate(
                target, draft, idx, 3, num_draft_tokens=2, temperature=0.9, generator=gen
            )
            counts[sequences.index(tuple(out.tokens[0, 2:].tolist()))] += 1
        return counts

    statistic, dof = chi_square(empirical(800), exact)
    assert statistic < chi2.ppf(1 - 1e-4, dof), statistic
    monkeypatch.setattr(generation, "speculative_accept", always_accept)
    statistic, dof = chi_square(empirical(800), exact)
    assert statistic > chi2.ppf(1 - 1e-4, dof), statistic


def test_speculative_rejects_bad_input() -> None:
    target = tiny_model()
    with pytest.raises(ValueError, match="share a vocabulary"):
        speculative_generate(target, tiny_model(vocab_size=40), prompt(), 5)
    with pytest.raises(ValueError, match="shape \\(1, T\\)"):
        speculative_generate(target, target, prompt(batch=2), 5)
    with pytest.raises(ValueError, match="exceeds the block size 48"):
        speculative_generate(target, target, prompt(), 44)
    with pytest.raises(ValueError, match="num_draft_tokens must be an int >= 1"):
        speculative_generate(target, target, prompt(), 5, num_draft_tokens=0)
    with pytest.raises(ValueError, match="temperature must be"):
        speculative_generate(target, target, prompt(), 5, temperature=-1.0)
    with pytest.raises(TypeError, match="draft must be a shared.models.GPT"):
        speculative_generate(target, None, prompt(), 5)


def test_speculative_stops_at_eos() -> None:
    target = tiny_model()
    idx = prompt()
    free = generate(target, idx, 10)
    eos = int(free[0, 8])
    first = int((free[0, 5:] == eos).nonzero()[0]) + 6
    out = speculative_generate(target, tiny_model(seed=3), idx, 10, temperature=0, eos_token_id=eos)
    assert torch.equal(out.tokens, free[:, :first])
