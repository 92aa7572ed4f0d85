"""`shared.training`: the schedule against its closed form and torch's schedulers, the loop against
a plain nanoGPT-style loop, accumulation against one large batch, and exact resumption."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from shared.data import RandomBlockSampler
from shared.training import (
    History,
    TrainConfig,
    Trainer,
    default_loss,
    evaluate_loss,
    lr_at,
    make_optimizer,
    train,
)

VOCAB, BLOCK = 24, 8


pytestmark = pytest.mark.usefixtures("one_thread")


class TinyLM(nn.Module):
    """A next-token model small enough to train in milliseconds: embeddings, an MLP, a head.

    It has dropout (so resuming must restore torch's random state), 2-D and 1-D parameters
    (so weight decay has two groups) and returns an object with ``.loss`` like `shared.models.GPT`.
    """

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, 16)
        self.pos = nn.Embedding(BLOCK, 16)
        self.mlp = nn.Sequential(
            nn.Linear(16, 32), nn.GELU(), nn.Dropout(dropout), nn.Linear(32, 16)
        )
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, VOCAB)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> SimpleNamespace:
        h = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        logits = self.head(self.norm(h + self.mlp(h)))
        loss = None
        if targets is not None:
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return SimpleNamespace(logits=logits, loss=loss)


def corpus(n: int = 3000, seed: int = 0) -> torch.Tensor:
    """A learnable stream: a repeating pattern with some noise."""
    g = torch.Generator().manual_seed(seed)
    ids = (torch.arange(n) * 7 % VOCAB).long()
    noise = torch.rand(n, generator=g) < 0.1
    ids[noise] = torch.randint(0, VOCAB, (int(noise.sum()),), generator=g)
    return ids


def model(seed: int = 0, dropout: float = 0.1) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(dropout)


def config(**overrides) -> TrainConfig:
    values = dict(
        max_steps=20,
        batch_size=4,
        block_size=BLOCK,
        lr=1e-2,
        min_lr=1e-3,
        warmup_steps=4,
        eval_interval=5,
        eval_batches=3,
        progress=False,
    )
    values.update(overrides)
    return TrainConfig(**values)


# ---- learning-rate schedule ----------------------------------------------------------------


def test_lr_at_matches_closed_form() -> None:
    kw = dict(lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=110)
    assert lr_at(0, **kw) == pytest.approx(1e-4)  # warmup starts at lr / warmup_steps, not 0
    assert lr_at(9, **kw) == pytest.approx(1e-3)  # and reaches lr on the last warmup step
    assert lr_at(10, **kw) == pytest.approx(1e-3)
    assert lr_at(60, **kw) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way: cos(pi/2) = 0
    assert lr_at(110, **kw) == pytest.approx(1e-4)
    assert lr_at(500, **kw) == 1e-4
    for step in range(10, 111):
        p = (step - 10) / 100
        assert lr_at(step, **kw) == pytest.approx(
            1e-4 + 9e-4 * (1 + math.cos(math.pi * p)) / 2, rel=1e-12
        )
    decay = [lr_at(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))


def test_lr_at_matches_torch_schedulers() -> None:
    """Warmup against LinearLR and the decay against CosineAnnealingLR, run side by side."""
    warmup, decay_steps, lr, min_lr = 5, 45, 2e-3, 2e-4
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    warm = torch.optim.lr_scheduler.LinearLR(
        opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1
    )
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=decay_steps - warmup, eta_min=min_lr
    )
    schedule = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[warmup])
    for step in range(decay_steps + 1):
        ours = lr_at(step, lr=lr, min_lr=min_lr, warmup_steps=warmup, decay_steps=decay_steps)
        assert ours == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9), step
        opt.step()
        schedule.step()


def test_lr_at_bad_input() -> None:
    kw = dict(lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=100)
    with pytest.raises(ValueError, match="step must be an int >= 0"):
        lr_at(-1, **kw)
    with pytest.raises(ValueError, match="warmup_steps <= decay_steps"):
        lr_at(0, lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=5)
    with pytest.raises(ValueError, match="min_lr <= lr"):
        lr_at(0, lr=1e-4, min_lr=1e-3, warmup_steps=1, decay_steps=5)


# ---- configuration and optimizer -------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_steps": -5}, "max_steps must be an int >= 1"),
        ({"max_steps": 0}, "max_steps must be an int >= 1"),
        ({"warmup_steps": 30}, r"warmup_steps \(30\) must be <= max_steps \(20\)"),
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"grad_accum_steps": 2.0}, "grad_accum_steps must be an int >= 1"),
        ({"lr": 0.0}, "lr must be a number > 0"),
        ({"min_lr": 1.0}, "min_lr must be a number in"),
        ({"betas": (0.9, 1.0)}, "betas must be two numbers"),
        ({"grad_clip": -1.0}, "grad_clip must be a number >= 0"),
        ({"weight_decay": float("nan")}, "weight_decay must be a number >= 0"),
        ({"decay_steps": 2}, r"decay_steps \(2\) must be >= warmup_steps"),
        ({"block_size": 0}, "block_size must be an int >= 1"),
        ({"bf16": True, "fp16": True}, "at most one of bf16 and fp16"),
    ],
)
def test_config_rejects_bad_values(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**overrides)


def test_config_round_trips_through_json() -> None:
    cfg = config(betas=(0.8, 0.95), bf16=True)
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.betas == (0.8, 0.95)
    with pytest.raises(TypeError, match="bf16 must be True or False"):
        config(bf16=1)
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"max_iters": 5})


def test_weight_decay_only_on_matrices() -> None:
    net = model()
    net.head.weight = net.tok.weight  # tie two matrices: the shared one must appear once
    opt = make_optimizer(net, lr=1e-3, weight_decay=0.1)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(
        p.dim() < 2 for p in plain["params"]
    )
    everything = decayed["params"] + plain["params"]
    assert len(everything) == len({id(p) for p in net.parameters()}) == len(list(net.parameters()))
    with pytest.raises(ValueError, match="no parameters that require gradients"):
        make_optimizer(nn.Linear(2, 2).requires_grad_(False), lr=1e-3, weight_decay=0.1)


# ---- the loop against references ---------------------------------------------------------------


def test_loop_matches_a_plain_training_loop() -> None:
    """The trainer against nanoGPT's loop written out: AdamW groups, schedule, clipping."""
    ids, val = corpus(), corpus(seed=1)
    cfg = config(grad_clip=0.5, eval_interval=0)
    history = Trainer(net := model(dropout=0.0), ids, val, cfg).fit()

    ref = model(dropout=0.0)
    decay = [p for p in ref.parameters() if p.dim() >= 2]
    rest = [p for p in ref.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": rest, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        foreach=False,
    )
    sampler = RandomBlockSampler(ids, BLOCK, cfg.batch_size, seed=cfg.seed)
    losses, norms = [], []
    for step in range(cfg.max_steps):
        if step < cfg.warmup_steps:
            lr = cfg.lr * (step + 1) / cfg.warmup_steps
        else:
            p = (step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps)
            lr = cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * p))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = sampler.next_batch()
        loss = ref(x, targets=y).loss
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(ref.parameters(), cfg.grad_clip).item())
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())

    for ours, theirs in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert history.train_loss == pytest.approx(losses, rel=1e-5)
    assert history.grad_norm == pytest.approx(norms, rel=1e-5)  # recorded before clipping
    assert max(norms) > cfg.grad_clip  # so clipping did act
    assert history.steps == list(range(1, 21))
    assert history.tokens == [s * cfg.batch_size * BLOCK for s in history.steps]
    assert history.val_steps == [0, 20]  # eval_interval=0: at the start and the end only
    assert history.train_loss[-1] < history.train_loss[0] - 0.3  # it learns


def test_gradient_accumulation_equals_one_large_batch() -> None:
    x = torch.randint(0, VOCAB, (8, BLOCK), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, dims=1)

    class Fixed:  # a BatchSource that serves the same batch in `parts` slices, forever
        def __init__(self, parts: int) -> None:
            self.parts, self.i = parts, 0

        def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
            size = len(x) // self.parts
            part = self.i % self.parts
            self.i += 1
            return x[part * size : (part + 1) * size], y[part * size : (part + 1) * size]

        def state_dict(self) -> dict:
            return {"i": self.i}

        def load_state_dict(self, state: dict) -> None:
            self.i = state["i"]

    big = model(dropout=0.0)
    h_big = Trainer(big, Fixed(1), None, config(max_steps=3, batch_size=8, warmup_steps=1)).fit()
    small = model(dropout=0.0)
    h_small = Trainer(
        small, Fixed(4), None, config(max_steps=3, batch_size=2, grad_accum_steps=4, warmup_steps=1)
    ).fit()
    for a, b in zip(big.parameters(), small.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert h_small.train_loss == pytest.approx(h_big.train_loss, rel=1e-5)
    assert h_small.grad_norm == pytest.approx(h_big.grad_norm, rel=1e-5)
    assert h_small.tokens == h_big.tokens == [64, 128, 192]


def test_evaluation_is_the_mean_over_fixed_batches() -> None:
    ids, val = corpus(), corpus(seed=1)
    trainer = Trainer(model(), ids, val, config(max_steps=5, eval_interval=2))
    expected_batches = [
        RandomBlockSampler(val, BLOCK, 4, seed=trainer.config.seed + 1).next_batch()
    ]
    assert torch.equal(trainer.val_batches[0][0], expected_batches[0][0])
    history = trainer.fit()
    net = trainer.model.eval()
    with torch.no_grad():
        manual = sum(net(x, targets=y).loss.item() for x, y in trainer.val_batches) / 3
    assert history.val_loss[-1] == pytest.approx(manual, rel=1e-6)
    assert evaluate_loss(trainer.model, trainer.val_batches) == pytest.approx(manual, rel=1e-6)
    assert history.val_steps == [0, 2, 4, 5]
    assert trainer.model.training is False  # evaluate_loss restores the mode it found


def test_custom_loss_fn_and_2d_rows() -> None:
    class LogitsOnly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model(dropout=0.0)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            return self.inner(idx).logits

    def loss_fn(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(net(x).flatten(0, 1), y.flatten())

    rows = corpus(n=40 * (BLOCK + 1)).view(40, BLOCK + 1)
    history = train(
        LogitsOnly(), rows, rows[:8], config(block_size=None, max_steps=15), loss_fn=loss_fn
    )
    assert len(history.train_loss) == 15 and history.val_loss[-1] < history.val_loss[0]
    with pytest.raises(TypeError, match="LogitsOnly.forward does not take targets"):
        train(LogitsOnly(), rows, None, config(max_steps=2, warmup_steps=1))
    no_loss = Trainer(
        LogitsOnly(),
        rows,
        None,
        config(max_steps=2, warmup_steps=1),
        loss_fn=lambda net, batch: default_loss(lambda x, targets: {"logits": x}, batch),
    )
    with pytest.raises(TypeError, match="returned dict without a .loss tensor"):
        no_loss.fit()


def test_bf16_autocast_on_cpu_trains_like_fp32() -> None:
    ids = corpus()
    fp32 = Trainer(model(dropout=0.0), ids, None, config(max_steps=10)).fit()
    bf16 = Trainer(model(dropout=0.0), ids, None, config(max_steps=10, bf16=True)).fit()
    assert bf16.train_loss == pytest.approx(fp32.train_loss, rel=0.02)
    assert bf16.train_loss != fp32.train_loss  # bf16 really was used


# ---- checkpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["stream", "rows"])
def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path: Path, data: str) -> None:
    ids, val = corpus(), corpus(seed=1)
    if data == "rows":
        ids = ids[: 300 * (BLOCK + 1)].view(300, BLOCK + 1)
        val = val[: 20 * (BLOCK + 1)].view(20, BLOCK + 1)
    cfg = config(
        max_steps=24,
        grad_accum_steps=2,
        eval_interval=6,
        block_size=BLOCK if data == "stream" else None,
    )

    straight = model()
    expected = Trainer(straight, ids, val, cfg).fit()

    first = Trainer(model(), ids, val, cfg, checkpoint_dir=tmp_path / "ckpt")
    first.fit(until=12)  # "interrupted" half-way; fit saves when it returns
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "model.safetensors",
        "trainer_state.json",
        "trainer_state.safetensors",
    ]  # no pickle
    torch.manual_seed(999)  # disturb every random state the checkpoint must restore
    resumed_model = model(seed=5)
    resumed = train(resumed_model, ids, val, cfg, checkpoint_dir=tmp_path / "ckpt", resume=True)

    resumed_weights = resumed_model.state_dict()
    for name, weight in straight.state_dict().items():
        assert torch.equal(weight, resumed_weights[name]), name
    for name in ("steps", "train_loss", "lr", "grad_norm", "tokens", "val_steps", "val_loss"):
        assert getattr(resumed, name) == getattr(expected, name), name


def test_checkpoint_bad_input(tmp_path: Path) -> None:
    ids = corpus()
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        train(model(), ids, None, config(), checkpoint_dir=missing, resume=True)
    with pytest.raises(ValueError, match="resume=True needs the checkpoint_dir"):
        train(model(), ids, None, config(), resume=True)
    trainer = Trainer(model(), ids, None, config(max_steps=4), checkpoint_dir=tmp_path / "ckpt")
    trainer.fit()
    with pytest.raises(ValueError, match=r"different config \(lr: saved 0.01, now 0.001"):
        Trainer(model(), ids, None, config(max_steps=4, lr=1e-3)).load_checkpoint(tmp_path / "ckpt")
    Trainer(model(), ids, None, config(max_steps=4, log_interval=3)).load_checkpoint(
        tmp_path / "ckpt"
    )
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        trainer.save_checkpoint(tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="no checkpoint folder"):
        Trainer(model(), ids, None, config()).save_checkpoint()


def test_trainer_bad_input() -> None:
    ids = corpus()
    with pytest.raises(ValueError, match="set TrainConfig.block_size"):
        Trainer(model(), ids, None, config(block_size=None))
    with pytest.raises(ValueError, match="batch_size=64 is larger than the"):
        Trainer(model(), torch.arange(40) % VOCAB, None, config(batch_size=64))
    with pytest.raises(TypeError, match="token tensor or a BatchSource"):
        Trainer(model(), [1, 2, 3], None, config())
    with pytest.raises(ValueError, match="1-D token stream or 2-D rows"):
        Trainer(model(), torch.zeros(2, 2, 2, dtype=torch.long), None, config())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        Trainer(lambda x: x, ids, None, config())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fp16 needs a CUDA model"):
        Trainer(model(), ids, None, config(fp16=True))
    trainer = Trainer(model(), ids, None, config())
    with pytest.raises(ValueError, match=r"until must be an int in \[0, 20\]"):
        trainer.fit(until=21)
    with pytest.raises(ValueError, match="no validation data"):
        trainer.evaluate()
    bad = Trainer(
        model(), ids, None, config(), loss_fn=lambda net, batch: torch.ones(2, requires_grad=True)
    )
    with pytest.raises(ValueError, match="scalar tensor"):
        bad.fit()


def test_diverging_loss_raises() -> None:
    def nan_loss(net: nn.Module, batch: tuple) -> torch.Tensor:
        return net(batch[0], targets=batch[1]).loss * float("nan")

    with pytest.raises(FloatingPointError, match="loss is nan at step 1"):
        Trainer(model(), corpus(), None, config(), loss_fn=nan_loss).fit()


# ---- history -------------------------------------------------------------------------------------


def test_history_round_trip_and_plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    history = Trainer(model(), corpus(), corpus(seed=1), config(max_steps=10)).fit()
    again = History.from_dict(json.loads(json.dumps(history.to_dict())))
    assert again == history
    assert history.final_val_loss == history.val_loss[-1]
    assert history.final_train_loss == pytest.approx(sum(history.train_loss) / 10)
    ax = history.plot()
    assert ax.get_title() and ax.get_xlabel() == "optimizer step" and "loss" in ax.get_ylabel()
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["validation"].get_ydata()) == history.val_loss
    assert list(lines["train (per step)"].get_xdata()) == history.steps
    with pytest.raises(ValueError, match="expected the History fields"):
        History.from_dict({"steps": []})
    with pytest.raises(ValueError, match="no evaluation"):
        _ = History().final_val_loss


# ---- shared.plotting (the figures History.plot and the notebooks draw) ---------------------------


@pytest.fixture
def pyplot() -> Iterator:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_curves_draws_each_series(pyplot) -> None:
    from shared.plotting import plot_curves

    ax = plot_curves(
        [1, 2, 3],
        {"a": [1.0, 0.5, 0.25], "b": torch.tensor([2.0, 1.0, 0.5])},
        "Loss vs step",
        "step",
        "loss",
        logy=True,
    )
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == (
        "Loss vs step",
        "step",
        "loss",
        "log",
    )
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["b"].get_ydata()) == [2.0, 1.0, 0.5] and list(lines["a"].get_xdata()) == [
        1,
        2,
        3,
    ]
    ax = plot_curves({"a": [0, 10]}, {"a": [3, 4]}, "t", "x", "y", ax=pyplot.subplots()[1])
    assert list(ax.get_lines()[0].get_xdata()) == [0, 10]
    with pytest.raises(ValueError, match="series 'a' has 3 x values but 2 y values"):
        plot_curves([1, 2, 3], {"a": [1, 2]}, "t", "x", "y")
    with pytest.raises(ValueError, match="title must be a non-empty string"):
        plot_curves([1], {"a": [1]}, "", "x", "y")
    with pytest.raises(ValueError, match="ylabel must be a non-empty string"):
        plot_curves([1], {"a": [1]}, "t", "x", " ")
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_curves([1], {}, "t", "x", "y")


def test_heatmap_and_bar(pyplot) -> None:
    from shared.plotting import bar, heatmap

    matrix = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    ax = heatmap(matrix, list("wxyz"), ["q0", "q1", "q2"], "Attention weights", annotate=True)
    torch.testing.assert_close(torch.tensor(ax.images[0].get_array().data), matrix.double())
    assert [t.get_text() for t in ax.get_xticklabels()] == list("wxyz")
    assert ax.get_title() == "Attention weights" and ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.texts) == 12
    with pytest.raises(ValueError, match="expected 4 xlabels"):
        heatmap(matrix, list("wxy"), None, "t")
    with pytest.raises(ValueError, match="expected a 2-D matrix"):
        heatmap(torch.zeros(2, 2, 2), None, None, "t")

    ax = bar(["fp32", "bf16"], [4.0, 2.0], "Memory per parameter", "dtype", "bytes")
    assert [p.get_height() for p in ax.patches] == [4.0, 2.0]
    assert [t.get_text() for t in ax.texts] == ["4", "2"]
    ax = bar(["a"], [1.5], "t", "value", "name", horizontal=True)
    assert ax.patches[0].get_width() == 1.5
    with pytest.raises(ValueError, match="one value per label"):
        bar(["a", "b"], [1.0], "t", "x", "y")
    with pytest.raises(ValueError, match="xlabel must be a non-empty string"):
        bar(["a"], [1.0], "t", "", "y")


def test_plot_history_bad_input(pyplot) -> None:
    from shared.plotting import plot_history

    with pytest.raises(ValueError, match="history is empty"):
        plot_history(History())
    with pytest.raises(TypeError, match="expected a shared.training.History"):
        plot_history({"steps": [1]})
