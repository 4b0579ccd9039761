"""The command line: synth, setup, config show, and the seed's script entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from synclip import media
from synclip.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_synth_writes_the_seed_layout_with_truth(tmp_path, capsys):
    code = main(["synth", "--out", str(tmp_path), "--clips", "2", "--seconds", "1.5", "--offset-frames", "3",
                 "--quiet"])
    assert code == 0 and "Wrote 2 synthetic clips" in capsys.readouterr().out
    truth = json.loads((tmp_path / "truth" / "synth_0001.json").read_text())
    assert truth["offset_frames"] == 3 and len(truth["mouth_opening"]) == truth["num_frames"]
    assert abs(truth["num_frames"] - 1.5 * 25) <= 0.5
    assert media.probe_video(tmp_path / "videos" / "synth_0001.mp4").num_frames == truth["num_frames"]
    assert len(media.read_audio(tmp_path / "audios" / "synth_0000.wav")) == 24000


def test_setup_and_config_show(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["setup"]) == 0
    assert (tmp_path / "data" / "processed").is_dir() and (tmp_path / "outputs").is_dir()
    capsys.readouterr()
    assert main(["config", "show", "--set", "training.batch_size=5"]) == 0
    assert "batch_size: 5" in capsys.readouterr().out


def test_seed_scripts_run(tmp_path):
    env_py = sys.executable
    out = subprocess.run([env_py, str(ROOT / "setup_directories.py")], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and (tmp_path / "checkpoints").is_dir()
    out = subprocess.run([env_py, str(ROOT / "src" / "data_processing.py")], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0 and "Found 0 videos" in out.stdout  # empty data/videos: nothing to do, no crash
    out = subprocess.run([env_py, str(ROOT / "src" / "inference.py"), "--checkpoint", "missing.pth", "--video",
                          "v.mp4", "--score-only"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.startswith("error: ") and "missing.pth" in out.stderr


def test_dub_names_an_empty_path_before_loading_anything(capsys):
    # An unset shell variable gives "": read as a path it is the current folder, and once fell through to a
    # TypeError. Each empty flag is named, with the fix, before any model is loaded.
    for flag, argv in (("--video", ["--video", "", "--audio", "a.wav", "--out", "o.mp4"]),
                       ("--image", ["--image", "", "--audio", "a.wav", "--out", "o.mp4"]),
                       ("--audio", ["--video", "v.mp4", "--audio", "", "--out", "o.mp4"]),
                       ("--out", ["--video", "v.mp4", "--audio", "a.wav", "--out", ""])):
        assert main(["dub", "--checkpoint", "/nonexistent/model.pth", *argv]) == 1
        err = capsys.readouterr().err
        assert f"{flag} is empty" in err and "give" in err and "model.pth" not in err
