"""`shared.exercises`: checks pass on right answers and fail, saying what was expected, on wrong
ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.exercises import (
    ExerciseError,
    check,
    check_close,
    check_equal,
    check_function,
    check_in_range,
    check_shape,
    check_type,
    passed,
)


def test_check() -> None:
    check(True, "ex", "truth")
    with pytest.raises(ExerciseError, match="ex: expected the rows to sum to 1"):
        check(False, "ex", "the rows to sum to 1")


def test_unanswered_values_say_so() -> None:
    for helper, args in [(check_equal, (None, 1)), (check_close, (..., 1.0)),
                         (check_shape, (None, (2,))), (check_in_range, (None, 0, 1)),
                         (check_type, (None, int))]:
        with pytest.raises(ExerciseError, match="no answer yet"):
            helper(*args, "ex")


def test_check_equal() -> None:
    check_equal(3, 3, "n")
    check_equal(np.arange(3), torch.arange(3), "arr")
    with pytest.raises(ExerciseError, match="expected 3, got 4"):
        check_equal(4, 3, "n")
    with pytest.raises(ExerciseError, match=r"expected 2 at index \(2,\), got 5"):
        check_equal(np.array([0, 1, 5]), np.arange(3), "arr")
    with pytest.raises(ExerciseError, match=r"expected shape \(3,\), got \(2,\)"):
        check_equal(np.arange(2), np.arange(3), "arr")


def test_check_close() -> None:
    check_close(0.1 + 0.2, 0.3, "x")
    check_close(torch.ones(2, 2, dtype=torch.bfloat16), np.ones((2, 2)), "t", rtol=1e-2)
    with pytest.raises(ExerciseError, match=r"x: expected 0\.3 .* got 0\.31"):
        check_close(0.31, 0.3, "x")
    with pytest.raises(ExerciseError, match=r"1 of 4 entries differ"):
        check_close(np.array([[1, 2], [3, 5.0]]), np.array([[1, 2], [3, 4.0]]), "m")
    with pytest.raises(ExerciseError, match="NaN"):
        check_close(float("nan"), 1.0, "x")
    with pytest.raises(ExerciseError, match="expected a number"):
        check_close("abc", 1.0, "x")
    with pytest.raises(ValueError, match="rtol and atol"):
        check_close(1.0, 1.0, "x", rtol=-1)


def test_check_shape_and_type() -> None:
    check_shape(torch.zeros(2, 3), (2, 3), "t")
    with pytest.raises(ExerciseError, match=r"expected shape \(3, 2\), got \(2, 3\)"):
        check_shape(np.zeros((2, 3)), (3, 2), "t")
    with pytest.raises(ExerciseError, match="expected an array or tensor"):
        check_shape([1, 2], (2,), "t")
    check_type(1, int, "n")
    with pytest.raises(ExerciseError, match="expected a int or float, got a str"):
        check_type("1", (int, float), "n")


def test_check_in_range() -> None:
    check_in_range(0.5, 0, 1, "p")
    with pytest.raises(ExerciseError, match=r"expected a number in \[0, 1\], got 1.5"):
        check_in_range(1.5, 0, 1, "p")
    with pytest.raises(ValueError):
        check_in_range(0.5, 1, 0, "p")


def test_check_function() -> None:
    check_function(lambda a, b: a + b, [((1, 2), 3), ((0.1, 0.2), 0.3)], "add")
    with pytest.raises(ExerciseError, match=r"add\(1, 2\): expected 3 .*got -1"):
        check_function(lambda a, b: a - b, [((1, 2), 3)], "add")
    with pytest.raises(ExerciseError, match="expected a function"):
        check_function(None, [((1,), 1)], "f")
    with pytest.raises(NotImplementedError):
        def stub(x):
            raise NotImplementedError("Exercise: write your solution here")
        check_function(stub, [((1,), 1)], "f")
    with pytest.raises(ValueError, match="at least one"):
        check_function(abs, [], "f")


def test_passed_prints(capsys) -> None:
    passed("Exercise 1")
    assert capsys.readouterr().out == "Exercise 1: all checks passed.\n"
