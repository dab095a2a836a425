"""The node's frame mailbox and counters (matte_ros.ros.stats), without a running node."""
import math
import threading
import time

import pytest

pytest.importorskip("diagnostic_msgs")
pytestmark = pytest.mark.ros

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from matte_ros.ros.stats import LatestFrame, NodeStats  # noqa: E402


def test_latest_frame_keeps_only_the_newest_and_reports_replacements():
    box = LatestFrame()
    assert box.put("a") is False
    assert box.put("b") is True          # "a" was never taken: dropped
    assert box.put("c") is True
    assert box.take(0) == "c"
    assert box.take(0.01) is None        # empty: times out
    assert box.put("d") is False


def test_latest_frame_take_wakes_on_put_and_on_close():
    box = LatestFrame()
    got = []
    t = threading.Thread(target=lambda: got.append(box.take(5.0)))
    t.start()
    time.sleep(0.05)
    box.put(7)
    t.join(2.0)
    assert got == [7]
    t = threading.Thread(target=lambda: got.append(box.take(5.0)))
    t.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    box.close()
    t.join(2.0)
    assert not t.is_alive() and time.monotonic() - t0 < 1.0
    assert got == [7, None] and box.closed
    assert box.take(5.0) is None         # closed: returns at once


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
    st = NodeStats.status(NodeStats().report(), "n", "cpu", {}, problem="no background plate")
    assert st.level == DiagnosticStatus.WARN and st.message == "no background plate"
    kv = {v.key: v.value for v in st.values}
    assert kv["latency_median_ms"] == kv["engine_median_ms"] == "n/a"


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
