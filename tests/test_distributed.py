"""`shared.distributed.run_distributed`: real gloo processes on 127.0.0.1, results back, failures
reported with the failing rank's traceback."""

from __future__ import annotations

import pytest

from shared.distributed import free_port, run_distributed

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def _all_reduce_rank(rank: int, world_size: int, scale: int) -> float:
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(rank * scale)])
    dist.all_reduce(t)
    return float(t)


def _fail_on_rank_one(rank: int, world_size: int) -> int:
    if rank == 1:
        raise ValueError("boom on purpose")
    return rank


def test_all_reduce_over_gloo() -> None:
    assert run_distributed(_all_reduce_rank, 3, 2) == [6.0, 6.0, 6.0]


def test_worker_failure_is_reported() -> None:
    with pytest.raises(RuntimeError, match=r"(?s)rank 1: ValueError: boom on purpose"):
        run_distributed(_fail_on_rank_one, 2, timeout_s=60)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="world_size"):
        run_distributed(_all_reduce_rank, 0)
    with pytest.raises(ValueError, match="backend"):
        run_distributed(_all_reduce_rank, 2, backend="mpi")
    assert 0 < free_port() < 65536


def _fail_while_peer_waits(rank: int, world_size: int) -> int:
    import torch
    import torch.distributed as dist

    if rank == 1:
        raise ValueError("rank 1 fails before the collective")
    dist.all_reduce(torch.ones(1))  # rank 0 would wait here forever
    return rank


def test_failure_stops_blocked_peers() -> None:
    with pytest.raises(RuntimeError, match=r"(?s)rank 1: ValueError: rank 1 fails before the collective"):
        run_distributed(_fail_while_peer_waits, 2, timeout_s=120)
