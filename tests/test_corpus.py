"""The real-footage corpus cache: every clip's mesh, crops and audio, bad files left out with the reason."""

from __future__ import annotations

import json
import shutil

import numpy as np

from synclip import audio as A
from synclip.corpus import CROP_PX, extract, load_cache
from synclip.mesh import NUM_LANDMARKS


def test_extract_caches_good_clips_and_names_the_bad_ones(synth_dir, tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    for name in ("synth_0000.mp4", "synth_0003.mp4"):
        shutil.copy(synth_dir / "videos" / name, src / name)
    (src / "broken.mp4").write_bytes(b"")  # an empty file must not stop the corpus
    (src / "notes.txt").write_text("not a video")
    index = extract(src, tmp_path / "cache" / "own.npz", workers=1)  # a folder not made yet
    assert index["names"] == ["synth_0000", "synth_0003"]
    assert len(index["rejects"]) == 1 and "broken.mp4" in index["rejects"][0] and "empty" in index["rejects"][0]
    assert json.loads((tmp_path / "cache" / "own.json").read_text())["num_frames"] == index["num_frames"]
    clips = load_cache(tmp_path / "cache" / "own.npz")
    for clip in clips:
        t = clip.num_frames
        assert clip.landmarks.shape == (t, NUM_LANDMARKS, 3) and clip.crops.shape == (t, CROP_PX // 2, CROP_PX, 3)
        assert len(clip.wav) == A.frames_to_samples(t)
        assert clip.present.mean() > 0.9  # the mesh finds the synthetic faces
        assert np.abs(clip.wav).max() > 0.01
    assert not list((tmp_path / "cache").glob(".*.tmp"))  # written through a temp file
