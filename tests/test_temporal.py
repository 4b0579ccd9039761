"""model.temporal: the window transformer beside the temporal conv, in both sync experts, chosen by config and
rebuilt from a checkpoint's dims."""

from __future__ import annotations

import pytest
import torch

from synclip.checkpoint import expert_from, load_checkpoint, save_checkpoint
from synclip.config import load_config
from synclip.errors import ConfigError
from synclip.models.lipsync import LipSyncDims, LipSyncExpert
from synclip.models.syncnet import SyncDims, SyncExpert
from synclip.models.temporal import WindowTransformer
from synclip.sync import sync_loss
from synclip.sync_stage import sync_dims

TINY = SyncDims(input_size=96, hidden_dim=16, num_layers=2, base_channels=4, temporal="transformer")


def test_config_picks_the_temporal_model_and_refuses_others():
    assert sync_dims(load_config(None)).temporal == "conv"
    assert sync_dims(load_config(None, ["model.temporal=transformer"])).temporal == "transformer"
    with pytest.raises(ConfigError, match="model.temporal"):
        load_config(None, ["model.temporal=lstm"])


def test_a_window_sees_only_its_own_five_frames():
    torch.manual_seed(0)
    head = WindowTransformer(16).eval()
    x = torch.randn(1, 16, 20)
    y = head(x)
    assert y.shape == (1, 16, 16)
    x2 = x.clone()
    x2[:, :, 10] += 1.0  # frame 10 belongs to windows 6..10
    changed = (head(x2) - y).abs().amax(dim=1)[0] > 1e-6
    assert changed.nonzero().flatten().tolist() == [6, 7, 8, 9, 10]


def test_transformer_expert_trains_a_step_and_comes_back_from_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = SyncExpert(TINY)
    assert isinstance(model.face_temporal, WindowTransformer)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    crops, feats = torch.rand(2, 12, 3, 96, 96), torch.rand(2, 8, 16, 80)
    ids, starts = torch.tensor([0, 1]), torch.tensor([0, 0])
    before = model.face_temporal.out.weight.detach().clone()
    loss, _ = sync_loss(model, crops, feats, ids, starts, 5)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.face_temporal.out.weight)
    path = save_checkpoint(tmp_path / "t.pth", kind="sync", config={}, dims=model.dims.to_dict(),
                           state_dict=model.state_dict())
    back = expert_from(load_checkpoint(path), path, torch.device("cpu"))
    assert back.dims.temporal == "transformer" and isinstance(back.face_temporal, WindowTransformer)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(back.face_embed(crops), model.face_embed(crops), atol=1e-6)


def test_checkpoints_from_before_the_choice_load_as_conv(tmp_path):
    dims = SyncDims(input_size=96, hidden_dim=16, num_layers=2, base_channels=4).to_dict()
    old = {k: v for k, v in dims.items() if k != "temporal"}  # what files written before model.temporal hold
    path = save_checkpoint(tmp_path / "old.pth", kind="sync", config={}, dims=old,
                           state_dict=SyncExpert(SyncDims(**old)).state_dict())
    assert expert_from(load_checkpoint(path), path, torch.device("cpu")).dims.temporal == "conv"
    shipped = load_checkpoint("pretrained")
    assert expert_from(shipped, None, torch.device("cpu")).dims.temporal == "conv"


def test_face_mesh_expert_takes_the_transformer_too():
    torch.manual_seed(0)
    model = LipSyncExpert(LipSyncDims(hidden_dim=16, temporal="transformer"))
    out = model.face_embed({"lips": torch.randn(2, 12, model.dims.lip_features)})
    assert out.shape == (2, 8, 16) and torch.allclose(out.norm(dim=-1), torch.ones(2, 8), atol=1e-5)
