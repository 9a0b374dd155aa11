"""One config dataclass per operation, composed of parts (parts.py) and validated when built,
with messages that say how to fix it."""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from qonnx.config.choices import (
    ACCURACY_BUDGET_METHODS,
    CALIBRATION_METHODS,
    EDGE_TARGETS,
    EXPORTERS,
    GENAI_PRECISIONS,
    INT4_ALGORITHMS,
    INT8_SCHEMES,
    METHODS,
    PERPLEXITY_BUDGET_METHODS,
    QNN_ACTIVATIONS,
    REFERENCES,
    SENSITIVITY_METHODS,
    SENSITIVITY_VIEWS,
    variant_names,
)
from qonnx.config.parts import (
    Budget,
    CalibrationPart,
    DataPart,
    LMEvalPart,
    RuntimePart,
    at_least,
    check_threads,
    same_file,
)
from qonnx.errors import ConfigError, unknown


@dataclass
class ExportConfig:
    model: str
    output: Path | None = None
    task: str | None = None
    opset: int | None = None
    atol: float = 1e-3
    overwrite: bool = False
    exporter: str = "optimum"    # or genai: onnxruntime-genai's model builder (decoder LMs)
    precision: str = "fp32"      # genai: one of choices.GENAI_PRECISIONS

    def __post_init__(self):
        if self.exporter not in EXPORTERS:
            raise unknown("exporter", self.exporter, EXPORTERS)
        if self.exporter == "genai":
            if self.precision not in GENAI_PRECISIONS:
                raise unknown("genai precision", self.precision, GENAI_PRECISIONS)
            if self.opset is not None:
                raise ConfigError("--opset applies to the optimum exporter; the genai builder picks its own.")
        elif self.precision != "fp32":
            raise ConfigError("--precision is for --exporter genai; quantize an optimum export with qonnx quantize.")
        if self.opset is not None and not 11 <= self.opset <= 23:
            raise ConfigError(f"--opset must be between 11 and 23, got {self.opset}")
        if self.atol <= 0:
            raise ConfigError(f"--atol must be positive, got {self.atol}")


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
    block_size: int | None = None   # int4-weight [32]; the perplexity budget's search picks its own
    algorithm: str = "hqq"
    text_column: str | None = None  # calibration file's text column [text]
    int8_scheme: str = "auto"
    qnn_activations: str = "uint16"  # int8-qdq-qnn: activation type (QNN's HTP takes uint8 or uint16)
    overwrite: bool = False
    threads: int | None = None      # ONNX Runtime threads of the budget searches [all usable cores]
    # token classifiers, QA: the calibration file's columns (its word lists; its questions and contexts)
    tokens_column: str = "tokens"
    question_column: str = "question"
    context_column: str = "context"

    def __post_init__(self):
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
        if self.qnn_activations not in QNN_ACTIVATIONS:
            raise unknown("--qnn-activations", self.qnn_activations, QNN_ACTIVATIONS)
        at_least(("--num-samples", self.num_samples, 1))
        check_threads(self.threads)
        if self.block_size is not None and self.max_perplexity_increase is not None:
            raise ConfigError("--block-size: the --max-perplexity-increase search chooses its blocks itself (32, 64 or 128 per unit); "
                              "leave --block-size out, or drop the budget to build int4-weight at that block size.")
        if self.block_size is None:
            self.block_size = 32
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ConfigError(f"--block-size must be a power of two >= 16, got {self.block_size}")
        if self.max_accuracy_drop is not None and self.method not in ACCURACY_BUDGET_METHODS:
            raise ConfigError(f"--max-accuracy-drop applies to int8-static and int8-dynamic, not {self.method}")
        if self.max_perplexity_increase is not None and self.method not in PERPLEXITY_BUDGET_METHODS:
            raise ConfigError(f"--max-perplexity-increase applies to int4-weight, not {self.method}")
        if self.perplexity_margin_se is not None and self.max_perplexity_increase is None:
            raise ConfigError("--perplexity-margin-se holds a perplexity budget by a margin: give "
                              "--max-perplexity-increase too (int4-weight).")
        self.check_budget(((self.calibration, "--calibration"),))
        if self.output is not None:
            self.output = Path(self.output)


@dataclass(kw_only=True)
class CompareConfig(DataPart, CalibrationPart, RuntimePart, LMEvalPart, Budget):
    model: str = "demo:sentiment"
    output: Path | None = None  # [$QONNX_ARTIFACTS/runs/NAME-TIME]
    variants: list = field(default_factory=list)
    task: str | None = None
    resume: bool = False
    robustness_rate: float | None = None  # also measure accuracy with typos in this fraction of words
    mlflow: str | None = None             # tracking URI: every row becomes an MLflow run
    targets: list = field(default_factory=list)  # edge targets (qonnx.edge) each ONNX row's artifact is gated on

    def __post_init__(self):
        if self.output is not None:
            self.output = Path(self.output)
        for t in self.targets:
            if t not in EDGE_TARGETS:
                raise unknown("edge target (--targets)", t, EDGE_TARGETS)
        self.targets = [t for t in EDGE_TARGETS if t in self.targets]  # one order, each once
        self.check_data()
        self.check_calibration()
        self.check_lm_eval()
        if self.variants:
            names = variant_names()
            for v in self.variants:
                if v not in names:
                    raise unknown("variant", v, names)
        if self.calibration and self.dataset and same_file(self.calibration, self.dataset):
            raise ConfigError("--calibration is the evaluation set (--dataset); calibrating on the data you "
                              "score hides quantization error. Give a separate calibration file.")
        if self.robustness_rate is not None and not 0 < self.robustness_rate <= 1:
            raise ConfigError(f"--robustness-rate is a fraction of words in (0, 1], got {self.robustness_rate}")
        self.check_budget(((self.dataset, "--dataset"), (self.calibration, "--calibration")),
                          demo_eval_split=None if self.dataset else self.split)
        self.check_reference()
        if (self.perplexity_margin_se is not None and self.max_perplexity_increase is None
                and "genai-int4-budget" not in self.variants):
            raise ConfigError("--perplexity-margin-se holds a perplexity budget by a margin: give "
                              "--max-perplexity-increase, or ask for the genai-int4-budget row (its budget is 10 % "
                              "where none is given).")
        self.check_runtime()

    def check_reference(self):
        """A run's budget is judged against its reference row: refuse one whose --variants has none."""
        flag, limit = (("--max-perplexity-increase", self.max_perplexity_increase)
                       if self.max_perplexity_increase is not None else ("--max-accuracy-drop", self.max_accuracy_drop))
        if limit is not None and self.variants and not set(self.variants) & set(REFERENCES):
            raise ConfigError(f"{flag} {limit:g} is judged against a reference row, and --variants "
                              f"({', '.join(self.variants)}) has none: add {' or '.join(REFERENCES)}. Without one the "
                              "run measures no quality change and no row can be said to hold the budget.")


@dataclass(kw_only=True)
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


@dataclass
class SensitivityConfig:
    model: str                           # a model (exported on first use) or a `qonnx export` folder
    method: str = "int8-dynamic"
    output: Path | None = None           # [$QONNX_ARTIFACTS/runs/NAME-sensitivity-METHOD-TIME]
    dataset: str | None = None           # [the demo's --split]
    text_column: str = "text"
    label_column: str = "label"
    tokens_column: str = "tokens"        # token classifiers (the other families' columns as compare reads them)
    tags_column: str = "ner_tags"
    question_column: str = "question"    # extractive QA
    context_column: str = "context"
    answers_column: str = "answers"
    image_column: str = "image"          # image classifiers
    target_column: str | None = None     # seq2seq: the reference outputs (ROUGE-L)
    max_new_tokens: int = 16             # seq2seq: greedy tokens generated per source text
    split: str = "validation"            # held-out data, as the budget searches take: not compare's eval split
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
        for name in ("max_samples", "batch_size", "num_calibration_samples", "eval_tokens", "window", "stride",
                     "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.stride > self.window:
            raise ConfigError(f"--stride ({self.stride}) must not exceed --window ({self.window})")
        check_threads(self.threads)
        self.output = Path(self.output) if self.output else None
        self.views = tuple(self.views)
