"""One dataclass per operation, validated when built, with messages that say how to fix it."""
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, unknown

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
INT4_ALGORITHMS = ("rtn", "hqq")
INT8_SCHEMES = ("auto", "fused", "blockwise")


@dataclass
class ExportConfig:
    model: str
    output: Path | None = None
    task: str | None = None
    opset: int | None = None
    atol: float = 1e-3

    def __post_init__(self):
        if self.atol <= 0:
            raise ConfigError(f"--atol must be positive, got {self.atol}")


@dataclass
class QuantizeConfig:
    onnx_dir: Path
    method: str
    output: Path | None = None
    calibration: str | None = None
    calibration_method: str = "minmax"
    num_samples: int = 128
    per_channel: bool | None = None  # None: the method's default (see each method)
    seed: int = 0
    block_size: int = 32
    algorithm: str = "hqq"
    text_column: str = "text"
    int8_scheme: str = "auto"

    def __post_init__(self):
        from .variants import METHODS

        self.onnx_dir = Path(self.onnx_dir)
        if self.method not in METHODS:
            raise unknown("quantization method", self.method, METHODS)
        if self.calibration_method not in CALIBRATION_METHODS:
            raise unknown("calibration method", self.calibration_method, CALIBRATION_METHODS)
        if self.algorithm not in INT4_ALGORITHMS:
            raise unknown("INT4 algorithm", self.algorithm, INT4_ALGORITHMS)
        if self.int8_scheme not in INT8_SCHEMES:
            raise unknown("INT8 scheme", self.int8_scheme, INT8_SCHEMES)
        if self.num_samples < 1:
            raise ConfigError(f"--num-samples must be at least 1, got {self.num_samples}")
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ConfigError(f"--block-size must be a power of two >= 16, got {self.block_size}")
        if self.output is None:
            self.output = self.onnx_dir.parent / f"{self.onnx_dir.name}-{self.method}"


@dataclass
class CompareConfig:
    model: str = "demo:sentiment"
    output: Path = Path("artifacts/runs/latest")
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
    latency_samples: int = 50
    warmup: int = 5
    seed: int = 0
    resume: bool = False
    calibration: str | None = None
    calibration_method: str = "minmax"
    num_calibration_samples: int = 128
    max_new_tokens: int = 32
    eval_tokens: int = 4096
    window: int = 512
    stride: int = 256

    def __post_init__(self):
        from .runners.ort import PROVIDERS

        self.output = Path(self.output)
        for p in self.providers:
            if p not in PROVIDERS:
                raise unknown("provider", p, PROVIDERS)
        for name, v in (("--batch-size", self.batch_size), ("--latency-samples", self.latency_samples),
                        ("--max-new-tokens", self.max_new_tokens), ("--window", self.window)):
            if v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")
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
        if self.threads is None:
            import os

            self.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
