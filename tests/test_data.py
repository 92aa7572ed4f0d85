"""`shared.data`: tokenizers against references, splits and packing against direct constructions,
samplers against nanoGPT's ``get_batch`` formula and against themselves after a resume."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from shared.data import (
    BatchSource,
    BlockDataset,
    BPETokenizer,
    CharTokenizer,
    RandomBlockSampler,
    RowBatchSampler,
    block_dataloader,
    load_text_dataset,
    load_tokenizer,
    pack_sequences,
    packing_efficiency,
    pad_sequences,
    shakespeare_char_data,
    train_bpe_tokenizer,
    train_val_split,
)
from shared import data
from shared.paths import data_file

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


# ---- CharTokenizer ---------------------------------------------------------------------------


def test_char_tokenizer_matches_nanogpt_mapping(tmp_path: Path) -> None:
    tok = CharTokenizer.fit(TEXT)
    chars = sorted(set(TEXT))  # nanoGPT's prepare.py: sorted distinct characters
    assert tok.vocab_size == len(chars)
    assert tok.encode(TEXT) == [chars.index(c) for c in TEXT]
    assert tok.decode(tok.encode(TEXT)) == TEXT
    assert tok.decode(torch.tensor(tok.encode("speak"))) == "speak"
    loaded = CharTokenizer.load(tok.save(tmp_path / "tok.json"))
    assert loaded.chars == tok.chars
    assert isinstance(load_tokenizer(tmp_path / "tok.json"), CharTokenizer)


def test_char_tokenizer_bad_input(tmp_path: Path) -> None:
    tok = CharTokenizer.fit(TEXT)
    with pytest.raises(ValueError, match=r"\['Z', 'é'\] are not in the vocabulary"):
        tok.encode("Zé speak")
    with pytest.raises(ValueError, match=r"expected ids in \[0, "):
        tok.decode([0, 999])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer.fit("")
    with pytest.raises(TypeError, match="expected a str"):
        tok.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        tok.decode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"expected integer token ids, got \[1.5\]"):
        tok.decode([0, 1.5])
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        CharTokenizer.load(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text(json.dumps({"type": "word"}))
    with pytest.raises(ValueError, match="not a character tokenizer"):
        CharTokenizer.load(tmp_path / "other.json")
    with pytest.raises(ValueError, match="neither"):
        load_tokenizer(tmp_path / "other.json")


# ---- byte-level BPE ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    text = data_file("tinyshakespeare.txt").read_text(encoding="utf-8")[:100_000]
    return train_bpe_tokenizer(text.split("\n\n"), vocab_size=400)


def test_bpe_round_trips_any_text_and_compresses(bpe: BPETokenizer) -> None:
    assert bpe.vocab_size == 400
    for text in [TEXT, "naïve café, 東京 🙂\tend", ""]:  # byte-level: nothing is unknown
        assert bpe.decode(bpe.encode(text)) == text
    # Merges learned from Shakespeare make its text shorter than its UTF-8 bytes.
    assert len(bpe.encode(TEXT)) < 0.7 * len(TEXT.encode("utf-8"))
    assert bpe.token_to_id("<|endoftext|>") == 0


def test_bpe_matches_the_library_and_reloads(bpe: BPETokenizer, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    path = bpe.save(tmp_path / "tokenizer.json")
    reference = Tokenizer.from_file(str(path))  # the library's own reading of the file
    assert bpe.encode(TEXT) == reference.encode(TEXT).ids
    loaded = load_tokenizer(path)
    assert isinstance(loaded, BPETokenizer) and loaded.encode(TEXT) == bpe.encode(TEXT)


def test_bpe_bad_input(bpe: BPETokenizer) -> None:
    with pytest.raises(ValueError, match="vocab_size must be an int >= 257"):
        train_bpe_tokenizer(["abc"], vocab_size=100)
    with pytest.raises(TypeError, match="single str"):
        train_bpe_tokenizer("abc", vocab_size=300)
    with pytest.raises(ValueError, match="min_frequency"):
        train_bpe_tokenizer(["abc"], vocab_size=300, min_frequency=0)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        bpe.token_to_id("<|no such token|>")
    with pytest.raises(ValueError, match=r"expected ids in \[0, 400\)"):
        bpe.decode([400])


# ---- splits and local datasets ---------------------------------------------------------------


def test_train_val_split_is_contiguous() -> None:
    ids = torch.arange(100)
    train, val = train_val_split(ids, 0.1)
    assert torch.equal(train, torch.arange(90)) and torch.equal(val, torch.arange(90, 100))
    train, val = train_val_split(list(range(10)), 0.25)
    assert train.tolist() == list(range(7)) and val.tolist() == [7, 8, 9]
    for bad in (0.0, 1.0, -0.1, "0.1"):
        with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
            train_val_split(ids, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="leaves one side empty"):
        train_val_split([1], 0.1)
    with pytest.raises(TypeError, match="integer token ids"):
        train_val_split(torch.rand(10), 0.1)


def test_shakespeare_char_data_is_nanogpts_split() -> None:
    data = shakespeare_char_data(block_size=256)
    text = data_file("tinyshakespeare.txt").read_text(encoding="utf-8")
    assert data.tokenizer.vocab_size == 65  # nanoGPT's shakespeare_char vocabulary
    n = len(text)
    assert len(data.train) == int(n * 0.9) and len(data.train) + len(data.val) == n
    assert data.tokenizer.decode(data.val[:30]) == text[int(n * 0.9) : int(n * 0.9) + 30]
    with pytest.raises(ValueError, match="block_size"):
        shakespeare_char_data(block_size=0)
    with pytest.raises(ValueError, match="not more than block_size"):
        shakespeare_char_data(block_size=200_000)


def test_load_text_dataset_reads_local_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("line one\nline two\n\nafter a blank\n", encoding="utf-8")
    second.write_text("other file\n", encoding="utf-8")
    lines = load_text_dataset([first, second], cache_dir=tmp_path / "cache")
    assert lines["text"] == ["line one", "line two", "", "after a blank", "other file"]
    docs = load_text_dataset(first, sample_by="document", cache_dir=tmp_path / "cache")
    assert docs["text"] == [first.read_text(encoding="utf-8")]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_text_dataset([tmp_path / "missing.txt"])
    with pytest.raises(ValueError, match="sample_by"):
        load_text_dataset(first, sample_by="word")
    with pytest.raises(ValueError, match="at least one"):
        load_text_dataset([])


# ---- packing ---------------------------------------------------------------------------------


def test_pack_sequences_concatenates_with_separators() -> None:
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    rows = pack_sequences(docs, block_size=4, eos_id=0)
    stream = [1, 2, 3, 0, 4, 5, 0, 6, 7, 8, 9, 0]  # built by hand
    assert rows.tolist() == [stream[0:4], stream[4:8], stream[8:12]]
    assert packing_efficiency(rows, pad_id=99) == 1.0
    rows = pack_sequences([torch.tensor([1, 2, 3, 4, 5])], block_size=4, eos_id=0)
    assert rows.tolist() == [[1, 2, 3, 4]]  # the tail (5, eos) does not fill a row: dropped


def test_padding_wastes_slots_that_packing_fills() -> None:
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11]]
    padded = pad_sequences(docs, block_size=4, eos_id=0, pad_id=-1)
    assert padded.tolist() == [[1, 2, 3, 0], [4, 5, 0, -1], [6, 7, 8, 9], [10, 11, 0, -1]]
    real = sum(len(d) + 1 for d in docs)
    assert packing_efficiency(padded, pad_id=-1) == pytest.approx(real / padded.numel())
    assert packing_efficiency(padded, pad_id=None) == 1.0
    with pytest.raises(ValueError, match="must differ"):
        pad_sequences(docs, 4, eos_id=0, pad_id=0)
    with pytest.raises(ValueError, match="block_size must be an int >= 2"):
        pack_sequences(docs, 1, eos_id=0)
    with pytest.raises(ValueError, match="fewer than one row"):
        pack_sequences([[1]], 8, eos_id=0)
    with pytest.raises(ValueError, match="at least one document"):
        pack_sequences([], 8, eos_id=0)
    with pytest.raises(ValueError, match="2-D"):
        packing_efficiency(torch.zeros(3), pad_id=0)


def test_block_dataset_masks_padding_targets() -> None:
    rows = torch.tensor([[1, 2, 3, 0], [4, 5, 0, -1]])
    dataset = BlockDataset(rows, pad_id=-1)
    x, y = dataset[1]
    assert x.tolist() == [4, 5, 0] and y.tolist() == [5, 0, -100]
    loader = block_dataloader(rows, batch_size=2, shuffle=False, pad_id=-1)
    xb, yb = next(iter(loader))
    assert xb.tolist() == [[1, 2, 3], [4, 5, 0]] and yb.tolist() == [[2, 3, 0], [5, 0, -100]]
    with pytest.raises(ValueError, match="larger than the 2 rows"):
        block_dataloader(rows, batch_size=3)
    with pytest.raises(ValueError, match="at least 2 columns"):
        BlockDataset(torch.zeros(3, 1, dtype=torch.long))


# ---- samplers ----------------------------------------------------------------------------------


def test_random_block_sampler_is_nanogpts_get_batch() -> None:
    ids = torch.arange(1000)
    sampler = RandomBlockSampler(ids, block_size=8, batch_size=4, seed=3)
    x, y = sampler.next_batch()
    # nanoGPT: ix = randint(len(data) - block_size); x = data[i:i+T]; y = data[i+1:i+1+T]
    ix = torch.randint(len(ids) - 8, (4,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, torch.stack([ids[i : i + 8] for i in ix]))
    assert torch.equal(y, torch.stack([ids[i + 1 : i + 9] for i in ix]))
    assert x.shape == (4, 8) and x.dtype == torch.long and x.is_contiguous()
    assert isinstance(sampler, BatchSource)


def test_random_block_sampler_resumes_exactly() -> None:
    ids = torch.randint(0, 50, (500,), generator=torch.Generator().manual_seed(0))
    straight = RandomBlockSampler(ids, 16, 3, seed=7)
    expected = [straight.next_batch() for _ in range(6)]
    first = RandomBlockSampler(ids, 16, 3, seed=7)
    for _ in range(3):
        first.next_batch()
    state = first.state_dict()
    torch.manual_seed(123)  # the global generator must not matter
    second = RandomBlockSampler(ids, 16, 3, seed=0)
    second.load_state_dict(state)
    for x_ref, y_ref in expected[3:]:
        x, y = second.next_batch()
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    assert second.batches_drawn == 6
    with pytest.raises(ValueError, match="RandomBlockSampler state"):
        second.load_state_dict({"kind": "row_batch"})


def test_random_block_sampler_bad_input() -> None:
    with pytest.raises(ValueError, match="needs more than block_size=10"):
        RandomBlockSampler(torch.arange(10), block_size=10, batch_size=1)
    with pytest.raises(ValueError, match="batch_size=8 is larger than the 5 distinct blocks"):
        RandomBlockSampler(torch.arange(10), block_size=5, batch_size=8)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        RandomBlockSampler(torch.arange(10), block_size=2, batch_size=0)
    with pytest.raises(ValueError, match="1-D"):
        RandomBlockSampler(torch.zeros(3, 3, dtype=torch.long), block_size=2, batch_size=1)


def test_row_batch_sampler_covers_each_epoch_and_resumes() -> None:
    rows = torch.arange(7 * 5).view(7, 5)
    sampler = RowBatchSampler(rows, batch_size=3, seed=1)
    batches = [sampler.next_batch() for _ in range(4)]
    first_epoch = torch.cat([x[:, 0] for x, _ in batches[:2]]) // 5
    assert len(set(first_epoch.tolist())) == 6  # two full batches of distinct rows; the 7th waits
    assert sampler.epoch == 1
    order = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(batches[0][0], rows[order[:3], :-1]) and torch.equal(
        batches[0][1], rows[order[:3], 1:]
    )
    resumed = RowBatchSampler(rows, batch_size=3, seed=99)
    resumed.load_state_dict(sampler.state_dict())
    reference = RowBatchSampler(rows, batch_size=3, seed=1)
    for _ in range(4):
        reference.next_batch()
    for _ in range(5):
        assert torch.equal(resumed.next_batch()[0], reference.next_batch()[0])
    with pytest.raises(ValueError, match="larger than the 7 rows"):
        RowBatchSampler(rows, batch_size=8)


def test_toy_translation_pairs_are_distinct_deterministic_and_prefix_stable() -> None:
    pairs = data.toy_translation_pairs(2000, seed=0)
    assert len({english for english, _ in pairs}) == 2000
    assert data.toy_translation_pairs(300, seed=0) == pairs[:300]
    assert data.toy_translation_pairs(300, seed=1) != pairs[:300]
    rng = random.Random(0)
    assert data.toy_translation_pair(rng) == pairs[0]


def test_toy_translation_follows_french_agreement_and_placement() -> None:
    # Hand-written translations of noun phrases the grammar must produce.
    expected = {
        "the black mice": "les souris noires",  # feminine plural, adjective after the noun
        "some small flowers": "de petites fleurs",  # "des" -> "de" before a plural adjective
        "the big horses": "les grands chevaux",  # adjective before, irregular plural
        "a white car": "une voiture blanche",
        "the dog": "le chien",
        "the cat sees": "le chat voit",  # the verb agrees with the subject's number
        "the cats see": "les chats voient",
    }
    pairs = data.toy_translation_pairs(20000, seed=0)
    found = {phrase: 0 for phrase in expected}
    for english, french in pairs:
        for phrase, translation in expected.items():
            if english.startswith(phrase + " "):
                found[phrase] += 1
                assert french.startswith(translation + " "), (english, french)
    assert min(found.values()) > 0, found


@pytest.mark.parametrize("n", [0, -5, True, 2.0, 51_201])
def test_toy_translation_pairs_rejects_bad_counts(n) -> None:
    with pytest.raises(ValueError, match="n must be an int from 1 to 51,200"):
        data.toy_translation_pairs(n)


def test_toy_translation_pair_needs_a_random_generator() -> None:
    with pytest.raises(TypeError, match="random.Random"):
        data.toy_translation_pair(0)


def test_pair_batch_sampler_draws_aligned_rows_and_resumes() -> None:
    src = torch.arange(50).reshape(25, 2)
    tgt = torch.arange(25) * 10
    sampler = data.PairBatchSampler(src, tgt, batch_size=8, seed=3)
    reference = torch.Generator().manual_seed(3)
    for _ in range(3):
        a, b = sampler.next_batch()
        rows = torch.randint(25, (8,), generator=reference)
        assert torch.equal(a, src[rows]) and torch.equal(b, tgt[rows])
        assert torch.equal(a[:, 0] * 5, b)  # the rows stay aligned
    state = sampler.state_dict()
    after = [sampler.next_batch() for _ in range(2)]
    resumed = data.PairBatchSampler(src, tgt, batch_size=8, seed=99)
    resumed.load_state_dict(state)
    for (a, b), (c, d) in zip(after, [resumed.next_batch() for _ in range(2)]):
        assert torch.equal(a, c) and torch.equal(b, d)


def test_pair_batch_sampler_rejects_bad_input() -> None:
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="same number of rows, got 4 and 5"):
        data.PairBatchSampler(x, torch.zeros(5), 2)
    with pytest.raises(TypeError, match="second must be a tensor"):
        data.PairBatchSampler(x, [0, 1, 2, 3], 2)
    with pytest.raises(ValueError, match="batch_size"):
        data.PairBatchSampler(x, x, 0)
    with pytest.raises(ValueError, match="PairBatchSampler state"):
        data.PairBatchSampler(x, x, 2).load_state_dict({"kind": "row_batch"})
