"""Data-parallel training: `torchrun --nproc_per_node 2 -m synclip train` on CPU (gloo, loopback) trains both
stages as one process with the same global batch does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from synclip.checkpoint import load_checkpoint
from synclip.config import load_config
from synclip.errors import ConfigError

K_STEPS = 3  # optimiser steps per epoch: samples_per_epoch / batch_size
# Two processes add their halves in another order than one process does (gradients, batch-norm sums): float32
# rounding, ~1e-7 relative per step, which Adam's step normalisation can lift for near-zero gradients.
# Weights, sync expert: all must agree to 1e-4 (measured: 1e-5 at most). Generator: only the losses are
# compared. Its L1 term's gradient is the sign of (drawn - true) per pixel; the two runs' pictures differ by
# ~6e-5 (batch-norm sums over ~10^5 values added in another order), which flips the sign at pixels where the
# two are nearly equal, so gradients differ by ~1-2% and Adam, which steps each weight by about the learning
# rate whatever its gradient's size, turns that into weight differences of up to K * lr (15% of weights > 1e-4).
LOSS_RTOL = 1e-3
WEIGHT_ATOL = 1e-4
WEIGHTS_OFF = 0.01
TINY = ["model.input_size=96", "model.generator=unet", "model.base_channels=4", "model.hidden_dim=16",
        "model.num_layers=2", "training.batch_size=4", f"training.samples_per_epoch={4 * K_STEPS}",
        "training.num_epochs=1", "training.device=cpu", "training.mixed_precision=false", "data.crop_size=96"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """3 synthetic clips of 5 s, prepared (fewer than 10 clips: split in time, pieces long enough)."""
    from synclip import synth
    from synclip.prepare import prepare

    root = tmp_path_factory.mktemp("ddp")
    synth.make_dataset(root / "raw", 3, seconds=5.0, seed=5)
    cfg = load_config(None, TINY + [f"data.videos_dir={root / 'raw' / 'videos'}",
                                    f"data.audios_dir={root / 'raw' / 'audios'}",
                                    f"data.processed_dir={root / 'processed'}"])
    prepare(cfg)
    return root


def settings(root: Path, name: str) -> list[str]:
    return TINY + [f"data.processed_dir={root / 'processed'}", f"paths.checkpoints_dir={root / name / 'ck'}",
                   f"paths.logs_dir={root / name / 'logs'}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(root: Path, name: str, *extra: str, nproc: int = 2) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "synclip", "train", "--quiet"]
    for s in settings(root, name):
        cmd += ["--set", s]
    cmd += extra  # after the settings: a later --set wins
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_two_processes_train_as_one_with_the_same_batch(prepared):
    from synclip.train import run_stage

    import shutil

    proc = torchrun(prepared, "ddp", "--stage", "both")
    cfg = load_config(None, settings(prepared, "single"))
    single = {"sync": run_stage(cfg, "sync")}  # meanwhile, one process
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    # The generator trains against the expert: give the single run the two processes' one (they differ by
    # rounding), so the generators start from the same place.
    shutil.copy(prepared / "ddp" / "ck" / "best_model.pth", prepared / "single" / "ck" / "best_model.pth")
    single["generator"] = run_stage(cfg, "generator")
    assert out.count("=== Training stage:") == 2, out  # rank 0 alone prints
    assert "x 2 processes (each 2 of every batch)" in out
    for kind, sub in (("sync", ""), ("generator", "generator")):
        one = load_checkpoint(prepared / "single" / "ck" / sub / "last.pth")
        two = load_checkpoint(prepared / "ddp" / "ck" / sub / "last.pth")
        assert two["step"] == one["step"] == K_STEPS
        h1, h2 = single[kind].history[0], json.loads(two["extra"]["history"])[0]
        for part in ("train", "val"):
            a, b = h1[part]["loss"], h2[part]["loss"]
            assert abs(a - b) <= LOSS_RTOL * abs(a), (kind, part, a, b)
        diff = torch.cat([(one["state_dict"][k] - v).abs().flatten() for k, v in two["state_dict"].items()
                          if v.is_floating_point()])
        off = float((diff > WEIGHT_ATOL).float().mean())
        print(f"{kind}: train loss {a:.6f} vs {b:.6f}, weights max diff {float(diff.max()):.2e}, "
              f"{off:.4%} of {diff.numel()} beyond {WEIGHT_ATOL}")
        if kind == "sync":  # smooth losses: the weights agree too
            assert off <= WEIGHTS_OFF, (kind, off, float(diff.max()))
    logs = prepared / "ddp" / "logs" / "sync"
    assert sum(p.name.startswith("events.out.tfevents") for p in logs.iterdir()) == 1  # one writer: rank 0's


def test_batch_must_split_over_the_processes():
    from synclip.distributed import World

    assert World(1, 2).part(8) == slice(4, 8)
    with pytest.raises(ConfigError, match="training.batch_size=6"):
        World(0, 2).part(5)


@pytest.mark.slow
def test_ctrl_c_under_torchrun_saves_and_resume_finishes(prepared):
    many = ["--set", "training.num_epochs=40"]
    proc = torchrun(prepared, "stop", "--stage", "sync", *many)
    ck = prepared / "stop" / "ck" / "last.pth"
    deadline = time.time() + 300
    while not ck.exists() and time.time() < deadline:  # the first epoch is done
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C in a terminal reaches the whole process group
    out, _ = proc.communicate(timeout=120)
    assert "continue with --resume" in out, out
    saved = load_checkpoint(ck)
    assert 1 <= saved["epoch"] < 40
    proc = torchrun(prepared, "stop", "--stage", "sync", "--resume",
                    "--set", f"training.num_epochs={saved['epoch'] + 1}")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0 and "Resumed from" in out, out
    assert load_checkpoint(ck)["epoch"] == saved["epoch"] + 1
    assert torch.load(ck, weights_only=True)["format"]
