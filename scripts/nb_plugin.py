"""pytest plugin for the notebook run (`make test`, `make book`): GPU skips and a status file.

Loaded with ``pytest -p scripts.nb_plugin --nbmake ...``. It

* skips notebooks whose metadata says ``requires: gpu`` when torch sees no CUDA device, with the
  reason in the test report;
* writes every notebook's outcome and duration, with the hardware and key library versions, to
  the JSON file named by ``--status-file`` (default ``_build/notebook-status.json``); the book's
  status page is built from it (scripts/write_status_page.py).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
from pathlib import Path

import pytest

GPU_SKIP_REASON = "notebook metadata says requires: gpu, and torch sees no CUDA device here"
KEY_PACKAGES = ("torch", "transformers", "jupyter-book", "nbmake", "numpy")
_results: dict[str, dict] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--status-file",
        default="_build/notebook-status.json",
        help="where to write per-notebook outcomes and durations (JSON)",
    )
    parser.addoption(
        "--notebook-root",
        default=".",
        help="paths in the status file are relative to this folder",
    )


def notebook_requires_gpu(path: Path) -> bool:
    """True when the notebook's metadata has ``requires: gpu``."""
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, json.JSONDecodeError):
        return False
    return str(meta.get("requires", "")).lower() == "gpu"


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if str(item.path).endswith(".ipynb")
                 and notebook_requires_gpu(item.path)]
    if gpu_items and not _cuda_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=GPU_SKIP_REASON))


def _key(config: pytest.Config, path: Path) -> str:
    root = Path(config.getoption("--notebook-root")).resolve()
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.split("::")[0].endswith(".ipynb"):
        return
    entry = _results.setdefault(report.nodeid, {"outcome": "passed", "duration_s": 0.0})
    entry["duration_s"] += float(report.duration)
    if report.skipped:
        entry["outcome"] = "skipped"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        entry["reason"] = reason.removeprefix("Skipped: ")
    elif report.failed:
        entry["outcome"] = "failed"


def _versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _hardware() -> dict[str, str | int | None]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "gpu": "none (CPU only)",
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _results:
        return
    config = session.config
    notebooks = {}
    for nodeid, entry in sorted(_results.items()):
        path = nodeid.split("::")[0]
        notebooks[_key(config, Path(config.rootpath) / path)] = {
            **entry,
            "duration_s": round(entry["duration_s"], 2),
        }
    hardware = _hardware()
    if any(e["outcome"] != "skipped" for e in notebooks.values()) and "torch" in __import__("sys").modules:
        import torch

        if torch.cuda.is_available():
            hardware["gpu"] = torch.cuda.get_device_name(0)
    status = {
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware,
        "versions": _versions(),
        "notebooks": notebooks,
    }
    out = Path(config.getoption("--status-file"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(status, indent=2) + "\n", encoding="utf-8")
