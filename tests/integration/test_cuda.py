"""CUDA paths: run where a GPU and onnxruntime-gpu exist, skip with the reason elsewhere."""
import json

import numpy as np
import pytest

from qonnx.runners.ort import placement, provider_problem


def cuda_reason():
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine (torch.cuda.is_available() is False)"
    return provider_problem("cuda")


def test_placement_reads_the_profile_on_cpu(tiny_classifier_onnx):
    feed = {"input_ids": np.ones((1, 8), np.int64), "attention_mask": np.ones((1, 8), np.int64),
            "token_type_ids": np.zeros((1, 8), np.int64)}
    got = placement(tiny_classifier_onnx / "model.onnx", "cpu", feed)
    assert got["nodes_by_provider"].get("CPUExecutionProvider", 0) > 10
    assert got["cpu_nodes"] == 0  # on the CPU provider, CPU placement is not a fallback


@pytest.mark.cuda
def test_compare_on_cuda(tiny_classifier, tmp_path):
    reason = cuda_reason()
    if reason:
        pytest.skip(reason)
    import pandas as pd

    from qonnx.config import CompareConfig
    from qonnx.parity import PROBE_TEXTS
    from qonnx.run.compare import compare

    f = tmp_path / "d.csv"
    pd.DataFrame({"text": PROBE_TEXTS, "label": [0, 1] * 4}).to_csv(f, index=False)
    results = compare(CompareConfig(model=str(tiny_classifier), output=tmp_path / "run", dataset=str(f),
                                    providers=["cpu", "cuda"], latency_samples=5, warmup=1,
                                    variants=["torch-fp32", "torch-fp16", "onnx-fp32", "onnx-int8-dynamic"]))
    rows = {(r["variant"], r["provider"]): r for r in results["rows"]}
    for v in ("torch-fp32", "torch-fp16", "onnx-fp32"):
        assert rows[(v, "cuda")]["status"] == "ok", rows[(v, "cuda")].get("reason")
    assert rows[("torch-fp32", "cuda")]["cuda_peak_mb"] > 0
    int8 = rows[("onnx-int8-dynamic", "cuda")]
    assert int8["status"] == "ok" and "cpu_nodes" in int8["placement"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["environment"]["gpu"]["name"]
