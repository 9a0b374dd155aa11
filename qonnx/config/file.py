"""Config files: YAML or JSON with the CLI's option names (`batch-size` or `batch_size`).

Every key is checked against the operation's config dataclass before any work starts: an
unknown key or a value of the wrong kind is one error that names the key, the file and what is
allowed ("did you mean ...").
"""
import dataclasses
import difflib
import json
import types
import typing
from pathlib import Path

from qonnx.errors import ConfigError

NOT_IN_FILES = ("resume",)  # a property of one invocation, not of the experiment


def read(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist" if not path.exists() else f"{path} is not a file")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from None
    except Exception as e:  # yaml.YAMLError, with the line and column
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if doc is None:
        raise ConfigError(f"{path} is empty; see examples/sweep.yaml for the format.")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} must hold a mapping of option names to values, not a {type(doc).__name__}.")
    return doc


def option_names(cls) -> list:
    return [f.name for f in dataclasses.fields(cls) if f.name not in NOT_IN_FILES]


def normal_key(key) -> str:
    return str(key).strip().replace("-", "_")


def unknown_key(key, allowed, where) -> ConfigError:
    near = difflib.get_close_matches(normal_key(key), allowed, n=1, cutoff=0.6)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    return ConfigError(f"{where}: unknown key '{key}'.{hint} Allowed: {', '.join(allowed)}.")


def options(doc: dict, cls, where: str) -> dict:
    """{field: value} for cls from a file's mapping, every key and value checked."""
    hints, allowed, out = typing.get_type_hints(cls), option_names(cls), {}
    for key, value in doc.items():
        name = normal_key(key)
        if name not in allowed:
            raise unknown_key(key, allowed, where)
        out[name] = check(name, value, hints[name], where)
    return out


def _kinds(hint):
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return [a for a in typing.get_args(hint) if a is not type(None)], type(None) in typing.get_args(hint)
    return [hint], False


def check(name, value, hint, where):
    kinds, optional = _kinds(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: '{name}' needs a value.")
    kind = kinds[0]
    bad = None
    if kind is bool:
        bad = None if isinstance(value, bool) else "true or false"
    elif kind is int:
        bad = None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    elif kind is float:
        bad = None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    elif kind in (str, Path):
        bad = None if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "a string"
        value = str(value) if bad is None else value
    elif kind in (list, tuple) or typing.get_origin(kind) in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        bad = None if isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value) else "a list"
    if bad:
        raise ConfigError(f"{where}: '{name}' must be {bad}, got {value!r}.")
    return value
