"""The one owner of the row format: `Row` (one variant on one provider) and `Results`.

results.json is a public interface: field names are kept from qonnx 0.1, `schema_version` says
which layout a file has, artifact paths are absolute, and `units` names every unit (sizes and
memory are MiB, 2**20 bytes, although the fields end in _mb).
"""
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from qonnx.errors import DataError

SCHEMA_VERSION = 2
UNITS = {"size_mb": "MiB", "peak_memory_mb": "MiB", "peak_increment_mb": "MiB", "load_peak_mb": "MiB",
         "model_memory_mb": "MiB", "inference_peak_mb": "MiB", "baseline_mb": "MiB", "weight_memory_mb": "MiB", "cuda_peak_mb": "MiB",
         "latency_ms": "milliseconds", "ttft_ms": "milliseconds", "load_s": "seconds", "wall_s": "seconds",
         "throughput_per_s": "samples per second", "decode_tokens_per_s": "tokens per second",
         "decode_range": "tokens per second (min, max over passes)",
         "accuracy": "fraction", "accuracy_drop": "fraction (reference minus row)",
         "perplexity_change_pct": "percent", "agreement": "fraction",
         "speedup": "ratio, same provider: torch-fp32's p50 batch-1 latency over the row's (classification); "
                    "the row's decode tokens/s over torch-fp32's (LM)",
         "memory_reduction": "ratio: torch-fp32's model_memory_mb over the row's",
         "size_reduction": "ratio: the same runtime's FP32 size_mb over the row's"}


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
    samples: list | None = None     # LM: decoded continuations of the first prompts
    outputs: str | None = None      # absolute path of the raw outputs (.npy)
    # timing (runners own it; Latency dicts with their sample count n)
    latency_ms: dict | None = None
    ttft_ms: dict | None = None
    throughput_per_s: float | None = None
    decode_tokens_per_s: float | None = None  # LM: median over the generation passes
    decode_range: list | None = None          # [min, max] tokens/s over those passes
    decode_passes: int | None = None
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
    cuda_peak_mb: float | None = None
    size_mb: float | None = None
    size_note: str | None = None
    placement: dict | None = None
    shapes: list | None = None               # latency per (batch, length, padding): measure.shapes
    node: dict | None = None                 # where it ran (--executor ray): host, node id, retries
    environment: dict | None = None          # the machine this row was measured on
    # derived against the reference (report.derive)
    accuracy_drop: float | None = None
    perplexity_change_pct: float | None = None
    agreement: float | None = None
    max_logit_diff: float | None = None
    agreement_error: str | None = None
    speedup: float | None = None
    memory_reduction: float | None = None
    size_reduction: float | None = None
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


def load(data: dict, source="results.json") -> dict:
    """Check a results document and return it with typed rows under 'rows'."""
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise DataError(f"{source} has no list of rows; is this a qonnx results file?")
    if not isinstance(data.get("settings"), dict) or "kind" not in data["settings"]:
        raise DataError(f"{source} has no settings.kind; is this a qonnx results file?")
    return {**data, "rows": [Row.from_dict(r, source) for r in data["rows"]]}


def dump(results: dict) -> dict:
    return {"schema_version": SCHEMA_VERSION, "units": UNITS,
            **{k: v for k, v in results.items() if k not in ("rows", "schema_version", "units")},
            "rows": [r.to_dict() for r in results["rows"]]}


def read(run_dir) -> dict:
    """The results document of a compare run folder, checked (report, validate, ui, sweep read it)."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise DataError(f"{run_dir} holds no results.json; run `qonnx compare -o {run_dir}` first.")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON: {e}") from None
    return dump(load(doc, str(path)))
