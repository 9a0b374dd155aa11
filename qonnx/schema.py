"""The one owner of the row format: `Row` (one variant on one provider) and `Results`.

results.json is a public interface: field names are kept from qonnx 0.1, `schema_version` says
which layout a file has, artifact paths are absolute, and `units` names every unit (sizes and
memory are MiB, 2**20 bytes, although the fields end in _mb).
"""
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from qonnx.config.choices import KINDS
from qonnx.errors import DataError
from qonnx.ratios import derive, reference

SCHEMA_VERSION = 2
UNITS = {"size_mb": "MiB", "peak_memory_mb": "MiB", "peak_increment_mb": "MiB", "load_peak_mb": "MiB",
         "model_memory_mb": "MiB", "inference_peak_mb": "MiB", "baseline_mb": "MiB", "weight_memory_mb": "MiB",
         "cuda_peak_mb": "MiB", "device_memory_mb": "MiB",
         "latency_ms": "milliseconds", "ttft_ms": "milliseconds", "load_s": "seconds", "wall_s": "seconds",
         "throughput_per_s": "samples per second", "decode_tokens_per_s": "tokens per second",
         "decode_range": "tokens per second (min, max over passes)",
         "accuracy": "fraction", "top5_accuracy": "fraction", "rouge_l": "F1 (fraction)",
         "exact_match": "fraction", "accuracy_drop": "fraction (reference minus row)",
         "perplexity_change_pct": "percent", "agreement": "fraction",
         "perplexity_change_se_pct": "percentage points: the standard error of perplexity_change_pct, from the "
                                     "change's spread over blocks of 512+ scored tokens (an eighth of the text where "
                                     "less), the same windows as the reference's",
         "perplexity_windows": "per window of the eval text: [negative log-likelihood sum (nats), tokens scored]",
         "speedup": "ratio, same provider and machine: with rounds, the median of the per-round ratios (torch-fp32's "
                    "round time over the row's; LM: the row's decode tokens/s over torch-fp32's); without, torch-fp32's "
                    "p50 batch-1 latency over the row's (classification), the row's decode tokens/s over "
                    "torch-fp32's (LM)",
         "speedup_range": "ratio (min, max of the per-round ratios)",
         "rounds": "per interleaved round: milliseconds for the round's batch-1 requests (classification), "
                   "decode tokens per second (LM); null where that round's figure was not kept",
         "memory_reduction": "ratio: torch-fp32's model_memory_mb over the row's",
         "size_reduction": "ratio: the same runtime's FP32 size_mb over the row's",
         **dict.fromkeys(("cosine_mean", "cosine_p5", "cosine_min"), "cosine"), "topk_overlap": "fraction",
         "similarity_spearman": "Spearman's rho", "label_spearman": "Spearman's rho",
         **dict.fromkeys(("precision", "recall", "f1", "exact_match"), "fraction"),
         "f1_drop": "fraction (reference minus row)"}


@dataclass
class Row:
    variant: str
    provider: str
    runtime: str
    status: str = "ok"              # ok | failed | skipped
    reason: str = ""
    note: str = ""
    artifact: str | None = None     # absolute path of what was measured
    # quality
    accuracy: float | None = None
    perplexity: float | None = None
    scored_tokens: int | None = None
    perplexity_windows: list | None = None  # LM: each window's [negative log-likelihood sum, tokens scored]
    samples: list | None = None     # LM: decoded continuations of the first prompts
    top5_accuracy: float | None = None    # image classifiers with more than 5 classes
    rouge_l: float | None = None          # seq2seq with references: ROUGE-L F1 of the generated texts
    label_spearman: float | None = None   # embeddings with labelled pairs: pair cosines vs the labels
    embedding_dim: int | None = None      # embeddings: the length of one embedding
    precision: float | None = None        # token classification: entity level (seqeval)
    recall: float | None = None
    f1: float | None = None               # token classification (entity F1), QA (SQuAD F1)
    exact_match: float | None = None      # QA: SQuAD exact match
    outputs: str | None = None      # absolute path of the raw outputs (.npy)
    # timing (runners own it; Latency dicts with their sample count n)
    latency_ms: dict | None = None
    ttft_ms: dict | None = None
    throughput_per_s: float | None = None
    decode_tokens_per_s: float | None = None  # LM: median over the generation passes
    decode_range: list | None = None          # [min, max] tokens/s over those passes
    decode_passes: int | None = None
    decode_loop: str | None = None            # which generation loop timed it (runners' decode_loop)
    rounds: list | None = None                # interleaved timing (qonnx.run.rounds): the row's figure per round
    timing: str | None = None                 # how the ratios were timed: interleaved rounds, or why not
    load_s: float | None = None
    wall_s: float | None = None
    # memory (MiB) and size
    baseline_mb: float | None = None
    load_peak_mb: float | None = None
    inference_peak_mb: float | None = None
    peak_memory_mb: float | None = None
    peak_increment_mb: float | None = None   # peak (load included) - baseline
    model_memory_mb: float | None = None     # steady state: inference peak - baseline (the table's)
    memory_note: str | None = None           # where model_memory_mb could not exclude loading
    weight_memory_mb: float | None = None    # qonnx <= 0.3 only (torch: get_memory_footprint)
    cuda_peak_mb: float | None = None        # torch rows: torch's max_memory_allocated
    device_memory_mb: float | None = None    # CUDA rows: GPU memory the worker holds (NVML)
    size_mb: float | None = None
    size_note: str | None = None
    placement: dict | None = None
    shapes: list | None = None               # latency per (batch, length, padding): measure.shapes
    threads: int | None = None               # torch.set_num_threads = ORT intra_op_num_threads of this row
    node: dict | None = None                 # where it ran (--executor ray): host, node id, cores, retries
    environment: dict | None = None          # the machine this row was measured on
    # derived against the reference (report.derive)
    accuracy_drop: float | None = None
    perplexity_change_pct: float | None = None
    perplexity_change_se_pct: float | None = None  # its standard error (ratios.change_se)
    agreement: float | None = None
    max_logit_diff: float | None = None
    agreement_error: str | None = None
    exact_match: float | None = None         # seq2seq: texts generated exactly as the reference row's
    cosine_mean: float | None = None         # embeddings against the reference's (measure.similarity)
    cosine_p5: float | None = None
    cosine_min: float | None = None
    topk_overlap: float | None = None
    similarity_spearman: float | None = None
    f1_drop: float | None = None             # token classification, QA: the reference's f1 minus the row's
    speedup: float | None = None
    speedup_range: list | None = None        # [min, max] of the per-round ratios
    memory_reduction: float | None = None
    size_reduction: float | None = None
    targets: dict | None = None              # compare --targets: {edge target: {verdict, executed, reasons, ...}}
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, source="results.json") -> "Row":
        if not isinstance(data, dict):
            raise DataError(f"{source}: a row is not an object")
        missing = [k for k in ("variant", "provider", "status") if k not in data]
        if missing:
            raise DataError(f"{source}: a row lacks {', '.join(missing)}; is this a qonnx results file?")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names and k != "extra"}
        extra = {**data.get("extra", {}), **{k: v for k, v in data.items() if k not in names}}
        known.setdefault("runtime", "onnx" if str(data["variant"]).startswith("onnx") else "torch")
        return cls(**known, extra=extra)

    def to_dict(self) -> dict:
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "extra"}
        return {**data, **self.extra}

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# What a row field may hold; anything else is bad input (DataError), never a number to trust.
# Number fields: (lowest, highest, lowest itself allowed); a string, bool, inf or NaN never is one.
AT_LEAST_0, FRACTION, ABOVE_0, ANY = (0, None, True), (0, 1, True), (0, None, False), (None, None, True)
NUMBERS = {"accuracy": FRACTION, "agreement": FRACTION, "robust_accuracy": FRACTION, "perplexity": ABOVE_0,
           "threads": ABOVE_0,
           "topk_overlap": FRACTION, "embedding_dim": AT_LEAST_0, "top5_accuracy": FRACTION, "rouge_l": FRACTION,
           **dict.fromkeys(("precision", "recall", "f1", "exact_match"), FRACTION), "f1_drop": ANY,
           **dict.fromkeys(("cosine_mean", "cosine_p5", "cosine_min", "similarity_spearman", "label_spearman"),
                           (-1, 1, True)),  # cosines and correlations
           "accuracy_drop": ANY, "perplexity_change_pct": ANY, "robust_drop": ANY,
           **dict.fromkeys(("scored_tokens", "throughput_per_s", "decode_tokens_per_s", "load_s", "wall_s",
                            "baseline_mb", "load_peak_mb", "inference_peak_mb", "peak_memory_mb",
                            "peak_increment_mb", "model_memory_mb", "decode_passes", "weight_memory_mb",
                            "cuda_peak_mb", "device_memory_mb", "size_mb", "max_logit_diff",
                            "speedup", "memory_reduction", "size_reduction", "perplexity_change_se_pct"), AT_LEAST_0)}
MAY_BE_INFINITE = ("max_logit_diff",)  # measure.deviation writes inf where an output is not finite
TIMINGS = ("latency_ms", "ttft_ms")  # {p50, p90, p99, mean, n}: each a number >= 0, or None
TEXT = ("reason", "note", "artifact", "outputs", "size_note", "agreement_error", "memory_note", "decode_loop",
        "timing")
OBJECTS = ("placement", "node", "environment", "targets")
LISTS = ("samples", "shapes", "decode_range", "rounds", "speedup_range", "perplexity_windows")
STATUSES = ("ok", "failed", "skipped")


def _number(value, where, bounds, infinite=False):
    """`where` says which: 'results.json: size_mb of onnx-fp32@cpu'."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where} is {value!r}, not a number.")
    if math.isnan(value) or (math.isinf(value) and not (infinite and value > 0)):
        raise DataError(f"{where} is {value!r}, not a finite number.")
    low, high, low_ok = bounds
    if high is not None and not low <= value <= high:
        raise DataError(f"{where} is {value!r}; it must be between {low} and {high}.")
    if low is not None and (value < low or (value == low and not low_ok)):
        raise DataError(f"{where} is {value!r}; it must be {'>=' if low_ok else '>'} {low}.")


def check_row(data: dict, source="results.json"):
    """Types and ranges of a row's fields (bad input: DataError)."""
    for key in ("variant", "provider"):
        if not isinstance(data[key], str):
            raise DataError(f"{source}: a row's {key} is {data[key]!r}, not text.")
    where = f"{source}: {{}} of {data['variant']}@{data['provider']}"
    if data["status"] not in STATUSES:
        raise DataError(f"{where.format('status')} is {data['status']!r}; it must be {', '.join(STATUSES[:-1])} "
                        f"or {STATUSES[-1]}.")
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise DataError(f"{where.format('extra')} is {extra!r}, not an object.")
    for key, value in {**extra, **data}.items():
        if value is None:
            continue
        if key in NUMBERS:
            _number(value, where.format(key), NUMBERS[key], key in MAY_BE_INFINITE)
        elif key in TIMINGS:
            if not isinstance(value, dict):
                raise DataError(f"{where.format(key)} is {value!r}, not an object.")
            for k, v in value.items():
                if v is not None:
                    _number(v, where.format(f"{key}.{k}"), AT_LEAST_0)
        elif key in TEXT + ("runtime",) and not isinstance(value, str):
            raise DataError(f"{where.format(key)} is {value!r}, not text.")
        elif key in OBJECTS and not isinstance(value, dict):
            raise DataError(f"{where.format(key)} is {value!r}, not an object.")
        elif key in LISTS and not isinstance(value, list):
            raise DataError(f"{where.format(key)} is {value!r}, not a list.")
        if key == "perplexity_windows":  # a standard error is taken of these: [nll sum >= 0, tokens > 0] each
            for i, w in enumerate(value):
                if not isinstance(w, list) or len(w) != 2:
                    raise DataError(f"{where.format(f'perplexity_windows[{i}]')} is {w!r}, not [nll sum, tokens].")
                _number(w[0], where.format(f"perplexity_windows[{i}][0]"), AT_LEAST_0)
                _number(w[1], where.format(f"perplexity_windows[{i}][1]"), ABOVE_0)
        if key == "rounds":  # ratios are taken of these: each a positive number, or null
            for i, v in enumerate(value):
                if v is not None:
                    _number(v, where.format(f"rounds[{i}]"), ABOVE_0)


def load(data: dict, source="results.json") -> dict:
    """Check a results document (layout, schema version, the types and ranges of every row field)
    and return it with typed rows under 'rows'."""
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise DataError(f"{source} has no list of rows; is this a qonnx results file?")
    if not isinstance(data.get("settings"), dict) or "kind" not in data["settings"]:
        raise DataError(f"{source} has no settings.kind; is this a qonnx results file?")
    version = data.get("schema_version", 1)  # files from before schema_version are layout 1
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise DataError(f"{source} has schema_version {version!r}; this qonnx reads schema versions 1 to "
                        f"{SCHEMA_VERSION} (a newer file needs a newer qonnx).")
    if data["settings"]["kind"] not in KINDS:
        raise DataError(f"{source} is a {data['settings']['kind']!r} run; qonnx reads {' and '.join(KINDS)} runs.")
    for r in data["rows"]:  # a row that is no object, or lacks its keys: from_dict says so
        if isinstance(r, dict) and all(k in r for k in ("variant", "provider", "status")):
            check_row(r, source)
    return {**data, "rows": [Row.from_dict(r, source) for r in data["rows"]]}


def dump(results: dict) -> dict:
    return {"schema_version": SCHEMA_VERSION, "units": UNITS,
            **{k: v for k, v in results.items() if k not in ("rows", "schema_version", "units")},
            "rows": [r.to_dict() for r in results["rows"]]}


def _same(a, b):
    if isinstance(a, list) or isinstance(b, list):  # a range: [min, max]
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _shown(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return "none" if value is None else format(value, ".4g") if isinstance(value, (int, float)) else repr(value)


def rederive(results: dict, source="results.json") -> list:
    """Work the reference and the DERIVED fields of every ok row out again, in place; returns
    (row key "variant@provider", sentence) for each stored value that disagreed (the recomputed
    value is the one kept)."""
    rows, kind = results["rows"], results["settings"]["kind"]
    ref, changed = reference(rows), []
    results["reference"] = f"{ref.variant}@{ref.provider}" if ref else None  # derived too
    for row in rows:
        if not row.ok:
            continue
        for name, value in derive(row, rows, kind, ref).items():
            stored = getattr(row, name)
            if not _same(stored, value):
                shown = "none (nothing to derive it from)" if value is None else _shown(value)
                key = f"{row.variant}@{row.provider}"
                changed.append((key, f"{name} of {key}: {source} says {_shown(stored)}, the measured fields "
                                     f"give {shown}; using the recomputed value."))
            setattr(row, name, value)
    return changed


def read_checked(run_dir) -> tuple[dict, list]:
    """(the results document of a compare run folder, checked and its derived fields recomputed;
    (row key, sentence) for each stored derived value that disagreed with its recomputed one)."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise DataError(f"{run_dir} holds no results.json; run `qonnx compare -o {run_dir}` first.")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON: {e}") from None
    results = load(doc, str(path))
    changed = rederive(results, path.name)
    return dump(results), changed


def read(run_dir) -> dict:
    """The results document of a compare run folder, checked, its derived fields recomputed from the
    measured ones (report, validate, ui and sweep read it)."""
    return read_checked(run_dir)[0]
