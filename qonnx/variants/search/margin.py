"""The margin a perplexity budget is held by: a step is within the budget where its validation increase
plus K standard errors of it is (the standard error from the increase's spread over blocks of the
validation text: ratios.spread, lm_rank.SPREAD_BLOCK)."""
import logging

from qonnx.errors import ConfigError
from qonnx.variants.search import lm_rank

log = logging.getLogger(__name__)

# standard errors of the validation increase a budget is held by unless --perplexity-margin-se says: a
# build chosen on one text is the one whose figure there came out low, and on held-out text one
# standard error held 1 of 3 budgets, two held 2 of 2 (docs/benchmarks.md, the LM budget on Zen 4)
DEFAULT_MARGIN_SE = 2.0


def margin_setting(asked, has_se, tokens) -> dict:
    """The budget's margin ({"margin_se": K}, with "margin_default" and why where not asked for) from
    --perplexity-margin-se (None: not given) and whether the validation text gives a standard error."""
    if asked is None:
        if has_se:
            return {"margin_se": DEFAULT_MARGIN_SE, "margin_default": True}
        why = f"{tokens} validation tokens, one block of {lm_rank.SPREAD_BLOCK}+, give no standard error"
        log.warning("budget search: %s: the budget is judged on the increase alone (a longer --validation text "
                    "gets the default margin of %g standard errors)", why, DEFAULT_MARGIN_SE)
        return {"margin_se": 0.0, "margin_default": True, "no_margin": why}
    if asked and not has_se:
        raise ConfigError(f"--perplexity-margin-se needs the increase's standard error, from blocks of "
                          f"{lm_rank.SPREAD_BLOCK}+ validation tokens: the validation text gives {tokens} "
                          "tokens, one block. Give a longer --validation text, or --perplexity-margin-se 0.")
    return {"margin_se": float(asked)}


def budget_held(step, limit_pct, margin_se=0.0) -> bool:
    """Whether a step's validation increase is within the budget: with a margin, the increase plus
    margin_se of its standard errors (none where the text held one block: the increase alone)."""
    return step["increase_pct"] + margin_se * (step["increase_se_pct"] or 0.0) <= limit_pct + 1e-9
