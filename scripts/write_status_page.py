"""Write the book's status page from the notebook run's status file.

    python -m scripts.write_status_page _build/notebook-status.json _stage/status.md

The page lists every notebook's last outcome and execution time, the hardware it ran on and the
versions of the key libraries, in the manner of QuantEcon's lecture status pages.
Used by: `make book`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BUDGET_S = 60.0


def render(status: dict) -> str:
    notebooks = status.get("notebooks", {})
    hw = status.get("hardware", {})
    versions = status.get("versions", {})
    total = sum(e["duration_s"] for e in notebooks.values())
    over = [k for k, e in notebooks.items() if e["duration_s"] > BUDGET_S]
    lines = [
        "# Execution status",
        "",
        "Every notebook of the course is executed on every change, on a CPU-only machine, and the",
        "book shows the outputs of that run. This page is written from the latest run.",
        "",
        f"- Run finished: {status.get('finished_at', 'unknown')} (UTC)",
        f"- Hardware: {hw.get('cpu', 'unknown')}, {hw.get('cores', '?')} cores, "
        f"{hw.get('memory_gib', '?')} GiB memory, GPU: {hw.get('gpu', 'none')}",
        f"- Platform: {hw.get('platform', 'unknown')}, Python {hw.get('python', '?')}",
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- Notebooks: {len(notebooks)}, total execution time {total:.0f} s; "
        f"budget per notebook {BUDGET_S:.0f} s"
        + (f"; over budget: {', '.join(over)}" if over else "; none over budget"),
        "",
        "| Notebook | Result | Time (s) |",
        "|---|---|---:|",
    ]
    for key, entry in sorted(notebooks.items()):
        page = key.removesuffix(".ipynb")
        result = entry["outcome"]
        if entry.get("reason"):
            result += f" ({entry['reason']})"
        lines.append(f"| [{page}](/{page}) | {result} | {entry['duration_s']:.1f} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, dest = map(Path, argv)
    if not src.exists():
        print(f"no status file at {src}; run the notebooks first (make test-notebooks)", file=sys.stderr)
        return 1
    dest.write_text(render(json.loads(src.read_text(encoding="utf-8"))), encoding="utf-8")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
