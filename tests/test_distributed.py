"""`shared.distributed.run_distributed`: real gloo processes on 127.0.0.1, results back, failures
reported with the failing rank's traceback."""

from __future__ import annotations

import pytest

from shared.distributed import free_port, local_process_group, run_distributed

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


def _listening_addresses(rank: int, world_size: int) -> list[str]:
    import psutil
    import torch
    import torch.distributed as dist

    dist.all_reduce(torch.ones(1))  # the group is up and has talked
    return sorted({c.laddr.ip for c in psutil.Process().net_connections(kind="inet")
                   if c.status == psutil.CONN_LISTEN})


def test_workers_listen_on_loopback_only() -> None:
    for addresses in run_distributed(_listening_addresses, 2):
        assert addresses and set(addresses) <= {"127.0.0.1"}, addresses


def test_local_process_group_is_one_rank_on_loopback_and_cleaned_up() -> None:
    import psutil
    import torch
    import torch.distributed as dist

    with local_process_group():
        assert dist.get_world_size() == 1
        t = torch.tensor([3.0])
        dist.all_reduce(t)
        assert float(t) == 3.0
        listening = {c.laddr.ip for c in psutil.Process().net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN}
        assert listening <= {"127.0.0.1"}, listening
        with pytest.raises(RuntimeError, match="already exists"):
            with local_process_group():
                pass
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="backend"):
        with local_process_group("mpi"):
            pass
