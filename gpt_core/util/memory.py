"""Keep freed memory in the process, so one run reuses the pages the last one freed.

A trace keeps hundreds of MB of activations alive (0.9 GB at T = 1,024 for gpt2-small).
With glibc's defaults, freeing a trace hands that memory back to the kernel (large blocks
are unmapped, the heap top trimmed), and the next run faults every page in again: about
a quarter of a second per GB, 20-30 % of a T = 1,024 forward pass on a CPU. Fixing the
mmap threshold at its maximum (32 MB) and not trimming the heap keeps the pages for reuse.
The cost: the process's resident memory stays at its high-water mark.

The app calls this at start; library users may call it (it affects the whole process).
Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit systems
_NO_TRIM = 2**31 - 1  # mallopt takes an int


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse; True if it agreed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _NO_TRIM)
    )
