"""Configs: the choice lists (choices), the parts (parts), one dataclass per operation
(commands), the worker's job (job) and config files (file). Foundations: imports nothing above."""
from qonnx.config.commands import CompareConfig, ExportConfig, QuantizeConfig, RobustnessConfig, SensitivityConfig
from qonnx.config.job import Job
from qonnx.config.parts import Budget, usable_cores

__all__ = ["CompareConfig", "ExportConfig", "QuantizeConfig", "RobustnessConfig", "SensitivityConfig", "Job",
           "Budget", "usable_cores"]
