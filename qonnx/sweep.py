"""`qonnx sweep FILE`: many compare runs from one file, and their curves side by side.

A sweep file holds compare options shared by every point, then `axes` (each option a list of
values: the product is the set of points) or `points` (an explicit list of option mappings), or
both (points first, then the product). Axes over options that a compare run already measures as
a list (variants, providers, batch_sizes, sequence_lengths) are not multiplied: each point
measures all of their values in one loaded model per row. Plural names are accepted for the
scalar options (models, thresholds...: `models: [a, b]` is an axis over `model`).

SWEEP_DIR/sweep.yaml is the resolved file (it re-runs the sweep); every point is a compare run
in SWEEP_DIR/points/NN-NAME (with its own results and report.html); SWEEP_DIR/sweep.csv holds
every row of every point with the point's settings, shapes.csv every (batch, length) point, and
curves.png the latency and throughput curves.
"""
import itertools
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from qonnx import schema, store
from qonnx.cache import write_json
from qonnx.config import CompareConfig
from qonnx.config import file as configfile
from qonnx.errors import ConfigError, Interrupted
from qonnx.report.plots import curves, shape_table
from qonnx.report.tables import frame
from qonnx.run.compare import compare

log = logging.getLogger(__name__)

SWEEP_KEYS = ("name", "axes", "points")
LIST_OPTIONS = ("variants", "providers", "batch_sizes", "sequence_lengths")
MARK = "qonnx-sweep"


@dataclass
class Sweep:
    name: str
    shared: dict
    points: list                    # [{option: value}] the settings of each point, beyond `shared`
    output: Path | None = None
    resume: bool = False
    overrides: dict = field(default_factory=dict)  # CLI flags: they win over the file
    file: str = "SWEEP_FILE"        # the sweep file, for the resume command

    def configs(self, folder: Path) -> list:
        out = []
        for i, point in enumerate(self.points, 1):
            opts = {**self.shared, **point, **self.overrides}
            sub = folder / "points" / f"{i:02d}-{point_name(point)}"
            out.append((point, sub, CompareConfig(**{**opts, "output": sub,
                                                     "resume": self.resume and (sub / "run.json").is_file()})))
        return out


def safe_name(text) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", str(text))[:80]


def point_name(point) -> str:
    return safe_name("-".join(f"{k}={Path(str(v)).name if k == 'model' else v}" for k, v in point.items()) or "all")


def _axis_name(key, allowed, where):
    name = configfile.normal_key(key)
    if name not in allowed and name.endswith("s") and name[:-1] in allowed:
        name = name[:-1]  # models -> model, calibration_methods -> calibration_method
    if name not in allowed:
        raise configfile.unknown_key(key, allowed, where)
    return name


def load(path, overrides=None, output=None, resume=False) -> Sweep:
    """Read and check a sweep file: every point's compare settings are validated here, before work."""
    import typing

    doc, where = configfile.read(path), str(path)
    allowed = configfile.option_names(CompareConfig)
    shared = configfile.options({k: v for k, v in doc.items() if k not in SWEEP_KEYS}, CompareConfig, where)
    hints = typing.get_type_hints(CompareConfig)
    axes = doc.get("axes") or {}
    if not isinstance(axes, dict):
        raise ConfigError(f"{where}: 'axes' maps option names to lists of values, e.g. threads: [1, 2]")
    product = {}
    for key, values in axes.items():
        name = _axis_name(key, allowed, f"{where}: axes")
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ConfigError(f"{where}: axes.{key} is empty; give at least one value.")
        if name in LIST_OPTIONS:  # measured inside each run: one value, the whole list
            shared[name] = configfile.check(name, values, hints[name], f"{where}: axes")
            continue
        product[name] = [configfile.check(name, v, hints[name], f"{where}: axes.{key}") for v in values]
    listed = doc.get("points") or []
    if not isinstance(listed, list) or not all(isinstance(p, dict) for p in listed):
        raise ConfigError(f"{where}: 'points' is a list of mappings, e.g. - {{threads: 1}}")
    points = [configfile.options(p, CompareConfig, f"{where}: points[{i}]") for i, p in enumerate(listed)]
    keys = list(product)
    points += [dict(zip(keys, combo)) for combo in itertools.product(*product.values())] if keys else []
    if not points:
        points = [{}]
    for p in points:
        if "output" in p or "output" in shared:
            raise ConfigError(f"{where}: 'output' is chosen per point by the sweep; give -o for the sweep folder.")
    name = str(doc.get("name") or Path(path).stem)
    sweep = Sweep(name=name, shared=shared, points=points, output=output, resume=resume,
                  overrides=overrides or {}, file=str(path))
    sweep.configs(Path("."))  # builds every point's CompareConfig: bad values fail now
    return sweep


def _claim(folder: Path, resume: bool):
    """The sweep folder must be new, empty, or (with --resume) one of our sweeps."""
    marker = folder / "sweep.json"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"-o {folder} is a file; give a folder for the sweep.")
    held = folder.is_dir() and any(folder.iterdir())
    ours = marker.is_file() and json.loads(marker.read_text()).get("generator") == MARK
    if held and not ours:
        raise ConfigError(f"{folder} is not empty and is not a qonnx sweep; choose another -o.")
    if ours and not resume:
        raise ConfigError(f"{folder} already holds a sweep; pass --resume to finish it, or choose another -o.")
    if resume and not ours:
        raise ConfigError(f"Nothing to resume in {folder}: it holds no sweep.")


def run(sweep: Sweep, on_row=None, on_point=None) -> dict:
    """Measure every point (each a compare run); returns the sweep document (sweep.json)."""
    import yaml

    folder = Path(sweep.output) if sweep.output else store.root() / "runs" / (
        f"{safe_name(sweep.name)}-sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    _claim(folder, sweep.resume)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise store.unwritable(folder, e.strerror) from None
    resolved = _plain({"name": sweep.name, **sweep.shared, **sweep.overrides, "points": sweep.points})
    if sweep.resume and (folder / "sweep.yaml").is_file():  # the same sweep, or its points would be orphaned
        before = yaml.safe_load((folder / "sweep.yaml").read_text()) or {}
        differ = sorted(k for k in set(before) | set(resolved) if before.get(k) != resolved.get(k))
        if differ:
            raise ConfigError(f"the sweep changed since {folder} was started ({', '.join(differ)} differ from its "
                              "sweep.yaml); --resume finishes the same sweep: run it as it was, or choose another -o.")
    (folder / "sweep.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    doc = {"generator": MARK, "name": sweep.name, "points": []}
    write_json(folder / "sweep.json", doc)
    try:
        for point, sub, cfg in sweep.configs(folder):
            if on_point:
                on_point(point, sub)
            compare(cfg, on_row=on_row)  # on --resume, a finished point only has its files rewritten
            doc["points"].append({"settings": point, "run": str(sub.resolve())})
            write_json(folder / "sweep.json", doc)
    except (KeyboardInterrupt, Interrupted):  # compare's own message would suggest `compare --resume`
        raise Interrupted(f"interrupted; the finished points and rows are kept in {folder}. Finish the sweep "
                          f"with: {resume_command(sweep, folder)}") from None
    combine(folder, doc)
    doc["output"] = str(folder.resolve())
    return doc


def resume_command(sweep: Sweep, folder: Path) -> str:
    """The command that finishes this sweep: its file, folder and command-line overrides."""
    flags = "".join(f" --{k.replace('_', '-')} {v}" for k, v in sweep.overrides.items())
    return f"qonnx sweep {sweep.file} -o {folder}{flags} --resume"


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def combine(folder: Path, doc: dict):
    """sweep.csv (every row of every point), shapes.csv and curves.png."""
    import pandas as pd


    rows, shapes = [], []
    for p in doc["points"]:
        results = json.loads((Path(p["run"]) / "results.json").read_text())
        settings = {f"point.{k}": str(v) for k, v in p["settings"].items()}
        table = frame(schema.dump(schema.load(results)))
        for k, v in settings.items():
            table.insert(0, k, v)
        rows.append(table)
        shapes.append(shape_table(results["rows"], settings))
    pd.concat(rows, ignore_index=True).to_csv(folder / "sweep.csv", index=False)
    table = pd.concat(shapes, ignore_index=True)
    if len(table):
        table.to_csv(folder / "shapes.csv", index=False)
        curves(table, folder / "curves.png", title=f"sweep {doc['name']}")


def table(csv_path):
    """sweep.csv as a rich Table: one line per row of every point, with its settings, status,
    quality and batch-1 latency."""
    import pandas as pd
    from rich.table import Table

    frame = pd.read_csv(csv_path)
    cols = [c for c in frame.columns if c.startswith("point.")] + ["variant", "provider", "status"]
    cols += [c for c in ("accuracy", "perplexity", "topk_overlap", "f1", "latency_ms_p50", "throughput_per_s", "size_mb")
             if c in frame.columns and frame[c].notna().any()]
    out = Table(title=f"sweep: {len(frame)} rows")
    for c in cols:
        out.add_column(c.removeprefix("point."), justify="right" if frame[c].dtype.kind == "f" else "left")
    for _, r in frame.iterrows():
        out.add_row(*["" if pd.isna(r[c]) else (f"{r[c]:,.0f}" if abs(r[c]) >= 1000 else f"{r[c]:.4g}")
                      if isinstance(r[c], float) else str(r[c]) for c in cols])
    return out
