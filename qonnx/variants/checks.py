"""Checks around a variant build: the source export is sound, the result agrees with it."""
import json
import math
from pathlib import Path

from qonnx import manifest, parity
from qonnx.errors import ModelError
from qonnx.models import is_seq2seq_task
from qonnx.runners import seq2seq
from qonnx.runners.ort import OrtRunner


def load_export(src_dir: Path):
    """(manifest, config) of an FP32 export folder, with clear errors for what is wrong."""
    import onnx

    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise ModelError(f"No such ONNX folder: {src_dir}")
    model = src_dir / "model.onnx"
    if not model.is_file() and (src_dir / seq2seq.ENCODER).is_file():  # an encoder-decoder export
        model = src_dir / seq2seq.ENCODER
    if not model.is_file():
        raise ModelError(f"{src_dir} holds no model.onnx; run `qonnx export MODEL -o {src_dir}` first.")
    try:
        onnx.checker.check_model(str(model))
    except Exception as e:
        raise ModelError(f"{model} is not a valid ONNX model: {str(e).splitlines()[0][:200]}") from None
    if not (src_dir / "config.json").is_file():
        raise ModelError(f"{src_dir} has no config.json; export it with `qonnx export`.")
    return manifest.read(src_dir), json.loads((src_dir / "config.json").read_text())


def check_variant(src_dir, out_dir, task, config):
    """Parity of the new variant against the FP32 export on real text; NaN/Inf is an error."""
    tok = parity.preprocessor(src_dir, task or "text-classification")
    if is_seq2seq_task(task):
        ref, cand = seq2seq.make(src_dir, "onnx", task), seq2seq.make(out_dir, "onnx", task)
    else:
        ref, cand = OrtRunner(Path(src_dir) / "model.onnx", config=config), OrtRunner(Path(out_dir) / "model.onnx",
                                                                                     config=config)
    with ref, cand:
        report = parity.check(task or "text-classification", ref, cand, tok, parity.PROBE_TEXTS)
    if not math.isfinite(report["max_abs_diff"]):
        raise ModelError(f"The variant in {out_dir} produces NaN or Inf on real inputs; not written.")
    return report
