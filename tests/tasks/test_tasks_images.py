"""The image-classification task's pieces: the readers, top-5, task inference and the folder checks."""
import json

import numpy as np
import pytest

from qonnx.errors import DataError, ModelError
from qonnx.tasks import images

LABEL2ID = {"ant": 0, "bee": 1, "cat": 2}


@pytest.fixture
def folder(tmp_path):
    from tiny_vision import image_folder

    return image_folder(tmp_path / "imgs", per_class=3, classes=["ant", "bee", "cat"])


def test_imagefolder_maps_class_folders_through_label2id(folder):
    found = images.read_data(str(folder), label2id=LABEL2ID)
    assert len(found.texts) == 9 and sorted(found.labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(LABEL2ID[p.split("/")[-2]] == y for p, y in zip(found.texts, found.labels))
    sample = images.read_data(str(folder), label2id=LABEL2ID, max_samples=3, seed=1)
    assert sorted(sample.labels) == [0, 1, 2] and sample.selection["rows"] == 3 and sample.selection["of"] == 9
    with pytest.raises(DataError, match="Unknown label 'cat'"):
        images.read_data(str(folder), label2id={"ant": 0, "bee": 1})


def test_a_table_of_relative_image_paths(folder, tmp_path):
    table = folder / "eval.jsonl"
    table.write_text("\n".join(json.dumps({"img": f"bee/{i}.png", "y": "bee"}) for i in range(3)) + "\n")
    found = images.read_data(str(table), label2id=LABEL2ID, image_column="img", label_column="y")
    assert found.labels == [1, 1, 1] and all(p.startswith(str(folder)) for p in found.texts)
    table.write_text(json.dumps({"image": "bee/9.png", "label": "bee"}) + "\n")
    with pytest.raises(DataError, match="no such image file bee/9.png"):
        images.read_data(str(table), label2id=LABEL2ID)
    with pytest.raises(DataError, match="no image column 'img'"):
        images.read_data(str(table), label2id=LABEL2ID, image_column="img")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        images.read_data(str(tmp_path / "empty"), label2id=LABEL2ID)


def test_calibration_reads_a_folder_of_images_flat_or_by_class(folder, tmp_path):
    assert len(images.calibration_images(str(folder))) == 9
    assert len(images.calibration_images(str(folder / "ant"))) == 3
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        images.calibration_images(str(tmp_path / "none"))


def test_top5_against_counting_by_hand():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(50, 9)), rng.integers(0, 9, 50)
    by_hand = np.mean([y in sorted(range(9), key=lambda c: -row[c])[:5] for row, y in zip(logits, labels)])
    assert images.top_k_accuracy(logits, labels) == pytest.approx(by_hand)
    assert images.top_k_accuracy(logits[:, :5], labels % 5) is None  # 5 classes: top-5 is always right


def test_a_vit_folder_is_an_image_classifier_and_the_task_must_fit(tmp_path):
    from tiny_vision import tiny_vit

    from qonnx.models import resolve

    model = tiny_vit(tmp_path / "vit")
    assert resolve(str(model)).task == "image-classification"
    with pytest.raises(ModelError, match="ViTForImageClassification is an image classifier"):
        resolve(str(model), "text-classification")
    (model / "preprocessor_config.json").unlink()
    with pytest.raises(ModelError, match="no preprocessor_config.json"):
        resolve(str(model))


def test_a_text_classifier_is_no_image_classifier(tmp_path):
    from qonnx.models import resolve
    from tiny import tiny_bert

    with pytest.raises(ModelError, match="BertForSequenceClassification is a sequence classifier"):
        resolve(str(tiny_bert(tmp_path)), "image-classification")


def test_pixels_follow_the_processor(tmp_path):
    from transformers import ViTImageProcessor

    proc = ViTImageProcessor(size={"height": 16, "width": 16})
    px = images.pixels(proc, images.probe_images(3))
    assert px.shape == (3, 3, 16, 16) and px.dtype == np.float32
    assert np.allclose(px, images.pixels(proc, images.probe_images(3)))  # seeded


def test_compare_refuses_what_image_classifiers_do_not_have(tmp_path, folder):
    from click.testing import CliRunner
    from tiny_vision import tiny_vit

    from qonnx.cli import main

    model = tiny_vit(tmp_path / "vit")
    for extra, words in ((["--batch-sizes", "1,2"], "image classifiers have no curves yet"),
                         (["--robustness-rate", "0.1"], "is an image classifier"),
                         (["--max-perplexity-increase", "5"], "--max-perplexity-increase is for language models")):
        r = CliRunner().invoke(main, ["compare", str(model), "--dataset", str(folder), "-o", str(tmp_path / "run"),
                                      *extra])
        assert r.exit_code == 1 and words in r.output, r.output
