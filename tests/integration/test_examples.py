"""The files in examples/ are the ones the README shows: they load and plan what the README says (the
sweep runs for real on the demo in test_real_sentiment.py, beside the builds it reuses)."""
from pathlib import Path

import pytest

from qonnx import sweep
from qonnx.config import CompareConfig
from qonnx.config import file as configfile

pytestmark = pytest.mark.all_cores  # the examples ask for --threads 2, checked against the usable cores

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
