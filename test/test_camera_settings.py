"""The fake camera's parameters declared once (matte_ros.ros.camera_settings): the running camera's
descriptors, the docs table and the demo's checks are derived from the declaration."""
import dataclasses
import os

import pytest

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from node_harness import context_fixture  # noqa: E402

from matte_ros.ros.camera_settings import (  # noqa: E402
    CAMERA_PARAMS,
    CAMERA_SPECS,
    CameraSettings,
    camera_markdown,
    camera_settings_from,
)
from matte_ros.ros.declared import descriptor  # noqa: E402
from matte_ros.tools import demo  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
context = context_fixture()


def test_docs_hold_the_generated_camera_table():
    with open(os.path.join(REPO, "docs", "node.md")) as f:
        text = f.read()
    begin, end = "<!-- camera_params:begin -->\n", "<!-- camera_params:end -->"
    table = text[text.index(begin) + len(begin):text.index(end)]
    assert table == camera_markdown(), ("regenerate: python -c 'from matte_ros.ros.camera_settings import "
                                        "camera_markdown as m; print(m(), end=\"\")' (into docs/node.md)")
    assert [r.split(" | ")[0] for r in table.splitlines()[2:]] == [f"| `{p.name}`" for p in CAMERA_PARAMS]


def test_specs_are_the_dataclass_fields_and_the_defaults_are_valid():
    assert [p.name for p in CAMERA_PARAMS] == [f.name for f in dataclasses.fields(CameraSettings)]
    assert camera_settings_from({}) == CameraSettings()
    assert not any(p.live for p in CAMERA_PARAMS)                  # nothing is read after start-up


def test_values_are_checked_against_the_declaration():
    s = camera_settings_from({"width": 64, "rate": 30.0, "compressed": "png"})
    assert (s.width, s.rate, s.compressed, s.height) == (64, 30.0, "png", 240)
    with pytest.raises(ValueError) as e:
        camera_settings_from({"compressed": "gif", "disturbance": "earthquake", "fps": 3})
    assert str(e.value) == ("invalid parameters: compressed must be one of '', 'png', 'jpeg', got 'gif'; "
                            "disturbance must be one of 'none', 'exposure_step', 'exposure_drift', 'light_change', "
                            "'shake', 'pan', 'white_balance', got 'earthquake'; unknown parameter 'fps'")


def test_the_running_camera_declares_exactly_the_declared_parameters(context):
    from matte_ros.ros.fake_camera import FakeCamera
    cam = FakeCamera(context=context)
    try:
        declared = {name for name in CAMERA_SPECS if cam.has_parameter(name)}
        assert declared == set(CAMERA_SPECS)
        for got, spec in zip(cam.describe_parameters(list(CAMERA_SPECS)), CAMERA_PARAMS):
            want = descriptor(spec)
            assert (got.description, got.read_only, list(got.integer_range), list(got.floating_point_range)) == \
                (want.description, True, list(want.integer_range), list(want.floating_point_range)), spec.name
        assert cam.settings == CameraSettings()
    finally:
        cam.destroy_node()


def test_the_demo_checks_its_camera_options_against_the_declared_ranges(capsys):
    assert demo.camera_ranges() == {n: CAMERA_SPECS[n].range for n in ("width", "height", "rate", "empty_seconds")}
    hi = CAMERA_SPECS["height"].range[1]
    demo.parse_args(["--height", str(hi)])
    with pytest.raises(SystemExit) as e:
        demo.parse_args(["--height", str(hi + 1)])
    assert e.value.code == 2 and f"--height must be in 32..{hi}, got {hi + 1}" in capsys.readouterr().err
