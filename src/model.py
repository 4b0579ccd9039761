"""Seed-compatible import path for the models: `from src.model import SyncNet, Generator`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synclip.models.generator import Discriminator, Generator, GeneratorDims  # noqa: E402
from synclip.models.syncnet import SyncDims, SyncExpert  # noqa: E402

SyncNet = SyncExpert  # the seed's name for the sync expert

__all__ = ["SyncNet", "SyncExpert", "SyncDims", "Generator", "GeneratorDims", "Discriminator"]
