"""`shared.checkpoints`: the committed course model loads, predicts held-out Shakespeare well,
writes Shakespeare-shaped text and matches its training record; the script that made it runs
and is reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import shared.checkpoints as checkpoints
from shared.checkpoints import course_model, course_model_info, course_tokenizer
from shared.data import CharTokenizer, shakespeare_char_data

# The stored model scores 1.586 on the whole validation split (training.json) and 1.440 on its
# first 16 blocks of 256 characters. The margin absorbs library and CPU differences and still fails
# an untrained model (4.17) or one as weak as nanoGPT's CPU baby config (1.88).
VAL_SLICE_BLOCKS, VAL_SLICE_MAX_LOSS = 16, 1.55


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return course_model("shakespeare-char")


def test_course_model_predicts_held_out_text(model) -> None:
    assert not model.training
    data = shakespeare_char_data(block_size=model.config.block_size)
    block = model.config.block_size
    n = VAL_SLICE_BLOCKS * block
    x = data.val[:n].view(VAL_SLICE_BLOCKS, block)
    y = data.val[1 : n + 1].view(VAL_SLICE_BLOCKS, block)
    with torch.no_grad():
        loss = model(x, targets=y).loss.item()
    assert loss < VAL_SLICE_MAX_LOSS, f"validation loss {loss:.3f} on the fixed slice"


def test_course_model_writes_shakespeare_shaped_text(model) -> None:
    from shared.generation import generate

    tokenizer = course_tokenizer("shakespeare-char")
    assert (
        isinstance(tokenizer, CharTokenizer)
        and tokenizer.vocab_size == model.config.vocab_size == 65
    )
    prompt = torch.tensor([tokenizer.encode("KING RICHARD III:\n")])
    text = tokenizer.decode(generate(model, prompt, 300)[0])
    words = text.split()
    assert (
        sum(
            w.strip(",.;:!?'").lower() in {"the", "and", "i", "to", "my", "of", "you", "a"}
            for w in words
        )
        >= 5
    )
    assert "\n" in text[20:]  # it breaks lines, as verse and speeches do
    assert sum(len(w) for w in words) / len(words) < 8  # words, not a run of letters


def test_course_model_info_matches_the_files(model) -> None:
    info = course_model_info("shakespeare-char")
    assert info["model_config"] == model.config.to_dict()
    assert info["parameters"] == model.num_parameters()
    assert info["steps"] == info["train_config"]["max_steps"]
    assert info["val_loss_full_split"] < 1.65 and info["final_val_loss"] < 1.7
    assert info["command"].startswith("python -m scripts.train_course_models")
    folder = checkpoints.course_model_dir("shakespeare-char")
    assert (folder / "model.safetensors").stat().st_size <= 20 * 1024 * 1024
    assert info["storage_dtype"] in ("fp32", "bf16")
    assert str(info["val_loss_full_split"]) in (folder / "README.md").read_text(encoding="utf-8")


def test_unknown_and_missing_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ValueError, match=r"unknown course model 'gpt-5'; available: \['shakespeare-char'\]"
    ):
        course_model("gpt-5")
    monkeypatch.setattr(checkpoints, "CHECKPOINTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="run `make models`"):
        course_model("shakespeare-char")
    with pytest.raises(FileNotFoundError, match="run `make models`"):
        course_model_info("shakespeare-char")


def test_training_script_runs_and_reproduces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole script (train, store, evaluate, sample, write the record) on a pocket-sized
    recipe, twice: the weights must come out byte for byte the same."""
    import scripts.train_course_models as script

    tiny = {
        "model": dict(script.RECIPE["model"], block_size=32, n_layer=1, n_head=2, d_model=32),
        "train": dict(script.RECIPE["train"], batch_size=4, block_size=32, eval_batches=2),
        "storage_dtype": "bf16",
    }
    monkeypatch.setattr(script, "RECIPE", tiny)
    monkeypatch.setattr(script, "SAMPLE_TOKENS", 20)
    for run in ("a", "b"):
        assert (
            script.main(["--max-steps", "3", "--threads", "1", "--out", str(tmp_path / run)]) == 0
        )
    a, b = (tmp_path / run for run in ("a", "b"))
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    info = json.loads((a / "training.json").read_text(encoding="utf-8"))
    assert info["steps"] == 3 and info["command"].endswith(
        "--max-steps 3 --threads 1 --out " + str(a)
    )
    assert info["storage_dtype"] == "bf16" and info["model_config"]["n_layer"] == 1
    assert info["sample"]["text"].startswith(script.SAMPLE_PROMPT)
    assert len(info["sample"]["text"]) == len(script.SAMPLE_PROMPT) + 20
    assert CharTokenizer.load(a / "tokenizer.json").vocab_size == 65
    readme = (a / "README.md").read_text(encoding="utf-8")
    assert "## Regenerate" in readme and str(info["val_loss_full_split"]) in readme
    (a / "README.md").unlink()
    assert script.main(["--readme-only", "--out", str(a)]) == 0  # from training.json alone
    assert (a / "README.md").read_text(encoding="utf-8") == readme
