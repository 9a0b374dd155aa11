"""Variants of an encoder-decoder export (optimum's encoder_model.onnx, decoder_model.onnx,
decoder_with_past_model.onnx and decoder_model_merged.onnx): the method's own build on each graph the
runtime will load.

- int8-dynamic: the encoder and the merged decoder (one decoder graph with and without the cache).
- fp16: the encoder and the two unmerged decoders: ONNX Runtime refuses the merged decoder once
  converted (its If branches return an outer-scope value), so the FP16 folder holds the pair.
Other methods are refused with the reason (a skipped row): static INT8 would need decoder-side
calibration inputs, and the INT4 builds are written for decoder-only LMs.
Partial builds for `qonnx analyze sensitivity`: the units of both graphs (the merged decoder's read
inside its If branches) and a runtime folder with exactly some of them quantized.
"""
import shutil

from qonnx.errors import ModelError
from qonnx.runners.seq2seq import ENCODER, MERGED, UNMERGED
from qonnx.variants.partial import quantize_nodes
from qonnx.variants.units import units

FILES = {"int8-dynamic": (ENCODER, MERGED), "fp16": (ENCODER, *UNMERGED)}


class NotForSeq2Seq(ModelError):
    """A method with no encoder-decoder recipe: a skipped row, not a failure."""
    skip = True


def check(method):
    if method not in FILES:
        raise NotForSeq2Seq(f"{method} is not built for encoder-decoder (seq2seq) exports; qonnx builds "
                            f"{' and '.join(FILES)} for them (static INT8 would need decoder-side calibration "
                            "inputs; the INT4 builds are written for decoder-only LMs).")


def build(method, method_build, src_dir, out_dir, cfg, config) -> dict:
    """Build `method` on every graph of FILES[method]; the settings of each graph's build."""
    check(method)
    missing = [n for n in FILES[method] if not (src_dir / n).is_file()]
    if missing:
        raise ModelError(f"{src_dir} has no {', '.join(missing)}; export the model again with `qonnx export`.")
    return {"graphs": {n: method_build(src_dir / n, out_dir / n, cfg, config, lm=False) for n in FILES[method]}}


# -- partial builds (qonnx analyze sensitivity): units of both graphs, a folder with some quantized ---------

def unit_nodes(src_dir, method="int8-dynamic"):
    """{unit: ["GRAPH:node", ...]}: the encoder's units ("encoder layer 0 attn-in" ...) then the decoder's,
    read inside the merged decoder's If branches; a node is named with its graph's file."""
    import onnx

    out = {}
    for graph in FILES[method]:
        stack = "encoder" if graph == ENCODER else "decoder"
        model = onnx.load(str(src_dir / graph), load_external_data=False)
        tied = _transposed_tables(model)
        for u, ns in units(model, subgraphs=True, stack=stack).items():
            ns = ns + [t for n in ns for t in tied.get(n, ()) if t not in ns]
            out[u] = [f"{graph}:{n}" for n in ns]
    return out


def _transposed_tables(model) -> dict:
    """{Gather node: the Transpose nodes over its table}: T5's tied output projection reads the token table
    transposed (a MatMul over no initializer, left float). Quantizing the Gather alone would keep an FP32
    copy of the table for the Transpose; the variant quantizes both (the table stored INT8 once), so a unit
    holds them together."""
    import onnx

    gathers, transposes = {}, {}

    def walk(graph, inits):
        inits = inits | {i.name for i in graph.initializer}
        for n in graph.node:
            if n.op_type == "Gather" and n.input and n.input[0] in inits:
                gathers.setdefault(n.name, n.input[0])
            elif n.op_type == "Transpose" and n.input and n.input[0] in inits:
                transposes.setdefault(n.input[0], []).append(n.name)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g, inits)

    walk(model.graph, frozenset())
    return {g: list(dict.fromkeys(transposes[t])) for g, t in gathers.items() if t in transposes}


def quantize_folder(method, src_dir, dst_dir, nodes, ctx):
    """dst_dir: src_dir's runtime folder (the graphs of FILES[method], config, tokenizer) with exactly
    `nodes` ("GRAPH:node") quantized by `method`'s partial build, each graph's own nodes."""
    check(method)
    dst_dir.mkdir(parents=True, exist_ok=True)
    for f in src_dir.iterdir():  # config, generation config, tokenizer: what the runtime reads besides graphs
        if f.is_file() and f.suffix != ".onnx" and not f.name.endswith((".data", ".onnx_data")):
            shutil.copyfile(f, dst_dir / f.name)
    for graph in FILES[method]:
        mine = [n.split(":", 1)[1] for n in nodes if n.split(":", 1)[0] == graph]
        quantize_nodes(method, src_dir / graph, dst_dir / graph, mine, mine, False, ctx)
    return dst_dir
