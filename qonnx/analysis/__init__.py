"""Analyses that explain a variant beyond one compare table: robustness to typos (robustness.py,
with its seeded noise in noise.py) and, later, per-layer sensitivity."""
