"""qonnx validate ARTIFACT: exit 0 every target passes, 2 one fails, 1 bad input; --json; budgets;
nothing written into the folder."""
import json

import pytest
from click.testing import CliRunner

from qonnx.cli import main


def validate(*args):
    return CliRunner().invoke(main, ["validate", *map(str, args)])


def test_pass_is_0_fail_is_2_and_json_holds_every_target(graphs, tmp_path):
    ok = graphs.mlp(tmp_path / "ok", batch=1)
    out = tmp_path / "reports" / "ok.json"
    r = validate(ok, "--target", "nnapi,coreml", "--json", out)
    assert r.exit_code == 0, r.output
    assert "checked statically" in r.output and "PASSED" in r.output
    doc = json.loads(out.read_text())
    for name in ("nnapi", "coreml"):
        t = doc["targets"][name]
        assert t["verdict"] == "pass" and t["executed"] is False and t["unsupported_ops"] == [] and t["partitions"] == 1
        assert all(isinstance(s, str) for s in t["reasons"])
    assert sorted(p.name for p in ok.iterdir()) == ["model.onnx"]
    bad = validate(graphs.mlp(tmp_path / "bad", batch=1, middle=("Erf", "")), "--target", "nnapi")
    assert bad.exit_code == 2 and "FAILED: nnapi" in bad.output and "Erf" in bad.output


def test_budgets_fail_where_measured_and_say_so_where_not(graphs, tmp_path):
    folder = graphs.mlp(tmp_path / "m", batch=1)
    r = validate(folder, "--target", "nnapi", "--max-size-mb", "0.0001", "--max-latency-ms", "5", "--json", "-")
    assert r.exit_code == 2
    t = json.loads(r.stdout)["targets"]["nnapi"]
    assert t["budgets"]["size"]["ok"] is False
    assert any("--max-latency-ms not checked for nnapi: it is checked statically" in s for s in t["reasons"])


@pytest.mark.parametrize("args,says", [
    (["--target", "wsam"], "Unknown target 'wsam'. Did you mean 'wasm'?"),
    (["--variant", "onnx-int8-dynamic", "--target", "nnapi"], "--variant gate(s) a row of a compare run"),
    (["--min-speedup", "2"], "--min-speedup gate(s) a row of a compare run"),
    (["--max-memory-mb", "-1"], "--max-memory-mb must be a finite number >= 0"),
    (["-o", "out"], "-o is where --fix-shapes writes"),
    (["--threads", "1000"], "--threads 1000 is more than the"),
])
def test_bad_input_is_1_with_one_line(graphs, tmp_path, args, says):
    r = validate(graphs.mlp(tmp_path / "m", batch=1), *args)
    assert r.exit_code == 1 and says in r.output and r.output.startswith("Error:"), r.output


def test_a_folder_without_onnx_and_json_inside_the_folder_are_refused(graphs, tmp_path):
    (tmp_path / "empty").mkdir()
    r = validate(tmp_path / "empty", "--target", "nnapi")
    assert r.exit_code == 1 and "holds no .onnx file" in r.output
    folder = graphs.mlp(tmp_path / "m", batch=1)
    r = validate(folder, "--target", "nnapi", "--json", folder / "edge.json")
    assert r.exit_code == 1 and "qonnx writes nothing into the artifact folder" in r.output
    assert not (folder / "edge.json").exists()
