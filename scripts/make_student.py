"""Write student versions of the notebooks: solutions replaced by stubs, checks kept.

In a cell tagged ``solution``, every region between ``# BEGIN SOLUTION`` and ``# END SOLUTION``
is replaced by a stub at the same indentation:

* inside a function (indented): ``raise NotImplementedError("Exercise: ...")``, so that calling the
  learner's function fails until it is written;
* at the top level: a comment, so that the placeholder the cell assigned before the region
  (``answer = None``) stays in place and the check reports "no answer yet".

Everything else (the brief, starter code, checks) is kept, and outputs are cleared.

    python -m scripts.make_student [--out _build/student] [notebook.ipynb ...]

Without notebook arguments, every notebook under modules/ and labs/ is converted.
Used by: `make student`, tests/test_student.py.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

from scripts.course_checks import SOLUTION_BEGIN, SOLUTION_END, notebook_files

REPO_ROOT = Path(__file__).resolve().parent.parent
STUB_FUNCTION = 'raise NotImplementedError("Exercise: write your solution here")'
STUB_TOP_LEVEL = "# Exercise: write your solution here."


class StudentVersionError(ValueError):
    """A solution cell cannot be turned into a stub (unbalanced markers)."""


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


def write_student_versions(notebooks: list[Path], out_dir: Path, root: Path = REPO_ROOT) -> list[Path]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "_build" / "student")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    notebooks = args.notebooks or notebook_files(REPO_ROOT)
    written = write_student_versions(notebooks, args.out.resolve())
    print(f"wrote {len(written)} student notebooks to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------------------------
# Verification: the student's checks fail, the instructor's pass
# --------------------------------------------------------------------------------------------

ACCEPTED_STUDENT_ERRORS = ("ExerciseError", "NotImplementedError")


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 180) -> nbformat.NotebookNode:
    """Execute ``nb`` in a fresh kernel with cwd ``cwd``, keeping going past errors."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
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
