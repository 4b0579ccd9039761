"""Slow: a small expert trained on synthetic clips must recover offsets and rank sync on unseen faces.

Run with `make test-slow` (about 4 minutes on 2 cores). The full figures come from benchmarks/sync_quality.py.
"""

from __future__ import annotations

import pytest

from synclip import media, synth
from synclip.config import load_config
from synclip.infer import LipSyncInference, shift_audio
from synclip.prepare import prepare
from synclip.train import run_stage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expert(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    synth.make_dataset(root / "raw", 40, seconds=4.0, seed=3)
    cfg = load_config(None).replace(**{
        "data.videos_dir": str(root / "raw" / "videos"), "data.audios_dir": str(root / "raw" / "audios"),
        "data.processed_dir": str(root / "processed"), "data.crop_size": 96,
        "paths.checkpoints_dir": str(root / "ck"), "paths.logs_dir": str(root / "logs"),
        "model.base_channels": 16, "model.hidden_dim": 128, "training.batch_size": 8,
        "training.num_epochs": 7, "training.samples_per_epoch": 800})
    prepare(cfg)
    result = run_stage(cfg, "sync")
    assert result.learned and result.left_chance_epoch is not None
    return LipSyncInference(result.best_path, device="cpu"), root


@pytest.mark.parametrize("offset", [-8, -3, 0, 5, 10])
def test_offset_recovered_on_unseen_faces(expert, offset):
    model, root = expert
    synth.make_clip(root / "held", f"o{offset}", seconds=3.0, offset_frames=offset,
                    appearance_index=77_000 + offset, sentence_seed=77_000 + offset)
    _, d = model.compute_sync_score(root / "held" / "videos" / f"o{offset}.mp4")
    assert abs(d["offset_frames"] - offset) <= 1
    if offset:
        fixed = root / "held" / f"fixed{offset}.mp4"
        model.sync_video_audio(root / "held" / "videos" / f"o{offset}.mp4", None, fixed, mode="shift")
        _, after = model.compute_sync_score(fixed)
        assert abs(after["offset_frames"]) <= 1


def test_in_sync_scores_above_shifted_and_other_audio(expert):
    model, root = expert
    synth.make_clip(root / "held", "r", seconds=3.0, appearance_index=78_000, sentence_seed=78_000)
    synth.make_clip(root / "held", "other", seconds=3.0, appearance_index=78_000, sentence_seed=78_001)
    video = root / "held" / "videos" / "r.mp4"
    shifted = root / "held" / "shifted.wav"
    media.write_wav(shifted, shift_audio(media.read_audio(root / "held" / "audios" / "r.wav"), 7))
    s_in, _ = model.compute_sync_score(video)
    s_shift, _ = model.compute_sync_score(video, shifted)
    s_other, _ = model.compute_sync_score(video, root / "held" / "audios" / "other.wav")
    assert s_in > s_shift and s_in > s_other


def test_speaker_named_in_two_face_clip(expert):
    model, root = expert
    import numpy as np

    truth = synth.make_clip(root / "held", "two", seconds=3.0, faces=2, seed=79_000, appearance_index=79_000,
                            sentence_seed=79_000)
    _, d = model.compute_sync_score(root / "held" / "videos" / "two.mp4")
    assert d["num_faces"] == 2
    cx = (d["speaker_box"][0] + d["speaker_box"][2]) / 2
    centres = [np.median([(b[0] + b[2]) / 2 for b in boxes]) for boxes in truth["face_boxes"]]
    assert int(np.argmin([abs(cx - c) for c in centres])) == truth["speaker"]
