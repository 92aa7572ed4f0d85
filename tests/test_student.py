"""Student versions: solutions become stubs, and every check then fails with a message that says
what was expected (ExerciseError or NotImplementedError), while the instructor version passes.

The real notebooks checked here are a sample (see SAMPLE); `make test-students` runs them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from scripts import course_checks
from scripts.make_student import (
    STUB_FUNCTION,
    STUB_TOP_LEVEL,
    StudentVersionError,
    student_notebook,
    stub_solution,
    verify_student_version,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# One notebook per module (and lab) keeps `make test` inside its time budget;
# STUDENT_CHECK_ALL=1 (make test-students) checks every notebook.
SAMPLE = [
    "modules/00-foundations/01-linear-algebra.ipynb",
]


def test_stub_replaces_function_body() -> None:
    src = "def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\n"
    assert stub_solution(src) == f"def f(x):\n    '''doc'''\n    {STUB_FUNCTION}"


def test_stub_keeps_top_level_placeholder() -> None:
    src = "answer = None\n# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION\nprint(answer)"
    assert stub_solution(src) == f"answer = None\n{STUB_TOP_LEVEL}\nprint(answer)"


@pytest.mark.parametrize("src", ["# BEGIN SOLUTION\nx = 1\n", "x = 1\n# END SOLUTION\n",
                                 "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n"])
def test_unbalanced_markers_raise(src: str) -> None:
    with pytest.raises(StudentVersionError):
        stub_solution(src)


def test_student_notebook_strips_every_solution(mini_course: Path) -> None:
    nb = nbformat.read(mini_course / "modules/00-demo/01-demo.ipynb", as_version=4)
    student = student_notebook(nb)
    text = "\n".join(c.source for c in student.cells)
    assert "return a + b" not in text and "answer = 42" not in text and "return 2 * x" not in text
    assert sum("check" in c.metadata.get("tags", []) for c in student.cells) == 3


@pytest.mark.slow
def test_mini_course_student_checks_fail(mini_course: Path) -> None:
    assert verify_student_version(mini_course / "modules/00-demo/01-demo.ipynb") == []


@pytest.mark.slow
def test_check_that_passes_without_solution_is_caught(mini_course: Path) -> None:
    nb_path = mini_course / "modules/00-demo/01-demo.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:  # a check that cannot fail
        if cell.source.startswith("check_function(double"):
            cell.source = "passed('Exercise 3')"
    nbformat.write(nb, nb_path)
    problems = verify_student_version(nb_path)
    assert len(problems) == 1 and "passes on the student version" in problems[0]


@pytest.mark.slow
def test_missing_placeholder_is_caught(mini_course: Path) -> None:
    nb_path = mini_course / "modules/00-demo/01-demo.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace("answer = None\n", "")
    nbformat.write(nb, nb_path)
    problems = verify_student_version(nb_path)
    assert len(problems) == 1 and "NameError" in problems[0]


def _selected() -> list[str]:
    if os.environ.get("STUDENT_CHECK_ALL") == "1":
        return [str(p.relative_to(REPO_ROOT)) for p in course_checks.notebook_files(REPO_ROOT)]
    return SAMPLE


@pytest.mark.slow
@pytest.mark.parametrize("notebook", _selected())
def test_real_notebook_student_checks_fail(notebook: str) -> None:
    path = REPO_ROOT / notebook
    assert path.exists(), f"{notebook} is in the student-check sample but does not exist"
    assert verify_student_version(path) == []
