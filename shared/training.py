"""One training loop for every notebook that trains a model.

The loop is nanoGPT's, written out as a small class:

* AdamW, with weight decay on matrices (embeddings, linear weights) only, never on biases or
  norm gains;
* a learning rate that warms up linearly, then follows a cosine down to a floor (:func:`lr_at`);
* gradient accumulation over ``grad_accum_steps`` micro-batches, and gradient clipping (the
  history records the norm *before* clipping);
* optional bf16 autocast (CPU or CUDA), or fp16 autocast with a ``GradScaler`` (CUDA);
* evaluation every ``eval_interval`` steps: the mean loss over a fixed set of validation batches,
  the same batches every time, so that successive values are comparable;
* a checkpoint that resumes *exactly*: weights, optimizer moments, scaler, the step, the random
  states of Python, NumPy and torch, the data sampler's position and the history. A run that is
  stopped and resumed ends with bitwise the same weights as one that never stopped.

Tensors go to safetensors files and everything else to JSON; nothing is pickled.

    config = TrainConfig(max_steps=2000, block_size=64, batch_size=12)
    history = train(model, train_ids, val_ids, config)
    history.plot()

Used in: modules/05-pretraining (02-next-token-prediction, 04-training-loop),
modules/08-training-and-optimization, modules/20-advanced-topics/01-mixture-of-experts,
scripts/train_course_models.py, benchmarks/bench_training.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from shared.data import BatchSource, RandomBlockSampler, RowBatchSampler
from shared.env import seed_everything

__all__ = [
    "History",
    "TrainConfig",
    "Trainer",
    "default_loss",
    "evaluate_loss",
    "lr_at",
    "make_optimizer",
    "train",
]

Batch = Any  # what a batch source yields; the default loss expects an (inputs, targets) pair
LossFn = Callable[[nn.Module, Batch], torch.Tensor]

MODEL_FILE = "model.safetensors"
STATE_TENSORS_FILE = "trainer_state.safetensors"
STATE_FILE = "trainer_state.json"
CHECKPOINT_FORMAT = 1


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Every setting of a training run. Invalid values raise ``ValueError`` at construction.

    The defaults are nanoGPT's for character-level Shakespeare on a CPU.

    Used in: every notebook that trains with `shared.training`.
    """

    max_steps: int = 2000  # optimizer updates in the whole run
    batch_size: int = 12  # sequences per micro-batch
    block_size: int | None = None  # tokens per sequence; needed when the data is one token stream
    lr: float = 1e-3  # peak learning rate, reached at the end of warmup
    min_lr: float = 1e-4  # the floor of the cosine decay
    warmup_steps: int = 100
    decay_steps: int | None = None  # the step where the cosine reaches min_lr; None: max_steps
    weight_decay: float = 0.1  # applied to >= 2-D weights only
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    grad_accum_steps: int = 1  # micro-batches per optimizer update
    # Evaluate every this many steps, and at step 0 and at the end (0: at step 0 and the end only).
    eval_interval: int = 250
    eval_batches: int = 20  # validation batches averaged per evaluation
    # Save every this many steps when there is a checkpoint folder (0: only when fit returns).
    checkpoint_interval: int = 0
    log_interval: int = 10  # steps between progress-bar updates (and between loss read-backs)
    bf16: bool = False  # autocast matrix multiplies to bfloat16 (CPU or CUDA)
    fp16: bool = False  # autocast to float16 with loss scaling (CUDA only)
    seed: int = 1337  # seeds Python, NumPy, torch and the batch sampler
    progress: bool = True  # show a tqdm bar (TQDM_DISABLE=1 also hides it)

    # Settings that may change between a checkpoint and its resumption: they do not change the
    # numbers a run computes.
    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = (
        "checkpoint_interval",
        "log_interval",
        "progress",
    )

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # JSON round trips turn tuples into lists
        for name in ("max_steps", "batch_size", "grad_accum_steps", "log_interval", "eval_batches"):
            _require_int(getattr(self, name), name, minimum=1)
        for name in ("warmup_steps", "eval_interval", "checkpoint_interval", "seed"):
            _require_int(getattr(self, name), name, minimum=0)
        if self.block_size is not None:
            _require_int(self.block_size, "block_size", minimum=1)
        if self.warmup_steps > self.max_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be <= max_steps ({self.max_steps})"
            )
        if self.decay_steps is not None:
            _require_int(self.decay_steps, "decay_steps", minimum=1)
            if self.decay_steps < self.warmup_steps:
                raise ValueError(
                    f"decay_steps ({self.decay_steps}) must be >= "
                    f"warmup_steps ({self.warmup_steps})"
                )
        if not (_is_number(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")
        if not (_is_number(self.min_lr) and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"min_lr must be a number in [0, lr={self.lr}], got {self.min_lr!r}")
        if not (_is_number(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if len(self.betas) != 2 or not all(_is_number(b) and 0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not (_is_number(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a number > 0, got {self.eps!r}")
        if not (_is_number(self.grad_clip) and self.grad_clip >= 0):
            raise ValueError(
                f"grad_clip must be a number >= 0 (0 turns clipping off), got {self.grad_clip!r}"
            )
        for name in ("bf16", "fp16", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.bf16 and self.fp16:
            raise ValueError("choose at most one of bf16 and fp16")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


# --------------------------------------------------------------------------------------------
# Learning-rate schedule and optimizer
# --------------------------------------------------------------------------------------------


def lr_at(step: int, *, lr: float, min_lr: float, warmup_steps: int, decay_steps: int) -> float:
    """The learning rate of optimizer update number ``step`` (counting from 0).

    * warmup, ``step < warmup_steps``: ``lr * (step + 1) / warmup_steps``, linearly up to ``lr``;
    * decay, ``warmup_steps <= step <= decay_steps``: with ``p = (step - warmup_steps) /
      (decay_steps - warmup_steps)``, ``min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2``;
    * after ``decay_steps``: ``min_lr``.

    Used in: modules/05-pretraining/04-training-loop, :class:`Trainer`.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if warmup_steps < 0 or decay_steps < warmup_steps:
        raise ValueError(
            f"expected 0 <= warmup_steps <= decay_steps, got {warmup_steps} and {decay_steps}"
        )
    if not 0 <= min_lr <= lr:
        raise ValueError(f"expected 0 <= min_lr <= lr, got min_lr={min_lr}, lr={lr}")
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step > decay_steps or decay_steps == warmup_steps:
        return min_lr
    progress = (step - warmup_steps) / (decay_steps - warmup_steps)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    betas: Sequence[float] = (0.9, 0.99),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW with two parameter groups: weight decay on >= 2-D tensors, none on the rest.

    Matrices (linear weights, embeddings) are decayed; biases and normalisation gains are not,
    as in nanoGPT and GPT-2. Tied weights appear once. The fused implementation updates every
    tensor in one kernel: on a CPU it is several times faster than the default for small models.

    Used in: modules/05-pretraining/04-training-loop, :class:`Trainer`.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no parameters that require gradients")
    groups = [
        {"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=True)


# --------------------------------------------------------------------------------------------
# Losses and evaluation
# --------------------------------------------------------------------------------------------


_PASS_LOSS_FN = "pass loss_fn=lambda model, batch: ... to compute the loss yourself"


def default_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """``model(x, targets=y).loss`` for a batch ``(x, y)``: the loss of `shared.models.GPT`.

    Pass your own ``loss_fn(model, batch) -> scalar tensor`` to the trainer for other models.

    Used in: :class:`Trainer`, :func:`evaluate_loss`.
    """
    inputs, targets = batch
    try:
        output = model(inputs, targets=targets)
    except TypeError as exc:
        if "targets" not in str(exc):
            raise
        raise TypeError(
            f"{type(model).__name__}.forward does not take targets=...; {_PASS_LOSS_FN}"
        ) from exc
    loss = getattr(output, "loss", None)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(
            f"the model returned {type(output).__name__} without a .loss tensor; {_PASS_LOSS_FN}"
        )
    return loss


def _autocast(device: torch.device, bf16: bool, fp16: bool) -> contextlib.AbstractContextManager:
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if fp16:
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(item, device) for item in batch)
    return batch


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        raise ValueError("the model has no parameters") from None


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn | None = None,
    *,
    bf16: bool = False,
) -> float:
    """The mean loss of ``model`` over ``batches``, in eval mode and without gradients.

    The model's train/eval mode is restored afterwards.

    Used in: modules/05-pretraining (02-next-token-prediction, 04-training-loop),
    :class:`Trainer`, `shared.checkpoints` tests, benchmarks/bench_training.py.
    """
    if len(batches) == 0:
        raise ValueError("expected at least one batch to evaluate on")
    loss_fn = loss_fn or default_loss
    device = _model_device(model)
    was_training = model.training
    model.eval()
    try:
        with _autocast(device, bf16, fp16=False):
            losses = [loss_fn(model, _to_device(batch, device)).float() for batch in batches]
    finally:
        model.train(was_training)
    return torch.stack(losses).mean().item()


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------


@dataclass
class History:
    """What a run recorded: per step, and per evaluation.

    Per optimizer step: ``steps`` (1, 2, ...), ``train_loss`` (mean over the step's
    micro-batches), ``lr``, ``grad_norm`` (before clipping), ``tokens`` (input tokens seen so
    far) and ``time_s`` (wall time so far). Per evaluation: ``val_steps`` and ``val_loss``.

    Used in: every notebook that trains with `shared.training`.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)

    @property
    def final_train_loss(self) -> float:
        """Mean train loss over the last 10 steps (one step alone is noisy)."""
        if not self.train_loss:
            raise ValueError("no training step has been recorded")
        last = self.train_loss[-10:]
        return sum(last) / len(last)

    @property
    def final_val_loss(self) -> float:
        if not self.val_loss:
            raise ValueError("no evaluation has been recorded (was validation data given?)")
        return self.val_loss[-1]

    def to_dict(self) -> dict[str, list]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, list]) -> History:
        known = {f.name for f in dataclasses.fields(cls)}
        if set(values) != known:
            raise ValueError(f"expected the History fields {sorted(known)}, got {sorted(values)}")
        return cls(**{name: list(items) for name, items in values.items()})

    def plot(
        self, ax: Any = None, *, title: str = "Training and validation loss", logy: bool = False
    ) -> Any:
        """Draw train and validation loss against steps (see `shared.plotting.plot_history`)."""
        from shared.plotting import plot_history

        return plot_history(self, ax=ax, title=title, logy=logy)


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------


def _batch_source(data: Any, config: TrainConfig, seed: int, role: str) -> BatchSource:
    """A 1-D id stream -> random blocks; 2-D rows -> shuffled rows; a BatchSource as it is."""
    if isinstance(data, torch.Tensor):
        if data.dim() == 1:
            if config.block_size is None:
                raise ValueError(f"{role} is a 1-D token stream: set TrainConfig.block_size")
            return RandomBlockSampler(data, config.block_size, config.batch_size, seed=seed)
        if data.dim() == 2:
            return RowBatchSampler(data, config.batch_size, seed=seed)
        raise ValueError(
            f"{role} must be a 1-D token stream or 2-D rows, got shape {tuple(data.shape)}"
        )
    if isinstance(data, BatchSource):
        return data
    raise TypeError(
        f"{role} must be a token tensor or a BatchSource (next_batch/state_dict/load_state_dict), "
        f"got {type(data).__name__}"
    )


class Trainer:
    """Trains ``model`` on ``train_data``, evaluates on ``val_data``, saves and resumes.

    ``train_data`` / ``val_data``: a 1-D tensor of token ids (random windows of
    ``config.block_size``), a 2-D tensor of rows (see `shared.data.pack_sequences`), or any
    :class:`shared.data.BatchSource`. Validation uses ``config.eval_batches`` batches drawn once,
    with seed ``config.seed + 1``.

    Constructing a trainer seeds Python, NumPy and torch with ``config.seed``.
    ``fit()`` trains to ``config.max_steps``; ``fit(until=k)`` stops after step ``k``, as if
    interrupted. With a ``checkpoint_dir``, the trainer saves every ``checkpoint_interval``
    steps and whenever ``fit`` returns; ``load_checkpoint()`` continues from the saved step.

    Used in: modules/05-pretraining (02-next-token-prediction, 04-training-loop),
    modules/08-training-and-optimization, scripts/train_course_models.py.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Any,
        val_data: Any = None,
        config: TrainConfig | None = None,
        *,
        loss_fn: LossFn | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.model, self.config = model, config
        self.loss_fn = loss_fn or default_loss
        self.device = _model_device(model)
        if config.fp16 and self.device.type != "cuda":
            raise ValueError(
                f"fp16 needs a CUDA model (loss scaling); the model is on {self.device}. Use bf16."
            )
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)

        seed_everything(config.seed)
        self.train_source = _batch_source(train_data, config, config.seed, "train_data")
        self.val_batches: list[Batch] = []
        if val_data is not None:
            val_source = _batch_source(val_data, config, config.seed + 1, "val_data")
            self.val_batches = [
                _to_device(val_source.next_batch(), self.device) for _ in range(config.eval_batches)
            ]

        self.optimizer = make_optimizer(
            model, config.lr, config.weight_decay, config.betas, config.eps
        )
        self._params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.fp16)
        self.step = 0  # optimizer updates done
        self.tokens_seen = 0
        self.elapsed_s = 0.0  # wall time spent in fit(), over all sessions of this run
        self.history = History()

    # -- one optimizer update ---------------------------------------------------------------

    def learning_rate(self, step: int) -> float:
        """The scheduled learning rate of update ``step`` (see :func:`lr_at`)."""
        c = self.config
        decay_steps = c.max_steps if c.decay_steps is None else c.decay_steps
        return lr_at(
            step, lr=c.lr, min_lr=c.min_lr, warmup_steps=c.warmup_steps, decay_steps=decay_steps
        )

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer update over ``grad_accum_steps`` micro-batches.

        Returns the mean micro-batch loss and the gradient norm before clipping, as tensors
        (reading them back with ``.item()`` would wait for the device; :meth:`fit` batches that).
        """
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        loss_sum = torch.zeros((), device=self.device)
        for _ in range(c.grad_accum_steps):
            batch = _to_device(self.train_source.next_batch(), self.device)
            with _autocast(self.device, c.bf16, c.fp16):
                loss = self.loss_fn(self.model, batch)
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                raise ValueError(
                    f"loss_fn must return a scalar tensor, got {getattr(loss, 'shape', loss)!r}"
                )
            # Dividing by the number of micro-batches makes the summed gradients their mean.
            self.scaler.scale(loss / c.grad_accum_steps).backward()
            loss_sum += loss.detach().float()
            self.tokens_seen += _count_tokens(batch)
        self.scaler.unscale_(self.optimizer)  # no-op unless fp16: clip the true gradients
        grads = [p.grad for p in self._params if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads)
        if c.grad_clip > 0:
            torch.nn.utils.clip_grads_with_norm_(self._params, c.grad_clip, grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return loss_sum / c.grad_accum_steps, grad_norm

    # -- the loop ---------------------------------------------------------------------------

    def evaluate(self) -> float:
        """Mean loss over the fixed validation batches."""
        if not self.val_batches:
            raise ValueError("no validation data was given to the trainer")
        return evaluate_loss(self.model, self.val_batches, self.loss_fn, bf16=self.config.bf16)

    def fit(self, until: int | None = None) -> History:
        """Train from the current step to ``until`` (default: max_steps); return the history."""
        c = self.config
        until = c.max_steps if until is None else until
        if (
            isinstance(until, bool)
            or not isinstance(until, int)
            or not self.step <= until <= c.max_steps
        ):
            raise ValueError(
                f"until must be an int in [{self.step}, {c.max_steps}] "
                f"(current step to max_steps), got {until!r}"
            )
        started = time.perf_counter() - self.elapsed_s
        if self.val_batches and self.step == 0 and not self.history.val_steps:
            self._record_eval()  # the loss before training, the first point of the curve
        self.model.train()
        bar = tqdm(
            total=c.max_steps,
            initial=self.step,
            desc="training",
            unit="step",
            **({} if c.progress else {"disable": True}),
        )
        pending: list[tuple] = []  # per-step records whose tensors are not yet read back
        try:
            while self.step < until:
                lr = self.learning_rate(self.step)
                loss, grad_norm = self.train_step()
                pending.append(
                    (
                        self.step,
                        lr,
                        loss,
                        grad_norm,
                        self.tokens_seen,
                        time.perf_counter() - started,
                    )
                )
                eval_due = bool(self.val_batches) and (
                    self.step == c.max_steps
                    or (c.eval_interval > 0 and self.step % c.eval_interval == 0)
                )
                checkpoint_due = (
                    self.checkpoint_dir is not None
                    and c.checkpoint_interval > 0
                    and self.step % c.checkpoint_interval == 0
                )
                if (
                    eval_due
                    or checkpoint_due
                    or self.step % c.log_interval == 0
                    or self.step == until
                ):
                    bar.update(len(pending))
                    self._record_steps(pending)
                    pending = []
                    if eval_due:
                        self._record_eval()
                    bar.set_postfix(self._postfix(), refresh=False)
                if checkpoint_due:
                    self.elapsed_s = time.perf_counter() - started
                    self.save_checkpoint()
        finally:
            bar.close()
            self.elapsed_s = time.perf_counter() - started
        if self.checkpoint_dir is not None:
            self.save_checkpoint()
        return self.history

    def _record_steps(self, pending: list[tuple]) -> None:
        if not pending:
            return
        # One read-back for the whole window instead of a device sync per step.
        values = torch.stack(
            [torch.stack([loss, norm.float()]) for _, _, loss, norm, _, _ in pending]
        ).tolist()
        for (step, lr, _, _, tokens, elapsed), (loss, norm) in zip(pending, values, strict=True):
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss is {loss} at step {step}: lower lr, raise warmup_steps or "
                    "set grad_clip"
                )
            h = self.history
            h.steps.append(step)
            h.train_loss.append(loss)
            h.lr.append(lr)
            h.grad_norm.append(norm)
            h.tokens.append(tokens)
            h.time_s.append(round(elapsed, 4))

    def _record_eval(self) -> None:
        self.history.val_steps.append(self.step)
        self.history.val_loss.append(self.evaluate())

    def _postfix(self) -> dict[str, str]:
        h = self.history
        postfix = {"loss": f"{h.train_loss[-1]:.4f}"} if h.train_loss else {}
        if h.val_loss:
            postfix["val"] = f"{h.val_loss[-1]:.4f}"
        if h.lr:
            postfix["lr"] = f"{h.lr[-1]:.2e}"
        return postfix

    # -- checkpoints ------------------------------------------------------------------------

    def _checkpoint_path(self, path: str | Path | None) -> Path:
        path = self.checkpoint_dir if path is None else Path(path)
        if path is None:
            raise ValueError(
                "no checkpoint folder: pass one here or as Trainer(checkpoint_dir=...)"
            )
        return path

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Write everything needed to resume exactly into the folder ``path`` and return it.

        ``model.safetensors`` (weights), ``trainer_state.safetensors`` (optimizer moments, random
        generator states) and ``trainer_state.json`` (the rest). The folder is replaced as a whole,
        so an interrupted save leaves the previous checkpoint intact.
        """
        from safetensors.torch import save_file, save_model

        path = self._checkpoint_path(path)
        tensors: dict[str, torch.Tensor] = {}
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self.elapsed_s,
            "config": self.config.to_dict(),
            "history": self.history.to_dict(),
            "optimizer": _encode(self.optimizer.state_dict(), tensors, "optimizer"),
            "scaler": _encode(self.scaler.state_dict(), tensors, "scaler"),
            "train_data": _encode(self.train_source.state_dict(), tensors, "train_data"),
            "rng": _encode(_rng_state(), tensors, "rng"),
        }

        def write(folder: Path) -> None:
            save_model(self.model, str(folder / MODEL_FILE))
            save_file(tensors, str(folder / STATE_TENSORS_FILE))
            (folder / STATE_FILE).write_text(json.dumps(state, indent=1))

        _replace_folder(path, write)
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` into this trainer and its model.

        The configuration must match the saved one (except ``RESUMABLE_CHANGES``); the model
        must have the same parameters.
        """
        from safetensors.torch import load_file, load_model

        path = self._checkpoint_path(path)
        if not (path / STATE_FILE).is_file():
            raise FileNotFoundError(f"no checkpoint in {path} (expected {STATE_FILE} there)")
        state = json.loads((path / STATE_FILE).read_text())
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{path} holds checkpoint format {state.get('format')}, "
                f"expected {CHECKPOINT_FORMAT}"
            )
        saved = TrainConfig.from_dict(state["config"])
        changed = [
            f.name
            for f in dataclasses.fields(TrainConfig)
            if f.name not in TrainConfig.RESUMABLE_CHANGES
            and getattr(saved, f.name) != getattr(self.config, f.name)
        ]
        if changed:
            diffs = ", ".join(
                f"{n}: saved {getattr(saved, n)!r}, now {getattr(self.config, n)!r}"
                for n in changed
            )
            raise ValueError(f"the checkpoint in {path} was made with a different config ({diffs})")
        tensors = load_file(str(path / STATE_TENSORS_FILE))
        load_model(self.model, str(path / MODEL_FILE), device=str(self.device))
        self.optimizer.load_state_dict(_decode(state["optimizer"], tensors))
        self.scaler.load_state_dict(_decode(state["scaler"], tensors))
        self.train_source.load_state_dict(_decode(state["train_data"], tensors))
        _set_rng_state(_decode(state["rng"], tensors))
        self.step, self.tokens_seen = state["step"], state["tokens_seen"]
        self.elapsed_s = state["elapsed_s"]
        self.history = History.from_dict(state["history"])


def _count_tokens(batch: Batch) -> int:
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0].numel()
    return batch.numel() if isinstance(batch, torch.Tensor) else 0


def train(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    config: TrainConfig | None = None,
    *,
    loss_fn: LossFn | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> History:
    """Train ``model`` with :class:`Trainer` and return its :class:`History`.

    With ``resume=True`` the run continues from the checkpoint in ``checkpoint_dir``, which must
    exist.

    Used in: modules/05-pretraining (02-next-token-prediction, 04-training-loop) and every
    notebook that trains a model in one call.
    """
    trainer = Trainer(
        model, train_data, val_data, config, loss_fn=loss_fn, checkpoint_dir=checkpoint_dir
    )
    if resume:
        if checkpoint_dir is None:
            raise ValueError("resume=True needs the checkpoint_dir to resume from")
        trainer.load_checkpoint()
    return trainer.fit()


# --------------------------------------------------------------------------------------------
# Checkpoint plumbing: random states, JSON + safetensors encoding, atomic folder replacement
# --------------------------------------------------------------------------------------------


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _encode(value: Any, tensors: dict[str, torch.Tensor], key: str) -> Any:
    """A JSON-ready copy of ``value``; its tensors move into ``tensors`` under path-like keys.

    Dicts with non-string keys (optimizer states are keyed by parameter index) and tuples are
    tagged so that :func:`_decode` restores them exactly.
    """
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v, tensors, f"{key}.{k}") for k, v in value.items()}
        return {"__items__": [[k, _encode(v, tensors, f"{key}.{k}")] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save {type(value).__name__} at {key} in a checkpoint")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`_encode`."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__items__" in value:
            return {k: _decode(v, tensors) for k, v in value["__items__"]}
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def _replace_folder(path: Path, write: Callable[[Path], None]) -> None:
    """Write a new folder next to ``path`` with ``write``, then swap it in for ``path``."""
    if path.exists() and any(path.iterdir()) and not (path / STATE_FILE).is_file():
        raise ValueError(f"{path} exists and is not a checkpoint folder; refusing to overwrite it")
    staging, previous = (
        path.with_name(path.name + ".saving"),
        path.with_name(path.name + ".previous"),
    )
    for leftover in (staging, previous):
        if leftover.exists():
            shutil.rmtree(leftover)
    staging.mkdir(parents=True)
    write(staging)
    if path.exists():
        path.rename(previous)
    staging.rename(path)
    if previous.exists():
        shutil.rmtree(previous)
