"""Checks for the exercises in every notebook.

An exercise in this course is four cells: a markdown brief tagged ``exercise``, the learner's code
cell tagged ``solution`` (the instructor's answer sits between ``# BEGIN SOLUTION`` and
``# END SOLUTION``), and a check cell tagged ``check`` that calls the helpers below. In the
student version (``make student``) the answer is replaced by a stub, and the check must then fail
with a message that says what was expected. ``tests/test_student.py`` proves that it does.

Every helper raises :class:`ExerciseError` (an ``AssertionError``) whose message names the
exercise, what was expected and what was found. On success it returns quietly; call
:func:`passed` at the end of a check cell to say so.

Used in: the check cells of every notebook and lab.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "ExerciseError",
    "check",
    "check_close",
    "check_equal",
    "check_function",
    "check_in_range",
    "check_shape",
    "check_type",
    "passed",
]


class ExerciseError(AssertionError):
    """An exercise check failed. The message says what was expected and what was found."""


def _fail(name: str, message: str) -> None:
    raise ExerciseError(f"{name}: {message}")


def _not_done(value: Any) -> bool:
    return value is None or value is Ellipsis


def _require_answer(value: Any, name: str) -> None:
    if _not_done(value):
        _fail(name, f"no answer yet (found {value!r}); write your solution in the cell above")


def _to_numpy(value: Any) -> Any:
    """Convert tensors, arrays, lists and scalars to a float64 NumPy array (torch is optional)."""
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu()
        if str(value.dtype).startswith("torch.bfloat16") or str(value.dtype) == "torch.float16":
            value = value.float()
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"expected numbers, got an object array from {type(value).__name__}")
    return array


def _shape_of(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    return tuple(int(s) for s in shape)


def check(condition: bool, name: str, expected: str) -> None:
    """Fail with ``expected`` unless ``condition`` holds.

    ``expected`` completes the sentence "expected ...", e.g. ``"the rows to sum to 1"``.
    """
    if not isinstance(name, str) or not isinstance(expected, str):
        raise TypeError("check(condition, name, expected): name and expected must be strings")
    if not condition:
        _fail(name, f"expected {expected}")


def check_type(value: Any, expected_type: type | tuple[type, ...], name: str) -> None:
    """Fail unless ``value`` is an instance of ``expected_type``."""
    _require_answer(value, name)
    if not isinstance(value, expected_type):
        wanted = (
            " or ".join(t.__name__ for t in expected_type)
            if isinstance(expected_type, tuple)
            else expected_type.__name__
        )
        _fail(name, f"expected a {wanted}, got a {type(value).__name__}: {value!r:.80}")


def check_shape(value: Any, expected_shape: Sequence[int], name: str) -> None:
    """Fail unless ``value.shape`` equals ``expected_shape`` (arrays and tensors)."""
    _require_answer(value, name)
    expected = tuple(int(s) for s in expected_shape)
    shape = _shape_of(value)
    if shape is None:
        _fail(name, f"expected an array or tensor of shape {expected}, got {type(value).__name__}")
    if shape != expected:
        _fail(name, f"expected shape {expected}, got {shape}")


def check_equal(actual: Any, expected: Any, name: str) -> None:
    """Fail unless ``actual == expected`` (exact; use :func:`check_close` for floats)."""
    _require_answer(actual, name)
    if _shape_of(actual) is not None or _shape_of(expected) is not None:
        import numpy as np

        a, e = _to_numpy(actual), _to_numpy(expected)
        if a.shape != e.shape:
            _fail(name, f"expected shape {e.shape}, got {a.shape}")
        if not np.array_equal(a, e):
            where = np.argwhere(a != e)[0]
            idx = tuple(int(i) for i in where)
            _fail(name, f"expected {e[idx].item()!r} at index {idx}, got {a[idx].item()!r}")
        return
    if actual != expected:
        _fail(name, f"expected {expected!r}, got {actual!r}")


def check_close(
    actual: Any,
    expected: Any,
    name: str,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> None:
    """Fail unless ``actual`` matches ``expected`` within ``atol + rtol * |expected|`` everywhere.

    Accepts Python numbers, NumPy arrays and torch tensors; shapes must agree exactly.
    """
    import numpy as np

    _require_answer(actual, name)
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    try:
        a = _to_numpy(actual).astype(np.float64)
    except (TypeError, ValueError) as exc:
        _fail(name, f"expected a number or an array of numbers, got {type(actual).__name__} ({exc})")
    e = _to_numpy(expected).astype(np.float64)
    if a.shape != e.shape:
        _fail(name, f"expected shape {e.shape}, got {a.shape}")
    if np.isnan(a).any() and not np.isnan(e).any():
        _fail(name, "expected finite numbers, got NaN")
    bad = ~np.isclose(a, e, rtol=rtol, atol=atol)
    if bad.any():
        if a.ndim == 0:
            _fail(name, f"expected {float(e):.6g} (within atol={atol:g}, rtol={rtol:g}), got {float(a):.6g}")
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        worst = float(np.max(np.abs(a - e)))
        _fail(
            name,
            f"expected {float(e[idx]):.6g} at index {idx}, got {float(a[idx]):.6g} "
            f"({int(bad.sum())} of {bad.size} entries differ; max abs difference {worst:.3g})",
        )


def check_in_range(value: Any, low: float, high: float, name: str) -> None:
    """Fail unless ``low <= value <= high`` (a single number)."""
    _require_answer(value, name)
    if low > high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        _fail(name, f"expected a number in [{low}, {high}], got {type(value).__name__}: {value!r:.80}")
    if math.isnan(number) or not low <= number <= high:
        _fail(name, f"expected a number in [{low}, {high}], got {number:.6g}")


def check_function(
    func: Callable[..., Any],
    cases: Iterable[tuple[tuple[Any, ...], Any]],
    name: str,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    exact: bool = False,
) -> None:
    """Call ``func(*args)`` for each ``(args, expected)`` in ``cases`` and compare the results.

    Numbers and arrays are compared with :func:`check_close` (or :func:`check_equal` when
    ``exact``); the message names the first input that gave a wrong answer.
    """
    if not callable(func):
        _fail(name, f"expected a function, got {type(func).__name__}: {func!r:.80}")
    cases = list(cases)
    if not cases:
        raise ValueError("check_function needs at least one (args, expected) case")
    for args, expected in cases:
        if not isinstance(args, tuple):
            raise TypeError(f"each case must be (args_tuple, expected), got args={args!r:.80}")
        result = func(*args)
        label = f"{name}{_format_args(args)}"
        if exact or not _is_numeric(expected):
            check_equal(result, expected, label)
        else:
            check_close(result, expected, label, rtol=rtol, atol=atol)


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return _shape_of(value) is not None


def _format_args(args: tuple[Any, ...]) -> str:
    parts = []
    for arg in args:
        shape = _shape_of(arg)
        parts.append(f"<array {shape}>" if shape is not None else f"{arg!r:.40}")
    return "(" + ", ".join(parts) + ")"


def passed(name: str) -> None:
    """Print a one-line confirmation; call it at the end of a check cell."""
    print(f"{name}: all checks passed.")
