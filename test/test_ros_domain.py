"""The tests' DDS-domain allocator (test/ros_domain.py) and conftest's per-module ``ros_domain``."""
import os
import subprocess
import sys

import pytest
from ros_domain import FIRST, LAST, claim

HERE = os.path.dirname(os.path.abspath(__file__))


def test_the_module_runs_in_its_domain_with_local_discovery(ros_domain):
    assert os.environ["ROS_DOMAIN_ID"] == str(ros_domain) and FIRST <= ros_domain <= LAST
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_live_claims_never_share_an_id_even_from_the_same_start(ros_domain):
    held = [claim(pid=1) for _ in range(5)]
    try:
        ids = [d.id for d in held] + [ros_domain]
        assert len(set(ids)) == len(ids) and all(FIRST <= i <= LAST for i in ids)
    finally:
        for d in held:
            d.release()


def test_an_id_held_by_another_process_is_skipped_and_freed_when_it_exits(ros_domain):
    # the child claims and holds a domain until its stdin closes
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from ros_domain import claim; d = claim(pid=1); "
            "print(d.id, flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, HERE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        theirs = int(child.stdout.readline())
        mine = []
        with pytest.raises(RuntimeError, match="every DDS domain 1..101 is held"):
            while len(mine) <= LAST:                # every free id (other test runs may hold a few)
                mine.append(claim(pid=1))
        try:
            assert theirs not in {d.id for d in mine} | {ros_domain}
        finally:
            child.stdin.close()
            child.wait(30)
            again = claim(pid=1)          # the child's exit released its id: it is the only free one
            assert again.id == theirs
            again.release()
            for d in mine:
                d.release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
