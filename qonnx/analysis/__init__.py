"""Analyses that explain a variant beyond one compare table: per-layer sensitivity (sensitivity.py)
and robustness to typos (robustness.py). They read models and call run.compare; each writes its
own files (the *_report modules)."""
