"""Config: defaults < YAML < --set; unknown keys name the closest valid key; ranges name the key."""

from __future__ import annotations

import pytest
import yaml

from synclip.config import dump_yaml, load_config, setup_directories
from synclip.errors import ConfigError


def test_layers_override_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  batch_size: 16\n  learning_rate: 0.01\n")
    cfg = load_config(path, ["training.batch_size=4"])
    assert cfg.training.batch_size == 4
    assert cfg.training.learning_rate == 0.01
    assert cfg.model.input_size == 96


def test_unknown_key_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="did you mean training.batch_size"):
        load_config(None, ["training.batchsize=3"])
    path = tmp_path / "c.yaml"
    path.write_text("modle:\n  input_size: 96\n")
    with pytest.raises(ConfigError, match="did you mean model") as e:
        load_config(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("pair, key", [("model.input_size=100", "model.input_size"),
                                       ("training.device=tpu", "training.device"),
                                       ("training.batch_size=abc", "training.batch_size"),
                                       ("model.input_size=256", "model.input_size")])
def test_bad_values_name_the_key(pair, key):
    overrides = [pair] + (["data.crop_size=128"] if pair.endswith("256") else [])
    with pytest.raises(ConfigError, match=key):
        load_config(None, overrides)


def test_dump_yaml_round_trips_with_comments():
    cfg = load_config(None, ["model.hidden_dim=64"])
    text = dump_yaml(cfg)
    assert "# " in text
    assert load_config(None) != cfg
    data = yaml.safe_load(text)
    assert data["model"]["hidden_dim"] == 64
    assert data["training"]["device"] == "auto"


def test_setup_directories_is_idempotent(tmp_path):
    cfg = load_config(None)
    first = setup_directories(cfg, tmp_path)
    second = setup_directories(cfg, tmp_path)
    assert first == second
    assert sorted(p.relative_to(tmp_path).as_posix() for p in first) == sorted(
        ["data/videos", "data/audios", "data/processed", "checkpoints", "logs", "outputs"])


def test_retired_keys_are_skipped_with_a_warning(tmp_path, caplog):
    old = tmp_path / "old.yaml"
    old.write_text("training:\n  num_workers: 4\n  image_every: 100\n  batch_size: 8\n", encoding="utf-8")
    cfg = load_config(old)
    assert cfg == load_config(None, ["training.batch_size=8"])
    assert "training.num_workers is no longer used" in caplog.text
