"""Reports of a compare run: results.json, results.csv, report.md, plots and report.html, from the
measured rows (derive fills in the ratios; columns is the one table spec)."""
import logging
from pathlib import Path

from qonnx import schema
from qonnx.cache import write_json
from qonnx.errors import ConfigError
from qonnx.report import html, tables
from qonnx.report.derive import assemble, method_notes
from qonnx.report.plots import plot_all

log = logging.getLogger(__name__)

__all__ = ["assemble", "method_notes", "write_files", "rerender", "side_by_side"]


def write_files(run_dir, results, plots=True) -> dict:
    """results.json, results.csv, report.md (and the plots and report.html); returns the document."""
    run_dir = Path(run_dir)
    doc = schema.dump(results)
    write_json(run_dir / "results.json", doc)
    tables.frame(doc).to_csv(run_dir / "results.csv", index=False)
    (run_dir / "report.md").write_text(tables.markdown(doc))
    if plots:  # the end of a run (or `qonnx report`): plots, then the page that embeds them
        try:
            plot_all(doc, run_dir)
        except Exception as e:  # a plot must never lose the numbers
            log.warning("plots not written: %s: %s", type(e).__name__, e)
        html.write(run_dir, doc)
    return doc


def rerender(run_dir) -> dict:
    """Rewrite the files of a run from its results.json (`qonnx report`)."""
    doc, changed = schema.read_checked(run_dir)
    for _, line in changed:  # a derived figure the file got wrong: the report shows the recomputed one
        log.warning(line)
    return write_files(run_dir, schema.load(doc), plots=True)


def side_by_side(run_dirs, output) -> Path:
    """OUTPUT/report.html with several runs side by side (`qonnx report A B -o OUT`)."""
    docs = [(Path(d).name or str(d), schema.read(d)) for d in run_dirs]
    names = [n for n, _ in docs]
    if len(set(names)) < len(names):  # two runs named alike: tell them apart by their full paths
        docs = [(str(Path(d).resolve()), doc) for d, (_, doc) in zip(run_dirs, docs)]
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out} is a file; give a folder for report.html.")
    page = out / "report.html"
    foreign = [p.name for p in out.iterdir() if p != page] if out.is_dir() else []
    if foreign or (page.exists() and html.GENERATOR not in page.read_text(errors="replace")[:400]):
        raise ConfigError(f"-o {out} holds files qonnx did not write ({', '.join(foreign[:3]) or page.name}); "
                          "give a new or empty folder.")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".report.html.tmp"
    tmp.write_text(html.render_many(docs))
    tmp.replace(page)
    return page
