"""Task metrics, one module per task kind; each `measure(runner, tok, job)` returns a dict."""
from importlib import import_module

TASKS = {"classification": "classification", "lm": "lm"}


def kind(task: str) -> str:
    return "lm" if task.startswith("text-generation") else "classification"


def measure(kind_name, runner, tok, job):
    return import_module(f".{TASKS[kind_name]}", __name__).measure(runner, tok, job)
