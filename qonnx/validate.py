"""A pass/fail gate over a compare run, for CI before edge deployment."""
from dataclasses import dataclass

from .errors import ConfigError


@dataclass
class ValidateConfig:
    run_dir: str
    variant: str
    provider: str = "cpu"
    max_accuracy_drop: float | None = None
    max_perplexity_increase_pct: float | None = None
    min_speedup: float | None = None
    max_size_mb: float | None = None
    min_agreement: float | None = None

    def __post_init__(self):
        limits = [self.max_accuracy_drop, self.max_perplexity_increase_pct, self.min_speedup,
                  self.max_size_mb, self.min_agreement]
        if all(v is None for v in limits):
            raise ConfigError("Give at least one limit: --max-accuracy-drop, --max-perplexity-increase, "
                              "--min-speedup, --max-size-mb or --min-agreement.")


def validate(cfg: ValidateConfig):
    """Return (passed, checks); each check is (name, value, limit, ok)."""
    from .pipeline import load_results

    results = load_results(cfg.run_dir)  # checked: rows with variant/provider/status, settings.kind
    kind = results["settings"]["kind"]
    wrong = {"classification": ("--max-perplexity-increase", cfg.max_perplexity_increase_pct),
             "lm": ("--max-accuracy-drop", cfg.max_accuracy_drop)}.get(kind)
    if wrong and wrong[1] is not None:
        measures = "accuracy" if kind == "classification" else "perplexity"
        raise ConfigError(f"{wrong[0]} does not apply to {cfg.run_dir}: it is a {kind} run, which measures "
                          f"{measures}.")
    rows = [r for r in results["rows"] if r["variant"] == cfg.variant and r["provider"] == cfg.provider]
    if not rows:
        have = sorted({f"{r['variant']}@{r['provider']}" for r in results["rows"]})
        raise ConfigError(f"{cfg.run_dir} has no row {cfg.variant}@{cfg.provider}. Rows: {', '.join(have)}")
    row = rows[0]
    if row["status"] != "ok":
        return False, [("status", row["status"], "ok", False)]
    checks = []

    def add(name, value, limit, upper):
        if limit is None:
            return
        ok = value is not None and (value <= limit if upper else value >= limit)
        checks.append((name, value, limit, ok))

    add("accuracy_drop", row.get("accuracy_drop"), cfg.max_accuracy_drop, True)
    add("perplexity_change_pct", row.get("perplexity_change_pct"), cfg.max_perplexity_increase_pct, True)
    add("speedup", row.get("speedup"), cfg.min_speedup, False)
    add("size_mb", row.get("size_mb"), cfg.max_size_mb, True)
    add("agreement", row.get("agreement"), cfg.min_agreement, False)
    return all(c[3] for c in checks), checks
