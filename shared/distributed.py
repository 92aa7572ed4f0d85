"""Run a function on N `torch.distributed` worker processes on this machine (127.0.0.1).

This is the one piece of process plumbing behind expert parallelism (`shared.moe`) and ring
attention across processes (`shared.attention`), and behind the notebooks that show them. The same
worker functions run unchanged under `torchrun` on several machines: only the launcher differs.

Workers meet through a file in a temporary folder (a `FileStore`: no TCP server, unlike a
``tcp://`` rendezvous, whose store listens on every interface), talk over the loopback interface
(gloo on CPU, NCCL when every rank has its own GPU), and are always torn down: the process group
is destroyed in each worker, and the launcher joins or kills every process it started, even when
one of them fails. `local_process_group` gives the notebook's own process a one-rank group in the
same way, for libraries that need one (DeepSpeed's MoE layer).

Used in: modules/20-advanced-topics (01-mixture-of-experts, 02-long-context-ring-attention),
`shared.moe`, `shared.attention`, tests/test_moe.py, tests/test_attention.py.
"""

from __future__ import annotations

import os
import contextlib
import pickle
import socket
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _worker(
    rank: int,
    world_size: int,
    backend: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    result_dir: str,
    threads: int,
) -> None:
    import torch
    import torch.distributed as dist

    os.environ["GLOO_SOCKET_IFNAME"] = os.environ.get("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(threads)
    result_path = Path(result_dir) / f"rank{rank}.pkl"
    try:
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                init_method=f"file://{result_dir}/rendezvous")
        try:
            result = fn(rank, world_size, *args)
        finally:
            dist.destroy_process_group()
        payload = ("ok", result)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent with the traceback
        payload = ("error", f"rank {rank}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    tmp_path = result_path.with_suffix(".tmp")
    with open(tmp_path, "wb") as handle:
        pickle.dump(payload, handle)
    os.replace(tmp_path, result_path)  # atomic: the parent never reads half a result


def _errors(result_dir: Path) -> list[str]:
    """The error reports of the ranks that failed so far, in rank order."""
    found = []
    for path in sorted(result_dir.glob("rank*.pkl")):
        try:
            status, value = pickle.loads(path.read_bytes())
        except (EOFError, pickle.UnpicklingError):  # still being written
            continue
        if status == "error":
            found.append(value)
    return found


def run_distributed(
    fn: Callable[..., Any],
    world_size: int,
    *args: Any,
    backend: str = "gloo",
    timeout_s: float = 300.0,
    threads_per_rank: int | None = None,
) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` on ``world_size`` processes; return each rank's result.

    ``fn`` must be importable by the worker processes (defined at module level in a module or a
    file on the path, not in a notebook cell: spawned processes re-import it). Results travel back
    with pickle. If any rank raises, this raises a ``RuntimeError`` carrying that rank's
    traceback, after stopping every worker.
    """
    import torch.multiprocessing as mp

    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl":
        import torch

        if torch.cuda.device_count() < world_size:
            raise ValueError(f"backend 'nccl' needs {world_size} GPUs, found {torch.cuda.device_count()}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if threads_per_rank is None:
        threads_per_rank = max(1, (os.cpu_count() or 1) // world_size)
    with tempfile.TemporaryDirectory(prefix="course-dist-") as result_dir:
        context = mp.start_processes(
            _worker,
            args=(world_size, backend, fn, args, result_dir, threads_per_rank),
            nprocs=world_size,
            join=False,
            start_method="spawn",
        )
        try:
            import time

            deadline = time.monotonic() + timeout_s
            while not context.join(timeout=0.2):
                # A failed rank leaves its peers blocked in a collective: stop them all at once.
                errors = _errors(Path(result_dir))
                if errors:
                    time.sleep(0.5)  # let the other ranks report what they saw, then stop them
                    raise RuntimeError("distributed worker(s) failed:\n" + "\n".join(_errors(Path(result_dir))))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"distributed run did not finish within {timeout_s} s")
        except mp.ProcessRaisedException as exc:  # pragma: no cover - _worker catches everything
            raise RuntimeError(str(exc)) from None
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
                process.join(timeout=5)
        results = []
        for rank in range(world_size):
            path = Path(result_dir) / f"rank{rank}.pkl"
            if not path.exists():
                raise RuntimeError(f"rank {rank} exited without a result (killed or crashed)")
            status, value = pickle.loads(path.read_bytes())
            if status == "error":
                raise RuntimeError("distributed worker(s) failed:\n" + "\n".join(_errors(Path(result_dir))))
            results.append(value)
    return results


@contextlib.contextmanager
def local_process_group(backend: str = "gloo") -> Iterator[None]:
    """A one-rank `torch.distributed` process group in this process, destroyed on exit.

    For libraries that need a process group even on one device, such as DeepSpeed's MoE layer
    (it creates an expert-parallel group). The rendezvous is a file in a temporary folder, so no
    TCP server is started; gloo uses the loopback interface. Raises ``RuntimeError`` if a group
    already exists (it would be destroyed on exit).

    Used in: modules/20-advanced-topics/01-mixture-of-experts (the DeepSpeed MoE layer).
    """
    import torch.distributed as dist

    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if dist.is_initialized():
        raise RuntimeError("a torch.distributed process group already exists in this process")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    with tempfile.TemporaryDirectory(prefix="course-dist-") as folder:
        dist.init_process_group(backend, rank=0, world_size=1,
                                init_method=f"file://{folder}/rendezvous")
        try:
            yield
        finally:
            dist.destroy_process_group()
