"""models: the task is read from transformers' own mappings, a --task is checked against the
architecture, and a broken folder is one clear error before anything heavy runs."""
import json
import shutil

import pytest
from click.testing import CliRunner

import tiny
from cli import main
from qonnx.errors import ModelError
from qonnx.models import resolve


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return tiny.build("gpt2", tmp_path_factory.mktemp("gpt2") / "m")


def copy_with(folder, tmp_path, **config):
    out = tmp_path / "m"
    shutil.copytree(folder, out)
    cfg = json.loads((out / "config.json").read_text())
    cfg.update(config)
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def test_gpt2_is_a_causal_lm(gpt2):
    src = resolve(str(gpt2))
    assert src.task == "text-generation-with-past" and src.is_lm


def test_text_generation_means_with_past(gpt2):
    assert resolve(str(gpt2), "text-generation").task == "text-generation-with-past"


def test_unknown_task_suggests(tiny_classifier):
    with pytest.raises(ModelError, match="Unknown task 'summarization'"):
        resolve(str(tiny_classifier), "summarization")
    with pytest.raises(ModelError, match="Did you mean 'text-classification'"):
        resolve(str(tiny_classifier), "text-clasification")


def test_task_that_does_not_fit_the_model(tiny_classifier):
    r = CliRunner().invoke(main, ["export", str(tiny_classifier), "--task", "text-generation"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "--task text-generation-with-past does not fit" in r.output and "is a sequence classifier" in r.output


@pytest.mark.parametrize("change,msg", [({"problem_type": "regression"}, "is regression"),
                                        ({"problem_type": "multi_label_classification"}, "is multi_label"),
                                        ({"id2label": {"0": "score"}, "label2id": {"score": 0}}, "single-output")])
def test_heads_that_are_not_single_label_are_refused(tiny_classifier, tmp_path, change, msg):
    folder = copy_with(tiny_classifier, tmp_path, **change)
    with pytest.raises(ModelError, match=msg):
        resolve(str(folder))


def test_folder_without_weights(tiny_classifier, tmp_path):
    folder = copy_with(tiny_classifier, tmp_path)
    (folder / "model.safetensors").unlink()
    r = CliRunner().invoke(main, ["export", str(folder)])
    assert r.exit_code == 1 and "has a config.json but no weights" in r.output


def test_truncated_safetensors(tiny_classifier, tmp_path):
    folder = copy_with(tiny_classifier, tmp_path)
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    r = CliRunner().invoke(main, ["export", str(folder)])
    assert r.exit_code == 1 and "model.safetensors is damaged or truncated" in r.output


def test_missing_tokenizer(tiny_classifier, tmp_path):
    folder = copy_with(tiny_classifier, tmp_path)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / f).unlink(missing_ok=True)
    r = CliRunner().invoke(main, ["compare", str(folder), "--dataset", "x.csv"])
    assert r.exit_code == 1 and "has no tokenizer files" in r.output


def test_tensorflow_only_checkpoint(tiny_classifier, tmp_path):
    folder = copy_with(tiny_classifier, tmp_path)
    (folder / "model.safetensors").rename(folder / "tf_model.h5")
    r = CliRunner().invoke(main, ["export", str(folder)])
    assert r.exit_code == 1 and "holds only tf_model.h5; qonnx needs PyTorch weights" in r.output


def test_pickle_checkpoint_loads(tiny_classifier, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = copy_with(tiny_classifier, tmp_path)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    assert resolve(str(folder)).task == "text-classification"
