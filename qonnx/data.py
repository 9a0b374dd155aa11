"""Evaluation and calibration data: local csv/tsv/jsonl/json/parquet/txt, demo splits, hub ids.

A classification dataset is a list of texts plus integer labels mapped through the model's
label2id; a language-modelling dataset is one text corpus.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}


@dataclass
class TextData:
    source: str
    texts: list
    labels: list = field(default_factory=list)  # ints, empty for LM corpora

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
        raise DataError(f"Cannot read {path} as {suffix[1:]}: {str(e).splitlines()[0]}") from None


def _demo_file(spec: str) -> Path:
    """demo:NAME[:SPLIT] -> the split file of a built demo (SPLIT defaults to test)."""
    from . import demo

    parts = spec.split(":")
    name, split = parts[1], (parts[2] if len(parts) > 2 else "test")
    folder = demo.ensure(name) / "data"
    matches = sorted(folder.glob(f"{split}.*"))
    if not matches:
        known = sorted(p.stem for p in folder.iterdir())
        raise DataError(f"demo:{name} has no split '{split}'. Available: {', '.join(known)}")
    return matches[0]


def _hub_table(spec: str, config: str | None, split: str):
    try:
        import datasets

        return datasets.load_dataset(spec, config, split=split).to_pandas()
    except Exception as e:
        raise DataError(
            f"Could not load dataset '{spec}' (config {config}, split {split}) through `datasets`: "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. Offline? Use a local "
            "csv/tsv/jsonl/json/parquet/txt file or a demo split such as demo:sentiment:test."
        ) from None


def map_labels(values, label2id: dict, source: str) -> list:
    """Integer labels from ints or names (names matched without regard to case)."""
    by_name = {str(k).lower(): int(v) for k, v in label2id.items()}
    ids = set(by_name.values())
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


def _column(table, name, source, role):
    if name not in table.columns:
        raise DataError(f"{source} has no {role} column '{name}'. Columns: {', '.join(map(str, table.columns))}. "
                        f"Choose one with --{role}-column.")
    return table[name]


def load(spec: str, *, lm: bool, label2id: dict | None = None, text_column="text",
         label_column="label", hub_config=None, split="test", max_samples=None) -> TextData:
    """Load a dataset for a classifier (texts + labels) or a causal LM (a corpus)."""
    if spec.startswith("demo:"):
        path = _demo_file(spec)
    else:
        path = Path(spec).expanduser()
    if path.exists():
        if path.is_dir():
            raise DataError(f"{spec} is a folder; give a csv/tsv/jsonl/json/parquet/txt file.")
        suffix = path.suffix.lower()
        if suffix == ".txt":
            text = path.read_text(encoding="utf-8-sig", errors="replace")
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if not lines:
                raise DataError(f"{spec} is empty.")
            if not lm:
                raise DataError(f"{spec} is plain text; a classifier needs a table with text and label columns.")
            return TextData(source=str(path), texts=lines[:max_samples] if max_samples else lines)
        if suffix not in TABLE_SUFFIXES:
            raise DataError(f"{spec}: unsupported file type '{suffix}'. Use csv, tsv, jsonl, json, parquet or txt.")
        table, source = _read_table(path), str(path)
    elif spec.startswith(("/", ".", "~")) or Path(spec).suffix.lower() in TABLE_SUFFIXES | {".txt"}:
        raise DataError(f"No such dataset file: {spec}")
    else:
        table, source = _hub_table(spec, hub_config, split), f"{spec}:{split}"
    if len(table) == 0:
        raise DataError(f"{source} has no rows.")
    texts = _column(table, text_column, source, "text").astype(str).tolist()
    if max_samples:
        table, texts = table.iloc[:max_samples], texts[:max_samples]
    if lm:
        return TextData(source=source, texts=texts)
    labels = map_labels(_column(table, label_column, source, "label").tolist(), label2id or {}, source)
    return TextData(source=source, texts=texts, labels=labels)
