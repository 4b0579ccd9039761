"""Keep memory flat in long streaming jobs (dub, score, prepare) under glibc's malloc.

glibc serves a request above its mmap threshold with mmap and hands the pages back on free. The threshold
starts at 128 KiB, but each time a mapped block is freed it rises to that block's size (up to 32 MiB). After
the first decoded 720p frame (2.7 MB) is freed, every later frame therefore comes from the heap, whose freed
holes glibc keeps: the process grows with the number of frames. Measured dubbing a 720p video to 2 minutes of
audio (3000 frames): RSS 902 -> 968 MB by default. Two cures, same run:

- pin the threshold (mallopt): flat at 859-865 MB, but every frame is then mapped and unmapped: 47% slower;
- give the free heap pages back every batch (malloc_trim): flat at 871-879 MB at the default's speed.

So the streaming loops call :func:`trim_heap` every batch of frames (a live stream: once a second of frames,
since each call makes the next frames fault in fresh pages: 18 instead of 25 frames/s at 720p).
"""

from __future__ import annotations

import ctypes
import sys


def _libc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to trim
        return None


_MALLOC_TRIM = _libc_trim()


def trim_heap() -> bool:
    """Return the heap's free pages to the OS (glibc); a no-op elsewhere. True when memory was released."""
    return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False


def can_trim() -> bool:
    return _MALLOC_TRIM is not None
