"""Face detection, tracking, smoothing and crops: on synthetic clips and on the real clips in ../shared."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from synclip import media
from synclip.config import DataConfig
from synclip.face import (Detection, FaceTracker, crop, detect_tracks, fill_gaps, lower_face_mask, paste, smooth,
                          square_boxes, subject_squares)

from conftest import real_media

# Where the B-roll cutaway of wav2lip_pr600_test.mov lies (README: ~10-14 s), with a margin for the cuts.
CUTAWAY_S = (10.8, 14.3)


def test_fill_gaps_interpolates_short_gaps_only():
    x = np.array([[0.0], [np.nan], [np.nan], [3.0], [np.nan], [np.nan], [np.nan], [np.nan], [8.0], [np.nan]])
    out = fill_gaps(x, max_gap=2)
    assert out[1, 0] == pytest.approx(1.0) and out[2, 0] == pytest.approx(2.0)
    assert np.isnan(out[4:8, 0]).all(), "a gap longer than max_gap must stay no-face"
    assert np.isnan(out[9, 0]), "a trailing gap has no right neighbour and must stay no-face"


def test_smooth_does_not_cross_gaps_and_reduces_jitter():
    rng = np.random.default_rng(0)
    x = 100 + rng.normal(0, 3, size=(60, 1))
    x[30] = np.nan
    out = smooth(x, 5)
    assert np.isnan(out[30, 0])
    assert np.diff(out[:30, 0]).std() < 0.5 * np.diff(x[:30, 0]).std()


def test_tracker_keeps_two_faces_apart_and_rejoins_after_a_cut():
    tr = FaceTracker(40)
    left, right = np.array([10.0, 10, 60, 60]), np.array([200.0, 10, 250, 60])
    for i in range(40):
        dets = [Detection(right + i * 0.5, 0.9)]
        if not 10 <= i < 35:  # left face away for 25 frames (a cutaway), then back where it was
            dets.append(Detection(left + i * 0.2, 0.9))
        tr.update(i, dets)
    tracks = tr.finish(40)
    assert len(tracks) == 2
    covs = sorted(t.coverage for t in tracks)
    assert covs == pytest.approx([15 / 40, 1.0])


def test_crop_and_paste_round_trip():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    sq = np.array([80.0, 60.0, 64.0])
    face = crop(frame, sq, 64)
    assert face.shape == (64, 64, 3)
    assert np.abs(face.astype(int) - frame[28:92, 48:112].astype(int)).mean() < 1.0
    mask = lower_face_mask(64)
    assert mask[:20].max() == 0 and mask[45, 32] > 0.9 and mask[:, 0].max() < 0.05
    out = paste(frame, np.zeros_like(face), sq, mask)
    assert (out[:40] == frame[:40]).all(), "the upper face must stay untouched"
    assert out[76, 80].max() < 30, "the pasted lower face must show"


def test_paste_blends_only_under_the_mask_and_as_a_whole_frame_blend_would():
    # paste() works on the mask's footprint only; blending over the whole frame must give the same picture.
    yy, xx = np.mgrid[0:240, 0:320]
    frame = np.stack([xx % 256, yy, (xx + yy) % 256], -1).astype(np.uint8)  # smooth, so warps agree closely
    face = np.full((96, 96, 3), (200, 30, 90), np.uint8)
    mask = lower_face_mask(96)
    for sq in (np.array([160.0, 120.0, 150.0]), np.array([300.0, 20.0, 130.0]), np.array([5.0, 230.0, 90.0])):
        cx, cy, side = sq
        scale = side / 96
        m = np.array([[scale, 0, cx - side / 2], [0, scale, cy - side / 2]])
        alpha = cv2.warpAffine(mask, m, (320, 240), flags=cv2.INTER_LINEAR)[..., None]
        whole = cv2.warpAffine(face, m, (320, 240), flags=cv2.INTER_LINEAR).astype(np.float32)
        want = np.clip(frame * (1 - alpha) + whole * alpha + 0.5, 0, 255).astype(np.uint8)
        out = paste(frame, face, sq, mask)
        assert np.abs(out.astype(int) - want).max() <= 2
        assert (out[alpha[..., 0] == 0] == frame[alpha[..., 0] == 0]).all(), "no pixel outside the mask may change"
        assert (out != frame).any()


def test_square_boxes_put_the_mouth_low_in_the_crop():
    boxes = np.array([[100.0, 100, 200, 200]])
    kps = np.full((1, 6, 2), np.nan)
    kps[0, 3] = [150, 180]
    cx, cy, side = square_boxes(boxes, 0.15, kps)[0]
    assert side == pytest.approx(130)
    mouth_row = (180 - (cy - side / 2)) / side
    assert mouth_row == pytest.approx(0.7)


def test_synthetic_faces_found_in_99_percent_of_frames(synth_dir, detector):
    found = total = 0
    for truth_path in sorted((synth_dir / "truth").glob("*.json")):
        truth = json.loads(truth_path.read_text())
        video = synth_dir / "videos" / f"{truth['name']}.mp4"
        for i, frame in enumerate(media.iter_frames(video)):
            dets = detector.detect(frame)
            total += 1
            if dets:
                x0, y0, x1, y1 = truth["face_boxes"][0][i]
                cx, cy = (dets[0].box[0] + dets[0].box[2]) / 2, (dets[0].box[1] + dets[0].box[3]) / 2
                found += x0 <= cx <= x1 and y0 <= cy <= y1
    assert total >= 8 * 50
    assert found / total >= 0.99


def _real_videos():
    try:
        folder = real_media("video")
    except pytest.skip.Exception:
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".mp4", ".mov"))


@pytest.mark.parametrize("video", _real_videos() or [pytest.param(None, marks=pytest.mark.skip(
    reason="real test media (../shared/data/real) not found"))], ids=lambda p: p.name if p else "none")
def test_real_clip_face_coverage_and_steady_crops(video, detector):
    info = media.probe_video(video)
    tracks = detect_tracks(video, info, detector)
    assert tracks, f"no face in {video.name}"
    boxes, _, squares = subject_squares(tracks[0], DataConfig())
    present = ~np.isnan(squares[:, 0])
    t = np.arange(len(present)) / 25
    cut = (t >= CUTAWAY_S[0]) & (t <= CUTAWAY_S[1]) if "wav2lip" in video.name else np.zeros_like(present)
    if cut.any():
        assert not present[cut].any(), "the B-roll cutaway must come out as no-face frames"
    edge = (t > CUTAWAY_S[0] - 0.6) & (t < CUTAWAY_S[1] + 0.6) & ~cut if cut.any() else cut
    keep = ~cut & ~edge  # the few frames at the cuts themselves are allowed either way
    assert present[keep].mean() >= 0.95
    # Jitter: the crop centre's departure from a straight path through its neighbours (second difference),
    # as a fraction of the side; real head motion is smooth, detector noise is not.
    smoothed = jitter(squares)
    raw = jitter(subject_squares(tracks[0], DataConfig(smooth_frames=1))[2])
    assert smoothed < 0.01, f"crop centre jitters {smoothed:.2%} of the side per frame (median)"
    assert smoothed < 0.5 * raw, "smoothing must at least halve the detector's jitter"


def jitter(squares: np.ndarray) -> float:
    c = squares[:, :2]
    second = np.linalg.norm(c[2:] - 2 * c[1:-1] + c[:-2], axis=1) / 2
    ok = ~np.isnan(second)
    return float(np.median(second[ok] / squares[1:-1, 2][ok]))
