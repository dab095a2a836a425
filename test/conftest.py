import os
import signal
import subprocess
import time

import pytest
import torch
from ros_domain import claim, ros_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "test", "data")
# The published reference outputs are too large to commit: $MATTE_REFERENCE_DIR, else ../shared/reference
# beside the clone (where CI keeps them). Tests that need them skip where they are absent.
REFERENCE_DIR = os.environ.get("MATTE_REFERENCE_DIR") or os.path.join(os.path.dirname(REPO), "shared", "reference")
PARITY_FILE = os.path.join(REFERENCE_DIR, "parity_mobilenetv2.pt")


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module", autouse=True)
def ros_domain():
    """The test module's own DDS domain id (test/ros_domain.py), with ROS_DOMAIN_ID and
    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST set in os.environ while the module runs, so rclpy.init in
    this process and every child process (node, launch, ros2) land in it, discovering on this host only."""
    domain = claim()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in ros_env(domain.id).items():
            mp.setenv(name, value)
        yield domain.id
    domain.release()


@pytest.fixture
def other_ros_domain():
    """A second domain id, held for one test (ROS processes that must not see the module's)."""
    domain = claim()
    yield domain.id
    domain.release()


@pytest.fixture
def one_thread():
    """One torch intra-op thread for the test: on two shared cores a larger pool is oversubscribed
    (tens of times slower under load)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def parity_reference():
    """The published model's outputs on fixed inputs (``PARITY_FILE``), loaded once per test run."""
    if not os.path.isfile(PARITY_FILE):
        pytest.skip(f"reference outputs not present: {PARITY_FILE} (set MATTE_REFERENCE_DIR)")
    return torch.load(PARITY_FILE, weights_only=True)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """A random MobileNetV2 refine model as .safetensors, cheap to run (coarse pass at 1/2, 512 pixels refined)."""
    from matte_ros.core.model import MattingRefine, save_safetensors
    path = str(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    save_safetensors(path, MattingRefine("mobilenetv2", backbone_scale=0.5, refine_sample_pixels=512))
    return path


def _has_mapped(pid: int, name: str) -> bool:
    """True once process ``pid`` has loaded a shared library whose path contains ``name``."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any(name in line for line in f)
    except OSError:
        return False


@pytest.fixture
def interrupt():
    """``interrupt(cmd, after=None, timeout=120)``: run ``cmd`` (in the repository, its own process
    group) and send SIGINT to the group, as a terminal's Ctrl-C does, once the program imports its
    libraries (numpy's extension is mapped: the interpreter's own start-up is over, whose Ctrl-C is
    Python's business) and, with ``after``, once a stdout line contains ``after``. Returns
    (exit code, stdout, stderr)."""
    procs = []

    def run(cmd, after=None, timeout=120.0):
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        procs.append(proc)
        end, head = time.monotonic() + timeout, []
        while proc.poll() is None and not _has_mapped(proc.pid, "_multiarray_umath"):
            assert time.monotonic() < end, "the program never imported numpy"
            time.sleep(0.005)
        while after is not None and proc.poll() is None:
            line = proc.stdout.readline()
            head.append(line)
            if after in line:
                break
        assert proc.poll() is None, f"{cmd} ended before the Ctrl-C: {''.join(head)}{proc.stderr.read()}"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, "".join(head) + out, err

    yield run
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny weight file (matte_offline's tests)."""
    from offline_inputs import save_model
    return save_model(str(tmp_path_factory.mktemp("model") / "tiny.safetensors"))


@pytest.fixture
def no_engine(monkeypatch):
    """Refusals come before the model loads: loading it fails the test."""
    def load(*a):
        raise AssertionError("the engine was loaded")
    monkeypatch.setattr("matte_ros.core.engine.MattingEngine.__init__", load)
