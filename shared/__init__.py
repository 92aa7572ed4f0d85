"""`shared`: the helper library of the course.

Notebooks import it so that they can teach instead of repeating plumbing. Importing `shared` is
cheap: it imports no torch, transformers or codecarbon. Submodules load on first use
(`shared.models`, `shared.exercises`, ...), and the helpers below import torch inside the call.

Each public helper's docstring names the notebooks that use it ("Used in: ..."), in the manner of
d2l's `#@save` index, so a reader can go from the library back to the lessons.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from shared.env import environment_summary, get_device, seed_everything
from shared.paths import DATA_DIR, REPO_ROOT

__version__ = "0.1.0"

# transformers and sentence-transformers import `tqdm.auto`, which in a Jupyter kernel without
# ipywidgets (the course does not install it; bars fall back to text or are off) warns
# "IProgress not found" on stderr. The warning says nothing about the lesson, so it is silenced
# here for imports that happen after `import shared` (for example inside `shared.assets`).
warnings.filterwarnings("ignore", message="IProgress not found")

__all__ = [
    "DATA_DIR",
    "REPO_ROOT",
    "environment_summary",
    "get_device",
    "seed_everything",
]

# Submodules that `shared.<name>` loads on first attribute access (PEP 562), so that
# `import shared` stays fast and torch-free.
_LAZY_SUBMODULES = frozenset(
    {
        "agents",
        "assets",
        "attention",
        "checkpoints",
        "data",
        "energy",
        "exercises",
        "distributed",
        "generation",
        "layers",
        "models",
        "moe",
        "paths",
        "plotting",
        "serving",
        "training",
    }
)


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"shared.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'shared' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | _LAZY_SUBMODULES)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from shared import exercises  # noqa: F401
