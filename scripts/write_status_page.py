"""Write the book's status page from the notebook run's status file.

    python -m scripts.write_status_page _build/notebook-status.json _stage/status.md

The page shows, in the manner of QuantEcon's lecture status pages, every notebook's last result
and execution time, grouped by module and lab with subtotals, each linked to its page and measured
against the 60-second budget per notebook; then the totals, the hardware of the run and the
versions of the key libraries. Notebook titles and module names are read from the staged book
next to the output file.
Used by: `make book`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from scripts.course_checks import toc_files

BUDGET_S = 60.0


def _title(path: Path) -> str | None:
    """The first ``# Heading`` of a Markdown page or of a notebook's first markdown cell."""
    if not path.exists():
        return None
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        text = next(
            (
                "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                for c in cells
                if c.get("cell_type") == "markdown"
            ),
            "",
        )
    else:
        text = path.read_text(encoding="utf-8")
    match = re.search(r"^#\s+(.+?)\s*$", text, re.M)
    return match.group(1) if match else None


def _group_of(key: str) -> str:
    """``modules/00-foundations/01-x.ipynb`` -> ``modules/00-foundations``."""
    parts = Path(key).parts
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def _group_title(book: Path, group: str) -> str:
    page = book / group / ("README.md" if group.startswith("labs/") else "index.md")
    title = _title(page)
    if title:
        return title
    return ("Lab: " if group.startswith("labs/") else "Module ") + group.split("/", 1)[-1]


def _result(entry: dict) -> str:
    result = entry["outcome"]
    if result == "failed":
        return "**failed**"
    if entry.get("reason"):
        result += f" ({entry['reason']})"
    return result


def _time(entry: dict) -> str:
    seconds = entry["duration_s"]
    if entry["outcome"] == "skipped":
        return "-"
    text = f"{seconds:.1f}"
    return f"**{text} (over budget)**" if seconds > BUDGET_S else text


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.0f} s"


def render(status: dict, book: Path | None = None) -> str:
    """The status page (MyST Markdown) for ``status``.

    ``book`` is the staged book, where titles are read and whose pages are linked.
    """
    notebooks = status.get("notebooks", {})
    hw = status.get("hardware", {})
    versions = status.get("versions", {})
    linkable = set(toc_files(book)) if book is not None and (book / "_toc.yml").exists() else set()

    def name(key: str) -> str:
        return (_title(book / key) if book is not None else None) or key.removesuffix(".ipynb")

    def link(key: str) -> str:
        return f"[{name(key)}]({key})" if key.removesuffix(".ipynb") in linkable else name(key)

    executed = {k: e for k, e in notebooks.items() if e["outcome"] != "skipped"}
    total = sum(e["duration_s"] for e in executed.values())
    over = sorted(k for k, e in executed.items() if e["duration_s"] > BUDGET_S)
    counts = {
        outcome: sum(e["outcome"] == outcome for e in notebooks.values())
        for outcome in ("passed", "failed", "skipped")
    }
    slowest = max(executed, key=lambda k: executed[k]["duration_s"], default=None)

    lines = [
        "# Execution status",
        "",
        "Every notebook of the course is executed on every change to the course, on a CPU-only",
        "machine without network access, and the pages of this book show the outputs of that run.",
        "This page is written from the latest run. The budget is "
        f"{BUDGET_S:.0f} s per notebook, from kernel start; times above it are marked.",
        "",
        f"- **Run finished:** {status.get('finished_at', 'unknown')} (UTC)",
        f"- **Notebooks:** {len(notebooks)}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped",
        f"- **Total execution time:** {_minutes(total)}"
        + (
            f"; the slowest is {link(slowest)} ({executed[slowest]['duration_s']:.1f} s)"
            if slowest
            else ""
        ),
        "- **Over the budget:** " + (", ".join(link(k) for k in over) if over else "none"),
        f"- **Machine:** {hw.get('cpu', 'unknown')}, {hw.get('cores', '?')} cores, "
        f"{hw.get('memory_gib', '?')} GiB memory, GPU: {hw.get('gpu', 'none')}; "
        "see [Environment](#environment)",
        "",
    ]
    groups: dict[str, list[str]] = {}
    for key in sorted(notebooks):
        groups.setdefault(_group_of(key), []).append(key)
    # Modules first (in their numbered order), then labs.
    for group in sorted(groups, key=lambda g: (g.startswith("labs/"), g)):
        keys = groups[group]
        group_time = sum(
            notebooks[k]["duration_s"] for k in keys if notebooks[k]["outcome"] != "skipped"
        )
        title = _group_title(book, group) if book is not None else group
        lines += [
            f"## {title}",
            "",
            f"{len(keys)} notebook{'s' if len(keys) != 1 else ''}, {_minutes(group_time)} in all.",
            "",
            "| Notebook | Result | Time (s) | Share of the budget |",
            "|---|---|---:|---:|",
        ]
        for key in keys:
            entry = notebooks[key]
            share = (
                "-" if entry["outcome"] == "skipped" else f"{entry['duration_s'] / BUDGET_S:.0%}"
            )
            lines.append(f"| {link(key)} | {_result(entry)} | {_time(entry)} | {share} |")
        lines.append("")
    lines += [
        "(environment)=",
        "## Environment",
        "",
        f"- **CPU:** {hw.get('cpu', 'unknown')}, {hw.get('cores', '?')} cores",
        f"- **Memory:** {hw.get('memory_gib', '?')} GiB",
        f"- **GPU:** {hw.get('gpu', 'none')}",
        f"- **Platform:** {hw.get('platform', 'unknown')}, Python {hw.get('python', '?')}",
        "- **Libraries:** " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        "",
    ]
    return "\n".join(lines)


def missing_notebooks(status: dict, book: Path) -> list[str]:
    """Notebooks of the staged ``book`` (under modules/ and labs/) that the run did not report.

    A notebook that was never collected (a path left out of the pytest command) would otherwise
    go unnoticed: the book would show it unexecuted and this page would not list it.
    """
    reported = set(status.get("notebooks", {}))
    found = sorted(
        str(path.relative_to(book))
        for folder in ("modules", "labs")
        for path in (book / folder).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in path.parts
    )
    return [key for key in found if key not in reported]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, dest = map(Path, argv)
    if not src.exists():
        print(
            f"no status file at {src}; run the notebooks first (make test-notebooks)",
            file=sys.stderr,
        )
        return 1
    status = json.loads(src.read_text(encoding="utf-8"))
    missing = missing_notebooks(status, dest.parent)
    if missing:
        print(
            f"the notebook run in {src} has no result for {len(missing)} notebook(s) of the book: "
            + ", ".join(missing)
            + "; every notebook must be executed (see the test-notebooks target)",
            file=sys.stderr,
        )
        return 1
    dest.write_text(render(status, dest.parent), encoding="utf-8")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
