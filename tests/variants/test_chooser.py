"""The LM budget's choice over weight formats (qonnx.variants.search.chooser), by hand-made costs
and times: pure functions, no model."""
import pytest

from qonnx.variants.search import chooser


def test_a_format_slower_than_a_safer_one_is_never_chosen():
    """On a CPU where 4-bit/128 runs slower than 8-bit/128, 8-bit/128 is the faster and the safer:
    the unit goes float -> 8-bit/128 -> 4-bit/32 and never to 4-bit/128."""
    kl = {"float": 0.0, "8-bit/128": 0.01, "4-bit/128": 0.10, "4-bit/32": 0.12}
    ms = {"float": 3.0, "8-bit/128": 1.0, "4-bit/128": 1.2, "4-bit/32": 0.9}
    path = chooser.frontier(kl, ms)
    assert [f for f, _ in path] == ["float", "8-bit/128", "4-bit/32"]
    assert path[1][1] == pytest.approx(0.01 / 2.0) and path[2][1] == pytest.approx(0.11 / 0.1)


def test_where_4_bit_128_is_fastest_it_is_the_end_and_a_steep_step_is_skipped():
    """4-bit/32 costs a lot for little time: the hull goes from 8-bit straight to 4-bit/128, which
    saves more per unit of KL."""
    kl = {"float": 0.0, "8-bit/128": 0.01, "4-bit/32": 0.08, "4-bit/128": 0.09}
    ms = {"float": 3.0, "8-bit/128": 1.0, "4-bit/32": 0.95, "4-bit/128": 0.5}
    assert [f for f, _ in chooser.frontier(kl, ms)] == ["float", "8-bit/128", "4-bit/128"]


def test_moves_take_the_least_kl_per_ms_first_across_units():
    kl = {"head": {"float": 0.0, "8-bit/128": 0.001, "4-bit/128": 0.5},
          "layer 0": {"float": 0.0, "8-bit/128": 0.002, "4-bit/128": 0.01},
          "layer 1": {"float": 0.0, "8-bit/128": 0.003, "4-bit/128": 0.2}}
    ms = {u: {"float": 4.0, "8-bit/128": 1.0, "4-bit/128": 0.6} for u in kl}
    start, moves = chooser.moves(kl, ms)
    assert start == dict.fromkeys(kl, "float")
    order = [(u, f) for u, f, _ in moves]
    # every unit to 8 bits first (cheap per ms), then layer 0 (0.008 KL for 0.4 ms), layer 1, head
    assert order == [("head", "8-bit/128"), ("layer 0", "8-bit/128"), ("layer 1", "8-bit/128"),
                     ("layer 0", "4-bit/128"), ("layer 1", "4-bit/128"), ("head", "4-bit/128")]
    assert [s for *_, s in moves] == sorted(s for *_, s in moves)
    # the n-th assignment: the first n moves; the predicted time falls with every move
    times = [chooser.predicted_ms(ms, chooser.assignment(start, moves[:n])) for n in range(len(moves) + 1)]
    assert times[0] == pytest.approx(12.0) and times[-1] == pytest.approx(1.8)
    assert all(a > b for a, b in zip(times, times[1:]))
    assert chooser.assignment(start, moves[:4]) == {"head": "8-bit/128", "layer 0": "4-bit/128",
                                                    "layer 1": "8-bit/128"}


def test_a_unit_whose_faster_format_is_also_more_accurate_starts_there():
    """Noise can make a faster format measure a lower KL: it is then the unit's safe start (nothing
    slower is worth its time), and a format with no time is not a candidate."""
    start, moves = chooser.moves({"u": {"float": 0.02, "8-bit/128": 0.01, "4-bit/128": 0.3}},
                                 {"u": {"float": 3.0, "8-bit/128": 1.0}})
    assert start == {"u": "8-bit/128"} and moves == []
    with pytest.raises(ValueError):
        chooser.frontier({"float": 0.0}, {"8-bit/128": 1.0})
