"""The allocator fix that keeps long streaming jobs flat: under glibc's default a freed frame-sized array stays
in the process (its mmap threshold rose after the first big free); trim_heap gives it back."""

from __future__ import annotations

import subprocess
import sys

import pytest

from synclip.alloc import can_trim

CHILD = """
import numpy as np
from synclip.alloc import trim_heap

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

frame = 720 * 1280 * 3  # one decoded 720p frame
a = np.ones(frame, np.uint8); del a  # the first big free: glibc raises its threshold past this size here
a = np.ones(frame, np.uint8); small = np.ones(1000)
held = rss_kb(); del a
kept = rss_kb(); trim_heap()
print(held - kept, kept - rss_kb())
"""


@pytest.mark.skipif(not can_trim(), reason="needs glibc (Linux): elsewhere trim_heap is a no-op")
def test_trim_gives_a_freed_frame_back():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    freed_kb, trimmed_kb = (int(v) for v in out.stdout.split())
    frame_kb = 720 * 1280 * 3 // 1024
    assert freed_kb < 0.1 * frame_kb  # free() alone keeps it: the creep
    assert trimmed_kb > 0.9 * frame_kb  # trim_heap returns it
