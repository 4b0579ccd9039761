"""`synclip prepare`: synthetic clips in, crops + features + index out; bad files rejected, batch goes on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from synclip import audio as A
from synclip import media
from synclip.cli import main
from synclip.config import load_config
from synclip.prepare import prepare
from synclip.store import decode_crop, load_clip


@pytest.fixture(scope="module")
def workspace(synth_dir, tmp_path_factory):
    """Two good synthetic clips plus one of each kind of bad input."""
    root = tmp_path_factory.mktemp("prep")
    videos, audios = root / "videos", root / "audios"
    videos.mkdir()
    audios.mkdir()
    for name in ("synth_0000", "synth_0001"):
        shutil.copy(synth_dir / "videos" / f"{name}.mp4", videos)
        shutil.copy(synth_dir / "audios" / f"{name}.wav", audios)
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "text.mp4").write_text("this is not a video\n")
    # A video with no audio stream and no audio file.
    frames = [np.full((64, 64, 3), 128, np.uint8)] * 50
    media.write_video(videos / "silent_video.mp4", frames)
    # A good video whose paired audio file is corrupt.
    shutil.copy(synth_dir / "videos" / "synth_0002.mp4", videos / "badmp3.mp4")
    (audios / "badmp3.mp3").write_bytes(np.random.default_rng(0).integers(0, 255, 3000, dtype=np.uint8).tobytes())
    # A clip with sound but no face.
    rng = np.random.default_rng(1)
    noise = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(50)]
    media.write_video(videos / "noface.mp4", noise, audio=0.1 * rng.standard_normal(32000).astype(np.float32))
    cfg = load_config(None, [f"data.videos_dir={videos}", f"data.audios_dir={audios}",
                             f"data.processed_dir={root / 'processed'}", "data.crop_size=128"])
    return root, cfg


def test_prepare_processes_good_clips_and_rejects_each_bad_one(workspace):
    root, cfg = workspace
    outcomes = prepare(cfg, workers=2)
    by_name = {o.name: o for o in outcomes}
    assert {n for n, o in by_name.items() if o.status == "processed"} == {"synth_0000", "synth_0001"}
    reasons = {n: o.reason for n, o in by_name.items() if o.status == "rejected"}
    assert "empty" in reasons["empty"]
    assert "not a readable media file" in reasons["text"]
    assert "no audio" in reasons["silent_video"]
    assert "badmp3" in by_name and by_name["badmp3"].status == "rejected"
    assert "face" in reasons["noface"]
    log = (root / "processed" / "rejects.log").read_text()
    assert log.count("\n") == 5 and "noface.mp4" in log


def test_processed_clip_is_aligned_and_decodes(workspace, synth_dir):
    root, cfg = workspace
    index = json.loads((root / "processed" / "index.json").read_text())["clips"]
    entry = index["synth_0000"]
    truth = json.loads((synth_dir / "truth" / "synth_0000.json").read_text())
    assert entry["num_frames"] == truth["num_frames"]
    clip = load_clip(root / "processed" / entry["file"])
    t = entry["num_frames"]
    assert clip["present"].mean() >= 0.99
    assert len(clip["mel"]) == A.num_mel_frames(A.frames_to_samples(t))
    assert clip["mfcc"].shape == (len(clip["mel"]), A.N_MFCC)
    img = decode_crop(clip, 0)
    assert img.shape == (128, 128, 3)
    assert decode_crop(clip, 0, 96).shape == (96, 96, 3)
    # The truth's mouth centre must land in the lower half of the crop, near the middle column.
    cx, cy, side = clip["squares"][10]
    mx, my = truth["mouth_centres"][0][10]
    assert 0.55 < (my - (cy - side / 2)) / side < 0.85
    assert 0.35 < (mx - (cx - side / 2)) / side < 0.65


def test_rerun_skips_unchanged_and_force_redoes(workspace):
    root, cfg = workspace
    again = prepare(cfg)
    assert {o.name for o in again if o.status == "skipped"} == {"synth_0000", "synth_0001"}
    forced = prepare(cfg, force=True)
    assert {o.name for o in forced if o.status == "processed"} == {"synth_0000", "synth_0001"}
    assert not list((root / "processed").glob(".*tmp*")), "no temp files may be left behind"


def test_cli_prepare_prints_summary_and_exit_code(workspace, capsys):
    root, cfg = workspace
    code = main(["prepare", "--videos", cfg.data.videos_dir, "--audios", cfg.data.audios_dir,
                 "--out", str(root / "cli_out"), "--quiet", "--set", "data.crop_size=128"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Found 7 videos" in out and "Processed 2 samples" in out and "rejected 5" in out


def test_cli_error_is_one_line_and_nonzero(tmp_path, capsys):
    code = main(["prepare", "--videos", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and str(tmp_path / "nope") in err and err.count("\n") == 1
