"""Any model a user points it at: tiny random models of many architectures through the whole
default compare matrix. Every row is ok or skipped with a stated reason, and ONNX FP32 agrees
with PyTorch FP32."""
import pytest

import tiny
from qonnx.config import CompareConfig
from qonnx.run.compare import compare

SENTENCES = ["the film was a delight", "boring predictable mess", "it rained all day", "great good fine",
             "i would not recommend this restaurant", "what a boring movie", "love the service", "awful food"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import pandas as pd

    d = tmp_path_factory.mktemp("matrix-data")
    pd.DataFrame({"text": SENTENCES, "label": ["positive", "negative"] * 4}).to_csv(d / "eval.csv", index=False)
    pd.DataFrame({"text": list(reversed(SENTENCES))}).to_csv(d / "calib.csv", index=False)
    (d / "corpus.txt").write_text(" ".join(SENTENCES * 6))
    return d


# The whole matrix (9 worker processes per model) on the architectures whose inputs differ most: no
# token_type_ids (distilbert), relative attention (deberta-v2), GPT-2's own config names, grouped
# KV heads (llama), fused QKV (phi3). Every architecture of tiny.py goes through export, parity
# and every ONNX method in test_models.py::test_export_and_quantize; this keeps CI inside its time.
MATRIX = ["bert", "distilbert", "deberta-v2", "gpt2", "llama", "phi3"]


@pytest.mark.parametrize("arch", MATRIX)
def test_default_matrix(arch, files, tmp_path):
    model = tiny.build(arch, tmp_path / arch)
    lm = arch in tiny.LMS
    cfg = CompareConfig(model=str(model), output=tmp_path / "run",
                        dataset=str(files / ("corpus.txt" if lm else "eval.csv")),
                        calibration=None if lm else str(files / "calib.csv"),
                        max_samples=8, batch_size=4, latency_samples=3, warmup=1,
                        eval_tokens=48, window=24, stride=12, max_new_tokens=3,
                        threads=1, concurrent_rows=True)  # statuses and agreement, not timings: rows side by side
    results = compare(cfg)
    rows = {r["variant"]: r for r in results["rows"]}
    bad = {v: r["reason"] for v, r in rows.items() if r["status"] == "failed" or
           (r["status"] == "skipped" and not r["reason"])}
    assert not bad, bad
    assert rows["onnx-fp32"]["status"] == "ok" and rows["torch-fp32"]["status"] == "ok"
    assert rows["onnx-fp32"]["agreement"] >= (0.95 if lm else 1.0)
