"""One dataclass per operation, validated when built, with messages that say how to fix it."""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, unknown

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
INT4_ALGORITHMS = ("rtn", "hqq")
INT8_SCHEMES = ("auto", "fused", "blockwise")
EXPORTERS = ("optimum", "genai")


@dataclass
class ExportConfig:
    model: str
    output: Path | None = None
    task: str | None = None
    opset: int | None = None
    atol: float = 1e-3
    overwrite: bool = False
    exporter: str = "optimum"    # or genai: onnxruntime-genai's model builder (decoder LMs)
    precision: str = "fp32"      # genai: fp32 | int4 | int4-mixed | int8 | int4-budget (qonnx.genai.PRECISIONS)

    def __post_init__(self):
        if self.exporter not in EXPORTERS:
            raise unknown("exporter", self.exporter, EXPORTERS)
        if self.exporter == "genai":
            from .genai import PRECISIONS

            if self.precision not in PRECISIONS:
                raise unknown("genai precision", self.precision, PRECISIONS)
            if self.opset is not None:
                raise ConfigError("--opset applies to the optimum exporter; the genai builder picks its own.")
        elif self.precision != "fp32":
            raise ConfigError("--precision is for --exporter genai; quantize an optimum export with qonnx quantize.")
        if self.opset is not None and not 11 <= self.opset <= 23:
            raise ConfigError(f"--opset must be between 11 and 23, got {self.opset}")
        if self.atol <= 0:
            raise ConfigError(f"--atol must be positive, got {self.atol}")


@dataclass(kw_only=True)
class Budget:
    """The quality budgets quantize and compare share."""
    # an accuracy budget (int8-static, int8-dynamic on classifiers): keep units FP32 until the drop
    # on the validation split is within it (qonnx.analysis.budget)
    max_accuracy_drop: float | None = None
    validation: str | None = None          # [the demo's train split; LMs: its validation text]
    validation_text_column: str = "text"
    validation_label_column: str = "label"
    validation_samples: int = 300
    search_time_limit: float | None = None  # seconds the accuracy-budget search may take [no limit]
    # a perplexity budget (int4-weight on LMs), in percent: mixed 4/8-bit MatMulNBits searched
    # until validation perplexity is within it (qonnx.analysis.lm_budget)
    max_perplexity_increase: float | None = None

    def check_budget(self, others):
        """others: ((path, flag), ...): data the validation rows must not be."""
        if self.max_accuracy_drop is not None:
            if not 0 <= self.max_accuracy_drop < 1:
                raise ConfigError(f"--max-accuracy-drop is a fraction (0.005 = half a point), got {self.max_accuracy_drop}")
            if self.validation_samples < 1:
                raise ConfigError(f"--validation-samples must be at least 1, got {self.validation_samples}")
        if self.search_time_limit is not None and self.search_time_limit <= 0:
            raise ConfigError(f"--search-time-limit is in seconds, more than 0, got {self.search_time_limit}")
        if self.max_perplexity_increase is not None and not 0 <= self.max_perplexity_increase <= 1000:
            raise ConfigError(f"--max-perplexity-increase is in percent (5 = +5 %), got {self.max_perplexity_increase}")
        if self.max_accuracy_drop is not None or self.max_perplexity_increase is not None:
            for other, what in others:
                if self.validation and other and _same_file(self.validation, other):
                    raise ConfigError(f"--validation is the {what} data; the budget must be checked on other data.")


@dataclass
class QuantizeConfig(Budget):
    onnx_dir: Path
    method: str
    output: Path | None = None
    calibration: str | None = None
    calibration_method: str = "minmax"
    num_samples: int = 128
    per_channel: bool | None = None  # None: the method's default (see each method)
    static_ffn_out: str = "dynamic"  # int8-static: FFN output projections dynamic INT8, or static
    seed: int = 0
    block_size: int = 32
    algorithm: str = "hqq"
    text_column: str | None = None  # calibration file's text column [text]
    int8_scheme: str = "auto"
    overwrite: bool = False

    def __post_init__(self):
        from .variants import METHODS

        self.onnx_dir = Path(self.onnx_dir)
        if self.method not in METHODS:
            raise unknown("quantization method", self.method, METHODS)
        if self.calibration_method not in CALIBRATION_METHODS:
            raise unknown("calibration method", self.calibration_method, CALIBRATION_METHODS)
        if self.static_ffn_out not in ("dynamic", "static"):
            raise unknown("--static-ffn-out", self.static_ffn_out, ("dynamic", "static"))
        if self.algorithm not in INT4_ALGORITHMS:
            raise unknown("INT4 algorithm", self.algorithm, INT4_ALGORITHMS)
        if self.int8_scheme not in INT8_SCHEMES:
            raise unknown("INT8 scheme", self.int8_scheme, INT8_SCHEMES)
        if self.num_samples < 1:
            raise ConfigError(f"--num-samples must be at least 1, got {self.num_samples}")
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ConfigError(f"--block-size must be a power of two >= 16, got {self.block_size}")
        if self.max_accuracy_drop is not None and self.method not in ("int8-static", "int8-dynamic"):
            raise ConfigError(f"--max-accuracy-drop applies to int8-static and int8-dynamic, not {self.method}")
        if self.max_perplexity_increase is not None and self.method != "int4-weight":
            raise ConfigError(f"--max-perplexity-increase applies to int4-weight, not {self.method}")
        self.check_budget(((self.calibration, "--calibration"),))
        if self.output is not None:
            self.output = Path(self.output)


@dataclass
class CompareConfig(Budget):
    model: str = "demo:sentiment"
    output: Path | None = None  # [$QONNX_ARTIFACTS/runs/NAME-TIME]
    dataset: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    dataset_config: str | None = None
    split: str = "test"
    variants: list = field(default_factory=list)
    providers: list = field(default_factory=lambda: ["cpu"])
    task: str | None = None
    threads: int | None = None
    max_samples: int | None = 500
    batch_size: int = 16
    latency_samples: int = 100
    warmup: int = 5
    seed: int = 0
    resume: bool = False
    calibration: str | None = None
    calibration_method: str = "minmax"
    calibration_text_column: str | None = None  # [text for demo splits, else --text-column]
    num_calibration_samples: int = 128
    max_new_tokens: int = 32
    eval_tokens: int = 4096
    window: int = 512
    stride: int = 256
    robustness_rate: float | None = None  # also measure accuracy with typos in this fraction of words
    # latency/throughput curves: every (batch size, input length) measured in each row's worker
    batch_sizes: list = field(default_factory=list)
    sequence_lengths: list = field(default_factory=list)
    executor: str = "local"               # local | ray (qonnx.bench.ray_executor)
    address: str | None = None            # ray: auto, host:port or ray://host:port [a local cluster]
    concurrent_rows: bool = False         # rows measured at the same time on one machine (they share its cores)
    mlflow: str | None = None             # tracking URI: every row becomes an MLflow run

    def __post_init__(self):
        from .runners.ort import PROVIDERS

        if self.output is not None:
            self.output = Path(self.output)
        for p in self.providers:
            if p not in PROVIDERS:
                raise unknown("provider", p, PROVIDERS)
        for name, v, least in (("--batch-size", self.batch_size, 1), ("--latency-samples", self.latency_samples, 1),
                               ("--max-new-tokens", self.max_new_tokens, 2), ("--window", self.window, 2),
                               ("--eval-tokens", self.eval_tokens, 2), ("--warmup", self.warmup, 1),
                               ("--num-calibration-samples", self.num_calibration_samples, 1),
                               ("--threads", 1 if self.threads is None else self.threads, 1)):
            if v < least:
                raise ConfigError(f"{name} must be at least {least}, got {v}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"--max-samples must be at least 1, got {self.max_samples}")
        if not 0 < self.stride <= self.window:
            raise ConfigError(f"--stride must be between 1 and --window ({self.window}), got {self.stride}")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise unknown("calibration method", self.calibration_method, CALIBRATION_METHODS)
        if self.variants:
            from .variants import VARIANTS

            for v in self.variants:
                if v not in VARIANTS:
                    raise unknown("variant", v, VARIANTS)
        if self.calibration and self.dataset and _same_file(self.calibration, self.dataset):
            raise ConfigError("--calibration is the evaluation set (--dataset); calibrating on the data you "
                              "score hides quantization error. Give a separate calibration file.")
        if self.robustness_rate is not None and not 0 < self.robustness_rate <= 1:
            raise ConfigError(f"--robustness-rate is a fraction of words in (0, 1], got {self.robustness_rate}")
        self.batch_sizes = _positive_ints("--batch-sizes", self.batch_sizes)
        self.sequence_lengths = _positive_ints("--sequence-lengths", self.sequence_lengths)
        if self.sequence_lengths and not self.batch_sizes:
            self.batch_sizes = [1]
        if self.batch_sizes and not self.sequence_lengths:
            self.sequence_lengths = [128]
        self.check_budget(((self.dataset, "--dataset"), (self.calibration, "--calibration")))
        if self.executor not in EXECUTORS:
            raise unknown("executor", self.executor, EXECUTORS)
        if self.executor == "local" and self.address:
            raise ConfigError("--address is for --executor ray.")
        if self.threads is None:
            self.threads = usable_cores()


EXECUTORS = ("local", "ray")


def _positive_ints(name, values) -> list:
    out = []
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    for v in values if isinstance(values, (list, tuple)) else [values]:
        try:
            n = int(v)
        except (TypeError, ValueError):
            n = None
        if n is None or isinstance(v, bool) or isinstance(v, float) and v != n or n < 1:
            raise ConfigError(f"{name} takes whole numbers of at least 1 (e.g. 1,8,32), got '{v}'")
        out.append(n)
    return sorted(set(out))


@dataclass
class RobustnessConfig(CompareConfig):
    """`qonnx analyze robustness`: accuracy of each variant on the same rows with typos in a
    fraction of their words (each rate), measured through compare (see qonnx.analysis.robustness).
    Every compare option means what it means there and is checked by compare's own rules."""
    rates: list = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2])

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"--seed must be an integer, got {self.seed!r}")
        rates = []
        for r in self.rates:
            try:
                rates.append(float(r))
            except (TypeError, ValueError):
                raise ConfigError(f"--rates takes fractions of words between 0 and 1 (e.g. 0,0.05,0.1), "
                                  f"got '{r}'") from None
        if not rates:
            raise ConfigError("--rates needs at least one rate, e.g. 0,0.05,0.1,0.2")
        bad = [r for r in rates if not 0 <= r <= 1]  # NaN fails this too
        if bad:
            raise ConfigError(f"--rates are fractions of words between 0 and 1, got {bad[0]:g}")
        self.rates = sorted(set(rates))
        super().__post_init__()

    def compare_config(self, **changes) -> CompareConfig:
        """The compare settings this analysis measures with (the dataset replaced per rate)."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(CompareConfig)}
        return CompareConfig(**{**shared, "robustness_rate": None, **changes})


SENSITIVITY_METHODS = ("int8-dynamic", "int8-static", "int4-weight")
SENSITIVITY_VIEWS = ("only", "all-but")


@dataclass
class SensitivityConfig:
    model: str                           # a model (exported on first use) or a `qonnx export` folder
    method: str = "int8-dynamic"
    output: Path | None = None           # [$QONNX_ARTIFACTS/runs/NAME-sensitivity-METHOD-TIME]
    dataset: str | None = None           # [the demo's test split]
    text_column: str = "text"
    label_column: str = "label"
    split: str = "test"
    max_samples: int = 300
    batch_size: int = 32
    seed: int = 0
    calibration: str | None = None       # int8-static [the demo's calibration split]
    num_calibration_samples: int = 64
    block_size: int = 32                 # int4-weight (rtn) and the LM int8 blocks
    views: tuple = SENSITIVITY_VIEWS
    eval_tokens: int = 1024              # LM perplexity
    window: int = 256
    stride: int = 128
    threads: int | None = None
    resume: bool = False

    def __post_init__(self):
        if self.method not in SENSITIVITY_METHODS:
            raise unknown("sensitivity method", self.method, SENSITIVITY_METHODS)
        bad = [v for v in self.views if v not in SENSITIVITY_VIEWS]
        if bad or not self.views:
            raise unknown("view", (bad or ["(none)"])[0], SENSITIVITY_VIEWS)
        for name in ("max_samples", "batch_size", "num_calibration_samples", "eval_tokens", "window", "stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.stride > self.window:
            raise ConfigError(f"--stride ({self.stride}) must not exceed --window ({self.window})")
        self.output = Path(self.output) if self.output else None
        self.views = tuple(self.views)


def usable_cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _same_file(a, b) -> bool:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return str(a) == str(b)
