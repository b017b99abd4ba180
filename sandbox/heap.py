"""The worker's heap: freed memory is kept for the next tensor, and counted against the memory limit.

A merge allocates several tensor-sized temporaries per tensor (TIES: about
eight). With glibc's defaults every one above 32 MiB is a fresh mmap that is
returned on free, so each tensor faults its temporaries in again; on the
virtual machines this runs on a fault costs as much system time as the merge's
arithmetic (10 million faults and 22 s of system time for one TIES merge of a
0.5B model's MLP). The worker therefore allocates from the heap and keeps what
it frees (`RETAIN_ENV`, read by glibc at start-up).

Kept memory is mapped but free, so a per-call address-space limit measured
from the current size would let each call reuse it on top of its budget, and
memory could ratchet up call by call. `Limiter` subtracts `free_bytes()` from
the budget, and `trim` returns the kept memory when there is more of it than
a share of the budget.
"""

from __future__ import annotations

import ctypes
import ctypes.util

RETAIN_ENV = {
    "MALLOC_MMAP_MAX_": "0",  # no per-allocation mmaps: large blocks come from the heap and go back to it
    "MALLOC_TRIM_THRESHOLD_": str(1 << 62),  # never shrink the heap on free; `trim` does it when told
}


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()
_MALLINFO2 = getattr(_LIBC, "mallinfo2", None)  # glibc >= 2.33; elsewhere nothing is kept by these settings
if _MALLINFO2 is not None:
    _MALLINFO2.restype = _MallInfo2
_MALLOC_TRIM = getattr(_LIBC, "malloc_trim", None)


def free_bytes() -> int:
    """Bytes the heap holds free (mapped, reusable without growing the address space)."""
    if _MALLINFO2 is None:
        return 0
    info = _MALLINFO2()
    return int(info.fordblks + info.fsmblks)


def trim() -> None:
    """Give the heap's free memory back to the kernel."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
