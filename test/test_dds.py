"""The package's Fast DDS profile (matte_ros.ros.dds, matte_ros/ros/fastdds.xml)."""
import xml.etree.ElementTree as ET

from matte_ros.ros.dds import FASTDDS_PROFILE, PROFILE_VARS, fastdds_profile_env

NS = {"p": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}


def test_profile_applies_unless_the_user_named_one():
    assert fastdds_profile_env({}) == {var: FASTDDS_PROFILE for var in PROFILE_VARS}
    assert fastdds_profile_env({"FASTRTPS_DEFAULT_PROFILES_FILE": ""}) == {var: FASTDDS_PROFILE for var in PROFILE_VARS}
    for var in PROFILE_VARS:
        assert fastdds_profile_env({var: "/etc/mine.xml"}) == {}


def _seconds(elem) -> float:
    return float(elem.findtext("p:sec", "0", NS)) + float(elem.findtext("p:nanosec", "0", NS)) * 1e-9


def test_profile_holds_full_hd_frames_in_shared_memory_and_announces_often():
    root = ET.parse(FASTDDS_PROFILE).getroot()
    transports = {t.findtext("p:transport_id", namespaces=NS): t
                  for t in root.iterfind(".//p:transport_descriptor", NS)}
    participant = root.find("p:participant", NS)
    assert participant.get("is_default_profile") == "true"
    rtps = participant.find("p:rtps", NS)
    used = [t.text for t in rtps.iterfind("p:userTransports/p:transport_id", NS)]
    assert sorted(used) == sorted(transports) and rtps.findtext("p:useBuiltinTransports", namespaces=NS) == "false"
    kinds = {transports[t].findtext("p:type", namespaces=NS): transports[t] for t in used}
    assert set(kinds) == {"SHM", "UDPv4"}                      # same host and other hosts
    assert int(kinds["SHM"].findtext("p:segment_size", namespaces=NS)) >= 5 * 1920 * 1080 * 3
    disc = rtps.find("p:builtin/p:discovery_config", NS)
    initial = disc.find("p:initialAnnouncements", NS)
    assert int(initial.findtext("p:count", namespaces=NS)) * _seconds(initial.find("p:period", NS)) >= 2.0
    assert _seconds(disc.find("p:leaseAnnouncement", NS)) <= 1.0
