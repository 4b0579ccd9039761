"""Shared fixtures: where the real test media live, and a small synthetic dataset made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def real_media(kind: str) -> Path:
    """../shared/data/real/<kind>; skips the test with the reason when the folder is absent."""
    folder = REAL / kind
    if not folder.is_dir():
        pytest.skip(f"real test media not found at {folder} (they live beside the project, not in it)")
    return folder


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """8 synthetic 2-second clips, one per appearance, in the seed's layout."""
    from synclip import synth

    out = tmp_path_factory.mktemp("synth")
    synth.make_dataset(out, 8, seconds=2.0, seed=11)
    return out


@pytest.fixture(scope="session")
def detector():
    from synclip.face import FaceDetector

    with FaceDetector() as d:
        yield d
