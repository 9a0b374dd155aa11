import pytest

from qonnx.cache import atomic_dir


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("interrupted")
    assert (target / "a").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_demo_check_detects_damage(tmp_path, monkeypatch):
    from qonnx import demo
    from qonnx.cache import hash_tree, write_json

    (tmp_path / "f.txt").write_text("hello")
    write_json(tmp_path / "manifest.json", {"files": {k: {"sha256": v, "size": 5} for k, v in hash_tree(tmp_path).items()}})
    assert demo.check(tmp_path, verify=True) == ""
    (tmp_path / "f.txt").write_text("HELLO")
    assert "damaged" in demo.check(tmp_path, verify=True)
    (tmp_path / "f.txt").unlink()
    assert "missing" in demo.check(tmp_path)
