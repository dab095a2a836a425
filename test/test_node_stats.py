"""The node's counters (matte_ros.ros.stats), without a running node."""
import math

import pytest

pytest.importorskip("diagnostic_msgs")
pytestmark = pytest.mark.ros

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from matte_ros.ros.stats import IDLE, MATTING, NodeStats, work_state  # noqa: E402
from matte_ros.ros.throttle import ReasonThrottle, reason_key  # noqa: E402


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_stats_rates_are_per_report_interval_and_latency_is_the_median():
    clock = _Clock()
    stats = NodeStats(window=3, clock=clock)
    for _ in range(10):
        stats.add("received")
    stats.add("published", 4)
    stats.add("dropped", 6)
    for s in (0.5, 0.01, 0.02, 0.04):    # window 3: 0.5 falls out
        stats.latency(s)
        stats.engine(s / 2)
    clock.t = 102.0
    r = stats.report()
    assert r["input_rate"] == 5.0 and r["output_rate"] == 2.0
    assert r["received"] == 10 and r["dropped"] == 6 and r["published"] == 4 and r["malformed"] == 0
    assert r["latency_median"] == 0.02 and r["engine_median"] == 0.01
    stats.add("received", 2)
    clock.t = 103.0
    r = stats.report()
    assert r["input_rate"] == 2.0 and r["output_rate"] == 0.0 and r["received"] == 12


def test_stats_unknown_counter_and_empty_latency():
    stats = NodeStats()
    with pytest.raises(ValueError, match="unknown counter 'frames'"):
        stats.add("frames")
    assert math.isnan(stats.report()["latency_median"]) and math.isnan(stats.report()["engine_median"])


def test_status_message_has_every_figure():
    clock = _Clock()
    stats = NodeStats(clock=clock)
    stats.add("received", 3)
    stats.add("malformed")
    stats.latency(0.0123)
    stats.engine(0.0081)
    clock.t = 101.0
    st = NodeStats.status(stats.report(), "matte_node: matting", "cpu", {"device": "cpu", "precision": "fp32"})
    kv = {v.key: v.value for v in st.values}
    assert st.level == DiagnosticStatus.OK and st.message == "matting" and st.hardware_id == "cpu"
    assert kv["input_rate_hz"] == "3.00" and kv["output_rate_hz"] == "0.00" and kv["latency_median_ms"] == "12.3"
    assert kv["engine_median_ms"] == "8.1"
    assert kv["malformed"] == "1" and kv["device"] == "cpu" and kv["precision"] == "fp32"
    st = NodeStats.status(NodeStats().report(), "n", "cpu", {}, (DiagnosticStatus.WARN, "no background plate"))
    assert st.level == DiagnosticStatus.WARN and st.message == "no background plate"
    kv = {v.key: v.value for v in st.values}
    assert kv["latency_median_ms"] == kv["engine_median_ms"] == "n/a"


@pytest.mark.parametrize("problem,subscribed,rates,expected", [
    ("no background plate", True, (5.0, 5.0), (DiagnosticStatus.WARN, "no background plate")),
    (None, False, (5.0, 0.0), (DiagnosticStatus.OK, IDLE)),                # nobody listens: not "matting"
    (None, False, (0.0, 0.0), (DiagnosticStatus.OK, IDLE)),
    (None, True, (5.0, 4.0), (DiagnosticStatus.OK, MATTING)),
    (None, True, (0.0, 0.0), (DiagnosticStatus.WARN, "no frames on /cam/image since the last report: is the "
                                                     "camera publishing?")),
    (None, True, (5.0, 0.0), (DiagnosticStatus.WARN, "frames arrive on /cam/image but none was matted since the "
                                                     "last report (see the refused, malformed and errors counts)")),
])
def test_work_state_follows_what_the_node_does(problem, subscribed, rates, expected):
    report = {"input_rate": rates[0], "output_rate": rates[1]}
    assert work_state(report, subscribed, "/cam/image", problem) == expected


def test_reason_throttle_keeps_each_reason_apart():
    clock = _Clock()
    throttle = ReasonThrottle(5.0, clock)
    assert reason_key("rgb8 image 64x48: data has 10 bytes, 0.5 s") == "rgb# image #x#: data has # bytes, # s"
    a10, a20, b = "data has 10 bytes", "data has 20 bytes", "unsupported encoding 'rgb13'"
    assert [throttle.ready(m) for m in (a10, b, a20, b)] == [True, True, False, False]
    clock.t = 104.9
    assert not throttle.ready(a10)
    clock.t = 105.0                         # 5 s after each reason's first report
    assert throttle.ready(a20) and throttle.ready(b) and not throttle.ready(a10)


def test_in_flight_is_received_minus_every_outcome():
    stats = NodeStats()
    stats.add("received", 9)
    for outcome in NodeStats.OUTCOMES:          # dropped, malformed, refused, idle, published, errors
        stats.add(outcome)
    assert stats.in_flight() == 3 and stats.report()["in_flight"] == 3
    stats.add("published", 3)
    assert stats.in_flight() == 0
    assert set(NodeStats.COUNTERS) == {"received", *NodeStats.OUTCOMES}
    kv = {v.key: v.value for v in NodeStats.status(stats.report(), "n", "cpu", {}).values}
    assert kv["idle"] == "1" and kv["published"] == "4" and kv["in_flight"] == "0"
