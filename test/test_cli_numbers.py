"""``matte_ros.core.cli.number``: numeric flags checked at parse time, one line naming the flag, exit 2."""
import pytest

from matte_ros.core.cli import OneLineParser, number


def _parser():
    p = OneLineParser(prog="prog")
    p.add_argument("--rate", type=number(float, above=0))
    p.add_argument("--share", type=number(float, 0, 1))
    p.add_argument("--count", type=number(int, 1))
    p.add_argument("--size", type=number(int, 32, 4096), nargs=2)
    return p


@pytest.mark.parametrize("argv, message", [
    (["--rate", "nan"], "argument --rate: must be a finite number, got 'nan'"),
    (["--rate", "inf"], "argument --rate: must be a finite number, got 'inf'"),
    (["--rate", "-inf"], "argument --rate: expected one argument"),   # argparse: an option, not a value
    (["--rate", "0"], "argument --rate: must be greater than 0, got 0"),
    (["--share", "1.5"], "argument --share: must be in 0..1, got 1.5"),
    (["--share", "-0.1"], "argument --share: must be in 0..1, got -0.1"),
    (["--count", "0"], "argument --count: must be at least 1, got 0"),
    (["--count", "2.5"], "argument --count: invalid int value: '2.5'"),
    (["--count", "x"], "argument --count: invalid int value: 'x'"),
    (["--size", "64", "8"], "argument --size: must be in 32..4096, got 8"),
])
def test_bad_numbers_are_one_line_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err == f"prog: error: {message} (see --help)\n"


def test_good_numbers_keep_their_type():
    a = _parser().parse_args(["--rate", "1e-3", "--share", "1", "--count", "3", "--size", "32", "4096"])
    assert (a.rate, a.share, a.count, a.size) == (1e-3, 1.0, 3, [32, 4096])
    assert isinstance(a.count, int) and isinstance(a.share, float)
