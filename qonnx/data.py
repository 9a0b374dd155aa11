"""Evaluation and calibration data: local csv/tsv/jsonl/json/parquet/txt, demo splits, hub ids.

A classification dataset is a list of texts plus integer labels mapped through the model's
label2id; a language-modelling dataset is one text corpus; an embeddings dataset is a list of
distinct texts, or labelled pairs (sentence1, sentence2, score) and the distinct texts they hold.
"""
import json
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from qonnx import demo
from qonnx.errors import DataError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}
MAX_NON_TEXT = 0.01  # an LM corpus with more than 1 % non-text characters is refused (check_corpus)


@dataclass
class TextData:
    source: str
    texts: list
    labels: list = field(default_factory=list)  # ints, empty for LM corpora
    selection: dict = field(default_factory=dict)  # how rows were chosen, and their hash
    pairs: list = field(default_factory=list)   # embeddings: [(i, j)] indices into texts, labelled pairs
    scores: list = field(default_factory=list)  # embeddings: each pair's similarity label
    records: list = field(default_factory=list)  # token classification, QA: each example's fields (the task's reader)
    targets: list = field(default_factory=list)  # seq2seq: each text's reference output (--target-column)

    @property
    def corpus(self) -> str:
        return "\n".join(self.texts)


def _read_table(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            return pd.read_json(path)
        return pd.read_parquet(path)
    except Exception as e:
        where = _json_problem(path, suffix) if suffix in (".jsonl", ".json") else ""
        raise DataError(f"Cannot read {path} as {suffix[1:]}: {where or str(e).splitlines()[0]}") from None


def _json_problem(path: Path, suffix: str) -> str:
    """Where a json/jsonl file breaks, by line (pandas reports a character offset into the file)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        return str(e)
    lines = text.splitlines() if suffix == ".jsonl" else [text]
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError as e:
            at = e.lineno if suffix == ".json" else n
            col = f", column {e.colno}" if suffix == ".json" else ""
            return f"line {at}{col} is not valid JSON ({e.msg})"
    return ""


def columns(spec: str) -> list:
    """Column names of a local table file ([] for anything else: the loader reports problems)."""
    path = Path(spec).expanduser()
    if not path.is_file() or path.suffix.lower() not in TABLE_SUFFIXES:
        return []
    if path.suffix.lower() in (".csv", ".tsv"):
        import pandas as pd

        try:
            return list(pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", nrows=0).columns)
        except Exception:
            return []
    try:
        return list(_read_table(path).columns)
    except Exception:
        return []


def demo_file(spec: str) -> Path:
    """demo:NAME[:SPLIT] -> the split file of a built demo (SPLIT defaults to test)."""
    parts = spec.split(":")
    name, split = parts[1], (parts[2] if len(parts) > 2 else "test")
    folder = demo.ensure(name) / "data"
    matches = sorted(folder.glob(f"{split}.*"))
    if not matches:
        known = sorted(p.stem for p in folder.iterdir())
        raise DataError(f"demo:{name} has no split '{split}'. Available: {', '.join(known)}")
    return matches[0]


def _hub_table(spec: str, config: str | None, split: str, label_column=None):
    """The split as a DataFrame; a ClassLabel column is given as its names (the dataset's own
    label order need not be the model's)."""
    try:
        import datasets

        ds = datasets.load_dataset(spec, config, split=split)
        table = ds.to_pandas()
        feature = ds.features.get(label_column) if label_column else None
        if isinstance(feature, datasets.ClassLabel):
            table[label_column] = [feature.int2str(int(v)) for v in table[label_column]]
        inner = getattr(feature, "feature", None)  # a sequence of class labels (CoNLL's ner_tags)
        if isinstance(inner, datasets.ClassLabel):
            table[label_column] = [[inner.int2str(int(v)) for v in tags] for tags in table[label_column]]
        return table
    except Exception as e:
        raise DataError(
            f"Could not load dataset '{spec}' (config {config}, split {split}) through `datasets`: "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. Offline? Use a local "
            "csv/tsv/jsonl/json/parquet/txt file or a demo split such as demo:sentiment:test."
        ) from None


def map_labels(values, label2id: dict, source: str) -> list:
    """Integer labels from names (matched without regard to case) or from ints taken as the
    model's own ids. A column that mixes names and numbers is refused as ambiguous."""
    by_name = {str(k).lower(): int(v) for k, v in label2id.items()}
    ids = set(by_name.values())
    named = [isinstance(v, str) and not v.strip().lstrip("-").isdigit() for v in values]
    if any(named) and not all(named):
        raise DataError(f"The label column of {source} mixes names and numbers; use one or the other.")
    out = []
    for v in values:
        if isinstance(v, str) and v.strip().lower() in by_name:
            out.append(by_name[v.strip().lower()])
            continue
        try:
            as_int = int(v)
            if as_int == float(v) and as_int in ids:
                out.append(as_int)
                continue
        except (TypeError, ValueError):
            pass
        raise DataError(f"Unknown label '{v}' in {source}. The model knows: "
                        f"{', '.join(f'{k} ({v})' for k, v in sorted(label2id.items(), key=lambda x: x[1]))}")
    return out


def column(table, name, source, role):
    if name not in table.columns:
        raise DataError(f"{source} has no {role} column '{name}'. Columns: {', '.join(map(str, table.columns))}. "
                        f"Choose one with --{role}-column.")
    return table[name]


def check_texts(values, source, name):
    """Texts as str; a missing (NaN/None) or blank text is one clear error up front."""
    import pandas as pd

    bad = [i for i, v in enumerate(values) if (not isinstance(v, str) and pd.isna(v)) or not str(v).strip()]
    if bad:
        raise DataError(f"{source}: {len(bad)} row(s) have an empty or missing '{name}' text "
                        f"(first at row {bad[0] + 1}); remove or fill them.")
    return [str(v) for v in values]


def check_corpus(texts, source):
    """An LM corpus must be text: refused when more than MAX_NON_TEXT of its characters are U+FFFD
    (bytes that are not UTF-8, replaced on reading) or control characters other than tab, newline,
    carriage return, form feed and vertical tab. Random bytes are about half such characters, and
    their perplexity measures nothing; a real text has next to none."""
    chars = sum(len(t) for t in texts)
    bad = sum(1 for t in texts for c in t
              if c == "\ufffd" or (c not in "\t\n\r\f\v" and unicodedata.category(c) == "Cc"))
    if chars and bad / chars > MAX_NON_TEXT:
        raise DataError(f"{source} is not text: {bad / chars:.0%} of its {chars} characters are bytes that are "
                        f"not UTF-8 or control characters (more than {MAX_NON_TEXT:.0%} is refused). Give an LM "
                        "a UTF-8 text corpus.")


def stratified(labels, n, seed) -> list:
    """Row indices of a seeded sample of n rows with the label proportions of the whole set."""
    import random
    from collections import defaultdict

    if n >= len(labels):
        return list(range(len(labels)))
    groups = defaultdict(list)
    for i, lab in enumerate(labels):
        groups[lab].append(i)
    rng = random.Random(seed)
    quotas = {k: n * len(v) / len(labels) for k, v in groups.items()}
    take = {k: int(q) for k, q in quotas.items()}
    for k in sorted(quotas, key=lambda k: quotas[k] - take[k], reverse=True)[: n - sum(take.values())]:
        take[k] += 1
    picked = [i for k, idx in sorted(groups.items(), key=lambda kv: str(kv[0]))
              for i in rng.sample(idx, take[k])]
    return sorted(picked)


def selection(texts, labels, picked, total, seed, method="seeded, stratified by label"):
    import hashlib

    h = hashlib.sha256()
    for i in picked:
        h.update(f"{i}\t{labels[i] if labels else ''}\t{texts[i]}\n".encode())
    return {"rows": len(picked), "of": total, "seed": seed,
            "method": "all rows" if len(picked) == total else method,
            "rows_sha256": h.hexdigest()[:16]}


def _locate(spec: str) -> Path | None:
    """The local file a data spec names (a demo split or a path, checked), or None for a hub id."""
    path = demo_file(spec) if spec.startswith("demo:") else Path(spec).expanduser()
    if path.exists():
        if path.is_dir():
            raise DataError(f"{spec} is a folder; give a csv/tsv/jsonl/json/parquet/txt file.")
        if path.suffix.lower() not in TABLE_SUFFIXES | {".txt"}:
            raise DataError(f"{spec}: unsupported file type '{path.suffix.lower()}'. Use csv, tsv, jsonl, json, "
                            "parquet or txt.")
        return path
    if spec.startswith(("/", ".", "~")) or Path(spec).suffix.lower() in TABLE_SUFFIXES | {".txt"}:
        raise DataError(f"No such dataset file: {spec}")
    return None


def _lines(path: Path) -> list:
    """The non-blank lines of a text file."""
    return [ln for ln in path.read_text(encoding="utf-8-sig", errors="replace").splitlines() if ln.strip()]


def open_table(spec: str, hub_config=None, split="test", label_column=None):
    """(table, source) of a data spec; a .txt file is a table with one 'text' column of its lines.
    label_column: a hub dataset's class-label column (or sequence of them), given as names."""
    import pandas as pd

    path = _locate(spec)
    if path is None:
        return _hub_table(spec, hub_config, split, label_column), f"{spec}:{split}"
    if path.suffix.lower() == ".txt":
        return pd.DataFrame({"text": _lines(path)}), str(path)
    return _read_table(path), str(path)


def load(spec: str, *, lm: bool, label2id: dict | None = None, text_column="text",
         label_column="label", hub_config=None, split="test", max_samples=None, seed=0) -> TextData:
    """Load a dataset for a classifier (texts + labels) or a causal LM (a corpus).

    max_samples draws a seeded sample stratified by label (never the first N rows, which on a
    sorted file would score one class); `selection` records which rows were used."""
    path = _locate(spec)
    if path is not None:
        if path.suffix.lower() == ".txt":
            lines = _lines(path)
            if not lines:
                raise DataError(f"{spec} is empty.")
            if not lm:
                raise DataError(f"{spec} is plain text; a classifier needs a table with text and label columns.")
            check_corpus(lines, spec)
            return TextData(source=str(path), texts=lines,
                            selection=selection(lines, [], range(len(lines)), len(lines), seed))
        table, source = _read_table(path), str(path)
    else:
        table, source = _hub_table(spec, hub_config, split, None if lm else label_column), f"{spec}:{split}"
    if len(table) == 0:
        raise DataError(f"{source} has no rows.")
    texts = check_texts(column(table, text_column, source, "text").tolist(), source, text_column)
    if lm:
        check_corpus(texts, source)
        return TextData(source=source, texts=texts,
                        selection=selection(texts, [], range(len(texts)), len(texts), seed))
    labels = map_labels(column(table, label_column, source, "label").tolist(), label2id or {}, source)
    picked = stratified(labels, max_samples or len(labels), seed)
    return TextData(source=source, texts=[texts[i] for i in picked], labels=[labels[i] for i in picked],
                    selection=selection(texts, labels, picked, len(texts), seed))
