import json

import pytest

from qonnx.config import ExportConfig
from qonnx.errors import ParityError
from qonnx.export import export


def test_classifier_export_parity_and_manifest(tiny_classifier_onnx):
    m = json.loads((tiny_classifier_onnx / "manifest.json").read_text())
    assert m["kind"] == "export" and m["source"]["task"] == "text-classification"
    assert m["parity"]["passed"] is True and m["parity"]["max_abs_diff"] < 1e-4
    shapes = {(c["batch"], c["length"]) for c in m["parity"]["cases"]}
    assert shapes == {(b, n) for b in (1, 4) for n in (8, 32, 128)}
    assert "model.onnx" in m["files"] and len(m["files"]["model.onnx"]) == 64
    assert m["versions"]["onnxruntime"]
    for f in ("config.json", "tokenizer.json", "model.onnx"):
        assert (tiny_classifier_onnx / f).is_file()


def test_lm_export_has_cache_and_checks_a_cached_step(tiny_lm_onnx):
    import onnx

    names = [i.name for i in onnx.load(str(tiny_lm_onnx / "model.onnx"), load_external_data=False).graph.input]
    assert "past_key_values.0.key" in names
    m = json.loads((tiny_lm_onnx / "manifest.json").read_text())
    assert m["source"]["task"] == "text-generation-with-past"
    assert all(c["cache_step_max_abs_diff"] < 1e-4 for c in m["parity"]["cases"])


def test_parity_failure_exits_and_leaves_no_folder(tiny_classifier, tmp_path):
    out = tmp_path / "onnx"
    with pytest.raises(ParityError, match="differs from PyTorch"):
        export(ExportConfig(model=str(tiny_classifier), output=out, atol=1e-30))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
