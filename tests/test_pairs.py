"""Every notebook is a jupytext pair (.py source, .ipynb without outputs) and the two agree.
The meta-tests show that the check fails on a pair out of sync and on committed outputs."""

from __future__ import annotations

import json
from pathlib import Path

from scripts import course_checks


def test_all_pairs_agree_and_carry_no_outputs(repo_root: Path) -> None:
    assert course_checks.check_pairs(repo_root) == []


def test_mini_course_pair_is_in_sync(mini_course: Path) -> None:
    assert course_checks.check_pairs(mini_course) == []


def test_pair_out_of_sync_fails(mini_course: Path) -> None:
    src = mini_course / "modules" / "00-demo" / "01-demo.py"
    src.write_text(src.read_text().replace("total = 1 + 1", "total = 1 + 2"))
    problems = course_checks.check_pairs(mini_course)
    assert len(problems) == 1 and "differs from its .ipynb" in problems[0], problems


def test_changed_tag_counts_as_out_of_sync(mini_course: Path) -> None:
    src = mini_course / "modules" / "00-demo" / "01-demo.py"
    src.write_text(src.read_text().replace('# %% tags=["check"]\ncheck_function(double',
                                           "# %%\ncheck_function(double"))
    assert any("differs" in p for p in course_checks.check_pairs(mini_course))


def test_committed_outputs_fail(mini_course: Path) -> None:
    nb_path = mini_course / "modules" / "00-demo" / "01-demo.ipynb"
    nb = json.loads(nb_path.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["2\n"]}]
    nb_path.write_text(json.dumps(nb))
    assert any("carries outputs" in p for p in course_checks.check_pairs(mini_course))


def test_missing_ipynb_and_orphan_ipynb_fail(mini_course: Path) -> None:
    module = mini_course / "modules" / "00-demo"
    (module / "01-demo.ipynb").rename(module / "02-orphan.ipynb")
    problems = course_checks.check_pairs(mini_course)
    assert any("no paired .ipynb" in p for p in problems)
    assert any("02-orphan.ipynb: no paired .py source" in p for p in problems)
