"""A pass/fail gate over a compare run, for CI before edge deployment."""
from dataclasses import dataclass

from qonnx.errors import ConfigError, DataError
from qonnx.schema import read as load_results


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


# the quality limit of each kind of run; a limit of another kind has nothing to check
QUALITY = {"classification": ("accuracy", "--max-accuracy-drop", "max_accuracy_drop"),
           "lm": ("perplexity", "--max-perplexity-increase", "max_perplexity_increase_pct")}
ROW_KEYS = ("variant", "provider", "status")


def _checked(results, run_dir):
    """(kind, rows) of a loaded results document; a file of another shape is a DataError, never
    a KeyError (load_results checks the same today; this gate does not rely on it)."""
    source = f"{run_dir}/results.json"
    settings = results.get("settings") if isinstance(results, dict) else None
    kind = settings.get("kind") if isinstance(settings, dict) else None
    if kind is None:
        raise DataError(f"{source} has no settings.kind; is this a qonnx results file?")
    if kind not in QUALITY:
        raise DataError(f"{source} is a '{kind}' run; qonnx validate knows {' and '.join(QUALITY)} runs.")
    rows = results.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError(f"{source} has no list of rows; is this a qonnx results file?")
    missing = [k for k in ROW_KEYS if any(k not in r for r in rows)]
    if missing:
        raise DataError(f"{source}: a row lacks {', '.join(missing)}; is this a qonnx results file?")
    return kind, rows


def validate(cfg: ValidateConfig):
    """Return (passed, checks); each check is (name, value, limit, ok).

    Bad input (ConfigError/DataError, exit 1) and a failed gate (exit 2) stay apart: a limit the
    run cannot measure, such as --max-perplexity-increase on a classification run, is bad input."""
    kind, all_rows = _checked(load_results(cfg.run_dir), cfg.run_dir)
    for other, (_, flag, attr) in QUALITY.items():
        if other != kind and getattr(cfg, attr) is not None:
            raise ConfigError(f"{flag} does not apply to {cfg.run_dir}: it is a {kind} run, which measures "
                              f"{QUALITY[kind][0]}.")
    rows = [r for r in all_rows if r["variant"] == cfg.variant and r["provider"] == cfg.provider]
    if not rows:
        have = sorted({f"{r['variant']}@{r['provider']}" for r in all_rows})
        raise ConfigError(f"{cfg.run_dir} has no row {cfg.variant}@{cfg.provider}. Rows: {', '.join(have)}")
    row = rows[0]
    if row["status"] != "ok":
        return False, [("status", row["status"], "ok", False)]
    checks = []

    def add(name, value, limit, upper):
        if limit is None:
            return
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DataError(f"{cfg.run_dir}/results.json: {name} of {cfg.variant}@{cfg.provider} is "
                            f"{value!r}, not a number.")
        ok = value is not None and (value <= limit if upper else value >= limit)
        checks.append((name, value, limit, ok))

    add("accuracy_drop", row.get("accuracy_drop"), cfg.max_accuracy_drop, True)
    add("perplexity_change_pct", row.get("perplexity_change_pct"), cfg.max_perplexity_increase_pct, True)
    add("speedup", row.get("speedup"), cfg.min_speedup, False)
    add("size_mb", row.get("size_mb"), cfg.max_size_mb, True)
    add("agreement", row.get("agreement"), cfg.min_agreement, False)
    return all(c[3] for c in checks), checks
