"""The run folder: where a compare run (or an analysis) lives, what it was measured with, and
whether it may be resumed. compare, sweep, the analyses and the UI all use this one module.

Layout of a compare run: run.json (settings and environment), config.yaml (the settings as a
config file), rows/VARIANT@PROVIDER.json (each row as it finishes), work/ (inputs, each worker's
job, log and outputs), then results.json, results.csv, report.md, plots and report.html.
"""
import json
import time
from pathlib import Path

from qonnx import store
from qonnx.cache import write_json
from qonnx.errors import ConfigError
from qonnx.schema import Row

# settings that do not change a row's numbers: a resume may change them
FREE_TO_CHANGE = ("output", "resume", "variants", "providers", "executor", "address", "mlflow", "targets")


def default_run_dir(source, what="") -> Path:
    """ROOT/runs/NAME[-WHAT]-TIME: a compare run, or an analysis (what = "robustness", ...)."""
    return store.root() / "runs" / "-".join(filter(None, (store.slug(source), what, time.strftime("%Y%m%d-%H%M%S"))))


def changed(old: dict, new: dict, free=()) -> list:
    """The settings whose values differ between two runs, except those free to change."""
    return [k for k in sorted(set(old) | set(new)) if k not in free and old.get(k) != new.get(k)]


def machine(env) -> dict:
    """The parts of the environment that make rows comparable."""
    return {"cpu": env.get("cpu"), "gpu": env.get("gpu"), "versions": env.get("versions")}


def _flat(d, prefix="") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def machine_changes(before: dict, now: dict) -> list:
    """What differs between the machines of two environments: ['cpu.model: A -> B', ...]."""
    old, new = _flat(machine(before)), _flat(machine(now))
    shown = lambda v: "none" if v is None else v  # noqa: E731
    return [f"{k}: {shown(old.get(k))} -> {shown(new.get(k))}" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)]


class Run:
    """The state of one compare run on disk."""

    def __init__(self, cfg, folder: Path):
        self.cfg, self.dir = cfg, Path(folder)
        self.rows_dir, self.work = self.dir / "rows", self.dir / "work"
        if self.dir.exists() and not self.dir.is_dir():
            raise ConfigError(f"-o {self.dir} is a file, not a folder; choose a folder for the run.")
        held = self.dir.is_dir() and any(self.dir.iterdir())
        if held and not (self.dir / "run.json").is_file():
            raise ConfigError(f"{self.dir} is not empty and is not a qonnx run; choose another --output.")
        if held and not cfg.resume:
            raise ConfigError(f"{self.dir} already holds results; pass --resume to finish it, "
                              "or choose another --output.")
        if cfg.resume and not held:
            raise ConfigError(f"Nothing to resume in {self.dir}: it holds no run.")

    def check_resumable(self, settings, env):
        """--resume must not mix rows measured under different settings or on another machine."""
        before = json.loads((self.dir / "run.json").read_text())
        old = before.get("settings", {})
        differ = changed(old, settings, FREE_TO_CHANGE)
        if differ:
            raise ConfigError(f"Cannot resume {self.dir}: settings differ from the first run "
                              f"({'; '.join(f'{k}: {old.get(k)} -> {settings.get(k)}' for k in differ)}). "
                              "Start a new run with another --output.")
        differ = machine_changes(before.get("environment", {}), env)
        if differ:
            raise ConfigError(f"Cannot resume {self.dir}: it was measured on another machine or with "
                              f"other library versions ({'; '.join(differ)}); rows would not be comparable. "
                              "Start a new run with another --output.")

    def check_nodes(self, nodes: dict):
        """--resume on a Ray cluster: every node that measured ok rows of this run must be the
        machine it was then (CPU model and flags, GPU, library versions). nodes: {hostname:
        environment} of the cluster's live nodes now. A node that has left measures nothing new;
        its rows stay."""
        problems = {}
        for row in self.rows():
            host = (row.node or {}).get("hostname")
            if row.ok and host in nodes and row.environment:
                problems.setdefault(host, machine_changes(row.environment, nodes[host]))
        problems = {h: d for h, d in problems.items() if d}
        if problems:
            raise ConfigError(f"Cannot resume {self.dir}: " + "; ".join(
                f"Ray node {host} is not the machine that measured its rows ({', '.join(d)})"
                for host, d in sorted(problems.items()))
                + ". Rows would not be comparable: start a new run with another --output, or resume on "
                "nodes as they were.")

    def create(self, meta: dict):
        """The folder with run.json (settings and environment) and config.yaml."""
        try:
            self.rows_dir.mkdir(parents=True, exist_ok=True)
            self.work.mkdir(exist_ok=True)
        except OSError as e:
            raise store.unwritable(self.dir, e.strerror, "--output") from None
        write_json(self.dir / "run.json", meta)
        save_config(self.cfg, self.dir / "config.yaml")

    def row_path(self, variant, provider):
        return self.rows_dir / f"{variant}@{provider}.json"

    def done(self, variant, provider):
        p = self.row_path(variant, provider)
        return p.is_file() and json.loads(p.read_text()).get("status") == "ok"

    def save_row(self, row: Row):
        write_json(self.row_path(row.variant, row.provider), row.to_dict())

    def rows(self):
        return [Row.from_dict(json.loads(p.read_text()), str(p)) for p in sorted(self.rows_dir.glob("*.json"))]


def save_config(cfg, path):
    """The run's settings as a config file: `qonnx compare --config PATH` measures it again."""
    import yaml

    keep = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items() if k not in ("output", "resume")}
    path.write_text("# qonnx compare --config THIS_FILE -o NEW_FOLDER measures this run again\n"
                    + yaml.safe_dump(keep, sort_keys=False))
