"""Shared test configuration.

The offline variables are set here, before any test module imports transformers or datasets
(they read them at import time), so that `pytest` run by hand behaves like `make test`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TQDM_DISABLE": "1",
    "MPLBACKEND": "Agg",
}.items():
    os.environ.setdefault(_name, _value)

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # for `import scripts.*`

import pytest  # noqa: E402

from tests.mini_course import make_mini_course  # noqa: E402,F401


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def mini_course(tmp_path: Path) -> Path:
    """A tiny, valid course (one module, one notebook) in a temporary folder, to break in tests."""
    return make_mini_course(tmp_path / "course")


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: tiny models run fastest so, and do not fight other jobs.

    Test modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
