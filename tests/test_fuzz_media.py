"""Hostile files through the real `synclip` command line: one `error:` line naming the file, no traceback, and
batch goes on past every bad file. (benchmarks/fuzz_media.py runs a few hundred such files; these are a handful.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "synclip", *argv, "--quiet"], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=180)


def _one_error_naming(proc: subprocess.CompletedProcess, path: Path) -> str:
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    assert proc.returncode == 1, text
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0], proc.stderr
    assert "internal error" not in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fuzz_corpus import tiny_generator  # an untrained generator: dub's plumbing, in seconds

    return tiny_generator(tmp_path_factory.mktemp("gen") / "gen.pth")


@pytest.fixture(scope="module")
def hostile(synth_dir, tmp_path_factory) -> dict[str, Path]:
    """A folder of hostile 'videos' beside one healthy clip, and a damaged wav."""
    folder = tmp_path_factory.mktemp("hostile")
    good = (synth_dir / "videos" / "synth_0000.mp4").read_bytes()
    frame = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    rng = np.random.default_rng(0)
    files = {
        "empty.mp4": b"",
        "cut_short.mp4": good[: len(good) // 10],
        "header_then_noise.mp4": good[:1024] + rng.bytes(20000),
        "photo_renamed.mp4": frame,
        "webpage.mp4": b"<html><body>404</body></html>",
        "random.mkv": rng.bytes(5000),
    }
    paths = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    (folder / "a_good_one.mp4").write_bytes(good)
    bad_wav = folder.parent / f"{folder.name}_header_only.wav"
    bad_wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    paths["bad.wav"] = bad_wav
    return paths


def test_dub_to_a_damaged_wav_is_one_line(hostile, synth_dir, tiny_generator, tmp_path):
    path = hostile["bad.wav"]
    proc = _run("dub", "--video", str(synth_dir / "videos" / "synth_0000.mp4"), "--audio", str(path),
                "--out", str(tmp_path / "o.mp4"), "--checkpoint", str(tiny_generator), cwd=tmp_path)
    _one_error_naming(proc, path)
    assert not list(tmp_path.glob("*.mp4"))  # nothing half-written


def test_batch_goes_on_past_every_bad_file(hostile, tmp_path):
    folder = hostile["empty.mp4"].parent
    proc = _run("batch", str(folder), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    rows = {Path(r["video"]).name: r for r in json.loads((tmp_path / "out" / "report.json").read_text())}
    bad = [n for n in hostile if n.endswith((".mp4", ".mkv"))]
    assert set(rows) == set(bad) | {"a_good_one.mp4"}
    assert rows["a_good_one.mp4"]["ok"], rows["a_good_one.mp4"]
    for name in bad:
        assert not rows[name]["ok"] and name in rows[name]["error"] and "\n" not in rows[name]["error"], rows[name]
        assert "internal error" not in rows[name]["error"], rows[name]
    assert proc.returncode == 1  # some files failed: the exit code says so
