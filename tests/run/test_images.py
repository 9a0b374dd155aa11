"""Image classifiers through compare, the report, "Ship this" and the gate: a tiny random ViT (built from a
config, with a ViTImageProcessor) on seeded PNGs in the imagefolder layout, its default matrix run once
via the CLI (int8-static calibrated on a second image folder)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_matrix import default_rows, rows_of

from qonnx.cli import main

DEFAULT_ROWS = {"torch-fp32", "torch-fp16", "torch-bf16", "torch-int8-dynamic", "bnb-int4", "onnx-fp32", "onnx-fp16",
                "onnx-int8-dynamic", "onnx-int8-static"}


def compare(model, d):
    """(run folder, CLI result): the default matrix on d/images, calibrated on d/calib, rows side by side."""
    from tiny_vision import image_folder

    image_folder(d / "images", per_class=2)
    image_folder(d / "calib", per_class=1, seed=1)
    result = CliRunner().invoke(main, ["compare", str(model), "--dataset", str(d / "images"), "--calibration",
                                       str(d / "calib"), "--latency-samples", "3", "--warmup", "1", "--batch-size", "4",
                                       "--threads", "1", "--concurrent-rows", "-o", str(d / "run")])
    return d / "run", result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tiny_vision import tiny_vit

    d = tmp_path_factory.mktemp("images")
    model = tiny_vit(d / "model")
    return (model, *compare(model, d))


def check_matrix(run_dir, result, arch):
    """Every default row ok or skipped with this machine's reason; onnx-fp32 agrees with torch-fp32."""
    rows = default_rows(run_dir, result, arch, DEFAULT_ROWS)
    for r in rows.values():
        if r["status"] == "ok":
            assert 0 <= r["accuracy"] <= r["top5_accuracy"] <= 1 and r["latency_ms"]["n"] == 3
    onnx, torch = rows["onnx-fp32"], rows["torch-fp32"]
    assert onnx["agreement"] == 1 and onnx["max_logit_diff"] < 1e-4
    assert onnx["accuracy"] == torch["accuracy"] and onnx["top5_accuracy"] == torch["top5_accuracy"]
    assert "top-5" in result.output
    return rows


def test_every_default_row_is_ok_or_skipped_and_onnx_fp32_agrees_with_torch(run):
    check_matrix(run[1], run[2], "vit")


def test_accuracy_is_the_models_own_over_its_processor(run):
    """torch-fp32's logits and accuracies against transformers by hand: the folder's image processor, then
    the model, each image alone; top-5 from torch.topk."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model_dir, run_dir, _ = run
    data = json.loads((run_dir / "work" / "data.json").read_text())
    proc = AutoImageProcessor.from_pretrained(model_dir, use_fast=False)
    model = AutoModelForImageClassification.from_pretrained(model_dir).eval()
    want = []
    for path in data["texts"]:
        with torch.no_grad():
            want.append(model(**proc(images=Image.open(path).convert("RGB"), return_tensors="pt")).logits[0].numpy())
    want, labels = np.array(want), torch.tensor(data["labels"])
    row = rows_of(run_dir)["torch-fp32"]
    assert np.allclose(np.load(row["outputs"]), want, atol=1e-5)
    assert row["accuracy"] == pytest.approx(float((want.argmax(1) == labels.numpy()).mean()))
    top5 = torch.topk(torch.tensor(want), 5).indices
    assert row["top5_accuracy"] == pytest.approx(float((top5 == labels[:, None]).any(1).float().mean()))
    # the imagefolder's class names went through the model's label2id
    names = [p.split("/")[-2] for p in data["texts"]]
    assert [model.config.label2id[n] for n in names] == data["labels"] and len(set(names)) == 7


def test_ship_this_the_manifest_and_the_gate_read_accuracy(run):
    from qonnx.report.summary import recommend

    run_dir = run[1]
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["settings"]["kind"] == "images" and doc["settings"]["budget_metric"].startswith("accuracy: top-1")
    pick = recommend(doc)
    assert pick["row"] is not None and "accuracy" in pick["text"]
    assert "Top-1 and top-5 accuracy over 14 of 14 images" in (run_dir / "report.md").read_text()
    static = rows_of(run_dir)["onnx-int8-static"]
    manifest = json.loads((__import__("pathlib").Path(static["artifact"]) / "manifest.json").read_text())
    assert manifest["settings"]["calibration"]["count"] == 7  # the seven calibration PNGs
    r = CliRunner().invoke(main, ["validate", str(run_dir), "--variant", "onnx-fp32", "--max-accuracy-drop", "0",
                                  "--min-agreement", "1"])
    assert r.exit_code == 0 and "PASS  accuracy_drop = 0" in r.output, r.output
    r = CliRunner().invoke(main, ["validate", str(run_dir), "--variant", "onnx-fp32", "--max-perplexity-increase", "1"])
    assert r.exit_code == 1 and "--max-perplexity-increase does not apply" in r.output and "top-1 accuracy" in r.output


def test_an_image_export_is_not_budget_searched(run):
    from qonnx.config import QuantizeConfig
    from qonnx.errors import ConfigError
    from qonnx.variants import quantize

    export = rows_of(run[1])["onnx-fp32"]["artifact"]
    with pytest.raises(ConfigError, match="is an image-classification model; the --max-accuracy-drop search scores text"):
        quantize(QuantizeConfig(onnx_dir=export, method="int8-dynamic", max_accuracy_drop=0.01))
