"""A Sphinx extension of the course website: the exercises of every page are numbered from 1.

sphinx-exercise numbers its exercise blocks with Sphinx's figure numbering, which counts through
the whole book when the table of contents is not numbered: the first exercise of the second
notebook would read "Exercise 5", while the notebook, its check (``passed("Exercise 1")``) and
its student version say "Exercise 1". After Sphinx has assigned the numbers, this extension
renumbers the exercises of each page 1, 2, 3, ... in their order on the page (keeping any section
prefix), so the website and the notebooks agree; references and "Solution to Exercise N" titles
read the same numbers.

scripts/stage_book.py copies this file to ``_stage/_ext/exercise_numbers.py``, and _config.yml
loads it (``local_extensions``). Used by: `make book`; tests/test_site.py checks the numbers.
"""

from __future__ import annotations

from typing import Any

EXERCISE_FIGTYPE = "exercise"


def renumber_per_page(
    toc_fignumbers: dict[str, dict[str, dict[str, tuple[int, ...]]]],
) -> list[str]:
    """Renumber the exercises of each page from 1, in place; return the pages that changed."""
    changed = []
    for docname, figtypes in toc_fignumbers.items():
        numbers = figtypes.get(EXERCISE_FIGTYPE)
        if not numbers:
            continue
        renumbered: dict[str, tuple[int, ...]] = {}
        counters: dict[tuple[int, ...], int] = {}
        for node_id in sorted(numbers, key=lambda key: numbers[key]):
            prefix = numbers[node_id][:-1]
            counters[prefix] = counters.get(prefix, 0) + 1
            renumbered[node_id] = (*prefix, counters[prefix])
        if renumbered != numbers:
            figtypes[EXERCISE_FIGTYPE] = renumbered
            changed.append(docname)
    return changed


def _on_env_get_updated(app: Any, env: Any) -> list[str]:
    return renumber_per_page(env.toc_fignumbers)


def setup(app: Any) -> dict[str, Any]:
    # After Sphinx's own handler (priority 500), which assigns the figure numbers.
    app.connect("env-get-updated", _on_env_get_updated, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
