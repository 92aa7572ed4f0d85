"""Turn the exercise tags of the staged, executed notebooks into exercise and solution blocks.

    python -m scripts.book_transform prepare _stage [--solutions dropdown|hidden]
    python -m scripts.book_transform publish _stage _build/html [--solutions dropdown|hidden]

The committed notebooks stay plain: an exercise is a markdown cell tagged ``exercise`` (its first
line ``### Exercise N: title``), code cells tagged ``solution`` and a code cell tagged ``check``
(CONTRIBUTING.md). `make book` runs ``prepare`` after the notebook run (nbmake) and before
Jupyter Book, on the executed copies in ``_stage``; it writes MyST directives of sphinx-exercise
from the same tags:

* the brief becomes an ``{exercise}`` block titled with the exercise's title;
* with ``--solutions dropdown`` (the default), every run of consecutive ``solution`` cells is
  wrapped in ``{solution-start}``/``{solution-end}`` with ``:class: dropdown``, so the solution is
  collapsed until the reader opens it; the check cell stays visible after it;
* with ``--solutions hidden``, the solution cells show the student's starter code instead (the
  stubs of `make student`), and the solution and check outputs are cleared: a site for a term in
  which the solutions are not yet published.

A notebook marked ``requires: gpu`` that the test run skipped (no CUDA) gets a note under its
title saying why its page has no outputs.

Labels are unique in the whole book: they are derived from the notebook's path and the exercise's
position, e.g. ``ex-00-foundations-01-linear-algebra-1`` and
``sol-00-foundations-01-linear-algebra-1``.

``prepare`` keeps the executed notebooks untouched in ``<stage>/_executed/`` and always starts from
them, so running it again (or with the other ``--solutions``) gives the same result. ``publish``,
run after Jupyter Book, replaces each notebook's download (``_build/html/_sources/<path>.ipynb``)
with the committed notebook, or its student version with ``--solutions hidden``, so that a reader
downloads what Colab and Binder open rather than a file full of directives.

Used by: `make book`; tests/test_site.py checks the rendered blocks.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
from pathlib import Path

import nbformat

from scripts.course_checks import find_exercises, notebook_files
from scripts.make_student import stub_solution, student_notebook

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION_MODES = ("dropdown", "hidden")
PRISTINE_DIR = "_executed"
BRIEF_HEADING_RE = re.compile(
    r"^#{1,6}\s+Exercise\s+[\w.]+\s*[:.]\s*(?P<title>.+?)\s*$", re.IGNORECASE
)


def label_stem(relative_path: str | Path) -> str:
    """A label-safe name for a notebook, from its path in the book.

    ``modules/00-foundations/01-linear-algebra.ipynb`` gives ``00-foundations-01-linear-algebra``;
    ``labs/moe-inference/01-router.ipynb`` gives ``labs-moe-inference-01-router``.
    """
    path = Path(relative_path)
    parts = [*path.parent.parts, path.stem] if path.name else []
    if parts and parts[0] == "modules":
        parts = parts[1:]
    stem = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    if not stem:
        raise ValueError(
            f"expected a notebook path such as modules/NN-slug/MM-slug.ipynb, got {relative_path!r}"
        )
    return stem


def split_brief(source: str) -> tuple[str, str]:
    """Split an exercise brief into its title and body.

    The first line ``### Exercise 2: Multi-head scores`` gives the title ``Multi-head scores``
    (sphinx-exercise numbers the block itself); any other first line is kept as the title, without
    its ``#`` marks.
    """
    lines = source.strip().splitlines()
    if not lines:
        raise ValueError("an exercise cell is empty; expected '### Exercise N: title' and a brief")
    match = BRIEF_HEADING_RE.match(lines[0])
    title = match.group("title") if match else lines[0].lstrip("#").strip()
    return title, "\n".join(lines[1:]).strip()


def _fence(body: str) -> str:
    """A colon fence longer than any colon fence inside ``body``, so nested blocks survive.

    A colon fence (MyST's ``colon_fence``) rather than backticks: the title may contain inline
    code, and a backtick fence's first line cannot contain backticks.
    """
    longest = max((len(run) for run in re.findall(r"^\s*(:{3,})", body, re.M)), default=0)
    return ":" * max(3, longest + 1)


def exercise_directive(title: str, body: str, label: str) -> str:
    fence = _fence(body)
    return f"{fence}{{exercise}} {title}\n:label: {label}\n\n{body}\n{fence}"


def solution_start(exercise_label: str, label: str) -> str:
    return f"```{{solution-start}} {exercise_label}\n:label: {label}\n:class: dropdown\n```"


SOLUTION_END = "```{solution-end}\n```"


def _markdown_cell(source: str, cell_id: str, with_id: bool) -> nbformat.NotebookNode:
    cell = {"cell_type": "markdown", "metadata": {}, "source": source}
    if with_id:
        cell["id"] = cell_id
    return nbformat.from_dict(cell)


def _source(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


GPU_NOTE = (
    ":::{note}\nThis notebook needs a GPU (its metadata says `requires: gpu`). The machine "
    "that executes the course has none, so this page shows the notebook without outputs. "
    "Run it in Colab on a GPU runtime (the rocket button above), or on a machine with CUDA.\n:::"
)


def _needs_gpu_and_was_not_run(nb: nbformat.NotebookNode) -> bool:
    requires_gpu = str(nb.metadata.get("requires", "")).lower() == "gpu"
    return requires_gpu and not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def book_notebook(
    nb: nbformat.NotebookNode, relative_path: str | Path, solutions: str = "dropdown"
) -> nbformat.NotebookNode:
    """Return a copy of the executed notebook ``nb`` with exercise and solution directives.

    ``relative_path`` is the notebook's path in the book (for the labels); ``solutions`` is
    ``"dropdown"`` (collapsed solution blocks) or ``"hidden"`` (starter code only).
    """
    if solutions not in SOLUTION_MODES:
        raise ValueError(f"solutions must be one of {SOLUTION_MODES}, got {solutions!r}")
    stem = label_stem(relative_path)
    book = copy.deepcopy(nb)
    with_ids = (book.nbformat, book.nbformat_minor) >= (4, 5)
    cells = book.cells
    exercises = find_exercises(cells)
    before: dict[int, list] = {}  # cells to insert before the cell at an index
    after: dict[int, list] = {}
    for number, exercise in enumerate(exercises, start=1):
        exercise_label = f"ex-{stem}-{number}"
        brief = cells[exercise.brief_index]
        title, body = split_brief(_source(brief))
        brief.source = exercise_directive(title, body, exercise_label)
        if solutions == "hidden":
            for index in exercise.solution_indices:
                cells[index].source = stub_solution(
                    _source(cells[index]), f"{relative_path}, cell {index}"
                )
            for index in exercise.solution_indices + exercise.check_indices:
                cells[index].outputs = []
                cells[index].execution_count = None
            continue
        runs: list[list[int]] = []
        for index in exercise.solution_indices:
            if runs and index == runs[-1][-1] + 1:
                runs[-1].append(index)
            else:
                runs.append([index])
        for run_number, run in enumerate(runs, start=1):
            suffix = "" if run_number == 1 else f"-{run_number}"
            label = f"sol-{stem}-{number}{suffix}"
            before.setdefault(run[0], []).append(
                _markdown_cell(
                    solution_start(exercise_label, label),
                    f"solution-{number}{suffix}-start",
                    with_ids,
                )
            )
            after.setdefault(run[-1], []).append(
                _markdown_cell(SOLUTION_END, f"solution-{number}{suffix}-end", with_ids)
            )
    if _needs_gpu_and_was_not_run(book) and cells:
        after.setdefault(0, []).insert(0, _markdown_cell(GPU_NOTE, "gpu-note", with_ids))
    new_cells = []
    for index, cell in enumerate(cells):
        new_cells += before.get(index, []) + [cell] + after.get(index, [])
    book.cells = new_cells
    book.metadata["course_book"] = {"solutions": solutions, "exercises": len(exercises)}
    return book


def prepare(stage: Path, solutions: str = "dropdown") -> list[Path]:
    """Rewrite every staged notebook from its pristine executed copy; return those written."""
    written = []
    for path in notebook_files(stage):
        relative = path.relative_to(stage)
        pristine = stage / PRISTINE_DIR / relative
        if not pristine.exists():
            if "course_book" in nbformat.read(path, as_version=4).metadata:
                raise ValueError(
                    f"{path} already has exercise blocks and {pristine} is missing; "
                    "stage the book again (make test-notebooks)"
                )
            pristine.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, pristine)
        nb = nbformat.read(pristine, as_version=4)
        nbformat.write(book_notebook(nb, relative, solutions), path)
        written.append(path)
    return written


def publish(
    stage: Path, html: Path, root: Path = REPO_ROOT, solutions: str = "dropdown"
) -> list[Path]:
    """Replace the built site's notebook downloads by the committed notebooks (or students')."""
    if solutions not in SOLUTION_MODES:
        raise ValueError(f"solutions must be one of {SOLUTION_MODES}, got {solutions!r}")
    replaced = []
    for path in notebook_files(stage):
        relative = path.relative_to(stage)
        download = html / "_sources" / relative
        committed = root / relative
        if not download.exists():
            continue  # a notebook that is not in _toc.yml has no page
        if not committed.exists():
            raise FileNotFoundError(f"{relative} is in the book but not in {root}")
        nb = nbformat.read(committed, as_version=4)
        if solutions == "hidden":
            nb = student_notebook(nb, str(relative))
        nbformat.write(nb, download)
        replaced.append(download)
    return replaced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser(
        "prepare", help="write the directives into the staged notebooks"
    )
    prepare_parser.add_argument("stage", type=Path)
    publish_parser = commands.add_parser(
        "publish", help="replace the notebook downloads of the built site"
    )
    publish_parser.add_argument("stage", type=Path)
    publish_parser.add_argument("html", type=Path)
    for sub in (prepare_parser, publish_parser):
        sub.add_argument("--solutions", choices=SOLUTION_MODES, default="dropdown")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        written = prepare(args.stage, args.solutions)
        print(f"exercise and solution blocks ({args.solutions}) in {len(written)} staged notebooks")
    else:
        replaced = publish(args.stage, args.html, solutions=args.solutions)
        print(
            f"{len(replaced)} notebook downloads replaced by the committed notebooks"
            + (" (student versions)" if args.solutions == "hidden" else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
