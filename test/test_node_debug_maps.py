"""The node's opt-in debug topics: with publish_debug_maps the coarse error map and the refinement
map of each frame come out on matte/error and matte/refinement with the frame's header, equal to
the engine's maps of the same frame; by default the topics do not exist."""
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from node_harness import node_fixtures, wait_for  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from matte_ros.ros import names  # noqa: E402
from matte_ros.ros.imaging import msg_to_alpha, rgb_to_msg  # noqa: E402

H, W = 48, 64

context, model, scene, harness = node_fixtures((H, W))


def test_no_debug_topics_by_default(harness):
    for topic in (names.ERROR_MAP, names.REFINEMENT_MAP):
        assert harness.node.count_publishers(names.resolve(topic)) == 0


@pytest.mark.parametrize("harness", [{"params": {"publish_debug_maps": True}}], indirect=True)
def test_debug_maps_are_the_engines_for_the_frame(harness, scene):
    got = {names.ERROR_MAP: [], names.REFINEMENT_MAP: []}
    for topic, received in got.items():
        harness.client.create_subscription(Image, names.resolve(topic), received.append, 10)
    assert wait_for(lambda: all(harness.node.count_subscribers(names.resolve(t)) for t in got), 5)
    assert harness.capture(scene.background()).success
    src, _ = scene.frame(10)
    header = harness.header("cam")
    msg = rgb_to_msg(src, header, "rgb8")

    def for_frame(topic):
        return next((m for m in got[topic] if m.header.stamp == header.stamp), None)

    assert wait_for(lambda: all(for_frame(t) for t in got), 10, tick=lambda: harness.pub.publish(msg))
    want = harness.engine.process(src, maps=True)
    err, ref = (for_frame(t) for t in (names.ERROR_MAP, names.REFINEMENT_MAP))
    assert (err.width, err.height, err.encoding, err.header.frame_id) == (W, H, "mono8", "cam")
    np.testing.assert_allclose(msg_to_alpha(err), want.error, atol=0.5 / 255 + 1e-6)
    refined = msg_to_alpha(ref)
    np.testing.assert_array_equal(refined, want.refinement)
    assert set(np.unique(refined)) <= {0.0, 1.0}
