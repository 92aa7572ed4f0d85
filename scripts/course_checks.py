"""Structure checks of the course: notebook pairs, the table of contents, module index pages and
the anatomy of every notebook (CONTRIBUTING.md, "A notebook's anatomy").

Each check takes the repository root and returns a list of problems (empty when all is well), so
that the tests can run them on the real course and on deliberately broken copies.
`python -m scripts.course_checks` prints every problem and exits non-zero if there is one.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MODULE_DIR_RE = re.compile(r"^(\d\d)-[a-z0-9]+(?:-[a-z0-9]+)*$")
NOTEBOOK_RE = re.compile(r"^\d\d-[a-z0-9]+(?:-[a-z0-9]+)*$")
SOLUTION_BEGIN = "# BEGIN SOLUTION"
SOLUTION_END = "# END SOLUTION"
MIN_EXERCISES = 3
# Pages that the build writes into the staged book (scripts/write_status_page.py), not committed.
GENERATED_PAGES = {"status"}
CHECK_CALL_RE = re.compile(r"\bcheck(?:_[a-z]+)?\(")
# Emoji and pictographs (the course voice has none); see CONTRIBUTING.md.
EMOJI_RE = re.compile("[\U0001F300-\U0001FAFF\U00002700-\U000027BF\U0001F000-\U0001F2FF\u2600-\u26FF]")


def is_notebook_source(path: Path) -> bool:
    """A `.py` file is a notebook source when it starts with a jupytext header."""
    if path.suffix != ".py" or not path.is_file():
        return False
    head = path.read_text(encoding="utf-8", errors="replace")[:600]
    return head.startswith("# ---") and "jupytext" in head


def notebook_sources(root: Path) -> list[Path]:
    """Every notebook source (`.py`) under modules/ and labs/, sorted."""
    found = []
    for folder in ("modules", "labs"):
        base = root / folder
        if base.is_dir():
            found += [p for p in base.rglob("*.py") if is_notebook_source(p) and not _ignored(p)]
    return sorted(found)


def notebook_files(root: Path) -> list[Path]:
    """Every `.ipynb` under modules/ and labs/, sorted."""
    found = []
    for folder in ("modules", "labs"):
        base = root / folder
        if base.is_dir():
            found += [p for p in base.rglob("*.ipynb") if not _ignored(p)]
    return sorted(found)


def _sources_in(folder: Path) -> list[Path]:
    """The notebook sources directly inside ``folder``."""
    return sorted(p for p in folder.glob("*.py") if is_notebook_source(p))


def _ignored(path: Path) -> bool:
    return any(part in {".ipynb_checkpoints", "_build", "__pycache__"} for part in path.parts)


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


def _cell_signature(cell) -> tuple[str, str, tuple[str, ...]]:
    tags = tuple(cell.get("metadata", {}).get("tags", []))
    return (cell["cell_type"], cell["source"].strip() if isinstance(cell["source"], str)
            else "".join(cell["source"]).strip(), tags)


def check_pairs(root: Path) -> list[str]:
    """Every `.py` source has an `.ipynb` with the same cells, and no `.ipynb` carries outputs."""
    import jupytext

    problems = []
    sources = notebook_sources(root)
    source_set = {p.with_suffix("") for p in sources}
    for nb_path in notebook_files(root):
        if nb_path.with_suffix("") not in source_set:
            problems.append(f"{nb_path.relative_to(root)}: no paired .py source")
    for src in sources:
        rel = src.relative_to(root)
        nb_path = src.with_suffix(".ipynb")
        if not nb_path.exists():
            problems.append(f"{rel}: no paired .ipynb (run `make notebooks`)")
            continue
        try:
            raw = json.loads(nb_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"{nb_path.relative_to(root)}: not valid notebook JSON ({exc})")
            continue
        for i, cell in enumerate(raw.get("cells", [])):
            if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count")):
                problems.append(
                    f"{nb_path.relative_to(root)}: cell {i} carries outputs; commit notebooks "
                    "without outputs (`make notebooks` strips them)"
                )
                break
        from_source = [_cell_signature(c) for c in jupytext.read(src).cells]
        from_ipynb = [_cell_signature(c) for c in jupytext.read(nb_path).cells]
        if from_source != from_ipynb:
            first = next(
                (i for i, (a, b) in enumerate(zip(from_source, from_ipynb)) if a != b),
                min(len(from_source), len(from_ipynb)),
            )
            problems.append(
                f"{rel}: differs from its .ipynb from cell {first} on "
                f"({len(from_source)} cells in .py, {len(from_ipynb)} in .ipynb); run `make notebooks`"
            )
        ipynb_meta = raw.get("metadata", {})
        if "kernelspec" not in ipynb_meta:
            problems.append(f"{nb_path.relative_to(root)}: no kernelspec in the notebook metadata")
    return problems


# --------------------------------------------------------------------------------------------
# Table of contents and module index pages
# --------------------------------------------------------------------------------------------


def toc_files(root: Path) -> list[str]:
    """Every `file:` entry of _toc.yml (and its `root:`), without extension."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    files.append(str(Path(node[key]).with_suffix("")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    return files


def check_toc(root: Path) -> list[str]:
    """Every notebook and module index is in _toc.yml, and every _toc.yml entry exists."""
    problems = []
    listed = toc_files(root)
    listed_set = set(listed)
    for dup in sorted({f for f in listed if listed.count(f) > 1}):
        problems.append(f"_toc.yml lists {dup} more than once")
    for src in notebook_sources(root):
        key = str(src.relative_to(root).with_suffix(""))
        if key not in listed_set:
            problems.append(f"{key}: notebook is not in _toc.yml")
    for index in sorted(root.glob("modules/*/index.md")) + sorted(root.glob("labs/*/README.md")):
        key = str(index.relative_to(root).with_suffix(""))
        if key not in listed_set:
            problems.append(f"{key}: page is not in _toc.yml")
    for entry in listed:
        if entry in GENERATED_PAGES:
            continue
        candidates = [root / f"{entry}{ext}" for ext in (".md", ".ipynb")]
        if not any(c.exists() for c in candidates):
            problems.append(f"_toc.yml lists {entry}, which does not exist (.md or .ipynb)")
    return problems


def check_modules(root: Path) -> list[str]:
    """Module folders are named NN-slug with NN in 00..20, and each has an index.md."""
    problems = []
    modules = root / "modules"
    if not modules.is_dir():
        return ["modules/ does not exist"]
    for folder in sorted(p for p in modules.iterdir() if p.is_dir() and not _ignored(p)):
        match = MODULE_DIR_RE.match(folder.name)
        if not match or not 0 <= int(match.group(1)) <= 20:
            problems.append(f"modules/{folder.name}: expected a folder named 00-slug ... 20-slug")
            continue
        if not (folder / "index.md").exists():
            problems.append(f"modules/{folder.name}: no index.md")
        for src in _sources_in(folder):
            if not NOTEBOOK_RE.match(src.stem):
                problems.append(f"{src.relative_to(root)}: expected a name like 01-slug.py")
    for lab in sorted(p for p in (root / "labs").glob("*") if p.is_dir() and not _ignored(p)):
        if not (lab / "README.md").exists():
            problems.append(f"labs/{lab.name}: no README.md (the lab brief)")
        if not _sources_in(lab):
            problems.append(f"labs/{lab.name}: no notebook")
    return problems


# --------------------------------------------------------------------------------------------
# Anatomy of a notebook
# --------------------------------------------------------------------------------------------


@dataclass
class Exercise:
    title: str
    brief_index: int
    solution_indices: list[int]
    check_indices: list[int]


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def find_exercises(cells) -> list[Exercise]:
    """Group cells into exercises: a markdown cell tagged `exercise`, then its solution and check
    cells, up to the next exercise brief or the next markdown heading of level 2."""
    exercises: list[Exercise] = []
    current: Exercise | None = None
    for i, cell in enumerate(cells):
        tags = _tags(cell)
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "exercise" in tags:
            title = source.strip().splitlines()[0] if source.strip() else ""
            current = Exercise(title, i, [], [])
            exercises.append(current)
        elif cell["cell_type"] == "markdown" and re.match(r"^##\s", source.strip()):
            current = None
        elif current is not None and cell["cell_type"] == "code":
            if "solution" in tags:
                current.solution_indices.append(i)
            if "check" in tags:
                current.check_indices.append(i)
    return exercises


def check_anatomy(nb_path: Path, root: Path | None = None) -> list[str]:
    """Problems with one notebook's anatomy (see CONTRIBUTING.md)."""
    import jupytext

    nb = jupytext.read(nb_path)
    name = str(nb_path.relative_to(root)) if root else nb_path.name
    cells = nb.cells
    problems: list[str] = []

    def source(cell) -> str:
        return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])

    markdown = "\n".join(source(c) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join(source(c) for c in cells if c["cell_type"] == "code")

    if not cells or cells[0]["cell_type"] != "markdown" or not source(cells[0]).lstrip().startswith("# "):
        problems.append(f"{name}: the first cell must be markdown starting with a '# Title'")
    for phrase in ("Learning objectives", "Prerequisites", "Estimated time"):
        if phrase.lower() not in markdown.lower():
            problems.append(f"{name}: no '{phrase}' in the introduction")
    colab = [c for c in cells if "colab" in _tags(c)]
    if root is not None and (root / "_config.yml").exists():
        from scripts.colab_cell import cell_source, repository_url

        expected_colab = cell_source(repository_url(root))
        if len(colab) != 1 or source(colab[0]).strip() != expected_colab.strip():
            problems.append(f"{name}: needs exactly one code cell tagged 'colab' with the text that "
                            "`make notebooks` writes (scripts/colab_cell.py)")
    if "seed_everything(" not in code or "environment_summary(" not in code:
        problems.append(
            f"{name}: the setup cell must call shared.seed_everything(...) and print "
            "shared.environment_summary(...)"
        )
    headings = [line.strip() for line in markdown.splitlines() if line.startswith("## ")]
    if not any(h.lower().startswith("## summary") for h in headings):
        problems.append(f"{name}: no '## Summary' section")
    if not any(h.lower().startswith("## references") for h in headings):
        problems.append(f"{name}: no '## References' section")
    else:
        ref_start = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                         and re.search(r"^## References", source(c), re.M))
        refs = "\n".join(source(c) for c in cells[ref_start:] if c["cell_type"] == "markdown")
        if not re.search(r"https?://", refs):
            problems.append(f"{name}: the References section has no links")

    exercises = find_exercises(cells)
    if len(exercises) < MIN_EXERCISES:
        problems.append(f"{name}: {len(exercises)} exercises (markdown cells tagged 'exercise'); "
                        f"at least {MIN_EXERCISES} expected")
    for ex in exercises:
        label = f"{name}: exercise '{ex.title[:50]}'"
        if not ex.solution_indices:
            problems.append(f"{label} has no code cell tagged 'solution'")
        if not ex.check_indices:
            problems.append(f"{label} has no code cell tagged 'check'")
        if ex.solution_indices and ex.check_indices and min(ex.check_indices) < min(ex.solution_indices):
            problems.append(f"{label}: its check comes before its solution")
        for i in ex.solution_indices:
            text = source(cells[i])
            if SOLUTION_BEGIN not in text or SOLUTION_END not in text:
                problems.append(f"{label}: solution cell {i} lacks '{SOLUTION_BEGIN}' / '{SOLUTION_END}'")
        for i in ex.check_indices:
            if not CHECK_CALL_RE.search(source(cells[i])):
                problems.append(f"{label}: check cell {i} calls no shared.exercises check")
    for i, cell in enumerate(cells):
        tags = _tags(cell)
        if ("solution" in tags or "check" in tags) and cell["cell_type"] != "code":
            problems.append(f"{name}: cell {i} is tagged {tags} but is not a code cell")
        if ("solution" in tags or "check" in tags) and not any(
            i in ex.solution_indices + ex.check_indices for ex in exercises
        ):
            problems.append(f"{name}: cell {i} is tagged {tags} outside an exercise")
    if EMOJI_RE.search(markdown + code):
        problems.append(f"{name}: contains emoji; the course voice has none")
    return problems


def check_all_anatomy(root: Path) -> list[str]:
    problems = []
    for src in notebook_sources(root):
        problems += check_anatomy(src, root)
    return problems


def all_problems(root: Path) -> list[str]:
    return check_modules(root) + check_toc(root) + check_pairs(root) + check_all_anatomy(root)


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0] if argv else ".").resolve()
    problems = all_problems(root)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) in {len(notebook_sources(root))} notebooks")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
