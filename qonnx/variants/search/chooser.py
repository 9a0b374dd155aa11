"""Which weight format each unit gets: the LM budget search's choice over formats, pure (no I/O).

Each unit (a transformer layer, the head) has, per format (4-bit/32, 4-bit/128, 8-bit/128, float),
a measured cost (KL divergence from FP32 with that unit in that format) and a measured time (its
MatMuls' kernels on this CPU, from kernels.py). A unit starts at its safest format (the lowest KL)
and moves to faster ones along its lower convex hull of (time, KL): a format that is slower than a
safer one is never taken (on a CPU where 4-bit/128 runs slower than 8-bit/128, 8-bit wins), and a
format whose KL per millisecond saved is beaten by a faster one is skipped. All units' moves are
taken in one order, the least KL per millisecond saved first (greedy, as a knapsack by ratio): the
first n moves are the n-th assignment on the way from the safest to the fastest build, whose
perplexity the search then checks on the validation text (bisection over n).
"""


def frontier(kl: dict, ms: dict) -> list:
    """One unit's formats from its safest (lowest KL; then fastest) to its fastest, each strictly
    faster than the one before and at the least KL per millisecond saved from it: [(format,
    KL per ms saved from the previous; None for the first)]."""
    fmts = [f for f in kl if f in ms]
    if not fmts:
        raise ValueError("a unit needs at least one format with both a KL and a time")
    here = min(fmts, key=lambda f: (kl[f], ms[f]))
    path = [(here, None)]
    while True:
        faster = [f for f in fmts if ms[f] < ms[here]]
        if not faster:
            return path
        slope = {f: (kl[f] - kl[here]) / (ms[here] - ms[f]) for f in faster}
        here = min(faster, key=lambda f: (slope[f], ms[f]))  # ties: the faster
        path.append((here, slope[here]))


def moves(kl: dict, ms: dict) -> tuple:
    """(start, moves): start {unit: its safest format}; moves [(unit, format, KL per ms saved)] in
    the order the search takes them (the least KL per millisecond saved first; within a unit its
    frontier's order). kl and ms: {unit: {format: value}}."""
    start, order = {}, []
    for i, unit in enumerate(kl):
        path = frontier(kl[unit], ms[unit])
        start[unit] = path[0][0]
        floor = float("-inf")
        for j, (fmt, slope) in enumerate(path[1:]):
            floor = max(floor, slope)  # a unit's moves keep their order whatever rounding does
            order.append(((floor, i, j), (unit, fmt, slope)))
    order.sort(key=lambda o: o[0])
    return start, [m for _, m in order]


def assignment(start: dict, taken: list) -> dict:
    """{unit: format} after the moves in `taken` (a prefix of moves()'s list)."""
    out = dict(start)
    for unit, fmt, _ in taken:
        out[unit] = fmt
    return out


def predicted_ms(ms: dict, chosen: dict) -> float:
    """The MatMul time of one decode step (ms) with each unit in its chosen format."""
    return sum(ms[u][f] for u, f in chosen.items())
