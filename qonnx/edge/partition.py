"""The nnapi and coreml targets, checked statically: how ONNX Runtime would split the graph
between the accelerator's execution provider and the CPU, estimated by ORT's own
usability checker (onnxruntime.tools.mobile_helpers.usability_checker) on the graph ORT would
run (basic optimizations applied, shapes inferred), and judged by ORT's own rule."""
import logging
import tempfile
from pathlib import Path

from qonnx.edge.result import TargetResult
from qonnx.store import scratch_cwd

log = logging.getLogger(__name__)

RULE = ("ORT's rule (usability_checker): one partition over 75 % of the nodes is likely a win (pass); one over "
        "50 %, or two over 75 %, may be (warn, measure on the device); anything else will most likely be slower "
        "than the CPU EP alone (fail).")
VERDICT = {"YES": "pass", "MAYBE": "warn", "NO": "fail"}
COREML_FORMATS = {"MLProgram": "coreml_supported_mlprogram_ops.md",
                  "NeuralNetwork": "coreml_supported_neuralnetwork_ops.md"}


def prepared(art):
    """(ModelProto with inferred shapes, note): the graph after ORT's basic optimizations, as the
    usability checker and the ORT format converter see it; the graph as saved when ORT cannot
    load it (the note says so)."""
    import onnx
    from onnxruntime.tools.onnx_model_utils import optimize_model

    note = "the graph after ONNX Runtime's basic optimizations (as the ORT format converter saves it)"
    with tempfile.TemporaryDirectory(prefix="qonnx-edge-") as tmp, scratch_cwd():
        out = Path(tmp) / "model.onnx"
        try:
            optimize_model(art.path, out, use_external_initializers=True)
            model_path = out
        except Exception as e:
            model_path = art.path
            note = f"the graph as saved (ONNX Runtime could not optimize it: {str(e).splitlines()[0][:200]})"
        inferred = Path(tmp) / "inferred.onnx"  # by path: external weights are read where they lie
        try:
            onnx.shape_inference.infer_shapes_path(str(model_path), str(inferred), strict_mode=True)
        except Exception:  # ops ONNX's shape inference does not know (com.microsoft): infer what it can
            onnx.shape_inference.infer_shapes_path(str(model_path), str(inferred))
        model = onnx.load(str(inferred), load_external_data=False)
        # the weights too (qnn reads zero points), from beside the graph they were saved with
        onnx.external_data_helper.load_external_data_for_model(model, str(Path(model_path).parent))
    return model, note


def analyze(model, checker, require_fixed, max_rank=999):
    from onnxruntime.tools.mobile_helpers.usability_checker import check_partitioning

    return check_partitioning(model.graph, checker, require_fixed, max_rank)


def _param_share(model, info) -> float | None:
    """The share of initializer elements read by nodes the EP takes (the weights it holds)."""
    import numpy as np

    sizes = {i.name: int(np.prod(i.dims)) if i.dims else 1 for i in model.graph.initializer}
    total = sum(sizes.values())
    if not total:
        return None
    taken = {i for group in info.supported_groups for n in group for i in n.input if i in sizes}
    return sum(sizes[i] for i in taken) / total


def figures(model, info) -> dict:
    return {"nodes": info.num_nodes, "supported_nodes": info.num_supported_nodes,
            "supported_pct": round(100 * info.num_supported_nodes / max(info.num_nodes, 1), 1),
            "partitions": info.num_partitions,
            "partition_sizes": [len(g) for g in info.supported_groups],
            "nodes_unsupported_op": info.nodes_unsupported_due_to_op,
            "nodes_dynamic_shape": info.nodes_unsupported_due_to_dynamic_input,
            "nodes_unsupported_rank": info.num_unsupported_nodes_due_to_rank,
            "param_share": None if (s := _param_share(model, info)) is None else round(s, 3),
            "suitability": info.suitability().name}


def plain(op):
    return op[len("ai.onnx:"):] if op.startswith("ai.onnx:") else op


def judge(r, model, info, ep, art, fixed_info=None):
    """The verdict from ORT's rule, with the sentences that explain it; `fixed_info`: the same
    analysis with shapes taken as fixed, to say what --fix-shapes would change."""
    f = figures(model, info)
    r.figures.update(f)
    r.partitions = info.num_partitions
    r.unsupported_ops = sorted(plain(o) for o in info.unsupported_ops)
    share = f" and {f['param_share']:.0%} of the weights" if f["param_share"] is not None else ""
    sizes = f["partition_sizes"]
    sizes = f" of {', '.join(map(str, sizes[:8]))}{', ...' if len(sizes) > 8 else ''} nodes" if sizes else ""
    line = (f"{ep} takes {f['supported_nodes']} of {f['nodes']} nodes ({f['supported_pct']:.1f} %){share} in "
            f"{f['partitions']} partition(s){sizes}.")
    if r.unsupported_ops:
        line += f" Ops it lacks ({f['nodes_unsupported_op']} nodes, run on the CPU EP): {', '.join(r.unsupported_ops)}."
    if f["nodes_dynamic_shape"]:
        dyn = art.dynamic_summary() if art.dynamic_inputs else "shapes computed inside the graph"
        line += f" {f['nodes_dynamic_shape']} node(s) rejected for dynamic shapes (inputs: {dyn})."
    if f["nodes_unsupported_rank"]:
        line += f" {f['nodes_unsupported_rank']} node(s) rejected for tensor rank over the EP's limit."
    verdict = VERDICT[f["suitability"]]
    {"pass": r.note, "warn": r.warn, "fail": r.fail}[verdict](line)
    caveats = info.supported_ops_checker.get_caveats() if hasattr(info.supported_ops_checker, "get_caveats") else []
    if caveats:
        r.figures["caveats"] = caveats
        r.note(f"Not checked (ORT lists these limits of supported ops): {'; '.join(caveats)}")
    if fixed_info is not None:
        g = figures(model, fixed_info)
        r.figures["if_shapes_fixed"] = g
        r.note(f"With fixed shapes ({fix_hint(art)}): {g['supported_nodes']} of {g['nodes']} nodes "
               f"({g['supported_pct']:.1f} %) in {g['partitions']} partition(s): {VERDICT[g['suitability']]}.")


def fix_hint(art) -> str:
    pairs = ",".join(f"{d}={1 if 'batch' in d.lower() else 128}" for d in art.dim_params if d.isidentifier())
    return f"--fix-shapes {pairs}" if pairs else "fixed input shapes"


def _checker(filename):
    from onnxruntime.tools.mobile_helpers import usability_checker as uc

    return uc._SupportedOpsChecker(Path(uc.__file__).with_name(filename))


def check(target, art, model, note) -> TargetResult:
    """nnapi or coreml: the partition estimate on `model` (from prepared)."""
    r = TargetResult(target, executed=False)
    if target == "nnapi":
        formats = {"NNAPI": ("nnapi_supported_ops.md", 999)}
    else:
        formats = {f"CoreML {k}": (v, 5) for k, v in COREML_FORMATS.items()}
    r.note(f"Checked statically (no {'Android device' if target == 'nnapi' else 'Apple device'} here): "
           f"ORT's partition estimate on {note}, by op type and fixed shapes; per-op limits are not checked.")
    r.note(RULE)
    best = None
    for ep, (filename, rank) in formats.items():
        info = analyze(model, _checker(filename), True, rank)
        if best is None or info.suitability() > best[1].suitability():
            best = (ep, info, filename, rank)
    ep, info, filename, rank = best
    fixed = None
    if art.dynamic_inputs and info.suitability().name != "YES":
        fixed = analyze(model, _checker(filename), False, rank)
    if target == "coreml":
        r.note(f"{ep} is the better of CoreML's two model formats here (MLProgram, NeuralNetwork).")
    judge(r, model, info, ep, art, fixed)
    return r
