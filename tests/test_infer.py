"""LipSyncInference plumbing with a tiny untrained expert: details, offsets, fix-offset output, batches, errors.

Quality (offsets recovered, speakers named) needs a trained expert: see test_quality.py (slow) and
benchmarks/sync_quality.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synclip import audio as A
from synclip import media
from synclip.checkpoint import save_checkpoint
from synclip.cli import main
from synclip.config import load_config
from synclip.errors import CheckpointError, MediaError, NoFaceError
from synclip.infer import LipSyncInference
from synclip.models.syncnet import SyncDims, SyncExpert


@pytest.fixture(scope="module")
def expert_path(tmp_path_factory):
    torch.manual_seed(0)
    dims = SyncDims(input_size=96, hidden_dim=16, num_layers=2, base_channels=4)
    path = tmp_path_factory.mktemp("ck") / "best_model.pth"
    save_checkpoint(path, kind="sync", config=load_config(None).to_dict(), dims=dims.to_dict(),
                    state_dict=SyncExpert(dims).state_dict())
    return path


@pytest.fixture(scope="module")
def model(expert_path):
    return LipSyncInference(expert_path, device="cpu")


def test_score_details(model, synth_dir):
    score, d = model.compute_sync_score(synth_dir / "videos" / "synth_0000.mp4")
    assert 0.0 <= score <= 1.0
    assert -15 <= d["offset_frames"] <= 15 and d["offset_ms"] == d["offset_frames"] * 40
    assert d["face_coverage"] > 0.95 and d["num_faces"] == 1
    assert len(d["window_scores"]) == d["num_frames"] - 4
    assert len(d["curve"]["offsets"]) == 31 and d["confidence"] >= 0
    assert d["min_distance"] == pytest.approx(min(d["curve"]["distances"]))


def test_fix_offset_writes_a_playable_video(model, synth_dir, tmp_path):
    out = tmp_path / "fixed.mp4"
    ok, msg = model.sync_video_audio(synth_dir / "videos" / "synth_0001.mp4", None, out, mode="shift")
    assert ok and "shifted the audio" in msg
    info = media.probe_video(out)
    src = media.probe_video(synth_dir / "videos" / "synth_0001.mp4")
    assert abs(info.num_frames - src.num_frames) <= 1
    assert abs(len(media.read_audio(out)) - A.frames_to_samples(src.num_frames)) <= 1024


def test_output_folder_must_exist(model, synth_dir, tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        model.sync_video_audio(synth_dir / "videos" / "synth_0001.mp4", None, tmp_path / "no" / "x.mp4")


def test_no_face_is_a_clear_error(model, tmp_path):
    rng = np.random.default_rng(0)
    video = tmp_path / "noise.mp4"
    media.write_video(video, [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(30)],
                      audio=0.1 * rng.standard_normal(30 * 640).astype(np.float32))
    with pytest.raises(NoFaceError, match="noise.mp4"):
        model.compute_sync_score(video)


def test_batch_goes_on_past_bad_files(model, synth_dir, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    pairs = [(synth_dir / "videos" / "synth_0002.mp4", None), (bad, None),
             (synth_dir / "videos" / "synth_0003.mp4", synth_dir / "audios" / "synth_0003.wav")]
    rows = model.batch_process(pairs, tmp_path / "out", mode="score")
    assert [r["ok"] for r in rows] == [True, False, True]
    assert "bad.mp4" in rows[1]["error"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(report) == 3 and (tmp_path / "out" / "report.csv").read_text().count("\n") == 4


def test_cli_score_json_and_wrong_checkpoint(expert_path, synth_dir, tmp_path, capsys):
    code = main(["score", str(synth_dir / "videos" / "synth_0004.mp4"), "--checkpoint", str(expert_path), "--json",
                 "--device", "cpu", "--set", "training.max_offset_frames=6"])
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["curve"]["offsets"] == list(range(-6, 7))  # the config's search range reaches scoring
    assert {"score", "offset_frames", "confidence", "min_distance", "face_coverage"} <= set(d)
    wrong = tmp_path / "wrong.pth"
    wrong.write_bytes(b"\x00" * 100)
    code = main(["score", str(synth_dir / "videos" / "synth_0004.mp4"), "--checkpoint", str(wrong)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and "wrong.pth" in err


def test_dub_needs_a_generator(model, synth_dir, tmp_path):
    with pytest.raises(CheckpointError, match="generator"):
        model.sync_video_audio(synth_dir / "videos" / "synth_0001.mp4", synth_dir / "audios" / "synth_0002.wav",
                               tmp_path / "x.mp4", mode="generate")


def test_the_speaker_is_the_face_whose_lips_go_with_the_sound_as_played():
    from synclip.infer import speaking_margin
    from synclip.sync import OffsetResult

    offsets = list(range(-10, 11))
    flat = [1.0 + 0.01 * (k % 3) for k in range(21)]
    chance = flat.copy()
    chance[18] = 0.7  # the silent face: a deep dip far from offset 0, by chance
    speaking = flat.copy()
    speaking[11] = 0.9  # the speaker: a shallow dip one frame from offset 0
    silent, speaker = (OffsetResult(8, 0.3, 0.7, offsets, chance), OffsetResult(1, 0.1, 0.9, offsets, speaking))
    assert silent.confidence > speaker.confidence  # the deepest dip anywhere would name the wrong face
    assert speaking_margin(speaker) > speaking_margin(silent)
    assert speaking_margin(speaker, window=0) < speaking_margin(speaker)  # the dip at +1 lies outside a 0 window
    assert speaking_margin(OffsetResult(0, 0.0, 1.0, offsets, [float("nan")] * 21)) == float("-inf")
