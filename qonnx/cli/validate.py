"""`qonnx validate`: a pass/fail gate for CI. On a compare run folder it gates one row's figures;
on one artifact folder (or .onnx file) it checks the edge targets (qonnx.edge)."""
import json
import sys
from pathlib import Path

import click

from qonnx.cache import write_json
from qonnx.cli.common import err, handle_errors, out
from qonnx.cli.options import default_of, options
from qonnx.edge import report
from qonnx.edge.gate import TARGETS, EdgeConfig, validate_artifact
from qonnx.errors import ConfigError
from qonnx.validate import ValidateConfig
from qonnx.validate import validate as run_validate

EXIT_CODES = ("Exit codes: 0 every limit holds (a run row) or every target passes or warns (an artifact); 1 bad "
              "input (unknown target, not a run or ONNX folder, a limit that does not apply, node/npm missing for "
              "wasm); 2 the gate failed: a limit is broken, or a target fails (its reasons are printed).")
RUN_ONLY = ("variant", "min_speedup", "min_agreement", "max_accuracy_drop", "max_perplexity_increase")
EDGE_ONLY = ("target", "max_memory_mb", "max_latency_ms", "threads", "atol", "fix_shapes", "output", "ops_config",
             "json_file")


@click.command(epilog=EXIT_CODES)
@click.argument("path", type=click.Path())
@click.option("--variant", help="A run folder: the row to gate, e.g. onnx-int8-dynamic.")
@click.option("--provider", default=default_of(ValidateConfig, "provider"), show_default=True,
              help="A run folder: the row's provider.")
@options(None, "max_accuracy_drop", "max_perplexity_increase")
@click.option("--min-speedup", type=float, help="A run folder: smallest speedup vs torch-fp32 on the same provider.")
@click.option("--min-agreement", type=float, help="A run folder: smallest top-1 agreement with the FP32 reference "
                                                   "(embedding models: the share of texts with FP32's nearest neighbour; "
                                                   "token classifiers: of words with its label; QA: of answer spans).")
@click.option("--max-size-mb", type=float, help="Largest model size in MiB (2**20 bytes): size_mb of a run's row, or "
                                                "the file an edge target deploys (.onnx and its data, or .ort).")
@click.option("--target", help=f"An artifact: comma list of {', '.join(TARGETS)} [all]. wasm and ort-mobile are "
                               "executed here (wasm in Node.js: onnxruntime-web is npm-installed into the qonnx cache "
                               "on first use); nnapi, coreml and qnn are checked statically.")
@click.option("--max-memory-mb", type=float, help="An artifact: largest peak memory in MiB at batch 1, measured by the "
                                                  "executed targets.")
@click.option("--max-latency-ms", type=float, help="An artifact: largest batch-1 p50 latency at --threads, measured by "
                                                   "the executed targets on this CPU (a stand-in for a small core).")
@options(EdgeConfig, "threads", "atol", threads="An artifact: the timed runs (wasm is also timed at every core).",
         atol="an artifact's outputs vs the CPU EP's (a changed top-1 always fails).")
@click.option("--fix-shapes", help="An artifact: fix symbolic input dimensions first, e.g. batch=1,sequence=128 (a "
                                   "name is a dimension of the graph or its start); the fixed model is an artifact of "
                                   "its own (beside a stored qonnx artifact, else in the qonnx cache, or -o) and is "
                                   "what the targets check.")
@options(None, "output", output="(new or empty) for the --fix-shapes model.")
@click.option("--ops-config", type=click.Path(), help="ort-mobile: your reduced build's required_operators.config; "
                                                      "ops the .ort file needs beyond it fail.")
@options(None, "json", json="An artifact: the verdicts and figures, {\"targets\": {NAME: {...}}}.")
@handle_errors
def validate(path, **kw):
    """Pass/fail gate for CI: PATH is a compare run folder (gate one row: --variant and limits) or one
    artifact folder holding model.onnx, or an .onnx file (edge targets: will it run there, within budget?).

    Nothing is written into PATH."""
    given = click.get_current_context().get_parameter_source
    p = Path(path)
    onnx_here = p.suffix == ".onnx" or (p.is_dir() and any(p.glob("*.onnx")))
    if (p / "results.json").is_file() or (not onnx_here and kw["variant"]):
        stray = [k for k in EDGE_ONLY if kw[k] is not None and given(k).name != "DEFAULT"]
        if stray:
            raise ConfigError(f"{path} is a compare run; {', '.join(_flag(k) for k in stray)} check(s) one artifact. "
                              "Give the variant's artifact folder instead, or drop them.")
        if not kw["variant"]:
            raise ConfigError(f"{path} is a compare run: give --variant, the row to gate (e.g. onnx-int8-dynamic).")
        _run_gate(path, kw)
    else:
        stray = [k for k in RUN_ONLY if kw[k] is not None]
        if stray:
            raise ConfigError(f"{', '.join(_flag(k) for k in stray)} gate(s) a row of a compare run (a folder with "
                              f"results.json); {path} is not one.")
        _edge_gate(path, kw)


def _flag(name):
    return {"json_file": "--json", "output": "-o"}.get(name, f"--{name.replace('_', '-')}")


def _run_gate(run_dir, kw):
    passed, checks, notes = run_validate(ValidateConfig(
        run_dir=run_dir, variant=kw["variant"], provider=kw["provider"], max_accuracy_drop=kw["max_accuracy_drop"],
        max_perplexity_increase_pct=kw["max_perplexity_increase"], min_speedup=kw["min_speedup"],
        max_size_mb=kw["max_size_mb"], min_agreement=kw["min_agreement"]))
    for line in notes:  # a derived figure results.json got wrong: the gate checked the recomputed one
        click.echo(f"NOTE  {line}")
    for name, value, limit, ok in checks:
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        click.echo(f"{'PASS' if ok else 'FAIL'}  {name} = {shown}  (limit {limit})")
    click.echo(f"{kw['variant']}@{kw['provider']}: {'PASSED' if passed else 'FAILED'}")
    sys.exit(0 if passed else 2)


def _edge_gate(path, kw):
    json_file = kw["json_file"]
    if json_file and json_file != "-":
        folder = Path(path).resolve() if Path(path).is_dir() else Path(path).resolve().parent
        target = Path(json_file).resolve()
        if folder == target.parent or folder in target.parents:
            raise ConfigError(f"--json {json_file} is inside {path}; qonnx writes nothing into the artifact folder. "
                              "Choose a file outside it.")
    cfg = EdgeConfig(artifact=path, targets=kw["target"] or list(TARGETS), max_size_mb=kw["max_size_mb"],
                     max_memory_mb=kw["max_memory_mb"], max_latency_ms=kw["max_latency_ms"],
                     threads=kw["threads"], atol=kw["atol"], fix_shapes=kw["fix_shapes"], output=kw["output"],
                     ops_config=kw["ops_config"])
    progress = err()
    doc = validate_artifact(cfg, on_target=lambda t: progress.print(f"checking {t} ...", highlight=False))
    if json_file == "-":
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        print_edge(doc)
    if json_file and json_file != "-":
        Path(json_file).parent.mkdir(parents=True, exist_ok=True)
        write_json(json_file, doc)
        click.echo(f"json: {Path(json_file).resolve()}")
    sys.exit(0 if doc["passed"] else 2)



def print_edge(doc):
    con = out()
    head, tail = report.lines(doc)
    for line in head:
        con.print(line, highlight=False)
    con.print(report.table(doc))
    for line in tail:
        con.print(line, highlight=False)
