"""The soak benchmark's verdict (matte_ros.tools.soak): memory growth after warm-up, rates, lost frames."""

import pytest

from matte_ros.tools import soak
from matte_ros.tools.launcher import camera_tool_parser
from matte_ros.tools.soak import verdict


def _sample(t, rss, published, refused=0, dropped=0):
    return {"t": t, "rss_mib": rss, "counts": {"published": published, "refused": refused, "dropped": dropped}}


def test_growth_is_measured_from_the_first_sample_after_warmup():
    samples = [_sample(0, 900.0, 0, refused=3), _sample(30, 1000.0, 150, refused=3),
               _sample(60, 1000.0, 300, refused=3),
               _sample(120, 1005.0, 600, refused=3, dropped=7), _sample(180, 1009.0, 900, refused=3, dropped=9)]
    v = verdict(samples)
    assert v["rss_warm_mib"] == 1000.0 and v["rss_end_mib"] == 1009.0 and v["rss_max_mib"] == 1009.0
    assert v["growth_after_warmup"] == pytest.approx(0.009)
    assert v["output_rate_hz"] == pytest.approx(600 / 120)
    assert v["memory_flat"] and v["nothing_lost"] and v["failures"] == {}     # refusals before the first sample


def test_growth_over_one_percent_and_new_refusals_fail():
    samples = [_sample(0, 1000.0, 0), _sample(60, 1000.0, 300), _sample(120, 1011.0, 600, refused=2)]
    v = verdict(samples)
    assert not v["memory_flat"] and not v["nothing_lost"] and v["failures"] == {"refused": 2}


def test_a_run_shorter_than_the_warmup_compares_the_last_sample_with_itself():
    v = verdict([_sample(0, 1000.0, 0), _sample(30, 1002.0, 150)])
    assert v["growth_after_warmup"] == 0.0 and v["output_rate_hz"] == 0.0
    with pytest.raises(ValueError, match="no samples"):
        verdict([])


@pytest.mark.parametrize("argv,error", [(["--rate", "0"], "--rate must be positive"),
                                        (["--width", "8"], "--width must be 32..7680 and --height 32..4320"),
                                        (["--weights", "/no/such.safetensors"],
                                         "--weights /no/such.safetensors does not exist")])
def test_wrong_options_are_one_line(capsys, argv, error):
    with pytest.raises(SystemExit) as e:
        soak.main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err == f"python -m matte_ros.tools.soak: error: {error} (see --help)\n"


def test_the_camera_tools_share_their_options_and_log_to_out_by_name():
    args = camera_tool_parser("matte_ros.tools.soak", soak.__doc__, rate=12.0).parse_args([])
    assert (args.width, args.height, args.rate, args.log_dir) == (640, 480, 12.0, "out/soak")
