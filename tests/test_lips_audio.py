"""Speech -> mouth shapes (lips_audio): alignment of audio and frames, and that it learns a mapping it can learn."""

from __future__ import annotations

import numpy as np
import torch

from synclip import audio as A
from synclip.lips_audio import AudioToLips, centred, correlation, fit, frame_centres, lip_gap, predict
from synclip.lips_train import TrainClip
from synclip.mesh import LIP_FEATURES, MOUTH_POINTS


def test_frame_centres_sit_in_the_middle_of_each_40ms_frame():
    c = frame_centres(10, 33)
    times_ms = c.float() * 1000 / A.MEL_FPS  # mel frame m is centred at m * 12.5 ms
    assert torch.all((times_ms - (torch.arange(10) + 0.5) * 40).abs() <= 6.25)
    assert frame_centres(10, 20).max() == 19  # never past the last mel frame


def toy_clip(seed: int, frames: int = 60) -> TrainClip:
    """Bursts of noise; the lower lip drops while the sound is on, so the gap follows the loudness."""
    rng = np.random.default_rng(seed)
    on = np.repeat(rng.random(frames // 6) < 0.5, 6)
    wav = (rng.normal(size=frames * A.SAMPLES_PER_FRAME) * np.repeat(on * 0.5 + 0.001, A.SAMPLES_PER_FRAME))
    feats = A.normalize_mel(A.log_mel(wav.astype(np.float32)))
    drop = torch.from_numpy(np.random.default_rng(0).random(len(MOUTH_POINTS)).astype(np.float32))  # per point
    drop[MOUTH_POINTS.index(13)], drop[MOUTH_POINTS.index(14)] = 0.0, 1.0  # upper lip still, lower lip drops
    lips = torch.zeros(frames, LIP_FEATURES)
    lips.view(frames, -1, 3)[:, :, 1] = torch.from_numpy(on.astype(np.float32))[:, None] * drop * 0.2
    present = torch.ones(frames, dtype=torch.bool)
    return TrainClip(f"toy{seed}", "toy", centred(lips, present), present, None, feats, [feats])


def test_it_learns_lip_motion_that_follows_the_sound_and_holds_it_on_unseen_clips():
    torch.manual_seed(0)
    model = AudioToLips(width=32)
    train = [toy_clip(s) for s in range(24)]
    fit(model, train, steps=150, batch=8, lr=3e-3, report=lambda s: None)
    held_out = toy_clip(99)
    pred = predict(model, held_out.feats, held_out.num_frames)
    assert pred.shape == (held_out.num_frames, LIP_FEATURES)
    assert correlation(lip_gap(pred), lip_gap(held_out.lips)) > 0.8
    untrained = predict(AudioToLips(width=32), held_out.feats, held_out.num_frames)
    assert abs(correlation(lip_gap(untrained), lip_gap(held_out.lips))) < 0.8


def test_expert_sync_loss_pulls_the_shapes_only_and_prefers_them_in_sync():
    from synclip.checkpoint import PRETRAINED_EXPERT, expert_from, load_checkpoint
    from synclip.lips_audio import expert_sync_loss

    expert = expert_from(load_checkpoint(PRETRAINED_EXPERT, kind="sync"), PRETRAINED_EXPERT, torch.device("cpu"))
    loss = expert_sync_loss(expert, max_offset=4)
    clip = toy_clip(5)
    lips = clip.lips[None].clone().requires_grad_(True)
    value = loss(lips, [clip.feats], [clip])
    value.backward()
    assert torch.isfinite(value) and lips.grad.abs().sum() > 0  # a gradient reaches the shapes
    assert all(p.grad is None and not p.requires_grad for p in expert.parameters())  # the expert stays frozen
    # The same shapes 3 frames late against the sound cost more than in place (the loss asks for offset 0)
    late = torch.cat([clip.lips[:1].repeat(3, 1), clip.lips[:-3]])[None]
    assert loss(late, [clip.feats], [clip]) > value.detach()
