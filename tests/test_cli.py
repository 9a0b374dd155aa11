"""The CLI: every command has help; bad input gives one clear line and exit 1, no traceback."""
import pytest
from click.testing import CliRunner

from cli import main

COMMANDS = [[], ["demo"], ["demo", "build"], ["demo", "list"], ["export"], ["quantize"],
            ["compare"], ["report"], ["validate"], ["env"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "qonnx")
def test_every_command_has_help(cmd):
    result = CliRunner().invoke(main, cmd + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def run(args):
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output
    return result


def test_export_missing_folder():
    r = run(["export", "./no/such/model"])
    assert r.exit_code == 1
    assert "Error: No such model folder: ./no/such/model" in r.output


def test_export_folder_that_is_not_a_model(tmp_path):
    r = run(["export", str(tmp_path)])
    assert r.exit_code == 1
    assert "is not a Hugging Face model folder (no config.json" in r.output


def test_export_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["FooForImageSegmentation"], "model_type": "foo"}')
    r = run(["export", str(tmp_path)])
    assert r.exit_code == 1
    assert "Cannot tell the task" in r.output and "FooForImageSegmentation" in r.output


def test_export_hub_id_offline_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = run(["export", "someone/not-cached-model"])
    assert r.exit_code == 1
    assert "Could not fetch 'someone/not-cached-model' from the Hugging Face Hub" in r.output


def test_quantize_unknown_method_suggests(tiny_classifier_onnx):
    r = run(["quantize", str(tiny_classifier_onnx), "--method", "int8-dynamik"])
    assert r.exit_code == 1
    assert "Unknown quantization method 'int8-dynamik'. Did you mean 'int8-dynamic'?" in r.output


def test_quantize_corrupt_onnx(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a protobuf at all")
    (tmp_path / "config.json").write_text("{}")
    r = run(["quantize", str(tmp_path), "--method", "int8-dynamic"])
    assert r.exit_code == 1
    assert "is not a valid ONNX model" in r.output


def test_quantize_folder_without_model(tmp_path):
    r = run(["quantize", str(tmp_path), "--method", "fp16"])
    assert r.exit_code == 1
    assert "holds no model.onnx" in r.output


def test_quantize_empty_calibration_file(tiny_classifier_onnx, tmp_path):
    empty = tmp_path / "calib.csv"
    empty.write_text("text,label\n")
    r = run(["quantize", str(tiny_classifier_onnx), "--method", "int8-static",
             "--calibration", str(empty), "-o", str(tmp_path / "out")])
    assert r.exit_code == 1
    assert f"{empty} has no rows." in r.output
    assert not (tmp_path / "out").exists()


def test_quantize_malformed_calibration_file(tiny_classifier_onnx, tmp_path):
    bad = tmp_path / "calib.jsonl"
    bad.write_text('{"text": "fine"}\n{not json\n')
    r = run(["quantize", str(tiny_classifier_onnx), "--method", "int8-static", "--calibration", str(bad)])
    assert r.exit_code == 1
    assert f"Cannot read {bad} as jsonl" in r.output


def test_quantize_calibration_column_missing(tiny_classifier_onnx, tmp_path):
    f = tmp_path / "calib.csv"
    f.write_text("sentence\nhello there\n")
    r = run(["quantize", str(tiny_classifier_onnx), "--method", "int8-static", "--calibration", str(f)])
    assert r.exit_code == 1
    assert "has no text column 'text'. Columns: sentence. Choose one with --text-column." in r.output


def test_compare_unknown_variant_suggests():
    r = run(["compare", "demo:sentiment", "--variants", "onnx-int8-dynamc"])
    assert r.exit_code == 1
    assert "Unknown variant 'onnx-int8-dynamc'. Did you mean 'onnx-int8-dynamic'?" in r.output


def test_compare_unknown_provider():
    r = run(["compare", "--providers", "tpu"])
    assert r.exit_code == 1
    assert "Unknown provider 'tpu'" in r.output


def test_report_without_results(tmp_path):
    r = run(["report", str(tmp_path)])
    assert r.exit_code == 1
    assert "holds no results.json" in r.output


def test_unknown_demo():
    r = run(["export", "demo:nope"])
    assert r.exit_code == 1
    assert "Unknown demo 'nope'" in r.output and "sentiment" in r.output


def test_env_runs():
    r = run(["env"])
    assert r.exit_code == 0
    assert "CPUExecutionProvider" in r.output and "onnxruntime" in r.output


def test_unexportable_lm_names_the_architecture(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["FooForCausalLM"], "model_type": "foo"}')
    r = run(["export", str(tmp_path)])
    assert r.exit_code == 1
    assert "optimum cannot export FooForCausalLM (model_type 'foo')" in r.output


def test_python_dash_m_qonnx():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "qonnx", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "compare" in done.stdout


def test_hub_dataset_offline_is_clear(tiny_classifier, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    r = run(["compare", str(tiny_classifier), "--dataset", "someone/no-such-dataset", "-o", str(tmp_path / "r")])
    assert r.exit_code == 1
    assert "Could not load dataset 'someone/no-such-dataset'" in r.output and "Offline?" in r.output
