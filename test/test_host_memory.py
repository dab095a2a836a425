"""matte_ros.core.host_memory: freed frame-sized memory stays in the process (glibc), and only
where a program asks for it. Each check runs in a child process, so the malloc settings of the
test run itself are never changed."""
import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc settings")

# Allocates and frees one 96 MiB buffer (a 3840x2160x3 float32 frame is 95 MiB) and prints glibc's
# mallinfo2 fields around it: hblkhd counts mmap'd blocks, fordblks and arena the heap.
_PROBE = r"""
import ctypes, json, sys
import torch

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
if not hasattr(libc, "mallinfo2"):
    print(json.dumps(None))
    sys.exit(0)
libc.mallinfo2.restype = MallInfo2
result = {}
if sys.argv[1] == "keep":
    from matte_ros.core.host_memory import keep_freed_memory
    result["applied"] = [keep_freed_memory(), keep_freed_memory()]
else:
    from matte_ros.core.engine import MattingEngine
    from matte_ros.core.model import MattingRefine
    MattingEngine(model=MattingRefine("mobilenetv2"), device="cpu")
info = lambda: {k: getattr(libc.mallinfo2(), k) for k in ("hblkhd", "fordblks", "arena")}
result["before"] = info()
buf = torch.ones(96 << 20, dtype=torch.uint8)
result["during"] = info()
del buf
result["after"] = info()
print(json.dumps(result))
"""
SIZE = 96 << 20


def _probe(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result is None:
        pytest.skip("glibc without mallinfo2 (< 2.33)")
    return result


def test_a_freed_frame_buffer_stays_in_the_heap_instead_of_being_unmapped():
    r = _probe("keep")
    assert r["applied"] == [True, True]                              # applied, and idempotent
    assert r["during"]["hblkhd"] == r["before"]["hblkhd"]            # not an mmap'd block: from the heap
    assert r["after"]["fordblks"] >= SIZE                            # freed, kept for the next frame
    assert r["after"]["arena"] >= SIZE


def test_building_an_engine_leaves_malloc_as_it_was():
    r = _probe("engine")
    assert r["during"]["hblkhd"] - r["before"]["hblkhd"] >= SIZE    # glibc's default: large blocks are mmap'd
    assert r["after"]["hblkhd"] == r["before"]["hblkhd"]             # ... and unmapped on free
