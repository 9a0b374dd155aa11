"""Commands that build one artifact: export (FP32 ONNX) and quantize (a variant of it)."""
import click

from qonnx.cli.common import handle_errors
from qonnx.cli.options import budget, default_of, options
from qonnx.config import ExportConfig, QuantizeConfig
from qonnx.config.choices import METHODS
from qonnx.export import export as run_export
from qonnx.variants import quantize as run_quantize
from qonnx.variants.search.describe import describe


@click.command()
@click.argument("model")
@options(ExportConfig, "output", "task", output="[$QONNX_ARTIFACTS or ./artifacts, /NAME/onnx-fp32-KEY].")
@click.option("--opset", type=int, help="ONNX opset (optimum's default if unset).")
@options(ExportConfig, "atol", atol="the export vs PyTorch (max |logit diff|).")
@options(ExportConfig, "overwrite")
@click.option("--exporter", default=default_of(ExportConfig, "exporter"), show_default=True,
              help="optimum | genai (decoder LMs: onnxruntime-genai's model builder, fused attention; "
                   "needs qonnx-compare[genai]).")
@click.option("--precision", default=default_of(ExportConfig, "precision"), show_default=True,
              help="genai: fp32 | int4 (the builder's default RTN) | int4-mixed (its k_quant_mixed) | int8 "
                   "(qonnx: 8-bit MatMulNBits) | int4-budget (qonnx: 4-bit + 8-bit layers within +10 % "
                   "perplexity on the demo's validation text).")
@handle_errors
def export(model, **kw):
    """Export MODEL (folder, hub id or demo:NAME) to ONNX and check it against PyTorch."""
    data = run_export(ExportConfig(model=model, **kw))
    p = data["parity"]
    verb = "reused the identical export in" if data["reused"] else "exported"
    click.echo(f"{verb} {model} -> {data['output']}  (max |diff| vs PyTorch {p['max_abs_diff']:.2e}, "
               f"{agreement(p)} over {len(p['cases'])} shapes)")


def agreement(p) -> str:
    """A parity report's agreement: top-1 (classifiers, LMs) or the worst cosine (embedding models)."""
    if "min_cosine" in p:
        return f"mean-pooled cosine >= {p['min_cosine']:.6f}"
    return f"top-1 agreement {p['min_top1_agreement']:.0%}"


@click.command()
@click.argument("onnx_dir", type=click.Path())
@options(QuantizeConfig, "method", "output", "calibration", "calibration_method", method=" | ".join(METHODS),
         output="[beside ONNX_DIR: onnx-METHOD-KEY].")
@click.option("--num-samples", type=int, default=default_of(QuantizeConfig, "num_samples"), show_default=True,
              help="Calibration samples.")
@options(QuantizeConfig, "text_column", "tokens_column", "question_column", "context_column")
@click.option("--per-channel/--per-tensor", default=default_of(QuantizeConfig, "per_channel"),
              help="INT8 weight scales [int8-dynamic fused and int8-static: per channel; int8-dynamic "
                   "with --max-accuracy-drop: per tensor where that holds, per channel where not].")
@click.option("--static-ffn-out", default=default_of(QuantizeConfig, "static_ffn_out"), show_default=True,
              help="int8-static: FFN output projections (GELU outliers) as dynamic INT8, or static like the rest.")
@options(QuantizeConfig, "seed")
@click.option("--block-size", type=int,
              help="int4-weight block size [32]; refused with --max-perplexity-increase, whose search picks its own.")
@click.option("--algorithm", default=default_of(QuantizeConfig, "algorithm"), show_default=True,
              help="int4-weight: hqq | rtn")
@click.option("--int8-scheme", default=default_of(QuantizeConfig, "int8_scheme"), show_default=True,
              help="int8-dynamic: fused (encoders) | blockwise (decoders) | auto")
@click.option("--qnn-activations", default=default_of(QuantizeConfig, "qnn_activations"), show_default=True,
              help="int8-qdq-qnn: activation type, uint16 | uint8 (QNN's HTP takes both; weights are int8, "
                   "symmetric).")
@options(QuantizeConfig, "overwrite", "threads", threads="Used by the budget searches.")
@budget(QuantizeConfig, "int8-static/int8-dynamic on classifiers: search calibration (int8-static) or per-tensor/"
                        "per-channel weights (int8-dynamic), then keep the most damaging units FP32, until the "
                        "drop on --validation is within it (0.005 = half a point); exit 2 if none does.")
@handle_errors
def quantize(onnx_dir, **kw):
    """Build a deployable quantized variant of an FP32 ONNX export folder."""
    data = run_quantize(QuantizeConfig(onnx_dir=onnx_dir, **kw))
    search = (data.get("settings") or {}).get("budget_search")
    if search:
        click.echo(describe(search))
    p = data["parity"]
    verb = "reused the identical" if data["reused"] else "built"
    click.echo(f"{verb} {kw['method']} -> {data['output']}  (max |diff| vs ONNX FP32 {p['max_abs_diff']:.3g}, "
               f"{agreement(p)})")
