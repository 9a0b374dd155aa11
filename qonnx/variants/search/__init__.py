"""Budget searches: how a method builds within a quality budget. budget.py keeps the most damaging
units FP32 (--max-accuracy-drop, int8-static and int8-dynamic); lm_budget.py chooses each LM
layer's weight format (--max-perplexity-increase, int4-weight) from its KL per format (lm_rank.py),
the kernel table timed on this CPU (kernels.py) and the pure choice (chooser.py), building with
mixed.py; describe.py says a search's record in one sentence."""
