"""Lip geometry (face mesh), its training data and the offset measures of the real-footage expert."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import real_media

from synclip import audio as A
from synclip.lips_eval import Case, reference_cases, summarise, windows_for
from synclip.lips_train import (CHUNK_FRAMES, ChunkSampler, TrainClip, add_at_snr, add_audio_variants,
                                coloured_noise, reverberate, valid_starts, warp_voice)
from synclip.mesh import (LIP_FEATURES, frontalise, lip_features, make_template, mouth_opening,
                          similarity_fit)
from synclip.models.lipsync import LipSyncDims, LipSyncExpert



def rotation(yaw: float, roll: float) -> np.ndarray:
    cy, sy, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry


def fake_mesh(frames: int, seed: int = 0) -> np.ndarray:
    """(T, 468, 3) random head whose lower lip (and jaw) drop by a known amount each frame."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(468, 3)).astype(np.float32)
    out = np.repeat(base[None], frames, 0)
    drop = np.sin(np.arange(frames) / 3.0) * 0.3
    for p in (14, 17, 152, 87, 317):
        out[:, p, 1] += drop
    return out


def test_similarity_fit_recovers_a_known_pose():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(30, 3))
    rot = rotation(0.4, -0.2)
    dst = 1.7 * src @ rot.T + np.array([3.0, -1.0, 0.5])
    s, r, t = similarity_fit(src, dst)
    assert s == pytest.approx(1.7, rel=1e-6)
    np.testing.assert_allclose(r, rot, atol=1e-6)
    np.testing.assert_allclose(t, [3.0, -1.0, 0.5], atol=1e-6)


def test_lip_features_ignore_head_pose_and_size():
    lms = fake_mesh(20)
    template = make_template(lms)
    moved = np.stack([2.5 * f @ rotation(0.3 * np.sin(i), 0.2).T + 4.0 for i, f in enumerate(lms)]).astype(np.float32)
    a, b = lip_features(lms, template), lip_features(moved, template)
    assert a.shape == (20, LIP_FEATURES)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.abs(np.median(a, axis=0)).max() < 1e-5  # the clip's rest shape is removed
    assert a.std() > 0.01  # ... and the motion is kept


def test_frontalise_keeps_missing_frames_missing():
    lms = fake_mesh(5)
    lms[2] = np.nan
    out = frontalise(lms, make_template(lms))
    assert np.isnan(out[2]).all() and not np.isnan(out[[0, 1, 3, 4]]).any()


def test_mouth_opening_follows_the_lip_gap():
    lms = fake_mesh(30)
    op = mouth_opening(lms)
    gap = np.linalg.norm(lms[:, 13, :2] - lms[:, 14, :2], axis=1)
    assert np.corrcoef(op, gap)[0, 1] > 0.99


def test_noise_is_added_at_the_asked_snr():
    rng = np.random.default_rng(0)
    speech = torch.from_numpy(rng.normal(size=16000).astype(np.float32))
    for slope in (0.0, 1.0):
        noise = coloured_noise(16000, slope, rng)
        mixed = add_at_snr(speech, noise, 10.0)
        snr = 10 * np.log10(float(speech.square().mean() / (mixed - speech).square().mean()))
        assert snr == pytest.approx(10.0, abs=0.01)


def test_reverberation_keeps_length_and_peak_and_smears_a_click():
    x = torch.zeros(16000)
    x[1000] = 1.0
    y = reverberate(x, 0.4, np.random.default_rng(0))
    assert len(y) == len(x) and float(y.abs().max()) == pytest.approx(1.0, abs=1e-5)
    assert float(y[1000 + 1600:].abs().max()) > 1e-3  # energy 100 ms later: a room
    assert float(y[:1000].abs().max()) < 1e-4  # nothing before the sound (causal)


def test_voice_warp_moves_a_tone_to_the_warped_frequency_and_keeps_timing():
    t = np.arange(16000) / A.SAMPLE_RATE_HZ
    tone = lambda hz: (0.5 * np.sin(2 * np.pi * hz * t) * (t < 0.5)).astype(np.float32)  # noqa: E731
    db = A.log_mel(tone(400.0))
    for factor in (1 / 1.2, 1.2):
        warped, truth = warp_voice(db, factor), A.log_mel(tone(400.0 * factor))
        assert warped.shape == db.shape
        assert int(warped[20].argmax()) == int(truth[20].argmax()) != int(db[20].argmax())
        assert torch.equal(warped.max(1).values > -60, db.max(1).values > -60)  # the tone stops when it stopped
    assert torch.allclose(warp_voice(db, 1.0), db, atol=1e-4)


def test_audio_variants_include_warped_voices_only_when_asked():
    wav = (np.random.default_rng(0).normal(size=16000) * 0.1).astype(np.float32)
    plain, again, warped = train_clip(25), train_clip(25), train_clip(25)
    add_audio_variants([plain], [wav], 4, seed=3)
    add_audio_variants([again], [wav], 4, seed=3, voice_warp=0.0)
    add_audio_variants([warped], [wav], 4, seed=3, voice_warp=0.2)
    assert len(plain.variants) == len(warped.variants) == 5
    assert all(torch.equal(a, b) for a, b in zip(plain.variants[1:], again.variants[1:]))
    assert any(not torch.allclose(a, b) for a, b in zip(plain.variants[1:], warped.variants[1:]))


def train_clip(frames: int, present: np.ndarray | None = None) -> TrainClip:
    feats = torch.rand(A.num_mel_frames(A.frames_to_samples(frames)), A.N_MELS)
    pres = torch.ones(frames, dtype=torch.bool) if present is None else torch.from_numpy(present)
    return TrainClip("c", "s", torch.randn(frames, LIP_FEATURES), pres, None, feats, [feats])


def test_sampler_chunks_only_where_the_mesh_was_found():
    present = np.ones(60, bool)
    present[20:30] = False
    clip = train_clip(60, present)
    starts = valid_starts(clip, CHUNK_FRAMES)
    assert set(starts.tolist()) == set(range(30, 36))  # only frames 30..59 hold 25 frames in a row
    face, aud, ids, st = ChunkSampler([clip], seed=0).sample(4, pixels=False)
    assert face["lips"].shape == (4, CHUNK_FRAMES, LIP_FEATURES)
    assert aud.shape == (4, CHUNK_FRAMES - 4, A.MEL_WINDOW, A.N_MELS)
    assert set(st.tolist()) <= set(starts.tolist())


@pytest.mark.parametrize("face_input", ["landmarks", "pixels", "both"])
def test_expert_shapes(face_input):
    model = LipSyncExpert(LipSyncDims(face_input=face_input, hidden_dim=32, base_channels=8))
    face = {"lips": torch.randn(2, 9, LIP_FEATURES), "pixels": torch.rand(2, 9, 3, 48, 96)}
    emb = model.face_embed(face)
    assert emb.shape == (2, 5, 32)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2, 5), atol=1e-5)
    aud = model.audio_embed(torch.rand(2, 5, A.MEL_WINDOW, A.N_MELS))
    assert aud.shape == (2, 5, 32)


def test_windows_for_keeps_every_searched_offset_inside_the_clip():
    v = windows_for(27, 5, 7)
    assert v.tolist() == list(range(2, 15))
    for o in range(-7, 8):
        assert (v - o + 5).min() >= 0 and (v - o + 5).max() <= 26


def test_reference_finds_a_shift_of_the_mouth_against_the_envelope():
    rng = np.random.default_rng(3)
    frames = 150
    clip = train_clip(frames)
    level = np.convolve(rng.random(frames + 40), np.ones(3) / 3, "same")[20:20 + frames]
    rows = np.minimum((np.arange(len(clip.feats)) / A.MEL_PER_FRAME).astype(int), frames - 1)
    clip.feats = torch.from_numpy(np.repeat(level[rows, None], A.N_MELS, 1).astype(np.float32))
    cases = reference_cases(level.copy(), clip, (0, 5, -5, 10, -10), 15)  # the mouth opens with the sound
    assert [c.found for c in cases] == [0, 5, -5, 10, -10]
    assert summarise(cases)["offset_acc_pm1"] == 1.0


def test_summary_counts_hits_within_one_frame():
    cases = [Case("a", "s", 0, 1, 1.0, 0.9), Case("a", "s", 5, 3, 1.0, 0.1), Case("a", "s", -5, -5, 1.0, 0.2)]
    s = summarise(cases)
    assert s["offset_acc_pm1"] == pytest.approx(2 / 3, abs=1e-4) and s["score_insync"] == 0.9
    assert s["score_shifted_5plus"] == pytest.approx(0.15)


def test_mesh_mouth_opens_with_speech_on_a_real_clip():
    from synclip import media
    from synclip.face import FaceDetector
    from synclip.lips import lip_track
    from synclip.lips_eval import speech_envelope
    from synclip.mesh import FaceMesh

    video = real_media("video") / "retalking_face2.mp4"
    with FaceDetector() as det:
        track = lip_track(video, media.probe_video(video), det, FaceMesh)
    assert track.present.mean() > 0.95
    opening = mouth_opening(track.landmarks)
    wav = A.fit_to_frames(media.read_audio(video), len(opening))
    env = speech_envelope(A.normalize_mel(A.log_mel(wav)), len(opening))
    ok = ~np.isnan(opening)
    assert np.corrcoef(opening[ok], env[ok])[0, 1] > 0.2  # mouth open while sound is loud



def test_one_pass_scan_reads_the_same_mouth_as_the_two_pass_mesh():
    """Scoring's single decoding pass (mesh on each frame's own detection square) against the smoothed-square
    mesh that training data is made with: the same face, the same mouth motion."""
    from synclip import media
    from synclip.config import DataConfig
    from synclip.face import FaceDetector
    from synclip.lips import dense_mesh, lip_track, scan_faces
    from synclip.mesh import FaceMesh

    video = real_media("video") / "pcavs_Input_00098.mp4"
    info = media.probe_video(video)
    with FaceDetector() as det:
        two_pass = lip_track(video, info, det, FaceMesh)
        tracks = scan_faces(video, info, det, FaceMesh, DataConfig().face_pad)
    assert len(tracks) == 1 and len(tracks[0].boxes) == len(two_pass.landmarks)
    one_pass = dense_mesh(tracks[0])
    ok = two_pass.present & ~np.isnan(one_pass[:, 0, 0])
    assert ok.mean() > 0.95
    a, b = mouth_opening(two_pass.landmarks)[ok], mouth_opening(one_pass)[ok]
    assert np.corrcoef(a, b)[0, 1] > 0.9
    assert np.abs(a - b).mean() < 0.3 * a.std()  # the same scale-free opening, not merely correlated

def test_scoring_runs_the_mesh_path_for_a_lip_expert(synth_dir, tmp_path):
    """A (random) landmark expert through LipSyncInference: mesh per track, embeddings, an offset curve."""
    from synclip.checkpoint import save_checkpoint
    from synclip.infer import LipSyncInference

    model = LipSyncExpert(LipSyncDims(hidden_dim=16))
    model.template.copy_(torch.from_numpy(make_template(fake_mesh(3))))
    path = save_checkpoint(tmp_path / "lips.pth", kind="sync", config={}, dims=model.dims.to_dict(),
                           state_dict=model.state_dict())
    inf = LipSyncInference(path, device="cpu", max_offset=4)
    score, d = inf.compute_sync_score(synth_dir / "videos" / "synth_0001.mp4")
    assert 0.0 <= score <= 1.0
    assert len(d["curve"]["offsets"]) == 9 and np.isfinite(d["curve"]["distances"]).all()
    assert d["face_coverage"] > 0.9


def test_tune_expert_writes_an_expert_no_worse_on_held_out_footage(tmp_path):
    from synclip import synth
    from synclip.checkpoint import load_checkpoint, save_checkpoint
    from synclip.tune import tune_expert

    synth.make_dataset(tmp_path / "own", 2, seconds=6.0, seed=5)  # 20% of 6 s = 30 held-out frames per clip

    model = LipSyncExpert(LipSyncDims(hidden_dim=16))
    model.template.copy_(torch.from_numpy(make_template(fake_mesh(3))))
    init = save_checkpoint(tmp_path / "init.pth", kind="sync", config={}, dims=model.dims.to_dict(),
                           state_dict=model.state_dict())
    r = tune_expert(tmp_path / "own" / "videos", tmp_path / "tuned.pth", init=init, steps=2, max_offset=2, workers=1,
                    device="cpu")
    assert r.before["cases"] > 0 and r.train_minutes > 0
    data = load_checkpoint(r.out, kind="sync")
    assert data["dims"] == model.dims.to_dict()
    m = data["metrics"]
    assert (m["held_out_offset_acc_pm1_after"] >= m["held_out_offset_acc_pm1_before"]) == r.kept_tuned
    if not r.kept_tuned:  # the starting weights come back unchanged
        assert torch.equal(data["state_dict"]["lip_mlp.0.weight"], model.state_dict()["lip_mlp.0.weight"])


def test_calibration_separates_in_sync_margins_from_the_rest():
    from synclip.lips_eval import fit_calibration

    rng = np.random.default_rng(0)
    pos = list(rng.normal(0.3, 0.05, 200))  # in sync: the distance at offset 0 far below the curve's median
    neg = list(rng.normal(0.0, 0.05, 400))  # shifted or another voice: about the median
    a, b = fit_calibration(pos, neg)
    model = LipSyncExpert(LipSyncDims(hidden_dim=8))
    curve = lambda margin: np.array([1.0, 0.9, 1.0 - margin, 1.1, 1.0])  # noqa: E731  (median 1, offset 0 at index 2)
    assert model.curve_score(curve(0.3), 2) is None  # not calibrated yet: scoring falls back to window probabilities
    model.curve_calibration.copy_(torch.tensor([a, b]))
    assert model.curve_score(curve(0.3), 2) > 0.9 and model.curve_score(curve(0.0), 2) < 0.1
    assert abs(model.curve_score(curve(0.15), 2) - 0.5) < 0.15  # the boundary lies between the two groups


def test_spread_margin_does_not_depend_on_the_curves_scale():
    from synclip.models.lipsync import curve_margin

    rng = np.random.default_rng(1)
    d = 1.0 + 0.05 * rng.standard_normal(31)
    d[15] = 0.8  # in sync: a dip at offset 0
    flat = 1.0 + 0.2 * (d - 1.0)  # the same curve, five times flatter (a face unlike the training faces)
    assert curve_margin(flat, 15, "margin") == pytest.approx(0.2 * curve_margin(d, 15, "margin"), rel=1e-6)
    assert curve_margin(flat, 15, "spread") == pytest.approx(curve_margin(d, 15, "spread"), rel=1e-6)
    assert curve_margin(d, 15, "spread") > 3 and abs(curve_margin(d, 3, "spread")) < 3
    d[0] = np.nan  # an offset with no window to judge is left out
    assert np.isfinite(curve_margin(d, 15, "spread"))
    with pytest.raises(ValueError, match="curve_input"):
        LipSyncExpert(LipSyncDims(hidden_dim=8, curve_input="zscore"))


def test_face_mesh_keeps_mediapipe_first_face_warning_off_the_terminal(capfd):
    # mediapipe prints "Using NORM_RECT without IMAGE_DIMENSIONS ..." on stderr when a graph first projects a
    # face: once per FaceMesh, i.e. on every `synclip score`; the landmarks must come all the same.
    from skimage import data as skdata

    from synclip.mesh import FaceMesh

    photo = np.ascontiguousarray(skdata.astronaut()[0:320, 80:400])  # her face, square
    with FaceMesh() as mesh:
        found = [mesh.run(photo) for _ in range(3)]
    assert all(lm is not None and lm.shape == (468, 3) for lm in found)
    assert "NORM_RECT" not in capfd.readouterr().err
