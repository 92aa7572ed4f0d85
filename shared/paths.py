"""Where the course keeps its files.

`REPO_ROOT` is the checkout that `shared` was installed from (`pip install -e .`, which
`make install` does). `DATA_DIR` holds the committed corpora; `CACHE_DIR` holds what
`make install` prepares offline (converted models, unpacked packages) and is never committed.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
DATA_DIR: Path = REPO_ROOT / "data"
CACHE_DIR: Path = Path(os.environ.get("COURSE_CACHE_DIR", DATA_DIR / "cache"))


def data_file(name: str) -> Path:
    """Return the path of a committed data file, e.g. ``data_file("tinyshakespeare.txt")``.

    Used in: most notebooks that read a corpus; see data/README.md for what each file is.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"expected a non-empty file name inside data/, got {name!r}")
    path = (DATA_DIR / name).resolve()
    if DATA_DIR.resolve() not in path.parents:
        raise ValueError(f"expected a path inside {DATA_DIR}, got {name!r}")
    if not path.exists():
        available = sorted(p.name for p in DATA_DIR.iterdir() if p.is_file())
        raise FileNotFoundError(f"data/{name} does not exist; available files: {available}")
    return path
