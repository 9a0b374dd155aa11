"""The CLI: every command has help; bad input gives one clear line and exit 1, no traceback."""
import pytest
from click.testing import CliRunner

from qonnx.cli import main


def _walk(group, path=()):
    """Every command and group of the CLI, read from click itself: a new command is covered."""
    yield list(path)
    for name, cmd in getattr(group, "commands", {}).items():
        yield from _walk(cmd, (*path, name))


COMMANDS = list(_walk(main))


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "qonnx")
def test_every_command_has_help(cmd):
    result = CliRunner().invoke(main, cmd + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def run(args):
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output
    return result


def fails(args, *messages):
    """The command exits 1 with every message in its output."""
    r = run(args)
    assert r.exit_code == 1, r.output
    for m in messages:
        assert m in r.output
    return r


def test_export_missing_folder():
    fails(["export", "./no/such/model"], "Error: No such model folder: ./no/such/model")


def test_export_folder_that_is_not_a_model(tmp_path):
    fails(["export", str(tmp_path)], "is not a Hugging Face model folder (no config.json")


def test_export_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["FooForImageSegmentation"], "model_type": "foo"}')
    fails(["export", str(tmp_path)], "Cannot tell the task", "FooForImageSegmentation")


def test_export_hub_id_offline_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fails(["export", "someone/not-cached-model"],
          "Could not fetch 'someone/not-cached-model' from the Hugging Face Hub")


def test_quantize_unknown_method_suggests(tiny_classifier_onnx):
    fails(["quantize", str(tiny_classifier_onnx), "--method", "int8-dynamik"],
          "Unknown quantization method 'int8-dynamik'. Did you mean 'int8-dynamic'?")


def test_quantize_corrupt_onnx(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a protobuf at all")
    (tmp_path / "config.json").write_text("{}")
    fails(["quantize", str(tmp_path), "--method", "int8-dynamic"], "is not a valid ONNX model")


def test_quantize_folder_without_model(tmp_path):
    fails(["quantize", str(tmp_path), "--method", "fp16"], "holds no model.onnx")


def test_quantize_empty_calibration_file(tiny_classifier_onnx, tmp_path):
    empty = tmp_path / "calib.csv"
    empty.write_text("text,label\n")
    fails(["quantize", str(tiny_classifier_onnx), "--method", "int8-static",
           "--calibration", str(empty), "-o", str(tmp_path / "out")], f"{empty} has no rows.")
    assert not (tmp_path / "out").exists()


def test_quantize_malformed_calibration_file(tiny_classifier_onnx, tmp_path):
    bad = tmp_path / "calib.jsonl"
    bad.write_text('{"text": "fine"}\n{not json\n')
    fails(["quantize", str(tiny_classifier_onnx), "--method", "int8-static", "--calibration", str(bad)], f"Cannot read {bad} as jsonl")


def test_quantize_calibration_column_missing(tiny_classifier_onnx, tmp_path):
    f = tmp_path / "calib.csv"
    f.write_text("sentence\nhello there\n")
    fails(["quantize", str(tiny_classifier_onnx), "--method", "int8-static", "--calibration", str(f)],
          "has no text column 'text'. Columns: sentence. Choose one with --text-column.")


def test_compare_unknown_variant_suggests():
    fails(["compare", "demo:sentiment", "--variants", "onnx-int8-dynamc"],
          "Unknown variant 'onnx-int8-dynamc'. Did you mean 'onnx-int8-dynamic'?")


def test_compare_unknown_provider():
    fails(["compare", "--providers", "tpu"], "Unknown provider 'tpu'")


@pytest.mark.parametrize("model, budget, variants", [
    ("demo:smollm2", ["--max-perplexity-increase", "5"], "genai-int4,genai-int4-budget"),
    ("demo:sentiment", ["--max-accuracy-drop", "0.01"], "onnx-int8-dynamic")])
def test_compare_budget_without_a_reference_row_is_refused(model, budget, variants, tmp_path, monkeypatch):
    """A budget is judged against the run's reference row: a --variants without one is refused up
    front (exit 1, nothing built or written), and naming the reference lets the same run through."""
    from qonnx.config import CompareConfig
    monkeypatch.chdir(tmp_path)
    fails(["compare", model, "--variants", variants, *budget],
          f"{budget[0]} {budget[1]} is judged against a reference row", "add torch-fp32 or onnx-fp32")
    assert list(tmp_path.iterdir()) == []
    limit = {budget[0].lstrip("-").replace("-", "_"): float(budget[1])}
    for reference in ("torch-fp32", "onnx-fp32"):
        assert CompareConfig(model=model, variants=[reference, *variants.split(",")], **limit).variants[0] == reference
    assert CompareConfig(model=model, **limit).variants == []  # the default matrix has its reference


@pytest.mark.parametrize("cmd", [["compare"], ["analyze", "robustness"], ["analyze", "sensitivity"],
                                 ["quantize", "no-such-export", "-m", "fp16"], ["sweep", "SWEEP"]],
                         ids=lambda c: " ".join(c[:2]))
def test_threads_beyond_the_usable_cores_are_refused(cmd, tmp_path):
    """--threads 1000 on 2 cores made a 2 s row run past 300 s: every command that takes --threads
    refuses more than the machine's usable cores, before any work."""
    from qonnx.config import usable_cores

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("model: demo:sentiment\naxes:\n  seed: [0, 1]\n")
    cmd = [str(sweep) if c == "SWEEP" else c for c in cmd]
    fails(cmd + ["--threads", "1000"],
          f"--threads 1000 is more than the {usable_cores()} usable core(s) of this machine")
    assert list(tmp_path.iterdir()) == [sweep]


def test_report_without_results(tmp_path):
    fails(["report", str(tmp_path)], "holds no results.json")


def test_unknown_demo():
    fails(["export", "demo:nope"], "Unknown demo 'nope'", "sentiment")


def test_env_runs():
    r = run(["env"])
    assert r.exit_code == 0
    assert "CPUExecutionProvider" in r.output and "onnxruntime" in r.output


def test_unexportable_lm_names_the_architecture(tiny_lm, tmp_path):
    import json
    import shutil

    folder = tmp_path / "foo"
    shutil.copytree(tiny_lm, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "architectures": ["FooForCausalLM"], "model_type": "foo"}))
    fails(["export", str(folder)], "optimum cannot export FooForCausalLM (model_type 'foo')")


def test_python_dash_m_qonnx():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "qonnx", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "compare" in done.stdout


def test_hub_dataset_offline_is_clear(tiny_classifier, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    fails(["compare", str(tiny_classifier), "--dataset", "someone/no-such-dataset", "-o", str(tmp_path / "r")],
          "Could not load dataset 'someone/no-such-dataset'", "Offline?")
