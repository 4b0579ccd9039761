"""The training loop on tiny models: split by clip, checkpoints, TensorBoard, Ctrl+C + resume, device errors."""

from __future__ import annotations

import json

import pytest

from synclip.checkpoint import load_checkpoint
from synclip.config import load_config
from synclip.datasets import make_split
from synclip.errors import ConfigError
from synclip.prepare import prepare
from synclip.checkpoint import select_device
from synclip.train import run_stage

TINY = ["model.input_size=96", "model.generator=unet", "model.base_channels=4", "model.hidden_dim=16",
        "model.num_layers=2", "training.batch_size=2", "training.samples_per_epoch=4", "training.checkpoint_every=2"]


@pytest.fixture(scope="module")
def cfg(synth_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    c = load_config(None, TINY + [f"data.videos_dir={synth_dir / 'videos'}",
                                  f"data.audios_dir={synth_dir / 'audios'}",
                                  f"data.processed_dir={root / 'processed'}", "data.crop_size=96",
                                  f"paths.checkpoints_dir={root / 'ck'}", f"paths.logs_dir={root / 'logs'}",
                                  "training.num_epochs=2"])
    prepare(c)
    return c


def test_split_is_by_clip_and_fixed_by_seed():
    names = [f"c{i}" for i in range(20)]
    a, b = make_split(names, 0), make_split(names, 0)
    assert a == b
    parts = [set(a[p]) for p in ("train", "val", "test")]
    assert sum(map(len, parts)) == 20 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert (len(parts[0]), len(parts[1]), len(parts[2])) == (16, 2, 2)
    assert make_split(names, 1) != a
    few = make_split(names[:3], 0)
    assert few["by"] == "time" and few["train"][0][1:] == [0.0, 0.8]


BY_CLIP = {"by": "clip", "seed": 0, "train": [f"synth_000{i}" for i in range(6)], "val": ["synth_0006"],
           "test": ["synth_0007"]}


def test_sync_stage_writes_checkpoints_logs_and_split(cfg):
    lines = []
    result = run_stage(cfg, "sync", report=lines.append, split=BY_CLIP)
    ck = load_checkpoint(result.best_path, kind="sync")
    assert ck["dims"]["hidden_dim"] == 16 and ck["config"]["model"]["num_layers"] == 2
    root = result.best_path.parent
    assert (root / "checkpoint_epoch_2.pth").is_file() and (root / "last.pth").is_file()
    split = json.loads((root / "split.json").read_text())
    assert split == BY_CLIP
    assert any(p.name.startswith("events.out.tfevents") for p in (cfg_logs(cfg) / "sync").iterdir())
    assert any(line.startswith("Model parameters:") for line in lines)
    assert any(line.startswith("Epoch 2/2") for line in lines)
    assert "Epoch 2/2" in (cfg_logs(cfg) / "sync" / "train.log").read_text()


def cfg_logs(cfg):
    from pathlib import Path

    return Path(cfg.paths.logs_dir)


def test_ctrl_c_saves_and_resume_continues(cfg, monkeypatch):
    from synclip import sync_stage

    c = cfg.replace(**{"paths.checkpoints_dir": cfg.paths.checkpoints_dir + "_int", "training.num_epochs": 3})
    calls = {"n": 0}
    real_step = sync_stage.SyncStage.train_step

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 3:  # during the second epoch
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(sync_stage.SyncStage, "train_step", flaky)
    lines = []
    result = run_stage(c, "sync", report=lines.append, split=BY_CLIP)
    assert result.interrupted and any("--resume" in line for line in lines)
    saved = load_checkpoint(result.last_path, kind="sync")
    assert saved["epoch"] == 1 and saved["optimizer"] is not None
    monkeypatch.setattr(sync_stage.SyncStage, "train_step", real_step)
    lines = []
    resumed = run_stage(c, "sync", resume=True, report=lines.append)
    assert lines[1].startswith("Resumed from") or any(line.startswith("Resumed from") for line in lines)
    assert resumed.epochs_done == 3 and not resumed.interrupted
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]


def test_generator_stage_needs_the_expert_at_the_same_size(cfg):
    from pathlib import Path

    if not (Path(cfg.paths.checkpoints_dir) / "best_model.pth").is_file():  # run on its own (-k): train its expert
        run_stage(cfg, "sync", report=lambda s: None, split=BY_CLIP)
    result = run_stage(cfg, "generator", report=lambda s: None, split=BY_CLIP)
    ck = load_checkpoint(result.best_path, kind="generator")
    assert "expert" in ck["extra"]
    # Fine-tuning (one person's footage): a new run starts from these weights, in a folder of its own.
    import torch

    from synclip.datasets import load_clips
    from synclip.gen_stage import GeneratorStage

    tuned = cfg.replace(**{"training.init_checkpoint": str(result.best_path)})
    clips = load_clips(cfg.data.processed_dir, 96)
    stage = GeneratorStage(tuned, clips, BY_CLIP, torch.device("cpu"))
    for k, v in stage.model.state_dict().items():
        assert torch.equal(v, ck["state_dict"][k]), k
    with pytest.raises(ConfigError, match="input size"):
        run_stage(cfg.replace(**{"model.input_size": 128, "data.crop_size": 128}), "generator", split=BY_CLIP)


def test_too_short_pieces_fail_early_with_the_fix(cfg):
    from synclip.errors import DataError

    with pytest.raises(DataError, match="longer clips"):
        run_stage(cfg, "sync")  # 8 clips of 2 s: the 10% time pieces hold 5 frames, 10 are needed


def test_cuda_asked_without_a_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="no usable CUDA GPU"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"
