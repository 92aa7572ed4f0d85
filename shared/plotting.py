"""Small matplotlib helpers, so that every figure in the course has a title and labelled axes.

Each helper draws on ``ax`` when given (for subplots) or on a new figure, and returns the
``Axes``. Title and axis labels are required arguments: an empty one raises ``ValueError``.
matplotlib is imported inside the functions, so importing this module is cheap.

Used in: most notebooks; `shared.training` (``History.plot``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["bar", "heatmap", "plot_curves", "plot_history"]


def _require_labels(**labels: Any) -> None:
    for name, value in labels.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(
                f"{name} must be a non-empty string (every figure is titled and labelled), "
                f"got {value!r}"
            )


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _as_list(values: Any, name: str) -> list[float]:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu()
    if hasattr(values, "tolist"):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    return list(values)


def plot_curves(
    xs: Sequence[float] | Mapping[str, Sequence[float]],
    ys: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    logy: bool = False,
    ax: Any = None,
    markers: bool = False,
) -> Any:
    """Line plot of several named series with a legend.

    ``xs`` is one sequence shared by every series, or a mapping from series name to its own x
    values. ``ys`` maps each series name to its y values. ``logy`` puts y on a log scale.

    Used in: most notebooks that compare runs or settings (loss vs steps, time vs size, ...).
    """
    _require_labels(title=title, xlabel=xlabel, ylabel=ylabel)
    if not isinstance(ys, Mapping) or not ys:
        raise ValueError("ys must be a non-empty mapping from series name to values")
    ax = _axes(ax, (6.0, 4.0))
    for name, values in ys.items():
        x = _as_list(xs[name] if isinstance(xs, Mapping) else xs, f"xs[{name!r}]")
        y = _as_list(values, f"ys[{name!r}]")
        if len(x) != len(y):
            raise ValueError(f"series {name!r} has {len(x)} x values but {len(y)} y values")
        ax.plot(x, y, label=str(name), marker="o" if markers else None)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax


def plot_history(
    history: Any, *, title: str = "Training and validation loss", ax: Any = None, logy: bool = False
) -> Any:
    """Train and validation loss against optimizer steps, from a `shared.training.History`.

    Train loss is drawn per step (thin) with its moving average; validation loss as points joined
    by a line, at the steps where it was evaluated.

    Used in: modules/05-pretraining (02-next-token-prediction, 04-training-loop) and every
    notebook that trains with `shared.training`.
    """
    _require_labels(title=title)
    for field in ("steps", "train_loss", "val_steps", "val_loss"):
        if not hasattr(history, field):
            raise TypeError(
                f"expected a shared.training.History (with .{field}), got {type(history).__name__}"
            )
    if not history.steps and not history.val_steps:
        raise ValueError("the history is empty: train for at least one step first")
    ax = _axes(ax, (7.0, 4.0))
    if history.steps:
        ax.plot(
            history.steps,
            history.train_loss,
            color="tab:blue",
            alpha=0.3,
            linewidth=0.8,
            label="train (per step)",
        )
        window = max(1, len(history.steps) // 50)
        if window > 1:
            smooth = _moving_average(history.train_loss, window)
            ax.plot(
                history.steps[window - 1 :],
                smooth,
                color="tab:blue",
                label=f"train ({window}-step mean)",
            )
    if history.val_steps:
        ax.plot(
            history.val_steps,
            history.val_loss,
            color="tab:orange",
            marker="o",
            markersize=3,
            label="validation",
        )
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    """Means of each run of ``window`` consecutive values (``len(values) - window + 1`` of them)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        if i >= window - 1:
            out.append(total / window)
    return out


def heatmap(
    matrix: Any,
    xlabels: Sequence[str] | None,
    ylabels: Sequence[str] | None,
    title: str,
    *,
    xlabel: str = "key position",
    ylabel: str = "query position",
    ax: Any = None,
    cmap: str = "viridis",
    annotate: bool = False,
    colorbar_label: str | None = None,
) -> Any:
    """A 2-D matrix as an image with a colour bar, e.g. attention weights (rows = queries).

    ``xlabels`` / ``ylabels`` name the columns / rows (``None``: numbered). ``annotate`` writes
    each value in its cell (for small matrices).

    Used in: modules/02-transformer-architecture (03-self-attention, 04-multi-head-attention),
    modules/20-advanced-topics (01-mixture-of-experts, 02-long-context-ring-attention).
    """
    import numpy as np

    _require_labels(title=title, xlabel=xlabel, ylabel=ylabel)
    if hasattr(matrix, "detach"):
        matrix = matrix.detach().float().cpu().numpy()
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {data.shape}")
    n_rows, n_cols = data.shape
    if xlabels is not None and len(xlabels) != n_cols:
        raise ValueError(f"expected {n_cols} xlabels (one per column), got {len(xlabels)}")
    if ylabels is not None and len(ylabels) != n_rows:
        raise ValueError(f"expected {n_rows} ylabels (one per row), got {len(ylabels)}")
    ax = _axes(ax, (max(4.0, 0.4 * n_cols + 2.0), max(3.0, 0.4 * n_rows + 1.5)))
    image = ax.imshow(data, cmap=cmap, aspect="auto")
    colorbar = ax.figure.colorbar(image, ax=ax)
    if colorbar_label:
        colorbar.set_label(colorbar_label)
    if xlabels is not None:
        ax.set_xticks(range(n_cols), [str(label) for label in xlabels], rotation=90)
    if ylabels is not None:
        ax.set_yticks(range(n_rows), [str(label) for label in ylabels])
    if annotate:
        middle = (np.nanmax(data) + np.nanmin(data)) / 2
        for i in range(n_rows):
            for j in range(n_cols):
                ax.text(
                    j,
                    i,
                    f"{data[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if data[i, j] > middle else "white",
                )
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def bar(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    ax: Any = None,
    horizontal: bool = False,
    annotate: bool = True,
    fmt: str = "{:.3g}",
) -> Any:
    """A bar chart of one value per label, each bar annotated with its value (``fmt``).

    ``horizontal`` draws horizontal bars (for long labels); ``xlabel`` / ``ylabel`` then still
    name the horizontal and vertical axes as drawn.

    Used in: notebooks that compare a measured figure across settings (memory, speed, accuracy).
    """
    _require_labels(title=title, xlabel=xlabel, ylabel=ylabel)
    labels = [str(label) for label in labels]
    heights = _as_list(values, "values")
    if not labels or len(labels) != len(heights):
        raise ValueError(
            f"expected one value per label, got {len(labels)} labels and {len(heights)} values"
        )
    ax = _axes(ax, (6.0, 4.0))
    bars = ax.barh(labels, heights) if horizontal else ax.bar(labels, heights)
    if annotate:
        ax.bar_label(bars, labels=[fmt.format(v) for v in heights], fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="x" if horizontal else "y", alpha=0.3)
    return ax
