"""Copy the book's sources into a scratch folder (default _stage/; nbmake skips any path with a "_build" part).

The notebook run executes the staged copies in place (`nbmake --overwrite`), and Jupyter Book
builds the site from them with `execute_notebooks: off`. So every notebook is executed once per
run, and the committed `.ipynb` files stay free of outputs. Only what the book reads is copied:
Markdown pages, notebooks, the book's configuration and images.

Used by: the Makefile (`make test`, `make book`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("_config.yml", "_toc.yml", "intro.md", "references.bib")
FOLDERS = ("modules", "labs", "images", "_static")
SUFFIXES = {".md", ".ipynb", ".png", ".svg", ".jpg", ".css", ".js", ".bib", ".txt", ".json", ".csv"}


def stage(dest: Path, root: Path = REPO_ROOT) -> int:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copied = 0
    for name in TOP_LEVEL:
        if (root / name).exists():
            shutil.copy2(root / name, dest / name)
            copied += 1
    for folder in FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.suffix not in SUFFIXES:
                continue
            if any(part in {".ipynb_checkpoints", "_build", "__pycache__"} for part in path.parts):
                continue
            target = dest / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied += 1
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, nargs="?", default=REPO_ROOT / "_stage")
    args = parser.parse_args(argv)
    count = stage(args.dest.resolve())
    print(f"staged {count} files in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
