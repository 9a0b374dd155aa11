"""store: atomic writes, never deleting what qonnx did not write, content keys, verification."""
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from qonnx import manifest, store
from qonnx.cli import main
from qonnx.config import QuantizeConfig
from qonnx.errors import ConfigError
from qonnx.variants import quantize


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with store.atomic_dir(target) as tmp:
        manifest.write(tmp, kind="test")
    first = (target / "manifest.json").read_text()
    with pytest.raises(RuntimeError):
        with store.atomic_dir(target, overwrite=True) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("interrupted")
    assert (target / "manifest.json").read_text() == first
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_folder_qonnx_did_not_write_is_never_replaced(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "thesis.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty and was not written by qonnx; refusing"):
        with store.atomic_dir(d, overwrite=True):
            pass
    assert (d / "thesis.txt").read_text() == "x" and (d / "sub").is_dir()


def test_cli_quantize_refuses_a_users_folder(tiny_classifier_onnx, tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "thesis.txt").write_text("x")
    r = CliRunner().invoke(main, ["quantize", str(tiny_classifier_onnx), "-m", "int8-dynamic", "-o", str(d)])
    assert r.exit_code == 1 and "was not written by qonnx; refusing" in r.output
    assert (d / "thesis.txt").read_text() == "x"


def test_cli_quantize_output_equal_to_source_or_a_file(tiny_classifier_onnx, tmp_path):
    before = (tiny_classifier_onnx / "model.onnx").stat().st_mtime_ns
    r = CliRunner().invoke(main, ["quantize", str(tiny_classifier_onnx), "-m", "fp16", "-o", str(tiny_classifier_onnx)])
    assert r.exit_code == 1 and "overlaps the input folder" in r.output
    assert (tiny_classifier_onnx / "model.onnx").stat().st_mtime_ns == before
    f = tmp_path / "file"
    f.write_text("mine")
    r = CliRunner().invoke(main, ["quantize", str(tiny_classifier_onnx), "-m", "fp16", "-o", str(f)])
    assert r.exit_code == 1 and "is a file, not a folder" in r.output and f.read_text() == "mine"


def test_replacing_an_artifact_needs_overwrite(tiny_classifier_onnx, tmp_path):
    out = tmp_path / "v"
    args = ["quantize", str(tiny_classifier_onnx), "-m", "int8-dynamic", "-o", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)  # same key: reused, nothing replaced
    assert again.exit_code == 0 and "reused the identical" in again.output
    other = args + ["--per-tensor"]
    r = CliRunner().invoke(main, other)
    assert r.exit_code == 1 and "already holds a qonnx artifact; pass --overwrite" in r.output
    r = CliRunner().invoke(main, other + ["--overwrite"])
    assert r.exit_code == 0 and "built int8-dynamic" in r.output
    assert manifest.read(out)["settings"]["per_channel"] is False


def test_unwritable_output_is_a_clear_error(tiny_classifier_onnx):
    r = CliRunner().invoke(main, ["quantize", str(tiny_classifier_onnx), "-m", "fp16", "-o", "/proc/qonnx/out"])
    assert r.exit_code == 1 and "Error: Cannot" in r.output and "Traceback" not in r.output


def test_keys_change_with_every_setting_and_calibration_sample(tiny_classifier_onnx, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("text\nthe film was good\nit rained all day\n")
    b.write_text("text\nthe film was awful\nit rained all day\n")

    def out(**kw):
        return quantize(QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int8-static", **kw))["output"]

    first = out(calibration=str(a))
    assert out(calibration=str(a)) == first  # reused
    outs = {first, out(calibration=str(b)), out(calibration=str(a), seed=1, num_samples=1),
            out(calibration=str(a), calibration_method="entropy"), out(calibration=str(a), per_channel=True)}
    assert len(outs) == 5


def test_a_damaged_cached_variant_is_rebuilt(tiny_classifier_onnx, caplog):
    cfg = QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int8-dynamic", int8_scheme="fused")
    out = quantize(cfg)["output"]
    model = os.path.join(out, "model.onnx")
    size = os.path.getsize(model)
    with open(model, "r+b") as f:  # zero the bytes, same size
        f.write(b"\0" * size)
    assert "damaged" in store.verify(out)
    again = quantize(cfg)
    assert again["output"] == out and not again["reused"]
    assert store.verify(out) == "" and "damaged" in caplog.text
    with open(model, "r+b") as f:  # truncated
        f.truncate(size // 2)
    assert "bytes, the manifest says" in store.verify(out)
    assert not quantize(cfg)["reused"] and store.verify(out) == ""


def test_a_damaged_export_given_by_the_user_is_refused(tiny_classifier_onnx, tmp_path):
    import shutil

    copy = tmp_path / "export"
    shutil.copytree(tiny_classifier_onnx, copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes()[:-10] + b"\0" * 10)
    r = CliRunner().invoke(main, ["quantize", str(copy), "-m", "fp16"])
    assert r.exit_code == 1 and "is damaged" in r.output


def test_partial_folders_of_dead_builds_are_cleaned(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.partial-{dead.stdout.strip()}-abc"
    stale.mkdir()
    live = tmp_path / f".out.partial-{os.getppid()}-abc"  # a running process: left alone
    live.mkdir()
    with store.atomic_dir(tmp_path / "out") as tmp:
        manifest.write(tmp, kind="test")
    assert not stale.exists() and live.exists()


def test_verified_files_are_not_rehashed(tmp_path, monkeypatch):
    with store.atomic_dir(tmp_path / "a") as tmp:
        (tmp / "w.bin").write_bytes(b"1" * 1000)
        manifest.write(tmp, kind="test")
    assert store.verify(tmp_path / "a") == ""
    calls = []
    monkeypatch.setattr(store, "sha256_file", lambda p: calls.append(p))
    assert store.verify(tmp_path / "a") == "" and calls == []


def test_demo_check_detects_damage(tmp_path):
    from qonnx import demo

    (tmp_path / "f.txt").write_text("hello")
    manifest.write(tmp_path, kind="demo")
    assert demo.check(tmp_path) == ""
    (tmp_path / "f.txt").write_text("HELLO")
    assert "damaged" in demo.check(tmp_path)
    (tmp_path / "f.txt").unlink()
    assert "missing" in demo.check(tmp_path)


def test_artifact_root_env_sets_default_outputs(tiny_classifier, tmp_path, monkeypatch):
    monkeypatch.setenv("QONNX_ARTIFACTS", str(tmp_path / "store"))
    r = CliRunner().invoke(main, ["export", str(tiny_classifier)])
    assert r.exit_code == 0, r.output
    exported = list((tmp_path / "store" / tiny_classifier.name).glob("onnx-fp32-*"))
    assert len(exported) == 1 and json.loads((exported[0] / "manifest.json").read_text())["key"]
    again = CliRunner().invoke(main, ["export", str(tiny_classifier)])
    assert "reused the identical export" in again.output


def test_export_then_compare_exports_once(tiny_classifier, tmp_path, monkeypatch):
    import pandas as pd

    from qonnx.config import CompareConfig
    from qonnx.run.compare import compare

    monkeypatch.setenv("QONNX_ARTIFACTS", str(tmp_path / "store"))
    r = CliRunner().invoke(main, ["export", str(tiny_classifier)])
    exported = r.output.split(" -> ")[1].split()[0]
    before = os.path.getmtime(os.path.join(exported, "model.onnx"))
    pd.DataFrame({"text": ["good film", "bad film"], "label": ["positive", "negative"]}).to_csv(tmp_path / "d.csv")
    results = compare(CompareConfig(model=str(tiny_classifier), dataset=str(tmp_path / "d.csv"), variants=["onnx-fp32"],
                                    latency_samples=2, warmup=1))
    assert results["rows"][0]["artifact"] == exported
    assert os.path.getmtime(os.path.join(exported, "model.onnx")) == before
    assert results["settings"]["output"].startswith(str(tmp_path / "store" / "runs"))


def test_a_same_size_same_mtime_overwrite_is_caught_by_the_next_run(tmp_path):
    """Each run (a process) hashes an artifact's files on first use: stamps cannot vouch for bytes."""
    import subprocess
    import sys

    with store.atomic_dir(tmp_path / "a") as tmp:
        (tmp / "w.bin").write_bytes(b"1" * 1000)
        manifest.write(tmp, kind="test")
    f = tmp_path / "a" / "w.bin"

    def verify_in_a_new_process():
        code = f"from qonnx import store; print(store.verify({str(tmp_path / 'a')!r}) or 'intact')"
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()

    assert verify_in_a_new_process() == "intact"
    st = f.stat()
    f.write_bytes(b"2" * 1000)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    assert "damaged" in verify_in_a_new_process()


def test_an_unwritable_artifact_root_is_named_not_o(tiny_classifier, tmp_path, monkeypatch):
    """A default output under an unwritable $QONNX_ARTIFACTS: the error names QONNX_ARTIFACTS (the
    user gave no -o, so "choose another -o folder" pointed at the wrong knob); an -o of the user's
    own still says -o."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("QONNX_ARTIFACTS", str(blocker / "artifacts"))
    data = tmp_path / "eval.csv"
    data.write_text("text,label\ngood film,positive\nbad film,negative\n")
    for args in (["export", str(tiny_classifier)],
                 ["compare", str(tiny_classifier), "--dataset", str(data), "--variants", "torch-fp32"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert f"QONNX_ARTIFACTS={blocker / 'artifacts'}" in r.output and "Point QONNX_ARTIFACTS at a writable" in r.output
        assert "choose another -o" not in r.output
    own = CliRunner().invoke(main, ["export", str(tiny_classifier), "-o", str(blocker / "out")])
    assert own.exit_code == 1 and "choose another -o folder" in own.output and "QONNX_ARTIFACTS" not in own.output


def test_the_default_root_is_absolute_so_a_library_changing_directory_still_finds_it(tmp_path, monkeypatch):
    """ONNX Runtime's quantizers run in a scratch directory: a relative artifacts/... path broke
    `analyze sensitivity` on a default export (Unable to open proto file: artifacts/...)."""
    from qonnx import store

    monkeypatch.delenv(store.ARTIFACTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert store.root() == tmp_path / "artifacts" and store.root().is_absolute()
    monkeypatch.setenv(store.ARTIFACTS_ENV, "rel/store")
    assert store.root() == tmp_path / "rel" / "store"
