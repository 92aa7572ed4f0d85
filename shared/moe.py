"""Mixture-of-experts feed-forward layers: routers, capacity, auxiliary losses, expert parallelism.

A mixture-of-experts (MoE) layer replaces a transformer block's feed-forward network (FFN) by
``num_experts`` FFNs (the *experts*) and a *router* that sends each token to ``top_k`` of them. The
layer holds ``num_experts`` times the parameters of the dense FFN but spends only ``top_k`` times
its compute per token ("sparse activation").

What this module provides, and the paper each piece comes from:

- `TopKRouter`: a linear router, softmax over experts, top-k choice; optional noisy top-k gating
  (Shazeer et al., 2017) in training mode. ``top_k=1`` is the Switch Transformer router
  (Fedus et al., 2021). The router runs in float32 even under autocast ("selective precision",
  Fedus et al., 2021).
- Expert capacity with token dropping (Lepikhin et al., 2020; Fedus et al., 2021):
  ``capacity = ceil(capacity_factor * tokens * top_k / num_experts)`` assignments per expert.
  An assignment over capacity is dropped: its contribution is zero, so the block's residual
  connection carries the token unchanged. ``capacity_factor=None`` is the dropless mode.
- `load_balancing_loss` (Switch) and `router_z_loss` (ST-MoE, Zoph et al., 2022). The layer
  exposes ``balance_coef * balance + z_loss_coef * z`` as ``aux_loss`` after each forward.
- `MoEStats`: load, drops and router entropy after each forward, ready to plot.
- Three interchangeable dispatch implementations, selected by ``dispatch=``:
  ``"sorted"`` (the fast path: sort assignments by expert, one matmul per expert on a contiguous
  slice, combine with ``index_add``), ``"einsum"`` (GShard's one-hot dispatch and combine
  tensors of shape tokens x experts x capacity, for teaching and the benchmark) and ``"loop"``
  (a Python loop over tokens, the reference the tests compare against).
- `ExpertParallelMoE` and `expert_parallel_worker`: experts sharded over `torch.distributed`
  ranks, tokens exchanged with all-to-all (GShard; DeepSpeed-MoE, Rajbhandari et al., 2022).

Conventions (each is a choice; these are the ones the course makes, and why):

- Gate weights. With ``top_k=1`` the expert output is multiplied by the router probability of
  the chosen expert, as in Switch: this is what gives the router a gradient. With ``top_k>1``
  the k chosen probabilities are renormalised to sum to 1, as in GShard's top-2 gating and in
  Shazeer et al.'s softmax over the kept top-k logits (also Mixtral). Renormalising with k=1
  would make the gate identically 1 and cut the router off from the loss.
- Priority when an expert overflows: all first choices are served before any second choice
  (GShard), and within one choice level, tokens in order of position in the flattened batch.
- Load-balancing loss for ``top_k>1``: ``f_i`` counts all k assignments (before capacity is
  applied), divided by ``tokens * top_k``, so that ``sum_i f_i = 1`` and the loss equals 1
  (times its coefficient) for uniform routing, for every k.
- Statistics count what the router asked for (``load``) and what was dropped (``dropped``).

References:
- Shazeer et al., 2017. Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts
  Layer. https://arxiv.org/abs/1701.06538
- Lepikhin et al., 2020. GShard: Scaling Giant Models with Conditional Computation and Automatic
  Sharding. https://arxiv.org/abs/2006.16668
- Fedus, Zoph and Shazeer, 2021. Switch Transformers: Scaling to Trillion Parameter Models with
  Simple and Efficient Sparsity. https://arxiv.org/abs/2101.03961
- Rajbhandari et al., 2022. DeepSpeed-MoE: Advancing Mixture-of-Experts Inference and Training to
  Power Next-Generation AI Scale. https://arxiv.org/abs/2201.05596
- Zoph et al., 2022. ST-MoE: Designing Stable and Transferable Sparse Expert Models.
  https://arxiv.org/abs/2202.08906

Used in: modules/20-advanced-topics/01-mixture-of-experts, labs/moe-switch-transformer-inference,
modules/18-emerging-trends (sparse-moe), and by `shared.models` (the GPT's optional MoE FFN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from shared.layers import ACTIVATIONS, FeedForward

DISPATCH_MODES = ("sorted", "einsum", "loop")

__all__ = [
    "DISPATCH_MODES",
    "ExpertParallelMoE",
    "MoEFeedForward",
    "MoEStats",
    "RouterOutput",
    "TopKRouter",
    "expert_capacity",
    "expert_parallel_worker",
    "load_balancing_loss",
    "router_z_loss",
    "shard_experts",
]


# --------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------


class RouterOutput(NamedTuple):
    """What the router decided for T tokens and E experts.

    ``logits`` (T, E): the logits the choice was made from (noisy in training when noisy gating
    is on). ``probs`` (T, E): their softmax. ``expert_ids`` (T, k): the chosen experts, best
    first. ``gates`` (T, k): the weight of each chosen expert's output (see the module docstring
    for the convention).

    Used in: modules/20-advanced-topics/01-mixture-of-experts,
    labs/moe-switch-transformer-inference.
    """

    logits: torch.Tensor
    probs: torch.Tensor
    expert_ids: torch.Tensor
    gates: torch.Tensor


class TopKRouter(nn.Module):
    """Linear router with top-k choice: ``probs = softmax(x W_g)``, keep the k largest.

    With ``noisy_gating=True`` and in training mode, the logits get Shazeer et al.'s tunable
    noise before the choice, ``x W_g + N(0, 1) * softplus(x W_noise)``, which spreads tokens
    over experts early in training. ``W_noise`` starts at zero, so the initial noise scale is
    ``softplus(0) = 0.69``. In eval mode the router is deterministic.

    The router computes in float32 even under autocast: the softmax over experts is where low
    precision hurts most (Switch Transformer, "selective precision").

    Used in: modules/20-advanced-topics/01-mixture-of-experts,
    labs/moe-switch-transformer-inference.
    """

    def __init__(
        self, d_model: int, num_experts: int, top_k: int = 1, noisy_gating: bool = False
    ) -> None:
        super().__init__()
        _check_routing_config(d_model, num_experts, top_k)
        self.d_model, self.num_experts, self.top_k = d_model, num_experts, top_k
        self.gate = nn.Linear(d_model, num_experts, bias=False)
        self.noise = nn.Linear(d_model, num_experts, bias=False) if noisy_gating else None
        if self.noise is not None:
            nn.init.zeros_(self.noise.weight)

    def extra_repr(self) -> str:
        return f"top_k={self.top_k}, noisy_gating={self.noise is not None}"

    def forward(self, x: torch.Tensor) -> RouterOutput:
        """Route ``x`` of shape (T, d_model)."""
        if x.ndim != 2 or x.shape[1] != self.d_model:
            raise ValueError(
                f"expected tokens of shape (T, d_model={self.d_model}), got {tuple(x.shape)}"
            )
        with torch.autocast(device_type=x.device.type, enabled=False):
            x32 = x.float()
            logits = F.linear(x32, self.gate.weight.float())
            if self.noise is not None and self.training:
                noise_std = F.softplus(F.linear(x32, self.noise.weight.float()))
                logits = logits + torch.randn_like(logits) * noise_std
            probs = logits.softmax(dim=-1)
            top_probs, expert_ids = probs.topk(self.top_k, dim=-1)
            gates = (
                top_probs if self.top_k == 1 else top_probs / top_probs.sum(dim=-1, keepdim=True)
            )
        return RouterOutput(logits, probs, expert_ids, gates)


def expert_capacity(
    num_tokens: int, num_experts: int, top_k: int, capacity_factor: float | None
) -> int | None:
    """Assignments one expert accepts: ``ceil(capacity_factor * num_tokens * top_k / num_experts)``.

    ``capacity_factor=1`` gives each expert exactly its share under perfectly balanced routing;
    Switch uses 1.0-1.25 in training. ``None`` means dropless (no limit) and returns ``None``.

    Used in: modules/20-advanced-topics/01-mixture-of-experts,
    labs/moe-switch-transformer-inference.
    """
    if capacity_factor is None:
        return None
    _check_capacity_factor(capacity_factor)
    return math.ceil(capacity_factor * num_tokens * top_k / num_experts)


def load_balancing_loss(probs: torch.Tensor, expert_ids: torch.Tensor) -> torch.Tensor:
    """Switch Transformer's auxiliary loss ``N * sum_i f_i * P_i`` (without its coefficient).

    ``probs`` (T, N): router probabilities; ``expert_ids`` (T, k): the chosen experts.
    ``f_i`` is the fraction of the T*k assignments that went to expert i (not differentiable),
    ``P_i`` the mean router probability of expert i (differentiable). The loss is 1 when
    routing is uniform and N when every token goes to one expert with probability 1; its
    gradient pushes probability away from overloaded experts.

    Used in: modules/20-advanced-topics/01-mixture-of-experts.
    """
    if probs.ndim != 2 or expert_ids.ndim != 2 or probs.shape[0] != expert_ids.shape[0]:
        raise ValueError(
            "expected probs (T, N) and expert_ids (T, k) with the same T, got "
            f"{tuple(probs.shape)} and {tuple(expert_ids.shape)}"
        )
    num_experts = probs.shape[1]
    counts = torch.bincount(expert_ids.reshape(-1), minlength=num_experts)
    fraction = counts.to(probs.dtype) / expert_ids.numel()
    return num_experts * torch.sum(fraction * probs.mean(dim=0))


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE's router z-loss ``mean over tokens of logsumexp(logits)^2`` (without coefficient).

    It keeps router logits small, which avoids round-off blow-ups in the exponentials of the
    softmax and stabilises training (Zoph et al., 2022, section 3.1).

    Used in: modules/20-advanced-topics/01-mixture-of-experts.
    """
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (T, N), got {tuple(logits.shape)}")
    return torch.logsumexp(logits.float(), dim=-1).square().mean()


# --------------------------------------------------------------------------------------------
# Dispatch: three implementations of the same function
#   out[t] = sum over kept assignments (t, j) of gates[t, j] * experts[expert_ids[t, j]](x[t])
# Each returns (out (T, C), kept (T, k) bool).
# --------------------------------------------------------------------------------------------


def _sort_by_expert(
    expert_ids: torch.Tensor, num_experts: int, capacity: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Order the T*k assignments by expert and apply the capacity.

    Assignments are numbered choice-major, ``a = j * T + t``, so a stable sort by expert puts
    every expert's first choices (in token order) before its second choices: that order is the
    drop priority. Returns ``order`` (the kept assignment numbers, grouped by expert),
    ``kept_counts`` (E,) and ``kept`` (T, k) bool.
    """
    num_tokens, top_k = expert_ids.shape
    flat_ids = expert_ids.t().reshape(-1)
    order = torch.argsort(flat_ids, stable=True)
    counts = torch.bincount(flat_ids, minlength=num_experts)
    if capacity is not None:
        # Position of each sorted assignment in its expert's queue; keep the first `capacity`.
        starts = torch.cumsum(counts, dim=0) - counts
        position = torch.arange(order.numel(), device=order.device) - starts[flat_ids[order]]
        order = order[position < capacity]
        counts = counts.clamp(max=capacity)
    kept = torch.zeros(top_k * num_tokens, dtype=torch.bool, device=expert_ids.device)
    kept[order] = True
    return order, counts, kept.view(top_k, num_tokens).t()


def dispatch_sorted(
    x: torch.Tensor, routing: RouterOutput, experts: Sequence[nn.Module], capacity: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fast path: gather tokens sorted by expert, one call per expert, scatter-add back.

    Cost beyond the experts' own matmuls: one argsort of T*k expert ids, one ``index_select``
    of the kept tokens and one ``index_add``. Nothing is O(T^2) or O(T * E * capacity), and the
    only host sync is reading the E per-expert counts once. (``torch._grouped_mm``, private but
    present for CPU in torch 2.13, would do the E matmuls in one call; it needs the experts'
    weights stacked in one tensor, and the experts here are ordinary `FeedForward` modules, so
    the loop over E experts stays: it costs microseconds next to the matmuls.)

    Used in: modules/20-advanced-topics/01-mixture-of-experts (and `MoEFeedForward`).
    """
    num_tokens = x.shape[0]
    order, kept_counts, kept = _sort_by_expert(routing.expert_ids, len(experts), capacity)
    token_idx = order % num_tokens
    gates = routing.gates.t().reshape(-1)[order]
    expert_inputs = x.index_select(0, token_idx)
    chunks = expert_inputs.split(kept_counts.tolist())
    expert_outputs = torch.cat(
        [expert(chunk) for expert, chunk in zip(experts, chunks, strict=True)]
    )
    weighted = expert_outputs * gates.to(expert_outputs.dtype).unsqueeze(1)
    out = expert_outputs.new_zeros(x.shape).index_add(0, token_idx, weighted)
    return out, kept


def dispatch_einsum(
    x: torch.Tensor, routing: RouterOutput, experts: Sequence[nn.Module], capacity: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """GShard's dispatch: one-hot tensors of shape (T, E, capacity) and two einsums.

    ``dispatch[t, e, c] = 1`` when token t sits in slot c of expert e; ``combine`` is the same
    tensor times the gate. Expert inputs are ``einsum("tec,td->ecd", dispatch, x)``, outputs
    come back with ``einsum("tec,ecd->td", combine, expert_out)``. It is simple and maps well to
    TPUs, but costs O(T * E * capacity * d) FLOPs and memory on top of the experts: the sorted
    path avoids both. In dropless mode the capacity is the largest expert load.

    Used in: modules/20-advanced-topics/01-mixture-of-experts, benchmarks/bench_moe.py.
    """
    num_tokens, top_k = routing.expert_ids.shape
    num_experts = len(experts)
    mask = F.one_hot(routing.expert_ids.t(), num_experts)  # (k, T, E), choice-major
    if capacity is None:
        capacity = int(mask.sum(dim=(0, 1)).max())
    # Queue position of every assignment: a running count over choices, then tokens.
    position = torch.cumsum(mask.reshape(top_k * num_tokens, num_experts), dim=0).view_as(mask) - 1
    position = (position * mask).sum(dim=-1)  # (k, T)
    kept = position < capacity
    slots = F.one_hot(torch.where(kept, position, 0), capacity) * kept.unsqueeze(-1)  # (k, T, cap)
    mask, slots = mask.to(x.dtype), slots.to(x.dtype)
    # A token takes at most one slot per expert, so summing over its k choices loses nothing.
    dispatch = torch.einsum("kte,ktc->tec", mask, slots)
    combine = torch.einsum("kte,ktc,kt->tec", mask, slots, routing.gates.t().to(x.dtype))
    expert_inputs = torch.einsum("tec,td->ecd", dispatch, x)
    expert_outputs = torch.stack(
        [expert(inp) for expert, inp in zip(experts, expert_inputs, strict=True)]
    )
    out = torch.einsum("tec,ecd->td", combine.to(expert_outputs.dtype), expert_outputs)
    return out, kept.t()


def dispatch_loop(
    x: torch.Tensor, routing: RouterOutput, experts: Sequence[nn.Module], capacity: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: a Python loop over choices and tokens, one expert call per assignment.

    It applies the capacity with a counter per expert, serving all first choices before any
    second choice. Slow (T*k expert calls on single rows), and obviously right, which is its job.

    Used in: modules/20-advanced-topics/01-mixture-of-experts, tests/test_moe.py,
    benchmarks/bench_moe.py.
    """
    num_tokens, top_k = routing.expert_ids.shape
    expert_ids = routing.expert_ids.tolist()
    used = [0] * len(experts)
    rows: list[torch.Tensor | None] = [None] * num_tokens
    kept = torch.zeros(num_tokens, top_k, dtype=torch.bool)
    for j in range(top_k):
        for t in range(num_tokens):
            e = expert_ids[t][j]
            if capacity is not None and used[e] >= capacity:
                continue  # dropped: contributes nothing
            used[e] += 1
            kept[t, j] = True
            y = routing.gates[t, j] * experts[e](x[t])
            rows[t] = y if rows[t] is None else rows[t] + y
    zero = x.new_zeros(x.shape[1])
    return torch.stack([zero if row is None else row for row in rows]), kept.to(x.device)


_DISPATCH = {"sorted": dispatch_sorted, "einsum": dispatch_einsum, "loop": dispatch_loop}


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


@dataclass
class MoEStats:
    """Routing statistics of one forward pass, as plain Python numbers (plot them directly).

    ``load[i]``: assignments the router sent to expert i (before capacity); ``dropped[i]``: those
    over capacity. ``drop_rate``: dropped / all T*k assignments; ``expert_drop_rate[i]``:
    ``dropped[i] / load[i]`` (0 for an idle expert); ``token_drop_rate``: tokens that lost every
    assignment and pass through the layer on the residual alone. ``router_prob[i]``: mean router
    probability ``P_i``. ``router_entropy``: mean over tokens of the entropy (nats) of the
    router distribution; ``log(num_experts)`` is uniform, 0 is one-hot. ``balance_loss`` and
    ``z_loss`` are unweighted.

    Used in: modules/20-advanced-topics/01-mixture-of-experts,
    labs/moe-switch-transformer-inference.
    """

    tokens: int
    num_experts: int
    top_k: int
    capacity: int | None
    load: list[int]
    dropped: list[int]
    drop_rate: float
    expert_drop_rate: list[float]
    token_drop_rate: float
    router_prob: list[float]
    router_entropy: float
    balance_loss: float
    z_loss: float

    def as_dict(self) -> dict[str, Any]:
        """The statistics as a plain dict (JSON-ready)."""
        return asdict(self)


@torch.no_grad()
def _routing_stats(
    routing: RouterOutput,
    kept: torch.Tensor,
    capacity: int | None,
    balance: torch.Tensor,
    z_loss: torch.Tensor,
) -> MoEStats:
    num_tokens, top_k = routing.expert_ids.shape
    num_experts = routing.probs.shape[1]
    load = torch.bincount(routing.expert_ids.reshape(-1), minlength=num_experts)
    dropped = load - torch.bincount(routing.expert_ids[kept], minlength=num_experts)
    entropy = -(routing.probs * torch.log(routing.probs.clamp_min(1e-30))).sum(dim=-1).mean()
    token_drops = (~kept.any(dim=1)).sum()
    load_list, dropped_list = torch.stack([load, dropped]).tolist()
    scalars = torch.stack([entropy, balance.float(), z_loss.float(), token_drops.float()]).tolist()
    assignments = num_tokens * top_k
    return MoEStats(
        tokens=num_tokens,
        num_experts=num_experts,
        top_k=top_k,
        capacity=capacity,
        load=load_list,
        dropped=dropped_list,
        drop_rate=sum(dropped_list) / assignments,
        expert_drop_rate=[
            d / n if n else 0.0 for d, n in zip(dropped_list, load_list, strict=True)
        ],
        token_drop_rate=scalars[3] / num_tokens,
        router_prob=routing.probs.mean(dim=0).tolist(),
        router_entropy=scalars[0],
        balance_loss=scalars[1],
        z_loss=scalars[2],
    )


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


def _check_routing_config(d_model: int, num_experts: int, top_k: int) -> None:
    for name, value in (("d_model", d_model), ("num_experts", num_experts), ("top_k", top_k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if d_model < 1:
        raise ValueError(f"d_model must be >= 1, got {d_model}")
    if num_experts < 1:
        raise ValueError(f"num_experts must be >= 1, got {num_experts}")
    if not 1 <= top_k <= num_experts:
        raise ValueError(f"top_k must be in [1, num_experts={num_experts}], got {top_k}")


def _check_capacity_factor(capacity_factor: float | None) -> None:
    if capacity_factor is None:
        return
    if isinstance(capacity_factor, bool) or not isinstance(capacity_factor, (int, float)):
        raise TypeError(
            "capacity_factor must be a positive number or None, got "
            f"{type(capacity_factor).__name__}"
        )
    if not capacity_factor > 0 or math.isinf(capacity_factor):
        raise ValueError(
            f"capacity_factor must be a finite number > 0 or None (dropless), got {capacity_factor}"
        )


class _MoEBase(nn.Module):
    """Router, capacity, auxiliary loss and statistics; subclasses say where the experts live."""

    def __init__(
        self,
        *,
        d_model: int,
        d_ff: int,
        activation: str,
        bias: bool,
        dropout: float,
        num_experts: int,
        top_k: int,
        capacity_factor: float | None,
        noisy_gating: bool,
        balance_coef: float,
        z_loss_coef: float,
        num_local_experts: int,
    ) -> None:
        super().__init__()
        _check_routing_config(d_model, num_experts, top_k)
        _check_capacity_factor(capacity_factor)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        for name, coef in (("balance_coef", balance_coef), ("z_loss_coef", z_loss_coef)):
            if not coef >= 0:
                raise ValueError(f"{name} must be >= 0, got {coef}")
        self.d_model, self.d_ff, self.num_experts, self.top_k = d_model, d_ff, num_experts, top_k
        self.capacity_factor = capacity_factor
        self.balance_coef, self.z_loss_coef = balance_coef, z_loss_coef
        self.router = TopKRouter(d_model, num_experts, top_k, noisy_gating)
        self.experts = nn.ModuleList(
            FeedForward(d_model, d_ff, activation, bias, dropout) for _ in range(num_local_experts)
        )
        self.aux_loss: torch.Tensor = torch.zeros(())
        self.stats: MoEStats | None = None

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, top_k={self.top_k}, "
            f"capacity_factor={self.capacity_factor}, balance_coef={self.balance_coef}, "
            f"z_loss_coef={self.z_loss_coef}"
        )

    def _dispatch(
        self, x: torch.Tensor, routing: RouterOutput, capacity: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the experts on the routed tokens; return ``out`` (T, C) and ``kept`` (T, k)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _dispatch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``x`` of shape (..., d_model), e.g. (B, T, d_model); same shape out.

        Sets ``self.aux_loss`` (a weighted scalar tensor to add to the training loss) and
        ``self.stats`` (`MoEStats`). The capacity counts the B*T tokens of this call.
        """
        if not torch.is_floating_point(x):
            raise TypeError(f"expected a floating-point input, got dtype {x.dtype}")
        if x.ndim < 1 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"expected input of shape (..., d_model={self.d_model}), got {tuple(x.shape)}"
            )
        weight_dtype = self.router.gate.weight.dtype
        if x.dtype != weight_dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(
                f"expected input dtype {weight_dtype} (the layer's parameters), got {x.dtype}"
            )
        tokens = x.reshape(-1, self.d_model)
        if tokens.shape[0] == 0:
            raise ValueError(f"expected at least one token, got input of shape {tuple(x.shape)}")
        routing = self.router(tokens)
        capacity = expert_capacity(
            tokens.shape[0], self.num_experts, self.top_k, self.capacity_factor
        )
        out, kept = self._dispatch(tokens, routing, capacity)
        balance = load_balancing_loss(routing.probs, routing.expert_ids)
        z_loss = router_z_loss(routing.logits)
        self.aux_loss = self.balance_coef * balance + self.z_loss_coef * z_loss
        self.stats = _routing_stats(routing, kept, capacity, balance, z_loss)
        return out.reshape(*x.shape[:-1], out.shape[-1])


class MoEFeedForward(_MoEBase):
    """A mixture-of-experts drop-in for `shared.layers.FeedForward`: (B, T, C) -> (B, T, C).

    ``num_experts`` experts, each a `FeedForward(d_model, d_ff, activation, bias, dropout)`, and a
    `TopKRouter`. ``top_k=1`` is a Switch Transformer layer; ``top_k=2`` is GShard's.
    ``capacity_factor`` limits each expert to
    ``ceil(capacity_factor * tokens * top_k / num_experts)`` assignments; the rest are dropped
    and the token passes through on the residual (``None``: dropless). ``noisy_gating`` adds
    Shazeer et al.'s noise to the router logits in training mode. ``dispatch`` picks the
    implementation: ``"sorted"`` (fast, the default), ``"einsum"`` (GShard one-hot) or
    ``"loop"`` (per-token reference); all three compute the same function.

    After each forward, ``aux_loss`` holds
    ``balance_coef * load_balancing_loss + z_loss_coef * router_z_loss`` and ``stats`` a
    `MoEStats`. Add ``aux_loss`` to the training loss (`shared.models.GPT` does).

    Used in: modules/20-advanced-topics/01-mixture-of-experts,
    labs/moe-switch-transformer-inference,
    modules/18-emerging-trends (sparse-moe), `shared.models` (MoE layers of the GPT).
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str = "gelu",
        bias: bool = True,
        dropout: float = 0.0,
        *,
        num_experts: int = 8,
        top_k: int = 1,
        capacity_factor: float | None = 1.25,
        noisy_gating: bool = False,
        balance_coef: float = 0.01,
        z_loss_coef: float = 0.001,
        dispatch: str = "sorted",
    ) -> None:
        if dispatch not in DISPATCH_MODES:
            raise ValueError(f"dispatch must be one of {DISPATCH_MODES}, got {dispatch!r}")
        super().__init__(
            d_model=d_model,
            d_ff=d_ff,
            activation=activation,
            bias=bias,
            dropout=dropout,
            num_experts=num_experts,
            top_k=top_k,
            capacity_factor=capacity_factor,
            noisy_gating=noisy_gating,
            balance_coef=balance_coef,
            z_loss_coef=z_loss_coef,
            num_local_experts=num_experts,
        )
        self.dispatch = dispatch

    def _dispatch(
        self, x: torch.Tensor, routing: RouterOutput, capacity: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.dispatch not in _DISPATCH:
            raise ValueError(f"dispatch must be one of {DISPATCH_MODES}, got {self.dispatch!r}")
        return _DISPATCH[self.dispatch](x, routing, self.experts, capacity)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dispatch={self.dispatch!r}"

    def active_flops_per_token(self) -> int:
        """Matmul FLOPs one token costs: ``top_k`` experts plus the router (forward)."""
        return self.top_k * self.experts[0].flops_per_token() + 2 * self.d_model * self.num_experts


# --------------------------------------------------------------------------------------------
# Expert parallelism
# --------------------------------------------------------------------------------------------


def shard_experts(num_experts: int, world_size: int, rank: int) -> range:
    """The global ids of the experts that ``rank`` holds: a contiguous block of E / world_size.

    Used in: modules/20-advanced-topics/01-mixture-of-experts (and `ExpertParallelMoE`).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            "expected world_size >= 1 and 0 <= rank < world_size, got "
            f"rank={rank}, world_size={world_size}"
        )
    if num_experts % world_size:
        raise ValueError(
            f"num_experts must be divisible by the world size to shard experts evenly, "
            f"got num_experts={num_experts}, world_size={world_size}"
        )
    per_rank = num_experts // world_size
    return range(rank * per_rank, (rank + 1) * per_rank)


def _all_to_all(
    x: torch.Tensor, send_splits: list[int], recv_splits: list[int], group: Any
) -> torch.Tensor:
    """All-to-all of rows: block r of ``x`` (``send_splits[r]`` rows) goes to rank r.

    Returns the blocks received, ``recv_splits[r]`` rows from rank r, in rank order.
    """
    out = x.new_empty((sum(recv_splits), *x.shape[1:]))
    dist.all_to_all_single(out, x.contiguous(), recv_splits, send_splits, group=group)
    return out


class _AllToAll(torch.autograd.Function):
    """Differentiable all-to-all: the backward pass is the reverse exchange of the gradients."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, send_splits: list[int], recv_splits: list[int], group: Any
    ) -> torch.Tensor:
        ctx.send_splits, ctx.recv_splits, ctx.group = send_splits, recv_splits, group
        return _all_to_all(x, send_splits, recv_splits, group)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return _all_to_all(grad, ctx.recv_splits, ctx.send_splits, ctx.group), None, None, None


class ExpertParallelMoE(_MoEBase):
    """`MoEFeedForward` with its experts sharded over the ranks of a `torch.distributed` group.

    Rank r holds experts ``shard_experts(num_experts, world_size, r)`` and a replica of the
    router. A forward pass on each rank's own tokens (GShard's "groups"):

    1. route the local tokens and apply the capacity locally, exactly as `MoEFeedForward` does
       on the same tokens, and sort the kept assignments by expert (hence by owning rank);
    2. exchange the per-expert counts with one all-to-all, so that every rank knows how many
       rows it will receive from each peer;
    3. all-to-all the token rows to the ranks that own their experts;
    4. regroup the received rows by local expert and run each local expert once;
    5. all-to-all the results back (the reverse exchange) and combine them with the gates.

    So each rank's output equals ``MoEFeedForward`` applied to that rank's tokens with the same
    weights, and so do ``aux_loss`` and ``stats`` (computed over the local tokens). The
    exchanges use ``dist.all_to_all_single`` with uneven split sizes, which gloo supports on
    CPU (checked on torch 2.13) as does NCCL on GPUs; gradients flow back through the same
    exchanges in reverse (`_AllToAll`).

    Training: every rank must run forward and backward together (the backward pass holds
    collectives too). Expert gradients arrive complete, summed over all ranks' tokens. The
    router is replicated, so sum its gradients across ranks with `all_reduce_router_grads`
    before the optimizer step: together this is the gradient of the sum of the ranks' losses
    (divide each rank's loss by the world size first if you want their mean).

    Build it with the same arguments as `MoEFeedForward` (plus ``group``), or from an existing
    layer with `from_moe` (each rank then keeps its own experts' weights).

    Used in: modules/20-advanced-topics/01-mixture-of-experts (expert parallelism),
    tests/test_moe.py.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str = "gelu",
        bias: bool = True,
        dropout: float = 0.0,
        *,
        num_experts: int = 8,
        top_k: int = 1,
        capacity_factor: float | None = 1.25,
        noisy_gating: bool = False,
        balance_coef: float = 0.01,
        z_loss_coef: float = 0.001,
        group: Any = None,
    ) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "ExpertParallelMoE needs an initialised torch.distributed process group"
            )
        world_size, rank = dist.get_world_size(group), dist.get_rank(group)
        local_ids = shard_experts(num_experts, world_size, rank)
        super().__init__(
            d_model=d_model,
            d_ff=d_ff,
            activation=activation,
            bias=bias,
            dropout=dropout,
            num_experts=num_experts,
            top_k=top_k,
            capacity_factor=capacity_factor,
            noisy_gating=noisy_gating,
            balance_coef=balance_coef,
            z_loss_coef=z_loss_coef,
            num_local_experts=len(local_ids),
        )
        self.group, self.world_size, self.rank = group, world_size, rank
        self.local_expert_ids = local_ids

    @classmethod
    def from_moe(cls, moe: MoEFeedForward, group: Any = None) -> ExpertParallelMoE:
        """This rank's shard of ``moe``: the router and this rank's experts, weights copied."""
        expert = moe.experts[0]
        layer = cls(
            moe.d_model,
            moe.d_ff,
            expert.activation,
            expert.up.bias is not None,
            expert.dropout.p,
            num_experts=moe.num_experts,
            top_k=moe.top_k,
            capacity_factor=moe.capacity_factor,
            noisy_gating=moe.router.noise is not None,
            balance_coef=moe.balance_coef,
            z_loss_coef=moe.z_loss_coef,
            group=group,
        )
        layer.router.load_state_dict(moe.router.state_dict())
        for local, global_id in zip(layer.experts, layer.local_expert_ids, strict=True):
            local.load_state_dict(moe.experts[global_id].state_dict())
        return layer.to(moe.router.gate.weight.device)

    def all_reduce_router_grads(self) -> None:
        """Sum the replicated router's gradients over the ranks (call after backward)."""
        for param in self.router.parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad, group=self.group)

    def _dispatch(
        self, x: torch.Tensor, routing: RouterOutput, capacity: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        num_tokens = x.shape[0]
        world, local = self.world_size, len(self.experts)
        # 1. local capacity and drop decisions; kept assignments sorted by expert, hence by rank.
        order, kept_counts, kept = _sort_by_expert(routing.expert_ids, self.num_experts, capacity)
        token_idx = order % num_tokens
        gates = routing.gates.t().reshape(-1)[order]

        # 2. counts: send_counts[r, l] rows go to local expert l of rank r;
        #    recv_counts[r, l] rows come from rank r for this rank's local expert l.
        send_counts = kept_counts.view(world, local)
        recv_counts = torch.empty_like(send_counts)
        dist.all_to_all_single(recv_counts, send_counts, group=self.group)
        send_splits = send_counts.sum(dim=1).tolist()
        recv_splits = recv_counts.sum(dim=1).tolist()

        # 3. tokens to the experts' owners. Received rows come grouped by source rank, then expert.
        received = _AllToAll.apply(
            x.index_select(0, token_idx), send_splits, recv_splits, self.group
        )

        # 4. regroup by local expert (stable, so each expert's rows keep source-rank order).
        row_expert = (
            torch.arange(local, device=x.device)
            .repeat(world)
            .repeat_interleave(recv_counts.reshape(-1))
        )
        by_expert = torch.argsort(row_expert, stable=True)
        chunks = received.index_select(0, by_expert).split(recv_counts.sum(dim=0).tolist())
        # Every local expert runs, even on zero rows, so that each rank's backward pass takes
        # part in the reverse exchange whatever the routing.
        expert_outputs = torch.cat(
            [expert(chunk) for expert, chunk in zip(self.experts, chunks, strict=True)]
        )
        restore = torch.empty_like(by_expert)
        restore[by_expert] = torch.arange(by_expert.numel(), device=x.device)
        expert_outputs = expert_outputs.index_select(0, restore)

        # 5. results back to the tokens' ranks, in the order they were sent; combine.
        returned = _AllToAll.apply(expert_outputs, recv_splits, send_splits, self.group)
        weighted = returned * gates.to(returned.dtype).unsqueeze(1)
        out = returned.new_zeros(x.shape).index_add(0, token_idx, weighted)
        return out, kept


def expert_parallel_worker(
    rank: int,
    world_size: int,
    moe_kwargs: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    inputs: torch.Tensor,
    grad_outputs: torch.Tensor,
) -> dict[str, Any]:
    """One rank of an expert-parallel forward and backward pass; launch it with
    ``shared.distributed.run_distributed(expert_parallel_worker, world_size, ...)``.

    Every rank builds the full `MoEFeedForward(**moe_kwargs)` with ``state_dict`` (for this demo;
    a real run builds `ExpertParallelMoE` directly), keeps its shard, and processes its own
    tokens ``inputs[rank]`` (``inputs`` has shape (world_size, B, T, d_model)). It back-propagates
    ``(out * grad_outputs[rank]).sum() + aux_loss`` and sums the router gradients over ranks.

    Returns this rank's ``output``, ``aux_loss``, ``stats`` (dict), ``input_grad``,
    ``router_grads`` (name -> tensor, identical on all ranks) and ``expert_grads``
    (``"experts.<global id>.<param>"`` -> tensor, for the experts this rank owns).

    Used in: modules/20-advanced-topics/01-mixture-of-experts, tests/test_moe.py.
    """
    if inputs.shape[0] != world_size or grad_outputs.shape != inputs.shape:
        raise ValueError(
            f"expected inputs and grad_outputs of shape (world_size={world_size}, ...), "
            f"got {tuple(inputs.shape)} and {tuple(grad_outputs.shape)}"
        )
    full = MoEFeedForward(**moe_kwargs)
    full.load_state_dict(state_dict)
    layer = ExpertParallelMoE.from_moe(full)
    x = inputs[rank].clone().requires_grad_(True)
    out = layer(x)
    loss = (out * grad_outputs[rank]).sum() + layer.aux_loss
    loss.backward()
    layer.all_reduce_router_grads()
    return {
        "output": out.detach(),
        "aux_loss": layer.aux_loss.detach(),
        "stats": layer.stats.as_dict() if layer.stats is not None else None,
        "input_grad": x.grad,
        "router_grads": {
            f"router.{n}": p.grad for n, p in layer.router.named_parameters() if p.grad is not None
        },
        "expert_grads": {
            f"experts.{global_id}.{n}": p.grad
            for global_id, expert in zip(layer.local_expert_ids, layer.experts, strict=True)
            for n, p in expert.named_parameters()
        },
    }
