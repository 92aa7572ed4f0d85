"""Run the benchmarks and record their results in benchmarks/results.json.

    python -m benchmarks.run                 # every benchmarks/bench_*.py
    python -m benchmarks.run moe attention   # only these sections; others keep their last result

Each `benchmarks/bench_<section>.py` defines ``run() -> dict``. The dict holds the measured
figures, the targets and whether each was met. Figures are ratios within one run (e.g. cached vs
uncached tokens/s measured back to back), never absolute times compared across machines. The
machine each section ran on is recorded with it.

Used by: `make bench`; the README's benchmark section quotes results.json.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def sections() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    available = sections()
    chosen = argv or available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        print(f"unknown benchmark section(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    failed = []
    for name in chosen:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        section = module.run()
        section["wall_s"] = round(time.perf_counter() - start, 1)
        section["machine"] = machine()
        section["measured_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        results[name] = section
        print(json.dumps(section, indent=2), flush=True)
        if section.get("targets_met") is False:
            failed.append(name)
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")
    if failed:
        print(f"targets missed in: {failed} (see each section's 'notes')")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
