"""Artifacts on disk: where they go, what they are keyed by, and that they are what they claim.

- Keys: a content hash over everything that shapes an artifact's bytes (the source files, the
  full build settings, calibration sample hashes, library versions), so a changed input never
  reuses an old folder (Olive keys its cache the same way).
- Writes are atomic (a `.NAME.partial-PID-*` folder renamed into place); partial folders of
  processes that no longer run are removed.
- qonnx never deletes what it did not write: an output folder that is not empty must be a qonnx
  artifact (manifest.json with `qonnx_manifest`), and is replaced only when asked.
- Cached artifacts are verified before use against their manifest: sizes always, and every
  file's sha256 on its first use in a process (a run), so even a same-size, same-mtime overwrite
  is caught; later uses in the same process rehash only a file whose size or mtime changed.
"""
import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from qonnx.cache import hash_tree, sha256_file
from qonnx.errors import ConfigError, QonnxError

log = logging.getLogger(__name__)

ARTIFACTS_ENV = "QONNX_ARTIFACTS"
MARKER = "qonnx_manifest"


def root() -> Path:
    """The artifact root, absolute: $QONNX_ARTIFACTS, else ./artifacts of the working directory when
    called (a relative path would point elsewhere once a library changes directory: ONNX Runtime's
    quantizers run in a scratch directory)."""
    return Path(os.environ.get(ARTIFACTS_ENV) or "artifacts").expanduser().absolute()


def in_root(path) -> bool:
    """Whether path is the artifact root or inside it (a default output folder)."""
    p, r = Path(path).expanduser().resolve(), root().resolve()
    return p == r or r in p.parents


def unwritable(path, why: str, flag="-o") -> ConfigError:
    """The error for an output folder that cannot be written: under the artifact root it names
    $QONNX_ARTIFACTS (which chose the folder), else the command's output flag."""
    if in_root(path):
        where = (f"the artifact root ${ARTIFACTS_ENV}={os.environ[ARTIFACTS_ENV]}" if os.environ.get(ARTIFACTS_ENV)
                 else f"the default artifact root ./artifacts (${ARTIFACTS_ENV} is unset)")
        return ConfigError(f"Cannot write to {path} ({why}): it is in {where}. Point {ARTIFACTS_ENV} at a "
                           f"writable folder, or give {flag} FOLDER.")
    return ConfigError(f"Cannot write to {path} ({why}); choose another {flag} folder.")


def digest(data) -> str:
    """Short, stable hash of any JSON-able value."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def _tree_digest(folder: str, stamp) -> str:
    return digest(hash_tree(folder))


def tree_digest(folder) -> str:
    """Content hash of a folder (e.g. the source model), once per process per folder state."""
    folder = Path(folder).resolve()
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in sorted(folder.rglob("*")) if p.is_file())
    return _tree_digest(str(folder), stamp)


def slug(source) -> str:
    """The folder name of a model under the artifact root: demo name or the model's last part."""
    name = source.demo or Path(str(source.name).rstrip("/")).name
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "model"


def is_artifact(folder: Path) -> bool:
    manifest = Path(folder) / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    return MARKER in data or {"demo", "provenance", "files"} <= set(data)  # demos of qonnx 0.1


def check_output(target, overwrite=False, protect=()):
    """Refuse an output that would lose something qonnx did not write.

    protect: folders that must not be replaced or contain the output (e.g. the source)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"-o {target} is a file, not a folder; choose a folder for the output.")
    for p in protect:
        p = Path(p).resolve()
        t = target.resolve()
        if t == p or p in t.parents or t in p.parents:
            raise ConfigError(f"-o {target} overlaps the input folder {p}; choose another output folder.")
    if target.is_dir() and any(target.iterdir()):
        if not is_artifact(target):
            raise ConfigError(f"{target} is not empty and was not written by qonnx; refusing to replace it. "
                              "Choose another -o folder (new or empty).")
        if not overwrite:
            raise ConfigError(f"{target} already holds a qonnx artifact; pass --overwrite to replace it.")
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK) or not parent.is_dir():
        raise unwritable(target if in_root(target) else parent,
                         "permission denied" if parent.is_dir() else f"{parent} is a file")


def _clean_partials(target: Path):
    """Remove partial folders left by builds of `target` whose process is gone (kill -9)."""
    for p in target.parent.glob(f".{target.name}.partial-*"):
        pid = p.name.rsplit(".partial-", 1)[1].split("-")[0]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue
        log.info("removing %s, left by an interrupted build", p)
        shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_dir(target, overwrite=False, protect=()):
    """Yield a temporary folder beside `target`; on success it replaces `target` in one rename.

    On failure the temporary folder is removed and an earlier `target` is left untouched, so an
    interrupted run never leaves a folder that looks complete. Only a qonnx artifact is ever
    replaced, and only with overwrite=True (see check_output)."""
    target = Path(target)
    check_output(target, overwrite, protect)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise unwritable(target.parent, e.strerror) from None
    _clean_partials(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent)).resolve()
    tmp.chmod(0o755)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        if any(target.iterdir()) and not is_artifact(target):  # appeared while we built
            shutil.rmtree(tmp, ignore_errors=True)
            raise ConfigError(f"{target} was filled by something else during the build; not replaced.")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def scratch_cwd():
    """Run a block in a fresh temporary working directory, removed afterwards.

    ONNX Runtime's graph tools (symbolic shape inference, the fp16 converter, the quantizers) can
    leave files such as sym_shape_infer_temp.onnx or uuid-named .data files in the current
    directory; qonnx never writes outside its output folder and cache. Paths given to the block
    must be absolute."""
    before = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="qonnx-scratch-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(before)


def work_dir(folder, name="work"):
    """A temporary folder for a build's intermediate files inside `folder` (the build's own
    .partial folder, or beside its output): a build killed with -9 leaves them where the next build
    of the same target removes them, never in /tmp. Use as a context manager, like
    tempfile.TemporaryDirectory, which it is."""
    return tempfile.TemporaryDirectory(prefix=f".{name}-", dir=Path(folder))


# -- verification ----------------------------------------------------------------------------

_HASHED = set()  # (path, size, mtime_ns, sha256) of the files this process has hashed and found intact


def verify(folder) -> str:
    """'' when every file the manifest lists is present and intact, else what is wrong.

    Sizes are checked every time; a file's sha256 on its first check in this process, and again
    whenever its size or mtime has changed since."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return "manifest.json is missing or unreadable"
    files = manifest.get("files") or {}
    sizes = manifest.get("sizes") or {}
    if files and isinstance(next(iter(files.values())), dict):  # demo manifests of qonnx 0.1
        sizes = {k: v["size"] for k, v in files.items()}
        files = {k: v["sha256"] for k, v in files.items()}
    if not files:
        return "manifest.json lists no files"
    for rel, sha in files.items():
        p = folder / rel
        if not p.is_file():
            return f"{rel} is missing"
        st = p.stat()
        if rel in sizes and st.st_size != sizes[rel]:
            return f"{rel} has {st.st_size} bytes, the manifest says {sizes[rel]}"
        stamp = (str(p.resolve()), st.st_size, st.st_mtime_ns, sha)
        if stamp not in _HASHED:
            if sha256_file(p) != sha:
                return f"{rel} is damaged (sha256 differs from the manifest)"
            _HASHED.add(stamp)
    return ""


def reuse(folder) -> bool:
    """True when folder is an intact qonnx artifact to reuse; a damaged one is reported and
    left for the caller to rebuild (with overwrite, since qonnx wrote it)."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        return False
    problem = verify(folder)
    if problem:
        log.warning("cached artifact %s is damaged (%s); rebuilding it", folder, problem)
        return False
    return True


def ensure_intact(folder, what="artifact"):
    """Raise a clear error when an artifact given by the user is damaged."""
    problem = verify(folder) if (Path(folder) / "manifest.json").is_file() else ""
    if problem:
        raise QonnxError(f"The {what} in {folder} is damaged: {problem}. Rebuild it (qonnx export / "
                         "qonnx quantize with --overwrite).")
