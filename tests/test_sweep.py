"""Config files, batch/length curves and sweeps on tiny models (the real example: test_examples)."""
import json

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from qonnx import sweep
from qonnx.cli import main
from qonnx.config import CompareConfig
from qonnx.config import file as configfile
from qonnx.errors import ConfigError
from qonnx.parity import PROBE_TEXTS
from qonnx.run.compare import compare

pytestmark = pytest.mark.all_cores  # the sweeps here time threads 1 and 2

FAST = {"latency_samples": 5, "warmup": 1, "batch_size": 8}


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    f = tmp_path_factory.mktemp("data") / "reviews.csv"
    pd.DataFrame({"review": PROBE_TEXTS * 3, "sentiment": ["positive", "negative", "negative"] * 8}).to_csv(f, index=False)
    return f


def write(path, doc):
    path.write_text(yaml.safe_dump(doc) if path.suffix != ".json" else json.dumps(doc))
    return path


# -- config files --------------------------------------------------------------------------------

def test_compare_config_file_with_a_flag_that_wins(tiny_classifier, reviews, tmp_path):
    f = write(tmp_path / "run.yaml", {"model": str(tiny_classifier), "dataset": str(reviews),
                                      "text-column": "review", "label_column": "sentiment",
                                      "variants": "onnx-fp32", "max-samples": 12, **FAST})
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["compare", "--config", str(f), "-o", str(out), "--max-samples", "9"])
    assert res.exit_code == 0, res.output
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["max_samples"] == 9 and settings["text_column"] == "review"  # flag won, file filled
    assert settings["dataset_selection"]["rows"] == 9
    # the saved config measures the same run again
    saved = configfile.options(configfile.read(out / "config.yaml"), CompareConfig, "config.yaml")
    assert CompareConfig(**saved).max_samples == 9 and saved["variants"] == ["onnx-fp32"]
    again = tmp_path / "again"
    res = CliRunner().invoke(main, ["compare", "--config", str(out / "config.yaml"), "-o", str(again)])
    assert res.exit_code == 0, res.output
    assert json.loads((again / "run.json").read_text())["settings"]["dataset_selection"] == settings["dataset_selection"]


@pytest.mark.parametrize("content, message", [
    ({"batchsize": 4}, "unknown key 'batchsize'. Did you mean 'batch_size'?"),
    ({"max_samples": "many"}, "'max_samples' must be a whole number, got 'many'"),
    ({"providers": {"cpu": 1}}, "'providers' must be a list"),
    ({"variants": ["onnx-fp23"]}, "Unknown variant 'onnx-fp23'"),
    ({"resume": True}, "unknown key 'resume'"),
    ([1, 2], "must hold a mapping of option names"),
])
def test_bad_config_files_are_one_clear_error(tmp_path, content, message):
    f = write(tmp_path / "bad.yaml", content)
    res = CliRunner().invoke(main, ["compare", "--config", str(f), "-o", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert message in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_unreadable_config_files(tmp_path):
    (tmp_path / "broken.yaml").write_text("model: [demo:sentiment\nthreads: 2\n")
    (tmp_path / "broken.json").write_text("{\"model\": }")
    (tmp_path / "empty.yaml").write_text("")
    for name, message in (("broken.yaml", "is not valid YAML"), ("broken.json", "is not valid JSON"),
                          ("empty.yaml", "is empty"), ("missing.yaml", "does not exist")):
        res = CliRunner().invoke(main, ["compare", "--config", str(tmp_path / name)])
        assert res.exit_code == 1 and message in res.output, res.output


# -- batch and length curves ---------------------------------------------------------------------

def test_classifier_curves_padded_and_real(tiny_classifier, reviews, tmp_path):
    cfg = CompareConfig(model=str(tiny_classifier), output=tmp_path / "run", dataset=str(reviews),
                        text_column="review", label_column="sentiment", variants=["torch-fp32", "onnx-fp32"],
                        batch_sizes=[4, 1], sequence_lengths="128,8", **FAST)
    assert cfg.batch_sizes == [1, 4] and cfg.sequence_lengths == [8, 128]
    results = compare(cfg)
    for row in results["rows"]:
        assert row["status"] == "ok", row["reason"]
        points = {(s["batch"], s["length"], s["padding"]): s for s in row["shapes"]}
        assert set(points) == {(b, n, p) for b in (1, 4) for n in (8, 128) for p in ("padded", "real")}
        for (b, n, p), s in points.items():
            assert s["latency_ms"]["n"] >= 10 and s["latency_ms"]["p50"] > 0
            assert s["tokens_per_row"] == n if p == "padded" else 1 < s["tokens_per_row"] <= n
            assert 1 < s["real_tokens_per_row"] <= s["tokens_per_row"]
            # the same texts at both paddings: the same real tokens, fewer processed at real length
            assert s["real_tokens_per_row"] == points[(b, n, "padded")]["real_tokens_per_row"]
        assert points[(4, 128, "real")]["tokens_per_row"] < points[(4, 128, "padded")]["tokens_per_row"]
    table = pd.read_csv(tmp_path / "run" / "shapes.csv")
    assert len(table) == 2 * 8 and (tmp_path / "run" / "curves.png").stat().st_size > 10_000
    assert "curves" in (tmp_path / "run" / "report.html").read_text()


def test_lm_curves_are_prefill_passes(tiny_lm, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(PROBE_TEXTS * 20))
    cfg = CompareConfig(model=str(tiny_lm), output=tmp_path / "run", dataset=str(corpus), variants=["onnx-fp32"],
                        batch_sizes=[1, 2], sequence_lengths=[16], eval_tokens=256, window=64, stride=32,
                        max_new_tokens=4, **FAST)
    row = compare(cfg)["rows"][0]
    assert row["status"] == "ok", row["reason"]
    assert [(s["batch"], s["length"], s["padding"]) for s in row["shapes"]] == [(1, 16, "none"), (2, 16, "none")]


@pytest.mark.parametrize("option, value, message", [
    ("batch_sizes", [0], "--batch-sizes takes whole numbers of at least 1"),
    ("sequence_lengths", ["long"], "--sequence-lengths takes whole numbers of at least 1"),
    ("batch_sizes", [1.5], "--batch-sizes takes whole numbers"),
    ("executor", "slurm", "Unknown executor 'slurm'"),
    ("address", "auto", "--address is for --executor ray"),
])
def test_bad_axis_values(option, value, message):
    with pytest.raises(ConfigError, match=message):
        CompareConfig(**{option: value})


def test_length_longer_than_the_model_takes(tiny_classifier, reviews, tmp_path):
    cfg = CompareConfig(model=str(tiny_classifier), output=tmp_path / "run", dataset=str(reviews),
                        text_column="review", label_column="sentiment", sequence_lengths=[1024])
    with pytest.raises(ConfigError, match="longer than .* takes \\(256 positions\\)"):
        compare(cfg)
    assert not (tmp_path / "run").exists()


# -- sweeps --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sweep_file(tiny_classifier, reviews, tmp_path_factory):
    f = tmp_path_factory.mktemp("sweep") / "tiny.yaml"
    return write(f, {"name": "tiny", "model": str(tiny_classifier), "dataset": str(reviews),
                     "text_column": "review", "label_column": "sentiment", "max_samples": 12, **FAST,
                     "variants": ["onnx-fp32", "onnx-int8-dynamic"],
                     "axes": {"threads": [1, 2], "batch_sizes": [1, 4], "sequence_lengths": [8]}})


def test_sweep_runs_every_point_and_combines(sweep_file, tmp_path):
    out = tmp_path / "sw"
    res = CliRunner().invoke(main, ["sweep", str(sweep_file), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "sweep tiny: 2 point(s)" in res.output
    points = sorted(p.name for p in (out / "points").iterdir())
    assert points == ["01-threads=1", "02-threads=2"]
    for name, threads in zip(points, (1, 2)):
        settings = json.loads((out / "points" / name / "run.json").read_text())["settings"]
        assert settings["threads"] == threads and settings["batch_sizes"] == [1, 4]
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 4 and set(table["point.threads"]) == {1, 2} and (table["status"] == "ok").all()
    shapes = pd.read_csv(out / "shapes.csv")
    assert len(shapes) == 4 * 2 * 2  # rows x batch sizes x paddings
    assert (out / "curves.png").stat().st_size > 10_000
    # the resolved file re-runs the sweep: same points
    again = sweep.load(out / "sweep.yaml")
    assert again.points == [{"threads": 1}, {"threads": 2}]
    # a second run into the same folder needs --resume; with it, nothing is measured again
    res = CliRunner().invoke(main, ["sweep", str(sweep_file), "-o", str(out)])
    assert res.exit_code == 1 and "already holds a sweep; pass --resume" in res.output
    before = (out / "points" / points[0] / "rows" / "onnx-fp32@cpu.json").read_text()
    res = CliRunner().invoke(main, ["sweep", str(sweep_file), "-o", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    assert (out / "points" / points[0] / "rows" / "onnx-fp32@cpu.json").read_text() == before
    # an edited sweep file is another sweep: --resume refuses it and the folder is left as it was
    edited = write(tmp_path / "edited.yaml", {**yaml.safe_load(sweep_file.read_text()),
                                                "axes": {"threads": [1], "batch_sizes": [1, 4], "sequence_lengths": [8]}})
    kept = (out / "sweep.yaml").read_text()
    res = CliRunner().invoke(main, ["sweep", str(edited), "-o", str(out), "--resume"])
    assert res.exit_code == 1 and "the sweep changed" in res.output and "points" in res.output, res.output
    assert (out / "sweep.yaml").read_text() == kept


def test_sweep_points_and_cli_overrides(tiny_classifier, reviews, tmp_path):
    f = write(tmp_path / "p.yaml", {"model": str(tiny_classifier), "dataset": str(reviews), "text_column": "review",
                                    "label_column": "sentiment", "variants": ["onnx-fp32"],
                                    "points": [{"calibration_method": "entropy"}, {"seed": 3}],
                                    "axes": {"calibration_methods": ["minmax", "percentile"]}})
    plan = sweep.load(f, overrides={"threads": 1})
    assert plan.points == [{"calibration_method": "entropy"}, {"seed": 3},
                           {"calibration_method": "minmax"}, {"calibration_method": "percentile"}]
    assert all(cfg.threads == 1 for _, _, cfg in plan.configs(tmp_path))


@pytest.mark.parametrize("doc, message", [
    ({"axes": {"thread": [1]}}, "axes: unknown key 'thread'. Did you mean 'threads'?"),
    ({"axes": {"threads": [1, "two"]}}, "axes.threads: 'threads' must be a whole number, got 'two'"),
    ({"axes": {"calibration_method": ["minmax", "kl"]}}, "Unknown calibration method 'kl'"),
    ({"points": [{"seed": 1}, {"sede": 2}]}, "points[1]: unknown key 'sede'. Did you mean 'seed'?"),
    ({"axes": [1, 2]}, "'axes' maps option names to lists"),
    ({"output": "x"}, "'output' is chosen per point by the sweep"),
    ({"axes": {"threads": []}}, "axes.threads is empty"),
])
def test_bad_sweep_files(tmp_path, doc, message):
    f = write(tmp_path / "bad.yaml", doc)
    res = CliRunner().invoke(main, ["sweep", str(f), "-o", str(tmp_path / "out")])
    assert res.exit_code == 1 and message in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_sweep_refuses_a_foreign_folder(sweep_file, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    res = CliRunner().invoke(main, ["sweep", str(sweep_file), "-o", str(tmp_path)])
    assert res.exit_code == 1 and "is not a qonnx sweep" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_sweep_without_output_goes_to_the_artifact_root(tiny_classifier, reviews, artifact_store, tmp_path):
    f = write(tmp_path / "my sweep.yaml", {"model": str(tiny_classifier), "dataset": str(reviews),
                                           "text_column": "review", "label_column": "sentiment",
                                           "variants": ["onnx-fp32"], **FAST})
    res = CliRunner().invoke(main, ["sweep", str(f)])
    assert res.exit_code == 0, res.output
    made = list((artifact_store / "runs").glob("my_sweep-sweep-*"))
    assert len(made) == 1 and (made[0] / "sweep.csv").is_file()


def test_an_interrupted_sweep_suggests_the_sweeps_own_resume(tiny_classifier, reviews, tmp_path, monkeypatch):
    """SIGTERM (Ctrl-C) inside a point: the message names `qonnx sweep FILE -o DIR ... --resume`, not
    the point's `compare --resume`, and that command finishes the sweep."""
    import shlex

    from qonnx.cli import runs

    f = write(tmp_path / "s.yaml", {"model": str(tiny_classifier), "dataset": str(reviews), "text_column": "review",
                                    "label_column": "sentiment", "variants": ["torch-fp32"],
                                    "providers": ["cuda", "cpu"], **FAST})
    out = tmp_path / "out"

    def stop(row):
        raise KeyboardInterrupt  # as SIGTERM does (cli.common.terminate), while the first row finishes

    row_line = runs.row_line
    monkeypatch.setattr(runs, "row_line", lambda: stop)
    res = CliRunner().invoke(main, ["sweep", str(f), "-o", str(out), "--threads", "1"])
    assert res.exit_code == 130, res.output
    assert "qonnx compare" not in res.output
    command = res.output.split("Finish the sweep with: ")[1].strip()
    assert command == f"qonnx sweep {f} -o {out} --threads 1 --resume"
    monkeypatch.setattr(runs, "row_line", row_line)
    done = CliRunner().invoke(main, shlex.split(command)[1:])
    assert done.exit_code == 0, done.output
    assert (out / "sweep.csv").is_file()
