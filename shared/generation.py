"""`shared.generation`: turning a language model's next-token logits into text.

- `next_token_probs`: the sampling distribution after temperature, top-k and top-p (nucleus).
- `generate`: greedy decoding or sampling, with or without a KV cache (identical tokens either way).
- `generate_with_trace`: the same, recording the top candidates and their probabilities per step.
- `beam_search`: beam search with a length penalty and an exact stopping rule.
- `speculative_generate`: speculative sampling with a draft model (Leviathan et al., 2023;
  Chen et al., 2023), which keeps the target model's output distribution exactly.

The models are `shared.models.GPT` instances (anything with its ``forward(idx, cache=...,
logits_to_keep=...)``, ``new_cache`` and ``config``). Each function runs the model under
``torch.no_grad()`` in eval mode and restores the mode it found.

Used in: modules/01-introduction/01-overview, modules/05-pretraining/02-next-token-prediction,
modules/11-inference-optimization (kv-cache, decoding-strategies, speculative-decoding),
modules/20-advanced-topics/07-inference-engines.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from shared.models import GPT, KVCache, _describe, _is_integer_tensor

__all__ = [
    "BeamSearchResult",
    "GenerationTrace",
    "KVCache",
    "SpeculativeResult",
    "TraceStep",
    "beam_search",
    "generate",
    "generate_with_trace",
    "next_token_probs",
    "speculative_accept",
    "speculative_generate",
]


# --- the sampling distribution -------------------------------------------------------------------


def _check_sampling(
    temperature: float, top_k: int | None, top_p: float | None, vocab_size: int
) -> None:
    if (
        not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise ValueError(
            f"temperature must be a finite number >= 0 (0 means greedy), got {temperature!r}"
        )
    if top_k is not None and (not isinstance(top_k, int) or not 1 <= top_k <= vocab_size):
        raise ValueError(
            f"top_k must be None or an int in [1, vocab_size={vocab_size}], got {top_k!r}"
        )
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p!r}")


def next_token_probs(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """The distribution to sample the next token from, for logits of shape ``(..., vocab)``.

    In order: divide by ``temperature`` (0 gives the one-hot of the argmax, i.e. greedy), keep
    the ``top_k`` largest logits (ties with the k-th are kept), then keep the smallest set of
    most likely tokens whose probability reaches ``top_p`` (Holtzman et al., 2020), renormalise.

    Used in: modules/00-foundations/02-probability,
    modules/11-inference-optimization/decoding-strategies, and `generate`, `speculative_generate`.
    """
    if (
        not isinstance(logits, torch.Tensor)
        or logits.ndim < 1
        or not logits.dtype.is_floating_point
    ):
        raise ValueError("logits must be a floating-point tensor of shape (..., vocab_size)")
    _check_sampling(temperature, top_k, top_p, logits.shape[-1])
    logits = logits.float()
    if temperature == 0:
        return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).float()
    logits = logits / temperature
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Drop a token when the tokens ranked above it already hold top_p of the mass.
        drop_sorted = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


# --- shared plumbing -----------------------------------------------------------------------------


@contextlib.contextmanager
def _inference(*models: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the duration; the models' previous modes are restored."""
    modes = [m.training for m in models]
    try:
        for m in models:
            m.eval()
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(models, modes, strict=True):
            m.train(mode)


def _check_model(model: object, name: str = "model") -> None:
    if not isinstance(model, GPT):
        raise TypeError(f"{name} must be a shared.models.GPT, got {type(model).__name__}")


def _check_prompt(idx: object, model: GPT, batch_one: bool = False) -> None:
    if not _is_integer_tensor(idx) or idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError(
            f"idx must be an integer tensor of shape (B, T) with T >= 1, got {_describe(idx)}"
        )
    if batch_one and idx.shape[0] != 1:
        raise ValueError(
            f"this decoder takes one prompt: idx must have shape (1, T), got {tuple(idx.shape)}"
        )
    if bool(((idx < 0) | (idx >= model.config.vocab_size)).any()):
        raise ValueError(f"idx must hold token ids in [0, vocab_size={model.config.vocab_size})")


def _check_count(value: object, name: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_eos(eos_token_id: int | None, vocab_size: int) -> None:
    if eos_token_id is not None and (
        not isinstance(eos_token_id, int) or not 0 <= eos_token_id < vocab_size
    ):
        raise ValueError(
            f"eos_token_id must be None or an int in [0, {vocab_size}), got {eos_token_id!r}"
        )


def _last_logits(model: GPT, idx: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
    """Logits ``(B, vocab)`` of the token after ``idx``: feed only the uncached tokens when the
    sequence fits the cache, otherwise re-encode the last ``block_size`` tokens (no cache)."""
    if cache is not None and idx.shape[1] <= cache.max_length:
        return model(idx[:, cache.length :], cache=cache, logits_to_keep=1).logits[:, -1]
    return model(idx[:, -model.config.block_size :], logits_to_keep=1).logits[:, -1]


def _decode(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    choose: Callable[[torch.Tensor], torch.Tensor],
    *,
    use_cache: bool,
    eos_token_id: int | None,
) -> torch.Tensor:
    """The decoding loop shared by `generate` and `generate_with_trace`."""
    batch, prompt_len = idx.shape
    capacity = min(prompt_len + max_new_tokens, model.config.block_size)
    cache = model.new_cache(batch, capacity) if use_cache and prompt_len <= capacity else None
    finished = torch.zeros(batch, dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        next_tokens = choose(_last_logits(model, idx, cache))
        if eos_token_id is not None:
            # Rows that already emitted eos keep emitting it (padding).
            next_tokens = next_tokens.masked_fill(finished, eos_token_id)
            finished |= next_tokens == eos_token_id
        idx = torch.cat((idx, next_tokens[:, None]), dim=1)
        if eos_token_id is not None and bool(finished.all()):
            break
    return idx


def _chooser(
    do_sample: bool,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
    vocab_size: int,
) -> Callable[[torch.Tensor], torch.Tensor]:
    if not do_sample:
        if temperature != 1.0 or top_k is not None or top_p is not None:
            raise ValueError(
                "temperature, top_k and top_p only apply when do_sample=True (greedy ignores them)"
            )
        return lambda logits: logits.argmax(dim=-1)
    _check_sampling(temperature, top_k, top_p, vocab_size)

    def sample(logits: torch.Tensor) -> torch.Tensor:
        probs = next_token_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    return sample


# --- greedy and sampling -------------------------------------------------------------------------


def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_cache: bool = True,
    eos_token_id: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend the prompts ``idx`` ``(B, T)`` by up to ``max_new_tokens`` tokens: ``(B, T + n)``.

    Greedy (the default, ``do_sample=False``) takes the most likely token. With ``do_sample=True``
    the next token is drawn from `next_token_probs` (``temperature``, ``top_k``, ``top_p``;
    temperature 0 is greedy), using ``generator`` (on the model's device) for reproducible draws.

    ``use_cache=True`` keeps past keys and values in a `KVCache`, so each step feeds one token;
    the tokens are identical to ``use_cache=False``, which re-encodes the whole sequence each step.
    A sequence longer than ``block_size`` is cropped to its last ``block_size`` tokens (and from
    then on re-encoded each step, cache or not). With ``eos_token_id``, a sequence that emitted it
    is padded with it, and generation stops when every sequence has.

    Used in: modules/01-introduction/01-overview, modules/05-pretraining/02-next-token-prediction,
    modules/11-inference-optimization/kv-cache,
    modules/11-inference-optimization/decoding-strategies.
    """
    _check_model(model)
    _check_prompt(idx, model)
    _check_count(max_new_tokens, "max_new_tokens", 0)
    _check_eos(eos_token_id, model.config.vocab_size)
    choose = _chooser(do_sample, temperature, top_k, top_p, generator, model.config.vocab_size)
    with _inference(model):
        return _decode(
            model, idx, max_new_tokens, choose, use_cache=use_cache, eos_token_id=eos_token_id
        )


@dataclass
class TraceStep:
    """One decoding step: the token chosen, its probability, and the top candidates.

    Used in: modules/01-introduction/01-overview.
    """

    position: int
    token: int
    prob: float
    top_tokens: list[int]
    top_probs: list[float]


@dataclass
class GenerationTrace:
    """The tokens `generate_with_trace` produced ``(1, T + n)`` and one `TraceStep` per new token.

    Used in: modules/01-introduction/01-overview.
    """

    tokens: torch.Tensor
    steps: list[TraceStep] = field(default_factory=list)


def generate_with_trace(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    top: int = 5,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id: int | None = None,
    generator: torch.Generator | None = None,
) -> GenerationTrace:
    """`generate` for one prompt ``(1, T)``, recording at each step the ``top`` most likely tokens.

    The probabilities are those the token was chosen from: `next_token_probs` when sampling, the
    model's plain softmax when greedy. The tokens equal `generate` with the same arguments.

    Used in: modules/01-introduction/01-overview,
    modules/11-inference-optimization/decoding-strategies.
    """
    _check_model(model)
    _check_prompt(idx, model, batch_one=True)
    _check_count(max_new_tokens, "max_new_tokens", 0)
    _check_count(top, "top", 1)
    _check_eos(eos_token_id, model.config.vocab_size)
    choose = _chooser(do_sample, temperature, top_k, top_p, generator, model.config.vocab_size)
    top = min(top, model.config.vocab_size)
    steps: list[TraceStep] = []

    def choose_and_record(logits: torch.Tensor) -> torch.Tensor:
        if do_sample:
            probs = next_token_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
        else:
            probs = torch.softmax(logits.float(), dim=-1)
        next_tokens = choose(logits)
        best = probs[0].topk(top)
        token = int(next_tokens[0])
        steps.append(
            TraceStep(
                position=idx.shape[1] + len(steps),
                token=token,
                prob=float(probs[0, token]),
                top_tokens=best.indices.tolist(),
                top_probs=best.values.tolist(),
            )
        )
        return next_tokens

    with _inference(model):
        tokens = _decode(
            model, idx, max_new_tokens, choose_and_record, use_cache=True, eos_token_id=eos_token_id
        )
    return GenerationTrace(tokens=tokens, steps=steps)


# --- beam search ---------------------------------------------------------------------------------


@dataclass
class BeamSearchResult:
    """The best sequence ``tokens`` ``(1, T + n)`` with its ``score``, and all finished
    ``hypotheses`` as ``(score, tokens)`` pairs, best first.

    Used in: modules/11-inference-optimization/decoding-strategies.
    """

    tokens: torch.Tensor
    score: float
    hypotheses: list[tuple[float, torch.Tensor]]


def beam_search(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    num_beams: int,
    *,
    length_penalty: float = 1.0,
    eos_token_id: int | None = None,
    use_cache: bool = True,
) -> BeamSearchResult:
    """Beam search from one prompt ``(1, T)``: keep the ``num_beams`` best partial sequences.

    A hypothesis of n new tokens with summed log-probability ``s`` scores ``s / n**length_penalty``
    (0: raw log-probability, which favours short outputs; 1: per-token average). It ends when it
    emits ``eos_token_id`` (only candidates ranked within the top ``num_beams`` are kept, as in
    Hugging Face) or reaches ``max_new_tokens``. The search stops early only when no live beam can
    still beat the ``num_beams`` best finished ones, so the stopping rule never changes the result.
    With ``num_beams >= vocab_size ** max_new_tokens`` the search is exhaustive.

    Used in: modules/11-inference-optimization/decoding-strategies.
    """
    _check_model(model)
    _check_prompt(idx, model, batch_one=True)
    _check_count(max_new_tokens, "max_new_tokens", 1)
    _check_count(num_beams, "num_beams", 1)
    _check_eos(eos_token_id, model.config.vocab_size)
    if not isinstance(length_penalty, (int, float)) or not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}")
    prompt_len = idx.shape[1]
    if prompt_len + max_new_tokens > model.config.block_size:
        raise ValueError(
            f"prompt ({prompt_len}) + max_new_tokens ({max_new_tokens}) exceeds "
            f"block_size={model.config.block_size}"
        )

    def normalised(total: float, n_new: int) -> float:
        return total / n_new**length_penalty

    beams = idx
    beam_scores = torch.zeros(1, device=idx.device)
    finished: list[tuple[float, torch.Tensor]] = []
    with _inference(model):
        cache = model.new_cache(1, prompt_len + max_new_tokens) if use_cache else None
        for step in range(1, max_new_tokens + 1):
            fed = beams[:, cache.length :] if cache is not None else beams
            logits = model(fed, cache=cache, logits_to_keep=1).logits[:, -1]
            vocab = logits.shape[-1]
            candidates = (beam_scores[:, None] + F.log_softmax(logits.float(), dim=-1)).view(-1)
            top_scores, top_index = candidates.topk(min(candidates.numel(), 2 * num_beams))
            keep_beams, keep_tokens, keep_scores = [], [], []
            ranked = zip(top_scores.tolist(), top_index.tolist(), strict=True)
            for rank, (score, index) in enumerate(ranked):
                beam, token = divmod(index, vocab)
                if token == eos_token_id:
                    if rank < num_beams:
                        hypothesis = torch.cat((beams[beam], beams.new_tensor([token])))
                        finished.append((normalised(score, step), hypothesis))
                    continue
                keep_beams.append(beam)
                keep_tokens.append(token)
                keep_scores.append(score)
                if len(keep_beams) == num_beams:
                    break
            finished = sorted(finished, key=lambda h: h[0], reverse=True)[:num_beams]
            if not keep_beams:
                break
            order = torch.tensor(keep_beams, device=idx.device)
            beams = torch.cat(
                (beams[order], torch.tensor(keep_tokens, device=idx.device)[:, None]), dim=1
            )
            beam_scores = torch.tensor(keep_scores, device=idx.device)
            if cache is not None:
                cache.reorder(order)
            if step == max_new_tokens:
                finished += [
                    (normalised(s, step), b) for s, b in zip(keep_scores, beams, strict=True)
                ]
                finished = sorted(finished, key=lambda h: h[0], reverse=True)[:num_beams]
            elif len(finished) == num_beams and finished[-1][0] >= _best_reachable(
                keep_scores[0], step, max_new_tokens, length_penalty
            ):
                break
    best_score, best = finished[0]
    return BeamSearchResult(tokens=best[None], score=best_score, hypotheses=finished)


def _best_reachable(total: float, step: int, max_new_tokens: int, length_penalty: float) -> float:
    """An upper bound on the final score of a live beam with summed log-probability ``total``
    after ``step`` tokens: later tokens only lower the sum, so the best case is to end at the
    length where dividing by ``n**length_penalty`` helps most."""
    lengths = (step + 1, max_new_tokens)
    return max(total / n**length_penalty for n in lengths)


# --- speculative decoding ------------------------------------------------------------------------


@dataclass
class SpeculativeResult:
    """Output of `speculative_generate`: ``tokens`` ``(1, T + n)`` and counters.

    ``proposed``/``accepted``: draft tokens offered and kept; ``target_calls``/``draft_calls``:
    forward passes of each model. ``acceptance_rate = accepted / proposed``;
    ``tokens_per_target_call`` is what the speed-up comes from (plain decoding gets 1).

    Used in: modules/11-inference-optimization/speculative-decoding.
    """

    tokens: torch.Tensor
    proposed: int
    accepted: int
    target_calls: int
    draft_calls: int
    new_tokens: int

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else float("nan")

    @property
    def tokens_per_target_call(self) -> float:
        return self.new_tokens / self.target_calls if self.target_calls else float("nan")


def speculative_accept(
    target_probs: torch.Tensor,
    draft_probs: torch.Tensor,
    draft_tokens: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[int, int]:
    """The acceptance rule of speculative sampling; returns ``(n_accepted, next_token)``.

    ``draft_tokens`` ``(k,)`` were drawn from ``draft_probs`` ``(k, V)`` (q); ``target_probs``
    ``(k + 1, V)`` (p) are the target's distributions at the same positions plus one. Draft token
    ``x_i`` is kept with probability ``min(1, p_i(x_i) / q_i(x_i))``; at the first rejection the
    replacement is drawn from ``max(0, p_i - q_i)`` renormalised, and if all k are kept a bonus
    token is drawn from ``p_{k+1}``. Every token produced is then distributed exactly as p.

    Used in: modules/11-inference-optimization/speculative-decoding.
    """
    k = draft_tokens.shape[0]
    if (
        target_probs.shape[0] != k + 1
        or draft_probs.shape[0] != k
        or target_probs.shape[1:] != draft_probs.shape[1:]
    ):
        raise ValueError(
            f"expected target_probs (k+1, V), draft_probs (k, V) and draft_tokens (k,), got "
            f"{tuple(target_probs.shape)}, {tuple(draft_probs.shape)}, {tuple(draft_tokens.shape)}"
        )
    for i, token in enumerate(draft_tokens.tolist()):
        p, q = target_probs[i, token], draft_probs[i, token]
        if torch.rand((), generator=generator, device=target_probs.device) * q < p:
            continue
        residual = (target_probs[i] - draft_probs[i]).clamp(min=0)
        # A rejection implies p_i(x) < q_i(x), hence some mass where p_i > q_i; round-off aside.
        residual = residual if float(residual.sum()) > 0 else target_probs[i]
        return i, int(torch.multinomial(residual, 1, generator=generator))
    return k, int(torch.multinomial(target_probs[k], 1, generator=generator))


def speculative_generate(
    target: GPT,
    draft: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    num_draft_tokens: int = 4,
    temperature: float = 1.0,
    eos_token_id: int | None = None,
    generator: torch.Generator | None = None,
) -> SpeculativeResult:
    """Speculative sampling (Leviathan et al., 2023; Chen et al., 2023) from one prompt ``(1, T)``.

    Each round the small ``draft`` model proposes ``num_draft_tokens`` tokens one by one; the
    ``target`` scores them all in one forward pass, and `speculative_accept` keeps a prefix and
    adds one token of its own. The output is distributed exactly as sampling from the target at
    ``temperature`` (with temperature 0: exactly the target's greedy tokens), while the target
    runs once per round instead of once per token. Both models keep a `KVCache`, cropped back
    after rejections. The two models must share the vocabulary; the prompt plus
    ``max_new_tokens`` must fit both block sizes.

    Used in: modules/11-inference-optimization/speculative-decoding.
    """
    _check_model(target, "target")
    _check_model(draft, "draft")
    if target.config.vocab_size != draft.config.vocab_size:
        raise ValueError(
            "target and draft must share a vocabulary, got sizes "
            f"{target.config.vocab_size} and {draft.config.vocab_size}"
        )
    _check_prompt(idx, target, batch_one=True)
    _check_count(max_new_tokens, "max_new_tokens", 1)
    _check_count(num_draft_tokens, "num_draft_tokens", 1)
    _check_sampling(temperature, None, None, target.config.vocab_size)
    _check_eos(eos_token_id, target.config.vocab_size)
    total = idx.shape[1] + max_new_tokens
    limit = min(target.config.block_size, draft.config.block_size)
    if total > limit:
        raise ValueError(
            f"prompt ({idx.shape[1]}) + max_new_tokens ({max_new_tokens}) exceeds "
            f"the block size {limit}"
        )

    seq = idx
    proposed = accepted = target_calls = draft_calls = 0
    with _inference(target, draft):
        target_cache, draft_cache = target.new_cache(1, total), draft.new_cache(1, total)
        # Invariant: neither cache holds the last token of seq, so every forward below has at
        # least one new token, and the target's k + 1 logits cover all draft positions.
        while seq.shape[1] < total:
            # Never propose more than the tokens still wanted, minus the one the target adds.
            k = min(num_draft_tokens, total - seq.shape[1] - 1)
            candidate, draft_probs = seq, []
            for _ in range(k):
                logits = draft(
                    candidate[:, draft_cache.length :], cache=draft_cache, logits_to_keep=1
                ).logits[0, -1]
                draft_calls += 1
                q = next_token_probs(logits, temperature=temperature)
                draft_probs.append(q)
                token = torch.multinomial(q, 1, generator=generator)
                candidate = torch.cat((candidate, token[None]), dim=1)
            logits = target(
                candidate[:, target_cache.length :], cache=target_cache, logits_to_keep=k + 1
            ).logits[0]
            target_calls += 1
            target_probs = next_token_probs(logits, temperature=temperature)
            draft_tokens = candidate[0, seq.shape[1] :]
            q_stack = torch.stack(draft_probs) if draft_probs else target_probs[:0]
            n_accepted, next_token = speculative_accept(
                target_probs, q_stack, draft_tokens, generator
            )
            proposed += k
            accepted += n_accepted
            new = torch.cat((draft_tokens[:n_accepted], draft_tokens.new_tensor([next_token])))
            kept = seq.shape[1] + n_accepted  # positions whose keys/values are still valid
            target_cache.crop(kept)
            draft_cache.crop(min(draft_cache.length, kept))
            seq = torch.cat((seq, new[None]), dim=1)
            if eos_token_id is not None and bool((new == eos_token_id).any()):
                end = seq.shape[1] - new.shape[0] + int((new == eos_token_id).nonzero()[0]) + 1
                seq = seq[:, :end]
                break
    return SpeculativeResult(
        tokens=seq,
        proposed=proposed,
        accepted=accepted,
        target_calls=target_calls,
        draft_calls=draft_calls,
        new_tokens=seq.shape[1] - idx.shape[1],
    )
