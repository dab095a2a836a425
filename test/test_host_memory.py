"""matte_ros.core.host_memory: freed frame-sized memory stays in the process (glibc)."""
import ctypes
import platform

import pytest
import torch

from matte_ros.core.host_memory import keep_freed_memory

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc settings")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo() -> _MallInfo2:
    libc = ctypes.CDLL("libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc without mallinfo2 (< 2.33)")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


def test_a_freed_frame_buffer_stays_in_the_heap_instead_of_being_unmapped():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True                  # idempotent
    size = 96 << 20                                     # one 3840x2160x3 float32 frame is 95 MiB
    before = _mallinfo()
    buf = torch.ones(size, dtype=torch.uint8)
    during = _mallinfo()
    assert during.hblkhd == before.hblkhd               # not an mmap'd block: from the heap
    del buf
    after = _mallinfo()
    assert after.fordblks >= size                       # freed, kept for the next frame
    assert after.arena >= size
