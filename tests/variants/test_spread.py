"""The spread of a perplexity increase along the validation text (qonnx.ratios.spread): blocks of
windows, each block's increase, the standard error of the whole. Pure arithmetic, no model."""
import numpy as np
import pytest

from qonnx.ratios import spread
from qonnx.variants.search.describe import se


def _windows(rng, n, first=511, rest=256):
    """Per-window (nll sum, tokens) of a build and of FP32, as lm_rank.perplexity gives them."""
    counts = [first] + [rest] * (n - 1)
    ref = [(float(rng.uniform(3, 4) * c), c) for c in counts]
    build = [(a + float(rng.normal(0.05, 0.03) * c), c) for a, c in ref]
    return build, ref


def test_equal_blocks_give_the_textbook_standard_error_and_the_whole_increase():
    rng = np.random.default_rng(0)
    build, ref = _windows(rng, 32, first=256)  # 32 windows of 256: 4 blocks of exactly 2,048
    got = spread(build, ref, 2048)
    d = np.array([sum(b[0] - r[0] for b, r in zip(build[i:i + 8], ref[i:i + 8])) / 2048 for i in range(0, 32, 8)])
    assert got["blocks_pct"] == pytest.approx(100 * np.expm1(d))
    mean = d.mean()
    assert got["se_pct"] == pytest.approx(100 * np.exp(mean) * d.std(ddof=1) / 2)
    # the blocks together give exactly the ratio of the two perplexities
    total = sum(b[0] for b in build) - sum(r[0] for r in ref)
    assert 100 * np.expm1(total / sum(c for _, c in ref)) == pytest.approx(100 * np.expm1(mean))


def test_a_short_tail_joins_the_last_block_a_long_one_stands_alone_and_one_block_has_no_error():
    rng = np.random.default_rng(1)
    build, ref = _windows(rng, 9)  # 511 + 8 x 256 = 2,559: one block of 2,303 and a tail of 256 joining it
    got = spread(build, ref, 2048)
    assert len(got["blocks_pct"]) == 1 and got["se_pct"] is None
    assert se({"increase_se_pct": None}, 2048) == ""
    build, ref = _windows(rng, 13)  # 511 + 12 x 256 = 3,583: 2,303 and a tail of 1,280 (over half a block)
    got = spread(build, ref, 2048)
    assert len(got["blocks_pct"]) == 2 and got["se_pct"] > 0
    step = {"increase_se_pct": got["se_pct"], "block_increases_pct": got["blocks_pct"]}
    assert se(step, 2048) == f" (standard error {got['se_pct']:.2f} points over 2 blocks of 2048+ tokens)"
