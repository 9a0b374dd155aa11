"""Variants of an encoder-decoder export (optimum's encoder_model.onnx, decoder_model.onnx,
decoder_with_past_model.onnx and decoder_model_merged.onnx): the method's own build on each graph the
runtime will load.

- int8-dynamic: the encoder and the merged decoder (one decoder graph with and without the cache).
- fp16: the encoder and the two unmerged decoders: ONNX Runtime refuses the merged decoder once
  converted (its If branches return an outer-scope value), so the FP16 folder holds the pair.
Other methods are refused with the reason (a skipped row): static INT8 would need decoder-side
calibration inputs, and the INT4 builds are written for decoder-only LMs.
"""
from qonnx.errors import ModelError
from qonnx.runners.seq2seq import ENCODER, MERGED, UNMERGED

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
