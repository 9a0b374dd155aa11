"""Read the VADER ground-truth sentences (Hutto & Gilbert, ICWSM 2014) out of its PyPI sdist."""
import io
import tarfile

from qonnx.demo.fetch import Pinned

VADER = Pinned("vaderSentiment", "3.3.2",
               "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9", sdist=True)
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"


def read_ground_truth(sdist_path, name):
    """Rows (id, rating, sentence) of hutto_ICWSM_2014/{name}_GroundTruth.txt."""
    with tarfile.open(sdist_path) as outer:
        inner_bytes = outer.extractfile(INNER).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        raw = inner.extractfile(f"hutto_ICWSM_2014/{name}_GroundTruth.txt").read()
    rows = []
    for line in raw.decode("utf-8").splitlines():
        parts = line.strip("\r\n").split("\t")
        if len(parts) == 3:
            rows.append((parts[0], float(parts[1]), parts[2].strip()))
    return rows
