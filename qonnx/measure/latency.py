"""Timing: warm-up, then one perf_counter pair around each call, reported as percentiles."""
import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Latency:
    p50: float
    p90: float
    p99: float
    mean: float
    n: int

    @classmethod
    def from_values(cls, seconds):
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        return cls(p50=float(np.percentile(ms, 50)), p90=float(np.percentile(ms, 90)),
                   p99=float(np.percentile(ms, 99)), mean=float(ms.mean()), n=len(ms))

    def to_dict(self):
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def time_calls(fn, inputs, warmup=5, sync=lambda: None):
    """Call fn(x) for each x after `warmup` untimed calls; return the list of seconds."""
    for x in inputs[:warmup] or inputs[:1]:
        fn(x)
    sync()
    out = []
    for x in inputs:
        t0 = time.perf_counter()
        fn(x)
        sync()
        out.append(time.perf_counter() - t0)
    return out
