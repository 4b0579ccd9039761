"""What the benchmarks share: paths, the small CPU model they train, and how results are saved."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The benchmark model: sized to train on a 2-core CPU in minutes (input 96, narrow convs, 128-d embeddings).
BENCH_MODEL = {"data.crop_size": 96, "model.input_size": 96, "model.base_channels": 16, "model.hidden_dim": 128,
               "training.batch_size": 8, "training.checkpoint_every": 100}


def bench_config(work: Path, videos: Path | None = None, audios: Path | None = None, **overrides):
    """The benchmark model's config with every folder under ``work``; ``overrides`` use dotted keys."""
    from synclip.config import load_config

    return load_config(None).replace(**{
        "data.videos_dir": str(videos or work / "videos"), "data.audios_dir": str(audios or work / "audios"),
        "data.processed_dir": str(work / "processed"), "paths.checkpoints_dir": str(work / "checkpoints"),
        "paths.logs_dir": str(work / "logs"), **BENCH_MODEL, **overrides})


def machine() -> dict:
    """What a timing was measured on: the CPU's model name (Linux) and its cores. The shared machines of this
    project have changed CPU between sessions, so a time without them cannot be compared with another."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count()}


def save_result(path: str | Path, result: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


def take_mode(modes: tuple[str, ...], usage: str) -> str | None:
    """A script's first argument when it is one of ``modes``, removed from sys.argv so that the script it wraps
    parses the rest; None (after printing ``usage``) when it is not."""
    if len(sys.argv) < 2 or sys.argv[1] not in modes:
        print(usage)
        return None
    return sys.argv.pop(1)
