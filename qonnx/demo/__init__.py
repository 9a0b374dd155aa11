"""Built-in demo assets, built offline from registry packages and cached.

`ensure(name)` returns the built folder: {model/, data/, provenance.json, manifest.json}. It
builds on first use and rebuilds when a file is missing or damaged (size check on every use,
sha256 check with `verify=True`).
"""
import logging
from importlib import import_module
from pathlib import Path

from ..cache import atomic_dir, cache_dir, hash_tree, write_json
from ..errors import unknown

log = logging.getLogger(__name__)

DEMOS = {
    "sentiment": ("sentiment", "MiniLM-L6 sentiment classifier fine-tuned on VADER movie snippets"),
    "smollm2": ("smollm2", "SmolLM2-135M-Instruct causal LM (fp32) with a plain-text corpus"),
}


def demo_dir(name) -> Path:
    return cache_dir() / "demo" / name


def check(folder: Path, verify=False) -> str:
    """'' when folder is a complete build, else why it is not."""
    import json

    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return "not built"
    files = json.loads(manifest.read_text())["files"]
    for rel, meta in files.items():
        p = folder / rel
        if not p.is_file() or p.stat().st_size != meta["size"]:
            return f"{rel} is missing or has the wrong size"
    if verify:
        for rel, digest in hash_tree(folder).items():
            if rel in files and files[rel]["sha256"] != digest:
                return f"{rel} is damaged (sha256 mismatch)"
    return ""


def ensure(name, verify=False, force=False) -> Path:
    if name not in DEMOS:
        raise unknown("demo", name, DEMOS)
    folder = demo_dir(name)
    problem = "rebuild requested" if force else check(folder, verify)
    if not problem:
        return folder
    log.warning("building demo:%s (%s); this runs once and is cached in %s", name, problem, folder)
    from ..progress import progress

    module = import_module(f".{DEMOS[name][0]}", __name__)
    downloads = cache_dir() / "downloads"
    with atomic_dir(folder) as tmp, progress() as bar:
        prov = module.build(tmp, downloads, bar)
        hashes = hash_tree(tmp)
        write_json(tmp / "manifest.json", {
            "demo": name, "provenance": prov,
            "files": {k: {"sha256": v, "size": (tmp / k).stat().st_size} for k, v in hashes.items()}})
    return folder
