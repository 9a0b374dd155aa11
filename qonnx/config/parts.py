"""The parts every command's config is composed of, each declaring and checking its own fields:
data, calibration, runtime, LM evaluation, quality budget. A command's config (commands.py)
inherits the parts it takes, so its fields stay flat (run.json and config files keep their keys)
while each setting is declared and validated in one place.
"""
import filecmp
import os
from dataclasses import dataclass, field
from pathlib import Path

from qonnx.config.choices import (
    ACCURACY_BUDGET_METHODS,
    CALIBRATION_METHODS,
    EXECUTORS,
    PERPLEXITY_BUDGET_METHODS,
    PROVIDERS,
)
from qonnx.errors import ConfigError, unknown


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def check_threads(threads, executor="local", address=None):
    """--threads: at least 1 and, where rows run on this machine (locally, or on the Ray cluster of
    this machine alone that a run without --address starts), no more than its usable cores (more
    threads than cores only slow every row down: a 2 s row ran past 300 s at 1000 threads on 2
    cores). The nodes of a cluster at --address have their own cores: qonnx.run.ray checks them."""
    at_least(("--threads", threads, 1))
    cores = usable_cores()
    if threads is not None and not (executor == "ray" and address) and threads > cores:
        raise ConfigError(f"--threads {threads} is more than the {cores} usable core(s) of this machine; "
                          f"give --threads {cores} or fewer (the default uses them all).")


def same_file(a, b) -> bool:
    """The same data: one path, or two files with the same bytes (a copy under another name)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        if pa.is_file() and pb.is_file():
            return pa.resolve() == pb.resolve() or filecmp.cmp(pa, pb, shallow=False)
        return pa.resolve() == pb.resolve()
    return str(a) == str(b)


def demo_split(spec, demo, split):
    """The data a user gave, else the demo's own split (demo:NAME:SPLIT), else None."""
    return spec or (f"demo:{demo}:{split}" if demo else None)


def at_least(*checks):
    """checks: (flag, value, least): a ConfigError for the first value under its least."""
    for name, value, least in checks:
        if value is not None and value < least:
            raise ConfigError(f"{name} must be at least {least}, got {value}")


def positive_ints(name, values) -> list:
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


@dataclass(kw_only=True)
class DataPart:
    """The labelled rows (classifiers) or text (LMs) a command evaluates on."""
    dataset: str | None = None           # [the demo's --split]
    text_column: str = "text"
    label_column: str = "label"
    tokens_column: str = "tokens"        # token classification: each row's words (CoNLL-2003's names)
    tags_column: str = "ner_tags"        # token classification: each word's tag (a name, or an id of id2label)
    question_column: str = "question"    # extractive QA (SQuAD's names)
    context_column: str = "context"
    answers_column: str = "answers"      # {"text": [...], "answer_start": [...]}
    image_column: str = "image"          # image classifiers: the column of image file paths
    target_column: str | None = None     # seq2seq: the reference outputs (ROUGE-L)
    dataset_config: str | None = None    # a hub dataset's config name
    split: str = "test"
    max_samples: int | None = 500        # classifiers: a seeded sample stratified by label
    seed: int = 0

    def check_data(self):
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"--max-samples must be at least 1, got {self.max_samples}")

    def eval_spec(self, demo):
        return demo_split(self.dataset, demo, self.split)


@dataclass(kw_only=True)
class CalibrationPart:
    """int8-static's calibration data, as compare and the analyses take it."""
    calibration: str | None = None               # [the demo's calibration split]
    calibration_method: str = "minmax"
    calibration_text_column: str | None = None   # [text for demo splits, else --text-column]
    num_calibration_samples: int = 128

    def check_calibration(self):
        if self.calibration_method not in CALIBRATION_METHODS:
            raise unknown("calibration method", self.calibration_method, CALIBRATION_METHODS)
        at_least(("--num-calibration-samples", self.num_calibration_samples, 1))


DEFAULT_ROUNDS = 10  # interleaved timing rounds of a local compare


@dataclass(kw_only=True)
class RuntimePart:
    """Where and how rows are measured: providers, threads, batches, timing, executors."""
    providers: list = field(default_factory=lambda: ["cpu"])
    threads: int | None = None           # torch and ORT alike [all usable cores; ray: each node's own]
    batch_size: int = 16
    latency_samples: int = 100
    warmup: int = 5
    # latency/throughput curves: every (batch size, input length) measured in each row's worker
    batch_sizes: list = field(default_factory=list)
    sequence_lengths: list = field(default_factory=list)
    executor: str = "local"               # local | ray (qonnx.run.ray)
    address: str | None = None            # ray: auto, host:port or ray://host:port [a local cluster]
    concurrent_rows: bool = False         # rows measured at the same time on one machine (they share its cores)
    rounds: int | None = None             # interleaved timing rounds (qonnx.run.rounds) [DEFAULT_ROUNDS; 0 on ray
                                          # or with concurrent rows, which time rows apart]

    def check_runtime(self):
        for p in self.providers:
            if p not in PROVIDERS:
                raise unknown("provider", p, PROVIDERS)
        at_least(("--batch-size", self.batch_size, 1), ("--latency-samples", self.latency_samples, 1),
                 ("--warmup", self.warmup, 1))
        self.batch_sizes = positive_ints("--batch-sizes", self.batch_sizes)
        self.sequence_lengths = positive_ints("--sequence-lengths", self.sequence_lengths)
        if self.sequence_lengths and not self.batch_sizes:
            self.batch_sizes = [1]
        if self.batch_sizes and not self.sequence_lengths:
            self.sequence_lengths = [128]
        if self.executor not in EXECUTORS:
            raise unknown("executor", self.executor, EXECUTORS)
        if self.executor == "local" and self.address:
            raise ConfigError("--address is for --executor ray.")
        check_threads(self.threads, self.executor, self.address)
        apart = self.executor == "ray" or self.concurrent_rows
        if self.rounds is None:
            self.rounds = 0 if apart else DEFAULT_ROUNDS
        at_least(("--rounds", self.rounds, 0))
        if self.rounds and apart:
            raise ConfigError("--rounds times every row's worker in turn on this machine; with --executor ray or "
                              "--concurrent-rows rows are measured apart. Give --rounds 0 (or leave it out).")
        if self.threads is None and self.executor != "ray":  # ray: None, each node's usable cores
            self.threads = usable_cores()


MIN_PERPLEXITY_TOKENS = 32  # fewer tokens (31 predictions) give a perplexity one token can swing wholesale
MAX_EVAL_TOKENS = 10**8      # --eval-tokens beyond this is a typo, not a corpus


@dataclass(kw_only=True)
class LMEvalPart:
    """How a language model is scored: perplexity windows and greedy generation."""
    max_new_tokens: int = 32
    eval_tokens: int = 4096
    window: int = 512
    stride: int = 256

    def check_lm_eval(self):
        at_least(("--max-new-tokens", self.max_new_tokens, 2), ("--window", self.window, 2),
                 ("--eval-tokens", self.eval_tokens, MIN_PERPLEXITY_TOKENS))
        if self.eval_tokens > MAX_EVAL_TOKENS:
            raise ConfigError(f"--eval-tokens {self.eval_tokens} is more than {MAX_EVAL_TOKENS:,}; it is the most "
                              "tokens scored (the corpus may hold fewer: each row reports scored_tokens).")
        if not 0 < self.stride <= self.window:
            raise ConfigError(f"--stride must be between 1 and --window ({self.window}), got {self.stride}")


MARGIN_SE_MAX = 10.0  # --perplexity-margin-se: more standard errors than this is no budget left


@dataclass(kw_only=True)
class Budget:
    """The quality budgets quantize and compare share."""
    # an accuracy budget (int8-static, int8-dynamic on classifiers): keep units FP32 until the drop
    # on the validation split is within it (qonnx.variants.search.budget)
    max_accuracy_drop: float | None = None
    validation: str | None = None          # [the demo's validation split: held out of fine-tuning and eval]
    validation_text_column: str = "text"
    validation_label_column: str = "label"
    validation_samples: int = 300
    search_time_limit: float | None = None  # seconds the accuracy-budget search may take [no limit]
    # a perplexity budget (int4-weight on LMs), in percent: mixed 4/8-bit MatMulNBits searched
    # until validation perplexity is within it (qonnx.variants.search.lm_budget)
    max_perplexity_increase: float | None = None
    # the perplexity budget held by this many standard errors of the validation increase [None:
    # search.margin.DEFAULT_MARGIN_SE where the text gives a standard error; 0: the increase itself]
    perplexity_margin_se: float | None = None

    def check_budget(self, others, demo_eval_split=None):
        """others: ((path or demo split, flag), ...): data the validation rows must not be;
        demo_eval_split: the demo split evaluated on when no --dataset is given."""
        if self.max_accuracy_drop is not None:
            if not 0 <= self.max_accuracy_drop < 1:
                raise ConfigError(f"--max-accuracy-drop is a fraction (0.005 = half a point), got {self.max_accuracy_drop}")
            if self.validation_samples < 1:
                raise ConfigError(f"--validation-samples must be at least 1, got {self.validation_samples}")
        if self.search_time_limit is not None and self.search_time_limit <= 0:
            raise ConfigError(f"--search-time-limit is in seconds, more than 0, got {self.search_time_limit}")
        if self.max_perplexity_increase is not None and not 0 <= self.max_perplexity_increase <= 1000:
            raise ConfigError(f"--max-perplexity-increase is in percent (5 = +5 %), got {self.max_perplexity_increase}")
        if self.perplexity_margin_se is not None and not 0 <= self.perplexity_margin_se <= MARGIN_SE_MAX:
            raise ConfigError(f"--perplexity-margin-se is a number of standard errors, 0 to {MARGIN_SE_MAX:g} (1 holds "
                              f"the budget by one standard error), got {self.perplexity_margin_se}")
        if self.max_accuracy_drop is not None or self.max_perplexity_increase is not None:
            for other, what in others:
                if self.validation and other and same_file(self.validation, other):
                    raise ConfigError(f"--validation is the {what} data; the budget must be checked on other data.")
                if not self.validation and str(other or "").startswith("demo:") and other.endswith(":validation"):
                    raise ConfigError(f"{what} {other} is the data the budget is checked on by default (a demo's "
                                      "validation split); give --validation other data, or use another split.")
            if not self.validation and demo_eval_split == "validation":
                raise ConfigError("--split validation evaluates on the demo's validation split, which the budget is "
                                  "checked on by default; evaluate on --split test, or give --validation other data.")

    def check_kind(self, lm: bool):
        """Each budget is for one kind of model: accuracy for classifiers, perplexity for LMs."""
        if self.max_accuracy_drop is not None and lm:
            raise ConfigError("--max-accuracy-drop is for classifiers; an LM's budget is --max-perplexity-increase.")
        if self.perplexity_margin_se is not None and not lm:
            raise ConfigError("--perplexity-margin-se is for a language model's perplexity budget; a classifier's "
                              "budget is --max-accuracy-drop.")
        if self.max_perplexity_increase is not None and not lm:
            raise ConfigError("--max-perplexity-increase is for language models; a classifier's budget is "
                              "--max-accuracy-drop.")

    def budget_fields(self, method: str, fixed_options=False) -> dict:
        """The Budget settings a build of `method` takes from this config ({} when none applies)."""
        keep = ()
        if self.max_accuracy_drop is not None and method in ACCURACY_BUDGET_METHODS:
            keep = ("max_accuracy_drop", "validation", "validation_text_column", "validation_label_column",
                    "validation_samples", "search_time_limit")
        if self.max_perplexity_increase is not None and method in PERPLEXITY_BUDGET_METHODS and not fixed_options:
            keep = ("max_perplexity_increase", "perplexity_margin_se", "validation", "validation_text_column")
        return {k: getattr(self, k) for k in keep}
