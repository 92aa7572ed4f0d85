"""`shared.moe`: the three dispatch paths against each other (outputs and gradients), routing and
capacity against hand-worked cases, the auxiliary losses against closed forms, the statistics
against direct counts, expert parallelism over real gloo processes against the single-process
layer, and every bad-input path."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shared.moe import (
    ExpertParallelMoE,
    MoEFeedForward,
    RouterOutput,
    TopKRouter,
    dispatch_einsum,
    dispatch_loop,
    dispatch_sorted,
    expert_capacity,
    expert_parallel_worker,
    load_balancing_loss,
    router_z_loss,
    shard_experts,
)

D_MODEL, D_FF, NUM_EXPERTS = 16, 24, 4


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """These tensors are tiny: one thread is faster, and immune to other processes' load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _layer(top_k: int, capacity_factor: float | None, **kwargs: Any) -> MoEFeedForward:
    torch.manual_seed(0)
    return MoEFeedForward(
        D_MODEL,
        D_FF,
        num_experts=NUM_EXPERTS,
        top_k=top_k,
        capacity_factor=capacity_factor,
        **kwargs,
    )


def _forward_backward(layer: MoEFeedForward, x: torch.Tensor, weights: torch.Tensor) -> dict:
    """Output, aux loss and the gradients of ``sum(out * weights) + aux_loss``."""
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = layer(x)
    ((out * weights).sum() + layer.aux_loss).backward()
    grads = {
        name: (p.grad if p.grad is not None else torch.zeros_like(p)).clone()
        for name, p in layer.named_parameters()
    }
    return {
        "out": out.detach(),
        "x": x.grad,
        "aux": layer.aux_loss.detach(),
        "grads": grads,
        "stats": layer.stats,
    }


@pytest.mark.parametrize("top_k", [1, 2])
@pytest.mark.parametrize("capacity_factor", [None, 0.5])
@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_fast_and_einsum_dispatch_match_loop_reference(
    top_k: int, capacity_factor: float | None, activation: str
) -> None:
    layer = _layer(top_k, capacity_factor, activation=activation)
    torch.manual_seed(1)
    x = torch.randn(3, 11, D_MODEL)
    weights = torch.randn(3, 11, D_MODEL)
    layer.dispatch = "loop"
    ref = _forward_backward(layer, x, weights)
    # The parametrisation must exercise what it claims: drops only with a capacity.
    assert (ref["stats"].drop_rate > 0) == (capacity_factor is not None)
    for mode in ("sorted", "einsum"):
        layer.dispatch = mode
        got = _forward_backward(layer, x, weights)
        torch.testing.assert_close(got["out"], ref["out"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got["x"], ref["x"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got["aux"], ref["aux"], rtol=1e-6, atol=1e-6)
        assert got["grads"].keys() == ref["grads"].keys()
        for name in ref["grads"]:
            torch.testing.assert_close(
                got["grads"][name],
                ref["grads"][name],
                rtol=1e-5,
                atol=1e-5,
                msg=lambda m, name=name, mode=mode: f"{mode}, {name}: {m}",
            )
        assert got["stats"] == ref["stats"]
    assert ref["grads"]["router.gate.weight"].abs().sum() > 0  # the router does learn


@pytest.mark.parametrize("top_k", [1, 2])
def test_dropless_layer_matches_dense_formula(top_k: int) -> None:
    """Every expert on every token, then pick: out = sum_j gate_j * expert_{e_j}(x)."""
    layer = _layer(top_k, None)
    x = torch.randn(40, D_MODEL)
    all_outputs = torch.stack([expert(x) for expert in layer.experts], dim=1)  # (T, E, C)
    probs = F.softmax(x @ layer.router.gate.weight.T, dim=-1)
    top_probs, ids = probs.topk(top_k, dim=-1)
    gates = top_probs if top_k == 1 else top_probs / top_probs.sum(-1, keepdim=True)
    expected = (
        gates.unsqueeze(-1) * all_outputs.gather(1, ids.unsqueeze(-1).expand(-1, -1, D_MODEL))
    ).sum(1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_router_gate_convention() -> None:
    torch.manual_seed(0)
    x = torch.randn(50, D_MODEL)
    switch = TopKRouter(D_MODEL, NUM_EXPERTS, top_k=1)
    routing = switch(x)
    probs = F.softmax(x @ switch.gate.weight.T, dim=-1)
    torch.testing.assert_close(routing.probs, probs)
    # Switch: the gate is the chosen expert's probability itself.
    torch.testing.assert_close(routing.gates[:, 0], probs.max(dim=-1).values)
    assert torch.equal(routing.expert_ids[:, 0], probs.argmax(dim=-1))
    top2 = TopKRouter(D_MODEL, NUM_EXPERTS, top_k=2)
    top2.load_state_dict(switch.state_dict())
    routing = top2(x)
    torch.testing.assert_close(routing.gates.sum(-1), torch.ones(50))  # renormalised over the top 2
    chosen = probs.gather(1, routing.expert_ids)
    torch.testing.assert_close(routing.gates, chosen / chosen.sum(-1, keepdim=True))
    assert (chosen[:, 0] >= chosen[:, 1]).all()


def test_capacity_formula() -> None:
    assert expert_capacity(2048, 8, 1, 1.25) == 320
    assert expert_capacity(2048, 8, 2, 1.0) == 512
    assert expert_capacity(7, 4, 1, 1.0) == 2  # ceil(1.75)
    assert expert_capacity(10, 4, 2, 0.1) == 1
    assert expert_capacity(10, 4, 2, None) is None


@pytest.mark.parametrize("dispatch", [dispatch_sorted, dispatch_einsum, dispatch_loop])
def test_first_choices_are_served_before_second_choices(dispatch: Callable) -> None:
    # Capacity 2. First choices: t0->0, t1->1, t2->0 fill expert 0 and half of expert 1.
    # Second choices in token order: t0->1 fits, t1->0 and t2->1 are dropped.
    expert_ids = torch.tensor([[0, 1], [1, 0], [0, 1]])
    gates = torch.tensor([[0.75, 0.25], [0.5, 0.5], [0.6, 0.4]])
    routing = RouterOutput(torch.zeros(3, 2), torch.full((3, 2), 0.5), expert_ids, gates)
    experts = [nn.Identity(), nn.Identity()]
    x = torch.arange(6.0).view(3, 2) + 1
    out, kept = dispatch(x, routing, experts, 2)
    assert kept.tolist() == [[True, True], [True, False], [True, False]]
    torch.testing.assert_close(out, x * torch.tensor([[1.0], [0.5], [0.6]]))


def test_dropped_tokens_output_zero_and_are_counted() -> None:
    layer = _layer(1, 0.25)  # capacity ceil(0.25 * 40 / 4) = 3 per expert
    x = torch.randn(40, D_MODEL)
    out = layer(x)
    routing = layer.router(x)
    load = torch.bincount(routing.expert_ids[:, 0], minlength=NUM_EXPERTS)
    stats = layer.stats
    assert stats.capacity == 3
    assert stats.load == load.tolist()
    assert stats.dropped == (load - load.clamp(max=3)).tolist()
    assert stats.drop_rate == pytest.approx(sum(stats.dropped) / 40)
    assert stats.token_drop_rate == pytest.approx(stats.drop_rate)  # top-1: a drop loses the token
    zero_rows = (out == 0).all(dim=1)
    assert int(zero_rows.sum()) == sum(stats.dropped) > 0
    # In a residual block the dropped tokens come out unchanged.
    block_out = x + out
    assert torch.equal(block_out[zero_rows], x[zero_rows])


def test_statistics_match_direct_computation() -> None:
    layer = _layer(2, 0.75)
    x = torch.randn(2, 20, D_MODEL)
    layer(x)
    stats = layer.stats
    with torch.no_grad():
        routing = layer.router(x.reshape(-1, D_MODEL))
    _, kept = dispatch_loop(x.reshape(-1, D_MODEL), routing, layer.experts, stats.capacity)
    ids = routing.expert_ids
    assert (
        stats.tokens == 40 and stats.top_k == 2 and stats.capacity == math.ceil(0.75 * 40 * 2 / 4)
    )
    assert stats.load == torch.bincount(ids.flatten(), minlength=4).tolist()
    assert sum(stats.load) == 80
    assert stats.dropped == [int(((ids == e) & ~kept).sum()) for e in range(4)]
    assert stats.expert_drop_rate == [
        d / n if n else 0.0 for d, n in zip(stats.dropped, stats.load, strict=True)
    ]
    assert stats.token_drop_rate == pytest.approx(float((~kept.any(1)).float().mean()))
    p = routing.probs
    assert stats.router_entropy == pytest.approx(float(-(p * p.log()).sum(-1).mean()), rel=1e-6)
    assert stats.router_prob == pytest.approx(p.mean(0).tolist(), rel=1e-6)
    assert 0 < stats.router_entropy <= math.log(4)
    assert json.loads(json.dumps(stats.as_dict()))["load"] == stats.load


@pytest.mark.parametrize("top_k", [1, 2])
def test_balance_loss_is_one_for_uniform_routing(top_k: int) -> None:
    tokens, experts = 64, 8
    probs = torch.full((tokens, experts), 1 / experts)
    ids = (torch.arange(tokens * top_k) % experts).view(tokens, top_k)
    assert float(load_balancing_loss(probs, ids)) == pytest.approx(1.0)
    # Everything on expert 0 with probability 1: the worst case, N.
    collapsed = F.one_hot(torch.zeros(tokens, dtype=torch.long), experts).float()
    assert float(
        load_balancing_loss(collapsed, torch.zeros(tokens, top_k, dtype=torch.long))
    ) == pytest.approx(8.0)


def test_balance_loss_matches_definition() -> None:
    torch.manual_seed(0)
    probs = F.softmax(torch.randn(30, 5), dim=-1)
    ids = probs.topk(2, dim=-1).indices
    f = torch.tensor([(ids == i).sum().item() / 60 for i in range(5)])
    P = probs.mean(0)
    torch.testing.assert_close(load_balancing_loss(probs, ids), 5 * (f * P).sum())


def test_layer_aux_loss_closed_form_for_uniform_router() -> None:
    """A zero router gives P_i = 1/N, so balance = sum_i f_i = 1, and z = log(N)^2."""
    layer = _layer(2, 1.0, balance_coef=0.01, z_loss_coef=0.001)
    nn.init.zeros_(layer.router.gate.weight)
    layer(torch.randn(5, 8, D_MODEL))
    expected = 0.01 * 1.0 + 0.001 * math.log(NUM_EXPERTS) ** 2
    assert float(layer.aux_loss.detach()) == pytest.approx(expected, rel=1e-6)
    assert layer.stats.router_entropy == pytest.approx(math.log(NUM_EXPERTS), rel=1e-6)


def test_router_z_loss_matches_definition() -> None:
    torch.manual_seed(0)
    logits = torch.randn(12, 6) * 3
    expected = torch.log(torch.exp(logits).sum(-1)).pow(2).mean()
    torch.testing.assert_close(router_z_loss(logits), expected)
    assert float(router_z_loss(torch.zeros(3, 6))) == pytest.approx(math.log(6) ** 2)


def test_noisy_gating_only_in_training() -> None:
    torch.manual_seed(0)
    router = TopKRouter(D_MODEL, NUM_EXPERTS, top_k=2, noisy_gating=True)
    x = torch.randn(30, D_MODEL)
    clean = x @ router.gate.weight.T
    router.eval()
    torch.testing.assert_close(router(x).logits, clean)
    router.train()
    torch.manual_seed(5)
    noisy = router(x).logits
    torch.manual_seed(5)
    expected = clean + torch.randn(30, NUM_EXPERTS) * F.softplus(torch.zeros(30, NUM_EXPERTS))
    torch.testing.assert_close(noisy, expected)
    # The noise scale is learnable: it gets a gradient through the gates.
    layer = _layer(2, None, noisy_gating=True)
    layer.train()
    layer(x).pow(2).sum().backward()
    assert layer.router.noise.weight.grad.abs().sum() > 0


def test_shapes_and_autocast() -> None:
    layer = _layer(2, 1.25)
    x = torch.randn(2, 7, D_MODEL)
    assert layer(x).shape == (2, 7, D_MODEL)
    assert layer(x[0]).shape == (7, D_MODEL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.shape == (2, 7, D_MODEL) and out.dtype == torch.bfloat16
    assert layer.aux_loss.dtype == torch.float32  # the router ran in float32


def test_aux_loss_training_balances_a_collapsed_router() -> None:
    """Minimising the balance loss alone spreads a router that sends everything to one expert."""
    layer = _layer(1, None, balance_coef=1.0, z_loss_coef=0.0)
    with torch.no_grad():
        layer.router.gate.weight.zero_()
        layer.router.gate.weight[0] = 0.5  # expert 0 wins for inputs with a positive sum
    x = torch.randn(256, D_MODEL) + 0.5
    optimizer = torch.optim.SGD(layer.router.parameters(), lr=0.5)
    layer(x)
    before = layer.stats
    for _ in range(60):
        optimizer.zero_grad()
        layer(x)
        layer.aux_loss.backward()
        optimizer.step()
    layer(x)
    assert max(before.load) > 200
    assert layer.stats.balance_loss < before.balance_loss - 0.5
    assert max(layer.stats.load) < max(before.load)


def test_bad_input() -> None:
    layer = _layer(1, 1.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., d_model=16\)"):
        layer(torch.randn(2, 3, 15))
    with pytest.raises(TypeError, match="floating-point input"):
        layer(torch.ones(2, 3, D_MODEL, dtype=torch.long))
    with pytest.raises(TypeError, match="expected input dtype torch.float32"):
        layer(torch.randn(2, 3, D_MODEL, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least one token"):
        layer(torch.randn(0, D_MODEL))
    with pytest.raises(ValueError, match=r"top_k must be in \[1, num_experts=4\], got 5"):
        MoEFeedForward(D_MODEL, D_FF, num_experts=4, top_k=5)
    with pytest.raises(ValueError, match=r"top_k must be in \[1, num_experts=4\], got 0"):
        MoEFeedForward(D_MODEL, D_FF, num_experts=4, top_k=0)
    with pytest.raises(ValueError, match="capacity_factor must be a finite number > 0"):
        MoEFeedForward(D_MODEL, D_FF, capacity_factor=0)
    with pytest.raises(ValueError, match="capacity_factor must be a finite number > 0"):
        MoEFeedForward(D_MODEL, D_FF, capacity_factor=-1.0)
    with pytest.raises(ValueError, match="capacity_factor must be a finite number > 0"):
        expert_capacity(10, 4, 1, 0.0)
    with pytest.raises(TypeError, match="capacity_factor must be a positive number or None"):
        MoEFeedForward(D_MODEL, D_FF, capacity_factor="1.25")
    with pytest.raises(ValueError, match="activation must be one of"):
        MoEFeedForward(D_MODEL, D_FF, activation="tanh")
    with pytest.raises(ValueError, match="dispatch must be one of"):
        MoEFeedForward(D_MODEL, D_FF, dispatch="dense")
    with pytest.raises(ValueError, match="num_experts must be >= 1"):
        MoEFeedForward(D_MODEL, D_FF, num_experts=0)
    with pytest.raises(TypeError, match="num_experts must be an int"):
        MoEFeedForward(D_MODEL, D_FF, num_experts=4.0)
    with pytest.raises(ValueError, match="balance_coef must be >= 0"):
        MoEFeedForward(D_MODEL, D_FF, balance_coef=-0.1)
    with pytest.raises(ValueError, match="num_experts must be divisible by the world size"):
        shard_experts(6, 4, 0)
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        shard_experts(8, 4, 4)
    with pytest.raises(ValueError, match=r"probs \(T, N\) and expert_ids \(T, k\) with the same T"):
        load_balancing_loss(torch.rand(4, 3), torch.zeros(5, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"logits of shape \(T, N\)"):
        router_z_loss(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="world_size=2"):
        expert_parallel_worker(0, 2, {}, {}, torch.zeros(3, 4, D_MODEL), torch.zeros(3, 4, D_MODEL))


def test_expert_parallel_needs_a_process_group() -> None:
    with pytest.raises(RuntimeError, match="initialised torch.distributed process group"):
        ExpertParallelMoE(D_MODEL, D_FF, num_experts=4)


def test_shard_experts() -> None:
    assert [list(shard_experts(8, 4, r)) for r in range(4)] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert list(shard_experts(4, 1, 0)) == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------
# Expert parallelism over real processes
# ---------------------------------------------------------------------------------------------


def _single_process_reference(
    moe_kwargs: dict, state: dict, inputs: torch.Tensor, grad_outputs: torch.Tensor
) -> dict:
    """The layer on each rank's tokens in turn; gradients of the sum of the ranks' losses."""
    layer = MoEFeedForward(**moe_kwargs)
    layer.load_state_dict(state)
    x = inputs.clone().requires_grad_(True)
    outputs, aux, stats, loss = [], [], [], 0.0
    for rank in range(inputs.shape[0]):
        out = layer(x[rank])
        outputs.append(out.detach())
        aux.append(layer.aux_loss.detach())
        stats.append(layer.stats.as_dict())
        loss = loss + (out * grad_outputs[rank]).sum() + layer.aux_loss
    loss.backward()
    grads = {
        n: (p.grad if p.grad is not None else torch.zeros_like(p))
        for n, p in layer.named_parameters()
    }
    return {"outputs": outputs, "aux": aux, "stats": stats, "x_grad": x.grad, "grads": grads}


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.parametrize(
    ("world_size", "num_experts", "top_k", "capacity_factor", "starve_last_rank"),
    [(2, 4, 1, 1.0, False), (4, 8, 2, None, True)],
)
def test_expert_parallel_matches_single_process(
    world_size: int,
    num_experts: int,
    top_k: int,
    capacity_factor: float | None,
    starve_last_rank: bool,
) -> None:
    from shared.distributed import run_distributed

    moe_kwargs = {
        "d_model": D_MODEL,
        "d_ff": D_FF,
        "num_experts": num_experts,
        "top_k": top_k,
        "capacity_factor": capacity_factor,
    }
    torch.manual_seed(0)
    state = MoEFeedForward(**moe_kwargs).state_dict()
    inputs = torch.randn(world_size, 2, 9, D_MODEL)
    if starve_last_rank:
        # Feature 0 is constant and the last rank's experts hate it: that rank receives no tokens,
        # and must still take part in every exchange, forward and backward.
        inputs[..., 0] = 1.0
        state["router.gate.weight"][-num_experts // world_size :, 0] = -50.0
    grad_outputs = torch.randn_like(inputs)
    results = run_distributed(
        expert_parallel_worker, world_size, moe_kwargs, state, inputs, grad_outputs, timeout_s=240
    )
    ref = _single_process_reference(moe_kwargs, state, inputs, grad_outputs)

    if starve_last_rank:
        assert all(sum(s["load"][-num_experts // world_size :]) == 0 for s in ref["stats"])
    else:
        assert any(s["drop_rate"] > 0 for s in ref["stats"])  # the capacity does bite
    expert_grads = {}
    for rank, result in enumerate(results):
        torch.testing.assert_close(result["output"], ref["outputs"][rank], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(result["input_grad"], ref["x_grad"][rank], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(result["aux_loss"], ref["aux"][rank], rtol=1e-6, atol=1e-6)
        assert result["stats"] == ref["stats"][rank]
        for name, grad in result["router_grads"].items():
            torch.testing.assert_close(grad, ref["grads"][name], rtol=1e-5, atol=1e-5)
        expert_grads.update(result["expert_grads"])
    expert_names = {n for n in ref["grads"] if n.startswith("experts.")}
    assert expert_grads.keys() == expert_names  # every expert lives on exactly one rank
    for name in expert_names:
        torch.testing.assert_close(expert_grads[name], ref["grads"][name], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# The contract with shared.models: a Switch-style GPT
# ---------------------------------------------------------------------------------------------


def test_switch_gpt_trains_and_its_loss_includes_the_aux_loss() -> None:
    from shared.models import GPT, GPTConfig

    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=32,
        block_size=16,
        n_layer=4,
        n_head=2,
        d_model=32,
        moe_layers=[1, 3],
        moe={
            "num_experts": 4,
            "top_k": 1,
            "capacity_factor": 1.25,
            "balance_coef": 0.01,
            "z_loss_coef": 0.001,
        },
    )
    model = GPT(config)
    moe_layers = [block.ffn for block in model.blocks if isinstance(block.ffn, MoEFeedForward)]
    assert (
        len(moe_layers) == 2
        and moe_layers[0] is model.blocks[1].ffn
        and moe_layers[1] is model.blocks[3].ffn
    )
    # A learnable sequence task: each next token is the current one plus one (mod 32).
    start = torch.randint(0, 32, (8, 1))
    seq = (start + torch.arange(17)) % 32
    idx, targets = seq[:, :-1], seq[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        output = model(idx, targets)
        cross_entropy = F.cross_entropy(output.logits.reshape(-1, 32), targets.reshape(-1))
        expected_aux = moe_layers[0].aux_loss + moe_layers[1].aux_loss
        torch.testing.assert_close(output.aux_loss, expected_aux)
        torch.testing.assert_close(output.loss, cross_entropy + expected_aux)
        assert float(output.aux_loss.detach()) > 0
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(float(output.loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    # The aux loss alone reaches the routers.
    model.zero_grad(set_to_none=True)
    model(idx, targets).aux_loss.backward()
    assert all(layer.router.gate.weight.grad.abs().sum() > 0 for layer in moe_layers)
    stats = model.moe_stats()
    assert sorted(stats) == [1, 3] and stats[1].tokens == 8 * 16 and sum(stats[1].load) == 128
