"""A new method takes one file and one registration line: quantize builds it (keyed, stored,
checked against FP32) and compare measures its onnx-NAME row next to the others."""
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.config import QuantizeConfig, choices
from qonnx.parity import PROBE_TEXTS
from qonnx.variants import METHODS, VARIANTS, quantize, register


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(METHODS, "toy", "toy_method")  # the registration line's effect ...
    register("toy", "toy_method")                      # ... and its row
    yield
    VARIANTS.pop("onnx-toy", None)
    from qonnx.variants.registry import DEFAULT_ORDER

    if "onnx-toy" in DEFAULT_ORDER:
        DEFAULT_ORDER.remove("onnx-toy")


def test_a_toy_method_builds_and_is_measured(toy, tiny_classifier, tiny_classifier_onnx, tmp_path):
    assert "toy" in choices.METHODS and "onnx-toy" in choices.variant_names()
    data = quantize(QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="toy", output=tmp_path / "toy"))
    assert data["settings"]["rounded_initializers"] > 0 and data["method"] == "toy"
    assert 0 < data["parity"]["max_abs_diff"] < 0.1  # bfloat16 weights: close to FP32, not identical
    reviews = tmp_path / "reviews.csv"
    pd.DataFrame({"text": PROBE_TEXTS, "label": [("positive", "negative")[i % 2] for i in range(len(PROBE_TEXTS))]}).to_csv(reviews, index=False)
    res = CliRunner().invoke(main, ["compare", str(tiny_classifier), "-o", str(tmp_path / "run"), "--dataset",
                                    str(reviews), "--variants", "onnx-fp32,onnx-toy", "--latency-samples", "5"])
    assert res.exit_code == 0, res.output
    rows = {r["variant"]: r for r in json.loads((tmp_path / "run" / "results.json").read_text())["rows"]}
    assert rows["onnx-toy"]["status"] == "ok" and rows["onnx-toy"]["note"] == "toy: weights rounded to bfloat16 precision"
    assert rows["onnx-toy"]["agreement"] is not None


def test_an_unknown_method_says_what_there_is():
    from qonnx.errors import ConfigError

    with pytest.raises(ConfigError, match="Unknown quantization method 'tyo'.*Available: fp16"):
        QuantizeConfig(onnx_dir=".", method="tyo")
