"""Copy the book's sources into a scratch folder (default _stage/; nbmake skips "_build" paths).

The notebook run executes the staged copies in place (`nbmake --overwrite`), and Jupyter Book
builds the site from them with `execute_notebooks: off`. So every notebook is executed once per
run, and the committed `.ipynb` files stay free of outputs. Only what the book reads is copied:
Markdown pages, notebooks, the book's configuration and images.

The book's Sphinx extension (scripts/sphinx_exercise_numbers.py) is copied to ``_ext/``. The
staged home page gets the course map, generated from the files so that it stays true as
modules and labs are added: the module table of intro.md (between the ``module-map`` markers)
gains a link for every module that is published (its index page is in _toc.yml) and the list of
its notebooks, and the ``lab-map`` marker becomes the table of published labs. Only pages that
exist are linked, since the build treats a link to a missing page as an error.

Used by: the Makefile (`make test`, `make book`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.course_checks import toc_files

REPO_ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("_config.yml", "_toc.yml", "intro.md", "references.bib")
FOLDERS = ("modules", "labs", "images", "_static")
SUFFIXES = {".md", ".ipynb", ".png", ".svg", ".jpg", ".css", ".js", ".bib", ".txt", ".json", ".csv"}
MAP_START_RE = re.compile(r"^<!-- module-map:start.*-->\s*$")
MAP_END_RE = re.compile(r"^<!-- module-map:end.*-->\s*$")
LAB_MARKER_RE = re.compile(r"^<!-- lab-map.*-->\s*$")
PLAN_ROW_RE = re.compile(
    r"^\|\s*(?P<number>\d\d)\s*\|\s*(?P<title>[^|]+?)\s*\|\s*(?P<topics>[^|]+?)\s*\|\s*$"
)


@dataclass
class Notebook:
    path: str  # relative to the book root, with suffix
    title: str
    requires_gpu: bool


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
    # The book's own Sphinx extension, which _config.yml loads from _ext/ (local_extensions).
    extension = dest / "_ext" / "exercise_numbers.py"
    extension.parent.mkdir()
    shutil.copy2(Path(__file__).with_name("sphinx_exercise_numbers.py"), extension)
    intro = dest / "intro.md"
    if intro.exists():
        intro.write_text(
            render_course_map(intro.read_text(encoding="utf-8"), dest), encoding="utf-8"
        )
    return copied


# --------------------------------------------------------------------------------------------
# The course map of the home page
# --------------------------------------------------------------------------------------------


def _first_heading(markdown: str) -> str | None:
    match = re.search(r"^#\s+(.+?)\s*$", markdown, re.M)
    return match.group(1) if match else None


def _notebook(root: Path, entry: str) -> Notebook | None:
    path = root / f"{entry}.ipynb"
    if not path.exists():
        return None
    nb = json.loads(path.read_text(encoding="utf-8"))
    title = next(
        (
            _first_heading("".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in nb.get("cells", [])
            if c.get("cell_type") == "markdown"
        ),
        None,
    )
    requires_gpu = str(nb.get("metadata", {}).get("requires", "")).lower() == "gpu"
    return Notebook(f"{entry}.ipynb", title or Path(entry).name, requires_gpu)


def _notebook_links(notebooks: list[Notebook]) -> str:
    return "<br>".join(
        f"[{nb.title}]({nb.path})" + (" (GPU)" if nb.requires_gpu else "") for nb in notebooks
    )


def _hardware(notebooks: list[Notebook]) -> str:
    gpu = [nb for nb in notebooks if nb.requires_gpu]
    return "CPU" if not gpu else f"GPU for {len(gpu)} of {len(notebooks)} notebooks, CPU otherwise"


def module_rows(plan: list[tuple[str, str, str]], root: Path) -> list[str]:
    """The module table: one row per planned module, with links for the published ones.

    ``plan`` holds (number, title, topics) from intro.md. A module is published when its
    ``modules/NN-slug/index.md`` is in _toc.yml; a published module missing from the plan is
    added with the title of its index page.
    """
    listed = toc_files(root)
    published = {}
    for entry in listed:
        match = re.fullmatch(r"modules/(\d\d)-[^/]+/index", entry)
        if match and (root / f"{entry}.md").exists():
            published[match.group(1)] = entry
    rows = {number: (title, topics) for number, title, topics in plan}
    for number, entry in published.items():
        if number not in rows:
            heading = _first_heading((root / f"{entry}.md").read_text(encoding="utf-8")) or entry
            rows[number] = (re.sub(r"^Module\s+\d+\s*:\s*", "", heading), "")
    lines = ["| Module | Title | Topics | Notebooks |", "|---|---|---|---|"]
    for number in sorted(rows):
        title, topics = rows[number]
        entry = published.get(number)
        if entry is None:
            lines.append(f"| {number} | {title} | {topics} | planned |")
            continue
        folder = entry.rsplit("/", 1)[0]
        notebooks = [
            nb
            for e in listed
            if e.startswith(folder + "/")
            if (nb := _notebook(root, e)) is not None
        ]
        links = _notebook_links(notebooks) or "none yet"
        lines.append(f"| {number} | [{title}]({entry}.md) | {topics} | {links} |")
    return lines


def lab_rows(root: Path) -> list[str]:
    """The table of published labs (a lab is published when its README is in _toc.yml)."""
    listed = toc_files(root)
    labs = [
        entry
        for entry in listed
        if re.fullmatch(r"labs/[^/]+/README", entry) and (root / f"{entry}.md").exists()
    ]
    if not labs:
        return [
            "No lab is published yet. Each lab will appear here with its brief, its notebooks "
            "and the hardware it needs."
        ]
    lines = ["| Lab | Notebooks | Hardware |", "|---|---|---|"]
    for entry in labs:
        folder = entry.rsplit("/", 1)[0]
        title = _first_heading((root / f"{entry}.md").read_text(encoding="utf-8")) or folder
        notebooks = [
            nb
            for e in listed
            if e.startswith(folder + "/")
            if (nb := _notebook(root, e)) is not None
        ]
        lines.append(
            f"| [{title}]({entry}.md) | {_notebook_links(notebooks) or 'none yet'} | "
            f"{_hardware(notebooks)} |"
        )
    return lines


def render_course_map(intro: str, root: Path) -> str:
    """Return ``intro`` with the module and lab tables generated from the book at ``root``.

    A page without any of the markers is returned as it is; a page with some raises ValueError.
    """
    lines = intro.split("\n")
    starts = [i for i, line in enumerate(lines) if MAP_START_RE.match(line)]
    ends = [i for i, line in enumerate(lines) if MAP_END_RE.match(line)]
    labs = [i for i, line in enumerate(lines) if LAB_MARKER_RE.match(line)]
    if not starts and not ends and not labs:
        return intro
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0] or len(labs) != 1:
        raise ValueError(
            "intro.md needs one '<!-- module-map:start -->' ... '<!-- module-map:end -->' "
            "region and one '<!-- lab-map -->' line"
        )
    plan = []
    for line in lines[starts[0] + 1 : ends[0]]:
        match = PLAN_ROW_RE.match(line)
        if match:
            plan.append((match["number"], match["title"], match["topics"]))
        elif (
            line.strip()
            and not line.startswith("| Module")
            and not re.match(r"^\|[-|\s]+\|$", line)
        ):
            raise ValueError(
                f"intro.md module map: expected rows like '| 00 | Title | topics |', got {line!r}"
            )
    out = lines[: starts[0]] + module_rows(plan, root) + lines[ends[0] + 1 :]
    lab_index = next(i for i, line in enumerate(out) if LAB_MARKER_RE.match(line))
    return "\n".join(out[:lab_index] + lab_rows(root) + out[lab_index + 1 :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, nargs="?", default=REPO_ROOT / "_stage")
    args = parser.parse_args(argv)
    count = stage(args.dest.resolve())
    print(f"staged {count} files in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
