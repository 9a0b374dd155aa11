"""compare --targets: the edge gate (qonnx.edge) on each ONNX row's artifact, after every row is
measured (so it never shares the machine with a timed row). Each row keeps, per target, the
verdict, whether the target was executed here or checked statically, and the reasons; rows that
share an artifact (cpu and cuda) are gated once. A PyTorch row has no ONNX file to deploy: n/a."""
import logging
from pathlib import Path

from qonnx.edge import wasm
from qonnx.edge.gate import EdgeConfig, validate_artifact
from qonnx.errors import ConfigError, QonnxError

log = logging.getLogger(__name__)

KEPT = ("verdict", "executed", "how", "reasons", "unsupported_ops", "partitions", "supported_pct", "size_mb")
NOT_ONNX = "a PyTorch row: no ONNX file to deploy on an edge runtime"


def preflight(targets):
    """Before anything is measured: what a target needs on this machine (wasm: Node.js and npm)."""
    if "wasm" in targets:
        problem = wasm.node_problem()
        if problem:
            raise ConfigError(f"--targets wasm runs ONNX Runtime Web in Node.js: {problem}")


def kept(doc) -> dict:
    """Per target: what a row keeps of the gate's document (the verdict, how, reasons, key figures)."""
    out = {}
    for name, t in doc["targets"].items():
        out[name] = {k: t[k] for k in KEPT if t.get(k) is not None}
        lat = (t.get("latency_ms") or {}).get(str(doc["threads"]), {}).get("p50")
        if lat is not None:
            out[name]["latency_ms_p50"] = lat
    return out


def onnx_file(row):
    art = Path(row.artifact) if row.artifact else None
    return art if art and (art.suffix == ".onnx" or (art.is_dir() and any(art.glob("*.onnx")))) else None


def gate(rows, targets, save, on_row=None):
    """row.targets for each ok row lacking these targets' verdicts; save(row) after each. Latency
    and memory at 1 thread, as `qonnx validate` measures them (a stand-in for a small core)."""
    done = {}
    for row in rows:
        if not row.ok or (row.targets and list(row.targets) == list(targets)):
            continue
        art = onnx_file(row)
        if row.runtime == "torch" or art is None:
            why = NOT_ONNX if row.runtime == "torch" else f"no .onnx file in the row's artifact ({row.artifact})"
            row.targets = {t: {"verdict": "n/a", "executed": False, "reasons": [why]} for t in targets}
        else:
            key = str(art.resolve())
            if key not in done:
                if on_row:
                    on_row(row)
                try:
                    done[key] = kept(validate_artifact(EdgeConfig(artifact=key, targets=list(targets))))
                except Exception as e:  # the gate could not check this artifact: a failed verdict, said why
                    why = str(e) if isinstance(e, QonnxError) else f"{type(e).__name__}: {e}"
                    log.warning("edge gate on %s: %s", key, why)
                    done[key] = {t: {"verdict": "fail", "executed": False, "how": "not checked",
                                     "reasons": [f"FAIL: the edge gate could not check it: {why}"]} for t in targets}
            row.targets = done[key]
        save(row)
