"""--fix-shapes batch=1,sequence=128: the model with its symbolic dimensions made fixed (ONNX
Runtime's make_dim_param_fixed, as python -m onnxruntime.tools.make_dynamic_shape_fixed does),
an artifact of its own: content-keyed, written atomically with a manifest, reused when present.

It goes beside its source when that is a qonnx artifact in the store (NAME-fixed-KEY), else into
the qonnx cache ($QONNX_CACHE/edge/fixed/NAME-KEY), or to -o; never into the source folder."""
import logging
import shutil
from pathlib import Path

from qonnx import manifest
from qonnx.cache import cache_dir
from qonnx.errors import ConfigError, did_you_mean
from qonnx.store import atomic_dir, digest, in_root, is_artifact, reuse, scratch_cwd, tree_digest

log = logging.getLogger(__name__)


def parse(text) -> dict:
    """'batch=1,sequence=128' -> {'batch': 1, 'sequence': 128}."""
    out = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        name, _, value = part.partition("=")
        if not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise ConfigError(f"--fix-shapes wants NAME=SIZE pairs with sizes >= 1, e.g. batch=1,sequence=128; "
                              f"'{part}' is not one.")
        out[name.strip()] = int(value)
    if not out:
        raise ConfigError("--fix-shapes is empty; give NAME=SIZE pairs, e.g. batch=1,sequence=128.")
    return out


def resolve(art, wanted: dict) -> dict:
    """{graph dim_param: size}: a name is a dim_param of the inputs, or the start of exactly one
    (batch -> batch_size)."""
    params = art.dim_params
    if not params:
        raise ConfigError(f"{art.path} has no symbolic input dimensions; its shapes are fixed already, drop "
                          "--fix-shapes.")
    out = {}
    for name, size in wanted.items():
        hits = [name] if name in params else [p for p in params if p.startswith(name)]
        if len(hits) != 1:
            why = "matches several" if hits else "is none"
            raise ConfigError(f"--fix-shapes {name}: {why} of the model's symbolic dimensions "
                              f"({', '.join(params)}).{did_you_mean(name, params)}")
        out[hits[0]] = size
    return out


def fix(art, wanted: dict, output=None) -> tuple:
    """(folder of the fixed-shape artifact, {dim_param: size}, reused)."""
    import onnx
    import onnxruntime as ort

    fixed = resolve(art, wanted)
    key = digest({"source": tree_digest(art.folder) if art.path.name == "model.onnx" else str(art.path),
                  "model": art.path.name, "shapes": fixed, "onnx": onnx.__version__, "onnxruntime": ort.__version__})
    if output:
        out = Path(output)
    elif in_root(art.folder) and is_artifact(art.folder):
        out = art.folder.with_name(f"{art.folder.name}-fixed-{key}")
    else:
        out = cache_dir() / "edge" / "fixed" / f"{art.name}-{key}"
    if reuse(out) and manifest.read(out).get("key") == key:
        return out, fixed, True
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    model = onnx.load(str(art.path), load_external_data=False)
    for name, size in fixed.items():
        make_dim_param_fixed(model.graph, name, size)
    with scratch_cwd():
        try:
            fix_output_shapes(model)
        except Exception as e:  # ops ONNX's checker does not know: the outputs keep their symbolic dims
            log.info("output shapes left symbolic: %s", str(e).splitlines()[0][:200])
    left = {i.name: [d.dim_param for d in i.type.tensor_type.shape.dim if d.dim_param] for i in model.graph.input}
    left = {k: v for k, v in left.items() if v}
    with atomic_dir(out, overwrite=bool(output) or out.exists(), protect=[art.folder]) as tmp:
        onnx.save_model(model, str(Path(tmp) / "model.onnx"))
        for name in art.external_files:  # the weights are unchanged: the same files beside it
            shutil.copy2(art.folder / name, Path(tmp) / name)
        manifest.copy_side_files(art.folder, tmp)
        manifest.write(tmp, method="fix-shapes", source=str(art.path), key=key, shapes=fixed,
                       still_dynamic=left, source_manifest=(manifest.read(art.folder) or {}).get("key"))
    return out, fixed, False
