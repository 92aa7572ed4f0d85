"""Student versions: solutions become stubs, and every check then fails with a message that says
what was expected (ExerciseError or NotImplementedError), while the instructor version passes.

The instructor version's pass is the notebook run's (`_build/notebook-status.json`, written by
`make test-notebooks`); the student version is executed here. For the real course, `make test`
verifies a sample (scripts/make_student.py, `student_sample`: the fastest notebook of each module
and lab, within a time budget), after the notebook run, as part of `make test-site`;
`make test-students` (STUDENT_CHECK_ALL=1) verifies every notebook.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from scripts import course_checks
from scripts.make_student import (
    STUB_FUNCTION,
    STUB_TOP_LEVEL,
    StudentVersionError,
    check_no_solutions,
    stub_solution,
    student_notebook,
    student_sample,
    verify_student_version,
    write_student_course,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
STATUS_FILE = REPO_ROOT / "_build" / "notebook-status.json"


def test_stub_replaces_function_body() -> None:
    src = "def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\n"
    assert stub_solution(src) == f"def f(x):\n    '''doc'''\n    {STUB_FUNCTION}"


def test_stub_keeps_top_level_placeholder() -> None:
    src = "answer = None\n# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION\nprint(answer)"
    assert stub_solution(src) == f"answer = None\n{STUB_TOP_LEVEL}\nprint(answer)"


@pytest.mark.parametrize(
    "src",
    [
        "# BEGIN SOLUTION\nx = 1\n",
        "x = 1\n# END SOLUTION\n",
        "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
    ],
)
def test_unbalanced_markers_raise(src: str) -> None:
    with pytest.raises(StudentVersionError):
        stub_solution(src)


def test_student_notebook_strips_every_solution(mini_course: Path) -> None:
    nb = nbformat.read(mini_course / "modules/00-demo/01-demo.ipynb", as_version=4)
    student = student_notebook(nb)
    text = "\n".join(c.source for c in student.cells)
    assert "return a + b" not in text and "answer = 42" not in text and "return 2 * x" not in text
    assert sum("check" in c.metadata.get("tags", []) for c in student.cells) == 3


# --- the course for students: folders, labs, zips --------------------------------------------


def _add_lab(course: Path, name: str = "demo-lab") -> Path:
    """Give the mini course a lab: a brief, a notebook pair, a data file and a helper module."""
    lab = course / "labs" / name
    lab.mkdir(parents=True)
    (lab / "README.md").write_text("# Lab: demo\n\nSolve the three exercises.\n")
    (lab / "points.csv").write_text("x,y\n1,2\n")
    (lab / "helpers.py").write_text("def twice(x):\n    return 2 * x\n")
    for suffix in (".py", ".ipynb"):
        source = course / "modules/00-demo" / f"01-demo{suffix}"
        (lab / f"01-lab{suffix}").write_text(source.read_text())
    return lab


def test_student_course_has_every_notebook_lab_file_and_zip(
    mini_course: Path, tmp_path: Path
) -> None:
    _add_lab(mini_course)
    out = tmp_path / "student"
    (out / "stale.txt").parent.mkdir(parents=True)
    (out / "stale.txt").write_text("from an earlier run")
    files, zips = write_student_course(mini_course, out)
    written = sorted(str(p.relative_to(out)) for p in files)
    assert written == [
        "labs/demo-lab/01-lab.ipynb",
        "labs/demo-lab/README.md",
        "labs/demo-lab/helpers.py",
        "labs/demo-lab/points.csv",
        "modules/00-demo/01-demo.ipynb",
        "modules/00-demo/index.md",
    ]
    assert not (out / "stale.txt").exists()
    assert [z.name for z in zips] == ["labs-demo-lab.zip", "modules-00-demo.zip"]
    with zipfile.ZipFile(out / "zips" / "labs-demo-lab.zip") as bundle:
        assert sorted(bundle.namelist()) == [
            "demo-lab/01-lab.ipynb",
            "demo-lab/README.md",
            "demo-lab/helpers.py",
            "demo-lab/points.csv",
        ]
        notebook = nbformat.reads(bundle.read("demo-lab/01-lab.ipynb").decode(), as_version=4)
    assert notebook.metadata["course_version"] == "student"
    assert STUB_FUNCTION in "\n".join(c.source for c in notebook.cells)


def test_a_solution_left_in_a_lab_file_is_caught(mini_course: Path, tmp_path: Path) -> None:
    lab = _add_lab(mini_course)
    (lab / "answers.md").write_text("# BEGIN SOLUTION\nthe answer is 42\n# END SOLUTION\n")
    with pytest.raises(StudentVersionError, match="answers.md"):
        write_student_course(mini_course, tmp_path / "student")


def test_check_no_solutions_passes_clean_files(tmp_path: Path) -> None:
    clean = tmp_path / "a.md"
    clean.write_text("no markers here")
    check_no_solutions([clean])


# --- which notebooks `make test` verifies ---------------------------------------------------


def _course_with_two_modules_and_a_lab(course: Path) -> None:
    second = course / "modules" / "01-more"
    second.mkdir()
    for name in ("01-slow", "02-fast"):
        (second / f"{name}.ipynb").write_text(
            (course / "modules/00-demo/01-demo.ipynb").read_text()
        )
    _add_lab(course)


def _status(durations: dict[str, float], outcome: str = "passed") -> dict:
    return {
        "notebooks": {rel: {"outcome": outcome, "duration_s": s} for rel, s in durations.items()}
    }


def test_sample_takes_the_fastest_notebook_of_each_module_and_lab(mini_course: Path) -> None:
    _course_with_two_modules_and_a_lab(mini_course)
    status = _status(
        {
            "modules/00-demo/01-demo.ipynb": 12.0,
            "modules/01-more/01-slow.ipynb": 40.0,
            "modules/01-more/02-fast.ipynb": 6.0,
            "labs/demo-lab/01-lab.ipynb": 20.0,
        }
    )
    assert student_sample(mini_course, status) == [
        "labs/demo-lab/01-lab.ipynb",
        "modules/00-demo/01-demo.ipynb",
        "modules/01-more/02-fast.ipynb",
    ]


def test_sample_without_a_status_file_takes_the_first_notebook_by_name(mini_course: Path) -> None:
    _course_with_two_modules_and_a_lab(mini_course)
    assert student_sample(mini_course, None) == [
        "labs/demo-lab/01-lab.ipynb",
        "modules/00-demo/01-demo.ipynb",
        "modules/01-more/01-slow.ipynb",
    ]


def test_sample_ignores_noise_skips_and_failures(mini_course: Path) -> None:
    _course_with_two_modules_and_a_lab(mini_course)
    # 7.2 s and 6.1 s fall in the same 5-second bucket: the first name wins, whatever the noise.
    status = _status({"modules/01-more/01-slow.ipynb": 7.2, "modules/01-more/02-fast.ipynb": 6.1})
    assert "modules/01-more/01-slow.ipynb" in student_sample(mini_course, status)
    status["notebooks"]["modules/01-more/01-slow.ipynb"]["outcome"] = "skipped"
    assert "modules/01-more/02-fast.ipynb" in student_sample(mini_course, status)


def test_sample_stays_within_the_budget_and_is_never_empty(mini_course: Path) -> None:
    _course_with_two_modules_and_a_lab(mini_course)
    status = _status(
        {
            "modules/00-demo/01-demo.ipynb": 50.0,
            "modules/01-more/02-fast.ipynb": 30.0,
            "labs/demo-lab/01-lab.ipynb": 45.0,
        }
    )
    assert student_sample(mini_course, status, budget_s=80.0) == [
        "labs/demo-lab/01-lab.ipynb",
        "modules/01-more/02-fast.ipynb",
    ]
    assert student_sample(mini_course, status, budget_s=1.0) == ["modules/01-more/02-fast.ipynb"]


# --- executing student versions --------------------------------------------------------------


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


def _last_run() -> dict | None:
    if not STATUS_FILE.exists():
        return None
    return json.loads(STATUS_FILE.read_text(encoding="utf-8"))


def _selected() -> list[str]:
    if os.environ.get("STUDENT_CHECK_ALL") == "1":
        return [str(p.relative_to(REPO_ROOT)) for p in course_checks.notebook_files(REPO_ROOT)]
    return student_sample(REPO_ROOT, _last_run())


def test_the_sample_is_not_empty() -> None:
    sample = student_sample(REPO_ROOT, _last_run())
    assert sample, "the student-version sample is empty"
    assert all((REPO_ROOT / rel).exists() for rel in sample)


@pytest.mark.site
@pytest.mark.slow
@pytest.mark.parametrize("notebook", _selected())
def test_real_notebook_student_checks_fail(notebook: str) -> None:
    path = REPO_ROOT / notebook
    status = _last_run()
    if status is None:
        pytest.fail(f"no {STATUS_FILE}: run the notebooks first (make test-notebooks)")
    entry = status["notebooks"].get(notebook)
    assert entry is not None, (
        f"{notebook} was not executed in the last notebook run (make test-notebooks)"
    )
    if entry["outcome"] == "skipped":
        pytest.skip(f"skipped in the notebook run: {entry.get('reason', '')}")
    assert entry["outcome"] == "passed", (
        f"the instructor version of {notebook} fails (see the notebook run)"
    )
    assert path.stat().st_mtime <= STATUS_FILE.stat().st_mtime, (
        f"{notebook} changed after the last notebook run; run `make test-notebooks` again"
    )
    assert verify_student_version(path) == []
