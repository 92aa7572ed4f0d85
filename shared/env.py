"""Seeding, device choice and the one-line environment summary of every setup cell.

torch is imported inside the functions, never at module import.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import sys
from typing import Any

_MAX_SEED = 2**32 - 1


def seed_everything(seed: int = 0) -> int:
    """Seed Python's, NumPy's and torch's random generators (all devices) and return the seed.

    The same seed gives the same numbers on every run of a notebook on the same machine and
    library versions; that is what makes the executed book reproducible.

    Used in: the setup cell of every notebook.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be in [0, {_MAX_SEED}], got {seed}")
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is in requirements.txt
        pass
    else:
        np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is in requirements.txt
        pass
    else:
        torch.manual_seed(seed)  # seeds the CPU and every CUDA device
    return seed


def get_device(prefer: str | None = None) -> Any:
    """Return the `torch.device` to run on: CUDA when present, else CPU.

    ``prefer="cpu"`` forces the CPU; ``prefer="cuda"`` raises if no CUDA device is present, so a
    GPU-only notebook fails with a clear message instead of silently running for hours on a CPU.

    Used in: the setup cell of every notebook that runs a model.
    """
    import torch

    if prefer not in (None, "cpu", "cuda"):
        raise ValueError(f"prefer must be None, 'cpu' or 'cuda', got {prefer!r}")
    if prefer == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if prefer == "cuda":
        raise RuntimeError("prefer='cuda' was requested but torch sees no CUDA device")
    return torch.device("cpu")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_summary(*packages: str) -> str:
    """One line naming Python, torch, the device and the versions of ``packages``.

    Example: ``Python 3.11.7 | torch 2.13.0+cpu | device cpu (2 threads) | numpy 2.4.6``.
    Versions come from package metadata, so naming a package does not import it.

    Used in: the setup cell of every notebook.
    """
    for name in packages:
        if not isinstance(name, str) or not name:
            raise TypeError(f"package names must be non-empty strings, got {name!r}")
    parts = [f"Python {platform.python_version()}"]
    if "torch" in sys.modules or _version("torch") != "not installed":
        import torch

        device = get_device()
        if device.type == "cuda":
            where = f"cuda ({torch.cuda.get_device_name(0)})"
        else:
            threads = torch.get_num_threads()
            where = f"cpu ({threads} thread{'s' if threads != 1 else ''}, {os.cpu_count()} cores)"
        parts += [f"torch {torch.__version__}", f"device {where}"]
    parts += [f"{name} {_version(name)}" for name in packages if name != "torch"]
    return " | ".join(parts)
