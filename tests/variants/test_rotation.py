"""variants.rotation on graphs whose residual stream it cannot follow: refused with the reason,
nothing changed (the builder's graph, where it applies: tests/test_genai.py)."""
import numpy as np
import onnx
import pytest

from qonnx.variants.rotation import orthogonal, rotate


def test_orthogonal_is_orthogonal_and_seeded():
    q = orthogonal(48)
    np.testing.assert_allclose(q @ q.T, np.eye(48), atol=1e-12)
    np.testing.assert_array_equal(q, orthogonal(48))
    assert not np.allclose(q, orthogonal(48, seed=1))


@pytest.mark.parametrize("graph", ["optimum", "classifier"])
def test_a_graph_without_rms_norm_ops_is_refused_unchanged(graph, tiny_lm_onnx, tiny_classifier_onnx):
    """optimum's export writes the RMS norm as Pow, ReduceMean, Sqrt ... (no norm op to follow), and
    a BERT classifier's LayerNormalization subtracts a mean (not rotation-invariant)."""
    folder = tiny_lm_onnx if graph == "optimum" else tiny_classifier_onnx
    model = onnx.load(str(folder / "model.onnx"))
    before = model.SerializeToString()
    record, why = rotate(model)
    assert record is None and why.startswith("no RMS norm op in the graph"), why
    assert model.SerializeToString() == before
