"""Write student versions of the notebooks: solutions replaced by stubs, checks kept.

In a cell tagged ``solution``, every region between ``# BEGIN SOLUTION`` and ``# END SOLUTION``
is replaced by a stub at the same indentation:

* inside a function (indented): ``raise NotImplementedError("Exercise: ...")``, so that calling the
  learner's function fails until it is written;
* at the top level: a comment, so that the placeholder the cell assigned before the region
  (``answer = None``) stays in place and the check reports "no answer yet".

Everything else (the brief, starter code, checks) is kept, and outputs are cleared.

    python -m scripts.make_student [--out _build/student]      # the whole course, plus zips
    python -m scripts.make_student [--out DIR] notebook.ipynb ...

Without notebook arguments, the output folder is written afresh with the student version of every
notebook under modules/ and labs/, at the same paths; each lab also keeps its brief (README.md)
and its other files, and each module its index page. The `.py` sources, which hold the solutions,
are never copied. One zip per module and per lab goes to ``<out>/zips/`` (e.g.
``modules-00-foundations.zip``, ``labs-<name>.zip``), ready to hand out. Every file written is
checked to contain no ``# BEGIN SOLUTION`` marker.

``student_sample`` chooses the notebooks whose student versions `make test` verifies, and
``verify_student_version`` executes one and reports any check that does not fail.
Used by: `make student`, `make test-students`, tests/test_student.py, scripts/book_transform.py.
"""

from __future__ import annotations

import argparse
import copy
import math
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat

from scripts.course_checks import SOLUTION_BEGIN, SOLUTION_END, is_notebook_source, notebook_files

REPO_ROOT = Path(__file__).resolve().parent.parent
STUB_FUNCTION = 'raise NotImplementedError("Exercise: write your solution here")'
STUB_TOP_LEVEL = "# Exercise: write your solution here."
SKIPPED_PARTS = {".ipynb_checkpoints", "__pycache__", "_build"}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class StudentVersionError(ValueError):
    """A solution cell cannot be turned into a stub (unbalanced markers), or a solution leaked."""


def stub_solution(source: str, where: str = "cell") -> str:
    """Return ``source`` with each BEGIN/END SOLUTION region replaced by a stub."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == SOLUTION_BEGIN:
            if inside:
                raise StudentVersionError(f"{where}, line {number}: nested '{SOLUTION_BEGIN}'")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + (STUB_FUNCTION if indent else STUB_TOP_LEVEL))
        elif stripped == SOLUTION_END:
            if not inside:
                raise StudentVersionError(f"{where}, line {number}: '{SOLUTION_END}' without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise StudentVersionError(f"{where}: '{SOLUTION_BEGIN}' is never closed")
    return "\n".join(out)


def student_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """Return a copy of ``nb`` with solutions stubbed and all outputs cleared."""
    student = copy.deepcopy(nb)
    for index, cell in enumerate(student.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if "solution" in cell.get("metadata", {}).get("tags", []):
                cell.source = stub_solution(cell.source, f"{name}, cell {index}")
    student.metadata["course_version"] = "student"
    return student


def write_student_versions(
    notebooks: list[Path], out_dir: Path, root: Path = REPO_ROOT
) -> list[Path]:
    """Write each notebook's student version to ``out_dir``, at its path relative to ``root``."""
    written = []
    for path in notebooks:
        path = path.resolve()
        nb = nbformat.read(path, as_version=4)
        rel = path.relative_to(root)
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student_notebook(nb, str(rel)), target)
        written.append(target)
    return written


def course_groups(root: Path) -> list[Path]:
    """The module and lab folders with notebooks (``modules/NN-slug``, ``labs/name``), sorted."""
    groups = {
        path.relative_to(root).parts[:2]
        for path in notebook_files(root)
        if len(path.relative_to(root).parts) > 2
    }
    return sorted(root.joinpath(*parts) for parts in groups)


def _companion_files(group: Path) -> list[Path]:
    """The files of a module or lab folder that go to students as they are: briefs, index pages,
    data and helper code; not notebooks (their student versions go instead), not jupytext
    sources (they hold the solutions)."""
    files = []
    for path in sorted(group.rglob("*")):
        if not path.is_file() or SKIPPED_PARTS & set(path.relative_to(group).parts):
            continue
        if path.suffix == ".ipynb" or is_notebook_source(path) or path.suffix == ".pyc":
            continue
        files.append(path)
    return files


def check_no_solutions(paths: list[Path]) -> None:
    """Raise StudentVersionError if any of ``paths`` still contains a solution marker."""
    leaked = [
        str(p) for p in paths if SOLUTION_BEGIN in p.read_text(encoding="utf-8", errors="replace")
    ]
    if leaked:
        raise StudentVersionError(f"solutions left in the student files: {leaked}")


def write_student_course(root: Path, out_dir: Path) -> tuple[list[Path], list[Path]]:
    """Write the student version of every module and lab to ``out_dir``, and one zip of each.

    Returns (files written, zips written). ``out_dir`` is emptied first.
    """
    if out_dir.exists():
        shutil.rmtree(out_dir)
    files: list[Path] = []
    zips: list[Path] = []
    for group in course_groups(root):
        notebooks = [p for p in notebook_files(root) if group in p.parents]
        group_files = write_student_versions(notebooks, out_dir, root)
        for path in _companion_files(group):
            target = out_dir / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            group_files.append(target)
        check_no_solutions(group_files)
        relative = group.relative_to(root)
        archive = out_dir / "zips" / f"{'-'.join(relative.parts)}.zip"
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(group_files):
                # Paths in the zip start at the module or lab folder: 00-foundations/01-x.ipynb.
                # A fixed date makes the zip depend on the contents only.
                entry = zipfile.ZipInfo(str(path.relative_to(out_dir / relative.parent)), ZIP_DATE)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                bundle.writestr(entry, path.read_bytes())
        files += group_files
        zips.append(archive)
    return files, zips


# --------------------------------------------------------------------------------------------
# Which notebooks `make test` verifies
# --------------------------------------------------------------------------------------------

SAMPLE_BUDGET_S = 180.0
DURATION_BUCKET_S = 5.0


def student_sample(root: Path, status: dict | None, budget_s: float = SAMPLE_BUDGET_S) -> list[str]:
    """The notebooks (paths relative to ``root``) whose student versions `make test` verifies.

    One per module and per lab: the fastest one that passed in the last notebook run (``status``
    is the run's status file, `_build/notebook-status.json`). Times are rounded up to 5 s so that
    noise does not swap two similar notebooks; ties go to the first name. Without a status entry,
    a folder's first notebook by name stands in. Modules and labs are then taken, fastest first,
    while their summed times stay within ``budget_s``, so `make test` stays bounded as the course
    grows; at least one notebook is always taken. `make test-students` verifies every notebook.
    The result is deterministic for a given course and status file, and sorted.
    """
    runs = (status or {}).get("notebooks", {})

    def cost(rel: str) -> float:
        entry = runs.get(rel)
        if not entry or entry.get("outcome") != "passed":
            return math.inf
        return math.ceil(entry["duration_s"] / DURATION_BUCKET_S) * DURATION_BUCKET_S

    picks = []
    for group in course_groups(root):
        names = [str(p.relative_to(root)) for p in notebook_files(root) if group in p.parents]
        fastest = min(names, key=lambda rel: (cost(rel), rel))
        picks.append((cost(fastest), fastest))
    picks.sort()
    chosen, spent = [], 0.0
    for seconds, rel in picks:
        estimate = 0.0 if math.isinf(seconds) else seconds
        if chosen and spent + estimate > budget_s:
            break
        chosen.append(rel)
        spent += estimate
    return sorted(chosen)


# --------------------------------------------------------------------------------------------
# Verification: the student's checks fail, the instructor's pass
# --------------------------------------------------------------------------------------------

ACCEPTED_STUDENT_ERRORS = ("ExerciseError", "NotImplementedError")


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 180) -> nbformat.NotebookNode:
    """Execute ``nb`` in a fresh kernel with cwd ``cwd``, keeping going past errors."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return nb


def _error_name(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename")
    return None


def verify_student_version(path: Path, timeout: int = 180) -> list[str]:
    """Execute the student version of the notebook at ``path`` and return the problems found.

    Every check cell must fail with ExerciseError or NotImplementedError. A check that passes on
    the student version cannot tell a learner anything; a NameError or TypeError means the
    exercise lacks a placeholder and its failure message would not say what was expected.
    """
    nb = nbformat.read(path, as_version=4)
    student = execute(student_notebook(nb, path.name), path.parent, timeout)
    problems = []
    for index, cell in enumerate(student.cells):
        if cell.cell_type != "code" or "check" not in cell.get("metadata", {}).get("tags", []):
            continue
        error = _error_name(cell)
        if error is None:
            problems.append(f"{path.name}, cell {index}: the check passes on the student version")
        elif error not in ACCEPTED_STUDENT_ERRORS:
            problems.append(
                f"{path.name}, cell {index}: the check fails with {error}, expected "
                f"{' or '.join(ACCEPTED_STUDENT_ERRORS)} (add a placeholder before the solution)"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "_build" / "student")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.notebooks:
        written = write_student_versions(args.notebooks, out)
        check_no_solutions(written)
        print(f"wrote {len(written)} student notebooks to {args.out}")
        return 0
    files, zips = write_student_course(REPO_ROOT, out)
    notebooks = sum(p.suffix == ".ipynb" for p in files)
    print(
        f"wrote {notebooks} student notebooks and {len(files) - notebooks} other files "
        f"to {args.out}, "
        f"and {len(zips)} zips (one per module and lab) to {args.out / 'zips'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
