"""The notebook run (`make test-notebooks`) fails when a notebook raises, skips GPU notebooks
without CUDA and says why, and records every notebook's duration for the status page.

These tests run the same pytest command as the Makefile on notebooks written to a temp folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from tests.mini_course import NOTEBOOK_SOURCE

pytestmark = pytest.mark.slow


def _run_nbmake(folder: Path, repo_root: Path) -> tuple[subprocess.CompletedProcess, dict]:
    status_file = folder / "status.json"
    cmd = [sys.executable, "-m", "pytest", "-p", "scripts.nb_plugin", "--nbmake",
           "--nbmake-timeout=60", f"--status-file={status_file}", f"--notebook-root={folder}",
           "-o", "addopts=-ra", "-p", "no:cacheprovider", str(folder)]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=300)
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    return proc, status


def _write_notebook(path: Path, source: str, metadata: dict | None = None) -> None:
    nb = jupytext.reads(source, fmt="py:percent")
    nb.metadata.update(metadata or {})
    jupytext.write(nb, path, fmt="ipynb")


def test_passing_notebook_is_recorded(tmp_path: Path, repo_root: Path) -> None:
    _write_notebook(tmp_path / "ok.ipynb", NOTEBOOK_SOURCE)
    proc, status = _run_nbmake(tmp_path, repo_root)
    assert proc.returncode == 0, proc.stdout[-3000:]
    entry = status["notebooks"]["ok.ipynb"]
    assert entry["outcome"] == "passed" and entry["duration_s"] > 0
    assert status["hardware"]["cores"] >= 1 and "torch" in status["versions"]


def test_notebook_that_raises_fails_the_run(tmp_path: Path, repo_root: Path) -> None:
    broken = NOTEBOOK_SOURCE.replace("total = 1 + 1", "total = 1 / 0")
    _write_notebook(tmp_path / "broken.ipynb", broken)
    proc, status = _run_nbmake(tmp_path, repo_root)
    assert proc.returncode != 0
    assert "ZeroDivisionError" in proc.stdout
    assert status["notebooks"]["broken.ipynb"]["outcome"] == "failed"


def test_gpu_notebook_is_skipped_without_cuda(tmp_path: Path, repo_root: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the skip path is exercised on CPU-only machines")
    gpu_only = NOTEBOOK_SOURCE.replace("total = 1 + 1", "import torch\ntotal = torch.ones(1, device='cuda')")
    _write_notebook(tmp_path / "gpu.ipynb", gpu_only, {"requires": "gpu"})
    proc, status = _run_nbmake(tmp_path, repo_root)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "requires: gpu" in proc.stdout  # the reason is shown in the report
    entry = status["notebooks"]["gpu.ipynb"]
    assert entry["outcome"] == "skipped" and "no CUDA" in entry["reason"]
