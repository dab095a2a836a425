"""glibc malloc settings for a process that allocates frame-sized tensors every frame.

A 4K frame's float tensors are 100-133 MB each. glibc serves allocations that large with fresh
``mmap`` pages and unmaps them on free, so every frame pays the kernel for faulting in and zeroing
them again: on the 2-core machine, upsampling the coarse alpha and foreground to 3840x2160 took
100 ms this way and 46 ms with the memory kept (``python -m matte_ros.tools.bench`` measures the rest).
``keep_freed_memory`` makes freed memory stay in the process for reuse: one arena (the heap) for
every thread, no ``mmap`` for large blocks, and the heap's top trimmed only beyond 2 GiB. The cost:
the process keeps its peak heap size, and threads share one arena's lock.
"""
import ctypes

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8      # glibc <malloc.h>
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2 ** 31 - 1))


def keep_freed_memory() -> bool:
    """Apply the settings above to this process (idempotent); False where the C library is not glibc.
    Threads started earlier keep their own arenas, so call it before starting worker threads."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in _SETTINGS)
