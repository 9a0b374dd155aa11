"""Budget searches: how a method builds within a quality budget. budget.py keeps the most damaging
units FP32 (--max-accuracy-drop, int8-static and int8-dynamic); lm_budget.py with mixed.py puts
the least sensitive layers of an LM at 4 bits and the rest at 8 (--max-perplexity-increase,
int4-weight); describe.py says a search's record in one sentence."""
