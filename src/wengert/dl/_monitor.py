"""MATLAB's ``trainingProgressMonitor`` for custom training loops, headless: metrics recorded
through wengert.nn.monitor, a tqdm bar for ``progress`` and the info, and the curves saved as
a PNG instead of a figure window.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from wengert.core import Tracer, primal_value
from wengert.dl._dlarray import dlarray
from wengert.nn.monitor import TrainingMonitor, plot_curves

__all__ = ["trainingProgressMonitor"]


def _names(v: Any, what: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    out = [str(s) for s in v]
    for s in out:
        if not s.isidentifier():
            raise ValueError(
                f"trainingProgressMonitor: {what} names must be valid identifiers (they are "
                f"keyword arguments of record_metrics/update_info), got {s!r}"
            )
    if len(set(out)) != len(out):
        raise ValueError(f"trainingProgressMonitor: repeated {what} names in {out}")
    return out


class trainingProgressMonitor:
    """MATLAB's ``monitor = trainingProgressMonitor(Metrics=..., Info=..., XLabel=...)``.

    * ``record_metrics(iteration, **values)`` (``recordMetrics``) stores metric values at an
      iteration (names must be among ``metrics``); ``update_info(**values)`` (``updateInfo``)
      sets the info values (names among ``info``);
    * ``progress`` (0 to 100, settable) drives the progress bar; ``stop`` (settable and
      readable, MATLAB's ``Stop``) is the flag a loop checks (``while ... and not
      monitor.stop``); ``status`` is a free text (MATLAB's ``Status``);
    * ``group_sub_plot(name, metrics)`` (``groupSubPlot``) draws several metrics in one panel;
      ``yscale(names, scale)`` (MATLAB's ``yscale(monitor, axesName, scale)``) draws panels
      on a "log" or "linear" y axis;
    * the curves go to a PNG: ``save_png(path)`` any time, and automatically to ``png`` (when
      given) at most every ``png_interval`` seconds, when ``progress`` reaches 100 and on
      ``close()``.

    ``progress_bar``: True shows a tqdm bar (stderr, or ``file``), False none, None (default)
    one only on a terminal.  Recorded values are kept in a
    :class:`wengert.nn.monitor.TrainingMonitor` (``values(name)``, ``iterations(name)``).
    """

    def __init__(
        self,
        *,
        metrics: Sequence[str] | str | None = None,
        info: Sequence[str] | str | None = None,
        x_label: str = "Iteration",
        png: str | os.PathLike | None = None,
        png_interval: float = 5.0,
        progress_bar: bool | None = None,
        file: Any = None,
    ) -> None:
        self.metrics = _names(metrics, "metric")
        self.info = _names(info, "info")
        self.x_label = str(x_label)
        self.png = None if png is None else os.fspath(png)
        self.png_interval = float(png_interval)
        self.status = ""
        self._record = TrainingMonitor(progress=False)
        self._info: dict[str, Any] = {k: None for k in self.info}
        self._groups: dict[str, list[str]] = {}
        self._scales: dict[str, str] = {}  # metric or group name -> "linear" / "log"
        self._progress = 0.0
        self._stop = False
        self._last_png = time.perf_counter()  # the first automatic PNG after png_interval
        self.start_time = time.perf_counter()
        if progress_bar is None:
            stream = file or sys.stderr
            progress_bar = bool(getattr(stream, "isatty", lambda: False)())
        self._bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=100, desc="training", file=file, dynamic_ncols=True, leave=True)

    # -- recording ------------------------------------------------------------------------
    def record_metrics(self, iteration: int, **values: Any) -> None:
        """MATLAB's ``recordMetrics(monitor, iteration, Name=value, ...)``."""
        unknown = [k for k in values if k not in self.metrics]
        if unknown:
            raise ValueError(
                f"trainingProgressMonitor: metrics {unknown} were not declared; declare them with "
                f"trainingProgressMonitor(metrics=[...]) (have {self.metrics})"
            )
        self._record.record(int(iteration), **{k: _plain(v) for k, v in values.items()})
        self._refresh_bar()
        if self.png is not None and time.perf_counter() - self._last_png >= self.png_interval:
            self.save_png()

    def update_info(self, **values: Any) -> None:
        """MATLAB's ``updateInfo(monitor, Name=value, ...)``."""
        unknown = [k for k in values if k not in self.info]
        if unknown:
            raise ValueError(
                f"trainingProgressMonitor: info fields {unknown} were not declared; declare them "
                f"with trainingProgressMonitor(info=[...]) (have {self.info})"
            )
        self._info.update({k: _plain(v) for k, v in values.items()})
        self._refresh_bar()

    def group_sub_plot(self, group_name: str, metrics: Sequence[str] | str) -> None:
        """MATLAB's ``groupSubPlot(monitor, groupName, metricNames)``: these metrics share one
        panel of the PNG."""
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [k for k in names if k not in self.metrics]
        if unknown:
            raise ValueError(
                f"trainingProgressMonitor: group_sub_plot got undeclared metrics {unknown}"
            )
        scales = {self._scales.get(k, "linear") for k in names}
        if len(scales) > 1:
            raise ValueError(
                f"trainingProgressMonitor: the metrics of group {group_name!r} have different y "
                f"scales {sorted(scales)}; grouped metrics share one axis (MATLAB's rule): set "
                "them alike with yscale first, or yscale the group afterwards"
            )
        self._groups[str(group_name)] = names
        if names and scales != {"linear"}:
            self._scales[str(group_name)] = scales.pop()

    def yscale(self, names: Sequence[str] | str, scale: str) -> None:
        """MATLAB's ``yscale(monitor, axesName, scale)``: draw the panel of each name on a
        ``scale`` = "log" or "linear" (default) y axis in the PNG.  A name is a metric
        (its own panel) or a group of :meth:`group_sub_plot`; a metric that sits in a group
        sets the scale of the whole group's panel (one axis for the group, as in MATLAB).
        Values ≤ 0 cannot be drawn on a log axis (matplotlib leaves them out)."""
        scale = str(scale).lower()
        if scale not in ("linear", "log"):
            raise ValueError(
                f'trainingProgressMonitor.yscale: scale must be "linear" or "log", got {scale!r}'
            )
        names = [names] if isinstance(names, str) else [str(k) for k in names]
        unknown = [k for k in names if k not in self.metrics and k not in self._groups]
        if unknown:
            raise ValueError(
                f"trainingProgressMonitor.yscale: {unknown} are neither declared metrics "
                f"{self.metrics} nor groups {list(self._groups)}"
            )
        for k in names:
            groups = [g for g, ms in self._groups.items() if k == g or k in ms]
            for g in groups:
                self._scales[g] = scale
                for m in self._groups[g]:
                    self._scales[m] = scale
            self._scales[k] = scale

    def _panel_scale(self, name: str) -> str:
        return self._scales.get(name, "linear")

    # -- MATLAB properties ----------------------------------------------------------------
    @property
    def progress(self) -> float:
        """Percent done, 0 to 100 (MATLAB's ``Progress``)."""
        return self._progress

    @progress.setter
    def progress(self, value: float) -> None:
        v = float(value)
        if not 0 <= v <= 100:
            raise ValueError(f"trainingProgressMonitor: progress must lie in [0, 100], got {value}")
        self._progress = v
        self._refresh_bar()
        if v == 100 and self.png is not None:
            self.save_png()

    @property
    def stop(self) -> bool:
        """The stop flag (MATLAB's ``Stop``): set it (from a callback, a signal handler or
        the loop itself) and the loop's ``while not monitor.stop`` ends."""
        return self._stop

    @stop.setter
    def stop(self, value: bool) -> None:
        self._stop = bool(value)

    @property
    def info_values(self) -> dict[str, Any]:
        """The latest info values (None until set)."""
        return dict(self._info)

    def values(self, name: str) -> np.ndarray:
        """The recorded values of metric ``name``."""
        return self._record.values(name)

    def iterations(self, name: str) -> np.ndarray:
        """The iterations at which ``name`` was recorded."""
        return self._record.iterations(name)

    @property
    def elapsed(self) -> float:
        """Seconds since the monitor was made."""
        return time.perf_counter() - self.start_time

    # -- rendering ------------------------------------------------------------------------
    def _refresh_bar(self) -> None:
        if self._bar is None:
            return
        self._bar.n = self._progress
        post = {k: f"{v:.4g}" for k, v in self._record.latest().items()}
        post.update({k: _fmt(v) for k, v in self._info.items() if v is not None})
        self._bar.set_postfix(post, refresh=False)
        self._bar.refresh()

    def _title(self) -> str:
        parts = [f"{k}: {_fmt(v)}" for k, v in self._info.items() if v is not None]
        if self.status:
            parts.insert(0, self.status)
        parts.append(f"progress {self._progress:.0f}%")
        return ", ".join(parts)

    def save_png(self, path: str | os.PathLike | None = None) -> str | None:
        """Plot the recorded metrics (one panel per group or ungrouped metric, x axis
        ``x_label``) to ``path`` (default: ``png``); returns the path, or None when nothing
        has been recorded yet."""
        path = self.png if path is None else os.fspath(path)
        if path is None:
            raise ValueError("trainingProgressMonitor.save_png: give a path (or png= at creation)")
        have = self._record.history
        if not have:
            return None
        grouped = {m for g in self._groups.values() for m in g}
        panels = [
            ([m for m in ms if m in have], self._panel_scale(g)) for g, ms in self._groups.items()
        ]
        panels += [
            ([m], self._panel_scale(m)) for m in self.metrics if m in have and m not in grouped
        ]
        panels = [p for p in panels if p[0]]
        series = {
            m: (self._record.iterations(m), self._record.values(m)) for p, _ in panels for m in p
        }
        out = plot_curves(
            path,
            series,
            [p for p, _ in panels],
            title=self._title(),
            xlabel=self.x_label,
            yscales=[sc for _, sc in panels],
        )
        self._last_png = time.perf_counter()
        return out

    def close(self) -> None:
        """Write the PNG (when ``png`` was given) and close the progress bar."""
        if self.png is not None:
            self.save_png()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> trainingProgressMonitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"trainingProgressMonitor(metrics={self.metrics}, info={self.info}, "
            f"progress={self._progress:.0f}, stop={self._stop}, status={self.status!r})"
        )


def _plain(v: Any) -> Any:
    """A dlarray's or tracer's data as plain NumPy."""
    if isinstance(v, dlarray):
        v = v._value
    if isinstance(v, Tracer):
        v = np.asarray(primal_value(v))
    return v


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    if isinstance(v, np.ndarray) and v.size == 1:
        return f"{v.item():.4g}"
    return str(v)
