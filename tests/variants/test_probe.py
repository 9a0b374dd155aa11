"""The LM budget search's per-unit costs computed from the part of the graph downstream of a unit
(search.probe) equal those of the whole build."""
import json

import pytest

from tiny import part_and_whole_kls


def _check(kls, total):
    assert len(kls) >= 5  # 2 layers x 4 roles and the head
    for unit, (part, whole, nodes) in kls.items():
        assert whole > 0 and part == pytest.approx(whole, rel=1e-3, abs=1e-9), unit
        assert nodes < total
    counts = [n for _, _, n in kls.values()]
    assert min(counts) < max(counts) / 3  # the head's part is a few nodes, the first layer's most of the graph


def test_a_unit_s_cost_from_its_part_equals_the_whole_build_s(tiny_lm_onnx, tmp_path):
    import onnx

    config = json.loads((tiny_lm_onnx / "config.json").read_text())
    total = len(onnx.load(str(tiny_lm_onnx / "model.onnx"), load_external_data=False).graph.node)
    _check(part_and_whole_kls(tiny_lm_onnx / "model.onnx", config, tmp_path), total)
