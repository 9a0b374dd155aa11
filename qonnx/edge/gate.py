"""The edge gate: will one artifact run on each target, and within its budget?

Each target says whether it was executed here (wasm in Node.js, ort-mobile's .ort file in ONNX
Runtime) or checked statically (nnapi, coreml, qnn), and gives a verdict (pass / warn / fail)
with the sentences behind it. The budgets apply where a target measures the figure; a static
target says it did not measure it, never that it passed."""
import logging
import math
import os
from dataclasses import dataclass, field

from qonnx.config.choices import EDGE_TARGETS as TARGETS
from qonnx.config.parts import check_threads
from qonnx.edge import ort_mobile, partition, qnn, shapes, versions, wasm
from qonnx.edge.inputs import feeds
from qonnx.edge.model import open_artifact
from qonnx.edge.reference import reference
from qonnx.edge.result import TargetResult
from qonnx.errors import ConfigError, QonnxError, unknown

log = logging.getLogger(__name__)

EXECUTED = ("wasm", "ort-mobile")
BUDGETS = {"max_size_mb": "--max-size-mb", "max_memory_mb": "--max-memory-mb", "max_latency_ms": "--max-latency-ms"}


@dataclass
class EdgeConfig:
    artifact: str
    targets: list = field(default_factory=lambda: list(TARGETS))
    max_size_mb: float | None = None
    max_memory_mb: float | None = None
    max_latency_ms: float | None = None
    threads: int = 1
    atol: float = 1e-3
    fix_shapes: str | None = None
    output: str | None = None
    ops_config: str | None = None

    def __post_init__(self):
        if isinstance(self.targets, str):
            self.targets = [t.strip() for t in self.targets.split(",") if t.strip()]
        if not self.targets:
            raise ConfigError(f"--target is empty; choose from {', '.join(TARGETS)}.")
        for t in self.targets:
            if t not in TARGETS:
                raise unknown("target", t, TARGETS)
        self.targets = [t for t in TARGETS if t in self.targets]  # one order, each once
        for name, flag in {**BUDGETS, "atol": "--atol"}.items():
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or v < 0):
                raise ConfigError(f"{flag} must be a finite number >= 0, not {v}.")
        check_threads(self.threads)
        if self.output and not self.fix_shapes:
            raise ConfigError("-o is where --fix-shapes writes the fixed model; give --fix-shapes too, or drop -o.")
        if self.ops_config and "ort-mobile" not in self.targets:
            raise ConfigError("--ops-config is checked by the ort-mobile target; add it to --target.")
        if self.ops_config and not os.path.isfile(self.ops_config):
            raise ConfigError(f"--ops-config {self.ops_config} is not a file; give a required_operators.config.")


def validate_artifact(cfg: EdgeConfig, on_target=None) -> dict:
    """{"artifact", "validated", "fixed_shapes", "targets": {name: {...}}, "passed"}; on_target(name)
    is called as each target starts (progress)."""
    art = open_artifact(cfg.artifact)
    doc = {"artifact": str(art.path), "fixed_shapes": None}
    if cfg.fix_shapes:
        folder, fixed, reused = shapes.fix(art, shapes.parse(cfg.fix_shapes), cfg.output)
        before = art.dynamic_inputs
        art = open_artifact(folder)
        doc["fixed_shapes"] = {"folder": str(folder), "shapes": fixed, "reused": reused,
                               "inputs_before": before, "still_dynamic": art.dynamic_inputs}
    doc.update(validated=str(art.path), threads=cfg.threads, targets={},
               model={"size_mb": round(art.size_mb, 2), "opset": art.opset, "ir_version": art.proto.ir_version,
                      "ops": art.ops, "dynamic_inputs": art.dynamic_inputs, "dynamic": art.dynamic_summary(),
                      "external_data": art.external_files},
               budgets={k: getattr(cfg, k) for k in BUDGETS if getattr(cfg, k) is not None})
    cases, ref, how, ref_problem = None, None, "", ""
    here = TargetResult("here", False)
    if any(t in EXECUTED for t in cfg.targets):
        cases, how = feeds(art)
        if not versions.judge(here, art, versions.ort_limits()):  # too new for the CPU EP here
            ref_problem = here.reasons[0].removeprefix("FAIL: ")
        else:
            try:
                ref = reference(art.path, cases, cfg.threads)
            except QonnxError as e:
                ref_problem = str(e)
    doc["inputs"] = how
    model = note = None
    for name in cfg.targets:
        if on_target:
            on_target(name)
        read = TargetResult(name, executed=False)  # the IR version and opset its runtime reads
        if not versions.judge(read, art, versions.limits(name)):
            read.note(f"Not checked further: {read.figures['reads']['runtime']} cannot load the model.")
            doc["targets"][name] = read.to_json()
            continue
        if name == "wasm":
            r = wasm.check(art, cases, ref, cfg)
        elif name == "ort-mobile":
            r = ort_mobile.check(art, cases, ref, cfg)
        else:
            if model is None:
                model, note = partition.prepared(art)
            r = qnn.check(art, model, note) if name == "qnn" else partition.check(name, art, model, note)
        r.reasons[1:1] = read.reasons
        r.figures.update(read.figures)
        if r.executed:
            r.note(f"Inputs: {how}." if not ref_problem else
                   f"Inputs: {how}; no CPU EP reference to compare with ({ref_problem}).")
        budgets(r, art, cfg)
        doc["targets"][name] = r.to_json()
    doc["passed"] = all(t["verdict"] != "fail" for t in doc["targets"].values())
    return doc


def budgets(r, art, cfg):
    """--max-size-mb on the file the target deploys; memory and latency where the target measured
    them (executed targets, at --threads), said to be unmeasured elsewhere."""
    size = r.figures.pop("ort_bytes", None)
    size = art.size_mb if size is None else size / 2**20
    r.figures["size_mb"] = round(size, 4)
    if cfg.max_size_mb is not None:
        check(r, "size", size, cfg.max_size_mb, "MiB")
    measured = {"memory": (r.figures.get("peak_memory_mb"), "max_memory_mb", "MiB"),
                "latency": ((r.figures.get("latency_ms") or {}).get(str(cfg.threads), {}).get("p50"),
                            "max_latency_ms", "ms")}
    for what, (value, attr, unit) in measured.items():
        limit = getattr(cfg, attr)
        if limit is None:
            continue
        if value is None:
            why = "it did not run" if r.executed else "it is checked statically"
            r.note(f"{BUDGETS[attr]} not checked for {r.target}: {why}, so its {what} was not measured.")
            continue
        extra = (f" at {cfg.threads} thread(s) on this machine's CPU (a stand-in for a small core)"
                 if what == "latency" else "")
        check(r, what, value, limit, unit, extra)


def check(r, what, value, limit, unit, extra=""):
    r.figures.setdefault("budgets", {})[what] = {"value": value, "limit": limit, "ok": value <= limit}
    if value <= limit:
        r.note(f"Budget: {what} {value:.4g} {unit}{extra} <= {limit:g} {unit}.")
    else:
        r.fail(f"{what} {value:.4g} {unit}{extra} is over the budget of {limit:g} {unit}.")
