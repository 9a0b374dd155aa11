"""The files in examples/ are the ones the README shows: they load, and the sweep runs for real."""
import json
from pathlib import Path

import pandas as pd
import pytest

from qonnx import sweep
from qonnx.config import CompareConfig
from qonnx.config import file as configfile

pytestmark = pytest.mark.all_cores  # the examples ask for --threads 2

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_compare_example_is_a_valid_config():
    opts = configfile.options(configfile.read(EXAMPLES / "compare.yaml"), CompareConfig, "compare.yaml")
    cfg = CompareConfig(**opts)
    assert cfg.model == "demo:sentiment" and cfg.max_samples == 300 and cfg.threads == 2


def test_sweep_example_plans_the_readme_sweep():
    plan = sweep.load(EXAMPLES / "sweep.yaml")
    assert plan.points == [{"threads": 1}, {"threads": 2}]
    cfg = plan.configs(Path("out"))[0][2]
    assert cfg.batch_sizes == [1, 8, 32] and cfg.sequence_lengths == [32, 128] and len(cfg.variants) == 4


@pytest.mark.real
def test_sweep_example_runs_on_the_demo(tmp_path):
    """The shipped file as is, made cheaper by overrides (as CLI flags would): 2 of its variants,
    fewer rows and calls; every point and row measured, curves written."""
    plan = sweep.load(EXAMPLES / "sweep.yaml", overrides={"variants": ["onnx-fp32", "onnx-int8-dynamic"],
                                                          "max_samples": 100, "latency_samples": 20,
                                                          "sequence_lengths": [32]},
                      output=tmp_path / "sweep")
    doc = sweep.run(plan)
    assert [p["settings"] for p in doc["points"]] == [{"threads": 1}, {"threads": 2}]
    for p in doc["points"]:
        rows = json.loads((Path(p["run"]) / "results.json").read_text())["rows"]
        assert [r["status"] for r in rows] == ["ok", "ok"], [r["reason"] for r in rows]
        assert all(len(r["shapes"]) == 3 * 2 for r in rows)  # 3 batch sizes x (padded, real)
    shapes = pd.read_csv(tmp_path / "sweep" / "shapes.csv")
    assert len(shapes) == 2 * 2 * 6 and (shapes["latency_p50_ms"] > 0).all()
    assert (tmp_path / "sweep" / "curves.png").is_file()
