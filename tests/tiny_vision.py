"""Tiny random image classifiers built from configs (no hub, no downloads), each saved with a small image
processor config, and seeded PNG images in the imagefolder layout (DIR/LABEL/IMAGE.png)."""
from pathlib import Path

CLASSES = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu"]  # 7 > 5: top-5 accuracy means something
LABELS = {"id2label": dict(enumerate(CLASSES)), "label2id": {c: i for i, c in enumerate(CLASSES)}}


def tiny_vit(folder: Path, size=32) -> Path:
    """A tiny seeded ViTForImageClassification with a ViTImageProcessor (resize to size x size)."""
    import torch
    import transformers as t

    torch.manual_seed(0)
    cfg = t.ViTConfig(image_size=size, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, num_labels=len(CLASSES), **LABELS)
    t.ViTForImageClassification(cfg).eval().save_pretrained(folder)
    t.ViTImageProcessor(size={"height": size, "width": size}).save_pretrained(folder)
    return Path(folder)


def tiny_resnet(folder: Path, size=32) -> Path:
    """A tiny seeded ResNetForImageClassification with a ConvNextImageProcessor (shortest edge, centre crop),
    as microsoft/resnet-50 ships."""
    import torch
    import transformers as t

    torch.manual_seed(0)
    cfg = t.ResNetConfig(embedding_size=16, hidden_sizes=[16, 64], depths=[1, 1], layer_type="basic",
                         num_labels=len(CLASSES), **LABELS)
    t.ResNetForImageClassification(cfg).eval().save_pretrained(folder)
    t.ConvNextImageProcessor(size={"shortest_edge": size}, crop_pct=0.875).save_pretrained(folder)
    return Path(folder)


def image_folder(folder: Path, per_class=2, classes=CLASSES, seed=0) -> Path:
    """Seeded random PNGs of several sizes in the imagefolder layout, one subfolder per class."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = int(rng.integers(24, 64)), int(rng.integers(24, 64))
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").save(folder / c / f"{i}.png")
    return Path(folder)
