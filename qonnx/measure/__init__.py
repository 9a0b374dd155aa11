"""Measurements: latency percentiles, process memory, sizes, output deviation."""
