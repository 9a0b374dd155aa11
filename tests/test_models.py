"""models: the task is read from transformers' own mappings, a --task is checked against the
architecture, and a broken folder is one clear error before anything heavy runs."""
import json
import shutil

import pytest
from click.testing import CliRunner

import tiny
from qonnx.cli import main
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


def test_broken_tokenizer_files(tiny_classifier, tmp_path):
    folder = copy_with(tiny_classifier, tmp_path)
    for f in ("tokenizer.json", "vocab.txt"):  # tokenizer_config.json alone: nothing to load
        (folder / f).unlink()
    r = CliRunner().invoke(main, ["export", str(folder)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"no tokenizer in {folder}" in r.output


def test_classifier_tokenizer_without_pad_token(tiny_classifier, tmp_path):
    folder = copy_with(tiny_classifier, tmp_path)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["pad_token"] = None
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    (folder / "special_tokens_map.json").unlink(missing_ok=True)
    with pytest.raises(ModelError, match="has no pad token; qonnx pads classifier batches"):
        resolve(str(folder))


# -- shapes through transformers' standard names, never raw config keys ------------------------

def test_config_has_standard_shape_names(gpt2):
    from qonnx.runners.ort import kv_dims

    raw = json.loads((gpt2 / "config.json").read_text())
    assert "num_attention_heads" not in raw and raw["n_head"] == tiny.HEADS  # GPT-2's own names
    cfg = resolve(str(gpt2)).config
    assert (cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["hidden_size"]) == (tiny.HEADS, 2, 64)
    assert kv_dims(raw) == kv_dims(cfg) == (tiny.HEADS, 64 // tiny.HEADS)


class _Input:  # an onnxruntime NodeArg stand-in: a graph whose head dims are symbolic
    def __init__(self, name, shape, type="tensor(float)"):
        self.name, self.shape, self.type = name, shape, type


@pytest.mark.parametrize("config,shape", [
    ({"model_type": "gpt2", "n_head": 4, "n_embd": 64}, (2, 4, 0, 16)),
    ({"model_type": "llama", "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 64}, (2, 2, 0, 16)),
    ({"model_type": "gemma", "num_attention_heads": 4, "num_key_value_heads": 1, "hidden_size": 64,
      "head_dim": 32}, (2, 1, 0, 32)),
    ({"model_type": "mistral", "num_attention_heads": 8, "num_key_value_heads": 2, "hidden_size": 64,
      "head_dim": None}, (2, 2, 0, 8))])
def test_empty_past_from_a_normalized_config(config, shape):
    from qonnx.runners.ort import empty_past
    from qonnx.variants.int8_static import past_shapes

    inputs = [_Input("input_ids", ["b", "s"], "tensor(int64)"),
              _Input("past_key_values.0.key", ["b", "heads", "p", "size"], "tensor(float16)"),
              _Input("past_key_values.0.value", ["b", "heads", "p", "size"], "tensor(float16)")]
    past = empty_past(inputs, 2, config)
    assert {k: (v.shape, v.dtype.name) for k, v in past.items()} == {
        f"past_key_values.0.{kv}": (shape, "float16") for kv in ("key", "value")}
    assert past_shapes(inputs, config) == {k: (1, *shape[1:]) for k in past}


# -- runners feed what each model takes ---------------------------------------------------------

def test_torch_feeds_only_what_forward_takes(tmp_path):
    from transformers import AutoTokenizer

    from qonnx.runners.torch import TorchRunner

    folder = tiny.build("distilbert", tmp_path / "m")
    enc = AutoTokenizer.from_pretrained(folder)(["the film was a delight"], return_tensors="np")
    assert "token_type_ids" in enc  # the shared BERT tokenizer emits them; DistilBERT takes none
    with TorchRunner(folder, "text-classification") as r:
        assert r.logits(dict(enc)).shape == (1, 2)


def test_onnx_fills_token_type_ids_the_graph_needs(tiny_classifier, tiny_classifier_onnx):
    from transformers import AutoTokenizer

    from qonnx.runners.ort import OrtRunner

    enc = dict(AutoTokenizer.from_pretrained(tiny_classifier)(["it rained all day"], return_tensors="np"))
    with OrtRunner(tiny_classifier_onnx / "model.onnx") as r:
        assert "token_type_ids" in r.inputs
        full = r.logits(enc)
        enc.pop("token_type_ids")
        assert (r.logits(enc) == full).all()


# -- every architecture: export (parity with PyTorch inside) and the quantized variants ---------

@pytest.mark.parametrize("arch", tiny.CLASSIFIERS + tiny.LMS)
def test_export_and_quantize(arch, tmp_path):
    from qonnx.config import ExportConfig, QuantizeConfig
    from qonnx.export import export
    from qonnx.variants import quantize

    model = tiny.build(arch, tmp_path / arch)
    assert resolve(str(model)).is_lm == (arch in tiny.LMS)
    onnx_dir = tmp_path / "onnx"
    done = export(ExportConfig(model=str(model), output=onnx_dir))
    assert done["parity"]["passed"], done["parity"]
    import onnx

    from qonnx.variants.units import units  # every weighted node has a layer and a role (sensitivity)

    found = units(onnx.load(str(onnx_dir / "model.onnx"), load_external_data=False))
    assert not [u for u in found if u.endswith("other")], list(found)
    assert {"layer 0 attn-in", "layer 0 ffn-out", "embeddings"} <= set(found), list(found)  # ALBERT: one shared layer
    for method in ("fp16", "int8-dynamic") + (("int4-weight",) if arch in tiny.LMS else ()):
        out = quantize(QuantizeConfig(onnx_dir=onnx_dir, method=method, output=tmp_path / method))
        assert (out["output"] and (tmp_path / method / "model.onnx").is_file()), method


@pytest.fixture(scope="module")
def token_classifier(tmp_path_factory):
    """A tiny BertForTokenClassification: its `classifier` has the shape a sequence classifier's
    would, so only the pooler is missing when it is loaded as one."""
    from tiny import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("tiny-bert-ner"), "BertForTokenClassification",
                     num_hidden_layers=1, max_position_embeddings=128)


def test_a_head_of_another_kind_is_refused_and_no_task_is_suggested(token_classifier, tmp_path):
    """The error for a token classifier suggested --task text-classification; followed, torch-fp32
    measured a freshly initialised pooler as if trained. Now neither way gets through."""
    with pytest.raises(ModelError, match="BertForTokenClassification is a token classification model") as e:
        resolve(str(token_classifier))
    assert "--task text-classification or" not in str(e.value) and "no --task turns" in str(e.value)
    data = tmp_path / "eval.csv"
    data.write_text("text,label\ngood film,positive\nbad film,negative\n")
    r = CliRunner().invoke(main, ["compare", str(token_classifier), "--task", "text-classification", "--dataset",
                                  str(data), "--variants", "torch-fp32", "-o", str(tmp_path / "run")])
    assert r.exit_code == 1 and "--task text-classification does not fit" in r.output, r.output
    assert "token classification model" in r.output and not (tmp_path / "run").exists()


def test_weights_newly_initialised_for_a_task_are_refused(token_classifier, tmp_path):
    """Without architectures in its config nothing tells the head's kind up front: loading it for
    the task is refused, naming the weights transformers would initialise (torch rows, export)."""
    from qonnx.runners.torch import TorchRunner

    folder = copy_with(token_classifier, tmp_path, architectures=None)
    source = resolve(str(folder), "text-classification")
    with pytest.raises(ModelError, match="no trained weights for bert.pooler.dense.bias, bert.pooler.dense.weight "
                                         "of BertForSequenceClassification"):
        TorchRunner(source.path, source.task).load()
    r = CliRunner().invoke(main, ["export", str(folder), "--task", "text-classification", "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "no trained weights for bert.pooler.dense" in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_a_malicious_pickle_is_refused_by_name_and_never_run(tiny_classifier, tmp_path):
    import os
    import pickle
    import shutil

    from qonnx.errors import ModelError
    from qonnx.runners.torch import TorchRunner

    folder, marker = tmp_path / "evil", tmp_path / "PWNED"
    folder.mkdir()
    for f in tiny_classifier.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, folder)

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelError, match="safe loader refuses") as e:
        TorchRunner(str(folder), "text-classification").load()
    assert "TF 2.0" not in str(e.value) and not marker.exists()


def test_bnb_layers_its_avx512_bf16_kernel_cannot_pack_are_named():
    """bitsandbytes 0.50 fails on its AVX512-BF16 CPU path with a bare reshape error for a layer not
    a multiple of its 64x32 blocks (a tiny model's 32-wide layers); the row says which layer instead.
    Layers of that CPU path are faked here, so the check runs on any CPU."""
    import torch

    from qonnx.runners.torch import _bnb_cpu_packing

    def linear(k, n, cpu_path=True):
        m = torch.nn.Linear(k, n)
        m.support_avx512bf16_for_cpu = cpu_path
        return m

    _bnb_cpu_packing(torch.nn.Sequential(linear(64, 32), linear(384, 1536), linear(32, 32, cpu_path=False)))
    with pytest.raises(ModelError, match=r"1 layer\(s\) .* \(e.g. 1: 32 inputs, 64 outputs\)"):
        _bnb_cpu_packing(torch.nn.Sequential(linear(64, 32), linear(32, 64), linear(64, 2, cpu_path=False)))
    with pytest.raises(ModelError, match="2 layer"):
        _bnb_cpu_packing(torch.nn.Sequential(linear(64, 48), linear(96, 64)))
