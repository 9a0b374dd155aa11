"""Latency percentiles that say how many samples stand behind them.

A percentile is reported only where the sample count supports it: p90 from 10 samples, p99
from 100 (below that p99 is simply the maximum); otherwise the field is None. `n` is always
there.
"""
import time
from dataclasses import asdict, dataclass

import numpy as np

MIN_SAMPLES = {"p90": 10, "p99": 100}
# Before a timed turn in interleaved timing: the intra-op threads of the ONNX Runtime session (or
# worker process) that ran last go on spinning for tens of milliseconds after its call returns, and
# on a 2-core machine they take the CPU from the next one (docs/measurement.md, interleaved rounds).
SETTLE_S = 0.05


def settle():
    """Wait until the threads of whatever ran last have stopped spinning (SETTLE_S)."""
    time.sleep(SETTLE_S)


@dataclass
class Latency:
    p50: float
    p90: float | None
    p99: float | None
    mean: float
    n: int

    @classmethod
    def from_values(cls, seconds):
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        n = len(ms)

        def pct(q):
            need = MIN_SAMPLES.get(f"p{q}", 1)
            return float(np.percentile(ms, q)) if n >= need else None

        return cls(p50=pct(50), p90=pct(90), p99=pct(99), mean=float(ms.mean()), n=n)

    def to_dict(self):
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def batched_seconds(runner, call, batches) -> float:
    """Seconds of one timed pass of call over every batch, after one untimed call at each padded
    shape (every new shape costs a first call of its own)."""
    for b in {next(iter(b.values())).shape: b for b in batches}.values():  # input_ids, or pixel_values
        call(b)
    runner.synchronize()
    t0 = time.perf_counter()
    for b in batches:
        call(b)
    runner.synchronize()
    return time.perf_counter() - t0
