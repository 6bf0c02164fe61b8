"""Timing helpers shared by ``run.py`` and ``profile_overhead.py``.

The machines these benchmarks run on are small and noisy, so every number is a *median*:

* each callable is warmed up first (this also triggers any JIT compilation, which is timed
  separately as the "first call");
* ``timeit`` picks a loop count so that one sample lasts at least ``min_sample_s``;
* samples are taken in interleaved rounds (every implementation gets a few samples, then the
  next one, and so on, round after round), so slow drifts of the machine hit every
  implementation alike;
* before its samples in each round, an implementation runs untimed for ``settle_s``: thread
  pools of the library that ran just before (OpenBLAS workers spin for a while after a
  matmul; OpenMP workers likewise) would otherwise steal a core from the next one, which on a
  2-core machine made multi-threaded peers look 2-3x slower than they are;
* the reported time is the median over all samples of (sample time / loop count).

The garbage collector stays *enabled* while timing (``timeit`` switches it off by default):
libraries that build reference cycles should pay for collecting them.
"""

from __future__ import annotations

import statistics
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field

_GC_ON = "import gc; gc.enable()"


@dataclass
class Settings:
    rounds: int = 7  # interleaved rounds
    per_round: int = 7  # samples per implementation per round
    min_sample_s: float = 0.02  # one sample lasts at least this long
    warmup_s: float = 0.1  # keep calling for this long before measuring
    settle_s: float = 0.2  # untimed calls before each implementation's samples in a round


QUICK = Settings(rounds=3, per_round=3, min_sample_s=0.005, warmup_s=0.1, settle_s=0.1)
FULL = Settings()


@dataclass
class Measurement:
    name: str
    fn: Callable[[], object]
    first_call_s: float = float("nan")
    number: int = 1
    samples: list[float] = field(default_factory=list)  # seconds per call

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples)

    @property
    def median_us(self) -> float:
        return self.median_s * 1e6

    @property
    def spread(self) -> tuple[float, float]:
        """Interquartile range of the per-call samples, in µs."""
        if len(self.samples) < 4:
            return (min(self.samples) * 1e6, max(self.samples) * 1e6)
        q = statistics.quantiles(self.samples, n=4)
        return (q[0] * 1e6, q[2] * 1e6)


def prepare(name: str, fn: Callable[[], object], settings: Settings) -> Measurement:
    """First call (timed on its own: it includes any compilation), warm-up, loop count."""
    m = Measurement(name, fn)
    t0 = time.perf_counter()
    fn()
    m.first_call_s = time.perf_counter() - t0
    _run_for(fn, settings.warmup_s, min_calls=3)
    timer = timeit.Timer(fn, setup=_GC_ON)
    number = 1
    while True:
        if timer.timeit(number) >= settings.min_sample_s:
            break
        number *= 2 if number < 8 else 4
    m.number = number
    return m


def _run_for(fn: Callable[[], object], seconds: float, min_calls: int = 1) -> None:
    t_end = time.perf_counter() + seconds
    calls = 0
    while calls < min_calls or time.perf_counter() < t_end:
        fn()
        calls += 1


def measure_interleaved(
    fns: list[tuple[str, Callable[[], object]]], settings: Settings
) -> list[Measurement]:
    """Median time per call for each ``(name, fn)``, measured in interleaved rounds."""
    ms = [prepare(name, fn, settings) for name, fn in fns]
    for _ in range(settings.rounds):
        for m in ms:
            _run_for(m.fn, settings.settle_s)
            timer = timeit.Timer(m.fn, setup=_GC_ON)
            raw = timer.repeat(repeat=settings.per_round, number=m.number)
            m.samples.extend(t / m.number for t in raw)
    return ms


def measure(name: str, fn: Callable[[], object], settings: Settings) -> Measurement:
    return measure_interleaved([(name, fn)], settings)[0]
