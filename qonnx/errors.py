"""User-facing errors: printed as one line by the CLI, exit status 1, no traceback."""
import difflib


class QonnxError(Exception):
    """A problem the user can fix: bad input, missing file, unsupported request."""


class ConfigError(QonnxError):
    """A configuration that cannot work, with a message saying how to fix it."""


class ModelError(QonnxError):
    """A model that cannot be found, loaded or exported."""


class DataError(QonnxError):
    """A dataset or calibration file that is missing, empty or malformed."""


class ParityError(QonnxError):
    """An exported or quantized model disagrees with its reference beyond tolerance."""


def did_you_mean(name, choices):
    """Return ' Did you mean X?' for the closest choice, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown(kind, name, choices):
    choices = sorted(choices)
    return ConfigError(
        f"Unknown {kind} '{name}'.{did_you_mean(name, choices)} Available: {', '.join(choices)}"
    )


class RowsFailed(QonnxError):
    """compare finished and wrote its results, but requested rows failed (CI: a distinct exit)."""
    exit_code = 3


class Interrupted(QonnxError):
    """Ctrl-C or SIGTERM during a run; finished rows are on disk."""
    exit_code = 130
