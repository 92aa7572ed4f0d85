"""A tiny but complete course, written to a temporary folder by the meta-tests.

It passes every structure check; each meta-test breaks one thing in a copy of it and asserts
that the matching check reports it. This is how the test suite shows that its checks can fail.
"""

from __future__ import annotations

from pathlib import Path

import jupytext

from scripts.colab_cell import rewrite as rewrite_colab_cell

NOTEBOOK_SOURCE = '''# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A demo notebook
#
# Why it matters.
#
# **Learning objectives**
# - add numbers
#
# **Prerequisites:** none. **Estimated time:** 1 minute.

# %% tags=["colab"]
# (rewritten by scripts.colab_cell)

# %%
import shared
shared.seed_everything(0)
print(shared.environment_summary())

# %% [markdown]
# ## Adding

# %%
total = 1 + 1
print(total)

# %% [markdown] tags=["exercise"]
# ### Exercise 1: add
# Write `add(a, b)`.

# %% tags=["solution"]
def add(a, b):
    # BEGIN SOLUTION
    return a + b
    # END SOLUTION

# %% tags=["check"]
from shared.exercises import check_function, passed
check_function(add, [((1, 2), 3)], "add")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: a constant
# Set `answer` to 42.

# %% tags=["solution"]
answer = None
# BEGIN SOLUTION
answer = 42
# END SOLUTION

# %% tags=["check"]
from shared.exercises import check_equal
check_equal(answer, 42, "answer")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: double
# Write `double(x)`.

# %% tags=["solution"]
def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION

# %% tags=["check"]
check_function(double, [((2,), 4), ((0.5,), 1.0)], "double")
passed("Exercise 3")

# %% [markdown]
# ## Summary
# - Adding works.
#
# ## References
# - [Python](https://docs.python.org/3/)
'''

TOC = """format: jb-book
root: intro
parts:
  - caption: Demo
    chapters:
      - file: modules/00-demo/index
        sections:
          - file: modules/00-demo/01-demo
"""


def make_mini_course(root: Path) -> Path:
    """Write the mini course under ``root`` and return ``root``."""
    module = root / "modules" / "00-demo"
    module.mkdir(parents=True)
    (root / "labs").mkdir()
    (root / "intro.md").write_text("# Demo course\n")
    (root / "_toc.yml").write_text(TOC)
    (module / "index.md").write_text("# Module 00: demo\n")
    (root / "_config.yml").write_text("repository:\n  url: https://github.com/example/course\n")
    src = module / "01-demo.py"
    src.write_text(NOTEBOOK_SOURCE)
    rewrite_colab_cell(src, "https://github.com/example/course")
    jupytext.write(jupytext.read(src), module / "01-demo.ipynb", fmt="ipynb")
    return root
