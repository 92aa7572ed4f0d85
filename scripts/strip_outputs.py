"""Clear outputs and execution counts of the given notebooks in place (committed notebooks carry
none: the book executes them). Used by `make notebooks`."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def strip(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count = [], None
            changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str]) -> int:
    changed = [p for p in map(Path, argv) if strip(p)]
    for path in changed:
        print(f"stripped outputs from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
