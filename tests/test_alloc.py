"""The allocator fix that keeps long streaming jobs flat: with glibc's mmap threshold pinned, a freed frame-sized
array goes back to the OS; with glibc's default (the threshold rises after the first big free) it stays."""

from __future__ import annotations

import subprocess
import sys

import pytest

from synclip.alloc import fix_mmap_threshold

CHILD = """
import sys
import numpy as np
from synclip.alloc import fix_mmap_threshold
if sys.argv[1] == "pin":
    assert fix_mmap_threshold()

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

frame = 720 * 1280 * 3  # one decoded 720p frame
a = np.ones(frame, np.uint8); del a  # the first big free: glibc raises its threshold past this size here
a = np.ones(frame, np.uint8); held = rss_kb(); del a
print(held - rss_kb())
"""


def released_kb(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not fix_mmap_threshold(), reason="needs glibc (Linux): elsewhere the fix is a no-op")
def test_pinned_threshold_gives_frames_back():
    frame_kb = 720 * 1280 * 3 // 1024
    assert released_kb("pin") > 0.9 * frame_kb  # unmapped on free
    assert released_kb("default") < 0.1 * frame_kb  # kept in the heap: the creep the fix stops
