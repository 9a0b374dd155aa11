"""Built-in demo assets, built offline from registry packages and cached.

`ensure(name)` returns the built folder: {model/, data/, provenance.json, manifest.json}. It
builds on first use and rebuilds when a file is missing or damaged (store.verify: sizes always,
sha256 when a file changed since its last check) or when the demo module's VERSION differs from
the one the cache was built at.
"""
import logging
from importlib import import_module
from pathlib import Path

from qonnx import manifest, store
from qonnx.cache import cache_dir, locked
from qonnx.errors import unknown
from qonnx.progress import progress

log = logging.getLogger(__name__)

DEMOS = {
    "sentiment": ("sentiment", "MiniLM-L6 sentiment classifier fine-tuned on VADER movie snippets"),
    "smollm2": ("smollm2", "SmolLM2-135M-Instruct causal LM (fp32) with a plain-text corpus"),
    "minilm": ("minilm", "all-MiniLM-L6-v2 sentence embeddings, as published, with VADER sentences"),
}


def demo_dir(name) -> Path:
    return cache_dir() / "demo" / name


def check(folder: Path, name=None) -> str:
    """'' when folder is a complete, intact build of this qonnx's demo, else why it is not."""
    if not (folder / "manifest.json").is_file():
        return "not built"
    if name:  # files a newer qonnx added to the demo (a cache from before lacks them)
        module = import_module(f".{DEMOS[name][0]}", __name__)
        missing = [f for f in getattr(module, "FILES", ()) if not (folder / f).is_file()]
        if missing:
            return f"built by an older qonnx, without {', '.join(missing)}"
        want = getattr(module, "VERSION", None)
        built = manifest.read(folder).get("provenance", {}).get("version", 1)
        if want is not None and built != want:
            return f"a version {built} build; this qonnx builds version {want}"
    return store.verify(folder)


def ensure(name, force=False) -> Path:
    if name not in DEMOS:
        raise unknown("demo", name, DEMOS)
    folder = demo_dir(name)
    if not force and not check(folder, name):
        return folder
    with locked(folder.with_name(f".{name}.lock")):  # a second process waits, then finds it built
        return _build(name, folder, force)


def _build(name, folder, force) -> Path:
    problem = "rebuild requested" if force else check(folder, name)
    if not problem:
        return folder
    log.warning("building demo:%s (%s); this runs once and is cached in %s", name, problem, folder)

    module = import_module(f".{DEMOS[name][0]}", __name__)
    downloads = cache_dir() / "downloads"
    with store.atomic_dir(folder, overwrite=True) as tmp, progress() as bar:
        prov = module.build(tmp, downloads, bar)
        manifest.write(tmp, kind="demo", demo=name, provenance=prov)
    return folder
