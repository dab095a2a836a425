"""A SIGTERM or SIGINT while a capture_background call waits for frames: the caller always gets its
answer (success False, "the node is shutting down") before the node process exits with 0.

The node runs in its own process with a camera that publishes nothing, so the capture waits until
the signal ends it; the answer then races the node's destruction (the executor's shutdown has to
wait for the service callback to send it). Each signal is tried a few times to catch the race."""
import os
import signal
import subprocess
import sys
import threading

import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from node_harness import child_env, node_fixtures, tiny_model, wait_for  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from matte_ros.core.model import save_safetensors  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIES = 3
WAITING = "capturing a plate: averaging the next"      # the node's log line once the capture waits

context, model, scene, harness = node_fixtures((48, 64))


def test_stop_answers_a_waiting_capture_and_any_later_one(harness):
    future = harness.capture_cli.call_async(Trigger.Request())
    assert wait_for(lambda: harness.node.camera._capture is not None, 10)      # waiting: no frame comes
    harness.node.stop()
    assert wait_for(future.done, 10)
    assert (future.result().success, future.result().message) == (False, "the node is shutting down")
    res = harness.call(harness.capture_cli, timeout=10)                 # no capture starts after stop
    assert (res.success, res.message) == (False, "the node is shutting down")


@pytest.fixture
def client(context):
    node = rclpy.create_node("capture_shutdown_client", context=context)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    yield node
    ex.shutdown()
    spinner.join(5)
    node.destroy_node()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    save_safetensors(path, tiny_model())
    return path


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
@pytest.mark.parametrize("attempt", range(TRIES))
def test_a_waiting_capture_is_answered_when_the_node_is_stopped(sig, attempt, client, model_file, tmp_path):
    ns = f"/capture_stop_{sig.name.lower()}_{attempt}"
    log = tmp_path / "node.log"
    with open(log, "w") as out:
        p = subprocess.Popen([sys.executable, "-m", "matte_ros.ros.node", "--ros-args", "-r", f"__ns:={ns}",
                              "-p", f"model_path:={model_file}", "-p", "device:=cpu", "-p", "backbone_scale:=0.5",
                              "-p", "refine_sample_pixels:=512", "-p", "plate_timeout:=120.0"],
                             cwd=REPO, env=child_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        cli = client.create_client(Trigger, f"{ns}/matte_node/capture_background")
        assert wait_for(cli.service_is_ready, 60, 0.05), log.read_text()
        future = cli.call_async(Trigger.Request())
        # the node's service callback is waiting for frames that never come
        assert wait_for(lambda: WAITING in log.read_text(), 60, 0.01), log.read_text()
        p.send_signal(sig)
        rc = p.wait(30)
        assert rc == 0, log.read_text()
        assert wait_for(future.done, 10, 0.01), "the caller got no answer:\n" + log.read_text()
        res = future.result()
        assert not res.success and res.message == "the node is shutting down", res
        assert "Traceback" not in log.read_text()
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
