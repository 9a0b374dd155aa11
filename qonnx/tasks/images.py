"""Image classification (ViT, ConvNeXt, ResNet, MobileNet ...): top-1 and top-5 accuracy over the eval
images at batch 1 (each image alone, as a deployment sees it), throughput from a batched pass, batch-1
latency.

Images go through the model's own image processor (AutoImageProcessor from the model folder, its slow
PIL/numpy implementation: no torchvision) once, in the parent; every runtime gets the same
pixel_values, and timings cover the model call only. Data: a folder in the imagefolder layout (one
subfolder per class, its name a label of the model's label2id) or a table (csv/jsonl/..., a hub
dataset) whose image column holds image file paths (relative to the table's folder) and whose label
column holds label names or ids. Agreement with FP32 is top-1 agreement, worked out in the parent.
"""
from pathlib import Path

import numpy as np

from qonnx.data import TextData, column, map_labels, open_table, selection, stratified
from qonnx.errors import DataError, ModelError
from qonnx.measure.deviation import classification_metrics
from qonnx.measure.latency import Latency, batched_seconds
from qonnx.tasks.classification import group

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TOP_K = 5
SENSITIVITY = {"columns": ("accuracy", "accuracy_drop", "agreement", "kl"), "damage": "kl", "scale": 1e4,
               "unit": "KL vs FP32, x1e-4", "reference": ("accuracy",),
               "about": "top-1 agreement with FP32, KL divergence of the class probabilities, top-1 accuracy (drop) "
                        "against the labels"}
BUDGET_METRIC = "accuracy: top-1 accuracy on the eval images; --max-accuracy-drop limits the reference's minus the row's"


def _images_in(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def imagefolder(folder: Path, label2id: dict) -> tuple:
    """(paths, labels) of an imagefolder layout: one subfolder per class, named by its label."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{folder} has no class subfolders; the imagefolder layout is DIR/LABEL/IMAGE.png, one "
                        "subfolder per class named as the model's label2id names it.")
    paths, names = [], []
    for c in classes:
        found = _images_in(c)
        paths += [str(p.resolve()) for p in found]
        names += [c.name] * len(found)
    if not paths:
        raise DataError(f"{folder}: its class subfolders hold no images ({', '.join(sorted(SUFFIXES))}).")
    return paths, map_labels(names, label2id, str(folder))


def _path_of(value, base: Path | None, source: str, name: str) -> str:
    """An image column's value as the absolute path of an existing image file."""
    if isinstance(value, dict):  # a hub dataset's Image feature: {"bytes": ..., "path": ...}
        value = value.get("path") or ""
        if not value:
            raise DataError(f"{source}: the '{name}' column holds image bytes without a file path; qonnx reads "
                            "image files: save the images in the imagefolder layout and give --dataset DIR.")
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{source}: the '{name}' column holds {type(value).__name__} values; give image file paths.")
    p = Path(value).expanduser()
    p = p if p.is_absolute() or base is None else base / p
    if not p.is_file():
        raise DataError(f"{source}: no such image file {value} (column '{name}'; relative paths are read from the "
                        "table's folder).")
    return str(p.resolve())


def read_data(spec: str, *, label2id: dict, image_column="image", label_column="label", hub_config=None,
              split="test", max_samples=None, seed=0) -> TextData:
    """Image paths (in `texts`) and integer labels; max_samples draws a seeded sample stratified by label."""
    folder = Path(spec).expanduser()
    if folder.is_dir():
        paths, labels, source = *imagefolder(folder, label2id), str(folder)
    else:
        table, source = open_table(spec, hub_config, split)
        if len(table) == 0:
            raise DataError(f"{source} has no rows.")
        base = Path(spec).expanduser().resolve().parent if Path(spec).expanduser().is_file() else None
        paths = [_path_of(v, base, source, image_column) for v in column(table, image_column, source, "image")]
        labels = map_labels(column(table, label_column, source, "label").tolist(), label2id, source)
    picked = stratified(labels, max_samples or len(paths), seed)
    return TextData(source=source, texts=[paths[i] for i in picked], labels=[labels[i] for i in picked],
                    selection=selection(paths, labels, picked, len(paths), seed))


def calibration_images(spec: str, image_column="image") -> list:
    """Image paths to calibrate on: a folder (imagefolder layout, or images directly in it) or a table's
    image column."""
    folder = Path(spec).expanduser()
    if folder.is_dir():
        found = _images_in(folder) + [p for c in sorted(folder.iterdir()) if c.is_dir() for p in _images_in(c)]
        if not found:
            raise DataError(f"Calibration folder {spec} holds no images ({', '.join(sorted(SUFFIXES))}), in it or "
                            "in its class subfolders.")
        return [str(p.resolve()) for p in found]
    table, source = open_table(spec)
    base = folder.resolve().parent if folder.is_file() else None
    return [_path_of(v, base, source, image_column) for v in column(table, image_column, source, "image")]


def processor(path):
    """The model folder's image processor (the slow, PIL/numpy one: no torchvision needed)."""
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(str(path), use_fast=False)
    except Exception as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise ModelError(f"no image processor in {path}: preprocessor_config.json does not load "
                         f"({type(e).__name__}: {first}).") from None


def pixels(proc, images) -> np.ndarray:
    """pixel_values (float32) of PIL images or image paths, through the model's processor."""
    from PIL import Image

    loaded = []
    for im in images:
        if isinstance(im, str):
            try:
                with Image.open(im) as f:
                    im = f.convert("RGB")
            except OSError as e:
                raise DataError(f"Cannot read image {im}: {e}") from None
        loaded.append(im.convert("RGB"))
    return np.asarray(proc(images=loaded, return_tensors="np")["pixel_values"], dtype=np.float32)


def probe_images(n=4, seed=0) -> list:
    """Seeded synthetic RGB images of several sizes (gradients with noise): parity probes that need no
    data set."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = (48 + 40 * i, 64 + 24 * i)
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x / w, y / h, (x + y) / (w + h)], -1) * 255
        img = np.clip(base * (0.5 + 0.5 * (i % 2)) + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(img, "RGB"))
    return out


def settings(source) -> dict:
    return {"budget_metric": BUDGET_METRIC}


def prepare(proc, data, job) -> dict:
    paths, bs, n = data["texts"], job.batch_size, job.latency_samples
    arrays = {"labels": np.asarray(data["labels"], dtype=np.int64)}
    singles = [pixels(proc, [p]) for p in paths]
    for b, i in enumerate(range(0, len(paths), bs)):
        arrays[f"batch{b:05d}.pixel_values"] = np.concatenate(singles[i:i + bs])
    for u, px in enumerate(singles):  # every image alone: the accuracy pass; batch-1 latency cycles through them
        arrays[f"single{u:05d}.pixel_values"] = px
    arrays["request_order"] = np.arange(n, dtype=np.int64) % min(n, len(paths))
    return arrays


def top_k_accuracy(logits, labels, k=TOP_K):
    """The share of rows whose label is among the k highest logits; None with k or fewer classes (it
    would be 1 whatever the model)."""
    if logits.shape[1] <= k:
        return None
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(1).mean())


def logits_of(runner, arrays):
    """Every image's logits, each image alone (batch 1)."""
    return np.concatenate([runner.logits(u) for u in group(arrays, "single")])


def measure(runner, arrays, job):
    batches, labels = group(arrays, "batch"), arrays["labels"]
    unique = group(arrays, "single")
    singles = [unique[i] for i in arrays["request_order"]]
    logits = logits_of(runner, arrays)  # quality: each image alone
    elapsed = batched_seconds(runner, runner.logits, batches)
    seconds = runner.latency(runner.logits, singles, job.warmup)
    return {"accuracy": float((logits.argmax(-1) == labels).mean()),
            "top5_accuracy": top_k_accuracy(logits, labels),
            "throughput_per_s": len(labels) / elapsed,
            "latency_ms": Latency.from_values(seconds).to_dict(),
            "outputs": logits}


def sensitivity_outputs(runner, arrays, job):
    return logits_of(runner, arrays).astype(np.float64)


def sensitivity_metrics(ref, out, arrays) -> dict:
    return classification_metrics(ref, out, arrays["labels"])


def finish(proc, result):
    return result
