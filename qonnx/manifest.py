"""manifest.json: what a folder holds and how it was made, so an artifact explains itself.

Every folder qonnx writes carries one; `qonnx_manifest` marks it as qonnx's own (only such a
folder is ever replaced), `files`/`sizes` let store.verify check it before reuse, `key` is the
content hash it is stored under.
"""
import json
import time
from pathlib import Path

from qonnx.cache import hash_tree, write_json
from qonnx.envinfo import versions

SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "vocab.txt", "merges.txt", "vocab.json",
              "tokenizer.model", "added_tokens.json", "sentencepiece.bpe.model", "spiece.model",
              "preprocessor_config.json")


def write(folder, **fields):
    folder = Path(folder)
    files = hash_tree(folder)
    data = {"qonnx_manifest": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **fields,
            "versions": versions(), "files": files,
            "sizes": {rel: (folder / rel).stat().st_size for rel in files}}
    write_json(folder / "manifest.json", data)
    return data


def read(folder) -> dict:
    p = Path(folder) / "manifest.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def copy_side_files(src, dst):
    """Config and tokenizer files, so a variant folder is deployable on its own."""
    import shutil

    for name in SIDE_FILES:
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, Path(dst) / name)
