"""Running a comparison: compare(config) (compare.py), its run folder (rundir.py), the executors
that measure rows (executors.py, ray.py), the worker process (worker.py) and the typo pass of
--robustness-rate (typos.py). Import the function from its module: qonnx.run.compare.compare."""
