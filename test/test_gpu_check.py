""".ci/gpu-check dry-run here, as on a GPU machine without network, minus the GPU: pip has no index
(PIP_NO_INDEX, an empty find-links, no config file), the wheel folder holds a package this Python
lacks and a fake numpy it already has, and CUDA is hidden. The missing package must be installed from
the folder (and the fake numpy left out, or every import would fail), the GPU steps must say "no CUDA",
the gpu tests must be collected, and at most 8 result files must land in $OUT within a minute."""
import importlib.util
import os
import subprocess
import sys
import time
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FILES = 8           # what comes back from the GPU machine
MAX_SECONDS = 60


def write_wheel(folder: str, name: str, version: str, init: str) -> str:
    """A pure-Python wheel of package ``name`` whose ``__init__.py`` is ``init``."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": init,
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for member, text in files.items():
            z.writestr(member, text)
    return path


def _wheel_list_module():
    spec = importlib.util.spec_from_file_location("gpu_wheel_list", os.path.join(REPO, ".ci", "gpu_wheel_list.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wheel_list_brings_what_the_gpu_machine_lacks_pinned_once():
    wl = _wheel_list_module()
    reqs = wl.read_requirements(os.path.join(REPO, "requirements.txt"))
    machine = wl.read_requirements(os.path.join(REPO, ".ci", "gpu-machine.txt"))
    lines = wl.wheel_list(reqs, machine, "3.12")
    names = [line.split("==")[0] for line in lines]
    assert len(names) == len(set(names)) and all("==" in line for line in lines), lines
    pins = {r.name: str(r.specifier) for r in reqs}
    for name in ("kornia", "onnxscript", "ros-jazzy-rclpy", "ros-jazzy-sensor-msgs"):    # as requirements.txt pins
        assert name + pins[name] in lines
    for name in ("kornia-rs", "ros-rclpy", "ros-rmw-fastrtps-cpp", "ros-wheels-bootstrapper"):   # their dependencies
        assert name in names
    # the machine holds these and what they depend on; the linter and the offline tools stay here
    for name in ("torch", "numpy", "pyyaml", "typing-extensions", "ml-dtypes", "ruff", "av", "pymatting", "numba",
                 "rosbags"):
        assert name not in names
    everything = [line.split("==")[0] for line in wl.wheel_list(reqs, machine, "3.12", wl.DEV_ONLY)]
    assert set(everything) - set(names) >= {"av", "pymatting", "numba", "llvmlite", "rosbags"}


@pytest.mark.slow
def test_gpu_check_dry_run_installs_from_the_wheel_folder_and_says_no_cuda(tmp_path):
    wheels, links, out = (tmp_path / d for d in ("wheels", "links", "out"))
    for d in (wheels, links):
        d.mkdir()
    write_wheel(str(wheels), "matte_probe", "1.0", "VALUE = 1\n")
    write_wheel(str(wheels), "numpy", "0.0.1", "raise ImportError('a package already there was installed')\n")
    env = dict(os.environ, OUT=str(out), GPU_PYTHON=sys.executable, GPU_WHEELS=str(wheels), CUDA_VISIBLE_DEVICES="",
               PIP_NO_INDEX="1", PIP_FIND_LINKS=str(links), PIP_CONFIG_FILE=os.devnull,
               PIP_INDEX_URL="http://127.0.0.1:9/simple")
    start = time.monotonic()
    proc = subprocess.run([os.path.join(REPO, ".ci", "gpu-check")], cwd=str(tmp_path), env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=3 * MAX_SECONDS)
    seconds = time.monotonic() - start
    log = proc.stdout
    assert proc.returncode == 1, log                      # torch-cuda fails: there is no CUDA here
    assert seconds < MAX_SECONDS, f"{seconds:.0f} s"
    files = sorted(os.listdir(out))
    assert files == ["bench-cuda.txt", "node-cuda.txt", "nvidia-smi.txt", "pytest-gpu.txt", "setup.txt",
                     "summary.txt", "torch-cuda.txt"] and len(files) <= MAX_FILES
    setup = (out / "setup.txt").read_text()
    assert "wheels in" in setup and "1 of 2 missing here" in setup, setup
    assert "installed matte_probe 1.0 (" in setup and "have numpy" in setup, setup
    assert "MISSING" not in setup and "CUDA: no" in setup, setup
    summary = (out / "summary.txt").read_text().splitlines()
    verdicts = dict(line.split(None, 1) for line in summary[1:])
    assert verdicts["setup"].startswith("passed"), summary
    assert verdicts["torch-cuda"].startswith("FAILED"), summary
    assert verdicts["pytest-gpu"].startswith("passed") and "no CUDA: collected only" in verdicts["pytest-gpu"]
    for name in ("bench-cuda", "node-cuda"):
        assert verdicts[name] == "skipped: no CUDA: torch sees no CUDA device", summary
        assert "no CUDA" in (out / f"{name}.txt").read_text()
    assert "no CUDA: torch sees no CUDA device" in (out / "torch-cuda.txt").read_text()
    assert "test_gpu.py::test_engine_on_cuda_matches_cpu_fp32[sampling-fp16]" in (out / "pytest-gpu.txt").read_text()
