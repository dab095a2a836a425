"""The node's parameters declared once (matte_ros.ros.params): pure checks, no running node."""
import ast
import dataclasses
import os

import pytest
import yaml

pytest.importorskip("rcl_interfaces")
pytestmark = pytest.mark.ros

from matte_ros.core.plate.upkeep import UpkeepSettings  # noqa: E402
from matte_ros.ros.params import (  # noqa: E402
    LIVE,
    PARAMS,
    SPECS,
    UPKEEP_PARAMS,
    NodeSettings,
    check_changes,
    check_value,
    cpu_threads_for,
    descriptor,
    engine_config,  # noqa: E402
    params_markdown,
    params_yaml,
    settings_from,
)
from matte_ros.ros.params import main as params_main  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_config_yaml_is_the_generated_text():
    with open(os.path.join(REPO, "config", "matte.yaml")) as f:
        assert f.read() == params_yaml(), "regenerate: python -m matte_ros.ros.params --yaml > config/matte.yaml"


def test_docs_hold_the_generated_parameter_table():
    with open(os.path.join(REPO, "docs", "node.md")) as f:
        text = f.read()
    begin, end = "<!-- params:begin -->\n", "<!-- params:end -->"
    assert begin in text and end in text
    table = text[text.index(begin) + len(begin):text.index(end)].strip("\n") + "\n"
    assert table == params_markdown(), "regenerate: python -m matte_ros.ros.params --markdown (into docs/node.md)"


def test_main_prints_yaml_and_markdown_and_refuses_no_choice(capsys):
    assert params_main(["--yaml"]) == 0 and capsys.readouterr().out == params_yaml()
    assert params_main(["--markdown"]) == 0 and capsys.readouterr().out == params_markdown()
    with pytest.raises(SystemExit) as e:
        params_main([])
    assert e.value.code == 2 and "one of the arguments --yaml --markdown is required" in capsys.readouterr().err


def test_generated_yaml_holds_exactly_the_declared_defaults_with_their_types():
    values = yaml.safe_load(params_yaml())["/**"]["ros__parameters"]
    assert set(values) == set(SPECS)
    for spec in PARAMS:
        # same value and same YAML type (rclpy refuses 0 for a double parameter at declaration)
        assert values[spec.name] == spec.default, spec.name
        assert type(values[spec.name]) is type(spec.default), spec.name


def test_markdown_table_has_one_row_per_parameter():
    rows = params_markdown().splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == [f"| `{p.name}`" for p in PARAMS]
    assert "| `backbone_scale` | double | `0.0` | 0 (auto) or 1/64 ... 1/2 | live |" in params_markdown()
    assert "| `device` | string | `\"auto\"` | auto, cpu, cuda or cuda:N | start-up |" in params_markdown()


def test_specs_are_derived_from_the_dataclass_and_defaults_are_valid():
    assert [p.name for p in PARAMS] == [f.name for f in dataclasses.fields(NodeSettings)]
    assert settings_from({}) == NodeSettings()
    assert SPECS["composite_color"].default == [0, 255, 0]     # ROS declares arrays as lists
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
    assert "fixed at start-up" not in d.additional_constraints and not d.read_only
    d = descriptor(SPECS["precision"])
    assert d.additional_constraints == "one of: 'auto', 'fp32', 'fp16', 'bf16'; fixed at start-up"
    assert not d.integer_range and not d.floating_point_range
    # start-up-only parameters are read-only for ROS; live ones are not
    assert [p.name for p in PARAMS if not descriptor(p).read_only] == list(LIVE)


def test_cpu_threads_auto_leaves_one_core_and_an_explicit_count_wins():
    assert [cpu_threads_for(0, n) for n in (None, 1, 2, 16)] == [1, 1, 1, 15]
    assert cpu_threads_for(3, 2) == 3
    assert settings_from({}).cpu_threads == 0
    assert check_value("cpu_threads", -1) == "cpu_threads must be in [0, 1024], got -1"


def _settings_read_after_start() -> set:
    """Settings fields the node reads outside its start-up (``__init__``, ``_setup``): MatteNode
    (node.py) through ``self.settings.X``, each of its cameras (camera.py) through
    ``self.node.settings.X``, or a local bound to one of them."""
    def dotted(e) -> str:
        if isinstance(e, ast.Name):
            return e.id
        return dotted(e.value) + "." + e.attr if isinstance(e, ast.Attribute) else ""

    read = set()
    for module, cls, settings in (("node.py", "MatteNode", "self.settings"),
                                  ("camera.py", "Camera", "self.node.settings")):
        tree = ast.parse(open(os.path.join(REPO, "matte_ros", "ros", module)).read())
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
        for fn in body:
            if not isinstance(fn, ast.FunctionDef) or fn.name in ("__init__", "_setup"):
                continue
            aliases = {t.id for a in ast.walk(fn) if isinstance(a, ast.Assign) and dotted(a.value) == settings
                       for t in a.targets if isinstance(t, ast.Name)}
            read |= {e.attr for e in ast.walk(fn) if isinstance(e, ast.Attribute)
                     and (dotted(e.value) == settings or isinstance(e.value, ast.Name) and e.value.id in aliases)}
    return read


def test_every_live_parameter_takes_effect_after_start_up():
    # a live parameter the node read only at start-up would accept changes that change nothing: each one
    # is read per frame or per call, or handed to the engine on change (engine_config)
    handed_to_engine = set(engine_config(NodeSettings())) - {"upkeep"} | set(UPKEEP_PARAMS)
    unused = set(LIVE) - _settings_read_after_start() - handed_to_engine
    assert unused == set(), f"live but never read after start-up: {sorted(unused)}"


@pytest.mark.parametrize("name,value,expected", [
    ("refine_mode", "full", None),
    ("refine_mode", "fastest", "refine_mode must be one of 'full', 'sampling', 'thresholding', got 'fastest'"),
    # the refine settings: matte_ros.core.model.refine_settings.refine_problem's words, as the engine's
    ("refine_threshold", 1.5, "refine_threshold must be a number in [0, 1] (the error map's range), got 1.5"),
    ("refine_sample_pixels", 15, "refine_sample_pixels must be at least 16 (one 4x4 patch), got 15"),
    ("device", "cuda:1", None),
    ("device", "gpu", "unknown device 'gpu'; expected auto, cpu, cuda or cuda:N"),
    ("device", "cuda:", "unknown device 'cuda:'; expected auto, cpu, cuda or cuda:N"),
    # the backbone_scale range of rclpy's descriptor is [0, 0.5]; core.settings refuses what lies between 0 and 1/64
    ("backbone_scale", 0.0, None),
    ("backbone_scale", 1 / 64, None),
    ("backbone_scale", 1e-9, "backbone_scale must be a number in [1/64, 1/2] (the coarse pass runs at most at half "
                             "resolution and needs enough pixels to see the subject) or 0 (auto), got 1e-09"),
    ("backbone_scale", 0.6, "backbone_scale must be a number in [1/64, 1/2] (the coarse pass runs at most at half "
                            "resolution and needs enough pixels to see the subject) or 0 (auto), got 0.6"),
    ("plate_timeout", "abc", "plate_timeout must be a double, got 'abc'"),
    ("plate_frames", 2.5, "plate_frames must be an integer, got 2.5"),
    ("compressed", 1, "compressed must be a bool, got 1"),
    ("max_frame_pixels", 0, "max_frame_pixels must be in [1, 1073741824], got 0"),
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
    assert reason == "refine_threshold must be a number in [0, 1] (the error map's range), got -1.0"


def test_settings_from_rejects_every_bad_value_at_once():
    with pytest.raises(ValueError) as e:
        settings_from({"precision": "fp8", "alpha_encoding": "mono16", "max_rte": 1.0})
    assert "precision must be one of" in str(e.value) and "alpha_encoding must be one of" in str(e.value)
    assert "unknown parameter 'max_rte'" in str(e.value)


def test_runtime_change_to_a_tiny_backbone_scale_is_refused():
    # accepted by the old range check alone, then every frame failed with an output of 0 x 0 pixels
    assert check_changes({"backbone_scale": 0.0001}).startswith("backbone_scale must be a number in [1/64, 1/2]")
    assert check_changes({"backbone_scale": 0.125}) is None


def test_engine_config_maps_the_plate_parameters_onto_upkeep_settings():
    s = settings_from({"plate_exposure": "frame", "plate_motion": "translation", "plate_health": True,
                       "plate_refresh_frames": 30.0, "backbone_scale": 0.25})
    full = engine_config(s)
    assert full["backbone_scale"] == 0.25 and full["refine_mode"] == "sampling"
    up = full["upkeep"]
    assert (up.exposure, up.motion, up.health, up.refresh_frames) == ("frame", "translation", True, 30.0)
    assert up.max_motion_px == UpkeepSettings().max_motion_px          # the node's defaults are the engine's
    assert engine_config(s, ["max_rate"]) == {}
    assert set(engine_config(s, ["plate_motion"])) == {"upkeep"}
    assert set(engine_config(s, ["refine_mode", "alpha_encoding"])) == {"refine_mode"}


def test_every_string_choice_reads_back_as_the_same_string_from_yaml():
    """`ros2 param set` and `ros2 param load` read each value as YAML text: a choice YAML reads as a
    boolean or a number ('off', 'yes', '1') would be refused as the wrong type."""
    from matte_ros.ros.camera_settings import CAMERA_PARAMS

    choices = {(spec.name, c) for spec in list(PARAMS) + list(CAMERA_PARAMS) for c in spec.choices}
    assert ("plate_exposure", "none") in choices
    for name, choice in choices:
        if choice:
            assert yaml.safe_load(choice) == choice, (name, choice)
