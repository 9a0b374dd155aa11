"""Benchmark: ONNX Runtime's QNN QDQ helpers on a classifier export, setting by setting.

    .venv/bin/python benchmarks/qnn_qdq.py FP32_DIR OUT_DIR [--calibration 64] [--test 256] SPEC ...

SPEC is ACT:WEIGHTS:CALIBRATION:MASK:KEEP:CHANNELS, e.g. u16:i8:minmax:fix:all:pt:
ACT u8 | u16 (activations), WEIGHTS u8 | i8 (i8: symmetric), CALIBRATION minmax | entropy, MASK
raw | fix (the attention mask's float32-minimum constant left, or bounded to -1e4 as
int8-qdq-qnn does), KEEP all | keepnorm (LayerNormalization and Softmax left float), CHANNELS
pt | pc (per tensor or per channel weights). Each graph is built as int8-qdq-qnn builds it
(its prepare: qnn_preprocess_model with LayerNorm fusion, opset 21; then get_qnn_qdq_config and
quantize) on the first
--calibration sentences of demo:sentiment's calibration split, then run by the CPU EP on the
first --test sentences of its test split (each padded to 128 tokens, batch 1); printed: the
predictions that agree with the FP32 export's, and the largest logit difference.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from transformers import AutoTokenizer

from qonnx.cache import cache_dir
from qonnx.calibration import TextReader
from qonnx.variants.int8_qdq_qnn import prepare


def main():
    from onnxruntime.quantization import CalibrationMethod, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    ap = argparse.ArgumentParser()
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--calibration", type=int, default=64)
    ap.add_argument("--test", type=int, default=256)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(a.src)
    data = cache_dir() / "demo" / "sentiment" / "data"
    cal = pd.read_csv(data / "calibration.csv")["text"].tolist()[:a.calibration]
    test = pd.read_csv(data / "test.csv")["text"].tolist()[:a.test]
    names = [i.name for i in ort.InferenceSession(str(a.src / "model.onnx")).get_inputs()]

    def logits(path):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        reader = TextReader(test, tok, names)
        return np.concatenate([s.run(None, f)[0] for f in iter(reader.get_next, None)])

    ref = logits(a.src / "model.onnx")
    pre, fixed = a.out / "pre.onnx", a.out / "pre-mask.onnx"
    prepare(a.src / "model.onnx", pre, bound=False)
    print(prepare(a.src / "model.onnx", fixed), flush=True)
    types = {"u8": QuantType.QUInt8, "u16": QuantType.QUInt16, "i8": QuantType.QInt8}
    results = {}
    for spec in a.specs:
        act, w, calm, mask, keep, ch = spec.split(":")
        src = fixed if mask == "fix" else pre
        kw = dict(activation_type=types[act], weight_type=types[w], weight_symmetric=w == "i8",
                  calibrate_method=CalibrationMethod.Entropy if calm == "entropy" else CalibrationMethod.MinMax,
                  per_channel=ch == "pc")
        if keep == "keepnorm":
            kw["nodes_to_exclude"] = [n.name for n in onnx.load(str(src)).graph.node
                                      if n.op_type in ("LayerNormalization", "Softmax")]
        t0 = time.time()
        dst = a.out / f"{spec.replace(':', '_')}.onnx"
        quantize(str(src), str(dst), get_qnn_qdq_config(str(src), TextReader(cal, tok, names), **kw))
        q = logits(dst)
        results[spec] = {"agree": int((q.argmax(1) == ref.argmax(1)).sum()), "n": len(test),
                         "max_abs_diff": float(np.abs(q - ref).max()), "seconds": round(time.time() - t0)}
        print(spec, results[spec], flush=True)
    (a.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
