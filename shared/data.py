"""Text to token ids to training batches: tokenizers, splits, packing and resumable samplers.

The path every pretraining notebook follows:

1. read a corpus (:func:`load_text_dataset` for local files, :func:`shakespeare_char_data` for the
   course corpus);
2. turn it into ids with a tokenizer (:class:`CharTokenizer`, or a byte-level BPE from
   :func:`train_bpe_tokenizer`);
3. split it (:func:`train_val_split`) and cut it into training examples, either random windows
   of one long stream (:class:`RandomBlockSampler`, as nanoGPT's ``get_batch``) or packed rows of
   documents (:func:`pack_sequences`, then :class:`RowBatchSampler` or :func:`block_dataloader`).

The samplers draw from their own ``torch.Generator`` and can save and restore their position
(``state_dict`` / ``load_state_dict``), so `shared.training` resumes a run exactly.

It also holds the toy English-to-French translation task of module 02 (:func:`toy_translation_pairs`).

Used in: modules/02-transformer-architecture, modules/03-data-and-tokenization, modules/04-llm-from-scratch,
modules/05-pretraining (01-pretraining-data, 02-next-token-prediction, 04-training-loop),
`shared.training`, `shared.checkpoints`, scripts/train_course_models.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader, Dataset

from shared.paths import data_file

__all__ = [
    "TOY_TRANSLATION_SENTENCES",
    "BPETokenizer",
    "BatchSource",
    "BlockDataset",
    "CharTokenizer",
    "PairBatchSampler",
    "RandomBlockSampler",
    "RowBatchSampler",
    "ShakespeareData",
    "block_dataloader",
    "load_text_dataset",
    "load_tokenizer",
    "pack_sequences",
    "packing_efficiency",
    "pad_sequences",
    "shakespeare_char_data",
    "train_bpe_tokenizer",
    "toy_translation_pair",
    "toy_translation_pairs",
    "train_val_split",
]

IGNORE_INDEX = -100  # the target value that `torch.nn.functional.cross_entropy` skips by default


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------


def _as_id_list(ids: Any) -> list[int]:
    """Token ids from a list, tuple, 1-D tensor or array, as Python ints."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise ValueError(f"expected a 1-D tensor of token ids, got shape {tuple(ids.shape)}")
        return ids.tolist()
    if hasattr(ids, "tolist") and not isinstance(ids, (list, tuple)):  # a NumPy array
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"expected a sequence of token ids, got {type(ids).__name__}")
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int)]
    if bad:
        raise TypeError(f"expected integer token ids, got {bad[:3]!r}")
    return list(ids)


class CharTokenizer:
    """A character-level tokenizer: one id per distinct character, in sorted order (nanoGPT's).

    ``CharTokenizer.fit(text)`` builds the vocabulary; ``encode`` and ``decode`` map between
    text and ids; ``save`` / ``load`` write a small JSON file. Encoding a character that was not
    seen during ``fit`` raises a ``ValueError`` that names it.

    Used in: modules/01-introduction/01-overview, modules/04-llm-from-scratch,
    modules/05-pretraining (02-next-token-prediction, 04-training-loop), `shared.checkpoints`.
    """

    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        if not chars:
            raise ValueError("expected at least one character in the vocabulary, got none")
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"expected single characters, got {bad[:5]!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("expected distinct characters, got duplicates")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        """Build the vocabulary from the distinct characters of ``text``, sorted."""
        if not isinstance(text, str):
            raise TypeError(f"expected a str to fit on, got {type(text).__name__}")
        if not text:
            raise ValueError("expected a non-empty text to fit on")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The id of each character of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"expected a str to encode, got {type(text).__name__}")
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            unknown = sorted({c for c in text if c not in self.stoi})
            raise ValueError(
                f"characters {unknown!r} are not in the vocabulary of {self.vocab_size} characters"
            ) from None

    def decode(self, ids: Any) -> str:
        """The text of a sequence of ids (a list, tuple or 1-D tensor)."""
        ids = _as_id_list(ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"expected ids in [0, {self.vocab_size}), got {sorted(set(bad))[:10]}")
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON, ``{"type": "char", "chars": [...]}``; return the path."""
        path = Path(path)
        path.write_text(json.dumps({"type": self.kind, "chars": self.chars}, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a vocabulary written by :meth:`save`."""
        payload = _read_json(path)
        if payload.get("type") != cls.kind or not isinstance(payload.get("chars"), list):
            raise ValueError(f"{path} is not a character tokenizer file (expected type 'char')")
        return cls(payload["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class BPETokenizer:
    """A byte-level BPE tokenizer (Hugging Face `tokenizers`) with the interface of
    :class:`CharTokenizer`: ``encode``, ``decode``, ``vocab_size``, ``save`` / ``load``.

    Byte-level means every string can be encoded (nothing is "unknown") and
    ``decode(encode(s)) == s``. The underlying ``tokenizers.Tokenizer`` is ``.backend``.
    Build one with :func:`train_bpe_tokenizer`.

    Used in: modules/03-data-and-tokenization (03-hf-tokenizers, 04-custom-tokenizers),
    modules/05-pretraining/01-pretraining-data.
    """

    kind = "bpe"

    def __init__(self, backend: Any) -> None:
        from tokenizers import Tokenizer

        if not isinstance(backend, Tokenizer):
            raise TypeError(f"expected a tokenizers.Tokenizer, got {type(backend).__name__}")
        self.backend = backend

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text`` (no special tokens are added)."""
        if not isinstance(text, str):
            raise TypeError(f"expected a str to encode, got {type(text).__name__}")
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Any) -> str:
        """The text of a sequence of ids (a list, tuple or 1-D tensor)."""
        ids = _as_id_list(ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"expected ids in [0, {self.vocab_size}), got {sorted(set(bad))[:10]}")
        return self.backend.decode(ids, skip_special_tokens=False)

    def token_to_id(self, token: str) -> int:
        """The id of a token string, e.g. a special token; raises if it is not in the vocabulary."""
        token_id = self.backend.token_to_id(token)
        if token_id is None:
            raise ValueError(f"token {token!r} is not in the vocabulary")
        return token_id

    def save(self, path: str | Path) -> Path:
        """Write the Hugging Face ``tokenizer.json`` format and return the path."""
        path = Path(path)
        self.backend.save(str(path))
        return path

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a ``tokenizer.json`` written by :meth:`save` (or by any `tokenizers` tokenizer)."""
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer file at {path}")
        return cls(Tokenizer.from_file(str(path)))

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    *,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = ("<|endoftext|>",),
) -> BPETokenizer:
    """Train a byte-level BPE tokenizer (GPT-2's scheme) on ``texts`` with HF `tokenizers`.

    The vocabulary starts from the 256 byte symbols plus ``special_tokens`` and grows by merges up
    to ``vocab_size``. (Module 03 writes BPE from scratch; this is the production library.)

    Used in: modules/03-data-and-tokenization (03-hf-tokenizers, 04-custom-tokenizers),
    modules/05-pretraining/01-pretraining-data.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if isinstance(texts, str):
        raise TypeError("expected an iterable of strings, got a single str (wrap it in a list)")
    special_tokens = list(special_tokens)
    smallest = 256 + len(special_tokens)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < smallest:
        raise ValueError(
            f"vocab_size must be an int >= {smallest} (256 bytes + {len(special_tokens)} special "
            f"tokens), got {vocab_size!r}"
        )
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be an int >= 1, got {min_frequency!r}")
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise TypeError("expected a non-empty iterable of strings to train on")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return BPETokenizer(backend)


def _read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path}")
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return payload


def load_tokenizer(path: str | Path) -> CharTokenizer | BPETokenizer:
    """Load either tokenizer from its JSON file, whichever kind it is.

    Used in: `shared.checkpoints` (the course models' ``tokenizer.json``).
    """
    payload = _read_json(path)
    if payload.get("type") == CharTokenizer.kind:
        return CharTokenizer.load(path)
    if "model" in payload:  # the Hugging Face tokenizer.json layout
        return BPETokenizer.load(path)
    raise ValueError(f"{path} is neither a character tokenizer nor a Hugging Face tokenizer.json")


# --------------------------------------------------------------------------------------------
# Corpora and splits
# --------------------------------------------------------------------------------------------


def _as_ids_tensor(ids: Any, name: str = "ids") -> torch.Tensor:
    """A 1-D int64 tensor from a list or a 1-D integer tensor."""
    if not isinstance(ids, torch.Tensor):
        ids = torch.tensor(_as_id_list(ids), dtype=torch.long)
    if ids.dim() != 1:
        raise ValueError(f"expected {name} to be 1-D, got shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise TypeError(f"expected integer token ids, got dtype {ids.dtype}")
    return ids.long()


def train_val_split(ids: Any, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a token stream into its first ``1 - val_fraction`` (train) and the rest (val).

    A contiguous split, as nanoGPT does: the validation text is a passage the model never saw,
    not random tokens from inside training passages.

    Used in: modules/05-pretraining (02-next-token-prediction, 04-training-loop),
    :func:`shakespeare_char_data`.
    """
    ids = _as_ids_tensor(ids)
    if not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n_train = int(len(ids) * (1.0 - val_fraction))
    if n_train == 0 or n_train == len(ids):
        raise ValueError(
            f"a split of {len(ids)} tokens with val_fraction={val_fraction} leaves one side empty"
        )
    return ids[:n_train], ids[n_train:]


def load_text_dataset(
    paths: str | Path | Sequence[str | Path],
    *,
    sample_by: str = "line",
    cache_dir: str | Path | None = None,
) -> Any:
    """Load local text files with Hugging Face `datasets` (``load_dataset("text", ...)``), offline.

    Returns a ``datasets.Dataset`` with one column, ``"text"``: one row per line
    (``sample_by="line"``), per blank-line-separated paragraph (``"paragraph"``) or per file
    (``"document"``). ``cache_dir`` is where `datasets` keeps its Arrow cache (its default if None).

    Used in: modules/03-data-and-tokenization (01-data-collection, 07-cleaning),
    modules/05-pretraining/01-pretraining-data.
    """
    from datasets import load_dataset

    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("expected at least one text file path")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"text file(s) not found: {missing}")
    if sample_by not in ("line", "paragraph", "document"):
        raise ValueError(f"sample_by must be 'line', 'paragraph' or 'document', got {sample_by!r}")
    return load_dataset(
        "text",
        data_files=[str(p) for p in paths],
        split="train",
        sample_by=sample_by,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )


class ShakespeareData(NamedTuple):
    """The character-level course corpus: its tokenizer and the two id streams.

    Used in: :func:`shakespeare_char_data` and the notebooks that call it.
    """

    tokenizer: CharTokenizer
    train: torch.Tensor
    val: torch.Tensor


def shakespeare_char_data(block_size: int, val_fraction: float = 0.1) -> ShakespeareData:
    """Tiny Shakespeare at the character level: ``(tokenizer, train_ids, val_ids)``.

    Reads data/tinyshakespeare.txt, fits a :class:`CharTokenizer` on the whole text (65
    characters) and splits 90/10 as nanoGPT's ``shakespeare_char`` does. ``block_size`` is the
    context the caller will train with; both splits must be longer than it.

    Used in: modules/01-introduction/01-overview, modules/05-pretraining (02-next-token-prediction,
    04-training-loop), scripts/train_course_models.py, benchmarks/bench_training.py.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    text = data_file("tinyshakespeare.txt").read_text(encoding="utf-8")
    tokenizer = CharTokenizer.fit(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train, val = train_val_split(ids, val_fraction)
    if len(val) <= block_size:
        raise ValueError(
            f"the validation split has {len(val)} tokens, not more than block_size={block_size}; "
            "use a larger val_fraction or a smaller block_size"
        )
    return ShakespeareData(tokenizer, train, val)


# --------------------------------------------------------------------------------------------
# Packing documents into fixed-length rows
# --------------------------------------------------------------------------------------------


def _check_block_size(block_size: int) -> None:
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"block_size must be an int >= 2, got {block_size!r}")


def _documents(docs: Iterable[Any]) -> list[list[int]]:
    docs = [_as_id_list(d) for d in docs]
    if not docs:
        raise ValueError("expected at least one document")
    return docs


def pack_sequences(docs: Iterable[Any], block_size: int, eos_id: int) -> torch.Tensor:
    """Concatenate documents, each followed by ``eos_id``, and cut the stream into rows.

    Returns a ``(n_rows, block_size)`` int64 tensor. Every slot holds a real token; the tail
    that does not fill a last row is dropped. Documents flow across row boundaries, and the
    end-of-sequence token tells the model where one stops (as GPT-2 and nanoGPT train).

    Used in: modules/05-pretraining/01-pretraining-data.
    """
    _check_block_size(block_size)
    stream: list[int] = []
    for doc in _documents(docs):
        stream.extend(doc)
        stream.append(int(eos_id))
    n_rows = len(stream) // block_size
    if n_rows == 0:
        raise ValueError(
            f"the documents hold {len(stream)} tokens with separators, fewer than one row of "
            f"block_size={block_size}"
        )
    return torch.tensor(stream[: n_rows * block_size], dtype=torch.long).view(n_rows, block_size)


def pad_sequences(docs: Iterable[Any], block_size: int, eos_id: int, pad_id: int) -> torch.Tensor:
    """The padding alternative to :func:`pack_sequences`: each document gets rows of its own.

    A document (plus its ``eos_id``) longer than ``block_size`` fills several rows; the last row
    of each document is filled up with ``pad_id``. Compare the two with
    :func:`packing_efficiency`.

    Used in: modules/05-pretraining/01-pretraining-data.
    """
    _check_block_size(block_size)
    if pad_id == eos_id:
        raise ValueError(f"pad_id and eos_id must differ, both are {pad_id}")
    rows: list[list[int]] = []
    for doc in _documents(docs):
        tokens = doc + [int(eos_id)]
        for start in range(0, len(tokens), block_size):
            row = tokens[start : start + block_size]
            rows.append(row + [int(pad_id)] * (block_size - len(row)))
    return torch.tensor(rows, dtype=torch.long)


def packing_efficiency(rows: torch.Tensor, pad_id: int | None) -> float:
    """The fraction of slots in ``rows`` that hold a real token (not ``pad_id``).

    1.0 for packed rows; below 1 for padded ones. ``pad_id=None`` means there is no padding.

    Used in: modules/05-pretraining/01-pretraining-data.
    """
    if not isinstance(rows, torch.Tensor) or rows.dim() != 2 or rows.numel() == 0:
        raise ValueError(
            f"expected a non-empty 2-D tensor of rows, got {getattr(rows, 'shape', rows)!r}"
        )
    if pad_id is None:
        return 1.0
    return float((rows != pad_id).float().mean())


# --------------------------------------------------------------------------------------------
# Batches: the protocol the training loop reads, and two resumable samplers
# --------------------------------------------------------------------------------------------


@runtime_checkable
class BatchSource(Protocol):
    """What `shared.training` reads batches from: an endless, resumable stream of ``(x, y)``.

    ``next_batch()`` returns the next batch; ``state_dict()`` / ``load_state_dict()`` save and
    restore the position, so that a resumed run sees exactly the batches it would have seen.
    :class:`RandomBlockSampler` and :class:`RowBatchSampler` implement it.

    Used in: `shared.training`, modules/05-pretraining/04-training-loop.
    """

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class RandomBlockSampler:
    """Random windows of one token stream, as nanoGPT's ``get_batch``, but reproducible.

    Each batch picks ``batch_size`` start positions uniformly (with replacement) and returns
    ``x = ids[i : i + block_size]`` and ``y = ids[i + 1 : i + 1 + block_size]``, both
    ``(batch_size, block_size)`` int64. The positions come from a private ``torch.Generator``
    seeded with ``seed``, so the sequence of batches is fixed by the seed and does not touch
    the global random state; ``state_dict`` captures the generator to resume mid-stream.

    Used in: modules/05-pretraining (02-next-token-prediction, 04-training-loop),
    `shared.training`, benchmarks/bench_training.py.
    """

    def __init__(self, ids: Any, block_size: int, batch_size: int, seed: int = 0) -> None:
        self.ids = _as_ids_tensor(ids)
        _check_positive_int(block_size, "block_size")
        _check_positive_int(batch_size, "batch_size")
        n_starts = len(self.ids) - block_size  # start positions that leave room for the target
        if n_starts < 1:
            raise ValueError(
                f"the stream has {len(self.ids)} tokens; it needs more than block_size={block_size}"
            )
        if batch_size > n_starts:
            raise ValueError(
                f"batch_size={batch_size} is larger than the {n_starts} distinct blocks of "
                f"block_size={block_size} in a stream of {len(self.ids)} tokens"
            )
        self.block_size, self.batch_size, self.seed = block_size, batch_size, seed
        self.n_starts = n_starts
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_drawn = 0
        self._offsets = torch.arange(block_size)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(self.n_starts, (self.batch_size,), generator=self.generator)
        index = starts[:, None] + self._offsets  # (batch_size, block_size) positions
        self.batches_drawn += 1
        return self.ids[index], self.ids[index + 1]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "random_block",
            "seed": self.seed,
            "batches_drawn": self.batches_drawn,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "random_block":
            raise ValueError(f"expected a RandomBlockSampler state, got kind={state.get('kind')!r}")
        self.seed = state["seed"]
        self.batches_drawn = state["batches_drawn"]
        self.generator.set_state(state["generator"])


def _inputs_and_targets(
    rows: torch.Tensor, pad_id: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``rows[..., :-1]`` and next-token targets ``rows[..., 1:]`` (padding -> -100)."""
    x, y = rows[..., :-1].contiguous(), rows[..., 1:].clone()
    if pad_id is not None:
        y[y == pad_id] = IGNORE_INDEX
    return x, y


class BlockDataset(Dataset):
    """A ``torch.utils.data.Dataset`` over fixed-length rows: item ``i`` is ``(row[:-1], row[1:])``.

    Rows come from :func:`pack_sequences` or :func:`pad_sequences`. With ``pad_id`` set, targets
    that are padding become ``-100``, which ``cross_entropy`` ignores, so padding adds no loss.

    Used in: modules/05-pretraining/01-pretraining-data, :func:`block_dataloader`.
    """

    def __init__(self, rows: torch.Tensor, pad_id: int | None = None) -> None:
        if not isinstance(rows, torch.Tensor) or rows.dim() != 2 or rows.shape[1] < 2:
            raise ValueError(
                "expected a 2-D tensor of rows with at least 2 columns, "
                f"got {getattr(rows, 'shape', rows)!r}"
            )
        if len(rows) == 0:
            raise ValueError("expected at least one row")
        self.rows, self.pad_id = rows.long(), pad_id

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _inputs_and_targets(self.rows[index], self.pad_id)


def block_dataloader(
    rows: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    pad_id: int | None = None,
    drop_last: bool = True,
) -> DataLoader:
    """A standard ``DataLoader`` over :class:`BlockDataset` rows, shuffled by a seeded generator.

    For the training loop, prefer :class:`RowBatchSampler`, which also saves its position.

    Used in: modules/05-pretraining/01-pretraining-data.
    """
    dataset = BlockDataset(rows, pad_id=pad_id)
    _check_positive_int(batch_size, "batch_size")
    if drop_last and batch_size > len(dataset):
        raise ValueError(f"batch_size={batch_size} is larger than the {len(dataset)} rows")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last
    )


class RowBatchSampler:
    """Batches of rows in epochs: each epoch visits every row once, in a seeded random order.

    The order of epoch ``e`` is ``torch.randperm`` drawn from a generator seeded with
    ``seed + e``, so the state is three integers (seed, epoch, position) and resuming is exact.
    An incomplete last batch of an epoch is skipped (every batch has ``batch_size`` rows).

    Used in: modules/05-pretraining/01-pretraining-data, `shared.training` (2-D training data).
    """

    def __init__(
        self, rows: torch.Tensor, batch_size: int, seed: int = 0, pad_id: int | None = None
    ) -> None:
        self.dataset = BlockDataset(rows, pad_id=pad_id)
        _check_positive_int(batch_size, "batch_size")
        if batch_size > len(self.dataset):
            raise ValueError(f"batch_size={batch_size} is larger than the {len(self.dataset)} rows")
        self.batch_size, self.seed = batch_size, seed
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.dataset), generator=generator)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.position + self.batch_size > len(self.dataset):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        index = self._order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return _inputs_and_targets(self.dataset.rows[index], self.dataset.pad_id)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "row_batch",
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "row_batch":
            raise ValueError(f"expected a RowBatchSampler state, got kind={state.get('kind')!r}")
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
        self._order = self._permutation(self.epoch)


class PairBatchSampler:
    """Random batches of aligned rows of two tensors (e.g. sources and targets), with replacement.

    Each batch is ``batch_size`` row indices drawn with ``torch.randint`` from a generator seeded
    with ``seed``, and returns ``(first[rows], second[rows])``. It follows the `BatchSource`
    protocol, and its state (the generator's) resumes the stream exactly. Unlike
    :class:`RowBatchSampler` it does not split one row into inputs and targets: the caller's
    loss function decides what the pair means.

    Used in: modules/02-transformer-architecture (01-encoder-decoder, 02-decoder-only,
    04-multi-head-attention).
    """

    def __init__(
        self, first: torch.Tensor, second: torch.Tensor, batch_size: int, seed: int = 0
    ) -> None:
        for name, value in (("first", first), ("second", second)):
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                raise TypeError(f"{name} must be a tensor with a row dimension, got {value!r:.60}")
        if len(first) != len(second):
            raise ValueError(
                f"first and second must have the same number of rows, got {len(first)} and "
                f"{len(second)}"
            )
        _check_positive_int(batch_size, "batch_size")
        self.first, self.second, self.batch_size = first, second, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(len(self.first), (self.batch_size,), generator=self.generator)
        return self.first[rows], self.second[rows]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "pair_batch", "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "pair_batch":
            raise ValueError(f"expected a PairBatchSampler state, got kind={state.get('kind')!r}")
        self.generator.set_state(state["generator"])


# --------------------------------------------------------------------------------------------
# A toy English-to-French translation task (module 02)
# --------------------------------------------------------------------------------------------

# The grammar that modules/02-transformer-architecture/01-encoder-decoder writes out and explains:
# subject-verb-object sentences whose French side needs adjective placement and agreement.
_NOUNS = {  # English singular: (English plural, French singular, French plural, gender)
    "cat": ("cats", "chat", "chats", "m"), "dog": ("dogs", "chien", "chiens", "m"),
    "horse": ("horses", "cheval", "chevaux", "m"), "boy": ("boys", "garçon", "garçons", "m"),
    "book": ("books", "livre", "livres", "m"), "mouse": ("mice", "souris", "souris", "f"),
    "house": ("houses", "maison", "maisons", "f"), "car": ("cars", "voiture", "voitures", "f"),
    "flower": ("flowers", "fleur", "fleurs", "f"), "girl": ("girls", "fille", "filles", "f"),
}
_ADJECTIVES = {  # English: ((masc. sg., fem. sg., masc. pl., fem. pl.), goes before the noun?)
    "red": (("rouge", "rouge", "rouges", "rouges"), False),
    "black": (("noir", "noire", "noirs", "noires"), False),
    "green": (("vert", "verte", "verts", "vertes"), False),
    "white": (("blanc", "blanche", "blancs", "blanches"), False),
    "blue": (("bleu", "bleue", "bleus", "bleues"), False),
    "big": (("grand", "grande", "grands", "grandes"), True),
    "small": (("petit", "petite", "petits", "petites"), True),
}
_VERBS = {  # English singular: (English plural, French singular, French plural)
    "sees": ("see", "voit", "voient"), "likes": ("like", "aime", "aiment"),
    "follows": ("follow", "suit", "suivent"), "finds": ("find", "trouve", "trouvent"),
    "eats": ("eat", "mange", "mangent"),
}
_DETERMINERS = [  # (English, plural?, definite?)
    ("the", False, True), ("a", False, False), ("the", True, True), ("some", True, False),
]
_FRENCH_DETERMINER = {  # (plural?, definite?, gender) -> French
    (False, True, "m"): "le", (False, True, "f"): "la", (False, False, "m"): "un",
    (False, False, "f"): "une", (True, True, "m"): "les", (True, True, "f"): "les",
    (True, False, "m"): "des", (True, False, "f"): "des",
}
# 4 determiners x (7 adjectives + none) x 10 nouns noun phrases, 5 verbs: distinct sentences.
TOY_TRANSLATION_SENTENCES = (4 * 8 * 10) * 5 * (4 * 8 * 10)


def _noun_phrase(rng: random.Random) -> tuple[list[str], list[str], bool]:
    det, plural, definite = rng.choice(_DETERMINERS)
    noun = rng.choice(list(_NOUNS))
    en_plural, fr_singular, fr_plural, gender = _NOUNS[noun]
    adjective = rng.choice([None, *_ADJECTIVES])
    english = [det] + ([adjective] if adjective else []) + [en_plural if plural else noun]
    fr_noun = fr_plural if plural else fr_singular
    french = [_FRENCH_DETERMINER[(plural, definite, gender)]]
    if adjective is None:
        return english, french + [fr_noun], plural
    forms, before = _ADJECTIVES[adjective]
    form = forms[2 * plural + (gender == "f")]
    if before and plural and not definite:
        french = ["de"]  # "des" becomes "de" before a preceding plural adjective
    return english, french + ([form, fr_noun] if before else [fr_noun, form]), plural


def toy_translation_pair(rng: random.Random) -> tuple[str, str]:
    """One random English sentence (subject, verb, object) and its French translation.

    The grammar is module 02's toy translation task: ten nouns, seven adjectives (five follow
    the noun in French, two precede it), five verbs, four determiners, with French gender and
    number agreement. Draws from ``rng`` exactly as the notebook's own ``sentence_pair`` does.

    Used in: modules/02-transformer-architecture (01-encoder-decoder, 02-decoder-only,
    04-multi-head-attention).
    """
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    subject_en, subject_fr, plural = _noun_phrase(rng)
    object_en, object_fr, _ = _noun_phrase(rng)
    verb = rng.choice(list(_VERBS))
    en_plural, fr_singular, fr_plural = _VERBS[verb]
    english = subject_en + [en_plural if plural else verb] + object_en
    french = subject_fr + [fr_plural if plural else fr_singular] + object_fr
    return " ".join(english), " ".join(french)


def toy_translation_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct (English, French) sentence pairs, in the order they are first drawn.

    Pairs are drawn from ``random.Random(seed)`` with :func:`toy_translation_pair` until ``n``
    distinct English sentences are found, so the first ``k`` pairs of a longer list are the
    same for any ``n >= k``. The language has 512,000 sentences; ``n`` may not exceed a tenth
    of that (drawing close to all of them would take very long).

    Used in: modules/02-transformer-architecture (01-encoder-decoder, 02-decoder-only,
    04-multi-head-attention).
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= TOY_TRANSLATION_SENTENCES // 10:
        raise ValueError(
            f"n must be an int from 1 to {TOY_TRANSLATION_SENTENCES // 10:,} "
            f"(a tenth of the {TOY_TRANSLATION_SENTENCES:,} sentences), got {n!r}"
        )
    rng = random.Random(seed)
    pairs: dict[str, str] = {}
    while len(pairs) < n:
        english, french = toy_translation_pair(rng)
        pairs[english] = french
    return list(pairs.items())
