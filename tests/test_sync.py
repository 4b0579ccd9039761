"""Sync expert plumbing on tiny models: shapes, the offset sign convention, the loss, checkpoints."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import pytest

from synclip import audio as A
from synclip.checkpoint import load_checkpoint, save_checkpoint
from synclip.errors import CheckpointError
from synclip.infer import shift_audio
from synclip.models.syncnet import SyncDims, SyncExpert
from synclip.sync import offset_curve, sync_loss, window_valid

TINY = SyncDims(input_size=96, hidden_dim=16, num_layers=2, base_channels=4)


def test_expert_shapes():
    m = SyncExpert(TINY)
    crops = torch.rand(2, 9, 3, 96, 96)
    face = m.face_embed(crops)
    aud = m.audio_embed(torch.rand(2, 5, A.MEL_WINDOW, A.N_MELS))
    assert face.shape == (2, 5, 16) and aud.shape == (2, 5, 16)
    assert torch.allclose(face.norm(dim=-1), torch.ones(2, 5), atol=1e-5)
    assert m.logits(face, aud).shape == (2, 5)


@pytest.mark.parametrize("true_offset", [-7, 0, 3, 12])
def test_offset_curve_sign_matches_syncnet(true_offset):
    """Audio that leads the video by K frames: the sound of video frame v sits at audio frame v - K."""
    torch.manual_seed(0)
    w, max_off = 40, 15
    events = F.normalize(torch.randn(w + 2 * 40, 8), dim=-1)  # one 'sound' per moment
    face = events[40:40 + w]  # video window v shows moment v
    # audio window u carries moment u + K (the sound comes K frames early); cover u in [-max, w+max)
    audio = events[40 - max_off + true_offset: 40 + w + max_off + true_offset]
    res = offset_curve(face, audio, -max_off, max_off)
    assert res.offset_frames == true_offset
    assert res.min_distance == pytest.approx(0.0, abs=1e-5)
    assert res.confidence > 0.5


def test_shift_audio_undoes_a_lead():
    wav = torch.arange(10 * A.SAMPLES_PER_FRAME, dtype=torch.float32).numpy()
    led = shift_audio(wav, -3)  # advance: now the audio leads by 3 frames
    back = shift_audio(led, 3)
    k = 3 * A.SAMPLES_PER_FRAME
    assert (back[k:len(wav) - k] == wav[k:len(wav) - k]).all()


def test_window_feats_edges_repeat():
    feats = torch.arange(40, dtype=torch.float32)[:, None].repeat(1, 3)
    w = A.window_feats(feats, -2, 3)
    assert w.shape == (3, A.MEL_WINDOW, 3)
    assert w[0, 0, 0] == 0 and w[0, 7, 0] == round(-2 * 3.2) + 7
    last = A.window_feats(feats, 10, 1)
    assert last[0, -1, 0] == 39  # past the end: the last row repeats


def test_window_valid_needs_all_five_frames():
    present = torch.tensor([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1], dtype=torch.bool)
    v = window_valid(present)
    assert v.tolist() == [True, False, False, False, False, False, True, True]


def test_sync_loss_learns_on_a_toy_problem():
    """Mouth brightness follows the audio's loudness: a few steps must push the loss below chance."""
    torch.manual_seed(0)
    m = SyncExpert(TINY)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for step in range(60):
        level = torch.rand(4, 25)  # per-frame loudness
        crops = torch.zeros(4, 25, 3, 32, 32)
        crops[:, :, :, 20:28, 10:22] = level[:, :, None, None, None]
        mel_rows = level.repeat_interleave(4, 1)[:, :, None].expand(4, 100, A.N_MELS)
        feats = torch.stack([A.window_feats(r, 0, 21) for r in mel_rows])
        loss, stats = sync_loss(m, crops, feats, torch.arange(4), torch.zeros(4, dtype=torch.long), 5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else stats["bce"]
    assert stats["bce"] < 0.9 * first


def test_checkpoint_errors_are_clear(tmp_path):
    m = SyncExpert(TINY)
    good = save_checkpoint(tmp_path / "ok.pth", kind="generator", config={}, dims=TINY.to_dict(),
                           state_dict=m.state_dict())
    with pytest.raises(CheckpointError, match="generator checkpoint but a sync"):
        load_checkpoint(good, kind="sync")
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(truncated)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=str(text)):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")
    pickled = tmp_path / "evil.pth"
    torch.save({"format": "synclip-checkpoint-1", "obj": object()}, pickled)
    with pytest.raises(CheckpointError):
        load_checkpoint(pickled)  # weights_only refuses arbitrary objects


def test_checkpoints_carry_the_feature_kind_and_old_ones_still_load(tmp_path):
    from synclip.checkpoint import expert_from

    mfcc = SyncDims(input_size=96, hidden_dim=16, num_layers=2, base_channels=4, audio_bins=A.N_MFCC,
                    audio_feature="mfcc")
    path = save_checkpoint(tmp_path / "mfcc.pth", kind="sync", config={}, dims=mfcc.to_dict(),
                           state_dict=SyncExpert(mfcc).state_dict())
    assert expert_from(load_checkpoint(path), path, torch.device("cpu")).dims.audio_feature == "mfcc"
    old = {k: v for k, v in mfcc.to_dict().items() if k != "audio_feature"}  # written before the kind was stored
    path = save_checkpoint(tmp_path / "old.pth", kind="sync", config={}, dims=old,
                           state_dict=SyncExpert(mfcc).state_dict())
    assert expert_from(load_checkpoint(path), path, torch.device("cpu")).dims == mfcc
