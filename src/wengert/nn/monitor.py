"""Watching a training loop: a monitor that records metrics per iteration and per epoch, shows
them in a tqdm progress bar, and plots the curves to a PNG with matplotlib (headless, Agg).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["TrainingMonitor", "plot_curves"]


def _scalar(v: Any) -> float:
    from wengert.core import primal_value

    return float(np.asarray(primal_value(v)))


class TrainingMonitor:
    """Records named metrics against the iteration (and epoch) at which they were measured.

    ``mon.record(iteration, epoch=e, loss=..., accuracy=...)`` stores the values (each metric
    keeps its own list of ``(iteration, epoch, value)``, so validation metrics recorded once an
    epoch sit beside per-iteration training ones), advances the progress bar to ``iteration``
    and shows the latest values in it.  ``progress``: ``True`` shows a tqdm bar (on stderr),
    ``False`` none, ``None`` (default) shows one only on a terminal.  ``total`` is the number of
    iterations expected (the bar's length).
    """

    def __init__(
        self,
        total: int | None = None,
        desc: str = "training",
        progress: bool | None = None,
        show: Sequence[str] | None = None,
        file: Any = None,
    ) -> None:
        self.total = total
        self.desc = desc
        self.history: dict[str, list[tuple[int, int, float]]] = {}
        self.show = tuple(show) if show is not None else None
        self.start_time = time.perf_counter()
        self.iteration = 0
        self.epoch = 0
        if progress is None:
            stream = file or sys.stderr
            progress = bool(getattr(stream, "isatty", lambda: False)())
        self._bar = None
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, file=file, dynamic_ncols=True, leave=True)

    # -- recording ----------------------------------------------------------------------------

    def record(
        self, iteration: int | None = None, epoch: int | None = None, **metrics: Any
    ) -> None:
        """Store ``metrics`` (numbers or 0-d arrays) at ``iteration`` (default: the last one
        recorded + 1 if it has metrics already, else the same) and ``epoch``."""
        if iteration is None:
            iteration = self.iteration + 1
        iteration = int(iteration)
        if epoch is not None:
            self.epoch = int(epoch)
        for name, v in metrics.items():
            self.history.setdefault(name, []).append((iteration, self.epoch, _scalar(v)))
        if self._bar is not None:
            if iteration > self.iteration:
                self._bar.update(iteration - self.iteration)
            post = {k: self._fmt(v) for k, v in self.latest().items() if self._shown(k)}
            if self.epoch:
                post = {"epoch": self.epoch, **post}
            self._bar.set_postfix(post, refresh=False)
        self.iteration = max(self.iteration, iteration)

    def _shown(self, name: str) -> bool:
        return self.show is None or name in self.show

    @staticmethod
    def _fmt(v: float) -> str:
        return f"{v:.4g}"

    def latest(self) -> dict[str, float]:
        """The last value of every metric."""
        return {k: v[-1][2] for k, v in self.history.items()}

    def values(self, name: str) -> np.ndarray:
        """The recorded values of ``name`` (float64 array)."""
        return np.array([v for _, _, v in self._get(name)])

    def iterations(self, name: str) -> np.ndarray:
        """The iterations at which ``name`` was recorded."""
        return np.array([i for i, _, _ in self._get(name)], dtype=np.int64)

    def _get(self, name):
        if name not in self.history:
            raise KeyError(f"no metric {name!r} recorded; have {sorted(self.history)}")
        return self.history[name]

    def epoch_means(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(epochs, mean value over each epoch)`` of ``name``."""
        rows = self._get(name)
        epochs = sorted({e for _, e, _ in rows})
        means = [float(np.mean([v for _, e, v in rows if e == ep])) for ep in epochs]
        return np.array(epochs), np.array(means)

    @property
    def elapsed(self) -> float:
        """Seconds since the monitor was created."""
        return time.perf_counter() - self.start_time

    def close(self) -> None:
        """Close the progress bar (if any)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TrainingMonitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def to_dict(self) -> dict[str, dict[str, list]]:
        """Plain lists (JSON-friendly): ``{name: {"iteration": [...], "epoch": [...], "value": [...]}}``."""
        return {
            k: {
                "iteration": [r[0] for r in v],
                "epoch": [r[1] for r in v],
                "value": [r[2] for r in v],
            }
            for k, v in self.history.items()
        }

    # -- plotting -----------------------------------------------------------------------------

    def plot(
        self,
        path: str | os.PathLike,
        groups: Sequence[Sequence[str]] | None = None,
        smooth: int = 0,
        title: str | None = None,
    ) -> str:
        """Save the curves as a PNG: one panel per group of metric names (default: one panel
        per metric), x axis the iteration.  ``smooth`` > 1 overlays a moving average over that
        many points.  Works without a display (matplotlib's Agg backend)."""
        if groups is None:
            groups = [[k] for k in self.history]
        series = {k: (self.iterations(k), self.values(k)) for g in groups for k in g}
        return plot_curves(path, series, groups, smooth=smooth, title=title)


def _moving_average(v: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(v) < n:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = (c[n:] - c[:-n]) / n
    return np.concatenate([np.full(n - 1, np.nan), out])


def plot_curves(
    path: str | os.PathLike,
    series: dict[str, tuple[Iterable, Iterable]],
    groups: Sequence[Sequence[str]] | None = None,
    smooth: int = 0,
    title: str | None = None,
    xlabel: str = "iteration",
    yscales: Sequence[str] | None = None,
) -> str:
    """Plot ``series`` ({name: (x, y)}) in panels (``groups`` of names) and save a PNG headless.
    ``yscales``: the y-axis scale of each group's panel, "linear" (default) or "log" (where
    non-positive values cannot be drawn)."""
    # The object API renders with Agg on its own: no pyplot state, no display needed.
    from matplotlib.figure import Figure

    if groups is None:
        groups = [[k] for k in series]
    groups = [list(g) for g in groups]
    if yscales is not None:
        yscales = list(yscales)
        if len(yscales) != len(groups):
            raise ValueError(
                f"plot: give one y scale per group, got {len(yscales)} for {len(groups)}"
            )
        bad = [v for v in yscales if v not in ("linear", "log")]
        if bad:
            raise ValueError(f'plot: a y scale is "linear" or "log", got {bad[0]!r}')
        yscales = [v for g, v in zip(groups, yscales) if g]
    groups = [g for g in groups if g]
    n = max(len(groups), 1)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(5.5 * cols, 3.6 * rows), dpi=100)
    for k, g in enumerate(groups):
        ax = fig.add_subplot(rows, cols, k + 1)
        for name in g:
            if name not in series:
                raise KeyError(f"plot: no series {name!r}; have {sorted(series)}")
            x, y = (np.asarray(a, float) for a in series[name])
            if smooth and smooth > 1 and len(y) >= 4 * smooth:
                ax.plot(x, y, alpha=0.3, lw=0.8)
                ax.plot(x, _moving_average(y, smooth), label=name, color=ax.lines[-1].get_color())
            else:
                ax.plot(x, y, label=name, marker="o" if len(y) < 30 else None, ms=3)
        ax.set_xlabel(xlabel)
        if yscales is not None and yscales[k] == "log":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    return path
