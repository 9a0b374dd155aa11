"""measure and report.schema: percentiles that say how many samples stand behind them; rows
that keep their field names, units and unknown fields."""
import pytest

from qonnx.errors import DataError
from qonnx.measure.latency import Latency
from qonnx.schema import Row, dump, load


@pytest.mark.parametrize("n,p90,p99", [(4, False, False), (50, True, False), (100, True, True)])
def test_percentiles_only_where_the_sample_count_supports_them(n, p90, p99):
    lat = Latency.from_values([0.001 * (i + 1) for i in range(n)]).to_dict()
    assert lat["n"] == n and lat["p50"] > 0
    assert (lat["p90"] is not None) == p90 and (lat["p99"] is not None) == p99


def test_rows_round_trip_and_keep_unknown_fields():
    row = Row.from_dict({"variant": "onnx-fp32", "provider": "cpu", "status": "ok", "accuracy": 0.9,
                         "from_a_newer_qonnx": 1})
    assert row.runtime == "onnx" and row.extra == {"from_a_newer_qonnx": 1}
    doc = dump({"rows": [row], "settings": {"kind": "classification"}})
    assert doc["schema_version"] == 2 and doc["units"]["peak_memory_mb"] == "MiB"
    assert doc["rows"][0]["from_a_newer_qonnx"] == 1 and doc["rows"][0]["accuracy"] == 0.9
    assert load(doc)["rows"][0] == row


def test_a_row_without_its_keys_is_a_clear_error():
    with pytest.raises(DataError, match="a row lacks provider"):
        Row.from_dict({"variant": "x", "status": "ok"})
