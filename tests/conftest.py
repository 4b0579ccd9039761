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


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> Path:
    """An untrained generator checkpoint carrying an untrained expert: real plumbing, tiny cost (studio tests)."""
    import torch

    from synclip.checkpoint import save_checkpoint
    from synclip.config import load_config
    from synclip.models.generator import Generator, GeneratorDims
    from synclip.models.syncnet import SyncDims, SyncExpert

    torch.manual_seed(0)
    sd = SyncDims(input_size=96, hidden_dim=16, num_layers=2, base_channels=4)
    gd = GeneratorDims(input_size=96, base_channels=4)
    path = tmp_path_factory.mktemp("gen") / "gen.pth"
    save_checkpoint(path, kind="generator", config=load_config(None).to_dict(), dims=gd.to_dict(),
                    state_dict=Generator(gd).state_dict(),
                    extra={"expert": {"dims": sd.to_dict(), "state_dict": SyncExpert(sd).state_dict()}})
    return path


@pytest.fixture(scope="session")
def clips(synth_dir, tmp_path_factory) -> dict:
    """Bytes of a 2-s synthetic video, a 2-s voice and a photo (the video's first frame) (studio tests)."""
    import cv2

    from synclip import media

    video = synth_dir / "videos" / "synth_0000.mp4"
    photo = tmp_path_factory.mktemp("photo") / "face.png"
    cv2.imwrite(str(photo), next(media.iter_frames(video))[:, :, ::-1])
    return {"video": video.read_bytes(), "audio": (synth_dir / "audios" / "synth_0001.wav").read_bytes(),
            "photo": photo.read_bytes()}
