"""--mlflow: every row an MLflow run in an SQLite store; a tracking server that does not answer."""
import json
import socket
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.parity import PROBE_TEXTS


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    f = tmp_path_factory.mktemp("data") / "reviews.csv"
    pd.DataFrame({"review": PROBE_TEXTS * 3, "sentiment": ["positive", "negative", "negative"] * 8}).to_csv(f, index=False)
    return f


def test_mlflow_gets_every_row(tiny_classifier, reviews, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="the tracking extra is not installed: pip install 'qonnx-compare[tracking]'")
    store = tmp_path / "tracking" / "runs.db"
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["compare", str(tiny_classifier), "-o", str(out), "--dataset", str(reviews),
                                    "--text-column", "review", "--label-column", "sentiment",
                                    "--variants", "onnx-fp32,onnx-int8-dynamic,onnx-fp16", "--providers", "cpu,cuda",
                                    "--batch-sizes", "1,2", "--sequence-lengths", "16", "--latency-samples", "5",
                                    "--mlflow", str(store)])
    assert res.exit_code == 0, res.output
    assert f"at sqlite:///{store}" in res.output
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    runs = mlflow.search_runs(experiment_names=["qonnx"])
    results = json.loads((out / "results.json").read_text())
    parent = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parent) == 1 and len(children) == len(results["rows"]) == 6
    for r in results["rows"]:
        got = children[(children["params.variant"] == r["variant"]) & (children["params.provider"] == r["provider"])]
        assert len(got) == 1 and got["tags.qonnx.status"].iloc[0] == r["status"]
        if r["status"] == "ok":
            assert got["metrics.accuracy"].iloc[0] == pytest.approx(r["accuracy"])
            assert got["metrics.latency_p50_ms"].iloc[0] == pytest.approx(r["latency_ms"]["p50"])
            assert got["metrics.shape_b2_l16_padded_latency_p50_ms"].iloc[0] > 0
    artifacts = Path(mlflow.artifacts.download_artifacts(run_id=parent["run_id"].iloc[0], dst_path=str(tmp_path / "dl")))
    assert (artifacts / "report.html").is_file() and (artifacts / "curves.png").is_file()
    assert (store.parent / "mlartifacts").is_dir()  # beside the store, not in the working directory


def test_mlflow_server_that_does_not_answer_is_refused_before_measuring(tiny_classifier, reviews, tmp_path):
    pytest.importorskip("mlflow", reason="the tracking extra is not installed: pip install 'qonnx-compare[tracking]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(main, ["compare", str(tiny_classifier), "-o", str(tmp_path / "r"), "--dataset", str(reviews),
                                    "--text-column", "review", "--label-column", "sentiment", "--variants", "onnx-fp32",
                                    "--mlflow", f"http://127.0.0.1:{port}"])
    assert res.exit_code == 1 and "does not answer" in res.output and "nothing was measured" in res.output, res.output
    assert not (tmp_path / "r").exists()
