"""The Colab set-up cell of every notebook, generated from the one repository URL in _config.yml.

Every notebook starts with a code cell tagged ``colab`` that installs the course library when the
notebook runs on Colab and does nothing elsewhere. Its text is rendered here from
``repository.url`` in _config.yml, so a fork changes one line and runs `make notebooks`, which
calls ``python -m scripts.colab_cell <sources>`` to rewrite the cell in every `.py` source.
tests/test_structure.py checks that every notebook carries the current text.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKER = '# %% tags=["colab"]'
TEMPLATE = '''# Colab only: install the course library (locally, `make install` has done this).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        "git clone -q --depth 1 {url} /content/course"
        " && pip install -q -e /content/course",
        shell=True,
        check=True,
    )
    sys.path.insert(0, "/content/course")'''


def repository_url(root: Path = REPO_ROOT) -> str:
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    url = (config.get("repository") or {}).get("url", "")
    if not re.match(r"^https://github\.com/[\w.-]+/[\w.-]+$", url):
        raise ValueError(f"_config.yml repository.url must be https://github.com/<owner>/<repo>, got {url!r}")
    return url


def cell_source(url: str) -> str:
    """The canonical source of the Colab cell for the repository at ``url``."""
    return TEMPLATE.format(url=url)


def rewrite(path: Path, url: str) -> bool:
    """Replace the body of the `colab` cell in the percent-format source ``path``.

    Returns True if the file changed. Raises ValueError if the file has no `colab` cell.
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    try:
        start = lines.index(MARKER)
    except ValueError:
        raise ValueError(f"{path}: no cell marked {MARKER!r} (copy it from the exemplar)") from None
    end = start + 1
    while end < len(lines) and not lines[end].startswith("# %%"):
        end += 1
    new_body = cell_source(url).split("\n") + ["", ""]
    if lines[start + 1 : end] == new_body:
        return False
    lines[start + 1 : end] = new_body
    path.write_text("\n".join(lines), encoding="utf-8")
    return True


def main(argv: list[str]) -> int:
    url = repository_url()
    changed = [p for p in map(Path, argv) if rewrite(p, url)]
    for path in changed:
        print(f"updated the Colab cell of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
