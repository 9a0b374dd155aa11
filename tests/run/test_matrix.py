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
# KV heads (llama), fused QKV (phi3). BERT runs its default matrix in test_tokens.py and
# test_embeddings.py. Every architecture of tiny.py goes through export, parity and every ONNX method
# in test_models.py::test_export_and_quantize; this keeps CI inside its time.
MATRIX = ["distilbert", "deberta-v2", "gpt2", "llama", "phi3"]


GENAI_BUILDER_LACKS = {"gpt2"}  # onnxruntime-genai's model builder has no recipe for these


def expected_skips(arch, lm) -> dict:
    """{row: words its reason must hold}, from this machine's facts (asked here, not of qonnx)."""
    from importlib.util import find_spec
    from pathlib import Path

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    out = {}
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        out["torch-bf16"] = "BF16"
    if find_spec("bitsandbytes") is None:
        out["bnb-int4"] = "bitsandbytes is not installed"
    if lm:
        why = ("onnxruntime-genai is not installed" if find_spec("onnxruntime_genai") is None else
               "builder does not support" if arch in GENAI_BUILDER_LACKS else None)
        out.update({v: why for v in ("genai-fp32", "genai-int8", "genai-int4", "genai-int4-mixed") if why})
    return out


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
    failed = {v: r["reason"] for v, r in rows.items() if r["status"] == "failed"}
    assert not failed, failed
    skipped = {v: r["reason"] for v, r in rows.items() if r["status"] == "skipped"}
    expected = expected_skips(arch, lm)
    assert set(skipped) == set(expected), (skipped, expected)  # exactly the rows this machine cannot run
    assert all(why in skipped[v] for v, why in expected.items()), skipped
    assert rows["onnx-fp32"]["status"] == "ok" and rows["torch-fp32"]["status"] == "ok"
    assert rows["onnx-fp32"]["agreement"] >= (0.95 if lm else 1.0)


def rows_of(run_dir) -> dict:
    import json

    return {r["variant"]: r for r in json.loads((run_dir / "results.json").read_text())["rows"]}


def default_rows(run_dir, result, arch, names, lm=False) -> dict:
    """A CLI run of a default matrix (or of some of its rows): exit 0, exactly `names`, each ok or
    skipped with the reason this machine gives (expected_skips), none failed. Returns the rows by variant."""
    assert result.exit_code == 0, result.output
    rows = rows_of(run_dir)
    assert set(rows) == set(names), sorted(rows)
    skipped = {v: r["reason"] for v, r in rows.items() if r["status"] == "skipped"}
    expected = {v: why for v, why in expected_skips(arch, lm).items() if v in names}
    assert set(skipped) == set(expected) and all(why in skipped[v] for v, why in expected.items()), skipped
    assert not [v for v, r in rows.items() if r["status"] == "failed"]
    return rows
