"""The node's parameter table (matte_ros.ros.params): pure checks, no running node."""
import os

import pytest
import yaml

pytest.importorskip("rcl_interfaces")
pytestmark = pytest.mark.ros

from matte_ros.ros.params import (LIVE, PARAMS, SPECS, NodeSettings, check_changes, check_value,  # noqa: E402
                                   cpu_threads_for, descriptor, settings_from)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_config_yaml_holds_exactly_the_declared_defaults_with_their_types():
    with open(os.path.join(REPO, "config", "matte.yaml")) as f:
        doc = yaml.safe_load(f)
    values = doc["/**"]["ros__parameters"]
    assert set(values) == set(SPECS)
    for spec in PARAMS:
        # same value and same YAML type (rclpy refuses 0 for a double parameter at declaration)
        assert values[spec.name] == spec.default, spec.name
        assert type(values[spec.name]) is type(spec.default), spec.name


def test_table_matches_settings_fields_and_defaults_are_valid():
    assert [p.name for p in PARAMS] == list(NodeSettings.__dataclass_fields__)
    s = settings_from({})
    assert s.refine_mode == "sampling" and s.refine_sample_pixels == 80_000 and s.composite_color == (0, 255, 0)
    assert s.backbone_scale == 0.0 and isinstance(s.plate_timeout, float) and isinstance(s.plate_frames, int)
    assert all(check_value(p.name, p.default) is None for p in PARAMS)


def test_descriptors_carry_description_ranges_and_constraints():
    d = descriptor(SPECS["refine_sample_pixels"])
    assert d.description.startswith("Pixels refined per frame")
    assert (d.integer_range[0].from_value, d.integer_range[0].to_value) == (16, 100_000_000)
    assert not d.floating_point_range
    d = descriptor(SPECS["backbone_scale"])
    assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0.0, 0.5)
    assert "fixed at start-up" not in d.additional_constraints
    d = descriptor(SPECS["precision"])
    assert d.additional_constraints == "one of: 'fp32', 'fp16', 'bf16'; fixed at start-up"
    assert not d.integer_range and not d.floating_point_range


def test_cpu_threads_auto_leaves_one_core_and_an_explicit_count_wins():
    assert [cpu_threads_for(0, n) for n in (None, 1, 2, 16)] == [1, 1, 1, 15]
    assert cpu_threads_for(3, 2) == 3
    assert settings_from({}).cpu_threads == 0
    assert check_value("cpu_threads", -1) == "cpu_threads must be in [0, 1024], got -1"


def test_live_set_is_what_the_node_reads_per_frame_or_per_call():
    # engine settings, output encodings (read per frame), capture settings (read per call), rate
    assert set(LIVE) == {"backbone_scale", "refine_mode", "refine_sample_pixels", "refine_threshold", "max_rate",
                         "alpha_encoding", "foreground_encoding", "plate_frames", "plate_timeout"}


@pytest.mark.parametrize("name,value,expected", [
    ("refine_mode", "full", None),
    ("refine_mode", "fastest", "refine_mode must be one of 'full', 'sampling', 'thresholding', got 'fastest'"),
    ("refine_threshold", 1.5, "refine_threshold must be in [0.0, 1.0], got 1.5"),
    ("refine_sample_pixels", 15, "refine_sample_pixels must be in [16, 100000000], got 15"),
    ("device", "cuda:1", None),
    ("device", "gpu", "device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("composite_color", [0, 0, 255], None),
    ("composite_color", [0, 256, 0], "composite_color must be three integers 0..255 [r, g, b], got [0, 256, 0]"),
    ("composite_color", [1, 2], "composite_color must be three integers 0..255 [r, g, b], got [1, 2]"),
    ("nonsense", 1, "unknown parameter 'nonsense'"),
])
def test_check_value(name, value, expected):
    assert check_value(name, value) == expected


def test_runtime_changes_live_accepted_fixed_rejected_with_reason():
    assert check_changes({"refine_mode": "thresholding", "refine_threshold": 0.3}) is None
    reason = check_changes({"device": "cpu"})
    assert reason.startswith("device is fixed at start-up (restart the node with the new value)")
    assert "live parameters: backbone_scale, refine_mode" in reason
    # a batch with one bad value names it (and is refused as a whole)
    reason = check_changes({"refine_mode": "full", "refine_threshold": -1.0})
    assert reason == "refine_threshold must be in [0.0, 1.0], got -1.0"


def test_settings_from_rejects_every_bad_value_at_once():
    with pytest.raises(ValueError) as e:
        settings_from({"precision": "fp8", "alpha_encoding": "mono16"})
    assert "precision must be one of" in str(e.value) and "alpha_encoding must be one of" in str(e.value)
