"""The course's own trained models, ready to load: ``course_model("shakespeare-char")``.

Several notebooks need a model that already writes something Shakespeare-like (generation,
decoding strategies, KV caches, probes) but have no time budget to train one. The script
scripts/train_course_models.py trains these models once with `shared.training` and writes each
to ``data/checkpoints/<name>/``:

* ``config.json`` + ``model.safetensors``: the `shared.models.GPT` (Hugging Face layout);
* ``tokenizer.json``: its tokenizer (`shared.data.CharTokenizer` format);
* ``training.json``: how it was made (command, seed, configs, losses, time, library versions).

The folder's README.md records provenance and the measured losses. ``make models`` regenerates
the files.

Used in: modules/01-introduction (01-overview, 04-limitations), modules/05-pretraining,
modules/11-inference-optimization (kv-cache, decoding-strategies, quantization,
speculative-decoding), modules/06-evaluating-llms/loss-dynamics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.paths import DATA_DIR

__all__ = [
    "CHECKPOINTS_DIR",
    "COURSE_MODELS",
    "course_model",
    "course_model_dir",
    "course_model_info",
    "course_tokenizer",
]

CHECKPOINTS_DIR: Path = DATA_DIR / "checkpoints"

# name -> what it is; each lives in CHECKPOINTS_DIR / name.
COURSE_MODELS: dict[str, str] = {
    "shakespeare-char": "character-level GPT trained on tiny Shakespeare "
    "(nanoGPT's shakespeare_char task)",
}


def course_model_dir(name: str = "shakespeare-char") -> Path:
    """The folder of a course model; raises if the name is unknown or the folder is missing.

    Used in: :func:`course_model`, :func:`course_tokenizer`, :func:`course_model_info`.
    """
    if name not in COURSE_MODELS:
        raise ValueError(f"unknown course model {name!r}; available: {sorted(COURSE_MODELS)}")
    folder = CHECKPOINTS_DIR / name
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"the course model {name!r} is missing from {folder}; run `make models` to train it"
        )
    return folder


def course_model(name: str = "shakespeare-char", device: str = "cpu") -> Any:
    """Load a course model as a `shared.models.GPT` in eval mode on ``device``.

    Used in: modules/01-introduction/01-overview, modules/11-inference-optimization, and the
    notebooks that sample from or probe a trained model.
    """
    from shared.models import GPT

    return GPT.from_pretrained(course_model_dir(name), device=device).eval()


def course_tokenizer(name: str = "shakespeare-char") -> Any:
    """Load the tokenizer a course model was trained with (`shared.data.CharTokenizer` here).

    Used in: the same notebooks as :func:`course_model`.
    """
    from shared.data import load_tokenizer

    return load_tokenizer(course_model_dir(name) / "tokenizer.json")


def course_model_info(name: str = "shakespeare-char") -> dict[str, Any]:
    """The ``training.json`` of a course model: command, seed, configs, losses, wall time, versions.

    Used in: modules/01-introduction/01-overview, modules/05-pretraining/05-compute-costs.
    """
    path = course_model_dir(name) / "training.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; run `make models` to regenerate the course models"
        )
    return json.loads(path.read_text(encoding="utf-8"))
