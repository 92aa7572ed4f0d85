"""Put the website's third-party browser assets into the staged book: the site works offline.

    python -m scripts.site_assets _stage

Jupyter Book's pages load MathJax from a CDN by default; on a machine without network (and for a
reader offline) the equations would then stay raw TeX, with an error in the browser console. This
script serves MathJax 3 from the site itself instead:

1. the first time, it downloads the npm package with the registry's own client
   (``npm pack mathjax@3.2.2``) into ``data/cache/site/`` (gitignored; `make clean` keeps it), and
   checks the archive's sha256 against the value recorded below; every later run only re-hashes
   the archive (a few milliseconds), so the build itself needs no network;
2. it unpacks the parts that the CommonHTML output needs (the ``tex-mml-chtml.js`` component and
   the folders it loads fonts and extensions from, about 10 MB) into
   ``<stage>/_vendor/_static/mathjax/``. `_config.yml` lists ``_vendor`` in ``html_extra_path``, so
   Sphinx copies it to ``_build/html/_static/mathjax/``, and sets ``mathjax_path`` to it.

MathJax is not put in the book's own ``_static/`` folder: Jupyter Book adds a ``<script>`` tag to
every page for each ``.js`` file found there, which would be some hundred tags per page.

It also writes the site's ``index.html`` (``<stage>/_vendor/index.html``): a redirect to the root
page of _toc.yml that, unlike the one Jupyter Book would write, names the site's icon, so that a
browser does not ask for a missing ``/favicon.ico``.

MathJax is licensed under the Apache License 2.0 (https://github.com/mathjax/MathJax).
Used by: `make book`; tests/test_site.py checks that the built site loads nothing from the network.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from shared.paths import CACHE_DIR

MATHJAX_VERSION = "3.2.2"
MATHJAX_ARCHIVE = f"mathjax-{MATHJAX_VERSION}.tgz"
# sha256 of the npm tarball of mathjax@3.2.2 (npm's own record is the sha512 `integrity` field).
MATHJAX_SHA256 = "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
# The component that _config.yml's mathjax_path names, and the folders it loads files from at run
# time (fonts, TeX extensions on demand, the menu and the accessibility tools).
MATHJAX_ENTRY = "tex-mml-chtml.js"
MATHJAX_FOLDERS = ("a11y", "adaptors", "input", "output", "sre", "ui")
VENDOR_DIR = Path("_vendor") / "_static" / "mathjax"
DOWNLOAD_DIR = CACHE_DIR / "site"


class AssetError(RuntimeError):
    """An asset cannot be fetched, or its archive differs from the recorded checksum."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_mathjax(download_dir: Path = DOWNLOAD_DIR) -> Path:
    """Return the verified MathJax archive, downloading it with `npm pack` if it is not cached."""
    archive = download_dir / MATHJAX_ARCHIVE
    if not archive.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise AssetError(
                f"MathJax {MATHJAX_VERSION} is not in {download_dir} and npm is not installed; "
                "install Node.js with npm (e.g. `apt-get install -y npm`) once, so that "
                f"`npm pack mathjax@{MATHJAX_VERSION}` can fetch it from the npm registry"
            )
        download_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent"],
            cwd=download_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not archive.exists():
            raise AssetError(
                f"`npm pack mathjax@{MATHJAX_VERSION}` failed:\n{result.stderr.strip()}"
            )
    actual = sha256_of(archive)
    if actual != MATHJAX_SHA256:
        raise AssetError(
            f"{archive} has sha256 {actual}, expected {MATHJAX_SHA256}; delete it and run again"
        )
    return archive


def _wanted(member: tarfile.TarInfo) -> str | None:
    """The path of ``member`` below the MathJax folder of the site, or None to leave it out."""
    prefix = "package/es5/"
    if not member.isfile() or not member.name.startswith(prefix):
        return None
    relative = member.name[len(prefix) :]
    folder = relative.split("/", 1)[0] if "/" in relative else None
    return relative if relative == MATHJAX_ENTRY or folder in MATHJAX_FOLDERS else None


def install_mathjax(stage: Path, archive: Path) -> int:
    """Unpack what the site needs of ``archive`` into ``stage/_vendor/_static/mathjax``.

    Returns the number of files written.
    """
    target = stage / VENDOR_DIR
    if target.exists():
        shutil.rmtree(target)
    count = 0
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            relative = _wanted(member)
            if relative is None:
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file, checked in _wanted
            destination.write_bytes(source.read())
            count += 1
    if not (target / MATHJAX_ENTRY).exists():
        raise AssetError(f"{archive} has no package/es5/{MATHJAX_ENTRY}")
    return count


REDIRECT_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="_static/{icon}">
<meta http-equiv="refresh" content="0; url={root}.html">
</head>
<body><p><a href="{root}.html">{title}</a></p></body>
</html>
"""


def write_redirect(stage: Path) -> Path:
    """Write ``<stage>/_vendor/index.html``, which leads to the root page named in _toc.yml."""
    import yaml

    toc = yaml.safe_load((stage / "_toc.yml").read_text(encoding="utf-8"))
    config = yaml.safe_load((stage / "_config.yml").read_text(encoding="utf-8"))
    icon = Path((config.get("html") or {}).get("favicon") or "_static/favicon.svg").name
    title = html.escape(str(config.get("title", "")))
    page = stage / VENDOR_DIR.parent.parent / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        REDIRECT_PAGE.format(title=title, icon=icon, root=toc["root"]), encoding="utf-8"
    )
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", type=Path, help="the staged book (scripts/stage_book.py)")
    args = parser.parse_args(argv)
    if not (args.stage / "_config.yml").exists():
        parser.error(
            f"{args.stage} is not a staged book (no _config.yml); run scripts.stage_book first"
        )
    try:
        archive = fetch_mathjax()
        count = install_mathjax(args.stage, archive)
        write_redirect(args.stage)
    except AssetError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    print(
        f"MathJax {MATHJAX_VERSION}: {count} files in {args.stage / VENDOR_DIR} (sha256 verified)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
