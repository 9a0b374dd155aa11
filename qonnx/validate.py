"""A pass/fail gate over a compare run, for CI before edge deployment.

results.json is read through the schema (schema.read_checked): a field of the wrong type or out
of its range, or a schema version this qonnx does not know, is bad input; the derived figures the
gate checks (accuracy_drop, perplexity_change_pct, speedup) are worked out again from the measured
ones and the reference row, and where the file says otherwise the gate checks the recomputed
value and says so."""
import math
from dataclasses import dataclass

from qonnx.errors import ConfigError, DataError
from qonnx.report.summary import NEAR, near_budget
from qonnx.schema import read_checked as load_results

# each limit's flag: a limit is a finite number >= 0
FLAGS = {"max_accuracy_drop": "--max-accuracy-drop", "max_perplexity_increase_pct": "--max-perplexity-increase",
         "min_speedup": "--min-speedup", "max_size_mb": "--max-size-mb", "min_agreement": "--min-agreement"}


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
        limits = {flag: getattr(self, name) for name, flag in FLAGS.items()}
        if all(v is None for v in limits.values()):
            raise ConfigError("Give at least one limit: --max-accuracy-drop, --max-perplexity-increase, "
                              "--min-speedup, --max-size-mb or --min-agreement.")
        for flag, v in limits.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or v < 0):
                raise ConfigError(f"{flag} must be a finite number >= 0, not {v}.")


# the quality limit of each kind of run; a limit of another kind has nothing to check
QUALITY = {"classification": ("accuracy", "--max-accuracy-drop", "max_accuracy_drop"),
           "lm": ("perplexity", "--max-perplexity-increase", "max_perplexity_increase_pct"),
           "embeddings": ("top-10 overlap", "--max-accuracy-drop", "max_accuracy_drop"),
           "tokens": ("entity F1", "--max-accuracy-drop", "max_accuracy_drop"),
           "qa": ("SQuAD F1", "--max-accuracy-drop", "max_accuracy_drop"),
           "images": ("top-1 accuracy", "--max-accuracy-drop", "max_accuracy_drop"),
           "seq2seq": ("exact match with the reference's text", "--max-accuracy-drop", "max_accuracy_drop")}
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


def near_limit(row, limit) -> list:
    """A note where the row's perplexity change is within summary.NEAR standard errors of the limit:
    the gate reads the figure as measured, and says that other text may put it on the other side."""
    if not near_budget(row, limit):
        return []
    change, se = row["perplexity_change_pct"], row["perplexity_change_se_pct"]
    return [f"perplexity_change_pct {change:+.2f} % is within {NEAR:g} standard errors ({se:.2f} points each) of "
            f"the limit {limit:g} %: on other text it may fall on the limit's other side (a compare with more "
            "--eval-tokens narrows it)."]


def validate(cfg: ValidateConfig):
    """Return (passed, checks, notes); each check is (name, value, limit, ok); each note says where
    results.json held a derived figure of the gated row that its measured fields do not give (the
    check used the recomputed one).

    Bad input (ConfigError/DataError, exit 1) and a failed gate (exit 2) stay apart: a limit the
    run cannot measure, such as --max-perplexity-increase on a classification run, is bad input."""
    results, changed = load_results(cfg.run_dir)
    kind, all_rows = _checked(results, cfg.run_dir)
    notes = [line for key, line in changed if key == f"{cfg.variant}@{cfg.provider}"]
    for _, flag, attr in QUALITY.values():
        if attr != QUALITY[kind][2] and getattr(cfg, attr) is not None:
            raise ConfigError(f"{flag} does not apply to {cfg.run_dir}: it is a {kind} run, which measures "
                              f"{QUALITY[kind][0]}.")
    rows = [r for r in all_rows if r["variant"] == cfg.variant and r["provider"] == cfg.provider]
    if not rows:
        have = sorted({f"{r['variant']}@{r['provider']}" for r in all_rows})
        raise ConfigError(f"{cfg.run_dir} has no row {cfg.variant}@{cfg.provider}. Rows: {', '.join(have)}")
    row = rows[0]
    if row["status"] != "ok":
        return False, [("status", row["status"], "ok", False)], notes
    checks = []

    def add(name, value, limit, upper):
        if limit is None:
            return
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DataError(f"{cfg.run_dir}/results.json: {name} of {cfg.variant}@{cfg.provider} is "
                            f"{value!r}, not a number.")
        ok = value is not None and (value <= limit if upper else value >= limit)
        checks.append((name, value, limit, ok))

    if kind == "embeddings":  # its --max-accuracy-drop limits 1 - top-10 overlap with the reference
        overlap = row.get("topk_overlap")
        add("topk_drop (1 - topk_overlap)", None if overlap is None else 1 - overlap, cfg.max_accuracy_drop, True)
    elif kind in ("tokens", "qa"):  # its --max-accuracy-drop limits the f1 drop against the reference
        add("f1_drop", row.get("f1_drop"), cfg.max_accuracy_drop, True)
    elif kind == "seq2seq":  # its --max-accuracy-drop limits 1 - exact match with the reference's text
        match = row.get("exact_match")
        add("exact_match_drop (1 - exact_match)", None if match is None else 1 - match, cfg.max_accuracy_drop, True)
    else:
        add("accuracy_drop", row.get("accuracy_drop"), cfg.max_accuracy_drop, True)
    add("perplexity_change_pct", row.get("perplexity_change_pct"), cfg.max_perplexity_increase_pct, True)
    notes += near_limit(row, cfg.max_perplexity_increase_pct)
    add("speedup", row.get("speedup"), cfg.min_speedup, False)
    add("size_mb", row.get("size_mb"), cfg.max_size_mb, True)
    add("agreement", row.get("agreement"), cfg.min_agreement, False)
    return all(c[3] for c in checks), checks, notes
