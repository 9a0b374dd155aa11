"""Where qonnx keeps what it builds, and small file helpers shared by every writer."""
import contextlib
import hashlib
import json
import os
from pathlib import Path

CACHE_ENV = "QONNX_CACHE"


def cache_dir() -> Path:
    """The user cache root: $QONNX_CACHE, else the platform's user cache dir."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("qonnx"))


def sha256_file(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def hash_tree(folder) -> dict:
    """sha256 of every file below folder, keyed by relative path (manifest.json excluded)."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def write_json(path, data):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # two writers never share a temp file
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock on the file `path` (created) for the block: a second process that
    builds the same cached thing waits here, then finds it built, instead of building it twice.
    Advisory (fcntl); where fcntl is missing (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
