"""qonnx env: the machine as the library records it, and the lines the CLI prints from it."""
from qonnx import envinfo


def info(**extra):
    return {"cpu": {"model": "AMD EPYC", "arch": "x86_64", "cores": 2, "flags": ["AVX2"]}, "memory_gb": 23.4,
            "gpu": None, "onnxruntime_providers": ["CPUExecutionProvider"], "onnxruntime_install_problem": "",
            "versions": {"qonnx": "0.1.0", "onnxruntime": "1.32.0"}, **extra}


def test_describe_names_every_subject():
    lines = envinfo.describe(info())
    assert lines[0] == "CPU        AMD EPYC (x86_64, 2 cores)" and lines[1] == "CPU flags  AVX2"
    assert "GPU        none (torch sees no CUDA device)" in lines
    assert lines[-1] == "Versions   qonnx 0.1.0, onnxruntime 1.32.0"
    assert not any(ln.startswith(envinfo.WARNING) for ln in lines)


def test_describe_warns_and_shows_a_gpu():
    lines = envinfo.describe(info(gpu={"name": "H200", "memory_gb": 139}, onnxruntime_install_problem="both installed"))
    assert "GPU        H200 139 GiB" in lines and f"{envinfo.WARNING}both installed" in lines


def test_collect_reads_this_machine():
    got = envinfo.collect()
    assert got["cpu"]["cores"] >= 1 and "onnxruntime" in got["versions"] and envinfo.describe(got)
