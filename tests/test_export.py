"""Exported models (ONNX, TorchScript; int8, fp16) on tiny random models: the same outputs as the checkpoint,
and every entry point (LipSyncInference, dub_video, `synclip score` / `dub`) loads them by their file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synclip import media
from synclip.checkpoint import expert_from, generator_from, init_weights, load_checkpoint, save_checkpoint
from synclip.cli import main
from synclip.config import load_config
from synclip.errors import CheckpointError, InputError
from synclip.export import export_model
from synclip.exported import is_exported
from synclip.infer import LipSyncInference
from synclip.models.generator import Generator, GeneratorDims
from synclip.models.lipsync import LipSyncDims, LipSyncExpert
from synclip.models.syncnet import SyncDims, SyncExpert

CPU = torch.device("cpu")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
PIXEL = SyncDims(input_size=96, hidden_dim=16, num_layers=4, base_channels=4)  # 4 stages: a 3 x 6 map pooled to 2 x 4
EXPERTS = {"pixel_conv": PIXEL, "pixel_transformer": SyncDims(**{**PIXEL.to_dict(), "temporal": "transformer"}),
           "mesh_both": LipSyncDims(face_input="both", hidden_dim=16, base_channels=4, num_layers=4,
                           curve_input="spread")}


def _expert(dims) -> torch.nn.Module:
    if isinstance(dims, LipSyncDims):
        model = LipSyncExpert(dims)
        model.template.normal_()
        model.lip_scale.uniform_(0.5, 2.0)
        model.curve_calibration.copy_(torch.tensor([3.0, -0.5]))  # calibrated: scores come from the curve
        return model
    return SyncExpert(dims)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("exp")
    cfg = load_config(None).to_dict()
    paths = {}
    for name, dims in EXPERTS.items():
        paths[name] = save_checkpoint(root / f"{name}.pth", kind="sync", config=cfg, dims=dims.to_dict(),
                                      state_dict=_expert(dims).state_dict())
    gd = GeneratorDims(input_size=96, base_channels=4)
    paths["generator"] = save_checkpoint(
        root / "gen.pth", kind="generator", config=cfg, dims=gd.to_dict(), state_dict=Generator(gd).state_dict(),
        extra={"expert": {"dims": PIXEL.to_dict(), "state_dict": SyncExpert(PIXEL).state_dict()}})
    return paths


def _face_input(dims, b: int, t: int):
    if isinstance(dims, LipSyncDims):
        return {"lips": torch.randn(b, t, dims.lip_features), "pixels": torch.rand(b, t, 3, 48, 96)}
    return torch.rand(b, t, 3, 96, 96)


def _load_pair(path, exported):
    ref = expert_from(load_checkpoint(path), path, CPU)
    got = expert_from(load_checkpoint(exported), exported, CPU)
    return ref, got


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", list(EXPERTS))
def test_expert_round_trip_gives_the_checkpoints_outputs(checkpoints, tmp_path, fmt, name):
    out = export_model(checkpoints[name], tmp_path / f"e{SUFFIX[fmt]}", fmt)
    assert is_exported(out)
    ref, got = _load_pair(checkpoints[name], out)
    assert got.dims == ref.dims
    torch.manual_seed(1)
    face, audio = _face_input(ref.dims, 1, 13), torch.rand(1, 11, 16, 80)  # other sizes than traced with
    with torch.no_grad():
        f_ref, f_got = ref.face_embed(face), got.face_embed(face)
        a_ref, a_got = ref.audio_embed(audio), got.audio_embed(audio)
        assert f_got.shape == (1, 9, 16) and a_got.shape == (1, 11, 16)
        assert torch.allclose(f_got, f_ref, atol=1e-4) and torch.allclose(a_got, a_ref, atol=1e-4)
        assert torch.allclose(got.logits(f_got, a_got[:, :9]), ref.logits(f_ref, a_ref[:, :9]), atol=1e-3)
    if isinstance(ref, LipSyncExpert):  # what the face-mesh path reads besides the graphs
        assert torch.equal(got.template, ref.template)
        curve = np.array([1.0, 0.95, 0.7, 1.05, 1.1])
        assert got.curve_score(curve, 2) == pytest.approx(ref.curve_score(curve, 2))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_generator_round_trip_and_its_expert(checkpoints, tmp_path, fmt):
    out = export_model(checkpoints["generator"], tmp_path / f"g{SUFFIX[fmt]}", fmt)
    data = load_checkpoint(out, kind="generator")
    ref = generator_from(load_checkpoint(checkpoints["generator"]), None, CPU)
    got = generator_from(data, out, CPU)
    torch.manual_seed(2)
    faces, audio = torch.rand(3, 6, 96, 96), torch.rand(3, 16, 80)
    with torch.no_grad():
        assert torch.allclose(got(faces, audio), ref(faces, audio), atol=1e-4)
    assert expert_from(data, out, CPU).dims == PIXEL  # one file dubs and scores, as the checkpoint did


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("quantize", ["int8", "fp16"])
def test_quantised_exports_stay_close_to_float(checkpoints, tmp_path, fmt, quantize):
    path = checkpoints["mesh_both"]
    out = export_model(path, tmp_path / f"q{SUFFIX[fmt]}", fmt, quantize)
    ref, got = _load_pair(path, out)
    torch.manual_seed(3)
    face, audio = _face_input(ref.dims, 1, 30), torch.rand(1, 30, 16, 80)
    with torch.no_grad():
        for a, b in ((ref.face_embed(face), got.face_embed(face)), (ref.audio_embed(audio), got.audio_embed(audio))):
            cos = (a * b).sum(-1)  # both unit length
            assert cos.min() > (0.999 if quantize == "fp16" else 0.98)
            assert not torch.equal(a, b)  # it did change the arithmetic
    if quantize == "int8" and fmt == "onnx":  # weights in bytes, not floats
        float_out = export_model(path, tmp_path / "f.onnx", fmt)
        assert out.stat().st_size < 0.6 * float_out.stat().st_size


def test_int8_exports_load_through_every_entry_point(checkpoints, synth_dir, tmp_path, capsys):
    gen = tmp_path / "gen_int8.onnx"
    assert main(["export", str(checkpoints["generator"]), "--quantize", "int8", "--out", str(gen)]) == 0
    assert "onnx int8" in capsys.readouterr().out
    expert = tmp_path / "expert_int8.pt"
    assert main(["export", str(checkpoints["pixel_conv"]), "--format", "torchscript", "--quantize", "int8",
                 "--out", str(expert)]) == 0
    video = synth_dir / "videos" / "synth_0002.mp4"
    model = LipSyncInference(gen, device="cpu")  # score and dub from one exported generator file
    score, d = model.compute_sync_score(video)
    assert 0.0 <= score <= 1.0 and -15 <= d["offset_frames"] <= 15 and len(d["curve"]["offsets"]) == 31
    out = tmp_path / "dub_api.mp4"
    ok, _ = model.sync_video_audio(video, synth_dir / "audios" / "synth_0003.wav", out)
    assert ok and media.probe_video(out).num_frames == 50
    out_cli = tmp_path / "dub_cli.mp4"
    assert main(["dub", "--video", str(video), "--audio", str(synth_dir / "audios" / "synth_0003.wav"),
                 "--out", str(out_cli), "--checkpoint", str(gen), "--device", "cpu", "--quiet"]) == 0
    a, b = list(media.iter_frames(out)), list(media.iter_frames(out_cli))
    assert len(a) == len(b) == 50 and np.abs(a[20].astype(int) - b[20].astype(int)).mean() < 1.0
    assert main(["score", str(video), "--checkpoint", str(expert), "--device", "cpu"]) == 0
    assert "sync score" in capsys.readouterr().out


def test_export_mistakes_are_clear_errors(checkpoints, tmp_path, capsys):
    code = main(["export", str(checkpoints["pixel_conv"]), "--format", "onnx", "--out", str(tmp_path / "e.pt")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and "e.pt must end in .onnx" in err
    with pytest.raises(InputError, match="already an export"):
        done = export_model(checkpoints["pixel_conv"], tmp_path / "e.onnx", "onnx")
        export_model(done, tmp_path / "again.onnx", "onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="bad.onnx"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no trainable weights"):
        init_weights(SyncExpert(PIXEL), tmp_path / "e.onnx", "sync")
    assert not is_exported(checkpoints["pixel_conv"])  # a .pth checkpoint stays a checkpoint
    assert not list(tmp_path.glob(".*.tmp"))  # failed writes leave no temp file


def test_exported_shipped_expert_scores_like_it_through_the_face_mesh_path(synth_dir, tmp_path):
    video = synth_dir / "videos" / "synth_0005.mp4"
    out = export_model("pretrained", tmp_path / "lip_int8.onnx", "onnx", "int8")
    score, d = LipSyncInference(device="cpu").compute_sync_score(video)
    q_score, q = LipSyncInference(out, device="cpu").compute_sync_score(video)
    assert q["offset_frames"] == d["offset_frames"] and q["num_faces"] == d["num_faces"]
    assert q_score == pytest.approx(score, abs=0.02) and q["confidence"] == pytest.approx(d["confidence"], abs=0.02)
