"""Which variants the UI serves: the ok rows of a run folder, or a model's FP32 export, its
dynamic INT8 variant and the PyTorch FP32 reference."""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from qonnx import models, tasks
from qonnx.config import CompareConfig, usable_cores
from qonnx.config.choices import REFERENCES
from qonnx.errors import ConfigError, DataError, QonnxError
from qonnx.schema import read as load_results
from qonnx.variants import VARIANTS, requires
from qonnx.variants.artifact import artifact_for

log = logging.getLogger(__name__)

# a model named on the command line: cheap to get through the artifact store (cached after once)
MODEL_VARIANTS = ("torch-fp32", "onnx-fp32", "onnx-int8-dynamic")
SERVED = ("classification", "lm")  # task kinds the UI has a view for


@dataclass
class Entry:
    variant: str
    provider: str
    runtime: str          # onnx | torch
    mode: str             # torch mode or ONNX method (variants registry)
    artifact: str | None  # the ONNX folder, or the Hugging Face folder for torch rows
    problem: str = ""     # why it cannot answer; shown in its own cell

    @property
    def name(self) -> str:
        return f"{self.variant}@{self.provider}"

    def job(self, plan) -> SimpleNamespace:
        """What qonnx.run.worker.make_runner needs, plus the task kind."""
        art = Path(self.artifact)
        return SimpleNamespace(**{"runtime": self.runtime, "mode": self.mode, "provider": self.provider, "task": plan.task,
                "kind": plan.kind, "threads": plan.threads, "config": plan.config,
                "model_path": str(art / "model.onnx" if self.runtime != "torch" else art)})


@dataclass
class Plan:
    title: str
    task: str
    kind: str                    # classification | lm (an embedding model is refused: nothing to show per text yet)
    model_path: Path             # tokenizer and config.json
    threads: int
    max_new_tokens: int = 32
    entries: list = field(default_factory=list)
    unavailable: list = field(default_factory=list)  # "name: reason" of rows this machine cannot run
    run_dir: Path | None = None
    results: dict | None = None

    def __post_init__(self):
        if self.kind not in SERVED:
            raise ConfigError(f"qonnx ui serves {' and '.join(SERVED)} models; {self.title} is a model of kind '{self.kind}'. "
                              "Compare its variants with qonnx compare.")
        self.config = models.ModelSource(self.title, self.model_path, self.task).config
        self.tokenizer = models.load_tokenizer(self.model_path)

    @property
    def reference(self) -> str | None:
        """torch-fp32 (on the CPU first) when served, else onnx-fp32: report.assemble's choice."""
        ready = [e for e in self.entries if not e.problem]
        for variant in REFERENCES:
            for e in sorted((e for e in ready if e.variant == variant), key=lambda e: e.provider != "cpu"):
                return e.name
        return None

    @property
    def labels(self) -> list:
        id2label = {int(k): v for k, v in (self.config.get("id2label") or {}).items()}
        n = max(id2label, default=-1) + 1
        return [id2label.get(i, f"LABEL_{i}") for i in range(n)]


def provider_problem(runtime, provider) -> str:
    """Why this machine cannot run a row's runtime on its provider: the registry's own checks."""
    if provider == "cpu":
        return ""
    return (requires.torch_device if runtime == "torch" else requires.ort_provider)(None, provider, None)


def missing(runtime, artifact) -> str:
    needed = Path(artifact or "") / ("config.json" if runtime == "torch" else "model.onnx")
    return "" if artifact and needed.is_file() else f"its artifact {needed} is missing"


def model_folder(doc, run_dir) -> Path:
    """The run's Hugging Face folder, else an ONNX artifact folder (they hold config and tokenizer)."""
    candidates = [doc["settings"].get("model_path")] + [r.get("artifact") for r in doc["rows"]]
    for c in candidates:
        if c and (Path(c) / "config.json").is_file():
            return Path(c)
    raise DataError(f"The model of {run_dir} ({doc['settings'].get('model_path')}) is gone and no artifact "
                    "of the run holds its config and tokenizer; run `qonnx compare` again.")


def from_run(run_dir) -> Plan:

    run_dir = Path(run_dir).resolve()
    doc = load_results(run_dir)
    rows = [r for r in doc["rows"] if r["status"] == "ok"]
    if not rows:
        raise DataError(f"{run_dir} has no measured (ok) rows to serve; see its report.md for the reasons.")
    s = doc["settings"]
    plan = Plan(title=str(s.get("model", run_dir.name)), task=s["task"], kind=s["kind"],
                model_path=model_folder(doc, run_dir), threads=s.get("threads") or usable_cores(),
                max_new_tokens=s.get("max_new_tokens") or 32, run_dir=run_dir, results=doc)
    for r in rows:
        v = VARIANTS.get(r["variant"])
        e = Entry(r["variant"], r["provider"], r["runtime"], v.mode if v else "", r.get("artifact"))
        reason = provider_problem(e.runtime, e.provider)
        if reason:
            plan.unavailable.append(f"{e.name}: {reason}")
            continue
        e.problem = missing(e.runtime, e.artifact) if v else "a variant this version of qonnx does not know"
        plan.entries.append(e)
    return plan


def from_model(name) -> Plan:
    """Resolve the model, then the FP32 export and INT8 variant from the store (built once)."""

    source = models.resolve(name)
    plan = Plan(title=name, task=source.task, kind=tasks.kind(source.task), model_path=source.path,
                threads=usable_cores())
    cfg = CompareConfig(model=name)
    for variant in MODEL_VARIANTS:
        v = VARIANTS[variant]
        e = Entry(variant, "cpu", v.runtime, v.mode, None)
        try:
            log.info("preparing %s", variant)
            e.artifact = str(artifact_for(source, variant, cfg))
        except QonnxError as err:
            e.problem = f"build failed: {err}"
        except Exception as err:  # an unexpected library failure stays in this variant's cell
            e.problem = f"build failed: {type(err).__name__}: {err}"
        plan.entries.append(e)
    return plan
