"""The cheap core of `shared`: import cost, seeding, device choice, the environment line, paths."""

from __future__ import annotations

import subprocess
import sys

import pytest

import shared
from shared import paths


def test_import_shared_is_cheap_and_torch_free() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import shared; dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'transformers', 'codecarbon', 'numpy', 'matplotlib') "
        "if m in sys.modules]; print(repr((dt, heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, heavy = eval(out.stdout.strip())  # noqa: S307 - our own repr of (float, list)
    assert heavy == [], f"import shared pulled in {heavy}"
    # Not a speed assertion: a generous bound that only catches an import of a heavy library.
    assert seconds < 0.5


def test_lazy_submodule_access() -> None:
    assert shared.exercises.check_equal is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        shared.nope  # noqa: B018


def test_seed_everything_makes_runs_repeatable() -> None:
    import random

    import numpy as np
    import torch

    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    shared.seed_everything(123)
    first = draw()
    shared.seed_everything(123)
    assert draw() == first
    shared.seed_everything(124)
    assert draw() != first


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "1", True])
def test_seed_everything_rejects_bad_seeds(bad) -> None:
    with pytest.raises((TypeError, ValueError), match="seed must be"):
        shared.seed_everything(bad)


def test_get_device() -> None:
    import torch

    assert shared.get_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert shared.get_device().type == expected
    with pytest.raises(ValueError, match="prefer must be"):
        shared.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            shared.get_device("cuda")


def test_environment_summary_names_versions_and_device() -> None:
    import numpy as np
    import torch

    line = shared.environment_summary("numpy", "not-a-real-package")
    assert line.startswith("Python 3.")
    assert f"torch {torch.__version__}" in line
    assert "device cpu" in line or "device cuda" in line
    assert f"numpy {np.__version__}" in line
    assert "not-a-real-package not installed" in line
    with pytest.raises(TypeError):
        shared.environment_summary("")


def test_data_file() -> None:
    path = paths.data_file("tinyshakespeare.txt")
    assert path.stat().st_size == 1_115_394
    with pytest.raises(FileNotFoundError, match="available files"):
        paths.data_file("missing.txt")
    with pytest.raises(ValueError, match="inside"):
        paths.data_file("../README.md")
    with pytest.raises(ValueError):
        paths.data_file("")


def test_tinyshakespeare_checksum_matches_data_readme() -> None:
    import hashlib

    digest = hashlib.sha256(paths.data_file("tinyshakespeare.txt").read_bytes()).hexdigest()
    assert digest in (paths.DATA_DIR / "README.md").read_text()
