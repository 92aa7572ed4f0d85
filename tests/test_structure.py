"""The course's structure: module folders and index pages, _toc.yml, and every notebook's anatomy
(CONTRIBUTING.md). Each check also runs on a broken mini course to show that it can fail."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

from scripts import course_checks


def test_course_has_modules_and_notebooks(repo_root: Path) -> None:
    assert course_checks.notebook_sources(repo_root), "no notebook sources under modules/ or labs/"


def test_module_folders_have_index_pages(repo_root: Path) -> None:
    assert course_checks.check_modules(repo_root) == []


def test_every_notebook_and_index_is_in_toc(repo_root: Path) -> None:
    assert course_checks.check_toc(repo_root) == []


@pytest.mark.parametrize(
    "source",
    [pytest.param(p, id=str(p.relative_to(Path(__file__).resolve().parent.parent)))
     for p in course_checks.notebook_sources(Path(__file__).resolve().parent.parent)],
)
def test_notebook_anatomy(source: Path, repo_root: Path) -> None:
    assert course_checks.check_anatomy(source, repo_root) == []


# --- the checks can fail ---------------------------------------------------------------------


def test_mini_course_is_valid(mini_course: Path) -> None:
    assert course_checks.all_problems(mini_course) == []


def test_notebook_missing_from_toc_fails(mini_course: Path) -> None:
    toc = mini_course / "_toc.yml"
    toc.write_text(toc.read_text().replace("          - file: modules/00-demo/01-demo\n", "")
                   .replace("        sections:\n", ""))
    problems = course_checks.check_toc(mini_course)
    assert problems == ["modules/00-demo/01-demo: notebook is not in _toc.yml"]


def test_toc_entry_that_does_not_exist_fails(mini_course: Path) -> None:
    toc = mini_course / "_toc.yml"
    toc.write_text(toc.read_text() + "      - file: modules/00-demo/02-missing\n")
    assert any("02-missing, which does not exist" in p for p in course_checks.check_toc(mini_course))


def test_module_without_index_fails(mini_course: Path) -> None:
    (mini_course / "modules" / "00-demo" / "index.md").unlink()
    assert course_checks.check_modules(mini_course) == ["modules/00-demo: no index.md"]


def test_badly_named_module_fails(mini_course: Path) -> None:
    (mini_course / "modules" / "21-too-far").mkdir()
    assert any("21-too-far" in p for p in course_checks.check_modules(mini_course))


def _rewrite(src: Path, old: str, new: str) -> None:
    text = src.read_text()
    assert old in text, f"fixture text {old!r} not found"
    src.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("# ## Summary\n", "# ## Wrap-up\n", "no '## Summary' section"),
        ("# ## References\n# - [Python](https://docs.python.org/3/)", "# ## References\n# - Python docs",
         "the References section has no links"),
        ("**Learning objectives**", "**Goals**", "no 'Learning objectives'"),
        ("shared.seed_everything(0)\n", "", "must call shared.seed_everything"),
        ('# %% [markdown] tags=["exercise"]\n# ### Exercise 3', "# %% [markdown]\n# ### Exercise 3",
         "2 exercises"),
        ("    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION", "    return 2 * x",
         "lacks '# BEGIN SOLUTION'"),
        ('# %% tags=["check"]\ncheck_function(double', "# %%\ncheck_function(double",
         "has no code cell tagged 'check'"),
        ("# Why it matters.", "# Why it matters \U0001F680.", "contains emoji"),
    ],
    ids=["summary", "reference-links", "objectives", "setup", "three-exercises", "markers",
         "check-tag", "emoji"],
)
def test_anatomy_violation_fails(mini_course: Path, old: str, new: str, expected: str) -> None:
    src = mini_course / "modules" / "00-demo" / "01-demo.py"
    _rewrite(src, old, new)
    problems = course_checks.check_anatomy(src, mini_course)
    assert any(expected in p for p in problems), problems


def test_find_exercises_groups_cells(mini_course: Path) -> None:
    nb = jupytext.read(mini_course / "modules" / "00-demo" / "01-demo.py")
    exercises = course_checks.find_exercises(nb.cells)
    assert [e.title for e in exercises] == ["### Exercise 1: add", "### Exercise 2: a constant",
                                            "### Exercise 3: double"]
    assert all(len(e.solution_indices) == 1 and len(e.check_indices) == 1 for e in exercises)


def test_colab_cell_follows_the_repository_url(mini_course: Path) -> None:
    from scripts.colab_cell import rewrite

    src = mini_course / "modules" / "00-demo" / "01-demo.py"
    assert "https://github.com/example/course" in src.read_text()
    config = mini_course / "_config.yml"
    config.write_text(config.read_text().replace("example/course", "fork/course"))
    assert any("tagged 'colab'" in p for p in course_checks.check_anatomy(src, mini_course))
    assert rewrite(src, "https://github.com/fork/course") is True
    assert course_checks.check_anatomy(src, mini_course) == []
    assert rewrite(src, "https://github.com/fork/course") is False  # idempotent


def test_badly_named_notebook_fails(mini_course: Path) -> None:
    module = mini_course / "modules" / "00-demo"
    (module / "01-demo.py").rename(module / "Demo Notebook.py")
    assert any("expected a name like 01-slug.py" in p for p in course_checks.check_modules(mini_course))


def test_lab_needs_a_brief_and_a_notebook(mini_course: Path) -> None:
    lab = mini_course / "labs" / "demo-lab"
    lab.mkdir()
    assert set(course_checks.check_modules(mini_course)) == {
        "labs/demo-lab: no README.md (the lab brief)", "labs/demo-lab: no notebook"}
    (lab / "README.md").write_text("# Lab: demo\n")
    (lab / "demo-lab.py").write_text((mini_course / "modules/00-demo/01-demo.py").read_text())
    assert course_checks.check_modules(mini_course) == []
